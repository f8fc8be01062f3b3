//! What a Redis URL names, in one place, for every part that connects to
//! Redis (the subscriber, the publisher, the history reads, the gateway):
//!
//! - one server: `redis://`, `rediss://`, `redis+unix://`, as redis-rs
//!   reads them;
//! - a service watched by Sentinel:
//!   `redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db]`
//!   (`rediss+sentinel://` for TLS to the master). The credentials are the
//!   master's (`requirepass` or an ACL user); the sentinels are asked
//!   without them. The port of a sentinel defaults to 26379;
//! - a Redis Cluster: `redis+cluster://[[user]:password@]host:port[,host:port…]`
//!   (`rediss+cluster://` for TLS): any of its nodes as seeds, port 6379
//!   when absent. Commands go through redis-rs's cluster client
//!   ([`RedisUrl::connect`]), which follows slots and failovers; a
//!   subscription goes to one node, tried in turn ([`RedisUrl::client`]):
//!   Redis Cluster delivers a plain `PUBLISH` on any node to the
//!   subscribers of every node.
//!
//! A sentinel URL is resolved to the current master each time a connection
//! is made ([`RedisUrl::client`]): the sentinels are asked in order
//! (`SENTINEL MASTERS`) and the master they name is checked with `ROLE`
//! (redis-rs's `sentinel` module does both). Every part of Tidings reconnects
//! after a lost connection, so after a failover the next connection goes to
//! the new master.

use std::sync::Arc;
use std::time::Duration;

use redis::IntoConnectionInfo;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};

use crate::redact::redact_url;

/// Every scheme a Redis URL may have here.
pub const SCHEMES: [&str; 7] = [
    "redis://",
    "rediss://",
    "redis+unix://",
    "redis+sentinel://",
    "rediss+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
];

/// The default port of a sentinel.
pub const SENTINEL_PORT: u16 = 26379;

/// A parsed Redis URL. Its `Debug` shows only the label (password hidden).
#[derive(Clone)]
pub struct RedisUrl {
    label: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// One server: its client, which holds the parsed URL (boxed: it is
    /// large, and a `RedisUrl` is cloned per connection).
    Server(Box<redis::Client>),
    /// A service behind Sentinel.
    Sentinel(Arc<SentinelService>),
    /// A Redis Cluster.
    Cluster(Arc<ClusterService>),
}

struct ClusterService {
    /// One client per seed node, tried in turn for subscriptions.
    seeds: Vec<redis::Client>,
    /// The seed the next subscription tries first.
    next_seed: std::sync::atomic::AtomicUsize,
    /// Built from the seeds, with their credentials and TLS.
    client: redis::cluster::ClusterClient,
}

/// A connection for commands (history, publishing): one server's
/// multiplexed connection, or redis-rs's cluster connection, which routes
/// each command to the node of its keys' slot and follows failovers.
#[derive(Clone)]
pub enum Commands {
    /// One server (or the master a sentinel named).
    Server(redis::aio::MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(redis::cluster_async::ClusterConnection),
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Commands::Server(_) => "Commands::Server",
            Commands::Cluster(_) => "Commands::Cluster",
        })
    }
}

impl redis::aio::ConnectionLike for Commands {
    fn req_packed_command<'a>(
        &'a mut self,
        command: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Commands::Server(connection) => connection.req_packed_command(command),
            Commands::Cluster(connection) => connection.req_packed_command(command),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Commands::Server(connection) => connection.req_packed_commands(pipeline, offset, count),
            Commands::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Commands::Server(connection) => connection.get_db(),
            Commands::Cluster(connection) => connection.get_db(),
        }
    }
}

struct SentinelService {
    service: String,
    /// `Sentinel` caches one connection per sentinel, hence the lock.
    sentinels: tokio::sync::Mutex<Sentinel>,
    master: SentinelNodeConnectionInfo,
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisUrl").field("label", &self.label).finish_non_exhaustive()
    }
}

/// Why a Redis URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "Redis URL {label} is not usable: {reason}. Expected redis://[:password@]host[:port], redis+sentinel://[:password@]host:port[,host:port…]/service or redis+cluster://[:password@]host:port[,host:port…]"
)]
pub struct RedisUrlError {
    /// The URL, password hidden.
    pub label: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RedisUrl {
    /// Reads `url`; an error says what is wrong, with the password hidden.
    pub fn parse(url: &str) -> Result<Self, RedisUrlError> {
        let label = redact_url(url);
        let invalid = |reason: String| RedisUrlError { label: label.clone(), reason };
        let kind = match (strip_scheme(url, "sentinel"), strip_scheme(url, "cluster")) {
            (Some((rest, tls)), _) => {
                Kind::Sentinel(Arc::new(parse_sentinel(rest, tls).map_err(invalid)?))
            }
            (None, Some((rest, tls))) => {
                Kind::Cluster(Arc::new(parse_cluster(rest, tls).map_err(invalid)?))
            }
            (None, None) => Kind::Server(Box::new(
                redis::Client::open(url).map_err(|e| invalid(e.to_string()))?,
            )),
        };
        Ok(RedisUrl { label, kind })
    }

    /// The URL with its password hidden, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether this names a service behind Sentinel.
    pub fn is_sentinel(&self) -> bool {
        matches!(self.kind, Kind::Sentinel(_))
    }

    /// Whether this names a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.kind, Kind::Cluster(_))
    }

