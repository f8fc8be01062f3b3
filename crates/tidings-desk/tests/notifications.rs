//! The notification policy as the running desk applies it, events coming
//! from a real redis-server: what each role profile is told, quiet hours,
//! pausing, muting, the low-stock threshold, burst coalescing, the in-window
//! fallback without a notification daemon, and a click focusing its item.

mod common;

use std::sync::Arc;

use common::{APPROVAL, OVERDUE, Recorded, low_stock, order, settings, start, start_with, system};
use tidings_desk::ipc::{FeedId, Profile, Urgency};
use tidings_desk::notify::{ClickTarget, NotificationRequest, NotificationResponse, NotifyError};
use tidings_testkit::RedisServer;

/// Publishes one event of each kind a profile might care about and returns
/// what the desk asked the desktop to show for them.
async fn notifications_for(profile: Profile) -> Vec<NotificationRequest> {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), profile);
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    redis.publish("ws:inventory", &low_stock(1));
    redis.publish("ws:orders", &order(1));
    redis.publish("ws:system", &system("critical", "database down"));
    redis.publish("ws:system", &system("info", "v2 deployed"));
    redis.publish("ws:finance", OVERDUE);
    app.items(6).await;
    app.notified.calls()
}

fn titles(calls: &[NotificationRequest]) -> Vec<(&str, Urgency)> {
    calls.iter().map(|call| (call.title.as_str(), call.urgency)).collect()
}

#[tokio::test]
async fn the_warehouse_profile_is_told_of_low_stock_orders_and_critical_system_notices() {
    let calls = notifications_for(Profile::Warehouse).await;
    assert_eq!(
        titles(&calls),
        [
            ("Low stock", Urgency::Normal),
            ("Order status", Urgency::Low),
            ("System", Urgency::Critical)
        ]
    );
    assert_eq!(calls[0].body, "螺丝刀 1: 3");
}

#[tokio::test]
async fn the_approver_profile_is_told_of_approval_requests_as_critical_and_resident() {
    let calls = notifications_for(Profile::Approver).await;
    assert_eq!(
        titles(&calls),
        [
            ("Approval requested", Urgency::Critical),
            ("System", Urgency::Critical),
            ("Overdue", Urgency::Normal)
        ]
    );
    assert!(calls[0].resident, "an approval request stays until dismissed");
    assert_eq!(calls[0].body, "RF-2026-000042 · 李娜");
    assert!(!calls[2].resident);
}

#[tokio::test]
async fn the_ops_profile_is_told_of_every_system_notice() {
    let calls = notifications_for(Profile::Ops).await;
    assert_eq!(titles(&calls), [("System", Urgency::Critical), ("System", Urgency::Low)]);
    assert_eq!(calls[1].body, "v2 deployed");
}

/// Quiet hours from half an hour ago to half an hour from now.
fn quiet_now() -> (String, String) {
    use chrono::Timelike;
    let now = chrono::Local::now();
    let minute = (now.hour() * 60 + now.minute()) as i32;
    let at = |m: i32| {
        let m = m.rem_euclid(24 * 60);
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    (at(minute - 30), at(minute + 30))
}

#[tokio::test]
async fn quiet_hours_hold_back_a_low_stock_warning_but_not_a_critical_alert() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut quiet = settings(&redis, Profile::Warehouse);
    quiet.quiet_hours.enabled = true;
    (quiet.quiet_hours.start, quiet.quiet_hours.end) = quiet_now();
    let mut app = start_with(quiet, dir.path(), Arc::new(Recorded::default()));
    app.live().await;
    redis.publish("ws:inventory", &low_stock(1));
    redis.publish("ws:system", &system("critical", "database down"));
    app.items(2).await;
    assert_eq!(titles(&app.notified.calls()), [("System", Urgency::Critical)]);
}

#[tokio::test]
async fn pausing_notifications_holds_back_all_but_critical() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    app.desk.pause_notifications(60).await.unwrap();
    redis.publish("ws:inventory", &low_stock(1));
    redis.publish("ws:system", &system("critical", "database down"));
    app.items(2).await;
    assert_eq!(titles(&app.notified.calls()), [("System", Urgency::Critical)]);
    let paused_until = app.desk.snapshot().await.unwrap().paused_until.expect("paused");
    let in_an_hour = tidings_events::millis_since_epoch(std::time::SystemTime::now()) + 3_600_000;
    assert!((in_an_hour - paused_until).abs() < 60_000, "paused for an hour");
}

