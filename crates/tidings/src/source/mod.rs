//! Sources: long-running tasks that receive Tidings messages and hand them to
//! one consumer through a bounded queue, together with their connection
//! state.
//!
//! Two sources look exactly alike to the consumer:
//! - [`spawn_redis_source`] subscribes to Redis directly (channels or
//!   patterns such as `ws:*`);
//! - [`spawn_gateway_source`] speaks the gateway's WebSocket protocol
//!   (protocol.md §2) and reports each message under its Redis channel name.
//!
//! Both reconnect forever with exponential backoff and full jitter,
//! resubscribe after every reconnect, and report [`SourceState`] changes:
//! `Connecting` once at the start, `Live` when subscriptions are confirmed,
//! `Reconnecting { attempt, retry_in, reason }` before each wait after a
//! failure, and `Offline { reason }` when the configuration itself is wrong
//! (see each function for what it does next).
//!
//! Payloads are passed on as received; decoding them is the consumer's job
//! (`tidings_events::decode`), so a malformed message reaches it with its
//! channel and can be counted and shown.
//!
//! **Backpressure.** The queue holds `capacity` updates. When it is full the
//! source waits for the consumer and stops reading from its socket; the
//! server then buffers. Redis keeps buffering until the subscriber's output
//! buffer limit (`client-output-buffer-limit pubsub`, 32 MB by default) and
//! then drops the connection; the source reconnects and reports it, and the
//! messages in between are lost (Pub/Sub keeps no history). A consumer that
//! cannot keep up therefore loses messages visibly rather than growing
//! memory without bound.
//!
//! **Ending.** A source runs until its [`CancellationToken`] is cancelled or
//! its consumer drops [`SourceHandle::updates`]; [`SourceTask::wait`] awaits
//! the end. Messages still in the queue stay readable after the end.

mod gateway;
mod redis;
pub mod token;

use std::time::{Duration, SystemTime};

use tidings_events::Channel;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::gateway::{GatewaySourceConfig, spawn_gateway_source};
pub use self::redis::{LOCATE_EVERY, RedisSourceConfig, Subscription, spawn_redis_source};
pub use self::token::GatewayToken;
pub(crate) use crate::subscriber::Failure;

/// One message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMessage {
    /// The Redis channel name, e.g. `ws:inventory`, whichever source it came
    /// through.
    pub channel: String,
    /// The published bytes, unchanged.
    pub payload: bytes::Bytes,
    /// When this process received it, in milliseconds since the Unix epoch.
    pub received_at: i64,
    /// Where the message sits in its channel's history (`EPOCH:MILLIS-SEQ`,
    /// docs/positions.md), when the source records or reads history;
    /// `None` otherwise. Keep the last one per channel to resume from it.
    pub position: Option<String>,
}

impl SourceMessage {
    /// The logical channel, if the name is a valid Tidings channel.
    pub fn logical_channel(&self) -> Option<Channel> {
        Channel::from_redis(&self.channel).ok()
    }
}

/// The state of a source's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// The first connection attempt is under way.
    Connecting,
    /// Connected and subscribed: messages published from now on arrive.
    Live,
    /// The connection failed or was lost; the next attempt starts after
    /// `retry_in`. `attempt` counts failed attempts since the last `Live`.
    Reconnecting {
        /// Failed attempts since the source was last `Live`, starting at 1.
        attempt: u32,
        /// How long the source waits before the next attempt.
        retry_in: Duration,
        /// Why the connection failed or ended, for people.
        reason: String,
    },
    /// The configuration cannot work as it is (bad URL, refused
    /// credentials); a person has to act.
    Offline {
        /// What is wrong with the configuration, for people.
        reason: String,
    },
}

/// What a source tells its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUpdate {
    /// The connection state changed (repeats of the same state are not sent).
    State(SourceState),
    /// A message was received, payload not yet decoded.
    Message(SourceMessage),
    /// Resuming `channel` could not recover everything since the last
    /// position: history was trimmed past it, or Redis lost its data. Events
    /// published on it after `since` (milliseconds since the Unix epoch, when
    /// known) may be missing. Sent before the messages that could be
    /// recovered.
    Missed {
        /// The Redis channel name, e.g. `ws:inventory`.
        channel: String,
        /// Milliseconds since the Unix epoch after which events may be
        /// missing; `None` when not known.
        since: Option<i64>,
    },
    /// One event on `channel` was skipped, not delivered: the gateway did
    /// not forward it because it is larger than its maximum event size
    /// (docs/gateway.md, "Large events"). `position` is where it sits in the
    /// channel's history, when known; the source has moved past it, so a
    /// resume does not ask for it again. `reason` says why, for people.
    Skipped {
        /// The Redis channel name the skipped event was published on.
        channel: String,
        /// The skipped event's history position (`EPOCH:MILLIS-SEQ`);
        /// `None` when not known.
        position: Option<String>,
        /// Why the event was skipped, for people.
        reason: String,
    },
    /// Everything on `channel` up to and including `position` has been
    /// handed on: keep it to resume from. The Redis source, which does not
    /// record, learns positions this way (once a second at most) rather
    /// than on each message; it comes after the messages it covers.
    Position {
        /// The Redis channel name the position belongs to.
        channel: String,
        /// The history position (`EPOCH:MILLIS-SEQ`) reached on `channel`.
        position: String,
    },
}

