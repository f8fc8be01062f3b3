//! The business events of protocol.md §1, one Rust type per `type`.
//!
//! Field names are the camelCase ones the TypeScript backend sends; closed
//! string sets are enums; `timestamp` is milliseconds since the Unix epoch.
//! Serialising an [`Event`] gives exactly the JSON the backend would publish;
//! reading bytes from Redis goes through [`crate::decode()`], which gives better
//! error messages than a plain `serde_json::from_slice::<Event>`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::js_number;

/// One business event, tagged by its `type` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type")]
pub enum Event {
    /// `notification`: a message for one user, sent on `ws:user:{userId}:notifications`.
    #[serde(rename = "notification")]
    Notification(Notification),
    /// `inventory:change`: a product's stock changed, sent on `ws:inventory`.
    #[serde(rename = "inventory:change")]
    InventoryChange(InventoryChange),
    /// `order:status`: an order changed status, sent on `ws:orders`.
    #[serde(rename = "order:status")]
    OrderStatus(OrderStatus),
    /// `approval:request`: someone asks for an approval, sent on `ws:approvals`.
    #[serde(rename = "approval:request")]
    ApprovalRequest(Approval),
    /// `approval:approved`: a request was approved, sent on `ws:approvals`.
    #[serde(rename = "approval:approved")]
    ApprovalApproved(Approval),
    /// `approval:rejected`: a request was rejected, sent on `ws:approvals`.
    #[serde(rename = "approval:rejected")]
    ApprovalRejected(Approval),
    /// `finance:payment`: a payment record changed, sent on `ws:finance`.
    #[serde(rename = "finance:payment")]
    FinancePayment(Finance),
    /// `finance:refund`: a refund record changed, sent on `ws:finance`.
    #[serde(rename = "finance:refund")]
    FinanceRefund(Finance),
    /// `finance:overdue`: a finance record is past due, sent on `ws:finance`.
    #[serde(rename = "finance:overdue")]
    FinanceOverdue(Finance),
    /// `data:change`: a master-data record was created, updated or deleted, sent
    /// on the channel of its resource (`ws:products`, `ws:customers`,
    /// `ws:suppliers` or `ws:system`).
    #[serde(rename = "data:change")]
    DataChange(DataChange),
    /// `system:maintenance`: planned maintenance, sent on `ws:system`.
    #[serde(rename = "system:maintenance")]
    SystemMaintenance(SystemNotice),
    /// `system:update`: the system was or will be updated, sent on `ws:system`.
    #[serde(rename = "system:update")]
    SystemUpdate(SystemNotice),
    /// `system:alert`: a system-wide alert, sent on `ws:system`.
    #[serde(rename = "system:alert")]
    SystemAlert(SystemNotice),
    /// `broadcast`: a message for everyone, sent on `ws:broadcast`.
    #[serde(rename = "broadcast")]
    Broadcast(Broadcast),
}

/// The value of an event's `type` field, without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum EventKind {
    /// `notification` (payload [`Notification`]).
    #[serde(rename = "notification")]
    Notification,
    /// `inventory:change` (payload [`InventoryChange`]).
    #[serde(rename = "inventory:change")]
    InventoryChange,
    /// `order:status` (payload [`OrderStatus`]).
    #[serde(rename = "order:status")]
    OrderStatus,
    /// `approval:request` (payload [`Approval`]).
    #[serde(rename = "approval:request")]
    ApprovalRequest,
    /// `approval:approved` (payload [`Approval`]).
    #[serde(rename = "approval:approved")]
    ApprovalApproved,
    /// `approval:rejected` (payload [`Approval`]).
    #[serde(rename = "approval:rejected")]
    ApprovalRejected,
    /// `finance:payment` (payload [`Finance`]).
    #[serde(rename = "finance:payment")]
    FinancePayment,
    /// `finance:refund` (payload [`Finance`]).
    #[serde(rename = "finance:refund")]
    FinanceRefund,
    /// `finance:overdue` (payload [`Finance`]).
    #[serde(rename = "finance:overdue")]
    FinanceOverdue,
    /// `data:change` (payload [`DataChange`]).
    #[serde(rename = "data:change")]
    DataChange,
    /// `system:maintenance` (payload [`SystemNotice`]).
    #[serde(rename = "system:maintenance")]
    SystemMaintenance,
    /// `system:update` (payload [`SystemNotice`]).
    #[serde(rename = "system:update")]
    SystemUpdate,
    /// `system:alert` (payload [`SystemNotice`]).
    #[serde(rename = "system:alert")]
    SystemAlert,
    /// `broadcast` (payload [`Broadcast`]).
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
    /// `info`: for information only.
    Info,
    /// `success`: something the user did or waited for succeeded.
    Success,
    /// `warning`: something needs the user's attention.
    Warning,
    /// `error`: something failed.
    Error,
}

