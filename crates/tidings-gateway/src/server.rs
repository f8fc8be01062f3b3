//! Starting and stopping a gateway.
//!
//! [`Gateway::bind`] binds the listener (port 0 works, for tests) and returns
//! the bound address with the future that serves until the shutdown token is
//! cancelled. [`run`] is the entry point of the `tidings-gateway` binary and
//! of `tidings gateway`: configuration, logging, then `bind`.
//!
//! Every task (the Redis subscriber, the accept loop of
//! [`crate::listener`], each connection) is spawned on one [`TaskTracker`]
//! and watches one [`CancellationToken`].
//! Shutdown: the token is cancelled → the listener stops accepting, each
//! connection sends close 1001 and waits briefly for the reply → the future
//! returns once every task has ended, or after `shutdown_timeout` with a
//! warning naming how many were still running.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::GatewayError;
use crate::auth::{Authenticator, TokenRules};

use crate::config::{BrokerKind, GatewayArgs, GatewayConfig, LogFormat};
use crate::connection::Shared;
use crate::http::{AppState, router};
use crate::hub::Hub;
use crate::listener::{Admission, Server};
use crate::metrics::Metrics;
use tidings::history::History;

use crate::upstream::{
    Broker, MemoryBroker, RedisBroker, Upstream, UpstreamStatus, UpstreamTask,
    supervise_redis_subscriber,
};

/// A gateway, as a library.
#[derive(Debug)]
pub struct Gateway;

/// What runs until the shutdown token is cancelled.
pub type Serving = Pin<Box<dyn Future<Output = Result<(), GatewayError>> + Send + 'static>>;

/// A bound gateway: its address, its upstream state, and the future that
/// serves it (poll or spawn it; it returns after graceful shutdown).
pub struct BoundGateway {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The broker link's state, as connections see it.
    pub upstream: watch::Receiver<UpstreamStatus>,
    /// Serves until the shutdown token is cancelled, then shuts down gracefully.
    pub serving: Serving,
    /// The supervised upstream task (tests end it to check the supervision).
    #[doc(hidden)]
    pub upstream_task: UpstreamTask,
}

impl std::fmt::Debug for BoundGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundGateway").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl BoundGateway {
    /// Resolves once the broker link is live (events published from then on
    /// reach subscribers), or when the gateway stops.
    pub async fn live(&self) {
        let mut upstream = self.upstream.clone();
        let _ = upstream.wait_for(UpstreamStatus::is_live).await;
    }
}

impl Gateway {
    /// Binds `config.listen` and returns the bound gateway, whose `serving`
    /// future serves until `shutdown` is cancelled. Returns as soon as the
    /// port is bound: the broker link comes up in the background, and
    /// connections are told its state with `status` frames.
    pub async fn bind(
        config: GatewayConfig,
        shutdown: CancellationToken,
    ) -> Result<BoundGateway, GatewayError> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| GatewayError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(GatewayError::Serve)?;

