//! [`Desk`]: the facade the Tauri glue calls. It opens the history, reads
//! what start-up needs from it, starts the history writer thread and the
//! pipeline task, and talks to it through a bounded command queue; every method is a short
//! request and answer, so commands from the UI never block on the network.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::DeskConfig;
use crate::history::History;
use crate::ipc::{
    FeedId, FeedItem, FocusRequest, HistoryQuery, SearchQuery, SearchResults, Settings, Snapshot,
    SnoozeFor, UiBatch,
};
use crate::notify::{NotificationResponse, Notifier};
use crate::pipeline::{self, Command, Loaded, PipelineParts, UI_QUEUE};
use crate::search::Searcher;
use crate::store::Store;

/// Events are kept this long, and at most this many, in local history.
pub const HISTORY_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most items kept in local history; the oldest beyond are pruned.
pub const HISTORY_MAX_ITEMS: u64 = 200_000;

/// Commands waiting for the pipeline; a caller waits when it is full.
const COMMAND_QUEUE: usize = 64;

pub use crate::error::DeskError;

/// The running desktop core.
#[derive(Debug)]
pub struct Desk {
    commands: mpsc::Sender<Command>,
    /// Where the history database is, for searches on their own connection.
    data_dir: PathBuf,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Desk {
    /// Opens the history in `config.data_dir`, starts the source and the
    /// pipeline. Batches for the UI arrive on the returned receiver (bounded:
    /// see `pipeline` for what happens when the UI falls behind).
    pub fn start(
        config: DeskConfig,
        notifier: Arc<dyn Notifier>,
        cancel: CancellationToken,
    ) -> Result<(Desk, mpsc::Receiver<UiBatch>), DeskError> {
        let (store, set_aside) =
            Store::open_or_set_aside(&config.data_dir, HISTORY_MAX_ITEMS, HISTORY_MAX_AGE)?;
        let data_dir = config.data_dir.clone();
        // Read here, before the pipeline task runs: it never waits on SQLite.
        let loaded = Loaded::read(&store)?;
        let history = History::start(store).map_err(DeskError::Thread)?;
        let (ui, batches) = mpsc::channel(UI_QUEUE);
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let parts = PipelineParts {
            settings: config.settings,
            config_path: config.config_path,
            config_error: config.config_error,
            loaded,
            history,
            set_aside,
            notifier,
            snoozes: crate::snooze::Snoozes::load(&config.data_dir),
            ui,
            commands: receiver,
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(pipeline::run(parts));
        Ok((Desk { commands, data_dir, cancel, task }, batches))
    }

    /// Test hook: ends the source's task without the pipeline asking, as
    /// a crash would, so tests can see it supervised (reported, restarted).
    /// Built only with the `test-hooks` feature, which the crate's own tests
    /// turn on; the app never has it.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn end_source_for_test(&self) -> Result<(), DeskError> {
        self.commands.send(Command::EndSource).await.map_err(|_| DeskError::Stopped)
    }

    /// Test hook: the history writer sleeps for `how_long`, as on a disk
    /// that is very slow, so tests can see the feeds do not wait for it.
    /// Built only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn stall_history_for_test(&self, how_long: Duration) -> Result<(), DeskError> {
        self.commands.send(Command::StallHistory(how_long)).await.map_err(|_| DeskError::Stopped)
    }

