//! The contract as protocol.md states it: each event type round-trips with
//! camelCase fields, the protocol's own example decodes, legacy objects are
//! kept whole, and every kind of malformed message gets a readable reason.

use serde_json::{Value, json};
use tidings_events::event::*;
use tidings_events::{Channel, Decoded, decode};

/// One sample of every event type, with every optional field set.
pub fn samples() -> Vec<Event> {
    const AT: i64 = 1_699_999_999_999;
    let approval = Approval {
        resource_type: ApprovalResource::Order,
        resource_id: "o-1".into(),
        resource_number: "SO-2026-000123".into(),
        requester_id: "u7".into(),
        requester_name: "王芳".into(),
        approver_id: Some("u1".into()),
        approver_name: Some("李雷".into()),
        reason: Some("大额订单".into()),
        comment: Some("ok".into()),
        timestamp: AT,
        user_id: None,
    };
    let finance = Finance {
        action: FinanceAction::Confirmed,
        record_type: FinanceRecordType::PaymentOut,
        record_id: "p-9".into(),
        record_number: "PO-2026-000009".into(),
        amount: 12_345.67,
        customer_id: Some("c1".into()),
        customer_name: Some("上海百货".into()),
        supplier_id: Some("s1".into()),
        supplier_name: Some("Acme Ltd".into()),
        timestamp: AT,
        user_id: None,
    };
    let notice = SystemNotice {
        level: SystemLevel::Critical,
        message: "数据库维护".into(),
        affected_users: Some(vec!["u1".into(), "u2".into()]),
        scheduled_time: Some(1_700_000_000_000),
        estimated_duration: Some(1_800_000),
        timestamp: AT,
        user_id: None,
    };
    vec![
        Event::Notification(Notification {
            notification_type: NotificationType::Error,
            title: "审批被拒".into(),
            message: "Order SO-2026-000123 was rejected".into(),
            action_url: Some("/orders/123".into()),
            action_label: Some("查看".into()),
            timestamp: AT,
            user_id: Some("u7".into()),
        }),
        Event::InventoryChange(InventoryChange {
            action: InventoryAction::Outbound,
            product_id: "123".into(),
            old_quantity: 10.0,
            new_quantity: 7.5,
            change_amount: -2.5,
            product_name: Some("螺丝刀 Screwdriver".into()),
            variant_id: Some("v2".into()),
            reason: Some("sale".into()),
            operator: Some("u3".into()),
            timestamp: AT,
            user_id: Some("u3".into()),
        }),
        Event::OrderStatus(OrderStatus {
            order_type: OrderType::Sales,
            order_id: "o-1".into(),
            order_number: "SO-2026-000123".into(),
            old_status: "pending".into(),
            new_status: "shipped".into(),
            customer_id: Some("c1".into()),
            customer_name: Some("上海百货".into()),
            timestamp: AT,
            user_id: None,
        }),
        Event::ApprovalRequest(approval.clone()),
        Event::ApprovalApproved(approval.clone()),
        Event::ApprovalRejected(approval),
        Event::FinancePayment(finance.clone()),
        Event::FinanceRefund(finance.clone()),
        Event::FinanceOverdue(finance),
        Event::DataChange(DataChange {
            resource: DataResource::Category,
            action: DataAction::Updated,
            resource_id: "cat-4".into(),
            resource_name: Some("五金 Hardware".into()),
            changes: Some(json!({"name": {"from": "a", "to": "b"}}).as_object().cloned().unwrap()),
            timestamp: AT,
            user_id: None,
        }),
        Event::SystemMaintenance(notice.clone()),
        Event::SystemUpdate(notice.clone()),
        Event::SystemAlert(notice),
        Event::Broadcast(Broadcast {
            message: "下午三点盘点".into(),
            level: BroadcastLevel::Warning,
            title: Some("Stocktake".into()),
            timestamp: AT,
            user_id: None,
        }),
    ]
}

