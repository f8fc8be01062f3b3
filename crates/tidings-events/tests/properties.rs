//! Properties of the decoder over generated input: encoding any event and
//! decoding it gives the same event back, and no byte string makes it panic.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value};
use tidings_events::event::*;
use tidings_events::{Decoded, decode};

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including quotes, backslashes, control characters and CJK.
    ".{0,24}"
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1_000_000i64..1_000_000).prop_map(|n| n as f64),
        any::<f64>().prop_filter("JSON numbers are finite", |n| n.is_finite()),
    ]
}

fn timestamp() -> impl Strategy<Value = i64> {
    any::<i64>()
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::from),
        Just(Value::Null),
    ];
    btree_map(text(), leaf, 0..4).prop_map(|entries| entries.into_iter().collect())
}

fn notification() -> impl Strategy<Value = Event> {
    (
        prop_oneof![
            Just(NotificationType::Info),
            Just(NotificationType::Success),
            Just(NotificationType::Warning),
            Just(NotificationType::Error)
        ],
        text(),
        text(),
        option::of(text()),
        option::of(text()),
        timestamp(),
        option::of(text()),
    )
        .prop_map(
            |(notification_type, title, message, action_url, action_label, timestamp, user_id)| {
                Event::Notification(Notification {
                    notification_type,
                    title,
                    message,
                    action_url,
                    action_label,
                    timestamp,
                    user_id,
                })
            },
        )
}

fn inventory() -> impl Strategy<Value = Event> {
    (
        prop_oneof![
            Just(InventoryAction::Adjust),
            Just(InventoryAction::Inbound),
            Just(InventoryAction::Outbound),
            Just(InventoryAction::Reserve),
            Just(InventoryAction::Release)
        ],
        text(),
        (number(), number(), number()),
        (option::of(text()), option::of(text()), option::of(text()), option::of(text())),
        timestamp(),
        option::of(text()),
    )
        .prop_map(
            |(
                action,
                product_id,
                (old, new, change),
                (name, variant, reason, operator),
                timestamp,
                user_id,
            )| {
                Event::InventoryChange(InventoryChange {
                    action,
                    product_id,
                    old_quantity: old,
                    new_quantity: new,
                    change_amount: change,
                    product_name: name,
                    variant_id: variant,
                    reason,
                    operator,
                    timestamp,
                    user_id,
                })
            },
        )
}

fn order() -> impl Strategy<Value = Event> {
    (
        prop_oneof![Just(OrderType::Sales), Just(OrderType::Return), Just(OrderType::Purchase)],
        (text(), text(), text(), text()),
        (option::of(text()), option::of(text())),
        timestamp(),
    )
        .prop_map(
            |(order_type, (id, number, old, new), (customer_id, customer_name), timestamp)| {
                Event::OrderStatus(OrderStatus {
                    order_type,
                    order_id: id,
                    order_number: number,
                    old_status: old,
                    new_status: new,
                    customer_id,
                    customer_name,
                    timestamp,
                    user_id: None,
                })
            },
        )
}

fn approval() -> impl Strategy<Value = Event> {
    (
        0..3usize,
        prop_oneof![
            Just(ApprovalResource::Order),
            Just(ApprovalResource::Return),
            Just(ApprovalResource::Payment),
            Just(ApprovalResource::Refund),
            Just(ApprovalResource::Adjustment)
        ],
        (text(), text(), text(), text()),
        (option::of(text()), option::of(text()), option::of(text()), option::of(text())),
        timestamp(),
    )
        .prop_map(
            |(
                which,
                resource_type,
                (id, number, requester_id, requester_name),
                (aid, aname, reason, comment),
                timestamp,
            )| {
                let approval = Approval {
                    resource_type,
                    resource_id: id,
                    resource_number: number,
                    requester_id,
                    requester_name,
                    approver_id: aid,
                    approver_name: aname,
                    reason,
                    comment,
                    timestamp,
                    user_id: None,
                };
                match which {
                    0 => Event::ApprovalRequest(approval),
                    1 => Event::ApprovalApproved(approval),
                    _ => Event::ApprovalRejected(approval),
                }
            },
        )
}

fn finance() -> impl Strategy<Value = Event> {
    (
        0..3usize,
        prop_oneof![
            Just(FinanceAction::Created),
            Just(FinanceAction::Confirmed),
            Just(FinanceAction::Cancelled),
            Just(FinanceAction::Overdue)
        ],
        prop_oneof![
            Just(FinanceRecordType::Payment),
            Just(FinanceRecordType::PaymentOut),
            Just(FinanceRecordType::Refund)
        ],
        (text(), text(), number()),
        (option::of(text()), option::of(text()), option::of(text()), option::of(text())),
        timestamp(),
    )
        .prop_map(
            |(
                which,
                action,
                record_type,
                (id, number, amount),
                (cid, cname, sid, sname),
                timestamp,
            )| {
                let finance = Finance {
                    action,
                    record_type,
                    record_id: id,
                    record_number: number,
                    amount,
                    customer_id: cid,
                    customer_name: cname,
                    supplier_id: sid,
                    supplier_name: sname,
                    timestamp,
                    user_id: None,
                };
                match which {
                    0 => Event::FinancePayment(finance),
                    1 => Event::FinanceRefund(finance),
                    _ => Event::FinanceOverdue(finance),
                }
            },
        )
}

