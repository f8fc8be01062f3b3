//! Desktop pipeline benchmark with a fixed workload (a bench binary,
//! `harness = false`): a [`Desk`] with a Redis source (recording history, as
//! the app does in direct mode), a counting notifier, and a bench-side UI
//! that takes every [`UiBatch`] at once and counts its items.
//!
//! Events are `order:status` events on `ws:orders` (~190 bytes, each with its
//! own order number so none is a duplicate), sent with pipelined plain
//! `PUBLISH`es from a separate connection on a thread of its own, as the
//! TypeScript backend would.
//!
//! - Throughput mode (default): publish `--events` (50,000) as fast as Redis
//!   takes them (256 per round trip); print events/s from the first publish
//!   until every item has arrived in a `UiBatch`, and how many batches that
//!   took.
//! - Memory mode (`--minutes M --rate R`): publish R events/s for M minutes
//!   (paced in 10 ms slices); print this process's RSS (`VmRSS`) when the
//!   desk is live, then every 30 s, with the items received, Redis's memory
//!   and the size of the local history database; then RSS after the
//!   warm-up (two minutes, during which the bounded structures — dedup
//!   memory, feeds, debug log, the history database — fill up) and whether
//!   it stayed flat over the second half of the run.
//!
//! - Latency mode (`--latency`): `PUBLISH` → `UiBatch` p50/p99 at `--rate`
//!   (1,000) events/s for `--seconds` (20), an approver's desk notifying
//!   through the real notify-rust notifier to the `tidings-notify` sink on a
//!   private D-Bus, while a thread keeps the disk busy with a large write
//!   (`fsync`ed every 32 MiB, in the history's directory). Run twice: a
//!   responsive daemon (the reference), then one that never answers
//!   (`never_answer`). Every tenth event is an approval request (critical,
//!   resident); the rest are order updates. Each run is a child process
//!   whose session bus is the private one (notify-rust reads it from the
//!   environment).
//!
//! Run (release, from the workspace root):
//!
//!     cargo bench -p tidings-desk --bench pipeline
//!     cargo bench -p tidings-desk --bench pipeline -- --minutes 3 --rate 5000
//!     cargo bench -p tidings-desk --bench pipeline -- --latency
//!
//! The RSS is the whole bench process: the desk (source, pipeline, SQLite)
//! plus the small publisher; Redis runs as its own process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tidings_desk::Desk;
use tidings_desk::config::{DeskConfig, default_settings};
use tidings_desk::ipc::{ConnectionState, Profile, SourceKind, UiBatch};
use tidings_desk::notify::{NotificationRequest, Notifier, NotifyError};
use tidings_testkit::RedisServer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the pipeline may go without delivering anything before the
/// bench gives up and reports what is missing.
const STALL: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(about = "Desktop pipeline benchmark: Redis → UiBatch throughput, or memory over time")]
struct Args {
    /// Throughput mode: events published.
    #[arg(long, default_value_t = 50_000)]
    events: u64,
    /// Memory mode: publish for this many minutes (0 = throughput mode).
    #[arg(long, default_value_t = 0)]
    minutes: u64,
    /// Events per second: memory mode (default 5,000), latency mode
    /// (default 1,000).
    #[arg(long)]
    rate: Option<u64>,
    /// Worker threads of the runtime the desk runs on.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Latency mode: PUBLISH → UiBatch percentiles, responsive and hung
    /// notification daemon (`--rate` defaults to 1,000 here).
    #[arg(long)]
    latency: bool,
    /// Latency mode: seconds of publishing per run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Latency mode, internal: run one measurement (in the child process).
    #[arg(long, hide = true)]
    latency_child: Option<String>,
    /// Ignored: `cargo bench` passes `--bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Counts notification requests, keeping none (a list would grow).
#[derive(Debug, Default)]
struct CountingNotifier(AtomicU64);

impl Notifier for CountingNotifier {
    fn notify(&self, _request: NotificationRequest) -> Result<(), NotifyError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn close(&self, _key: &str) {}
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .expect("runtime");
    if args.latency {
        return latency::parent(&args);
    }
    runtime.block_on(async {
        if let Some(daemon) = &args.latency_child {
            latency::child(&args, daemon).await;
        } else if args.minutes == 0 {
            throughput(&args).await;
        } else {
            memory(&args).await;
        }
    });
}

/// A running desk against its own redis-server, and its history directory.
struct Bench {
    redis: RedisServer,
    desk: Desk,
    batches: mpsc::Receiver<UiBatch>,
    notified: Arc<CountingNotifier>,
    dir: tempfile::TempDir,
}

/// A desk for user u1 with `profile`'s settings, reading `redis` directly,
/// its files in `dir`.
fn desk_config(redis: &RedisServer, dir: &std::path::Path, profile: Profile) -> DeskConfig {
    let mut settings = default_settings(profile);
    settings.source.kind = SourceKind::Redis;
    settings.source.url = redis.url();
    settings.source.user_id = Some("u1".into());
    DeskConfig {
        settings,
        config_path: dir.join("settings.toml"),
        data_dir: dir.to_path_buf(),
        config_error: None,
    }
}

async fn start_desk() -> Bench {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = desk_config(&redis, dir.path(), Profile::Warehouse);
    let notified = Arc::new(CountingNotifier::default());
    let (desk, mut batches) =
        Desk::start(config, notified.clone(), CancellationToken::new()).expect("desk starts");
    loop {
        let batch = tokio::time::timeout(STALL, batches.recv())
            .await
            .expect("the desk reports its connection")
            .expect("the desk runs");
        if batch.status.is_some_and(|status| status.connection == ConnectionState::Live) {
            break;
        }
    }
    Bench { redis, desk, batches, notified, dir }
}

fn order_event(n: u64) -> String {
    format!(
        r#"{{"type":"order:status","orderType":"sales","orderId":"o{n}","orderNumber":"SO-2026-{n:08}","oldStatus":"pending","newStatus":"shipped","customerId":"c17","customerName":"Acme GmbH","timestamp":1764000000000}}"#
    )
}

/// What the bench-side UI saw.
#[derive(Debug, Default)]
struct Seen {
    items: AtomicU64,
    batches: AtomicU64,
    batches_with_items: AtomicU64,
    /// Nanoseconds after `base` of the last batch with items.
    last_item_ns: AtomicU64,
    /// Times the source went from live to reconnecting.
    reconnects: AtomicU64,
}

/// Takes every batch as soon as it comes, as a UI that keeps up would.
fn consume(
    mut batches: mpsc::Receiver<UiBatch>,
    seen: Arc<Seen>,
    base: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(batch) = batches.recv().await {
            seen.batches.fetch_add(1, Ordering::Relaxed);
            if let Some(status) = &batch.status {
                match &status.connection {
                    ConnectionState::Reconnecting { reason, .. } => {
                        seen.reconnects.fetch_add(1, Ordering::Relaxed);
                        println!("source reconnecting: {reason}");
                    }
                    ConnectionState::Offline { reason } => println!("source offline: {reason}"),
                    _ => {}
                }
                if let Some(since) = status.missed_since {
                    println!("the desk reports events may be missing since {since}");
                }
            }
            if !batch.items.is_empty() {
                seen.items.fetch_add(batch.items.len() as u64, Ordering::Relaxed);
                seen.batches_with_items.fetch_add(1, Ordering::Relaxed);
                seen.last_item_ns.store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        }
    })
}

