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
//! All sends go through one private function, [`Publisher::send`], so a later
//! change of how a message reaches Redis (an atomic script that also appends
//! to a per-channel stream, say) happens in exactly one place.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use redis::aio::MultiplexedConnection;
use serde_json::{Map, Value};
use tidings_events::event::{
    Approval, ApprovalResource, Broadcast, BroadcastLevel, DataAction, DataChange, DataResource,
    Finance, FinanceAction, FinanceRecordType, InventoryAction, InventoryChange, Notification,
    NotificationType, OrderStatus, OrderType, SystemLevel, SystemNotice,
};
use tidings_events::{Channel, Decoded, Event, Malformed, UserId};
use tokio::sync::Mutex;

use crate::history::{History, HistoryConfig, HistoryError};
use crate::redact::redact_url;

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

/// Why a publisher could not even be created: its URL is unusable.
#[derive(Debug, thiserror::Error)]
#[error(
    "Redis URL {url} is not usable: {source}. Expected redis://[:password@]host[:port][/db] or rediss://… for TLS"
)]
pub struct ConfigError {
    /// The URL, password hidden.
    pub url: String,
    #[source]
    pub source: redis::RedisError,
}

/// Why one publish did not reach Redis.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message was refused before it was sent: bad user id, a typed
    /// event on a channel that does not carry it, malformed JSON, …
    #[error("not sent: {0}")]
    Invalid(String),
    /// Redis could not be reached.
    #[error("cannot reach Redis at {url}: {reason}. Is redis-server running there?")]
    Unreachable { url: String, reason: String },
    /// Redis answered with an error, or the connection broke mid-command.
    #[error("Redis at {url} failed the publish: {source}")]
    Redis {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// The history script answered something this version does not
    /// understand (a different Tidings version wrote the keys?).
    #[error("Redis at {url} failed the history script: {reason}")]
    History { url: String, reason: String },
    /// No answer within the configured bound.
    #[error(
        "publish to Redis at {url} did not finish within {after:?}; Redis may be down or overloaded"
    )]
    Timeout { url: String, after: Duration },
}

impl PublishError {
    /// Whether the fault is in the message itself (retrying will not help),
    /// rather than in reaching Redis.
    pub fn is_invalid(&self) -> bool {
        matches!(self, PublishError::Invalid(_))
    }
}

/// What became of one publish.
#[derive(Debug)]
#[non_exhaustive]
pub struct PublishOutcome {
    /// The Redis channel, e.g. `ws:inventory` (empty if the channel itself
    /// was invalid).
    pub channel: String,
    /// The exact text sent (or that would have been sent).
    pub payload: String,
    /// How many subscribers Redis delivered it to; `None` if not published.
    pub receivers: Option<u64>,
    /// Where it was recorded in the channel's history (`EPOCH:MILLIS-SEQ`);
    /// `None` without history or if not published.
    pub position: Option<String>,
    /// Why it was not published.
    pub error: Option<PublishError>,
}

impl PublishOutcome {
    /// Whether Redis accepted the message (even with no subscriber).
    pub fn is_published(&self) -> bool {
        self.error.is_none()
    }

    /// The subscriber count or the error, for `?`-style handling.
    pub fn result(&self) -> Result<u64, &PublishError> {
        match (&self.error, self.receivers) {
            (Some(error), _) => Err(error),
            (None, receivers) => Ok(receivers.unwrap_or(0)),
        }
    }

    fn refused(channel: String, payload: String, error: PublishError) -> Self {
        PublishOutcome { channel, payload, receivers: None, position: None, error: Some(error) }
    }
}

/// What became of an approval result: the event on `approvals` and the
/// notification to the requester. Each can fail on its own.
#[derive(Debug)]
pub struct ApprovalResultOutcome {
    pub approval: PublishOutcome,
    pub notification: PublishOutcome,
}

impl ApprovalResultOutcome {
    pub fn is_published(&self) -> bool {
        self.approval.is_published() && self.notification.is_published()
    }
}

/// The decision in [`Publisher::publish_approval_result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalDecision {
    Approved,
    Rejected,
}

/// The `type` of a finance event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinanceEventType {
    Payment,
    Refund,
    Overdue,
}

/// The `type` of a system notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemEventType {
    Maintenance,
    Update,
    Alert,
}

/// A notification for [`Publisher::notify_user`]; the user id is passed apart.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub notification_type: NotificationType,
    pub title: String,
    pub message: String,
    pub action_url: Option<String>,
    pub action_label: Option<String>,
}

