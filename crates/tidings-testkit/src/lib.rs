//! Test support shared by every crate's integration tests.
//!
//! [`RedisServer`] starts the real `redis-server` from the machine on a free
//! loopback port, in a private temporary directory with persistence off
//! (or on, with [`RedisServer::start_persistent`]), and
//! kills it when dropped. Tests can kill and restart it on the same port to
//! prove reconnects. [`redis_cli`] runs the real `redis-cli`, the way an
//! operator or the TypeScript backend's `PUBLISH` would reach Redis.
//!
//! [`TcpProxy`] stands between a client and a server so a test can cut the
//! network for a while. [`SentinelSetup`] runs a primary, a replica and
//! three sentinels, so a test can kill the primary and watch a failover.
//!
//! Waiting and retrying have one home each: [`eventually`] (and
//! [`eventually_blocking`] for tests without a runtime) polls a condition no
//! event announces; [`retry`] repeats an attempt, such as a publish while
//! Redis restarts, until it succeeds. Everything else is synchronous so
//! async and sync tests can both use it.

mod cluster;
mod sentinel;

pub use cluster::ClusterSetup;
pub use sentinel::SentinelSetup;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh redis-server gets to answer PING before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` child process owned by one test.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    /// Append-only file on, fsync on every write: data survives a kill.
    persistent: bool,
    /// More `redis-server` flags (e.g. `--replicaof`).
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers.
    ///
    /// Panics with an install hint if `redis-server` is not on `PATH`.
    pub fn start() -> Self {
        Self::start_with_password(None)
    }

    /// Like [`RedisServer::start`], with `requirepass` set.
    pub fn start_with_password(password: Option<&str>) -> Self {
        Self::start_with(password, false)
    }

    /// Like [`RedisServer::start`], but with the append-only file on and
    /// fsynced on every write, so a killed and restarted server comes back
    /// with its data, as a production Redis with persistence does.
    pub fn start_persistent() -> Self {
        Self::start_with(None, true)
    }

    /// Starts a replica of the server on `primary_port`, and waits until
    /// it has copied the primary (`master_link_status:up`).
    pub fn start_replica_of(primary_port: u16) -> Self {
        let server = Self::start_with_extra(
            None,
            false,
            vec!["--replicaof".into(), "127.0.0.1".into(), primary_port.to_string()],
        );
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !server.cli(&["INFO", "replication"]).contains("master_link_status:up") {
            assert!(
                Instant::now() < deadline,
                "the replica did not sync within {STARTUP_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn start_with(password: Option<&str>, persistent: bool) -> Self {
        Self::start_with_extra(password, persistent, Vec::new())
    }

    fn start_with_extra(password: Option<&str>, persistent: bool, extra: Vec<String>) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory for redis-server");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            password: password.map(str::to_owned),
            persistent,
            extra,
            dir,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:PORT` (with the password, if any).
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The loopback port the server listens on; kept across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process is running (it may be stopped by [`Self::kill`]).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server at once (SIGKILL), as a crash or `kill -9` would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port: with no data (persistence
    /// is off, as after a real crash of a cache-only Redis), or, for
    /// [`RedisServer::start_persistent`], with everything written before.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .args(["--loglevel", "warning", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        command.args(&self.extra);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed, and this test needs a real Redis. \
                 Install it with `sudo apt-get install redis-server` (or run scripts/setup.sh)."
            ),
            Err(error) => panic!("could not start redis-server: {error}"),
        };
        self.child = Some(child);
        self.wait_until_ready();
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if self.ping() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("redis-server exited at start ({status}): {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {} within {STARTUP_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One PING over a raw socket; true on `+PONG`.
    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let request = match &self.password {
            Some(password) => format!(
                "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n",
                password.len()
            ),
            None => String::from("*1\r\n$4\r\nPING\r\n"),
        };
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut reply = [0u8; 64];
        let mut seen = String::new();
        while let Ok(n) = stream.read(&mut reply) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&reply[..n]));
            if seen.contains("+PONG") {
                return true;
            }
            if seen.starts_with('-') || seen.contains("\r\n-") {
                return false;
            }
        }
        false
    }

    /// Runs `redis-cli` against this server with `args` and returns its
    /// output; panics if redis-cli is missing or fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = redis_cli(self.port, self.password.as_deref(), args);
        assert!(
            output.status.success(),
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The session that holds the recording duty (docs/positions.md,
    /// "Coverage"), if any.
    pub fn recording_duty_holder(&self) -> Option<String> {
        let holder = self.cli(&["GET", "tidings:recorder:{tidings}"]);
        (!holder.is_empty()).then_some(holder)
    }

    /// Disconnects every client subscribed to channels by name and to no
    /// pattern: Redis sources on a channel list, but not recorders (which
    /// subscribe to the pattern `ws:*`). Returns how many were killed.
    pub fn kill_channel_subscribers(&self) -> usize {
        let list = self.cli(&["CLIENT", "LIST", "TYPE", "pubsub"]);
        let ids: Vec<String> = list
            .lines()
            .filter(|line| !line.contains(" sub=0 ") && line.contains(" psub=0 "))
            .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
            .map(str::to_owned)
            .collect();
        for id in &ids {
            self.cli(&["CLIENT", "KILL", "ID", id]);
        }
        ids.len()
    }

    /// `redis-cli PUBLISH channel payload`; returns how many subscribers got it.
    pub fn publish(&self, channel: &str, payload: &str) -> u64 {
        let reply = self.cli(&["PUBLISH", channel, payload]);
        reply.parse().unwrap_or_else(|_| panic!("PUBLISH replied {reply:?}, not a count"))
    }

    /// `PUBLISH channel payload` and `CLIENT PAUSE pause WRITE` in one
    /// write: Redis runs both before it delivers the message, so whoever
    /// records what it receives (a gateway, a Redis source) finds Redis
    /// refusing writes for `pause`. Tests use it to prove that a slow Redis
    /// delays an event and loses nothing. Returns PUBLISH's subscriber count.
    pub fn publish_then_pause_writes(&self, channel: &str, payload: &str, pause: Duration) -> u64 {
        let millis = pause.as_millis().to_string();
        let mut request = Vec::new();
        let mut replies = 2;
        if let Some(password) = &self.password {
            request.extend(resp_command(&["AUTH", password]));
            replies += 1;
        }
        request.extend(resp_command(&["PUBLISH", channel, payload]));
        request.extend(resp_command(&["CLIENT", "PAUSE", &millis, "WRITE"]));
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|error| panic!("connecting to redis on port {}: {error}", self.port));
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("a read timeout");
        stream.write_all(&request).expect("sending PUBLISH and CLIENT PAUSE");
        let mut seen = String::new();
        let mut chunk = [0u8; 256];
        while seen.matches("\r\n").count() < replies {
            let n =
                stream.read(&mut chunk).expect("reading the replies to PUBLISH and CLIENT PAUSE");
            assert!(n > 0, "redis closed the connection; replies so far {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
        assert!(!seen.lines().any(|line| line.starts_with('-')), "redis refused: {seen:?}");
        let count = seen.lines().find_map(|line| line.strip_prefix(':'));
        count.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("PUBLISH replied {seen:?}"))
    }

    /// The directory the server runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One command in RESP, the protocol Redis speaks.
fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n", arg.len()).into_bytes());
        out.extend(arg.as_bytes());
        out.extend(b"\r\n");
    }
    out
}

