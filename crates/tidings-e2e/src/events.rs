//! One sample of every kind of event the ERP backend publishes, as the JSON
//! it sends with `PUBLISH`, with the screen it belongs on and text its row
//! must show. Identifiers are unique per sample so that a row found on
//! screen can only come from that sample.

use tidings_events::event::{
    Approval, ApprovalDecision, ApprovalResource, Broadcast, BroadcastLevel, DataAction,
    DataChange, DataResource, Finance, FinanceAction, FinanceEventType, FinanceRecordType,
    InventoryAction, InventoryChange, Notification, NotificationType, OrderStatus, OrderType,
    SystemEventType, SystemLevel, SystemNotice,
};
use tidings_events::{Channel, Event};

/// One event to publish and where to look for it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// What the sample is, for messages (`inventory:change`).
    pub kind: &'static str,
    /// Redis channel, e.g. `ws:inventory`.
    pub channel: String,
    /// The event JSON to publish.
    pub payload: String,
    /// The UI screen (`#/NAME`) of its feed.
    pub screen: &'static str,
    /// The tab of that screen it is listed under, if the screen has tabs
    /// (`[role=tab][data-tab=NAME]`: approval results are not pending).
    pub tab: Option<&'static str>,
    /// Texts its row must contain.
    pub texts: Vec<String>,
}

/// A sample built from the contract's own types, so it cannot drift from
/// them: its `type`, channel and JSON all come from `tidings-events`.
fn sample(event: &Event, screen: &'static str, texts: &[&str]) -> Sample {
    let channel = Channel::for_event(event).expect("every sample has its channel");
    Sample {
        kind: event.kind().as_str(),
        channel: channel.redis_name(),
        payload: event.to_json(),
        screen,
        tab: None,
        texts: texts.iter().map(|text| (*text).to_owned()).collect(),
    }
}

impl Sample {
    fn in_tab(mut self, tab: &'static str) -> Self {
        self.tab = Some(tab);
        self
    }

    fn labelled(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }
}

/// The inventory example from the protocol (§1), byte for byte.
pub const PROTOCOL_INVENTORY_EXAMPLE: &str = r#"{"type":"inventory:change","productId":"123","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#;