fn data_change() -> impl Strategy<Value = Event> {
    (
        prop_oneof![
            Just(DataResource::Product),
            Just(DataResource::Customer),
            Just(DataResource::Supplier),
            Just(DataResource::Category),
            Just(DataResource::User)
        ],
        prop_oneof![
            Just(DataAction::Created),
            Just(DataAction::Updated),
            Just(DataAction::Deleted)
        ],
        text(),
        option::of(text()),
        option::of(json_object()),
        timestamp(),
    )
        .prop_map(|(resource, action, resource_id, resource_name, changes, timestamp)| {
            Event::DataChange(DataChange {
                resource,
                action,
                resource_id,
                resource_name,
                changes,
                timestamp,
                user_id: None,
            })
        })
}

fn system() -> impl Strategy<Value = Event> {
    (
        0..3usize,
        prop_oneof![
            Just(SystemLevel::Info),
            Just(SystemLevel::Warning),
            Just(SystemLevel::Critical)
        ],
        text(),
        option::of(vec(text(), 0..4)),
        option::of(any::<i64>()),
        option::of(any::<i64>()),
        timestamp(),
    )
        .prop_map(
            |(
                which,
                level,
                message,
                affected_users,
                scheduled_time,
                estimated_duration,
                timestamp,
            )| {
                let notice = SystemNotice {
                    level,
                    message,
                    affected_users,
                    scheduled_time,
                    estimated_duration,
                    timestamp,
                    user_id: None,
                };
                match which {
                    0 => Event::SystemMaintenance(notice),
                    1 => Event::SystemUpdate(notice),
                    _ => Event::SystemAlert(notice),
                }
            },
        )
}

fn broadcast() -> impl Strategy<Value = Event> {
    (
        text(),
        prop_oneof![
            Just(BroadcastLevel::Info),
            Just(BroadcastLevel::Success),
            Just(BroadcastLevel::Warning),
            Just(BroadcastLevel::Error)
        ],
        option::of(text()),
        timestamp(),
    )
        .prop_map(|(message, level, title, timestamp)| {
            Event::Broadcast(Broadcast { message, level, title, timestamp, user_id: None })
        })
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        notification(),
        inventory(),
        order(),
        approval(),
        finance(),
        data_change(),
        system(),
        broadcast(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn encoding_then_decoding_any_event_is_the_identity(event in any_event()) {
        let text = event.to_json();
        match decode(text.as_bytes()) {
            Decoded::Typed { event: decoded, .. } => prop_assert_eq!(decoded, event),
            other => prop_assert!(false, "{} decoded as {:?}", text, other),
        }
    }

    #[test]
    fn no_byte_string_panics_the_decoder(bytes in vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn no_json_like_text_panics_the_decoder(
        text in r#"\{("[a-zA-Z:]{0,12}":(-?[0-9.e+]{0,8}|"[^"]{0,8}"|null|true|\[\]|\{\}),?){0,6}\}"#
    ) {
        let _ = decode(text.as_bytes());
    }

    #[test]
    fn dropping_any_required_field_makes_a_typed_event_malformed(event in any_event(), pick in any::<prop::sample::Index>()) {
        let Value::Object(mut object) = serde_json::to_value(&event).unwrap() else { unreachable!() };
        // Fields with defaults or marked optional in protocol.md may go; the rest may not.
        let optional = ["userId", "level", "actionUrl", "actionLabel", "productName", "variantId",
            "reason", "operator", "customerId", "customerName", "approverId", "approverName",
            "comment", "supplierId", "supplierName", "resourceName", "changes", "affectedUsers",
            "scheduledTime", "estimatedDuration", "title", "type"];
        let required: Vec<String> = object.keys()
            .filter(|key| !optional.contains(&key.as_str()) || (key.as_str() == "title" && event.kind() == EventKind::Notification))
            .cloned().collect();
        let field = pick.get(&required).clone();
        object.remove(&field);
        let text = Value::Object(object).to_string();
        match decode(text.as_bytes()) {
            Decoded::Malformed(malformed) => {
                let expected = format!("{}: missing field `{}`", event.kind(), field);
                prop_assert_eq!(malformed.reason, expected);
            }
            other => prop_assert!(false, "{} decoded as {:?}", text, other),
        }
    }
}
