//! The desktop pipeline against a real redis-server: events reach their feed
//! in batches, duplicates are dropped, legacy and malformed messages reach
//! only the debug log, history survives a restart, events published while
//! the app was closed arrive once when it comes back, a Redis restart shows
//! reconnecting then live, and an approver's approval request notifies.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings::{Publisher, PublisherConfig};
use tidings_desk::Desk;
use tidings_desk::config::{DeskConfig, default_settings};
use tidings_desk::ipc::{
    ActionLink, ConnectionState, FeedId, FeedItem, Outcome, Profile, SourceKind, UiBatch, Urgency,
};
use tidings_desk::notify::{NotificationRequest, Notifier, NotifyError};
use tidings_events::Channel;
use tidings_testkit::RedisServer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

const EXAMPLE: &str = r#"{"type":"inventory:change","productId":"123","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#;
const APPROVAL: &str = r#"{"type":"approval:request","resourceType":"refund","resourceId":"r1","resourceNumber":"RF-2026-000042","requesterId":"u2","requesterName":"李娜","timestamp":1764000000000}"#;

/// Records what the pipeline asks to show.
#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<NotificationRequest>>);

impl Notifier for Recorded {
    fn notify(&self, request: NotificationRequest) -> Result<(), NotifyError> {
        self.0.lock().unwrap().push(request);
        Ok(())
    }

    fn close(&self, _key: &str) {}
}

struct App {
    desk: Desk,
    batches: mpsc::Receiver<UiBatch>,
    notified: Arc<Recorded>,
}

fn config(redis: &RedisServer, dir: &std::path::Path, profile: Profile) -> DeskConfig {
    let mut settings = default_settings(profile);
    settings.source.kind = SourceKind::Redis;
    settings.source.url = redis.url();
    settings.source.user_id = Some("u1".into());
    DeskConfig {
        settings,
        config_path: dir.join("settings.toml"),
        data_dir: dir.to_path_buf(),
        config_error: None,
    }
}

fn start(redis: &RedisServer, dir: &std::path::Path, profile: Profile) -> App {
    let notified = Arc::new(Recorded::default());
    let (desk, batches) =
        Desk::start(config(redis, dir, profile), notified.clone(), CancellationToken::new())
            .unwrap();
    App { desk, batches, notified }
}

impl App {
    async fn batch(&mut self) -> UiBatch {
        tokio::time::timeout(WAIT, self.batches.recv()).await.expect("a batch").expect("running")
    }

    async fn live(&mut self) {
        loop {
            let batch = self.batch().await;
            if batch.status.is_some_and(|s| s.connection == ConnectionState::Live) {
                return;
            }
        }
    }

    /// Items from batches until `count` arrived.
    async fn items(&mut self, count: usize) -> Vec<FeedItem> {
        let mut items = Vec::new();
        while items.len() < count {
            items.extend(self.batch().await.items);
        }
        items
    }
}

fn seq_event(n: u64) -> String {
    format!(
        r#"{{"type":"order:status","orderType":"sales","orderId":"o{n}","orderNumber":"SO-2026-{n:06}","oldStatus":"pending","newStatus":"shipped","timestamp":1764000000000}}"#
    )
}

fn order_number(item: &FeedItem) -> String {
    match &item.event {
        tidings_events::Event::OrderStatus(order) => order.order_number.clone(),
        other => panic!("not an order: {other:?}"),
    }
}

#[tokio::test]
async fn the_protocol_example_reaches_the_inventory_feed() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish("ws:inventory", EXAMPLE);
    let items = app.items(1).await;
    assert_eq!(items[0].feed, FeedId::Inventory);
    assert_eq!(items[0].channel, "inventory");
    let snapshot = app.desk.snapshot().await.unwrap();
    assert_eq!(snapshot.feeds[&FeedId::Inventory].len(), 1);
    assert_eq!(snapshot.unread[&FeedId::Inventory], 1);
}

#[tokio::test]
async fn the_same_event_twice_is_shown_once() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish("ws:orders", &seq_event(1));
    redis.publish("ws:orders", &seq_event(1));
    redis.publish("ws:orders", &seq_event(2));
    let items = app.items(2).await;
    assert_eq!(
        items.iter().map(order_number).collect::<Vec<_>>(),
        ["SO-2026-000001", "SO-2026-000002"]
    );
    let snapshot = app.desk.snapshot().await.unwrap();
    assert_eq!(snapshot.feeds[&FeedId::Orders].len(), 2);
}

