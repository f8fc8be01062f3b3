//! The pipeline never waits on the outside world (issue 17, item 1): with a
//! notification daemon that never answers, and with a history writer that
//! is stalled, the feeds still update within 100 ms of each `PUBLISH`; and
//! an event after a quiet moment goes to the window at once.
//!
//! The hung daemon is the `tidings-notify` sink with `never_answer` on a
//! private D-Bus; notify-rust reads its bus from the environment, so that
//! desk runs in a child process (see `tidings_notify::testing`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{App, WAIT, settings, start, start_with};
use tidings_desk::Desk;
use tidings_desk::config::DeskConfig;
use tidings_desk::ipc::{ConnectionState, FeedItem, HistoryQuery, Profile, UiBatch};
use tidings_notify::NativeNotifier;
use tidings_notify::sink::SinkOptions;
use tidings_notify::testing::{self, NotificationSink, PrivateSessionBus, TestingError};
use tidings_testkit::RedisServer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What "at once" means here: the documented bound.
const PROMPT: Duration = Duration::from_millis(100);

fn approval(n: u32) -> String {
    format!(
        r#"{{"type":"approval:request","resourceType":"refund","resourceId":"r{n}","resourceNumber":"RF-{n:06}","requesterId":"u2","requesterName":"R","timestamp":1764000000000}}"#
    )
}

/// Waits for the next batch holding items; the items.
async fn next_items(batches: &mut mpsc::Receiver<UiBatch>) -> Vec<FeedItem> {
    loop {
        let batch = tokio::time::timeout(WAIT, batches.recv()).await.unwrap().unwrap();
        if !batch.items.is_empty() {
            return batch.items;
        }
    }
}

/// Publishes `count` events one at a time, each after the one before it
/// reached a batch, and returns how long each took from `PUBLISH` to batch.
async fn latencies(
    redis: &RedisServer,
    batches: &mut mpsc::Receiver<UiBatch>,
    channel: &str,
    event: impl Fn(u32) -> String,
    count: u32,
) -> Vec<Duration> {
    let mut took = Vec::new();
    for n in 0..count {
        let published = Instant::now();
        redis.publish(channel, &event(n));
        next_items(batches).await;
        took.push(published.elapsed());
    }
    took.sort();
    took
}

const HUNG: &str = "with_a_notification_daemon_that_never_answers_feeds_still_update_within_100_ms";

fn desk_with_a_hung_daemon() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        let config = DeskConfig {
            settings: settings(&redis, Profile::Approver),
            config_path: dir.path().join("settings.toml"),
            data_dir: dir.path().to_path_buf(),
            config_error: None,
        };
        let (desk, mut batches) =
            Desk::start(config, Arc::new(notifier), CancellationToken::new()).unwrap();
        loop {
            let batch = tokio::time::timeout(WAIT, batches.recv()).await.unwrap().unwrap();
            if batch.status.is_some_and(|s| s.connection == ConnectionState::Live) {
                break;
            }
        }
        // Every one of these is a critical notification the daemon is asked
        // to show and never answers.
        let took = latencies(&redis, &mut batches, "ws:approvals", approval, 30).await;
        println!("PUBLISH → UiBatch with a hung daemon: {took:?}");
        assert!(took.iter().all(|t| *t < PROMPT), "feeds waited for the daemon: {took:?}");
        desk.shutdown().await;
    });
}

#[test]
fn with_a_notification_daemon_that_never_answers_feeds_still_update_within_100_ms() {
    testing::child_part(HUNG, desk_with_a_hung_daemon);
    let bus = match PrivateSessionBus::start() {
        Ok(bus) => bus,
        Err(error @ TestingError::DbusDaemonMissing) => {
            eprintln!("SKIPPED {HUNG}: {error}");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    let options = SinkOptions { never_answer: true, ..SinkOptions::default() };
    let sink = NotificationSink::start_with(&bus, options).expect("the notification sink starts");

    let child = testing::run_child_part(HUNG, &bus).unwrap();

    // The daemon really was asked (and never answered).
    sink.wait_for_notify(WAIT, |call| call.summary == "Approval requested").unwrap();
    println!("{}", child.stdout);
}

#[tokio::test]
async fn a_stalled_history_writer_does_not_delay_the_feeds() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    // The writer sleeps 3 s, as on a disk busy with a large write.
    app.desk.stall_history_for_test(Duration::from_secs(3)).await.unwrap();
    let took = latencies(&redis, &mut app.batches, "ws:orders", common::order, 20).await;
    assert!(took.iter().all(|t| *t < PROMPT), "feeds waited for the history writer: {took:?}");
    // Once it is done, history has every one of them.
    let query = HistoryQuery { feed: None, before_seq: None, text: None, limit: 100 };
    let stored = app.desk.history(query).await.unwrap();
    assert_eq!(stored.len(), 20, "written after the stall, none lost");
}

#[tokio::test]
async fn an_event_after_a_quiet_moment_goes_to_the_window_at_once() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app: App = start_with(
        settings(&redis, Profile::Warehouse),
        dir.path(),
        Arc::new(common::Recorded::default()),
    );
    app.live().await;
    // Each event after a quiet moment (nothing for longer than the batching
    // interval). Timed from PUBLISH's reply, by which Redis has passed the
    // message on: at once it is a few ms; waiting for the next 50 ms tick it
    // is anything up to 50 ms. The quiet gaps differ by 10 ms so that the
    // publishes fall at five different points of the tick (equal gaps lock
    // onto one).
    for n in 0..5 {
        tokio::time::sleep(Duration::from_millis(100 + 10 * n)).await;
        redis.publish("ws:orders", &common::order(n as u32));
        let published = Instant::now();
        next_items(&mut app.batches).await;
        let took = published.elapsed();
        assert!(took < Duration::from_millis(20), "event {n} took {took:?}");
    }
}
