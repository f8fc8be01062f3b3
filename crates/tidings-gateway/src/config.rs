//! Configuration: command-line flags and environment ([`GatewayArgs`]), an
//! optional TOML file (`--config FILE`), and the resolved [`GatewayConfig`]
//! the server runs with.
//!
//! Precedence, highest first: flag, environment variable, TOML file, default.
//! Flag and variable names are fixed by scripts and deployments
//! (`--listen`, `--redis`, `--jwt-secret`, `--api-key`, `--broker memory`,
//! `TIDINGS_LISTEN`, `TIDINGS_REDIS_URL`, `TIDINGS_JWT_SECRET`,
//! `TIDINGS_API_KEY`); `docs/gateway.md` lists every name. Secrets are kept in
//! [`Secret`], whose `Debug` never shows the value.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tidings::history::HistoryConfig;
use tidings::redact_url;

use crate::GatewayError;

/// Where the gateway listens when told nothing else: loopback only.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// The Redis the gateway uses when told nothing else.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Largest event forwarded unless `--max-event-bytes` says otherwise: 1 MiB.
pub(crate) const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Shortest JWT secret accepted: an HS256 key as long as its hash (RFC 7518 §3.2).
pub(crate) const MIN_JWT_SECRET_BYTES: usize = 32;

/// A secret value (JWT secret, API key). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`; it is shown as `<redacted>` in `Debug` output.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Which broker carries events into the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// Redis Pub/Sub (`PSUBSCRIBE ws:*`); `--redis` says where.
    Redis,
    /// An in-process broker fed only by `POST /api/publish`: one machine, no Redis.
    Memory,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Flags and environment variables of `tidings-gateway` and `tidings gateway`.
///
/// Every option may also be set in the TOML file given by `--config`, under
/// the same name as the long flag (`listen = "0.0.0.0:8787"`,
/// `jwt-secret = "..."`, `max-connections = 20000`).
#[derive(Clone, Default, clap::Args)]
pub struct GatewayArgs {
    /// TOML file with any of these options (same names as the long flags).
    /// Flags and environment variables override it.
    #[arg(long, value_name = "FILE", env = "TIDINGS_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on for WebSocket (/ws) and HTTP (/healthz, /metrics,
    /// /api/publish). [default: 127.0.0.1:8787]
    #[arg(long, value_name = "ADDR", env = "TIDINGS_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Redis URL to subscribe to (PSUBSCRIBE ws:*) and publish through.
    /// [default: redis://127.0.0.1:6379]
    #[arg(long = "redis", value_name = "URL", env = "TIDINGS_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Broker carrying events: `redis`, or `memory` (in-process, fed by
    /// POST /api/publish; for a single machine with no Redis). [default: redis]
    #[arg(long, value_name = "KIND", env = "TIDINGS_BROKER")]
    pub broker: Option<BrokerKind>,

    /// HS256 secret that client JWTs are signed with. Without it the gateway
    /// runs in OPEN MODE: anyone may connect and subscribe to any channel.
    #[arg(long, value_name = "SECRET", env = "TIDINGS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Key that POST /api/publish requires (as `Authorization: Bearer KEY` or
    /// `X-Api-Key: KEY`). Without it publishing over HTTP is disabled.
    #[arg(long, value_name = "KEY", env = "TIDINGS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Required `aud` claim of client tokens; when unset, `aud` is not checked.
    #[arg(long, value_name = "AUDIENCE", env = "TIDINGS_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Required `iss` claim of client tokens; when unset, `iss` is not checked.
    #[arg(long, value_name = "ISSUER", env = "TIDINGS_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Longest token lifetime accepted, in seconds: a token whose `exp` is
    /// further than this after its `iat` (or after now, without `iat`) is
    /// refused. [default: no limit]
    #[arg(long, value_name = "SECS", env = "TIDINGS_MAX_TOKEN_LIFETIME")]
    pub max_token_lifetime: Option<f64>,

    /// Allow listening on a non-loopback address in open mode (no JWT secret).
    /// Anyone who can reach the port can then read every channel.
    #[arg(long, env = "TIDINGS_INSECURE_BIND")]
    pub insecure_bind: bool,

