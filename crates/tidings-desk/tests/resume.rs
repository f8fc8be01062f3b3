//! Nothing lost, or told (issues 8 and 15): while events are published
//! continuously — through this project's publisher (recorded as published)
//! or with plain `PUBLISH` as the backend does — Redis is killed and
//! restarted, the gateway is killed and restarted, the app's connection is
//! cut for 30 s, or the app itself is killed and restarted. In each case the
//! events the app ends up with are in publish order and none twice, and
//! either exactly every event published, or the app was told since when it
//! may have missed some. Whenever nobody could record (the only gateway
//! down, Redis restarting, the app's own recorder gone), it must be told;
//! with a recorder up all along, it must get every event and not be told.

mod common;

use std::sync::Arc;
use std::time::Duration;

use tidings::{Publisher, PublisherConfig};
use tidings_desk::Desk;
use tidings_desk::config::{DeskConfig, default_settings};
use tidings_desk::ipc::{FeedId, HistoryQuery, Profile, SourceKind, UiBatch};
use tidings_desk::notify::{NotificationRequest, Notifier, NotifyError};
use tidings_events::Channel;
use tidings_gateway::{Gateway, GatewayConfig};
use tidings_testkit::{RedisServer, TcpProxy};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const TOTAL: u64 = 300;
/// How long one publish is retried while Redis or the network is down.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(30);

struct Silent;

impl Notifier for Silent {
    fn notify(&self, _: NotificationRequest) -> Result<(), NotifyError> {
        Ok(())
    }

    fn close(&self, _: &str) {}
}

fn order(n: u64) -> String {
    format!(
        r#"{{"type":"order:status","orderType":"sales","orderId":"o{n}","orderNumber":"SO-2026-{n:06}","oldStatus":"pending","newStatus":"shipped","timestamp":1764000000000}}"#
    )
}

fn config(kind: SourceKind, url: String, dir: &std::path::Path) -> DeskConfig {
    let mut settings = default_settings(Profile::Warehouse);
    settings.source.kind = kind;
    settings.source.url = url;
    DeskConfig {
        settings,
        config_path: dir.join("settings.toml"),
        data_dir: dir.to_path_buf(),
        config_error: None,
    }
}

fn start(config: DeskConfig) -> (Desk, mpsc::Receiver<UiBatch>) {
    Desk::start(config, Arc::new(Silent), CancellationToken::new()).unwrap()
}

/// How the events are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publishing {
    /// This project's publisher: recorded in history as it is published.
    Recorded,
    /// Plain `PUBLISH`, as the backend does: in history only if a recorder
    /// hears it.
    Plain,
}

