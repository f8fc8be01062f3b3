//! Where events come from: the one Redis subscription of this gateway
//! (`PSUBSCRIBE ws:*`), or the in-process broker (`--broker memory`), and how
//! `POST /api/publish` reaches it.
//!
//! Subscription strategy: a single pattern subscription on a dedicated
//! connection, made once per process and shared by every WebSocket client.
//! Client subscribes and unsubscribes never touch Redis; they only change the
//! hub's tables, so they are instant and cannot race a Redis confirmation.
//! The cost is that the gateway receives (and decodes) every `ws:*` message,
//! including those for channels nobody here follows; ERP traffic is far below
//! what that costs.
//!
//! When the link drops (or a keepalive PING goes unanswered), the state
//! becomes [`UpstreamState::Reconnecting`] (every connection gets a `status`
//! frame), the task retries with exponential backoff (100 ms doubling to
//! `redis_backoff_max`), re-subscribes, and flips back to `Live` only once
//! Redis has confirmed the PSUBSCRIBE, so events flow again with no client
//! action.
//!
//! History (docs/positions.md, on unless `--no-history`): the reader records
//! every message in its channel's history before dispatching it, in
//! pipelined batches on a second connection, so every event frame carries a
//! position and plain `PUBLISH`es from the backend are recorded once however
//! many gateways run. After a reconnect it first replays, per channel, what
//! was recorded since the last position it dispatched (by this project's
//! publishers or another gateway), then skips live messages that replay
//! covered; a channel it cannot fully replay gets a `missed` frame.
//!
//! Supervision: [`supervise_redis_subscriber`] owns that task and starts it
//! again, after a jittered backoff, if it ever ends before shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use tidings::Backoff;
use tidings::history::{History, HistoryConfig, Page, Position};
use tidings::recorder::{Duty, Recorded, RecorderConfig, run_recorder_with_tls};
use tidings::resume::{self, Replay};
use tidings_events::channel::{REDIS_PATTERN_ALL, REDIS_PREFIX};
use tidings_events::frame::{ServerFrame, UpstreamState};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::Hub;
use crate::metrics::Metrics;
use tidings::redact_url;

/// How long Redis may take to answer a PING or to connect.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on the eviction check at start (it delays the first subscribe).
const EVICTION_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Ceiling of the first wait before reconnecting (full jitter below it).
const BACKOFF_START: Duration = Duration::from_millis(100);

/// The broker link's state, as `status` frames report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// Whether the broker link is live or reconnecting.
    pub state: UpstreamState,
    /// Why, for people: shown in the `status` frame's `message`.
    pub message: Option<String>,
}

impl UpstreamStatus {
    /// The link is live; no message.
    pub fn live() -> Self {
        UpstreamStatus { state: UpstreamState::Live, message: None }
    }

    /// The link is down and being retried, `message` saying why.
    pub fn reconnecting(message: impl Into<String>) -> Self {
        UpstreamStatus { state: UpstreamState::Reconnecting, message: Some(message.into()) }
    }

    /// Whether the state is `Live`.
    pub fn is_live(&self) -> bool {
        self.state == UpstreamState::Live
    }
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BrokerPublishError {
    #[error("Redis is unreachable ({0}); the event was not published, retry later")]
    Redis(#[from] RedisCallError),
}

/// Why one command to Redis (publish, ping, a history read) failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisCallError {
    /// No connection could be made (`url` has its password hidden).
    #[error("{url}: {source}")]
    Connect {
        /// Where the gateway tried to connect.
        url: String,
        /// What Redis or the network said.
        source: redis::RedisError,
    },
    /// Redis did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// The history could not be read (its script or stream answered wrong).
    #[error(transparent)]
    History(#[from] tidings::history::HistoryError),
}

/// The broker this gateway reads from and publishes to.
#[derive(Debug, Clone)]
pub(crate) enum Broker {
    Redis(RedisBroker),
    Memory(MemoryBroker),
}

impl Broker {
    /// Publishes `payload` on Redis channel `redis_channel`; returns how many
    /// subscribers received it (Redis: across every gateway and subscriber;
    /// memory: connections of this gateway).
    pub(crate) async fn publish(
        &self,
        redis_channel: &str,
        payload: &str,
    ) -> Result<usize, BrokerPublishError> {
        match self {
            Broker::Redis(redis) => redis.publish(redis_channel, payload).await,
            Broker::Memory(memory) => Ok(memory.publish(redis_channel, payload)),
        }
    }

    /// Whether the broker answers right now (for `/healthz`).
    pub(crate) async fn healthy(&self) -> Result<(), RedisCallError> {
        match self {
            Broker::Redis(redis) => redis.ping().await,
            Broker::Memory(_) => Ok(()),
        }
    }
}

/// Redis: a lazily made connection for PUBLISH, PING and history reads,
/// made again after a failed command (the subscription has its own
/// connection, see [`run_redis_subscriber`]).
#[derive(Clone)]
pub(crate) struct RedisBroker {
    /// The server, or the sentinels that name its master (cheap to clone).
    target: tidings::RedisUrl,
    /// For the subscriber, which opens its own connection.
    url: String,
    /// Made at the first command; forgotten after a failed one, so the next
    /// command reconnects (and, for a sentinel URL, asks for the master
    /// again: a failover moved it).
    commands: Arc<tokio::sync::Mutex<Option<tidings::redis_url::Commands>>>,
    url_for_logs: String,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker").field("url", &self.url_for_logs).finish()
    }
}

impl RedisBroker {
    pub(crate) fn new(url: &str) -> Result<Self, tidings::redis_url::RedisUrlError> {
        Ok(RedisBroker {
            target: tidings::RedisUrl::parse(url)?,
            url: url.to_owned(),
            commands: Arc::new(tokio::sync::Mutex::new(None)),
            url_for_logs: redact_url(url),
        })
    }

