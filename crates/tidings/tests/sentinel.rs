//! Redis Sentinel (`redis+sentinel://`), with a real primary, replica and
//! three sentinels from the machine's redis-server: a publisher and a Redis
//! source given the sentinel URL find the master, and when the primary is
//! killed under traffic they carry on with the promoted replica within 5 s
//! of the sentinels naming it.

use std::time::{Duration, Instant};

use tidings::history::HistoryConfig;
use tidings::source::{
    Backoff, RedisSourceConfig, SourceHandle, SourceState, SourceUpdate, Subscription,
    spawn_redis_source,
};
use tidings::{Publisher, PublisherConfig};
use tidings_events::event::Broadcast;
use tidings_testkit::SentinelSetup;
use tokio_util::sync::CancellationToken;

/// The promise: working again this soon after the sentinels name the new
/// master.
const RECOVERY: Duration = Duration::from_secs(5);
/// Sentinels judge a primary down after 1 s; the vote and promotion follow.
const FAILOVER: Duration = Duration::from_secs(30);

async fn start_sentinels() -> SentinelSetup {
    tokio::task::spawn_blocking(SentinelSetup::start).await.expect("the sentinels start")
}

fn source_on(url: String, cancel: &CancellationToken) -> SourceHandle {
    let config = RedisSourceConfig {
        subscriptions: vec![Subscription::all()],
        backoff: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) },
        // As the desktop runs it: resuming from history after a reconnect.
        history: Some(HistoryConfig::default()),
        ..RedisSourceConfig::new(url)
    };
    spawn_redis_source(config, cancel.clone(), 1024)
}

/// Waits for a broadcast whose message is `text`, skipping states and
/// other messages; panics after `within`.
async fn receive(source: &mut SourceHandle, text: &str, within: Duration) {
    let found = tokio::time::timeout(within, async {
        while let Some(update) = source.updates.recv().await {
            if let SourceUpdate::Message(message) = update
                && String::from_utf8_lossy(&message.payload).contains(text)
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the source did not receive {text:?} within {within:?}");
}

async fn live(source: &mut SourceHandle) {
    tokio::time::timeout(FAILOVER, async {
        while let Some(update) = source.updates.recv().await {
            if matches!(update, SourceUpdate::State(SourceState::Live)) {
                return;
            }
        }
        panic!("the source ended before it was live");
    })
    .await
    .expect("the source goes live through the sentinels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_sentinel_urls_a_publisher_and_a_source_reach_the_master() {
    let setup = start_sentinels().await;
    let cancel = CancellationToken::new();
    let mut source = source_on(setup.url(), &cancel);
    live(&mut source).await;
    let publisher = Publisher::new(PublisherConfig::new(setup.url())).unwrap();

    let outcome = publisher.broadcast(Broadcast::new("hello through sentinel")).await;
    assert!(outcome.is_published(), "{:?}", outcome.error);
    receive(&mut source, "hello through sentinel", RECOVERY).await;
    assert_eq!(setup.primary.cli(&["XLEN", "tidings:history:{ws:broadcast}"]), "1");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_primary_dies_publisher_and_source_follow_the_promoted_replica_within_5_s() {
    let mut setup = start_sentinels().await;
    let cancel = CancellationToken::new();
    let mut source = source_on(setup.url(), &cancel);
    live(&mut source).await;
    let publisher = Publisher::new(PublisherConfig {
        timeout: Duration::from_millis(500),
        ..PublisherConfig::new(setup.url())
    })
    .unwrap();
    assert!(publisher.broadcast(Broadcast::new("before")).await.is_published());
    receive(&mut source, "before", RECOVERY).await;

    setup.kill_primary();
    let setup = tokio::task::spawn_blocking(move || {
        setup.wait_for_failover(FAILOVER);
        setup
    })
    .await
    .unwrap();
    let promoted = Instant::now();

    // Under traffic: a publish every 100 ms from the promotion on, until
    // the source has one. Each one either reaches the source or, if it fell
    // into the source's reconnect, the source says events may be missing.
    let (mut sent, mut received, mut told_missed) = (Vec::new(), Vec::new(), false);
    let mut publishing_again = None;
    for n in 0.. {
        assert!(
            promoted.elapsed() < RECOVERY,
            "{RECOVERY:?} after the failover: published {sent:?}, received {received:?}"
        );
        let text = format!("after {n}");
        if publisher.broadcast(Broadcast::new(text.clone())).await.is_published() {
            publishing_again.get_or_insert(promoted.elapsed());
            sent.push(text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Ok(update) = source.updates.try_recv() {
            match update {
                SourceUpdate::Message(message) => {
                    let text = String::from_utf8_lossy(&message.payload).into_owned();
                    received.extend(
                        sent.iter().filter(|s| text.contains(&format!("\"{s}\""))).cloned(),
                    );
                }
                SourceUpdate::Missed { channel, .. } => told_missed |= channel == "ws:broadcast",
                _ => {}
            }
        }
        if !received.is_empty() {
            break;
        }
    }
    let publishing_again = publishing_again.expect("a publish was taken");
    eprintln!(
        "after the failover: publishing again in {publishing_again:?}, the source receiving in {:?}",
        promoted.elapsed()
    );
    let first = sent.iter().position(|s| s == &received[0]).expect("received what was sent");
    let unseen: Vec<&String> = sent[..first].iter().filter(|s| !received.contains(s)).collect();
    assert!(
        unseen.is_empty() || told_missed,
        "{unseen:?} were neither received nor reported missed"
    );
    let kept = setup.replica.cli(&["XLEN", "tidings:history:{ws:broadcast}"]);
    assert!(
        kept.parse::<u64>().unwrap() >= 2,
        "the new master keeps the history: what was replicated, and what came after"
    );
    cancel.cancel();
}
