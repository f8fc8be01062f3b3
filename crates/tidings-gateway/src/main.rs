//! `tidings-gateway`: the gateway as a standalone binary (the same as
//! `tidings gateway`). Parses flags/env, then runs until SIGTERM or Ctrl-C,
//! which cancel the one shutdown token.

use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Fans Redis `ws:*` events out to WebSocket clients (see docs/gateway.md).
#[derive(Debug, Parser)]
#[command(name = "tidings-gateway", version, about)]
struct Cli {
    #[command(flatten)]
    gateway: tidings_gateway::GatewayArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
    let result = tidings_gateway::run(cli.gateway, shutdown.clone()).await;
    shutdown.cancel();
    let _ = signals.await;
    Ok(result?)
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C (SIGINT).
async fn cancel_on_signal(shutdown: CancellationToken) {
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
        () = shutdown.cancelled() => return,
    }
    tracing::info!("signal received; shutting down");
    shutdown.cancel();
}
