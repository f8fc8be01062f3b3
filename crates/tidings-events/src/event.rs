//! The business events of protocol.md §1, one Rust type per `type`.
//!
//! Field names are the camelCase ones the TypeScript backend sends; closed
//! string sets are enums; `timestamp` is milliseconds since the Unix epoch.
//! Serialising an [`Event`] gives exactly the JSON the backend would publish;
//! reading bytes from Redis goes through [`crate::decode`], which gives better
//! error messages than a plain `serde_json::from_slice::<Event>`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::js_number;

/// One business event, tagged by its `type` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "notification")]
    Notification(Notification),
    #[serde(rename = "inventory:change")]
    InventoryChange(InventoryChange),
    #[serde(rename = "order:status")]
    OrderStatus(OrderStatus),
    #[serde(rename = "approval:request")]
    ApprovalRequest(Approval),
    #[serde(rename = "approval:approved")]
    ApprovalApproved(Approval),
    #[serde(rename = "approval:rejected")]
    ApprovalRejected(Approval),
    #[serde(rename = "finance:payment")]
    FinancePayment(Finance),
    #[serde(rename = "finance:refund")]
    FinanceRefund(Finance),
    #[serde(rename = "finance:overdue")]
    FinanceOverdue(Finance),
    #[serde(rename = "data:change")]
    DataChange(DataChange),
    #[serde(rename = "system:maintenance")]
    SystemMaintenance(SystemNotice),
    #[serde(rename = "system:update")]
    SystemUpdate(SystemNotice),
    #[serde(rename = "system:alert")]
    SystemAlert(SystemNotice),
    #[serde(rename = "broadcast")]
    Broadcast(Broadcast),
}

/// The value of an event's `type` field, without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum EventKind {
    #[serde(rename = "notification")]
    Notification,
    #[serde(rename = "inventory:change")]
    InventoryChange,
    #[serde(rename = "order:status")]
    OrderStatus,
    #[serde(rename = "approval:request")]
    ApprovalRequest,
    #[serde(rename = "approval:approved")]
    ApprovalApproved,
    #[serde(rename = "approval:rejected")]
    ApprovalRejected,
    #[serde(rename = "finance:payment")]
    FinancePayment,
    #[serde(rename = "finance:refund")]
    FinanceRefund,
    #[serde(rename = "finance:overdue")]
    FinanceOverdue,
    #[serde(rename = "data:change")]
    DataChange,
    #[serde(rename = "system:maintenance")]
    SystemMaintenance,
    #[serde(rename = "system:update")]
    SystemUpdate,
    #[serde(rename = "system:alert")]
    SystemAlert,
    #[serde(rename = "broadcast")]
    Broadcast,
}

impl EventKind {
    /// Every kind, in the order of protocol.md's table.
    pub const ALL: [EventKind; 14] = [
        EventKind::Notification,
        EventKind::InventoryChange,
        EventKind::OrderStatus,
        EventKind::ApprovalRequest,
        EventKind::ApprovalApproved,
        EventKind::ApprovalRejected,
        EventKind::FinancePayment,
        EventKind::FinanceRefund,
        EventKind::FinanceOverdue,
        EventKind::DataChange,
        EventKind::SystemMaintenance,
        EventKind::SystemUpdate,
        EventKind::SystemAlert,
        EventKind::Broadcast,
    ];

