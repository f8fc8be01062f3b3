//! The pipeline: one task that owns the source, the feeds, the history
//! database and the notification policy, and turns source updates into UI
//! batches and notifications.
//!
//! Per message: decode → debug log (every message, raw) → for typed events:
//! dedup (by position when the source gives one, and by content: the same
//! payload on the same channel is the same event, whichever path or replay
//! brought it) → the feed (bounded in memory) → pending history rows → the
//! notification policy. Legacy and malformed messages reach only the debug
//! log.
//!
//! Batching: items, debug entries and state changes collect in one pending
//! [`UiBatch`], sent when it holds [`BATCH_MAX_ITEMS`] items or every
//! [`FLUSH_EVERY`], never once per event. History rows and positions are
//! written in the same flush, in one transaction.
//!
//! Bounds and what happens when full: the source queue ([`SOURCE_QUEUE`])
//! makes the source stop reading (Redis or the gateway then buffers); each
//! in-memory feed keeps its newest [`FEED_CAP`] items (older ones stay in
//! history); the debug log keeps [`DEBUG_CAP`]; the dedup memory forgets the
//! oldest of [`DEDUP_CAP`] keys; the UI queue ([`UI_QUEUE`]) is offered each
//! batch without waiting: if the UI has not taken earlier ones, the pending
//! batch keeps growing (its items capped at [`PENDING_CAP`], oldest dropped;
//! they remain in history and in the next snapshot).
//!
//! Supervision: the pipeline is the source's one owner. A source that ends
//! on its own after reporting `Offline` (a configuration it can never use)
//! stays offline, saying why. One that ends any other way while the
//! pipeline still listens (its task panicked, or stopped without a word) is
//! reported `Offline` with that reason and started again after
//! [`RESTART_BACKOFF`] (full jitter, growing with each end before the
//! source reaches `Live` again).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidings::history::HistoryConfig;
use tidings::source::{
    GatewaySourceConfig, RedisSourceConfig, SourceHandle, SourceMessage, SourceState, SourceUpdate,
    Subscription, spawn_gateway_source, spawn_redis_source,
};
use tidings_events::{Channel, Decoded, decode};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{masked, save_settings, unmask, validate};
use crate::ipc::{
    ConnectionState, DebugCounters, DebugEntry, FeedId, FeedItem, FocusRequest, HistoryQuery,
    Outcome, Settings, Snapshot, SourceKind, SourceStatus, Toast, UiBatch, Urgency,
};
use crate::notify::{NotificationRequest, NotificationResponse, Notifier, NotifyError};
use crate::policy::{Now, Policy, action_link_of, feed_of, for_ui};
use crate::store::{SetAside, Store, StoredItem, extra_fields};

pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
pub const BATCH_MAX_ITEMS: usize = 500;
pub const SOURCE_QUEUE: usize = 4096;
pub const FEED_CAP: usize = 500;
pub const DEBUG_CAP: usize = 1000;
pub const DEDUP_CAP: usize = 100_000;
pub const UI_QUEUE: usize = 64;
/// In-window toasts per batch; a burst keeps the newest.
pub const TOAST_CAP: usize = 20;
/// History rows written between two prunes, besides the 10-minute timer, so
/// the count bound holds under heavy traffic too.
pub const PRUNE_EVERY_ROWS: usize = 20_000;
/// A history write slower than this held the feeds back noticeably; it is
/// logged (at most once a minute, with how many there were).
const SLOW_WRITE: Duration = Duration::from_millis(250);
pub const PENDING_CAP: usize = 5000;
/// After no notification daemon answered, how long before asking again.
pub const NATIVE_RETRY_MS: i64 = 60_000;
/// Delays before restarting a source that ended unexpectedly: up to 0.5 s
/// after the first end, doubling to at most 30 s while it keeps ending
/// before it reaches `Live`, each drawn from zero to that ceiling.
pub const RESTART_BACKOFF: tidings::Backoff =
    tidings::Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(30) };
/// Raw payloads in the debug log are cut to this many bytes.
const RAW_CAP: usize = 4096;