/// Publishes `events` order events from a thread of its own, 256 per round
/// trip, at `rate` events/s (0 = as fast as possible); counts them in `sent`.
fn spawn_publisher(
    url: String,
    events: u64,
    rate: u64,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let client = redis::Client::open(url).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            let started = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut done = 0;
            while done < events {
                let due = if rate == 0 {
                    events
                } else {
                    ticker.tick().await;
                    (started.elapsed().as_secs_f64() * rate as f64) as u64
                };
                while done < due.min(events) {
                    let count = (due.min(events) - done).min(256);
                    let mut pipe = redis::pipe();
                    for n in done..done + count {
                        pipe.cmd("PUBLISH").arg("ws:orders").arg(order_event(n)).ignore();
                    }
                    let _: () = pipe.query_async(&mut connection).await.expect("PUBLISH");
                    done += count;
                    sent.store(done, Ordering::Relaxed);
                }
            }
            started.elapsed()
        })
    })
}

/// Waits until `seen` has `expected` items; false if delivery stalls.
async fn wait_for_items(seen: &Seen, expected: u64) -> bool {
    let mut last = (seen.items.load(Ordering::Relaxed), Instant::now());
    while seen.items.load(Ordering::Relaxed) < expected {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = seen.items.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > STALL {
            return false;
        }
    }
    true
}

