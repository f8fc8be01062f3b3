//! The pipeline supervises its source (issue 17, item 6): a source that
//! ends unexpectedly is reported Offline with the reason and restarted with
//! backoff until it is Live again; one that ends after reporting a
//! configuration it cannot use stays Offline, saying why, and is not
//! restarted. Against a real redis-server.

mod common;

use common::{order, start, start_with};
use tidings_desk::ipc::{ConnectionState, Profile};
use tidings_desk::pipeline::RESTART_BACKOFF;
use tidings_testkit::RedisServer;

#[tokio::test]
async fn a_source_that_ends_unexpectedly_is_reported_offline_then_restarted_and_live_again() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;

    // Its task ends without the pipeline asking, as a crash would.
    app.desk.end_source_for_test().await.unwrap();
    // A batch already on its way may still say Live; the next word on the
    // connection must be Offline (`batch()` fails the test if none comes).
    let reason = loop {
        let status = app.batch().await.status;
        if let Some(ConnectionState::Offline { reason }) = status.map(|status| status.connection) {
            break reason;
        }
    };
    assert!(reason.contains("stopped unexpectedly"), "{reason}");
    assert!(reason.contains("restarting in"), "{reason}");
    let snapshot = app.desk.snapshot().await.unwrap();
    assert!(
        matches!(snapshot.status.connection, ConnectionState::Offline { .. }),
        "the window is told it is offline: {:?}",
        snapshot.status
    );

    // Restarted after the backoff: connecting, then live, and events flow.
    app.live().await;
    redis.publish("ws:orders", &order(7));
    let items = app.items(1).await;
    assert_eq!(items[0].event.kind().as_str(), "order:status");
}

#[tokio::test]
async fn a_source_that_ends_over_its_configuration_stays_offline_saying_why() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(&redis, Profile::Warehouse);
    // Accepted by the settings (a rediss:// URL) but refused by the source,
    // which reports Offline and ends: a person has to change it.
    settings.source.url = format!("rediss://127.0.0.1:{}/#insecure", redis.port());
    let mut app = start_with(settings, dir.path(), Default::default());
    let reason = loop {
        let status = app.batch().await.status;
        if let Some(ConnectionState::Offline { reason }) = status.map(|status| status.connection) {
            break reason;
        }
    };
    assert!(reason.contains("#insecure"), "{reason}");
    // Not restarted: no other state is reported for three times the
    // longest first restart delay (nothing announces a non-event).
    let quiet = RESTART_BACKOFF.ceiling(1) * 3;
    let other = tokio::time::timeout(quiet, async {
        loop {
            if let Some(status) = app.batch().await.status {
                return status;
            }
        }
    })
    .await;
    assert!(other.is_err(), "the source was restarted: {other:?}");
    let snapshot = app.desk.snapshot().await.unwrap();
    assert_eq!(snapshot.status.connection, ConnectionState::Offline { reason });
}
