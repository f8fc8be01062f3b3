//! Notifications follow the state of what they announce (issue 17, item 2),
//! with events from a real redis-server and a notifier that records what
//! the desk asks of it: an approval request's notification is closed when
//! the request is decided or read in the app; past the bounds on screen,
//! critical notifications fold into one summary per feed that counts what
//! is pending, is updated in place, and is closed when nothing is; a place
//! freed on screen goes to the oldest folded request.
//! (`tests/native_follow.rs` checks the same on D-Bus with the sink.)

mod common;

use common::{App, approval, decision, start, system};
use tidings_desk::ipc::{FeedId, Profile, Urgency};
use tidings_desk::notify::{NotificationRequest, NotificationResponse};
use tidings_desk::routing::{CRITICAL_PER_MINUTE, MAX_RESIDENT};
use tidings_testkit::RedisServer;

async fn approver(redis: &RedisServer, dir: &std::path::Path) -> App {
    let mut app = start(redis, dir, Profile::Approver);
    app.live().await;
    app
}

fn singles(calls: &[NotificationRequest]) -> Vec<&NotificationRequest> {
    calls.iter().filter(|call| !call.key.starts_with("pending:")).collect()
}

#[tokio::test]
async fn a_decided_approval_request_has_its_notification_closed() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = approver(&redis, dir.path()).await;
    for n in 1..=3 {
        redis.publish("ws:approvals", &approval(n));
    }
    let items = app.items(3).await;
    redis.publish("ws:approvals", &decision(1, "approved"));
    redis.publish("ws:approvals", &decision(2, "rejected"));
    app.items(2).await;
    let closed = app.notified.wait_closed(|closed| closed.len() >= 2).await;
    assert_eq!(closed, [items[0].id.clone(), items[1].id.clone()], "the third is still pending");
}

#[tokio::test]
async fn an_approval_request_read_in_the_app_has_its_notification_closed() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = approver(&redis, dir.path()).await;
    for n in 1..=3 {
        redis.publish("ws:approvals", &approval(n));
    }
    let items = app.items(3).await;
    app.desk.mark_read(vec![items[0].id.clone()]).await.unwrap();
    app.desk.acknowledge(items[1].id.clone()).await.unwrap();
    let closed = app.notified.wait_closed(|closed| closed.len() >= 2).await;
    assert_eq!(closed, [items[0].id.clone(), items[1].id.clone()]);
    app.desk.mark_all_read(FeedId::Approvals).await.unwrap();
    let closed = app.notified.wait_closed(|closed| closed.len() >= 3).await;
    assert_eq!(closed[2], items[2].id, "marking the feed read closes the rest");
}

#[tokio::test]
async fn past_the_resident_bound_requests_fold_into_one_summary_that_counts_what_is_pending() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = approver(&redis, dir.path()).await;
    let total = MAX_RESIDENT as u32 + 3;
    for n in 0..total {
        redis.publish("ws:approvals", &approval(n));
    }
    app.items(total as usize).await;
    let calls =
        app.notified.wait_until(|calls| calls.iter().any(|c| c.title.starts_with("3 "))).await;
    assert_eq!(singles(&calls).len(), MAX_RESIDENT, "{calls:#?}");
    let summary = calls.last().unwrap();
    assert_eq!(summary.title, "3 approval requests pending");
    assert_eq!(summary.key, "pending:Approvals", "one key: it is updated in place");
    assert_eq!((summary.urgency, summary.resident), (Urgency::Critical, true));
    assert_eq!(summary.target.as_ref().map(|t| t.feed), Some(FeedId::Approvals));
    // Two of the folded ones decided: the count follows; the last closes it.
    let folded = MAX_RESIDENT as u32;
    redis.publish("ws:approvals", &decision(folded, "approved"));
    redis.publish("ws:approvals", &decision(folded + 1, "rejected"));
    app.items(2).await;
    app.notified
        .wait_until(|calls| calls.iter().any(|c| c.title == "1 approval request pending"))
        .await;
    redis.publish("ws:approvals", &decision(folded + 2, "approved"));
    app.items(1).await;
    let closed = app.notified.wait_closed(|closed| !closed.is_empty()).await;
    assert_eq!(closed, ["pending:Approvals"], "nothing pending: the summary is closed");
}

#[tokio::test]
async fn past_the_critical_rate_critical_notices_fold_into_a_summary() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = start(&redis, dir.path(), Profile::Ops);
    app.live().await;
    let total = CRITICAL_PER_MINUTE + 2;
    for n in 0..total {
        redis.publish("ws:system", &system("critical", &format!("disk {n} failing")));
    }
    app.items(total).await;
    let calls =
        app.notified.wait_until(|calls| calls.iter().any(|c| c.title.starts_with("2 "))).await;
    assert_eq!(singles(&calls).len(), CRITICAL_PER_MINUTE, "{calls:#?}");
    assert_eq!(calls.last().unwrap().title, "2 critical system notices");
}

#[tokio::test]
async fn a_dismissed_resident_notification_frees_its_place() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = approver(&redis, dir.path()).await;
    for n in 0..MAX_RESIDENT as u32 {
        redis.publish("ws:approvals", &approval(n));
    }
    let items = app.items(MAX_RESIDENT).await;
    let key = items[0].id.clone();
    let dismissed = app.desk.notification_response(NotificationResponse::Dismissed { key });
    assert_eq!(dismissed.await.unwrap(), None);
    redis.publish("ws:approvals", &approval(100));
    app.items(1).await;
    let calls = app.notified.calls();
    assert_eq!(singles(&calls).len(), MAX_RESIDENT + 1, "not folded: {calls:#?}");
    assert_eq!(calls.last().unwrap().body, "RF-000100 · R");
}

#[tokio::test]
async fn a_place_freed_on_screen_goes_to_the_oldest_folded_request() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut app = approver(&redis, dir.path()).await;
    let total = MAX_RESIDENT as u32 + 2;
    for n in 0..total {
        redis.publish("ws:approvals", &approval(n));
    }
    app.items(total as usize).await;
    let waiting = |calls: &[NotificationRequest]| calls.iter().any(|c| c.title.starts_with("2 "));
    app.notified.wait_until(waiting).await;
    redis.publish("ws:approvals", &decision(0, "approved"));
    app.items(1).await;
    let first_folded = format!("RF-{:06} · R", MAX_RESIDENT);
    let calls = app.notified.wait_until(|calls| calls.iter().any(|c| c.body == first_folded)).await;
    let promoted = calls.iter().find(|c| c.body == first_folded).unwrap();
    assert!(promoted.resident && !promoted.key.starts_with("pending:"), "{promoted:#?}");
    app.notified
        .wait_until(|calls| calls.iter().any(|c| c.title == "1 approval request pending"))
        .await;
}
