//! The types that cross the IPC boundary between the Rust side and the UI.
//!
//! Commands return these, and the pipeline streams [`UiBatch`]es over a Tauri
//! Channel. They are exported to `ui/src/bindings/` with ts-rs; the UI imports
//! them from there and never re-declares them. Everything the network sent is
//! carried as data (strings, numbers, the typed event), never as markup.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidings_events::Event;
use ts_rs::TS;

/// A feed the dashboard shows; several channels may feed one feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum FeedId {
    /// Stock level changes (`inventory:change`).
    Inventory,
    /// Order status changes (`order:status`).
    Orders,
    /// Approval requests, and their approvals and rejections.
    Approvals,
    /// Payments, refunds and overdue notices.
    Finance,
    /// System maintenance notices, updates and alerts.
    System,
    /// `data:change` on products, customers, suppliers (and `user` on system).
    Data,
    /// Announcements sent to every user (`broadcast`).
    Broadcast,
    /// The user's own `user:{id}:notifications` channel.
    Mine,
}

impl FeedId {
    /// Every feed, in the order the dashboard lists them.
    pub const ALL: [FeedId; 8] = [
        FeedId::Inventory,
        FeedId::Orders,
        FeedId::Approvals,
        FeedId::Finance,
        FeedId::System,
        FeedId::Data,
        FeedId::Broadcast,
        FeedId::Mine,
    ];
}

/// A screen of the dashboard, in the order of its navigation (and of the
/// Ctrl+1… shortcuts); the location hash names it (`#/approvals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Screen {
    /// Counts, pending approvals, the latest events and the connection, at a
    /// glance.
    Overview,
    /// Stock changes (the [`FeedId::Inventory`] feed).
    Inventory,
    /// Order status changes (the [`FeedId::Orders`] feed).
    Orders,
    /// Approval requests and their decisions (the [`FeedId::Approvals`] feed).
    Approvals,
    /// Payments, refunds and overdue notices (the [`FeedId::Finance`] feed).
    Finance,
    /// System notices (the [`FeedId::System`] feed).
    System,
    /// Changes to products, customers and suppliers (the [`FeedId::Data`]
    /// feed).
    Data,
    /// Announcements to everyone (the [`FeedId::Broadcast`] feed).
    Broadcast,
    /// The user's own notifications (the [`FeedId::Mine`] feed).
    Mine,
    /// Full-text search over the whole local history.
    Search,
    /// The debug log: every raw message as received, and the counters.
    Debug,
    /// The settings editor ([`Settings`]).
    Settings,
}

impl Screen {
    /// Every screen, in navigation order.
    pub const ALL: [Screen; 12] = [
        Screen::Overview,
        Screen::Inventory,
        Screen::Orders,
        Screen::Approvals,
        Screen::Finance,
        Screen::System,
        Screen::Data,
        Screen::Broadcast,
        Screen::Mine,
        Screen::Search,
        Screen::Debug,
        Screen::Settings,
    ];
}

/// Newest items per feed the window keeps in memory as they stream in. The
/// core itself keeps fewer per feed and sends those in a snapshot
/// ([`crate::pipeline::FEED_CAP`]); older ones are paged in from history.
pub const WINDOW_FEED_CAP: usize = 2000;

/// One typed event as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct FeedItem {
    /// Stable id of this item (the dedup key), used by mark-read and clicks.
    pub id: String,
    /// Local, strictly increasing arrival number (orders items across feeds).
    #[ts(type = "number")]
    pub seq: u64,
    /// The feed it is shown in (decided by the event type).
    pub feed: FeedId,
    /// Logical channel it arrived on, e.g. `inventory`.
    pub channel: String,
    /// Milliseconds since the epoch when this app received it.
    #[ts(type = "number")]
    pub received_at: i64,
    /// Whether the user has read (or acknowledged) it.
    pub read: bool,
    /// The event exactly as typed by the contract.
    pub event: Event,
    /// Extra fields the publisher sent that the contract does not name.
    #[ts(type = "Record<string, unknown>")]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    /// Where the item's `actionUrl` leads, or why it will not be opened;
    /// absent when it has none. Filled in by the core as it sends the item
    /// (`crate::links` decides), never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<ActionLink>,
}