    /// The client of one server's URL, known without asking anyone; `None`
    /// for a sentinel or cluster URL (see [`RedisUrl::client`]).
    pub fn server(&self) -> Option<&redis::Client> {
        match &self.kind {
            Kind::Server(client) => Some(client),
            Kind::Sentinel(_) | Kind::Cluster(_) => None,
        }
    }

    /// A connection for commands within `timeout` (to connect and for each
    /// reply): to the server or master of [`RedisUrl::client`], or to the
    /// whole cluster.
    pub async fn connect(&self, timeout: Duration) -> redis::RedisResult<Commands> {
        if let Kind::Cluster(cluster) = &self.kind {
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            let connecting = cluster.client.get_async_connection_with_config(config);
            return match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map(Commands::Cluster),
                Err(_) => Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "no cluster node answered in time",
                    format!("{} ({timeout:?})", self.label),
                ))),
            };
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let client = self.client(timeout).await?;
        Ok(Commands::Server(client.get_multiplexed_async_connection_with_config(&config).await?))
    }

    /// A client for one server to talk to now: the URL's own server, the
    /// master the sentinels name (checked to be a master), within `timeout`,
    /// or the next of a cluster's seed nodes (each call another, so a
    /// reconnecting subscriber goes round them).
    pub async fn client(&self, timeout: Duration) -> redis::RedisResult<redis::Client> {
        let service = match &self.kind {
            Kind::Server(client) => return Ok((**client).clone()),
            Kind::Cluster(cluster) => {
                let next = cluster.next_seed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(cluster.seeds[next % cluster.seeds.len()].clone());
            }
            Kind::Sentinel(service) => service,
        };
        let ask = async {
            let mut sentinels = service.sentinels.lock().await;
            sentinels.async_master_for(&service.service, Some(&service.master)).await
        };
        match tokio::time::timeout(timeout, ask).await {
            Ok(found) => found,
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no sentinel named a master in time",
                format!("{} (service {}, {timeout:?})", self.label, service.service),
            ))),
        }
    }
}

/// What follows `redis+KIND://` (TLS: false) or `rediss+KIND://` (true).
fn strip_scheme<'u>(url: &'u str, kind: &str) -> Option<(&'u str, bool)> {
    let (tls, rest) = match url.strip_prefix("rediss+") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("redis+")?),
    };
    Some((rest.strip_prefix(kind)?.strip_prefix("://")?, tls))
}

