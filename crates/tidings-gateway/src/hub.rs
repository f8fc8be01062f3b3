//! The fan-out: broker messages in, shared event frames out to every
//! subscribed connection's [`Outbox`].
//!
//! [`Hub::dispatch`] is called once per broker message, in the order the
//! broker delivered them, by a single caller (the Redis reader task, or the
//! in-process broker under its lock). It decodes the payload once, builds the
//! `event` frame once ([`EventMessage`]) and pushes a reference-counted clone
//! of it into each subscriber's outbox: no per-connection serialisation, and
//! per-channel order is the broker's order. It never awaits: a push that
//! would take a connection's queue past its byte budget marks that
//! connection as a slow consumer instead (its task then closes it with
//! 1013), so one slow socket never delays anyone else.
//!
//! With history on (docs/positions.md) each message carries its position in
//! its channel's history, inside the frame and beside it, so a connection
//! that has just replayed a channel can skip live frames the replay covered.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tidings::history::Position;
use tidings_events::channel::REDIS_PREFIX;
use tidings_events::frame::{ServerFrame, event_frame_at};
use tidings_events::{Channel, Decoded, decode};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::metrics::Metrics;

/// Identifies one connection inside the hub.
pub type ConnectionId = u64;

/// One broker message, ready to send: the `event` frame text, built once and
/// shared (cloning a [`Utf8Bytes`] bumps a reference count), with its
/// position when history is on.
#[derive(Debug, Clone)]
pub struct EventMessage {
    pub frame: Utf8Bytes,
    /// The logical channel it was sent on.
    pub channel: Arc<str>,
    pub position: Option<Arc<Position>>,
}

impl EventMessage {
    /// Builds the frame for `data` (a JSON object, checked by `decode`) on `channel`.
    pub fn new(channel: &str, data: &str) -> Self {
        EventMessage::at(channel, None, data)
    }

    /// [`EventMessage::new`] with the message's position in its channel's history.
    pub fn at(channel: &str, position: Option<&Position>, data: &str) -> Self {
        let text = position.map(ToString::to_string);
        EventMessage {
            frame: Utf8Bytes::from(event_frame_at(channel, text.as_deref(), data)),
            channel: Arc::from(channel),
            position: position.map(|p| Arc::new(p.clone())),
        }
    }

    /// A control frame (not an event) queued behind `channel`'s events.
    pub fn control(channel: &str, frame: &ServerFrame) -> Self {
        EventMessage {
            frame: Utf8Bytes::from(frame.to_json()),
            channel: Arc::from(channel),
            position: None,
        }
    }

    pub fn len(&self) -> usize {
        self.frame.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }
}

/// What happened to a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// The push would have exceeded the byte budget: the connection is now
    /// marked slow and its queue discarded.
    Overflowed,
    /// The connection was already marked slow or closed.
    Closed,
}

/// A connection's outgoing queue, bounded in bytes.
///
/// Full means: queued bytes + the new frame > budget. The frame is then not
/// queued, the queue is emptied, and the connection is marked slow; its task
/// sees [`Outbox::is_slow`] and closes with 1013 ("try again later").
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<OutboxState>,
    /// Wakes the connection task when frames were queued.
    ready: Notify,
    /// Wakes the connection task when it was marked slow, even mid-write.
    kicked: Notify,
    budget: usize,
}

#[derive(Debug, Default)]
struct OutboxState {
    frames: VecDeque<EventMessage>,
    bytes: usize,
    slow: bool,
}

impl Outbox {
    pub fn new(budget: usize) -> Self {
        Outbox { state: Mutex::default(), ready: Notify::new(), kicked: Notify::new(), budget }
    }

    /// Queues `message` unless that would exceed the budget.
    pub fn push(&self, message: &EventMessage) -> Push {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        if state.slow {
            return Push::Closed;
        }
        if state.bytes + message.len() > self.budget {
            state.slow = true;
            state.frames = VecDeque::new();
            state.bytes = 0;
            drop(state);
            self.kicked.notify_one();
            self.ready.notify_one();
            return Push::Overflowed;
        }
        state.bytes += message.len();
        state.frames.push_back(message.clone());
        drop(state);
        self.ready.notify_one();
        Push::Queued
    }

    /// Moves up to `max_bytes` worth of frames (at least one) into `batch`.
    pub fn drain_into(&self, batch: &mut Vec<EventMessage>, max_bytes: usize) {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut taken = 0;
        while let Some(front) = state.frames.front() {
            if taken > 0 && taken + front.len() > max_bytes {
                break;
            }
            taken += front.len();
            if let Some(message) = state.frames.pop_front() {
                batch.push(message);
            }
        }
        state.bytes -= taken;
        if state.frames.is_empty() && state.frames.capacity() > 64 {
            // A burst grew the queue; give the memory back while idle.
            state.frames = VecDeque::new();
        }
    }