    /// The wire name, as in the `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Notification => "notification",
            EventKind::InventoryChange => "inventory:change",
            EventKind::OrderStatus => "order:status",
            EventKind::ApprovalRequest => "approval:request",
            EventKind::ApprovalApproved => "approval:approved",
            EventKind::ApprovalRejected => "approval:rejected",
            EventKind::FinancePayment => "finance:payment",
            EventKind::FinanceRefund => "finance:refund",
            EventKind::FinanceOverdue => "finance:overdue",
            EventKind::DataChange => "data:change",
            EventKind::SystemMaintenance => "system:maintenance",
            EventKind::SystemUpdate => "system:update",
            EventKind::SystemAlert => "system:alert",
            EventKind::Broadcast => "broadcast",
        }
    }

    /// The kind whose wire name is `name`, if it is one of protocol.md's.
    pub fn from_wire(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// The `type` of this event.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Notification(_) => EventKind::Notification,
            Event::InventoryChange(_) => EventKind::InventoryChange,
            Event::OrderStatus(_) => EventKind::OrderStatus,
            Event::ApprovalRequest(_) => EventKind::ApprovalRequest,
            Event::ApprovalApproved(_) => EventKind::ApprovalApproved,
            Event::ApprovalRejected(_) => EventKind::ApprovalRejected,
            Event::FinancePayment(_) => EventKind::FinancePayment,
            Event::FinanceRefund(_) => EventKind::FinanceRefund,
            Event::FinanceOverdue(_) => EventKind::FinanceOverdue,
            Event::DataChange(_) => EventKind::DataChange,
            Event::SystemMaintenance(_) => EventKind::SystemMaintenance,
            Event::SystemUpdate(_) => EventKind::SystemUpdate,
            Event::SystemAlert(_) => EventKind::SystemAlert,
            Event::Broadcast(_) => EventKind::Broadcast,
        }
    }

    /// Milliseconds since the Unix epoch at which the event happened.
    pub fn timestamp(&self) -> i64 {
        self.common().0
    }

    /// The `userId` the event carries, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.common().1.as_deref()
    }

    /// `timestamp` and `userId`, which every payload has. They are plain
    /// fields of each payload rather than a flattened struct because serde's
    /// `flatten` loses the field name in error messages.
    fn common(&self) -> (i64, &Option<String>) {
        match self {
            Event::Notification(e) => (e.timestamp, &e.user_id),
            Event::InventoryChange(e) => (e.timestamp, &e.user_id),
            Event::OrderStatus(e) => (e.timestamp, &e.user_id),
            Event::ApprovalRequest(e) | Event::ApprovalApproved(e) | Event::ApprovalRejected(e) => {
                (e.timestamp, &e.user_id)
            }
            Event::FinancePayment(e) | Event::FinanceRefund(e) | Event::FinanceOverdue(e) => {
                (e.timestamp, &e.user_id)
            }
            Event::DataChange(e) => (e.timestamp, &e.user_id),
            Event::SystemMaintenance(e) | Event::SystemUpdate(e) | Event::SystemAlert(e) => {
                (e.timestamp, &e.user_id)
            }
            Event::Broadcast(e) => (e.timestamp, &e.user_id),
        }
    }

    /// The event as the JSON text a publisher sends.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string and
        // every number is finite or written as `null` by serde_json.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// `notificationType` of a user notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum NotificationType {
    Info,
    Success,
    Warning,
    Error,
}

/// `notification`: a message for one user, on `user:{userId}:notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[cfg_attr(feature = "clap", arg(long))]
    pub notification_type: NotificationType,
    #[cfg_attr(feature = "clap", arg(long))]
    pub title: String,
    #[cfg_attr(feature = "clap", arg(long))]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub action_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub action_label: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub user_id: Option<String>,
}

/// `action` of an inventory change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum InventoryAction {
    Adjust,
    Inbound,
    Outbound,
    Reserve,
    Release,
}

/// `inventory:change`: the stock of one product moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct InventoryChange {
    #[cfg_attr(feature = "clap", arg(long))]
    pub action: InventoryAction,
    #[cfg_attr(feature = "clap", arg(long))]
    pub product_id: String,
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    #[cfg_attr(feature = "clap", arg(long, value_parser = crate::args::finite_number, allow_negative_numbers = true))]
    pub old_quantity: f64,
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    #[cfg_attr(feature = "clap", arg(long, value_parser = crate::args::finite_number, allow_negative_numbers = true))]
    pub new_quantity: f64,
    /// `newQuantity - oldQuantity` when this project's publisher fills it in.
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub change_amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub variant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub operator: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `orderType` of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum OrderType {
    Sales,
    Return,
    Purchase,
}

/// `order:status`: an order moved from one status to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    #[cfg_attr(feature = "clap", arg(long))]
    pub order_type: OrderType,
    #[cfg_attr(feature = "clap", arg(long))]
    pub order_id: String,
    #[cfg_attr(feature = "clap", arg(long))]
    pub order_number: String,
    #[cfg_attr(feature = "clap", arg(long))]
    pub old_status: String,
    #[cfg_attr(feature = "clap", arg(long))]
    pub new_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub customer_name: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `resourceType` of an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum ApprovalResource {
    Order,
    Return,
    Payment,
    Refund,
    Adjustment,
}

/// `approval:request`, `approval:approved` and `approval:rejected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_type: ApprovalResource,
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_id: String,
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_number: String,
    #[cfg_attr(feature = "clap", arg(long))]
    pub requester_id: String,
    #[cfg_attr(feature = "clap", arg(long))]
    pub requester_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub approver_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub approver_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub comment: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `action` of a finance event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum FinanceAction {
    Created,
    Confirmed,
    Cancelled,
    Overdue,
}

/// `recordType` of a finance event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum FinanceRecordType {
    Payment,
    PaymentOut,
    Refund,
}

/// `finance:payment`, `finance:refund` and `finance:overdue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct Finance {
    #[cfg_attr(feature = "clap", arg(long))]
    pub action: FinanceAction,
    #[cfg_attr(feature = "clap", arg(long))]
    pub record_type: FinanceRecordType,
    #[cfg_attr(feature = "clap", arg(long))]
    pub record_id: String,
    #[cfg_attr(feature = "clap", arg(long))]
    pub record_number: String,
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    #[cfg_attr(feature = "clap", arg(long, value_parser = crate::args::finite_number, allow_negative_numbers = true))]
    pub amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub supplier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub supplier_name: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `resource` of a data change; it decides the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum DataResource {
    Product,
    Customer,
    Supplier,
    Category,
    User,
}

