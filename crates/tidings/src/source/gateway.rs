//! The gateway source: one WebSocket to the gateway's `/ws` endpoint,
//! speaking protocol.md §2, reconnecting and resubscribing forever.
//!
//! - The token goes in `Authorization: Bearer` on the upgrade request, never
//!   in the URL, so it does not end up in access logs.
//! - It is `Live` once the gateway has answered the subscribe (`subscribed`,
//!   or an `error` for every channel). Channels the gateway refuses are
//!   logged; if it refuses all of them the source is `Offline` and retries
//!   every `backoff.max` (permissions may change).
//! - WebSocket pings are answered by tungstenite; the source also sends a
//!   protocol `{"type":"ping"}` every [`KEEPALIVE`] and treats a connection
//!   silent for two of those as dead (time spent waiting for a slow consumer
//!   does not count).
//! - A `status` frame (the gateway lost or regained Redis) is logged; it is
//!   information, the WebSocket itself is fine.
//! - Event frames become [`super::SourceMessage`]s under the Redis channel
//!   name (`ws:` + logical), so consumers treat both sources alike.
//! - Positions (docs/positions.md): every subscribe names, per channel, the
//!   last position delivered (or given in [`GatewaySourceConfig::resume`]),
//!   so the gateway replays what was missed; a channel it reports as not
//!   `recovered` becomes a [`SourceUpdate::Missed`].
//! - Large events (docs/gateway.md, "Large events"): a `skipped` frame (the
//!   gateway did not forward an event over its maximum size) becomes a
//!   [`SourceUpdate::Skipped`] and moves the channel's position past the
//!   event. A frame larger than [`GatewaySourceConfig::max_frame_bytes`]
//!   (which the gateway should never send) cannot be read past: the source
//!   says so, reports every channel as [`SourceUpdate::Missed`] and
//!   reconnects once resuming live, instead of asking for the same frame
//!   again and again.
//! - Tokens ([`GatewayToken`]): a fixed token, or a token file read at every
//!   connect and watched while connected. A new token in the file is sent in
//!   a `refresh` frame, so the connection outlives the first token's `exp`
//!   with its subscriptions (docs/gateway.md, "Tokens on live connections").
//! - Close code 4001 (the token expired on a live connection): when the
//!   token file already holds another token the source reconnects with it at
//!   once; otherwise it is reported as `Offline` with a reason saying a fresh
//!   token is needed, and tried again every `backoff.max`.
//! - With [`GatewaySourceConfig::own_notifications`], the notifications
//!   channel of the user the token names (`sub`) is subscribed too, read
//!   from the token of each connection.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tidings_events::channel::REDIS_PREFIX;
use tidings_events::frame::{ClientFrame, ErrorCode, Incoming, ServerFrame, parse_server_frame};
use tidings_events::{Channel, UserId};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header::AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::token::{GatewayToken, Latest, unverified_claims, watch_token_file};
use super::{
    Backoff, Failure, Session, SourceHandle, SourceState, SourceTask, SourceUpdate, Stop,
    UpdateSender, give_up, reconnect_forever,
};
use crate::redact::redact_url;

/// Interval of protocol-level pings.
const KEEPALIVE: Duration = Duration::from_secs(20);

/// Bound on the TCP/TLS/WebSocket handshake and the subscribe answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest frame accepted from the gateway unless configured otherwise:
/// well above the gateway's default maximum event (1 MiB) and its framing.
pub(super) const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024 + 4096;

/// The gateway's close code for a token that expired on a live connection
/// (docs/gateway.md, "Close codes").
const CLOSE_TOKEN_EXPIRED: u16 = 4001;

/// Where the gateway is and what to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySourceConfig {
    /// `ws://host:port/ws` or `wss://…/ws`. A URL with no path gets `/ws`.
    pub url: String,
    /// The JWT, sent as `Authorization: Bearer`, fixed or read from a file;
    /// `None` for an open gateway.
    pub token: Option<GatewayToken>,
    /// The channels to subscribe to; an empty list is reported as `Offline`
    /// unless `own_notifications` adds one.
    pub channels: Vec<Channel>,
    /// Also subscribe to `user:{sub}:notifications`, `sub` being the user
    /// the token of each connection names (the gateway grants exactly that
    /// user's channel).
    pub own_notifications: bool,
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
    /// Where to resume from at the first connect: Redis channel name
    /// (`ws:inventory`) → the last position the consumer has kept. Later
    /// reconnects resume from what the source itself delivered last.
    pub resume: BTreeMap<String, String>,
    /// Largest frame read from the gateway, in bytes; a larger one is
    /// skipped as the module docs say.
    pub max_frame_bytes: usize,
}

