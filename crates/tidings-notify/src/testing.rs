//! What tests use to observe real desktop notifications: a private D-Bus
//! session bus, the notification sink on it, and a child process whose
//! session bus is the private one.
//!
//! notify-rust always connects to the session bus named by
//! `DBUS_SESSION_BUS_ADDRESS`, which is process-wide and cannot be set once
//! the test runs (changing the environment of a running process is
//! `unsafe`, and this workspace forbids `unsafe`). So a test does its
//! notifying in a child process: it re-runs its own test binary, filtered to
//! itself, with the variable set from the start.
//!
//! ```no_run
//! use tidings_notify::testing::{self, NotificationSink, PrivateSessionBus};
//!
//! #[test]
//! fn sends_one() {
//!     testing::child_part("sends_one", || {
//!         // Runs only in the child, on the private bus, then the child exits.
//!     });
//!     let bus = PrivateSessionBus::start().unwrap();
//!     let sink = NotificationSink::start(&bus).unwrap();
//!     testing::run_child_part("sends_one", &bus).unwrap();
//!     // ...assert on sink.wait_for_notify(...)
//! }
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::sink::{self, NotifyCall, RunningSink, SinkOptions, SinkRecord};

/// Set in a child started by [`run_child_part`] to the name of its test.
pub const CHILD_ENV: &str = "TIDINGS_NOTIFY_TEST_CHILD";

/// Printed by a child part that ran to its end.
const CHILD_DONE: &str = "tidings-notify: child part done";

/// How long a child part may run before it is killed and the test fails.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a test fixture could not be set up; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    #[error(
        "`dbus-daemon` was not found on PATH: install the Debian package `dbus-daemon` (scripts/setup.sh does)"
    )]
    /// No `dbus-daemon` executable on `PATH`.
    DbusDaemonMissing,
    #[error("could not start dbus-daemon: {0}")]
    /// `dbus-daemon` could not be started or did not report its address;
    /// holds why.
    DbusDaemon(String),
    #[error(transparent)]
    /// The notification sink could not start.
    Sink(#[from] sink::SinkError),
    /// The child part of a test ([`run_child_part`]) did not end
    /// successfully.
    #[error("the child part of test `{test}` failed: {reason}")]
    Child {
        /// The test's name.
        test: String,
        /// How it failed: timed out, exited unsuccessfully (with its output),
        /// or never ran the part.
        reason: String,
    },
    #[error("i/o error while setting up the test bus: {0}")]
    /// A file or process operation failed.
    Io(#[from] std::io::Error),
}

/// A `dbus-daemon` owned by one test, killed when dropped.
///
/// It runs with a configuration of its own rather than `--session`'s, so
/// that no D-Bus service file can start a real notification daemon on it:
/// a name is owned here only when a test owns it.
#[derive(Debug)]
pub struct PrivateSessionBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateSessionBus {
    /// [`PrivateSessionBus::start`] for test `test`: `None`, with a
    /// `SKIPPED` line saying why, when `dbus-daemon` is not installed;
    /// panics on any other failure.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        match Self::start() {
            Ok(bus) => Some(bus),
            Err(error @ TestingError::DbusDaemonMissing) => {
                eprintln!("SKIPPED {test}: {error}");
                None
            }
            Err(error) => panic!("{error}"),
        }
    }

    /// Starts the daemon and returns once it accepts connections.
    pub fn start() -> Result<Self, TestingError> {
        let dir = tempfile::Builder::new().prefix("tidings-dbus-").tempdir()?;
        let config = dir.path().join("session.conf");
        std::fs::write(&config, bus_config(dir.path()))?;
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => TestingError::DbusDaemonMissing,
                _ => TestingError::DbusDaemon(error.to_string()),
            })?;
        // dbus-daemon prints its address once it listens, or exits.
        let mut address = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        BufReader::new(stdout).read_line(&mut address)?;
        let address = address.trim().to_owned();
        if address.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Err(TestingError::DbusDaemon(format!(
                "it exited without printing its address: {}",
                stderr.trim()
            )));
        }
        Ok(Self { child, address, _dir: dir })
    }

    /// The address to connect to, e.g. `unix:path=/tmp/...`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sets `DBUS_SESSION_BUS_ADDRESS` for a process about to be started.
    pub fn configure(&self, command: &mut Command) {
        command.env("DBUS_SESSION_BUS_ADDRESS", &self.address);
    }
}

