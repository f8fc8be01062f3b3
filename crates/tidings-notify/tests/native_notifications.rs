//! `NativeNotifier` against a real D-Bus: a private `dbus-daemon` per test
//! and the notification sink on it. The notifying half of each test runs in
//! a child process whose session bus is the private one (see
//! `tidings_notify::testing`); the parent asserts on what the sink recorded.

use std::time::Duration;

use tidings_desk::ipc::{FeedId, Urgency};
use tidings_desk::notify::{
    ActionKind, ClickTarget, NotificationAction, NotificationRequest, NotificationResponse,
    Notifier, NotifyError,
};
use tidings_notify::NativeNotifier;
use tidings_notify::sink::{SinkOptions, SinkRecord};
use tidings_notify::testing::{self, NotificationSink, PrivateSessionBus};

const WAIT: Duration = Duration::from_secs(10);

fn approval_request() -> NotificationRequest {
    NotificationRequest {
        key: "approval:PO-2024-0042".into(),
        title: "Approval requested: order PO-2024-0042".into(),
        body: "Alice Chen asks you to approve order PO-2024-0042".into(),
        urgency: Urgency::Critical,
        resident: true,
        target: Some(approval_target()),
        actions: vec![
            NotificationAction {
                id: "open".into(),
                label: "Open ↗ erp.example.com".into(),
                kind: ActionKind::Open,
            },
            NotificationAction {
                id: "snooze-15".into(),
                label: "Remind me in 15 min".into(),
                kind: ActionKind::Snooze { minutes: 15 },
            },
        ],
        default_label: "Show in Tidings".into(),
        sound: Some("message-new-instant".into()),
    }
}

fn approval_target() -> ClickTarget {
    ClickTarget { feed: FeedId::Approvals, item_id: "item-42".into(), open_url: None }
}

fn inventory_change(key: &str, title: &str) -> NotificationRequest {
    NotificationRequest {
        key: key.into(),
        title: title.into(),
        body: "Widget: 10 → 3".into(),
        urgency: Urgency::Normal,
        resident: false,
        target: None,
        actions: Vec::new(),
        default_label: String::new(),
        sound: None,
    }
}

fn start_bus_and_sink(options: SinkOptions) -> (PrivateSessionBus, NotificationSink) {
    let bus = PrivateSessionBus::start().expect("start a private dbus-daemon");
    let sink = NotificationSink::start_with(&bus, options).expect("start the notification sink");
    (bus, sink)
}

#[test]
fn an_approval_request_is_sent_critical_and_resident() {
    testing::child_part("an_approval_request_is_sent_critical_and_resident", || {
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        notifier.notify(approval_request()).expect("the sink accepts the notification");
        assert!(notifier.settle(WAIT), "the notification was sent");
    });
    let (bus, sink) = start_bus_and_sink(SinkOptions::default());

    testing::run_child_part("an_approval_request_is_sent_critical_and_resident", &bus).unwrap();

    let call = sink.wait_for_notify(WAIT, |call| call.summary.contains("PO-2024-0042")).unwrap();
    assert_eq!(call.app_name, "Tidings");
    assert_eq!(call.summary, "Approval requested: order PO-2024-0042");
    assert_eq!(call.body, "Alice Chen asks you to approve order PO-2024-0042");
    assert_eq!(call.urgency, Some(2), "critical urgency hint");
    assert_eq!(call.resident, Some(true), "resident hint");
    assert_eq!(call.expire_timeout, 0, "never expires");
    assert!(call.actions.contains(&"default".to_owned()), "clickable: {:?}", call.actions);
}

