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
//! - Close code 4001 (the token expired on a live connection) is reported as
//!   `Offline` with a reason saying a fresh token is needed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tidings_events::Channel;
use tidings_events::channel::REDIS_PREFIX;
use tidings_events::frame::{ClientFrame, Incoming, ServerFrame, parse_server_frame};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header::AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

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
    /// A JWT, sent as `Authorization: Bearer`; `None` for an open gateway.
    pub token: Option<String>,
    /// The channels to subscribe to; an empty list is reported as `Offline`.
    pub channels: Vec<Channel>,
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
    pub fn new(url: impl Into<String>, token: Option<String>, channels: Vec<Channel>) -> Self {
        GatewaySourceConfig {
            url: url.into(),
            token,
            channels,
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
    let outbox = UpdateSender::new(sender, cancel);
    let task = tokio::spawn(async move {
        match GatewaySession::new(&config) {
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

#[derive(Debug)]
struct GatewaySession {
    url: url::Url,
    /// For messages: the URL with any token hidden.
    label: String,
    token: Option<String>,
    channels: Vec<String>,
    /// Logical channel → the last position delivered on it.
    delivered: HashMap<String, String>,
    max_frame_bytes: usize,
}

impl GatewaySession {
    fn new(config: &GatewaySourceConfig) -> Result<Self, String> {
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
        if channels.is_empty() {
            return Err("nothing to subscribe to: the channel list is empty".into());
        }
        if let Some(token) = &config.token
            && HeaderValue::from_str(&format!("Bearer {token}")).is_err()
        {
            return Err(
                "the gateway token contains characters not allowed in an HTTP header".into()
            );
        }
        Ok(GatewaySession {
            label: redact_url(url.as_str()),
            url,
            token: config.token.clone(),
            delivered: config
                .resume
                .iter()
                .filter_map(|(channel, position)| {
                    channel.strip_prefix(REDIS_PREFIX).map(|c| (c.to_owned(), position.clone()))
                })
                .collect(),
            channels,
            max_frame_bytes: config.max_frame_bytes,
        })
    }

    async fn connect(&self) -> Result<Socket, Failure> {
        let mut request =
            self.url.as_str().into_client_request().map_err(|error| {
                Failure::Refused(format!("gateway URL {}: {error}", self.label))
            })?;
        if let Some(token) = &self.token {
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
    async fn subscribe(&self, socket: &mut Socket) -> Result<Subscribed, Failure> {
        let since = self
            .channels
            .iter()
            .filter_map(|c| self.delivered.get(c).map(|p| (c.clone(), p.clone())))
            .collect();
        let frame = ClientFrame::Subscribe { channels: self.channels.clone(), since };
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
                Message::Close(frame) => return Err(self.closed(frame)),
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
                    if refused.len() >= self.channels.len() {
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

    fn closed(&self, frame: Option<tungstenite::protocol::CloseFrame>) -> Failure {
        if frame.as_ref().is_some_and(|frame| u16::from(frame.code) == CLOSE_TOKEN_EXPIRED) {
            return Failure::Refused(format!(
                "gateway {} closed the connection because the token expired (4001); a fresh token is needed",
                self.label
            ));
        }
        let why = frame
            .map(|frame| format!(" ({} {})", u16::from(frame.code), frame.reason))
            .unwrap_or_default();
        Failure::Transient(format!("gateway {} closed the connection{why}", self.label))
    }
}

impl Session for GatewaySession {
    async fn run(&mut self, outbox: &mut UpdateSender) -> Result<Failure, Stop> {
        let connecting = async {
            let mut socket = self.connect().await?;
            let early = self.subscribe(&mut socket).await?;
            Ok::<_, Failure>((socket, early))
        };
        let (mut socket, Subscribed { early, missed }) = tokio::select! {
            biased;
            () = outbox.cancel.cancelled() => return Err(Stop),
            result = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => match result {
                Ok(Ok(connected)) => connected,
                Ok(Err(failure)) => return Ok(failure),
                Err(_) => return Ok(Failure::Transient(format!(
                    "gateway {} did not answer within {CONNECT_TIMEOUT:?}",
                    self.label
                ))),
            },
        };
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
                    last_read = Instant::now();
                    let text = match message {
                        Ok(Message::Text(text)) => text,
                        Ok(Message::Close(frame)) => return Ok(self.closed(frame)),
                        Ok(_) => continue,
                        Err(tungstenite::Error::Capacity(
                            tungstenite::error::CapacityError::MessageTooLong { size, max_size },
                        )) => return self.frame_too_large(outbox, size, max_size).await,
                        Err(error) => return Ok(self.lost(&error)),
                    };
                    match parse_server_frame(text.as_str()) {
                        Ok(Incoming::Event(event)) => {
                            if let Some(position) = &event.position {
                                self.delivered.insert(event.channel.clone(), position.clone());
                            }
                            let channel = format!("{REDIS_PREFIX}{}", event.channel);
                            let data = event.data.get().to_owned().into();
                            outbox.message(channel, data, event.position).await?;
                            // Waiting for the consumer is not silence.
                            last_read = Instant::now();
                        }
                        Ok(Incoming::Control(ServerFrame::Missed { channel, since })) => {
                            let since = since
                                .and_then(|p| p.parse::<crate::history::Position>().ok())
                                .and_then(|p| i64::try_from(p.recorded_at()).ok());
                            tracing::warn!(gateway = %self.label, %channel, ?since, "the gateway could not replay everything on this channel; events may be missing");
                            let channel = format!("{REDIS_PREFIX}{channel}");
                            outbox.send(SourceUpdate::Missed { channel, since }).await?;
                        }
                        Ok(Incoming::Control(ServerFrame::Skipped { channel, position, size, limit, .. })) => {
                            self.skipped(outbox, channel, position, skipped_reason(size, limit)).await?;
                        }
                        Ok(Incoming::Control(ServerFrame::Status { upstream, message })) => {
                            tracing::info!(gateway = %self.label, ?upstream, ?message, "gateway upstream status");
                        }
                        Ok(Incoming::Control(ServerFrame::Error { code, message, channel })) => {
                            tracing::warn!(gateway = %self.label, code = code.as_str(), %message, ?channel, "gateway reported an error");
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(gateway = %self.label, %error, "ignoring a frame that is not JSON");
                        }
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
        for channel in &self.channels {
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
        let session = GatewaySession::new(&config("ws://127.0.0.1:8080")).unwrap();
        assert_eq!(session.url.as_str(), "ws://127.0.0.1:8080/ws");
    }

    #[test]
    fn only_websocket_urls_are_accepted() {
        let error = GatewaySession::new(&config("http://127.0.0.1:8080/ws")).unwrap_err();
        assert!(error.contains("expected ws:// or wss://"), "{error}");
    }

    #[test]
    fn an_empty_channel_list_is_refused() {
        let mut config = config("ws://127.0.0.1/ws");
        config.channels.clear();
        assert!(GatewaySession::new(&config).unwrap_err().contains("empty"));
    }
}
