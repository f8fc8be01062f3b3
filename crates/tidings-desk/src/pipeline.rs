//! The pipeline: one task that owns the source, the feeds and the
//! notification policy, and turns source updates into UI batches,
//! notifications and history rows. It never waits on the outside world:
//! the notifier only queues (`crate::routing`), history is written by its
//! own thread (`crate::history`), settings are saved on a blocking thread.
//!
//! Per message: decode → debug log (every message, raw) → for typed events:
//! dedup (by position when the source gives one, and by content: the same
//! payload on the same channel is the same event, whichever path or replay
//! brought it) → the feed (bounded in memory) → pending history rows → the
//! notification policy and routing. Legacy and malformed messages reach only
//! the debug log.
//!
//! Named parts, one job each: `Dedup`, `Feeds`, `DebugLog`,
//! `PendingBatch`, `Routing` (notifications), `History` (the writer's
//! handle); each command is one short method.
//!
//! Batching: items, debug entries and state changes collect in one pending
//! [`UiBatch`]. An item that arrives after a quiet moment (nothing sent for
//! [`FLUSH_EVERY`]) is sent at once; under load a batch goes when it holds
//! [`BATCH_MAX_ITEMS`] items or every [`FLUSH_EVERY`], never once per event.
//! Each flush hands the history writer that flush's rows and positions, to
//! be written in one transaction.
//!
//! Bounds and what happens when full: the source queue ([`SOURCE_QUEUE`])
//! makes the source stop reading (Redis or the gateway then buffers), and so
//! does a history writer more than [`crate::history::BACKLOG_ROWS`] rows
//! behind (the pipeline stops taking from the source queue); each in-memory
//! feed keeps its newest [`FEED_CAP`] items (older ones stay in history);
//! the debug log keeps [`DEBUG_CAP`]; the dedup memory forgets the oldest of
//! [`DEDUP_CAP`] keys; the UI queue ([`UI_QUEUE`]) is offered each batch
//! without waiting: if the UI has not taken earlier ones, the pending batch
//! keeps growing (its items capped at [`PENDING_CAP`], oldest dropped; they
//! remain in history and in the next snapshot); settings saves wait their
//! turn, at most [`SAVES_WAITING`], beyond which a save is refused as busy.
//!
//! Supervision: the pipeline is the source's one owner. A source that ends
//! on its own after reporting `Offline` (a configuration it can never use)
//! stays offline, saying why. One that ends any other way while the
//! pipeline still listens (its task panicked, or stopped without a word) is
//! reported `Offline` with that reason and started again after
//! [`RESTART_BACKOFF`] (full jitter, growing with each end before the
//! source reaches `Live` again), from the positions the writer has stored
//! once every row before it is written.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tidings::history::HistoryConfig;
use tidings::source::{
    GatewaySourceConfig, RedisSourceConfig, SourceHandle, SourceMessage, SourceState, SourceUpdate,
    Subscription, spawn_gateway_source, spawn_redis_source,
};
use tidings_events::{Channel, Decoded, decode};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, masked, save_settings, unmask, validate};
use crate::error::Refusal;
use crate::history::{History, Job, ResumePoint, Unread};
use crate::ipc::{
    ConnectionState, DebugCounters, DebugEntry, FeedId, FeedItem, FocusRequest, HistoryQuery,
    Outcome, Settings, Snapshot, SnoozeFor, SourceKind, SourceStatus, UiBatch, Urgency,
};
use crate::notify::ActionKind;
use crate::notify::{NotificationRequest, NotificationResponse};
use crate::policy::{Now, Policy, feed_of, for_ui};
use crate::routing::{Routing, TOAST_CAP};
use crate::snooze::{MAX_SNOOZE_MS, Snoozes, tomorrow_at_nine};
use crate::store::{SetAside, Store, StoreError, StoredItem, extra_fields};

/// How often pending changes go to the UI; also the quiet moment after which an
/// item is sent at once.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A batch holding this many items is sent without waiting for the tick.
pub const BATCH_MAX_ITEMS: usize = 500;
/// Updates the source may queue for the pipeline before it stops reading.
pub const SOURCE_QUEUE: usize = 4096;
/// Newest items kept in memory per feed (and sent in a snapshot).
pub const FEED_CAP: usize = 500;
/// Newest entries the debug log keeps.
pub const DEBUG_CAP: usize = 1000;
/// Keys the dedup memory holds before it forgets the oldest.
pub const DEDUP_CAP: usize = 100_000;
/// Batches waiting for the UI to take them.
pub const UI_QUEUE: usize = 64;
/// Most items the pending batch holds while the UI is behind; the oldest go.
pub const PENDING_CAP: usize = 5000;
/// Settings saves waiting behind the one being written.
pub const SAVES_WAITING: usize = 4;
/// Delays before restarting a source that ended unexpectedly: up to 0.5 s
/// after the first end, doubling to at most 30 s while it keeps ending
/// before it reaches `Live`, each drawn from zero to that ceiling.
pub const RESTART_BACKOFF: tidings::Backoff =
    tidings::Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(30) };
