//! The Redis source: SUBSCRIBE/PSUBSCRIBE on one dedicated connection,
//! read one reply at a time (see `resp` for why not through redis-rs's
//! `PubSub`), reconnect and resubscribe forever.
//!
//! History (optional, [`RedisSourceConfig::history`]): the source records
//! every message it receives in its channel's history (docs/positions.md),
//! which gives it a position, and after a reconnect it first replays what
//! each channel received since the last position it delivered, then goes
//! live, skipping live messages the replay already covered. Messages are
//! recorded in batches on a second, ordinary connection, so recording costs
//! one round trip per batch, not per message.
//!
//! Liveness: the source sends `PING` every [`PING_INTERVAL`] and treats a
//! connection from which nothing has been read for two intervals as dead,
//! so a silently vanished server (a cut network, a paused VM) is noticed
//! without waiting for TCP to give up. Time spent waiting for a slow
//! consumer does not count, since the source is then not reading on purpose.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tidings_events::channel::{REDIS_PATTERN_ALL, REDIS_PREFIX};
use tidings_events::{Channel, ChannelError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::resp::{self, Reply, RespError};
use super::{
    Backoff, Failure, Outbox, Session, SourceHandle, SourceState, SourceTask, SourceUpdate, Stop,
    give_up, reconnect_forever,
};
use crate::history::{History, HistoryConfig, HistoryError, Position};
use crate::redact::redact_url;

/// How often an idle subscription is checked with `PING`.
const PING_INTERVAL: Duration = Duration::from_secs(15);

/// Bound on connecting, authenticating and subscribing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on one history round trip (recording a batch, one recovery).
const HISTORY_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages read from the subscription but not yet recorded and delivered.
/// When full, the reader stops reading and Redis buffers (see the module
/// docs of `source` for what Redis does when its buffer fills).
const RECEIVED_QUEUE: usize = 1024;

/// Most messages recorded in one pipelined round trip.
const RECORD_BATCH: usize = 256;

/// What to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subscription {
    /// One channel (SUBSCRIBE to its Redis name).
    Channel(Channel),
    /// A Redis glob pattern over Redis names (PSUBSCRIBE), e.g. `ws:*`.
    Pattern(String),
}

impl Subscription {
    /// Every Tidings channel: `ws:*`.
    pub fn all() -> Self {
        Subscription::Pattern(REDIS_PATTERN_ALL.to_owned())
    }

    /// Reads what a person types: a logical channel (`inventory`,
    /// `user:u1:notifications`), the same with its `ws:` prefix, or a pattern
    /// containing `*`, `?` or `[` (`ws:user:*`; `ws:` is added if missing).
    pub fn parse(text: &str) -> Result<Self, ChannelError> {
        if text.contains(['*', '?', '[']) {
            let pattern = if text.starts_with(REDIS_PREFIX) {
                text.to_owned()
            } else {
                format!("{REDIS_PREFIX}{text}")
            };
            return Ok(Subscription::Pattern(pattern));
        }
        let logical = text.strip_prefix(REDIS_PREFIX).unwrap_or(text);
        Channel::parse(logical).map(Subscription::Channel)
    }

    /// As Redis sees it: the channel's Redis name, or the pattern.
    pub fn redis_name(&self) -> String {
        match self {
            Subscription::Channel(channel) => channel.redis_name(),
            Subscription::Pattern(pattern) => pattern.clone(),
        }
    }
}

impl std::fmt::Display for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redis_name())
    }
}

/// Where and what the Redis source subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSourceConfig {
    /// `redis://[user:password@]host[:port]`, `rediss://…` (TLS, webpki
    /// roots) or `redis+unix:///path`.
    pub url: String,
    pub subscriptions: Vec<Subscription>,
    pub backoff: Backoff,
    /// Record messages in their channel's history, give them positions, and
    /// replay missed ones after a reconnect. `None`: plain Pub/Sub, no
    /// positions, whatever is published while disconnected is lost.
    pub history: Option<HistoryConfig>,
    /// Where to resume from at the first connect: Redis channel name
    /// (`ws:inventory`) → the last position the consumer has kept. Only used
    /// with `history`. Later reconnects resume from what the source itself
    /// delivered last.
    pub resume: BTreeMap<String, String>,
}

