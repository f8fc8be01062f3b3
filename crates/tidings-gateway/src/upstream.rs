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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::AsyncCommands;
use tidings::history::{History, HistoryError, Position, Recovery, recorder_connection};
use tidings_events::channel::REDIS_PATTERN_ALL;
use tidings_events::channel::REDIS_PREFIX;
use tidings_events::frame::{ServerFrame, UpstreamState};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::redact_url;
use crate::hub::Hub;
use crate::metrics::Metrics;

/// How often an idle Redis subscription is checked with PING.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long Redis may take to answer a PING or to connect.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before reconnecting.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Most messages recorded in one pipelined round trip. Messages arriving
/// meanwhile wait in the subscription connection (redis-rs reads them into
/// its queue; Redis's `client-output-buffer-limit pubsub` bounds the rest).
const RECORD_BATCH: usize = 256;

/// The broker link's state, as `status` frames report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    pub state: UpstreamState,
    /// Why, for people: shown in the `status` frame's `message`.
    pub message: Option<String>,
}

impl UpstreamStatus {
    pub fn live() -> Self {
        UpstreamStatus { state: UpstreamState::Live, message: None }
    }

    pub fn reconnecting(message: impl Into<String>) -> Self {
        UpstreamStatus { state: UpstreamState::Reconnecting, message: Some(message.into()) }
    }

    pub fn is_live(&self) -> bool {
        self.state == UpstreamState::Live
    }
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("Redis is unreachable ({0}); the event was not published, retry later")]
    Redis(String),
}

/// The broker this gateway reads from and publishes to.
#[derive(Debug, Clone)]
pub enum Broker {
    Redis(RedisBroker),
    Memory(MemoryBroker),
}

impl Broker {
    /// Publishes `payload` on Redis channel `redis_channel`; returns how many
    /// subscribers received it (Redis: across every gateway and subscriber;
    /// memory: connections of this gateway).
    pub async fn publish(&self, redis_channel: &str, payload: &str) -> Result<usize, PublishError> {
        match self {
            Broker::Redis(redis) => redis.publish(redis_channel, payload).await,
            Broker::Memory(memory) => Ok(memory.publish(redis_channel, payload)),
        }
    }

    /// Whether the broker answers right now (for `/healthz`).
    pub async fn healthy(&self) -> Result<(), String> {
        match self {
            Broker::Redis(redis) => redis.ping().await,
            Broker::Memory(_) => Ok(()),
        }
    }
}

/// Redis: a lazily made, auto-reconnecting connection for PUBLISH and PING
/// (the subscription has its own connection, see [`run_redis_subscriber`]).
#[derive(Clone)]
pub struct RedisBroker {
    /// Shared: a `redis::Client` is large, and `Broker` is cloned per request.
    client: Arc<redis::Client>,
    commands: Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
    url_for_logs: String,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker").field("url", &self.url_for_logs).finish()
    }
}

impl RedisBroker {
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(RedisBroker {
            client: Arc::new(redis::Client::open(url)?),
            commands: Arc::new(tokio::sync::OnceCell::new()),
            url_for_logs: redact_url(url),
        })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    async fn commands(&self) -> Result<redis::aio::ConnectionManager, String> {
        let connect = async {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT))
                .set_number_of_retries(1);
            self.client.get_connection_manager_with_config(config).await
        };
        let manager =
            tokio::time::timeout(REDIS_TIMEOUT, self.commands.get_or_try_init(|| connect))
                .await
                .map_err(|_| {
                    format!("no answer from {} within {REDIS_TIMEOUT:?}", self.url_for_logs)
                })?
                .map_err(|error| format!("{}: {error}", self.url_for_logs))?;
        Ok(manager.clone())
    }

    async fn publish(&self, redis_channel: &str, payload: &str) -> Result<usize, PublishError> {
        let mut commands = self.commands().await.map_err(PublishError::Redis)?;
        let publish = commands.publish::<_, _, usize>(redis_channel, payload);
        match tokio::time::timeout(REDIS_TIMEOUT, publish).await {
            Ok(Ok(receivers)) => Ok(receivers),
            Ok(Err(error)) => Err(PublishError::Redis(error.to_string())),
            Err(_) => Err(PublishError::Redis(format!("no answer within {REDIS_TIMEOUT:?}"))),
        }
    }

    /// What `redis_channel` received after `since` (for a client's
    /// `subscribe` with `since`).
    pub async fn recover(
        &self,
        history: &History,
        redis_channel: &str,
        since: &Position,
    ) -> Result<Recovery, String> {
        let mut commands = self.commands().await?;
        let recover = history.recover(&mut commands, redis_channel, since);
        match tokio::time::timeout(REDIS_TIMEOUT, recover).await {
            Ok(Ok(recovery)) => Ok(recovery),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {REDIS_TIMEOUT:?}")),
        }
    }

    async fn ping(&self) -> Result<(), String> {
        let mut commands = self.commands().await?;
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut commands);
        match tokio::time::timeout(REDIS_TIMEOUT, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {REDIS_TIMEOUT:?}")),
        }
    }
}