/// What the action button of an item shows: the destination host, or why
/// the link is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ActionLink {
    /// The link opens; `host` is where it goes (`erp.example.com`, with the
    /// port when not the default).
    Opens {
        /// The destination's host as the URL parser normalises it.
        host: String,
    },
    /// The link is not opened, and why (a sentence for the user).
    Refused {
        /// The [`crate::links::LinkError`] message, shown as it is.
        reason: String,
    },
}

/// How the debug log classifies a raw message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// A known event type with every required field well typed; it reaches a
    /// feed.
    Typed,
    /// A JSON object whose `type` the contract does not know (an older
    /// publisher); shown only in the debug log.
    Legacy,
    /// Not JSON, not an object, or a known type with a missing or ill-typed
    /// field; shown only in the debug log, with why.
    Malformed,
}

/// One raw message for the debug log, whatever it turned out to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct DebugEntry {
    /// Local arrival number, the same numbering as [`FeedItem::seq`].
    #[ts(type = "number")]
    pub seq: u64,
    /// Redis-style channel name, e.g. `ws:inventory`.
    pub channel: String,
    /// Milliseconds since the epoch when this app received it.
    #[ts(type = "number")]
    pub received_at: i64,
    /// What the message turned out to be.
    pub outcome: Outcome,
    /// The payload as text (lossy UTF-8), capped in length.
    pub raw: String,
    /// Why a malformed message was refused.
    pub reason: Option<String>,
}

/// Counters shown in the debug log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DebugCounters {
    /// Messages received since start, of every kind.
    #[ts(type = "number")]
    pub received: u64,
    /// Messages that decoded as typed events (duplicates included).
    #[ts(type = "number")]
    pub typed: u64,
    /// Messages with a `type` the contract does not know.
    #[ts(type = "number")]
    pub legacy: u64,
    /// Messages refused as malformed.
    #[ts(type = "number")]
    pub malformed: u64,
    /// Duplicates dropped by the dedup stage.
    #[ts(type = "number")]
    pub duplicates: u64,
}

/// Where events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SourceKind {
    /// The Tidings WebSocket gateway (`ws://`/`wss://`, with a JWT).
    Gateway,
    /// Redis directly: one server, Sentinel or Cluster (`redis://`,
    /// `redis+sentinel://`, `redis+cluster://`, TLS forms too).
    Redis,
}

/// The connection state the status bar shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ConnectionState {
    /// Opening the connection (at start, after a settings change or a restart).
    Connecting,
    /// Connected and subscribed: events arrive as they are published.
    Live,
    /// The connection failed or was lost; it is tried again at `retry_at`.
    Reconnecting {
        /// Failed attempts since the connection was last live.
        attempt: u32,
        /// Milliseconds since the epoch of the next try.
        #[ts(type = "number")]
        retry_at: i64,
        /// Why the last attempt failed, for the user.
        reason: String,
    },
    /// Not connected: the configuration cannot work until a person fixes it,
    /// or the source stopped on a fault and is restarted after a delay.
    Offline {
        /// Why, in a sentence for the user.
        reason: String,
    },
}

/// Source and state, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct SourceStatus {
    /// Which kind of source it is.
    pub kind: SourceKind,
    /// The URL without credentials.
    pub url: String,
    /// The state of its connection.
    pub connection: ConnectionState,
    /// Set when events may have been missed (history did not reach back):
    /// milliseconds since the epoch from which the gap starts.
    #[ts(type = "number")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_since: Option<i64>,
}

