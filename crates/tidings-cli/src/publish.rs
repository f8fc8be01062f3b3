//! `tidings publish <kind>`: one event through the library's publishers, then
//! a line saying where it went and how many subscribers received it.
//!
//! Input is checked twice: clap refuses malformed flags (exit 2), and the
//! publisher refuses what the contract forbids (bad user id, malformed raw
//! JSON, an event on the wrong channel; also exit 2). Redis trouble is exit 3.

use std::io::Read;

use tidings::publish::{
    ApprovalDecision, ApprovalInfo, BroadcastInfo, DataUpdate, FinanceEventType, FinanceUpdate,
    InventoryUpdate, NewNotification, OrderUpdate, PublishOutcome, SystemEventType,
    SystemNoticeInfo,
};
use tidings::{Publisher, PublisherConfig};
use tidings_events::Channel;

use crate::cli::{ApprovalArgs, Decision, FinanceKind, PublishKind, PublishOptions, SystemKind};
use crate::exit::Exit;

pub async fn run(redis_url: &str, kind: PublishKind) -> anyhow::Result<Exit> {
    let options = options_of(&kind).clone();
    let config = PublisherConfig { timeout: options.timeout, ..PublisherConfig::new(redis_url) };
    let publisher = match Publisher::new(config) {
        Ok(publisher) => publisher,
        Err(error) => {
            eprintln!("error: --redis: {error}");
            return Ok(Exit::BadInput);
        }
    };
    let outcomes = match kind {
        PublishKind::Notification {
            user,
            notification_type,
            title,
            message,
            action_url,
            action_label,
            ..
        } => {
            let mut notification = NewNotification::new(notification_type, title, message);
            notification.action_url = action_url;
            notification.action_label = action_label;
            vec![publisher.notify_user(user.as_str(), notification).await]
        }
        PublishKind::Inventory {
            product_id,
            action,
            old_quantity,
            new_quantity,
            product_name,
            variant_id,
            reason,
            operator,
            user_id,
            ..
        } => {
            let mut change = InventoryUpdate::new(action, product_id, old_quantity, new_quantity);
            change.product_name = product_name;
            change.variant_id = variant_id;
            change.reason = reason;
            change.operator = operator;
            change.user_id = user_id;
            vec![publisher.publish_inventory_change(change).await]
        }
        PublishKind::Order {
            order_type,
            order_id,
            order_number,
            old_status,
            new_status,
            customer_id,
            customer_name,
            user_id,
            ..
        } => {
            let mut order =
                OrderUpdate::new(order_type, order_id, order_number, old_status, new_status);
            order.customer_id = customer_id;
            order.customer_name = customer_name;
            order.user_id = user_id;
            vec![publisher.publish_order_status(order).await]
        }
        PublishKind::ApprovalRequest { approval, .. } => {
            vec![publisher.publish_approval_request(approval_info(approval)).await]
        }
        PublishKind::ApprovalResult { decision, approval, .. } => {
            let decision = match decision {
                Decision::Approved => ApprovalDecision::Approved,
                Decision::Rejected => ApprovalDecision::Rejected,
            };
            let outcome =
                publisher.publish_approval_result(decision, approval_info(approval)).await;
            vec![outcome.approval, outcome.notification]
        }
        PublishKind::Finance {
            kind,
            action,
            record_type,
            record_id,
            record_number,
            amount,
            customer_id,
            customer_name,
            supplier_id,
            supplier_name,
            user_id,
            ..
        } => {
            let mut record =
                FinanceUpdate::new(action, record_type, record_id, record_number, amount);
            record.customer_id = customer_id;
            record.customer_name = customer_name;
            record.supplier_id = supplier_id;
            record.supplier_name = supplier_name;
            record.user_id = user_id;
            let kind = match kind {
                FinanceKind::Payment => FinanceEventType::Payment,
                FinanceKind::Refund => FinanceEventType::Refund,
                FinanceKind::Overdue => FinanceEventType::Overdue,
            };
            vec![publisher.publish_finance_event(kind, record).await]
        }
        PublishKind::DataChange {
            resource,
            action,
            resource_id,
            resource_name,
            changes,
            user_id,
            ..
        } => {
            let mut change = DataUpdate::new(resource, action, resource_id);
            change.resource_name = resource_name;
            change.changes = changes;
            change.user_id = user_id;
            vec![publisher.publish_data_change(change).await]
        }
        PublishKind::System {
            kind,
            level,
            message,
            affected_users,
            scheduled_time,
            estimated_duration,
            ..
        } => {
            let mut notice = SystemNoticeInfo::new(level, message);
            notice.affected_users = (!affected_users.is_empty()).then_some(affected_users);
            notice.scheduled_time = scheduled_time;
            notice.estimated_duration = estimated_duration;
            let kind = match kind {
                SystemKind::Maintenance => SystemEventType::Maintenance,
                SystemKind::Update => SystemEventType::Update,
                SystemKind::Alert => SystemEventType::Alert,
            };
            vec![publisher.publish_system_event(kind, notice).await]
        }
        PublishKind::Broadcast { message, level, title, .. } => {
            let mut broadcast = BroadcastInfo::new(message);
            broadcast.level = level;
            broadcast.title = title;
            vec![publisher.broadcast(broadcast).await]
        }
        PublishKind::Raw { channel, json, .. } => {
            let logical = channel.strip_prefix("ws:").unwrap_or(&channel);
            let channel = match Channel::parse(logical) {
                Ok(channel) => channel,
                Err(error) => {
                    eprintln!("error: <CHANNEL>: {error}");
                    return Ok(Exit::BadInput);
                }
            };
            let json = if json == "-" {
                let mut text = String::new();
                if let Err(error) = std::io::stdin().read_to_string(&mut text) {
                    eprintln!("error: <JSON>: cannot read stdin: {error}");
                    return Ok(Exit::BadInput);
                }
                text.trim_end().to_owned()
            } else {
                json
            };
            vec![publisher.publish_raw(&channel, &json).await]
        }
    };
    Ok(report(&outcomes))
}

