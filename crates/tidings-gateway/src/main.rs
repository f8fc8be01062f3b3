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
    let signals = tokio::spawn(tidings::process::cancel_on_signal(shutdown.clone()));
    let result = tidings_gateway::run(cli.gateway, shutdown.clone()).await;
    shutdown.cancel();
    let _ = signals.await;
    Ok(result?)
}