    /// What the Redis URL names (for the history's key layout).
    pub(crate) fn target(&self) -> &tidings::RedisUrl {
        &self.target
    }

    /// After a failed command: the next command connects again (to the
    /// master named then, for a sentinel URL).
    async fn forget_connection(&self) {
        self.commands.lock().await.take();
    }

    async fn commands(&self) -> Result<tidings::redis_url::Commands, RedisCallError> {
        let connect = async {
            let mut slot = self.commands.lock().await;
            if let Some(commands) = slot.as_ref() {
                return Ok(commands.clone());
            }
            let commands = self.target.connect(REDIS_TIMEOUT).await?;
            *slot = Some(commands.clone());
            Ok(commands)
        };
        tokio::time::timeout(REDIS_TIMEOUT, connect)
            .await
            .map_err(|_| RedisCallError::Timeout(REDIS_TIMEOUT))?
            .map_err(|source| RedisCallError::Connect { url: self.url_for_logs.clone(), source })
    }

    async fn publish(
        &self,
        redis_channel: &str,
        payload: &str,
    ) -> Result<usize, BrokerPublishError> {
        let mut commands = self.commands().await?;
        let publish = commands.publish::<_, _, usize>(redis_channel, payload);
        let failed = match tokio::time::timeout(REDIS_TIMEOUT, publish).await {
            Ok(Ok(receivers)) => return Ok(receivers),
            Ok(Err(error)) => RedisCallError::Redis(error),
            Err(_) => RedisCallError::Timeout(REDIS_TIMEOUT),
        };
        self.forget_connection().await;
        Err(failed.into())
    }

    /// Whether `redis_channel` can be replayed exactly from `since` (for a
    /// client's `subscribe` with `since`), through the one resume engine,
    /// without reading entries yet: [`RedisBroker::page`] reads them. This
    /// gateway records every event before dispatching it, so no proof wait
    /// is needed.
    ///
    /// A connection broken by a Redis restart fails the first command, so
    /// this and [`RedisBroker::page`] re-establish it and try once more
    /// before any client is told history is unavailable.
    pub(crate) async fn check_replay(
        &self,
        history: &History,
        redis_channel: &str,
        since: &Position,
    ) -> Result<Replay, RedisCallError> {
        let mut failure = None;
        for _attempt in 0..2 {
            let mut commands = self.commands().await?;
            let read = resume::replay_first(history, &mut commands, redis_channel, since, 0, 0);
            match tokio::time::timeout(REDIS_TIMEOUT, read).await {
                Ok(Ok(replay)) => return Ok(replay),
                Ok(Err(error)) => failure = Some(error),
                Err(_) => return Err(RedisCallError::Timeout(REDIS_TIMEOUT)),
            }
            self.forget_connection().await;
        }
        Err(failure.expect("two attempts failed").into())
    }

    /// Up to `count` entries of `redis_channel` after `after`.
    pub(crate) async fn page(
        &self,
        history: &History,
        redis_channel: &str,
        after: &Position,
        count: usize,
    ) -> Result<Page, RedisCallError> {
        let mut failure = None;
        for _attempt in 0..2 {
            let mut commands = self.commands().await?;
            let read = history.page(&mut commands, redis_channel, after, count);
            match tokio::time::timeout(REDIS_TIMEOUT, read).await {
                Ok(Ok(page)) => return Ok(page),
                Ok(Err(error)) => failure = Some(error),
                Err(_) => return Err(RedisCallError::Timeout(REDIS_TIMEOUT)),
            }
            self.forget_connection().await;
        }
        Err(failure.expect("two attempts failed").into())
    }

