//! Large events (docs/gateway.md, "Large events"): an event over the
//! maximum event size is not forwarded, every subscriber of its channel gets
//! a `skipped` frame instead and then the events after it; an event within
//! the maximum reaches an empty queue even when it is larger than the
//! outbound budget; a resume from before a skipped event is told again;
//! `POST /api/publish` refuses one with 413; and the desktop's gateway
//! client reports a skipped event, and a frame it cannot read, without
//! reconnecting in a loop.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Publisher, TestGateway, WAIT, config, inventory_event, padded_event};
use futures_util::future::join_all;
use serde_json::json;
use tidings::{
    Backoff, GatewaySourceConfig, SourceHandle, SourceMessage, SourceState, SourceUpdate,
    spawn_gateway_source,
};
use tidings_events::Channel;
use tidings_gateway::Secret;
use tidings_testkit::{RedisServer, TcpProxy};
use tokio_util::sync::CancellationToken;

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn after_an_oversized_event_every_subscriber_gets_the_next_small_one() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut clients = join_all((0..5).map(|_| gateway.subscribed(&["inventory"]))).await;

    let mut publisher = Publisher::connect(&redis.url()).await;
    let big = padded_event(1, 3 * MIB / 2);
    publisher.publish("ws:inventory", &big).await;
    publisher.publish("ws:inventory", &inventory_event(2)).await;

    for client in &mut clients {
        let skipped = client.next_of("skipped").await;
        assert_eq!(skipped["channel"], "inventory", "{skipped}");
        assert_eq!(skipped["reason"], "too_large", "{skipped}");
        assert_eq!(skipped["size"], json!(big.len()), "{skipped}");
        assert_eq!(skipped["limit"], json!(MIB), "{skipped}");
        assert!(skipped["position"].is_string(), "history on: the notice says where: {skipped}");
        let event = client.next_event().await;
        assert_eq!(event["data"]["productId"], "p2", "{event}");
    }
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"tidings_gateway_events_oversized_total{source="redis"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("tidings_gateway_slow_consumer_disconnects_total 0"), "{metrics}");
}

#[tokio::test]
async fn an_event_larger_than_the_outbound_budget_reaches_an_empty_queue_without_marking_slow() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.outbound_buffer_bytes = 256 * 1024;
    let gateway = TestGateway::start(config).await;
    let mut client = gateway.subscribed(&["inventory"]).await;

    let mut publisher = Publisher::connect(&redis.url()).await;
    publisher.publish("ws:inventory", &padded_event(1, 900 * 1024)).await;
    publisher.publish("ws:inventory", &inventory_event(2)).await;

    let event = client.next_event().await;
    assert_eq!(event["data"]["productId"], "p1");
    assert_eq!(event["data"]["reason"].as_str().map(str::len), Some(900 * 1024));
    assert_eq!(client.next_event().await["data"]["productId"], "p2");
    let metrics = gateway.metrics().await;
    assert!(metrics.contains("tidings_gateway_slow_consumer_disconnects_total 0"), "{metrics}");
}

#[tokio::test]
async fn resuming_from_before_an_oversized_event_is_told_about_it_again() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.max_event_bytes = 8 * 1024;
    let gateway = TestGateway::start(config).await;
    let mut first = gateway.subscribed(&["inventory"]).await;
    let mut publisher = Publisher::connect(&redis.url()).await;
    publisher.publish("ws:inventory", &inventory_event(1)).await;
    publisher.publish("ws:inventory", &padded_event(2, 16 * 1024)).await;
    publisher.publish("ws:inventory", &inventory_event(3)).await;
    let before = first.next_event().await["position"].clone();
    let skipped_at = first.next_of("skipped").await["position"].clone();
    first.next_event().await;

    let mut resuming = gateway.client().await;
    resuming
        .send_json(
            json!({"type":"subscribe","channels":["inventory"],"since":{"inventory":before}}),
        )
        .await;
    let subscribed = resuming.next_of("subscribed").await;
    assert_eq!(subscribed["recovered"]["inventory"], true, "{subscribed}");
    let skipped = resuming.next_of("skipped").await;
    assert_eq!(skipped["position"], skipped_at, "the same notice, at the same position");
    assert_eq!(resuming.next_event().await["data"]["productId"], "p3");
}