/// Every kind of typed event, for user `user` (the `notification` goes to
/// their own channel). `now` is the timestamp to send (ms since epoch).
pub fn every_kind(user: &str, now: i64) -> Vec<Sample> {
    let at = |event: Event| -> Event {
        let mut value = serde_json::to_value(&event).expect("events serialise");
        value["timestamp"] = now.into();
        serde_json::from_value(value).expect("and read back")
    };
    let some = |text: &str| Some(text.to_owned());
    vec![
        Sample {
            kind: "inventory:change (protocol example)",
            channel: "ws:inventory".into(),
            payload: PROTOCOL_INVENTORY_EXAMPLE.into(),
            screen: "inventory",
            tab: None,
            texts: vec!["123".into(), "10".into(), "15".into()],
        },
        sample(
            &at(Event::InventoryChange(InventoryChange {
                product_name: some("Blue widget E2E"),
                reason: some("picked for SO-E2E"),
                operator: some("dock-7"),
                ..InventoryChange::new(InventoryAction::Outbound, "P-E2E-7", 40.0, 37.0)
            })),
            "inventory",
            &["Blue widget E2E", "37", "picked for SO-E2E"],
        ),
        sample(
            &at(Event::OrderStatus(OrderStatus {
                customer_name: some("Acme E2E Ltd"),
                ..OrderStatus::new(OrderType::Sales, "o-e2e-1", "SO-E2E-0001", "pending", "shipped")
            })),
            "orders",
            &["SO-E2E-0001", "Acme E2E Ltd"],
        ),
        sample(
            &at(Event::ApprovalRequest(Approval {
                reason: some("supplier invoice E2E"),
                ..Approval::new(
                    ApprovalResource::Payment,
                    "pay-e2e-1",
                    "PAY-E2E-REQ",
                    "u-req",
                    "Rita Requester",
                )
            })),
            "approvals",
            &["PAY-E2E-REQ", "Rita Requester"],
        ),
        sample(
            &at(ApprovalDecision::Approved.event(Approval {
                approver_id: some("u-boss"),
                approver_name: some("Ada Approver"),
                ..Approval::new(
                    ApprovalResource::Order,
                    "o-e2e-2",
                    "SO-E2E-APPROVED",
                    "u-req",
                    "Rita Requester",
                )
            })),
            "approvals",
            &["SO-E2E-APPROVED", "Ada Approver"],
        )
        .in_tab("results"),
        sample(
            &at(ApprovalDecision::Rejected.event(Approval {
                approver_name: some("Ada Approver"),
                comment: some("duplicate E2E"),
                ..Approval::new(
                    ApprovalResource::Refund,
                    "r-e2e-3",
                    "RF-E2E-REJECTED",
                    "u-req",
                    "Rita Requester",
                )
            })),
            "approvals",
            &["RF-E2E-REJECTED", "duplicate E2E"],
        )
        .in_tab("results"),
        sample(
            &at(FinanceEventType::Payment.event(Finance {
                customer_name: some("Acme E2E Ltd"),
                ..Finance::new(
                    FinanceAction::Confirmed,
                    FinanceRecordType::Payment,
                    "f-e2e-1",
                    "PMT-E2E-0001",
                    250.5,
                )
            })),
            "finance",
            &["PMT-E2E-0001", "Acme E2E Ltd"],
        ),
        sample(
            &at(FinanceEventType::Refund.event(Finance {
                customer_name: some("Bob E2E"),
                ..Finance::new(
                    FinanceAction::Created,
                    FinanceRecordType::Refund,
                    "f-e2e-2",
                    "RFD-E2E-0002",
                    12.0,
                )
            })),
            "finance",
            &["RFD-E2E-0002", "Bob E2E"],
        ),
        sample(
            &at(FinanceEventType::Overdue.event(Finance {
                supplier_name: some("Supplier E2E"),
                ..Finance::new(
                    FinanceAction::Overdue,
                    FinanceRecordType::PaymentOut,
                    "f-e2e-3",
                    "PO-E2E-OVERDUE",
                    999.0,
                )
            })),
            "finance",
            &["PO-E2E-OVERDUE", "Supplier E2E"],
        ),
        sample(
            &at(Event::DataChange(DataChange {
                resource_name: some("Gadget E2E"),
                changes: serde_json::json!({"price": 12}).as_object().cloned(),
                ..DataChange::new(DataResource::Product, DataAction::Updated, "p-e2e-9")
            })),
            "data",
            &["Gadget E2E"],
        )
        .labelled("data:change (product)"),
        sample(
            &at(Event::DataChange(DataChange {
                resource_name: some("Customer E2E"),
                ..DataChange::new(DataResource::Customer, DataAction::Created, "c-e2e-1")
            })),
            "data",
            &["Customer E2E"],
        )
        .labelled("data:change (customer)"),
        sample(
            &at(Event::DataChange(DataChange {
                resource_name: some("Supplier Gone E2E"),
                ..DataChange::new(DataResource::Supplier, DataAction::Deleted, "s-e2e-1")
            })),
            "data",
            &["Supplier Gone E2E"],
        )
        .labelled("data:change (supplier)"),
        sample(
            &at(SystemEventType::Maintenance.event(SystemNotice {
                scheduled_time: Some(now + 3_600_000),
                estimated_duration: Some(1_800_000),
                ..SystemNotice::new(SystemLevel::Warning, "Maintenance window E2E")
            })),
            "system",
            &["Maintenance window E2E"],
        ),
        sample(
            &at(SystemEventType::Update
                .event(SystemNotice::new(SystemLevel::Info, "Version 9.9 E2E deployed"))),
            "system",
            &["Version 9.9 E2E deployed"],
        ),
        sample(
            &at(SystemEventType::Alert
                .event(SystemNotice::new(SystemLevel::Critical, "Disk almost full E2E"))),
            "system",
            &["Disk almost full E2E"],
        ),
        sample(
            &at(Event::Broadcast(Broadcast {
                level: BroadcastLevel::Success,
                title: some("Hello E2E"),
                ..Broadcast::new("Stocktake finished E2E")
            })),
            "broadcast",
            &["Stocktake finished E2E"],
        ),
        sample(
            &at(Event::Notification(Notification {
                user_id: some(user),
                ..Notification::new(
                    NotificationType::Info,
                    "Your report E2E",
                    "The stock report is ready",
                )
            })),
            "mine",
            &["Your report E2E", "The stock report is ready"],
        ),
    ]
}

/// A payment approval request for `resource_id`, numbered `number`, from
/// Rita Requester, stamped now: the JSON the ERP publishes on `ws:approvals`.
pub fn approval_request(resource_id: &str, number: &str) -> String {
    let mut request =
        Approval::new(ApprovalResource::Payment, resource_id, number, "u-req", "Rita Requester");
    request.timestamp = now_ms();
    Event::ApprovalRequest(request).to_json()
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    tidings_events::millis_since_epoch(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_a_typed_event_on_its_own_channel_at_the_given_time() {
        let samples = every_kind("u-e2e", 1_700_000_000_000);
        assert_eq!(samples.len(), 17);
        for sample in samples.iter().skip(1) {
            let event: Event = serde_json::from_str(&sample.payload).expect(sample.kind);
            assert_eq!(event.timestamp(), 1_700_000_000_000, "{}", sample.kind);
            let channel = Channel::for_event(&event).expect(sample.kind);
            assert_eq!(channel.redis_name(), sample.channel, "{}", sample.kind);
            assert!(sample.kind.starts_with(event.kind().as_str()), "{}", sample.kind);
        }
        assert_eq!(samples.last().unwrap().channel, "ws:user:u-e2e:notifications");
    }
}
