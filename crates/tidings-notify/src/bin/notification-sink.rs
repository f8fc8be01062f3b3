//! `notification-sink`: a stand-in notification daemon for end-to-end tests
//! and demos without a desktop. Owns `org.freedesktop.Notifications` on the
//! session bus (or `--address`), appends each call to `--record FILE` as one
//! JSON line, and with `--click-when-contains TEXT` plays a user clicking
//! matching notifications (see the `tidings_notify` crate docs).
//!
//! Prints `ready <unique-name>` on stdout once it owns the name, then serves
//! until killed.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tidings_notify::sink::{self, SinkOptions};

#[derive(Debug, Parser)]
#[command(version, about = "A notification daemon that records instead of showing")]
struct Args {
    /// D-Bus address to serve on [default: $DBUS_SESSION_BUS_ADDRESS].
    #[arg(long)]
    address: Option<String>,
    /// Append each call as a JSON line to this file.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Click every notification whose summary or body contains TEXT.
    #[arg(long, value_name = "TEXT")]
    click_when_contains: Option<String>,
    /// Advertise the `body-markup` capability.
    #[arg(long)]
    body_markup: bool,
    /// The action key a simulated click invokes (default: `default`).
    #[arg(long, value_name = "KEY")]
    click_action: Option<String>,
    /// Advertise the `sound` capability.
    #[arg(long)]
    sound: bool,
    /// Play a hung daemon: record Notify and CloseNotification, never reply.
    #[arg(long)]
    never_answer: bool,
}

fn main() -> anyhow::Result<()> {
    tidings::process::init_logging(tidings::process::LogSetup {
        env_var: "RUST_LOG",
        default_filter: "info",
        json: false,
        with_target: true,
    });
    let args = Args::parse();
    let options = SinkOptions {
        record: args.record,
        click_when_contains: args.click_when_contains,
        body_markup: args.body_markup,
        never_answer: args.never_answer,
        click_action: args.click_action,
        sound: args.sound,
    };
    zbus::block_on(async {
        let running = sink::serve(args.address.as_deref(), options)
            .await
            .context("starting the notification sink")?;
        println!("ready {}", running.unique_name().unwrap_or_default());
        // Serve until the process is killed; the connection answers calls.
        std::future::pending::<()>().await;
        Ok(())
    })
}
