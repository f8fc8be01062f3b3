//! Why a request from the window failed: typed errors for each kind of
//! failure, and the [`CommandError`] the Tauri commands answer with, whose
//! [`ErrorCode`] the UI localises (the English message is the detail).

use std::path::PathBuf;

use serde::Serialize;
use ts_rs::TS;

use crate::config::ConfigError;
use crate::links::LinkError;
use crate::notify::NotifyError;
use crate::store::StoreError;

/// Why the pipeline or its history writer refused a request.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A settings save was asked for while the most saves allowed
    /// ([`crate::pipeline::SAVES_WAITING`]) already wait their turn.
    #[error("settings are already being saved; try again")]
    Busy,
    /// The edited settings are not valid, or could not be written.
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// The test notification could not be handed to the notification daemon.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// Reading the local history failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No item with this id is in the history.
    #[error("no item {0} in the history; it may have been pruned")]
    NoItem(String),
    /// The item has no `actionUrl`, nor an approval page for its resource type.
    #[error("this item has no action link")]
    NoLink,
    /// The item's link breaks the rule in [`crate::links`].
    #[error("not opened: {0}")]
    Link(#[from] LinkError),
    /// The item is not an approval request that is still pending.
    #[error("only a pending approval request can be snoozed")]
    NotPending,
    /// As many requests as allowed (the number given) are snoozed already.
    #[error("{0} requests are snoozed already; decide or wait for some first")]
    TooManySnoozes(usize),
}

/// Why a desk request failed.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The local history could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The pipeline task has ended, so nothing answers.
    #[error("the desktop core has stopped; restart the app")]
    Stopped,
    /// The pipeline or the history writer refused the request.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The history writer thread could not be started.
    #[error("could not start the history writer thread: {0}")]
    Thread(std::io::Error),
    /// A search export could not be written to the chosen folder.
    #[error("could not write {}: {source}; choose another folder", path.display())]
    Export {
        /// The file that could not be written.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// What a failed command answers the window with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// What kind of failure, for the UI to say in the user's language.
    pub code: ErrorCode,
    /// The English detail (paths, reasons), shown after the localised text.
    pub message: String,
}

/// The kinds of failure the window tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// The core could not start (e.g. the history could not be opened).
    NotStarted,
    /// The core has stopped (the app is quitting).
    Stopped,
    /// Another save is in progress.
    Busy,
    /// A setting is not valid.
    InvalidSettings,
    /// The settings could not be written.
    SaveFailed,
    /// The notification daemon is missing or refused.
    Notifier,
    /// Reading or writing the local history failed.
    History,
    /// The item is not in the history.
    NoItem,
    /// The item has no link to open.
    NoLink,
    /// The link breaks the link rule and is not opened.
    LinkRefused,
    /// Only pending approval requests can be snoozed.
    NotPending,
    /// Too many snoozes are kept already.
    TooManySnoozes,
    /// The export file could not be written.
    ExportFailed,
    /// The browser could not be started for a link.
    OpenFailed,
}

impl Refusal {
    /// The [`ErrorCode`] the window is told.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::Busy => ErrorCode::Busy,
            Refusal::Settings(ConfigError::Write { .. }) => ErrorCode::SaveFailed,
            Refusal::Settings(_) => ErrorCode::InvalidSettings,
            Refusal::Notify(_) => ErrorCode::Notifier,
            Refusal::Store(_) => ErrorCode::History,
            Refusal::NoItem(_) => ErrorCode::NoItem,
            Refusal::NoLink => ErrorCode::NoLink,
            Refusal::Link(_) => ErrorCode::LinkRefused,
            Refusal::NotPending => ErrorCode::NotPending,
            Refusal::TooManySnoozes(_) => ErrorCode::TooManySnoozes,
        }
    }
}

impl DeskError {
    /// The [`ErrorCode`] the window is told.
    pub fn code(&self) -> ErrorCode {
        match self {
            DeskError::Store(_) => ErrorCode::History,
            DeskError::Stopped => ErrorCode::Stopped,
            DeskError::Refused(refusal) => refusal.code(),
            DeskError::Thread(_) => ErrorCode::NotStarted,
            DeskError::Export { .. } => ErrorCode::ExportFailed,
        }
    }
}

impl From<DeskError> for CommandError {
    fn from(error: DeskError) -> Self {
        CommandError { code: error.code(), message: error.to_string() }
    }
}

impl CommandError {
    /// The core could not start: every command answers with why.
    pub fn not_started(reason: &str) -> Self {
        CommandError { code: ErrorCode::NotStarted, message: reason.to_owned() }
    }

    /// A failure outside the core (opening the browser, the export folder).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError { code, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_error_reaches_the_window_as_a_code_and_the_english_detail() {
        let error = CommandError::from(DeskError::Refused(Refusal::TooManySnoozes(500)));
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": "tooManySnoozes",
                "message": "500 requests are snoozed already; decide or wait for some first",
            })
        );
    }

    #[test]
    fn a_settings_file_that_cannot_be_written_is_a_failed_save_not_an_invalid_setting() {
        let write = ConfigError::Write { path: "/x".into(), reason: "read-only".into() };
        assert_eq!(Refusal::Settings(write).code(), ErrorCode::SaveFailed);
        let invalid = ConfigError::Invalid { key: "source.url", message: "empty".into() };
        assert_eq!(Refusal::Settings(invalid).code(), ErrorCode::InvalidSettings);
    }
}
