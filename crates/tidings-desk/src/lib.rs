//! The desktop app's core, kept free of Tauri so it builds and tests fast and
//! the `src-tauri` crate stays thin glue (windows, tray, commands).
//!
//! Module map:
//! - [`ipc`]: every type that crosses to the UI; exported to TypeScript with
//!   ts-rs into `ui/src/bindings/` (a test fails if those files drift).
//! - [`config`]: settings from role presets, the TOML file, env and flags.
//! - [`pipeline`]: the one task that turns source updates into feeds,
//!   history rows, UI batches and notifications.
//! - [`policy`]: which events notify, how urgently, and coalescing.
//! - [`routing`]: notifications after the policy: native or toast, closed
//!   when what they announce is resolved, bounded on screen.
//! - [`history`]: the history writer thread (every SQLite call at run time).
//! - [`store`]: local history in SQLite (WAL), with positions for resuming.
//! - [`links`]: the one rule for where an `actionUrl` may lead.
//! - [`notify`]: the notifier seam between the policy and the native desktop.
//! - [`text`]: cleaning network text (controls, bidi overrides, lengths).
//! - [`desk`]: [`Desk`], the facade the Tauri commands call.
//! - [`error`]: typed failures and the coded [`error::CommandError`] the
//!   commands answer the window with.
pub mod config;
pub mod desk;
pub mod error;
pub mod history;
pub mod ipc;
pub mod links;
pub mod notify;
pub mod pipeline;
pub mod policy;
pub mod routing;
pub mod search;
pub mod snooze;
pub mod store;
pub mod text;

pub use config::{DeskArgs, DeskConfig};
pub use desk::{Desk, DeskError};
