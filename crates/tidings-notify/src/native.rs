//! [`NativeNotifier`]: freedesktop notifications through notify-rust, with
//! urgency, resident approval requests, replacement and closing by key, and
//! clicks.
//!
//! [`Notifier::notify`] and [`Notifier::close`] only queue a job and return:
//! nothing the daemon does (answering slowly, or never) holds the caller.
//! Two threads, both owned by the notifier and ended by dropping it:
//! - the *sender* runs jobs one at a time (notify-rust's blocking `show`, or
//!   a `CloseNotification` call: one D-Bus round trip each). A notification
//!   it could not show comes back as [`NotificationResponse::NotShown`] on the
//!   response channel. While one job has waited for the daemon longer than
//!   [`REPLY_TIMEOUT`], `notify` answers [`NotifyError::Unavailable`] at once
//!   (the app then shows notifications in the window and asks again later);
//!   the jobs already queued wait for the daemon, and are shown late if it
//!   ever answers. Once the daemon was found missing, `notify` answers
//!   `Unavailable` at once for `REPROBE_AFTER`, then asks it again.
//! - the *click watcher* keeps the handle of every clickable notification and
//!   waits for the daemon's `ActionInvoked`/`NotificationClosed` on the
//!   handle's own connection (some daemons, dunst among them, send those
//!   signals only to the connection that sent the notification). It runs all
//!   waits on one thread and watches at most [`MAX_WATCHED`] notifications.
//!
//! Clicks, dismissals and notifications not shown come back as
//! [`NotificationResponse`]s on the bounded channel returned by
//! [`NativeNotifier::start`].

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_lite::future;
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use notify_rust::{CloseReason, Hint, Notification, Timeout};
use tidings_desk::ipc::Urgency;
use tidings_desk::notify::{
    ClickTarget, MAX_ACTIONS, NotificationAction, NotificationRequest, NotificationResponse,
    Notifier, NotifyError,
};
use tokio::sync::mpsc as tokio_mpsc;
use tokio_util::sync::CancellationToken;

/// Jobs (notifications to show) waiting for the sender thread. When full,
/// `notify` returns [`NotifyError::Refused`] at once instead of queueing
/// without end: the daemon is not keeping up. Closes wait outside it
/// ([`Closes`]), so none is lost to a full queue.
const JOB_QUEUE: usize = 64;

/// How long one call may wait for the daemon before `notify` stops queueing
/// behind it and answers [`NotifyError::Unavailable`] (the call itself is
/// left to finish whenever the daemon answers).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// Responses (clicks, dismissals, notifications not shown) waiting for the
/// app. When full, a new response is dropped and logged: the app has stopped
/// reading.
pub const RESPONSE_QUEUE: usize = 64;

/// Notifications whose clicks are watched at once. At the cap the oldest
/// watch is dropped (logged): that notification stays on screen, but a click
/// on it no longer focuses the window. Each watch holds one D-Bus connection.
pub const MAX_WATCHED: usize = 32;

/// Handed from the sender to the click watcher. When full (the watcher is
/// far behind), the new notification is shown but its click is not watched.
const WATCH_QUEUE: usize = 32;

/// Keys remembered to replace or close an earlier notification (coalesced
/// summaries reuse their key). Older keys are forgotten: a reused old key
/// then opens a new notification instead of replacing one long gone.
const REMEMBERED_KEYS: usize = 256;

/// After the daemon was found missing, how long before asking again (a
/// daemon may be started later in the session).
const REPROBE_AFTER: Duration = Duration::from_secs(30);

/// Shows [`NotificationRequest`]s as native desktop notifications.
#[derive(Debug)]
pub struct NativeNotifier {
    jobs: Option<SyncSender<(u64, Job)>>,
    sender_thread: Option<JoinHandle<()>>,
    busy: Arc<Busy>,
    closes: Arc<Closes>,
}

/// Keys to close, outside the job queue so that a close is never lost to a
/// full queue, and the numbering that keeps closes and jobs in the order
/// they were asked for: every job and every close takes the next number,
/// and the sender makes a close only after every job numbered before it
/// (a notification asked for and closed at once is shown, then closed).
/// Bounded like the keys the sender can close at all ([`REMEMBERED_KEYS`]):
/// past it the oldest is dropped (logged).
#[derive(Debug, Default)]
struct Closes {
    keys: std::sync::Mutex<VecDeque<(u64, String)>>,
    next: AtomicU64,
}

