//! A stand-in notification daemon for tests: owns
//! `org.freedesktop.Notifications` on a bus, records every call, and can
//! play a user clicking a notification.
//!
//! It implements the calls a client makes (`Notify`, `GetCapabilities`,
//! `GetServerInformation`, `CloseNotification`) and emits the two signals a
//! client listens to (`ActionInvoked`, `NotificationClosed`), addressed to
//! the connection that sent the notification, as dunst does: a client that
//! works with this sink also works with daemons that do not broadcast.
//! With [`SinkOptions::never_answer`] it plays a daemon that has hung.
//! Nothing is shown. Each call becomes one [`SinkRecord`], kept in memory and,
//! with [`SinkOptions::record`], appended to a file as one JSON line, flushed
//! at once so another process can follow it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use zbus::message::Header;
use zbus::{Connection, OwnedVariant, Variant, interface};

/// The well-known bus name the sink owns.
pub const BUS_NAME: &str = "org.freedesktop.Notifications";
/// The object path the sink serves the interface at.
pub const OBJECT_PATH: &str = "/org/freedesktop/Notifications";
/// The D-Bus interface the sink implements.
pub const INTERFACE: &str = "org.freedesktop.Notifications";

/// Wait before the first simulated click, then between repeats, and for how
/// long to repeat (see the crate docs, "Simulated clicks").
const FIRST_CLICK_AFTER: Duration = Duration::from_millis(100);
const CLICK_EVERY: Duration = Duration::from_millis(200);
const CLICK_FOR: Duration = Duration::from_secs(5);

/// How the sink behaves.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Append each call as a JSON line to this file.
    pub record: Option<PathBuf>,
    /// Click every notification whose summary or body contains this text
    /// (a summary is often generic, "Approval requested", and the body
    /// names the item).
    pub click_when_contains: Option<String>,
    /// Advertise the `body-markup` capability (clients must then escape).
    pub body_markup: bool,
    /// The action key a simulated click invokes (`ActionInvoked(id, KEY)`);
    /// `None`: `default`, a click on the body. Any key is sent as it is,
    /// offered or not, to play a daemon (or another client) that lies.
    pub click_action: Option<String>,
    /// Advertise the `sound` capability (clients then leave sounds to it).
    pub sound: bool,
    /// Play a daemon that has hung: record `Notify` and `CloseNotification`
    /// calls but never reply to them (`GetServerInformation` and
    /// `GetCapabilities` are still answered, so a client gets as far as
    /// `Notify`). Each call waits in a task of its own until the sink stops.
    pub never_answer: bool,
}

/// One call the sink received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call")]
pub enum SinkRecord {
    /// A `Notify` call.
    Notify(NotifyCall),
    /// A `CloseNotification` call.
    CloseNotification {
        /// The id of the notification asked to be closed.
        id: u32,
    },
}

/// The arguments of one `Notify` call, with the hints tests care about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyCall {
    /// The id the sink answered with.
    pub id: u32,
    /// Unique bus name of the caller.
    pub sender: String,
    /// The application name the caller gave.
    pub app_name: String,
    /// The id of the notification this one replaces; 0 for a new one.
    pub replaces_id: u32,
    /// Icon name or file URI; empty for none.
    pub app_icon: String,
    /// The notification's title line.
    pub summary: String,
    /// The notification's text, as sent (escaped if markup is advertised).
    pub body: String,
    /// Action keys and labels, alternating (`key, label, key, label, …`).
    pub actions: Vec<String>,
    /// The `urgency` hint: 0 low, 1 normal, 2 critical; absent if not sent.
    pub urgency: Option<u8>,
    /// The `resident` hint, absent if not sent.
    pub resident: Option<bool>,
    /// The `sound-name` hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound_name: Option<String>,
    /// Milliseconds; -1 is the daemon's default, 0 never expires.
    pub expire_timeout: i32,
}

impl SinkRecord {
    /// The `Notify` arguments, or `None` for any other call.
    pub fn as_notify(&self) -> Option<&NotifyCall> {
        match self {
            SinkRecord::Notify(call) => Some(call),
            SinkRecord::CloseNotification { .. } => None,
        }
    }
}

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The [`SinkOptions::record`] file could not be opened for appending.
    #[error("could not open the record file {path}: {source}")]
    RecordFile {
        /// The file asked for.
        path: PathBuf,
        /// Why it could not be opened.
        source: std::io::Error,
    },
    /// Connecting to the bus or owning [`BUS_NAME`] failed.
    #[error(
        "could not connect to the bus or own {BUS_NAME} ({0}); is another notification daemon running on this bus?"
    )]
    Bus(#[from] zbus::Error),
}

