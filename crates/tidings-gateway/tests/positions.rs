//! Positions and resume through the gateway (docs/positions.md), over real
//! sockets and a real Redis: event frames carry positions, a subscribe with
//! `since` replays exactly what was missed, a gap history cannot cover is
//! reported, and the gateway being killed and restarted, or Redis being
//! killed and restarted, ends up with every event once and in order — and,
//! whenever nobody was recording for a while (the only gateway down, Redis
//! restarting), with the client told since when it may have missed events.

mod common;

use std::time::Duration;

use common::{Client, GatewayProcess, TestGateway, WAIT, config};
use serde_json::json;
use tidings::history::Position;
use tidings::source::{
    Backoff, GatewaySourceConfig, SourceHandle, SourceMessage, SourceState, SourceUpdate,
    spawn_gateway_source,
};
use tidings::{Publisher, PublisherConfig};
use tidings_events::Channel;
use tidings_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

fn order(n: u64) -> String {
    format!(r#"{{"type":"test:seq","n":{n}}}"#)
}

#[tokio::test]
async fn event_frames_carry_increasing_positions() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.subscribed(&["orders"]).await;
    redis.publish("ws:orders", &order(1));
    redis.publish("ws:orders", &order(2));
    let first: Position = client.next_event().await["position"].as_str().unwrap().parse().unwrap();
    let second: Position = client.next_event().await["position"].as_str().unwrap().parse().unwrap();
    assert_eq!(first.epoch, second.epoch);
    assert!(first.id < second.id);
}

#[tokio::test]
async fn a_redis_that_takes_over_half_a_second_to_record_delays_the_event_but_loses_nothing() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.subscribed(&["orders"]).await;

    // PUBLISH and CLIENT PAUSE in one write: Redis runs both before it
    // writes the message to the gateway, so the gateway's recording script
    // waits 1.2 s for its answer (redis-rs alone gives up after 500 ms).
    redis.publish_then_pause_writes("ws:orders", &order(1), Duration::from_millis(1200));

    // The very next frame is the event: no status frame, no resubscribe.
    let frame = client.next().await;
    assert_eq!(frame["type"], "event", "{frame}");
    assert_eq!(frame["data"]["n"], 1);
    assert!(frame["position"].is_string(), "recorded once Redis answered: {frame}");
}

#[tokio::test]
async fn a_subscribe_with_since_replays_what_was_missed_once_then_goes_live() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut before = gateway.subscribed(&["orders"]).await;
    redis.publish("ws:orders", &order(0));
    let kept = before.next_event().await["position"].clone();
    drop(before);

    // Published while no client is connected: the gateway records them.
    redis.publish("ws:orders", &order(1));
    redis.publish("ws:orders", &order(2));
    let mut after = gateway.client().await;
    after
        .send_json(json!({"type":"subscribe","channels":["orders"],"since":{"orders": kept}}))
        .await;
    let subscribed = after.next_of("subscribed").await;
    assert_eq!(subscribed["recovered"], json!({"orders": true}), "{subscribed}");
    redis.publish("ws:orders", &order(3));
    let mut got = Vec::new();
    for _ in 1..=3 {
        got.push(after.next_event().await["data"]["n"].as_u64().unwrap());
    }
    assert_eq!(got, [1, 2, 3]);
}

#[tokio::test]
async fn a_position_history_no_longer_covers_is_reported_as_not_recovered() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.subscribed(&["orders"]).await;
    for n in 0..5 {
        redis.publish("ws:orders", &order(n));
    }
    let oldest = client.next_event().await["position"].clone();
    for _ in 1..5 {
        client.next_event().await;
    }
    redis.cli(&["XTRIM", "tidings:history:{ws:orders}", "MAXLEN", "2"]);

    let mut resumed = gateway.client().await;
    resumed
        .send_json(json!({"type":"subscribe","channels":["orders"],"since":{"orders": oldest}}))
        .await;
    let subscribed = resumed.next_of("subscribed").await;
    assert_eq!(subscribed["recovered"], json!({"orders": false}));
    // What history still has follows.
    assert_eq!(resumed.next_event().await["data"]["n"], 3);
    assert_eq!(resumed.next_event().await["data"]["n"], 4);
}

#[tokio::test]
async fn a_bad_since_position_is_an_error_frame_and_the_channel_starts_live() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.client().await;
    client
        .send_json(json!({"type":"subscribe","channels":["orders"],"since":{"orders":"yesterday"}}))
        .await;
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["recovered"], json!({"orders": false}));
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "bad_request");
    assert_eq!(error["channel"], "orders");
    redis.publish("ws:orders", &order(9));
    assert_eq!(client.next_event().await["data"]["n"], 9);
}