    /// Browser origin allowed to open WebSockets (repeat, or comma-separate in
    /// the variable). When any is given, upgrades from other origins get 403;
    /// requests without an Origin header (non-browser clients) are allowed.
    #[arg(
        long = "allowed-origin",
        value_name = "ORIGIN",
        env = "TIDINGS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Most concurrent WebSocket connections; more get HTTP 503. [default: 10000]
    #[arg(long, value_name = "N", env = "TIDINGS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most TCP connections not (yet) upgraded to WebSocket: HTTP requests,
    /// handshakes in progress, idle keep-alive and half-open connections.
    /// More are answered 503 at once. [default: 1024]
    #[arg(long, value_name = "N", env = "TIDINGS_MAX_PENDING_CONNECTIONS")]
    pub max_pending_connections: Option<usize>,

    /// Most TCP connections (pending and WebSocket) from one client address
    /// (IPv6: one /64); more get HTTP 429. Loopback clients are not counted
    /// unless --limit-loopback. [default: 1000]
    #[arg(long, value_name = "N", env = "TIDINGS_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,

    /// Count loopback clients under --max-connections-per-ip too (off: a
    /// reverse proxy on this machine brings every client from 127.0.0.1).
    #[arg(long, env = "TIDINGS_LIMIT_LOOPBACK")]
    pub limit_loopback: bool,

    /// Most WebSocket connections of one user (the token's `sub`); more get
    /// HTTP 429. [default: 32]
    #[arg(long, value_name = "N", env = "TIDINGS_MAX_CONNECTIONS_PER_USER")]
    pub max_connections_per_user: Option<usize>,

    /// Seconds a client has to send a request's headers, counted from the
    /// accept or, on a kept-alive connection, from the previous response: so
    /// also how long an idle keep-alive connection stays open. [default: 10]
    #[arg(long, value_name = "SECS", env = "TIDINGS_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<f64>,

    /// Allow `rediss://…#insecure` (TLS without certificate checks) in
    /// --redis. Without it such a URL is refused at start.
    #[arg(long, env = "TIDINGS_INSECURE_TLS")]
    pub insecure_tls: bool,

    /// Most channels one connection may subscribe to. [default: 64]
    #[arg(long, value_name = "N", env = "TIDINGS_MAX_SUBSCRIPTIONS")]
    pub max_subscriptions: Option<usize>,

    /// Largest client frame in bytes; a larger one gets an `error` frame with
    /// code `too_large` and close code 1009. [default: 65536]
    #[arg(long, value_name = "BYTES", env = "TIDINGS_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,

    /// Bytes of event frames queued for one connection before it counts as a
    /// slow consumer and is closed with code 1013 (reconnect later). [default: 1048576]
    #[arg(long, value_name = "BYTES", env = "TIDINGS_OUTBOUND_BUFFER_BYTES")]
    pub outbound_buffer_bytes: Option<usize>,

    /// Largest event forwarded, in bytes, from Redis or POST /api/publish; a
    /// larger one is counted, logged and replaced by a `skipped` frame
    /// (publish: HTTP 413). [default: 1048576]
    #[arg(long, value_name = "BYTES", env = "TIDINGS_MAX_EVENT_BYTES")]
    pub max_event_bytes: Option<usize>,

    /// Seconds between server pings. [default: 20]
    #[arg(long, value_name = "SECS", env = "TIDINGS_PING_INTERVAL")]
    pub ping_interval: Option<f64>,

    /// Seconds a peer may stay silent (no frame, no pong) before it is dropped. [default: 60]
    #[arg(long, value_name = "SECS", env = "TIDINGS_IDLE_TIMEOUT")]
    pub idle_timeout: Option<f64>,

    /// Seconds graceful shutdown may take before remaining connections are dropped. [default: 5]
    #[arg(long, value_name = "SECS", env = "TIDINGS_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<f64>,

    /// Log format: `text` or `json`. Levels come from RUST_LOG (default `info`).
    #[arg(long, value_name = "FORMAT", env = "TIDINGS_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Do not record events in the per-channel history in Redis: no
    /// positions on event frames, `since` in a subscribe is answered with
    /// `recovered: false` (docs/positions.md).
    #[arg(long, env = "TIDINGS_NO_HISTORY")]
    pub no_history: bool,

    /// Events kept per channel in the history. [default: 10000]
    #[arg(long, value_name = "N", env = "TIDINGS_HISTORY_MAX_LEN")]
    pub history_max_len: Option<u64>,

