//! The Tauri commands the dashboard calls (names fixed with the UI, see
//! `ui/src/ipc.ts`), and the relay that streams the core's batches into the
//! UI's Channel. Each command is a short call into [`tidings_desk::Desk`];
//! errors reach the UI as a [`CommandError`]: a code it localises and the
//! English detail.

use std::sync::{Arc, Mutex};

use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tidings_desk::error::{CommandError, ErrorCode};
use tidings_desk::ipc::{
    FeedId, FeedItem, HistoryQuery, SearchQuery, SearchResults, Settings, Snapshot, UiBatch,
};
use tidings_desk::{Desk, DeskError};
use tokio::sync::{RwLock, mpsc};

use crate::{autostart, links, tray, window};

/// The running core, or why it could not start (every command then answers
/// with that reason, and the window shows it instead of crashing).
#[derive(Debug)]
pub struct Core {
    desk: RwLock<Option<Desk>>,
    start_error: Option<CommandError>,
}

impl Core {
    /// Holds the started desk, or the reason it failed to start, which every
    /// command then answers with (`not_started`).
    pub fn new(desk: Result<Desk, DeskError>) -> Self {
        match desk {
            Ok(desk) => Self { desk: RwLock::new(Some(desk)), start_error: None },
            Err(error) => Self {
                desk: RwLock::new(None),
                start_error: Some(CommandError::not_started(&format!(
                    "Tidings could not start: {error}"
                ))),
            },
        }
    }

    /// Runs `call` with the desk, or fails with why there is none.
    pub async fn with<T>(
        &self,
        call: impl AsyncFnOnce(&Desk) -> Result<T, DeskError>,
    ) -> Result<T, CommandError> {
        let guard = self.desk.read().await;
        match guard.as_ref() {
            Some(desk) => call(desk).await.map_err(CommandError::from),
            None => Err(self.start_error.clone().unwrap_or_else(|| DeskError::Stopped.into())),
        }
    }

    /// Stops the core (pending history is written first).
    pub async fn shutdown(&self) {
        if let Some(desk) = self.desk.write().await.take() {
            desk.shutdown().await;
        }
    }
}

/// The UI's Channel for batches; replaced when the page (re)subscribes.
#[derive(Default)]
pub struct UiChannel(Mutex<Option<Channel<UiBatch>>>);

impl std::fmt::Debug for UiChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subscribed = self.0.lock().map(|slot| slot.is_some()).unwrap_or(false);
        f.debug_struct("UiChannel").field("subscribed", &subscribed).finish()
    }
}

impl UiChannel {
    fn set(&self, channel: Channel<UiBatch>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(channel);
    }

    fn send(&self, batch: UiBatch) {
        let mut slot = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(channel) = slot.as_ref()
            && let Err(error) = channel.send(batch)
        {
            // The page is gone (reloading); it subscribes again and takes a
            // snapshot, which has what this batch carried.
            tracing::debug!(%error, "the UI channel is closed; dropping it");
            *slot = None;
        }
    }
}

/// Forwards the core's batches to the UI (dropped while no page has
/// subscribed: the page's snapshot covers them) and keeps the unread count
/// on the tray and window title current. Ends when the core stops.
pub async fn relay_batches(
    app: AppHandle,
    channel: Arc<UiChannel>,
    mut batches: mpsc::Receiver<UiBatch>,
) {
    while let Some(batch) = batches.recv().await {
        if let Some(unread) = &batch.unread {
            let total = unread.values().copied().fold(0u32, u32::saturating_add);
            tray::set_unread(&app, total);
            window::set_unread(&app, total);
        }
        channel.send(batch);
    }
}

/// Makes `channel` the page's Channel for batches, replacing any earlier one.
#[tauri::command]
pub async fn subscribe(
    channel: Channel<UiBatch>,
    ui: State<'_, Arc<UiChannel>>,
) -> Result<(), CommandError> {
    ui.set(channel);
    Ok(())
}

/// Everything the UI needs for its first frame.
#[tauri::command]
pub async fn snapshot(core: State<'_, Arc<Core>>) -> Result<Snapshot, CommandError> {
    core.with(async |desk| desk.snapshot().await).await
}

/// A page of history (one feed or all, optionally filtered by text),
/// newest first.
#[tauri::command]
pub async fn history(
    query: HistoryQuery,
    core: State<'_, Arc<Core>>,
) -> Result<Vec<FeedItem>, CommandError> {
    core.with(async |desk| desk.history(query).await).await
}

/// Searches the whole local history (the Search screen).
#[tauri::command]
pub async fn search(
    query: SearchQuery,
    core: State<'_, Arc<Core>>,
) -> Result<SearchResults, CommandError> {
    core.with(async |desk| desk.search(query).await).await
}

/// Writes every match of `query` as CSV into the user's Downloads folder
/// (the home folder when there is none) and answers with the file's path.
#[tauri::command]
pub async fn export_search(
    query: SearchQuery,
    app: AppHandle,
    core: State<'_, Arc<Core>>,
) -> Result<String, CommandError> {
    use tauri::Manager;
    let folder = app.path().download_dir().or_else(|_| app.path().home_dir()).map_err(|error| {
        CommandError::new(
            ErrorCode::ExportFailed,
            format!("no Downloads or home folder to export into: {error}"),
        )
    })?;
    core.with(async |desk| desk.export_search(query, &folder).await)
        .await
        .map(|path| path.display().to_string())
}

