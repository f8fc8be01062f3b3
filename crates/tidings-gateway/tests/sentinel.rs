//! The gateway on a `redis+sentinel://` URL, with a real primary, replica
//! and three sentinels: when the primary dies, WebSocket connections stay
//! open, say `reconnecting` then `live`, and events published on the
//! promoted replica reach them.

mod common;

use std::time::Duration;

use common::{TestGateway, config, inventory_event};
use tidings_testkit::SentinelSetup;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_primary_dies_connections_stay_open_and_follow_the_promoted_replica() {
    let mut setup =
        tokio::task::spawn_blocking(SentinelSetup::start).await.expect("the sentinels start");
    let mut settings = config(&setup.url());
    settings.redis_backoff_max = Duration::from_millis(200);
    let gateway = TestGateway::start(settings).await;
    let mut client = gateway.subscribed(&["inventory"]).await;
    assert_eq!(setup.primary.publish("ws:inventory", &inventory_event(1)), 1);
    assert_eq!(client.next_event().await["data"]["productId"], "p1");

    setup.kill_primary();
    let down = client.next_of("status").await;
    assert_eq!(down["upstream"], "reconnecting", "{down}");
    let setup = tokio::task::spawn_blocking(move || {
        setup.wait_for_failover(Duration::from_secs(30));
        setup
    })
    .await
    .unwrap();

    // Live again on the same connection (a `missed` notice may come too).
    loop {
        let frame = client.next().await;
        match frame["type"].as_str() {
            Some("status") if frame["upstream"] == "live" => break,
            Some("status" | "missed") => {}
            _ => panic!("expected status or missed, got {frame}"),
        }
    }
    // The backend publishes on the new master, as its own client follows
    // the failover; the first event the gateway hears reaches the client.
    let published =
        tidings_testkit::retry("a gateway to hear the new master", common::WAIT, || {
            let receivers = setup.replica.publish("ws:inventory", &inventory_event(2));
            std::future::ready((receivers >= 1).then_some(receivers))
        })
        .await;
    assert!(published >= 1);
    // Events between the primary's death and the new subscription may be
    // missing: the client may be told so (fail closed), never nothing.
    loop {
        let frame = client.next().await;
        match frame["type"].as_str() {
            Some("event") => {
                assert_eq!(frame["data"]["productId"], "p2", "{frame}");
                break;
            }
            Some("missed") => assert_eq!(frame["channel"], "inventory", "{frame}"),
            Some("status") => {}
            _ => panic!("expected the event, got {frame}"),
        }
    }
}
