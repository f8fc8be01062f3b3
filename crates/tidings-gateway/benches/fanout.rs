//! Fan-out benchmark with a fixed workload (a bench binary, `harness = false`):
//!
//! 1. starts a real redis-server and the release `tidings-gateway` binary
//!    as a child process (so its memory can be read on its own);
//! 2. connects `--clients` WebSocket clients, each subscribed to
//!    `inventory`, and reads the gateway's RSS before and after (memory per
//!    idle connection);
//! 3. publishes `--events` inventory events to Redis (`--publish-mode plain`:
//!    pipelined `PUBLISH`; `--publish-mode history`: `tidings::Publisher`
//!    with history, 64 calls in flight; as fast as possible or at `--rate`
//!    events/s), each carrying its send time in an extra field;
//! 4. prints deliveries/s (from the first publish to the last delivery) and
//!    publish→client latency p50/p99/p999/max (hdrhistogram, every delivery).
//!
//! Run (release, from the workspace root):
//!
//!     cargo bench -p tidings-gateway --bench fanout -- --clients 1000 --events 2000
//!     cargo bench -p tidings-gateway --bench fanout -- --clients 1000 --events 2000 --rate 150
//!
//! Several gateways on one Redis (issue 19): `--gateways 3` starts three
//! gateway processes and spreads the clients over them round-robin, as a
//! load balancer would; compare with one gateway and a third of the clients:
//!
//!     cargo bench -p tidings-gateway --bench fanout -- --gateways 3 --clients 3000 --events 1000
//!     cargo bench -p tidings-gateway --bench fanout -- --gateways 1 --clients 1000 --events 1000
//!
//! Redis's own CPU per published event (`INFO cpu`, user + system) is
//! printed too, so operators can size Redis with history on.
//!
//! On Redis Cluster (issue 19): `--cluster` runs the same workload on a
//! real cluster of three primaries and three replicas (the gateways given
//! its `redis+cluster://` URL, plain publishes sent to one node, as a
//! backend's client would); Redis CPU is then summed over all six nodes:
//!
//!     cargo bench -p tidings-gateway --bench fanout -- --cluster --clients 1000 --events 1000
//!
//! What history costs (issue 8), same workload three ways:
//!
//!     cargo bench -p tidings-gateway --bench fanout -- --clients 100 --events 3000 --rate 500 --no-history
//!     cargo bench -p tidings-gateway --bench fanout -- --clients 100 --events 3000 --rate 500
//!     cargo bench -p tidings-gateway --bench fanout -- --clients 100 --events 3000 --rate 500 --publish-mode history
//!
//! The load generator (this process and Redis) shares the machine with the
//! gateway, as the issue's targets assume.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tidings_events::Channel;
use tidings_testkit::{ClusterSetup, RedisServer};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;

/// How events get into Redis. Issue 8 adds a mode that records history too,
/// so the two can be compared on the same workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PublishMode {
    /// `PUBLISH ws:inventory <event>`, as the TypeScript backend does.
    Plain,
    /// `tidings::Publisher::publish_raw` with the default history: each
    /// event is appended to the channel's history and published in one
    /// script (docs/positions.md), so the gateway finds it already recorded.
    History,
}