/// Marks the items `ids` read and closes their notifications still on
/// screen.
#[tauri::command]
pub async fn mark_read(ids: Vec<String>, core: State<'_, Arc<Core>>) -> Result<(), CommandError> {
    core.with(async |desk| desk.mark_read(ids).await).await
}

/// `feed` null marks every feed read.
#[tauri::command]
pub async fn mark_all_read(
    feed: Option<FeedId>,
    core: State<'_, Arc<Core>>,
) -> Result<(), CommandError> {
    core.with(async |desk| {
        match feed {
            Some(feed) => desk.mark_all_read(feed).await?,
            None => {
                for feed in FeedId::ALL {
                    desk.mark_all_read(feed).await?;
                }
            }
        }
        Ok(())
    })
    .await
}

/// The current settings, token masked.
#[tauri::command]
pub async fn get_settings(core: State<'_, Arc<Core>>) -> Result<Settings, CommandError> {
    core.with(async |desk| desk.settings().await).await
}

/// Saves `settings` and answers with them as saved (token masked); applies
/// the autostart choice to the desktop session.
#[tauri::command]
pub async fn set_settings(
    settings: Settings,
    app: AppHandle,
    core: State<'_, Arc<Core>>,
) -> Result<Settings, CommandError> {
    let saved = core
        .with(async |desk| {
            desk.set_settings(settings).await?;
            desk.settings().await
        })
        .await?;
    autostart::apply(&app, saved.autostart);
    Ok(saved)
}

/// Raises a test notification (an in-app toast when native notifications
/// are not available).
#[tauri::command]
pub async fn send_test_notification(core: State<'_, Arc<Core>>) -> Result<(), CommandError> {
    core.with(async |desk| desk.send_test_notification().await).await
}

/// Opens the item's action link in the browser, when the core's link rule
/// allows it; otherwise answers why not.
#[tauri::command]
pub async fn open_item(
    item_id: String,
    app: AppHandle,
    core: State<'_, Arc<Core>>,
) -> Result<(), CommandError> {
    let link = core.with(async |desk| desk.action_url(item_id).await).await?;
    links::open(&app, &link)
}

/// Snoozes the pending approval request `item_id` (the Approvals screen);
/// answers when it reminds again (ms since the epoch).
#[tauri::command]
pub async fn snooze(
    item_id: String,
    how_long: tidings_desk::ipc::SnoozeFor,
    core: State<'_, Arc<Core>>,
) -> Result<i64, CommandError> {
    core.with(async |desk| desk.snooze(item_id, how_long).await).await
}

/// Acknowledges the critical notice `item_id`: marks it acknowledged and
/// read.
#[tauri::command]
pub async fn acknowledge(item_id: String, core: State<'_, Arc<Core>>) -> Result<(), CommandError> {
    core.with(async |desk| desk.acknowledge(item_id).await).await
}

/// Pauses non-critical notifications; answers with when the pause ends
/// (ms since the epoch), or null when `minutes` is 0 (resume).
#[tauri::command]
pub async fn pause_notifications(
    minutes: u32,
    core: State<'_, Arc<Core>>,
) -> Result<Option<i64>, CommandError> {
    core.with(async |desk| desk.pause_notifications(minutes).await).await?;
    Ok(pause_end(minutes, now_ms()))
}

/// The longest UI error message logged; the rest is cut (a page cannot
/// flood the log through this command).
const UI_ERROR_MAX_CHARS: usize = 2_000;

/// An uncaught error in the dashboard's page, logged where people look
/// when the window seems stuck (a page that throws while rendering may stop
/// updating). The page reports at most a few per session (ui/src/main.tsx).
#[tauri::command]
#[allow(clippy::needless_pass_by_value, reason = "Tauri hands commands owned arguments")]
pub fn report_ui_error(message: String) {
    tracing::error!(target: "tidings_desk_app::ui", message = %ui_error_text(&message), "the dashboard hit an error");
}

/// `message` on one line, at most `UI_ERROR_MAX_CHARS` characters.
pub fn ui_error_text(message: &str) -> String {
    let flat: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(UI_ERROR_MAX_CHARS)
        .collect();
    if message.chars().count() > UI_ERROR_MAX_CHARS { format!("{flat}…") } else { flat }
}

/// When a pause of `minutes` started at `now` (ms) ends.
pub fn pause_end(minutes: u32, now: i64) -> Option<i64> {
    (minutes > 0).then(|| now.saturating_add(i64::from(minutes) * 60_000))
}

fn now_ms() -> i64 {
    tidings_events::millis_since_epoch(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ui_error_is_logged_on_one_line_and_cut_when_long() {
        assert_eq!(
            ui_error_text("TypeError: x\n  at f (app.js:1:2)"),
            "TypeError: x   at f (app.js:1:2)"
        );
        let long = "e".repeat(UI_ERROR_MAX_CHARS + 10);
        let shown = ui_error_text(&long);
        assert_eq!(shown.chars().count(), UI_ERROR_MAX_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn a_pause_ends_its_minutes_later_and_zero_minutes_resumes() {
        assert_eq!(pause_end(60, 1_000), Some(1_000 + 3_600_000));
        assert_eq!(pause_end(0, 1_000), None);
    }
}
