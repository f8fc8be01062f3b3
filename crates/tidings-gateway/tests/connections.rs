//! Connection hygiene (docs/gateway.md, "Limits"): a slowloris client is
//! closed by the header-read timeout while others connect; an idle
//! keep-alive is closed by it too; connections not yet upgraded count
//! against their own bound (503 + Retry-After); one address past its cap
//! and one user past theirs get 429 + Retry-After; every refusal is counted;
//! shutdown does not wait for a client that never finishes its headers.

mod common;

use std::time::{Duration, Instant};

use common::{Client, TestGateway, WAIT, config, secured_config, token_for};
use tidings_testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;

/// The refusal `Client::connect` got: its status and `Retry-After`.
fn refusal(result: Result<Client, tungstenite::Error>) -> (u16, Option<String>) {
    match result {
        Err(tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned()),
        ),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the connection was accepted"),
    }
}

/// The value of the series `name` in the metrics text.
fn value(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// Connects until it succeeds (a place given back by a closing connection
/// is free once that connection's task has ended).
async fn connect_when_free(url: &str, token: Option<&str>) -> Client {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(client) = Client::connect(url, token).await {
                return client;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a place frees up once a connection has closed")
}

#[tokio::test]
async fn a_slowloris_client_is_closed_by_the_header_read_timeout_while_others_connect() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.header_read_timeout = Duration::from_secs(2);
    let gateway = TestGateway::start(config).await;

    // Headers trickled one byte a second: each byte comes well within the
    // timeout of the previous one, but the whole head never does.
    let socket = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let trickler = tokio::spawn(async move {
        let (mut reader, mut writer) = socket.into_split();
        let request = b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n";
        let started = Instant::now();
        let mut sent = 0;
        let mut seen = Vec::new();
        loop {
            tokio::select! {
                read = reader.read_buf(&mut seen) => match read {
                    Ok(0) | Err(_) => return (started.elapsed(), sent, seen),
                    Ok(_) => {}
                },
                () = tokio::time::sleep(Duration::from_secs(1)), if sent < request.len() => {
                    if writer.write_all(&request[sent..=sent]).await.is_err() {
                        return (started.elapsed(), sent, seen);
                    }
                    sent += 1;
                }
            }
        }
    });

    // Meanwhile an ordinary client connects and receives.
    let mut client = gateway.subscribed(&["inventory"]).await;
    redis.publish("ws:inventory", &common::inventory_event(1));
    assert_eq!(client.next_event().await["data"]["productId"], "p1");

    let (took, sent, seen) = tokio::time::timeout(WAIT, trickler)
        .await
        .expect("the gateway closes the slowloris client")
        .unwrap();
    assert!(took >= Duration::from_millis(1900), "closed after {took:?}, before the timeout");
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    assert!(sent < 5, "closed after {sent} bytes");
    assert!(!seen.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&seen));

    let metrics = gateway.metrics().await;
    assert!(metrics.contains("tidings_gateway_header_timeouts_total 1"), "{metrics}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_by_the_header_read_timeout() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.header_read_timeout = Duration::from_secs(1);
    let gateway = TestGateway::start(config).await;

    let mut socket = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    socket.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let asked = Instant::now();
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, socket.read_to_end(&mut seen))
        .await
        .expect("the idle keep-alive connection is closed")
        .unwrap();
    let took = asked.elapsed();
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
    assert!(took >= Duration::from_millis(900), "kept alive only {took:?}");
}