    /// Makes the next [`Outbox::ready`] return at once (frames were left behind).
    pub fn rearm(&self) {
        self.ready.notify_one();
    }

    pub fn has_frames(&self) -> bool {
        !self.state.lock().unwrap_or_else(|poison| poison.into_inner()).frames.is_empty()
    }

    pub fn is_slow(&self) -> bool {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner()).slow
    }

    /// Resolves once frames may be waiting.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Resolves once the connection has been marked slow.
    pub async fn kicked(&self) {
        loop {
            if self.is_slow() {
                return;
            }
            self.kicked.notified().await;
        }
    }
}

/// The subscribers of every channel, and the dispatcher.
#[derive(Debug)]
pub struct Hub {
    /// Logical channel name → its subscribers.
    channels: RwLock<HashMap<String, HashMap<ConnectionId, Arc<Outbox>>>>,
    next_id: AtomicU64,
    metrics: Metrics,
    malformed_log: RateLimit,
    unknown_log: RateLimit,
}

impl Hub {
    pub fn new(metrics: Metrics) -> Self {
        Hub {
            channels: RwLock::default(),
            next_id: AtomicU64::new(1),
            metrics,
            malformed_log: RateLimit::new(Duration::from_secs(10)),
            unknown_log: RateLimit::new(Duration::from_secs(10)),
        }
    }

    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds `outbox` to `channel`. Once this returns, every later dispatch on
    /// `channel` reaches it.
    pub fn subscribe(&self, channel: &Channel, id: ConnectionId, outbox: &Arc<Outbox>) {
        let mut channels = self.channels.write().unwrap_or_else(|poison| poison.into_inner());
        let members = channels.entry(channel.name()).or_default();
        if members.insert(id, Arc::clone(outbox)).is_none() {
            self.metrics.subscription_gauge(channel).inc();
        }
    }

    pub fn unsubscribe(&self, channel: &Channel, id: ConnectionId) {
        let mut channels = self.channels.write().unwrap_or_else(|poison| poison.into_inner());
        let name = channel.name();
        if let Some(members) = channels.get_mut(&name) {
            if members.remove(&id).is_some() {
                self.metrics.subscription_gauge(channel).dec();
            }
            if members.is_empty() {
                channels.remove(&name);
            }
        }
    }

    /// Every channel with at least one subscriber (logical names).
    pub fn channels_with_subscribers(&self) -> Vec<String> {
        let channels = self.channels.read().unwrap_or_else(|poison| poison.into_inner());
        channels.keys().cloned().collect()
    }

    /// How many connections are subscribed to `channel` right now.
    pub fn subscriber_count(&self, channel: &Channel) -> usize {
        let channels = self.channels.read().unwrap_or_else(|poison| poison.into_inner());
        channels.get(&channel.name()).map_or(0, HashMap::len)
    }

    /// Delivers one broker message (Redis channel name, payload) to every
    /// subscriber of its channel. Returns how many outboxes got it.
    pub fn dispatch(&self, redis_channel: &str, payload: &[u8]) -> usize {
        self.dispatch_at(redis_channel, payload, None)
    }

    /// [`Hub::dispatch`] for a message recorded at `position`.
    pub fn dispatch_at(
        &self,
        redis_channel: &str,
        payload: &[u8],
        position: Option<&Position>,
    ) -> usize {
        let Some(logical) = redis_channel.strip_prefix(REDIS_PREFIX) else {
            return self.unknown_channel(redis_channel, "it does not start with \"ws:\"");
        };
        if let Err(error) = Channel::parse(logical) {
            return self.unknown_channel(redis_channel, &error.to_string());
        }
        match decode(payload) {
            Decoded::Typed { .. } => self.metrics.messages_in.with_label_values(&["typed"]).inc(),
            Decoded::Legacy { .. } => self.metrics.messages_in.with_label_values(&["legacy"]).inc(),
            Decoded::Malformed(malformed) => {
                self.metrics.messages_in.with_label_values(&["malformed"]).inc();
                self.metrics.malformed.inc();
                if let Some(suppressed) = self.malformed_log.allow() {
                    tracing::warn!(
                        channel = redis_channel,
                        reason = %malformed,
                        suppressed,
                        "malformed message not forwarded"
                    );
                }
                return 0;
            }
        }
        // `decode` accepted it, so it is UTF-8 and one JSON object.
        let Ok(data) = std::str::from_utf8(payload) else { return 0 };
        let message = EventMessage::at(logical, position, data);
        self.deliver(logical, &message)
    }