/// Reconnect delays: exponential from `initial` up to `max`, each drawn
/// uniformly from zero to that ceiling ("full jitter"), so many clients
/// losing the same server do not come back in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling for the first failed attempt; it doubles with each
    /// further failure.
    pub initial: Duration,
    /// The largest ceiling, and the retry interval while `Offline`.
    pub max: Duration,
}

impl Default for Backoff {
    /// 250 ms doubling up to 10 s.
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(10) }
    }
}

impl Backoff {
    /// The ceiling for failed attempt `attempt` (1-based): `initial · 2^(attempt−1)`,
    /// at most `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }

    /// A random delay in `0..=ceiling(attempt)`.
    pub fn delay(&self, attempt: u32) -> Duration {
        use rand::Rng;
        let ceiling = self.ceiling(attempt);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// A running source: its updates, and its task.
#[derive(Debug)]
pub struct SourceHandle {
    /// States and messages, in order. Bounded: see the module docs for what
    /// happens when it is full. `None` from `recv` means the source ended.
    pub updates: mpsc::Receiver<SourceUpdate>,
    /// The task, to await its end after cancelling.
    pub task: SourceTask,
}

impl SourceHandle {
    /// Waits until the source has ended (cancel its token first). Drops the
    /// updates queue.
    pub async fn finished(self) {
        drop(self.updates);
        self.task.wait().await;
    }
}

/// The task behind a source.
#[derive(Debug)]
pub struct SourceTask(JoinHandle<()>);

impl SourceTask {
    /// Waits until the task has ended. A panic inside it is logged, not
    /// propagated, so a bug in one source cannot take its owner down.
    pub async fn wait(self) {
        if let Err(error) = self.0.await {
            tracing::error!(%error, "source task ended abnormally");
        }
    }

    /// Whether the task has already ended (cancelled, consumer gone, or
    /// panicked); does not wait.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// The sending side shared by both sources.
#[derive(Debug)]
struct UpdateSender {
    updates: mpsc::Sender<SourceUpdate>,
    cancel: CancellationToken,
    last_state: Option<SourceState>,
}

/// The consumer is gone or the source was cancelled: stop.
#[derive(Debug)]
struct Stop;

impl UpdateSender {
    fn new(updates: mpsc::Sender<SourceUpdate>, cancel: CancellationToken) -> Self {
        UpdateSender { updates, cancel, last_state: None }
    }

    /// Reports a state, unless it repeats the previous one exactly.
    async fn state(&mut self, state: SourceState) -> Result<(), Stop> {
        if self.last_state.as_ref() == Some(&state) {
            return Ok(());
        }
        self.last_state = Some(state.clone());
        self.send(SourceUpdate::State(state)).await
    }

    async fn message(
        &self,
        channel: String,
        payload: bytes::Bytes,
        position: Option<String>,
    ) -> Result<(), Stop> {
        let received_at = tidings_events::millis_since_epoch(SystemTime::now());
        let message = SourceMessage { channel, payload, received_at, position };
        self.send(SourceUpdate::Message(message)).await
    }

    /// Waits for room in the queue (this is the backpressure), or stops.
    async fn send(&self, update: SourceUpdate) -> Result<(), Stop> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Stop),
            sent = self.updates.send(update) => sent.map_err(|_| Stop),
        }
    }

    /// Sleeps `delay`, or stops early.
    async fn sleep(&self, delay: Duration) -> Result<(), Stop> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Stop),
            () = self.updates.closed() => Err(Stop),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }
}

/// One connection's life: connect, subscribe, report `Live`, pass messages
/// on until the connection ends. Each source implements it once.
trait Session {
    async fn run(&mut self, outbox: &mut UpdateSender) -> Result<Failure, Stop>;
}

/// The reconnect policy both sources share: run sessions forever, with
/// backoff between them, until cancelled or the consumer is gone.
async fn reconnect_forever(mut outbox: UpdateSender, backoff: Backoff, mut session: impl Session) {
    if outbox.state(SourceState::Connecting).await.is_err() {
        return;
    }
    let mut attempt: u32 = 0;
    loop {
        let failure = match session.run(&mut outbox).await {
            Ok(failure) => failure,
            Err(Stop) => return,
        };
        // A session that reached Live starts the count afresh.
        if outbox.last_state == Some(SourceState::Live) {
            attempt = 0;
        }
        attempt = attempt.saturating_add(1);
        let (state, delay) = match failure {
            Failure::Transient(reason) => {
                let delay = backoff.delay(attempt);
                tracing::info!(%reason, attempt, ?delay, "source reconnecting");
                (SourceState::Reconnecting { attempt, retry_in: delay, reason }, delay)
            }
            Failure::Refused(reason) => {
                tracing::warn!(%reason, "source offline; retrying every {:?}", backoff.max);
                (SourceState::Offline { reason }, backoff.max)
            }
        };
        if outbox.state(state).await.is_err() || outbox.sleep(delay).await.is_err() {
            return;
        }
    }
}

/// Reports a configuration that can never work, and ends the source.
async fn give_up(mut outbox: UpdateSender, reason: String) {
    tracing::error!(%reason, "source cannot start");
    let _ = outbox.state(SourceState::Offline { reason }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_ceiling_doubles_up_to_the_maximum() {
        let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(2), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(4), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(5), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn backoff_delays_stay_within_the_ceiling() {
        let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        for attempt in 1..20 {
            assert!(backoff.delay(attempt) <= backoff.ceiling(attempt));
        }
    }

    #[test]
    fn backoff_delays_are_jittered() {
        let backoff = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(1) };
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(1)).collect();
        assert!(delays.len() > 1, "20 draws gave one value: {delays:?}");
    }
}