#[derive(Debug, Parser)]
#[command(about = "Gateway fan-out benchmark: N clients, M events, throughput and latency")]
struct Args {
    /// WebSocket clients, each subscribed to `inventory`.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Events published.
    #[arg(long, default_value_t = 2000)]
    events: u64,
    /// Events per second; 0 = as fast as Redis takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How events are published.
    #[arg(long, value_enum, default_value_t = PublishMode::Plain)]
    publish_mode: PublishMode,
    /// Bytes of padding in each event (the example event is ~190 bytes).
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Start the gateway with `--no-history` (no per-channel history in
    /// Redis, no positions; docs/positions.md).
    #[arg(long)]
    no_history: bool,
    /// Gateway processes on the one Redis; clients are spread over them
    /// round-robin.
    #[arg(long, default_value_t = 1)]
    gateways: usize,
    /// Run on a Redis Cluster (three primaries, three replicas) instead of
    /// one redis-server.
    #[arg(long)]
    cluster: bool,
    /// Worker threads of this load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Ignored: `cargo bench` passes `--bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    raise_fd_limit(args.clients);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
}

fn raise_fd_limit(clients: usize) {
    let (soft, hard) = rlimit::Resource::NOFILE.get().expect("read RLIMIT_NOFILE");
    let wanted = (clients as u64 * 2 + 512).min(hard);
    if soft < wanted {
        rlimit::Resource::NOFILE.set(wanted, hard).expect("raise RLIMIT_NOFILE");
    }
    assert!(
        wanted >= clients as u64 + 256,
        "RLIMIT_NOFILE hard limit {hard} is too low for {clients} clients"
    );
}

/// The gateway binary as a child process; killed when dropped.
struct GatewayProcess {
    child: Child,
    addr: String,
}

impl GatewayProcess {
    fn start(redis_url: &str, clients: usize, no_history: bool) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidings-gateway"));
        if no_history {
            command.arg("--no-history");
        }
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--redis", redis_url])
            .args(["--max-connections", &(clients + 100).to_string()])
            .env("RUST_LOG", "warn,tidings_gateway::server=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the tidings-gateway binary");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the gateway logs its address").unwrap();
            if let Some(after) = line.split("listen=").nth(1) {
                break after.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining its log so the gateway never blocks on stderr.
        std::thread::spawn(move || {
            lines.map_while(Result::ok).for_each(|line| eprintln!("{line}"))
        });
        GatewayProcess { child, addr }
    }

    /// CPU time (user + system) the gateway has used so far.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // Linux reports these in USER_HZ, which is 100 on every mainstream build.
        Duration::from_millis(ticks * 10)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client saw.
struct ClientReport {
    received: u64,
    latency_us: Histogram<u64>,
    last_at: Option<Instant>,
}

/// The Redis the gateways read: one server, or a cluster.
enum Backend {
    One(RedisServer),
    Cluster(ClusterSetup),
}

impl Backend {
    /// What the gateways (and the recording publisher) are given.
    fn url(&self) -> String {
        match self {
            Backend::One(redis) => redis.url(),
            Backend::Cluster(cluster) => cluster.url(),
        }
    }

    /// Where plain publishes go: the server, or one node of the cluster.
    fn publish_url(&self) -> String {
        match self {
            Backend::One(redis) => redis.url(),
            Backend::Cluster(cluster) => format!("redis://127.0.0.1:{}", cluster.ports()[1]),
        }
    }