#[tokio::test]
async fn legacy_and_malformed_messages_reach_the_debug_log_only() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Ops);
    app.live().await;
    redis.publish("ws:system", r#"{"type":"cache:flush","region":"eu"}"#);
    redis.publish("ws:inventory", r#"{"type":"inventory:change","action":"adjust"}"#);
    redis.publish("ws:broadcast", r#"{"type":"broadcast","message":"hi","timestamp":1}"#);
    let mut debug = Vec::new();
    let mut items = Vec::new();
    while debug.len() < 3 {
        let batch = app.batch().await;
        debug.extend(batch.debug);
        items.extend(batch.items);
    }
    assert_eq!(
        debug.iter().map(|d| d.outcome).collect::<Vec<_>>(),
        [Outcome::Legacy, Outcome::Malformed, Outcome::Typed]
    );
    assert!(debug[1].reason.as_deref().unwrap().contains("productId"), "{:?}", debug[1]);
    assert_eq!(items.len(), 1, "only the typed broadcast is an item");
    let snapshot = app.desk.snapshot().await.unwrap();
    assert_eq!((snapshot.counters.legacy, snapshot.counters.malformed), (1, 1));
    assert!(snapshot.feeds.values().flatten().all(|item| item.feed == FeedId::Broadcast));
}

#[tokio::test]
async fn many_events_arrive_in_few_batches() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    let publisher = Publisher::new(PublisherConfig::new(redis.url())).unwrap();
    for n in 0..300 {
        publisher.publish_raw(&Channel::Orders, &seq_event(n)).await.result().unwrap();
    }
    let (mut items, mut batches) = (0, 0);
    while items < 300 {
        let batch = app.batch().await;
        batches += 1;
        items += batch.items.len();
    }
    assert!(batches < 60, "{batches} batches for 300 events");
}

#[tokio::test]
async fn history_and_read_marks_survive_a_restart() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish("ws:orders", &seq_event(1));
    redis.publish("ws:orders", &seq_event(2));
    let items = app.items(2).await;
    app.desk.mark_read(vec![items[0].id.clone()]).await.unwrap();
    app.desk.shutdown().await;

    let again = start(&redis, dir.path(), Profile::Warehouse);
    let snapshot = again.desk.snapshot().await.unwrap();
    let orders = &snapshot.feeds[&FeedId::Orders];
    assert_eq!(
        orders.iter().map(order_number).collect::<Vec<_>>(),
        ["SO-2026-000001", "SO-2026-000002"]
    );
    assert!(orders[0].read && !orders[1].read);
    assert_eq!(snapshot.unread[&FeedId::Orders], 1);
}

/// The app is closed right after an event (before its position could be
/// looked up), events follow while it is closed, and it comes back.
async fn closed_and_reopened(redis: &RedisServer, dir: &std::path::Path) -> App {
    let mut app = start(redis, dir, Profile::Warehouse);
    app.live().await;
    redis.publish("ws:orders", &seq_event(0));
    app.items(1).await;
    app.desk.shutdown().await;
    for n in 1..=3 {
        redis.publish("ws:orders", &seq_event(n));
    }
    start(redis, dir, Profile::Warehouse)
}

#[tokio::test]
async fn events_published_while_the_app_was_closed_arrive_once_when_it_returns() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let recording = common::recorder_up_all_along(&redis).await;
    let mut again = closed_and_reopened(&redis, dir.path()).await;
    let items = again.items(3).await;
    assert_eq!(
        items.iter().map(order_number).collect::<Vec<_>>(),
        ["SO-2026-000001", "SO-2026-000002", "SO-2026-000003"]
    );
    let snapshot = again.desk.snapshot().await.unwrap();
    assert_eq!(snapshot.feeds[&FeedId::Orders].len(), 4, "nothing twice");
    assert_eq!(snapshot.status.missed_since, None, "a recorder was up all along");
    recording.cancel();
}