    /// Seconds an event stays in the history. [default: 86400]
    #[arg(long, value_name = "SECS", env = "TIDINGS_HISTORY_MAX_AGE")]
    pub history_max_age: Option<f64>,
}

impl fmt::Debug for GatewayArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayArgs")
            .field("config", &self.config)
            .field("listen", &self.listen)
            .field("redis_url", &self.redis_url.as_ref().map(|url| redact_url(url)))
            .field("broker", &self.broker)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<redacted>"))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("max_token_lifetime", &self.max_token_lifetime)
            .field("insecure_bind", &self.insecure_bind)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_connections", &self.max_connections)
            .field("max_pending_connections", &self.max_pending_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("limit_loopback", &self.limit_loopback)
            .field("max_connections_per_user", &self.max_connections_per_user)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("insecure_tls", &self.insecure_tls)
            .field("max_subscriptions", &self.max_subscriptions)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("outbound_buffer_bytes", &self.outbound_buffer_bytes)
            .field("max_event_bytes", &self.max_event_bytes)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("log_format", &self.log_format)
            .field("no_history", &self.no_history)
            .field("history_max_len", &self.history_max_len)
            .field("history_max_age", &self.history_max_age)
            .finish()
    }
}

/// The TOML file: the same options as [`GatewayArgs`], kebab-case.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    redis: Option<String>,
    broker: Option<BrokerKind>,
    jwt_secret: Option<String>,
    api_key: Option<String>,
    jwt_audience: Option<String>,
    jwt_issuer: Option<String>,
    max_token_lifetime: Option<f64>,
    insecure_bind: Option<bool>,
    allowed_origins: Option<Vec<String>>,
    max_connections: Option<usize>,
    max_pending_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    limit_loopback: Option<bool>,
    max_connections_per_user: Option<usize>,
    header_read_timeout: Option<f64>,
    insecure_tls: Option<bool>,
    max_subscriptions: Option<usize>,
    max_frame_bytes: Option<usize>,
    outbound_buffer_bytes: Option<usize>,
    max_event_bytes: Option<usize>,
    ping_interval: Option<f64>,
    idle_timeout: Option<f64>,
    shutdown_timeout: Option<f64>,
    log_format: Option<LogFormat>,
    no_history: Option<bool>,
    history_max_len: Option<u64>,
    history_max_age: Option<f64>,
}

/// Everything the gateway runs with, defaults filled in.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Address the WebSocket and HTTP server listens on.
    pub listen: SocketAddr,
    /// Which broker carries events into the gateway.
    pub broker: BrokerKind,
    /// Used when `broker` is [`BrokerKind::Redis`].
    pub redis_url: String,
    /// `None` = open mode.
    pub jwt_secret: Option<Secret>,
    /// `None` = `POST /api/publish` refuses every request.
    pub api_key: Option<Secret>,
    /// Required `aud` claim; `None` = not checked.
    pub jwt_audience: Option<String>,
    /// Required `iss` claim; `None` = not checked.
    pub jwt_issuer: Option<String>,
    /// Longest `exp - iat` (or `exp - now`) accepted; `None` = no limit.
    pub max_token_lifetime: Option<Duration>,
    /// Whether a non-loopback `listen` address is allowed in open mode.
    pub insecure_bind: bool,
    /// Empty = any origin.
    pub allowed_origins: Vec<String>,
    /// Most concurrent WebSocket connections; more get HTTP 503.
    pub max_connections: usize,
    /// TCP connections not upgraded to WebSocket (see `listener`).
    pub max_pending_connections: usize,
    /// Most TCP connections (pending and WebSocket) from one client address
    /// (IPv6: one /64); more get HTTP 429.
    pub max_connections_per_ip: usize,
    /// Whether loopback clients count under `max_connections_per_ip`.
    pub limit_loopback: bool,
    /// Most WebSocket connections of one user (the token's `sub`); more get
    /// HTTP 429.
    pub max_connections_per_user: usize,
    /// Bound on reading a request's headers, and on an idle keep-alive.
    pub header_read_timeout: Duration,
    /// Whether `rediss://…#insecure` is allowed.
    pub insecure_tls: bool,
    /// Most channels one connection may subscribe to.
    pub max_subscriptions: usize,
    /// Largest client frame, in bytes; a larger one is refused with `too_large`.
    pub max_frame_bytes: usize,
    /// Bytes of event frames queued for one connection before it is closed
    /// as a slow consumer (close code 1013).
    pub outbound_buffer_bytes: usize,
    /// Largest event forwarded (docs/gateway.md, "Large events").
    pub max_event_bytes: usize,
    /// Time between server pings.
    pub ping_interval: Duration,
    /// How long a peer may stay silent (no frame, no pong) before it is dropped.
    pub idle_timeout: Duration,
    /// How long graceful shutdown may take before remaining connections are
    /// dropped.
    pub shutdown_timeout: Duration,
    /// How long a close frame may take to go out before the socket is dropped.
    pub close_timeout: Duration,
    /// How long one write to a client may block before the client is dropped.
    pub write_timeout: Duration,
    /// Longest wait between Redis reconnect attempts.
    pub redis_backoff_max: Duration,
    /// Format of log lines.
    pub log_format: LogFormat,
    /// The per-channel history in Redis (docs/positions.md); `None` = off.
    /// Always off with the memory broker.
    pub history: Option<HistoryConfig>,
}

