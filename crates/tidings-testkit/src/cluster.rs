//! Redis Cluster for tests, from the machine's `redis-server`: three
//! primaries and three replicas on loopback ports, no containers, joined by
//! `redis-cli --cluster create`. Nodes judge a peer down after 1 s
//! (`--cluster-node-timeout 1000`), so a killed primary is replaced by its
//! replica within a few seconds.

use std::collections::HashSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{eventually_blocking, redis_cli};

/// Nodes in the cluster: [`PRIMARIES`] primaries, each with one replica.
const NODES: usize = 6;
/// Primaries at the start.
const PRIMARIES: usize = 3;
/// Hash slots a cluster serves; all must be assigned for `cluster_state:ok`.
const SLOTS: u16 = 16384;
/// A node's cluster bus listens on its port plus this.
const BUS_PORT_OFFSET: u16 = 10000;
/// How long one node gets to answer PING before it is started again.
const NODE_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a node that does not come up (a port taken meanwhile) is
/// started again on other ports.
const START_ATTEMPTS: usize = 5;
/// How long the nodes get to agree, cover every slot and sync the replicas.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Three primaries and three replicas forming one Redis Cluster, owned by
/// one test. Dropping it kills every node and removes their directory.
#[derive(Debug)]
pub struct ClusterSetup {
    nodes: Vec<ClusterNode>,
    /// The primaries right after creation, in start order: the seeds of [`Self::url`].
    seeds: Vec<u16>,
    dir: tempfile::TempDir,
}

/// One `redis-server --cluster-enabled yes` child.
#[derive(Debug)]
struct ClusterNode {
    port: u16,
    child: Option<Child>,
}

/// One line of `CLUSTER NODES`, as far as the tests need it.
#[derive(Debug)]
struct NodeLine {
    port: u16,
    primary: bool,
    /// Flagged `fail` or `fail?` (or without an address) by the node asked.
    failed: bool,
    /// Inclusive slot ranges it serves.
    slots: Vec<(u16, u16)>,
}

