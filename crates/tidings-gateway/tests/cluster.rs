//! The gateway on a `redis+cluster://` URL, with a real Redis Cluster of
//! three primaries and three replicas from the machine's redis-server: plain
//! `PUBLISH`es on any node reach its clients with positions, a resume with
//! `since` replays exactly what was missed on channels whose history lives
//! on different primaries, and when the primary holding a channel's history
//! dies the gateway carries on with its replica — every event after the
//! client's position arrives, or the client is told since when it may have
//! missed some.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{TestGateway, WAIT, config, inventory_event};
use serde_json::{Value, json};
use tidings::history::stream_key;
use tidings_testkit::ClusterSetup;

/// Failure detection (node timeout 1 s), the vote and the promotion.
const FAILOVER: Duration = Duration::from_secs(20);

/// Channels whose histories the test expects on more than one primary.
const CHANNELS: [&str; 4] = ["inventory", "orders", "approvals", "finance"];

fn event(channel: &str, n: u64) -> String {
    format!(r#"{{"type":"test:seq","channel":"{channel}","n":{n}}}"#)
}

async fn start_cluster() -> ClusterSetup {
    tokio::task::spawn_blocking(ClusterSetup::start).await.expect("the cluster starts")
}

/// Reads event frames until one per channel in `expected` has come, in
/// order per channel; returns the last position per channel.
async fn expect_events(
    client: &mut common::Client,
    expected: &[(&str, u64)],
) -> HashMap<String, String> {
    let mut positions = HashMap::new();
    let mut wanted: Vec<(String, u64)> =
        expected.iter().map(|(channel, n)| ((*channel).to_owned(), *n)).collect();
    while !wanted.is_empty() {
        let frame = client.next_event().await;
        let channel = frame["channel"].as_str().unwrap().to_owned();
        let n = frame["data"]["n"].as_u64().unwrap();
        let next = wanted.iter().position(|(c, _)| *c == channel).expect("an expected channel");
        assert_eq!(wanted[next].1, n, "{channel}: events in order, once: {frame}");
        wanted.remove(next);
        positions.insert(channel, frame["position"].as_str().expect("a position").to_owned());
    }
    positions
}

/// A new client subscribing to `inventory` from `since`, and the
/// `subscribed` frame it gets (after any status frames: the gateway may
/// still be resubscribing after a failover).
async fn resume_inventory(gateway: &TestGateway, since: &str) -> (common::Client, Value) {
    let mut client = gateway.client().await;
    client
        .send_json(json!({"type":"subscribe","channels":["inventory"],"since":{"inventory":since}}))
        .await;
    let subscribed = loop {
        let frame = client.next().await;
        if frame["type"] != "status" {
            break frame;
        }
    };
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    (client, subscribed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_plain_publishes_on_any_node_fan_out_and_resume_exactly() {
    let setup = start_cluster().await;
    let owners: Vec<u16> =
        CHANNELS.iter().map(|c| setup.port_owning(&stream_key(&format!("ws:{c}")))).collect();
    assert!(owners.iter().any(|owner| *owner != owners[0]), "histories on several primaries");
    let gateway = TestGateway::start(config(&setup.url())).await;
    let mut client = gateway.subscribed(&CHANNELS).await;

    // Each channel published on another node than its own slot's.
    let ports = setup.ports();
    for (i, channel) in CHANNELS.iter().enumerate() {
        setup.publish(ports[(i + 1) % ports.len()], &format!("ws:{channel}"), &event(channel, 1));
    }
    let expected: Vec<(&str, u64)> = CHANNELS.iter().map(|c| (*c, 1)).collect();
    let positions = expect_events(&mut client, &expected).await;
    drop(client);

    // Away: two more events per channel, each channel through one node
    // (Redis Cluster keeps the order of one node's publishes only).
    for n in 2..=3 {
        for (i, channel) in CHANNELS.iter().enumerate() {
            let port = ports[(i + 1) % ports.len()];
            setup.publish(port, &format!("ws:{channel}"), &event(channel, n));
        }
    }
    for (channel, owner) in CHANNELS.iter().zip(&owners) {
        let key = stream_key(&format!("ws:{channel}"));
        tidings_testkit::eventually("the gateway records the events", WAIT, || {
            setup.cli(*owner, &["XLEN", &key]) == "3"
        })
        .await;
    }

    let mut back = gateway.client().await;
    back.send_json(json!({"type":"subscribe","channels":CHANNELS,"since":positions})).await;
    let subscribed = back.next_of("subscribed").await;
    let all_recovered: Value = CHANNELS.iter().map(|c| ((*c).to_owned(), json!(true))).collect();
    assert_eq!(subscribed["recovered"], all_recovered, "{subscribed}");
    let mut expected: Vec<(&str, u64)> = CHANNELS.iter().map(|c| (*c, 2)).collect();
    expected.extend(CHANNELS.iter().map(|c| (*c, 3)));
    expect_events(&mut back, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_primary_dies_the_gateway_carries_on_and_a_resume_is_exact_or_reported() {
    let mut setup = start_cluster().await;
    let mut settings = config(&setup.url());
    settings.redis_backoff_max = Duration::from_millis(200);
    let gateway = TestGateway::start(settings).await;
    let mut client = gateway.subscribed(&["inventory"]).await;
    setup.publish(setup.ports()[0], "ws:inventory", &inventory_event(1));
    let first = client.next_event().await;
    let since = first["position"].as_str().unwrap().to_owned();
    drop(client);

    let key = stream_key("ws:inventory");
    let killed = setup.kill_primary_owning(&key);
    let setup = tokio::task::spawn_blocking(move || {
        setup.wait_for_failover(&key, killed, FAILOVER);
        setup
    })
    .await
    .unwrap();

    // The backend publishes on a live node every 100 ms; a client resuming
    // from before the failover gets each one after its position, or is told
    // events may be missing, and then receives the newer ones live.
    let live_port = *setup.ports().iter().find(|port| **port != killed).unwrap();
    let publishing = tokio::task::spawn_blocking(move || {
        for n in 2..=30u64 {
            tidings_testkit::redis_cli(
                live_port,
                None,
                &["PUBLISH", "ws:inventory", &inventory_event(n)],
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (mut back, subscribed) = resume_inventory(&gateway, &since).await;
    let recovered = subscribed["recovered"]["inventory"] == true;
    let mut told = !recovered;
    let mut received = Vec::new();
    while received.last() != Some(&30) {
        let frame = back.next().await;
        match frame["type"].as_str() {
            Some("event") => {
                let product = frame["data"]["productId"].as_str().unwrap();
                received.push(product[1..].parse::<u64>().unwrap());
            }
            Some("missed") => told = true,
            Some("status") => {}
            _ => panic!("unexpected frame {frame}"),
        }
    }
    publishing.await.unwrap();
    let mut sorted = received.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, received, "in order, each once");
    if !told {
        assert_eq!(received, (2..=30).collect::<Vec<_>>(), "exact when not told otherwise");
    }
    eprintln!("after the failover: recovered {recovered}, told {told}, received {received:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_dying_while_the_gateway_listens_on_another_node_is_told_to_a_resume_across_it() {
    let mut setup = start_cluster().await;
    let key = stream_key("ws:inventory");
    let owner = setup.port_owning(&key);
    let elsewhere = setup.primary_ports().into_iter().find(|port| *port != owner).unwrap();
    // Seeded with another primary only: the gateway subscribes there, so
    // its subscription survives the owner's death.
    let mut settings = config(&format!("redis+cluster://127.0.0.1:{elsewhere}"));
    settings.redis_backoff_max = Duration::from_millis(200);
    let gateway = TestGateway::start(settings).await;
    let mut client = gateway.subscribed(&["inventory"]).await;
    setup.publish(elsewhere, "ws:inventory", &inventory_event(1));
    let since = client.next_event().await["position"].as_str().unwrap().to_owned();
    drop(client);

    let killed = setup.kill_primary_owning(&key);
    assert_eq!(killed, owner);
    let setup = tokio::task::spawn_blocking(move || {
        setup.wait_for_failover(&key, killed, FAILOVER);
        setup
    })
    .await
    .unwrap();

    // Whatever the dead primary had not handed its replica is gone, and
    // nothing in the replica's history says so: the resume must be told.
    let (mut back, subscribed) = resume_inventory(&gateway, &since).await;
    assert_eq!(subscribed["recovered"]["inventory"], false, "{subscribed}");
    // And events published after the failover arrive.
    let heard = tokio::time::timeout(WAIT * 4, async {
        for n in 2.. {
            setup.publish(elsewhere, "ws:inventory", &inventory_event(n));
            let frame = tokio::time::timeout(Duration::from_millis(300), back.next()).await;
            if let Ok(frame) = frame
                && frame["type"] == "event"
            {
                return frame;
            }
        }
        unreachable!()
    })
    .await
    .expect("events after the failover arrive");
    assert_eq!(heard["channel"], "inventory");
}