/// The in-process broker: publishes go straight to the hub, one at a time,
/// so every subscriber sees one channel's events in the same order.
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    hub: Arc<Hub>,
    order: Arc<Mutex<()>>,
}

impl MemoryBroker {
    pub fn new(hub: Arc<Hub>) -> Self {
        MemoryBroker { hub, order: Arc::new(Mutex::new(())) }
    }

    fn publish(&self, redis_channel: &str, payload: &str) -> usize {
        // Dispatch never awaits, so holding a std mutex across it is brief.
        let _serialised = self.order.lock().unwrap_or_else(|poison| poison.into_inner());
        self.hub.dispatch(redis_channel, payload.as_bytes())
    }
}

/// Holds the Redis subscription until `shutdown`: connect, PSUBSCRIBE, feed
/// every message to the hub in order, and on any loss report `Reconnecting`,
/// back off and start again.
pub async fn run_redis_subscriber(
    redis: RedisBroker,
    hub: Arc<Hub>,
    status: watch::Sender<UpstreamStatus>,
    metrics: Metrics,
    backoff_max: Duration,
    history: Option<History>,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF_START;
    let mut ever_live = false;
    let mut recorder = history.map(|history| Recorder { history, dispatched: HashMap::new() });
    loop {
        let attempt = tokio::select! {
            () = shutdown.cancelled() => return,
            attempt = tokio::time::timeout(REDIS_TIMEOUT * 2, subscribe(&redis, recorder.as_mut(), &hub)) => attempt,
        };
        let error = match attempt {
            Ok(Ok((pubsub, mut recording))) => {
                if ever_live {
                    metrics.redis_reconnects.inc();
                }
                ever_live = true;
                backoff = BACKOFF_START;
                tracing::info!(redis = %redis.url_for_logs, pattern = REDIS_PATTERN_ALL, "subscribed to Redis; upstream live");
                metrics.upstream_live.set(1);
                status.send_replace(UpstreamStatus::live());
                let error = pump(pubsub, &hub, recording.as_mut(), &shutdown).await;
                metrics.upstream_live.set(0);
                match error {
                    None => return,
                    Some(error) => error,
                }
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {REDIS_TIMEOUT:?}"),
        };
        let message =
            format!("lost Redis ({error}); reconnecting, events resume without any action");
        if status.borrow().is_live() || !ever_live {
            tracing::warn!(redis = %redis.url_for_logs, %error, retry_in = ?backoff, "Redis subscription unavailable; reconnecting");
        }
        status.send_if_modified(|current| {
            let next = UpstreamStatus::reconnecting(message.clone());
            // Only a state change is news to clients; a new error text while
            // already reconnecting is not worth a frame to every connection.
            if current.state == next.state && current.message.is_some() {
                return false;
            }
            *current = next;
            true
        });
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(backoff_max);
    }
}

/// What the reader keeps across reconnects when history is on.
struct Recorder {
    history: History,
    /// The last position dispatched per Redis channel: where a replay starts.
    dispatched: HashMap<String, Position>,
}

/// One connection's recording: its command connection, and how far the
/// replay after connecting went per channel.
struct Recording<'a> {
    recorder: &'a mut Recorder,
    connection: redis::aio::MultiplexedConnection,
    replayed_up_to: HashMap<String, Position>,
}

