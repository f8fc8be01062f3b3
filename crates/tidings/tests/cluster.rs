//! Redis Cluster (`redis+cluster://`), with three primaries and three
//! replicas from the machine's redis-server: this project's publisher
//! records and publishes through the cluster, and the Redis source with
//! history — the desktop app's direct mode — receives plain `PUBLISH`es made
//! on any node, learns their positions and, reopened later, replays exactly
//! what it missed on channels whose histories live on different primaries.

use std::collections::BTreeMap;
use std::time::Duration;

use tidings::history::{HistoryConfig, stream_key};
use tidings::recorder::{Duty, RecorderConfig, run_recorder};
use tidings::source::{
    Backoff, RedisSourceConfig, SourceHandle, SourceState, SourceUpdate, Subscription,
    spawn_redis_source,
};
use tidings::{Publisher, PublisherConfig};
use tidings_events::Channel;
use tidings_events::event::Broadcast;
use tidings_testkit::ClusterSetup;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// Channels with histories on more than one primary.
const CHANNELS: [Channel; 3] = [Channel::Orders, Channel::Approvals, Channel::Inventory];

fn backoff() -> Backoff {
    Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) }
}

async fn start_cluster() -> ClusterSetup {
    tokio::task::spawn_blocking(ClusterSetup::start).await.expect("the cluster starts")
}

