//! `tidings publish <kind>`: one event through the library's publishers, then
//! a line saying where it went and how many subscribers received it.
//!
//! Input is checked twice: clap refuses malformed flags (exit 2), and the
//! publisher refuses what the contract forbids (bad user id, malformed raw
//! JSON, an event on the wrong channel; also exit 2). Redis trouble is exit 3.

use std::io::Read;

use tidings::publish::PublishOutcome;
use tidings::{Publisher, PublisherConfig};
use tidings_events::Channel;

use crate::cli::{PublishKind, PublishOptions};
use crate::exit::Exit;

pub(crate) async fn run(redis_url: &str, kind: PublishKind) -> anyhow::Result<Exit> {
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
        PublishKind::Notification { user, notification, .. } => {
            vec![publisher.notify_user(user.as_str(), notification).await]
        }
        PublishKind::Inventory { change, .. } => {
            vec![publisher.publish_inventory_change(change).await]
        }
        PublishKind::Order { order, .. } => vec![publisher.publish_order_status(order).await],
        PublishKind::ApprovalRequest { approval, .. } => {
            vec![publisher.publish_approval_request(approval).await]
        }
        PublishKind::ApprovalResult { decision, approval, .. } => {
            let outcome = publisher.publish_approval_result(decision, approval).await;
            vec![outcome.approval, outcome.notification]
        }
        PublishKind::Finance { kind, record, .. } => {
            vec![publisher.publish_finance_event(kind, record).await]
        }
        PublishKind::DataChange { change, .. } => {
            vec![publisher.publish_data_change(change).await]
        }
        PublishKind::System { kind, notice, .. } => {
            vec![publisher.publish_system_event(kind, notice).await]
        }
        PublishKind::Broadcast { broadcast, .. } => vec![publisher.broadcast(broadcast).await],
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
