//! `tidings tail`: watch channels through the library's Redis source and
//! print one line per message on stdout; connection news goes to stderr so
//! `--json` output stays clean.
//!
//! It survives Redis restarts (the source reconnects; tail says so), exits
//! cleanly on Ctrl-C or SIGTERM with a count of what it saw, and stops
//! quietly when its reader goes away (`tidings tail | head`).

use std::io::{IsTerminal, Write};

use tidings::source::{
    RedisSourceConfig, SourceState, SourceUpdate, Subscription, spawn_redis_source,
};
use tidings::{Backoff, redact_url};
use tidings_events::Decoded;
use tokio_util::sync::CancellationToken;

use crate::cli::{ColorChoice, TailArgs};
use crate::exit::Exit;
use crate::render::{self, Palette};

/// Messages the source may hold for us. When full, the source stops reading
/// and Redis buffers (see `tidings::source`); a terminal is rarely that slow.
const QUEUE: usize = 1024;

pub(crate) async fn run(redis_url: &str, args: TailArgs) -> anyhow::Result<Exit> {
    let mut subscriptions = Vec::new();
    for text in &args.channels {
        match Subscription::parse(text) {
            Ok(subscription) => subscriptions.push(subscription),
            Err(error) => {
                eprintln!("error: channel {text:?}: {error}");
                return Ok(Exit::BadInput);
            }
        }
    }
    if subscriptions.is_empty() {
        subscriptions.push(Subscription::all());
    }
    let watching: Vec<String> = subscriptions.iter().map(Subscription::redis_name).collect();
    let watching = watching.join(", ");
    let label = redact_url(redis_url);
    let palette = Palette::new(use_colour(args.color));

    let cancel = CancellationToken::new();
    // Tail only watches: it records no history (history: None), so it
    // changes nothing in Redis.
    let config = RedisSourceConfig {
        subscriptions,
        backoff: Backoff {
            initial: std::time::Duration::from_millis(200),
            max: std::time::Duration::from_secs(5),
        },
        ..RedisSourceConfig::new(redis_url)
    };
    let mut source = spawn_redis_source(config, cancel.clone(), QUEUE);
    let mut counts = Counts::default();
    let mut was_live = false;
    let mut exit = Exit::Success;
    let stdout = std::io::stdout();

    let shutdown = tidings::process::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let update = tokio::select! {
            () = &mut shutdown => break,
            update = source.updates.recv() => update,
        };
        let Some(update) = update else {
            // The source ended on its own: only for a configuration it
            // reported as unusable.
            exit = Exit::BadInput;
            break;
        };
        match update {
            SourceUpdate::State(SourceState::Connecting) => {
                eprintln!("tail: connecting to {label} …");
            }
            SourceUpdate::State(SourceState::Live) => {
                if was_live {
                    eprintln!("tail: reconnected; watching {watching} again");
                } else {
                    eprintln!("tail: watching {watching} on {label} (Ctrl-C to stop)");
                }
                was_live = true;
            }
            SourceUpdate::State(SourceState::Reconnecting { attempt, retry_in, reason }) => {
                eprintln!(
                    "tail: {}; reconnecting in {:.1}s (attempt {attempt})",
                    render::safe(&reason),
                    retry_in.as_secs_f64()
                );
            }
            SourceUpdate::State(SourceState::Offline { reason }) => {
                eprintln!("tail: {}", render::safe(&reason));
            }
            SourceUpdate::Missed { channel, since } => {
                let since = since.map_or_else(|| "an unknown time".to_owned(), |ms| ms.to_string());
                eprintln!(
                    "tail: {}: history does not reach back far enough; events since {since} (ms) may be missing",
                    render::safe(&channel)
                );
            }
            SourceUpdate::Skipped { channel, reason, .. } => {
                eprintln!(
                    "tail: {}: skipped an event: {}",
                    render::safe(&channel),
                    render::safe(&reason)
                );
            }
            // tail shows events; where it is in history is not news.
            SourceUpdate::Position { .. } => {}
            SourceUpdate::Message(message) => {
                let decoded = tidings_events::decode(&message.payload);
                counts.add(&decoded);
                let line = if args.json {
                    render::json_line(&message, &decoded)
                } else {
                    render::human_line(&message, &decoded, palette)
                };
                if let Decoded::Malformed(malformed) = &decoded {
                    tracing::debug!(channel = %message.channel, reason = %malformed.reason, "malformed message");
                }
                let mut out = stdout.lock();
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    // Whoever read our output is gone (a closed pipe).
                    break;
                }
            }
        }
    }
    cancel.cancel();
    source.finished().await;
    eprintln!("tail: {}", counts.summary());
    Ok(exit)
}

fn use_colour(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    typed: u64,
    legacy: u64,
    malformed: u64,
}

impl Counts {
    fn add(&mut self, decoded: &Decoded) {
        match decoded {
            Decoded::Typed { .. } => self.typed += 1,
            Decoded::Legacy { .. } => self.legacy += 1,
            Decoded::Malformed(_) => self.malformed += 1,
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} messages ({} typed, {} legacy, {} malformed)",
            self.typed + self.legacy + self.malformed,
            self.typed,
            self.legacy,
            self.malformed
        )
    }
}
