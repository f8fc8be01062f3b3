//! The Redis source with history on (docs/positions.md), against a real
//! redis-server: messages get positions, a source resumes from a kept
//! position, continuous publishing across a Redis restart arrives exactly
//! once and in order, and history lost with Redis is reported, not hidden.

use std::collections::BTreeMap;
use std::time::Duration;

use tidings::history::{HistoryConfig, Position};
use tidings::source::{
    Backoff, RedisSourceConfig, SourceHandle, SourceMessage, SourceState, SourceUpdate,
    Subscription, spawn_redis_source,
};
use tidings::{Publisher, PublisherConfig};
use tidings_events::Channel;
use tidings_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

fn recording(url: String, resume: BTreeMap<String, String>) -> RedisSourceConfig {
    RedisSourceConfig {
        subscriptions: vec![Subscription::all()],
        backoff: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) },
        history: Some(HistoryConfig::default()),
        resume,
        ..RedisSourceConfig::new(url)
    }
}

async fn next(handle: &mut SourceHandle) -> SourceUpdate {
    tokio::time::timeout(WAIT, handle.updates.recv())
        .await
        .expect("an update within 10 s")
        .expect("the source is still running")
}

async fn next_message(handle: &mut SourceHandle) -> SourceMessage {
    loop {
        match next(handle).await {
            SourceUpdate::Message(message) => return message,
            SourceUpdate::State(_) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn live(handle: &mut SourceHandle) {
    loop {
        if let SourceUpdate::State(SourceState::Live) = next(handle).await {
            return;
        }
    }
}

fn order(n: u32) -> String {
    format!(r#"{{"type":"test:seq","n":{n}}}"#)
}

fn seq(message: &SourceMessage) -> u64 {
    let value: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    value["n"].as_u64().unwrap()
}

fn position(message: &SourceMessage) -> Position {
    message.position.as_deref().expect("a position").parse().expect("a valid position")
}

#[tokio::test]
async fn plain_publishes_get_increasing_positions() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut source = spawn_redis_source(recording(server.url(), BTreeMap::new()), cancel, 64);
    live(&mut source).await;

    for n in 0..3 {
        server.publish("ws:orders", &order(n));
    }
    let mut positions = Vec::new();
    for _ in 0..3 {
        positions.push(position(&next_message(&mut source).await));
    }
    assert!(positions.windows(2).all(|pair| pair[0].id < pair[1].id), "{positions:?}");
    assert!(positions.iter().all(|p| p.epoch == positions[0].epoch));
}

#[tokio::test]
async fn two_recorders_give_a_plain_publish_the_same_position_and_store_it_once() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut first = spawn_redis_source(recording(server.url(), BTreeMap::new()), cancel.clone(), 8);
    let mut second = spawn_redis_source(recording(server.url(), BTreeMap::new()), cancel, 8);
    live(&mut first).await;
    live(&mut second).await;

    assert_eq!(server.publish("ws:system", &order(1)), 2);
    let a = next_message(&mut first).await;
    let b = next_message(&mut second).await;
    assert_eq!(a.position, b.position);
    assert_eq!(server.cli(&["XLEN", "tidings:history:{ws:system}"]), "1");
}

#[tokio::test]
async fn a_source_resumes_from_a_kept_position_and_gets_each_missed_event_once() {
    let server = RedisServer::start();
    let publisher = Publisher::new(PublisherConfig::new(server.url())).unwrap();
    let orders = Channel::Orders;

    let cancel = CancellationToken::new();
    let mut before =
        spawn_redis_source(recording(server.url(), BTreeMap::new()), cancel.clone(), 64);
    live(&mut before).await;
    for n in 0..3 {
        publisher.publish_raw(&orders, &order(n)).await.result().unwrap();
    }
    let mut kept = None;
    for _ in 0..3 {
        kept = next_message(&mut before).await.position;
    }
    cancel.cancel();
    before.finished().await;

    for n in 3..6 {
        publisher.publish_raw(&orders, &order(n)).await.result().unwrap();
    }
    let resume = BTreeMap::from([("ws:orders".to_owned(), kept.unwrap())]);
    let mut after =
        spawn_redis_source(recording(server.url(), resume), CancellationToken::new(), 64);
    let mut got = Vec::new();
    for _ in 3..6 {
        got.push(seq(&next_message(&mut after).await));
    }
    publisher.publish_raw(&orders, &order(6)).await.result().unwrap();
    got.push(seq(&next_message(&mut after).await));
    assert_eq!(got, [3, 4, 5, 6]);
}

#[tokio::test]
async fn publishing_continuously_across_a_redis_restart_arrives_once_each_and_in_order() {
    let mut server = RedisServer::start_persistent();
    let url = server.url();
    let cancel = CancellationToken::new();
    let mut config = recording(url.clone(), BTreeMap::new());
    // Slow enough to come back that events are published while it is away.
    config.backoff =
        Backoff { initial: Duration::from_millis(300), max: Duration::from_millis(300) };
    let mut source = spawn_redis_source(config, cancel, 8192);
    live(&mut source).await;

    const TOTAL: u32 = 600;
    let (cut_tx, mut cut) = tokio::sync::mpsc::channel(4);
    let publishing = tokio::spawn(async move {
        let publisher = Publisher::new(PublisherConfig {
            timeout: Duration::from_millis(200),
            ..PublisherConfig::new(url)
        })
        .unwrap();
        let mut unheard = 0;
        for n in 0..TOTAL {
            if n % (TOTAL / 4) == TOTAL / 8 {
                let _ = cut_tx.send(n).await;
            }
            // A publish that failed is retried until Redis takes it, as a
            // careful backend would; a retry is the same event.
            loop {
                let outcome = publisher.publish_raw(&Channel::Orders, &order(n)).await;
                if let Some(receivers) = outcome.receivers {
                    unheard += usize::from(receivers == 0);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        unheard
    });
    // First a Redis crash and restart; then the subscriber's connection is
    // cut three times while Redis stays up.
    let mut cuts = 0;
    while let Some(_n) = cut.recv().await {
        if cuts == 0 {
            server.kill();
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.restart();
        } else {
            server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        }
        cuts += 1;
    }
    let unheard = publishing.await.unwrap();
    assert!(
        unheard > 0,
        "no event was published while the source was away; the test proves nothing"
    );

    let mut got = Vec::new();
    while got.len() < TOTAL as usize {
        got.push(seq(&next_message(&mut source).await));
    }
    let expected: Vec<u64> = (0..u64::from(TOTAL)).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn history_lost_with_redis_is_reported_as_missed_since_the_last_event() {
    let mut server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut source = spawn_redis_source(recording(server.url(), BTreeMap::new()), cancel, 64);
    live(&mut source).await;
    server.publish("ws:finance", &order(1));
    let last = position(&next_message(&mut source).await);

    server.restart();
    let missed = loop {
        match next(&mut source).await {
            SourceUpdate::Missed { channel, since } => break (channel, since),
            SourceUpdate::State(SourceState::Live) => {
                panic!("live again without reporting the gap")
            }
            _ => {}
        }
    };
    assert_eq!(missed, ("ws:finance".to_owned(), Some(last.recorded_at() as i64)));
    live(&mut source).await;
    server.publish("ws:finance", &order(2));
    assert_eq!(seq(&next_message(&mut source).await), 2);
}

#[tokio::test]
async fn a_redis_that_takes_over_half_a_second_to_record_keeps_the_source_live_and_loses_nothing() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut source = spawn_redis_source(recording(server.url(), BTreeMap::new()), cancel, 64);
    live(&mut source).await;

    // PUBLISH and CLIENT PAUSE in one write: Redis runs both before it
    // writes the message to the source, so the source's recording script
    // arrives while writes are paused and waits 1.2 s for its answer.
    // (redis-rs on its own gives up on an answer after 500 ms.)
    server.publish_then_pause_writes("ws:orders", &order(1), Duration::from_millis(1200));

    let message = loop {
        match next(&mut source).await {
            SourceUpdate::Message(message) => break message,
            SourceUpdate::State(SourceState::Live) => {}
            other => panic!("the source must stay live while Redis is slow, got {other:?}"),
        }
    };
    assert_eq!(seq(&message), 1);
    assert!(message.position.is_some(), "recorded once Redis answered");
}
