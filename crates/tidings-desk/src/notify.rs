//! The seam between the notification policy (this crate decides *what* to
//! tell the user) and the desktop (`tidings-notify` shows it natively with
//! notify-rust; the app falls back to in-app toasts when no daemon answers).

use crate::ipc::{FeedId, Urgency};

/// One desktop notification the policy decided to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRequest {
    /// Stable id: the same id replaces an earlier notification (coalescing).
    pub key: String,
    /// The first, bold line (freedesktop's summary).
    pub title: String,
    /// The text under the title.
    pub body: String,
    /// Urgency hint for the daemon (freedesktop low/normal/critical).
    pub urgency: Urgency,
    /// Stays on screen until the user dismisses it (approval requests).
    pub resident: bool,
    /// The item a click should focus, if any.
    pub target: Option<ClickTarget>,
    /// Buttons besides the default action (at most [`MAX_ACTIONS`]). Only
    /// shown when `target` is set: an action is always about that item.
    pub actions: Vec<NotificationAction>,
    /// The default action's label (a click on the notification), in the
    /// language setting's language; empty: "Show in Tidings".
    pub default_label: String,
    /// The freedesktop sound to play (`sound-name` hint), if any.
    pub sound: Option<String>,
}

/// Buttons a notification offers besides the default action.
pub const MAX_ACTIONS: usize = 3;

/// One button on a notification. The notifier hands the daemon `id`, and
/// maps the id the daemon reports back through the request's own table:
/// an id not in it is ignored, so a forged `ActionInvoked` can only ever
/// invoke a button this app offered on that notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationAction {
    /// The action key sent over D-Bus (`open`, `snooze-15`).
    pub id: String,
    /// Cleaned text, shown as is.
    pub label: String,
    /// What pressing it does.
    pub kind: ActionKind,
}

/// What a notification button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Open the item's link (resolved again, by the rule in `links.rs`,
    /// when invoked: nothing the button carried is opened as it is).
    Open,
    /// Remind again in this many minutes, if the request is still pending.
    Snooze {
        /// How long to snooze, in minutes.
        minutes: u32,
    },
}

/// What a click on a notification leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickTarget {
    /// The feed the item is in.
    pub feed: FeedId,
    /// The id of the item ([`crate::ipc::FeedItem::id`]).
    pub item_id: String,
    /// Absolute http(s) URL to open in the browser (a resolved `actionUrl`).
    pub open_url: Option<String>,
}

/// Why a notification could not be shown natively.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// No notification daemon answered on the session bus; the D-Bus error.
    #[error(
        "no notification daemon answered on the D-Bus session bus ({0}); showing notifications inside the window instead"
    )]
    Unavailable(String),
    /// The daemon answered but refused it; its error.
    #[error("the notification daemon refused the notification: {0}")]
    Refused(String),
}

/// Shows notifications. Both methods return at once, without waiting for the
/// notification daemon: the pipeline calls them on its own task, and a daemon
/// that never answers must not hold it (docs/desktop.md, "The pipeline").
pub trait Notifier: Send + Sync + 'static {
    /// Hands `request` over to be shown. `Err` only when it was not even
    /// accepted (no daemon known to answer, or the notifier's queue full);
    /// one accepted and then not shown comes back later as
    /// [`NotificationResponse::NotShown`].
    fn notify(&self, request: NotificationRequest) -> Result<(), NotifyError>;
    /// Closes the notification last shown under `key`, if it is still on
    /// screen (freedesktop `CloseNotification`).
    fn close(&self, key: &str);
}

/// What the user did with a notification; sent back to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationResponse {
    /// Clicked (the default action): focus the window on `target`.
    Clicked(ClickTarget),
    /// Closed by the user without a click on it.
    Dismissed {
        /// The [`NotificationRequest::key`] it was shown under.
        key: String,
    },
    /// A button (not the default action) was pressed on the notification
    /// about `target`.
    Action {
        /// The item the notification was about.
        target: ClickTarget,
        /// What the pressed button does.
        kind: ActionKind,
    },
    /// A request [`Notifier::notify`] accepted could not be shown after all
    /// (the daemon went away or refused it); the app shows it in the window.
    NotShown {
        /// The request that was not shown.
        request: NotificationRequest,
        /// Why it was not shown.
        error: NotifyError,
    },
}