impl Drop for PrivateSessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bus_config(dir: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        dir.display()
    )
}

/// The notification sink serving on a [`PrivateSessionBus`], in this
/// process; stops when dropped.
#[derive(Debug)]
pub struct NotificationSink {
    running: RunningSink,
}

impl NotificationSink {
    /// Starts a sink that records and never clicks.
    pub fn start(bus: &PrivateSessionBus) -> Result<Self, TestingError> {
        Self::start_with(bus, SinkOptions::default())
    }

    /// Starts a sink with `options`; returns once it owns the name.
    pub fn start_with(bus: &PrivateSessionBus, options: SinkOptions) -> Result<Self, TestingError> {
        let running = zbus::block_on(sink::serve(Some(bus.address()), options))?;
        Ok(Self { running })
    }

    /// Every call so far, oldest first.
    pub fn records(&self) -> Vec<SinkRecord> {
        self.running.recorder().records()
    }

    /// Waits for a call that `wanted` accepts, for at most `timeout`.
    pub fn wait_for_record(
        &self,
        timeout: Duration,
        wanted: impl FnMut(&SinkRecord) -> bool,
    ) -> Option<SinkRecord> {
        self.running.recorder().wait_for(timeout, wanted)
    }

    /// Waits for a `Notify` call that `wanted` accepts, for at most `timeout`.
    pub fn wait_for_notify(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&NotifyCall) -> bool,
    ) -> Result<NotifyCall, String> {
        self.running
            .recorder()
            .wait_for(timeout, |record| record.as_notify().is_some_and(&mut wanted))
            .and_then(|record| record.as_notify().cloned())
            .ok_or_else(|| {
                format!(
                    "no matching Notify call within {timeout:?}; the sink received: {:?}",
                    self.records()
                )
            })
    }
}

/// In the child started by [`run_child_part`] for `test_name`, runs `body`
/// and ends the process (successfully if `body` returns); anywhere else,
/// does nothing. Call it first thing in the test.
pub fn child_part(test_name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test_name) {
        body();
        println!("{CHILD_DONE}");
        std::process::exit(0);
    }
}

/// What the child part printed.
#[derive(Debug)]
pub struct ChildOutput {
    /// Its standard output, as text.
    pub stdout: String,
    /// Its standard error, as text.
    pub stderr: String,
}

/// Re-runs the current test binary, filtered to `test_name`, with `bus` as
/// its session bus, and waits for its [`child_part`] to finish.
pub fn run_child_part(
    test_name: &str,
    bus: &PrivateSessionBus,
) -> Result<ChildOutput, TestingError> {
    let fail = |reason: String| TestingError::Child { test: test_name.to_owned(), reason };
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    bus.configure(&mut command);
    let child = command.spawn()?;

    // Wait on another thread so a hung child is killed after CHILD_TIMEOUT
    // instead of hanging the test run.
    let id = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    let output = match done_rx.recv_timeout(CHILD_TIMEOUT) {
        Ok(output) => output?,
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &id.to_string()]).status();
            let _ = waiter.join();
            return Err(fail(format!("it did not finish within {CHILD_TIMEOUT:?} and was killed")));
        }
    };
    let _ = waiter.join();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(fail(format!("it exited with {}:\n{stderr}\n{stdout}", output.status)));
    }
    if !stdout.contains(CHILD_DONE) {
        return Err(fail(format!(
            "it never ran; is `{test_name}` the exact name of the test? output:\n{stdout}"
        )));
    }
    Ok(ChildOutput { stdout, stderr })
}