/// Runs the real `redis-cli -p PORT ARGS…`.
pub fn redis_cli(port: u16, password: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new("redis-cli");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(password) = password {
        command.args(["--no-auth-warning", "-a", password]);
    }
    match command.args(args).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-cli is not installed, and this test needs it. \
             Install it with `sudo apt-get install redis-tools` (or run scripts/setup.sh)."
        ),
        Err(error) => panic!("could not run redis-cli: {error}"),
    }
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind a free loopback port")
}

/// A TCP proxy on a free loopback port in front of `target`, which a test
/// can cut, as a dead network would: [`TcpProxy::cut`] drops every open
/// connection and refuses new ones until [`TcpProxy::restore`].
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Debug, Default)]
struct ProxyState {
    cut: std::sync::atomic::AtomicBool,
    open: std::sync::Mutex<Vec<TcpStream>>,
    stopped: std::sync::atomic::AtomicBool,
}

impl TcpProxy {
    /// Starts forwarding a free port to `127.0.0.1:target`.
    pub fn start(target: u16) -> TcpProxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = std::sync::Arc::new(ProxyState::default());
        let shared = std::sync::Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if shared.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if shared.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let pipes = [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ];
                if let Ok(mut open) = shared.open.lock() {
                    open.extend(client.try_clone());
                    open.extend(server.try_clone());
                }
                for (from, to) in pipes {
                    if let (Ok(mut from), Ok(mut to)) = (from, to) {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            }
        });
        TcpProxy { port, state }
    }

    /// The loopback port the proxy listens on; connect here instead of to
    /// the target.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut open) = self.state.open.lock() {
            for stream in open.drain(..) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.state.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// How often [`eventually`], [`eventually_blocking`] and [`retry`] look again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Waits until `check` holds, looking every 20 ms, and panics naming
