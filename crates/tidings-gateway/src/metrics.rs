//! The Prometheus metrics of one gateway, served as text at `GET /metrics`.
//!
//! Each gateway owns its own [`prometheus::Registry`] (not a process-global
//! one), so two gateways in one process (as in the tests) count apart. The
//! hot path (one increment per delivered frame) uses plain counters held
//! here, never a label lookup. User channels are counted under the single
//! label `user:*:notifications`, so the label set stays bounded however many
//! users connect.

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tidings_events::Channel;
use tidings_events::frame::ErrorCode;

/// Every `reason` of `tidings_gateway_auth_failures_total`: the 401s at the
/// upgrade ([`crate::auth::AuthError::label`]), forbidden subscriptions, and
/// refused API keys.
pub(crate) const AUTH_FAILURE_REASONS: [&str; 13] = [
    "missing",
    "expired",
    "bad_signature",
    "bad_algorithm",
    "malformed",
    "bad_subject",
    "bad_audience",
    "bad_issuer",
    "lifetime_too_long",
    EXPIRED_WHILE_CONNECTED,
    "forbidden",
    "bad_api_key",
    "missing_api_key",
];

/// The `reason` of a connection closed (4001) when its token expired.
pub(crate) const EXPIRED_WHILE_CONNECTED: &str = "expired_while_connected";

/// Every `reason` of `tidings_gateway_connections_refused_total`.
pub(crate) const REFUSAL_REASONS: [&str; 6] =
    ["capacity", "origin", "shutting_down", "pending", "per_ip", "per_user"];

/// Label for every per-user channel in `tidings_gateway_subscriptions`.
pub(crate) const USER_CHANNELS_LABEL: &str = "user:*:notifications";

