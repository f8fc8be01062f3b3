//! Publishing events to Redis the way the ERP backend does, from Rust.
//!
//! A [`Publisher`] owns ONE multiplexed Redis connection, shared by every
//! clone and every concurrent call. It connects lazily, and when the
//! connection breaks it is dropped and the next publish opens a new one, so
//! Redis restarts heal without anyone restarting the publisher.
//!
//! Publishing never fails into business code. Every method returns a
//! [`PublishOutcome`] saying how many subscribers received the message or
//! which [`PublishError`] prevented it, and every failure is logged with
//! `tracing`. Each call is bounded by [`PublisherConfig::timeout`] (1 s by
//! default), connect included: with Redis down or hung, a publish comes back
//! within that time instead of stalling the request that triggered it.
//!
//! All sends go through one private function, `Publisher::send`, so a later
//! change of how a message reaches Redis (an atomic script that also appends
//! to a per-channel stream, say) happens in exactly one place.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tidings_events::event::NotificationType;
pub use tidings_events::event::{
    Approval, ApprovalDecision, Broadcast, DataChange, Finance, FinanceEventType, InventoryChange,
    Notification, OrderStatus, SystemEventType, SystemNotice,
};
use tidings_events::{Channel, Decoded, Event, Malformed, UserId};
use tokio::sync::Mutex;

use crate::history::{History, HistoryConfig, HistoryError};
use crate::redis_url::{Commands, RedisUrl};

mod outcome;
pub use outcome::{ApprovalResultOutcome, ConfigError, PublishError, PublishOutcome};

/// How long a publish may take, connect included, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// After a failed connect, publishes fail at once (without another connect
/// attempt) for this long at first, doubling up to [`MAX_RECONNECT_PAUSE`].
/// This keeps a burst of publishes against a dead Redis from queueing up
/// behind connect attempts, and bounds how long publishing stays off after
/// Redis is back.
const FIRST_RECONNECT_PAUSE: Duration = Duration::from_millis(50);
const MAX_RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// `redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS, or
    /// `redis+unix:///path`.
    pub url: String,
    /// Upper bound for one publish, connecting included.
    pub timeout: Duration,
    /// Record every event in its channel's history, atomically with the
    /// publish, so clients can resume after a disconnect (docs/positions.md).
    /// `None` publishes with a plain `PUBLISH` and gives no positions.
    pub history: Option<HistoryConfig>,
}

impl PublisherConfig {
    /// `url` with the default 1 s timeout and the default history.
    pub fn new(url: impl Into<String>) -> Self {
        PublisherConfig {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            history: Some(HistoryConfig::default()),
        }
    }
}

/// Publishes Tidings events over one shared, self-healing Redis connection.
/// Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Publisher {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The server, or the sentinels that name its master at each connect.
    target: RedisUrl,
    /// For messages: the URL with its password hidden.
    url: String,
    timeout: Duration,
    history: Option<History>,
    link: Mutex<Link>,
    /// Failed publishes since the last success, to log a streak once.
    failures: AtomicU64,
}

/// The connection, or when to try connecting again.
#[derive(Debug, Default)]
struct Link {
    connection: Option<(u64, Commands)>,
    /// Bumped on every new connection, so a failed command only drops the
    /// connection it ran on, not a newer one another call already opened.
    generation: u64,
    retry_at: Option<Instant>,
    pause: Duration,
    last_error: String,
}

impl Publisher {
    /// A publisher for `config.url`. Does not connect yet: the first publish
    /// does, so a publisher can be created while Redis is still starting.
    pub fn new(config: PublisherConfig) -> Result<Self, ConfigError> {
        let PublisherConfig { url: full_url, timeout, history } = config;
        let target = RedisUrl::parse(&full_url)?;
        let url = target.label().to_owned();
        let tls = match target.server() {
            Some(client) => {
                matches!(client.get_connection_info().addr(), redis::ConnectionAddr::TcpTls { .. })
            }
            None => full_url.starts_with("rediss+"),
        };
        if tls {
            crate::tls::ensure_crypto_provider();
        }
        let history = history.map(|history| History::new(history).on(&target));
        Ok(Publisher {
            shared: Arc::new(Shared {
                target,
                url,
                timeout,
                history,
                link: Mutex::new(Link::default()),
                failures: AtomicU64::new(0),
            }),
        })
    }

