//! History in a real Redis: positions, idempotent recording, recovery and its
//! limits (trimming, a lost epoch, the recovery limit).

use std::time::Duration;

use tidings::history::*;
use tidings_testkit::RedisServer;

async fn connect(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn published_messages_get_increasing_positions_in_one_epoch() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let (a, _) = history.publish(&mut c, "ws:inventory", b"{\"n\":1}").await.unwrap();
    let (b, _) = history.publish(&mut c, "ws:inventory", b"{\"n\":2}").await.unwrap();
    assert_eq!(a.epoch, b.epoch);
    assert!(a.id < b.id);
}

#[tokio::test]
async fn recording_the_same_message_twice_stores_it_once_at_one_position() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let (published, _) = history.publish(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    let recorded = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    assert_eq!(published, recorded);
    let len: u64 =
        redis::cmd("XLEN").arg(stream_key("ws:orders")).query_async(&mut c).await.unwrap();
    assert_eq!(len, 1);
}

#[tokio::test]
async fn recovery_returns_everything_after_a_position() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let mut positions = Vec::new();
    for n in 0..5 {
        positions.push(
            history
                .record(&mut c, "ws:finance", format!("{{\"n\":{n}}}").as_bytes())
                .await
                .unwrap(),
        );
    }
    let recovery = history.recover(&mut c, "ws:finance", &positions[1]).await.unwrap();
    assert!(recovery.recovered);
    let got: Vec<_> =
        recovery.entries.iter().map(|e| String::from_utf8(e.payload.clone()).unwrap()).collect();
    assert_eq!(got, ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]);
    let at_end = history.recover(&mut c, "ws:finance", &positions[4]).await.unwrap();
    assert!(at_end.recovered && at_end.entries.is_empty());
}

#[tokio::test]
async fn a_trimmed_gap_is_reported_as_not_recovered() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig { max_len: 1, ..HistoryConfig::default() });
    let first = history.record(&mut c, "ws:system", b"{\"n\":0}").await.unwrap();
    // MAXLEN ~ trims whole macro nodes only; trim exactly to make the gap certain.
    for n in 1..5 {
        history.record(&mut c, "ws:system", format!("{{\"n\":{n}}}").as_bytes()).await.unwrap();
    }
    let _: u64 = redis::cmd("XTRIM")
        .arg(stream_key("ws:system"))
        .arg("MAXLEN")
        .arg(2)
        .query_async(&mut c)
        .await
        .unwrap();
    let recovery = history.recover(&mut c, "ws:system", &first).await.unwrap();
    assert!(!recovery.recovered);
    assert_eq!(recovery.entries.len(), 2);
}

#[tokio::test]
async fn a_new_epoch_after_data_loss_is_reported_and_returns_the_new_history() {
    let mut server = RedisServer::start();
    let history = History::new(HistoryConfig::default());
    let before = {
        let mut c = connect(&server).await;
        history.record(&mut c, "ws:approvals", b"{\"n\":0}").await.unwrap()
    };
    server.restart();
    let mut c = connect(&server).await;
    history.record(&mut c, "ws:approvals", b"{\"n\":1}").await.unwrap();
    let recovery = history.recover(&mut c, "ws:approvals", &before).await.unwrap();
    assert!(!recovery.recovered);
    assert_ne!(recovery.epoch, before.epoch);
    assert_eq!(recovery.entries.len(), 1);
}

#[tokio::test]
async fn a_gap_longer_than_the_limit_returns_the_newest_entries() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig { recover_limit: 3, ..HistoryConfig::default() });
    let first = history.record(&mut c, "ws:broadcast", b"{\"n\":0}").await.unwrap();
    for n in 1..10 {
        history.record(&mut c, "ws:broadcast", format!("{{\"n\":{n}}}").as_bytes()).await.unwrap();
    }
    let recovery = history.recover(&mut c, "ws:broadcast", &first).await.unwrap();
    assert!(!recovery.recovered);
    let got: Vec<_> =
        recovery.entries.iter().map(|e| String::from_utf8(e.payload.clone()).unwrap()).collect();
    assert_eq!(got, ["{\"n\":7}", "{\"n\":8}", "{\"n\":9}"]);
}

#[tokio::test]
async fn old_entries_are_trimmed_by_age() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig {
        max_age: Duration::from_millis(1),
        ..HistoryConfig::default()
    });
    history.record(&mut c, "ws:customers", b"{\"n\":0}").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    history.record(&mut c, "ws:customers", b"{\"n\":1}").await.unwrap();
    let len: u64 =
        redis::cmd("XLEN").arg(stream_key("ws:customers")).query_async(&mut c).await.unwrap();
    assert_eq!(len, 1, "the entry older than max_age is trimmed by the next append");
}

#[tokio::test]
async fn recording_many_keeps_their_order_and_agrees_with_single_records() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    let already = history.record(&mut c, "ws:orders", b"{\"n\":1}").await.unwrap();
    let batch: Vec<(&str, &[u8])> =
        vec![("ws:orders", b"{\"n\":1}"), ("ws:orders", b"{\"n\":2}"), ("ws:system", b"{\"n\":3}")];
    let positions = history.record_many(&mut c, &batch).await.unwrap();
    assert_eq!(positions[0], already, "a message recorded before keeps its position");
    assert!(positions[1].id > positions[0].id);
    let recovery = history.recover(&mut c, "ws:orders", &already).await.unwrap();
    assert!(recovery.recovered);
    assert_eq!(recovery.entries.len(), 1);
    assert_eq!(recovery.entries[0].position, positions[1]);
}

#[tokio::test]
async fn recording_works_again_after_redis_forgets_its_scripts() {
    let server = RedisServer::start();
    let mut c = connect(&server).await;
    let history = History::new(HistoryConfig::default());
    history.record_many(&mut c, &[("ws:orders", b"{\"n\":1}")]).await.unwrap();
    redis::cmd("SCRIPT").arg("FLUSH").exec_async(&mut c).await.unwrap();
    let positions = history.record_many(&mut c, &[("ws:orders", b"{\"n\":2}")]).await.unwrap();
    assert_eq!(positions.len(), 1);
}
