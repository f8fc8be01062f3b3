//! The gateway source against a small WebSocket server in the test that
//! speaks protocol.md §2: token in the upgrade, subscribe, events under
//! their Redis names, status frames as information, 401 as Offline, and a
//! dropped connection reconnected and resubscribed.
//! (The real gateway is exercised by the gateway crate's own tests.)

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tidings::source::{
    Backoff, GatewaySourceConfig, SourceHandle, SourceState, SourceUpdate, spawn_gateway_source,
};
use tidings_events::Channel;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);
const EXAMPLE: &str = r#"{"type":"inventory:change","productId":"123","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#;

/// What the fake gateway saw on one connection.
#[derive(Debug)]
struct Seen {
    authorization: Option<String>,
    subscribe: String,
}

/// A fake gateway: each connection must carry `Bearer good`, gets its
/// subscribe answered, then receives a status frame and one event, then is
/// closed after `hold`.
async fn fake_gateway(hold: Duration) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let mut authorization = None;
                // The callback's signature is tungstenite's to choose.
                #[allow(clippy::result_large_err)]
                let check = |request: &Request, response: Response| {
                    authorization = request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    if authorization.as_deref() == Some("Bearer good") {
                        Ok(response)
                    } else {
                        let mut refusal = ErrorResponse::new(Some("bad token".into()));
                        *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                        Err(refusal)
                    }
                };
                let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, check).await
                else {
                    return;
                };
                let Some(Ok(Message::Text(subscribe))) = socket.next().await else { return };
                let _ = seen_tx.send(Seen { authorization, subscribe: subscribe.to_string() });
                for frame in [
                    r#"{"type":"subscribed","channels":["inventory"]}"#.to_owned(),
                    r#"{"type":"status","upstream":"reconnecting"}"#.to_owned(),
                    r#"{"type":"hello-from-the-future","x":1}"#.to_owned(),
                    format!(r#"{{"type":"event","channel":"inventory","data":{EXAMPLE}}}"#),
                ] {
                    socket.send(Message::text(frame)).await.unwrap();
                }
                tokio::time::sleep(hold).await;
                let _ = socket.close(None).await;
            });
        }
    });
    (url, seen_rx)
}

fn config(url: String, token: &str) -> GatewaySourceConfig {
    GatewaySourceConfig {
        backoff: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) },
        ..GatewaySourceConfig::new(url, Some(token.to_owned().into()), vec![Channel::Inventory])
    }
}

async fn next(handle: &mut SourceHandle) -> SourceUpdate {
    tokio::time::timeout(WAIT, handle.updates.recv()).await.expect("an update").expect("running")
}

#[tokio::test]
async fn events_arrive_under_their_redis_names_after_a_subscribe_with_the_bearer_token() {
    let (url, mut seen) = fake_gateway(Duration::from_secs(30)).await;
    let cancel = CancellationToken::new();
    let mut source = spawn_gateway_source(config(url, "good"), cancel.clone(), 8);

    assert_eq!(next(&mut source).await, SourceUpdate::State(SourceState::Connecting));
    assert_eq!(next(&mut source).await, SourceUpdate::State(SourceState::Live));
    let SourceUpdate::Message(message) = next(&mut source).await else { panic!("a message") };
    assert_eq!(message.channel, "ws:inventory");
    assert_eq!(&message.payload[..], EXAMPLE.as_bytes());

    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.authorization.as_deref(), Some("Bearer good"));
    assert_eq!(seen.subscribe, r#"{"type":"subscribe","channels":["inventory"]}"#);
    cancel.cancel();
    tokio::time::timeout(WAIT, source.finished()).await.unwrap();
}

#[tokio::test]
async fn a_refused_token_is_reported_offline() {
    let (url, _seen) = fake_gateway(Duration::from_secs(30)).await;
    let cancel = CancellationToken::new();
    let mut source = spawn_gateway_source(config(url, "tok-4711"), cancel.clone(), 8);

    assert_eq!(next(&mut source).await, SourceUpdate::State(SourceState::Connecting));
    let SourceUpdate::State(SourceState::Offline { reason }) = next(&mut source).await else {
        panic!("expected Offline")
    };
    assert!(reason.contains("401"), "{reason}");
    assert!(!reason.contains("tok-4711"), "the token must not be echoed: {reason}");
}

#[tokio::test]
async fn a_closed_connection_is_reconnected_and_resubscribed() {
    let (url, mut seen) = fake_gateway(Duration::from_millis(100)).await;
    let cancel = CancellationToken::new();
    let mut source = spawn_gateway_source(config(url, "good"), cancel.clone(), 8);

    let mut updates = Vec::new();
    while updates.iter().filter(|u| matches!(u, SourceUpdate::Message(_))).count() < 2 {
        updates.push(next(&mut source).await);
    }

    let states: Vec<_> = updates
        .iter()
        .filter_map(|u| match u {
            SourceUpdate::State(SourceState::Reconnecting { .. }) => Some("reconnecting"),
            SourceUpdate::State(SourceState::Live) => Some("live"),
            _ => None,
        })
        .collect();
    assert_eq!(states, ["live", "reconnecting", "live"]);
    assert!(seen.recv().await.is_some() && seen.recv().await.is_some(), "subscribed twice");
}
