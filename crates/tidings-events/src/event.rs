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
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub notification_type: NotificationType,
    pub title: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_label: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[serde(rename_all = "camelCase")]
pub struct InventoryChange {
    pub action: InventoryAction,
    pub product_id: String,
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub old_quantity: f64,
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub new_quantity: f64,
    /// `newQuantity - oldQuantity` when this project's publisher fills it in.
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub change_amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    pub order_type: OrderType,
    pub order_id: String,
    pub order_number: String,
    pub old_status: String,
    pub new_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub resource_type: ApprovalResource,
    pub resource_id: String,
    pub resource_number: String,
    pub requester_id: String,
    pub requester_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[serde(rename_all = "camelCase")]
pub struct Finance {
    pub action: FinanceAction,
    pub record_type: FinanceRecordType,
    pub record_id: String,
    pub record_number: String,
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier_name: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[serde(rename_all = "camelCase")]
pub struct DataChange {
    pub resource: DataResource,
    pub action: DataAction,
    pub resource_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Any JSON object describing what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Map<String, Value>>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[serde(rename_all = "camelCase")]
pub struct SystemNotice {
    pub level: SystemLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_users: Option<Vec<String>>,
    /// Milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<i64>,
    /// Milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_duration: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[serde(rename_all = "camelCase")]
pub struct Broadcast {
    pub message: String,
    #[serde(default)]
    pub level: BroadcastLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}
