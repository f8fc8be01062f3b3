//! The one Redis subscriber of this workspace: connect (TCP, TLS or a Unix
//! socket), authenticate, SUBSCRIBE/PSUBSCRIBE, then read one reply at a
//! time into a bounded queue, with a keepalive that notices a server gone
//! silent. The Redis source (desktop, `tidings tail`) and the recorder (the
//! gateway's upstream, the desktop's standby recorder) both read Redis
//! through it, so there is one backpressure story: when the queue is full
//! the reader stops reading and Redis buffers, up to its
//! `client-output-buffer-limit pubsub`, then drops the connection, which the
//! owner reports and reconnects (see `resp` for why not redis-rs's `PubSub`).
//!
//! Marks: [`Liveness::watch`] can send `PING tidings-mark:N` on the
//! subscription. Redis answers it in order with the messages, so when the
//! reader hands on [`Received::Mark`]`(N)`, every message published before
//! that PING was processed has been handed on before it. The recorder uses
//! this to prove how far it has recorded (docs/positions.md, "Coverage").

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::redis_url::{Commands, RedisUrl};
use crate::resp::{self, Reply, RespError};

/// Bound on connecting, authenticating and subscribing.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Prefix of the argument of a mark PING.
const MARK_PREFIX: &str = "tidings-mark:";

/// Why one connection attempt or session ended.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth retrying with backoff (network, server restart, timeout).
    Transient(String),
    /// The configuration is refused (credentials); retried only slowly.
    Refused(String),
}

/// Anything a connection can run over: TCP, TLS or a Unix socket.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug)]
enum Target {
    Tcp {
        host: String,
        port: u16,
    },
    /// `verify: false` only for `#insecure` with the operator's explicit consent.
    Tls {
        host: String,
        port: u16,
        verify: bool,
    },
    Unix(std::path::PathBuf),
}

/// A Redis server to subscribe to, parsed once from its URL (or, for a
/// sentinel URL, the service whose master is looked up at each connection:
/// see `redis_url`). Its `Debug` shows only the label: the password (and
/// the client, which holds it) must never reach a log.
pub(crate) struct Endpoint {
    /// For messages: the URL with its password hidden.
    pub(crate) label: String,
    url: RedisUrl,
    insecure_tls: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("label", &self.label).finish_non_exhaustive()
    }
}

/// A subscribed connection: its two halves, and messages that arrived
/// before every subscription was confirmed.
pub(crate) struct Connected {
    pub(crate) reader: BufReader<tokio::io::ReadHalf<Box<dyn Io>>>,
    pub(crate) writer: tokio::io::WriteHalf<Box<dyn Io>>,
    pub(crate) early: Vec<(String, bytes::Bytes)>,
    /// The server subscribed to, for commands to that very node (on Redis
    /// Cluster, where each node delivers what reached it).
    pub(crate) server: redis::Client,
}

/// Where and as whom one connection goes, from a server's client.
struct Node {
    client: redis::Client,
    target: Target,
    username: Option<String>,
    password: Option<String>,
}

impl Node {
    fn of(client: &redis::Client, label: &str, insecure_tls: bool) -> Result<Node, String> {
        let info = client.get_connection_info();
        let target = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => {
                Target::Tcp { host: host.clone(), port: *port }
            }
            redis::ConnectionAddr::TcpTls { insecure: true, .. } if !insecure_tls => {
                return Err(format!(
                    "Redis URL {label} asks for TLS without certificate checks (#insecure); certificates are always checked here"
                ));
            }
            redis::ConnectionAddr::TcpTls { host, port, insecure, .. } => {
                Target::Tls { host: host.clone(), port: *port, verify: !insecure }
            }
            redis::ConnectionAddr::Unix(path) => Target::Unix(path.clone()),
            other => return Err(format!("Redis address {other:?} is not supported")),
        };
        let settings = info.redis_settings();
        Ok(Node {
            client: client.clone(),
            target,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
        })
    }
}