impl GatewaySourceConfig {
    /// `channels` through the gateway at `url`, default backoff, no resume.
    pub fn new(
        url: impl Into<String>,
        token: Option<GatewayToken>,
        channels: Vec<Channel>,
    ) -> Self {
        GatewaySourceConfig {
            url: url.into(),
            token,
            channels,
            own_notifications: false,
            backoff: Backoff::default(),
            resume: BTreeMap::new(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// Starts a task that subscribes to `config.channels` through the gateway
/// and sends states and messages to the returned handle, holding at most
/// `capacity` (at least 1) unread updates.
///
/// Failures and losses are retried forever with `config.backoff`. A URL that
/// is not `ws://` or `wss://`, or an empty channel list, is reported as
/// `Offline` and ends the task. A refused upgrade (HTTP 401/403 — a bad or
/// expired token — or another 4xx) or a subscribe refused for every channel
/// is reported as `Offline` and retried every `backoff.max`.
pub fn spawn_gateway_source(
    config: GatewaySourceConfig,
    cancel: CancellationToken,
    capacity: usize,
) -> SourceHandle {
    let (sender, updates) = tokio::sync::mpsc::channel(capacity.max(1));
    let outbox = UpdateSender::new(sender, cancel.clone());
    let task = tokio::spawn(async move {
        match GatewaySession::new(&config, &cancel) {
            Ok(session) => reconnect_forever(outbox, config.backoff, session).await,
            Err(reason) => give_up(outbox, reason).await,
        }
    });
    SourceHandle { updates, task: SourceTask(task) }
}

/// The answer to a subscribe: events that arrived with it, and channels the
/// gateway could not fully recover.
struct Subscribed {
    early: Vec<Early>,
    missed: Vec<String>,
}

/// A frame that arrived before `subscribed`, delivered after `Live`.
enum Early {
    Event { channel: String, position: Option<String>, data: String },
    Skipped { channel: String, position: Option<String>, reason: String },
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Where each connection's token comes from.
#[derive(Debug)]
enum TokenSupply {
    /// An open gateway: no token.
    None,
    /// The same token every time.
    Fixed(String),
    /// The latest read of a token file (`token::watch_token_file`).
    File { path: PathBuf, latest: watch::Receiver<Latest> },
}

#[derive(Debug)]
struct GatewaySession {
    url: url::Url,
    /// For messages: the URL with any token hidden.
    label: String,
    token: TokenSupply,
    /// The configured logical channels, sorted.
    channels: Vec<String>,
    own_notifications: bool,
    /// What the current connection subscribed to: `channels`, and the
    /// token user's notifications channel with `own_notifications`.
    subscribed: Vec<String>,
    /// Logical channel → the last position delivered on it.
    delivered: HashMap<String, String>,
    max_frame_bytes: usize,
}

impl GatewaySession {
    fn new(config: &GatewaySourceConfig, cancel: &CancellationToken) -> Result<Self, String> {
        let label = redact_url(&config.url);
        let mut url = url::Url::parse(&config.url)
            .map_err(|error| format!("gateway URL {label} is not a URL: {error}"))?;
        match url.scheme() {
            "ws" | "wss" => {}
            other => {
                return Err(format!(
                    "gateway URL {label} has scheme {other:?}; expected ws:// or wss://"
                ));
            }
        }
        if url.path().is_empty() || url.path() == "/" {
            url.set_path("/ws");
        }
        if url.scheme() == "wss" {
            crate::tls::ensure_crypto_provider();
        }
        let mut channels: Vec<String> = config.channels.iter().map(Channel::name).collect();
        channels.sort();
        channels.dedup();
        if channels.is_empty() && !config.own_notifications {
            return Err("nothing to subscribe to: the channel list is empty".into());
        }
        let token = match &config.token {
            None => TokenSupply::None,
            Some(GatewayToken::Fixed(token)) => {
                if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                    return Err(
                        "the gateway token contains characters not allowed in an HTTP header"
                            .into(),
                    );
                }
                TokenSupply::Fixed(token.clone())
            }
            Some(GatewayToken::File(path)) => TokenSupply::File {
                path: path.clone(),
                latest: watch_token_file(path.clone(), cancel.clone()),
            },
        };
        Ok(GatewaySession {
            label: redact_url(url.as_str()),
            url,
            token,
            delivered: config
                .resume
                .iter()
                .filter_map(|(channel, position)| {
                    channel.strip_prefix(REDIS_PREFIX).map(|c| (c.to_owned(), position.clone()))
                })
                .collect(),
            subscribed: channels.clone(),
            channels,
            own_notifications: config.own_notifications,
            max_frame_bytes: config.max_frame_bytes,
        })
    }

    /// The token for the next connection: the fixed one, or the token file's
    /// latest (waiting for its first read). A file that cannot be used is
    /// `Refused`, so the user is told why and it is tried again later.
    async fn next_token(&mut self) -> Result<Option<String>, Failure> {
        match &mut self.token {
            TokenSupply::None => Ok(None),
            TokenSupply::Fixed(token) => Ok(Some(token.clone())),
            TokenSupply::File { latest, .. } => {
                let read = latest
                    .wait_for(Option::is_some)
                    .await
                    .map_err(|_| Failure::Transient("the token file watch ended".into()))?;
                match read.as_ref() {
                    Some(Ok(token)) => Ok(Some(token.clone())),
                    Some(Err(error)) => Err(Failure::Refused(error.to_string())),
                    None => unreachable!("waited for a read"),
                }
            }
        }
    }

    /// What to subscribe to with `token`: the configured channels and, with
    /// `own_notifications`, the notifications channel of the user it names.
    fn channels_for(&self, token: Option<&str>) -> Vec<String> {
        let mut channels = self.channels.clone();
        let own = token
            .filter(|_| self.own_notifications)
            .and_then(unverified_claims)
            .and_then(|claims| claims.sub)
            .and_then(|sub| UserId::new(sub).ok())
            .map(|user| Channel::user(user).name());
        if let Some(own) = own
            && !channels.contains(&own)
        {
            channels.push(own);
        }
        channels
    }

    async fn connect(&self, token: Option<&str>) -> Result<Socket, Failure> {
        let mut request =
            self.url.as_str().into_client_request().map_err(|error| {
                Failure::Refused(format!("gateway URL {}: {error}", self.label))
            })?;
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Failure::Refused("token is not a valid header value".into()))?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let tls = crate::tls::client_config()
            .map_err(|error| Failure::Refused(format!("TLS setup failed: {error}")))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.max_frame_bytes))
            .max_frame_size(Some(self.max_frame_bytes));
        let (socket, _response) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        )
        .await
        .map_err(|error| self.classify_connect_error(error))?;
        Ok(socket)
    }

