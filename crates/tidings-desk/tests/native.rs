//! A native notification really sent: the desk, on a real redis-server,
//! notifies through `tidings-notify`'s notify-rust notifier on a private
//! D-Bus session bus where the notification sink records every `Notify`
//! call and clicks the approval request; the click focuses its item.
//!
//! notify-rust talks to the session bus in `DBUS_SESSION_BUS_ADDRESS`, which
//! a running test cannot change, so the desk runs in a child process started
//! with the private bus (see `tidings_notify::testing`); this process owns
//! the bus and the sink and asserts on what the sink received.

mod common;

use std::sync::Arc;

use common::{APPROVAL, WAIT, settings};
use tidings_desk::Desk;
use tidings_desk::config::DeskConfig;
use tidings_desk::ipc::{ConnectionState, FeedId, Profile};
use tidings_notify::NativeNotifier;
use tidings_notify::sink::SinkOptions;
use tidings_notify::testing::{self, NotificationSink, PrivateSessionBus};
use tidings_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

const TEST: &str =
    "an_approval_request_is_a_critical_resident_desktop_notification_and_a_click_focuses_it";

/// The child: a desk with the native notifier, an approval request
/// published, the sink's click answered with a focus request.
fn desk_on_the_private_bus() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let (notifier, mut responses) = NativeNotifier::start("Tidings");
        let config = DeskConfig {
            settings: settings(&redis, Profile::Approver),
            config_path: dir.path().join("settings.toml"),
            data_dir: dir.path().to_path_buf(),
            config_error: None,
        };
        let (desk, mut batches) =
            Desk::start(config, Arc::new(notifier), CancellationToken::new()).unwrap();
        let mut next = async || tokio::time::timeout(WAIT, batches.recv()).await.unwrap().unwrap();
        while next().await.status.is_none_or(|s| s.connection != ConnectionState::Live) {}
        redis.publish("ws:approvals", APPROVAL);
        let item = loop {
            if let Some(item) = next().await.items.pop() {
                break item;
            }
        };
        let response = tokio::time::timeout(WAIT, responses.recv())
            .await
            .expect("the sink clicks within the timeout")
            .expect("the notifier runs");
        let focus = desk.notification_response(response).await.unwrap().expect("a focus request");
        assert_eq!((focus.feed, focus.item_id.as_str()), (FeedId::Approvals, item.id.as_str()));
        while next().await.focus.is_none() {}
        println!("focused {}", item.id);
        desk.shutdown().await;
    });
}

#[test]
fn an_approval_request_is_a_critical_resident_desktop_notification_and_a_click_focuses_it() {
    testing::child_part(TEST, desk_on_the_private_bus);
    let Some(bus) = PrivateSessionBus::start_or_skip(TEST) else { return };
    let options = SinkOptions {
        click_when_contains: Some("Approval requested".into()),
        ..SinkOptions::default()
    };
    let sink = NotificationSink::start_with(&bus, options).expect("the notification sink starts");

    let child = testing::run_child_part(TEST, &bus).unwrap();

    let call = sink.wait_for_notify(WAIT, |call| call.summary == "Approval requested").unwrap();
    assert_eq!(call.app_name, "Tidings");
    assert_eq!(call.body, "RF-2026-000042 · 李娜");
    assert_eq!(call.urgency, Some(2), "critical urgency hint");
    assert_eq!(call.resident, Some(true), "stays until dismissed");
    assert!(child.stdout.contains("focused "), "the click focused the item: {}", child.stdout);
}