/// Requests from the [`crate::Desk`] facade to the pipeline task.
#[derive(Debug)]
pub enum Command {
    Snapshot(oneshot::Sender<Snapshot>),
    History(HistoryQuery, oneshot::Sender<Result<Vec<FeedItem>, String>>),
    MarkRead(Vec<String>),
    MarkAllRead(FeedId),
    Acknowledge(String),
    Pause {
        minutes: u32,
    },
    Settings(oneshot::Sender<Settings>),
    SetSettings(Box<Settings>, oneshot::Sender<Result<(), String>>),
    TestNotification(oneshot::Sender<Result<(), String>>),
    ActionUrl(String, oneshot::Sender<Result<String, String>>),
    Response(NotificationResponse, oneshot::Sender<Option<FocusRequest>>),
    Unread(oneshot::Sender<u32>),
    /// Test hook (feature `test-hooks`): stops the source behind the
    /// pipeline's back, as a crash of its task would, to test supervision.
    #[cfg(feature = "test-hooks")]
    EndSource,
}

/// What the pipeline starts with.
pub(crate) struct PipelineParts {
    pub settings: Settings,
    pub config_path: std::path::PathBuf,
    pub config_error: Option<crate::config::ConfigError>,
    pub store: Store,
    /// The damaged database [`Store::open_or_set_aside`] moved, if it did.
    pub set_aside: Option<SetAside>,
    pub notifier: Arc<dyn Notifier>,
    pub ui: mpsc::Sender<UiBatch>,
    pub commands: mpsc::Receiver<Command>,
    pub cancel: CancellationToken,
}

/// Bounded memory of recently seen keys: 128-bit hashes (of a channel and
/// payload, or of a channel and position), 16 bytes each rather than a
/// string, so [`DEDUP_CAP`] keys cost a few MiB.
#[derive(Debug, Default)]
struct Seen {
    keys: HashSet<u128>,
    order: VecDeque<u128>,
}

impl Seen {
    /// Remembers `key`; false when it was already there. When full, the
    /// oldest key is forgotten.
    fn insert(&mut self, key: u128) -> bool {
        if !self.keys.insert(key) {
            return false;
        }
        if self.order.len() >= DEDUP_CAP
            && let Some(oldest) = self.order.pop_front()
        {
            self.keys.remove(&oldest);
        }
        self.order.push_back(key);
        true
    }

    fn contains(&self, key: u128) -> bool {
        self.keys.contains(&key)
    }
}

fn now_millis() -> i64 {
    tidings_events::millis_since_epoch(std::time::SystemTime::now())
}

fn local_minute() -> u32 {
    use chrono::Timelike;
    let now = chrono::Local::now();
    now.hour() * 60 + now.minute()
}

/// The content key of a message: channel and payload.
fn content_key(channel: &str, payload: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(&[channel.as_bytes(), b"\n", payload].concat())
}

/// The key of a position on a channel.
fn position_key(channel: &str, position: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(&[channel.as_bytes(), b"@", position.as_bytes()].concat())
}

/// An item's id: its content key in hex (ids from history parse back).
fn item_id(key: u128) -> String {
    format!("{key:032x}")
}

/// The channels a settings' source subscribes to: every shared channel (the
/// debug log shows all of them; feeds filter what is shown) and the user's own.
fn channels(settings: &Settings) -> Vec<Channel> {
    let mut channels: Vec<Channel> = [
        "inventory",
        "orders",
        "approvals",
        "finance",
        "products",
        "customers",
        "suppliers",
        "system",
        "broadcast",
    ]
    .iter()
    .filter_map(|name| Channel::parse(name).ok())
    .collect();
    if let Some(user) = crate::config::user_of(&settings.source) {
        channels.push(Channel::user(user));
    }
    channels
}

