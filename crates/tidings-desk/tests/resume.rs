//! No event lost (issue 8): while events are published continuously, Redis
//! is killed and restarted, the gateway is killed and restarted, the app's
//! connection is cut for 30 s, or the app itself is killed and restarted —
//! and in each case the events the app ends up with are exactly the events
//! published: none missing, none twice, in publish order.

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

struct Silent;

impl Notifier for Silent {
    fn notify(&self, _: NotificationRequest) -> Result<(), NotifyError> {
        Ok(())
    }
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

/// Publishes TOTAL orders in the background through this project's
/// publisher (each recorded in history), a retry after a failure being the
/// same event; says when a third are out.
fn publish(redis_url: String) -> (oneshot::Receiver<()>, tokio::task::JoinHandle<()>) {
    let (third_tx, third) = oneshot::channel();
    let task = tokio::spawn(async move {
        let publisher = Publisher::new(PublisherConfig {
            timeout: Duration::from_millis(200),
            ..PublisherConfig::new(redis_url)
        })
        .unwrap();
        let mut third_tx = Some(third_tx);
        for n in 0..TOTAL {
            if n == TOTAL / 3
                && let Some(tell) = third_tx.take()
            {
                let _ = tell.send(());
            }
            while !publisher.publish_raw(&Channel::Orders, &order(n)).await.is_published() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    (third, task)
}

/// Waits until the app holds `count` order items, then checks them.
async fn assert_exactly_every_order(
    desk: &Desk,
    batches: &mut mpsc::Receiver<UiBatch>,
    already: usize,
    wait: Duration,
) {
    let mut seen = already;
    let deadline = tokio::time::Instant::now() + wait;
    while seen < TOTAL as usize {
        let batch = tokio::time::timeout_at(deadline, batches.recv())
            .await
            .unwrap_or_else(|_| panic!("only {seen} of {TOTAL} events arrived"))
            .expect("the app is running");
        assert_eq!(batch.status.as_ref().and_then(|s| s.missed_since), None, "a gap was reported");
        seen += batch.items.len();
    }
    let query =
        HistoryQuery { feed: Some(FeedId::Orders), before_seq: None, text: None, limit: 1000 };
    let mut items = desk.history(query).await.unwrap();
    items.reverse();
    let numbers: Vec<String> = items
        .iter()
        .map(|item| match &item.event {
            tidings_events::Event::OrderStatus(order) => order.order_number.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..TOTAL).map(|n| format!("SO-2026-{n:06}")).collect();
    assert_eq!(numbers, expected);
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

#[tokio::test]
async fn redis_killed_and_restarted_while_publishing() {
    let mut redis = RedisServer::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let (desk, mut batches) = start(config(SourceKind::Redis, redis.url(), dir.path()));
    live(&mut batches).await;
    let (third, publishing) = publish(redis.url());
    third.await.unwrap();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    publishing.await.unwrap();
    assert_exactly_every_order(&desk, &mut batches, 0, Duration::from_secs(30)).await;
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

#[tokio::test]
async fn the_gateway_killed_and_restarted_while_publishing() {
    let redis = RedisServer::start();
    let (addr, shutdown, task) = gateway_on(&redis, "127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, mut batches) =
        start(config(SourceKind::Gateway, format!("ws://{addr}/ws"), dir.path()));
    live(&mut batches).await;
    let (third, publishing) = publish(redis.url());
    third.await.unwrap();
    shutdown.cancel();
    task.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, again, _task) = gateway_on(&redis, addr).await;
    publishing.await.unwrap();
    assert_exactly_every_order(&desk, &mut batches, 0, Duration::from_secs(30)).await;
    again.cancel();
}

#[tokio::test]
async fn the_apps_connection_cut_for_30_seconds_while_publishing() {
    let redis = RedisServer::start();
    let proxy = TcpProxy::start(redis.port());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{}", proxy.port());
    let (desk, mut batches) = start(config(SourceKind::Redis, url, dir.path()));
    live(&mut batches).await;
    let (third, publishing) = publish(redis.url());
    third.await.unwrap();
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(30)).await;
    proxy.restore();
    publishing.await.unwrap();
    assert_exactly_every_order(&desk, &mut batches, 0, Duration::from_secs(60)).await;
}

#[test]
fn the_app_killed_and_restarted_while_publishing() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let publishing_runtime = tokio::runtime::Runtime::new().unwrap();
    // The first app runs on a runtime of its own, which is then dropped
    // without shutting the app down: no final flush, no clean close, as
    // after `kill -9`.
    let first = tokio::runtime::Runtime::new().unwrap();
    let (third, publishing) = first.block_on(async {
        let (desk, mut batches) = start(config(SourceKind::Redis, redis.url(), dir.path()));
        live(&mut batches).await;
        std::mem::forget(desk);
        std::mem::forget(batches);
        let _guard = publishing_runtime.enter();
        publish(redis.url())
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
        assert_exactly_every_order(&desk, &mut batches, kept, Duration::from_secs(30)).await;
    });
}
