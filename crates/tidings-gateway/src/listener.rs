//! The accept loop of the gateway's HTTP server, and who is let in.
//!
//! Each accepted TCP connection is served by hyper's HTTP/1 connection (with
//! upgrades) in its own task on the gateway's task tracker, with the axum
//! router as its service. Bounds, in the order they apply (docs/gateway.md,
//! "Limits"):
//!
//! 1. **Pending connections** (`max_pending_connections`): TCP connections
//!    not (yet) upgraded to WebSocket — a request being read or answered, an
//!    idle keep-alive, a half-open or trickling client — each hold a permit
//!    until they close or upgrade. With none left the new connection is
//!    answered `503` with `Retry-After` at once, without reading it.
//! 2. **Per client address** (`max_connections_per_ip`; IPv6 counted per
//!    /64): every TCP connection from the address, pending or upgraded,
//!    counts until it closes. Past it: `429` with `Retry-After`, at accept.
//!    Loopback clients are not counted unless `limit_loopback` (a reverse
//!    proxy on this machine brings every client from 127.0.0.1).
//! 3. **Header-read timeout** (`header_read_timeout`): a request's headers
//!    must arrive within it, counted from the accept or from the end of the
//!    previous response on a kept-alive connection (hyper starts the clock
//!    whenever it waits for a request head), so it also closes idle
//!    keep-alive connections. A slowloris client is closed when it expires.
//! 4. **Per user** (`max_connections_per_user`, the token's `sub`), at the
//!    upgrade ([`Admission::enter_user`], called by `http`): `429`.
//! 5. **Total WebSocket connections** (`max_connections`): `503`
//!    (`connection::Slot`).
//!
//! Every refusal is counted in `connections_refused_total{reason}`. The
//! per-address and per-user tables only hold keys with a connection open,
//! so they are bounded by the connection bounds above. Refusals at accept
//! are answered by short tasks (at most [`MAX_REFUSALS`] at once, each
//! bounded by [`REFUSAL_LINGER`]: read the request head, answer, close);
//! past that a refused socket is just closed.
//!
//! Shutdown: the loop stops accepting (the listener is dropped) and each
//! connection is told to finish gracefully: an idle one closes at once, one
//! in the middle of a request answers it first; whatever is left after the
//! close timeout (2 s) is dropped, so a client halfway through its headers
//! does not hold the shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::GatewayConfig;
use crate::metrics::Metrics;

/// Refusal answers being written at once; past it a refused socket is
/// closed without an answer.
pub(crate) const MAX_REFUSALS: usize = 64;
/// How long a refused connection is kept to deliver its answer.
pub(crate) const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Largest request head (start line and headers) read: a larger one gets
/// 431. Bounds what a pending connection can make the gateway buffer.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most bytes of a refused connection's request head read before answering.
pub(crate) const REFUSAL_HEAD_BYTES: usize = 8 * 1024;
/// `Retry-After` seconds when the gateway is full (pending or total).
pub(crate) const RETRY_AFTER_FULL: u32 = 5;
/// `Retry-After` seconds when one address has too many connections.
pub(crate) const RETRY_AFTER_PER_IP: u32 = 10;
/// `Retry-After` seconds when one user has too many connections.
pub(crate) const RETRY_AFTER_PER_USER: u32 = 30;

/// The admission state of one gateway: the pending-connection permits and
/// the per-address and per-user counts.
#[derive(Debug)]
pub(crate) struct Admission {
    pending: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    per_ip_max: usize,
    limit_loopback: bool,
    per_user: Mutex<HashMap<String, usize>>,
    per_user_max: usize,
}

/// A connection's place under its address's cap, given back when the last
/// clone is dropped. It rides in each request's extensions, so the
/// WebSocket task of an upgraded connection keeps holding it.
#[derive(Debug, Clone)]
pub(crate) struct PeerPlace {
    /// Held for its `Drop`, which gives the place back.
    _held: Arc<PeerInner>,
}

#[derive(Debug)]
struct PeerInner {
    /// `None`: not counted (loopback).
    key: Option<IpAddr>,
    admission: Arc<Admission>,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            Admission::leave(&self.admission.per_ip, &key);
        }
    }
}

/// A WebSocket connection's place under its user's cap; given back when dropped.
#[derive(Debug)]
pub(crate) struct UserPlace {
    key: String,
    admission: Arc<Admission>,
}

impl Drop for UserPlace {
    fn drop(&mut self) {
        Admission::leave(&self.admission.per_user, &self.key);
    }
}