impl Endpoint {
    /// Reads `url`; an error says what is wrong, with the password hidden.
    /// `rediss://…#insecure` (no certificate checks) is refused.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        Self::parse_with(url, false)
    }

    /// [`Endpoint::parse`], accepting `#insecure` when `insecure_tls` (the
    /// operator passed `--insecure-tls`).
    pub(crate) fn parse_with(url: &str, insecure_tls: bool) -> Result<Self, String> {
        let url = RedisUrl::parse(url).map_err(|error| error.to_string())?;
        let label = url.label().to_owned();
        if let Some(client) = url.server() {
            // One server: what is wrong with it is said now, not at connect.
            Node::of(client, &label, insecure_tls)?;
        }
        Ok(Endpoint { label, url, insecure_tls })
    }

    /// A connection for ordinary commands (history), which a subscribed
    /// connection cannot run: to the server, the current master, or the
    /// cluster; `timeout` bounds connecting and each reply.
    pub(crate) async fn commands(&self, timeout: Duration) -> redis::RedisResult<Commands> {
        self.url.connect(timeout).await
    }

    /// What the URL names (for the history's key layout).
    pub(crate) fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// The server to connect to now (asking the sentinels for a sentinel URL).
    async fn node(&self) -> Result<Node, Failure> {
        let client = self.url.client(CONNECT_TIMEOUT).await.map_err(|error| {
            Failure::Transient(format!("cannot find the Redis master of {}: {error}", self.label))
        })?;
        Node::of(&client, &self.label, self.insecure_tls).map_err(Failure::Refused)
    }

    async fn open(&self, node: &Node) -> Result<Box<dyn Io>, Failure> {
        let unreachable = |error: std::io::Error| {
            Failure::Transient(format!("cannot reach Redis at {}: {error}", self.label))
        };
        Ok(match &node.target {
            Target::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(unreachable)?;
                let _ = stream.set_nodelay(true);
                Box::new(stream)
            }
            Target::Tls { host, port, verify } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(unreachable)?;
                let _ = stream.set_nodelay(true);
                let config = if *verify {
                    crate::tls::client_config()
                } else {
                    crate::tls::insecure_client_config()
                };
                let config = config
                    .map_err(|error| Failure::Refused(format!("TLS setup failed: {error}")))?;
                let name =
                    rustls::pki_types::ServerName::try_from(host.clone()).map_err(|error| {
                        Failure::Refused(format!(
                            "{host:?} is not a valid TLS server name: {error}"
                        ))
                    })?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map_err(|error| {
                    Failure::Transient(format!("TLS handshake with {} failed: {error}", self.label))
                })?;
                Box::new(stream)
            }
            Target::Unix(path) => {
                #[cfg(unix)]
                {
                    let stream =
                        tokio::net::UnixStream::connect(path).await.map_err(unreachable)?;
                    Box::new(stream)
                }
                #[cfg(not(unix))]
                {
                    return Err(Failure::Refused(format!(
                        "Unix sockets ({}) are not supported on this platform",
                        path.display()
                    )));
                }
            }
        })
    }

    /// Connects, authenticates and subscribes to `channels` and `patterns`
    /// (Redis names). Returns once Redis has confirmed every subscription:
    /// from then on every message published on them reaches the reader.
    pub(crate) async fn subscribe(
        &self,
        channels: &[String],
        patterns: &[String],
    ) -> Result<Connected, Failure> {
        let node = self.node().await?;
        let stream = self.open(&node).await?;
        let (reader, mut writer) = tokio::io::split(stream);
        let mut reader = BufReader::new(reader);
        let lost = |error: RespError| {
            Failure::Transient(format!("lost Redis at {} while subscribing: {error}", self.label))
        };
        let write_error = |error: std::io::Error| {
            Failure::Transient(format!("lost Redis at {} while subscribing: {error}", self.label))
        };

        if let Some(password) = &node.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(username) = &node.username {
                args.push(username.as_bytes());
            }
            args.push(password.as_bytes());
            writer.write_all(&resp::command(&args)).await.map_err(write_error)?;
            match resp::read_reply(&mut reader).await.map_err(lost)? {
                Reply::Status(_) => {}
                Reply::Error(error) => {
                    return Err(Failure::Refused(format!(
                        "Redis at {} refused the credentials: {error}",
                        self.label
                    )));
                }
                other => {
                    return Err(Failure::Transient(format!(
                        "unexpected answer to AUTH: {other:?}"
                    )));
                }
            }
        }

        let mut request = Vec::new();
        if !channels.is_empty() {
            let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
            args.extend(channels.iter().map(|c| c.as_bytes()));
            request.extend(resp::command(&args));
        }
        if !patterns.is_empty() {
            let mut args: Vec<&[u8]> = vec![b"PSUBSCRIBE"];
            args.extend(patterns.iter().map(|p| p.as_bytes()));
            request.extend(resp::command(&args));
        }
        writer.write_all(&request).await.map_err(write_error)?;

        let mut unconfirmed = channels.len() + patterns.len();
        let mut early = Vec::new();
        while unconfirmed > 0 {
            match classify(resp::read_reply(&mut reader).await.map_err(lost)?) {
                Push::Confirmed => unconfirmed -= 1,
                Push::Message { channel, payload } => early.push((channel, payload)),
                Push::Error(error) if is_auth_error(&error) => {
                    return Err(Failure::Refused(format!(
                        "Redis at {} refused the subscription: {error}",
                        self.label
                    )));
                }
                Push::Error(error) => {
                    return Err(Failure::Transient(format!("Redis refused SUBSCRIBE: {error}")));
                }
                Push::Skipped { .. } | Push::Mark(_) | Push::Other => {}
            }
        }
        Ok(Connected { reader, writer, early, server: node.client })
    }
}