/// Everything the UI needs to paint its first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The source and its connection.
    pub status: SourceStatus,
    /// Newest last, at most the in-memory cap per feed.
    pub feeds: BTreeMap<FeedId, Vec<FeedItem>>,
    /// Unread items per feed, over the whole history.
    pub unread: BTreeMap<FeedId, u32>,
    /// The newest debug log entries, oldest first (at most
    /// [`crate::pipeline::DEBUG_CAP`]).
    pub debug: Vec<DebugEntry>,
    /// The debug counters since start.
    pub counters: DebugCounters,
    /// The current settings, with the token and any password masked.
    pub settings: Settings,
    /// Set when the config file could not be used, with what was wrong.
    pub config_error: Option<String>,
    /// Whether native notifications work (a notification daemon answered).
    pub native_notifications: bool,
    /// Notifications paused until this time (ms since epoch), if paused.
    #[ts(type = "number | null")]
    pub paused_until: Option<i64>,
    /// Something the user must be told that is not a setting's error: the
    /// history database was damaged and set aside, the gateway token was
    /// dropped for a new host.
    pub notice: Option<String>,
    /// Snoozed approval requests: item id → when they remind again (ms
    /// since the epoch).
    #[ts(type = "Record<string, number>")]
    pub snoozed: BTreeMap<String, i64>,
}

/// How long to snooze an approval request for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SnoozeFor {
    /// This many minutes (at most 7 days).
    Minutes(u32),
    /// Tomorrow at 9:00, local time.
    TomorrowNine,
}

/// What the pipeline sends to the UI, at most every 50 ms or 500 items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct UiBatch {
    /// Feed items that arrived since the last batch, oldest first.
    pub items: Vec<FeedItem>,
    /// Debug log entries added since the last batch, oldest first.
    pub debug: Vec<DebugEntry>,
    /// Present when the connection state changed since the last batch.
    pub status: Option<SourceStatus>,
    /// Present when messages arrived since the last batch: all the counters.
    pub counters: Option<DebugCounters>,
    /// Present when unread counts changed: every feed's count.
    pub unread: Option<BTreeMap<FeedId, u32>>,
    /// An in-app toast, when native notifications are not available.
    pub toasts: Vec<Toast>,
    /// Ask the UI to show this item (a notification was clicked).
    pub focus: Option<FocusRequest>,
    /// A new [`Snapshot::notice`].
    pub notice: Option<String>,
    /// Present when the snoozes changed: all of them ([`Snapshot::snoozed`]).
    #[ts(optional, type = "Record<string, number>")]
    pub snoozed: Option<BTreeMap<String, i64>>,
}

/// An in-app notification, used when no notification daemon answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct Toast {
    /// Title, as the notification would have had it.
    pub title: String,
    /// Body text, as the notification would have had it.
    pub body: String,
    /// How urgent it is, for its styling.
    pub urgency: Urgency,
    /// The item a click shows; absent when it is about no single item (the
    /// test notification).
    pub item_id: Option<String>,
}

/// Bring the window to one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FocusRequest {
    /// The feed the item is in.
    pub feed: FeedId,
    /// The [`FeedItem::id`] to bring into view.
    pub item_id: String,
}

/// Urgency of a desktop notification (freedesktop's low/normal/critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Urgency {
    /// Informational events.
    Low,
    /// Warnings, and the user's own informational notifications.
    Normal,
    /// Critical events and approval requests: they get through quiet hours
    /// and pauses.
    Critical,
}

/// A role preset of channels and notification rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Profile {
    /// Stock and orders notify; low stock is a warning.
    Warehouse,
    /// Approval requests and finance warnings notify.
    Approver,
    /// System events and data changes notify.
    Ops,
}

/// UI language; `auto` follows the system locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
pub enum Language {
    /// Follow the system locale.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// English.
    #[serde(rename = "en")]
    En,
}

/// Minimum level a feed must reach to raise a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum MinLevel {
    /// Every event, informational ones included.
    Info,
    /// Warnings and critical events (approval requests included).
    Warning,
    /// Critical events (approval requests included) only.
    Critical,
}

/// Notification rule of one feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FeedRule {
    /// Whether this feed is subscribed and shown at all.
    pub enabled: bool,
    /// Whether it raises desktop notifications.
    pub notify: bool,
    /// The least level an event needs to raise a notification.
    pub min_level: MinLevel,
    /// Whether its approval requests and critical notices play a sound.
    #[serde(default = "sound_on")]
    pub sound: bool,
}

fn sound_on() -> bool {
    true
}