fn decode_typed(text: &str) -> Event {
    match decode(text.as_bytes()) {
        Decoded::Typed { event, .. } => event,
        other => panic!("expected a typed event from {text}, got {other:?}"),
    }
}

fn malformed_reason(text: &str) -> String {
    match decode(text.as_bytes()) {
        Decoded::Malformed(malformed) => malformed.reason,
        other => panic!("expected {text} to be malformed, got {other:?}"),
    }
}

#[test]
fn every_event_type_round_trips_through_json() {
    let samples = samples();
    assert_eq!(samples.len(), EventKind::ALL.len(), "one sample per kind");
    for event in samples {
        let text = event.to_json();
        assert_eq!(decode_typed(&text), event, "{text}");
    }
}

#[test]
fn every_kind_is_sampled_once() {
    let kinds: Vec<EventKind> = samples().iter().map(Event::kind).collect();
    assert_eq!(kinds, EventKind::ALL.to_vec());
}

#[test]
fn field_names_are_camel_case_with_type_as_the_tag() {
    let inventory = serde_json::to_value(&samples()[1]).unwrap();
    let mut keys: Vec<&str> = inventory.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "action",
            "changeAmount",
            "newQuantity",
            "oldQuantity",
            "operator",
            "productId",
            "productName",
            "reason",
            "timestamp",
            "type",
            "userId",
            "variantId"
        ]
    );
    assert_eq!(inventory["type"], "inventory:change");
    let finance = serde_json::to_value(&samples()[7]).unwrap();
    assert_eq!(finance["recordType"], "paymentOut");
}

#[test]
fn the_protocol_example_decodes() {
    let example = r#"{"type":"inventory:change","productId":"123","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#;
    let Event::InventoryChange(change) = decode_typed(example) else { panic!("wrong type") };
    assert_eq!(change.product_id, "123");
    assert_eq!(change.action, InventoryAction::Adjust);
    assert_eq!((change.old_quantity, change.new_quantity, change.change_amount), (10.0, 15.0, 5.0));
    assert_eq!(change.timestamp, 1_699_999_999_999);
    assert_eq!(change.user_id, None);
}

#[test]
fn integral_quantities_are_written_as_the_backend_writes_them() {
    let example = r#"{"type":"inventory:change","action":"adjust","productId":"123","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#;
    assert_eq!(decode_typed(example).to_json(), example);
}

#[test]
fn unknown_extra_fields_are_kept_in_the_raw_object() {
    let text =
        r#"{"type":"broadcast","message":"hi","timestamp":1,"traceId":"abc","nested":{"a":[1]}}"#;
    let Decoded::Typed { event, raw } = decode(text.as_bytes()) else { panic!("not typed") };
    assert_eq!(event.kind(), EventKind::Broadcast);
    assert_eq!(raw["traceId"], "abc");
    assert_eq!(raw["nested"], json!({"a": [1]}));
}