fn options_of(kind: &PublishKind) -> &PublishOptions {
    match kind {
        PublishKind::Notification { options, .. }
        | PublishKind::Inventory { options, .. }
        | PublishKind::Order { options, .. }
        | PublishKind::ApprovalRequest { options, .. }
        | PublishKind::ApprovalResult { options, .. }
        | PublishKind::Finance { options, .. }
        | PublishKind::DataChange { options, .. }
        | PublishKind::System { options, .. }
        | PublishKind::Broadcast { options, .. }
        | PublishKind::Raw { options, .. } => options,
    }
}

fn approval_info(args: ApprovalArgs) -> ApprovalInfo {
    let mut approval = ApprovalInfo::new(
        args.resource_type,
        args.resource_id,
        args.resource_number,
        args.requester_id,
        args.requester_name,
    );
    approval.approver_id = args.approver_id;
    approval.approver_name = args.approver_name;
    approval.reason = args.reason;
    approval.comment = args.comment;
    approval
}

/// One line per message on stdout (`published to …`, then the JSON), errors
/// on stderr; the exit code of the worst outcome.
fn report(outcomes: &[PublishOutcome]) -> Exit {
    let mut exit = Exit::Success;
    for outcome in outcomes {
        match (&outcome.error, outcome.receivers) {
            (None, receivers) => {
                let receivers = receivers.unwrap_or(0);
                let who = match receivers {
                    0 => "no subscriber was listening".to_owned(),
                    1 => "1 subscriber received it".to_owned(),
                    n => format!("{n} subscribers received it"),
                };
                println!("published to {}: {who}", outcome.channel);
                println!("  {}", outcome.payload);
            }
            (Some(error), _) if error.is_invalid() => {
                eprintln!("error: {error}");
                exit = Exit::BadInput;
            }
            (Some(error), _) => {
                eprintln!("error: {error}");
                eprintln!("hint: start Redis, or point --redis / TIDINGS_REDIS_URL at it");
                if exit == Exit::Success {
                    exit = Exit::Unreachable;
                }
            }
        }
    }
    exit
}