async fn throughput(args: &Args) {
    let bench = start_desk().await;
    let seen = Arc::new(Seen::default());
    let base = Instant::now();
    let consumer = consume(bench.batches, Arc::clone(&seen), base);
    let sent = Arc::new(AtomicU64::new(0));
    let publisher = spawn_publisher(bench.redis.url(), args.events, 0, sent);
    let complete = wait_for_items(&seen, args.events).await;
    let publish_time = publisher.join().expect("publisher");
    let elapsed = Duration::from_nanos(seen.last_item_ns.load(Ordering::Relaxed));
    let snapshot = bench.desk.snapshot().await.expect("snapshot");
    let items = seen.items.load(Ordering::Relaxed);

    println!(
        "workload: {} order:status events on ws:orders, pipelined PUBLISH (256 per round trip), desk with a Redis source recording history",
        args.events
    );
    println!(
        "published {} events in {:.2?} ({:.0} events/s into Redis)",
        args.events,
        publish_time,
        args.events as f64 / publish_time.as_secs_f64()
    );
    println!(
        "pipeline: {items} items in UiBatches {:.2?} after the first publish → {:.0} events/s",
        elapsed,
        items as f64 / elapsed.as_secs_f64()
    );
    println!(
        "batches: {} received, {} with items ({:.0} items per batch on average)",
        seen.batches.load(Ordering::Relaxed),
        seen.batches_with_items.load(Ordering::Relaxed),
        items as f64 / seen.batches_with_items.load(Ordering::Relaxed).max(1) as f64
    );
    println!(
        "desk counters: received {}, typed {}, duplicates {}, malformed {}; notifications {}; RSS {} KiB",
        snapshot.counters.received,
        snapshot.counters.typed,
        snapshot.counters.duplicates,
        snapshot.counters.malformed,
        bench.notified.0.load(Ordering::Relaxed),
        rss_kib()
    );
    bench.desk.shutdown().await;
    consumer.await.expect("consumer");
    assert!(complete, "delivery stalled: {items} of {} items arrived", args.events);
}

async fn memory(args: &Args) {
    let bench = start_desk().await;
    let seen = Arc::new(Seen::default());
    let base = Instant::now();
    let consumer = consume(bench.batches, Arc::clone(&seen), base);
    let client = redis::Client::open(bench.redis.url()).unwrap();
    let mut redis_connection = client.get_multiplexed_async_connection().await.unwrap();
    let rate = args.rate.unwrap_or(5_000);
    let events = args.minutes * 60 * rate;
    println!(
        "workload: {} order:status events/s on ws:orders for {} min ({events} events), desk with a Redis source recording history",
        rate, args.minutes
    );
    println!("   time      RSS   items received  behind  Redis used  history db");
    let sent = Arc::new(AtomicU64::new(0));
    let mut samples = vec![(0u64, rss_kib())];
    print_sample(0, samples[0].1, &seen, 0, &mut redis_connection, bench.dir.path()).await;
    let publisher = spawn_publisher(bench.redis.url(), events, rate, Arc::clone(&sent));
    let mut next = Duration::from_secs(30);
    while !publisher.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if base.elapsed() >= next {
            let rss = rss_kib();
            let behind =
                sent.load(Ordering::Relaxed).saturating_sub(seen.items.load(Ordering::Relaxed));
            print_sample(
                next.as_secs(),
                rss,
                &seen,
                behind,
                &mut redis_connection,
                bench.dir.path(),
            )
            .await;
            samples.push((next.as_secs(), rss));
            next += Duration::from_secs(30);
        }
    }
    publisher.join().expect("publisher");
    let complete = wait_for_items(&seen, events).await;
    let rss = rss_kib();
    let end = base.elapsed().as_secs();
    print_sample(
        end,
        rss,
        &seen,
        events - seen.items.load(Ordering::Relaxed),
        &mut redis_connection,
        bench.dir.path(),
    )
    .await;
    samples.push((end, rss));

    // Warm-up ends at the first sample at or after two minutes: by then
    // every bounded structure is full (at 5,000 events/s the history
    // database reaches its 200,000-item bound after about 90 s and pruning
    // starts). Flat: over the second half of the run RSS grows by less than
    // 2% and 2 MiB. A leak of even 100 bytes an event would add over
    // 70 MiB in the second half of ten minutes; the allocator settling in
    // steps of a MiB after warm-up is shown but is not a slope.
    let warm = samples.iter().find(|(at, _)| *at >= 120).copied().unwrap_or(samples[1]);
    let half = samples.iter().find(|(at, _)| *at >= end / 2).copied().unwrap_or(warm);
    let peak = samples.iter().filter(|(at, _)| *at >= warm.0).map(|(_, rss)| *rss).max().unwrap();
    let late_growth = rss.saturating_sub(half.1);
    let flat = late_growth * 50 < half.1 && late_growth < 2 * 1024;
    println!(
        "RSS: {:.1} MiB when live, {:.1} MiB at {} s (after warm-up), {:.1} MiB at {} s (half-way), {:.1} MiB at the end, peak since warm-up {:.1} MiB → {}",
        mib(samples[0].1),
        mib(warm.1),
        warm.0,
        mib(half.1),
        half.0,
        mib(rss),
        mib(peak),
        if flat { "flat over the second half" } else { "GROWING over the second half" }
    );
    println!("notifications requested: {}", bench.notified.0.load(Ordering::Relaxed));
    let counters = bench.desk.snapshot().await.expect("snapshot").counters;
    println!(
        "desk counters: received {}, typed {}, duplicates {}; source reconnects {}",
        counters.received,
        counters.typed,
        counters.duplicates,
        seen.reconnects.load(Ordering::Relaxed)
    );
    bench.desk.shutdown().await;
    consumer.await.expect("consumer");
    assert!(
        complete,
        "delivery stalled: {} of {events} items arrived",
        seen.items.load(Ordering::Relaxed)
    );
}

