//! The Redis source with history on (docs/positions.md), against a real
//! redis-server, with plain `PUBLISH` as the backend sends: one recorder
//! appends each event however many sources run, sources learn their
//! positions and resume from them exactly once, and every period nobody was
//! recording (the app closed with no gateway, Redis restarted or emptied) is
//! reported as possibly missed, never hidden.

use std::collections::BTreeMap;
use std::time::Duration;

use tidings::history::{HistoryConfig, Position};
use tidings::recorder::{Duty, RecorderConfig, run_recorder};
use tidings::source::{
    Backoff, RedisSourceConfig, SourceHandle, SourceMessage, SourceState, SourceUpdate,
    Subscription, spawn_redis_source,
};
use tidings::{Publisher, PublisherConfig};
use tidings_events::Channel;
use tidings_testkit::{RedisServer, eventually};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

fn backoff() -> Backoff {
    Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) }
}

fn with_history(url: String, resume: BTreeMap<String, String>) -> RedisSourceConfig {
    RedisSourceConfig {
        subscriptions: vec![Subscription::Channel(Channel::Orders)],
        backoff: backoff(),
        history: Some(HistoryConfig::default()),
        resume,
        ..RedisSourceConfig::new(url)
    }
}

/// An always-on recorder, as a gateway runs, until `cancel`.
fn recorder_up_all_along(url: String, cancel: CancellationToken) {
    let config = RecorderConfig {
        url,
        history: Some(HistoryConfig::default()),
        duty: Duty::Always,
        backoff: backoff(),
    };
    tokio::spawn(run_recorder(config, |_| {}, cancel));
}

