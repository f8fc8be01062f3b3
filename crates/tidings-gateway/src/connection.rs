//! One WebSocket client, served by one task from upgrade to close.
//!
//! The task owns the socket and selects over, in priority order: gateway
//! shutdown (close 1001), being marked a slow consumer by the hub (close
//! 1013), a change of upstream state (`status` frame), frames queued in its
//! [`FrameQueue`] (written in batches, one flush per batch), frames from the
//! client, and the ping timer (a peer silent past the idle timeout is
//! dropped). Every write races the slow-consumer mark, shutdown and a write
//! timeout, so a stuck socket ties up only its own task.
//!
//! Tokens: the connection ends with 4001 at its token's `exp` (plus the
//! clock leeway); a `refresh` frame with a valid token for the same user
//! moves that end to the new token's `exp`, and ends subscriptions the new
//! token does not allow.
//!
//! Resuming (docs/positions.md): a subscribe with `since` is answered with
//! `subscribed` (saying per channel whether the gap was `recovered`), then
//! the events recorded after each position, read from the history in Redis,
//! then live events. The hub queues live events from the moment the channel
//! is registered, before the history is read; those the replay already
//! contained (at or below the last replayed position) are skipped when the
//! queue is written, so each event is sent once.
//!
//! Frame order: `subscribed` is written before any event of the channels it
//! lists (the hub starts queuing them only after the subscription is
//! registered, and replies are written directly, ahead of the queue), and is
//! held back while the upstream is reconnecting, so a client that has read
//! `subscribed` receives every event published afterwards. `unsubscribed` is
//! written after the events already queued for the connection, and no event
//! of the channels it lists follows it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tidings::history::{History, Position, Unrecovered};
use tidings::resume::Floors;
use tidings_events::channel::REDIS_PREFIX;
use tidings_events::frame::{ClientFrame, ErrorCode, ServerFrame, parse_client_frame};
use tidings_events::{Channel, Decoded};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, Authenticator, Grant, Refusal};
use crate::config::GatewayConfig;
use crate::hub::{ConnectionId, EventMessage, FrameQueue, Hub};
use crate::metrics::Metrics;
use crate::upstream::{RedisBroker, UpstreamStatus};

/// Close code for a slow consumer: 1013 "Try Again Later" (RFC 6455 §7.4.1
/// registry): reconnect, preferably after a short delay.
pub(crate) const CLOSE_SLOW_CONSUMER: u16 = 1013;
/// Close code when a client frame exceeds `max_frame_bytes`: 1009 "Message Too Big".
pub(crate) const CLOSE_TOO_LARGE: u16 = 1009;
/// Close code on gateway shutdown and idle timeout: 1001 "Going Away".
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code when the connection's token expires (its `exp` plus the
/// clock leeway): reconnect with a fresh token.
pub(crate) const CLOSE_TOKEN_EXPIRED: u16 = 4001;

/// Most bytes of event frames written per flush; the rest waits for the next
/// turn of the loop so client frames and pings are not starved.
const BATCH_BYTES: usize = 256 * 1024;
/// Most channel names one subscribe or unsubscribe frame may carry.
pub(crate) const MAX_NAMES_PER_FRAME: usize = 256;

/// Entries read from history and written per replay step.
pub const REPLAY_PAGE: usize = 200;
/// A connection may replay this many entries at once…
pub const REPLAY_BURST: f64 = 20_000.0;
/// …and then this many per second: past it, its replays wait.
pub const REPLAY_RATE: f64 = 2_000.0;
/// History pages read from Redis at once, across the whole gateway.
pub(crate) const MAX_REPLAY_READS: usize = 8;

/// One channel's replay, decided before `subscribed` was sent.
#[derive(Debug)]
struct ReplayPlan {
    channel: String,
    from: Position,
    /// Whether `subscribed` said `recovered: true` for it.
    exact: bool,
}