/// `what` after `timeout`. For conditions no event announces; where an
/// event does, await the event instead.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// [`eventually`] for tests without a runtime (it sleeps the thread).
pub fn eventually_blocking(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(POLL_EVERY);
    }
}

/// Tries `attempt` again every 20 ms until it gives `Some` (a publish that
/// Redis took, a connection that opened) and returns that; panics naming
/// `what` after `timeout`. Retrying a publish sends the same event again:
/// the caller's attempt must publish the same payload each time.
///
/// `attempt` makes a new future each time (`|| async move { … }` over
/// references), so a task that retries stays `Send`.
pub async fn retry<T, F>(what: &str, timeout: Duration, mut attempt: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = attempt().await {
            return done;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} retrying {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_server_answers_and_a_killed_one_does_not() {
        let mut server = RedisServer::start();
        assert_eq!(server.cli(&["PING"]), "PONG");
        server.kill();
        assert!(!server.ping());
        server.restart();
        assert_eq!(server.cli(&["PING"]), "PONG");
    }

    #[tokio::test]
    async fn retry_returns_the_first_attempt_that_succeeds() {
        let tries = std::cell::Cell::new(0);
        let tries = &tries;
        let got = retry("the third try", Duration::from_secs(5), || async move {
            tries.set(tries.get() + 1);
            (tries.get() == 3).then_some(tries.get())
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "retrying the impossible")]
    async fn retry_gives_up_after_its_timeout_naming_what_it_tried() {
        retry("the impossible", Duration::from_millis(60), || async { None::<()> }).await;
    }

    #[test]
    #[should_panic(expected = "waiting for never")]
    fn eventually_blocking_gives_up_after_its_timeout_naming_what_it_waited_for() {
        eventually_blocking("never", Duration::from_millis(60), || false);
    }

    #[test]
    fn publish_with_no_subscriber_reaches_nobody() {
        let server = RedisServer::start();
        assert_eq!(server.publish("ws:inventory", "{}"), 0);
    }

    #[test]
    fn a_password_protected_server_needs_the_password() {
        let server = RedisServer::start_with_password(Some("s3cret"));
        assert_eq!(server.cli(&["PING"]), "PONG");
        let without = redis_cli(server.port(), None, &["PING"]);
        assert!(String::from_utf8_lossy(&without.stdout).contains("NOAUTH"));
        assert!(server.url().contains(":s3cret@"));
    }

    #[test]
    fn a_persistent_server_keeps_its_data_across_a_kill() {
        let mut server = RedisServer::start_persistent();
        assert_eq!(server.cli(&["SET", "k", "v"]), "OK");
        server.kill();
        server.restart();
        assert_eq!(server.cli(&["GET", "k"]), "v");
    }

    #[test]
    fn a_plain_server_comes_back_empty() {
        let mut server = RedisServer::start();
        assert_eq!(server.cli(&["SET", "k", "v"]), "OK");
        server.restart();
        assert_eq!(server.cli(&["GET", "k"]), "");
    }

    #[test]
    fn a_cut_proxy_drops_connections_and_a_restored_one_forwards_again() {
        let server = RedisServer::start();
        let proxy = TcpProxy::start(server.port());
        assert_eq!(redis_cli(proxy.port(), None, &["PING"]).stdout, b"PONG\n");
        proxy.cut();
        assert!(
            !String::from_utf8_lossy(&redis_cli(proxy.port(), None, &["PING"]).stdout)
                .contains("PONG")
        );
        proxy.restore();
        assert_eq!(redis_cli(proxy.port(), None, &["PING"]).stdout, b"PONG\n");
    }
}
