//! The fan-out: broker messages in, shared event frames out to every
//! subscribed connection's [`FrameQueue`].
//!
//! [`Hub::dispatch`] is called once per broker message, in the order the
//! broker delivered them, by a single caller (the Redis reader task, or the
//! in-process broker under its lock). It decodes the payload once, builds the
//! `event` frame once ([`EventMessage`]) and pushes a reference-counted clone
//! of it into each subscriber's queue: no per-connection serialisation, and
//! per-channel order is the broker's order. It never awaits: a push that
//! would take a connection's queue past its byte budget marks that
//! connection as a slow consumer instead (its task then closes it with
//! 1013), so one slow socket never delays anyone else.
//!
//! An event larger than the maximum event size (docs/gateway.md, "Large
//! events") is not forwarded: it is counted, logged (rate limited) and each
//! subscriber of its channel gets a `skipped` frame instead, carrying the
//! event's position when it has one.
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
use tidings_events::frame::{ServerFrame, SkipReason, event_frame_at};
use tidings_events::{Channel, Decoded, decode};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::metrics::Metrics;

/// Identifies one connection inside the hub.
pub(crate) type ConnectionId = u64;

/// One broker message, ready to send: the `event` frame text, built once and
/// shared (cloning a [`Utf8Bytes`] bumps a reference count), with its
/// position when history is on.
#[derive(Debug, Clone)]
pub(crate) struct EventMessage {
    pub frame: Utf8Bytes,
    /// The logical channel it was sent on.
    pub channel: Arc<str>,
    pub position: Option<Arc<Position>>,
}

impl EventMessage {
    /// The frame for `data` (a JSON object, checked by `decode`) on
    /// `channel`, with the message's position in its channel's history
    /// when it has one.
    pub(crate) fn at(channel: &str, position: Option<&Position>, data: &str) -> Self {
        let text = position.map(ToString::to_string);
        EventMessage {
            frame: Utf8Bytes::from(event_frame_at(channel, text.as_deref(), data)),
            channel: Arc::from(channel),
            position: position.map(|p| Arc::new(p.clone())),
        }
    }

    /// A control frame (not an event) queued behind `channel`'s events.
    pub(crate) fn control(channel: &str, frame: &ServerFrame) -> Self {
        EventMessage::control_at(channel, None, frame)
    }

    /// A control frame standing for the event at `position` (a `skipped`
    /// notice), so a replay that already covered it skips it like an event.
    pub(crate) fn control_at(
        channel: &str,
        position: Option<&Position>,
        frame: &ServerFrame,
    ) -> Self {
        EventMessage {
            frame: Utf8Bytes::from(frame.to_json()),
            channel: Arc::from(channel),
            position: position.map(|p| Arc::new(p.clone())),
        }
    }

    /// The `skipped` notice for an event of `size` bytes on `channel`,
    /// larger than `limit`.
    pub(crate) fn oversized(
        channel: &str,
        position: Option<&Position>,
        size: usize,
        limit: usize,
    ) -> Self {
        let frame = ServerFrame::Skipped {
            channel: channel.to_owned(),
            position: position.map(ToString::to_string),
            reason: SkipReason::TooLarge,
            size: size as u64,
            limit: limit as u64,
        };
        EventMessage::control_at(channel, position, &frame)
    }

    pub(crate) fn len(&self) -> usize {
        self.frame.len()
    }
}

/// Where an oversized event came from (the `source` label of
/// `events_oversized_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OversizedFrom {
    Redis,
    Api,
}

/// What happened to a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    Queued,
    /// The push would have exceeded the byte budget: the connection is now
    /// marked slow and its queue discarded.
    Overflowed,
    /// The connection was already marked slow or closed.
    Closed,
}

/// A connection's outgoing queue, bounded in bytes.
///
/// A frame that does not fit the budget (queued bytes + the frame > budget)
/// is still taken if no other such frame is queued: it is held past the
/// budget, so nobody is marked slow because of one frame, however large
/// (events are bounded by the maximum event size instead). A connection
/// therefore holds at most its budget plus one frame. Full means a second
/// frame does not fit: it is not queued, the queue is emptied, and the
/// connection is marked slow; its task sees [`FrameQueue::is_slow`] and closes
/// with 1013 ("try again later").
#[derive(Debug)]
pub(crate) struct FrameQueue {
    state: Mutex<FrameQueueState>,
    /// Wakes the connection task when frames were queued.
    ready: Notify,
    /// Wakes the connection task when it was marked slow, even mid-write.
    kicked: Notify,
    budget: usize,
}

