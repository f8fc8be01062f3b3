//! The HTTP face of the gateway (axum): `GET /ws` (WebSocket upgrade),
//! `GET /healthz`, `GET /metrics` and `POST /api/publish`.
//!
//! The upgrade is served with tokio-tungstenite 0.30 directly, on the
//! connection hyper hands over (`hyper::upgrade::on`), not with axum's own
//! `ws` feature, which is built on an older tungstenite. Everything that can
//! refuse a client happens before the 101 answer, as a plain HTTP status:
//! 426 (not a WebSocket upgrade), 403 (origin not allowed), 401 (no or bad
//! token), 429 (the user's connection cap reached), 503 (connection cap
//! reached, or shutting down). Bounds applied before any request is read
//! (pending connections, per address, header-read timeout) are in
//! [`crate::listener`].
//!
//! `POST /api/publish` checks the API key from the headers before it reads
//! the body, so a client without the key never holds a connection while it
//! trickles one; with the key, the body must arrive within the header-read
//! timeout (408 otherwise) and within `--max-event-bytes` plus the envelope
//! (413).
//!
//! Origins: browsers send `Origin` on every WebSocket upgrade; other clients
//! (the desktop app, `websocat`, tests) send none and are not judged by it.
//! With `--allowed-origin`, only the listed origins pass. In open mode with
//! no list, only loopback origins (a dev server on this machine) pass, so a
//! web page on any other site cannot read every channel through the local
//! user's browser (cross-site WebSocket hijacking).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use tidings_events::{Channel, Decoded, decode};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::task::TaskTracker;

use crate::auth::{AuthError, Grant};
use crate::config::Secret;
use crate::connection::{self, Shared, Slot};
use crate::hub::OversizedFrom;
use crate::listener::{Admission, PeerPlace, RETRY_AFTER_FULL, RETRY_AFTER_PER_USER};
use crate::upstream::Broker;

/// Room in a `POST /api/publish` body for the envelope around the event
/// (`{"channel":…,"event":…}` and whitespace): the body may be this much
/// larger than the maximum event.
const PUBLISH_ENVELOPE_BYTES: usize = 64 * 1024;

/// What every handler needs.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub shared: Arc<Shared>,
    pub broker: Broker,
    pub api_key: Option<Secret>,
    /// Owns every connection task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Per-address and per-user connection counts (`listener`).
    pub admission: Arc<Admission>,
}

/// The gateway's routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/publish", post(publish))
        .fallback(not_found)
        .with_state(state)
}

/// WebSocket settings: inbound frames bounded by `max_frame_bytes`; small
/// buffers so an idle connection costs little memory. Client frames are
/// small (a subscribe is ~100 bytes), and the read buffer grows on demand
/// for a larger one, so 1 KiB costs nothing but saves 3 KiB per idle
/// connection compared with 4 KiB (tungstenite zero-fills it up front).
pub(crate) fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

async fn upgrade(State(app): State<AppState>, mut request: Request) -> Response {
    let headers = request.headers();
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "not_websocket",
            "/ws speaks WebSocket only: send a GET with `Connection: Upgrade` and `Upgrade: websocket`",
        );
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        let mut response = refuse(
            StatusCode::UPGRADE_REQUIRED,
            "bad_version",
            "only WebSocket version 13 is supported",
        );
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "bad_request", "missing Sec-WebSocket-Key header");
    };
    let accept = derive_accept_key(key.as_bytes());
    let metrics = &app.shared.metrics;

    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
        if let Err(why) =
            origin_allowed(origin, &app.shared.config.allowed_origins, app.shared.auth.is_none())
        {
            metrics.connections_refused.with_label_values(&["origin"]).inc();
            return refuse(StatusCode::FORBIDDEN, "origin_not_allowed", why);
        }
    }

    let grant = match &app.shared.auth {
        None => Grant::Open,
        Some(auth) => match auth.verify(token(&request).as_deref()) {
            Ok(grant) => grant,
            Err(error) => {
                metrics.auth_failures.with_label_values(&[error.label()]).inc();
                tracing::debug!(reason = error.label(), "upgrade refused: 401");
                return unauthorized(&error);
            }
        },
    };

    if app.shared.shutdown.is_cancelled() {
        metrics.connections_refused.with_label_values(&["shutting_down"]).inc();
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the gateway is shutting down; reconnect to another one",
        );
    }
    let user_place = match grant.user() {
        None => None,
        Some(user) => match app.admission.enter_user(user.as_str()) {
            Some(place) => Some(place),
            None => {
                metrics.connections_refused.with_label_values(&["per_user"]).inc();
                tracing::debug!(user = user.as_str(), "upgrade refused: 429, per-user cap");
                let limit = app.shared.config.max_connections_per_user;
                let mut response = refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections_for_user",
                    &format!(
                        "this user already has {limit} connections open, the most allowed; close one or retry later"
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_PER_USER));
                return response;
            }
        },
    };
    let Some(slot) = Slot::reserve(&app.shared) else {
        metrics.connections_refused.with_label_values(&["capacity"]).inc();
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "the gateway has reached its connection limit; retry later",
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_FULL));
        return response;
    };

    // The connection's place under its address's cap is held for as long
    // as the WebSocket lives (the HTTP side gives its copy back at upgrade).
    let peer_place = request.extensions_mut().remove::<PeerPlace>();
    let on_upgrade = hyper::upgrade::on(&mut request);
    let config = websocket_config(app.shared.config.max_frame_bytes);
    app.tracker.spawn(async move {
        let _places = (peer_place, user_place);
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                connection::serve(ws, grant, slot).await;
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade did not complete"),
        }
    });

    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// Whether the comma-separated header `name` contains `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// The JWT from `Authorization: Bearer` or, failing that, `?token=`.