/// `[[user]:password@]host:port[,host:port…][/]`: one client per seed
/// node, each with the credentials.
fn parse_cluster(rest: &str, tls: bool) -> Result<ClusterService, String> {
    let (auth, rest) = split_auth(rest);
    let hosts = match rest.split_once('/') {
        None => rest,
        Some((hosts, "" | "0")) => hosts,
        Some((_, path)) => {
            return Err(format!(
                "Redis Cluster has only database 0, and {path:?} follows the hosts"
            ));
        }
    };
    let mut info = redis::RedisConnectionInfo::default();
    if let Some(auth) = auth {
        info = with_credentials(info, auth)?;
    }
    let scheme = if tls { "rediss" } else { "redis" };
    let seeds = hosts
        .split(',')
        .map(|host| {
            let address = node_address(host.trim(), 6379, "a cluster node")?;
            let url = format!("{scheme}://{address}");
            let base = url.as_str().into_connection_info().map_err(|error| error.to_string())?;
            let node = base.set_redis_settings(info.clone());
            redis::Client::open(node).map_err(|error| error.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let infos = seeds.iter().map(|seed| seed.get_connection_info().clone());
    let client =
        redis::cluster::ClusterClient::new(infos.collect::<Vec<_>>()).map_err(|e| e.to_string())?;
    Ok(ClusterService { seeds, next_seed: std::sync::atomic::AtomicUsize::new(0), client })
}

/// `[[user]:password@]rest` → the credentials part, if any, and the rest.
fn split_auth(rest: &str) -> (Option<&str>, &str) {
    match rest.rsplit_once('@') {
        Some((auth, rest)) => (Some(auth), rest),
        None => (None, rest),
    }
}

/// `[user]:password` (percent-encoded) into `info`.
fn with_credentials(
    mut info: redis::RedisConnectionInfo,
    auth: &str,
) -> Result<redis::RedisConnectionInfo, String> {
    let (user, password) = auth.split_once(':').unwrap_or(("", auth));
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| "the credentials are not valid UTF-8 once decoded".to_owned())
    };
    if !user.is_empty() {
        info = info.set_username(decode(user)?);
    }
    if !password.is_empty() {
        info = info.set_password(decode(password)?);
    }
    Ok(info)
}

/// `[[user]:password@]host:port[,host:port…]/service[/db]`.
fn parse_sentinel(rest: &str, tls: bool) -> Result<SentinelService, String> {
    let (auth, rest) = split_auth(rest);
    let (hosts, path) = rest
        .split_once('/')
        .ok_or("a sentinel URL names its service after the hosts (…/mymaster)")?;
    let mut path = path.split('/');
    let service = path.next().unwrap_or_default();
    if service.is_empty() {
        return Err("the service name (…/mymaster) is missing".into());
    }
    let db: i64 = match path.next() {
        None | Some("") => 0,
        Some(db) => db.parse().map_err(|_| format!("{db:?} is not a database number"))?,
    };
    let sentinels = hosts
        .split(',')
        .map(|host| {
            node_address(host.trim(), SENTINEL_PORT, "a sentinel address")
                .map(|address| format!("redis://{address}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut info = redis::RedisConnectionInfo::default().set_db(db);
    if let Some(auth) = auth {
        info = with_credentials(info, auth)?;
    }
    let mut master = SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
    if tls {
        master = master.set_tls_mode(redis::TlsMode::Secure);
    }
    let sentinels = Sentinel::build(sentinels).map_err(|error| error.to_string())?;
    Ok(SentinelService {
        service: service.to_owned(),
        sentinels: tokio::sync::Mutex::new(sentinels),
        master,
    })
}

/// `host[:port]` (`[v6]:port` for IPv6) → `host:port`, `default_port` when
/// absent; `what` names the address in errors.
fn node_address(host: &str, default_port: u16, what: &str) -> Result<String, String> {
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let (name, after) = v6.split_once(']').ok_or(format!("{host:?} has no closing ]"))?;
            (format!("[{name}]"), after.strip_prefix(':'))
        }
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (host.to_owned(), None),
        },
    };
    if name.is_empty() || name == "[]" {
        return Err(format!("{what} is empty ({host:?}; two commas in a row?)"));
    }
    let port = match port {
        Some(port) => port.parse::<u16>().map_err(|_| format!("{port:?} is not a port"))?,
        None => default_port,
    };
    Ok(format!("{name}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_names_one_server() {
        let url = RedisUrl::parse("redis://:s3cret@127.0.0.1:6380/2").unwrap();
        assert!(!url.is_sentinel());
        assert!(url.server().is_some());
        assert!(!url.label().contains("s3cret"), "{}", url.label());
    }

    #[test]
    fn a_sentinel_url_names_its_sentinels_service_and_database() {
        let url = RedisUrl::parse(
            "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,10.0.0.3:26400/orders/3",
        )
        .unwrap();
        assert!(url.is_sentinel());
        assert!(url.server().is_none());
        assert!(!url.label().contains("s3cret"), "{}", url.label());
        let Kind::Sentinel(service) = &url.kind else { unreachable!() };
        assert_eq!(service.service, "orders");
    }

    #[test]
    fn a_cluster_url_names_its_seed_nodes_with_their_credentials() {
        let url = RedisUrl::parse("redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2").unwrap();
        assert!(url.is_cluster() && !url.is_sentinel());
        assert!(url.server().is_none());
        assert!(!url.label().contains("s3cret"), "{}", url.label());
        let Kind::Cluster(cluster) = &url.kind else { unreachable!() };
        let ports: Vec<String> = cluster
            .seeds
            .iter()
            .map(|seed| seed.get_connection_info().addr().to_string())
            .collect();
        assert_eq!(ports, ["10.0.0.1:7000", "10.0.0.2:6379"]);
        for seed in &cluster.seeds {
            assert_eq!(seed.get_connection_info().redis_settings().password(), Some("s3cret"));
        }
    }

    #[test]
    fn a_cluster_url_with_a_database_or_an_empty_host_says_what_is_wrong() {
        let error = RedisUrl::parse("redis+cluster://:pw@10.0.0.1:7000/3").unwrap_err();
        assert!(error.to_string().contains("only database 0"), "{error}");
        assert!(!error.to_string().contains(":pw@"), "{error}");
        let error = RedisUrl::parse("redis+cluster://10.0.0.1:7000,,10.0.0.2").unwrap_err();
        assert!(error.to_string().contains("a cluster node is empty"), "{error}");
    }

    #[test]
    fn a_sentinel_address_without_a_port_gets_26379() {
        let address = |host| node_address(host, SENTINEL_PORT, "a sentinel address").unwrap();
        assert_eq!(address("sentinel-a"), "sentinel-a:26379");
        assert_eq!(address("10.0.0.1:26400"), "10.0.0.1:26400");
    }

    #[test]
    fn a_sentinel_url_without_a_service_or_with_a_bad_port_says_what_is_wrong() {
        let error = RedisUrl::parse("redis+sentinel://:pw@10.0.0.1:26379").unwrap_err();
        assert!(error.to_string().contains("service"), "{error}");
        assert!(!error.to_string().contains(":pw@"), "{error}");
        let error = RedisUrl::parse("redis+sentinel://10.0.0.1:sixty/mymaster").unwrap_err();
        assert!(error.to_string().contains("\"sixty\" is not a port"), "{error}");
        let error = RedisUrl::parse("redis+sentinel://a,,b/mymaster").unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
    }
}