impl Admission {
    pub(crate) fn new(config: &GatewayConfig) -> Arc<Self> {
        Arc::new(Admission {
            pending: Arc::new(Semaphore::new(config.max_pending_connections)),
            refusals: Arc::new(Semaphore::new(MAX_REFUSALS)),
            per_ip: Mutex::default(),
            per_ip_max: config.max_connections_per_ip,
            limit_loopback: config.limit_loopback,
            per_user: Mutex::default(),
            per_user_max: config.max_connections_per_user,
        })
    }

    /// A place for one more connection from `ip`, or `None` past the cap.
    pub(crate) fn enter_ip(self: &Arc<Self>, ip: IpAddr) -> Option<PeerPlace> {
        let ip = ip.to_canonical();
        if ip.is_loopback() && !self.limit_loopback {
            return Some(PeerPlace {
                _held: Arc::new(PeerInner { key: None, admission: Arc::clone(self) }),
            });
        }
        let key = address_key(ip);
        Self::enter(&self.per_ip, key, self.per_ip_max)?;
        Some(PeerPlace {
            _held: Arc::new(PeerInner { key: Some(key), admission: Arc::clone(self) }),
        })
    }

    /// A place for one more WebSocket connection of `user`, or `None` past the cap.
    pub(crate) fn enter_user(self: &Arc<Self>, user: &str) -> Option<UserPlace> {
        Self::enter(&self.per_user, user.to_owned(), self.per_user_max)?;
        Some(UserPlace { key: user.to_owned(), admission: Arc::clone(self) })
    }

    fn enter<K: std::hash::Hash + Eq>(
        table: &Mutex<HashMap<K, usize>>,
        key: K,
        max: usize,
    ) -> Option<()> {
        let mut table = table.lock().unwrap_or_else(|poison| poison.into_inner());
        let count = table.entry(key).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(())
    }

    fn leave<K: std::hash::Hash + Eq>(table: &Mutex<HashMap<K, usize>>, key: &K) {
        let mut table = table.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(count) = table.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                table.remove(key);
            }
        }
    }

    /// Answers `stream` with `status` and `Retry-After`, then closes it,
    /// from a short task (or closes it at once when too many are running).
    fn refuse(&self, mut stream: TcpStream, refusal: Refusal, tracker: &TaskTracker) {
        let Ok(permit) = Arc::clone(&self.refusals).try_acquire_owned() else { return };
        let (status, retry_after, code, message) = match refusal {
            Refusal::Pending => (
                "503 Service Unavailable",
                RETRY_AFTER_FULL,
                "too_many_connections",
                "the gateway has too many connections waiting for their first request; retry later",
            ),
            Refusal::PerIp => (
                "429 Too Many Requests",
                RETRY_AFTER_PER_IP,
                "too_many_connections_from_address",
                "too many connections from this address; close some or retry later",
            ),
        };
        let body = serde_json::json!({ "error": code, "message": message }).to_string();
        let response = format!(
            "HTTP/1.1 {status}\r\nretry-after: {retry_after}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tracker.spawn(async move {
            let _permit = permit;
            let exchange = async {
                // Read the request head first: HTTP clients take an answer
                // that comes before their request for a broken connection.
                let mut head = Vec::with_capacity(1024);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REFUSAL_HEAD_BYTES
                {
                    if stream.read_buf(&mut head).await? == 0 {
                        return Ok(());
                    }
                }
                stream.write_all(response.as_bytes()).await?;
                stream.shutdown().await?;
                // Read (and drop) anything else the client sends: closing a
                // socket with unread data resets it, and the answer with it.
                let mut sink = [0u8; 2048];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<(), std::io::Error>(())
            };
            let _ = tokio::time::timeout(REFUSAL_LINGER, exchange).await;
        });
    }
}

/// Why a connection is refused at accept.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Pending,
    PerIp,
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one
/// host usually has a whole /64).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    }
}