/// Everything the sink received, shared with whoever awaits it.
#[derive(Debug, Default)]
pub struct Recorder {
    records: Mutex<Vec<SinkRecord>>,
    changed: Condvar,
    file: Option<Mutex<File>>,
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Vec<SinkRecord>> {
        // A panic while holding the lock cannot leave the Vec half-written.
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, record: SinkRecord) {
        if let Some(file) = &self.file {
            let mut line = serde_json::to_string(&record).expect("records serialise");
            line.push('\n');
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(error) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                tracing::error!(%error, "notification sink could not write its record file");
            }
        }
        self.lock().push(record);
        self.changed.notify_all();
    }

    /// Every record so far, oldest first.
    pub fn records(&self) -> Vec<SinkRecord> {
        self.lock().clone()
    }

    /// Waits until a record matches `wanted`, for at most `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&SinkRecord) -> bool,
    ) -> Option<SinkRecord> {
        let deadline = Instant::now() + timeout;
        let mut records = self.lock();
        loop {
            if let Some(found) = records.iter().find(|record| wanted(record)) {
                return Some(found.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            records = self
                .changed
                .wait_timeout(records, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// A notification the sink considers on screen.
#[derive(Debug, Clone)]
struct Shown {
    /// Bumped when the notification is replaced, so a click loop for the
    /// old content stops.
    generation: u64,
    sender: String,
}

#[derive(Debug, Default)]
struct Screen {
    next_id: u32,
    next_generation: u64,
    shown: HashMap<u32, Shown>,
}

struct Daemon {
    options: SinkOptions,
    recorder: Arc<Recorder>,
    screen: Arc<Mutex<Screen>>,
    stopped: Arc<AtomicBool>,
    /// Cancelled when the sink stops: ends the calls it never answered.
    stop: CancellationToken,
}

fn lock_screen(screen: &Mutex<Screen>) -> MutexGuard<'_, Screen> {
    screen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[interface(name = "org.freedesktop.Notifications")]
impl Daemon {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        app_name: String,
        replaces_id: u32,
        app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        expire_timeout: i32,
    ) -> u32 {
        let sender = header.sender().map(|name| name.to_string()).unwrap_or_default();
        let (id, generation) = {
            let mut screen = lock_screen(&self.screen);
            let id = if replaces_id != 0 && screen.shown.contains_key(&replaces_id) {
                replaces_id
            } else {
                screen.next_id += 1;
                screen.next_id
            };
            screen.next_generation += 1;
            let generation = screen.next_generation;
            screen.shown.insert(id, Shown { generation, sender: sender.clone() });
            (id, generation)
        };
        let click = self
            .options
            .click_when_contains
            .as_deref()
            .is_some_and(|wanted| summary.contains(wanted) || body.contains(wanted));
        self.recorder.record(SinkRecord::Notify(NotifyCall {
            id,
            sender: sender.clone(),
            app_name,
            replaces_id,
            app_icon,
            summary,
            body,
            actions,
            urgency: hints.get("urgency").and_then(|hint| as_u8(hint)),
            resident: hints.get("resident").and_then(|hint| as_bool(hint)),
            sound_name: hints.get("sound-name").and_then(|hint| as_string(hint)),
            expire_timeout,
        }));
        if self.options.never_answer {
            self.hang().await;
        }
        if click {
            self.click_later(connection.clone(), id, generation, sender);
        }
        id
    }

    fn get_capabilities(&self) -> Vec<String> {
        let mut capabilities = vec!["body".to_owned(), "actions".to_owned()];
        if self.options.body_markup {
            capabilities.push("body-markup".to_owned());
        }
        capabilities.push("persistence".to_owned());
        if self.options.sound {
            capabilities.push("sound".to_owned());
        }
        capabilities
    }

    #[zbus(out_args("name", "vendor", "version", "spec_version"))]
    #[allow(clippy::unused_self, reason = "a D-Bus method: zbus calls it on the object")]
    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "tidings-notification-sink".to_owned(),
            "Tidings".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
            "1.2".to_owned(),
        )
    }

    async fn close_notification(&self, id: u32, #[zbus(connection)] connection: &Connection) {
        self.recorder.record(SinkRecord::CloseNotification { id });
        if self.options.never_answer {
            self.hang().await;
        }
        let closed = lock_screen(&self.screen).shown.remove(&id);
        if let Some(shown) = closed {
            // Reason 3: closed by a call to CloseNotification.
            let _ = connection
                .emit_signal(
                    Some(shown.sender.as_str()),
                    OBJECT_PATH,
                    INTERFACE,
                    "NotificationClosed",
                    &(id, 3_u32),
                )
                .await;
        }
    }
}

impl Daemon {
    /// Never returns while the sink runs (see [`SinkOptions::never_answer`]).
    async fn hang(&self) {
        self.stop.cancelled().await;
    }

    /// Plays a user clicking notification `id` (see the crate docs).
    fn click_later(&self, connection: Connection, id: u32, generation: u64, sender: String) {
        let screen = Arc::clone(&self.screen);
        let stopped = Arc::clone(&self.stopped);
        let action = self.options.click_action.clone().unwrap_or_else(|| "default".to_owned());
        // Ends by itself within CLICK_FOR, or sooner when the notification is
        // closed or replaced or the sink is stopped.
        let spawned =
            std::thread::Builder::new().name("notification-sink-click".into()).spawn(move || {
                let until = Instant::now() + CLICK_FOR;
                std::thread::sleep(FIRST_CLICK_AFTER);
                while Instant::now() < until && !stopped.load(Ordering::Relaxed) {
                    let current = lock_screen(&screen).shown.get(&id).map(|shown| shown.generation);
                    if current != Some(generation) {
                        return;
                    }
                    let emitted = zbus::block_on(connection.emit_signal(
                        Some(sender.as_str()),
                        OBJECT_PATH,
                        INTERFACE,
                        "ActionInvoked",
                        &(id, action.as_str()),
                    ));
                    if emitted.is_err() {
                        // The client went away: nobody to click for.
                        return;
                    }
                    std::thread::sleep(CLICK_EVERY);
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "notification sink could not start a simulated click");
        }
    }
}

fn as_u8(hint: &Variant<'_>) -> Option<u8> {
    match hint {
        Variant::U8(value) => Some(*value),
        Variant::Variant(inner) => as_u8(inner),
        _ => None,
    }
}

fn as_string(hint: &Variant<'_>) -> Option<String> {
    match hint {
        Variant::Str(text) => Some(text.to_string()),
        Variant::Variant(inner) => as_string(inner),
        _ => None,
    }
}

fn as_bool(hint: &Variant<'_>) -> Option<bool> {
    match hint {
        Variant::Bool(value) => Some(*value),
        Variant::Variant(inner) => as_bool(inner),
        _ => None,
    }
}

/// A sink serving on a bus; dropping it releases the name and disconnects.
#[derive(Debug)]
pub struct RunningSink {
    connection: Connection,
    recorder: Arc<Recorder>,
    stopped: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl RunningSink {
    /// Everything the sink has received so far, shared with its handlers.
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// The sink's unique name on the bus.
    pub fn unique_name(&self) -> Option<String> {
        self.connection.unique_name().map(|name| name.to_string())
    }
}

impl Drop for RunningSink {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.stop.cancel();
    }
}

/// Connects to the bus at `address` (or the session bus when `None`), owns
/// `org.freedesktop.Notifications` and serves it until dropped. Returns once
/// the name is owned, so a client calling right after finds it.
pub async fn serve(address: Option<&str>, options: SinkOptions) -> Result<RunningSink, SinkError> {
    let file = match &options.record {
        Some(path) => Some(Mutex::new(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| SinkError::RecordFile { path: path.clone(), source })?,
        )),
        None => None,
    };
    let recorder = Arc::new(Recorder { file, ..Recorder::default() });
    let stopped = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let daemon = Daemon {
        options,
        recorder: Arc::clone(&recorder),
        screen: Arc::default(),
        stopped: Arc::clone(&stopped),
        stop: stop.clone(),
    };
    let builder = match address {
        Some(address) => zbus::connection::Builder::address(address),
        None => zbus::connection::Builder::session(),
    };
    let connection = builder.serve_at(OBJECT_PATH, daemon).name(BUS_NAME).build().await?;
    Ok(RunningSink { connection, recorder, stopped, stop })
}