async fn print_sample(
    at_secs: u64,
    rss: u64,
    seen: &Seen,
    behind: u64,
    redis: &mut redis::aio::MultiplexedConnection,
    dir: &std::path::Path,
) {
    let info: String =
        redis::cmd("INFO").arg("memory").query_async(redis).await.unwrap_or_default();
    let redis_bytes: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    println!(
        "{:>6} s {:>6.1} MiB {:>15} {:>7} {:>7} MiB {:>7} MiB",
        at_secs,
        mib(rss),
        seen.items.load(Ordering::Relaxed),
        behind,
        redis_bytes / (1024 * 1024),
        dir_bytes(dir) / (1024 * 1024)
    );
}

/// KiB as MiB, for printing.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// This process's resident set size.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes of the files in `dir` (the history database and its journal).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

/// Latency mode (see the module docs).
mod latency {
    use std::io::Write;
    use std::sync::atomic::AtomicBool;

    use tidings_desk::ipc::FeedItem;
    use tidings_events::Event;
    use tidings_notify::NativeNotifier;
    use tidings_notify::sink::SinkOptions;
    use tidings_notify::testing::{NotificationSink, PrivateSessionBus};

    use super::*;

    /// The disk-busy writer's file: rewritten in place, so it never takes
    /// more than this much space.
    const BUSY_FILE: u64 = 512 << 20;
    const BUSY_SYNC_EVERY: u64 = 32 << 20;

    pub(crate) fn parent(args: &Args) {
        let rate = args.rate.unwrap_or(1_000);
        println!(
            "workload: {rate} events/s for {} s (every tenth an approval request), approver desk, native notifier → sink on a private D-Bus, a large write keeping the disk busy",
            args.seconds
        );
        for daemon in ["responsive", "hung"] {
            let bus = PrivateSessionBus::start().expect("dbus-daemon (Debian: dbus-daemon)");
            let options = SinkOptions { never_answer: daemon == "hung", ..SinkOptions::default() };
            let sink = NotificationSink::start_with(&bus, options).expect("the sink starts");
            let mut command = std::process::Command::new(std::env::current_exe().unwrap());
            command.args([
                "--latency-child",
                daemon,
                "--rate",
                &rate.to_string(),
                "--seconds",
                &args.seconds.to_string(),
                "--threads",
                &args.threads.to_string(),
            ]);
            bus.configure(&mut command);
            let status = command.status().expect("run the measuring child");
            let notify_calls = sink.records().len();
            println!("  (the sink received {notify_calls} calls)");
            assert!(status.success(), "the {daemon} run failed: {status}");
        }
    }

