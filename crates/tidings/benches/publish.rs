//! Publish benchmark with a fixed workload (a bench binary, `harness = false`):
//! what one [`Publisher`] call costs with history (the atomic append-and-
//! publish script of docs/positions.md) and without (`history: None`, a plain
//! `PUBLISH`).
//!
//! Workload, per mode: a fresh redis-server (`tidings_testkit`) with one
//! subscriber on `ws:inventory` (a `redis-cli SUBSCRIBE` child, as a gateway
//! would be), 1,000 warm-up publishes, then `--events` (20,000) calls of
//! `Publisher::publish_inventory_change` with a realistic stock movement
//! (product name, reason, operator, user; ~300 bytes of JSON). The product id
//! carries the sequence number so no two payloads are identical: identical
//! payloads within the dedup window would be recorded once (positions.md).
//!
//! Modes: {history, plain} × {sequential: one call at a time; concurrent:
//! `--concurrency` (64) tasks sharing one publisher, i.e. one multiplexed
//! connection}. Printed per mode: events/s (first call to last answer) and
//! per-call latency p50/p99/p999/max (hdrhistogram, every call), plus the
//! history stream's length afterwards as a check that it recorded, and
//! Redis's own time per command (`INFO commandstats`, warm-up included).
//!
//! Run (release, from the workspace root):
//!
//!     cargo bench -p tidings --bench publish
//!     cargo bench -p tidings --bench publish -- --events 20000 --concurrency 64
//!
//! Load generator and Redis share the machine: the figures include that.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use tidings::history::stream_key;
use tidings::publish::InventoryChange;
use tidings::{Publisher, PublisherConfig};
use tidings_events::event::InventoryAction;
use tidings_testkit::RedisServer;

const WARM_UP: u64 = 1_000;

#[derive(Debug, Parser)]
#[command(about = "Publisher benchmark: events/s and per-call latency, with and without history")]
struct Args {
    /// Measured publishes per mode (after 1,000 warm-up publishes).
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Tasks publishing at once in the concurrent modes.
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Worker threads of the runtime the publishers run on.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Ignored: `cargo bench` passes `--bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy)]
struct Mode {
    history: bool,
    concurrency: u64,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "workload: {} publish_inventory_change calls per mode (+{WARM_UP} warm-up), one subscriber, {} runtime threads",
        args.events, args.threads
    );
    for history in [true, false] {
        for concurrency in [1, args.concurrency] {
            runtime.block_on(run(Mode { history, concurrency }, args.events));
        }
    }
}

/// A `redis-cli SUBSCRIBE` child reading everything published on
/// `ws:inventory`; killed when dropped.
struct Subscriber(Child);

impl Subscriber {
    fn start(redis: &RedisServer) -> Self {
        let child = Command::new("redis-cli")
            .args(["-p", &redis.port().to_string(), "SUBSCRIBE", "ws:inventory"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-cli (apt-get install redis-tools)");
        Subscriber(child)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The stock movement of event `n`: same shape and length for every `n`.
fn movement(n: u64) -> InventoryChange {
    InventoryChange {
        product_name: Some("Stainless steel bolt M8×40 (box of 100)".into()),
        variant_id: Some("v-zinc".into()),
        reason: Some("Cycle count correction, aisle 14".into()),
        operator: Some("Wang Fang".into()),
        user_id: Some("u-1042".into()),
        ..InventoryChange::new(InventoryAction::Adjust, format!("SKU-{n:08}"), 120.0, 118.0)
    }
}

async fn run(mode: Mode, events: u64) {
    let redis = RedisServer::start();
    let _subscriber = Subscriber::start(&redis);
    let config = PublisherConfig {
        history: if mode.history { PublisherConfig::new(redis.url()).history } else { None },
        // Generous: the bench measures latency, it must not turn it into errors.
        timeout: Duration::from_secs(10),
        ..PublisherConfig::new(redis.url())
    };
    let publisher = Publisher::new(config).expect("publisher");

    // Warm up (connect, load the script) and wait for the subscriber.
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.publish_inventory_change(movement(u64::MAX)).await.result().ok() != Some(1) {
        assert!(Instant::now() < deadline, "the redis-cli subscriber never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for n in 0..WARM_UP {
        let outcome = publisher.publish_inventory_change(movement(1_000_000_000 + n)).await;
        outcome.result().expect("warm-up publish");
    }
    let example_len = publisher.publish_inventory_change(movement(0)).await.payload.len();

    let next = Arc::new(AtomicU64::new(1));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..mode.concurrency {
        let (publisher, next) = (publisher.clone(), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut failed = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n > events {
                    break;
                }
                let call = Instant::now();
                let outcome = publisher.publish_inventory_change(movement(n)).await;
                let micros = call.elapsed().as_micros() as u64;
                latency.record(micros.max(1)).unwrap();
                let recorded = outcome.position.is_some();
                if !outcome.is_published() || recorded != mode.history {
                    failed += 1;
                }
            }
            (latency, failed)
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut failed = 0;
    for worker in workers {
        let (histogram, failures) = worker.await.expect("publisher task");
        latency.add(&histogram).unwrap();
        failed += failures;
    }
    let elapsed = started.elapsed();

    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let recorded: u64 = redis::cmd("XLEN")
        .arg(stream_key("ws:inventory"))
        .query_async(&mut connection)
        .await
        .unwrap();
    // Redis's own time per command: where the cost of history sits.
    let stats: String =
        redis::cmd("INFO").arg("commandstats").query_async(&mut connection).await.unwrap();
    let redis_time: Vec<String> = stats
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter(|line| ["evalsha:", "eval:", "publish:"].iter().any(|c| line.starts_with(c)))
        .filter_map(|line| {
            let (command, fields) = line.split_once(':')?;
            let usec = fields.split(',').find_map(|f| f.strip_prefix("usec_per_call="))?;
            Some(format!("{command} {usec} µs"))
        })
        .collect();

    println!(
        "{:<7} {:<14} {:>7.0} events/s | latency p50 {:>7.3} ms  p99 {:>7.3} ms  p999 {:>7.3} ms  max {:>7.3} ms | {} B payload, {} failed, stream length {}, Redis time per call: {}",
        if mode.history { "history" } else { "plain" },
        if mode.concurrency == 1 {
            "sequential".to_owned()
        } else {
            format!("{} concurrent", mode.concurrency)
        },
        events as f64 / elapsed.as_secs_f64(),
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.99)),
        ms(latency.value_at_quantile(0.999)),
        ms(latency.max()),
        example_len,
        failed,
        recorded,
        redis_time.join(", "),
    );
    assert_eq!(failed, 0, "every publish must succeed (and carry a position iff history is on)");
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}