impl NewNotification {
    pub fn new(
        notification_type: NotificationType,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        NewNotification {
            notification_type,
            title: title.into(),
            message: message.into(),
            action_url: None,
            action_label: None,
        }
    }
}

/// A stock movement for [`Publisher::publish_inventory_change`]; the
/// publisher fills in `changeAmount` and `timestamp`.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryUpdate {
    pub action: InventoryAction,
    pub product_id: String,
    pub old_quantity: f64,
    pub new_quantity: f64,
    pub product_name: Option<String>,
    pub variant_id: Option<String>,
    pub reason: Option<String>,
    pub operator: Option<String>,
    pub user_id: Option<String>,
}

impl InventoryUpdate {
    pub fn new(
        action: InventoryAction,
        product_id: impl Into<String>,
        old_quantity: f64,
        new_quantity: f64,
    ) -> Self {
        InventoryUpdate {
            action,
            product_id: product_id.into(),
            old_quantity,
            new_quantity,
            product_name: None,
            variant_id: None,
            reason: None,
            operator: None,
            user_id: None,
        }
    }
}

/// An order status change for [`Publisher::publish_order_status`].
#[derive(Debug, Clone, PartialEq)]
pub struct OrderUpdate {
    pub order_type: OrderType,
    pub order_id: String,
    pub order_number: String,
    pub old_status: String,
    pub new_status: String,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub user_id: Option<String>,
}

impl OrderUpdate {
    pub fn new(
        order_type: OrderType,
        order_id: impl Into<String>,
        order_number: impl Into<String>,
        old_status: impl Into<String>,
        new_status: impl Into<String>,
    ) -> Self {
        OrderUpdate {
            order_type,
            order_id: order_id.into(),
            order_number: order_number.into(),
            old_status: old_status.into(),
            new_status: new_status.into(),
            customer_id: None,
            customer_name: None,
            user_id: None,
        }
    }
}

/// An approval for [`Publisher::publish_approval_request`] and
/// [`Publisher::publish_approval_result`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalInfo {
    pub resource_type: ApprovalResource,
    pub resource_id: String,
    pub resource_number: String,
    pub requester_id: String,
    pub requester_name: String,
    pub approver_id: Option<String>,
    pub approver_name: Option<String>,
    pub reason: Option<String>,
    pub comment: Option<String>,
    pub user_id: Option<String>,
}

impl ApprovalInfo {
    pub fn new(
        resource_type: ApprovalResource,
        resource_id: impl Into<String>,
        resource_number: impl Into<String>,
        requester_id: impl Into<String>,
        requester_name: impl Into<String>,
    ) -> Self {
        ApprovalInfo {
            resource_type,
            resource_id: resource_id.into(),
            resource_number: resource_number.into(),
            requester_id: requester_id.into(),
            requester_name: requester_name.into(),
            approver_id: None,
            approver_name: None,
            reason: None,
            comment: None,
            user_id: None,
        }
    }
}

/// A finance record change for [`Publisher::publish_finance_event`].
#[derive(Debug, Clone, PartialEq)]
pub struct FinanceUpdate {
    pub action: FinanceAction,
    pub record_type: FinanceRecordType,
    pub record_id: String,
    pub record_number: String,
    /// In yuan, with cents as the fraction (`12850.5`).
    pub amount: f64,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub supplier_id: Option<String>,
    pub supplier_name: Option<String>,
    pub user_id: Option<String>,
}

impl FinanceUpdate {
    pub fn new(
        action: FinanceAction,
        record_type: FinanceRecordType,
        record_id: impl Into<String>,
        record_number: impl Into<String>,
        amount: f64,
    ) -> Self {
        FinanceUpdate {
            action,
            record_type,
            record_id: record_id.into(),
            record_number: record_number.into(),
            amount,
            customer_id: None,
            customer_name: None,
            supplier_id: None,
            supplier_name: None,
            user_id: None,
        }
    }
}

/// A master-data change for [`Publisher::publish_data_change`].
#[derive(Debug, Clone, PartialEq)]
pub struct DataUpdate {
    pub resource: DataResource,
    pub action: DataAction,
    pub resource_id: String,
    pub resource_name: Option<String>,
    pub changes: Option<Map<String, Value>>,
    pub user_id: Option<String>,
}

impl DataUpdate {
    pub fn new(resource: DataResource, action: DataAction, resource_id: impl Into<String>) -> Self {
        DataUpdate {
            resource,
            action,
            resource_id: resource_id.into(),
            resource_name: None,
            changes: None,
            user_id: None,
        }
    }
}