    /// The event numbered `n`.
    fn event(n: u64) -> (&'static str, String) {
        if n % 10 == 9 {
            let payload = format!(
                r#"{{"type":"approval:request","resourceType":"refund","resourceId":"r{n}","resourceNumber":"RF-{n:08}","requesterId":"u2","requesterName":"Li Na","timestamp":1764000000000}}"#
            );
            ("ws:approvals", payload)
        } else {
            ("ws:orders", order_event(n))
        }
    }

    /// The number of the event an item came from.
    fn number(item: &FeedItem) -> Option<usize> {
        match &item.event {
            Event::OrderStatus(order) => order.order_id.strip_prefix('o')?.parse().ok(),
            Event::ApprovalRequest(request) => request.resource_id.strip_prefix('r')?.parse().ok(),
            _ => None,
        }
    }

    /// Keeps the disk busy until `stop`: 512 MiB rewritten over and over,
    /// `fsync`ed every 32 MiB.
    fn busy_disk(dir: std::path::PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
        std::thread::spawn(move || {
            let path = dir.join("large-write.bin");
            let mut file = std::fs::File::create(&path).unwrap();
            let chunk = vec![0x5a_u8; 1 << 20];
            let mut written = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                file.write_all(&chunk).unwrap();
                written += chunk.len() as u64;
                if written.is_multiple_of(BUSY_SYNC_EVERY) {
                    file.sync_data().unwrap();
                }
                if written.is_multiple_of(BUSY_FILE) {
                    std::io::Seek::rewind(&mut file).unwrap();
                }
            }
            drop(file);
            let _ = std::fs::remove_file(path);
            written
        })
    }

    pub(crate) async fn child(args: &Args, daemon: &str) {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = super::desk_config(&redis, dir.path(), Profile::Approver);
        let (notifier, _responses) = NativeNotifier::start("Tidings");
        let (desk, mut batches) =
            Desk::start(config, Arc::new(notifier), CancellationToken::new()).expect("desk");
        loop {
            let batch = tokio::time::timeout(STALL, batches.recv()).await.unwrap().unwrap();
            if batch.status.is_some_and(|status| status.connection == ConnectionState::Live) {
                break;
            }
        }
        let rate = args.rate.unwrap_or(1_000);
        let events = args.seconds * rate;
        let base = Instant::now();
        let sent_at: Arc<Vec<AtomicU64>> =
            Arc::new((0..events).map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let busy = busy_disk(dir.path().to_path_buf(), Arc::clone(&stop));
        let publisher = publish(redis.url(), events, rate, Arc::clone(&sent_at), base);
        let mut latencies = Vec::with_capacity(events as usize);
        let mut toasts = 0;
        while (latencies.len() as u64) < events {
            let batch = tokio::time::timeout(STALL, batches.recv())
                .await
                .expect("delivery stalled")
                .expect("the desk runs");
            let now = base.elapsed().as_nanos() as u64;
            toasts += batch.toasts.len();
            for n in batch.items.iter().filter_map(number) {
                let sent = sent_at[n].load(Ordering::Relaxed);
                latencies.push(Duration::from_nanos(now.saturating_sub(sent)));
            }
        }
        stop.store(true, Ordering::Relaxed);
        publisher.join().unwrap();
        let busy_bytes = busy.join().unwrap();
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "{daemon:>10} daemon: {} events, PUBLISH → UiBatch p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {toasts} toasts; {} MiB written by the disk-busy thread",
            latencies.len(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.90).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3,
            busy_bytes >> 20
        );
        desk.shutdown().await;
    }

    /// Publishes at `rate` events/s in 10 ms slices, noting when each was
    /// sent (ns after `base`, stored before its slice's round trip starts).
    fn publish(
        url: String,
        events: u64,
        rate: u64,
        sent_at: Arc<Vec<AtomicU64>>,
        base: Instant,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let client = redis::Client::open(url).unwrap();
                let mut connection = client.get_multiplexed_async_connection().await.unwrap();
                let started = Instant::now();
                let mut ticker = tokio::time::interval(Duration::from_millis(10));
                let mut done = 0;
                while done < events {
                    ticker.tick().await;
                    let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(events);
                    if due <= done {
                        continue;
                    }
                    let mut pipe = redis::pipe();
                    let now = base.elapsed().as_nanos() as u64;
                    for n in done..due {
                        let (channel, payload) = event(n);
                        pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                        sent_at[n as usize].store(now, Ordering::Relaxed);
                    }
                    let _: () = pipe.query_async(&mut connection).await.expect("PUBLISH");
                    done = due;
                }
            })
        })
    }
}
