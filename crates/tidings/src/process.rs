//! What every Tidings process (the `tidings` CLI, `tidings-gateway`, the
//! desktop app) sets up the same way: stopping on a signal, and logging.
//!
//! - [`shutdown_signal`] / [`cancel_on_signal`]: Ctrl-C, or SIGTERM on Unix.
//! - [`init_logging`] (feature `logging`, which brings `tracing-subscriber`;
//!   the library itself only emits `tracing` events): text or JSON lines on
//!   stderr, colour only for a person at a terminal.
//!
//! `tidings-cli`, `tidings-gateway`, the desktop app (`src-tauri`, with
//! `TIDINGS_LOG`) and `tidings-notify`'s `notification-sink` use these.

use tokio_util::sync::CancellationToken;

/// Resolves on Ctrl-C (SIGINT), or SIGTERM on Unix.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM; returns early, without
/// cancelling, once `shutdown` is cancelled by someone else.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    tokio::select! {
        () = shutdown_signal() => {}
        () = shutdown.cancelled() => return,
    }
    tracing::info!("signal received; shutting down");
    shutdown.cancel();
}

/// How a process logs; see [`init_logging`].
#[cfg(feature = "logging")]
#[derive(Debug, Clone, Copy)]
pub struct LogSetup<'a> {
    /// The environment variable holding the filter (`RUST_LOG`,
    /// `TIDINGS_LOG`), in `tracing_subscriber::EnvFilter` syntax.
    pub env_var: &'a str,
    /// The filter when that variable is unset or invalid (`info`, `warn`).
    pub default_filter: &'a str,
    /// One JSON object per line (for log shippers) instead of text.
    pub json: bool,
    /// Show each event's target (module path).
    pub with_target: bool,
}

/// Installs the global tracing subscriber: lines on stderr, filtered by
/// `setup.env_var`, coloured only when stderr is a terminal and `NO_COLOR`
/// is unset or empty (log files and journald get plain text). Does nothing
/// and returns `false` if a subscriber is already installed.
#[cfg(feature = "logging")]
pub fn init_logging(setup: LogSetup<'_>) -> bool {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env(setup.env_var)
        .unwrap_or_else(|_| EnvFilter::new(setup.default_filter));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(setup.with_target)
        .with_ansi(colour);
    let installed = if setup.json { builder.json().try_init() } else { builder.try_init() };
    installed.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_on_signal_returns_once_shutdown_is_cancelled_elsewhere() {
        let shutdown = CancellationToken::new();
        let waiting = tokio::spawn(cancel_on_signal(shutdown.clone()));
        shutdown.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("cancel_on_signal returns when shutdown is cancelled")
            .unwrap();
    }
}
