//! Hearing a whole Redis Cluster through one node, and proving it
//! (docs/positions.md, "Redis Cluster").
//!
//! A subscriber on a cluster reads one node; a `PUBLISH` on another node
//! reaches it over the cluster bus, later. Two things here:
//!
//! - [`LinkWatch`]: the bus is not reliable. A link that breaks drops what
//!   it carried. The watch reads the subscribed node's `CLUSTER LINKS`: a
//!   link missing since the subscription began, or made after it, may have
//!   dropped messages, and the owner restarts (the recorder, recording the
//!   gap) or tells its consumer (the Redis source).
//! - [`ClusterProof`]: on one server a mark PING on the subscription is
//!   answered after every message published before it. On a cluster a proof
//!   up to Redis time `T` takes a mark through every node: `T` is read (on
//!   the coverage keys' node), then a mark is published on each node on the
//!   session's own mark channel. The bus keeps each link's order, so when
//!   every node's mark has arrived, everything published on any node before
//!   `T` has arrived before it. A mark not back from every node within
//!   [`MARK_DEADLINE`], or a node gone from the cluster since the session
//!   began (its last messages may never have left it), ends the session.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use crate::subscriber::Failure;

/// A mark not back from every node within this ends the session.
pub(crate) const MARK_DEADLINE: Duration = Duration::from_secs(2);

/// Bound on one command to one node (a mark, `CLUSTER NODES`, `LINKS`).
const NODE_TIMEOUT: Duration = Duration::from_millis(500);

/// The channel a session's marks travel on (no `ws:` name: never recorded).
pub(crate) fn mark_channel(session: &str) -> String {
    format!("tidings:mark:{session}")
}

/// Watches the bus links of the node a subscription reads.
pub(crate) struct LinkWatch {
    connection: MultiplexedConnection,
    /// The node's clock (ms): a link created after this was made after the
    /// subscription was confirmed.
    links_after: u64,
    /// The links (direction, peer id) there were when the watch began.
    baseline: HashSet<(String, String)>,
    /// When (this machine's clock, ms since the Unix epoch) the links were
    /// last seen unbroken: nothing was dropped before then.
    intact_at: i64,
}

/// A link of the subscribed node that may have dropped messages.
#[derive(Debug)]
pub(crate) struct Broken {
    /// Why, for the log and the consumer.
    pub(crate) reason: String,
    /// The last time (ms since the Unix epoch, this machine's clock) the
    /// links were seen unbroken: messages may be missing since.
    pub(crate) intact_at: i64,
}

impl LinkWatch {
    /// Starts watching `server`, whose subscription was requested at
    /// `requested` and is now confirmed. Refuses a node that has no link
    /// from some live node yet (what that node publishes could not reach
    /// this subscription).
    pub(crate) async fn start(server: &redis::Client, requested: Instant) -> Result<Self, Failure> {
        let mut connection = node_connection(server).await?;
        let (seconds, micros): (u64, u64) =
            on_node(redis::cmd("TIME").query_async(&mut connection), "TIME").await?;
        // The subscription was confirmed no earlier than `requested`, so no
        // earlier than this on the node's clock.
        let elapsed = u64::try_from(requested.elapsed().as_millis()).unwrap_or(u64::MAX);
        let links_after = (seconds * 1000 + micros / 1000).saturating_sub(elapsed);
        let links = read_links(&mut connection).await?;
        let nodes = read_nodes(&mut connection).await?;
        let baseline: HashSet<(String, String)> =
            links.iter().map(|link| (link.direction.clone(), link.peer.clone())).collect();
        if let Some(unheard) = nodes
            .iter()
            .filter(|node| !node.myself)
            .find(|node| !baseline.contains(&("from".to_owned(), node.id.clone())))
        {
            return Err(Failure::Transient(format!(
                "cluster node {} has no bus link to the subscribed node yet; trying again",
                unheard.address
            )));
        }
        let mut watch = LinkWatch { connection, links_after, baseline, intact_at: now_millis() };
        watch.check().await.map_err(|broken| Failure::Transient(broken.reason))?;
        Ok(watch)
    }

