//! Notifications follow what they announce, on a real D-Bus (issue 17,
//! item 2): the desk, on a real redis-server, notifies through the
//! notify-rust notifier to the `tidings-notify` sink on a private session
//! bus; the sink records every `Notify` and `CloseNotification`, and this
//! process works out from them what is still on screen.
//!
//! The desk runs in a child process with the private bus as its session bus
//! (see `tidings_notify::testing`). In the child, the notifier is wrapped so
//! the child can await what the desk asked for (the policy's last summary,
//! a close) instead of sleeping, then waits for the notifier to have made
//! every call before it exits.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{WAIT, approval, decision, settings};
use tidings_desk::Desk;
use tidings_desk::config::DeskConfig;
use tidings_desk::ipc::{ConnectionState, Profile, UiBatch};
use tidings_desk::notify::{NotificationRequest, Notifier, NotifyError};
use tidings_desk::routing::MAX_RESIDENT;
use tidings_notify::NativeNotifier;
use tidings_notify::sink::{NotifyCall, SinkRecord};
use tidings_notify::testing::{self, NotificationSink, PrivateSessionBus};
use tidings_testkit::RedisServer;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// The native notifier, and what the desk asked of it.
struct Observed {
    native: NativeNotifier,
    asked: Mutex<Vec<String>>,
    changed: Notify,
}

impl Notifier for Observed {
    fn notify(&self, request: NotificationRequest) -> Result<(), NotifyError> {
        self.asked.lock().unwrap().push(format!("notify {}", request.title));
        self.changed.notify_waiters();
        self.native.notify(request)
    }

    fn close(&self, key: &str) {
        self.asked.lock().unwrap().push(format!("close {key}"));
        self.changed.notify_waiters();
        self.native.close(key);
    }
}

impl Observed {
    async fn wait_for(&self, what: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let changed = self.changed.notified();
            if self.asked.lock().unwrap().iter().any(|asked| asked == what) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("never asked to {what}; asked {:#?}", self.asked.lock().unwrap());
            }
        }
    }
}

/// A desk for an approver on the private bus; its notifier and batches.
async fn approver_desk(
    redis: &RedisServer,
    dir: &std::path::Path,
) -> (Desk, Arc<Observed>, mpsc::Receiver<UiBatch>) {
    let (native, _responses) = NativeNotifier::start("Tidings");
    let observed = Arc::new(Observed { native, asked: Mutex::default(), changed: Notify::new() });
    let config = DeskConfig {
        settings: settings(redis, Profile::Approver),
        config_path: dir.join("settings.toml"),
        data_dir: dir.to_path_buf(),
        config_error: None,
    };
    let (desk, mut batches) =
        Desk::start(config, observed.clone(), CancellationToken::new()).unwrap();
    loop {
        let batch = tokio::time::timeout(WAIT, batches.recv()).await.unwrap().unwrap();
        if batch.status.is_some_and(|s| s.connection == ConnectionState::Live) {
            break;
        }
    }
    (desk, observed, batches)
}

async fn items(batches: &mut mpsc::Receiver<UiBatch>, count: usize) {
    let mut seen = 0;
    while seen < count {
        seen += tokio::time::timeout(WAIT, batches.recv()).await.unwrap().unwrap().items.len();
    }
}

/// Publishes `payloads` on `ws:approvals`, 256 per round trip.
async fn publish_all(redis: &RedisServer, payloads: impl Iterator<Item = String>) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let payloads: Vec<String> = payloads.collect();
    for chunk in payloads.chunks(256) {
        let mut pipe = redis::pipe();
        for payload in chunk {
            pipe.cmd("PUBLISH").arg("ws:approvals").arg(payload).ignore();
        }
        let _: () = pipe.query_async(&mut connection).await.unwrap();
    }
}

/// Runs `child` in a child process on a private bus with the sink; the
/// sink's records, or `None` when there is no `dbus-daemon`.
fn on_the_private_bus(test: &str, child: fn()) -> Option<Vec<SinkRecord>> {
    testing::child_part(test, child);
    let bus = PrivateSessionBus::start_or_skip(test)?;
    let sink = NotificationSink::start(&bus).expect("the notification sink starts");
    testing::run_child_part(test, &bus).unwrap();
    Some(sink.records())
}