#[test]
fn a_click_in_the_daemon_reaches_the_app_with_its_target() {
    testing::child_part("a_click_in_the_daemon_reaches_the_app_with_its_target", || {
        let (notifier, mut responses) = NativeNotifier::start("Tidings");
        notifier.notify(approval_request()).expect("the sink accepts the notification");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let response = runtime
            .block_on(async { tokio::time::timeout(WAIT, responses.recv()).await })
            .expect("a response within the timeout")
            .expect("the response channel is open");
        assert_eq!(response, NotificationResponse::Clicked(approval_target()));
    });
    let (bus, _sink) = start_bus_and_sink(SinkOptions {
        click_when_contains: Some("PO-2024-0042".into()),
        ..SinkOptions::default()
    });

    testing::run_child_part("a_click_in_the_daemon_reaches_the_app_with_its_target", &bus).unwrap();
}

#[test]
fn the_buttons_and_the_sound_are_offered() {
    testing::child_part("the_buttons_and_the_sound_are_offered", || {
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        notifier.notify(approval_request()).expect("the sink accepts the notification");
        assert!(notifier.settle(WAIT), "the notification was sent");
    });
    let (bus, sink) = start_bus_and_sink(SinkOptions { sound: true, ..SinkOptions::default() });

    testing::run_child_part("the_buttons_and_the_sound_are_offered", &bus).unwrap();

    let call = sink.wait_for_notify(WAIT, |call| call.summary.contains("PO-2024-0042")).unwrap();
    assert_eq!(
        call.actions,
        [
            "default",
            "Show in Tidings",
            "open",
            "Open ↗ erp.example.com",
            "snooze-15",
            "Remind me in 15 min"
        ]
    );
    assert_eq!(call.sound_name.as_deref(), Some("message-new-instant"));
}

/// Runs the child part `name` while the sink invokes `action` on every
/// notification about PO-2024-0042 (the child asserts what reaches it).
fn invoke(name: &str, action: &str) {
    let (bus, _sink) = start_bus_and_sink(SinkOptions {
        click_when_contains: Some("PO-2024-0042".into()),
        click_action: Some(action.into()),
        ..SinkOptions::default()
    });
    testing::run_child_part(name, &bus).unwrap();
}

fn first_response(
    responses: &mut tokio::sync::mpsc::Receiver<NotificationResponse>,
    wait: Duration,
) -> Option<NotificationResponse> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async { tokio::time::timeout(wait, responses.recv()).await }).ok().flatten()
}

#[test]
fn invoking_open_reports_the_open_action_for_its_item() {
    testing::child_part("invoking_open_reports_the_open_action_for_its_item", || {
        let (notifier, mut responses) = NativeNotifier::start("Tidings");
        notifier.notify(approval_request()).expect("the sink accepts the notification");
        let response = first_response(&mut responses, WAIT).expect("a response");
        assert_eq!(
            response,
            NotificationResponse::Action { target: approval_target(), kind: ActionKind::Open }
        );
    });
    invoke("invoking_open_reports_the_open_action_for_its_item", "open");
}

#[test]
fn invoking_snooze_reports_the_snooze_action() {
    testing::child_part("invoking_snooze_reports_the_snooze_action", || {
        let (notifier, mut responses) = NativeNotifier::start("Tidings");
        notifier.notify(approval_request()).expect("the sink accepts the notification");
        let response = first_response(&mut responses, WAIT).expect("a response");
        assert_eq!(
            response,
            NotificationResponse::Action {
                target: approval_target(),
                kind: ActionKind::Snooze { minutes: 15 }
            }
        );
    });
    invoke("invoking_snooze_reports_the_snooze_action", "snooze-15");
}

#[test]
fn an_action_the_notification_does_not_offer_is_ignored() {
    testing::child_part("an_action_the_notification_does_not_offer_is_ignored", || {
        let (notifier, mut responses) = NativeNotifier::start("Tidings");
        notifier.notify(approval_request()).expect("the sink accepts the notification");
        let response = first_response(&mut responses, Duration::from_secs(2));
        assert_eq!(response, None, "a forged action id leads nowhere");
    });
    invoke("an_action_the_notification_does_not_offer_is_ignored", "open-https://evil.example");
}