    /// Fails when a link the watch began with is gone, or a link was made
    /// after the subscription (either may have dropped messages). A node
    /// that does not answer is a failure of its own ([`Failure`]).
    pub(crate) async fn check(&mut self) -> Result<(), Broken> {
        let checked_at = now_millis();
        let broken = |reason: String| Broken { reason, intact_at: self.intact_at };
        let links = read_links(&mut self.connection).await.map_err(|failure| match failure {
            Failure::Transient(reason) | Failure::Refused(reason) => broken(reason),
        })?;
        let now: HashSet<(String, String)> =
            links.iter().map(|link| (link.direction.clone(), link.peer.clone())).collect();
        if let Some((direction, peer)) = self.baseline.difference(&now).next() {
            return Err(broken(format!(
                "the cluster bus link {direction} node {peer} of the subscribed node is gone: \
                 messages it carried may have been dropped"
            )));
        }
        if let Some(link) = links.iter().find(|link| link.created > self.links_after) {
            return Err(broken(format!(
                "a cluster bus link of the subscribed node ({} node {}) was made at {} ms, after \
                 the subscription: messages the link it replaced carried may have been dropped",
                link.direction, link.peer, link.created
            )));
        }
        self.intact_at = checked_at;
        Ok(())
    }
}

/// A cluster session's proof state.
pub(crate) struct ClusterProof {
    channel: String,
    /// The node subscribed to, with its credentials.
    subscribed: redis::Client,
    links: LinkWatch,
    /// Every node marks went to in this session: one gone since ends it.
    known: HashSet<String>,
    /// A connection per node marks are published on, by `host:port`.
    nodes: HashMap<String, MultiplexedConnection>,
    /// Mark number → the Redis time read before it, the nodes whose mark
    /// has not arrived yet, and when it was sent.
    pending: HashMap<u64, (u64, HashSet<String>, Instant)>,
    next: u64,
}

impl ClusterProof {
    /// Starts proving for the session whose subscription to `subscribed`
    /// was requested at `requested` and is now confirmed.
    pub(crate) async fn start(
        subscribed: redis::Client,
        session: &str,
        requested: Instant,
    ) -> Result<Self, Failure> {
        let links = LinkWatch::start(&subscribed, requested).await?;
        Ok(ClusterProof {
            channel: mark_channel(session),
            subscribed,
            links,
            known: HashSet::new(),
            nodes: HashMap::new(),
            pending: HashMap::new(),
            next: 0,
        })
    }

    /// The mark channel, to subscribe to with the session.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// Sends mark round `until` (Redis time just read): checks the bus
    /// links, then publishes a mark on every node the subscribed node
    /// knows. Fails when a link was re-established or a mark is overdue.
    pub(crate) async fn send(&mut self, until: u64) -> Result<(), Failure> {
        if let Some((_, missing, sent)) =
            self.pending.values().find(|(_, _, sent)| sent.elapsed() > MARK_DEADLINE)
        {
            return Err(Failure::Transient(format!(
                "cluster nodes {missing:?} did not carry a mark within {MARK_DEADLINE:?} (sent {:?} ago): \
                 what they published may not reach this subscription, so recording restarts",
                sent.elapsed()
            )));
        }
        self.check_links().await?;
        let nodes: Vec<String> =
            read_nodes(&mut self.links.connection).await?.into_iter().map(|n| n.address).collect();
        if let Some(gone) = self.known.iter().find(|known| !nodes.contains(known)) {
            return Err(Failure::Transient(format!(
                "cluster node {gone} failed or left: what it published last may never have \
                 reached this subscription, so recording restarts"
            )));
        }
        self.known.extend(nodes.iter().cloned());
        self.next += 1;
        let mark = self.next;
        self.pending.insert(mark, (until, nodes.iter().cloned().collect(), Instant::now()));
        for address in nodes {
            // A node that cannot take the mark leaves it pending: overdue
            // at the next rounds, which ends the session.
            if let Err(error) = self.publish_on(&address, mark).await {
                tracing::debug!(node = %address, ?error, "could not publish a mark");
                self.nodes.remove(&address);
            }
        }
        Ok(())
    }

