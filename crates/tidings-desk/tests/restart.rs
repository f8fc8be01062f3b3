//! What a restart of the desk keeps: an event seen before it is still a
//! duplicate after it, whichever path brings it again.

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