struct Pipeline {
    settings: Settings,
    config_path: std::path::PathBuf,
    config_error: Option<crate::config::ConfigError>,
    store: Store,
    notifier: Arc<dyn Notifier>,
    /// Whether the last native notification was shown (false: toasts).
    native_notifications: bool,
    /// When to ask the notification daemon again after it was missing.
    native_retry_at: i64,
    /// The UI queue was full at the last flush.
    ui_behind: bool,
    ui: mpsc::Sender<UiBatch>,
    cancel: CancellationToken,
    source: Option<(SourceHandle, CancellationToken)>,
    /// When to start the source again after it ended unexpectedly.
    restart_at: Option<tokio::time::Instant>,
    /// Unexpected ends since the source was last `Live`.
    restarts: u32,
    status: SourceStatus,
    feeds: BTreeMap<FeedId, VecDeque<FeedItem>>,
    debug: VecDeque<DebugEntry>,
    counters: DebugCounters,
    unread: BTreeMap<FeedId, u32>,
    seen: Seen,
    seq: u64,
    policy: Policy,
    paused_until: Option<i64>,
    pending: UiBatch,
    pending_rows: Vec<StoredItem>,
    pending_positions: BTreeMap<String, String>,
    unread_changed: bool,
    rows_since_prune: usize,
    slow_writes: SlowWrites,
    /// What the window's notice banner says (see [`Snapshot::notice`]).
    notice: Option<String>,
}

/// Slow history writes since the last warning about them.
#[derive(Default)]
struct SlowWrites {
    count: u32,
    worst: Duration,
    warned_at: Option<Instant>,
}

impl SlowWrites {
    fn record(&mut self, took: Duration, rows: usize) {
        if took < SLOW_WRITE {
            return;
        }
        self.count += 1;
        self.worst = self.worst.max(took);
        if self.warned_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            tracing::warn!(
                slowest_ms = self.worst.as_millis() as u64,
                slow_writes = self.count,
                last_rows = rows,
                "writing history to disk was slow, and the feeds waited for it; is the disk busy or remote?"
            );
            *self = SlowWrites { warned_at: Some(Instant::now()), ..SlowWrites::default() };
        }
    }
}

/// Runs the pipeline until `parts.cancel` is cancelled.
pub(crate) async fn run(parts: PipelineParts) {
    let PipelineParts {
        settings,
        config_path,
        config_error,
        store,
        set_aside,
        notifier,
        ui,
        mut commands,
        cancel,
    } = parts;
    let seq = store.max_seq().unwrap_or(0);
    let mut seen = Seen::default();
    for id in store.recent_ids(20_000).unwrap_or_default().into_iter().rev() {
        if let Ok(key) = u128::from_str_radix(&id, 16) {
            seen.insert(key);
        }
    }
    let feeds = store
        .latest(FEED_CAP as u32)
        .map(|feeds| feeds.into_iter().map(|(feed, items)| (feed, items.into())).collect())
        .unwrap_or_default();
    let unread = store.unread().unwrap_or_default();
    // The positions to resume from went with a damaged database: what was
    // published since it was last written may be missing.
    let status = SourceStatus {
        kind: settings.source.kind,
        url: tidings::redact_url(&settings.source.url),
        connection: ConnectionState::Connecting,
        missed_since: set_aside.as_ref().map(|aside| aside.last_written.unwrap_or_else(now_millis)),
    };
    let notice = set_aside.map(|aside| {
        format!(
            "The history database was damaged ({}) and has been set aside as {}; a new one was started, so earlier history is not shown and events may have been missed.",
            aside.reason,
            aside.moved_to.display()
        )
    });
    let mut pipeline = Pipeline {
        settings,
        config_path,
        config_error,
        store,
        notifier,
        native_notifications: true,
        native_retry_at: 0,
        ui_behind: false,
        ui,
        cancel,
        source: None,
        restart_at: None,
        restarts: 0,
        status,
        feeds,
        debug: VecDeque::new(),
        counters: DebugCounters::default(),
        unread,
        seen,
        seq,
        policy: Policy::default(),
        paused_until: None,
        pending: UiBatch::default(),
        pending_rows: Vec::new(),
        pending_positions: BTreeMap::new(),
        unread_changed: false,
        rows_since_prune: 0,
        slow_writes: SlowWrites::default(),
        notice: None,
    };
    if let Some(notice) = notice {
        pipeline.tell(notice);
    }
    pipeline.start_source();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prune = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            biased;
            () = pipeline.cancel.cancelled() => break,
            command = commands.recv() => match command {
                Some(command) => pipeline.command(command),
                None => break,
            },
            update = next_update(&mut pipeline.source) => match update {
                Some(update) => {
                    pipeline.update(update);
                    // A full batch goes at once, unless the UI has not taken
                    // the last ones: then the 50 ms tick offers it again, so a
                    // slow window never costs a history write per event.
                    if pipeline.pending.items.len() >= BATCH_MAX_ITEMS && !pipeline.ui_behind {
                        pipeline.flush();
                    }
                }
                None => pipeline.source_ended(),
            },
            () = restart_due(pipeline.restart_at) => {
                pipeline.restart_at = None;
                tracing::info!(restarts = pipeline.restarts, "restarting the source");
                pipeline.start_source();
            }
            _ = flush.tick() => pipeline.flush(),
            _ = prune.tick() => {
                if let Err(error) = pipeline.store.prune(now_millis()) {
                    tracing::warn!(%error, "pruning history failed");
                }
            }
        }
    }
    // Marks the UI sent just before shutdown still count.
    while let Ok(command) = commands.try_recv() {
        pipeline.command(command);
    }
    pipeline.flush();
    pipeline.stop_source().await;
}

