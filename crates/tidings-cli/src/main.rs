//! `tidings`: publish events, tail channels and simulate ERP traffic.
//!
//! This file wires things up: parse the command line ([`cli`]), set up
//! logging, run the chosen subcommand on a Tokio runtime, and turn its
//! outcome into an exit code. Each subcommand lives in its own module.

mod cli;
mod demo;
mod exit;
mod publish;
mod render;
mod tail;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

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
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Publish(kind) => publish::run(&cli.redis_url, kind).await,
            Command::Tail(args) => tail::run(&cli.redis_url, args).await,
            Command::Demo(args) => demo::run(&cli.redis_url, args).await,
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

/// Logs go to stderr, filtered by `TIDINGS_LOG` (e.g. `debug`). By default
/// only warnings, and none from the publishers for `publish`, which reports
/// the outcome itself.
fn init_logging(command: &Command) {
    let default = match command {
        Command::Publish(_) => "warn,tidings=off",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_env("TIDINGS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