    fn classify_connect_error(&self, error: tungstenite::Error) -> Failure {
        let label = &self.label;
        match error {
            tungstenite::Error::Http(response) => {
                let status = response.status();
                let body = response
                    .body()
                    .as_deref()
                    .map(|body| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
                    .unwrap_or_default();
                let reason = match status {
                    StatusCode::UNAUTHORIZED => format!(
                        "gateway {label} refused the token (HTTP 401{}); check that it is present, signed with the gateway's secret and not expired",
                        if body.is_empty() { String::new() } else { format!(": {body}") }
                    ),
                    StatusCode::FORBIDDEN => {
                        format!("gateway {label} refused access (HTTP 403): {body}")
                    }
                    status => format!(
                        "gateway {label} answered HTTP {status} instead of a WebSocket upgrade {body}"
                    ),
                };
                let retryable = status.is_server_error()
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS;
                if retryable { Failure::Transient(reason) } else { Failure::Refused(reason) }
            }
            tungstenite::Error::Url(error) => {
                Failure::Refused(format!("gateway URL {label} cannot be used: {error}"))
            }
            other => Failure::Transient(format!("cannot reach the gateway at {label}: {other}")),
        }
    }

    /// Sends the subscribe and waits for its answer. Event frames arriving
    /// meanwhile are kept and delivered after `Live`.
    async fn subscribe(
        &self,
        socket: &mut Socket,
        token: Option<&str>,
    ) -> Result<Subscribed, Failure> {
        let since = self
            .subscribed
            .iter()
            .filter_map(|c| self.delivered.get(c).map(|p| (c.clone(), p.clone())))
            .collect();
        let frame = ClientFrame::Subscribe { channels: self.subscribed.clone(), since };
        let text = serde_json::to_string(&frame).unwrap_or_default();
        socket.send(Message::text(text)).await.map_err(|error| self.lost(&error))?;
        let mut early = Vec::new();
        let mut refused = Vec::new();
        loop {
            let Some(message) = socket.next().await else {
                return Err(Failure::Transient(format!(
                    "gateway {} closed the connection",
                    self.label
                )));
            };
            let text = match message.map_err(|error| self.lost(&error))? {
                Message::Text(text) => text,
                Message::Close(frame) => return Err(self.closed(frame, token)),
                _ => continue,
            };
            match parse_server_frame(text.as_str()) {
                Ok(Incoming::Control(ServerFrame::Subscribed { channels, recovered })) => {
                    if !refused.is_empty() {
                        tracing::warn!(gateway = %self.label, ?refused, "gateway refused some channels");
                    }
                    tracing::info!(gateway = %self.label, ?channels, ?recovered, "subscribed through the gateway");
                    let missed = recovered
                        .into_iter()
                        .filter(|(_, complete)| !complete)
                        .map(|(channel, _)| channel)
                        .collect();
                    return Ok(Subscribed { early, missed });
                }
                Ok(Incoming::Control(ServerFrame::Error { code, message, channel })) => {
                    tracing::warn!(gateway = %self.label, code = code.as_str(), %message, ?channel, "gateway refused part of the subscribe");
                    refused.push(format!("{}: {message}", channel.unwrap_or_default()));
                    if refused.len() >= self.subscribed.len() {
                        return Err(Failure::Refused(format!(
                            "gateway {} refused every channel: {}",
                            self.label,
                            refused.join("; ")
                        )));
                    }
                }
                Ok(Incoming::Event(event)) => early.push(Early::Event {
                    channel: event.channel,
                    position: event.position,
                    data: event.data.get().to_owned(),
                }),
                Ok(Incoming::Control(ServerFrame::Skipped {
                    channel,
                    position,
                    size,
                    limit,
                    ..
                })) => early.push(Early::Skipped {
                    channel,
                    position,
                    reason: skipped_reason(size, limit),
                }),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(gateway = %self.label, %error, "ignoring a frame that is not JSON");
                }
            }
        }
    }