#[test]
fn without_a_notification_daemon_notify_says_unavailable() {
    testing::child_part("without_a_notification_daemon_notify_says_unavailable", || {
        let (notifier, mut responses) = NativeNotifier::start("Tidings");
        // Queued at once; that it could not be shown comes back as a message.
        notifier.notify(approval_request()).expect("queued without waiting");
        let response = responses.blocking_recv().expect("the notifier runs");
        let NotificationResponse::NotShown { request, error } = response else {
            panic!("got {response:?}")
        };
        assert_eq!(request, approval_request(), "the request comes back, to show it elsewhere");
        assert!(matches!(error, NotifyError::Unavailable(_)), "got {error:?}");
        // Asked again, it answers Unavailable at once (no second probe).
        let again = notifier.notify(inventory_change("k", "Low stock"));
        assert!(matches!(again, Err(NotifyError::Unavailable(_))), "got {again:?}");
    });
    let bus = PrivateSessionBus::start().expect("start a private dbus-daemon");

    testing::run_child_part("without_a_notification_daemon_notify_says_unavailable", &bus).unwrap();
}

#[test]
fn the_same_key_replaces_the_earlier_notification() {
    testing::child_part("the_same_key_replaces_the_earlier_notification", || {
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        notifier.notify(inventory_change("summary:inventory", "3 inventory changes")).unwrap();
        notifier.notify(inventory_change("summary:inventory", "12 inventory changes")).unwrap();
        notifier.notify(inventory_change("other", "Low stock: Widget")).unwrap();
        assert!(notifier.settle(WAIT), "the notifications were sent");
    });
    let (bus, sink) = start_bus_and_sink(SinkOptions::default());

    testing::run_child_part("the_same_key_replaces_the_earlier_notification", &bus).unwrap();

    let first = sink.wait_for_notify(WAIT, |call| call.summary == "3 inventory changes").unwrap();
    let second = sink.wait_for_notify(WAIT, |call| call.summary == "12 inventory changes").unwrap();
    let other = sink.wait_for_notify(WAIT, |call| call.summary == "Low stock: Widget").unwrap();
    assert_eq!(first.replaces_id, 0);
    assert_eq!(second.replaces_id, first.id);
    assert_eq!(second.id, first.id);
    assert_eq!(other.replaces_id, 0);
    assert_ne!(other.id, first.id);
}

#[test]
fn an_ordinary_notification_expires_by_the_daemon_default_and_has_no_action() {
    testing::child_part(
        "an_ordinary_notification_expires_by_the_daemon_default_and_has_no_action",
        || {
            let (notifier, _responses) = NativeNotifier::start("Tidings");
            let mut request = inventory_change("k", "Stock adjusted");
            request.urgency = Urgency::Low;
            notifier.notify(request).unwrap();
            assert!(notifier.settle(WAIT), "the notification was sent");
        },
    );
    let (bus, sink) = start_bus_and_sink(SinkOptions::default());

    testing::run_child_part(
        "an_ordinary_notification_expires_by_the_daemon_default_and_has_no_action",
        &bus,
    )
    .unwrap();

    let call = sink.wait_for_notify(WAIT, |call| call.summary == "Stock adjusted").unwrap();
    assert_eq!(call.urgency, Some(0), "low urgency hint");
    assert_eq!(call.resident, None);
    assert_eq!(call.expire_timeout, -1, "the daemon's default timeout");
    assert!(call.actions.is_empty(), "nothing to focus, so no action: {:?}", call.actions);
}