impl Closes {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, String)>> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn push(&self, key: &str) {
        let mut keys = self.lock();
        if keys.len() >= REMEMBERED_KEYS
            && let Some((_, oldest)) = keys.pop_front()
        {
            tracing::warn!(key = %oldest, "too many notifications waiting to be closed; this one stays on screen");
        }
        let number = self.number();
        keys.push_back((number, key.to_owned()));
    }

    /// The keys asked to close before job `before` (all with `u64::MAX`).
    fn take(&self, before: u64) -> Vec<String> {
        let mut keys = self.lock();
        let count = keys.iter().take_while(|(number, _)| *number < before).count();
        keys.drain(..count).map(|(_, key)| key).collect()
    }
}

#[derive(Debug)]
enum Job {
    Notify(NotificationRequest),
    /// Run the closes waiting in [`Closes`].
    Close,
    Check(SyncSender<Result<DaemonInfo, NotifyError>>),
    /// Answered once every job queued before it has run.
    Settle(SyncSender<()>),
}

/// What `notify` needs to know of the sender thread to answer at once:
/// since when its current job waits on the daemon, and since when the daemon
/// is known missing (milliseconds after `epoch`, plus one; 0: not so).
#[derive(Debug)]
struct Busy {
    epoch: Instant,
    since_ms: AtomicU64,
    missing_ms: AtomicU64,
}

impl Busy {
    fn new() -> Self {
        Self { epoch: Instant::now(), since_ms: AtomicU64::new(0), missing_ms: AtomicU64::new(0) }
    }

    fn now(&self) -> u64 {
        // +1 so that the epoch's first millisecond is not 0.
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn start(&self) {
        self.since_ms.store(self.now(), Ordering::Relaxed);
    }

    fn stop(&self) {
        self.since_ms.store(0, Ordering::Relaxed);
    }

    fn missing(&self, missing: bool) {
        self.missing_ms.store(if missing { self.now() } else { 0 }, Ordering::Relaxed);
    }

    fn elapsed(&self, since: &AtomicU64) -> Option<Duration> {
        let since = since.load(Ordering::Relaxed);
        (since != 0).then(|| Duration::from_millis(self.now().saturating_sub(since)))
    }

    /// Why `notify` should not queue now, if it should not.
    fn unavailable(&self) -> Option<NotifyError> {
        if let Some(waited) = self.elapsed(&self.since_ms).filter(|w| *w >= REPLY_TIMEOUT) {
            return Some(NotifyError::Unavailable(format!(
                "the notification daemon has not answered for {} s",
                waited.as_secs()
            )));
        }
        self.elapsed(&self.missing_ms).filter(|missing| *missing < REPROBE_AFTER).map(|_| {
            NotifyError::Unavailable("no notification daemon answered a moment ago".into())
        })
    }
}

/// What the notification daemon said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonInfo {
    /// The daemon's product name (`GetServerInformation`), e.g. `dunst`.
    pub name: String,
    /// The daemon's vendor (`GetServerInformation`).
    pub vendor: String,
    /// The daemon's version (`GetServerInformation`).
    pub version: String,
    /// Whether the daemon renders markup in bodies (then text is escaped).
    pub body_markup: bool,
    /// Whether the daemon plays sounds (`sound-name`); without it the
    /// notifier plays the sound itself ([`play_sound`]).
    pub sound: bool,
}

/// Sounds played by the app itself (daemon without the `sound`
/// capability) at most once in this long: a burst rings once.
pub const SOUND_EVERY: Duration = Duration::from_secs(2);

