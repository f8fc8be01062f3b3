//! The commands the window calls, against a running desk on a real
//! redis-server: history paging and search, read marks and the tray's
//! unread count, and settings that are saved, refused with the key that is
//! wrong, or that move the desk to another source.

mod common;

use std::sync::Arc;

use common::{Recorded, order, settings, start, start_with};
use tidings_desk::ipc::{ConnectionState, FeedId, HistoryQuery, Profile};
use tidings_testkit::RedisServer;

fn orders(query_text: Option<&str>, before_seq: Option<u64>, limit: u32) -> HistoryQuery {
    HistoryQuery {
        feed: Some(FeedId::Orders),
        before_seq,
        text: query_text.map(str::to_owned),
        limit,
    }
}

fn order_number(item: &tidings_desk::ipc::FeedItem) -> &str {
    match &item.event {
        tidings_events::Event::OrderStatus(order) => &order.order_number,
        other => panic!("not an order: {other:?}"),
    }
}

#[tokio::test]
async fn history_pages_back_newest_first_and_finds_text() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    for n in 1..=5 {
        redis.publish("ws:orders", &order(n));
    }
    app.items(5).await;

    let page = app.desk.history(orders(None, None, 2)).await.unwrap();
    assert_eq!(
        page.iter().map(order_number).collect::<Vec<_>>(),
        ["SO-2026-000005", "SO-2026-000004"]
    );
    let next = app.desk.history(orders(None, Some(page[1].seq), 2)).await.unwrap();
    assert_eq!(
        next.iter().map(order_number).collect::<Vec<_>>(),
        ["SO-2026-000003", "SO-2026-000002"]
    );

    let found = app.desk.history(orders(Some("so-2026-000003"), None, 10)).await.unwrap();
    assert_eq!(found.iter().map(order_number).collect::<Vec<_>>(), ["SO-2026-000003"]);
    let none = app.desk.history(orders(Some("100%_"), None, 10)).await.unwrap();
    assert_eq!(none, [], "% and _ are text, not wildcards");
}

#[tokio::test]
async fn reading_items_lowers_the_unread_count_for_the_tray() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    for n in 1..=3 {
        redis.publish("ws:orders", &order(n));
    }
    redis.publish("ws:inventory", &common::low_stock(1));
    let items = app.items(4).await;
    assert_eq!(app.desk.unread_total().await.unwrap(), 4);

    app.desk.mark_read(vec![items[0].id.clone()]).await.unwrap();
    assert_eq!(app.desk.unread_total().await.unwrap(), 3);
    app.desk.mark_all_read(FeedId::Orders).await.unwrap();
    assert_eq!(app.desk.unread_total().await.unwrap(), 1, "the inventory item is left");
    let snapshot = app.desk.snapshot().await.unwrap();
    assert!(snapshot.feeds[&FeedId::Orders].iter().all(|item| item.read));
    assert_eq!(snapshot.unread.get(&FeedId::Orders).copied().unwrap_or(0), 0);
}

#[tokio::test]
async fn a_setting_the_desk_cannot_use_is_refused_with_its_key_and_nothing_changes() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    let before = app.desk.settings().await.unwrap();
    let mut bad = before.clone();
    bad.quiet_hours.start = "25:00".into();
    let error = app.desk.set_settings(bad).await.unwrap_err().to_string();
    assert!(error.contains("quietHours.start") && error.contains("25:00"), "{error}");
    assert_eq!(app.desk.settings().await.unwrap(), before);
    assert!(!dir.path().join("settings.toml").exists(), "nothing was written");
}