    fn lost(&self, error: &tungstenite::Error) -> Failure {
        Failure::Transient(format!("lost the gateway at {}: {error}", self.label))
    }

    /// What a close frame means; `used` is the connection's current token.
    fn closed(
        &self,
        frame: Option<tungstenite::protocol::CloseFrame>,
        used: Option<&str>,
    ) -> Failure {
        if frame.as_ref().is_some_and(|frame| u16::from(frame.code) == CLOSE_TOKEN_EXPIRED) {
            return self.token_expired(used);
        }
        let why = frame
            .map(|frame| format!(" ({} {})", u16::from(frame.code), frame.reason))
            .unwrap_or_default();
        Failure::Transient(format!("gateway {} closed the connection{why}", self.label))
    }
}

impl GatewaySession {
    /// The connection's token expired (4001): reconnect at once when the
    /// token file already holds another token, else ask for a fresh one.
    fn token_expired(&self, used: Option<&str>) -> Failure {
        let label = &self.label;
        let TokenSupply::File { path, latest } = &self.token else {
            return Failure::Refused(format!(
                "gateway {label} closed the connection because the token expired (4001); a fresh token is needed"
            ));
        };
        let path = path.display();
        match &*latest.borrow() {
            Some(Ok(fresh)) if Some(fresh.as_str()) != used => Failure::Transient(format!(
                "gateway {label} closed the connection because the token expired (4001); reconnecting with the newer token in {path}"
            )),
            _ => Failure::Refused(format!(
                "gateway {label} closed the connection because the token in {path} expired (4001) and the file holds no newer one; the program that signs you in must write a fresh token there (it is read every {:?})",
                super::token::TOKEN_FILE_POLL
            )),
        }
    }
}