    /// Queues a control frame to every subscriber of `logical`, behind the
    /// events already queued for them (a `missed` notice, say).
    pub fn announce(&self, logical: &str, frame: &ServerFrame) -> usize {
        self.deliver(logical, &EventMessage::control(logical, frame))
    }

    fn deliver(&self, logical: &str, message: &EventMessage) -> usize {
        let channels = self.channels.read().unwrap_or_else(|poison| poison.into_inner());
        let Some(members) = channels.get(logical) else { return 0 };
        let (mut queued, mut dropped, mut slow) = (0u64, 0u64, 0u64);
        for outbox in members.values() {
            match outbox.push(message) {
                Push::Queued => queued += 1,
                Push::Overflowed => {
                    slow += 1;
                    dropped += 1;
                }
                Push::Closed => dropped += 1,
            }
        }
        drop(channels);
        self.metrics.messages_out.inc_by(queued);
        if dropped > 0 {
            self.metrics.dropped.inc_by(dropped);
        }
        if slow > 0 {
            self.metrics.slow_disconnects.inc_by(slow);
            tracing::info!(
                channel = logical,
                connections = slow,
                "slow consumers cut off (outbound queue full)"
            );
        }
        queued as usize
    }

    fn unknown_channel(&self, redis_channel: &str, why: &str) -> usize {
        self.metrics.messages_in.with_label_values(&["unknown_channel"]).inc();
        if let Some(suppressed) = self.unknown_log.allow() {
            tracing::warn!(
                channel = redis_channel,
                reason = why,
                suppressed,
                "message on an unknown channel dropped"
            );
        }
        0
    }
}

/// Lets one log line through per `period`, counting the ones held back.
#[derive(Debug)]
struct RateLimit {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    fn new(period: Duration) -> Self {
        RateLimit { period, state: Mutex::new((None, 0)) }
    }

    /// `Some(suppressed since the last line)` when a line may be logged now.
    fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.period => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = state.1;
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> EventMessage {
        EventMessage::new("inventory", text)
    }

    #[test]
    fn an_outbox_refuses_past_its_byte_budget_and_marks_itself_slow() {
        let first = message("{\"a\":1}");
        let outbox = Outbox::new(first.len() * 2);
        assert_eq!(outbox.push(&first), Push::Queued);
        assert_eq!(outbox.push(&first), Push::Queued);
        assert_eq!(outbox.push(&first), Push::Overflowed);
        assert!(outbox.is_slow());
        assert!(!outbox.has_frames(), "a slow consumer's queue is discarded");
        assert_eq!(outbox.push(&first), Push::Closed);
    }

    #[test]
    fn draining_gives_back_budget_in_order() {
        let outbox = Outbox::new(1 << 20);
        for n in 0..5 {
            outbox.push(&message(&format!("{{\"n\":{n}}}")));
        }
        let mut batch = Vec::new();
        outbox.drain_into(&mut batch, usize::MAX);
        let texts: Vec<_> = batch.iter().map(|m| m.frame.to_string()).collect();
        assert!(texts[0].contains("\"n\":0") && texts[4].contains("\"n\":4"), "{texts:?}");
        assert!(!outbox.has_frames());
    }

    #[test]
    fn one_message_is_framed_once_and_shared_by_every_subscriber() {
        let hub = Hub::new(Metrics::new());
        let outboxes: Vec<_> = (0..3).map(|_| Arc::new(Outbox::new(1 << 20))).collect();
        for (id, outbox) in outboxes.iter().enumerate() {
            hub.subscribe(&Channel::Inventory, id as u64, outbox);
        }
        let payload = br#"{"type":"adjust","productId":"1"}"#;
        assert_eq!(hub.dispatch("ws:inventory", payload), 3);
        let frames: Vec<_> = outboxes
            .iter()
            .map(|outbox| {
                let mut batch = Vec::new();
                outbox.drain_into(&mut batch, usize::MAX);
                batch.remove(0).frame
            })
            .collect();
        let first = frames[0].as_ref() as &[u8];
        for frame in &frames[1..] {
            let other = frame.as_ref() as &[u8];
            assert_eq!(first.as_ptr(), other.as_ptr(), "frames share one buffer");
        }
    }

    #[test]
    fn malformed_and_unknown_channel_messages_reach_nobody() {
        let hub = Hub::new(Metrics::new());
        let outbox = Arc::new(Outbox::new(1 << 20));
        hub.subscribe(&Channel::Inventory, 1, &outbox);
        assert_eq!(hub.dispatch("ws:inventory", b"not json"), 0);
        assert_eq!(hub.dispatch("ws:inventory", br#"{"type":"inventory:change"}"#), 0);
        assert_eq!(hub.dispatch("ws:nope", br#"{"type":"x"}"#), 0);
        assert!(!outbox.has_frames());
    }
}