/// What the accept loop needs.
#[derive(Debug)]
pub(crate) struct Server {
    pub listener: TcpListener,
    pub router: Router,
    pub admission: Arc<Admission>,
    pub metrics: Metrics,
    pub config: Arc<GatewayConfig>,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

impl Server {
    /// Accepts until `shutdown`; each connection is served on the tracker.
    pub(crate) async fn run(self) {
        let Server { listener, router, admission, metrics, config, tracker, shutdown } = self;
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, say: wait instead of spinning.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        }
                    }
                },
            };
            // TCP_NODELAY: event frames are small and written as they come;
            // with Nagle on, a frame written while the previous one is
            // unacknowledged waits for the peer's delayed ACK (up to 40 ms).
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
            let Ok(pending) = Arc::clone(&admission.pending).try_acquire_owned() else {
                metrics.connections_refused.with_label_values(&["pending"]).inc();
                tracing::debug!(%peer, "connection refused: too many pending connections");
                admission.refuse(stream, Refusal::Pending, &tracker);
                continue;
            };
            let Some(place) = admission.enter_ip(peer.ip()) else {
                metrics.connections_refused.with_label_values(&["per_ip"]).inc();
                tracing::debug!(%peer, "connection refused: too many from this address");
                drop(pending);
                admission.refuse(stream, Refusal::PerIp, &tracker);
                continue;
            };
            tracker.spawn(serve_connection(Connection {
                stream,
                peer,
                place,
                pending,
                router: router.clone(),
                metrics: metrics.clone(),
                header_read_timeout: config.header_read_timeout,
                close_timeout: config.close_timeout,
                shutdown: shutdown.clone(),
            }));
        }
    }
}

/// One accepted TCP connection, before any request was read.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    place: PeerPlace,
    /// Held until the connection closes or upgrades to WebSocket.
    pending: OwnedSemaphorePermit,
    router: Router,
    metrics: Metrics,
    header_read_timeout: Duration,
    /// Bound on finishing gracefully once the gateway shuts down.
    close_timeout: Duration,
    shutdown: CancellationToken,
}

/// Serves HTTP on one connection until it closes or upgrades.
async fn serve_connection(connection: Connection) {
    let Connection {
        stream,
        peer,
        place,
        pending,
        router,
        metrics,
        header_read_timeout,
        close_timeout,
        shutdown,
    } = connection;
    let _pending_gauge = GaugeGuard::inc(&metrics.pending_connections);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(place.clone());
        tower::ServiceExt::oneshot(router.clone(), request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES);
    let served = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(served);
    // On shutdown: finish gracefully (an idle connection closes at once, a
    // request being answered is answered), but within `close_timeout`: a
    // client halfway through its headers would otherwise hold the whole
    // shutdown until the header-read timeout.
    let result = tokio::select! {
        result = served.as_mut() => Some(result),
        () = shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            tokio::time::timeout(close_timeout, served.as_mut()).await.ok()
        }
    };
    if let Some(Err(error)) = result {
        if error.is_timeout() {
            metrics.header_timeouts.inc();
            tracing::debug!(%peer, "closed: request headers not received within the header-read timeout");
        } else {
            tracing::debug!(%peer, %error, "HTTP connection ended with an error");
        }
    }
    drop(pending);
}

/// Increments a gauge now and decrements it when dropped.
struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    fn inc(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_ip: usize, limit_loopback: bool) -> Arc<Admission> {
        let mut config = GatewayConfig::new("127.0.0.1:0".parse().unwrap());
        config.max_connections_per_ip = per_ip;
        config.limit_loopback = limit_loopback;
        config.max_connections_per_user = 1;
        Admission::new(&config)
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let admission = admission(1, false);
        let first = admission.enter_ip("2001:db8::1".parse().unwrap());
        assert!(first.is_some());
        assert!(admission.enter_ip("2001:db8::2".parse().unwrap()).is_none());
        assert!(admission.enter_ip("2001:db8:0:1::1".parse().unwrap()).is_some());
    }

    #[test]
    fn a_place_is_given_back_when_its_last_holder_drops_it_and_the_table_forgets_the_key() {
        let admission = admission(1, true);
        let place = admission.enter_ip("127.0.0.1".parse().unwrap()).unwrap();
        let riding = place.clone();
        drop(place);
        assert!(admission.enter_ip("127.0.0.1".parse().unwrap()).is_none());
        drop(riding);
        assert!(admission.per_ip.lock().unwrap().is_empty());
        assert!(admission.enter_ip("::ffff:127.0.0.1".parse().unwrap()).is_some());
    }

    #[test]
    fn loopback_is_not_counted_unless_asked() {
        let admission = admission(1, false);
        let places: Vec<_> =
            (0..5).map(|_| admission.enter_ip("127.0.0.1".parse().unwrap())).collect();
        assert!(places.iter().all(Option::is_some));
        assert!(admission.per_ip.lock().unwrap().is_empty());
    }

    #[test]
    fn a_user_past_the_cap_is_refused_until_a_place_is_given_back() {
        let admission = admission(1, false);
        let place = admission.enter_user("u1").unwrap();
        assert!(admission.enter_user("u1").is_none());
        assert!(admission.enter_user("u2").is_some());
        drop(place);
        assert!(admission.enter_user("u1").is_some());
    }
}
