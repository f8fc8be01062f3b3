//! `tidings-e2e-measure`: runs the fixed workloads of
//! `tidings_e2e::measure` against the real app and prints (and saves) the
//! figures. `scripts/e2e.sh --measure` builds everything in release and
//! runs it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tidings_e2e::Desktop;
use tidings_e2e::measure::{self, percentile};
use tidings_testkit::RedisServer;

#[derive(Debug, Parser)]
#[command(
    about = "Measure the real Tidings desktop app: cold start, PUBLISH→DOM latency, idle PSS"
)]
struct Args {
    /// Cold starts to time.
    #[arg(long, default_value_t = 5)]
    cold_starts: u32,
    /// Events per second for the latency run.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Events in the latency run.
    #[arg(long, default_value_t = 3000)]
    events: u32,
    /// Seconds the app idles before its PSS is read.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
    /// Cold starts and the latency run with `--gpu` (GPU compositing on);
    /// idle PSS is measured both ways regardless.
    #[arg(long)]
    gpu: bool,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut report = String::new();
    let app = tidings_e2e::locate::desk_app()?;
    writeln!(
        report,
        "app: {} ({})",
        app.display(),
        if args.gpu { "--gpu" } else { "as shipped, no GPU compositing" }
    )?;

    let desktop = Desktop::start()?;
    let redis = RedisServer::start();

    let mut starts = Vec::new();
    for run in 0..args.cold_starts {
        let elapsed = measure::cold_start(&desktop, &redis, run, args.gpu).await?;
        eprintln!("cold start {run}: {elapsed:?}");
        starts.push(elapsed.as_secs_f64() * 1000.0);
    }
    starts.sort_by(f64::total_cmp);
    writeln!(
        report,
        "cold start -> first event on screen ({} runs, ms): min {:.0} median {:.0} max {:.0}",
        starts.len(),
        starts.first().copied().unwrap_or(f64::NAN),
        percentile(&starts, 0.5),
        starts.last().copied().unwrap_or(f64::NAN),
    )?;

    let (latencies, missing) =
        measure::publish_to_dom(&desktop, &redis, args.rate, args.events, args.gpu).await?;
    writeln!(
        report,
        "PUBLISH -> row in DOM at {}/s ({} events, {} not seen, ms): p50 {:.0} p90 {:.0} p99 {:.0} max {:.0}",
        args.rate,
        args.events,
        missing,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    )?;

    for (gpu, how) in [(false, "as shipped"), (true, "with --gpu")] {
        let measure::IdlePss { total_kib: total, processes } =
            measure::idle_pss(&desktop, &redis, Duration::from_secs(args.idle_secs), gpu)?;
        writeln!(
            report,
            "idle PSS after {} s, {how}: {:.1} MiB",
            args.idle_secs,
            total as f64 / 1024.0
        )?;
        for (pid, name, pss) in processes {
            writeln!(report, "  {pid:>7} {name:<20} {:.1} MiB", pss as f64 / 1024.0)?;
        }
    }

    print!("{report}");
    if let Some(out) = args.out {
        std::fs::write(&out, &report)?;
        eprintln!("saved to {}", out.display());
    }
    Ok(())
}