/// A connection's replay allowance: a token bucket of entries.
#[derive(Debug)]
struct ReplayBudget {
    tokens: f64,
    refilled: Instant,
}

impl ReplayBudget {
    fn new() -> Self {
        ReplayBudget { tokens: REPLAY_BURST, refilled: Instant::now() }
    }

    /// Spends `entries`; returns how long to wait first (zero when the
    /// budget had them). What is spent ahead of the budget is owed, so
    /// back-to-back pages queue behind one another.
    fn take(&mut self, entries: usize) -> std::time::Duration {
        let now = Instant::now();
        let earned = now.saturating_duration_since(self.refilled).as_secs_f64() * REPLAY_RATE;
        self.tokens = (self.tokens + earned).min(REPLAY_BURST) - entries as f64;
        self.refilled = now;
        if self.tokens >= 0.0 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_secs_f64(-self.tokens / REPLAY_RATE)
        }
    }
}

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The history and where to read it, when history is on.
    pub history: Option<(History, RedisBroker)>,
    /// Checks tokens at the upgrade and in `refresh` frames; `None` = open mode.
    pub auth: Option<Authenticator>,
    pub hub: Arc<Hub>,
    pub metrics: Metrics,
    pub config: Arc<GatewayConfig>,
    pub status: watch::Receiver<UpstreamStatus>,
    pub shutdown: CancellationToken,
    /// Open connections, for the connection cap.
    pub open: AtomicUsize,
    /// History pages being read for replays (at most [`MAX_REPLAY_READS`]).
    pub replay_reads: Arc<tokio::sync::Semaphore>,
}

/// A reserved place under the connection cap; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    shared: Arc<Shared>,
}

impl Slot {
    /// Reserves a place, or `None` when `max_connections` are open.
    pub(crate) fn reserve(shared: &Arc<Shared>) -> Option<Slot> {
        let max = shared.config.max_connections;
        shared
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| Slot { shared: Arc::clone(shared) })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Shutdown,
    SlowConsumer,
    TooLarge,
    Idle,
    /// The token's `exp` (plus leeway) has passed.
    TokenExpired,
    PeerClosed,
    SocketError,
    WriteTimeout,
    /// The history could not be read for a resuming subscribe.
    HistoryUnavailable,
}

/// Serves one upgraded WebSocket until it ends.
pub(crate) async fn serve<S>(ws: WebSocketStream<S>, grant: Grant, slot: Slot)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let shared = Arc::clone(&slot.shared);
    let id = shared.hub.next_connection_id();
    shared.metrics.connections.inc();
    shared.metrics.connections_accepted.inc();
    let mut connection = Connection {
        queue: Arc::new(FrameQueue::new(shared.config.outbound_buffer_bytes)),
        ws,
        id,
        grant,
        subscriptions: Vec::new(),
        waiting_for_live: Vec::new(),
        waiting_since: BTreeMap::new(),
        replayed_up_to: Floors::default(),
        replay_budget: ReplayBudget::new(),
        last_heard: Instant::now(),
        status: shared.status.clone(),
        shared: Arc::clone(&shared),
    };
    let end = connection.run().await;
    connection.finish(end).await;
    for channel in &connection.subscriptions {
        shared.hub.unsubscribe(channel, id);
    }
    shared.metrics.connections.dec();
    drop(slot);
}

