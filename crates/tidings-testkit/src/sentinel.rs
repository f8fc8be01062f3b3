//! Redis Sentinel for tests, from the machine's `redis-server`: a primary,
//! one replica and three sentinels watching them, all on loopback ports.
//! The sentinels judge the primary down after 1 s, so a killed primary is
//! replaced within a few seconds.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{RedisServer, free_port, redis_cli};

/// How long the sentinels get to see each other and the replica.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// A primary, a replica and three sentinels, owned by one test.
#[derive(Debug)]
pub struct SentinelSetup {
    /// The server that is primary at the start (killed by [`SentinelSetup::kill_primary`]).
    pub primary: RedisServer,
    /// Its replica, promoted by the sentinels when the primary dies.
    pub replica: RedisServer,
    sentinels: Vec<SentinelProcess>,
}

#[derive(Debug)]
struct SentinelProcess {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SentinelSetup {
    /// The service name the sentinels know the primary by.
    pub const SERVICE: &'static str = "tidings";

    /// Starts everything and waits until each sentinel knows the replica
    /// and the two other sentinels (so a failover can be agreed).
    pub fn start() -> Self {
        let primary = RedisServer::start();
        let replica = RedisServer::start_replica_of(primary.port());
        let sentinels = (0..3).map(|_| SentinelProcess::start(primary.port())).collect();
        let setup = SentinelSetup { primary, replica, sentinels };
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !setup.settled() {
            assert!(
                Instant::now() < deadline,
                "the sentinels did not find each other and the replica within {SETTLE_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        setup
    }

    /// `redis+sentinel://127.0.0.1:A,127.0.0.1:B,127.0.0.1:C/tidings`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> =
            self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        format!("redis+sentinel://{}/{}", hosts.join(","), Self::SERVICE)
    }

    /// The port of the master the first answering sentinel names.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|sentinel| {
            let output = redis_cli(
                sentinel.port,
                None,
                &["SENTINEL", "get-master-addr-by-name", Self::SERVICE],
            );
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.lines().nth(1).and_then(|port| port.trim().parse().ok())
        })
    }

    /// Kills the primary (SIGKILL), as a crash would.
    pub fn kill_primary(&mut self) {
        self.primary.kill();
    }

    /// Waits until the sentinels name the replica as master; panics after
    /// `timeout`.
    pub fn wait_for_failover(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.master_port() != Some(self.replica.port()) {
            assert!(Instant::now() < deadline, "no failover to the replica within {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn settled(&self) -> bool {
        self.sentinels.iter().all(|sentinel| {
            let output = redis_cli(sentinel.port, None, &["SENTINEL", "MASTER", Self::SERVICE]);
            let fields: Vec<String> =
                String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
            let field = |name: &str| {
                fields.iter().position(|f| f == name).and_then(|at| fields.get(at + 1)).cloned()
            };
            field("num-slaves").as_deref() == Some("1")
                && field("num-other-sentinels").as_deref() == Some("2")
        })
    }
}

impl SentinelProcess {
    fn start(primary_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for a sentinel");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        let service = SentinelSetup::SERVICE;
        let text = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\n\
             sentinel monitor {service} 127.0.0.1 {primary_port} 2\n\
             sentinel down-after-milliseconds {service} 1000\n\
             sentinel failover-timeout {service} 5000\n\
             sentinel parallel-syncs {service} 1\n",
            dir.path().display()
        );
        std::fs::write(&conf, text).expect("write sentinel.conf");
        let mut child = Command::new("redis-server")
            .arg(&conf)
            .args(["--sentinel", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-server is installed (it runs the sentinels too)");
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !redis_cli(port, None, &["PING"]).stdout.starts_with(b"PONG") {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("a sentinel exited at start ({status}): {stderr}");
            }
            assert!(Instant::now() < deadline, "a sentinel did not answer on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        SentinelProcess { child, port, _dir: dir }
    }
}