/// What the reader hands on, in the order Redis sent it.
#[derive(Debug)]
pub(crate) enum Received {
    Message {
        channel: String,
        payload: bytes::Bytes,
    },
    /// The answer to mark PING `N`: everything published before it was
    /// processed came before this.
    Mark(u64),
}

/// When the connection was last heard from, and whether its owner is
/// deliberately not reading (waiting for its consumer).
#[derive(Debug)]
pub(crate) struct Liveness {
    started: Instant,
    last_read: AtomicU64,
    waiting_for_consumer: AtomicBool,
}

impl Liveness {
    pub(crate) fn new() -> Self {
        Liveness {
            started: Instant::now(),
            last_read: AtomicU64::new(0),
            waiting_for_consumer: AtomicBool::new(false),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn heard(&self) {
        self.last_read.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// Hands `item` to `queue`, waiting for room (the backpressure); time
    /// spent waiting does not count as silence. False when the queue's
    /// reader is gone.
    async fn hand_on(&self, queue: &mpsc::Sender<Received>, item: Received) -> bool {
        self.waiting_for_consumer.store(true, Ordering::Relaxed);
        let sent = queue.send(item).await.is_ok();
        self.waiting_for_consumer.store(false, Ordering::Relaxed);
        self.heard();
        sent
    }

    /// Reads replies until the connection fails (returns why), handing
    /// messages and marks to `queue` in order. If the queue's reader is gone
    /// it waits forever: whoever dropped it decides how the session ends.
    pub(crate) async fn read(
        &self,
        reader: &mut BufReader<tokio::io::ReadHalf<Box<dyn Io>>>,
        early: Vec<(String, bytes::Bytes)>,
        queue: &mpsc::Sender<Received>,
        label: &str,
    ) -> Failure {
        for (channel, payload) in early {
            if !self.hand_on(queue, Received::Message { channel, payload }).await {
                std::future::pending::<()>().await;
            }
        }
        loop {
            let reply = match resp::read_reply(reader).await {
                Ok(reply) => reply,
                Err(error) => return Failure::Transient(format!("lost Redis at {label}: {error}")),
            };
            self.heard();
            let item = match classify(reply) {
                Push::Message { channel, payload } => Received::Message { channel, payload },
                Push::Mark(mark) => Received::Mark(mark),
                Push::Skipped { channel, length } => {
                    tracing::warn!(
                        %channel, length,
                        "skipped a message larger than {} bytes", resp::MAX_PAYLOAD_BYTES
                    );
                    continue;
                }
                Push::Error(error) => {
                    return Failure::Transient(format!("Redis at {label} said: {error}"));
                }
                Push::Confirmed | Push::Other => continue,
            };
            if !self.hand_on(queue, item).await {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sends `PING` every `interval` (and a mark PING for each number that
    /// arrives on `marks`), and ends the session when nothing was read for
    /// two intervals while the owner was reading.
    pub(crate) async fn watch(
        &self,
        writer: &mut tokio::io::WriteHalf<Box<dyn Io>>,
        interval: Duration,
        mut marks: mpsc::Receiver<u64>,
        label: &str,
    ) -> Failure {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut marks_open = true;
        loop {
            let command = tokio::select! {
                _ = ticks.tick() => {
                    let silent = Duration::from_millis(
                        self.elapsed_ms().saturating_sub(self.last_read.load(Ordering::Relaxed)),
                    );
                    if !self.waiting_for_consumer.load(Ordering::Relaxed) && silent > 2 * interval {
                        return Failure::Transient(format!(
                            "Redis at {label} has not answered for {}s",
                            silent.as_secs()
                        ));
                    }
                    resp::command(&[b"PING"])
                }
                mark = marks.recv(), if marks_open => match mark {
                    Some(mark) => {
                        let argument = format!("{MARK_PREFIX}{mark}");
                        resp::command(&[b"PING", argument.as_bytes()])
                    }
                    None => {
                        marks_open = false;
                        continue;
                    }
                },
            };
            if let Err(error) = writer.write_all(&command).await {
                return Failure::Transient(format!("lost Redis at {label}: {error}"));
            }
        }
    }
}

/// What a reply on a subscribed connection means.
pub(crate) enum Push {
    Message { channel: String, payload: bytes::Bytes },
    Skipped { channel: String, length: usize },
    Mark(u64),
    Confirmed,
    Error(String),
    Other,
}

pub(crate) fn classify(reply: Reply) -> Push {
    let items = match reply {
        Reply::Error(error) => return Push::Error(error),
        Reply::Array(Some(items)) => items,
        _ => return Push::Other,
    };
    let kind = items.first().and_then(Reply::as_text).unwrap_or_default();
    let (channel_at, payload_at) = match kind {
        "message" => (1, 2),
        "pmessage" => (2, 3),
        "subscribe" | "psubscribe" => return Push::Confirmed,
        "pong" => {
            let mark = items
                .get(1)
                .and_then(Reply::as_text)
                .and_then(|text| text.strip_prefix(MARK_PREFIX))
                .and_then(|number| number.parse().ok());
            return mark.map_or(Push::Other, Push::Mark);
        }
        _ => return Push::Other,
    };
    let channel = items.get(channel_at).and_then(Reply::as_text).unwrap_or_default().to_owned();
    match items.into_iter().nth(payload_at) {
        Some(Reply::Bulk(Some(payload))) => Push::Message { channel, payload },
        Some(Reply::Skipped(length)) => Push::Skipped { channel, length },
        _ => Push::Other,
    }
}

pub(crate) fn is_auth_error(error: &str) -> bool {
    ["NOAUTH", "WRONGPASS", "NOPERM"].iter().any(|code| error.starts_with(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Some(bytes::Bytes::copy_from_slice(text.as_bytes())))
    }

    #[test]
    fn a_pattern_message_reports_the_channel_not_the_pattern() {
        let reply =
            Reply::Array(Some(vec![bulk("pmessage"), bulk("ws:*"), bulk("ws:orders"), bulk("{}")]));
        let Push::Message { channel, payload } = classify(reply) else { panic!("not a message") };
        assert_eq!(channel, "ws:orders");
        assert_eq!(&payload[..], b"{}");
    }

    #[test]
    fn a_mark_pong_carries_its_number_and_a_plain_pong_is_nothing() {
        let mark = Reply::Array(Some(vec![bulk("pong"), bulk("tidings-mark:42")]));
        assert!(matches!(classify(mark), Push::Mark(42)));
        let plain = Reply::Array(Some(vec![bulk("pong"), bulk("")]));
        assert!(matches!(classify(plain), Push::Other));
    }

    #[test]
    fn tls_without_certificate_checks_is_refused_unless_the_operator_allowed_it() {
        let url = "rediss://:pw@redis.example:6380/#insecure";
        let error = Endpoint::parse(url).unwrap_err();
        assert!(error.contains("#insecure") && !error.contains("pw@"), "{error}");
        let node_of = |url: &str| {
            let endpoint = Endpoint::parse_with(url, true).unwrap();
            Node::of(endpoint.url.server().unwrap(), &endpoint.label, true).unwrap().target
        };
        let insecure = node_of(url);
        assert!(matches!(insecure, Target::Tls { verify: false, .. }), "{insecure:?}");
        let checked = node_of("rediss://redis.example:6380");
        assert!(matches!(checked, Target::Tls { verify: true, .. }), "{checked:?}");
        assert!(crate::tls::insecure_client_config().is_ok());
    }

    #[test]
    fn bad_urls_are_refused_up_front_with_the_password_hidden() {
        let error = Endpoint::parse("http://:pw@host").unwrap_err();
        assert!(error.contains("not usable") && !error.contains("pw@"), "{error}");
    }
}