impl GatewayConfig {
    /// Defaults for `listen` (which tests usually set to `127.0.0.1:0`).
    pub fn new(listen: SocketAddr) -> Self {
        GatewayConfig {
            listen,
            broker: BrokerKind::Redis,
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            jwt_secret: None,
            api_key: None,
            jwt_audience: None,
            jwt_issuer: None,
            max_token_lifetime: None,
            insecure_bind: false,
            allowed_origins: Vec::new(),
            max_connections: 10_000,
            max_pending_connections: 1024,
            max_connections_per_ip: 1000,
            limit_loopback: false,
            max_connections_per_user: 32,
            header_read_timeout: Duration::from_secs(10),
            insecure_tls: false,
            max_subscriptions: 64,
            max_frame_bytes: 64 * 1024,
            outbound_buffer_bytes: 1024 * 1024,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(5),
            close_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(10),
            redis_backoff_max: Duration::from_secs(5),
            log_format: LogFormat::Text,
            history: Some(HistoryConfig::default()),
        }
    }

    /// Resolves flags/env over the TOML file (if any) over defaults, and
    /// checks the result.
    pub fn from_args(args: &GatewayArgs) -> Result<Self, GatewayError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = match args.listen.or(file.listen) {
            Some(listen) => listen,
            None => {
                DEFAULT_LISTEN.parse().map_err(|_| config_error("bad built-in listen address"))?
            }
        };
        let mut config = GatewayConfig::new(listen);
        config.broker = args.broker.or(file.broker).unwrap_or(BrokerKind::Redis);
        if let Some(url) = args.redis_url.clone().or(file.redis) {
            config.redis_url = url;
        }
        config.jwt_secret = non_empty(args.jwt_secret.clone().or(file.jwt_secret)).map(Secret);
        config.api_key = non_empty(args.api_key.clone().or(file.api_key)).map(Secret);
        config.jwt_audience = non_empty(args.jwt_audience.clone().or(file.jwt_audience));
        config.jwt_issuer = non_empty(args.jwt_issuer.clone().or(file.jwt_issuer));
        config.max_token_lifetime =
            seconds("max-token-lifetime", args.max_token_lifetime.or(file.max_token_lifetime))?;
        config.insecure_bind = args.insecure_bind || file.insecure_bind.unwrap_or(false);
        config.allowed_origins = if args.allowed_origins.is_empty() {
            file.allowed_origins.unwrap_or_default()
        } else {
            args.allowed_origins.clone()
        };
        config.allowed_origins = config
            .allowed_origins
            .into_iter()
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect();
        let pick = |flag: Option<usize>, file: Option<usize>, default: usize| {
            flag.or(file).unwrap_or(default)
        };
        config.max_connections =
            pick(args.max_connections, file.max_connections, config.max_connections);
        config.max_pending_connections = pick(
            args.max_pending_connections,
            file.max_pending_connections,
            config.max_pending_connections,
        );
        config.max_connections_per_ip = pick(
            args.max_connections_per_ip,
            file.max_connections_per_ip,
            config.max_connections_per_ip,
        );
        config.max_connections_per_user = pick(
            args.max_connections_per_user,
            file.max_connections_per_user,
            config.max_connections_per_user,
        );
        config.limit_loopback = args.limit_loopback || file.limit_loopback.unwrap_or(false);
        config.insecure_tls = args.insecure_tls || file.insecure_tls.unwrap_or(false);
        config.header_read_timeout =
            seconds("header-read-timeout", args.header_read_timeout.or(file.header_read_timeout))?
                .unwrap_or(config.header_read_timeout);
        config.max_subscriptions =
            pick(args.max_subscriptions, file.max_subscriptions, config.max_subscriptions);
        config.max_frame_bytes =
            pick(args.max_frame_bytes, file.max_frame_bytes, config.max_frame_bytes);
        config.outbound_buffer_bytes = pick(
            args.outbound_buffer_bytes,
            file.outbound_buffer_bytes,
            config.outbound_buffer_bytes,
        );
        config.max_event_bytes =
            pick(args.max_event_bytes, file.max_event_bytes, config.max_event_bytes);
        config.ping_interval = seconds("ping-interval", args.ping_interval.or(file.ping_interval))?
            .unwrap_or(config.ping_interval);
        config.idle_timeout = seconds("idle-timeout", args.idle_timeout.or(file.idle_timeout))?
            .unwrap_or(config.idle_timeout);
        config.shutdown_timeout =
            seconds("shutdown-timeout", args.shutdown_timeout.or(file.shutdown_timeout))?
                .unwrap_or(config.shutdown_timeout);
        config.log_format = args.log_format.or(file.log_format).unwrap_or_default();
        if args.no_history || file.no_history.unwrap_or(false) {
            config.history = None;
        } else if let Some(history) = &mut config.history {
            if let Some(max_len) = args.history_max_len.or(file.history_max_len) {
                history.max_len = max_len;
            }
            if let Some(max_age) =
                seconds("history-max-age", args.history_max_age.or(file.history_max_age))?
            {
                history.max_age = max_age;
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks limits and the open-mode bind rule.
    pub fn validate(&self) -> Result<(), GatewayError> {
        for (name, value) in [
            ("max-connections", self.max_connections),
            ("max-pending-connections", self.max_pending_connections),
            ("max-connections-per-ip", self.max_connections_per_ip),
            ("max-connections-per-user", self.max_connections_per_user),
            ("max-subscriptions", self.max_subscriptions),
            ("max-frame-bytes", self.max_frame_bytes),
            ("outbound-buffer-bytes", self.outbound_buffer_bytes),
            ("max-event-bytes", self.max_event_bytes),
        ] {
            if value == 0 {
                return Err(config_error(format!("{name} must be at least 1")));
            }
        }
        if self.max_frame_bytes < 128 {
            return Err(config_error("max-frame-bytes must be at least 128 (a subscribe frame)"));
        }
        if self.idle_timeout <= self.ping_interval {
            return Err(config_error(format!(
                "idle-timeout ({:?}) must be longer than ping-interval ({:?}), or every peer is dropped",
                self.idle_timeout, self.ping_interval
            )));
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose().len() < MIN_JWT_SECRET_BYTES
        {
            return Err(config_error(format!(
                "the JWT secret (--jwt-secret / TIDINGS_JWT_SECRET) is {} bytes; HS256 needs at least {MIN_JWT_SECRET_BYTES} \
                 (RFC 7518 §3.2). Generate one with `openssl rand -hex 32` and give the same secret to whoever signs the tokens",
                secret.expose().len()
            )));
        }
        if self.jwt_secret.is_none() && !self.listen.ip().is_loopback() && !self.insecure_bind {
            return Err(GatewayError::OpenModeNotLoopback(self.listen));
        }
        if self.broker == BrokerKind::Redis {
            let target = tidings::RedisUrl::parse(&self.redis_url)
                .map_err(|error| config_error(format!("bad --redis URL: {error}")))?;
            let insecure = target.server().is_some_and(|client| {
                matches!(
                    client.get_connection_info().addr(),
                    redis::ConnectionAddr::TcpTls { insecure: true, .. }
                )
            });
            if insecure && !self.insecure_tls {
                return Err(GatewayError::InsecureTls(redact_url(&self.redis_url)));
            }
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<FileConfig, GatewayError> {
    let text = std::fs::read_to_string(path).map_err(|source| GatewayError::ConfigFile {
        path: path.to_owned(),
        message: format!("cannot read it: {source}"),
    })?;
    toml::from_str(&text).map_err(|error| GatewayError::ConfigFile {
        path: path.to_owned(),
        message: error.to_string(),
    })
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

fn seconds(name: &str, value: Option<f64>) -> Result<Option<Duration>, GatewayError> {
    value
        .map(|secs| {
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|duration| !duration.is_zero())
                .ok_or_else(|| {
                    config_error(format!("{name} must be a positive number of seconds, got {secs}"))
                })
        })
        .transpose()
}

fn config_error(message: impl Into<String>) -> GatewayError {
    GatewayError::Config(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_passwords_never_reach_logs() {
        // The library's redaction (`***` for the password), since the
        // gateway stopped keeping a second one that wrote `<credentials>`.
        assert_eq!(redact_url("redis://:hunter2@127.0.0.1:6379"), "redis://:***@127.0.0.1:6379");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let args = GatewayArgs {
            jwt_secret: Some("topsecret-topsecret-topsecret-topsecret".into()),
            api_key: Some("key123".into()),
            ..GatewayArgs::default()
        };
        let shown = format!("{args:?}");
        assert!(!shown.contains("topsecret") && !shown.contains("key123"), "{shown}");
        let config = GatewayConfig::from_args(&args).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("topsecret") && !shown.contains("key123"), "{shown}");
    }

    #[test]
    fn open_mode_refuses_a_public_address_unless_told() {
        let args =
            GatewayArgs { listen: Some("0.0.0.0:8787".parse().unwrap()), ..Default::default() };
        let error = GatewayConfig::from_args(&args).unwrap_err().to_string();
        assert!(error.contains("--insecure-bind") && error.contains("--jwt-secret"), "{error}");
        let args = GatewayArgs { insecure_bind: true, ..args };
        assert!(GatewayConfig::from_args(&args).is_ok());
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir =
            std::env::temp_dir().join(format!("tidings-gateway-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nmax-connections = 7\nbroker = \"memory\"\n",
        )
        .unwrap();
        let args = GatewayArgs {
            config: Some(path.clone()),
            max_connections: Some(9),
            ..Default::default()
        };
        let config = GatewayConfig::from_args(&args).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.max_connections, 9);
        assert_eq!(config.broker, BrokerKind::Memory);
        assert_eq!(config.max_subscriptions, 64);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn tls_without_certificate_checks_is_refused_unless_told_and_the_error_names_the_flag() {
        let args = GatewayArgs {
            redis_url: Some("rediss://:hunter2@redis.example:6380/#insecure".into()),
            ..Default::default()
        };
        let error = GatewayConfig::from_args(&args).unwrap_err().to_string();
        assert!(error.contains("--insecure-tls") && error.contains("#insecure"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let args = GatewayArgs { insecure_tls: true, ..args };
        assert!(GatewayConfig::from_args(&args).unwrap().insecure_tls);
    }

    #[test]
    fn event_size_and_token_rules_are_read_from_the_file() {
        let dir =
            std::env::temp_dir().join(format!("tidings-gateway-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(
            &path,
            "max-event-bytes = 2048\njwt-audience = \"tidings\"\njwt-issuer = \"erp\"\nmax-token-lifetime = 600\n",
        )
        .unwrap();
        let args = GatewayArgs { config: Some(path.clone()), ..Default::default() };
        let config = GatewayConfig::from_args(&args).unwrap();
        assert_eq!(config.max_event_bytes, 2048);
        assert_eq!(config.jwt_audience.as_deref(), Some("tidings"));
        assert_eq!(config.jwt_issuer.as_deref(), Some("erp"));
        assert_eq!(config.max_token_lifetime, Some(Duration::from_secs(600)));
        std::fs::remove_file(&path).unwrap();
        let defaults = GatewayConfig::from_args(&GatewayArgs::default()).unwrap();
        assert_eq!(defaults.max_event_bytes, DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(defaults.max_token_lifetime, None, "off by default");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        let dir =
            std::env::temp_dir().join(format!("tidings-gateway-badconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:9000\"\n").unwrap();
        let args = GatewayArgs { config: Some(path.clone()), ..Default::default() };
        let error = GatewayConfig::from_args(&args).unwrap_err().to_string();
        assert!(error.contains("listn") && error.contains("gateway.toml"), "{error}");
        std::fs::remove_file(&path).unwrap();
    }
}