/// `action` of a data change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum DataAction {
    Created,
    Updated,
    Deleted,
}

/// `data:change`: a master-data record was created, updated or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct DataChange {
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource: DataResource,
    #[cfg_attr(feature = "clap", arg(long))]
    pub action: DataAction,
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_name: Option<String>,
    /// Any JSON object describing what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long, value_parser = crate::args::json_object))]
    pub changes: Option<Map<String, Value>>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `level` of a system notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum SystemLevel {
    Info,
    Warning,
    Critical,
}

/// `system:maintenance`, `system:update` and `system:alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct SystemNotice {
    #[cfg_attr(feature = "clap", arg(long))]
    pub level: SystemLevel,
    #[cfg_attr(feature = "clap", arg(long))]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long = "affected-user"))]
    pub affected_users: Option<Vec<String>>,
    /// Milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub scheduled_time: Option<i64>,
    /// Milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub estimated_duration: Option<i64>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `level` of a broadcast; `info` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum BroadcastLevel {
    #[default]
    Info,
    Success,
    Warning,
    Error,
}

/// `broadcast`: a message for everyone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct Broadcast {
    #[cfg_attr(feature = "clap", arg(long))]
    pub message: String,
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long, default_value = "info"))]
    pub level: BroadcastLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub title: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `as_str()`, `Display`, `FromStr` and `ALL` for a closed string set, with
/// the wire spelling given once next to each variant.
macro_rules! wire_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The wire spelling, as serde writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// So `--flag` help lists the wire spellings and clap refuses others.
        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                $ty::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.as_str()))
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            /// Accepts exactly the wire spelling; the error reads like
            /// serde's (`unknown variant `x`, expected one of `a`, `b``).
            fn from_str(text: &str) -> Result<Self, String> {
                $ty::ALL.iter().copied().find(|value| value.as_str() == text).ok_or_else(|| {
                    let expected: Vec<String> =
                        $ty::ALL.iter().map(|value| format!("`{}`", value.as_str())).collect();
                    format!("unknown variant `{text}`, expected one of {}", expected.join(", "))
                })
            }
        }
    };
}

wire_names!(NotificationType { Info => "info", Success => "success", Warning => "warning", Error => "error" });
wire_names!(InventoryAction {
    Adjust => "adjust",
    Inbound => "inbound",
    Outbound => "outbound",
    Reserve => "reserve",
    Release => "release",
});
wire_names!(OrderType { Sales => "sales", Return => "return", Purchase => "purchase" });
wire_names!(ApprovalResource {
    Order => "order",
    Return => "return",
    Payment => "payment",
    Refund => "refund",
    Adjustment => "adjustment",
});
wire_names!(FinanceAction {
    Created => "created",
    Confirmed => "confirmed",
    Cancelled => "cancelled",
    Overdue => "overdue",
});
wire_names!(FinanceRecordType { Payment => "payment", PaymentOut => "paymentOut", Refund => "refund" });
wire_names!(DataResource {
    Product => "product",
    Customer => "customer",
    Supplier => "supplier",
    Category => "category",
    User => "user",
});
wire_names!(DataAction { Created => "created", Updated => "updated", Deleted => "deleted" });
wire_names!(SystemLevel { Info => "info", Warning => "warning", Critical => "critical" });
wire_names!(BroadcastLevel { Info => "info", Success => "success", Warning => "warning", Error => "error" });

/// The decision on an approval: which of `approval:approved` and
/// `approval:rejected` it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ApprovalDecision {
    Approved,
    Rejected,
}

impl ApprovalDecision {
    /// The event this decision on `approval` is.
    pub fn event(self, approval: Approval) -> Event {
        match self {
            ApprovalDecision::Approved => Event::ApprovalApproved(approval),
            ApprovalDecision::Rejected => Event::ApprovalRejected(approval),
        }
    }

    /// `approved` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalDecision::Approved => "approved",
            ApprovalDecision::Rejected => "rejected",
        }
    }

    pub fn kind(self) -> EventKind {
        match self {
            ApprovalDecision::Approved => EventKind::ApprovalApproved,
            ApprovalDecision::Rejected => EventKind::ApprovalRejected,
        }
    }
}

/// Which of the three finance events a [`Finance`] payload is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FinanceEventType {
    Payment,
    Refund,
    Overdue,
}

impl FinanceEventType {
    /// The event `finance` is as this type.
    pub fn event(self, finance: Finance) -> Event {
        match self {
            FinanceEventType::Payment => Event::FinancePayment(finance),
            FinanceEventType::Refund => Event::FinanceRefund(finance),
            FinanceEventType::Overdue => Event::FinanceOverdue(finance),
        }
    }

