//! The HTTP face: `/metrics` names, `POST /api/publish` (API key checked
//! before the body is read, a body that never finishes cut off, contract
//! validation, through Redis or the in-process broker), and the real binary
//! stopped by SIGTERM.

mod common;

use std::time::Duration;

use common::{Client, GatewayProcess, TestGateway, config};
use serde_json::{Value, json};
use tidings_gateway::{BrokerKind, Secret};
use tidings_testkit::RedisServer;

const API_KEY: &str = "test-api-key";

fn with_api_key(mut config: tidings_gateway::GatewayConfig) -> tidings_gateway::GatewayConfig {
    config.api_key = Some(Secret::new(API_KEY));
    config
}

async fn publish(gateway: &TestGateway, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(gateway.http_url("/api/publish")).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn inventory() -> Value {
    serde_json::from_str(&common::inventory_event(1)).unwrap()
}

#[tokio::test]
async fn metrics_expose_every_documented_family() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let _client = gateway.subscribed(&["inventory"]).await;
    let metrics = gateway.metrics().await;
    for name in [
        "tidings_gateway_connections 1",
        "tidings_gateway_connections_accepted_total 1",
        "tidings_gateway_connections_refused_total",
        r#"tidings_gateway_subscriptions{channel="inventory"} 1"#,
        r#"tidings_gateway_subscriptions{channel="user:*:notifications"} 0"#,
        r#"tidings_gateway_messages_in_total{outcome="typed"}"#,
        "tidings_gateway_messages_out_total",
        "tidings_gateway_messages_dropped_total",
        "tidings_gateway_malformed_messages_total",
        "tidings_gateway_slow_consumer_disconnects_total",
        "tidings_gateway_idle_disconnects_total",
        "tidings_gateway_auth_failures_total",
        "tidings_gateway_client_errors_total",
        "tidings_gateway_redis_reconnects_total 0",
        "tidings_gateway_upstream_live 1",
        "tidings_gateway_published_total",
        r#"tidings_gateway_events_oversized_total{source="redis"} 0"#,
        r#"tidings_gateway_events_oversized_total{source="api"} 0"#,
        r#"tidings_gateway_token_refreshes_total{outcome="accepted"} 0"#,
        r#"tidings_gateway_token_refreshes_total{outcome="refused"} 0"#,
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_published_event_goes_through_redis_to_subscribers_unchanged() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(with_api_key(config(&redis.url()))).await;
    let mut client = gateway.subscribed(&["inventory"]).await;

    let (status, reply) =
        publish(&gateway, Some(API_KEY), json!({"channel":"inventory","event":inventory()})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["receivers"], 1, "the gateway's own subscription, through Redis");
    let event = client.next_event().await;
    assert_eq!(event["data"], inventory());
}

#[tokio::test]
async fn publishing_needs_the_right_api_key() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(with_api_key(config(&redis.url()))).await;
    let body = json!({"channel":"inventory","event":inventory()});
    let (status, reply) = publish(&gateway, None, body.clone()).await;
    assert_eq!(status, 401, "{reply}");
    let (status, reply) = publish(&gateway, Some("wrong"), body).await;
    assert_eq!(status, 401, "{reply}");
    assert!(!reply.to_string().contains(API_KEY));
}

/// Sends a publish request's head announcing a 100-byte body, with `key`
/// when given, then `body` one byte every `every`; answers what came back
/// until the gateway closed, and how long after the head that was.
async fn trickled_publish(
    gateway: &TestGateway,
    key: Option<&str>,
    body: &[u8],
    every: Duration,
) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let auth = key.map(|key| format!("Authorization: Bearer {key}\r\n")).unwrap_or_default();
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{auth}Content-Length: 100\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut sent = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::select! {
                read = reader.read_buf(&mut seen) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                () = tokio::time::sleep(every), if sent < body.len() => {
                    if writer.write_all(&body[sent..=sent]).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
            }
        }
    })
    .await
    .expect("the gateway answers and closes");
    (String::from_utf8_lossy(&seen).into_owned(), started.elapsed())
}

#[tokio::test]
async fn a_publish_without_the_api_key_is_refused_before_its_body_is_read() {
    let redis = RedisServer::start();
    let mut config = with_api_key(config(&redis.url()));
    config.header_read_timeout = Duration::from_secs(60);
    let gateway = TestGateway::start(config).await;
    // No body at all: an answer can only come from the headers.
    let (answer, _) = trickled_publish(&gateway, None, b"", Duration::from_secs(1)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("no API key"), "{answer}");
}