    /// The Redis URL, password hidden.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The bound on one publish.
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// Publishes `event` on `channel`, refusing an event that protocol.md
    /// does not list for that channel (an `order:status` on `inventory`,
    /// say) so a mistake in business code cannot confuse subscribers.
    pub async fn publish_event(&self, channel: &Channel, event: &Event) -> PublishOutcome {
        let redis_channel = channel.redis_name();
        let payload = event.to_json();
        if !channel.carries(event) {
            let error = PublishError::Invalid(format!(
                "{} does not belong on channel {channel}; protocol.md puts it on {}",
                event.kind(),
                Channel::for_event(event)
                    .map(|c| c.to_string())
                    .unwrap_or_else(|_| "a user channel".into())
            ));
            return Self::refuse(redis_channel, payload, error);
        }
        self.send(redis_channel, payload).await
    }

    /// Publishes JSON text as it is, after checking it with the decoder:
    /// malformed text and typed events on the wrong channel are refused;
    /// legacy objects (an unknown `type`) are sent, as the backend's older
    /// `publishWs` would.
    pub async fn publish_raw(&self, channel: &Channel, json: &str) -> PublishOutcome {
        let redis_channel = channel.redis_name();
        match tidings_events::decode(json.as_bytes()) {
            Decoded::Malformed(Malformed { reason, .. }) => {
                let error = PublishError::Invalid(format!("malformed message: {reason}"));
                Self::refuse(redis_channel, json.to_owned(), error)
            }
            Decoded::Typed { event, .. } if !channel.carries(&event) => {
                let error = PublishError::Invalid(format!(
                    "{} does not belong on channel {channel}",
                    event.kind()
                ));
                Self::refuse(redis_channel, json.to_owned(), error)
            }
            Decoded::Typed { .. } | Decoded::Legacy { .. } => {
                self.send(redis_channel, json.to_owned()).await
            }
        }
    }

    /// Publishes bytes with no check at all. For test traffic (the demo's
    /// `--chaos` mode sends malformed messages on purpose); business code
    /// wants [`Publisher::publish_event`] or [`Publisher::publish_raw`].
    pub async fn publish_unchecked(&self, redis_channel: &str, payload: &str) -> PublishOutcome {
        self.send(redis_channel.to_owned(), payload.to_owned()).await
    }

    /// `notification` on `user:{userId}:notifications`; `userId` and
    /// `timestamp` are filled in.
    pub async fn notify_user(&self, user_id: &str, notification: Notification) -> PublishOutcome {
        let user = match UserId::new(user_id) {
            Ok(user) => user,
            Err(error) => {
                let error = PublishError::Invalid(format!("notification not sent: {error}"));
                return Self::refuse(String::new(), String::new(), error);
            }
        };
        let notification =
            Notification { timestamp: now(), user_id: Some(user.to_string()), ..notification };
        self.publish_event(&Channel::user(user), &Event::Notification(notification)).await
    }

    /// `inventory:change` on `inventory`, with `changeAmount` = new − old
    /// and `timestamp` filled in.
    pub async fn publish_inventory_change(&self, change: InventoryChange) -> PublishOutcome {
        let change = InventoryChange {
            change_amount: change.new_quantity - change.old_quantity,
            timestamp: now(),
            ..change
        };
        self.publish_event(&Channel::Inventory, &Event::InventoryChange(change)).await
    }