struct Connection<S> {
    ws: WebSocketStream<S>,
    id: ConnectionId,
    grant: Grant,
    queue: Arc<FrameQueue>,
    subscriptions: Vec<Channel>,
    /// Channel names whose `subscribed` waits for the upstream to be live;
    /// no duplicates, so at most `max_subscriptions` (each is held).
    waiting_for_live: Vec<String>,
    /// The `since` positions of those channels.
    waiting_since: BTreeMap<String, String>,
    /// Per channel, the last position a replay sent: queued live events at
    /// or below it are skipped (the one resume engine's rule).
    replayed_up_to: Floors,
    replay_budget: ReplayBudget,
    last_heard: Instant,
    status: watch::Receiver<UpstreamStatus>,
    shared: Arc<Shared>,
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn run(&mut self) -> End {
        let current = self.status.borrow_and_update().clone();
        if !current.is_live()
            && let Err(end) = self.write(vec![status_frame(&current)]).await
        {
            return end;
        }
        let period = self.shared.config.ping_interval;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The token's end, moved by each accepted `refresh`.
        let mut ends_at = self.grant.ends_at();
        let expired = tokio::time::sleep_until(deadline(ends_at));
        tokio::pin!(expired);
        loop {
            let step = tokio::select! {
                biased;
                () = self.shared.shutdown.cancelled() => Err(End::Shutdown),
                () = self.queue.kicked() => Err(End::SlowConsumer),
                () = &mut expired, if ends_at.is_some() => Err(End::TokenExpired),
                changed = self.status.changed() => match changed {
                    Ok(()) => self.upstream_changed().await,
                    // The upstream task is gone: the gateway is stopping.
                    Err(_) => Err(End::Shutdown),
                },
                () = self.queue.ready() => self.send_queued().await,
                incoming = self.ws.next() => self.received(incoming).await,
                _ = ping.tick() => self.ping().await,
            };
            if let Err(end) = step {
                return end;
            }
            if self.grant.ends_at() != ends_at {
                ends_at = self.grant.ends_at();
                expired.as_mut().reset(deadline(ends_at));
            }
        }
    }

    async fn upstream_changed(&mut self) -> Result<(), End> {
        let status = self.status.borrow_and_update().clone();
        let frames = vec![status_frame(&status)];
        if status.is_live() && !self.waiting_for_live.is_empty() {
            let channels = std::mem::take(&mut self.waiting_for_live);
            let since = std::mem::take(&mut self.waiting_since);
            return self.confirm_and_replay(frames, channels, &since).await;
        }
        self.write(frames).await
    }

    /// Writes `replies` and `subscribed` for `channels` (saying per channel
    /// of `since` whether the replay is provably complete), then replays
    /// each such channel page by page.
    async fn confirm_and_replay(
        &mut self,
        mut replies: Vec<Message>,
        channels: Vec<String>,
        since: &BTreeMap<String, String>,
    ) -> Result<(), End> {
        let (recovered, errors, plans) = self.plan_replays(&channels, since).await?;
        replies.push(text_frame(&ServerFrame::Subscribed { channels, recovered }));
        replies.extend(errors);
        self.write(replies).await?;
        for plan in plans {
            self.replay_pages(plan).await?;
        }
        Ok(())
    }

