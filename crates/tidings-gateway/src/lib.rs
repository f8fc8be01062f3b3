//! The Tidings gateway: Redis Pub/Sub fanned out over WebSocket
//! (`shared/protocol.md` §2, design in `docs/gateway.md`).
//!
//! Module map:
//! - `config`: flags, environment, TOML file → [`GatewayConfig`].
//! - `auth`: HS256 JWTs → what a connection may subscribe to.
//! - `hub`: the fan-out: one decode and one frame per Redis message, shared
//!   by every subscribed connection through byte-bounded frame queues.
//! - `upstream`: the one Redis subscription (`PSUBSCRIBE ws:*`) with
//!   reconnects, the in-process broker, and publishing.
//! - `connection`: one task per WebSocket client.
//! - `http`: the axum router: `/ws`, `/healthz`, `/metrics`, `/api/publish`.
//! - `listener`: the accept loop: header-read timeout, the bound on
//!   connections not yet upgraded, per-address and per-user caps.
//! - `metrics`: the Prometheus registry of one gateway.
//! - `server`: [`Gateway::bind`] and [`run`], which tie it together under one
//!   shutdown token.

mod auth;
mod config;
mod connection;
mod http;
mod hub;
mod listener;
mod metrics;
mod server;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;

// The public surface: starting a gateway, its settings, and the few facts
// tests and tools read. Everything else is the crate's own.
pub use auth::Authenticator;
pub use config::{BrokerKind, DEFAULT_REDIS_URL, GatewayArgs, GatewayConfig, LogFormat, Secret};
pub use connection::{REPLAY_BURST, REPLAY_PAGE, REPLAY_RATE};
pub use server::{BoundGateway, Gateway, Serving, run};
pub use upstream::UpstreamStatus;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A setting is invalid (a bad value, a bad `--redis` URL); the text
    /// says which.
    #[error("configuration: {0}")]
    Config(String),
    /// The `--config` TOML file cannot be read or parsed.
    #[error("config file {path}: {message}")]
    ConfigFile {
        /// The file, as given.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// Open mode (no JWT secret) on a non-loopback listen address without
    /// `--insecure-bind`; holds that address.
    #[error(
        "refusing to listen on {0} in open mode (no JWT secret): anyone reaching it could read every channel. \
         Set --jwt-secret (or TIDINGS_JWT_SECRET), listen on 127.0.0.1, or pass --insecure-bind if you really mean it"
    )]
    OpenModeNotLoopback(SocketAddr),
    /// The listen address cannot be bound.
    #[error(
        "cannot listen on {addr}: {source}; is another process using it? Pick another with --listen"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// A `rediss://…#insecure` URL without `--insecure-tls`; holds the URL,
    /// password hidden.
    #[error(
        "--redis {0} asks for TLS without certificate checks (#insecure): anyone on the path could read \
         and forge every event. Use a certificate the system trusts, or pass --insecure-tls \
         (TIDINGS_INSECURE_TLS) if you really mean it"
    )]
    InsecureTls(String),
    /// The listening socket failed.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}