        let metrics = Metrics::new();
        let hub = Arc::new(Hub::new(metrics.clone(), config.max_event_bytes));
        let tracker = TaskTracker::new();
        let (status_tx, status_rx) =
            watch::channel(UpstreamStatus::reconnecting("connecting to the broker"));
        let mut memory_status = None;
        let upstream_task = UpstreamTask::default();
        let broker = match config.broker {
            BrokerKind::Memory => {
                metrics.upstream_live.set(1);
                status_tx.send_replace(UpstreamStatus::live());
                // Always live: the sender lives as long as the serving future,
                // since connections read a closed status channel as shutdown.
                memory_status = Some(status_tx);
                Broker::Memory(MemoryBroker::new(Arc::clone(&hub)))
            }
            BrokerKind::Redis => {
                let redis = RedisBroker::new(&config.redis_url)
                    .map_err(|error| GatewayError::Config(format!("bad --redis URL: {error}")))?;
                let upstream = Upstream {
                    redis: redis.clone(),
                    hub: Arc::clone(&hub),
                    status: status_tx,
                    metrics: metrics.clone(),
                    backoff_max: config.redis_backoff_max,
                    history: config.history,
                    insecure_tls: config.insecure_tls,
                };
                tracker.spawn(supervise_redis_subscriber(
                    upstream,
                    upstream_task.clone(),
                    tracker.clone(),
                    shutdown.clone(),
                ));
                Broker::Redis(redis)
            }
        };
        let rules = TokenRules {
            audience: config.jwt_audience.clone(),
            issuer: config.jwt_issuer.clone(),
            max_lifetime: config.max_token_lifetime.map(|lifetime| lifetime.as_secs()),
        };
        let auth = config
            .jwt_secret
            .as_ref()
            .map(|secret| Authenticator::with_rules(secret.expose().as_bytes(), &rules));
        if auth.is_none() {
            tracing::warn!(
                listen = %addr,
                "OPEN MODE: no JWT secret configured (--jwt-secret / TIDINGS_JWT_SECRET). \
                 Any client reaching this port may subscribe to EVERY channel, including every \
                 user's notifications. Use it only on a trusted machine."
            );
        }
        let config = Arc::new(config);
        let history = match (&broker, config.history) {
            (Broker::Redis(redis), Some(history)) => {
                Some((History::new(history).on(redis.target()), redis.clone()))
            }
            _ => None,
        };
        let shared = Arc::new(Shared {
            history,
            auth,
            hub,
            metrics,
            config: Arc::clone(&config),
            status: status_rx.clone(),
            shutdown: shutdown.clone(),
            open: AtomicUsize::new(0),
            replay_reads: Arc::new(tokio::sync::Semaphore::new(
                crate::connection::MAX_REPLAY_READS,
            )),
        });
        let admission = Admission::new(&config);
        let metrics_for_server = shared.metrics.clone();
        let state = AppState {
            admission: Arc::clone(&admission),
            shared,
            broker,
            api_key: config.api_key.clone(),
            tracker: tracker.clone(),
        };
        let app = router(state);
        tracing::info!(
            listen = %addr,
            broker = ?config.broker,
            auth = if config.jwt_secret.is_some() { "jwt" } else { "open" },
            publish_api = config.api_key.is_some(),
            "gateway listening"
        );

        let server = Server {
            listener,
            router: app,
            admission,
            metrics: metrics_for_server,
            config: Arc::clone(&config),
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
        };
        tracker.spawn(server.run());
        let future = async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: closing connections with 1001");
            tracker.close();
            if tokio::time::timeout(config.shutdown_timeout, tracker.wait()).await.is_err() {
                tracing::warn!(
                    still_running = tracker.len(),
                    timeout = ?config.shutdown_timeout,
                    "shutdown timeout reached; dropping the remaining connections"
                );
            } else {
                tracing::info!("gateway stopped");
            }
            drop(memory_status);
            Ok(())
        };
        Ok(BoundGateway { addr, upstream: status_rx, serving: Box::pin(future), upstream_task })
    }
}

/// Runs the gateway with `args` until `shutdown` is cancelled.
///
/// Installs a tracing subscriber (text or JSON, levels from `RUST_LOG`,
/// default `info`) unless the caller already installed one.
pub async fn run(args: GatewayArgs, shutdown: CancellationToken) -> Result<(), GatewayError> {
    let config = GatewayConfig::from_args(&args)?;
    init_tracing(config.log_format);
    Gateway::bind(config, shutdown).await?.serving.await
}

/// Installs the global tracing subscriber once; later calls do nothing.
pub(crate) fn init_tracing(format: LogFormat) {
    // `tidings::process::init_logging` is the one set-up every binary uses;
    // it does nothing when a subscriber is already installed (by the
    // `tidings` CLI, say), which is fine.
    tidings::process::init_logging(tidings::process::LogSetup {
        env_var: "RUST_LOG",
        default_filter: "info",
        json: format == LogFormat::Json,
        with_target: true,
    });
}