    /// Warns (a log line saying what to do) when Redis may have evicted the
    /// history's epoch ([`tidings::history::eviction_warning`]); a Redis
    /// that cannot be asked is left to the subscriber to report.
    pub(crate) async fn warn_about_eviction(&self) {
        let check = async {
            let mut commands = self.commands().await?;
            tidings::history::eviction_warning(&mut commands).await.map_err(RedisCallError::from)
        };
        match tokio::time::timeout(EVICTION_CHECK_TIMEOUT, check).await {
            Ok(Ok(Some(warning))) => tracing::warn!(redis = %self.url_for_logs, "{warning}"),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::debug!(%error, "could not check Redis's eviction policy"),
            Err(_) => tracing::debug!("checking Redis's eviction policy took too long"),
        }
    }

    async fn ping(&self) -> Result<(), RedisCallError> {
        let mut commands = self.commands().await?;
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut commands);
        let failed = match tokio::time::timeout(REDIS_TIMEOUT, ping).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => RedisCallError::Redis(error),
            Err(_) => RedisCallError::Timeout(REDIS_TIMEOUT),
        };
        self.forget_connection().await;
        Err(failed)
    }
}

/// The in-process broker: publishes go straight to the hub, one at a time,
/// so every subscriber sees one channel's events in the same order.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBroker {
    hub: Arc<Hub>,
    order: Arc<Mutex<()>>,
}

impl MemoryBroker {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        MemoryBroker { hub, order: Arc::new(Mutex::new(())) }
    }

    fn publish(&self, redis_channel: &str, payload: &str) -> usize {
        // Dispatch never awaits, so holding a std mutex across it is brief.
        let _serialised = self.order.lock().unwrap_or_else(|poison| poison.into_inner());
        self.hub.dispatch(redis_channel, payload.as_bytes())
    }
}

/// A handle on the running upstream task, for tests that need it to die as
/// a crash would (see [`supervise_redis_subscriber`]).
#[derive(Debug, Clone, Default)]
pub struct UpstreamTask(Arc<Mutex<Option<tokio::task::AbortHandle>>>);

impl UpstreamTask {
    /// Ends the running upstream task at once, as a panic would; the
    /// supervisor starts a new one. False when none is running.
    #[doc(hidden)]
    pub fn abort_for_test(&self) -> bool {
        let current = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        current.as_ref().map(tokio::task::AbortHandle::abort).is_some()
    }

    fn set(&self, handle: tokio::task::AbortHandle) {
        *self.0.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(handle);
    }
}

/// After this long running, an upstream task that ends starts the backoff
/// from the beginning again.
const RESTART_RESET: Duration = Duration::from_secs(60);
/// Ceiling of the first wait before restarting a dead upstream task.
const RESTART_START: Duration = Duration::from_secs(1);

/// How long to wait before restart `attempt` (1, 2, …): half the ceiling
/// (1 s doubling to `max`) plus up to as much again at random, so a crash
/// loop neither spins nor restarts every gateway in step.
fn restart_delay(attempt: u32, max: Duration) -> Duration {
    let max = max.max(RESTART_START);
    let doublings = attempt.saturating_sub(1).min(16);
    let floor = (RESTART_START / 2).saturating_mul(1 << doublings).min(max / 2);
    floor + Backoff { initial: RESTART_START / 2, max: max / 2 }.delay(attempt)
}

/// Everything the upstream task needs, kept by its supervisor to start it again.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub redis: RedisBroker,
    pub hub: Arc<Hub>,
    pub status: watch::Sender<UpstreamStatus>,
    pub metrics: Metrics,
    pub backoff_max: Duration,
    pub history: Option<HistoryConfig>,
    /// `--insecure-tls`: a `rediss://…#insecure` URL is used as it says.
    pub insecure_tls: bool,
}