    /// Writes one batch of queued event frames.
    async fn send_queued(&mut self) -> Result<(), End> {
        let mut batch = Vec::new();
        self.queue.drain_into(&mut batch, BATCH_BYTES);
        if self.queue.has_frames() {
            // Come back after giving client frames and pings a turn.
            self.queue.rearm();
        }
        if !self.replayed_up_to.is_empty() {
            let floors = &self.replayed_up_to;
            batch.retain(|message| {
                message.position.as_deref().is_none_or(|at| !floors.covers(&message.channel, at))
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.write(batch.into_iter().map(|message: EventMessage| Message::Text(message.frame)))
            .await
    }

    async fn received(&mut self, incoming: Option<Result<Message, WsError>>) -> Result<(), End> {
        let message = match incoming {
            None => return Err(End::PeerClosed),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                tracing::debug!(connection = self.id, size, max_size, "client frame too large");
                return Err(End::TooLarge);
            }
            Some(Err(error)) => {
                tracing::debug!(connection = self.id, %error, "client socket error");
                return Err(End::SocketError);
            }
            Some(Ok(message)) => message,
        };
        self.last_heard = Instant::now();
        match message {
            Message::Text(text) => self.client_frame(text.as_str()).await,
            Message::Binary(_) => {
                let error = self.error(
                    ErrorCode::BadRequest,
                    "binary frames are not part of the protocol; send JSON text frames".into(),
                    None,
                );
                self.write(vec![error]).await
            }
            // tungstenite queued the pong; this flush sends it now.
            Message::Ping(_) => self.write(Vec::new()).await,
            Message::Pong(_) | Message::Frame(_) => Ok(()),
            Message::Close(_) => Err(End::PeerClosed),
        }
    }

    async fn client_frame(&mut self, text: &str) -> Result<(), End> {
        let frame = match parse_client_frame(text) {
            Ok(frame) => frame,
            Err(error) => {
                let reply = self.error(error.code, error.message, None);
                return self.write(vec![reply]).await;
            }
        };
        match frame {
            ClientFrame::Ping => self.write(vec![text_frame(&ServerFrame::Pong)]).await,
            ClientFrame::Subscribe { channels, since } => self.subscribe(channels, since).await,
            ClientFrame::Unsubscribe { channels } => self.unsubscribe(channels).await,
            ClientFrame::Refresh { token } => self.refresh(&token).await,
        }
    }

    /// Takes a fresh token for the same user (docs/gateway.md,
    /// "Authentication"): the connection then ends at the new `exp`, and
    /// subscriptions the new token does not allow are ended (`unsubscribed`)
    /// and listed in `refreshed`. A refused token changes nothing: an
    /// `error` frame says why and the current token's expiry stands.
    async fn refresh(&mut self, token: &str) -> Result<(), End> {
        let verified = match &self.shared.auth {
            None => Err(AuthError::OpenMode),
            Some(auth) => auth.verify_refresh(&self.grant, token),
        };
        let grant = match verified {
            Ok(grant) => grant,
            Err(error) => {
                self.shared.metrics.token_refreshes.with_label_values(&["refused"]).inc();
                tracing::debug!(connection = self.id, reason = error.label(), "refresh refused");
                let reply = self.error(
                    ErrorCode::Unauthorized,
                    format!("refresh refused: {error}; the connection keeps its current token until it expires"),
                    None,
                );
                return self.write(vec![reply]).await;
            }
        };
        self.shared.metrics.token_refreshes.with_label_values(&["accepted"]).inc();
        let dropped: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|channel| grant.check(channel).is_err())
            .map(Channel::name)
            .collect();
        let exp = grant.expires_at().unwrap_or_default();
        self.grant = grant;
        if !dropped.is_empty() {
            self.unsubscribe(dropped.clone()).await?;
        }
        self.write(vec![text_frame(&ServerFrame::Refreshed { exp, dropped })]).await
    }

    async fn subscribe(
        &mut self,
        names: Vec<String>,
        since: BTreeMap<String, String>,
    ) -> Result<(), End> {
        if names.len() > MAX_NAMES_PER_FRAME {
            let reply = self.error(
                ErrorCode::BadRequest,
                format!("a subscribe frame may name at most {MAX_NAMES_PER_FRAME} channels, this one names {}", names.len()),
                None,
            );
            return self.write(vec![reply]).await;
        }
        let mut replies = Vec::new();
        let mut granted: Vec<String> = Vec::new();
        let max = self.shared.config.max_subscriptions;
        for name in &names {
            let channel = match Channel::parse(name) {
                Ok(channel) => channel,
                Err(error) => {
                    replies.push(self.error(
                        ErrorCode::UnknownChannel,
                        error.to_string(),
                        Some(name.clone()),
                    ));
                    continue;
                }
            };
            if let Err(refusal) = self.grant.check(&channel) {
                let message = match refusal {
                    Refusal::OtherUser => format!(
                        "{name} belongs to another user; you may subscribe to your own {} only",
                        self.grant
                            .user()
                            .map_or_else(String::new, |user| format!("user:{user}:notifications"))
                    ),
                    Refusal::NotInClaim => {
                        format!("your token's `channels` claim does not include {name}")
                    }
                };
                self.shared.metrics.auth_failures.with_label_values(&["forbidden"]).inc();
                replies.push(self.error(ErrorCode::Forbidden, message, Some(name.clone())));
                continue;
            }
            if !self.subscriptions.contains(&channel) {
                if self.subscriptions.len() >= max {
                    let message = format!(
                        "this connection already has {max} subscriptions, the most allowed; unsubscribe from one first"
                    );
                    replies.push(self.error(
                        ErrorCode::TooManySubscriptions,
                        message,
                        Some(name.clone()),
                    ));
                    continue;
                }
                self.shared.hub.subscribe(&channel, self.id, &self.queue);
                self.subscriptions.push(channel);
            }
            if !granted.contains(name) {
                granted.push(name.clone());
            }
        }
        if !granted.is_empty() || names.is_empty() {
            let since: BTreeMap<String, String> =
                since.into_iter().filter(|(channel, _)| granted.contains(channel)).collect();
            if self.status.borrow().is_live() {
                return self.confirm_and_replay(replies, granted, &since).await;
            } else {
                // Confirmed by `upstream_changed` once events can flow again.
                // Each channel waits once, however often it is asked for, so
                // the list stays within the connection's subscriptions.
                for name in granted {
                    if !self.waiting_for_live.contains(&name) {
                        self.waiting_for_live.push(name);
                    }
                }
                self.waiting_since.extend(since);
            }
        }
        self.write(replies).await
    }

    async fn unsubscribe(&mut self, names: Vec<String>) -> Result<(), End> {
        if names.len() > MAX_NAMES_PER_FRAME {
            let reply = self.error(
                ErrorCode::BadRequest,
                format!("an unsubscribe frame may name at most {MAX_NAMES_PER_FRAME} channels, this one names {}", names.len()),
                None,
            );
            return self.write(vec![reply]).await;
        }
        let mut replies = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for name in &names {
            match Channel::parse(name) {
                Err(error) => {
                    replies.push(self.error(
                        ErrorCode::UnknownChannel,
                        error.to_string(),
                        Some(name.clone()),
                    ));
                }
                Ok(channel) => {
                    if let Some(index) = self.subscriptions.iter().position(|held| *held == channel)
                    {
                        self.subscriptions.swap_remove(index);
                        self.shared.hub.unsubscribe(&channel, self.id);
                    }
                    self.waiting_for_live.retain(|waiting| waiting != name);
                    self.waiting_since.remove(name);
                    self.replayed_up_to.forget(name);
                    if !removed.contains(name) {
                        removed.push(name.clone());
                    }
                }
            }
        }
        // Events queued before the hub forgot these channels go out first,
        // so none of them follows `unsubscribed`.
        while self.queue.has_frames() {
            self.send_queued().await?;
        }
        if !removed.is_empty() || names.is_empty() {
            replies.push(text_frame(&ServerFrame::Unsubscribed { channels: removed }));
        }
        self.write(replies).await
    }

    /// Checks, for each channel of `since` among `channels`, whether what
    /// it received after the given position can be replayed exactly: the
    /// `recovered` flags of the `subscribed` frame, error frames for bad
    /// positions, and the replays to run after it.
    async fn plan_replays(
        &mut self,
        channels: &[String],
        since: &BTreeMap<String, String>,
    ) -> Result<(BTreeMap<String, bool>, Vec<Message>, Vec<ReplayPlan>), End> {
        let mut recovered = BTreeMap::new();
        let mut errors = Vec::new();
        let mut plans = Vec::new();
        for (channel, position) in since {
            if !channels.contains(channel) {
                continue;
            }
            let since = match position.parse::<Position>() {
                Ok(since) => since,
                Err(error) => {
                    self.shared.hub.bad_position(self.id, channel, &error.to_string());
                    recovered.insert(channel.clone(), false);
                    errors.push(self.error(
                        ErrorCode::BadRequest,
                        format!("`since` for {channel}: {error}; starting live"),
                        Some(channel.clone()),
                    ));
                    continue;
                }
            };
            if in_the_future(&since) {
                self.shared.hub.bad_position(self.id, channel, "the position is in the future");
            }
            let Some((history, redis)) = &self.shared.history else {
                // No history here: nothing can be replayed.
                recovered.insert(channel.clone(), false);
                continue;
            };
            let redis_channel = format!("{REDIS_PREFIX}{channel}");
            let _slot = replay_slot(Arc::clone(&self.shared), Arc::clone(&self.queue)).await?;
            let check = match redis.check_replay(history, &redis_channel, &since).await {
                Ok(check) => check,
                Err(error) => {
                    tracing::warn!(connection = self.id, %channel, %error, "cannot read history for a resuming subscribe; closing so the client retries");
                    return Err(End::HistoryUnavailable);
                }
            };
            recovered.insert(channel.clone(), check.recovered());
            // A position history does not hold (trimmed, made up, in the
            // future) is no floor: it would hide live events.
            if let Some(floor) = check.last(&since) {
                self.replayed_up_to.raise(channel, floor);
            }
            // Another epoch's history is not this client's: nothing to send.
            if check.unrecovered != Some(Unrecovered::Epoch) {
                plans.push(ReplayPlan {
                    channel: channel.clone(),
                    from: since,
                    exact: check.recovered(),
                });
            }
        }
        Ok((recovered, errors, plans))
    }

    /// Sends what `plan.channel` received after `plan.from`, a page at a
    /// time: each page waits for this connection's replay budget and for
    /// one of the gateway's replay reads, and is written (and flushed)
    /// before the next is read, so a replay holds one page in memory and
    /// never more than `MAX_REPLAY_READS` pages are read from Redis at once.
    /// Should history be trimmed past the replay while it runs, a `missed`
    /// frame says so and what remains follows.
    async fn replay_pages(&mut self, plan: ReplayPlan) -> Result<(), End> {
        let Some((history, redis)) = self.shared.history.clone() else { return Ok(()) };
        let ReplayPlan { channel, mut from, mut exact } = plan;
        let redis_channel = format!("{REDIS_PREFIX}{channel}");
        loop {
            self.replay_budget_for(REPLAY_PAGE).await?;
            let page = {
                let _slot = replay_slot(Arc::clone(&self.shared), Arc::clone(&self.queue)).await?;
                redis.page(&history, &redis_channel, &from, REPLAY_PAGE).await
            };
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(connection = self.id, %channel, %error, "cannot read history during a replay; closing so the client resumes");
                    return Err(End::HistoryUnavailable);
                }
            };
            let mut frames = Vec::with_capacity(page.entries.len() + 1);
            if exact && !page.continuous {
                exact = false;
                let missed =
                    ServerFrame::Missed { channel: channel.clone(), since: Some(from.to_string()) };
                frames.push(text_frame(&missed));
            }
            let full = page.entries.len() >= REPLAY_PAGE;
            let mut replayed = 0u64;
            let mut sent_any = false;
            let max = self.shared.hub.max_event_bytes();
            for entry in page.entries {
                if entry.payload.len() > max {
                    // Recorded as received; replayed as the same notice
                    // live subscribers got, so a resume moves past it.
                    let notice = EventMessage::oversized(
                        &channel,
                        Some(&entry.position),
                        entry.payload.len(),
                        max,
                    );
                    frames.push(Message::Text(notice.frame));
                    from = entry.position;
                    sent_any = true;
                    continue;
                }
                let Ok(data) = std::str::from_utf8(&entry.payload) else { continue };
                // Malformed payloads were recorded as received; they are
                // never forwarded, live or replayed.
                if !matches!(tidings_events::decode(data.as_bytes()), Decoded::Malformed(_)) {
                    let message = EventMessage::at(&channel, Some(&entry.position), data);
                    frames.push(Message::Text(message.frame));
                    replayed += 1;
                }
                from = entry.position;
                sent_any = true;
            }
            self.shared.metrics.messages_out.inc_by(replayed);
            // Only a position read from history is a floor: the one asked
            // from may be made up (in the future) and would hide live events.
            if sent_any {
                self.replayed_up_to.raise(&channel, from.clone());
            }
            self.write(frames).await?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Takes `entries` from this connection's replay budget, waiting for it
    /// to refill when spent: a client that asks for replay after replay is
    /// slowed down, alone.
    async fn replay_budget_for(&mut self, entries: usize) -> Result<(), End> {
        let wait = self.replay_budget.take(entries);
        if wait.is_zero() {
            return Ok(());
        }
        self.shared.metrics.replays_throttled.inc();
        tokio::select! {
            biased;
            () = self.shared.shutdown.cancelled() => Err(End::Shutdown),
            () = self.queue.kicked() => Err(End::SlowConsumer),
            () = tokio::time::sleep(wait) => Ok(()),
        }
    }

    async fn ping(&mut self) -> Result<(), End> {
        if self.last_heard.elapsed() >= self.shared.config.idle_timeout {
            return Err(End::Idle);
        }
        self.write(vec![Message::Ping(Default::default())]).await
    }

    /// An `error` frame, counted.
    fn error(&self, code: ErrorCode, message: String, channel: Option<String>) -> Message {
        self.shared.metrics.client_errors.with_label_values(&[code.as_str()]).inc();
        text_frame(&ServerFrame::error(code, message, channel))
    }

    /// Writes `messages` and flushes (also flushing queued pongs), unless the
    /// connection is marked slow, the gateway shuts down, or the socket stays
    /// blocked past the write timeout.
    async fn write(&mut self, messages: impl IntoIterator<Item = Message>) -> Result<(), End> {
        let ws = &mut self.ws;
        let io = async move {
            for message in messages {
                ws.feed(message).await?;
            }
            ws.flush().await
        };
        tokio::select! {
            biased;
            result = io => result.map_err(|error| {
                tracing::debug!(connection = self.id, %error, "write to client failed");
                End::SocketError
            }),
            () = self.queue.kicked() => Err(End::SlowConsumer),
            () = self.shared.shutdown.cancelled() => Err(End::Shutdown),
            () = tokio::time::sleep(self.shared.config.write_timeout) => Err(End::WriteTimeout),
        }
    }

    /// Says goodbye as `end` requires, within the close timeout.
    async fn finish(&mut self, end: End) {
        let metrics = &self.shared.metrics;
        let (code, reason, extra): (u16, &str, Option<Message>) = match end {
            End::Shutdown => (CLOSE_GOING_AWAY, "gateway shutting down; reconnect", None),
            End::SlowConsumer => {
                tracing::info!(connection = self.id, user = ?self.grant.user().map(|u| u.as_str()), "slow consumer disconnected (1013)");
                (CLOSE_SLOW_CONSUMER, "slow consumer: outbound queue full; reconnect", None)
            }
            End::TooLarge => {
                let limit = self.shared.config.max_frame_bytes;
                let error = self.error(
                    ErrorCode::TooLarge,
                    format!("frame is larger than the gateway accepts ({limit} bytes)"),
                    None,
                );
                (CLOSE_TOO_LARGE, "frame too large", Some(error))
            }
            End::HistoryUnavailable => {
                (CLOSE_SLOW_CONSUMER, "history unavailable right now; reconnect and resume", None)
            }
            End::TokenExpired => {
                metrics
                    .auth_failures
                    .with_label_values(&[crate::metrics::EXPIRED_WHILE_CONNECTED])
                    .inc();
                (CLOSE_TOKEN_EXPIRED, "token expired; reconnect with a fresh token", None)
            }
            End::Idle => {
                metrics.idle_disconnects.inc();
                (CLOSE_GOING_AWAY, "idle timeout: no frames or pongs", None)
            }
            // The peer closed or the socket failed: tungstenite answers a
            // close by itself; just flush that reply.
            End::PeerClosed | End::SocketError | End::WriteTimeout => {
                let _ =
                    tokio::time::timeout(self.shared.config.close_timeout, self.ws.flush()).await;
                return;
            }
        };
        let close = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        let ws = &mut self.ws;
        let goodbye = async move {
            if let Some(extra) = extra {
                ws.feed(extra).await?;
            }
            ws.close(Some(close)).await?;
            // Wait for the client's close reply so TCP closes cleanly.
            while let Some(Ok(_)) = ws.next().await {}
            Ok::<(), WsError>(())
        };
        let _ = tokio::time::timeout(self.shared.config.close_timeout, goodbye).await;
    }
}

/// Waits for one of the gateway's replay reads (bounded per gateway), or
/// ends with the connection.
/// (Owned arguments: the connection's future must stay `Send` for any
/// lifetime, which borrowed ones across this await would not prove.)
async fn replay_slot(
    shared: Arc<Shared>,
    queue: Arc<FrameQueue>,
) -> Result<tokio::sync::OwnedSemaphorePermit, End> {
    tokio::select! {
        biased;
        () = shared.shutdown.cancelled() => Err(End::Shutdown),
        () = queue.kicked() => Err(End::SlowConsumer),
        permit = Arc::clone(&shared.replay_reads).acquire_owned() => permit.map_err(|_| End::Shutdown),
    }
}

/// When a connection whose token ends at `ends_at` must close; far in the
/// future (and never selected) without a token.
/// How far ahead of this machine's clock a position may be before it is
/// called "in the future" in the log: positions carry Redis's time, and the
/// two clocks may differ a little.
const FUTURE_SLACK_MS: u64 = 60_000;

/// Whether `position` was recorded later than now (plus the slack): no
/// history holds it yet, so a client sending it made it up.
fn in_the_future(position: &Position) -> bool {
    let now = tidings_events::millis_since_epoch(std::time::SystemTime::now());
    position.recorded_at() > u64::try_from(now).unwrap_or(0).saturating_add(FUTURE_SLACK_MS)
}

fn deadline(ends_at: Option<u64>) -> tokio::time::Instant {
    match ends_at {
        Some(seconds) => instant_of_unix_seconds(seconds),
        None => tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365),
    }
}

/// The tokio instant at `seconds` since the Unix epoch (now, if past).
fn instant_of_unix_seconds(seconds: u64) -> tokio::time::Instant {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    let left = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    tokio::time::Instant::now() + left
}

/// The `status` frame for `status`.
fn status_frame(status: &UpstreamStatus) -> Message {
    text_frame(&ServerFrame::Status { upstream: status.state, message: status.message.clone() })
}

fn text_frame(frame: &ServerFrame) -> Message {
    Message::Text(frame.to_json().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_budget_gives_its_burst_then_makes_the_next_page_wait_at_its_rate() {
        let mut budget = ReplayBudget::new();
        let pages_in_burst = (REPLAY_BURST as usize) / REPLAY_PAGE;
        for _ in 0..pages_in_burst {
            assert!(budget.take(REPLAY_PAGE).is_zero());
        }
        let wait = budget.take(REPLAY_PAGE);
        let expected = REPLAY_PAGE as f64 / REPLAY_RATE;
        assert!((wait.as_secs_f64() - expected).abs() < 0.01, "{wait:?}");
        let after = budget.take(REPLAY_PAGE);
        assert!(
            after.as_secs_f64() > expected,
            "the second wait queues behind the first: {after:?}"
        );
    }
}
