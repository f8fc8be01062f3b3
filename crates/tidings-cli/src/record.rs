//! `tidings record`: a standalone recorder (docs/positions.md, "Coverage"):
//! records every `ws:*` event in history and holds the recording duty until
//! SIGTERM or Ctrl-C, then gives the duty back. Where desktops read Redis
//! directly and no gateway runs, one of these keeps their resumes exact
//! across their own restarts. At start it warns, as the gateway does, when
//! Redis may evict history keys.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tidings::Backoff;
use tidings::history::HistoryConfig;
use tidings::recorder::{Duty, Recorded, RecorderConfig, run_recorder_with_tls};
use tokio_util::sync::CancellationToken;

use crate::cli::RecordArgs;
use crate::exit::Exit;

pub(crate) async fn run(
    redis_url: &str,
    args: &RecordArgs,
    insecure_tls: bool,
) -> anyhow::Result<Exit> {
    let config = RecorderConfig {
        url: redis_url.to_owned(),
        history: Some(HistoryConfig {
            max_len: args.max_len,
            max_age: args.max_age,
            ..HistoryConfig::default()
        }),
        duty: Duty::Always,
        backoff: Backoff::default(),
    };
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(tidings::process::cancel_on_signal(shutdown.clone()));
    let eviction = tokio::spawn(warn_about_eviction(redis_url.to_owned()));
    let live = AtomicBool::new(false);
    let mut refusal = None;
    run_recorder_with_tls(
        config,
        insecure_tls,
        |recorded| match recorded {
            Recorded::Live if !live.swap(true, Ordering::Relaxed) => {
                eprintln!("recording every ws:* event in {}", tidings::redact_url(redis_url));
            }
            Recorded::Reconnecting(reason) if !live.load(Ordering::Relaxed) => {
                refusal = Some(reason);
            }
            _ => {}
        },
        shutdown.clone(),
    )
    .await;
    let cancelled = shutdown.is_cancelled();
    shutdown.cancel();
    let _ = signals.await;
    eviction.abort();
    match (cancelled, refusal) {
        // The recorder ends on its own only for a URL it can never use.
        (false, Some(reason)) => {
            eprintln!("error: {reason}");
            Ok(Exit::BadInput)
        }
        _ => Ok(Exit::Success),
    }
}

/// Prints [`tidings::history::eviction_warning`]'s advice when Redis may
/// evict history keys. A Redis that cannot be asked within a few seconds is
/// left to the recorder, which says why it cannot record.
async fn warn_about_eviction(redis_url: String) {
    let Ok(url) = tidings::RedisUrl::parse(&redis_url) else { return };
    let check = async {
        let mut commands = url.connect(Duration::from_secs(2)).await.ok()?;
        tidings::history::eviction_warning(&mut commands).await.ok().flatten()
    };
    if let Ok(Some(warning)) = tokio::time::timeout(Duration::from_secs(3), check).await {
        eprintln!("warning: {warning}");
    }
}
