//! Notification buttons, sound and snooze as the running desk applies them,
//! events from a real redis-server: an approval request offers "Open" (its
//! ERP page, from the template for its type) and "Remind me in 15 min" and
//! plays a sound; a seed's `actionLabel` becomes a button with the host;
//! the snooze button closes the notification and the request comes back
//! when it is due, only if still pending; snoozes survive a restart.
//! (What the daemon sees and how a pressed button comes back over D-Bus:
//! `tidings-notify`'s `native_notifications` tests, and `native_actions`.)

mod common;

use std::sync::Arc;

use common::{APPROVAL, Recorded, approval, decision, settings, start, start_with};
use tidings_desk::ipc::{FeedId, Language, Profile, SnoozeFor};
use tidings_desk::notify::{ActionKind, NotificationResponse};
use tidings_testkit::RedisServer;

const MINE_WITH_LINK: &str = r#"{"type":"notification","id":"n1","userId":"u1","title":"Invoice","message":"please check","notificationType":"error","actionUrl":"/invoices/7","actionLabel":"Review\u0007 now","timestamp":1764000000000}"#;

#[tokio::test]
async fn an_approval_request_offers_open_and_snooze_and_plays_a_sound() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Approver);
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    app.items(1).await;
    let request = app.notified.calls().remove(0);
    let buttons: Vec<(&str, &str, ActionKind)> =
        request.actions.iter().map(|a| (a.id.as_str(), a.label.as_str(), a.kind)).collect();
    assert_eq!(
        buttons,
        [
            ("open", "Open ↗ 127.0.0.1:3000", ActionKind::Open),
            ("snooze-15", "Remind me in 15 min", ActionKind::Snooze { minutes: 15 }),
        ]
    );
    assert_eq!(request.default_label, "Show in Tidings");
    assert_eq!(request.sound.as_deref(), Some("message-new-instant"));
    // What the app opens when Open is pressed: asked again, from history.
    let item_id = request.target.unwrap().item_id;
    let url = app.desk.action_url(item_id).await.unwrap();
    assert_eq!(url, "http://127.0.0.1:3000/approvals/r1");
}

#[tokio::test]
async fn an_approval_id_cannot_lead_the_open_button_elsewhere() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Approver);
    app.live().await;
    let sneaky = APPROVAL.replace(r#""resourceId":"r1""#, r#""resourceId":"../../x?y=1#z""#);
    redis.publish("ws:approvals", &sneaky);
    let item = app.items(1).await.remove(0);
    let url = app.desk.action_url(item.id).await.unwrap();
    assert_eq!(url, "http://127.0.0.1:3000/approvals/..%2F..%2Fx%3Fy%3D1%23z");
}

#[tokio::test]
async fn labels_follow_the_language_and_a_seed_label_is_cleaned_and_shows_its_host() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut zh = settings(&redis, Profile::Approver);
    zh.language = Language::ZhCn;
    let mut app = start_with(zh, dir.path(), Arc::new(Recorded::default()));
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    redis.publish("ws:user:u1:notifications", MINE_WITH_LINK);
    app.items(2).await;
    let calls = app.notified.wait_until(|calls| calls.len() >= 2).await;
    let approval = calls.iter().find(|c| c.target.as_ref().unwrap().feed == FeedId::Approvals);
    let approval = approval.unwrap();
    assert_eq!(approval.default_label, "在 Tidings 中查看");
    assert_eq!(approval.actions[1].label, "15 分钟后提醒");
    let mine = calls.iter().find(|c| c.target.as_ref().unwrap().feed == FeedId::Mine).unwrap();
    assert_eq!(mine.actions.len(), 1, "only Open: {:?}", mine.actions);
    assert_eq!(mine.actions[0].label, "Review now ↗ 127.0.0.1:3000", "control character gone");
    assert_eq!(mine.sound.as_deref(), Some("dialog-warning"), "critical notices ring");
}

#[tokio::test]
async fn a_feed_with_sound_off_is_silent_and_an_untrusted_link_gets_no_button() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut quiet = settings(&redis, Profile::Approver);
    quiet.feeds.get_mut(&FeedId::Approvals).unwrap().sound = false;
    quiet.approval_urls.insert("refund".into(), "https://evil.example/{resourceId}".into());
    let mut app = start_with(quiet, dir.path(), Arc::new(Recorded::default()));
    app.live().await;
    redis.publish("ws:approvals", APPROVAL);
    app.items(1).await;
    let request = app.notified.calls().remove(0);
    assert_eq!(request.sound, None);
    let ids: Vec<&str> = request.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["snooze-15"], "a template leading off the ERP is refused by the link rule");
}

#[tokio::test]
async fn a_snoozed_request_comes_back_when_due_only_while_pending_and_survives_a_restart() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Approver);
    app.live().await;
    redis.publish("ws:approvals", &approval(1));
    redis.publish("ws:approvals", &approval(2));
    let items = app.items(2).await;
    let calls = app.notified.wait_until(|calls| calls.len() >= 2).await;
    let first = calls.iter().find(|c| c.body.contains("RF-000001")).unwrap().clone();
    let target = first.target.clone().unwrap();

    // From the notification's button: closed now.
    let response =
        NotificationResponse::Action { target, kind: ActionKind::Snooze { minutes: 15 } };
    assert_eq!(app.desk.notification_response(response).await.unwrap(), None);
    app.notified.wait_closed(|closed| closed.contains(&first.key)).await;
    // From the Approvals screen: the other one until tomorrow 9:00.
    let second = items.iter().find(|i| i.id != first.target.as_ref().unwrap().item_id).unwrap();
    let until = app.desk.snooze(second.id.clone(), SnoozeFor::TomorrowNine).await.unwrap();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    assert!(until > now + 60_000);
    let snoozed = app.desk.snapshot().await.unwrap().snoozed;
    assert_eq!(snoozed.len(), 2, "{snoozed:?}");
    // Only pending approval requests snooze.
    assert!(app.desk.snooze("no-such-item".into(), SnoozeFor::Minutes(60)).await.is_err());

    // Survives a restart.
    app.desk.shutdown().await;
    let mut app = start(&redis, dir.path(), Profile::Approver);
    app.live().await;
    assert_eq!(app.desk.snapshot().await.unwrap().snoozed, snoozed);

    // Request 2 is decided meanwhile; both come due: only 1 reminds.
    redis.publish("ws:approvals", &decision(2, "approved"));
    app.items(1).await;
    let before = app.notified.calls().len();
    app.desk.bring_snoozes_forward_for_test(2 * 24 * 3_600_000).await.unwrap();
    let calls = app.notified.wait_until(|calls| calls.len() > before).await;
    let reminded: Vec<&str> = calls[before..].iter().map(|c| c.body.as_str()).collect();
    assert_eq!(reminded, [first.body.as_str()], "only the pending one reminds");
    assert_eq!(calls[before].key, first.key, "the same notification, with its buttons");
    assert_eq!(calls[before].actions, first.actions);
    assert!(app.desk.snapshot().await.unwrap().snoozed.is_empty(), "both forgotten");
    // Nothing more comes of the decided one.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.notified.calls().len(), before + 1);
}