#[test]
fn broadcast_level_defaults_to_info() {
    let Event::Broadcast(b) = decode_typed(r#"{"type":"broadcast","message":"hi","timestamp":1}"#)
    else {
        panic!("wrong type")
    };
    assert_eq!(b.level, BroadcastLevel::Info);
}

#[test]
fn objects_with_an_unknown_type_are_legacy_and_kept_whole() {
    let text = r#"{"type":"adjust","productId":"123","quantity":10}"#;
    let Decoded::Legacy { raw } = decode(text.as_bytes()) else { panic!("not legacy") };
    assert_eq!(Value::Object(raw), serde_json::from_str::<Value>(text).unwrap());
}

#[test]
fn objects_without_a_type_are_legacy() {
    assert!(matches!(decode(br#"{"productId":"1"}"#), Decoded::Legacy { .. }));
    assert!(matches!(decode(br#"{"type":7}"#), Decoded::Legacy { .. }));
}

#[test]
fn a_missing_field_is_named_with_its_event_type() {
    let reason = malformed_reason(
        r#"{"type":"inventory:change","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1}"#,
    );
    assert_eq!(reason, "inventory:change: missing field `productId`");
}

#[test]
fn a_missing_timestamp_is_malformed() {
    let reason = malformed_reason(r#"{"type":"broadcast","message":"hi"}"#);
    assert_eq!(reason, "broadcast: missing field `timestamp`");
}

#[test]
fn an_ill_typed_field_is_named_with_what_was_expected() {
    let reason = malformed_reason(
        r#"{"type":"inventory:change","action":"adjust","productId":"1","oldQuantity":"ten","newQuantity":15,"changeAmount":5,"timestamp":1}"#,
    );
    assert!(
        reason.starts_with("inventory:change: field `oldQuantity`: invalid type: string \"ten\""),
        "{reason}"
    );
}

#[test]
fn a_value_outside_a_closed_set_lists_the_allowed_ones() {
    let reason = malformed_reason(
        r#"{"type":"notification","notificationType":"urgent","title":"t","message":"m","timestamp":1}"#,
    );
    assert!(
        reason.starts_with("notification: field `notificationType`: unknown variant `urgent`"),
        "{reason}"
    );
    assert!(reason.contains("`info`, `success`, `warning`, `error`"), "{reason}");
}

#[test]
fn a_fractional_timestamp_is_malformed() {
    let reason = malformed_reason(r#"{"type":"broadcast","message":"hi","timestamp":1.5}"#);
    assert!(
        reason.starts_with("broadcast: field `timestamp`: invalid type: floating point"),
        "{reason}"
    );
}

#[test]
fn a_non_object_changes_field_is_malformed() {
    let reason = malformed_reason(
        r#"{"type":"data:change","resource":"product","action":"created","resourceId":"1","changes":[1],"timestamp":1}"#,
    );
    assert!(reason.starts_with("data:change: field `changes`: invalid type: sequence"), "{reason}");
}

#[test]
fn text_that_is_not_json_is_malformed() {
    assert!(
        malformed_reason("not json").starts_with("not JSON: expected ident at line 1 column 2")
    );
    assert!(malformed_reason("").starts_with("not JSON: EOF while parsing"));
}

#[test]
fn json_that_is_not_an_object_is_malformed() {
    assert_eq!(malformed_reason("[1,2]"), "not a JSON object: got an array");
    assert_eq!(malformed_reason("\"x\""), "not a JSON object: got a string");
    assert_eq!(malformed_reason("null"), "not a JSON object: got null");
}

#[test]
fn bytes_that_are_not_utf8_are_malformed() {
    assert_eq!(
        malformed_reason_bytes(b"{\"a\":\"\xff\"}"),
        "not UTF-8 text: invalid byte at offset 6"
    );
}

fn malformed_reason_bytes(bytes: &[u8]) -> String {
    match decode(bytes) {
        Decoded::Malformed(malformed) => malformed.reason,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn every_sample_belongs_on_its_protocol_channel() {
    let expected = [
        "user:u7:notifications",
        "inventory",
        "orders",
        "approvals",
        "approvals",
        "approvals",
        "finance",
        "finance",
        "finance",
        "products",
        "system",
        "system",
        "system",
        "broadcast",
    ];
    for (event, channel) in samples().iter().zip(expected) {
        let home = Channel::for_event(event).unwrap();
        assert_eq!(home.name(), channel, "{:?}", event.kind());
        assert!(home.carries(event));
        assert!(home.kinds().contains(&event.kind()));
    }
}

#[test]
fn a_notification_without_a_user_has_no_channel() {
    let mut notification = samples().remove(0);
    if let Event::Notification(n) = &mut notification {
        n.user_id = None;
    }
    let error = Channel::for_event(&notification).unwrap_err().to_string();
    assert!(error.contains("user id is empty"), "{error}");
}