async fn next_update(
    source: &mut Option<(SourceHandle, CancellationToken)>,
) -> Option<SourceUpdate> {
    match source {
        Some((handle, _)) => handle.updates.recv().await,
        None => std::future::pending().await,
    }
}

async fn restart_due(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Pipeline {
    fn start_source(&mut self) {
        self.restart_at = None;
        if let Err(error) = validate(&self.settings) {
            self.set_connection(ConnectionState::Offline { reason: error.to_string() });
            return;
        }
        let resume = self.store.positions().unwrap_or_default();
        let token = self.cancel.child_token();
        let source = &self.settings.source;
        let handle = match source.kind {
            SourceKind::Redis => {
                let config = RedisSourceConfig {
                    subscriptions: channels(&self.settings)
                        .into_iter()
                        .map(Subscription::Channel)
                        .collect(),
                    history: Some(HistoryConfig::default()),
                    resume,
                    resume_tails: self
                        .store
                        .unlocated_tails()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(channel, (payload, at))| (channel, (payload.into(), at)))
                        .collect(),
                    ..RedisSourceConfig::new(source.url.clone())
                };
                spawn_redis_source(config, token.clone(), SOURCE_QUEUE)
            }
            SourceKind::Gateway => {
                let config = GatewaySourceConfig {
                    resume,
                    ..GatewaySourceConfig::new(
                        source.url.clone(),
                        source.token.clone().filter(|t| !t.is_empty()),
                        channels(&self.settings),
                    )
                };
                spawn_gateway_source(config, token.clone(), SOURCE_QUEUE)
            }
        };
        self.status.kind = source.kind;
        self.status.url = tidings::redact_url(&source.url);
        self.set_connection(ConnectionState::Connecting);
        self.source = Some((handle, token));
    }

    async fn stop_source(&mut self) {
        if let Some((handle, token)) = self.source.take() {
            token.cancel();
            handle.finished().await;
        }
    }

    /// The source's queue closed while the pipeline still listens: see the
    /// module docs, "Supervision".
    fn source_ended(&mut self) {
        let Some((handle, token)) = self.source.take() else { return };
        token.cancel();
        // A panic is logged by `wait` (with its message); off the pipeline.
        tokio::spawn(handle.task.wait());
        if let ConnectionState::Offline { reason } = &self.status.connection {
            // The source said why it cannot run (a configuration a person
            // has to fix) and ended: it stays offline, as it said.
            tracing::warn!(%reason, "the source ended: its configuration cannot work");
            return;
        }
        self.restarts = self.restarts.saturating_add(1);
        let delay = RESTART_BACKOFF.delay(self.restarts);
        tracing::error!(
            restarts = self.restarts,
            ?delay,
            "the source stopped unexpectedly; restarting it"
        );
        self.restart_at = Some(tokio::time::Instant::now() + delay);
        self.set_connection(ConnectionState::Offline {
            reason: format!(
                "the connection to the source stopped unexpectedly (a fault in Tidings; the log has details); restarting in {:.1} s",
                delay.as_secs_f64()
            ),
        });
    }

    fn set_connection(&mut self, connection: ConnectionState) {
        self.status.connection = connection;
        self.pending.status = Some(self.status.clone());
    }

    fn update(&mut self, update: SourceUpdate) {
        match update {
            SourceUpdate::State(state) => {
                let connection = match state {
                    SourceState::Connecting => ConnectionState::Connecting,
                    SourceState::Live => {
                        self.restarts = 0;
                        ConnectionState::Live
                    }
                    SourceState::Reconnecting { attempt, retry_in, reason } => {
                        ConnectionState::Reconnecting {
                            attempt,
                            retry_at: now_millis()
                                + i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX),
                            reason,
                        }
                    }
                    SourceState::Offline { reason } => ConnectionState::Offline { reason },
                };
                self.set_connection(connection);
            }
            SourceUpdate::Missed { channel, since } => {
                tracing::warn!(%channel, ?since, "events may have been missed");
                let since = since.unwrap_or_else(now_millis);
                let earliest = self.status.missed_since.map_or(since, |old| old.min(since));
                self.status.missed_since = Some(earliest);
                self.pending.status = Some(self.status.clone());
            }
            SourceUpdate::Position { channel, position } => {
                self.pending_positions.insert(channel, position);
            }
            SourceUpdate::Skipped { channel, position, reason } => {
                // Shown like a gap: an event on `channel` did not arrive.
                tracing::warn!(%channel, %reason, "skipped an event the gateway did not forward");
                let now = now_millis();
                let earliest = self.status.missed_since.map_or(now, |old| old.min(now));
                self.status.missed_since = Some(earliest);
                self.pending.status = Some(self.status.clone());
                if let Some(position) = position {
                    self.pending_positions.insert(channel, position);
                }
            }
            SourceUpdate::Message(message) => self.message(message),
        }
    }

    fn message(&mut self, message: SourceMessage) {
        let SourceMessage { channel, payload, received_at, position } = message;
        if let Some(position) = &position {
            self.pending_positions.insert(channel.clone(), position.clone());
        }
        let decoded = decode(&payload);
        self.counters.received += 1;
        let (outcome, reason) = match &decoded {
            Decoded::Typed { .. } => (Outcome::Typed, None),
            Decoded::Legacy { .. } => (Outcome::Legacy, None),
            Decoded::Malformed(malformed) => (Outcome::Malformed, Some(malformed.reason.clone())),
        };
        match outcome {
            Outcome::Typed => self.counters.typed += 1,
            Outcome::Legacy => self.counters.legacy += 1,
            Outcome::Malformed => self.counters.malformed += 1,
        }
        self.seq += 1;
        let cut = payload.len().min(RAW_CAP);
        let entry = DebugEntry {
            seq: self.seq,
            channel: channel.clone(),
            received_at,
            outcome,
            raw: crate::text::clean_lines(&String::from_utf8_lossy(&payload[..cut])),
            reason: reason.map(|reason| crate::text::clean_lines(&reason)),
        };
        push_capped(&mut self.debug, entry.clone(), DEBUG_CAP);
        push_capped_vec(&mut self.pending.debug, entry, DEBUG_CAP);
        self.pending.counters = Some(self.counters);

        let Decoded::Typed { event, raw } = decoded else { return };
        let key = content_key(&channel, &payload);
        let at = position.as_deref().map(|p| position_key(&channel, p));
        if self.seen.contains(key) || at.is_some_and(|at| self.seen.contains(at)) {
            self.counters.duplicates += 1;
            return;
        }
        self.seen.insert(key);
        if let Some(at) = at {
            self.seen.insert(at);
        }
        let id = item_id(key);
        let feed = feed_of(&event);
        let logical = channel.strip_prefix("ws:").unwrap_or(&channel).to_owned();
        let mut item = FeedItem {
            id,
            seq: self.seq,
            feed,
            channel: logical,
            received_at,
            read: false,
            extra: extra_fields(&event, raw),
            link: None,
            event,
        };
        crate::text::clean_item(&mut item, &payload);
        let shown = self.settings.feeds.get(&feed).is_none_or(|rule| rule.enabled);
        if shown {
            *self.unread.entry(feed).or_default() += 1;
            self.unread_changed = true;
        }
        push_capped(self.feeds.entry(feed).or_default(), item.clone(), FEED_CAP);
        self.pending_rows.push(StoredItem {
            item: item.clone(),
            payload: String::from_utf8_lossy(&payload).into_owned(),
            position,
        });
        let now = Now {
            millis: now_millis(),
            local_minute: local_minute(),
            paused_until: self.paused_until,
        };
        if shown && let Some(request) = self.policy.decide(&item, &self.settings, now) {
            let _shown = self.notify(request, Some(item.id.clone()));
        }
        push_capped_vec(&mut self.pending.items, for_ui(item, &self.settings), PENDING_CAP);
    }

    /// Shows `request` natively, or as a toast in the next batch when that
    /// fails; says which. After the daemon was found missing, it is asked
    /// again only every [`NATIVE_RETRY_MS`] (one may start later in the
    /// session); the log says so once per outage, not per notification.
    fn notify(
        &mut self,
        request: NotificationRequest,
        item_id: Option<String>,
    ) -> Result<(), NotifyError> {
        let now = now_millis();
        let result = if self.native_notifications || now >= self.native_retry_at {
            self.notifier.notify(request.clone())
        } else {
            Err(NotifyError::Unavailable("no notification daemon answered recently".into()))
        };
        match &result {
            Ok(()) => {
                if !self.native_notifications {
                    tracing::info!("a notification daemon answers again; notifying natively");
                    self.native_notifications = true;
                }
                return result;
            }
            Err(NotifyError::Unavailable(reason)) => {
                if self.native_notifications {
                    tracing::warn!(%reason, "no notification daemon; showing notifications inside the window until one answers");
                    self.native_notifications = false;
                }
                if now >= self.native_retry_at {
                    self.native_retry_at = now + NATIVE_RETRY_MS;
                }
            }
            Err(error @ NotifyError::Refused(_)) => {
                tracing::warn!(%error, "notification refused; showing it inside the window");
            }
        }
        let toast =
            Toast { title: request.title, body: request.body, urgency: request.urgency, item_id };
        push_capped_vec(&mut self.pending.toasts, toast, TOAST_CAP);
        result
    }

    /// Writes pending history rows and positions (one transaction).
    fn write_pending(&mut self) {
        if !self.pending_rows.is_empty() || !self.pending_positions.is_empty() {
            let rows = std::mem::take(&mut self.pending_rows);
            let positions = std::mem::take(&mut self.pending_positions);
            let started = Instant::now();
            if let Err(error) = self.store.write(&rows, &positions) {
                tracing::error!(%error, "writing history failed; these events stay on screen but not on disk");
            }
            self.slow_writes.record(started.elapsed(), rows.len());
            self.rows_since_prune += rows.len();
            if self.rows_since_prune >= PRUNE_EVERY_ROWS {
                self.rows_since_prune = 0;
                if let Err(error) = self.store.prune(now_millis()) {
                    tracing::warn!(%error, "pruning history failed");
                }
            }
        }
    }

    /// Sends the pending batch and writes pending history, if any, after
    /// raising summaries whose count grew since they were last shown.
    fn flush(&mut self) {
        for request in self.policy.due(&self.settings, now_millis()) {
            let _shown = self.notify(request, None);
        }
        self.write_pending();
        if self.unread_changed {
            self.pending.unread = Some(self.unread.clone());
            self.unread_changed = false;
        }
        let batch = &self.pending;
        let empty = batch.items.is_empty()
            && batch.debug.is_empty()
            && batch.status.is_none()
            && batch.counters.is_none()
            && batch.unread.is_none()
            && batch.toasts.is_empty()
            && batch.focus.is_none()
            && batch.notice.is_none();
        if empty {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        match self.ui.try_send(batch) {
            Ok(()) => self.ui_behind = false,
            Err(mpsc::error::TrySendError::Full(batch)) => {
                self.ui_behind = true;
                // The UI is behind: keep collecting into one batch.
                self.pending = batch;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            status: self.status.clone(),
            feeds: self
                .feeds
                .iter()
                .map(|(feed, items)| {
                    (*feed, items.iter().map(|item| for_ui(item.clone(), &self.settings)).collect())
                })
                .collect(),
            unread: self.unread.clone(),
            debug: self.debug.iter().cloned().collect(),
            counters: self.counters,
            settings: masked(&self.settings),
            config_error: self.config_error.clone().map(|error| error.to_string()),
            native_notifications: self.native_notifications,
            paused_until: self.paused_until.filter(|until| *until > now_millis()),
            notice: self.notice.clone(),
        }
    }

    /// Tells the user `notice` (a banner in the window, until replaced).
    fn tell(&mut self, notice: String) {
        self.pending.notice = Some(notice.clone());
        self.notice = Some(notice);
    }

    fn command(&mut self, command: Command) {
        // Marks and queries must see every item already shown.
        self.write_pending();
        match command {
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::History(query, reply) => {
                let items = self.store.query(&query).map_err(|e| e.to_string()).map(|items| {
                    items.into_iter().map(|item| for_ui(item, &self.settings)).collect()
                });
                let _ = reply.send(items);
            }
            Command::MarkRead(ids) => {
                if let Err(error) = self.store.mark_read(&ids) {
                    tracing::warn!(%error, "mark read failed");
                }
                let ids: HashSet<&String> = ids.iter().collect();
                for items in self.feeds.values_mut() {
                    for item in items.iter_mut().filter(|item| ids.contains(&item.id)) {
                        item.read = true;
                    }
                }
                self.refresh_unread();
            }
            Command::MarkAllRead(feed) => {
                if let Err(error) = self.store.mark_all_read(feed) {
                    tracing::warn!(%error, "mark all read failed");
                }
                if let Some(items) = self.feeds.get_mut(&feed) {
                    items.iter_mut().for_each(|item| item.read = true);
                }
                self.refresh_unread();
            }
            Command::Acknowledge(id) => {
                if let Err(error) = self.store.acknowledge(&id) {
                    tracing::warn!(%error, "acknowledge failed");
                }
                for items in self.feeds.values_mut() {
                    for item in items.iter_mut().filter(|item| item.id == id) {
                        item.read = true;
                    }
                }
                self.refresh_unread();
            }
            Command::Pause { minutes } => {
                self.paused_until =
                    (minutes > 0).then(|| now_millis() + i64::from(minutes) * 60_000);
            }
            Command::Settings(reply) => {
                let _ = reply.send(masked(&self.settings));
            }
            Command::SetSettings(edited, reply) => {
                let (settings, token_dropped) = match unmask(*edited, &self.settings) {
                    Ok(unmasked) => (unmasked.settings, unmasked.token_dropped),
                    Err(error) => {
                        let _ = reply.send(Err(error.to_string()));
                        return;
                    }
                };
                let result = save_settings(&self.config_path, &settings).map_err(|e| e.to_string());
                if result.is_ok() {
                    if token_dropped {
                        let host = url::Url::parse(settings.source.url.trim())
                            .ok()
                            .and_then(|url| url.host_str().map(str::to_owned))
                            .unwrap_or_default();
                        self.tell(format!(
                            "The gateway token was not sent to the new host {host}: enter the token for that gateway in Settings."
                        ));
                    }
                    let source_changed = settings.source != self.settings.source;
                    self.settings = settings;
                    self.config_error = None;
                    if source_changed {
                        if let Some((_, token)) = self.source.take() {
                            // Its task ends on its own; it is not awaited here
                            // so the pipeline never blocks on a network close.
                            token.cancel();
                        }
                        self.status.missed_since = None;
                        self.start_source();
                    }
                }
                let _ = reply.send(result);
            }
            Command::TestNotification(reply) => {
                let request = NotificationRequest {
                    key: "tidings-test".into(),
                    title: "Tidings".into(),
                    body: "通知测试 · Test notification".into(),
                    urgency: Urgency::Normal,
                    resident: false,
                    target: None,
                };
                // Shown in the window when it cannot be shown natively; the
                // answer says why, for the settings screen.
                let result = self.notify(request, None).map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            Command::ActionUrl(id, reply) => {
                let url = match self.store.item(&id) {
                    Ok(Some(item)) => match action_link_of(&item, &self.settings) {
                        Some(Ok(url)) => Ok(url.into()),
                        Some(Err(refused)) => Err(format!("not opened: {refused}")),
                        None => Err("this item has no action link".to_owned()),
                    },
                    Ok(None) => Err(format!("no item {id}")),
                    Err(error) => Err(error.to_string()),
                };
                let _ = reply.send(url);
            }
            Command::Response(response, reply) => {
                let focus = match response {
                    NotificationResponse::Clicked(target) => {
                        let focus = FocusRequest { feed: target.feed, item_id: target.item_id };
                        self.pending.focus = Some(focus.clone());
                        Some(focus)
                    }
                    NotificationResponse::Dismissed { .. } => None,
                };
                let _ = reply.send(focus);
            }
            Command::Unread(reply) => {
                let _ = reply.send(self.unread_total());
            }
            #[cfg(feature = "test-hooks")]
            Command::EndSource => {
                if let Some((_, token)) = &self.source {
                    token.cancel();
                }
            }
        }
    }

    fn refresh_unread(&mut self) {
        if let Ok(unread) = self.store.unread() {
            self.unread = unread;
            self.unread_changed = true;
        }
    }

    fn unread_total(&self) -> u32 {
        self.unread
            .iter()
            .filter(|(feed, _)| self.settings.feeds.get(feed).is_none_or(|rule| rule.enabled))
            .map(|(_, count)| *count)
            .sum()
    }
}

fn push_capped<T>(queue: &mut VecDeque<T>, value: T, cap: usize) {
    if queue.len() >= cap {
        queue.pop_front();
    }
    queue.push_back(value);
}

/// Appends to a batch's list; when it is full, the oldest tenth goes at
/// once (not one element per push: that would shift the whole list each
/// time the UI is behind).
fn push_capped_vec<T>(list: &mut Vec<T>, value: T, cap: usize) {
    if list.len() >= cap {
        list.drain(..(cap / 10).max(1));
    }
    list.push(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dedup_memory_forgets_its_oldest_key_when_full() {
        let mut seen = Seen::default();
        for key in 0..DEDUP_CAP as u128 {
            assert!(seen.insert(key));
        }
        assert!(!seen.insert(0), "a key seen is a duplicate");
        assert!(seen.insert(DEDUP_CAP as u128));
        assert!(!seen.contains(0), "the oldest went to make room");
        assert!(seen.contains(1) && seen.contains(DEDUP_CAP as u128));
        assert_eq!((seen.keys.len(), seen.order.len()), (DEDUP_CAP, DEDUP_CAP));
    }

    #[test]
    fn a_position_and_a_payload_have_different_keys_on_different_channels() {
        let payload = br#"{"type":"broadcast","message":"hi","timestamp":1}"#;
        assert_ne!(content_key("ws:broadcast", payload), content_key("ws:system", payload));
        assert_ne!(position_key("ws:orders", "e:1-0"), position_key("ws:inventory", "e:1-0"));
        let key = content_key("ws:broadcast", payload);
        assert_eq!(u128::from_str_radix(&item_id(key), 16), Ok(key), "ids parse back");
    }

    #[test]
    fn a_full_batch_list_drops_its_oldest_tenth() {
        let mut list: Vec<u32> = (0..100).collect();
        push_capped_vec(&mut list, 100, 100);
        assert_eq!(list.len(), 91);
        assert_eq!((list[0], list[90]), (10, 100));
    }
}