/// `notification`: a message for one user, on `user:{userId}:notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `notificationType`: the kind of notification, which sets how it is shown.
    #[cfg_attr(feature = "clap", arg(long))]
    pub notification_type: NotificationType,
    /// Short heading of the notification.
    #[cfg_attr(feature = "clap", arg(long))]
    pub title: String,
    /// Body text of the notification.
    #[cfg_attr(feature = "clap", arg(long))]
    pub message: String,
    /// `actionUrl`: a link the user can follow from the notification; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub action_url: Option<String>,
    /// `actionLabel`: the text of the action link; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub action_label: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    /// `userId`: the recipient, whose `user:{userId}:notifications` channel carries the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub user_id: Option<String>,
}

/// `action` of an inventory change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum InventoryAction {
    /// `adjust`: stock corrected by hand, e.g. after a stocktake.
    Adjust,
    /// `inbound`: stock received.
    Inbound,
    /// `outbound`: stock shipped or issued.
    Outbound,
    /// `reserve`: stock set aside, e.g. for an order.
    Reserve,
    /// `release`: reserved stock made available again.
    Release,
}

/// `inventory:change`: the stock of one product moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct InventoryChange {
    /// What moved the stock.
    #[cfg_attr(feature = "clap", arg(long))]
    pub action: InventoryAction,
    /// `productId`: the product's id in the ERP.
    #[cfg_attr(feature = "clap", arg(long))]
    pub product_id: String,
    /// `oldQuantity`: the quantity before the change (a JSON number).
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    #[cfg_attr(feature = "clap", arg(long, value_parser = crate::args::finite_number, allow_negative_numbers = true))]
    pub old_quantity: f64,
    /// `newQuantity`: the quantity after the change (a JSON number).
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    #[cfg_attr(feature = "clap", arg(long, value_parser = crate::args::finite_number, allow_negative_numbers = true))]
    pub new_quantity: f64,
    /// `newQuantity - oldQuantity` when this project's publisher fills it in.
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub change_amount: f64,
    /// `productName`: the product's display name; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub product_name: Option<String>,
    /// `variantId`: the id of the product variant whose stock changed; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub variant_id: Option<String>,
    /// Why the stock changed, as free text; absent when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub reason: Option<String>,
    /// Who made the change; absent when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub operator: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    /// `userId`: the ERP user the event concerns; absent when the publisher names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `orderType` of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum OrderType {
    /// `sales`: an order from a customer.
    Sales,
    /// `return`: a return of goods.
    Return,
    /// `purchase`: an order placed with a supplier.
    Purchase,
}

/// `order:status`: an order moved from one status to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    /// `orderType`: sales, return or purchase order.
    #[cfg_attr(feature = "clap", arg(long))]
    pub order_type: OrderType,
    /// `orderId`: the order's id in the ERP.
    #[cfg_attr(feature = "clap", arg(long))]
    pub order_id: String,
    /// `orderNumber`: the order's number as users see it.
    #[cfg_attr(feature = "clap", arg(long))]
    pub order_number: String,
    /// `oldStatus`: the status before the change, as the ERP names it.
    #[cfg_attr(feature = "clap", arg(long))]
    pub old_status: String,
    /// `newStatus`: the status after the change, as the ERP names it.
    #[cfg_attr(feature = "clap", arg(long))]
    pub new_status: String,
    /// `customerId`: the ERP id of the order's customer; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub customer_id: Option<String>,
    /// `customerName`: the customer's display name; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub customer_name: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    /// `userId`: the ERP user the event concerns; absent when the publisher names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `resourceType` of an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum ApprovalResource {
    /// `order`: the approval is about an order.
    Order,
    /// `return`: the approval is about a return.
    Return,
    /// `payment`: the approval is about a payment.
    Payment,
    /// `refund`: the approval is about a refund.
    Refund,
    /// `adjustment`: the approval is about an adjustment.
    Adjustment,
}

/// `approval:request`, `approval:approved` and `approval:rejected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `resourceType`: what kind of record the approval is about.
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_type: ApprovalResource,
    /// `resourceId`: the ERP id of the record to approve.
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_id: String,
    /// `resourceNumber`: the record's number as users see it.
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_number: String,
    /// `requesterId`: the ERP user id of who asked for approval; a published
    /// result also notifies this user on their notifications channel.
    #[cfg_attr(feature = "clap", arg(long))]
    pub requester_id: String,
    /// `requesterName`: the display name of who asked for approval.
    #[cfg_attr(feature = "clap", arg(long))]
    pub requester_name: String,
    /// `approverId`: the ERP user id of the approver; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub approver_id: Option<String>,
    /// `approverName`: the approver's display name; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub approver_name: Option<String>,
    /// The reason given for the request or the decision; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub reason: Option<String>,
    /// The approver's comment; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub comment: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    /// `userId`: the ERP user the event concerns; absent when the publisher names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `action` of a finance event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum FinanceAction {
    /// `created`: the record was created.
    Created,
    /// `confirmed`: the record was confirmed.
    Confirmed,
    /// `cancelled`: the record was cancelled.
    Cancelled,
    /// `overdue`: the record is past its due date.
    Overdue,
}

/// `recordType` of a finance event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum FinanceRecordType {
    /// `payment`: money received.
    Payment,
    /// `paymentOut`: money paid out.
    PaymentOut,
    /// `refund`: money given back.
    Refund,
}