/// A system notice for [`Publisher::publish_system_event`].
#[derive(Debug, Clone, PartialEq)]
pub struct SystemNoticeInfo {
    pub level: SystemLevel,
    pub message: String,
    pub affected_users: Option<Vec<String>>,
    /// Milliseconds since the Unix epoch.
    pub scheduled_time: Option<i64>,
    /// Milliseconds.
    pub estimated_duration: Option<i64>,
    pub user_id: Option<String>,
}

impl SystemNoticeInfo {
    pub fn new(level: SystemLevel, message: impl Into<String>) -> Self {
        SystemNoticeInfo {
            level,
            message: message.into(),
            affected_users: None,
            scheduled_time: None,
            estimated_duration: None,
            user_id: None,
        }
    }
}

/// A broadcast for [`Publisher::broadcast`].
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastInfo {
    pub message: String,
    pub level: BroadcastLevel,
    pub title: Option<String>,
    pub user_id: Option<String>,
}

impl BroadcastInfo {
    pub fn new(message: impl Into<String>) -> Self {
        BroadcastInfo {
            message: message.into(),
            level: BroadcastLevel::Info,
            title: None,
            user_id: None,
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
    client: redis::Client,
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
    connection: Option<(u64, MultiplexedConnection)>,
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
        let url = redact_url(&config.url);
        let client = redis::Client::open(config.url.as_str())
            .map_err(|source| ConfigError { url: url.clone(), source })?;
        if matches!(client.get_connection_info().addr(), redis::ConnectionAddr::TcpTls { .. }) {
            crate::tls::ensure_crypto_provider();
        }
        Ok(Publisher {
            shared: Arc::new(Shared {
                client,
                url,
                timeout: config.timeout,
                history: config.history.map(History::new),
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
            return self.refuse(redis_channel, payload, error);
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
                self.refuse(redis_channel, json.to_owned(), error)
            }
            Decoded::Typed { event, .. } if !channel.carries(&event) => {
                let error = PublishError::Invalid(format!(
                    "{} does not belong on channel {channel}",
                    event.kind()
                ));
                self.refuse(redis_channel, json.to_owned(), error)
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

    /// `notification` on `user:{userId}:notifications`.
    pub async fn notify_user(
        &self,
        user_id: &str,
        notification: NewNotification,
    ) -> PublishOutcome {
        let user = match UserId::new(user_id) {
            Ok(user) => user,
            Err(error) => {
                let error = PublishError::Invalid(format!("notification not sent: {error}"));
                return self.refuse(String::new(), String::new(), error);
            }
        };
        let event = Event::Notification(Notification {
            notification_type: notification.notification_type,
            title: notification.title,
            message: notification.message,
            action_url: notification.action_url,
            action_label: notification.action_label,
            timestamp: now(),
            user_id: Some(user.to_string()),
        });
        self.publish_event(&Channel::user(user), &event).await
    }

    /// `inventory:change` on `inventory`, with `changeAmount` = new − old.
    pub async fn publish_inventory_change(&self, change: InventoryUpdate) -> PublishOutcome {
        let event = Event::InventoryChange(InventoryChange {
            action: change.action,
            product_id: change.product_id,
            old_quantity: change.old_quantity,
            new_quantity: change.new_quantity,
            change_amount: change.new_quantity - change.old_quantity,
            product_name: change.product_name,
            variant_id: change.variant_id,
            reason: change.reason,
            operator: change.operator,
            timestamp: now(),
            user_id: change.user_id,
        });
        self.publish_event(&Channel::Inventory, &event).await
    }

    /// `order:status` on `orders`.
    pub async fn publish_order_status(&self, order: OrderUpdate) -> PublishOutcome {
        let event = Event::OrderStatus(OrderStatus {
            order_type: order.order_type,
            order_id: order.order_id,
            order_number: order.order_number,
            old_status: order.old_status,
            new_status: order.new_status,
            customer_id: order.customer_id,
            customer_name: order.customer_name,
            timestamp: now(),
            user_id: order.user_id,
        });
        self.publish_event(&Channel::Orders, &event).await
    }

    /// `approval:request` on `approvals`.
    pub async fn publish_approval_request(&self, approval: ApprovalInfo) -> PublishOutcome {
        let event = Event::ApprovalRequest(approval_payload(approval));
        self.publish_event(&Channel::Approvals, &event).await
    }

    /// `approval:approved` or `approval:rejected` on `approvals`, and a
    /// `notification` telling the requester, on their own channel. The
    /// notification is attempted even if the first publish failed.
    pub async fn publish_approval_result(
        &self,
        decision: ApprovalDecision,
        approval: ApprovalInfo,
    ) -> ApprovalResultOutcome {
        let notice = requester_notice(decision, &approval);
        let requester = approval.requester_id.clone();
        let payload = approval_payload(approval);
        let event = match decision {
            ApprovalDecision::Approved => Event::ApprovalApproved(payload),
            ApprovalDecision::Rejected => Event::ApprovalRejected(payload),
        };
        let approval = self.publish_event(&Channel::Approvals, &event).await;
        let notification = self.notify_user(&requester, notice).await;
        ApprovalResultOutcome { approval, notification }
    }

    /// `finance:payment`, `finance:refund` or `finance:overdue` on `finance`.
    pub async fn publish_finance_event(
        &self,
        kind: FinanceEventType,
        record: FinanceUpdate,
    ) -> PublishOutcome {
        let payload = Finance {
            action: record.action,
            record_type: record.record_type,
            record_id: record.record_id,
            record_number: record.record_number,
            amount: record.amount,
            customer_id: record.customer_id,
            customer_name: record.customer_name,
            supplier_id: record.supplier_id,
            supplier_name: record.supplier_name,
            timestamp: now(),
            user_id: record.user_id,
        };
        let event = match kind {
            FinanceEventType::Payment => Event::FinancePayment(payload),
            FinanceEventType::Refund => Event::FinanceRefund(payload),
            FinanceEventType::Overdue => Event::FinanceOverdue(payload),
        };
        self.publish_event(&Channel::Finance, &event).await
    }

    /// `data:change` on the channel of its resource (products, customers,
    /// suppliers, or system for users).
    pub async fn publish_data_change(&self, change: DataUpdate) -> PublishOutcome {
        let channel = Channel::for_resource(change.resource);
        let event = Event::DataChange(DataChange {
            resource: change.resource,
            action: change.action,
            resource_id: change.resource_id,
            resource_name: change.resource_name,
            changes: change.changes,
            timestamp: now(),
            user_id: change.user_id,
        });
        self.publish_event(&channel, &event).await
    }

    /// `system:maintenance`, `system:update` or `system:alert` on `system`.
    pub async fn publish_system_event(
        &self,
        kind: SystemEventType,
        notice: SystemNoticeInfo,
    ) -> PublishOutcome {
        let payload = SystemNotice {
            level: notice.level,
            message: notice.message,
            affected_users: notice.affected_users,
            scheduled_time: notice.scheduled_time,
            estimated_duration: notice.estimated_duration,
            timestamp: now(),
            user_id: notice.user_id,
        };
        let event = match kind {
            SystemEventType::Maintenance => Event::SystemMaintenance(payload),
            SystemEventType::Update => Event::SystemUpdate(payload),
            SystemEventType::Alert => Event::SystemAlert(payload),
        };
        self.publish_event(&Channel::System, &event).await
    }

    /// `broadcast` on `broadcast`.
    pub async fn broadcast(&self, message: BroadcastInfo) -> PublishOutcome {
        let event = Event::Broadcast(Broadcast {
            message: message.message,
            level: message.level,
            title: message.title,
            timestamp: now(),
            user_id: message.user_id,
        });
        self.publish_event(&Channel::Broadcast, &event).await
    }

    /// Logs and reports a message refused before sending.
    fn refuse(&self, channel: String, payload: String, error: PublishError) -> PublishOutcome {
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
    async fn connection(&self) -> Result<(u64, MultiplexedConnection), PublishError> {
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
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(shared.timeout))
            .set_response_timeout(Some(shared.timeout));
        match shared.client.get_multiplexed_async_connection_with_config(&config).await {
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

fn approval_payload(approval: ApprovalInfo) -> Approval {
    Approval {
        resource_type: approval.resource_type,
        resource_id: approval.resource_id,
        resource_number: approval.resource_number,
        requester_id: approval.requester_id,
        requester_name: approval.requester_name,
        approver_id: approval.approver_id,
        approver_name: approval.approver_name,
        reason: approval.reason,
        comment: approval.comment,
        timestamp: now(),
        user_id: approval.user_id,
    }
}

/// The notification a requester gets about the decision on their request.
fn requester_notice(decision: ApprovalDecision, approval: &ApprovalInfo) -> NewNotification {
    let resource = serde_json::to_value(approval.resource_type)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    let (notification_type, verb) = match decision {
        ApprovalDecision::Approved => (NotificationType::Success, "approved"),
        ApprovalDecision::Rejected => (NotificationType::Warning, "rejected"),
    };
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
    NewNotification::new(notification_type, title, message)
}

fn now() -> i64 {
    tidings_events::millis_since_epoch(SystemTime::now())
}
