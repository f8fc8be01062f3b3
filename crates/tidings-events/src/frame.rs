//! Gateway WebSocket frames (protocol.md §2): what clients send, what the
//! gateway answers, and the event frame built once per Redis message.
//!
//! Both sides live here so the gateway and the Rust client (used by the CLI
//! and the desktop app) cannot drift apart. Channel names inside frames stay
//! strings: the gateway checks each one on its own, so a subscribe naming one
//! bad channel still subscribes the good ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A frame from a client to the gateway.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientFrame {
    /// `subscribe`: start receiving events on `channels`; answered with
    /// `subscribed`, plus an `error` frame for each refused channel.
    Subscribe {
        /// Logical channel names to subscribe to (no `ws:` prefix).
        channels: Vec<String>,
        /// Tidings addition (docs/positions.md): per channel, the last
        /// position the client has; the gateway first sends what the channel
        /// received after it. Channels not named here start live.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        since: BTreeMap<String, String>,
    },
    /// `unsubscribe`: stop receiving events on `channels`; answered with `unsubscribed`.
    Unsubscribe {
        /// Logical channel names to unsubscribe from.
        channels: Vec<String>,
    },
    /// `ping`: a keep-alive check; answered with `pong`.
    Ping,
    /// Tidings addition (docs/gateway.md, "Authentication"): a fresh token
    /// for the same user, sent before the connection's token expires, so
    /// the connection keeps its subscriptions. Answered with `refreshed`.
    Refresh {
        /// The new JWT, for the same user (`sub`) as the connection's current one.
        token: String,
    },
}

/// `Debug` never shows a `refresh` frame's token.
impl std::fmt::Debug for ClientFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientFrame::Subscribe { channels, since } => f
                .debug_struct("Subscribe")
                .field("channels", channels)
                .field("since", since)
                .finish(),
            ClientFrame::Unsubscribe { channels } => {
                f.debug_struct("Unsubscribe").field("channels", channels).finish()
            }
            ClientFrame::Ping => f.write_str("Ping"),
            ClientFrame::Refresh { .. } => {
                f.debug_struct("Refresh").field("token", &"<redacted>").finish()
            }
        }
    }
}

/// The `code` of an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, an unknown `type`, or a missing field.
    BadRequest,
    /// A channel name that protocol.md does not define.
    UnknownChannel,
    /// A channel this user may not subscribe to.
    Forbidden,
    /// The per-connection subscription limit was reached.
    TooManySubscriptions,
    /// The connection's credentials do not allow this.
    Unauthorized,
    /// A frame larger than the gateway accepts.
    TooLarge,
}

impl ErrorCode {
    /// The wire spelling, as in the `code` field (`bad_request`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownChannel => "unknown_channel",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TooLarge => "too_large",
        }
    }
}

/// Why a `skipped` frame was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The event is larger than the gateway's maximum event size.
    TooLarge,
}

/// State reported by a `status` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// The gateway receives events from Redis.
    Live,
    /// The gateway lost Redis and is reconnecting; the WebSocket stays open
    /// and events resume without any client action.
    Reconnecting,
}

