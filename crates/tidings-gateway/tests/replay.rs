//! Replays through the gateway are bounded and fair (docs/gateway.md,
//! "Replays"), over real sockets and a real Redis: a replay longer than a
//! page arrives whole and in order, and a client asking for replay after
//! replay does not hold up anyone else's live events.

mod common;

use std::time::{Duration, Instant};

use common::{Client, TestGateway, WAIT, config};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tidings_gateway::{REPLAY_BURST, REPLAY_PAGE, REPLAY_RATE};
use tidings_testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message;

fn order(n: u64) -> String {
    format!(
        r#"{{"type":"order:status","orderType":"sales","orderId":"o{n}","orderNumber":"SO-2026-{n:06}","oldStatus":"pending","newStatus":"shipped","timestamp":1764000000000,"note":"{}"}}"#,
        "x".repeat(200)
    )
}

/// Publishes `count` orders with plain PUBLISH (the gateway records them)
/// and returns the position of the first, read from a subscriber.
async fn history_of(redis: &RedisServer, gateway: &TestGateway, count: u64) -> serde_json::Value {
    let mut watcher = gateway.subscribed(&["orders"]).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut pipeline = redis::pipe();
    for n in 0..count {
        pipeline.cmd("PUBLISH").arg("ws:orders").arg(order(n)).ignore();
    }
    let () = pipeline.query_async(&mut connection).await.unwrap();
    let first = watcher.next_event().await["position"].clone();
    for _ in 1..count {
        watcher.next_event().await;
    }
    first
}

#[tokio::test]
async fn a_replay_longer_than_a_page_arrives_whole_and_in_order() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let total = 2 * REPLAY_PAGE as u64 + 50;
    let first = history_of(&redis, &gateway, total).await;

    let mut client = gateway.client().await;
    client
        .send_json(json!({"type":"subscribe","channels":["orders"],"since":{"orders": first}}))
        .await;
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["recovered"], json!({"orders": true}), "{subscribed}");
    redis.publish("ws:orders", &order(total));
    for n in 1..=total {
        let event = client.next_event().await;
        assert_eq!(event["data"]["orderId"], format!("o{n}"), "{event}");
    }
}

#[tokio::test]
async fn a_client_repeating_replays_does_not_delay_anothers_live_events() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let first = history_of(&redis, &gateway, 3_000).await;

    // The abuser asks for the whole history again every 5 ms, and reads
    // what it gets so it is never cut off as a slow consumer.
    let abuser = Client::connect(&gateway.ws_url(), None).await.unwrap();
    let (mut asks, mut answers) = abuser.ws.split();
    let ask =
        json!({"type":"subscribe","channels":["orders"],"since":{"orders": first}}).to_string();
    let asking = tokio::spawn(async move {
        loop {
            if asks.send(Message::text(ask.clone())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let reading = tokio::spawn(async move {
        let mut frames = 0u64;
        while let Some(Ok(_)) = answers.next().await {
            frames += 1;
        }
        frames
    });

    // The bystander's live events, each stamped with when it was published.
    let mut bystander = gateway.subscribed(&["inventory"]).await;
    let started = Instant::now();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let publishing = tokio::spawn(async move {
        for n in 0..400u64 {
            let sent = started.elapsed().as_micros();
            let payload = format!(
                r#"{{"type":"inventory:change","productId":"p{n}","action":"adjust","oldQuantity":1,"newQuantity":2,"changeAmount":1,"timestamp":1764000000000,"sentMicros":{sent}}}"#
            );
            let _: u64 = redis::cmd("PUBLISH")
                .arg("ws:inventory")
                .arg(payload)
                .query_async(&mut connection)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let mut delays = Vec::new();
    for n in 0..400u64 {
        let event = tokio::time::timeout(WAIT, bystander.next_event()).await.expect("a live event");
        assert_eq!(event["data"]["productId"], format!("p{n}"), "in order, none lost");
        let sent = event["data"]["sentMicros"].as_u64().unwrap();
        let now = u64::try_from(started.elapsed().as_micros()).unwrap();
        delays.push(now.saturating_sub(sent));
    }
    publishing.await.unwrap();
    let abused_for = started.elapsed().as_secs_f64();
    let throttled = gateway.metrics().await;
    asking.abort();
    delays.sort_unstable();
    let p99 = Duration::from_micros(delays[delays.len() * 99 / 100]);
    let replayed = {
        drop(gateway);
        reading.await.unwrap()
    };
    println!("bystander p99 {p99:?} while the abuser received {replayed} frames");
    assert!(
        replayed > 3_000,
        "the abuser was answered ({replayed} frames): the test proves nothing otherwise"
    );
    // Its replays were held to the documented budget, and counted.
    let allowed = REPLAY_BURST + REPLAY_RATE * abused_for + 4.0 * REPLAY_PAGE as f64;
    assert!((replayed as f64) < allowed, "{replayed} replayed frames in {abused_for:.1} s");
    let throttled_pages = throttled
        .lines()
        .find_map(|line| line.strip_prefix("tidings_gateway_replays_throttled_total "))
        .map(|value| value.parse::<f64>().unwrap());
    assert!(throttled_pages.is_some_and(|pages| pages > 0.0), "not counted in /metrics");
    assert!(p99 < Duration::from_millis(50), "a bystander's live events waited {p99:?} at p99");
}