#[tokio::test]
async fn new_settings_are_saved_and_a_new_source_is_connected_at_once() {
    let first = RedisServer::start();
    let second = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app =
        start_with(settings(&first, Profile::Warehouse), dir.path(), Arc::new(Recorded::default()));
    app.live().await;

    let mut moved = app.desk.settings().await.unwrap();
    moved.source.url = second.url();
    moved.low_stock_threshold = 4.0;
    app.desk.set_settings(moved.clone()).await.unwrap();
    loop {
        let status = app.batch().await.status;
        if status.is_some_and(|s| s.connection == ConnectionState::Live && s.url == second.url()) {
            break;
        }
    }
    second.publish("ws:orders", &order(9));
    assert_eq!(order_number(&app.items(1).await[0]), "SO-2026-000009");

    let saved = std::fs::read_to_string(dir.path().join("settings.toml")).unwrap();
    assert!(saved.contains(&second.url()) && saved.contains("lowStockThreshold = 4.0"), "{saved}");
    assert_eq!(app.desk.settings().await.unwrap(), moved);
}

/// A gateway source with a token, started on `url`.
fn gateway_with_token(url: &str) -> tidings_desk::ipc::Settings {
    let mut gateway = tidings_desk::config::default_settings(Profile::Approver);
    gateway.source.url = url.into();
    gateway.source.token = Some("secret.jwt".into());
    gateway
}

#[tokio::test]
async fn a_token_is_never_sent_over_plain_ws_to_another_machine_the_source_is_offline_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    // 198.51.100.0/24 is documentation space: nothing answers there anyway.
    let mut app = start_with(
        gateway_with_token("ws://198.51.100.7:8787/ws"),
        dir.path(),
        Arc::new(Recorded::default()),
    );
    let status = app.batch().await.status.expect("a status");
    let ConnectionState::Offline { reason } = status.connection else { panic!("{status:?}") };
    assert!(reason.contains("wss://198.51.100.7"), "{reason}");
    let refused = app.desk.set_settings(app.desk.settings().await.unwrap()).await.unwrap_err();
    assert!(refused.to_string().contains("only over wss://"), "{refused}");
}

#[tokio::test]
async fn moving_the_gateway_to_another_host_drops_the_token_and_asks_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = start_with(
        gateway_with_token("ws://127.0.0.1:9/ws"),
        dir.path(),
        Arc::new(Recorded::default()),
    );
    let mut moved = app.desk.settings().await.unwrap();
    assert_eq!(moved.source.token.as_deref(), Some(tidings_desk::config::TOKEN_MASK));
    moved.source.url = "ws://localhost:9/ws".into();
    app.desk.set_settings(moved).await.unwrap();

    assert_eq!(app.desk.settings().await.unwrap().source.token, None);
    let saved = std::fs::read_to_string(dir.path().join("settings.toml")).unwrap();
    assert!(!saved.contains("secret.jwt"), "{saved}");
    let notice = loop {
        if let Some(notice) = app.batch().await.notice {
            break notice;
        }
    };
    assert!(notice.contains("localhost") && notice.contains("enter the token"), "{notice}");
    assert_eq!(app.desk.snapshot().await.unwrap().notice, Some(notice));
}

#[tokio::test]
async fn the_redis_password_never_reaches_the_window_and_saving_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut direct = tidings_desk::config::default_settings(Profile::Ops);
    direct.source.kind = tidings_desk::ipc::SourceKind::Redis;
    direct.source.url = "redis://:s3cret@127.0.0.1:9/0".into();
    direct.source.user_id = Some("u1".into());
    let app = start_with(direct, dir.path(), Arc::new(Recorded::default()));
    let snapshot = app.desk.snapshot().await.unwrap();
    let shown = serde_json::to_string(&snapshot).unwrap();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert_eq!(snapshot.settings.source.url, "redis://:********@127.0.0.1:9/0");

    let mut edited = snapshot.settings;
    edited.low_stock_threshold = 3.0;
    app.desk.set_settings(edited).await.unwrap();
    let saved = std::fs::read_to_string(dir.path().join("settings.toml")).unwrap();
    assert!(saved.contains("redis://:s3cret@127.0.0.1:9/0"), "{saved}");
}