/// Raw payloads in the debug log are cut to this many bytes.
const RAW_CAP: usize = 4096;
/// Items of history read at start to seed the dedup memory.
const SEED_IDS: u32 = 20_000;

/// Requests from the [`crate::Desk`] facade to the pipeline task.
#[derive(Debug)]
pub enum Command {
    /// Answer with everything the UI needs for its first frame.
    Snapshot(oneshot::Sender<Snapshot>),
    /// Answer with a page of history, queried by the writer.
    History(HistoryQuery, oneshot::Sender<Result<Vec<FeedItem>, Refusal>>),
    /// Mark these items read.
    MarkRead(Vec<String>),
    /// Mark every item of a feed read.
    MarkAllRead(FeedId),
    /// Acknowledge a critical notice (marks it read too).
    Acknowledge(String),
    /// Hold back non-critical notifications.
    Pause {
        /// For this many minutes from now; 0 resumes them.
        minutes: u32,
    },
    /// Answer with the settings, secrets masked.
    Settings(oneshot::Sender<Settings>),
    /// Check and save edited settings, then apply them.
    SetSettings(Box<Settings>, oneshot::Sender<Result<(), Refusal>>),
    /// Raise a test notification.
    TestNotification(oneshot::Sender<Result<(), Refusal>>),
    /// Answer with the URL the action of this item opens, by the link rule.
    ActionUrl(String, oneshot::Sender<Result<String, Refusal>>),
    /// What the user did with a notification; answered with the item to show,
    /// if any.
    Response(NotificationResponse, oneshot::Sender<Option<FocusRequest>>),
    /// Snooze a pending approval request; answered with when it reminds again
    /// (ms since the epoch).
    Snooze(String, SnoozeFor, oneshot::Sender<Result<i64, Refusal>>),
    /// Test hook (feature `test-hooks`): every snooze becomes due this much
    /// sooner, so tests need not wait 15 minutes.
    #[cfg(feature = "test-hooks")]
    BringSnoozesForward(i64),
    /// Answer with the unread items in the shown feeds.
    Unread(oneshot::Sender<u32>),
    /// Test hook (feature `test-hooks`): stops the source behind the
    /// pipeline's back, as a crash of its task would, to test supervision.
    #[cfg(feature = "test-hooks")]
    EndSource,
    /// Test hook (feature `test-hooks`): the history writer sleeps this long,
    /// as on a very slow disk.
    #[cfg(feature = "test-hooks")]
    StallHistory(Duration),
    /// Test hook (feature `test-hooks`): each settings save waits this
    /// long first, as on a very slow disk.
    #[cfg(feature = "test-hooks")]
    StallSaves(Duration),
}

/// What start-up reads from history, before the pipeline task runs (so it
/// never waits on SQLite).
#[derive(Debug)]
pub(crate) struct Loaded {
    seq: u64,
    seed_ids: Vec<String>,
    feeds: BTreeMap<FeedId, Vec<FeedItem>>,
    unread: BTreeMap<FeedId, u32>,
    resume: ResumePoint,
}

impl Loaded {
    pub(crate) fn read(store: &Store) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            seq: store.max_seq()?,
            seed_ids: store.recent_ids(SEED_IDS)?,
            feeds: store.latest(FEED_CAP as u32)?,
            unread: store.unread()?,
            resume: ResumePoint { positions: store.positions()?, tails: store.unlocated_tails()? },
        })
    }
}

/// What the pipeline starts with.
pub(crate) struct PipelineParts {
    pub settings: Settings,
    pub config_path: std::path::PathBuf,
    pub config_error: Option<ConfigError>,
    pub loaded: Loaded,
    pub history: History,
    /// The damaged database [`Store::open_or_set_aside`] moved, if it did.
    pub set_aside: Option<SetAside>,
    pub notifier: Arc<dyn crate::notify::Notifier>,
    pub snoozes: Snoozes,
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

/// The dedup part: whether a typed message was seen before.
#[derive(Debug, Default)]
struct Dedup {
    seen: Seen,
}

impl Dedup {
    fn seeded(ids: &[String]) -> Self {
        let mut dedup = Dedup::default();
        for id in ids.iter().rev() {
            if let Ok(key) = u128::from_str_radix(id, 16) {
                dedup.seen.insert(key);
            }
        }
        dedup
    }

