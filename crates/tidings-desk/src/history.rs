//! The history writer: one thread that owns the history database
//! ([`Store`]) and does every SQLite call the running app makes, so no
//! write, prune, checkpoint or query ever holds the pipeline task.
//!
//! The pipeline talks to it through `History`, which never waits:
//!
//! - Rows and positions collect in `History::pending` and go to the writer
//!   as one `Job::Write` per flush, written there in one transaction, so
//!   a position is stored only with the items it covers and only once they
//!   are: resume (docs/positions.md) never skips an item that is not on
//!   disk. SQLite's checkpoints run inside those commits, on this thread
//!   (the log stays bounded: `store::tests`).
//! - Jobs go in order (marks after the rows they mark, queries after every
//!   row shown), on a bounded queue ([`WRITE_QUEUE`] jobs). When it is full
//!   the job waits in the pipeline's outbox, in order, and is offered again
//!   at the next flush; while more than [`BACKLOG_ROWS`] rows are not yet
//!   written (pending, in the outbox or queued), `History::behind` is true
//!   and the pipeline stops reading the source (which then stops reading Redis or the
//!   gateway: they buffer, or the source reconnects and resumes from the
//!   stored positions). Nothing the resume relies on is dropped.
//! - Answers go straight to whoever asked (a `oneshot`); unread counts after
//!   a mark come back on a `watch` (only the latest matters).
//!
//! Shutdown: `History::finish` hands over what is pending and closes the
//! queue; the thread writes every queued job, then ends and says so.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::Refusal;
use crate::ipc::{FeedId, FeedItem, HistoryQuery, Settings};
use crate::policy::{action_link_of, for_ui};
use crate::store::{Store, StoredItem};

/// Jobs queued for the writer thread.
pub const WRITE_QUEUE: usize = 64;
/// Rows not yet written (pending, in the outbox or queued) beyond which the
/// pipeline stops reading the source until the writer catches up.
pub const BACKLOG_ROWS: usize = 20_000;
/// History rows written between two prunes, besides the 10-minute timer, so
/// the count bound holds under heavy traffic too.
pub const PRUNE_EVERY_ROWS: usize = 20_000;
/// A history write slower than this is logged (at most once a minute, with
/// how many there were); the feeds no longer wait for it.
const SLOW_WRITE: Duration = Duration::from_millis(250);

/// Unread counts per feed, as of the rows written through `written_through`
/// (the largest `seq` written when they were counted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unread {
    /// Unread items per feed in the database.
    pub counts: BTreeMap<FeedId, u32>,
    /// The largest `seq` written when they were counted.
    pub written_through: u64,
}

/// Where a source starts reading again: the stored positions, and per Redis
/// channel the newest kept item whose position was not known.
#[derive(Debug, Clone, Default)]
pub struct ResumePoint {
    /// The last stored position per Redis channel (`ws:…`).
    pub positions: BTreeMap<String, String>,
    /// Per Redis channel, the newest kept item whose position was not known:
    /// its payload and when it was received (ms since the epoch).
    pub tails: BTreeMap<String, (String, i64)>,
}

/// What the writer thread does, in queue order.
#[derive(Debug)]
pub(crate) enum Job {
    Write {
        rows: Vec<StoredItem>,
        positions: BTreeMap<String, String>,
    },
    MarkRead(Vec<String>),
    MarkAllRead(FeedId),
    Acknowledge(String),
    Prune,
    Query(HistoryQuery, Arc<Settings>, oneshot::Sender<Result<Vec<FeedItem>, Refusal>>),
    ActionUrl(String, Arc<Settings>, oneshot::Sender<Result<String, Refusal>>),
    Resume(oneshot::Sender<ResumePoint>),
    /// Test hook: the writer sleeps, as on a disk that is very slow.
    #[cfg(feature = "test-hooks")]
    Stall(Duration),
}

impl Job {
    fn rows(&self) -> usize {
        match self {
            Job::Write { rows, .. } => rows.len(),
            _ => 0,
        }
    }
}

/// The pipeline's side of the writer: never waits (see the module docs).
#[derive(Debug)]
pub(crate) struct History {
    jobs: mpsc::Sender<Job>,
    outbox: VecDeque<Job>,
    /// Rows handed over and not yet written; the writer counts them down.
    unwritten: Arc<AtomicUsize>,
    pub pending_rows: Vec<StoredItem>,
    pub pending_positions: BTreeMap<String, String>,
    unread: watch::Receiver<Unread>,
    done: Option<oneshot::Receiver<()>>,
}