    /// Test hook: each settings save first waits `how_long`, as on a disk
    /// that is very slow. Built only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn stall_saves_for_test(&self, how_long: Duration) -> Result<(), DeskError> {
        self.commands.send(Command::StallSaves(how_long)).await.map_err(|_| DeskError::Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DeskError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| DeskError::Stopped)?;
        answer.await.map_err(|_| DeskError::Stopped)
    }

    async fn tell(&self, command: Command) -> Result<(), DeskError> {
        self.commands.send(command).await.map_err(|_| DeskError::Stopped)
    }

    /// Everything the UI needs for its first frame.
    pub async fn snapshot(&self) -> Result<Snapshot, DeskError> {
        self.ask(Command::Snapshot).await
    }

    /// Searches the whole history on a blocking thread of its own, so a
    /// slow search never holds up the pipeline (see `search`).
    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults, DeskError> {
        let dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || Searcher::open(&dir)?.search(&query))
            .await
            .map_err(|_| DeskError::Stopped)?
            .map_err(DeskError::from)
    }

    /// Writes every match of `query` as CSV to a new file in `into` and
    /// returns its path (`tidings-search-YYYYMMDD-HHMMSS.csv`).
    pub async fn export_search(
        &self,
        query: SearchQuery,
        into: &Path,
    ) -> Result<PathBuf, DeskError> {
        let dir = self.data_dir.clone();
        let name = format!("tidings-search-{}.csv", chrono::Local::now().format("%Y%m%d-%H%M%S"));
        let path = into.join(name);
        let target = path.clone();
        tokio::task::spawn_blocking(move || -> Result<(), DeskError> {
            let csv = Searcher::open(&dir)?.export_csv(&query)?;
            std::fs::write(&target, csv)
                .map_err(|source| DeskError::Export { path: target.clone(), source })
        })
        .await
        .map_err(|_| DeskError::Stopped)??;
        Ok(path)
    }

    /// A page of history, newest first (after every item shown so far is
    /// written).
    pub async fn history(&self, query: HistoryQuery) -> Result<Vec<FeedItem>, DeskError> {
        self.ask(|reply| Command::History(query, reply)).await?.map_err(DeskError::from)
    }

    /// Marks these items read, and closes their notifications still on screen.
    pub async fn mark_read(&self, ids: Vec<String>) -> Result<(), DeskError> {
        self.tell(Command::MarkRead(ids)).await
    }

    /// Marks every item of `feed` read, and closes its notifications on screen.
    pub async fn mark_all_read(&self, feed: FeedId) -> Result<(), DeskError> {
        self.tell(Command::MarkAllRead(feed)).await
    }

    /// Acknowledges a critical notice: marks it acknowledged and read.
    pub async fn acknowledge(&self, item_id: String) -> Result<(), DeskError> {
        self.tell(Command::Acknowledge(item_id)).await
    }

    /// Holds back non-critical notifications for `minutes` (0 resumes).
    pub async fn pause_notifications(&self, minutes: u32) -> Result<(), DeskError> {
        self.tell(Command::Pause { minutes }).await
    }

    /// The settings, token masked.
    pub async fn settings(&self) -> Result<Settings, DeskError> {
        self.ask(Command::Settings).await
    }

    /// Saves settings (a masked token keeps the stored one) and reconnects
    /// if the source changed.
    pub async fn set_settings(&self, settings: Settings) -> Result<(), DeskError> {
        self.ask(|reply| Command::SetSettings(Box::new(settings), reply))
            .await?
            .map_err(DeskError::from)
    }

    /// Raises a test notification (falls back to a toast).
    pub async fn send_test_notification(&self) -> Result<(), DeskError> {
        self.ask(Command::TestNotification).await?.map_err(DeskError::from)
    }

    /// The absolute http(s) URL an item's action opens (a relative
    /// `actionUrl` joined to the ERP base URL).
    pub async fn action_url(&self, item_id: String) -> Result<String, DeskError> {
        self.ask(|reply| Command::ActionUrl(item_id, reply)).await?.map_err(DeskError::from)
    }

    /// A notification was clicked or dismissed; a click also reaches the UI
    /// as a focus request in the next batch.
    pub async fn notification_response(
        &self,
        response: NotificationResponse,
    ) -> Result<Option<FocusRequest>, DeskError> {
        self.ask(|reply| Command::Response(response, reply)).await
    }

    /// Snoozes the pending approval request `item_id`; answers when it
    /// reminds again (ms since the epoch). Refused for anything else.
    pub async fn snooze(&self, item_id: String, how_long: SnoozeFor) -> Result<i64, DeskError> {
        self.ask(|reply| Command::Snooze(item_id, how_long, reply)).await?.map_err(DeskError::from)
    }

    /// Test hook: every snooze becomes due `by_ms` sooner. Built only with
    /// the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn bring_snoozes_forward_for_test(&self, by_ms: i64) -> Result<(), DeskError> {
        self.commands
            .send(Command::BringSnoozesForward(by_ms))
            .await
            .map_err(|_| DeskError::Stopped)
    }

    /// Unread items in the shown feeds (for the tray).
    pub async fn unread_total(&self) -> Result<u32, DeskError> {
        self.ask(Command::Unread).await
    }

    /// Stops the source and the pipeline, writing pending history first.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the desktop pipeline ended abnormally");
        }
    }
}