/// A frame from the gateway to a client, other than `event` frames, which
/// are built by [`event_frame`] without re-serialising the payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerFrame {
    /// `subscribed`: the listed subscriptions are live; every event published
    /// on them from now on reaches the client.
    Subscribed {
        /// The logical channels now subscribed; refused ones got an `error` frame instead.
        channels: Vec<String>,
        /// Tidings addition: for each channel of the subscribe's `since`,
        /// whether everything after that position follows (`true`) or
        /// history no longer reaches back that far (`false`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        recovered: BTreeMap<String, bool>,
    },
    /// `unsubscribed`: the listed subscriptions have ended.
    Unsubscribed {
        /// The logical channels no longer subscribed.
        channels: Vec<String>,
    },
    /// `pong`: the answer to a `ping`.
    Pong,
    /// `error`: a client frame, or part of one, was refused; the connection stays open.
    Error {
        /// Machine-readable reason, such as `forbidden` or `unknown_channel`.
        code: ErrorCode,
        /// Readable explanation for a person.
        message: String,
        /// The logical channel the error is about; absent when it concerns the whole frame.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    /// Tidings addition (docs/positions.md): the gateway lost its link to
    /// Redis and could not replay everything `channel` received meanwhile;
    /// events after position `since` may be missing.
    Missed {
        /// The logical channel that may have lost events.
        channel: String,
        /// Position after which events may be missing; absent when the gateway
        /// cannot say (e.g. after its Redis reader was restarted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// Tidings addition (docs/gateway.md, "Large events"): one event on
    /// `channel` was not sent; `position` (when history is on) is where it
    /// sits, so a client resuming from here moves past it.
    Skipped {
        /// The logical channel the unsent event was published on.
        channel: String,
        /// The skipped event's position in the channel's history; absent when history is off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<String>,
        /// Why the event was not sent.
        reason: SkipReason,
        /// The event's size in bytes.
        size: u64,
        /// The largest event the gateway forwards, in bytes.
        limit: u64,
    },
    /// Tidings addition (docs/gateway.md, "Authentication"): a `refresh`
    /// was accepted; the connection now ends at `exp` (seconds since the
    /// Unix epoch). `dropped` lists subscriptions the new token no longer
    /// allows, which were ended (an `unsubscribed` frame came first).
    Refreshed {
        /// When the connection now ends, in seconds since the Unix epoch (the new token's `exp`).
        exp: u64,
        /// Logical channels the new token no longer allows, now unsubscribed; absent when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dropped: Vec<String>,
    },
    /// Tidings addition: the gateway's link to Redis changed state.
    Status {
        /// Whether the gateway is receiving from Redis or reconnecting.
        upstream: UpstreamState,
        /// Readable detail, such as why Redis was lost; absent when there is none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

/// An `event` frame as a client reads it. Kept apart from [`ServerFrame`]
/// because serde cannot borrow a raw JSON value inside a tagged enum.
#[derive(Debug, Clone, Deserialize)]
pub struct EventFrame {
    /// The logical channel the event arrived on (no `ws:` prefix).
    pub channel: String,
    /// Tidings addition: where the event sits in the channel's history
    /// (`EPOCH:MILLIS-SEQ`), when the gateway records history.
    #[serde(default)]
    pub position: Option<String>,
    /// The published object, exactly as the gateway forwarded it.
    pub data: Box<RawValue>,
}

/// Any frame a client may receive.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// An `event` frame: one published event.
    Event(EventFrame),
    /// Any other frame type this client knows (`subscribed`, `error`, `status`, …).
    Control(ServerFrame),
    /// A frame type this client does not know; protocol.md says to ignore it.
    Unknown(String),
}

/// Parses one text frame from the gateway.
pub fn parse_server_frame(text: &str) -> Result<Incoming, serde_json::Error> {
    #[derive(Deserialize)]
    struct Tag<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let tag: Tag<'_> = serde_json::from_str(text)?;
    match tag.kind.as_ref() {
        "event" => serde_json::from_str(text).map(Incoming::Event),
        "subscribed" | "unsubscribed" | "pong" | "error" | "status" | "missed" | "skipped"
        | "refreshed" => serde_json::from_str(text).map(Incoming::Control),
        other => Ok(Incoming::Unknown(other.to_owned())),
    }
}

impl ServerFrame {
    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Every field is a string, an enum or already-valid JSON.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"error\"}"))
    }

    /// An `error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>, channel: Option<String>) -> Self {
        ServerFrame::Error { code, message: message.into(), channel }
    }
}

/// Why a client frame was refused; becomes an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FrameError {
    /// The `code` of the `error` frame sent back.
    pub code: ErrorCode,
    /// Readable explanation, sent as the `error` frame's `message`.
    pub message: String,
}