/// Notifications still on screen after `records`, by sink id.
fn on_screen(records: &[SinkRecord]) -> BTreeMap<u32, NotifyCall> {
    let mut open = BTreeMap::new();
    for record in records {
        match record {
            SinkRecord::Notify(call) => {
                open.insert(call.id, call.clone());
            }
            SinkRecord::CloseNotification { id } => {
                open.remove(id);
            }
        }
    }
    open
}

fn summaries(records: &[SinkRecord]) -> Vec<&NotifyCall> {
    records
        .iter()
        .filter_map(SinkRecord::as_notify)
        .filter(|call| call.summary.contains("pending"))
        .collect()
}

/// The five of the fifty requests left undecided.
const STILL_PENDING: [u32; 5] = [0, 12, 25, 37, 49];

const FIFTY: &str = "fifty_approval_requests_of_which_45_are_resolved_leave_5_notifications_open";

fn fifty_requests_45_resolved() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let (desk, notifier, mut batches) = approver_desk(&redis, dir.path()).await;
        publish_all(&redis, (0..50).map(approval)).await;
        items(&mut batches, 50).await;
        notifier.wait_for("notify 45 approval requests pending").await;
        // 45 decided, approved or rejected, among those on screen and those
        // folded alike: folded ones take the places freed on screen.
        let decided = (0..50)
            .filter(|n| !STILL_PENDING.contains(n))
            .map(|n| decision(n, if n % 2 == 0 { "approved" } else { "rejected" }));
        publish_all(&redis, decided).await;
        items(&mut batches, 45).await;
        notifier.wait_for("close pending:Approvals").await;
        assert!(notifier.native.settle(WAIT), "the notifier made every call");
        desk.shutdown().await;
    });
}

#[test]
fn fifty_approval_requests_of_which_45_are_resolved_leave_5_notifications_open() {
    let Some(records) = on_the_private_bus(FIFTY, fifty_requests_45_resolved) else { return };
    let open = on_screen(&records);
    let bodies: Vec<&str> = open.values().map(|call| call.body.as_str()).collect();
    let pending: Vec<String> = STILL_PENDING.iter().map(|n| format!("RF-{n:06} · R")).collect();
    assert_eq!(bodies, pending, "exactly the undecided ones, each on its own");
    assert!(open.values().all(|call| call.urgency == Some(2) && call.resident == Some(true)));
    let summaries = summaries(&records);
    assert!(!summaries.is_empty(), "the 45 were folded into a summary: {records:#?}");
    assert!(summaries.iter().all(|call| call.urgency == Some(2) && call.resident == Some(true)));
}

const FLOOD: &str = "a_flood_of_1000_approval_requests_shows_a_handful_of_pop_ups_and_a_summary";

fn a_thousand_requests() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let (desk, notifier, mut batches) = approver_desk(&redis, dir.path()).await;
        publish_all(&redis, (0..1000).map(approval)).await;
        items(&mut batches, 1000).await;
        notifier.wait_for("notify 995 approval requests pending").await;
        assert!(notifier.native.settle(WAIT), "the notifier made every call");
        desk.shutdown().await;
    });
}

#[test]
fn a_flood_of_1000_approval_requests_shows_a_handful_of_pop_ups_and_a_summary() {
    let Some(records) = on_the_private_bus(FLOOD, a_thousand_requests) else { return };
    let calls: Vec<&NotifyCall> = records.iter().filter_map(SinkRecord::as_notify).collect();
    let summaries = summaries(&records);
    let pop_ups = calls.len() - summaries.len();
    assert_eq!(pop_ups, MAX_RESIDENT, "a handful of pop-ups: {calls:#?}");
    let last = summaries.last().expect("a summary");
    assert_eq!(last.summary, "995 approval requests pending");
    assert!(summaries.iter().all(|call| call.id == summaries[0].id), "updated in place");
    assert!(summaries[1..].iter().all(|call| call.replaces_id == summaries[0].id));
    assert!(summaries.len() <= 15, "refreshed at most once a second: {}", summaries.len());
    assert_eq!(on_screen(&records).len(), MAX_RESIDENT + 1);
}