impl RedisSourceConfig {
    /// Everything (`ws:*`) at `url`, with the default backoff, no history.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSourceConfig {
            url: url.into(),
            subscriptions: vec![Subscription::all()],
            backoff: Backoff::default(),
            history: None,
            resume: BTreeMap::new(),
        }
    }
}

/// Starts a task that subscribes to `config.subscriptions` at `config.url`
/// and sends states and messages to the returned handle, holding at most
/// `capacity` (at least 1) unread updates.
///
/// Connection failures and losses are retried forever with `config.backoff`.
/// A URL that cannot be used (not a Redis URL, `#insecure` TLS, an empty
/// subscription list) is reported as `Offline` and ends the task. Refused
/// credentials are reported as `Offline` and retried every `backoff.max`,
/// since a password may be fixed on the server side.
pub fn spawn_redis_source(
    config: RedisSourceConfig,
    cancel: CancellationToken,
    capacity: usize,
) -> SourceHandle {
    let (sender, updates) = tokio::sync::mpsc::channel(capacity.max(1));
    let outbox = Outbox::new(sender, cancel);
    let task = tokio::spawn(async move {
        match RedisSession::new(&config) {
            Ok(session) => reconnect_forever(outbox, config.backoff, session).await,
            Err(reason) => give_up(outbox, reason).await,
        }
    });
    SourceHandle { updates, task: SourceTask(task) }
}

/// Anything a connection can run over: TCP, TLS or a Unix socket.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug)]
enum Target {
    Tcp { host: String, port: u16 },
    Tls { host: String, port: u16 },
    Unix(std::path::PathBuf),
}

#[derive(Debug)]
struct RedisSession {
    /// For messages: the URL with its password hidden.
    label: String,
    target: Target,
    username: Option<String>,
    password: Option<String>,
    channels: Vec<String>,
    patterns: Vec<String>,
    /// For the history commands (the subscription connection cannot run them).
    client: redis::Client,
    history: Option<History>,
    /// The last position delivered on each channel: where to resume from.
    delivered: HashMap<String, Position>,
}