    /// A mark message arrived; returns the Redis time it proves when it
    /// completes its round (every node's mark is in).
    pub(crate) fn arrived(&mut self, payload: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(payload).ok()?;
        let (mark, node) = text.split_once(' ')?;
        let mark: u64 = mark.parse().ok()?;
        let (until, missing, _) = self.pending.get_mut(&mark)?;
        missing.remove(node);
        if !missing.is_empty() {
            return None;
        }
        let until = *until;
        // Earlier rounds are proven by this one too.
        self.pending.retain(|other, _| *other > mark);
        Some(until)
    }

    async fn publish_on(&mut self, address: &str, mark: u64) -> Result<(), Failure> {
        let connection = match self.nodes.get(address) {
            Some(connection) => connection.clone(),
            None => {
                let connection = node_connection(&self.node_client(address)?).await?;
                self.nodes.insert(address.to_owned(), connection.clone());
                connection
            }
        };
        let mut connection = connection;
        let payload = format!("{mark} {address}");
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(&self.channel).arg(payload);
        on_node(publish.exec_async(&mut connection), "PUBLISH").await
    }

    /// A client for `host:port` with the subscribed node's credentials and TLS.
    fn node_client(&self, address: &str) -> Result<redis::Client, Failure> {
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))
            .ok_or_else(|| Failure::Transient(format!("cluster node address {address:?}")))?;
        let info = self.subscribed.get_connection_info().clone();
        let addr = match info.addr() {
            redis::ConnectionAddr::TcpTls { insecure, tls_params, .. } => {
                redis::ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                }
            }
            _ => redis::ConnectionAddr::Tcp(host, port),
        };
        redis::Client::open(info.set_addr(addr))
            .map_err(|error| Failure::Transient(format!("cluster node {address}: {error}")))
    }

    /// Fails when the subscribed node's bus links may have dropped
    /// messages ([`LinkWatch::check`]). Checked at every round (by a
    /// recorder without the duty too: what it hands on live comes through
    /// this node) and again before a completed round is proven, so a link
    /// remade while the marks travelled is seen before the proof.
    pub(crate) async fn check_links(&mut self) -> Result<(), Failure> {
        self.links.check().await.map_err(|broken| {
            Failure::Transient(format!("{}, so recording restarts", broken.reason))
        })
    }
}

/// One bus link in a `CLUSTER LINKS` reply.
struct Link {
    direction: String,
    peer: String,
    created: u64,
}

/// One node in a `CLUSTER NODES` reply.
struct Node {
    id: String,
    address: String,
    myself: bool,
}

async fn read_links(connection: &mut MultiplexedConnection) -> Result<Vec<Link>, Failure> {
    let reply: redis::Value =
        on_node(redis::cmd("CLUSTER").arg("LINKS").query_async(connection), "CLUSTER LINKS")
            .await?;
    Ok(parse_links(&reply))
}

/// Every node the subscribed node does not know to have failed.
async fn read_nodes(connection: &mut MultiplexedConnection) -> Result<Vec<Node>, Failure> {
    let text: String =
        on_node(redis::cmd("CLUSTER").arg("NODES").query_async(connection), "CLUSTER NODES")
            .await?;
    Ok(parse_live_nodes(&text))
}

fn now_millis() -> i64 {
    tidings_events::millis_since_epoch(std::time::SystemTime::now())
}

