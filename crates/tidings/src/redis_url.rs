//! What a Redis URL names, in one place, for every part that connects to
//! Redis (the subscriber, the publisher, the history reads, the gateway):
//!
//! - one server: `redis://`, `rediss://`, `redis+unix://`, as redis-rs
//!   reads them;
//! - a service watched by Sentinel:
//!   `redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db]`
//!   (`rediss+sentinel://` for TLS to the master). The credentials are the
//!   master's (`requirepass` or an ACL user); the sentinels are asked
//!   without them. The port of a sentinel defaults to 26379.
//!
//! A sentinel URL is resolved to the current master each time a connection
//! is made ([`RedisUrl::client`]): the sentinels are asked in order
//! (`SENTINEL MASTERS`) and the master they name is checked with `ROLE`
//! (redis-rs's `sentinel` module does both). Every part of Tidings reconnects
//! after a lost connection, so after a failover the next connection goes to
//! the new master.

use std::sync::Arc;
use std::time::Duration;

use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};

use crate::redact::redact_url;

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
    "Redis URL {label} is not usable: {reason}. Expected redis://[:password@]host[:port] or redis+sentinel://[:password@]host:port[,host:port…]/service"
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
        let sentinel = url
            .strip_prefix("redis+sentinel://")
            .map(|rest| (rest, false))
            .or_else(|| url.strip_prefix("rediss+sentinel://").map(|rest| (rest, true)));
        let kind = match sentinel {
            Some((rest, tls)) => {
                Kind::Sentinel(Arc::new(parse_sentinel(rest, tls).map_err(invalid)?))
            }
            None => Kind::Server(Box::new(
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

    /// The client of one server's URL, known without asking anyone; `None`
    /// for a sentinel URL (see [`RedisUrl::client`]).
    pub fn server(&self) -> Option<&redis::Client> {
        match &self.kind {
            Kind::Server(client) => Some(client),
            Kind::Sentinel(_) => None,
        }
    }

    /// A client for the server to talk to now: the URL's own server, or the
    /// master the sentinels name (checked to be a master), within `timeout`.
    pub async fn client(&self, timeout: Duration) -> redis::RedisResult<redis::Client> {
        let service = match &self.kind {
            Kind::Server(client) => return Ok((**client).clone()),
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

/// `[[user]:password@]host:port[,host:port…]/service[/db]`.
fn parse_sentinel(rest: &str, tls: bool) -> Result<SentinelService, String> {
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((auth, rest)) => (Some(auth), rest),
        None => (None, rest),
    };
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
        .map(|host| sentinel_address(host.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut info = redis::RedisConnectionInfo::default().set_db(db);
    if let Some(auth) = auth {
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

/// `host[:port]` (`[v6]:port` for IPv6) → `redis://host:port`, port 26379
/// when absent.
fn sentinel_address(host: &str) -> Result<String, String> {
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
        return Err(format!("a sentinel address is empty ({host:?}; two commas in a row?)"));
    }
    let port = match port {
        Some(port) => port.parse::<u16>().map_err(|_| format!("{port:?} is not a port"))?,
        None => SENTINEL_PORT,
    };
    Ok(format!("redis://{name}:{port}"))
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
    fn a_sentinel_address_without_a_port_gets_26379() {
        assert_eq!(sentinel_address("sentinel-a").unwrap(), "redis://sentinel-a:26379");
        assert_eq!(sentinel_address("10.0.0.1:26400").unwrap(), "redis://10.0.0.1:26400");
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