#[tokio::test]
async fn connections_not_yet_upgraded_count_against_their_own_bound() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.max_pending_connections = 3;
    config.header_read_timeout = Duration::from_secs(2);
    let gateway = TestGateway::start(config).await;
    let upgraded = gateway.client().await;

    // Three half-open connections that never send a byte fill the bound...
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tokio::net::TcpStream::connect(gateway.addr).await.unwrap());
    }
    // ...so, once the gateway has accepted them, the next is refused at once.
    let (status, retry_after) = tokio::time::timeout(WAIT, async {
        loop {
            match Client::connect(&gateway.ws_url(), None).await {
                Ok(_) => tokio::task::yield_now().await,
                other => return refusal(other),
            }
        }
    })
    .await
    .expect("a connection past the pending bound is refused");
    assert_eq!((status, retry_after.as_deref()), (503, Some("5")));

    // The header-read timeout closes the silent ones, and the places are free again.
    for socket in &mut silent {
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, socket.read_to_end(&mut rest))
            .await
            .expect("a silent connection is closed by the header-read timeout")
            .unwrap();
    }
    let _later = connect_when_free(&gateway.ws_url(), None).await;
    drop(upgraded);

    let metrics = gateway.metrics().await;
    let refused = value(&metrics, r#"tidings_gateway_connections_refused_total{reason="pending"}"#);
    assert!(refused >= 1, "{metrics}");
    assert!(metrics.contains("tidings_gateway_header_timeouts_total 3"), "{metrics}");
}

#[tokio::test]
async fn one_user_past_their_cap_gets_429_with_retry_after_and_another_user_connects() {
    let redis = RedisServer::start();
    let mut config = secured_config(&redis.url());
    config.max_connections_per_user = 2;
    let gateway = TestGateway::start(config).await;
    let token = token_for("u1");

    let _first = gateway.client_as("u1").await;
    let mut second = gateway.client_as("u1").await;
    let (status, retry_after) = refusal(Client::connect(&gateway.ws_url(), Some(&token)).await);
    assert_eq!((status, retry_after.as_deref()), (429, Some("30")));

    let mut other = gateway.client_as("u2").await;
    other.subscribe(&["user:u2:notifications"]).await;

    // Closing one of the user's connections gives its place back.
    second.ws.close(None).await.unwrap();
    second.expect_close().await;
    let _again = connect_when_free(&gateway.ws_url(), Some(&token)).await;

    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"tidings_gateway_connections_refused_total{reason="per_user"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_address_past_its_cap_gets_429_with_retry_after() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.limit_loopback = true;
    config.max_connections_per_ip = 2;
    let gateway = TestGateway::start(config).await;

    let first = gateway.client().await;
    let second = gateway.client().await;
    let (status, retry_after) = refusal(Client::connect(&gateway.ws_url(), None).await);
    assert_eq!((status, retry_after.as_deref()), (429, Some("10")));
    // Every TCP connection counts, plain HTTP too.
    let response = reqwest::get(gateway.http_url("/healthz")).await.unwrap();
    assert_eq!(response.status().as_u16(), 429);

    drop((first, second));
    let metrics = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(response) = reqwest::get(gateway.http_url("/metrics")).await
                && response.status().is_success()
            {
                return response.text().await.unwrap();
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the address's places are given back once its connections close");
    let refused = value(&metrics, r#"tidings_gateway_connections_refused_total{reason="per_ip"}"#);
    assert!(refused >= 2, "{metrics}");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_client_that_never_finishes_its_headers() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.header_read_timeout = Duration::from_secs(30);
    config.shutdown_timeout = Duration::from_secs(8);
    let mut gateway = TestGateway::start(config).await;

    let mut halfway = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    halfway.write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    // Connections are accepted in order: once this one is answered, the
    // half-sent one has been accepted too.
    gateway.metrics().await;

    let started = Instant::now();
    gateway.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown waited {took:?} for unfinished headers");
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, halfway.read_to_end(&mut rest))
        .await
        .expect("the half-sent connection is closed")
        .ok();
}

#[tokio::test]
async fn a_request_head_past_32_kib_gets_431() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut socket = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let padding = "x".repeat(40 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: {padding}\r\n\r\n");
    // The gateway may answer and close before it has read everything.
    let _ = socket.write_all(request.as_bytes()).await;
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(WAIT, socket.read_to_end(&mut seen)).await.expect("an answer");
    assert!(seen.starts_with(b"HTTP/1.1 431"), "{}", String::from_utf8_lossy(&seen));
}