#[derive(Debug, Default)]
struct FrameQueueState {
    /// Each frame, and whether it is the one held past the budget.
    frames: VecDeque<(EventMessage, bool)>,
    /// Bytes of the queued frames, but the one held past the budget.
    bytes: usize,
    /// Whether a frame held past the budget is queued.
    over: bool,
    slow: bool,
}

impl FrameQueue {
    pub(crate) fn new(budget: usize) -> Self {
        FrameQueue { state: Mutex::default(), ready: Notify::new(), kicked: Notify::new(), budget }
    }

    /// Queues `message` unless that would exceed the budget.
    pub(crate) fn push(&self, message: &EventMessage) -> Push {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        if state.slow {
            return Push::Closed;
        }
        let fits = state.bytes + message.len() <= self.budget;
        if !fits && state.over {
            state.slow = true;
            state.frames = VecDeque::new();
            state.bytes = 0;
            state.over = false;
            drop(state);
            self.kicked.notify_one();
            self.ready.notify_one();
            return Push::Overflowed;
        }
        if fits {
            state.bytes += message.len();
        } else {
            state.over = true;
        }
        state.frames.push_back((message.clone(), !fits));
        drop(state);
        self.ready.notify_one();
        Push::Queued
    }

    /// Moves up to `max_bytes` worth of frames (at least one) into `batch`.
    pub(crate) fn drain_into(&self, batch: &mut Vec<EventMessage>, max_bytes: usize) {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut taken = 0;
        while let Some((front, _)) = state.frames.front() {
            if taken > 0 && taken + front.len() > max_bytes {
                break;
            }
            taken += front.len();
            if let Some((message, over)) = state.frames.pop_front() {
                if over {
                    state.over = false;
                } else {
                    state.bytes -= message.len();
                }
                batch.push(message);
            }
        }
        if state.frames.is_empty() && state.frames.capacity() > 64 {
            // A burst grew the queue; give the memory back while idle.
            state.frames = VecDeque::new();
        }
    }

    /// Makes the next [`FrameQueue::ready`] return at once (frames were left behind).
    pub(crate) fn rearm(&self) {
        self.ready.notify_one();
    }

    pub(crate) fn has_frames(&self) -> bool {
        !self.state.lock().unwrap_or_else(|poison| poison.into_inner()).frames.is_empty()
    }