/// The token of a live connection, and one sent in a `refresh` frame that
/// the gateway has not answered yet.
struct Tokens {
    current: Option<String>,
    pending: Option<String>,
}

impl Session for GatewaySession {
    async fn run(&mut self, outbox: &mut UpdateSender) -> Result<Failure, Stop> {
        let (mut socket, subscribed, token) = match self.open(outbox).await? {
            Ok(connected) => connected,
            Err(failure) => return Ok(failure),
        };
        self.go_live(outbox, subscribed).await?;
        let mut tokens = Tokens { current: token, pending: None };
        let mut file = match &self.token {
            TokenSupply::File { latest, .. } => Some(latest.clone()),
            _ => None,
        };
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let mut last_read = Instant::now();
        let ping = serde_json::to_string(&ClientFrame::Ping).unwrap_or_default();
        loop {
            tokio::select! {
                biased;
                () = outbox.cancel.cancelled() => {
                    let _ = socket.close(None).await;
                    return Err(Stop);
                }
                message = socket.next() => {
                    let Some(message) = message else {
                        return Ok(Failure::Transient(format!("gateway {} closed the connection", self.label)));
                    };
                    let text = match message {
                        Ok(Message::Text(text)) => text,
                        Ok(Message::Close(frame)) => {
                            return Ok(self.closed(frame, tokens.current.as_deref()));
                        }
                        Ok(_) => {
                            last_read = Instant::now();
                            continue;
                        }
                        Err(tungstenite::Error::Capacity(
                            tungstenite::error::CapacityError::MessageTooLong { size, max_size },
                        )) => return self.frame_too_large(outbox, size, max_size).await,
                        Err(error) => return Ok(self.lost(&error)),
                    };
                    self.on_frame(outbox, text.as_str(), &mut tokens).await?;
                    // Waiting for the consumer is not silence.
                    last_read = Instant::now();
                }
                fresh = token_file_changed(file.as_mut()) => {
                    if let Err(error) = self.offer_token(&mut socket, fresh, &mut tokens).await {
                        return Ok(self.lost(&error));
                    }
                }
                _ = keepalive.tick() => {
                    if last_read.elapsed() > 2 * KEEPALIVE {
                        return Ok(Failure::Transient(format!(
                            "gateway {} has not answered for {}s",
                            self.label,
                            last_read.elapsed().as_secs()
                        )));
                    }
                    if let Err(error) = socket.send(Message::text(ping.clone())).await {
                        return Ok(self.lost(&error));
                    }
                }
            }
        }
    }
}

/// The token file's next changed read; never, without a token file.
async fn token_file_changed(
    file: Option<&mut watch::Receiver<Latest>>,
) -> Result<String, super::token::TokenFileError> {
    let Some(file) = file else { return std::future::pending().await };
    loop {
        if file.changed().await.is_err() {
            return std::future::pending().await;
        }
        if let Some(read) = file.borrow_and_update().clone() {
            return read;
        }
    }
}

impl GatewaySession {
    /// Connects with the next token and subscribes, within
    /// [`CONNECT_TIMEOUT`]; answers the socket, the subscribe's answer and
    /// the token used.
    async fn open(
        &mut self,
        outbox: &UpdateSender,
    ) -> Result<Result<(Socket, Subscribed, Option<String>), Failure>, Stop> {
        let connecting = async {
            let token = self.next_token().await?;
            self.subscribed = self.channels_for(token.as_deref());
            if self.subscribed.is_empty() {
                return Err(Failure::Refused(
                    "nothing to subscribe to: no channel is configured and the token names no user (sub) whose notifications to read".into(),
                ));
            }
            let mut socket = self.connect(token.as_deref()).await?;
            let subscribed = self.subscribe(&mut socket, token.as_deref()).await?;
            Ok::<_, Failure>((socket, subscribed, token))
        };
        tokio::select! {
            biased;
            () = outbox.cancel.cancelled() => Err(Stop),
            result = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => Ok(match result {
                Ok(connected) => connected,
                Err(_) => Err(Failure::Transient(format!(
                    "gateway {} did not answer within {CONNECT_TIMEOUT:?}",
                    self.label
                ))),
            }),
        }
    }