/// Parses one text frame from a client.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let bad = |message: String| FrameError { code: ErrorCode::BadRequest, message };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("frame is not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(bad("frame is not a JSON object".into()));
    };
    match object.get("type").and_then(serde_json::Value::as_str) {
        Some("subscribe" | "unsubscribe" | "ping" | "refresh") => {}
        Some(other) => {
            return Err(bad(format!(
                "unknown frame type {other:?}; expected \"subscribe\", \"unsubscribe\", \"ping\" or \"refresh\""
            )));
        }
        None => return Err(bad("frame has no string field `type`".into())),
    }
    serde_json::from_value(value).map_err(|e| bad(format!("bad frame: {e}")))
}

/// Builds `{"type":"event","channel":…,"data":…}` around `data`, which must
/// be one JSON object (as [`crate::decode()`] has checked). `data` is copied
/// byte for byte, so what the backend published is what every client gets.
pub fn event_frame(channel: &str, data: &str) -> String {
    event_frame_at(channel, None, data)
}

/// [`event_frame`] with the event's `position` in its channel's history.
pub fn event_frame_at(channel: &str, position: Option<&str>, data: &str) -> String {
    let channel = serde_json::to_string(channel).unwrap_or_else(|_| String::from("\"\""));
    let position = position.map(|p| serde_json::to_string(p).unwrap_or_default());
    let extra = position.as_ref().map_or(0, |p| p.len() + 12);
    let mut frame = String::with_capacity(data.len() + channel.len() + extra + 40);
    frame.push_str("{\"type\":\"event\",\"channel\":");
    frame.push_str(&channel);
    if let Some(position) = &position {
        frame.push_str(",\"position\":");
        frame.push_str(position);
    }
    frame.push_str(",\"data\":");
    frame.push_str(data);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_client_frames_of_the_protocol_parse() {
        assert_eq!(
            parse_client_frame(
                r#"{"type":"subscribe","channels":["inventory","user:u1:notifications"]}"#
            ),
            Ok(ClientFrame::Subscribe {
                channels: vec!["inventory".into(), "user:u1:notifications".into()],
                since: BTreeMap::new(),
            })
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"unsubscribe","channels":["inventory"]}"#),
            Ok(ClientFrame::Unsubscribe { channels: vec!["inventory".into()] })
        );
        assert_eq!(parse_client_frame(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping));
    }

    #[test]
    fn unknown_fields_in_client_frames_are_ignored() {
        assert_eq!(parse_client_frame(r#"{"type":"ping","id":7}"#), Ok(ClientFrame::Ping));
    }

    #[test]
    fn bad_client_frames_are_bad_requests_that_say_why() {
        for (text, expected) in [
            ("hello", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"channels":[]}"#, "no string field `type`"),
            (r#"{"type":"publish"}"#, "unknown frame type \"publish\""),
            (r#"{"type":"subscribe"}"#, "missing field `channels`"),
            (r#"{"type":"subscribe","channels":"inventory"}"#, "invalid type"),
        ] {
            let error = parse_client_frame(text).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest);
            assert!(error.message.contains(expected), "{text}: {}", error.message);
        }
    }

    #[test]
    fn server_frames_have_the_protocol_shape() {
        let subscribed = ServerFrame::Subscribed {
            channels: vec!["inventory".into()],
            recovered: BTreeMap::new(),
        };
        assert_eq!(subscribed.to_json(), r#"{"type":"subscribed","channels":["inventory"]}"#);
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
        let status = ServerFrame::Status { upstream: UpstreamState::Reconnecting, message: None };
        assert_eq!(status.to_json(), r#"{"type":"status","upstream":"reconnecting"}"#);
        let error = ServerFrame::error(
            ErrorCode::Forbidden,
            "not yours",
            Some("user:u2:notifications".into()),
        );
        assert_eq!(
            error.to_json(),
            r#"{"type":"error","code":"forbidden","message":"not yours","channel":"user:u2:notifications"}"#
        );
    }

    #[test]
    fn clients_ignore_frame_types_they_do_not_know() {
        let Incoming::Unknown(kind) = parse_server_frame(r#"{"type":"hello","x":1}"#).unwrap()
        else {
            panic!("should be unknown")
        };
        assert_eq!(kind, "hello");
    }

    #[test]
    fn event_frames_carry_data_byte_for_byte() {
        let data = r#"{"type":"x", "spaced" : 1.50,"b":"\u00e9"}"#;
        let frame = event_frame("inventory", data);
        assert_eq!(frame, format!(r#"{{"type":"event","channel":"inventory","data":{data}}}"#));
        let Incoming::Event(parsed) = parse_server_frame(&frame).unwrap() else {
            panic!("{frame}")
        };
        assert_eq!(parsed.channel, "inventory");
        assert_eq!(parsed.data.get(), data);
    }

    #[test]
    fn a_subscribe_may_name_positions_to_resume_from() {
        let frame = parse_client_frame(
            r#"{"type":"subscribe","channels":["inventory"],"since":{"inventory":"e1:5-0"}}"#,
        )
        .unwrap();
        let ClientFrame::Subscribe { since, .. } = frame else { panic!("{frame:?}") };
        assert_eq!(since.get("inventory").map(String::as_str), Some("e1:5-0"));
    }

    #[test]
    fn subscribed_says_per_channel_whether_the_gap_was_recovered() {
        let frame = ServerFrame::Subscribed {
            channels: vec!["inventory".into(), "orders".into()],
            recovered: BTreeMap::from([("inventory".into(), true), ("orders".into(), false)]),
        };
        assert_eq!(
            frame.to_json(),
            r#"{"type":"subscribed","channels":["inventory","orders"],"recovered":{"inventory":true,"orders":false}}"#
        );
    }

    #[test]
    fn event_frames_carry_their_position_when_there_is_one() {
        let frame = event_frame_at("orders", Some("e1:7-0"), r#"{"a":1}"#);
        assert_eq!(
            frame,
            r#"{"type":"event","channel":"orders","position":"e1:7-0","data":{"a":1}}"#
        );
        let Incoming::Event(parsed) = parse_server_frame(&frame).unwrap() else {
            panic!("{frame}")
        };
        assert_eq!(parsed.position.as_deref(), Some("e1:7-0"));
        let Incoming::Event(plain) = parse_server_frame(&event_frame("orders", "{}")).unwrap()
        else {
            panic!("plain")
        };
        assert_eq!(plain.position, None);
    }

    #[test]
    fn a_refresh_frame_parses_and_its_debug_output_hides_the_token() {
        let frame = parse_client_frame(r#"{"type":"refresh","token":"a.b.c"}"#).unwrap();
        assert_eq!(frame, ClientFrame::Refresh { token: "a.b.c".into() });
        assert!(!format!("{frame:?}").contains("a.b.c"), "{frame:?}");
    }

    #[test]
    fn skipped_and_refreshed_frames_have_their_documented_shape() {
        let skipped = ServerFrame::Skipped {
            channel: "inventory".into(),
            position: Some("e1:7-0".into()),
            reason: SkipReason::TooLarge,
            size: 2000,
            limit: 1000,
        };
        assert_eq!(
            skipped.to_json(),
            r#"{"type":"skipped","channel":"inventory","position":"e1:7-0","reason":"too_large","size":2000,"limit":1000}"#
        );
        let Incoming::Control(ServerFrame::Skipped { position, .. }) =
            parse_server_frame(&skipped.to_json()).unwrap()
        else {
            panic!("a skipped frame")
        };
        assert_eq!(position.as_deref(), Some("e1:7-0"));
        let refreshed = ServerFrame::Refreshed { exp: 17, dropped: Vec::new() };
        assert_eq!(refreshed.to_json(), r#"{"type":"refreshed","exp":17}"#);
    }
}