#[tokio::test]
async fn a_publish_body_that_does_not_arrive_in_time_gets_408_while_others_publish() {
    let redis = RedisServer::start();
    let mut config = with_api_key(config(&redis.url()));
    config.header_read_timeout = Duration::from_secs(1);
    let gateway = TestGateway::start(config).await;
    let mut subscriber = Client::connect(&gateway.ws_url(), None).await.unwrap();
    subscriber.subscribe(&["inventory"]).await;
    let body = [b' '; 100];
    let (trickled, others) = tokio::join!(
        trickled_publish(&gateway, Some(API_KEY), &body, Duration::from_millis(300)),
        async {
            let body = json!({"channel": "inventory", "event": inventory()});
            publish(&gateway, Some(API_KEY), body).await
        }
    );
    let (answer, took) = trickled;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--header-read-timeout") && answer.contains("nothing was published"));
    assert!(took >= Duration::from_millis(900), "cut off after {took:?}, before the timeout");
    assert_eq!(others.0, 200, "{others:?}");
    assert_eq!(subscriber.next_event().await["data"]["productId"], "p1");
    let metrics = gateway.metrics().await;
    assert!(metrics.contains("tidings_gateway_header_timeouts_total 1"), "{metrics}");
}

#[tokio::test]
async fn publishing_is_disabled_without_an_api_key() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let (status, reply) =
        publish(&gateway, Some("anything"), json!({"channel":"inventory","event":inventory()}))
            .await;
    assert_eq!(status, 403, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("--api-key"), "{reply}");
}

#[tokio::test]
async fn events_that_break_the_contract_are_refused_with_the_reason() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(with_api_key(config(&redis.url()))).await;
    let cases = [
        (
            json!({"channel":"inventory","event":{"type":"inventory:change","productId":"1"}}),
            "invalid_event",
        ),
        (json!({"channel":"warehouse","event":inventory()}), "unknown_channel"),
        (json!({"channel":"orders","event":inventory()}), "wrong_channel"),
        (json!({"channel":"inventory","event":{"type":"adjust"}}), "invalid_event"),
        (json!({"event":inventory()}), "bad_request"),
    ];
    for (body, code) in cases {
        let (status, reply) = publish(&gateway, Some(API_KEY), body.clone()).await;
        assert!(status == 400 || status == 422, "{body} → {status} {reply}");
        assert_eq!(reply["error"], code, "{body} → {reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply}");
    }
}

#[tokio::test]
async fn the_memory_broker_delivers_api_publishes_without_any_redis() {
    let mut config = with_api_key(config("redis://127.0.0.1:1"));
    config.broker = BrokerKind::Memory;
    let gateway = TestGateway::start(config).await;
    let mut client = gateway.subscribed(&["inventory"]).await;

    let (status, reply) =
        publish(&gateway, Some(API_KEY), json!({"channel":"inventory","event":inventory()})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["receivers"], 1);
    assert_eq!(client.next_event().await["data"], inventory());
    let health = reqwest::get(gateway.http_url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn the_binary_serves_then_stops_on_sigterm_with_close_1001() {
    let redis = RedisServer::start();
    let mut gateway = GatewayProcess::start(
        &["--listen", "127.0.0.1:0", "--redis", &redis.url(), "--shutdown-timeout", "2"],
        &[],
    );
    let mut client = Client::connect(&format!("ws://{}/ws", gateway.addr), None).await.unwrap();
    client.subscribe(&["inventory"]).await;
    redis.publish("ws:inventory", &common::inventory_event(1));
    client.next_event().await;

    gateway.terminate();
    assert_eq!(client.expect_close().await.code, Some(1001));
    let (status, log) = gateway.exited(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    assert!(log.contains("gateway stopped"), "{log}");
}

#[tokio::test]
async fn the_binary_takes_its_settings_from_the_documented_environment_variables() {
    let redis = RedisServer::start();
    let gateway = GatewayProcess::start(
        &[],
        &[
            ("TIDINGS_LISTEN", "127.0.0.1:0"),
            ("TIDINGS_REDIS_URL", &redis.url()),
            ("TIDINGS_JWT_SECRET", common::SECRET),
            ("TIDINGS_API_KEY", API_KEY),
        ],
    );
    let line = &gateway.listening_line;
    assert!(line.contains(r#"auth="jwt""#) && line.contains("publish_api=true"), "{line}");
    assert!(!line.contains(common::SECRET) && !line.contains(API_KEY), "secrets never logged");

    let url = format!("ws://{}/ws", gateway.addr);
    assert!(Client::connect(&url, None).await.is_err(), "the secret from the environment applies");
    let mut client = Client::connect(&url, Some(&common::token_for("u1"))).await.unwrap();
    client.subscribe(&["user:u1:notifications"]).await;
}

#[tokio::test]
async fn a_password_protected_redis_works_and_the_password_never_reaches_the_log() {
    let password = "redis-pass-4711";
    let redis = RedisServer::start_with_password(Some(password));
    let mut gateway = GatewayProcess::start(
        &["--listen", "127.0.0.1:0", "--redis", &redis.url()],
        &[("RUST_LOG", "debug")],
    );
    let mut client = Client::connect(&format!("ws://{}/ws", gateway.addr), None).await.unwrap();
    client.subscribe(&["inventory"]).await;
    redis.publish("ws:inventory", &common::inventory_event(1));
    client.next_event().await;

    gateway.terminate();
    let (status, log) = gateway.exited(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    let everything = format!("{}\n{log}", gateway.listening_line);
    assert!(
        !everything.contains(password),
        "the Redis password leaked into the log:\n{everything}"
    );
}
