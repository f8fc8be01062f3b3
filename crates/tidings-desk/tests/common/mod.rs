//! What the desk's integration tests share: a [`Desk`] on a real
//! redis-server with a notifier that records what it was asked to show, and
//! helpers that await batches and notifications (with a timeout) instead of
//! sleeping.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings_desk::Desk;
use tidings_desk::config::{DeskConfig, default_settings};
use tidings_desk::ipc::{
    ConnectionState, FeedItem, Language, Profile, Settings, SourceKind, UiBatch,
};
use tidings_desk::notify::{NotificationRequest, Notifier, NotifyError};
use tidings_testkit::RedisServer;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Records every request; answers `Unavailable` when told to (a desktop
/// without a notification daemon).
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    calls: Mutex<Vec<NotificationRequest>>,
    closed: Mutex<Vec<String>>,
    changed: Notify,
    pub unavailable: bool,
}

impl Notifier for Recorded {
    fn notify(&self, request: NotificationRequest) -> Result<(), NotifyError> {
        self.calls.lock().unwrap().push(request);
        self.changed.notify_waiters();
        if self.unavailable {
            return Err(NotifyError::Unavailable("no daemon in this test".into()));
        }
        Ok(())
    }

    fn close(&self, key: &str) {
        self.closed.lock().unwrap().push(key.to_owned());
        self.changed.notify_waiters();
    }
}

impl Recorded {
    /// A notifier of a desktop where no notification daemon answers.
    pub(crate) fn unavailable() -> Self {
        Recorded { unavailable: true, ..Recorded::default() }
    }

    pub(crate) fn calls(&self) -> Vec<NotificationRequest> {
        self.calls.lock().unwrap().clone()
    }

    /// Keys the desk asked to close, oldest first.
    pub(crate) fn closed(&self) -> Vec<String> {
        self.closed.lock().unwrap().clone()
    }

    /// Waits until the keys closed so far satisfy `done`; panics after
    /// [`WAIT`].
    pub(crate) async fn wait_closed(&self, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let changed = self.changed.notified();
            let closed = self.closed();
            if done(&closed) {
                return closed;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("closes did not arrive in time; got {closed:#?}");
            }
        }
    }

    /// Waits until the calls so far satisfy `done`; panics after [`WAIT`].
    pub(crate) async fn wait_until(
        &self,
        mut done: impl FnMut(&[NotificationRequest]) -> bool,
    ) -> Vec<NotificationRequest> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let changed = self.changed.notified();
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("notifications did not arrive in time; got {calls:#?}");
            }
        }
    }
}

pub(crate) struct App {
    pub desk: Desk,
    pub batches: mpsc::Receiver<UiBatch>,
    pub notified: Arc<Recorded>,
}

/// Settings for a Redis source, English texts, user `u1`.
pub(crate) fn settings(redis: &RedisServer, profile: Profile) -> Settings {
    let mut settings = default_settings(profile);
    settings.source.kind = SourceKind::Redis;
    settings.source.url = redis.url();
    settings.source.user_id = Some("u1".into());
    settings.language = Language::En;
    settings
}

pub(crate) fn start_with(
    settings: Settings,
    dir: &std::path::Path,
    notifier: Arc<Recorded>,
) -> App {
    let config = DeskConfig {
        settings,
        config_path: dir.join("settings.toml"),
        data_dir: dir.to_path_buf(),
        config_error: None,
    };
    let (desk, batches) =
        Desk::start(config, notifier.clone(), CancellationToken::new()).expect("the desk starts");
    App { desk, batches, notified: notifier }
}

pub(crate) fn start(redis: &RedisServer, dir: &std::path::Path, profile: Profile) -> App {
    start_with(settings(redis, profile), dir, Arc::new(Recorded::default()))
}

impl App {
    pub(crate) async fn batch(&mut self) -> UiBatch {
        tokio::time::timeout(WAIT, self.batches.recv())
            .await
            .expect("a batch in time")
            .expect("the desk is running")
    }

    /// Waits for the source to be live.
    pub(crate) async fn live(&mut self) {
        loop {
            let batch = self.batch().await;
            if batch.status.is_some_and(|s| s.connection == ConnectionState::Live) {
                return;
            }
        }
    }

    /// Items from batches until `count` arrived (the policy has decided on
    /// each by then: it runs before an item joins a batch).
    pub(crate) async fn items(&mut self, count: usize) -> Vec<FeedItem> {
        let mut items = Vec::new();
        while items.len() < count {
            items.extend(self.batch().await.items);
        }
        items
    }
}

pub(crate) const APPROVAL: &str = r#"{"type":"approval:request","resourceType":"refund","resourceId":"r1","resourceNumber":"RF-2026-000042","requesterId":"u2","requesterName":"李娜","timestamp":1764000000000}"#;

pub(crate) fn low_stock(n: u32) -> String {
    format!(
        r#"{{"type":"inventory:change","productId":"p{n}","productName":"螺丝刀 {n}","action":"outbound","oldQuantity":12,"newQuantity":3,"changeAmount":-9,"timestamp":1764000000000}}"#
    )
}

pub(crate) fn order(n: u32) -> String {
    format!(
        r#"{{"type":"order:status","orderType":"sales","orderId":"o{n}","orderNumber":"SO-2026-{n:06}","oldStatus":"pending","newStatus":"shipped","timestamp":1764000000000}}"#
    )
}

pub(crate) fn system(level: &str, message: &str) -> String {
    format!(
        r#"{{"type":"system:alert","level":"{level}","message":"{message}","timestamp":1764000000000}}"#
    )
}

/// An approval request for resource `r{n}` (number `RF-{n:06}`).
pub(crate) fn approval(n: u32) -> String {
    format!(
        r#"{{"type":"approval:request","resourceType":"refund","resourceId":"r{n}","resourceNumber":"RF-{n:06}","requesterId":"u2","requesterName":"R","timestamp":1764000000000}}"#
    )
}

/// The decision on [`approval`] `n`: `approved` or `rejected`.
pub(crate) fn decision(n: u32, how: &str) -> String {
    format!(
        r#"{{"type":"approval:{how}","resourceType":"refund","resourceId":"r{n}","resourceNumber":"RF-{n:06}","requesterId":"u2","requesterName":"R","approverId":"u1","approverName":"A","timestamp":1764000000001}}"#
    )
}

pub(crate) const OVERDUE: &str = r#"{"type":"finance:overdue","action":"overdue","recordType":"payment","recordId":"f1","recordNumber":"AR-2026-000007","amount":1280.5,"customerName":"Acme","timestamp":1764000000000}"#;

/// An always-on recorder, as a gateway runs, holding the recording duty
/// once this returns, until the token is cancelled.
pub(crate) async fn recorder_up_all_along(redis: &RedisServer) -> CancellationToken {
    let cancel = CancellationToken::new();
    let config = tidings::recorder::RecorderConfig {
        url: redis.url(),
        history: Some(tidings::history::HistoryConfig::default()),
        duty: tidings::recorder::Duty::Always,
        backoff: tidings::Backoff::default(),
    };
    tokio::spawn(tidings::recorder::run_recorder(config, |_| {}, cancel.clone()));
    tidings_testkit::eventually("a recorder on duty", WAIT, || {
        redis.recording_duty_holder().is_some()
    })
    .await;
    cancel
}