#[tokio::test]
async fn a_muted_feed_shows_its_items_but_stays_silent() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut muted = settings(&redis, Profile::Approver);
    muted.feeds.get_mut(&FeedId::Approvals).unwrap().notify = false;
    let mut app = start_with(muted, dir.path(), Arc::new(Recorded::default()));
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    let items = app.items(1).await;
    assert_eq!(items[0].feed, FeedId::Approvals);
    assert_eq!(app.notified.calls(), []);
}

#[tokio::test]
async fn stock_is_low_only_under_the_configured_threshold() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut strict = settings(&redis, Profile::Warehouse);
    strict.low_stock_threshold = 3.0;
    let mut app = start_with(strict, dir.path(), Arc::new(Recorded::default()));
    app.live().await;
    // 3 is not under 3: a plain stock change, below the feed's warning level.
    redis.publish("ws:inventory", &low_stock(1));
    app.items(1).await;
    assert_eq!(app.notified.calls(), []);
}

#[tokio::test]
async fn a_burst_of_low_stock_becomes_one_summary_with_the_final_count() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Warehouse);
    app.live().await;
    for n in 0..12 {
        redis.publish("ws:inventory", &low_stock(n));
    }
    app.items(12).await;
    let calls =
        app.notified.wait_until(|calls| calls.iter().any(|c| c.title.starts_with("12 "))).await;
    let single = 5; // the warehouse preset's coalesceCount
    assert!(calls[..single].iter().all(|c| c.title == "Low stock"), "{calls:#?}");
    let summaries = &calls[single..];
    assert!(summaries.len() <= 2, "a summary is refreshed, not sent per event: {calls:#?}");
    assert!(summaries.iter().all(|c| c.key == "summary:Inventory"), "they replace each other");
    assert_eq!(summaries.last().unwrap().title, "12 inventory changes");
    assert_eq!(summaries.last().unwrap().body, "in the last 10 s");
}

#[tokio::test]
async fn without_a_notification_daemon_notifications_become_toasts_in_the_window() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let notifier = Arc::new(Recorded::unavailable());
    let mut app = start_with(settings(&redis, Profile::Approver), dir.path(), notifier);
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    redis.publish("ws:system", &system("critical", "database down"));
    let (mut items, mut toasts) = (Vec::new(), Vec::new());
    while toasts.len() < 2 {
        let batch = app.batch().await;
        items.extend(batch.items);
        toasts.extend(batch.toasts);
    }
    assert_eq!(toasts[0].title, "Approval requested");
    assert_eq!(toasts[0].urgency, Urgency::Critical);
    assert_eq!(toasts[0].item_id.as_ref(), Some(&items[0].id), "the toast shows its item");
    assert_eq!(toasts[1].body, "database down");
    assert_eq!(app.notified.calls().len(), 1, "once found missing, the daemon is not asked again");
    assert!(!app.desk.snapshot().await.unwrap().native_notifications);
}

#[tokio::test]
async fn a_notification_the_daemon_did_not_show_after_all_becomes_a_toast() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Approver);
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    let item = app.items(1).await.remove(0);
    // Accepted by the notifier, then reported back (the daemon went away).
    let request = app.notified.calls().remove(0);
    let error = NotifyError::Unavailable("the daemon went away".into());
    let response = NotificationResponse::NotShown { request, error };
    assert_eq!(app.desk.notification_response(response).await.unwrap(), None);
    let toast = loop {
        if let Some(toast) = app.batch().await.toasts.pop() {
            break toast;
        }
    };
    assert_eq!(toast.title, "Approval requested");
    assert_eq!(toast.item_id, Some(item.id), "the toast shows its item");
    assert!(!app.desk.snapshot().await.unwrap().native_notifications);
}

#[tokio::test]
async fn a_clicked_notification_focuses_its_item() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Approver);
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    let item = app.items(1).await.remove(0);
    let target = app.notified.calls()[0].target.clone().expect("clickable");
    // The approval's ERP page, from the default template for its type.
    let open_url = Some("http://127.0.0.1:3000/approvals/r1".to_owned());
    assert_eq!(target, ClickTarget { feed: FeedId::Approvals, item_id: item.id.clone(), open_url });

    let focus =
        app.desk.notification_response(NotificationResponse::Clicked(target)).await.unwrap();
    let focus = focus.expect("a click focuses");
    assert_eq!((focus.feed, focus.item_id.as_str()), (FeedId::Approvals, item.id.as_str()));
    loop {
        if let Some(sent) = app.batch().await.focus {
            assert_eq!(sent, focus, "the window is told to focus the same item");
            break;
        }
    }
}
