//! Faults: Redis killed and restarted mid-stream (connections stay open, get
//! `status` frames, and receive events again with no action), a dead
//! upstream task (503 from `/healthz`, then started again), and graceful
//! shutdown (close 1001 to every client, done within a bound, even when a
//! client never answers).

mod common;

use std::time::{Duration, Instant};

use common::{Publisher, TestGateway, WAIT, config, inventory_event};
use tidings_testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn quick_reconnect(redis_url: &str) -> tidings_gateway::GatewayConfig {
    let mut config = config(redis_url);
    config.redis_backoff_max = Duration::from_millis(200);
    config
}

#[tokio::test]
async fn redis_restarted_mid_stream_gives_status_frames_and_delivery_resumes() {
    let mut redis = RedisServer::start();
    let gateway = TestGateway::start(quick_reconnect(&redis.url())).await;
    let mut client = gateway.subscribed(&["inventory"]).await;
    let mut publisher = Publisher::connect(&redis.url()).await;
    for n in 0..20 {
        publisher.publish("ws:inventory", &inventory_event(n)).await;
    }
    for n in 0..20 {
        assert_eq!(client.next_event().await["data"]["productId"], format!("p{n}"));
    }

    redis.kill();
    let down = client.next_of("status").await;
    assert_eq!(down["upstream"], "reconnecting", "{down}");
    assert!(down["message"].as_str().is_some_and(|m| m.contains("Redis")), "{down}");

    redis.restart();
    // It came back empty, history included: besides `live` again, the client
    // is told events on its channel may be missing (docs/positions.md).
    let (mut live, mut missed) = (false, false);
    while !(live && missed) {
        let frame = client.next().await;
        match frame["type"].as_str() {
            Some("status") => live |= frame["upstream"] == "live",
            Some("missed") => missed |= frame["channel"] == "inventory",
            _ => panic!("expected status or missed, got {frame}"),
        }
    }

    // Once `live` is read, a publish reaches the client without it doing anything.
    assert_eq!(redis.publish("ws:inventory", &inventory_event(100)), 1);
    assert_eq!(client.next_event().await["data"]["productId"], "p100");

    let metrics = gateway.metrics().await;
    assert!(metrics.contains("tidings_gateway_redis_reconnects_total 1"), "{metrics}");
}

#[tokio::test]
async fn a_client_connecting_while_redis_is_down_is_told_and_confirmed_once_live() {
    let mut redis = RedisServer::start();
    let gateway = TestGateway::start(quick_reconnect(&redis.url())).await;
    let mut watcher = gateway.client().await;
    redis.kill();
    assert_eq!(watcher.next_of("status").await["upstream"], "reconnecting");

    let mut client = gateway.client().await;
    assert_eq!(client.next_of("status").await["upstream"], "reconnecting");
    client.send_json(serde_json::json!({"type":"subscribe","channels":["inventory"]})).await;

    redis.restart();
    assert_eq!(client.next_of("status").await["upstream"], "live");
    // `subscribed` waits until events can flow, so this publish must arrive.
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["channels"], serde_json::json!(["inventory"]));
    redis.publish("ws:inventory", &inventory_event(1));
    assert_eq!(client.next_event().await["data"]["productId"], "p1");
}

#[tokio::test]
async fn repeated_subscribes_during_an_outage_are_confirmed_once() {
    let mut redis = RedisServer::start();
    let gateway = TestGateway::start(quick_reconnect(&redis.url())).await;
    let mut client = gateway.client().await;
    redis.kill();
    assert_eq!(client.next_of("status").await["upstream"], "reconnecting");

    // A client retrying its subscribe while Redis is down: the channel
    // waits once, not once per frame.
    for _ in 0..200 {
        client.send_json(serde_json::json!({"type":"subscribe","channels":["inventory"]})).await;
    }
    client.send_json(serde_json::json!({"type":"ping"})).await;
    assert_eq!(client.next_of("pong").await["type"], "pong");

    redis.restart();
    assert_eq!(client.next_of("status").await["upstream"], "live");
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["channels"], serde_json::json!(["inventory"]));
    redis.publish("ws:inventory", &inventory_event(1));
    assert_eq!(client.next_event().await["data"]["productId"], "p1");
}