#[tokio::test]
async fn a_position_in_the_future_is_not_recovered_and_hides_no_live_event() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut before = gateway.subscribed(&["orders"]).await;
    redis.publish("ws:orders", &order(0));
    let real: Position = before.next_event().await["position"].as_str().unwrap().parse().unwrap();
    for (n, future) in [
        (1, format!("{}:{}-0", real.epoch, real.id.millis + 3_600_000)),
        (2, format!("{}:18446744073709551615-18446744073709551615", real.epoch)),
    ] {
        let mut client = gateway.client().await;
        client
            .send_json(json!({"type":"subscribe","channels":["orders"],"since":{"orders": future}}))
            .await;
        let subscribed = client.next_of("subscribed").await;
        assert_eq!(subscribed["recovered"], json!({"orders": false}), "{future}: {subscribed}");
        redis.publish("ws:orders", &order(n));
        assert_eq!(client.next_event().await["data"]["n"], n, "{future} hid a live event");
        before.next_event().await;
    }
}

#[tokio::test]
async fn made_up_positions_are_logged_once_per_ten_seconds_not_once_each() {
    let redis = RedisServer::start();
    let mut gateway =
        GatewayProcess::start(&["--listen", "127.0.0.1:0", "--redis", &redis.url()], &[]);
    let url = format!("ws://{}/ws", gateway.addr);
    let health = format!("http://{}/healthz", gateway.addr);
    let health = &health;
    tidings_testkit::retry("the gateway live on Redis", WAIT, || async move {
        let status = reqwest::get(health).await.ok()?.status();
        status.is_success().then_some(())
    })
    .await;
    let made_up =
        ["yesterday", "e1:18446744073709551615-18446744073709551615", "e1:99999999999999-0"];
    for (n, since) in made_up.iter().cycle().take(9).enumerate() {
        let mut client = Client::connect(&url, None).await.unwrap();
        client
            .send_json(json!({"type":"subscribe","channels":["orders"],"since":{"orders": since}}))
            .await;
        let subscribed = client.next_of("subscribed").await;
        assert_eq!(subscribed["recovered"], json!({"orders": false}), "{n}: {since}");
    }
    gateway.terminate();
    let (_, log) = gateway.exited(WAIT).await;
    let lines = log.lines().filter(|line| line.contains("no history can hold")).count();
    assert_eq!(lines, 1, "nine made-up positions, one line within 10 s:\n{log}");
}

#[tokio::test]
async fn two_gateways_give_one_plain_publish_the_same_position() {
    let redis = RedisServer::start();
    let first = TestGateway::start(config(&redis.url())).await;
    let second = TestGateway::start(config(&redis.url())).await;
    let mut a = first.subscribed(&["system"]).await;
    let mut b = second.subscribed(&["system"]).await;
    redis.publish("ws:system", &order(1));
    assert_eq!(a.next_event().await["position"], b.next_event().await["position"]);
    assert_eq!(redis.cli(&["XLEN", "tidings:history:{ws:system}"]), "1");
}

/// A resuming gateway client, as the desktop app uses it.
fn resuming_client(url: String) -> SourceHandle {
    let config = GatewaySourceConfig {
        backoff: Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(300) },
        ..GatewaySourceConfig::new(url, None, vec![Channel::Orders])
    };
    spawn_gateway_source(config, CancellationToken::new(), 8192)
}

async fn live(source: &mut SourceHandle) {
    loop {
        let update = tokio::time::timeout(WAIT, source.updates.recv()).await.unwrap().unwrap();
        if update == SourceUpdate::State(SourceState::Live) {
            return;
        }
    }
}

/// Reads `total` messages, failing on a `Missed` report.
async fn collect(source: &mut SourceHandle, total: usize) -> Vec<u64> {
    let (got, told) = collect_told(source, total, false).await;
    assert!(!told);
    got
}

/// Reads `total` messages; a `Missed` report fails the test unless
/// `may_be_told`; returns the messages and whether one came.
async fn collect_told(
    source: &mut SourceHandle,
    total: usize,
    may_be_told: bool,
) -> (Vec<u64>, bool) {
    let mut got = Vec::new();
    let mut told = false;
    while got.len() < total {
        let update = tokio::time::timeout(WAIT * 3, source.updates.recv())
            .await
            .unwrap_or_else(|_| panic!("stalled after {} events: {got:?}", got.len()))
            .unwrap();
        match update {
            SourceUpdate::Message(SourceMessage { payload, .. }) => {
                let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                got.push(value["n"].as_u64().unwrap());
            }
            SourceUpdate::Missed { channel, since } if !may_be_told => {
                panic!("missed {channel} since {since:?}")
            }
            SourceUpdate::Missed { .. } => told = true,
            SourceUpdate::State(_) | SourceUpdate::Position { .. } => {}
            SourceUpdate::Skipped { .. } => panic!("nothing here is oversized: {update:?}"),
        }
    }
    (got, told)
}