/// Publishes TOTAL orders in the background, a retry after a failure being
/// the same event; says when a third are out.
fn publish(
    redis_url: String,
    how: Publishing,
) -> (oneshot::Receiver<()>, tokio::task::JoinHandle<()>) {
    let (third_tx, third) = oneshot::channel();
    let task = tokio::spawn(async move {
        let publisher = Publisher::new(PublisherConfig {
            timeout: Duration::from_millis(200),
            ..PublisherConfig::new(redis_url.clone())
        })
        .unwrap();
        let client = redis::Client::open(redis_url).unwrap();
        let plain = tokio::sync::Mutex::new(None);
        let mut third_tx = Some(third_tx);
        for n in 0..TOTAL {
            if n == TOTAL / 3
                && let Some(tell) = third_tx.take()
            {
                let _ = tell.send(());
            }
            let (publisher, client, plain, payload) = (&publisher, &client, &plain, &order(n));
            tidings_testkit::retry("publishing an order", PUBLISH_RETRY_FOR, || async move {
                let published = match how {
                    Publishing::Recorded => {
                        publisher.publish_raw(&Channel::Orders, payload).await.is_published()
                    }
                    Publishing::Plain => {
                        publish_plainly(client, &mut *plain.lock().await, payload).await
                    }
                };
                published.then_some(())
            })
            .await;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    (third, task)
}

/// One plain `PUBLISH` on a connection kept between calls; false (and the
/// connection dropped) when Redis did not take it.
async fn publish_plainly(
    client: &redis::Client,
    connection: &mut Option<redis::aio::MultiplexedConnection>,
    payload: &str,
) -> bool {
    if connection.is_none() {
        *connection = client.get_multiplexed_async_connection().await.ok();
    }
    let Some(open) = connection else { return false };
    let sent: redis::RedisResult<u64> =
        redis::cmd("PUBLISH").arg("ws:orders").arg(payload).query_async(open).await;
    if sent.is_err() {
        *connection = None;
    }
    sent.is_ok()
}

/// What the app must have been told by the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    /// Nobody could record for a while: "events may be missing since …".
    MayHaveMissed,
    /// A recorder was up all along: every event, and no such report.
    Nothing,
}

/// Waits until the app holds `count` order items, or (when it may be told)
/// until publishing is over and the app went quiet, then checks them: in
/// publish order, none twice, and every one unless the app was told.
async fn assert_every_order_or_told(
    desk: &Desk,
    batches: &mut mpsc::Receiver<UiBatch>,
    already: usize,
    wait: Duration,
    told: Told,
) {
    let mut seen = already;
    let mut missed = false;
    let deadline = tokio::time::Instant::now() + wait;
    while seen < TOTAL as usize {
        // Once told, events may be missing: stop when the app goes quiet.
        let quiet = if missed { Duration::from_secs(3) } else { wait };
        let batch = match tokio::time::timeout(quiet.min(wait), batches.recv()).await {
            Ok(batch) => batch.expect("the app is running"),
            Err(_) if missed => break,
            Err(_) => panic!("only {seen} of {TOTAL} events arrived, and nothing was told"),
        };
        assert!(tokio::time::Instant::now() < deadline, "only {seen} of {TOTAL} events arrived");
        let reported = batch.status.as_ref().and_then(|s| s.missed_since).is_some();
        assert!(
            !(reported && told == Told::Nothing),
            "a gap was reported with a recorder up all along"
        );
        missed |= reported;
        seen += batch.items.len();
    }
    if told == Told::MayHaveMissed && !missed {
        // The report may trail the last event by one batch.
        let snapshot = desk.snapshot().await.unwrap();
        missed = snapshot.status.missed_since.is_some();
    }
    assert_eq!(missed, told == Told::MayHaveMissed, "told: {missed}, expected {told:?}");
    let query =
        HistoryQuery { feed: Some(FeedId::Orders), before_seq: None, text: None, limit: 1000 };
    let mut items = desk.history(query).await.unwrap();
    items.reverse();
    let numbers: Vec<u64> = items
        .iter()
        .map(|item| match &item.event {
            tidings_events::Event::OrderStatus(order) => {
                order.order_number.trim_start_matches("SO-2026-").parse().unwrap()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "in order, none twice: {numbers:?}");
    if !missed {
        assert_eq!(numbers, (0..TOTAL).collect::<Vec<_>>(), "every event");
    }
}

async fn live(batches: &mut mpsc::Receiver<UiBatch>) {
    loop {
        let batch =
            tokio::time::timeout(Duration::from_secs(10), batches.recv()).await.unwrap().unwrap();
        if batch.status.is_some_and(|s| s.connection == tidings_desk::ipc::ConnectionState::Live) {
            return;
        }
    }
}

async fn redis_killed_and_restarted(how: Publishing, told: Told) {
    let mut redis = RedisServer::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let (desk, mut batches) = start(config(SourceKind::Redis, redis.url(), dir.path()));
    live(&mut batches).await;
    let (third, publishing) = publish(redis.url(), how);
    third.await.unwrap();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    publishing.await.unwrap();
    assert_every_order_or_told(&desk, &mut batches, 0, Duration::from_secs(30), told).await;
}

#[tokio::test]
async fn redis_killed_and_restarted_while_publishing_recorded_events() {
    // Every event is in history, but a crash leaves a time nobody recorded.
    redis_killed_and_restarted(Publishing::Recorded, Told::MayHaveMissed).await;
}

#[tokio::test]
async fn redis_killed_and_restarted_while_publishing_plainly() {
    redis_killed_and_restarted(Publishing::Plain, Told::MayHaveMissed).await;
}

async fn gateway_on(
    redis: &RedisServer,
    listen: std::net::SocketAddr,
) -> (std::net::SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let mut config = GatewayConfig::new(listen);
    config.redis_url = redis.url();
    let shutdown = CancellationToken::new();
    let bound = Gateway::bind(config, shutdown.clone()).await.unwrap();
    let addr = bound.addr;
    bound.live().await;
    let task = tokio::spawn(async move {
        let _ = bound.serving.await;
    });
    (addr, shutdown, task)
}

async fn gateway_killed_and_restarted(how: Publishing, another_gateway: bool, told: Told) {
    let redis = RedisServer::start();
    let other = if another_gateway {
        Some(gateway_on(&redis, "127.0.0.1:0".parse().unwrap()).await)
    } else {
        None
    };
    let (addr, shutdown, task) = gateway_on(&redis, "127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, mut batches) =
        start(config(SourceKind::Gateway, format!("ws://{addr}/ws"), dir.path()));
    live(&mut batches).await;
    let (third, publishing) = publish(redis.url(), how);
    third.await.unwrap();
    shutdown.cancel();
    task.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, again, _task) = gateway_on(&redis, addr).await;
    publishing.await.unwrap();
    assert_every_order_or_told(&desk, &mut batches, 0, Duration::from_secs(30), told).await;
    again.cancel();
    if let Some((_, other, _)) = other {
        other.cancel();
    }
}

#[tokio::test]
async fn the_only_gateway_killed_and_restarted_while_publishing_recorded_events() {
    gateway_killed_and_restarted(Publishing::Recorded, false, Told::MayHaveMissed).await;
}

#[tokio::test]
async fn the_only_gateway_killed_and_restarted_while_publishing_plainly() {
    gateway_killed_and_restarted(Publishing::Plain, false, Told::MayHaveMissed).await;
}

#[tokio::test]
async fn a_gateway_killed_and_restarted_while_another_records_plain_publishes() {
    gateway_killed_and_restarted(Publishing::Plain, true, Told::Nothing).await;
}

#[tokio::test]
async fn the_apps_connection_cut_for_30_seconds_while_a_recorder_stays_up() {
    let redis = RedisServer::start();
    let recording = common::recorder_up_all_along(&redis).await;
    let proxy = TcpProxy::start(redis.port());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{}", proxy.port());
    let (desk, mut batches) = start(config(SourceKind::Redis, url, dir.path()));
    live(&mut batches).await;
    let (third, publishing) = publish(redis.url(), Publishing::Plain);
    third.await.unwrap();
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(30)).await;
    proxy.restore();
    publishing.await.unwrap();
    assert_every_order_or_told(&desk, &mut batches, 0, Duration::from_secs(60), Told::Nothing)
        .await;
    recording.cancel();
}

/// The first app runs on a runtime of its own, which is then dropped
/// without shutting the app down: no final flush, no clean close, as after
/// `kill -9`; a second app then starts on the same data.
fn app_killed_and_restarted(how: Publishing, recorder: bool, told: Told) {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let publishing_runtime = tokio::runtime::Runtime::new().unwrap();
    let recording =
        recorder.then(|| publishing_runtime.block_on(common::recorder_up_all_along(&redis)));
    let first = tokio::runtime::Runtime::new().unwrap();
    let (third, publishing) = first.block_on(async {
        let (desk, mut batches) = start(config(SourceKind::Redis, redis.url(), dir.path()));
        live(&mut batches).await;
        // Neither is dropped: the app dies without shutting down, as a
        // killed process would (its runtime is dropped below).
        let _ = std::mem::ManuallyDrop::new(desk);
        let _ = std::mem::ManuallyDrop::new(batches);
        let _guard = publishing_runtime.enter();
        publish(redis.url(), how)
    });
    publishing_runtime.block_on(third).unwrap();
    first.shutdown_background();

    publishing_runtime.block_on(async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let query =
            HistoryQuery { feed: Some(FeedId::Orders), before_seq: None, text: None, limit: 1000 };
        let kept = {
            let store = tidings_desk::store::Store::open(
                dir.path(),
                1_000_000,
                Duration::from_secs(86_400),
            )
            .unwrap();
            store.query(&query).unwrap().len()
        };
        assert!(kept > 0 && kept < TOTAL as usize, "the first app kept {kept} events");
        let (desk, mut batches) = start(config(SourceKind::Redis, redis.url(), dir.path()));
        publishing.await.unwrap();
        assert_every_order_or_told(&desk, &mut batches, kept, Duration::from_secs(30), told).await;
        if let Some(recording) = recording {
            recording.cancel();
        }
    });
}

#[test]
fn the_app_killed_and_restarted_while_publishing_recorded_events() {
    // The app was the only recorder: nobody recorded while it was gone.
    app_killed_and_restarted(Publishing::Recorded, false, Told::MayHaveMissed);
}

#[test]
fn the_app_killed_and_restarted_while_a_recorder_stays_up_and_the_backend_publishes_plainly() {
    app_killed_and_restarted(Publishing::Plain, true, Told::Nothing);
}