/// `finance:payment`, `finance:refund` and `finance:overdue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct Finance {
    /// What happened to the record.
    #[cfg_attr(feature = "clap", arg(long))]
    pub action: FinanceAction,
    /// `recordType`: payment received, payment made or refund.
    #[cfg_attr(feature = "clap", arg(long))]
    pub record_type: FinanceRecordType,
    /// `recordId`: the finance record's id in the ERP.
    #[cfg_attr(feature = "clap", arg(long))]
    pub record_id: String,
    /// `recordNumber`: the record's number as users see it.
    #[cfg_attr(feature = "clap", arg(long))]
    pub record_number: String,
    /// The record's amount as a JSON number, in yuan with cents as the fraction (`12850.5`).
    #[serde(with = "js_number")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    #[cfg_attr(feature = "clap", arg(long, value_parser = crate::args::finite_number, allow_negative_numbers = true))]
    pub amount: f64,
    /// `customerId`: the ERP id of the customer involved; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub customer_id: Option<String>,
    /// `customerName`: the customer's display name; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub customer_name: Option<String>,
    /// `supplierId`: the ERP id of the supplier involved; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub supplier_id: Option<String>,
    /// `supplierName`: the supplier's display name; absent when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub supplier_name: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    /// `userId`: the ERP user the event concerns; absent when the publisher names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `resource` of a data change; it decides the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum DataResource {
    /// `product`: a product, on channel `products`.
    Product,
    /// `customer`: a customer, on channel `customers`.
    Customer,
    /// `supplier`: a supplier, on channel `suppliers`.
    Supplier,
    /// `category`: a product category, on channel `products`.
    Category,
    /// `user`: an ERP user account, on channel `system`.
    User,
}

/// `action` of a data change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum DataAction {
    /// `created`: the record was created.
    Created,
    /// `updated`: the record was changed.
    Updated,
    /// `deleted`: the record was deleted.
    Deleted,
}

/// `data:change`: a master-data record was created, updated or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct DataChange {
    /// What kind of record changed; it decides the channel.
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource: DataResource,
    /// Whether the record was created, updated or deleted.
    #[cfg_attr(feature = "clap", arg(long))]
    pub action: DataAction,
    /// `resourceId`: the changed record's id in the ERP.
    #[cfg_attr(feature = "clap", arg(long))]
    pub resource_id: String,
    /// `resourceName`: the record's display name; absent when not sent.
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
    /// `userId`: the ERP user the event concerns; absent when the publisher names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `level` of a system notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum SystemLevel {
    /// `info`: for information only.
    Info,
    /// `warning`: may affect users' work.
    Warning,
    /// `critical`: serious; needs attention now.
    Critical,
}

/// `system:maintenance`, `system:update` and `system:alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct SystemNotice {
    /// How serious the notice is.
    #[cfg_attr(feature = "clap", arg(long))]
    pub level: SystemLevel,
    /// The text shown to users.
    #[cfg_attr(feature = "clap", arg(long))]
    pub message: String,
    /// `affectedUsers`: ids of the ERP users the notice concerns; absent when it names none.
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
    /// `userId`: the ERP user the event concerns; absent when the publisher names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub user_id: Option<String>,
}

/// `level` of a broadcast; `info` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum BroadcastLevel {
    /// `info`: for information only; the default.
    #[default]
    Info,
    /// `success`: good news.
    Success,
    /// `warning`: something needs attention.
    Warning,
    /// `error`: something failed.
    Error,
}

/// `broadcast`: a message for everyone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "clap", derive(clap::Args), group(skip))]
#[serde(rename_all = "camelCase")]
pub struct Broadcast {
    /// The text shown to everyone.
    #[cfg_attr(feature = "clap", arg(long))]
    pub message: String,
    /// How the message is shown; `info` when absent.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long, default_value = "info"))]
    pub level: BroadcastLevel,
    /// Heading of the message; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub title: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub timestamp: i64,
    /// `userId`: the ERP user the event concerns; absent when the publisher names none.
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
    /// Sent as `approval:approved`.
    Approved,
    /// Sent as `approval:rejected`.
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

    /// The event type this decision is sent as.
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
    /// Sent as `finance:payment`.
    Payment,
    /// Sent as `finance:refund`.
    Refund,
    /// Sent as `finance:overdue`.
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

    /// The event type this is sent as.
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
    /// Sent as `system:maintenance`.
    Maintenance,
    /// Sent as `system:update`.
    Update,
    /// Sent as `system:alert`.
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

    /// The event type this is sent as.
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
    /// The required fields; `actionUrl`, `actionLabel` and `userId` unset, `timestamp` 0.
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
    /// The required fields; `customerId`, `customerName` and `userId` unset, `timestamp` 0.
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
    /// The required fields; approver, `reason`, `comment` and `userId` unset, `timestamp` 0.
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
    /// The required fields; `resourceName`, `changes` and `userId` unset, `timestamp` 0.
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
    /// The required fields; every optional field unset, `timestamp` 0.
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