    pub(crate) fn is_slow(&self) -> bool {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner()).slow
    }

    /// Resolves once frames may be waiting.
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Resolves once the connection has been marked slow.
    pub(crate) async fn kicked(&self) {
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
pub(crate) struct Hub {
    /// Logical channel name → its subscribers.
    channels: RwLock<HashMap<String, HashMap<ConnectionId, Arc<FrameQueue>>>>,
    next_id: AtomicU64,
    metrics: Metrics,
    /// Largest event forwarded, in bytes.
    max_event_bytes: usize,
    malformed_log: RateLimit,
    unknown_log: RateLimit,
    oversized_log: RateLimit,
    bad_position_log: RateLimit,
}

impl Hub {
    pub(crate) fn new(metrics: Metrics, max_event_bytes: usize) -> Self {
        Hub {
            channels: RwLock::default(),
            next_id: AtomicU64::new(1),
            metrics,
            max_event_bytes,
            malformed_log: RateLimit::new(Duration::from_secs(10)),
            unknown_log: RateLimit::new(Duration::from_secs(10)),
            oversized_log: RateLimit::new(Duration::from_secs(10)),
            bad_position_log: RateLimit::new(Duration::from_secs(10)),
        }
    }

    /// Largest event forwarded, in bytes.
    pub(crate) fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    pub(crate) fn next_connection_id(&self) -> ConnectionId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds `queue` to `channel`. Once this returns, every later dispatch on
    /// `channel` reaches it.
    pub(crate) fn subscribe(&self, channel: &Channel, id: ConnectionId, queue: &Arc<FrameQueue>) {
        let mut channels = self.channels.write().unwrap_or_else(|poison| poison.into_inner());
        let members = channels.entry(channel.name()).or_default();
        if members.insert(id, Arc::clone(queue)).is_none() {
            self.metrics.subscription_gauge(channel).inc();
        }
    }

    pub(crate) fn unsubscribe(&self, channel: &Channel, id: ConnectionId) {
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
    pub(crate) fn channels_with_subscribers(&self) -> Vec<String> {
        let channels = self.channels.read().unwrap_or_else(|poison| poison.into_inner());
        channels.keys().cloned().collect()
    }

    /// Delivers one broker message (Redis channel name, payload) to every
    /// subscriber of its channel. Returns how many queues got it.
    pub(crate) fn dispatch(&self, redis_channel: &str, payload: &[u8]) -> usize {
        self.dispatch_at(redis_channel, payload, None)
    }

    /// [`Hub::dispatch`] for a message recorded at `position`.
    pub(crate) fn dispatch_at(
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
        if payload.len() > self.max_event_bytes {
            self.metrics.messages_in.with_label_values(&["oversized"]).inc();
            self.oversized(OversizedFrom::Redis, logical, Some(payload.len()), position);
            let notice =
                EventMessage::oversized(logical, position, payload.len(), self.max_event_bytes);
            self.deliver(logical, &notice);
            return 0;
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

    /// Counts and logs (at most one line per 10 s, both sources together)
    /// an event over the maximum size, of `size` bytes when known, on
    /// `channel`.
    pub(crate) fn oversized(
        &self,
        from: OversizedFrom,
        channel: &str,
        size: Option<usize>,
        position: Option<&Position>,
    ) {
        let source = match from {
            OversizedFrom::Redis => "redis",
            OversizedFrom::Api => "api",
        };
        self.metrics.events_oversized.with_label_values(&[source]).inc();
        if let Some(suppressed) = self.oversized_log.allow() {
            let what = match from {
                OversizedFrom::Redis => {
                    "oversized event not forwarded; subscribers get a `skipped` frame"
                }
                OversizedFrom::Api => "oversized event refused by POST /api/publish (413)",
            };
            tracing::warn!(
                source,
                channel,
                size,
                limit = self.max_event_bytes,
                position = position.map(tracing::field::display),
                suppressed,
                "{what}"
            );
        }
    }

    /// Logs (at most one line per 10 s, all connections together) a `since`
    /// no history can hold: unreadable, or in the future. The client is
    /// answered `recovered: false` either way; the line is for an operator
    /// looking for a client that sends made-up positions.
    pub(crate) fn bad_position(&self, connection: ConnectionId, channel: &str, why: &str) {
        if let Some(suppressed) = self.bad_position_log.allow() {
            tracing::warn!(
                connection,
                channel,
                reason = why,
                suppressed,
                "a resuming subscribe named a position no history can hold; starting that channel live with recovered: false"
            );
        }
    }

    /// Queues a control frame to every subscriber of `logical`, behind the
    /// events already queued for them (a `missed` notice, say).
    pub(crate) fn announce(&self, logical: &str, frame: &ServerFrame) -> usize {
        self.deliver(logical, &EventMessage::control(logical, frame))
    }

    fn deliver(&self, logical: &str, message: &EventMessage) -> usize {
        let channels = self.channels.read().unwrap_or_else(|poison| poison.into_inner());
        let Some(members) = channels.get(logical) else { return 0 };
        let (mut queued, mut dropped, mut slow) = (0u64, 0u64, 0u64);
        for queue in members.values() {
            match queue.push(message) {
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
        EventMessage::at("inventory", None, text)
    }

    #[test]
    fn a_frame_queue_refuses_past_its_byte_budget_and_marks_itself_slow() {
        let first = message("{\"a\":1}");
        let queue = FrameQueue::new(first.len() * 2);
        assert_eq!(queue.push(&first), Push::Queued);
        assert_eq!(queue.push(&first), Push::Queued);
        assert_eq!(queue.push(&first), Push::Queued, "one frame past the budget is held");
        assert_eq!(queue.push(&first), Push::Overflowed);
        assert!(queue.is_slow());
        assert!(!queue.has_frames(), "a slow consumer's queue is discarded");
        assert_eq!(queue.push(&first), Push::Closed);
    }

    #[test]
    fn draining_gives_back_budget_in_order() {
        let queue = FrameQueue::new(1 << 20);
        for n in 0..5 {
            queue.push(&message(&format!("{{\"n\":{n}}}")));
        }
        let mut batch = Vec::new();
        queue.drain_into(&mut batch, usize::MAX);
        let texts: Vec<_> = batch.iter().map(|m| m.frame.to_string()).collect();
        assert!(texts[0].contains("\"n\":0") && texts[4].contains("\"n\":4"), "{texts:?}");
        assert!(!queue.has_frames());
    }

    #[test]
    fn one_message_is_framed_once_and_shared_by_every_subscriber() {
        let hub = Hub::new(Metrics::new(), 1 << 20);
        let outboxes: Vec<_> = (0..3).map(|_| Arc::new(FrameQueue::new(1 << 20))).collect();
        for (id, queue) in outboxes.iter().enumerate() {
            hub.subscribe(&Channel::Inventory, id as u64, queue);
        }
        let payload = br#"{"type":"adjust","productId":"1"}"#;
        assert_eq!(hub.dispatch("ws:inventory", payload), 3);
        let frames: Vec<_> = outboxes
            .iter()
            .map(|queue| {
                let mut batch = Vec::new();
                queue.drain_into(&mut batch, usize::MAX);
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
        let hub = Hub::new(Metrics::new(), 1 << 20);
        let queue = Arc::new(FrameQueue::new(1 << 20));
        hub.subscribe(&Channel::Inventory, 1, &queue);
        assert_eq!(hub.dispatch("ws:inventory", b"not json"), 0);
        assert_eq!(hub.dispatch("ws:inventory", br#"{"type":"inventory:change"}"#), 0);
        assert_eq!(hub.dispatch("ws:nope", br#"{"type":"x"}"#), 0);
        assert!(!queue.has_frames());
    }

    #[test]
    fn one_frame_larger_than_the_budget_is_held_and_frames_within_it_still_fit() {
        let big = message(&format!("{{\"a\":\"{}\"}}", "x".repeat(1000)));
        let small = message("{}");
        let queue = FrameQueue::new(small.len() * 2);
        assert_eq!(queue.push(&big), Push::Queued);
        assert_eq!(queue.push(&small), Push::Queued, "the held frame does not count");
        assert_eq!(queue.push(&small), Push::Queued);
        assert!(!queue.is_slow());
        assert_eq!(queue.push(&big), Push::Overflowed, "a second frame past the budget");
    }

    #[test]
    fn draining_the_held_frame_makes_room_for_another() {
        let big = message(&format!("{{\"a\":\"{}\"}}", "x".repeat(1000)));
        let queue = FrameQueue::new(100);
        assert_eq!(queue.push(&big), Push::Queued);
        queue.drain_into(&mut Vec::new(), usize::MAX);
        assert_eq!(queue.push(&big), Push::Queued);
        assert!(!queue.is_slow());
    }

    #[test]
    fn a_rate_limit_lets_one_line_through_per_period_and_counts_the_rest() {
        let limit = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        let later = RateLimit::new(Duration::ZERO);
        assert_eq!(later.allow(), Some(0));
        assert_eq!(later.allow(), Some(0), "each period lets one through");
    }

    #[test]
    fn an_oversized_event_becomes_one_skipped_notice_per_subscriber() {
        let metrics = Metrics::new();
        let hub = Hub::new(metrics.clone(), 64);
        let queue = Arc::new(FrameQueue::new(1 << 20));
        hub.subscribe(&Channel::Inventory, 1, &queue);
        let big = format!("{{\"type\":\"x\",\"pad\":\"{}\"}}", "x".repeat(100));
        assert_eq!(hub.dispatch("ws:inventory", big.as_bytes()), 0, "the event reaches nobody");
        let mut batch = Vec::new();
        queue.drain_into(&mut batch, usize::MAX);
        assert_eq!(batch.len(), 1);
        assert!(batch[0].frame.as_str().starts_with("{\"type\":\"skipped\""), "{:?}", batch[0]);
        assert_eq!(metrics.events_oversized.with_label_values(&["redis"]).get(), 1);
    }
}