    /// `order:status` on `orders`, `timestamp` filled in.
    pub async fn publish_order_status(&self, order: OrderStatus) -> PublishOutcome {
        let order = OrderStatus { timestamp: now(), ..order };
        self.publish_event(&Channel::Orders, &Event::OrderStatus(order)).await
    }

    /// `approval:request` on `approvals`, `timestamp` filled in.
    pub async fn publish_approval_request(&self, approval: Approval) -> PublishOutcome {
        let approval = Approval { timestamp: now(), ..approval };
        self.publish_event(&Channel::Approvals, &Event::ApprovalRequest(approval)).await
    }

    /// `approval:approved` or `approval:rejected` on `approvals`, and a
    /// `notification` telling the requester, on their own channel. The
    /// notification is attempted even if the first publish failed.
    pub async fn publish_approval_result(
        &self,
        decision: ApprovalDecision,
        approval: Approval,
    ) -> ApprovalResultOutcome {
        let notice = requester_notice(decision, &approval);
        let requester = approval.requester_id.clone();
        let event = decision.event(Approval { timestamp: now(), ..approval });
        let approval = self.publish_event(&Channel::Approvals, &event).await;
        let notification = self.notify_user(&requester, notice).await;
        ApprovalResultOutcome { approval, notification }
    }

    /// `finance:payment`, `finance:refund` or `finance:overdue` on `finance`,
    /// `timestamp` filled in.
    pub async fn publish_finance_event(
        &self,
        kind: FinanceEventType,
        record: Finance,
    ) -> PublishOutcome {
        let event = kind.event(Finance { timestamp: now(), ..record });
        self.publish_event(&Channel::Finance, &event).await
    }

    /// `data:change` on the channel of its resource (products, customers,
    /// suppliers, or system for users), `timestamp` filled in.
    pub async fn publish_data_change(&self, change: DataChange) -> PublishOutcome {
        let channel = Channel::for_resource(change.resource);
        let change = DataChange { timestamp: now(), ..change };
        self.publish_event(&channel, &Event::DataChange(change)).await
    }

    /// `system:maintenance`, `system:update` or `system:alert` on `system`,
    /// `timestamp` filled in.
    pub async fn publish_system_event(
        &self,
        kind: SystemEventType,
        notice: SystemNotice,
    ) -> PublishOutcome {
        let event = kind.event(SystemNotice { timestamp: now(), ..notice });
        self.publish_event(&Channel::System, &event).await
    }

    /// `broadcast` on `broadcast`, `timestamp` filled in.
    pub async fn broadcast(&self, message: Broadcast) -> PublishOutcome {
        let message = Broadcast { timestamp: now(), ..message };
        self.publish_event(&Channel::Broadcast, &Event::Broadcast(message)).await
    }

    /// Logs and reports a message refused before sending.
    fn refuse(channel: String, payload: String, error: PublishError) -> PublishOutcome {
        tracing::warn!(channel = %channel, error = %error, "publish refused");
        PublishOutcome::refused(channel, payload, error)
    }