#[tokio::test]
async fn a_publish_over_the_maximum_is_refused_with_413_and_counted() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.api_key = Some(Secret::new("test-api-key"));
    config.max_event_bytes = 4096;
    let gateway = TestGateway::start(config).await;
    let mut client = gateway.subscribed(&["inventory"]).await;

    let publish = |body: String| {
        reqwest::Client::new()
            .post(gateway.http_url("/api/publish"))
            .bearer_auth("test-api-key")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let event = padded_event(1, 8 * 1024);
    let response = publish(format!(r#"{{"channel":"inventory","event":{event}}}"#)).await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_large", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("4096") && message.contains("--max-event-bytes"), "{body}");

    // A body too large to read at all is refused the same way.
    let huge = padded_event(2, 200 * 1024);
    let response = publish(format!(r#"{{"channel":"inventory","event":{huge}}}"#)).await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_large", "{body}");

    let small = inventory_event(3);
    let response = publish(format!(r#"{{"channel":"inventory","event":{small}}}"#)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(client.next_event().await["data"]["productId"], "p3", "nothing else was published");
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"tidings_gateway_events_oversized_total{source="api"} 2"#),
        "{metrics}"
    );
}

/// A desktop gateway client on `inventory`, as the app configures it.
fn desktop_client(url: String, max_frame_bytes: Option<usize>) -> SourceHandle {
    let mut config = GatewaySourceConfig {
        backoff: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) },
        ..GatewaySourceConfig::new(url, None, vec![Channel::Inventory])
    };
    if let Some(max) = max_frame_bytes {
        config.max_frame_bytes = max;
    }
    spawn_gateway_source(config, CancellationToken::new(), 64)
}

async fn next(source: &mut SourceHandle) -> SourceUpdate {
    tokio::time::timeout(WAIT, source.updates.recv()).await.expect("an update").expect("running")
}

async fn live(source: &mut SourceHandle) {
    loop {
        if next(source).await == SourceUpdate::State(SourceState::Live) {
            return;
        }
    }
}

fn product(message: &SourceMessage) -> String {
    let value: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    value["productId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_desktop_client_reports_a_skipped_event_and_its_position_then_goes_on() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.max_event_bytes = 8 * 1024;
    let gateway = TestGateway::start(config).await;
    let mut source = desktop_client(gateway.ws_url(), None);
    live(&mut source).await;

    let mut publisher = Publisher::connect(&redis.url()).await;
    publisher.publish("ws:inventory", &padded_event(1, 16 * 1024)).await;
    publisher.publish("ws:inventory", &inventory_event(2)).await;
    let SourceUpdate::Skipped { channel, position, reason } = next(&mut source).await else {
        panic!("a skipped event first")
    };
    assert_eq!(channel, "ws:inventory");
    assert!(reason.contains("larger than the gateway forwards"), "{reason}");
    let skipped_at = position.expect("the position of the skipped event");
    let SourceUpdate::Message(message) = next(&mut source).await else { panic!("then p2") };
    assert_eq!(product(&message), "p2");

    // A client resuming from the skipped event's position is not told again.
    let mut resumed = spawn_gateway_source(
        GatewaySourceConfig {
            resume: BTreeMap::from([("ws:inventory".to_owned(), skipped_at)]),
            ..GatewaySourceConfig::new(gateway.ws_url(), None, vec![Channel::Inventory])
        },
        CancellationToken::new(),
        64,
    );
    live(&mut resumed).await;
    let SourceUpdate::Message(message) = next(&mut resumed).await else { panic!("p2 replayed") };
    assert_eq!(product(&message), "p2");
}

#[tokio::test]
async fn the_desktop_client_resumes_past_a_skipped_event_after_a_reconnect() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.max_event_bytes = 8 * 1024;
    let gateway = TestGateway::start(config).await;
    let proxy = TcpProxy::start(gateway.addr.port());
    let mut source = desktop_client(format!("ws://127.0.0.1:{}/ws", proxy.port()), None);
    live(&mut source).await;

    let mut publisher = Publisher::connect(&redis.url()).await;
    publisher.publish("ws:inventory", &inventory_event(1)).await;
    let SourceUpdate::Message(message) = next(&mut source).await else { panic!("p1") };
    assert_eq!(product(&message), "p1");
    publisher.publish("ws:inventory", &padded_event(2, 16 * 1024)).await;
    assert!(matches!(next(&mut source).await, SourceUpdate::Skipped { .. }));

    proxy.cut();
    assert!(matches!(
        next(&mut source).await,
        SourceUpdate::State(SourceState::Reconnecting { .. })
    ));
    proxy.restore();
    // Resuming from p1 would replay the skipped event's notice: the client
    // resumes from the skipped event's position instead.
    loop {
        match next(&mut source).await {
            SourceUpdate::State(SourceState::Live) => break,
            SourceUpdate::State(_) => {}
            other => panic!("nothing is replayed: {other:?}"),
        }
    }
    publisher.publish("ws:inventory", &inventory_event(3)).await;
    let SourceUpdate::Message(message) = next(&mut source).await else { panic!("p3 next") };
    assert_eq!(product(&message), "p3");
}

#[tokio::test]
async fn the_desktop_client_skips_a_frame_larger_than_it_reads_and_reconnects_once_live() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut source = desktop_client(gateway.ws_url(), Some(16 * 1024));
    live(&mut source).await;

    let mut publisher = Publisher::connect(&redis.url()).await;
    publisher.publish("ws:inventory", &inventory_event(1)).await;
    let SourceUpdate::Message(message) = next(&mut source).await else { panic!("p1") };
    assert_eq!(product(&message), "p1");
    // Resuming from p1 would replay the big one again: the client must not.
    publisher.publish("ws:inventory", &padded_event(2, 64 * 1024)).await;
    assert!(
        matches!(next(&mut source).await, SourceUpdate::Missed { ref channel, .. } if channel == "ws:inventory")
    );
    let SourceUpdate::State(SourceState::Reconnecting { reason, .. }) = next(&mut source).await
    else {
        panic!("one reconnect")
    };
    assert!(reason.contains("more than this client reads"), "{reason}");
    assert_eq!(next(&mut source).await, SourceUpdate::State(SourceState::Live));

    publisher.publish("ws:inventory", &inventory_event(3)).await;
    let SourceUpdate::Message(message) = next(&mut source).await else {
        panic!("p3, with no second reconnect")
    };
    assert_eq!(product(&message), "p3");
}