fn direct_source(url: String, resume: BTreeMap<String, String>) -> RedisSourceConfig {
    RedisSourceConfig {
        subscriptions: CHANNELS
            .iter()
            .map(|channel| Subscription::Channel(channel.clone()))
            .collect(),
        backoff: backoff(),
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

async fn live(handle: &mut SourceHandle) {
    while !matches!(next(handle).await, SourceUpdate::State(SourceState::Live)) {}
}

fn event(n: u64) -> String {
    format!(r#"{{"type":"test:seq","n":{n}}}"#)
}

/// Reads until `count` messages came; returns them as (channel, n), and the
/// last position reported per channel. Panics on a `Missed`.
async fn messages(
    handle: &mut SourceHandle,
    count: usize,
    positions: &mut BTreeMap<String, String>,
) -> Vec<(String, u64)> {
    let mut received = Vec::new();
    while received.len() < count {
        match next(handle).await {
            SourceUpdate::Message(message) => {
                let value: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
                received.push((message.channel.clone(), value["n"].as_u64().unwrap()));
            }
            SourceUpdate::Position { channel, position } => {
                positions.insert(channel, position);
            }
            SourceUpdate::Missed { channel, .. } => panic!("told {channel} may have missed events"),
            _ => {}
        }
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_records_and_publishes_through_a_cluster() {
    let setup = start_cluster().await;
    let publisher = Publisher::new(PublisherConfig::new(setup.url())).unwrap();
    for n in 0..3 {
        let outcome = publisher.broadcast(Broadcast::new(format!("hello {n}"))).await;
        assert!(outcome.is_published(), "{:?}", outcome.error);
    }
    let key = stream_key("ws:broadcast");
    assert_eq!(setup.cli(setup.port_owning(&key), &["XLEN", &key]), "3");
    let epoch = tidings::history::epoch_key("ws:broadcast");
    assert_eq!(setup.port_owning(&epoch), setup.port_owning(&key), "one slot per channel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_source_on_a_cluster_resumes_exactly_what_it_missed() {
    let setup = start_cluster().await;
    let owners: Vec<u16> =
        CHANNELS.iter().map(|c| setup.port_owning(&stream_key(&c.redis_name()))).collect();
    assert!(owners.iter().any(|owner| *owner != owners[0]), "histories on several primaries");
    let cancel = CancellationToken::new();
    // Always one recorder, as a gateway or `tidings record` runs.
    let recorder = RecorderConfig {
        url: setup.url(),
        history: Some(HistoryConfig::default()),
        duty: Duty::Always,
        backoff: backoff(),
    };
    tokio::spawn(run_recorder(recorder, |_| {}, cancel.clone()));

    let lease = tidings::history::LEASE_KEY;
    let lease_port = setup.port_owning(lease);
    tidings_testkit::eventually("the recorder holds the duty", WAIT, || {
        !setup.cli(lease_port, &["GET", lease]).is_empty()
    })
    .await;

    let first = cancel.child_token();
    let mut source =
        spawn_redis_source(direct_source(setup.url(), BTreeMap::new()), first.clone(), 64);
    live(&mut source).await;
    let ports = setup.ports();
    // Each channel always through the same node (as a cluster client routes
    // a channel), chosen off its slot's owner: Redis Cluster keeps the order
    // of one node's publishes, not of publishes made on different nodes.
    let publish_round = |n: u64| {
        for (i, channel) in CHANNELS.iter().enumerate() {
            let port = ports[(i + 1) % ports.len()];
            setup.publish(port, &channel.redis_name(), &event(n));
        }
    };
    let mut positions = BTreeMap::new();
    publish_round(1);
    let received = messages(&mut source, CHANNELS.len(), &mut positions).await;
    assert!(received.iter().all(|(_, n)| *n == 1), "{received:?}");
    // Every channel's position known before the source closes.
    while positions.len() < CHANNELS.len() {
        match next(&mut source).await {
            SourceUpdate::Position { channel, position } => {
                positions.insert(channel, position);
            }
            SourceUpdate::Missed { channel, .. } => panic!("told {channel} may have missed events"),
            _ => {}
        }
    }
    first.cancel();

    for n in 2..=4 {
        publish_round(n);
    }
    let mut reopened =
        spawn_redis_source(direct_source(setup.url(), positions), cancel.clone(), 64);
    let mut replayed = messages(&mut reopened, 3 * CHANNELS.len(), &mut BTreeMap::new()).await;
    replayed.sort_by_key(|(channel, _)| channel.clone());
    let mut expected: Vec<(String, u64)> =
        CHANNELS.iter().flat_map(|channel| (2..=4).map(|n| (channel.redis_name(), n))).collect();
    expected.sort_by_key(|(channel, _)| channel.clone());
    assert_eq!(
        replayed, expected,
        "each missed event once, in order per channel, none told missing"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_link_of_the_sources_node_remade_is_told_as_missed_on_every_channel() {
    let setup = start_cluster().await;
    let ports = setup.ports();
    // The source subscribes to the URL's first seed.
    let (node, peer) = (ports[0], ports[1]);
    let url = format!("redis+cluster://127.0.0.1:{node}");
    let cancel = CancellationToken::new();
    let mut source = spawn_redis_source(direct_source(url, BTreeMap::new()), cancel.clone(), 64);
    live(&mut source).await;
    setup.publish(peer, "ws:orders", &event(1));
    assert_eq!(messages(&mut source, 1, &mut BTreeMap::new()).await, [("ws:orders".into(), 1)]);

    // What the links carried while they were down is lost for this node:
    // the source cannot know what, so it tells every channel.
    setup.break_links(node, peer);
    let mut told = Vec::new();
    while told.len() < CHANNELS.len() {
        match next(&mut source).await {
            SourceUpdate::Missed { channel, since } => {
                assert!(since.is_some(), "told since when");
                told.push(channel);
            }
            SourceUpdate::Message(message) => panic!("unexpected {message:?}"),
            _ => {}
        }
    }
    told.sort();
    let mut expected: Vec<String> = CHANNELS.iter().map(Channel::redis_name).collect();
    expected.sort();
    assert_eq!(told, expected);

    // And it carries on, on links made afresh (it may restart once more
    // while the nodes finish remaking them, and say so again).
    let mut n = 2;
    let heard = tokio::time::timeout(WAIT, async {
        loop {
            setup.publish(peer, "ws:orders", &event(n));
            n += 1;
            let update = tokio::time::timeout(Duration::from_millis(200), source.updates.recv());
            if let Ok(Some(SourceUpdate::Message(message))) = update.await {
                return message;
            }
        }
    })
    .await
    .expect("the source hears the peer again");
    assert_eq!(heard.channel, "ws:orders");
    cancel.cancel();
}