#[tokio::test]
async fn healthz_says_whether_redis_is_reachable() {
    let mut redis = RedisServer::start();
    let gateway = TestGateway::start(quick_reconnect(&redis.url())).await;
    let ok = reqwest::get(gateway.http_url("/healthz")).await.unwrap();
    assert_eq!(ok.status(), 200);

    let mut watcher = gateway.client().await;
    redis.kill();
    watcher.next_of("status").await;
    let down = reqwest::get(gateway.http_url("/healthz")).await.unwrap();
    assert_eq!(down.status(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["upstream"], "reconnecting", "{body}");
}

#[tokio::test]
async fn a_dead_upstream_task_makes_healthz_503_and_is_started_again() {
    let redis = RedisServer::start();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let bound = tidings_gateway::Gateway::bind(quick_reconnect(&redis.url()), shutdown.clone())
        .await
        .unwrap();
    let upstream_task = bound.upstream_task.clone();
    let gateway = TestGateway {
        addr: bound.addr,
        upstream: bound.upstream,
        shutdown,
        task: Some(tokio::spawn(bound.serving)),
    };
    let mut client = gateway.client().await;
    client.subscribe(&["inventory"]).await;

    // The task dies as a panic would end it.
    assert!(upstream_task.abort_for_test());
    let down = client.next_of("status").await;
    assert_eq!(down["upstream"], "reconnecting", "{down}");
    assert!(down["message"].as_str().is_some_and(|m| m.contains("task")), "{down}");
    let missed = client.next_of("missed").await;
    assert_eq!(missed["channel"], "inventory", "{missed}");
    // The restart waits at least half a second, so this is asked meanwhile.
    let health = reqwest::get(gateway.http_url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 503);

    assert_eq!(client.next_of("status").await["upstream"], "live");
    redis.publish("ws:inventory", &inventory_event(1));
    assert_eq!(client.next_event().await["data"]["productId"], "p1");
    let health = reqwest::get(gateway.http_url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = gateway.metrics().await;
    assert!(metrics.contains("tidings_gateway_upstream_restarts_total 1"), "{metrics}");
}

/// Log lines of this test's thread (the gateway runs on it: a
/// current-thread runtime), for the warnings a test expects.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts a gateway on `redis`, subscribes once (so the upstream is live,
/// and the start-up check made before it has run), and returns its log.
async fn log_of_a_start(redis: &RedisServer) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut gateway = TestGateway::start(config(&redis.url())).await;
    gateway.subscribed(&["inventory"]).await;
    gateway.stop().await;
    captured.text()
}

#[tokio::test]
async fn a_redis_that_may_evict_history_keys_is_warned_about_at_start() {
    let redis = RedisServer::start();
    redis.cli(&["CONFIG", "SET", "maxmemory", "1gb"]);
    // Every history key expires (volatile-* may take it) and allkeys-* may
    // take any key.
    for policy in ["volatile-lru", "allkeys-lru", "allkeys-random"] {
        redis.cli(&["CONFIG", "SET", "maxmemory-policy", policy]);
        let log = log_of_a_start(&redis).await;
        let warning = log.lines().find(|line| line.contains("evicts history keys"));
        let warning = warning.unwrap_or_else(|| panic!("{policy}: no warning in {log}"));
        assert!(warning.contains("WARN") && warning.contains(policy), "{warning}");
        assert!(warning.contains("maxmemory-policy noeviction"), "{warning}");
    }

    // A policy that never evicts: nothing to say.
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    let log = log_of_a_start(&redis).await;
    assert!(!log.contains("evicts history keys"), "{log}");
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001_and_stops_accepting() {
    let redis = RedisServer::start();
    let mut gateway = TestGateway::start(config(&redis.url())).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(gateway.subscribed(&["inventory"]).await);
    }

    gateway.shutdown.cancel();
    for client in &mut clients {
        let closed = client.expect_close().await;
        assert_eq!(closed.code, Some(1001), "{closed:?}");
    }
    gateway.stop().await;
    assert!(
        tokio::net::TcpStream::connect(gateway.addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_finishes_within_its_bound_when_a_client_never_answers() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.shutdown_timeout = Duration::from_millis(800);
    let mut gateway = TestGateway::start(config).await;

    // A client that completes the handshake, then never reads or answers.
    let mut stuck = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    stuck
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut response = [0u8; 12];
    stuck.read_exact(&mut response).await.unwrap();
    assert_eq!(&response, b"HTTP/1.1 101");
    let mut polite = gateway.subscribed(&["inventory"]).await;

    let started = Instant::now();
    gateway.shutdown.cancel();
    assert_eq!(polite.expect_close().await.code, Some(1001));
    gateway.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(800) + Duration::from_millis(700), "took {took:?}");
    assert!(took < WAIT);
}