fn token(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(token) = bearer(value)
    {
        return Some(token.to_owned());
    }
    let Query(query) = Query::<HashMap<String, String>>::try_from_uri(request.uri()).ok()?;
    query.get("token").cloned()
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn unauthorized(error: &AuthError) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, "unauthorized", &error.to_string());
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// A JSON error body: `{"error": code, "message": message}`.
fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": code, "message": message }))).into_response()
}

async fn healthz(State(app): State<AppState>) -> Response {
    let status = app.shared.status.borrow().clone();
    let reachable = app.broker.healthy().await;
    let upstream = if status.is_live() { "live" } else { "reconnecting" };
    match reachable {
        Ok(()) if status.is_live() => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "ok", "upstream": upstream })),
        )
            .into_response(),
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "status": "unavailable", "upstream": upstream, "message": status.message,
            })),
        )
            .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "status": "unavailable", "upstream": upstream,
                "message": format!("Redis unreachable: {error}"),
            })),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        app.shared.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct PublishRequest {
    channel: String,
    event: Box<RawValue>,
}

async fn publish(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(expected) = &app.api_key else {
        return refuse(
            StatusCode::FORBIDDEN,
            "publishing_disabled",
            "publishing over HTTP is disabled: start the gateway with --api-key (or TIDINGS_API_KEY)",
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer)
        .or_else(|| headers.get("x-api-key").and_then(|value| value.to_str().ok()));
    match presented {
        Some(key) if same_secret(key.as_bytes(), expected.expose().as_bytes()) => {}
        Some(_) => {
            app.shared.metrics.auth_failures.with_label_values(&["bad_api_key"]).inc();
            return refuse(StatusCode::UNAUTHORIZED, "unauthorized", "wrong API key");
        }
        None => {
            app.shared.metrics.auth_failures.with_label_values(&["missing_api_key"]).inc();
            return refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "no API key: send `Authorization: Bearer <key>` or `X-Api-Key: <key>`",
            );
        }
    }
    let max = app.shared.config.max_event_bytes;
    let body = match read_body(&app, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let request: PublishRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("body must be {{\"channel\": \"<name>\", \"event\": {{...}}}}: {error}"),
            );
        }
    };
    let size = request.event.get().len();
    if size > max {
        return too_large(&app, &request.channel, Some(size), max);
    }
    let channel = match Channel::parse(&request.channel) {
        Ok(channel) => channel,
        Err(error) => {
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, "unknown_channel", &error.to_string());
        }
    };
    let event = match decode(request.event.get().as_bytes()) {
        Decoded::Typed { event, .. } => event,
        Decoded::Legacy { raw } => {
            let kind = raw.get("type").map_or_else(|| "(none)".to_owned(), ToString::to_string);
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_event",
                &format!("event `type` {kind} is not one of the contract's event types"),
            );
        }
        Decoded::Malformed(malformed) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_event",
                &format!("event: {malformed}"),
            );
        }
    };
    if !channel.carries(&event) {
        let home = Channel::for_event(&event)
            .map_or_else(|_| "a user channel".to_owned(), |home| home.name());
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_channel",
            &format!("a {} event does not go on {channel}; it goes on {home}", event.kind()),
        );
    }
    // The event is published exactly as the caller wrote it, byte for byte.
    match app.broker.publish(&channel.redis_name(), request.event.get()).await {
        Ok(receivers) => {
            app.shared.metrics.published.inc();
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({ "published": true, "channel": channel.name(), "receivers": receivers })),
            )
                .into_response()
        }
        Err(error) => {
            refuse(StatusCode::SERVICE_UNAVAILABLE, "broker_unavailable", &error.to_string())
        }
    }
}