/// First, with history on, warns if Redis may have evicted the history's
/// epoch ([`RedisBroker::warn_about_eviction`]). Then runs
/// [`run_redis_subscriber`] on `tracker` until `shutdown`, and starts
/// it again whenever it ends before that (a panic, say): meanwhile the
/// upstream is `reconnecting` (so `/healthz` answers 503 and clients get a
/// `status` frame), every subscribed channel gets a `missed` frame (what
/// was published in between is not replayed: the new task starts with no
/// positions), and the restart waits a jittered backoff ([`restart_delay`]:
/// 0.5–1 s, doubling up to `backoff_max`; from the start again once a task
/// ran for a minute). Counted in `upstream_restarts_total`.
pub(crate) async fn supervise_redis_subscriber(
    upstream: Upstream,
    task: UpstreamTask,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    if upstream.history.is_some() {
        // Before the recorder runs: its first append would make a new epoch.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = upstream.redis.warn_about_eviction() => {}
        }
    }
    let mut attempt = 0u32;
    loop {
        let started = std::time::Instant::now();
        let running = tracker.spawn(run_redis_subscriber(upstream.clone(), shutdown.clone()));
        task.set(running.abort_handle());
        let ended = running.await;
        if shutdown.is_cancelled() {
            return;
        }
        let reason = match ended {
            Ok(()) => "the Redis subscriber task ended".to_owned(),
            Err(error) if error.is_panic() => {
                let panic = error.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("the Redis subscriber task panicked: {message}")
            }
            Err(_) => "the Redis subscriber task was stopped".to_owned(),
        };
        if started.elapsed() >= RESTART_RESET {
            attempt = 0;
        }
        attempt = attempt.saturating_add(1);
        let delay = restart_delay(attempt, upstream.backoff_max);
        tracing::error!(%reason, retry_in = ?delay, "upstream task ended unexpectedly; starting it again");
        upstream.metrics.upstream_live.set(0);
        upstream.metrics.upstream_restarts.inc();
        upstream.status.send_replace(UpstreamStatus::reconnecting(format!(
            "{reason}; starting it again, events resume without any action"
        )));
        for channel in upstream.hub.channels_with_subscribers() {
            upstream
                .hub
                .announce(&channel, &ServerFrame::Missed { channel: channel.clone(), since: None });
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Holds the Redis subscription until `shutdown`, through the workspace's
/// recorder ([`tidings::recorder`], always-on): every `ws:*` message is
/// recorded (with history on) and dispatched to the hub in order with its
/// position; after a reconnect the recorder first replays what was missed,
/// and a channel it cannot fully replay gets a `missed` frame. Link changes
/// become `status` frames.
pub(crate) async fn run_redis_subscriber(upstream: Upstream, shutdown: CancellationToken) {
    let Upstream { redis, hub, status, metrics, backoff_max, history, insecure_tls } = upstream;
    let config = RecorderConfig {
        url: redis.url.clone(),
        history,
        duty: Duty::Always,
        backoff: Backoff { initial: BACKOFF_START, max: backoff_max.max(BACKOFF_START) },
    };
    let mut ever_live = false;
    let on_recorded = |recorded: Recorded| match recorded {
        Recorded::Message { channel, payload, position } => {
            hub.dispatch_at(&channel, &payload, position.as_ref());
        }
        Recorded::Unrecordable { channel, payload } => {
            hub.dispatch(&channel, &payload);
        }
        Recorded::Missed { channel, since } => {
            let logical = channel.strip_prefix(REDIS_PREFIX).unwrap_or(&channel);
            hub.announce(
                logical,
                &ServerFrame::Missed {
                    channel: logical.to_owned(),
                    since: Some(since.to_string()),
                },
            );
        }
        Recorded::Live => {
            if ever_live {
                metrics.redis_reconnects.inc();
            }
            ever_live = true;
            tracing::info!(redis = %redis.url_for_logs, pattern = REDIS_PATTERN_ALL, "subscribed to Redis; upstream live");
            metrics.upstream_live.set(1);
            status.send_replace(UpstreamStatus::live());
        }
        Recorded::Reconnecting(error) => {
            metrics.upstream_live.set(0);
            let message =
                format!("lost Redis ({error}); reconnecting, events resume without any action");
            status.send_if_modified(|current| {
                let next = UpstreamStatus::reconnecting(message.clone());
                // Only a state change is news to clients; a new error text
                // while already reconnecting is not worth a frame to each.
                if current.state == next.state && current.message.is_some() {
                    return false;
                }
                *current = next;
                true
            });
        }
    };
    run_recorder_with_tls(config, insecure_tls, on_recorded, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_waits_half_its_ceiling_plus_jitter_doubling_up_to_the_max() {
        for _ in 0..100 {
            let first = restart_delay(1, Duration::from_secs(5));
            assert!(first >= Duration::from_millis(500) && first <= RESTART_START, "{first:?}");
            let late = restart_delay(20, Duration::from_secs(5));
            assert!(
                late >= Duration::from_millis(2500) && late <= Duration::from_secs(5),
                "{late:?}"
            );
        }
    }
}