    /// The message's content key, or `None` when it (or its position) was
    /// seen before; remembers both.
    fn admit(&mut self, channel: &str, payload: &[u8], position: Option<&str>) -> Option<u128> {
        let key = content_key(channel, payload);
        let at = position.map(|p| position_key(channel, p));
        if self.seen.contains(key) || at.is_some_and(|at| self.seen.contains(at)) {
            return None;
        }
        self.seen.insert(key);
        if let Some(at) = at {
            self.seen.insert(at);
        }
        Some(key)
    }
}

/// The feeds part: each feed's newest items and the unread counts.
#[derive(Debug, Default)]
struct Feeds {
    items: BTreeMap<FeedId, VecDeque<FeedItem>>,
    unread: BTreeMap<FeedId, u32>,
    changed: bool,
}

impl Feeds {
    fn add(&mut self, item: FeedItem, shown: bool) {
        if shown {
            *self.unread.entry(item.feed).or_default() += 1;
            self.changed = true;
        }
        push_capped(self.items.entry(item.feed).or_default(), item, FEED_CAP);
    }

    /// Marks items read in memory and counts them at once; the writer's
    /// count (which also sees items no longer in memory) follows.
    fn mark_read(&mut self, ids: &[String]) {
        let ids: HashSet<&String> = ids.iter().collect();
        for (feed, items) in &mut self.items {
            for item in items.iter_mut().filter(|item| !item.read && ids.contains(&item.id)) {
                item.read = true;
                let unread = self.unread.entry(*feed).or_default();
                *unread = unread.saturating_sub(1);
                self.changed = true;
            }
        }
    }

    fn mark_all_read(&mut self, feed: FeedId) {
        if let Some(items) = self.items.get_mut(&feed) {
            items.iter_mut().for_each(|item| item.read = true);
        }
        self.unread.insert(feed, 0);
        self.changed = true;
    }

    /// Counts from the writer, plus the unread items it had not written yet
    /// when it counted (the newest, still in memory).
    fn set_unread(&mut self, unread: Unread) {
        let mut counts = unread.counts;
        for (feed, items) in &self.items {
            let newer =
                items.iter().filter(|item| item.seq > unread.written_through && !item.read).count();
            *counts.entry(*feed).or_default() += newer as u32;
        }
        self.unread = counts;
        self.changed = true;
    }

    fn for_ui(&self, settings: &Settings) -> BTreeMap<FeedId, Vec<FeedItem>> {
        self.items
            .iter()
            .map(|(feed, items)| {
                (*feed, items.iter().map(|item| for_ui(item.clone(), settings)).collect())
            })
            .collect()
    }

    fn unread_total(&self, settings: &Settings) -> u32 {
        self.unread
            .iter()
            .filter(|(feed, _)| settings.feeds.get(feed).is_none_or(|rule| rule.enabled))
            .map(|(_, count)| *count)
            .sum()
    }
}

/// The debug log part: every message, raw, and the counters.
#[derive(Debug, Default)]
struct DebugLog {
    entries: VecDeque<DebugEntry>,
    counters: DebugCounters,
}

impl DebugLog {
    fn record(&mut self, seq: u64, message: &SourceMessage, decoded: &Decoded) -> DebugEntry {
        self.counters.received += 1;
        let (outcome, reason) = match decoded {
            Decoded::Typed { .. } => (Outcome::Typed, None),
            Decoded::Legacy { .. } => (Outcome::Legacy, None),
            Decoded::Malformed(malformed) => (Outcome::Malformed, Some(malformed.reason.clone())),
        };
        match outcome {
            Outcome::Typed => self.counters.typed += 1,
            Outcome::Legacy => self.counters.legacy += 1,
            Outcome::Malformed => self.counters.malformed += 1,
        }
        let cut = message.payload.len().min(RAW_CAP);
        let entry = DebugEntry {
            seq,
            channel: message.channel.clone(),
            received_at: message.received_at,
            outcome,
            raw: crate::text::clean_lines(&String::from_utf8_lossy(&message.payload[..cut])),
            reason: reason.map(|reason| crate::text::clean_lines(&reason)),
        };
        push_capped(&mut self.entries, entry.clone(), DEBUG_CAP);
        entry
    }
}

/// The pending batch part: what the window gets next, and when.
#[derive(Debug)]
struct PendingBatch {
    batch: UiBatch,
    ui: mpsc::Sender<UiBatch>,
    /// The UI queue was full at the last send.
    behind: bool,
    last_sent: tokio::time::Instant,
}

impl PendingBatch {
    fn new(ui: mpsc::Sender<UiBatch>) -> Self {
        PendingBatch {
            batch: UiBatch::default(),
            ui,
            behind: false,
            last_sent: tokio::time::Instant::now(),
        }
    }