impl RedisSession {
    fn new(config: &RedisSourceConfig) -> Result<Self, String> {
        let label = redact_url(&config.url);
        let client = redis::Client::open(config.url.as_str()).map_err(|error| {
            format!(
                "Redis URL {label} is not usable: {error}. Expected redis://[:password@]host[:port]"
            )
        })?;
        let info = client.get_connection_info();
        let target = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => {
                Target::Tcp { host: host.clone(), port: *port }
            }
            redis::ConnectionAddr::TcpTls { insecure: true, .. } => {
                return Err(format!(
                    "Redis URL {label} asks for TLS without certificate checks (#insecure); the subscriber always checks certificates"
                ));
            }
            redis::ConnectionAddr::TcpTls { host, port, .. } => {
                Target::Tls { host: host.clone(), port: *port }
            }
            redis::ConnectionAddr::Unix(path) => Target::Unix(path.clone()),
            other => return Err(format!("Redis address {other:?} is not supported")),
        };
        let mut channels = Vec::new();
        let mut patterns = Vec::new();
        for subscription in &config.subscriptions {
            match subscription {
                Subscription::Channel(channel) => channels.push(channel.redis_name()),
                Subscription::Pattern(pattern) => patterns.push(pattern.clone()),
            }
        }
        channels.sort();
        channels.dedup();
        patterns.sort();
        patterns.dedup();
        if channels.is_empty() && patterns.is_empty() {
            return Err("nothing to subscribe to: the subscription list is empty".into());
        }
        let mut delivered = HashMap::new();
        if config.history.is_some() {
            for (channel, position) in &config.resume {
                match position.parse::<Position>() {
                    Ok(position) => {
                        delivered.insert(channel.clone(), position);
                    }
                    Err(error) => {
                        tracing::warn!(%channel, %error, "ignoring a resume position that does not parse; that channel starts live");
                    }
                }
            }
        }
        let settings = info.redis_settings();
        Ok(RedisSession {
            label,
            target,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            channels,
            patterns,
            history: config.history.map(History::new),
            client,
            delivered,
        })
    }

    async fn open(&self) -> Result<Box<dyn Io>, Failure> {
        let unreachable = |error: std::io::Error| {
            Failure::Transient(format!("cannot reach Redis at {}: {error}", self.label))
        };
        Ok(match &self.target {
            Target::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(unreachable)?;
                let _ = stream.set_nodelay(true);
                Box::new(stream)
            }
            Target::Tls { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(unreachable)?;
                let _ = stream.set_nodelay(true);
                let config = crate::tls::client_config()
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

    /// Connects, authenticates and subscribes. Returns the reader, the
    /// writer, and messages that arrived before every subscription was
    /// confirmed (delivered once `Live` is reported).
    async fn connect(&self) -> Result<Connected, Failure> {
        let stream = self.open().await?;
        let (reader, mut writer) = tokio::io::split(stream);
        let mut reader = BufReader::new(reader);
        let lost = |error: RespError| {
            Failure::Transient(format!("lost Redis at {} while subscribing: {error}", self.label))
        };
        let write_error = |error: std::io::Error| {
            Failure::Transient(format!("lost Redis at {} while subscribing: {error}", self.label))
        };

        if let Some(password) = &self.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(username) = &self.username {
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
        if !self.channels.is_empty() {
            let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
            args.extend(self.channels.iter().map(|c| c.as_bytes()));
            request.extend(resp::command(&args));
        }
        if !self.patterns.is_empty() {
            let mut args: Vec<&[u8]> = vec![b"PSUBSCRIBE"];
            args.extend(self.patterns.iter().map(|p| p.as_bytes()));
            request.extend(resp::command(&args));
        }
        writer.write_all(&request).await.map_err(write_error)?;

        let mut unconfirmed = self.channels.len() + self.patterns.len();
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
                Push::Skipped { .. } | Push::Other => {}
            }
        }
        Ok(Connected { reader, writer, early })
    }
}

struct Connected {
    reader: BufReader<tokio::io::ReadHalf<Box<dyn Io>>>,
    writer: tokio::io::WriteHalf<Box<dyn Io>>,
    early: Vec<(String, bytes::Bytes)>,
}

impl Session for RedisSession {
    async fn run(&mut self, outbox: &mut Outbox) -> Result<Failure, Stop> {
        let connecting = tokio::time::timeout(CONNECT_TIMEOUT, self.connect());
        let connected = tokio::select! {
            biased;
            () = outbox.cancel.cancelled() => return Err(Stop),
            result = connecting => match result {
                Ok(Ok(connected)) => connected,
                Ok(Err(failure)) => return Ok(failure),
                Err(_) => return Ok(Failure::Transient(format!(
                    "Redis at {} did not answer within {CONNECT_TIMEOUT:?}",
                    self.label
                ))),
            },
        };
        let Connected { mut reader, mut writer, early } = connected;
        tracing::info!(url = %self.label, channels = ?self.channels, patterns = ?self.patterns, "subscribed to Redis");

        // With history: replay what was missed before going live. Messages
        // published meanwhile wait in the subscription's socket.
        let mut recorder = None;
        let mut replayed_up_to = HashMap::new();
        if let Some(history) = &self.history {
            let catching_up = async {
                let mut connection =
                    crate::history::recorder_connection(&self.client, HISTORY_TIMEOUT).await?;
                history.load(&mut connection).await?;
                let mut replays = Vec::new();
                for (channel, since) in &self.delivered {
                    let recovery = history.recover(&mut connection, channel, since).await?;
                    replays.push((channel.clone(), since.clone(), recovery));
                }
                Ok::<_, HistoryError>((connection, replays))
            };
            let (connection, replays) = tokio::select! {
                biased;
                () = outbox.cancel.cancelled() => return Err(Stop),
                result = tokio::time::timeout(CONNECT_TIMEOUT + HISTORY_TIMEOUT, catching_up) => match result {
                    Ok(Ok(caught_up)) => caught_up,
                    Ok(Err(error)) => return Ok(Failure::Transient(format!(
                        "cannot read history from Redis at {}: {error}", self.label
                    ))),
                    Err(_) => return Ok(Failure::Transient(format!(
                        "Redis at {} did not answer the history read within {:?}",
                        self.label, CONNECT_TIMEOUT + HISTORY_TIMEOUT
                    ))),
                },
            };
            for (channel, since, recovery) in replays {
                if !recovery.recovered {
                    tracing::warn!(%channel, since = %since, "history does not reach back to the last position; events may be missing");
                    let since = i64::try_from(since.recorded_at()).ok();
                    outbox.send(SourceUpdate::Missed { channel: channel.clone(), since }).await?;
                }
                let mut last = (recovery.epoch == since.epoch).then_some(since);
                for entry in recovery.entries {
                    outbox
                        .message(
                            channel.clone(),
                            entry.payload.into(),
                            Some(entry.position.to_string()),
                        )
                        .await?;
                    last = Some(entry.position);
                }
                if let Some(last) = last {
                    self.delivered.insert(channel.clone(), last.clone());
                    replayed_up_to.insert(channel, last);
                }
            }
            recorder = Some((history, connection));
        }
        outbox.state(SourceState::Live).await?;

        let outbox = &*outbox;
        let started = Instant::now();
        let elapsed_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last_read = AtomicU64::new(0);
        let waiting_for_consumer = AtomicBool::new(false);
        let label = &self.label;
        let delivered = &mut self.delivered;
        let (received, mut to_deliver) = mpsc::channel::<(String, bytes::Bytes)>(RECEIVED_QUEUE);

        let reading = async {
            for message in early {
                waiting_for_consumer.store(true, Ordering::Relaxed);
                let _ = received.send(message).await;
                waiting_for_consumer.store(false, Ordering::Relaxed);
            }
            loop {
                let reply = match resp::read_reply(&mut reader).await {
                    Ok(reply) => reply,
                    Err(error) => {
                        return Failure::Transient(format!("lost Redis at {label}: {error}"));
                    }
                };
                last_read.store(elapsed_ms(), Ordering::Relaxed);
                match classify(reply) {
                    Push::Message { channel, payload } => {
                        waiting_for_consumer.store(true, Ordering::Relaxed);
                        if received.send((channel, payload)).await.is_err() {
                            // The delivering side ended; its result decides.
                            std::future::pending::<()>().await;
                        }
                        waiting_for_consumer.store(false, Ordering::Relaxed);
                        last_read.store(elapsed_ms(), Ordering::Relaxed);
                    }
                    Push::Skipped { channel, length } => tracing::warn!(
                        %channel, length,
                        "skipped a message larger than {} bytes", resp::MAX_PAYLOAD_BYTES
                    ),
                    Push::Error(error) => {
                        return Failure::Transient(format!("Redis at {label} said: {error}"));
                    }
                    Push::Confirmed | Push::Other => {}
                }
            }
        };
        let delivering = async {
            let mut batch = Vec::with_capacity(RECORD_BATCH);
            loop {
                batch.clear();
                if to_deliver.recv_many(&mut batch, RECORD_BATCH).await == 0 {
                    std::future::pending::<()>().await;
                }
                let positions = match &mut recorder {
                    None => vec![None; batch.len()],
                    Some((history, connection)) => {
                        let messages: Vec<(&str, &[u8])> =
                            batch.iter().map(|(c, p)| (c.as_str(), p.as_ref())).collect();
                        let recorded = tokio::time::timeout(
                            HISTORY_TIMEOUT,
                            history.record_many(connection, &messages),
                        )
                        .await;
                        match recorded {
                            Ok(Ok(positions)) => positions.into_iter().map(Some).collect(),
                            // Not delivered: the reconnect replays them from
                            // history if anyone recorded them.
                            Ok(Err(error)) => {
                                return Ok(Failure::Transient(format!(
                                    "cannot record history in Redis at {label}: {error}"
                                )));
                            }
                            Err(_) => {
                                return Ok(Failure::Transient(format!(
                                    "Redis at {label} did not record history within {HISTORY_TIMEOUT:?}"
                                )));
                            }
                        }
                    }
                };
                for ((channel, payload), position) in batch.drain(..).zip(positions) {
                    if let Some(position) = &position {
                        // Appended before the replay read it: already delivered.
                        let replayed =
                            replayed_up_to.get(&channel).is_some_and(|floor: &Position| {
                                floor.epoch == position.epoch && position.id <= floor.id
                            });
                        // The same payload again within the dedup window (a
                        // publisher's retry) is the same event at the same
                        // position.
                        let repeated = delivered.get(&channel) == Some(position);
                        if replayed || repeated {
                            continue;
                        }
                        delivered.insert(channel.clone(), position.clone());
                    }
                    outbox.message(channel, payload, position.map(|p| p.to_string())).await?;
                }
            }
        };
        let pinging = async {
            let mut ticks = tokio::time::interval_at(
                tokio::time::Instant::now() + PING_INTERVAL,
                PING_INTERVAL,
            );
            loop {
                ticks.tick().await;
                let silent = Duration::from_millis(
                    elapsed_ms().saturating_sub(last_read.load(Ordering::Relaxed)),
                );
                if !waiting_for_consumer.load(Ordering::Relaxed) && silent > 2 * PING_INTERVAL {
                    return Failure::Transient(format!(
                        "Redis at {label} has not answered for {}s",
                        silent.as_secs()
                    ));
                }
                if let Err(error) = writer.write_all(&resp::command(&[b"PING"])).await {
                    return Failure::Transient(format!("lost Redis at {label}: {error}"));
                }
            }
        };
        tokio::select! {
            biased;
            () = outbox.cancel.cancelled() => Err(Stop),
            result = delivering => result,
            failure = reading => Ok(failure),
            failure = pinging => Ok(failure),
        }
    }
}

/// What a reply on a subscribed connection means.
enum Push {
    Message { channel: String, payload: bytes::Bytes },
    Skipped { channel: String, length: usize },
    Confirmed,
    Error(String),
    Other,
}

fn classify(reply: Reply) -> Push {
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
        _ => return Push::Other,
    };
    let channel = items.get(channel_at).and_then(Reply::as_text).unwrap_or_default().to_owned();
    match items.into_iter().nth(payload_at) {
        Some(Reply::Bulk(Some(payload))) => Push::Message { channel, payload },
        Some(Reply::Skipped(length)) => Push::Skipped { channel, length },
        _ => Push::Other,
    }
}