impl ClusterSetup {
    /// Starts six nodes (concurrently) on free ports, creates the cluster
    /// with one replica per primary, and waits until every node reports
    /// `cluster_state:ok` with all 16384 slots assigned and every replica
    /// reports `master_link_status:up`.
    ///
    /// Panics with an install hint if `redis-server` or `redis-cli` is
    /// missing, and naming what is wrong if the cluster does not form
    /// within 20 s.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory for the cluster");
        let mut nodes: Vec<ClusterNode> = free_cluster_ports(NODES, &[])
            .into_iter()
            .map(|port| ClusterNode::spawn(port, dir.path()))
            .collect();
        for at in 0..nodes.len() {
            let mut attempt = 1;
            while let Err(why) = nodes[at].wait_until_ready(dir.path()) {
                assert!(
                    attempt < START_ATTEMPTS,
                    "a cluster node did not start in {START_ATTEMPTS} attempts; last: {why}"
                );
                attempt += 1;
                let taken: Vec<u16> = nodes.iter().map(|node| node.port).collect();
                let port = free_cluster_ports(1, &taken)[0];
                // Replacing the node drops (and kills) the one that failed.
                nodes[at] = ClusterNode::spawn(port, dir.path());
            }
        }
        let mut setup = ClusterSetup { nodes, seeds: Vec::new(), dir };
        setup.create();
        eventually_blocking(
            "every cluster node to report cluster_state:ok with all slots, and every replica \
             to report master_link_status:up",
            SETTLE_TIMEOUT,
            || setup.settled(),
        );
        setup.seeds = setup.primary_ports();
        assert_eq!(setup.seeds.len(), PRIMARIES, "the new cluster's primaries");
        setup
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`: the three
    /// primaries the cluster started with, as seeds (they stay in the URL
    /// after a failover, as a deployed configuration would).
    pub fn url(&self) -> String {
        let hosts: Vec<String> =
            self.seeds.iter().map(|port| format!("127.0.0.1:{port}")).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Drops every cluster bus link between the node at `port` and the
    /// node at `peer` (`DEBUG CLUSTERLINK KILL ALL`); the nodes make them
    /// again at once, and what the links carried meanwhile is lost.
    pub fn break_links(&self, port: u16, peer: u16) {
        let id = self.cli(peer, &["CLUSTER", "MYID"]);
        let reply = self.cli(port, &["DEBUG", "CLUSTERLINK", "KILL", "ALL", &id]);
        assert_eq!(reply, "OK", "DEBUG CLUSTERLINK KILL on {port}: {reply}");
    }

    /// The ports of all six nodes, killed or not, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// The ports of the current primaries, in start order: the live nodes
    /// (not killed by [`Self::kill`]) that say `role:master` themselves.
    pub fn primary_ports(&self) -> Vec<u16> {
        // Each node's own word for its role: another node's view of the
        // cluster can still list a new replica as a primary for a moment.
        self.live_ports()
            .into_iter()
            .filter(|&port| has_line(&ask(port, &["INFO", "replication"]), "role:master"))
            .collect()
    }

    /// Runs `redis-cli -p PORT ARGS…` (not `-c`: a key served elsewhere
    /// answers `MOVED …`) and returns its trimmed stdout; an error reply
    /// comes back as its text (`ERR …`, `MOVED …`). Panics if redis-cli
    /// fails, e.g. because nothing listens on `port`.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = redis_cli(port, None, args);
        assert!(
            output.status.success(),
            "redis-cli -p {port} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The port of the live primary serving `key`'s hash slot (hash tags
    /// count: `{user}:a` and `{user}:b` share a slot). Panics if no live
    /// node knows one, e.g. in the middle of a failover: see
    /// [`Self::wait_for_failover`].
    pub fn port_owning(&self, key: &str) -> u16 {
        let slot = self.slot_of(key);
        let live = self.live_ports();
        live.iter()
            .filter_map(|&asked| owner_seen_by(asked, slot))
            .find(|owner| live.contains(owner))
            .unwrap_or_else(|| panic!("no live primary serves slot {slot} (of key {key:?})"))
    }

    /// Kills the node on `port` at once (SIGKILL), as a crash or `kill -9`
    /// would. Killing a node twice is harmless; a port not in the cluster
    /// panics.
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|node| node.port == port);
        node.unwrap_or_else(|| panic!("port {port} is not a node of this cluster")).kill();
    }

    /// Kills the primary serving `key`'s slot (SIGKILL) and returns its port.
    pub fn kill_primary_owning(&mut self, key: &str) -> u16 {
        let port = self.port_owning(key);
        self.kill(port);
        port
    }

    /// Waits until every live node reports `cluster_state:ok` and agrees
    /// that a live node other than `old_port` is the primary serving
    /// `key`'s slot, and returns that node's port; panics after `timeout`.
    pub fn wait_for_failover(&self, key: &str, old_port: u16, timeout: Duration) -> u16 {
        let slot = self.slot_of(key);
        let mut new_primary = None;
        eventually_blocking(
            &format!("a new primary for slot {slot} (of key {key:?}) in place of port {old_port}"),
            timeout,
            || {
                new_primary = self.agreed_owner(slot).filter(|&port| port != old_port);
                new_primary.is_some()
            },
        );
        new_primary.expect("eventually_blocking returns once a new primary is found")
    }

    /// `PUBLISH channel payload` through the node on `port`; returns how
    /// many subscribers of that node got it. (The cluster forwards the
    /// message to subscribers on every other node too, but does not count
    /// them.)
    pub fn publish(&self, port: u16, channel: &str, payload: &str) -> u64 {
        let reply = self.cli(port, &["PUBLISH", channel, payload]);
        reply.parse().unwrap_or_else(|_| panic!("PUBLISH replied {reply:?}, not a count"))
    }

    /// The directory the nodes run in: their `nodes-PORT.conf` and
    /// `redis-PORT.log` files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis-cli --cluster create` over the six nodes, one replica each.
    fn create(&self) {
        let addresses: Vec<String> =
            self.nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("could not run redis-cli --cluster create: {error}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("All 16384 slots covered"),
            "redis-cli --cluster create failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Every node is ok, knows all six nodes and sees all slots assigned;
    /// three are primaries and three are replicas with their link up.
    fn settled(&self) -> bool {
        let mut primaries = 0;
        let mut replicas = 0;
        for node in &self.nodes {
            let info = ask(node.port, &["CLUSTER", "INFO"]);
            if !cluster_ok(&info) || !has_line(&info, &format!("cluster_known_nodes:{NODES}")) {
                return false;
            }
            let replication = ask(node.port, &["INFO", "replication"]);
            if has_line(&replication, "role:master") {
                primaries += 1;
            } else if has_line(&replication, "master_link_status:up") {
                replicas += 1;
            } else {
                return false;
            }
        }
        primaries == PRIMARIES && replicas == NODES - PRIMARIES
    }

    /// The live primary serving `slot` if every live node reports
    /// `cluster_state:ok` and names the same one.
    fn agreed_owner(&self, slot: u16) -> Option<u16> {
        let live = self.live_ports();
        let mut agreed = None;
        for &port in &live {
            if !cluster_ok(&ask(port, &["CLUSTER", "INFO"])) {
                return None;
            }
            let owner = owner_seen_by(port, slot)?;
            if !live.contains(&owner) || agreed.is_some_and(|agreed| agreed != owner) {
                return None;
            }
            agreed = Some(owner);
        }
        agreed
    }

    /// `key`'s hash slot, by `CLUSTER KEYSLOT` on a live node.
    fn slot_of(&self, key: &str) -> u16 {
        self.live_ports()
            .into_iter()
            .find_map(|port| ask(port, &["CLUSTER", "KEYSLOT", key]).trim().parse().ok())
            .filter(|&slot| slot < SLOTS)
            .unwrap_or_else(|| panic!("no live cluster node answers CLUSTER KEYSLOT {key:?}"))
    }

    /// Ports of the nodes not killed, in start order.
    fn live_ports(&self) -> Vec<u16> {
        self.nodes.iter().filter(|node| node.child.is_some()).map(|node| node.port).collect()
    }
}

impl Drop for ClusterSetup {
    fn drop(&mut self) {
        // Kill the nodes before `dir` is removed under them.
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

impl ClusterNode {
    /// Spawns `redis-server` in cluster mode on `port` (bus on `port + 10000`),
    /// logging to `dir/redis-PORT.log`; does not wait for it.
    fn spawn(port: u16, dir: &Path) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(dir.join(format!("nodes-{port}.conf")))
            .args(["--cluster-node-timeout", "1000"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // Redis 7 waits 5 s before a diskless full sync, for more
            // replicas to join it; each primary here has one.
            .args(["--repl-diskless-sync-delay", "0"])
            // DEBUG CLUSTERLINK KILL, from this machine: tests break bus links.
            .args(["--enable-debug-command", "local"])
            .args(["--protected-mode", "no", "--loglevel", "notice", "--logfile"])
            .arg(dir.join(format!("redis-{port}.log")))
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        match child {
            Ok(child) => ClusterNode { port, child: Some(child) },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed, and this test needs a real Redis. \
                 Install it with `sudo apt-get install redis-server` (or run scripts/setup.sh)."
            ),
            Err(error) => panic!("could not start redis-server: {error}"),
        }
    }

    /// Waits until this very process (not another one that took the port)
    /// answers on its port; an error says why it did not.
    fn wait_until_ready(&mut self, dir: &Path) -> Result<(), String> {
        let port = self.port;
        let Some(child) = self.child.as_mut() else { return Err(format!("{port} was killed")) };
        let pid = format!("process_id:{}", child.id());
        let deadline = Instant::now() + NODE_STARTUP_TIMEOUT;
        loop {
            if has_line(&ask(port, &["INFO", "server"]), &pid) {
                return Ok(());
            }
            let log = || {
                std::fs::read_to_string(dir.join(format!("redis-{port}.log"))).unwrap_or_default()
            };
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(format!(
                    "redis-server on port {port} exited at start ({status}): {stderr}{}",
                    log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer within {NODE_STARTUP_TIMEOUT:?}: {}",
                    log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill();
    }
}

impl NodeLine {
    /// `<id> <ip:port@bus[,hostname]> <flags> <primary> <ping> <pong> <epoch> <link> <slot>…`
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1)?;
        let port = address.split('@').next()?.rsplit(':').next()?.parse().ok()?;
        let flags: Vec<&str> = fields.get(2)?.split(',').collect();
        let slots = fields
            .iter()
            .skip(8)
            // `[slot->-id]` and `[slot-<-id]` are slots moving, not served.
            .filter(|field| !field.starts_with('['))
            .filter_map(|field| match field.split_once('-') {
                Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
                None => field.parse().ok().map(|slot| (slot, slot)),
            })
            .collect();
        Some(NodeLine {
            port,
            primary: flags.contains(&"master"),
            failed: flags.iter().any(|flag| matches!(*flag, "fail" | "fail?" | "noaddr")),
            slots,
        })
    }
}

/// stdout of `redis-cli -p PORT ARGS…`, or empty if it could not connect:
/// for polling nodes that may be down.
fn ask(port: u16, args: &[&str]) -> String {
    let output = redis_cli(port, None, args);
    if output.status.success() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        String::new()
    }
}

/// `CLUSTER NODES` from the node on `port`, parsed; empty if it does not answer.
fn view_from(port: u16) -> Vec<NodeLine> {
    ask(port, &["CLUSTER", "NODES"]).lines().filter_map(NodeLine::parse).collect()
}

/// The non-failing primary serving `slot` in the view of the node on `asked`.
fn owner_seen_by(asked: u16, slot: u16) -> Option<u16> {
    view_from(asked)
        .into_iter()
        .find(|line| {
            line.primary
                && !line.failed
                && line.slots.iter().any(|&(first, last)| (first..=last).contains(&slot))
        })
        .map(|line| line.port)
}

/// Whether `CLUSTER INFO` output says the cluster is ok with every slot assigned.
fn cluster_ok(info: &str) -> bool {
    has_line(info, "cluster_state:ok") && has_line(info, &format!("cluster_slots_ok:{SLOTS}"))
}

/// Whether `text` (Redis `INFO`-style, `\r\n` lines) has exactly `line`.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|candidate| candidate.trim() == line)
}

/// `count` loopback ports P, none in `taken`, with P and its cluster bus
/// port P + 10000 (below 65536) both free a moment ago, and no port of one
/// pick the bus port of another. Every socket is held until all are
/// picked, so the kernel does not hand one out twice.
fn free_cluster_ports(count: usize, taken: &[u16]) -> Vec<u16> {
    let mut used: HashSet<u16> =
        taken.iter().flat_map(|&port| [port, port.saturating_add(BUS_PORT_OFFSET)]).collect();
    let mut held = Vec::new();
    let mut ports = Vec::with_capacity(count);
    for _ in 0..1000 {
        if ports.len() == count {
            return ports;
        }
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else { continue };
        let Ok(port) = listener.local_addr().map(|address| address.port()) else { continue };
        held.push(listener);
        let Some(bus) = port.checked_add(BUS_PORT_OFFSET) else { continue };
        if used.contains(&port) || used.contains(&bus) {
            continue;
        }
        let Ok(bus_listener) = TcpListener::bind(("127.0.0.1", bus)) else { continue };
        held.push(bus_listener);
        used.extend([port, bus]);
        ports.push(port);
    }
    assert_eq!(ports.len(), count, "could not find {count} free port pairs P and P + 10000");
    ports
}