async fn node_connection(client: &redis::Client) -> Result<MultiplexedConnection, Failure> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(NODE_TIMEOUT))
        .set_response_timeout(Some(NODE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|error| Failure::Transient(format!("cannot reach a cluster node: {error}")))
}

async fn on_node<T>(
    command: impl Future<Output = redis::RedisResult<T>>,
    what: &str,
) -> Result<T, Failure> {
    match tokio::time::timeout(NODE_TIMEOUT, command).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Failure::Transient(format!("{what} on a cluster node: {error}"))),
        Err(_) => Err(Failure::Transient(format!("{what}: no answer within {NODE_TIMEOUT:?}"))),
    }
}

/// Every node in a `CLUSTER NODES` reply but those flagged `fail`,
/// `handshake` or `noaddr`.
fn parse_live_nodes(text: &str) -> Vec<Node> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?;
            let address = fields.next()?.split('@').next()?;
            let flags = fields.next()?;
            let gone = flags.split(',').any(|flag| matches!(flag, "fail" | "handshake" | "noaddr"));
            let myself = flags.split(',').any(|flag| flag == "myself");
            (!gone && !address.starts_with(':')).then(|| Node {
                id: id.to_owned(),
                address: address.to_owned(),
                myself,
            })
        })
        .collect()
}

/// The links in a `CLUSTER LINKS` reply (RESP2: a list of field/value
/// lists; RESP3: maps).
fn parse_links(links: &redis::Value) -> Vec<Link> {
    let redis::Value::Array(links) = links else { return Vec::new() };
    links
        .iter()
        .filter_map(|link| {
            let fields: Vec<&redis::Value> = match link {
                redis::Value::Array(fields) => fields.iter().collect(),
                redis::Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
                _ => return None,
            };
            let (mut direction, mut peer, mut created) = (None, None, None);
            for pair in fields.chunks(2) {
                match pair {
                    [redis::Value::BulkString(name), redis::Value::BulkString(value)] => {
                        let value = String::from_utf8_lossy(value).into_owned();
                        match name.as_slice() {
                            b"direction" => direction = Some(value),
                            b"node" => peer = Some(value),
                            _ => {}
                        }
                    }
                    [redis::Value::BulkString(name), redis::Value::Int(at)]
                        if name == b"create-time" =>
                    {
                        created = u64::try_from(*at).ok();
                    }
                    _ => {}
                }
            }
            Some(Link { direction: direction?, peer: peer?, created: created? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_and_handshaking_nodes_get_no_marks() {
        let nodes = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected
c3 127.0.0.1:7002@17002 slave a1 0 0 1 connected
d4 127.0.0.1:7003@17003 master,fail? - 0 0 3 connected 5461-16383
e5 :0@0 handshake - 0 0 0 disconnected
";
        let live = parse_live_nodes(nodes);
        let addresses: Vec<&str> = live.iter().map(|node| node.address.as_str()).collect();
        assert_eq!(addresses, ["127.0.0.1:7000", "127.0.0.1:7002", "127.0.0.1:7003"]);
        assert!(live[0].myself && !live[1].myself);
        assert_eq!(live[2].id, "d4");
    }

    #[test]
    fn links_are_read_from_a_links_reply() {
        let text = |t: &str| redis::Value::BulkString(t.as_bytes().to_vec());
        let link = |direction: &str, peer: &str, created: i64| {
            redis::Value::Array(vec![
                text("direction"),
                text(direction),
                text("node"),
                text(peer),
                text("create-time"),
                redis::Value::Int(created),
                text("events"),
                text("r"),
            ])
        };
        let reply = redis::Value::Array(vec![link("to", "b2", 5), link("from", "b2", 9)]);
        let links = parse_links(&reply);
        assert_eq!(links.len(), 2);
        assert_eq!((links[1].direction.as_str(), links[1].peer.as_str()), ("from", "b2"));
        assert_eq!(links[1].created, 9);
        assert!(parse_links(&redis::Value::Array(vec![])).is_empty());
    }
}