#[test]
fn text_is_escaped_for_a_daemon_that_renders_body_markup() {
    testing::child_part("text_is_escaped_for_a_daemon_that_renders_body_markup", || {
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        let mut request = inventory_change("k", "Customer <b>renamed</b>");
        request.body = "<a href=\"https://evil.example\">R&D</a>".into();
        notifier.notify(request).unwrap();
        assert!(notifier.settle(WAIT), "the notification was sent");
    });
    let (bus, sink) = start_bus_and_sink(SinkOptions { body_markup: true, ..Default::default() });

    testing::run_child_part("text_is_escaped_for_a_daemon_that_renders_body_markup", &bus).unwrap();

    let call = sink.wait_for_notify(WAIT, |call| call.summary.contains("renamed")).unwrap();
    assert_eq!(call.body, "&lt;a href=&quot;https://evil.example&quot;&gt;R&amp;D&lt;/a&gt;");
    assert_eq!(
        call.summary, "Customer &lt;b&gt;renamed&lt;/b&gt;",
        "plain text by the spec, but some daemons (dunst) render markup in it"
    );
}

#[test]
fn text_is_sent_as_it_is_to_a_daemon_without_markup() {
    testing::child_part("text_is_sent_as_it_is_to_a_daemon_without_markup", || {
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        let mut request = inventory_change("k", "R&D <new>");
        request.body = "Tom & Jerry <3".into();
        notifier.notify(request).unwrap();
        assert!(notifier.settle(WAIT), "the notification was sent");
    });
    let (bus, sink) = start_bus_and_sink(SinkOptions { body_markup: false, ..Default::default() });

    testing::run_child_part("text_is_sent_as_it_is_to_a_daemon_without_markup", &bus).unwrap();

    let call = sink.wait_for_notify(WAIT, |call| call.summary.contains("R&D")).unwrap();
    assert_eq!((call.summary.as_str(), call.body.as_str()), ("R&D <new>", "Tom & Jerry <3"));
}

#[test]
fn closing_a_key_closes_the_notification_shown_under_it() {
    testing::child_part("closing_a_key_closes_the_notification_shown_under_it", || {
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        notifier.notify(approval_request()).unwrap();
        notifier.notify(inventory_change("other", "Low stock: Widget")).unwrap();
        notifier.close(&approval_request().key);
        notifier.close("never-shown");
        assert!(notifier.settle(WAIT), "the calls were made");
    });
    let (bus, sink) = start_bus_and_sink(SinkOptions::default());

    testing::run_child_part("closing_a_key_closes_the_notification_shown_under_it", &bus).unwrap();

    let shown = sink.wait_for_notify(WAIT, |call| call.summary.contains("PO-2024-0042")).unwrap();
    let closes: Vec<u32> = sink
        .records()
        .iter()
        .filter_map(|record| match record {
            SinkRecord::CloseNotification { id } => Some(*id),
            SinkRecord::Notify(_) => None,
        })
        .collect();
    assert_eq!(closes, [shown.id], "only the one under that key, once");
}

#[test]
fn a_daemon_that_never_answers_never_holds_the_caller() {
    testing::child_part("a_daemon_that_never_answers_never_holds_the_caller", || {
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        let started = std::time::Instant::now();
        let mut slowest = Duration::ZERO;
        let mut unavailable = false;
        // Past REPLY_TIMEOUT the notifier stops queueing behind the hung call.
        while started.elapsed() < tidings_notify::native::REPLY_TIMEOUT + Duration::from_secs(1) {
            let call = std::time::Instant::now();
            let result = notifier.notify(inventory_change("k", "Low stock"));
            notifier.close("k");
            slowest = slowest.max(call.elapsed());
            unavailable |= matches!(result, Err(NotifyError::Unavailable(_)));
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(slowest < Duration::from_millis(50), "a call took {slowest:?}");
        assert!(unavailable, "a daemon that does not answer is reported unavailable");
    });
    let (bus, sink) =
        start_bus_and_sink(SinkOptions { never_answer: true, ..SinkOptions::default() });

    testing::run_child_part("a_daemon_that_never_answers_never_holds_the_caller", &bus).unwrap();

    sink.wait_for_notify(WAIT, |call| call.summary == "Low stock")
        .expect("the hung daemon received the call it never answered");
}