    /// Reports channels history could not cover, `Live`, then what arrived
    /// with the subscribe's answer.
    async fn go_live(
        &mut self,
        outbox: &mut UpdateSender,
        subscribed: Subscribed,
    ) -> Result<(), Stop> {
        let Subscribed { early, missed } = subscribed;
        for channel in missed {
            // The time of the last position kept, if it parses.
            let since = self
                .delivered
                .get(&channel)
                .and_then(|position| position.parse::<crate::history::Position>().ok());
            let since = since.and_then(|p| i64::try_from(p.recorded_at()).ok());
            tracing::warn!(gateway = %self.label, %channel, ?since, "gateway history does not reach back to the last position; events may be missing");
            let channel = format!("{REDIS_PREFIX}{channel}");
            outbox.send(SourceUpdate::Missed { channel, since }).await?;
        }
        outbox.state(SourceState::Live).await?;
        for early in early {
            match early {
                Early::Event { channel, position, data } => {
                    if let Some(position) = &position {
                        self.delivered.insert(channel.clone(), position.clone());
                    }
                    outbox
                        .message(format!("{REDIS_PREFIX}{channel}"), data.into(), position)
                        .await?;
                }
                Early::Skipped { channel, position, reason } => {
                    self.skipped(outbox, channel, position, reason).await?;
                }
            }
        }
        Ok(())
    }

    /// Handles one text frame of a live connection.
    async fn on_frame(
        &mut self,
        outbox: &UpdateSender,
        text: &str,
        tokens: &mut Tokens,
    ) -> Result<(), Stop> {
        match parse_server_frame(text) {
            Ok(Incoming::Event(event)) => {
                if let Some(position) = &event.position {
                    self.delivered.insert(event.channel.clone(), position.clone());
                }
                let channel = format!("{REDIS_PREFIX}{}", event.channel);
                let data = event.data.get().to_owned().into();
                outbox.message(channel, data, event.position).await?;
            }
            Ok(Incoming::Control(ServerFrame::Missed { channel, since })) => {
                let since = since
                    .and_then(|p| p.parse::<crate::history::Position>().ok())
                    .and_then(|p| i64::try_from(p.recorded_at()).ok());
                tracing::warn!(gateway = %self.label, %channel, ?since, "the gateway could not replay everything on this channel; events may be missing");
                let channel = format!("{REDIS_PREFIX}{channel}");
                outbox.send(SourceUpdate::Missed { channel, since }).await?;
            }
            Ok(Incoming::Control(ServerFrame::Skipped {
                channel, position, size, limit, ..
            })) => {
                self.skipped(outbox, channel, position, skipped_reason(size, limit)).await?;
            }
            Ok(Incoming::Control(ServerFrame::Status { upstream, message })) => {
                tracing::info!(gateway = %self.label, ?upstream, ?message, "gateway upstream status");
            }
            Ok(Incoming::Control(ServerFrame::Refreshed { exp, dropped })) => {
                if let Some(token) = tokens.pending.take() {
                    tokens.current = Some(token);
                }
                tracing::info!(gateway = %self.label, exp, "the gateway took the fresh token; the connection now lasts until its exp");
                if !dropped.is_empty() {
                    tracing::warn!(gateway = %self.label, ?dropped, "the fresh token no longer allows these channels; the gateway ended them");
                    self.subscribed.retain(|channel| !dropped.contains(channel));
                }
            }
            Ok(Incoming::Control(ServerFrame::Error { code, message, channel })) => {
                if code == ErrorCode::Unauthorized && tokens.pending.take().is_some() {
                    tracing::warn!(gateway = %self.label, %message, "the gateway refused the fresh token; this connection ends when its current token expires");
                } else {
                    tracing::warn!(gateway = %self.label, code = code.as_str(), %message, ?channel, "gateway reported an error");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(gateway = %self.label, %error, "ignoring a frame that is not JSON");
            }
        }
        Ok(())
    }

    /// Sends a token file's new token in a `refresh` frame, unless the
    /// connection already has it or is waiting for its answer.
    async fn offer_token(
        &self,
        socket: &mut Socket,
        fresh: Result<String, super::token::TokenFileError>,
        tokens: &mut Tokens,
    ) -> Result<(), tungstenite::Error> {
        let token = match fresh {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(gateway = %self.label, %error, "keeping the connection's current token");
                return Ok(());
            }
        };
        if tokens.current.as_ref() == Some(&token) || tokens.pending.as_ref() == Some(&token) {
            return Ok(());
        }
        tracing::info!(gateway = %self.label, "sending the token file's new token in a refresh frame");
        let frame = ClientFrame::Refresh { token: token.clone() };
        socket.send(Message::text(serde_json::to_string(&frame).unwrap_or_default())).await?;
        tokens.pending = Some(token);
        Ok(())
    }
}