fn is_auth_error(error: &str) -> bool {
    ["NOAUTH", "WRONGPASS", "NOPERM"].iter().any(|code| error.starts_with(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_names_become_channels_and_globs_become_patterns() {
        assert_eq!(Subscription::parse("inventory"), Ok(Subscription::Channel(Channel::Inventory)));
        assert_eq!(
            Subscription::parse("ws:inventory"),
            Ok(Subscription::Channel(Channel::Inventory))
        );
        assert_eq!(Subscription::parse("ws:*"), Ok(Subscription::all()));
        assert_eq!(Subscription::parse("user:*"), Ok(Subscription::Pattern("ws:user:*".into())));
        assert!(Subscription::parse("stock").is_err());
    }

    #[test]
    fn a_pattern_message_reports_the_channel_not_the_pattern() {
        let bulk = |text: &str| Reply::Bulk(Some(bytes::Bytes::copy_from_slice(text.as_bytes())));
        let reply =
            Reply::Array(Some(vec![bulk("pmessage"), bulk("ws:*"), bulk("ws:orders"), bulk("{}")]));
        let Push::Message { channel, payload } = classify(reply) else { panic!("not a message") };
        assert_eq!(channel, "ws:orders");
        assert_eq!(&payload[..], b"{}");
    }

    #[test]
    fn bad_urls_are_refused_up_front_with_the_password_hidden() {
        let error = RedisSession::new(&RedisSourceConfig::new("http://:pw@host")).unwrap_err();
        assert!(error.contains("not usable") && !error.contains("pw@"), "{error}");
    }

    #[test]
    fn an_empty_subscription_list_is_refused() {
        let mut config = RedisSourceConfig::new("redis://127.0.0.1");
        config.subscriptions.clear();
        assert!(RedisSession::new(&config).unwrap_err().contains("empty"));
    }
}
