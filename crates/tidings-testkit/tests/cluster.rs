//! `ClusterSetup` is a real Redis Cluster: six nodes that all report
//! `cluster_state:ok`, keys spread over different primaries, a PUBLISH on
//! one node reaches a subscriber on another, and a killed primary is
//! replaced by its replica, which still has the data.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tidings_testkit::ClusterSetup;

const WAIT: Duration = Duration::from_secs(10);

/// `redis-cli -p PORT SUBSCRIBE channel` as a child, its stdout read line
/// by line on a thread: a subscriber independent of the code under test.
struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Subscriber {
    /// Subscribes and waits until Redis confirms the subscription.
    fn start(port: u16, channel: &str) -> Self {
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "SUBSCRIBE", channel])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run redis-cli SUBSCRIBE");
        let stdout = child.stdout.take().expect("redis-cli's stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut subscriber = Subscriber { child, lines };
        // The confirmation is three lines: "subscribe", the channel, the count.
        subscriber.expect_lines(&["subscribe", channel, "1"]);
        subscriber
    }

    /// Waits for exactly these next lines.
    fn expect_lines(&mut self, expected: &[&str]) {
        let deadline = Instant::now() + WAIT;
        for want in expected {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the subscriber got no {want:?} within {WAIT:?}"));
            assert_eq!(got, *want);
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_cluster_spreads_keys_over_its_primaries_and_carries_a_publish_between_nodes() {
    let started = Instant::now();
    let cluster = ClusterSetup::start();
    eprintln!("the cluster formed in {:?}", started.elapsed());

    let ports = cluster.ports();
    assert_eq!(ports.len(), 6);
    for &port in &ports {
        let info = cluster.cli(port, &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok"), "node {port}: {info}");
        assert!(info.contains("cluster_slots_ok:16384"), "node {port}: {info}");
    }
    let primaries = cluster.primary_ports();
    assert_eq!(primaries.len(), 3, "primaries {primaries:?} of {ports:?}");
    let url = cluster.url();
    assert!(url.starts_with("redis+cluster://127.0.0.1:"), "{url}");
    for port in &primaries {
        assert!(url.contains(&format!("127.0.0.1:{port}")), "{url} lacks primary {port}");
    }

    let mut owners = BTreeSet::new();
    for tag in 'a'..='z' {
        let key = format!("{{{tag}}}:greeting");
        let owner = cluster.port_owning(&key);
        assert!(primaries.contains(&owner), "{key} is served by {owner}, not a primary");
        assert_eq!(cluster.cli(owner, &["SET", &key, "hello"]), "OK");
        assert_eq!(cluster.cli(owner, &["GET", &key]), "hello");
        let elsewhere = primaries.iter().find(|&&port| port != owner).expect("another primary");
        let moved = cluster.cli(*elsewhere, &["GET", &key]);
        assert!(moved.starts_with("MOVED "), "{key} on port {elsewhere} answered {moved:?}");
        owners.insert(owner);
        if owners.len() == 2 {
            break;
        }
    }
    assert_eq!(owners.len(), 2, "keys {{a}}…{{z}} all live on {owners:?}");

    let channel = "ws:cluster";
    let mut subscriber = Subscriber::start(primaries[0], channel);
    let publisher = ports.iter().copied().find(|&port| port != primaries[0]).expect("a node");
    // The node published to counts only its own subscribers; the cluster
    // bus carries the message to the others.
    assert_eq!(cluster.publish(publisher, channel, "across the bus"), 0);
    subscriber.expect_lines(&["message", channel, "across the bus"]);
    eprintln!("the whole test took {:?}", started.elapsed());
}

#[test]
fn killing_the_primary_of_a_key_fails_over_to_its_replica_which_has_the_key() {
    let started = Instant::now();
    let mut cluster = ClusterSetup::start();
    eprintln!("the cluster formed in {:?}", started.elapsed());

    let key = "{failover}:greeting";
    let owner = cluster.port_owning(key);
    assert_eq!(cluster.cli(owner, &["SET", key, "hello"]), "OK");
    assert_eq!(cluster.cli(owner, &["WAIT", "1", "1000"]), "1", "the replica got the write");

    let killed = cluster.kill_primary_owning(key);
    assert_eq!(killed, owner);
    let killed_at = Instant::now();
    let promoted = cluster.wait_for_failover(key, killed, WAIT);
    eprintln!("failed over from {killed} to {promoted} in {:?}", killed_at.elapsed());

    assert_ne!(promoted, killed);
    assert_eq!(cluster.port_owning(key), promoted);
    let primaries = cluster.primary_ports();
    assert!(primaries.contains(&promoted) && !primaries.contains(&killed), "{primaries:?}");
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    assert_eq!(cluster.cli(promoted, &["GET", key]), "hello");
    eprintln!("the whole test took {:?}", started.elapsed());
}
