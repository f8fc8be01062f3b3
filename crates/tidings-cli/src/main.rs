//! `tidings`: publish events, tail channels and simulate ERP traffic.
//!
//! This file wires things up: parse the command line ([`cli`]), set up
//! logging, run the chosen subcommand on a Tokio runtime, and turn its
//! outcome into an exit code. Each subcommand lives in its own module.

mod cli;
mod demo;
mod exit;
mod publish;
mod record;
mod render;
mod tail;
mod token;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(refusal) = check_insecure_tls(&cli) {
        eprintln!("error: {refusal}");
        return exit::Exit::BadInput.into();
    }
    let insecure_tls = cli.insecure_tls;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Publish(kind) => publish::run(&cli.redis_url, kind).await,
            Command::Tail(args) => tail::run(&cli.redis_url, args).await,
            Command::Demo(args) => demo::run(&cli.redis_url, args).await,
            Command::Gateway(mut args) => {
                args.insecure_tls |= insecure_tls;
                gateway(&cli.redis_url, args).await
            }
            Command::Token(args) => token::run(&args),
            Command::Record(args) => record::run(&cli.redis_url, &args, insecure_tls).await,
        }
    });
    match outcome {
        Ok(code) => code.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::Exit::Failure.into()
        }
    }
}

/// Refuses a `rediss://…#insecure` --redis (TLS without certificate checks)
/// unless `--insecure-tls` was given, and always for `tail`, which reads
/// Redis through the subscriber the desktop app uses (it always checks
/// certificates). The gateway checks a URL from its own file itself.
fn check_insecure_tls(cli: &Cli) -> Result<(), String> {
    if matches!(cli.command, Command::Token(_)) || !tidings::asks_for_insecure_tls(&cli.redis_url) {
        return Ok(());
    }
    let url = tidings::redact_url(&cli.redis_url);
    if matches!(cli.command, Command::Tail(_)) {
        return Err(format!(
            "--redis {url} asks for TLS without certificate checks (#insecure), which `tidings tail` never does; \
             use a certificate the system trusts"
        ));
    }
    if cli.insecure_tls {
        return Ok(());
    }
    Err(format!(
        "--redis {url} asks for TLS without certificate checks (#insecure): anyone on the path could read and \
         forge every event. Use a certificate the system trusts, or pass --insecure-tls (TIDINGS_INSECURE_TLS) \
         if you really mean it"
    ))
}

/// Logs go to stderr, filtered by `TIDINGS_LOG` (e.g. `debug`). By default
/// only warnings, and none from the publishers for `publish`, which reports
/// the outcome itself.
fn init_logging(command: &Command) {
    if matches!(command, Command::Gateway(_)) {
        // The gateway installs its own (info by default, `--log-format json`).
        return;
    }
    let default = match command {
        Command::Publish(_) => "warn,tidings=off",
        // A recorder is a service: say when it holds the duty.
        Command::Record(_) => "info",
        _ => "warn",
    };
    tidings::process::init_logging(tidings::process::LogSetup {
        env_var: "TIDINGS_LOG",
        default_filter: default,
        json: false,
        with_target: false,
    });
}

/// `tidings gateway`: runs until SIGTERM or Ctrl-C, which cancel the
/// gateway's one shutdown token (graceful close 1001, bounded).
async fn gateway(
    redis_url: &str,
    mut args: tidings_gateway::GatewayArgs,
) -> anyhow::Result<exit::Exit> {
    // `tidings --redis URL gateway` puts the URL on the top-level flag; the
    // top-level default must not hide a `redis` set in the gateway's TOML file.
    if args.redis_url.is_none() && redis_url != tidings_gateway::DEFAULT_REDIS_URL {
        args.redis_url = Some(redis_url.to_owned());
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signals = tokio::spawn(tidings::process::cancel_on_signal(shutdown.clone()));
    let outcome = tidings_gateway::run(args, shutdown.clone()).await;
    shutdown.cancel();
    let _ = signals.await;
    match outcome {
        Ok(()) => Ok(exit::Exit::Success),
        Err(
            error @ (tidings_gateway::GatewayError::Config(_)
            | tidings_gateway::GatewayError::ConfigFile { .. }
            | tidings_gateway::GatewayError::OpenModeNotLoopback(_)
            | tidings_gateway::GatewayError::InsecureTls(_)),
        ) => {
            eprintln!("error: {error}");
            Ok(exit::Exit::BadInput)
        }
        Err(error) => Err(error.into()),
    }
}