    /// Whether to send now rather than at the next tick: a full batch, or
    /// the first item after a quiet moment; never while the UI is behind
    /// (the tick offers it again, so a slow window costs no flush per event).
    fn due_now(&self) -> bool {
        let items = self.batch.items.len();
        !self.behind
            && (items >= BATCH_MAX_ITEMS || (items > 0 && self.last_sent.elapsed() >= FLUSH_EVERY))
    }

    fn is_empty(&self) -> bool {
        let batch = &self.batch;
        batch.items.is_empty()
            && batch.debug.is_empty()
            && batch.status.is_none()
            && batch.counters.is_none()
            && batch.unread.is_none()
            && batch.toasts.is_empty()
            && batch.focus.is_none()
            && batch.notice.is_none()
            && batch.snoozed.is_none()
    }

    /// Offers the batch to the UI without waiting; keeps collecting into it
    /// when the UI has not taken the earlier ones.
    fn send(&mut self) {
        if self.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        match self.ui.try_send(batch) {
            Ok(()) => {
                self.behind = false;
                self.last_sent = tokio::time::Instant::now();
            }
            Err(mpsc::error::TrySendError::Full(batch)) => {
                self.behind = true;
                self.batch = batch;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Where the answer to a settings save goes.
type SaveReply = oneshot::Sender<Result<(), Refusal>>;

/// A settings save being written on a blocking thread.
struct Saving {
    path: std::path::PathBuf,
    settings: Settings,
    token_dropped: bool,
    reply: SaveReply,
    task: JoinHandle<Result<(), ConfigError>>,
}

pub(crate) fn now_millis() -> i64 {
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
/// debug log shows all of them; feeds filter what is shown) and the
/// configured user's own (through the gateway with no user configured, the
/// source adds its token user's: `config::own_notifications`).
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
    settings: Arc<Settings>,
    config_path: std::path::PathBuf,
    config_error: Option<ConfigError>,
    cancel: CancellationToken,
    source: Option<(SourceHandle, CancellationToken)>,
    /// Asked the writer where to resume; the source starts on its answer.
    resuming: Option<oneshot::Receiver<ResumePoint>>,
    /// When to start the source again after it ended unexpectedly.
    restart_at: Option<tokio::time::Instant>,
    /// Unexpected ends since the source was last `Live`.
    restarts: u32,
    status: SourceStatus,
    dedup: Dedup,
    feeds: Feeds,
    debug: DebugLog,
    batch: PendingBatch,
    routing: Routing,
    history: History,
    seq: u64,
    policy: Policy,
    paused_until: Option<i64>,
    saving: Option<Saving>,
    saves_waiting: VecDeque<(Box<Settings>, SaveReply)>,
    /// Test hook: how long each save waits before writing.
    save_delay: Duration,
    /// What the window's notice banner says (see [`Snapshot::notice`]).
    notice: Option<String>,
    snoozes: Snoozes,
}

/// Runs the pipeline until `parts.cancel` is cancelled.
pub(crate) async fn run(parts: PipelineParts) {
    let PipelineParts { loaded, set_aside, mut commands, snoozes, .. } = parts;
    // The positions to resume from went with a damaged database: what was
    // published since it was last written may be missing.
    let status = SourceStatus {
        kind: parts.settings.source.kind,
        url: tidings::redact_url(&parts.settings.source.url),
        connection: ConnectionState::Connecting,
        missed_since: set_aside.as_ref().map(|aside| aside.last_written.unwrap_or_else(now_millis)),
    };
    let mut pipeline = Pipeline {
        settings: Arc::new(parts.settings),
        config_path: parts.config_path,
        config_error: parts.config_error,
        cancel: parts.cancel,
        source: None,
        resuming: None,
        restart_at: None,
        restarts: 0,
        status,
        dedup: Dedup::seeded(&loaded.seed_ids),
        feeds: Feeds {
            items: loaded.feeds.into_iter().map(|(feed, items)| (feed, items.into())).collect(),
            unread: loaded.unread,
            changed: false,
        },
        debug: DebugLog::default(),
        batch: PendingBatch::new(parts.ui),
        routing: Routing::new(parts.notifier),
        history: parts.history,
        seq: loaded.seq,
        policy: Policy::default(),
        paused_until: None,
        saving: None,
        saves_waiting: VecDeque::new(),
        save_delay: Duration::ZERO,
        notice: None,
        snoozes,
    };
    if let Some(aside) = set_aside {
        pipeline.tell(format!(
            "The history database was damaged ({}) and has been set aside as {}; a new one was started, so earlier history is not shown and events may have been missed.",
            aside.reason,
            aside.moved_to.display()
        ));
    }
    pipeline.start_source_from(loaded.resume);
    pipeline.run(&mut commands).await;
    // Marks the UI sent just before shutdown still count.
    while let Ok(command) = commands.try_recv() {
        pipeline.command(command);
    }
    pipeline.flush();
    let Pipeline { history, source, .. } = pipeline;
    if let Some((handle, token)) = source {
        token.cancel();
        handle.finished().await;
    }
    history.finish().await;
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

async fn resume_point(resuming: &mut Option<oneshot::Receiver<ResumePoint>>) -> ResumePoint {
    match resuming {
        Some(answer) => answer.await.unwrap_or_default(),
        None => std::future::pending().await,
    }
}

async fn saved(saving: &mut Option<Saving>) -> Result<(), ConfigError> {
    match saving {
        Some(saving) => match (&mut saving.task).await {
            Ok(result) => result,
            Err(error) => Err(ConfigError::Write {
                path: saving.path.clone(),
                reason: format!("the save stopped: {error}"),
            }),
        },
        None => std::future::pending().await,
    }
}

impl Pipeline {
    /// The loop: one arm per thing that can happen, each handled by one
    /// short method.
    async fn run(&mut self, commands: &mut mpsc::Receiver<Command>) {
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(Duration::from_secs(600));
        loop {
            let history_behind = self.history.behind();
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                update = next_update(&mut self.source), if !history_behind => match update {
                    Some(update) => {
                        self.update(update);
                        if self.batch.due_now() {
                            self.flush();
                        }
                    }
                    None => self.source_ended(),
                },
                point = resume_point(&mut self.resuming) => {
                    self.resuming = None;
                    self.start_source_from(point);
                }
                result = saved(&mut self.saving) => self.saved(result),
                unread = self.history.unread_changed() => self.feeds.set_unread(unread),
                () = restart_due(self.restart_at) => {
                    self.restart_at = None;
                    tracing::info!(restarts = self.restarts, "restarting the source");
                    self.start_source();
                }
                _ = flush.tick() => self.flush(),
                _ = prune.tick() => self.history.send(Job::Prune),
            }
        }
    }
    /// Starts the source from where the writer says history ends: asks it
    /// (after every row queued so far), and starts on its answer.
    fn start_source(&mut self) {
        self.restart_at = None;
        let (reply, answer) = oneshot::channel();
        self.history.flush();
        self.history.send(Job::Resume(reply));
        self.resuming = Some(answer);
    }

    fn start_source_from(&mut self, resume: ResumePoint) {
        self.restart_at = None;
        if let Err(error) = validate(&self.settings) {
            self.set_connection(ConnectionState::Offline { reason: error.to_string() });
            return;
        }
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
                    resume: resume.positions,
                    resume_tails: resume
                        .tails
                        .into_iter()
                        .map(|(channel, (payload, at))| (channel, (payload.into(), at)))
                        .collect(),
                    ..RedisSourceConfig::new(source.url.clone())
                };
                spawn_redis_source(config, token.clone(), SOURCE_QUEUE)
            }
            SourceKind::Gateway => {
                let config = GatewaySourceConfig {
                    resume: resume.positions,
                    own_notifications: crate::config::own_notifications(source),
                    ..GatewaySourceConfig::new(
                        source.url.clone(),
                        crate::config::gateway_token(source),
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
        self.batch.batch.status = Some(self.status.clone());
    }

    fn update(&mut self, update: SourceUpdate) {
        match update {
            SourceUpdate::State(state) => self.source_state(state),
            SourceUpdate::Missed { channel, since } => {
                tracing::warn!(%channel, ?since, "events may have been missed");
                let since = since.unwrap_or_else(now_millis);
                let earliest = self.status.missed_since.map_or(since, |old| old.min(since));
                self.status.missed_since = Some(earliest);
                self.batch.batch.status = Some(self.status.clone());
            }
            SourceUpdate::Position { channel, position } => {
                self.history.pending_positions.insert(channel, position);
            }
            SourceUpdate::Skipped { channel, position, reason } => {
                // Shown like a gap: an event on `channel` did not arrive.
                tracing::warn!(%channel, %reason, "skipped an event the gateway did not forward");
                let now = now_millis();
                let earliest = self.status.missed_since.map_or(now, |old| old.min(now));
                self.status.missed_since = Some(earliest);
                self.batch.batch.status = Some(self.status.clone());
                if let Some(position) = position {
                    self.history.pending_positions.insert(channel, position);
                }
            }
            SourceUpdate::Message(message) => self.message(message),
        }
    }

    fn source_state(&mut self, state: SourceState) {
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

    fn message(&mut self, message: SourceMessage) {
        if let Some(position) = &message.position {
            self.history.pending_positions.insert(message.channel.clone(), position.clone());
        }
        let decoded = decode(&message.payload);
        self.seq += 1;
        let entry = self.debug.record(self.seq, &message, &decoded);
        push_capped_vec(&mut self.batch.batch.debug, entry, DEBUG_CAP);
        self.batch.batch.counters = Some(self.debug.counters);
        let Decoded::Typed { event, raw } = decoded else { return };
        let SourceMessage { channel, payload, received_at, position } = message;
        let Some(key) = self.dedup.admit(&channel, &payload, position.as_deref()) else {
            self.debug.counters.duplicates += 1;
            return;
        };
        let mut item = FeedItem {
            id: item_id(key),
            seq: self.seq,
            feed: feed_of(&event),
            channel: channel.strip_prefix("ws:").unwrap_or(&channel).to_owned(),
            received_at,
            read: false,
            extra: extra_fields(&event, raw),
            link: None,
            event,
        };
        crate::text::clean_item(&mut item, &payload);
        self.history.pending_rows.push(StoredItem {
            item: item.clone(),
            payload: String::from_utf8_lossy(&payload).into_owned(),
            position,
        });
        self.new_item(item);
    }

    /// A new item: into its feed, past the notification policy, to the UI.
    fn new_item(&mut self, item: FeedItem) {
        let shown = self.settings.feeds.get(&item.feed).is_none_or(|rule| rule.enabled);
        self.feeds.add(item.clone(), shown);
        self.routing.observe(&item, &self.settings);
        let now = Now {
            millis: now_millis(),
            local_minute: local_minute(),
            paused_until: self.paused_until,
        };
        if shown && let Some(request) = self.policy.decide(&item, &self.settings, now) {
            self.routing.route(request, &item, &self.settings);
        }
        push_capped_vec(&mut self.batch.batch.items, for_ui(item, &self.settings), PENDING_CAP);
    }

    /// Raises summaries whose count changed, hands history its rows, and
    /// sends the pending batch if there is anything in it.
    fn flush(&mut self) {
        self.remind_snoozed();
        for request in self.policy.due(&self.settings, now_millis()) {
            let _shown = self.routing.show(request, None);
        }
        self.routing.due(&self.settings);
        self.history.flush();
        for toast in self.routing.take_toasts() {
            push_capped_vec(&mut self.batch.batch.toasts, toast, TOAST_CAP);
        }
        if self.feeds.changed {
            self.batch.batch.unread = Some(self.feeds.unread.clone());
            self.feeds.changed = false;
        }
        self.batch.send();
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            status: self.status.clone(),
            feeds: self.feeds.for_ui(&self.settings),
            unread: self.feeds.unread.clone(),
            debug: self.debug.entries.iter().cloned().collect(),
            counters: self.debug.counters,
            settings: masked(&self.settings),
            config_error: self.config_error.clone().map(|error| error.to_string()),
            native_notifications: self.routing.native,
            paused_until: self.paused_until.filter(|until| *until > now_millis()),
            notice: self.notice.clone(),
            snoozed: self.snoozes.all().clone(),
        }
    }

    /// Tells the user `notice` (a banner in the window, until replaced).
    fn tell(&mut self, notice: String) {
        self.batch.batch.notice = Some(notice.clone());
        self.notice = Some(notice);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::History(query, reply) => {
                // After every row shown so far, in the writer's order.
                self.history.flush();
                self.history.send(Job::Query(query, Arc::clone(&self.settings), reply));
            }
            Command::MarkRead(ids) => self.mark_read(ids),
            Command::MarkAllRead(feed) => self.mark_all_read(feed),
            Command::Acknowledge(id) => self.acknowledge(id),
            Command::Pause { minutes } => {
                self.paused_until =
                    (minutes > 0).then(|| now_millis() + i64::from(minutes) * 60_000);
            }
            Command::Settings(reply) => {
                let _ = reply.send(masked(&self.settings));
            }
            Command::SetSettings(edited, reply) => self.set_settings(edited, reply),
            Command::TestNotification(reply) => self.test_notification(reply),
            Command::ActionUrl(id, reply) => {
                self.history.flush();
                self.history.send(Job::ActionUrl(id, Arc::clone(&self.settings), reply));
            }
            Command::Response(response, reply) => {
                let _ = reply.send(self.notification_response(response));
            }
            Command::Snooze(id, how_long, reply) => {
                let now = now_millis();
                let until = match how_long {
                    SnoozeFor::Minutes(minutes) => {
                        now + (i64::from(minutes) * 60_000).clamp(60_000, MAX_SNOOZE_MS)
                    }
                    SnoozeFor::TomorrowNine => tomorrow_at_nine(&chrono::Local::now()),
                };
                let _ = reply.send(self.snooze(&id, until).map(|()| until));
            }
            #[cfg(feature = "test-hooks")]
            Command::BringSnoozesForward(by_ms) => {
                self.snoozes.bring_forward(by_ms);
                self.batch.batch.snoozed = Some(self.snoozes.all().clone());
            }
            Command::Unread(reply) => {
                let _ = reply.send(self.feeds.unread_total(&self.settings));
            }
            #[cfg(feature = "test-hooks")]
            Command::EndSource => {
                if let Some((_, token)) = &self.source {
                    token.cancel();
                }
            }
            #[cfg(feature = "test-hooks")]
            Command::StallHistory(how_long) => self.history.send(Job::Stall(how_long)),
            #[cfg(feature = "test-hooks")]
            Command::StallSaves(how_long) => self.save_delay = how_long,
        }
    }

    fn mark_read(&mut self, ids: Vec<String>) {
        self.routing.read(&ids, &self.settings);
        self.feeds.mark_read(&ids);
        // The writer marks them after the rows they mark, then recounts.
        self.history.flush();
        self.history.send(Job::MarkRead(ids));
    }

    fn mark_all_read(&mut self, feed: FeedId) {
        self.routing.read_all(feed, &self.settings);
        self.feeds.mark_all_read(feed);
        self.history.flush();
        self.history.send(Job::MarkAllRead(feed));
    }

    fn acknowledge(&mut self, id: String) {
        self.routing.read(std::slice::from_ref(&id), &self.settings);
        self.feeds.mark_read(std::slice::from_ref(&id));
        self.history.flush();
        self.history.send(Job::Acknowledge(id));
    }

    /// Checks the edited settings and has them written on a blocking
    /// thread; one save at a time, the next ones wait their turn.
    fn set_settings(&mut self, edited: Box<Settings>, reply: SaveReply) {
        if self.saving.is_some() {
            if self.saves_waiting.len() >= SAVES_WAITING {
                let _ = reply.send(Err(Refusal::Busy));
            } else {
                self.saves_waiting.push_back((edited, reply));
            }
            return;
        }
        let (settings, token_dropped) = match unmask(*edited, &self.settings) {
            Ok(unmasked) => (unmasked.settings, unmasked.token_dropped),
            Err(error) => {
                let _ = reply.send(Err(error.into()));
                return self.next_save();
            }
        };
        let path = self.config_path.clone();
        let to_write = settings.clone();
        let delay = self.save_delay;
        let task = tokio::task::spawn_blocking(move || {
            std::thread::sleep(delay);
            save_settings(&path, &to_write)
        });
        let path = self.config_path.clone();
        self.saving = Some(Saving { path, settings, token_dropped, reply, task });
    }

    /// A save finished: the new settings apply (and a new source starts)
    /// only once they are on disk.
    fn saved(&mut self, result: Result<(), ConfigError>) {
        let Some(Saving { settings, token_dropped, reply, .. }) = self.saving.take() else {
            return;
        };
        if result.is_ok() {
            self.apply_settings(settings, token_dropped);
        }
        let _ = reply.send(result.map_err(Refusal::from));
        self.next_save();
    }

    fn next_save(&mut self) {
        if let Some((edited, reply)) = self.saves_waiting.pop_front() {
            self.set_settings(edited, reply);
        }
    }

    fn apply_settings(&mut self, settings: Settings, token_dropped: bool) {
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
        self.settings = Arc::new(settings);
        self.config_error = None;
        if source_changed {
            if let Some((_, token)) = self.source.take() {
                // Its task ends on its own; it is not awaited here so the
                // pipeline never blocks on a network close.
                token.cancel();
            }
            self.status.missed_since = None;
            self.start_source();
        }
    }

    fn test_notification(&mut self, reply: oneshot::Sender<Result<(), Refusal>>) {
        let request = NotificationRequest {
            key: "tidings-test".into(),
            title: "Tidings".into(),
            body: "通知测试 · Test notification".into(),
            urgency: Urgency::Normal,
            resident: false,
            target: None,
            actions: Vec::new(),
            default_label: String::new(),
            sound: None,
        };
        // Shown in the window when it cannot be shown natively; the answer
        // says why, for the settings screen.
        let result = self.routing.show(request, None).map_err(Refusal::from);
        let _ = reply.send(result);
    }

    fn notification_response(&mut self, response: NotificationResponse) -> Option<FocusRequest> {
        match response {
            NotificationResponse::Clicked(target) => {
                let focus = FocusRequest { feed: target.feed, item_id: target.item_id };
                self.batch.batch.focus = Some(focus.clone());
                Some(focus)
            }
            NotificationResponse::Action { target, kind: ActionKind::Snooze { minutes } } => {
                let until = now_millis() + (i64::from(minutes) * 60_000).min(MAX_SNOOZE_MS);
                if let Err(error) = self.snooze(&target.item_id, until) {
                    tracing::warn!(%error, "could not snooze from the notification");
                }
                None
            }
            // The app opens the link: it asks for it again (`ActionUrl`),
            // resolved by the rule, from the item in history.
            NotificationResponse::Action { kind: ActionKind::Open, .. } => None,
            other => {
                self.routing.response(other, &self.settings);
                None
            }
        }
    }
}

impl Pipeline {
    /// The pending approval request `id`, if it is one (in memory; the
    /// feeds keep the newest [`FEED_CAP`] of each).
    fn pending_request(&self, id: &str) -> Option<FeedItem> {
        let items = self.feeds.items.get(&FeedId::Approvals)?;
        let item = items.iter().find(|item| item.id == id)?;
        let tidings_events::Event::ApprovalRequest(request) = &item.event else { return None };
        let decided = items.iter().any(|other| match &other.event {
            tidings_events::Event::ApprovalApproved(a)
            | tidings_events::Event::ApprovalRejected(a) => {
                a.resource_type == request.resource_type && a.resource_id == request.resource_id
            }
            _ => false,
        });
        (!decided).then(|| item.clone())
    }

    /// Snoozes the pending approval request `id` until `until`: its
    /// notification goes (freeing its place on screen), and comes back
    /// then if the request is still pending (`remind_snoozed`).
    fn snooze(&mut self, id: &str, until: i64) -> Result<(), Refusal> {
        if self.pending_request(id).is_none() {
            return Err(Refusal::NotPending);
        }
        if !self.snoozes.add(id, until) {
            return Err(Refusal::TooManySnoozes(crate::snooze::MAX_SNOOZES));
        }
        self.routing.read(&[id.to_owned()], &self.settings);
        self.batch.batch.snoozed = Some(self.snoozes.all().clone());
        Ok(())
    }

    /// Snoozes that are due remind again, through the policy and the
    /// routing like a new request, if the request is still pending.
    fn remind_snoozed(&mut self) {
        let due = self.snoozes.take_due(now_millis());
        if due.is_empty() {
            return;
        }
        self.batch.batch.snoozed = Some(self.snoozes.all().clone());
        for id in due {
            let Some(item) = self.pending_request(&id) else {
                tracing::debug!(%id, "a snoozed request was decided meanwhile; no reminder");
                continue;
            };
            let now = Now {
                millis: now_millis(),
                local_minute: local_minute(),
                paused_until: self.paused_until,
            };
            if let Some(request) = self.policy.decide(&item, &self.settings, now) {
                self.routing.route(request, &item, &self.settings);
            }
        }
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
pub(crate) fn push_capped_vec<T>(list: &mut Vec<T>, value: T, cap: usize) {
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
