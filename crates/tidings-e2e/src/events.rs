//! One sample of every kind of event the ERP backend publishes, as the JSON
//! it sends with `PUBLISH`, with the screen it belongs on and text its row
//! must show. Identifiers are unique per sample so that a row found on
//! screen can only come from that sample.

/// One event to publish and where to look for it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// What the sample is, for messages (`inventory:change`).
    pub kind: &'static str,
    /// Redis channel, e.g. `ws:inventory`.
    pub channel: String,
    pub payload: String,
    /// The UI screen (`#/NAME`) of its feed.
    pub screen: &'static str,
    /// The tab of that screen it is listed under, if the screen has tabs
    /// (`[role=tab][data-tab=NAME]`: approval results are not pending).
    pub tab: Option<&'static str>,
    /// Texts its row must contain.
    pub texts: Vec<String>,
}

fn sample(
    kind: &'static str,
    channel: &str,
    screen: &'static str,
    payload: serde_json::Value,
    texts: &[&str],
) -> Sample {
    Sample {
        kind,
        channel: channel.to_owned(),
        payload: payload.to_string(),
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
}

/// The inventory example from the protocol (§1), byte for byte.
pub const PROTOCOL_INVENTORY_EXAMPLE: &str = r#"{"type":"inventory:change","productId":"123","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#;

/// Every kind of typed event, for user `user` (the `notification` goes to
/// their own channel). `now` is the timestamp to send (ms since epoch).
pub fn every_kind(user: &str, now: i64) -> Vec<Sample> {
    use serde_json::json;
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
            "inventory:change",
            "ws:inventory",
            "inventory",
            json!({"type":"inventory:change","productId":"P-E2E-7","productName":"Blue widget E2E","action":"outbound","oldQuantity":40,"newQuantity":37,"changeAmount":-3,"reason":"picked for SO-E2E","operator":"dock-7","timestamp":now}),
            &["Blue widget E2E", "37", "picked for SO-E2E"],
        ),
        sample(
            "order:status",
            "ws:orders",
            "orders",
            json!({"type":"order:status","orderType":"sales","orderId":"o-e2e-1","orderNumber":"SO-E2E-0001","oldStatus":"pending","newStatus":"shipped","customerName":"Acme E2E Ltd","timestamp":now}),
            &["SO-E2E-0001", "Acme E2E Ltd"],
        ),
        sample(
            "approval:request",
            "ws:approvals",
            "approvals",
            json!({"type":"approval:request","resourceType":"payment","resourceId":"pay-e2e-1","resourceNumber":"PAY-E2E-REQ","requesterId":"u-req","requesterName":"Rita Requester","reason":"supplier invoice E2E","timestamp":now}),
            &["PAY-E2E-REQ", "Rita Requester"],
        ),
        sample(
            "approval:approved",
            "ws:approvals",
            "approvals",
            json!({"type":"approval:approved","resourceType":"order","resourceId":"o-e2e-2","resourceNumber":"SO-E2E-APPROVED","requesterId":"u-req","requesterName":"Rita Requester","approverId":"u-boss","approverName":"Ada Approver","timestamp":now}),
            &["SO-E2E-APPROVED", "Ada Approver"],
        )
        .in_tab("results"),
        sample(
            "approval:rejected",
            "ws:approvals",
            "approvals",
            json!({"type":"approval:rejected","resourceType":"refund","resourceId":"r-e2e-3","resourceNumber":"RF-E2E-REJECTED","requesterId":"u-req","requesterName":"Rita Requester","approverName":"Ada Approver","comment":"duplicate E2E","timestamp":now}),
            &["RF-E2E-REJECTED", "duplicate E2E"],
        )
        .in_tab("results"),
        sample(
            "finance:payment",
            "ws:finance",
            "finance",
            json!({"type":"finance:payment","action":"confirmed","recordType":"payment","recordId":"f-e2e-1","recordNumber":"PMT-E2E-0001","amount":250.5,"customerName":"Acme E2E Ltd","timestamp":now}),
            &["PMT-E2E-0001", "Acme E2E Ltd"],
        ),
        sample(
            "finance:refund",
            "ws:finance",
            "finance",
            json!({"type":"finance:refund","action":"created","recordType":"refund","recordId":"f-e2e-2","recordNumber":"RFD-E2E-0002","amount":12,"customerName":"Bob E2E","timestamp":now}),
            &["RFD-E2E-0002", "Bob E2E"],
        ),
        sample(
            "finance:overdue",
            "ws:finance",
            "finance",
            json!({"type":"finance:overdue","action":"overdue","recordType":"paymentOut","recordId":"f-e2e-3","recordNumber":"PO-E2E-OVERDUE","amount":999,"supplierName":"Supplier E2E","timestamp":now}),
            &["PO-E2E-OVERDUE", "Supplier E2E"],
        ),
        sample(
            "data:change (product)",
            "ws:products",
            "data",
            json!({"type":"data:change","resource":"product","action":"updated","resourceId":"p-e2e-9","resourceName":"Gadget E2E","changes":{"price":12},"timestamp":now}),
            &["Gadget E2E"],
        ),
        sample(
            "data:change (customer)",
            "ws:customers",
            "data",
            json!({"type":"data:change","resource":"customer","action":"created","resourceId":"c-e2e-1","resourceName":"Customer E2E","timestamp":now}),
            &["Customer E2E"],
        ),
        sample(
            "data:change (supplier)",
            "ws:suppliers",
            "data",
            json!({"type":"data:change","resource":"supplier","action":"deleted","resourceId":"s-e2e-1","resourceName":"Supplier Gone E2E","timestamp":now}),
            &["Supplier Gone E2E"],
        ),
        sample(
            "system:maintenance",
            "ws:system",
            "system",
            json!({"type":"system:maintenance","level":"warning","message":"Maintenance window E2E","scheduledTime":now + 3_600_000,"estimatedDuration":1_800_000,"timestamp":now}),
            &["Maintenance window E2E"],
        ),
        sample(
            "system:update",
            "ws:system",
            "system",
            json!({"type":"system:update","level":"info","message":"Version 9.9 E2E deployed","timestamp":now}),
            &["Version 9.9 E2E deployed"],
        ),
        sample(
            "system:alert",
            "ws:system",
            "system",
            json!({"type":"system:alert","level":"critical","message":"Disk almost full E2E","timestamp":now}),
            &["Disk almost full E2E"],
        ),
        sample(
            "broadcast",
            "ws:broadcast",
            "broadcast",
            json!({"type":"broadcast","level":"success","title":"Hello E2E","message":"Stocktake finished E2E","timestamp":now}),
            &["Stocktake finished E2E"],
        ),
        sample(
            "notification",
            &format!("ws:user:{user}:notifications"),
            "mine",
            json!({"type":"notification","notificationType":"info","title":"Your report E2E","message":"The stock report is ready","userId":user,"timestamp":now}),
            &["Your report E2E", "The stock report is ready"],
        ),
    ]
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