/// Every metric the gateway exports.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: IntGauge,
    /// WebSocket connections accepted since start.
    pub connections_accepted: IntCounter,
    /// Connections and upgrades refused, by reason ([`REFUSAL_REASONS`]).
    pub connections_refused: IntCounterVec,
    /// TCP connections not (yet) upgraded to WebSocket.
    pub pending_connections: IntGauge,
    /// Connections closed because a request's headers did not arrive in time
    /// (slow or idle clients, idle keep-alives).
    pub header_timeouts: IntCounter,
    /// Live subscriptions by channel.
    pub subscriptions: IntGaugeVec,
    /// Messages received from the broker, by outcome
    /// (`typed`, `legacy`, `malformed`, `unknown_channel`).
    pub messages_in: IntCounterVec,
    /// Malformed messages (also in `messages_in{outcome="malformed"}`).
    pub malformed: IntCounter,
    /// Event frames queued for clients.
    pub messages_out: IntCounter,
    /// Event frames not delivered because their connection was being cut.
    pub dropped: IntCounter,
    /// Connections closed for falling behind (close code 1013).
    pub slow_disconnects: IntCounter,
    /// Connections dropped for staying silent past the idle timeout.
    pub idle_disconnects: IntCounter,
    /// Replay pages held back because their connection spent its replay
    /// budget (docs/gateway.md, "Replays").
    pub replays_throttled: IntCounter,
    /// Upgrades refused with 401, and subscriptions refused as forbidden, by reason.
    pub auth_failures: IntCounterVec,
    /// Bad client frames answered with an `error` frame, by code.
    pub client_errors: IntCounterVec,
    /// Times the Redis subscription was lost and set up again.
    pub redis_reconnects: IntCounter,
    /// Times the upstream task ended unexpectedly and was started again.
    pub upstream_restarts: IntCounter,
    /// 1 while the broker link is live, 0 while reconnecting.
    pub upstream_live: IntGauge,
    /// Events accepted by `POST /api/publish`.
    pub published: IntCounter,
    /// Events larger than `--max-event-bytes`, not forwarded, by `source`
    /// (`redis`, `api`).
    pub events_oversized: IntCounterVec,
    /// `refresh` frames, by `outcome` (`accepted`, `refused`).
    pub token_refreshes: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        fn register<M: prometheus::core::Collector + Clone + 'static>(
            registry: &Registry,
            metric: M,
        ) -> M {
            // Names are fixed and unique within this registry, so this cannot fail.
            let _ = registry.register(Box::new(metric.clone()));
            metric
        }
        fn opts(name: &str, help: &str) -> Opts {
            Opts::new(format!("tidings_gateway_{name}"), help)
        }
        let counter = |name: &str, help: &str| {
            register(&registry, IntCounter::with_opts(opts(name, help)).expect("valid counter"))
        };
        let counter_vec = |name: &str, help: &str, label: &str| {
            register(
                &registry,
                IntCounterVec::new(opts(name, help), &[label]).expect("valid counter"),
            )
        };
        let metrics = Metrics {
            registry: registry.clone(),
            connections: register(
                &registry,
                IntGauge::with_opts(opts("connections", "Open WebSocket connections"))
                    .expect("valid gauge"),
            ),
            connections_accepted: counter(
                "connections_accepted_total",
                "WebSocket connections accepted",
            ),
            connections_refused: counter_vec(
                "connections_refused_total",
                "Connections and WebSocket upgrades refused, by reason",
                "reason",
            ),
            pending_connections: register(
                &registry,
                IntGauge::with_opts(opts(
                    "pending_connections",
                    "TCP connections not (yet) upgraded to WebSocket",
                ))
                .expect("valid gauge"),
            ),
            header_timeouts: counter(
                "header_timeouts_total",
                "Connections closed because request headers (or a publish body) did not arrive within the header-read timeout",
            ),
            subscriptions: register(
                &registry,
                IntGaugeVec::new(
                    opts("subscriptions", "Live subscriptions by channel"),
                    &["channel"],
                )
                .expect("valid gauge"),
            ),
            messages_in: counter_vec(
                "messages_in_total",
                "Messages received from the broker, by outcome",
                "outcome",
            ),
            malformed: counter(
                "malformed_messages_total",
                "Malformed broker messages (never forwarded)",
            ),
            messages_out: counter("messages_out_total", "Event frames queued for clients"),
            dropped: counter(
                "messages_dropped_total",
                "Event frames not delivered because their connection was being cut",
            ),
            slow_disconnects: counter(
                "slow_consumer_disconnects_total",
                "Connections closed (1013) for falling behind",
            ),
            idle_disconnects: counter(
                "idle_disconnects_total",
                "Connections dropped for staying silent past the idle timeout",
            ),
            replays_throttled: counter(
                "replays_throttled_total",
                "Replay pages held back because their connection spent its replay budget",
            ),
            auth_failures: counter_vec(
                "auth_failures_total",
                "Refused credentials (401) and forbidden subscriptions, by reason",
                "reason",
            ),
            client_errors: counter_vec(
                "client_errors_total",
                "Client frames answered with an error frame, by code",
                "code",
            ),
            redis_reconnects: counter(
                "redis_reconnects_total",
                "Times the Redis subscription was set up again",
            ),
            upstream_restarts: counter(
                "upstream_restarts_total",
                "Times the upstream task ended unexpectedly and was started again",
            ),
            upstream_live: register(
                &registry,
                IntGauge::with_opts(opts("upstream_live", "1 while the broker link is live"))
                    .expect("valid gauge"),
            ),
            published: counter("published_total", "Events accepted by POST /api/publish"),
            events_oversized: counter_vec(
                "events_oversized_total",
                "Events larger than --max-event-bytes, not forwarded, by source",
                "source",
            ),
            token_refreshes: counter_vec(
                "token_refreshes_total",
                "Token refresh frames, by outcome",
                "outcome",
            ),
        };
        for source in ["redis", "api"] {
            metrics.events_oversized.with_label_values(&[source]).inc_by(0);
        }
        for outcome in ["accepted", "refused"] {
            metrics.token_refreshes.with_label_values(&[outcome]).inc_by(0);
        }
        for channel in Channel::SHARED {
            metrics.subscriptions.with_label_values(&[channel.name().as_str()]).set(0);
        }
        metrics.subscriptions.with_label_values(&[USER_CHANNELS_LABEL]).set(0);
        // Every label value shows up from the start (at 0), so dashboards
        // and alerts see the series before the first occurrence.
        for outcome in ["typed", "legacy", "malformed", "unknown_channel", "oversized"] {
            metrics.messages_in.with_label_values(&[outcome]).inc_by(0);
        }
        for reason in REFUSAL_REASONS {
            metrics.connections_refused.with_label_values(&[reason]).inc_by(0);
        }
        for reason in AUTH_FAILURE_REASONS {
            metrics.auth_failures.with_label_values(&[reason]).inc_by(0);
        }
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::UnknownChannel,
            ErrorCode::Forbidden,
            ErrorCode::TooManySubscriptions,
            ErrorCode::Unauthorized,
            ErrorCode::TooLarge,
        ] {
            metrics.client_errors.with_label_values(&[code.as_str()]).inc_by(0);
        }
        metrics
    }

    /// The subscription gauge for `channel`.
    pub(crate) fn subscription_gauge(&self, channel: &Channel) -> IntGauge {
        match channel.shared_name() {
            Some(name) => self.subscriptions.with_label_values(&[name]),
            None => self.subscriptions.with_label_values(&[USER_CHANNELS_LABEL]),
        }
    }

    /// Everything in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