/// 413 for an event over the maximum (`size` when known: a body too large
/// to read is refused before it is parsed), counted as oversized.
/// A publish body, read only once the key is checked: within the
/// header-read timeout (408, counted with the header timeouts) and within
/// `--max-event-bytes` plus the envelope (413).
async fn read_body(app: &AppState, body: Body) -> Result<Bytes, Response> {
    let config = &app.shared.config;
    let limit = config.max_event_bytes.saturating_add(PUBLISH_ENVELOPE_BYTES);
    let timeout = config.header_read_timeout;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => {
            let too_long = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            Err(if too_long {
                too_large(app, "(body not read)", None, config.max_event_bytes)
            } else {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("cannot read the request body: {error}"),
                )
            })
        }
        Err(_) => {
            app.shared.metrics.header_timeouts.inc();
            Err(refuse(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                &format!(
                    "the request body did not arrive within {}s (--header-read-timeout); nothing was published",
                    timeout.as_secs_f64()
                ),
            ))
        }
    }
}

fn too_large(app: &AppState, channel: &str, size: Option<usize>, max: usize) -> Response {
    app.shared.hub.oversized(OversizedFrom::Api, channel, size, None);
    let what = size.map_or_else(
        || "the request body is larger than".to_owned(),
        |size| format!("the event is {size} bytes, more than"),
    );
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        &format!(
            "{what} this gateway forwards ({max} bytes, --max-event-bytes); nothing was published"
        ),
    )
}

/// Compares secrets without stopping at the first differing byte.
fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    presented.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn not_found() -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; try /ws, /healthz, /metrics or POST /api/publish",
    )
}

/// Whether a browser page from `origin` may open a WebSocket: listed in
/// `allowed`, or, with no list in open mode, served from this machine.
fn origin_allowed(origin: &str, allowed: &[String], open_mode: bool) -> Result<(), &'static str> {
    if !allowed.is_empty() {
        return if allowed.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)) {
            Ok(())
        } else {
            Err("this Origin may not open WebSockets here; add it with --allowed-origin")
        };
    }
    if !open_mode || is_loopback_origin(origin) {
        return Ok(());
    }
    Err(
        "in open mode (no JWT secret) only pages served from this machine may open WebSockets; add this Origin with --allowed-origin, or configure a JWT secret",
    )
}

/// `http(s)://` + `localhost`, a 127.0.0.0/8 address or `[::1]`, any port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, tail)) if tail.is_empty() || tail.starts_with(':') => host,
            _ => return false,
        },
        None => rest.split(':').next().unwrap_or_default(),
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_are_this_machine_on_any_port() {
        for origin in [
            "http://localhost:5173",
            "http://LOCALHOST",
            "https://127.0.0.1:8443",
            "http://127.1.2.3",
            "http://[::1]:3000",
        ] {
            assert!(is_loopback_origin(origin), "{origin}");
        }
    }

    #[test]
    fn look_alike_and_other_origins_are_not_loopback() {
        for origin in [
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://evil.example",
            "null",
            "file://",
            "http://[::1]evil",
            "ws://localhost",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }

    #[test]
    fn open_mode_without_a_list_admits_only_loopback_pages() {
        assert!(origin_allowed("http://localhost:5173", &[], true).is_ok());
        assert!(origin_allowed("https://evil.example", &[], true).is_err());
        // With tokens, a page must still present a token; the list decides.
        assert!(origin_allowed("https://erp.example", &[], false).is_ok());
        let list = vec!["https://erp.example".to_owned()];
        assert!(origin_allowed("https://erp.example", &list, true).is_ok());
        assert!(origin_allowed("http://localhost:5173", &list, true).is_err());
    }
}