#[tokio::test]
async fn events_published_while_the_app_was_closed_and_nobody_recorded_are_told() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut again = closed_and_reopened(&redis, dir.path()).await;
    // Plain PUBLISHes while nobody recorded could have been lost: the app
    // cannot prove otherwise, so it says since when (the last event it had).
    loop {
        let batch = again.batch().await;
        if batch.status.as_ref().is_some_and(|status| status.missed_since.is_some()) {
            break;
        }
    }
    let snapshot = again.desk.snapshot().await.unwrap();
    let orders = &snapshot.feeds[&FeedId::Orders];
    assert!(!orders.is_empty() && orders.len() <= 4, "nothing twice: {}", orders.len());
}

#[tokio::test]
async fn a_redis_restart_shows_reconnecting_then_live_and_events_flow_again() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.kill();
    loop {
        let batch = app.batch().await;
        if batch
            .status
            .is_some_and(|s| matches!(s.connection, ConnectionState::Reconnecting { .. }))
        {
            break;
        }
    }
    redis.restart();
    app.live().await;
    redis.publish("ws:orders", &seq_event(7));
    assert_eq!(order_number(&app.items(1).await[0]), "SO-2026-000007");
}

#[tokio::test]
async fn an_approval_request_raises_a_critical_resident_notification_for_an_approver() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Approver);
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    let item = app.items(1).await.remove(0);
    let notified = app.notified.0.lock().unwrap().clone();
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0].urgency, Urgency::Critical);
    assert!(notified[0].resident);
    assert_eq!(notified[0].target.as_ref().map(|t| t.item_id.clone()), Some(item.id));
}

#[tokio::test]
async fn a_relative_action_url_resolves_against_the_erp_base() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish(
        "ws:user:u1:notifications",
        r#"{"type":"notification","notificationType":"info","title":"订单已发货","message":"SO-2026-000123","actionUrl":"/orders/SO-2026-000123","timestamp":1764000000000}"#,
    );
    let item = app.items(1).await.remove(0);
    assert_eq!(item.feed, FeedId::Mine);
    let url = app.desk.action_url(item.id).await.unwrap();
    assert_eq!(url, "http://127.0.0.1:3000/orders/SO-2026-000123");
}

#[tokio::test]
async fn a_link_to_another_host_is_shown_refused_with_its_reason_and_never_opened() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish(
        "ws:user:u1:notifications",
        r#"{"type":"notification","notificationType":"info","title":"请审核","message":"RF-1","actionUrl":"/\\evil.com","actionLabel":"立即审核","timestamp":1764000000000}"#,
    );
    let item = app.items(1).await.remove(0);
    let Some(ActionLink::Refused { reason }) = &item.link else { panic!("{:?}", item.link) };
    assert!(reason.contains("backslash"), "{reason}");
    let error = app.desk.action_url(item.id).await.unwrap_err();
    assert!(error.to_string().contains("backslash"), "{error}");
}

#[tokio::test]
async fn the_window_is_told_the_host_an_action_link_opens() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish(
        "ws:user:u1:notifications",
        r#"{"type":"notification","notificationType":"info","title":"订单已发货","message":"SO-1","actionUrl":"/orders/SO-1","timestamp":1764000000000}"#,
    );
    let item = app.items(1).await.remove(0);
    assert_eq!(item.link, Some(ActionLink::Opens { host: "127.0.0.1:3000".into() }));
    let snapshot = app.desk.snapshot().await.unwrap();
    assert_eq!(snapshot.feeds[&FeedId::Mine][0].link, item.link, "the snapshot says so too");
}

#[tokio::test]
async fn the_window_gets_text_without_control_or_bidi_override_characters() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    redis.publish(
        "ws:user:u1:notifications",
        r#"{"type":"notification","notificationType":"info","title":"invoice\u202Efdp.exe","message":"a\u0007b\u2066c\nd","timestamp":1764000000000}"#,
    );
    let clean = |item: &FeedItem| {
        let tidings_events::Event::Notification(n) = &item.event else { panic!("{item:?}") };
        (n.title.clone(), n.message.clone())
    };
    let batch = loop {
        let batch = app.batch().await;
        if !batch.items.is_empty() {
            break batch;
        }
    };
    assert_eq!(clean(&batch.items[0]), ("invoicefdp.exe".into(), "abc\nd".into()));
    let history = app
        .desk
        .history(tidings_desk::ipc::HistoryQuery {
            feed: Some(FeedId::Mine),
            before_seq: None,
            text: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(clean(&history[0]), clean(&batch.items[0]), "read back from history, the same");
}
