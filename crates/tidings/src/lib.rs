//! Publishing and receiving Tidings events over real connections.
//!
//! - [`publish`]: [`Publisher`], the Rust twin of the ERP
//!   backend's helpers (`notify_user`, `publish_inventory_change`, …). It
//!   never returns an error into business code: every call hands back a
//!   [`PublishOutcome`] and logs failures.
//! - [`source`]: long-running tasks that receive events, either straight from
//!   Redis ([`spawn_redis_source`]) or from the
//!   gateway's WebSocket ([`spawn_gateway_source`]),
//!   reconnecting forever and reporting their state. The CLI's `tail` and the
//!   desktop app consume them.
//! - [`history`]: positions and a bounded per-channel history in Redis,
//!   written atomically with each publish, so clients resume exactly once
//!   after a disconnect (docs/positions.md).
//! - [`recorder`]: the component that appends plain `PUBLISH`es to history
//!   and proves how far it has; one recorder holds the duty at a time.
//! - [`resume`]: the one resume engine (replay, and the replay-then-skip
//!   rule) that the Redis source and the gateway share.
//! - [`redact`]: connection URLs with their password hidden, for messages
//!   (the one `redact_url` every crate uses).
//! - [`redis_url`]: what a Redis URL names: one server, or a service behind
//!   Sentinel resolved to its master at each connection.
//! - [`process`]: stopping on Ctrl-C/SIGTERM and, with feature `logging`,
//!   the one tracing set-up every binary uses.
//!
//! What is on the wire is decided by `tidings-events`; this crate only moves
//! bytes and never invents a format of its own.

mod cluster;
pub mod history;
pub mod process;
pub mod publish;
pub mod recorder;
pub mod redact;
pub mod redis_url;
mod resp;
pub mod resume;
pub mod source;
mod subscriber;
mod tls;

/// Entry points for the cargo-fuzz targets in `crates/tidings/fuzz`, and
/// nothing else. The RESP reader stays a private module (its types are not
/// an API anyone should build on); this feature-gated function is the one
/// door the fuzzer needs, so normal builds expose nothing new.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::resp::fuzz_read_replies as read_replies;
}

pub use publish::{PublishError, PublishOutcome, Publisher, PublisherConfig};
pub use redact::redact_url;
pub use redis_url::RedisUrl;
pub use source::{
    Backoff, GatewaySourceConfig, GatewayToken, RedisSourceConfig, SourceHandle, SourceMessage,
    SourceState, SourceUpdate, Subscription, spawn_gateway_source, spawn_redis_source,
};
pub use tls::asks_for_insecure_tls;