impl GatewaySession {
    /// Reports an event the gateway did not forward and moves past it.
    async fn skipped(
        &mut self,
        outbox: &UpdateSender,
        channel: String,
        position: Option<String>,
        reason: String,
    ) -> Result<(), Stop> {
        tracing::warn!(gateway = %self.label, %channel, ?position, %reason, "skipped an event");
        if let Some(position) = &position {
            self.delivered.insert(channel.clone(), position.clone());
        }
        let channel = format!("{REDIS_PREFIX}{channel}");
        outbox.send(SourceUpdate::Skipped { channel, position, reason }).await
    }

    /// A frame over `max_frame_bytes` cannot be read past, and which event
    /// it held is unknown: every channel is reported as possibly missing
    /// events and the next connection resumes live, so the same frame is
    /// not asked for again.
    async fn frame_too_large(
        &mut self,
        outbox: &UpdateSender,
        size: usize,
        max_size: usize,
    ) -> Result<Failure, Stop> {
        let reason = format!(
            "gateway {} sent a frame of {size} bytes, more than this client reads ({max_size}); skipped it and resuming live",
            self.label
        );
        tracing::warn!(%reason);
        for channel in &self.subscribed {
            let since = self
                .delivered
                .get(channel)
                .and_then(|position| position.parse::<crate::history::Position>().ok())
                .and_then(|p| i64::try_from(p.recorded_at()).ok());
            let channel = format!("{REDIS_PREFIX}{channel}");
            outbox.send(SourceUpdate::Missed { channel, since }).await?;
        }
        self.delivered.clear();
        Ok(Failure::Transient(reason))
    }
}

/// What a `skipped` frame means, for people.
fn skipped_reason(size: u64, limit: u64) -> String {
    format!("an event of {size} bytes was larger than the gateway forwards ({limit} bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> GatewaySourceConfig {
        GatewaySourceConfig::new(url, None, vec![Channel::Inventory])
    }

    #[test]
    fn a_url_without_a_path_gets_the_ws_endpoint() {
        let session =
            GatewaySession::new(&config("ws://127.0.0.1:8080"), &CancellationToken::new()).unwrap();
        assert_eq!(session.url.as_str(), "ws://127.0.0.1:8080/ws");
    }

    #[test]
    fn only_websocket_urls_are_accepted() {
        let error =
            GatewaySession::new(&config("http://127.0.0.1:8080/ws"), &CancellationToken::new())
                .unwrap_err();
        assert!(error.contains("expected ws:// or wss://"), "{error}");
    }

    #[test]
    fn an_empty_channel_list_is_refused() {
        let mut config = config("ws://127.0.0.1/ws");
        config.channels.clear();
        let error = GatewaySession::new(&config, &CancellationToken::new()).unwrap_err();
        assert!(error.contains("empty"), "{error}");
    }

    #[test]
    fn the_own_notifications_channel_is_the_tokens_user_when_it_is_a_valid_user_id() {
        let own = GatewaySourceConfig { own_notifications: true, ..config("ws://127.0.0.1/ws") };
        let session = GatewaySession::new(&own, &CancellationToken::new()).unwrap();
        // {"sub":"u7"}, {"sub":"u1:*"} (a pattern, never a channel name), no payload.
        let u7 = "e30.eyJzdWIiOiJ1NyJ9.x";
        assert_eq!(session.channels_for(Some(u7)), ["inventory", "user:u7:notifications"]);
        assert_eq!(session.channels_for(Some("e30.eyJzdWIiOiJ1MToqIn0.x")), ["inventory"]);
        assert_eq!(session.channels_for(Some("not a token")), ["inventory"]);
        assert_eq!(session.channels_for(None), ["inventory"]);
        let without =
            GatewaySession::new(&config("ws://127.0.0.1/ws"), &CancellationToken::new()).unwrap();
        assert_eq!(without.channels_for(Some(u7)), ["inventory"]);
    }
}
