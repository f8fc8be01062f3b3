//! The Tidings wire contract (`shared/protocol.md`), with no I/O and no async.
//!
//! Module map:
//! - [`event`]: the typed business events of §1 ([`Event`] and its payloads).
//! - [`decode`](mod@decode): bytes from Redis → [`Decoded`] (typed, legacy or
//!   malformed with a reason).
//! - [`channel`]: logical ⇄ Redis channel names, user-id validation, and the
//!   channel each event belongs on.
//! - [`frame`]: the gateway's WebSocket frames of §2.
//! - `args` (feature `clap`): value parsers for the payload types' `clap::Args`
//!   derives, so the CLI's flags come from this crate.
//! - [`js_number`]: numbers written the way the TypeScript backend writes them.
//!
//! Every other crate (publishers, gateway, CLI, desktop app) goes through this
//! one, so they cannot disagree about what is on the wire.

#[cfg(feature = "clap")]
pub mod args;
pub mod channel;
pub mod decode;
pub mod event;
pub mod frame;
pub mod js_number;

pub use channel::{Channel, ChannelError, UserId, UserIdError};
pub use decode::{Decoded, Malformed, decode};
pub use event::{Event, EventKind};

/// Milliseconds since the Unix epoch for `time`, as events carry them.
pub fn millis_since_epoch(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