impl NativeNotifier {
    /// Starts the notifier's threads. `app_name` is sent with every
    /// notification (daemons group and label by it).
    ///
    /// Nothing is sent to D-Bus yet: the first notification (or
    /// [`Self::check_daemon`]) asks the daemon for its capabilities.
    pub fn start(app_name: &str) -> (Self, tokio_mpsc::Receiver<NotificationResponse>) {
        let (responses_tx, responses_rx) = tokio_mpsc::channel(RESPONSE_QUEUE);
        let (jobs_tx, jobs_rx) = mpsc::sync_channel(JOB_QUEUE);
        let app_name = app_name.to_owned();
        let busy = Arc::new(Busy::new());
        let closes = Arc::new(Closes::default());
        let sender = Sender::new(app_name, responses_tx, Arc::clone(&busy), Arc::clone(&closes));
        let sender_thread = std::thread::Builder::new()
            .name("tidings-notify".into())
            .spawn(move || sender.run(&jobs_rx))
            .expect("spawn the notification thread");
        let notifier =
            Self { jobs: Some(jobs_tx), sender_thread: Some(sender_thread), busy, closes };
        (notifier, responses_rx)
    }

    /// Waits (for at most `timeout`) until every job queued so far has run:
    /// for tests, and for an app about to exit that wants its last calls
    /// made. False when the daemon kept it waiting longer.
    pub fn settle(&self, timeout: Duration) -> bool {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().expect("jobs is only taken on drop");
        let deadline = Instant::now() + timeout;
        let mut job = Job::Settle(reply_tx);
        loop {
            match jobs.try_send((self.closes.number(), job)) {
                Ok(()) => break,
                Err(TrySendError::Full((_, back))) if Instant::now() < deadline => {
                    job = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        reply_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok()
    }

    /// Asks the daemon who it is; `Err(Unavailable)` when none answers.
    pub fn check_daemon(&self) -> Result<DaemonInfo, NotifyError> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        self.submit(Job::Check(reply_tx))?;
        wait_reply(&reply_rx)
    }

    fn submit(&self, job: Job) -> Result<(), NotifyError> {
        let jobs = self.jobs.as_ref().expect("jobs is only taken on drop");
        match jobs.try_send((self.closes.number(), job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(NotifyError::Refused(format!(
                "{JOB_QUEUE} notifications are already waiting for the notification daemon; \
                 this one was dropped"
            ))),
            Err(TrySendError::Disconnected(_)) => {
                Err(NotifyError::Unavailable("the notification thread has stopped".into()))
            }
        }
    }
}

fn wait_reply<T>(reply: &mpsc::Receiver<Result<T, NotifyError>>) -> Result<T, NotifyError> {
    match reply.recv_timeout(REPLY_TIMEOUT) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => Err(NotifyError::Refused(format!(
            "the notification daemon did not answer within {} s",
            REPLY_TIMEOUT.as_secs()
        ))),
        Err(RecvTimeoutError::Disconnected) => {
            Err(NotifyError::Unavailable("the notification thread has stopped".into()))
        }
    }
}

impl Notifier for NativeNotifier {
    fn notify(&self, request: NotificationRequest) -> Result<(), NotifyError> {
        if let Some(error) = self.busy.unavailable() {
            return Err(error);
        }
        self.submit(Job::Notify(request))
    }

    fn close(&self, key: &str) {
        self.closes.push(key);
        // Wakes the sender. A full queue is fine: the sender makes waiting
        // closes before each later job, and all of them once it is idle.
        let jobs = self.jobs.as_ref().expect("jobs is only taken on drop");
        let _ = jobs.try_send((self.closes.number(), Job::Close));
    }
}

impl Drop for NativeNotifier {
    fn drop(&mut self) {
        // Closing the queue is the shutdown signal: the sender finishes the
        // notification in hand, closes the watcher's queue and returns; the
        // watcher then drops its watches and returns too.
        self.jobs.take();
        if let Some(thread) = self.sender_thread.take() {
            // Joining could wait on a hung daemon; the thread ends on its own
            // once the call returns, so only join when it already has.
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// What the sender knows about the daemon.
#[derive(Debug)]
enum Daemon {
    Unknown,
    Available(DaemonInfo),
    Missing { reason: String, since: Instant },
}

/// The sender thread's state.
struct Sender {
    app_name: String,
    daemon: Daemon,
    /// Whether "no daemon" was already logged (it is said once).
    reported_missing: bool,
    ids: RecentIds,
    watcher: Option<Watcher>,
    responses: tokio_mpsc::Sender<NotificationResponse>,
    busy: Arc<Busy>,
    closes: Arc<Closes>,
    /// For `CloseNotification` calls; opened on the first one.
    bus: Option<zbus::Connection>,
    /// When the app last played a sound itself.
    sounded_at: Option<Instant>,
}

impl Sender {
    fn new(
        app_name: String,
        responses: tokio_mpsc::Sender<NotificationResponse>,
        busy: Arc<Busy>,
        closes: Arc<Closes>,
    ) -> Self {
        Self {
            app_name,
            daemon: Daemon::Unknown,
            reported_missing: false,
            ids: RecentIds::default(),
            watcher: Watcher::start(responses.clone()),
            responses,
            busy,
            closes,
            bus: None,
            sounded_at: None,
        }
    }

    fn run(mut self, jobs: &mpsc::Receiver<(u64, Job)>) {
        while let Some((number, job)) = self.next_job(jobs) {
            self.busy.start();
            for key in self.closes.take(number) {
                self.close(&key);
            }
            match job {
                Job::Notify(request) => {
                    if let Err(error) = self.show(request.clone()) {
                        self.respond(NotificationResponse::NotShown { request, error });
                    }
                }
                Job::Close => {}
                Job::Check(reply) => {
                    let _ = reply.send(self.daemon_info());
                }
                Job::Settle(reply) => {
                    let _ = reply.send(());
                }
            }
            self.busy.stop();
        }
        if let Some(watcher) = self.watcher.take() {
            watcher.stop();
        }
    }

    /// The next job; while there is none, every waiting close is made
    /// first (all jobs asked for before them are done). `None` at the end.
    fn next_job(&mut self, jobs: &mpsc::Receiver<(u64, Job)>) -> Option<(u64, Job)> {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        self.busy.start();
        for key in self.closes.take(u64::MAX) {
            self.close(&key);
        }
        self.busy.stop();
        jobs.recv().ok()
    }

    fn respond(&self, response: NotificationResponse) {
        if let Err(error) = self.responses.try_send(response) {
            tracing::warn!(%error, "the app is not reading notification responses; one was dropped");
        }
    }

    /// Closes the notification shown under `key`, if it is one we know.
    fn close(&mut self, key: &str) {
        let Some(id) = self.ids.remove(key) else { return };
        let bus = self.bus.take();
        let closed = zbus::block_on(async move {
            let bus = match bus {
                Some(bus) => bus,
                None => zbus::Connection::session().await?,
            };
            bus.call_method(
                Some("org.freedesktop.Notifications"),
                "/org/freedesktop/Notifications",
                Some("org.freedesktop.Notifications"),
                "CloseNotification",
                &(id,),
            )
            .await?;
            Ok::<_, zbus::Error>(bus)
        });
        match closed {
            Ok(bus) => self.bus = Some(bus),
            Err(error) => {
                tracing::warn!(%key, %error, "could not close a notification; it stays on screen");
            }
        }
    }

    /// The daemon's description, asking it when not yet known (or when it
    /// was missing long enough ago to try again).
    fn daemon_info(&mut self) -> Result<DaemonInfo, NotifyError> {
        match &self.daemon {
            Daemon::Available(info) => return Ok(info.clone()),
            Daemon::Missing { reason, since } if since.elapsed() < REPROBE_AFTER => {
                return Err(NotifyError::Unavailable(reason.clone()));
            }
            _ => {}
        }
        match probe() {
            Ok(info) => {
                if self.reported_missing {
                    tracing::info!(daemon = %info.name, "a notification daemon answers again; native notifications are back");
                    self.reported_missing = false;
                }
                self.daemon = Daemon::Available(info.clone());
                self.busy.missing(false);
                Ok(info)
            }
            Err(reason) => {
                if !self.reported_missing {
                    tracing::warn!(%reason, "no notification daemon on the D-Bus session bus; notifications are shown inside the window instead");
                    self.reported_missing = true;
                }
                self.daemon = Daemon::Missing { reason: reason.clone(), since: Instant::now() };
                self.busy.missing(true);
                Err(NotifyError::Unavailable(reason))
            }
        }
    }

    fn show(&mut self, request: NotificationRequest) -> Result<(), NotifyError> {
        let info = self.daemon_info()?;
        let notification = build(&self.app_name, &request, &info, self.ids.get(&request.key));
        let handle = match notification.show() {
            Ok(handle) => handle,
            Err(error) => {
                // Ask again: a daemon that went away makes us Unavailable
                // (the app switches to in-app toasts); one that is still
                // there but refused this call is a Refused.
                self.daemon = Daemon::Unknown;
                self.daemon_info()?;
                return Err(NotifyError::Refused(error.to_string()));
            }
        };
        self.ids.insert(request.key.clone(), handle.id());
        if let Some(sound) = &request.sound
            && !info.sound
            && self.sounded_at.is_none_or(|at| at.elapsed() >= SOUND_EVERY)
        {
            self.sounded_at = Some(Instant::now());
            play_sound(sound);
        }
        if let (Some(target), Some(watcher)) = (request.target, &self.watcher) {
            let actions = request.actions;
            watcher.watch(Watch { key: request.key, target, actions, handle });
        }
        Ok(())
    }
}

/// Asks the daemon for its name and capabilities.
fn probe() -> Result<DaemonInfo, String> {
    let server = notify_rust::get_server_information().map_err(|error| error.to_string())?;
    // A daemon that answers GetServerInformation but not GetCapabilities is
    // broken enough; treat markup as unsupported and go on.
    let capabilities = notify_rust::get_capabilities().unwrap_or_default();
    Ok(DaemonInfo {
        name: server.name,
        vendor: server.vendor,
        version: server.version,
        body_markup: capabilities.iter().any(|capability| capability == "body-markup"),
        sound: capabilities.iter().any(|capability| capability == "sound"),
    })
}

/// Plays the freedesktop sound `name` without the daemon: a player from the
/// desktop's sound stack (`canberra-gtk-play -i NAME`, else `paplay` or
/// `pw-play` on the theme's file), started as a child process and reaped
/// by a thread of its own, so nothing here waits. Where none is installed
/// nothing plays (logged once at debug level each time it is asked).
pub fn play_sound(name: &str) {
    // Only names of our own making reach here, but a name is a path
    // segment below: keep it to what sound theme names use.
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return;
    }
    let file = format!("/usr/share/sounds/freedesktop/stereo/{name}.oga");
    let tries: [(&str, Vec<String>); 3] = [
        ("canberra-gtk-play", vec!["-i".into(), name.into()]),
        ("paplay", vec![file.clone()]),
        ("pw-play", vec![file]),
    ];
    for (program, args) in tries {
        let child = std::process::Command::new(program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = child {
            let _ = std::thread::Builder::new()
                .name("tidings-sound".into())
                .spawn(move || child.wait());
            return;
        }
    }
    tracing::debug!(%name, "no sound player (canberra-gtk-play, paplay, pw-play) found; no sound");
}

/// The notify-rust notification for one request.
fn build(
    app_name: &str,
    request: &NotificationRequest,
    daemon: &DaemonInfo,
    replaces: Option<u32>,
) -> Notification {
    let mut notification = Notification::new();
    // Text from the network must never become markup. A daemon that renders
    // markup in bodies gets both texts escaped: the summary is plain text by
    // the spec, but dunst, for one, renders markup in it too. A daemon
    // without the capability shows text as it is, so it gets it unescaped.
    // (Control and bidi characters and lengths are the core's job, done
    // before: `tidings_desk::text`.)
    let text = |text: &str| if daemon.body_markup { escape_markup(text) } else { text.to_owned() };
    notification.appname(app_name).summary(&text(&request.title)).urgency(match request.urgency {
        Urgency::Low => notify_rust::Urgency::Low,
        Urgency::Normal => notify_rust::Urgency::Normal,
        Urgency::Critical => notify_rust::Urgency::Critical,
    });
    notification.body(&text(&request.body));
    if request.resident {
        notification.hint(Hint::Resident(true)).timeout(Timeout::Never);
    }
    if request.target.is_some() {
        // The "default" action is what a click on the notification body
        // invokes; without it many daemons report nothing.
        let label = if request.default_label.is_empty() {
            "Show in Tidings".to_owned()
        } else {
            text(&request.default_label)
        };
        notification.action("default", &label);
        for action in request.actions.iter().take(MAX_ACTIONS) {
            if action.id != "default" {
                notification.action(&action.id, &text(&action.label));
            }
        }
    }
    if let Some(sound) = &request.sound {
        notification.hint(Hint::SoundName(sound.clone()));
    }
    if let Some(id) = replaces {
        notification.id(id);
    }
    notification
}

/// Escapes the characters freedesktop markup gives meaning to.
pub fn escape_markup(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Daemon-assigned ids of the most recent keys, so the same key replaces.
#[derive(Default)]
struct RecentIds {
    ids: HashMap<String, u32>,
    order: VecDeque<String>,
}

impl RecentIds {
    fn get(&self, key: &str) -> Option<u32> {
        self.ids.get(key).copied()
    }

    fn remove(&mut self, key: &str) -> Option<u32> {
        let id = self.ids.remove(key)?;
        self.order.retain(|known| known != key);
        Some(id)
    }

    fn insert(&mut self, key: String, id: u32) {
        if self.ids.insert(key.clone(), id).is_none() {
            self.order.push_back(key);
            if self.order.len() > REMEMBERED_KEYS
                && let Some(oldest) = self.order.pop_front()
            {
                self.ids.remove(&oldest);
            }
        }
    }
}

/// One clickable notification being watched.
struct Watch {
    key: String,
    target: ClickTarget,
    /// The buttons offered: an action id the daemon reports is looked up
    /// here, never trusted as it is.
    actions: Vec<NotificationAction>,
    handle: notify_rust::NotificationHandle,
}

/// The click watcher thread and its queue.
struct Watcher {
    watches: tokio_mpsc::Sender<Watch>,
    thread: JoinHandle<()>,
}

impl Watcher {
    fn start(responses: tokio_mpsc::Sender<NotificationResponse>) -> Option<Self> {
        let (watches_tx, watches_rx) = tokio_mpsc::channel(WATCH_QUEUE);
        let thread = std::thread::Builder::new()
            .name("tidings-notify-clicks".into())
            .spawn(move || zbus::block_on(watch_clicks(watches_rx, responses)));
        match thread {
            Ok(thread) => Some(Self { watches: watches_tx, thread }),
            Err(error) => {
                tracing::warn!(%error, "could not start the notification click watcher; clicks on notifications will not focus the window");
                None
            }
        }
    }

    fn watch(&self, watch: Watch) {
        if let Err(error) = self.watches.try_send(watch) {
            let (tokio_mpsc::error::TrySendError::Full(watch)
            | tokio_mpsc::error::TrySendError::Closed(watch)) = error;
            tracing::warn!(key = %watch.key, "the notification click watcher is behind; a click on this notification will not focus the window");
        }
    }

    fn stop(self) {
        drop(self.watches);
        // The watcher returns as soon as it sees its queue closed.
        let _ = self.thread.join();
    }
}

/// How one watch ended.
enum WatchEnd {
    Response(Box<NotificationResponse>),
    /// Closed without the user's hand (expired, closed by us), replaced,
    /// dropped at the cap, or the connection failed.
    Nothing,
}

/// Waits on every watched notification at once, on this one thread.
async fn watch_clicks(
    mut watches: tokio_mpsc::Receiver<Watch>,
    responses: tokio_mpsc::Sender<NotificationResponse>,
) {
    let mut waiting = FuturesUnordered::new();
    // Oldest first: (serial, key, stop). Used to drop the oldest at the cap
    // and to stop watching a notification its replacement now stands for.
    let mut open: VecDeque<(u64, String, CancellationToken)> = VecDeque::new();
    let mut next_serial = 0_u64;
    // Said once while the cap is reached, not for every notification after
    // it (a busy approver queue would repeat it every second).
    let mut said_full = false;

    enum Step {
        New(Option<Box<Watch>>),
        Ended(u64, WatchEnd),
    }

    loop {
        let step = future::or(async { Step::New(watches.recv().await.map(Box::new)) }, async {
            match waiting.next().await {
                Some((serial, end)) => Step::Ended(serial, end),
                None => future::pending().await,
            }
        })
        .await;

        match step {
            Step::New(None) => return,
            Step::New(Some(watch)) => {
                if let Some(index) = open.iter().position(|(_, key, _)| *key == watch.key) {
                    let (_, _, stop) = open.remove(index).expect("index from position");
                    stop.cancel();
                }
                if open.len() >= MAX_WATCHED
                    && let Some((_, key, stop)) = open.pop_front()
                {
                    if said_full {
                        tracing::debug!(%key, "stopped watching the oldest notification for clicks");
                    } else {
                        said_full = true;
                        tracing::warn!(%key, "watching {MAX_WATCHED} notifications already; from now on a click on the oldest ones will no longer focus the window (said once until fewer are open)");
                    }
                    stop.cancel();
                }
                let serial = next_serial;
                next_serial += 1;
                let stop = CancellationToken::new();
                open.push_back((serial, watch.key.clone(), stop.clone()));
                waiting.push(wait_for_click(serial, *watch, stop));
            }
            Step::Ended(serial, end) => {
                open.retain(|(open_serial, _, _)| *open_serial != serial);
                if open.len() < MAX_WATCHED / 2 {
                    said_full = false;
                }
                if let WatchEnd::Response(response) = end
                    && let Err(error) = responses.try_send(*response)
                {
                    tracing::warn!(%error, "the app is not reading notification clicks; one was dropped");
                }
            }
        }
    }
}

/// Waits for the user to act on one notification, or for `stop`.
async fn wait_for_click(serial: u64, watch: Watch, stop: CancellationToken) -> (u64, WatchEnd) {
    let Watch { key, target, actions, handle } = watch;
    let mut response = None;
    let wait = AssertUnwindSafe(handle.wait_for_action_async(|r| response = Some(r.clone())))
        .catch_unwind();
    let waited = future::or(async { Some(wait.await) }, async {
        stop.cancelled().await;
        None
    })
    .await;
    let end = match (waited, response) {
        (Some(Err(_panic)), _) => {
            tracing::warn!(%key, "lost the D-Bus connection while waiting for a click on a notification");
            WatchEnd::Nothing
        }
        (Some(Ok(())), Some(notify_rust::NotificationResponse::Default)) => {
            WatchEnd::Response(Box::new(NotificationResponse::Clicked(target)))
        }
        (Some(Ok(())), Some(notify_rust::NotificationResponse::Action(action)))
            if action == "default" =>
        {
            WatchEnd::Response(Box::new(NotificationResponse::Clicked(target)))
        }
        (Some(Ok(())), Some(notify_rust::NotificationResponse::Action(action))) => {
            match actions.iter().find(|offered| offered.id == action) {
                Some(offered) => WatchEnd::Response(Box::new(NotificationResponse::Action {
                    target,
                    kind: offered.kind,
                })),
                None => {
                    tracing::warn!(%key, action = %action.chars().take(64).collect::<String>(), "the notification daemon reported an action this notification does not offer; ignored");
                    WatchEnd::Nothing
                }
            }
        }
        (Some(Ok(())), Some(notify_rust::NotificationResponse::Closed(CloseReason::Dismissed))) => {
            WatchEnd::Response(Box::new(NotificationResponse::Dismissed { key }))
        }
        _ => WatchEnd::Nothing,
    };
    (serial, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape_markup(r#"<b>5 & 6</b> "x" 'y'"#),
            "&lt;b&gt;5 &amp; 6&lt;/b&gt; &quot;x&quot; &apos;y&apos;"
        );
    }

    #[test]
    fn recent_ids_forget_the_oldest_key_past_the_cap() {
        let mut ids = RecentIds::default();
        for n in 0..=REMEMBERED_KEYS as u32 {
            ids.insert(format!("key-{n}"), n + 1);
        }
        assert_eq!(ids.get("key-0"), None);
        assert_eq!(ids.get("key-1"), Some(2));
        assert_eq!(ids.ids.len(), REMEMBERED_KEYS);
    }

    #[test]
    fn a_known_key_keeps_its_place_and_takes_the_new_id() {
        let mut ids = RecentIds::default();
        ids.insert("summary".into(), 7);
        ids.insert("summary".into(), 9);
        assert_eq!(ids.get("summary"), Some(9));
        assert_eq!(ids.order.len(), 1);
    }
}