impl History {
    /// Starts the writer thread, which owns `store` from now on.
    pub(crate) fn start(store: Store) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel(WRITE_QUEUE);
        let (unread_tx, unread) = watch::channel(Unread::default());
        let (done_tx, done) = oneshot::channel();
        let unwritten = Arc::new(AtomicUsize::new(0));
        let writer = Writer::new(store, unread_tx, Arc::clone(&unwritten));
        std::thread::Builder::new().name("tidings-history".into()).spawn(move || {
            writer.run(queue);
            let _ = done_tx.send(());
        })?;
        Ok(History {
            jobs,
            outbox: VecDeque::new(),
            unwritten,
            pending_rows: Vec::new(),
            pending_positions: BTreeMap::new(),
            unread,
            done: Some(done),
        })
    }

    /// Whether the pipeline should stop reading the source for now.
    pub(crate) fn behind(&self) -> bool {
        self.unwritten.load(Ordering::Relaxed) + self.pending_rows.len() >= BACKLOG_ROWS
    }

    /// Queues `job` after everything before it.
    pub(crate) fn send(&mut self, job: Job) {
        self.unwritten.fetch_add(job.rows(), Ordering::Relaxed);
        self.outbox.push_back(job);
        self.drain();
    }

    /// Hands the pending rows and positions over as one write, and offers
    /// the writer what waits in the outbox.
    pub(crate) fn flush(&mut self) {
        if !self.pending_rows.is_empty() || !self.pending_positions.is_empty() {
            let rows = std::mem::take(&mut self.pending_rows);
            let positions = std::mem::take(&mut self.pending_positions);
            self.send(Job::Write { rows, positions });
        } else {
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(job) = self.outbox.pop_front() {
            match self.jobs.try_send(job) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(job)) => {
                    self.outbox.push_front(job);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::error!("the history writer has stopped; history is no longer kept");
                    self.outbox.clear();
                    self.unwritten.store(0, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Waits until the unread counts change after a mark.
    pub(crate) async fn unread_changed(&mut self) -> Unread {
        if self.unread.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.unread.borrow_and_update().clone()
    }

    /// Hands everything over, closes the queue and waits for the writer to
    /// write it and end.
    pub(crate) async fn finish(mut self) {
        self.flush();
        for job in std::mem::take(&mut self.outbox) {
            if self.jobs.send(job).await.is_err() {
                break;
            }
        }
        drop(self.jobs);
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

/// The writer thread's state.
struct Writer {
    store: Store,
    unread: watch::Sender<Unread>,
    unwritten: Arc<AtomicUsize>,
    written_through: u64,
    rows_since_prune: usize,
    slow_writes: SlowWrites,
}

impl Writer {
    fn new(store: Store, unread: watch::Sender<Unread>, unwritten: Arc<AtomicUsize>) -> Self {
        let written_through = store.max_seq().unwrap_or(0);
        Writer {
            store,
            unread,
            unwritten,
            written_through,
            rows_since_prune: 0,
            slow_writes: SlowWrites::default(),
        }
    }

    fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        while let Some(job) = queue.blocking_recv() {
            self.job(job);
        }
    }

    fn job(&mut self, job: Job) {
        match job {
            Job::Write { rows, positions } => self.write(&rows, &positions),
            Job::MarkRead(ids) => {
                let result = self.store.mark_read(&ids);
                self.marked(result, "mark read");
            }
            Job::MarkAllRead(feed) => {
                let result = self.store.mark_all_read(feed);
                self.marked(result, "mark all read");
            }
            Job::Acknowledge(id) => {
                let result = self.store.acknowledge(&id);
                self.marked(result, "acknowledge");
            }
            Job::Prune => self.prune(),
            Job::Query(query, settings, reply) => {
                let items =
                    self.store.query(&query).map_err(Refusal::from).map(|items| {
                        items.into_iter().map(|item| for_ui(item, &settings)).collect()
                    });
                let _ = reply.send(items);
            }
            Job::ActionUrl(id, settings, reply) => {
                let _ = reply.send(self.action_url(&id, &settings));
            }
            Job::Resume(reply) => {
                let _ = reply.send(ResumePoint {
                    positions: self.store.positions().unwrap_or_default(),
                    tails: self.store.unlocated_tails().unwrap_or_default(),
                });
            }
            #[cfg(feature = "test-hooks")]
            Job::Stall(how_long) => std::thread::sleep(how_long),
        }
    }

    fn write(&mut self, rows: &[StoredItem], positions: &BTreeMap<String, String>) {
        let started = Instant::now();
        match self.store.write(rows, positions) {
            Ok(()) => {
                let newest = rows.iter().map(|row| row.item.seq).max().unwrap_or(0);
                self.written_through = self.written_through.max(newest);
            }
            Err(error) => {
                tracing::error!(%error, "writing history failed; these events stay on screen but not on disk");
            }
        }
        self.unwritten.fetch_sub(rows.len(), Ordering::Relaxed);
        self.slow_writes.record(started.elapsed(), rows.len());
        self.rows_since_prune += rows.len();
        if self.rows_since_prune >= PRUNE_EVERY_ROWS {
            self.rows_since_prune = 0;
            self.prune();
        }
    }

    fn prune(&mut self) {
        if let Err(error) = self.store.prune(crate::pipeline::now_millis()) {
            tracing::warn!(%error, "pruning history failed");
        }
    }

    fn marked(&mut self, result: Result<(), crate::store::StoreError>, what: &str) {
        if let Err(error) = result {
            tracing::warn!(%error, "{what} failed");
        }
        match self.store.unread() {
            Ok(counts) => {
                let _ = self.unread.send(Unread { counts, written_through: self.written_through });
            }
            Err(error) => tracing::warn!(%error, "counting unread items failed"),
        }
    }

    fn action_url(&self, id: &str, settings: &Settings) -> Result<String, Refusal> {
        let item = self.store.item(id)?.ok_or_else(|| Refusal::NoItem(id.to_owned()))?;
        match action_link_of(&item, settings) {
            Some(link) => Ok(link?.into()),
            None => Err(Refusal::NoLink),
        }
    }
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
                "writing history to disk was slow; is the disk busy or remote? (the feeds do not wait for it)"
            );
            *self = SlowWrites { warned_at: Some(Instant::now()), ..SlowWrites::default() };
        }
    }
}
