//! What a restart of the desk keeps: an event seen before it is still a
//! duplicate after it, whichever path brings it again; and when history no
//! longer reaches back to where the desk was, it says since when events may
//! be missing (issue 8) instead of hiding the gap.

mod common;

use common::{order, start};
use tidings_desk::ipc::{FeedId, Profile};
use tidings_testkit::RedisServer;

#[tokio::test]
async fn an_event_seen_before_a_restart_is_not_shown_again_after_it() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish("ws:orders", &order(1));
    app.items(1).await;
    app.desk.shutdown().await;

    let mut again = start(&redis, dir.path(), Profile::Warehouse);
    again.live().await;
    redis.publish("ws:orders", &order(1));
    redis.publish("ws:orders", &order(2));
    let items = again.items(1).await;
    assert_eq!(items.len(), 1, "only the new order: {items:#?}");
    let snapshot = again.desk.snapshot().await.unwrap();
    assert_eq!(snapshot.feeds[&FeedId::Orders].len(), 2, "order 1 once, order 2 once");
}

#[tokio::test]
async fn a_gap_history_cannot_cover_is_reported_with_its_start() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish("ws:orders", &order(1));
    let kept = app.items(1).await.remove(0);
    app.desk.shutdown().await;

    // Redis loses its data while the app is closed: history, epoch, all.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("FLUSHALL").query_async(&mut connection).await.unwrap();

    let mut again = start(&redis, dir.path(), Profile::Warehouse);
    let missed_since = loop {
        let batch = again.batch().await;
        if let Some(since) = batch.status.and_then(|status| status.missed_since) {
            break since;
        }
    };
    assert!(
        (missed_since - kept.received_at).abs() < 5_000,
        "missed since {missed_since}, the last event kept was received at {}",
        kept.received_at
    );
    let snapshot = again.desk.snapshot().await.unwrap();
    assert_eq!(snapshot.status.missed_since, Some(missed_since), "the snapshot says so too");
}

#[tokio::test]
async fn a_damaged_history_database_is_set_aside_and_the_window_is_told_events_may_be_missing() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let garbage = b"not a database".repeat(500);
    std::fs::write(dir.path().join("history.sqlite3"), &garbage).unwrap();

    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    let snapshot = app.desk.snapshot().await.unwrap();
    let notice = snapshot.notice.expect("the user is told");
    assert!(notice.contains("set aside") && notice.contains("corrupt-"), "{notice}");
    assert!(snapshot.status.missed_since.is_some(), "resume says events may be missing");
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("history.sqlite3.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged file is kept");
    assert_eq!(std::fs::read(kept[0].path()).unwrap(), garbage);

    app.live().await;
    redis.publish("ws:orders", &order(1));
    assert_eq!(app.items(1).await.len(), 1, "a fresh history, and events flow");
}