    /// THE send path: every publish ends here. Bounded by the timeout,
    /// connect included; logs the outcome.
    async fn send(&self, channel: String, payload: String) -> PublishOutcome {
        let shared = &self.shared;
        let attempt = async {
            let (generation, mut connection) = self.connection().await?;
            let sent = match &shared.history {
                Some(history) => history
                    .publish(&mut connection, &channel, payload.as_bytes())
                    .await
                    .map(|(position, receivers)| (receivers, Some(position.to_string()))),
                None => redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&payload)
                    .query_async::<u64>(&mut connection)
                    .await
                    .map(|receivers| (receivers, None))
                    .map_err(HistoryError::Redis),
            };
            match sent {
                Ok(sent) => Ok(sent),
                Err(HistoryError::Redis(source)) => {
                    if source.is_unrecoverable_error() || source.is_io_error() {
                        self.forget(generation).await;
                    }
                    Err(PublishError::Redis { url: shared.url.clone(), source })
                }
                Err(HistoryError::Unexpected(reason)) => {
                    Err(PublishError::History { url: shared.url.clone(), reason })
                }
            }
        };
        let result = match tokio::time::timeout(shared.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => {
                // A hung connection is as good as none: start afresh next time.
                self.forget_any().await;
                Err(PublishError::Timeout { url: shared.url.clone(), after: shared.timeout })
            }
        };
        match result {
            Ok((receivers, position)) => {
                let failed = shared.failures.swap(0, Ordering::Relaxed);
                if failed > 0 {
                    tracing::info!(url = %shared.url, failed, "publishing to Redis works again");
                }
                tracing::trace!(channel = %channel, receivers, "published");
                PublishOutcome {
                    channel,
                    payload,
                    receivers: Some(receivers),
                    position,
                    error: None,
                }
            }
            Err(error) => {
                // One warning per streak of failures, so a Redis outage under
                // heavy traffic does not flood the log; the rest at debug.
                if shared.failures.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(channel = %channel, error = %error, "publish failed; further failures are logged at debug level until one succeeds");
                } else {
                    tracing::debug!(channel = %channel, error = %error, "publish failed");
                }
                PublishOutcome::refused(channel, payload, error)
            }
        }
    }

    /// The shared connection, opening one if needed.
    async fn connection(&self) -> Result<(u64, Commands), PublishError> {
        let shared = &self.shared;
        let mut link = shared.link.lock().await;
        if let Some((generation, connection)) = &link.connection {
            return Ok((*generation, connection.clone()));
        }
        if let Some(retry_at) = link.retry_at
            && Instant::now() < retry_at
        {
            return Err(PublishError::Unreachable {
                url: shared.url.clone(),
                reason: link.last_error.clone(),
            });
        }
        match shared.target.connect(shared.timeout).await {
            Ok(connection) => {
                link.generation += 1;
                let generation = link.generation;
                link.connection = Some((generation, connection.clone()));
                link.retry_at = None;
                link.pause = Duration::ZERO;
                Ok((generation, connection))
            }
            Err(error) => {
                link.pause = (link.pause * 2).clamp(FIRST_RECONNECT_PAUSE, MAX_RECONNECT_PAUSE);
                link.retry_at = Some(Instant::now() + link.pause);
                link.last_error = error.to_string();
                Err(PublishError::Unreachable {
                    url: shared.url.clone(),
                    reason: error.to_string(),
                })
            }
        }
    }

    /// Drops connection `generation` if it is still the current one.
    async fn forget(&self, generation: u64) {
        let mut link = self.shared.link.lock().await;
        if link.connection.as_ref().is_some_and(|(current, _)| *current == generation) {
            link.connection = None;
        }
    }

    /// Drops the current connection, whichever it is. Does not wait for the
    /// lock: if another call holds it, that call is (re)connecting anyway.
    async fn forget_any(&self) {
        if let Ok(mut link) = self.shared.link.try_lock() {
            link.connection = None;
        }
    }
}

/// The notification a requester gets about the decision on their request.
fn requester_notice(decision: ApprovalDecision, approval: &Approval) -> Notification {
    let resource = approval.resource_type.as_str();
    let notification_type = match decision {
        ApprovalDecision::Approved => NotificationType::Success,
        ApprovalDecision::Rejected => NotificationType::Warning,
    };
    let verb = decision.as_str();
    let mut message = format!("Your {resource} {} was {verb}", approval.resource_number);
    if let Some(approver) = &approval.approver_name {
        message.push_str(&format!(" by {approver}"));
    }
    if let Some(why) = approval.reason.as_ref().or(approval.comment.as_ref()) {
        message.push_str(&format!(": {why}"));
    }
    let title = match decision {
        ApprovalDecision::Approved => "Approval approved",
        ApprovalDecision::Rejected => "Approval rejected",
    };
    Notification::new(notification_type, title, message)
}

fn now() -> i64 {
    tidings_events::millis_since_epoch(SystemTime::now())
}