/// Publishes `total` events through this project's publisher in the
/// background, retrying a failed publish until Redis takes it (a retry is the
/// same event). Says when a third are out, so the test can inject its fault
/// while publishing goes on; returns how many events no gateway heard live.
fn publish_continuously(
    redis_url: String,
    total: u64,
) -> (tokio::sync::oneshot::Receiver<()>, tokio::task::JoinHandle<usize>) {
    let (third_tx, third) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let publisher = Publisher::new(PublisherConfig {
            timeout: Duration::from_millis(200),
            ..PublisherConfig::new(redis_url)
        })
        .unwrap();
        let mut third_tx = Some(third_tx);
        let mut unheard = 0;
        for n in 0..total {
            if n == total / 3
                && let Some(tell) = third_tx.take()
            {
                let _ = tell.send(());
            }
            let (publisher, payload) = (&publisher, &order(n));
            let receivers = tidings_testkit::retry("publishing an order", WAIT, || async move {
                publisher.publish_raw(&Channel::Orders, payload).await.receivers
            })
            .await;
            unheard += usize::from(receivers == 0);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        unheard
    });
    (third, task)
}

/// A resuming client on a gateway that is stopped and started again on the
/// same address while events are published; `another` keeps a second
/// gateway recording meanwhile. Returns what the client got and whether it
/// was told it may have missed events.
async fn gateway_killed_and_restarted_mid_stream(another: bool) -> (Vec<u64>, bool) {
    let redis = RedisServer::start();
    let _other = if another { Some(TestGateway::start(config(&redis.url())).await) } else { None };
    let mut gateway = TestGateway::start(config(&redis.url())).await;
    let addr = gateway.addr;
    let mut source = resuming_client(gateway.ws_url());
    live(&mut source).await;

    const TOTAL: u64 = 400;
    let (third, publishing) = publish_continuously(redis.url(), TOTAL);
    third.await.unwrap();
    gateway.stop().await;
    // Published meanwhile, heard by no gateway on this address: recorded by
    // the publisher, delivered by the client's resume through the new one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = config(&redis.url());
    again.listen = addr;
    let _restarted = TestGateway::start(again).await;
    let unheard = publishing.await.unwrap();
    assert!(
        another || unheard > 0,
        "nothing was published while the gateway was down; the test proves nothing"
    );
    let (got, told) = collect_told(&mut source, TOTAL as usize, !another).await;
    assert_eq!(got, (0..TOTAL).collect::<Vec<_>>(), "every event once, in order");
    (got, told)
}

#[tokio::test]
async fn the_only_gateway_killed_and_restarted_mid_stream_loses_and_doubles_nothing_and_tells() {
    let (_, told) = gateway_killed_and_restarted_mid_stream(false).await;
    assert!(told, "nobody recorded while the only gateway was down: the client must be told");
}

#[tokio::test]
async fn a_gateway_killed_and_restarted_while_another_records_resumes_exactly_and_untold() {
    let (_, told) = gateway_killed_and_restarted_mid_stream(true).await;
    assert!(!told);
}

#[tokio::test]
async fn plain_publishes_while_the_only_gateway_was_down_resume_as_not_recovered() {
    let redis = RedisServer::start();
    let mut gateway = TestGateway::start(config(&redis.url())).await;
    let addr = gateway.addr;
    let mut before = gateway.subscribed(&["orders"]).await;
    redis.publish("ws:orders", &order(0));
    let kept = before.next_event().await["position"].clone();
    drop(before);
    gateway.stop().await;
    // The backend publishes as it does, with plain PUBLISH; nobody records.
    for n in 1..=5 {
        assert_eq!(redis.publish("ws:orders", &order(n)), 0);
    }
    let mut again = config(&redis.url());
    again.listen = addr;
    let restarted = TestGateway::start(again).await;
    let mut after = restarted.client().await;
    after
        .send_json(json!({"type":"subscribe","channels":["orders"],"since":{"orders": kept}}))
        .await;
    let subscribed = after.next_of("subscribed").await;
    assert_eq!(subscribed["recovered"], json!({"orders": false}), "{subscribed}");
    redis.publish("ws:orders", &order(6));
    assert_eq!(after.next_event().await["data"]["n"], 6, "live events still follow");
}

#[tokio::test]
async fn redis_killed_and_restarted_mid_stream_reaches_clients_once_each_in_order_and_tells() {
    let mut redis = RedisServer::start_persistent();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut source = resuming_client(gateway.ws_url());
    live(&mut source).await;

    const TOTAL: u64 = 400;
    let (third, publishing) = publish_continuously(redis.url(), TOTAL);
    third.await.unwrap();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    publishing.await.unwrap();

    let (got, told) = collect_told(&mut source, TOTAL as usize, true).await;
    assert_eq!(got, (0..TOTAL).collect::<Vec<_>>());
    assert!(told, "a crash may have lost plain PUBLISHes nobody could record: it must be told");
}

#[tokio::test]
async fn history_lost_with_redis_reaches_the_client_as_missed() {
    let mut redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut source = resuming_client(gateway.ws_url());
    live(&mut source).await;
    redis.publish("ws:orders", &order(1));
    assert_eq!(collect(&mut source, 1).await, [1]);

    redis.restart();
    let missed = loop {
        let update = tokio::time::timeout(WAIT * 3, source.updates.recv()).await.unwrap().unwrap();
        if let SourceUpdate::Missed { channel, .. } = update {
            break channel;
        }
    };
    assert_eq!(missed, "ws:orders");
}