/// Subscribes, then (with history) replays what each channel received since
/// the last position dispatched before the link was lost.
async fn subscribe<'a>(
    redis: &RedisBroker,
    recorder: Option<&'a mut Recorder>,
    hub: &Hub,
) -> Result<(redis::aio::PubSub, Option<Recording<'a>>), String> {
    let mut pubsub = redis.client().get_async_pubsub().await.map_err(|e| e.to_string())?;
    // Returns once Redis has confirmed: from here every publish reaches us.
    pubsub.psubscribe(REDIS_PATTERN_ALL).await.map_err(|e| e.to_string())?;
    let Some(recorder) = recorder else { return Ok((pubsub, None)) };
    let history_error = |error: HistoryError| format!("history: {error}");
    let mut connection =
        recorder_connection(redis.client(), REDIS_TIMEOUT).await.map_err(|e| e.to_string())?;
    recorder.history.load(&mut connection).await.map_err(history_error)?;
    let mut replayed_up_to = HashMap::new();
    let channels: Vec<(String, Position)> =
        recorder.dispatched.iter().map(|(c, p)| (c.clone(), p.clone())).collect();
    for (channel, since) in channels {
        let recovery = recorder
            .history
            .recover(&mut connection, &channel, &since)
            .await
            .map_err(history_error)?;
        let logical = channel.strip_prefix(REDIS_PREFIX).unwrap_or(&channel);
        if !recovery.recovered {
            tracing::warn!(%channel, since = %since, "history does not reach back to the last event dispatched; telling subscribers events may be missing");
            hub.announce(
                logical,
                &ServerFrame::Missed {
                    channel: logical.to_owned(),
                    since: Some(since.to_string()),
                },
            );
        }
        let mut last = (recovery.epoch == since.epoch).then_some(since);
        for entry in recovery.entries {
            hub.dispatch_at(&channel, &entry.payload, Some(&entry.position));
            last = Some(entry.position);
        }
        if let Some(last) = last {
            recorder.dispatched.insert(channel.clone(), last.clone());
            replayed_up_to.insert(channel, last);
        }
    }
    Ok((pubsub, Some(Recording { recorder, connection, replayed_up_to })))
}

/// Feeds messages to the hub until the link fails (returns why) or shutdown (None).
async fn pump(
    pubsub: redis::aio::PubSub,
    hub: &Hub,
    mut recording: Option<&mut Recording<'_>>,
    shutdown: &CancellationToken,
) -> Option<String> {
    let (mut sink, mut messages) = pubsub.split();
    let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.reset();
    let mut batch: Vec<redis::Msg> = Vec::with_capacity(RECORD_BATCH);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return None,
            message = messages.next() => match message {
                Some(message) => {
                    batch.clear();
                    batch.push(message);
                    // Whatever else has arrived goes in the same round trip.
                    while batch.len() < RECORD_BATCH {
                        match messages.next().now_or_never() {
                            Some(Some(message)) => batch.push(message),
                            Some(None) => return Some("connection closed".into()),
                            None => break,
                        }
                    }
                    if let Err(error) = dispatch_batch(hub, recording.as_deref_mut(), &batch).await {
                        return Some(error);
                    }
                }
                None => return Some("connection closed".into()),
            },
            _ = keepalive.tick() => {
                match tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Some(format!("keepalive PING failed: {error}")),
                    Err(_) => return Some(format!("keepalive PING unanswered for {REDIS_TIMEOUT:?}")),
                }
            }
        }
    }
}

/// Records `batch` (with history) and dispatches it in order. A recording
/// failure ends the connection: the messages are not dispatched now, and the
/// replay after reconnecting sends them if they were recorded.
async fn dispatch_batch(
    hub: &Hub,
    recording: Option<&mut Recording<'_>>,
    batch: &[redis::Msg],
) -> Result<(), String> {
    let Some(recording) = recording else {
        for message in batch {
            hub.dispatch(message.get_channel_name(), message.get_payload_bytes());
        }
        return Ok(());
    };
    // Only channels the hub would forward are recorded.
    let recordable: Vec<(&str, &[u8])> = batch
        .iter()
        .map(|m| (m.get_channel_name(), m.get_payload_bytes()))
        .filter(|(channel, _)| {
            channel
                .strip_prefix(REDIS_PREFIX)
                .is_some_and(|logical| tidings_events::Channel::parse(logical).is_ok())
        })
        .collect();
    let record = recording.recorder.history.record_many(&mut recording.connection, &recordable);
    let positions = match tokio::time::timeout(REDIS_TIMEOUT, record).await {
        Ok(Ok(positions)) => positions,
        Ok(Err(error)) => return Err(format!("recording history failed: {error}")),
        Err(_) => return Err(format!("recording history: no answer within {REDIS_TIMEOUT:?}")),
    };
    let mut positions = positions.into_iter();
    for message in batch {
        let channel = message.get_channel_name();
        let recorded = channel
            .strip_prefix(REDIS_PREFIX)
            .is_some_and(|logical| tidings_events::Channel::parse(logical).is_ok());
        if !recorded {
            hub.dispatch(channel, message.get_payload_bytes());
            continue;
        }
        let Some(position) = positions.next() else { break };
        let replayed = recording
            .replayed_up_to
            .get(channel)
            .is_some_and(|floor| floor.epoch == position.epoch && position.id <= floor.id);
        let repeated = recording.recorder.dispatched.get(channel) == Some(&position);
        if replayed || repeated {
            continue;
        }
        hub.dispatch_at(channel, message.get_payload_bytes(), Some(&position));
        recording.recorder.dispatched.insert(channel.to_owned(), position);
    }
    Ok(())
}
