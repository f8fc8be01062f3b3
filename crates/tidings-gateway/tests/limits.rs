//! Limits and backpressure: a slow consumer is cut off with 1013 while a
//! fast one on the same channel receives every event; an oversized client
//! frame gets an `error` frame and close 1009; a silent peer is dropped; the
//! connection cap answers 503; and 1,000 concurrent connections all receive.

mod common;

use std::time::Duration;

use common::{Client, Publisher, TestGateway, WAIT, config, padded_event};
use futures_util::future::join_all;
use serde_json::json;
use tidings_testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A client whose socket receive buffer is as small as the kernel allows,
/// so that not reading soon backs up into the gateway.
async fn client_with_small_receive_buffer(url: &str) -> Client {
    let address = url.trim_start_matches("ws://").trim_end_matches("/ws").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address).await.unwrap();
    let request = url.into_client_request().unwrap();
    let (ws, _) =
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await.unwrap();
    Client { ws }
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_with_1013_while_a_fast_one_gets_every_event() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.outbound_buffer_bytes = 64 * 1024;
    // Long enough for the slow client's close frame to wait until the test
    // drains that client below.
    config.close_timeout = Duration::from_secs(20);
    let gateway = TestGateway::start(config).await;

    let mut fast = gateway.subscribed(&["inventory"]).await;
    let mut slow = client_with_small_receive_buffer(&gateway.ws_url()).await;
    slow.subscribe(&["inventory"]).await;

    // 8 MB: more than the slow client's outbox, socket buffers and kernel
    // queues together, so it must fall behind while it does not read.
    const EVENTS: u64 = 2000;
    let mut publisher = Publisher::connect(&redis.url()).await;
    let publishing = tokio::spawn(async move {
        for n in 0..EVENTS {
            publisher.publish("ws:inventory", &padded_event(n, 4096)).await;
        }
    });
    for n in 0..EVENTS {
        let event = fast.next_event().await;
        assert_eq!(event["data"]["productId"], format!("p{n}"), "the fast client misses nothing");
    }
    publishing.await.unwrap();

    // Now the slow client reads: what was already on its way, then the close.
    let mut received = 0;
    let closed = loop {
        match slow.next_or_close().await {
            Ok(_) => received += 1,
            Err(closed) => break closed,
        }
    };
    assert_eq!(closed.code, Some(1013), "{closed:?}");
    assert!(received < EVENTS, "the slow client was cut off, not served everything");

    let metrics = gateway.metrics().await;
    assert!(metrics.contains("tidings_gateway_slow_consumer_disconnects_total 1"), "{metrics}");
}

#[tokio::test]
async fn an_oversized_client_frame_gets_a_too_large_error_and_close_1009() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.client().await;

    let huge = json!({"type":"subscribe","channels":["inventory"],"pad":"x".repeat(70 * 1024)});
    client.send_json(huge).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "too_large", "{error}");
    assert!(error["message"].as_str().unwrap().contains("65536"), "{error}");
    assert_eq!(client.expect_close().await.code, Some(1009));
}

#[tokio::test]
async fn a_frame_just_under_the_limit_is_accepted() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.client().await;
    let big = json!({"type":"ping","pad":"x".repeat(60 * 1024)});
    client.send_json(big).await;
    client.next_of("pong").await;
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_is_dropped_with_1001() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.ping_interval = Duration::from_millis(100);
    config.idle_timeout = Duration::from_millis(300);
    config.close_timeout = Duration::from_millis(100);
    let gateway = TestGateway::start(config).await;

    // Raw TCP: reading bytes here does not answer the gateway's pings.
    let mut socket = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    socket
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, socket.read_to_end(&mut seen))
        .await
        .expect("the gateway closes a silent peer")
        .unwrap();
    assert!(seen.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&seen));
    // A close frame (0x88) carrying code 1001 (0x03 0xE9).
    let close = seen.windows(4).any(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xE9);
    assert!(close, "no close 1001 in {seen:?}");
    let metrics = gateway.metrics().await;
    assert!(metrics.contains("tidings_gateway_idle_disconnects_total 1"), "{metrics}");
}

#[tokio::test]
async fn past_the_connection_cap_upgrades_get_503() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.max_connections = 2;
    let gateway = TestGateway::start(config).await;
    let _first = gateway.client().await;
    let mut second = gateway.client().await;
    match Client::connect(&gateway.ws_url(), None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap());
            assert!(retry_after.is_some_and(|secs| secs.parse::<u64>().is_ok()), "{response:?}");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"tidings_gateway_connections_refused_total{reason="capacity"} 1"#),
        "{metrics}"
    );
    // A place frees up when a connection ends.
    second.ws.close(None).await.unwrap();
    second.expect_close().await;
    // The place is given back as the closed connection's task ends, which
    // may be a moment after the close handshake: retry refusals until then.
    let again = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(client) = Client::connect(&gateway.ws_url(), None).await {
                return client;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(again.is_ok(), "a freed place can be taken again");
}

#[tokio::test]
async fn a_thousand_concurrent_connections_each_receive_every_event() {
    const CLIENTS: usize = 1000;
    // Two sockets per connection in this process (client and server side).
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let wanted = (4 * CLIENTS as u64 + 256).min(hard);
    if soft < wanted {
        rlimit::Resource::NOFILE.set(wanted, hard).unwrap();
    }
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let url = gateway.ws_url();

    let clients = join_all((0..CLIENTS).map(|i| {
        let url = url.clone();
        async move {
            let mut client = Client::connect(&url, None).await.expect("connects");
            let channels: &[&str] =
                if i % 2 == 0 { &["inventory"] } else { &["inventory", "orders"] };
            client.subscribe(channels).await;
            client
        }
    }))
    .await;

    assert_eq!(redis.publish("ws:inventory", &common::inventory_event(1)), 1);
    assert_eq!(redis.publish("ws:inventory", &common::inventory_event(2)), 1);
    let mut clients = clients;
    let received = join_all(clients.iter_mut().map(|client| async move {
        let first = client.next_event().await;
        let second = client.next_event().await;
        (first["data"]["productId"].clone(), second["data"]["productId"].clone())
    }))
    .await;
    assert_eq!(received.len(), CLIENTS);
    assert!(received.iter().all(|pair| pair == &(json!("p1"), json!("p2"))));

    let metrics = gateway.metrics().await;
    assert!(metrics.contains(&format!("tidings_gateway_connections {CLIENTS}")), "{metrics}");
    assert!(
        metrics.contains(&format!(
            r#"tidings_gateway_subscriptions{{channel="orders"}} {}"#,
            CLIENTS / 2
        )),
        "{metrics}"
    );
}