/// Quiet hours (local time, `HH:MM`); critical notifications still get through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QuietHours {
    /// Whether quiet hours apply at all.
    pub enabled: bool,
    /// When they begin (`HH:MM`, included).
    pub start: String,
    /// When they end (`HH:MM`, excluded); earlier than `start` means the next
    /// day.
    pub end: String,
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct SourceSettings {
    /// Which kind of source to connect to.
    pub kind: SourceKind,
    /// `ws://`/`wss://` for the gateway, `redis://`, `redis+sentinel://`
    /// or `redis+cluster://` (TLS forms too) for Redis.
    pub url: String,
    /// JWT for the gateway. Never sent back to the UI in clear: reads return
    /// `"********"` when one is set; writing that value keeps the old one.
    pub token: Option<String>,
    /// A file holding the gateway JWT, used instead of `token`: read at every
    /// connect and every 2 s while connected, so a sign-in helper that keeps
    /// it fresh keeps the connection alive (`refresh` frames). A full path;
    /// the file must hold one JWT and nothing else.
    pub token_file: Option<String>,
    /// User id for a direct Redis source (the gateway takes it from the token).
    pub user_id: Option<String>,
}

/// Everything the settings screen edits; saved as TOML in the config dir.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Where events come from.
    pub source: SourceSettings,
    /// The role preset the feed rules come from.
    pub profile: Profile,
    /// Language of the UI and of notifications.
    pub language: Language,
    /// The notification rule of each feed.
    pub feeds: BTreeMap<FeedId, FeedRule>,
    /// When only critical notifications are shown.
    pub quiet_hours: QuietHours,
    /// Below this `newQuantity`, an inventory change is "low stock".
    pub low_stock_threshold: f64,
    /// More than `coalesce_count` notifications from one feed within
    /// `coalesce_window_secs` become one summary.
    pub coalesce_count: u32,
    /// The window for `coalesce_count`, in seconds.
    pub coalesce_window_secs: u32,
    /// Relative `actionUrl`s are joined to this, e.g. `https://erp.example.com`.
    pub erp_base_url: String,
    /// Hosts besides the ERP's that absolute `actionUrl`s may open
    /// (`wiki.example.com`, or `host:port` for a port other than the
    /// scheme's default).
    #[serde(default)]
    pub trusted_hosts: Vec<String>,
    /// An approval request's ERP page per resource type (`order`,
    /// `return`, `payment`, `refund`, `adjustment`), e.g.
    /// `/approvals/{resourceId}`; `{resourceType}` is replaced too. The
    /// notification's "Open" button leads there, by the same rule as
    /// `actionUrl`s. A type without one gets no button.
    #[serde(default = "crate::config::default_approval_urls")]
    pub approval_urls: BTreeMap<String, String>,
    /// Whether the app starts when the user logs in.
    pub autostart: bool,
}

/// A history query (the history screen and infinite scroll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct HistoryQuery {
    /// Only this feed; absent for every feed.
    pub feed: Option<FeedId>,
    /// Only items with a smaller `seq` (for paging backwards).
    #[ts(type = "number")]
    pub before_seq: Option<u64>,
    /// Case-insensitive text to find in the event.
    pub text: Option<String>,
    /// Most items to return, newest first (1 to 1000).
    pub limit: u32,
}

/// A search over the whole local history (the Search screen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchQuery {
    /// Words that must all occur in the event's text, as substrings
    /// (`保温杯`, `P-300`); empty matches everything the filters let through.
    pub text: String,
    /// Only these feeds; empty means every feed.
    pub feeds: Vec<FeedId>,
    /// Received at or after this time (ms since the epoch).
    #[ts(type = "number | null")]
    pub from: Option<i64>,
    /// Received before this time (ms since the epoch).
    #[ts(type = "number | null")]
    pub until: Option<i64>,
    /// Only read (`true`) or only unread (`false`) items.
    pub read: Option<bool>,
    /// Only items with a smaller `seq` (the next page).
    #[ts(type = "number | null")]
    pub before_seq: Option<u64>,
    /// Most items to return (capped at 500).
    pub limit: u32,
}

/// One page of search results, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    /// The matching items, newest first.
    pub items: Vec<FeedItem>,
    /// Whether older matches remain (ask again with `beforeSeq`).
    pub more: bool,
    /// How long the query took in the database.
    pub took_ms: u32,
}
