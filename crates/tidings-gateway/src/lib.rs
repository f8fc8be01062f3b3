//! The Tidings gateway: Redis Pub/Sub fanned out over WebSocket
//! (`shared/protocol.md` §2, design in `docs/gateway.md`).
//!
//! Module map:
//! - [`config`]: flags, environment, TOML file → [`GatewayConfig`].
//! - [`auth`]: HS256 JWTs → what a connection may subscribe to.
//! - [`hub`]: the fan-out: one decode and one frame per Redis message, shared
//!   by every subscribed connection through byte-bounded frame queues.
//! - [`upstream`]: the one Redis subscription (`PSUBSCRIBE ws:*`) with
//!   reconnects, the in-process broker, and publishing.
//! - [`connection`]: one task per WebSocket client.
//! - [`http`]: the axum router: `/ws`, `/healthz`, `/metrics`, `/api/publish`.
//! - [`listener`]: the accept loop: header-read timeout, the bound on
//!   connections not yet upgraded, per-address and per-user caps.
//! - [`metrics`]: the Prometheus registry of one gateway.
//! - [`server`]: [`Gateway::bind`] and [`run`], which tie it together under one
//!   shutdown token.

pub mod auth;
pub mod config;
pub mod connection;
pub mod http;
pub mod hub;
pub mod listener;
pub mod metrics;
pub mod server;
pub mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use config::{BrokerKind, GatewayArgs, GatewayConfig, LogFormat, Secret};
pub use server::{BoundGateway, Gateway, Serving, run};

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("config file {path}: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error(
        "refusing to listen on {0} in open mode (no JWT secret): anyone reaching it could read every channel. \
         Set --jwt-secret (or TIDINGS_JWT_SECRET), listen on 127.0.0.1, or pass --insecure-bind if you really mean it"
    )]
    OpenModeNotLoopback(SocketAddr),
    #[error(
        "cannot listen on {addr}: {source}; is another process using it? Pick another with --listen"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--redis {0} asks for TLS without certificate checks (#insecure): anyone on the path could read \
         and forge every event. Use a certificate the system trusts, or pass --insecure-tls \
         (TIDINGS_INSECURE_TLS) if you really mean it"
    )]
    InsecureTls(String),
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}
