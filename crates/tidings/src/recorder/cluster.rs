//! Proving coverage on Redis Cluster (docs/positions.md, "Redis Cluster").
//!
//! On one server a mark PING on the subscription is answered after every
//! message published before it. On a cluster the recorder subscribes to one
//! node, and a `PUBLISH` on another node reaches it over the cluster bus,
//! later. So a proof up to Redis time `T` takes a mark through every node:
//! `T` is read (on the coverage keys' node), then a mark is published on
//! each node on the session's own mark channel. The bus keeps each link's
//! order, so when every node's mark has arrived, everything published on any
//! node before `T` has arrived before it.
//!
//! The bus is not reliable: a link that breaks drops what it carried, and a
//! dead node's last messages may never leave it. Both end the session
//! (which records the gap when the duty is claimed again) instead of
//! proving past them:
//! - every round reads the subscribed node's `CLUSTER LINKS`; a link created
//!   after the subscription was confirmed may have dropped messages;
//! - a mark that has not come back from every node within [`MARK_DEADLINE`]
//!   means a node cannot be heard.

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

/// A cluster session's proof state.
pub(crate) struct ClusterProof {
    channel: String,
    /// The node subscribed to, with its credentials, and a connection to it.
    subscribed: redis::Client,
    subscribed_connection: MultiplexedConnection,
    /// The subscribed node's clock (ms): a bus link created after this may
    /// have dropped a message this session should have received.
    links_after: u64,
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
        let mut connection = node_connection(&subscribed).await?;
        let (seconds, micros): (u64, u64) =
            on_node(redis::cmd("TIME").query_async(&mut connection), "TIME").await?;
        // The subscription was confirmed no earlier than `requested`, so no
        // earlier than this on the node's clock.
        let elapsed = u64::try_from(requested.elapsed().as_millis()).unwrap_or(u64::MAX);
        let links_after = (seconds * 1000 + micros / 1000).saturating_sub(elapsed);
        let mut proof = ClusterProof {
            channel: mark_channel(session),
            subscribed,
            subscribed_connection: connection,
            links_after,
            nodes: HashMap::new(),
            pending: HashMap::new(),
            next: 0,
        };
        proof.check_links().await?;
        Ok(proof)
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
        let nodes = self.live_nodes().await?;
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

    /// Every node the subscribed node does not know to have failed, as
    /// `host:port` (`CLUSTER NODES`).
    async fn live_nodes(&mut self) -> Result<Vec<String>, Failure> {
        let text: String = on_node(
            redis::cmd("CLUSTER").arg("NODES").query_async(&mut self.subscribed_connection),
            "CLUSTER NODES",
        )
        .await?;
        Ok(parse_live_nodes(&text))
    }

    /// Fails when a bus link of the subscribed node was created after the
    /// subscription was confirmed (`CLUSTER LINKS`). Checked at every round
    /// (by a recorder without the duty too: what it hands on live comes
    /// through this node) and again before a completed round is proven, so
    /// a link remade while the marks travelled is seen before the proof.
    pub(crate) async fn check_links(&mut self) -> Result<(), Failure> {
        let links: redis::Value = on_node(
            redis::cmd("CLUSTER").arg("LINKS").query_async(&mut self.subscribed_connection),
            "CLUSTER LINKS",
        )
        .await?;
        match newest_link(&links) {
            Some(created) if created > self.links_after => Err(Failure::Transient(format!(
                "a cluster bus link of the subscribed node was (re)made at {created} ms, after the \
                 subscription: messages it carried may have been dropped, so recording restarts"
            ))),
            _ => Ok(()),
        }
    }
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

/// `host:port` of every node in a `CLUSTER NODES` reply but those flagged
/// `fail`, `handshake` or `noaddr`.
fn parse_live_nodes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let _id = fields.next()?;
            let address = fields.next()?.split('@').next()?;
            let flags = fields.next()?;
            let gone = flags.split(',').any(|flag| matches!(flag, "fail" | "handshake" | "noaddr"));
            (!gone && !address.starts_with(':')).then(|| address.to_owned())
        })
        .collect()
}

/// The newest `create-time` in a `CLUSTER LINKS` reply (RESP2: a list of
/// field/value lists).
fn newest_link(links: &redis::Value) -> Option<u64> {
    let redis::Value::Array(links) = links else { return None };
    links
        .iter()
        .filter_map(|link| {
            let fields: Vec<&redis::Value> = match link {
                redis::Value::Array(fields) => fields.iter().collect(),
                redis::Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
                _ => return None,
            };
            fields.chunks(2).find_map(|pair| match pair {
                [redis::Value::BulkString(name), redis::Value::Int(created)]
                    if name == b"create-time" =>
                {
                    u64::try_from(*created).ok()
                }
                _ => None,
            })
        })
        .max()
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
        assert_eq!(parse_live_nodes(nodes), ["127.0.0.1:7000", "127.0.0.1:7002", "127.0.0.1:7003"]);
    }

    #[test]
    fn the_newest_link_is_found_in_a_links_reply() {
        let link = |created: i64| {
            redis::Value::Array(vec![
                redis::Value::BulkString(b"direction".to_vec()),
                redis::Value::BulkString(b"to".to_vec()),
                redis::Value::BulkString(b"create-time".to_vec()),
                redis::Value::Int(created),
            ])
        };
        let reply = redis::Value::Array(vec![link(5), link(9), link(7)]);
        assert_eq!(newest_link(&reply), Some(9));
        assert_eq!(newest_link(&redis::Value::Array(vec![])), None);
    }
}
