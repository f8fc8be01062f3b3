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
    about = "Measure the real Tidings desktop app: cold start, PUBLISH→DOM latency, idle memory"
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

    let idle = Duration::from_secs(args.idle_secs);
    for (gpu, how) in [(false, "as shipped"), (true, "with --gpu")] {
        let memory = measure::idle_memory(&desktop, &redis, idle, gpu)?;
        write_memory(
            &mut report,
            &format!("idle memory after {} s, {how}", args.idle_secs),
            &memory,
        )?;
    }
    match measure::webkit_floor(&desktop, idle)? {
        Some(floor) => write_memory(
            &mut report,
            "WebKitGTK's floor: its MiniBrowser showing one line, compositing off",
            &floor,
        )?,
        None => writeln!(report, "WebKitGTK's floor: not measured (no MiniBrowser installed)")?,
    }

    print!("{report}");
    if let Some(out) = args.out {
        std::fs::write(&out, &report)?;
        eprintln!("saved to {}", out.display());
    }
    Ok(())
}

fn write_memory(
    report: &mut String,
    title: &str,
    memory: &measure::IdleMemory,
) -> std::fmt::Result {
    let mib = |kib: u64| kib as f64 / 1024.0;
    writeln!(
        report,
        "{title}: PSS {:.1} MiB, USS {:.1} MiB",
        mib(memory.pss_kib()),
        mib(memory.uss_kib())
    )?;
    for process in &memory.processes {
        writeln!(
            report,
            "  {:>7} {:<20} PSS {:>6.1} MiB  USS {:>6.1} MiB",
            process.pid,
            process.name,
            mib(process.pss_kib),
            mib(process.uss_kib)
        )?;
    }
    if !memory.other_webkit.is_empty() {
        let others: Vec<String> =
            memory.other_webkit.iter().map(|(pid, name)| format!("{pid} {name}")).collect();
        writeln!(
            report,
            "  WARNING: other processes map WebKit ({}); they share its pages, so this PSS is lower than the app's alone (USS is not affected)",
            others.join(", ")
        )?;
    }
    Ok(())
}