    /// The wire `type` (`finance:payment`, …).
    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }

    pub fn kind(self) -> EventKind {
        match self {
            FinanceEventType::Payment => EventKind::FinancePayment,
            FinanceEventType::Refund => EventKind::FinanceRefund,
            FinanceEventType::Overdue => EventKind::FinanceOverdue,
        }
    }
}

/// Which of the three system events a [`SystemNotice`] is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SystemEventType {
    Maintenance,
    Update,
    Alert,
}

impl SystemEventType {
    /// The event `notice` is as this type.
    pub fn event(self, notice: SystemNotice) -> Event {
        match self {
            SystemEventType::Maintenance => Event::SystemMaintenance(notice),
            SystemEventType::Update => Event::SystemUpdate(notice),
            SystemEventType::Alert => Event::SystemAlert(notice),
        }
    }

    /// The wire `type` (`system:maintenance`, …).
    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }

    pub fn kind(self) -> EventKind {
        match self {
            SystemEventType::Maintenance => EventKind::SystemMaintenance,
            SystemEventType::Update => EventKind::SystemUpdate,
            SystemEventType::Alert => EventKind::SystemAlert,
        }
    }
}

// Constructors: the required fields as arguments, every optional field
// `None`, `timestamp` 0 (publishers stamp it when they send). Optional
// fields are set by assignment, so adding one touches this file only.

impl Notification {
    pub fn new(
        notification_type: NotificationType,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Notification {
            notification_type,
            title: title.into(),
            message: message.into(),
            action_url: None,
            action_label: None,
            timestamp: 0,
            user_id: None,
        }
    }
}

impl InventoryChange {
    /// `changeAmount` is `new_quantity - old_quantity`.
    pub fn new(
        action: InventoryAction,
        product_id: impl Into<String>,
        old_quantity: f64,
        new_quantity: f64,
    ) -> Self {
        InventoryChange {
            action,
            product_id: product_id.into(),
            old_quantity,
            new_quantity,
            change_amount: new_quantity - old_quantity,
            product_name: None,
            variant_id: None,
            reason: None,
            operator: None,
            timestamp: 0,
            user_id: None,
        }
    }
}

impl OrderStatus {
    pub fn new(
        order_type: OrderType,
        order_id: impl Into<String>,
        order_number: impl Into<String>,
        old_status: impl Into<String>,
        new_status: impl Into<String>,
    ) -> Self {
        OrderStatus {
            order_type,
            order_id: order_id.into(),
            order_number: order_number.into(),
            old_status: old_status.into(),
            new_status: new_status.into(),
            customer_id: None,
            customer_name: None,
            timestamp: 0,
            user_id: None,
        }
    }
}

impl Approval {
    pub fn new(
        resource_type: ApprovalResource,
        resource_id: impl Into<String>,
        resource_number: impl Into<String>,
        requester_id: impl Into<String>,
        requester_name: impl Into<String>,
    ) -> Self {
        Approval {
            resource_type,
            resource_id: resource_id.into(),
            resource_number: resource_number.into(),
            requester_id: requester_id.into(),
            requester_name: requester_name.into(),
            approver_id: None,
            approver_name: None,
            reason: None,
            comment: None,
            timestamp: 0,
            user_id: None,
        }
    }
}

impl Finance {
    /// `amount` in yuan, cents as the fraction (`12850.5`).
    pub fn new(
        action: FinanceAction,
        record_type: FinanceRecordType,
        record_id: impl Into<String>,
        record_number: impl Into<String>,
        amount: f64,
    ) -> Self {
        Finance {
            action,
            record_type,
            record_id: record_id.into(),
            record_number: record_number.into(),
            amount,
            customer_id: None,
            customer_name: None,
            supplier_id: None,
            supplier_name: None,
            timestamp: 0,
            user_id: None,
        }
    }
}

impl DataChange {
    pub fn new(resource: DataResource, action: DataAction, resource_id: impl Into<String>) -> Self {
        DataChange {
            resource,
            action,
            resource_id: resource_id.into(),
            resource_name: None,
            changes: None,
            timestamp: 0,
            user_id: None,
        }
    }
}

impl SystemNotice {
    pub fn new(level: SystemLevel, message: impl Into<String>) -> Self {
        SystemNotice {
            level,
            message: message.into(),
            affected_users: None,
            scheduled_time: None,
            estimated_duration: None,
            timestamp: 0,
            user_id: None,
        }
    }
}

impl Broadcast {
    /// Level `info`.
    pub fn new(message: impl Into<String>) -> Self {
        Broadcast {
            message: message.into(),
            level: BroadcastLevel::Info,
            title: None,
            timestamp: 0,
            user_id: None,
        }
    }
}