async fn duty_held(server: &RedisServer) {
    eventually("a recorder holding the duty", WAIT, || server.recording_duty_holder().is_some())
        .await;
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
            SourceUpdate::State(_) | SourceUpdate::Position { .. } => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// The next position the source reports (skipping messages and states).
async fn next_position(handle: &mut SourceHandle) -> Position {
    loop {
        match next(handle).await {
            SourceUpdate::Position { position, .. } => return position.parse().unwrap(),
            SourceUpdate::Missed { channel, .. } => panic!("missed {channel}"),
            _ => {}
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

fn evalsha_calls(server: &RedisServer) -> u64 {
    let stats = server.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test]
async fn five_sources_have_each_plain_publish_appended_once_by_one_recorder() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut sources: Vec<_> = (0..5)
        .map(|_| {
            spawn_redis_source(with_history(server.url(), BTreeMap::new()), cancel.clone(), 64)
        })
        .collect();
    for source in &mut sources {
        live(source).await;
    }
    duty_held(&server).await;
    let scripts_before = evalsha_calls(&server);
    for n in 0..20 {
        assert_eq!(server.publish("ws:orders", &order(n)), 6, "five sources and the recorder");
    }
    let mut located = Vec::new();
    for source in &mut sources {
        for n in 0..20u64 {
            assert_eq!(seq(&next_message(source).await), n);
        }
        located.push(next_position(source).await);
    }
    assert_eq!(server.cli(&["XLEN", "tidings:history:{ws:orders}"]), "20");
    // 20 appends by the one holder, plus its proofs (four a second) and
    // claims: nowhere near the 100 that five recording sources would run.
    let scripts = evalsha_calls(&server) - scripts_before;
    assert!(scripts < 20 + 30, "{scripts} script calls for 20 events");
    let last = located.last().cloned().unwrap();
    assert!(located.iter().all(|position| *position == last), "{located:?}");
}

#[tokio::test]
async fn with_a_recorder_up_all_along_a_source_resumes_from_its_position_exactly_once() {
    let server = RedisServer::start();
    let recording = CancellationToken::new();
    recorder_up_all_along(server.url(), recording.clone());
    duty_held(&server).await;

    let cancel = CancellationToken::new();
    let mut before =
        spawn_redis_source(with_history(server.url(), BTreeMap::new()), cancel.clone(), 64);
    live(&mut before).await;
    for n in 0..3 {
        server.publish("ws:orders", &order(n));
    }
    for n in 0..3 {
        assert_eq!(seq(&next_message(&mut before).await), n);
    }
    let kept = next_position(&mut before).await;
    cancel.cancel();
    before.finished().await;

    for n in 3..6 {
        server.publish("ws:orders", &order(n));
    }
    let resume = BTreeMap::from([("ws:orders".to_owned(), kept.to_string())]);
    let mut after =
        spawn_redis_source(with_history(server.url(), resume), CancellationToken::new(), 64);
    let mut got = Vec::new();
    loop {
        match next(&mut after).await {
            SourceUpdate::Message(message) => got.push(seq(&message)),
            SourceUpdate::Missed { channel, since } => panic!("missed {channel} since {since:?}"),
            SourceUpdate::State(SourceState::Live) => break,
            _ => {}
        }
    }
    server.publish("ws:orders", &order(6));
    got.push(seq(&next_message(&mut after).await));
    assert_eq!(got, [3, 4, 5, 6]);
    recording.cancel();
}

#[tokio::test]
async fn a_source_closed_while_nobody_recorded_is_told_since_when_events_may_be_missing() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut before =
        spawn_redis_source(with_history(server.url(), BTreeMap::new()), cancel.clone(), 64);
    live(&mut before).await;
    duty_held(&server).await;
    server.publish("ws:orders", &order(1));
    assert_eq!(seq(&next_message(&mut before).await), 1);
    let kept = next_position(&mut before).await;
    // The app closes (its standby recorder gives the duty back); the
    // backend goes on publishing, and nobody records.
    cancel.cancel();
    before.finished().await;
    assert_eq!(server.recording_duty_holder(), None, "the duty was given back");
    for n in 2..5 {
        assert_eq!(server.publish("ws:orders", &order(n)), 0);
    }

    let resume = BTreeMap::from([("ws:orders".to_owned(), kept.to_string())]);
    let mut after =
        spawn_redis_source(with_history(server.url(), resume), CancellationToken::new(), 64);
    let missed = loop {
        match next(&mut after).await {
            SourceUpdate::Missed { channel, since } => break (channel, since),
            SourceUpdate::State(SourceState::Live) => panic!("live without reporting the gap"),
            SourceUpdate::Message(message) => panic!("replayed {message:?} from nowhere"),
            _ => {}
        }
    };
    assert_eq!(missed, ("ws:orders".to_owned(), Some(kept.recorded_at() as i64)));
    live(&mut after).await;
    server.publish("ws:orders", &order(5));
    assert_eq!(seq(&next_message(&mut after).await), 5);
}

#[tokio::test]
async fn a_sources_cut_connection_resumes_exactly_once_while_a_recorder_stays_up() {
    let server = RedisServer::start();
    let recording = CancellationToken::new();
    recorder_up_all_along(server.url(), recording.clone());
    duty_held(&server).await;
    let mut config = with_history(server.url(), BTreeMap::new());
    // Slow enough to come back that events are published while it is away.
    config.backoff =
        Backoff { initial: Duration::from_millis(300), max: Duration::from_millis(300) };
    let mut source = spawn_redis_source(config, CancellationToken::new(), 8192);
    live(&mut source).await;

    const TOTAL: u32 = 400;
    let mut unheard = 0;
    for n in 0..TOTAL {
        if n % 100 == 50 {
            assert_eq!(server.kill_channel_subscribers(), 1, "the source's connection");
        }
        unheard += usize::from(server.publish("ws:orders", &order(n)) < 2);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        unheard > 0,
        "nothing was published while the source was away; the test proves nothing"
    );
    let mut got = Vec::new();
    while got.len() < TOTAL as usize {
        match next(&mut source).await {
            SourceUpdate::Message(message) => got.push(seq(&message)),
            SourceUpdate::Missed { channel, since } => panic!("missed {channel} since {since:?}"),
            _ => {}
        }
    }
    let expected: Vec<u64> = (0..u64::from(TOTAL)).collect();
    assert_eq!(got, expected);
    recording.cancel();
}

#[tokio::test]
async fn publishing_across_a_redis_crash_arrives_once_each_in_order_and_the_crash_is_told() {
    let mut server = RedisServer::start_persistent();
    let url = server.url();
    let mut config = with_history(url.clone(), BTreeMap::new());
    config.backoff =
        Backoff { initial: Duration::from_millis(300), max: Duration::from_millis(300) };
    let mut source = spawn_redis_source(config, CancellationToken::new(), 8192);
    live(&mut source).await;
    duty_held(&server).await;

    const TOTAL: u32 = 300;
    let (cut_tx, mut cut) = tokio::sync::mpsc::channel(1);
    let publishing = tokio::spawn(async move {
        let publisher = Publisher::new(PublisherConfig {
            timeout: Duration::from_millis(200),
            ..PublisherConfig::new(url)
        })
        .unwrap();
        for n in 0..TOTAL {
            if n == TOTAL / 3 {
                let _ = cut_tx.send(()).await;
            }
            // Recorded by the publish itself; a publish that failed is
            // retried until Redis takes it, as a careful backend would.
            while !publisher.publish_raw(&Channel::Orders, &order(n)).await.is_published() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    cut.recv().await.unwrap();
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();
    publishing.await.unwrap();

    let mut got = Vec::new();
    let mut told = false;
    while got.len() < TOTAL as usize {
        match next(&mut source).await {
            SourceUpdate::Message(message) => got.push(seq(&message)),
            SourceUpdate::Missed { .. } => told = true,
            _ => {}
        }
    }
    let expected: Vec<u64> = (0..u64::from(TOTAL)).collect();
    assert_eq!(got, expected, "every event once, in order");
    assert!(told, "after a crash nobody can prove what plain PUBLISHes were lost: it must be told");
}

#[tokio::test]
async fn history_lost_with_redis_is_reported_as_missed_since_the_last_position() {
    let mut server = RedisServer::start();
    let mut source = spawn_redis_source(
        with_history(server.url(), BTreeMap::new()),
        CancellationToken::new(),
        64,
    );
    live(&mut source).await;
    duty_held(&server).await;
    server.publish("ws:orders", &order(1));
    assert_eq!(seq(&next_message(&mut source).await), 1);
    let last = next_position(&mut source).await;

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
    assert_eq!(missed, ("ws:orders".to_owned(), Some(last.recorded_at() as i64)));
    live(&mut source).await;
    server.publish("ws:orders", &order(2));
    assert_eq!(seq(&next_message(&mut source).await), 2);
}

#[tokio::test]
async fn a_redis_that_takes_over_half_a_second_to_record_keeps_the_source_live_and_loses_nothing() {
    let server = RedisServer::start();
    let mut source = spawn_redis_source(
        with_history(server.url(), BTreeMap::new()),
        CancellationToken::new(),
        64,
    );
    live(&mut source).await;
    duty_held(&server).await;

    // PUBLISH and CLIENT PAUSE in one write: Redis runs both before it
    // writes the message out, so the recorder's append arrives while writes
    // are paused and waits 1.2 s for its answer (redis-rs on its own gives
    // up on an answer after 500 ms).
    server.publish_then_pause_writes("ws:orders", &order(1), Duration::from_millis(1200));

    let message = loop {
        match next(&mut source).await {
            SourceUpdate::Message(message) => break message,
            SourceUpdate::State(SourceState::Live) => {}
            other => panic!("the source must stay live while Redis is slow, got {other:?}"),
        }
    };
    assert_eq!(seq(&message), 1);
    let SourceUpdate::Position { position, .. } = next(&mut source).await else {
        panic!("the source must stay live while Redis is slow, and locate the event")
    };
    assert!(!position.is_empty(), "recorded once Redis answered, and located");
}