    /// `redis-cli ARGS` on every node.
    fn on_every_node(&self, args: &[&str]) -> Vec<String> {
        match self {
            Backend::One(redis) => vec![redis.cli(args)],
            Backend::Cluster(cluster) => {
                cluster.ports().into_iter().map(|port| cluster.cli(port, args)).collect()
            }
        }
    }
}

async fn run(args: Args) {
    let redis = if args.cluster {
        Backend::Cluster(ClusterSetup::start())
    } else {
        Backend::One(RedisServer::start())
    };
    let count = args.gateways.max(1);
    let gateways: Vec<GatewayProcess> = (0..count)
        .map(|_| GatewayProcess::start(&redis.url(), args.clients.div_ceil(count), args.no_history))
        .collect();
    let urls: Vec<String> = gateways.iter().map(|g| format!("ws://{}/ws", g.addr)).collect();
    wait_until_live(&redis, count).await;
    let rss = || gateways.iter().map(GatewayProcess::rss_kib).sum::<u64>();
    let cpu = || gateways.iter().map(GatewayProcess::cpu_time).sum::<Duration>();
    let rss_before = rss();

    // Connect and subscribe every client (at most 256 handshakes at once).
    let base = Instant::now();
    let connecting = Arc::new(Semaphore::new(256));
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(args.clients);
    let mut tasks = Vec::with_capacity(args.clients);
    let started = Instant::now();
    for n in 0..args.clients {
        let url = urls[n % count].clone();
        let connecting = Arc::clone(&connecting);
        let ready_tx = ready_tx.clone();
        let expected = args.events;
        tasks.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.unwrap();
            let (mut ws, _) =
                tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
            ws.send(Message::text(r#"{"type":"subscribe","channels":["inventory"]}"#))
                .await
                .unwrap();
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) if text.contains("\"subscribed\"") => break,
                    Some(Ok(_)) => {}
                    other => panic!("no subscribed: {other:?}"),
                }
            }
            drop(permit);
            ready_tx.send(()).await.unwrap();
            let mut report = ClientReport {
                received: 0,
                latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
                last_at: None,
            };
            while report.received < expected {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(sent) = sent_at_us(&text) {
                            let now = base.elapsed().as_micros() as u64;
                            let _ = report.latency_us.record(now.saturating_sub(sent).max(1));
                            report.received += 1;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break, // closed (e.g. cut off as a slow consumer)
                }
            }
            report.last_at = Some(Instant::now());
            report
        }));
    }
    drop(ready_tx);
    for _ in 0..args.clients {
        ready_rx.recv().await.expect("every client subscribes");
    }
    let connect_time = started.elapsed();
    let rss_idle = rss();

    // Publish, from a thread of its own so that pacing is not delayed by
    // the client tasks competing for this runtime's workers.
    let publish_started = Instant::now();
    let cpu_before = cpu();
    let redis_cpu_before = redis_cpu(&redis);
    let publisher = {
        let (url, plain_url) = (redis.url(), redis.publish_url());
        let (events, rate, pad, mode) = (args.events, args.rate, args.pad, args.publish_mode);
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(publish((url, plain_url), base, events, rate, pad, mode))
        })
    };
    let publish_time = publisher.join().expect("the publisher finishes");

    // Collect.
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut delivered = 0u64;
    let mut complete = 0usize;
    let mut last = publish_started;
    let deadline = Duration::from_secs(120);
    for task in tasks {
        let report = tokio::time::timeout(deadline, task).await.expect("clients finish").unwrap();
        delivered += report.received;
        if report.received == args.events {
            complete += 1;
        }
        latency.add(&report.latency_us).unwrap();
        if let Some(at) = report.last_at {
            last = last.max(at);
        }
    }
    let elapsed = last.duration_since(publish_started);
    let gateway_cpu = cpu().saturating_sub(cpu_before);
    let redis_cpu_used = redis_cpu(&redis) - redis_cpu_before;
    let mut slow = Vec::new();
    for gateway in &gateways {
        let metrics = reqwest::get(format!("http://{}/metrics", gateway.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        slow.extend(
            metrics
                .lines()
                .find(|l| l.starts_with("tidings_gateway_slow_consumer_disconnects_total"))
                .map(str::to_owned),
        );
    }

    println!(
        "workload: {} gateway(s) on {}, {} clients on `inventory`, {} events, publish-mode {:?}, gateway history {}, rate {}, pad {} B",
        count,
        if args.cluster { "a 3+3 Redis Cluster" } else { "one Redis" },
        args.clients,
        args.events,
        args.publish_mode,
        if args.no_history { "off" } else { "on" },
        if args.rate == 0 { "max".to_owned() } else { format!("{}/s", args.rate) },
        args.pad
    );
    println!("connect+subscribe: {:.2?} for {} clients", connect_time, args.clients);
    println!(
        "gateway RSS (all gateways): {} KiB before clients, {} KiB with {} idle subscribed clients → {:.1} KiB per connection",
        rss_before,
        rss_idle,
        args.clients,
        (rss_idle.saturating_sub(rss_before)) as f64 / args.clients as f64
    );
    println!(
        "published {} events in {:.2?} ({:.0} events/s)",
        args.events,
        publish_time,
        args.events as f64 / publish_time.as_secs_f64()
    );
    println!(
        "delivered {delivered} of {} ({complete} clients complete) in {:.2?} → {:.0} deliveries/s",
        args.events * args.clients as u64,
        elapsed,
        delivered as f64 / elapsed.as_secs_f64()
    );
    println!(
        "publish→client latency: p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.value_at_quantile(0.999) as f64 / 1000.0,
        latency.max() as f64 / 1000.0
    );
    println!(
        "gateway CPU (all gateways) while delivering: {:.2?} ({:.0}% of one core over the run, {:.2} µs per delivery)",
        gateway_cpu,
        100.0 * gateway_cpu.as_secs_f64() / elapsed.as_secs_f64(),
        gateway_cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64
    );
    println!(
        "Redis CPU while publishing and delivering: {:.0} ms ({:.1} µs per event)",
        redis_cpu_used * 1000.0,
        redis_cpu_used * 1e6 / args.events.max(1) as f64
    );
    println!("gateways: {}", slow.join("; "));
}

/// Redis's CPU time so far (`INFO cpu`: used_cpu_user + used_cpu_sys), s,
/// summed over every node.
fn redis_cpu(redis: &Backend) -> f64 {
    redis
        .on_every_node(&["INFO", "cpu"])
        .iter()
        .flat_map(|info| info.lines())
        .filter_map(|line| {
            let (key, value) = line.trim().split_once(':')?;
            matches!(key, "used_cpu_user" | "used_cpu_sys").then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Publishes `events` events (plain `PUBLISH`es to the second URL, the
/// recording publisher on the first), 64 at a time (pipelined, or 64 publisher calls
/// in flight) when `rate` is 0, else one per tick at `rate` per second; each
/// carries its send time (µs since `base`). Returns how long publishing took.
async fn publish(
    (url, plain_url): (String, String),
    base: Instant,
    events: u64,
    rate: u64,
    pad: usize,
    mode: PublishMode,
) -> Duration {
    let client = redis::Client::open(plain_url.as_str()).unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
    let recording = tidings::Publisher::new(tidings::PublisherConfig {
        // Generous: a slow publish must show as latency, not as an error.
        timeout: Duration::from_secs(10),
        ..tidings::PublisherConfig::new(url)
    })
    .unwrap();
    let padding = if pad == 0 { String::new() } else { format!(r#","pad":"{}""#, "x".repeat(pad)) };
    let started = Instant::now();
    let batch = if rate == 0 { 64 } else { 1 };
    let mut ticker = (rate > 0).then(|| {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        interval
    });
    let mut sent = 0;
    while sent < events {
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let in_batch = batch.min(events - sent);
        let stamped = (sent..sent + in_batch).map(|n| {
            let now = base.elapsed().as_micros() as u64;
            format!(
                r#"{{"type":"inventory:change","productId":"p{n}","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999,"sentAtUs":{now}{padding}}}"#
            )
        });
        match mode {
            PublishMode::Plain => {
                let mut pipe = redis::pipe();
                for event in stamped {
                    pipe.cmd("PUBLISH").arg("ws:inventory").arg(event).ignore();
                }
                let _: () = pipe.query_async(&mut publisher).await.expect("PUBLISH");
            }
            PublishMode::History => {
                let calls = stamped.map(|event| {
                    let recording = &recording;
                    async move { recording.publish_raw(&Channel::Inventory, &event).await }
                });
                for outcome in futures_util::future::join_all(calls).await {
                    assert!(outcome.position.is_some(), "publish with history: {outcome:?}");
                }
            }
        }
        sent += in_batch;
    }
    started.elapsed()
}

/// The `sentAtUs` value of an event frame, without parsing the JSON.
fn sent_at_us(frame: &str) -> Option<u64> {
    let start = frame.find("\"sentAtUs\":")? + "\"sentAtUs\":".len();
    let digits = &frame[start..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Waits until every gateway has subscribed to Redis: that many pub/sub
/// clients with a pattern subscription, over every node (`PUBSUB NUMPAT`
/// counts distinct patterns, one for any number of gateways).
async fn wait_until_live(redis: &Backend, gateways: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let subscribed = redis
            .on_every_node(&["CLIENT", "LIST", "TYPE", "pubsub"])
            .iter()
            .flat_map(|list| list.lines())
            .filter(|line| line.split_whitespace().any(|f| f.starts_with("psub=") && f != "psub=0"))
            .count();
        if subscribed >= gateways {
            return;
        }
        assert!(Instant::now() < deadline, "the gateways did not all subscribe to Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
