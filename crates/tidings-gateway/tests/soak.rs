//! Soak: the real gateway binary with 2,000 WebSocket connections, 10% of
//! them churned every second for 30 s (reconnects with a fresh subscribe,
//! resumes with `since`, malformed frames on a live connection) while
//! inventory events flow at a steady rate; a bystander that never churns
//! must receive every event, in order, with publish→event p99 under 50 ms.
//!
//! Run alone with the figures printed (docs/gateway.md, "Soak"):
//!
//!     cargo nextest run -p tidings-gateway --test soak --no-capture
//!
//! `.config/nextest.toml` gives it every test thread, so no other test of
//! the run shares its CPU. Everything here stops by itself at the deadline.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{GatewayProcess, Publisher, inventory_event};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tidings_testkit::RedisServer;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const CONNECTIONS: usize = 2000;
const DURATION: Duration = Duration::from_secs(30);
/// Each churning connection lives a random 5–15 s: 10% churn per second.
const LIFETIME_MS: (u64, u64) = (5_000, 15_000);
const EVENTS_PER_SECOND: u64 = 50;
/// One connection in this many follows `inventory` (and resumes it); the
/// others follow `orders` and their own user channel.
const INVENTORY_EVERY: usize = 10;
/// Connection handshakes in flight at once while opening the 2,000.
const OPENING_AT_ONCE: usize = 100;
/// The bystander's p99 bound; `TIDINGS_SOAK_P99_MS` overrides it for a
/// machine known to be oversubscribed (docs/gateway.md, "Soak").
fn p99_bound() -> Duration {
    let millis = std::env::var("TIDINGS_SOAK_P99_MS").ok().and_then(|ms| ms.parse().ok());
    Duration::from_millis(millis.unwrap_or(50))
}

/// CPU time (user + system) a process has used so far, from `/proc` (Linux).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses): state is
    // field 3, utime and stime are fields 14 and 15, in clock ticks (100/s).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The 1-minute load average, for context in the printed figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Default)]
struct Stats {
    churns: AtomicU64,
    reconnects: AtomicU64,
    resumes: AtomicU64,
    malformed_sent: AtomicU64,
    errors_received: AtomicU64,
    events_received: AtomicU64,
    connect_failures: AtomicU64,
    unexpected_closes: AtomicU64,
}

/// A small deterministic random generator (xorshift64*), one per task.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

async fn connect(url: &str, stats: &Stats) -> Socket {
    loop {
        match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => return ws,
            Err(_) => {
                stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Sends a subscribe and reads until its `subscribed` (counting anything
/// else it reads on the way).
async fn subscribe(ws: &mut Socket, frame: Value, slot: &mut SlotState, stats: &Stats) -> bool {
    if ws.send(Message::text(frame.to_string())).await.is_err() {
        return false;
    }
    let wait = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message
                && slot.read(&text, stats) == Some("subscribed")
            {
                return true;
            }
        }
        false
    });
    wait.await.unwrap_or(false)
}

/// What one churning connection remembers across its reconnects.
struct SlotState {
    channels: Vec<String>,
    /// The last `inventory` position it received.
    position: Option<String>,
}

impl SlotState {
    /// Reads one frame; returns its type. Event frames (nearly all of
    /// them) are recognised by their fixed start, not parsed, so the load
    /// generator spends its CPU on sockets rather than on JSON.
    fn read(&mut self, text: &str, stats: &Stats) -> Option<&'static str> {
        if text.starts_with(r#"{"type":"event""#) {
            stats.events_received.fetch_add(1, Ordering::Relaxed);
            if let Some((_, rest)) = text.split_once(r#","position":""#)
                && let Some((position, _)) = rest.split_once('"')
            {
                self.position = Some(position.to_owned());
            }
            return Some("event");
        }
        let frame: Value = serde_json::from_str(text).ok()?;
        match frame["type"].as_str()? {
            "error" => {
                stats.errors_received.fetch_add(1, Ordering::Relaxed);
                Some("error")
            }
            "subscribed" => Some("subscribed"),
            _ => Some("other"),
        }
    }

    fn subscribe_frame(&self, resume: bool) -> Value {
        match (&self.position, resume) {
            (Some(position), true) => json!({
                "type": "subscribe", "channels": self.channels, "since": {"inventory": position},
            }),
            _ => json!({"type": "subscribe", "channels": self.channels}),
        }
    }
}

/// One of the 2,000: connects and subscribes, says so on `ready`, then,
/// from the start signal to the deadline, lives 5–15 s at a time and
/// churns: reconnect, reconnect and resume, or malformed frames.
async fn churning_slot(
    index: usize,
    url: String,
    stats: Arc<Stats>,
    opening: Arc<Semaphore>,
    ready: tokio::sync::mpsc::Sender<()>,
    mut start: watch::Receiver<Option<tokio::time::Instant>>,
) {
    let mut rng = Rng::new(index as u64 + 1);
    let channels = if index.is_multiple_of(INVENTORY_EVERY) {
        vec!["inventory".to_owned()]
    } else {
        vec!["orders".to_owned(), format!("user:u{index}:notifications")]
    };
    let mut slot = SlotState { channels, position: None };
    let mut ws = {
        let _permit = opening.acquire().await.unwrap();
        let mut ws = connect(&url, &stats).await;
        assert!(subscribe(&mut ws, slot.subscribe_frame(false), &mut slot, &stats).await);
        ws
    };
    let _ = ready.send(()).await;
    let Ok(deadline) = start.wait_for(Option::is_some).await.map(|at| at.unwrap()) else {
        return;
    };
    // The first lifetime is cut anywhere short of its mean, so churn runs
    // at its steady rate from the start instead of after 5 s.
    let mut lifetime = Duration::from_millis(rng.between(0, (LIFETIME_MS.0 + LIFETIME_MS.1) / 2));
    loop {
        let until = (tokio::time::Instant::now() + lifetime).min(deadline);
        // Live: read whatever comes until it is time to churn.
        let mut closed = false;
        while let Ok(next) = tokio::time::timeout_at(until, ws.next()).await {
            match next {
                Some(Ok(Message::Text(text))) => {
                    slot.read(&text, &stats);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    closed = true;
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = ws.close(None).await;
            return;
        }
        if closed {
            stats.unexpected_closes.fetch_add(1, Ordering::Relaxed);
        }
        stats.churns.fetch_add(1, Ordering::Relaxed);
        match rng.between(0, 2) {
            0 if !closed => {
                // Malformed frames on a live connection: each gets an error
                // frame and the connection stays; then the same subscribe
                // again, which is confirmed again.
                let frames = [
                    Message::text("not json"),
                    Message::text(r#"{"type":"subscribe","channels":"inventory"}"#),
                    Message::text(r#"{"type":"no-such-frame"}"#),
                    Message::binary(vec![0u8, 1, 2]),
                ];
                for frame in frames {
                    if ws.send(frame).await.is_ok() {
                        stats.malformed_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if subscribe(&mut ws, slot.subscribe_frame(false), &mut slot, &stats).await {
                    lifetime = Duration::from_millis(rng.between(LIFETIME_MS.0, LIFETIME_MS.1));
                    continue;
                }
                stats.unexpected_closes.fetch_add(1, Ordering::Relaxed);
                ws = connect(&url, &stats).await;
                subscribe(&mut ws, slot.subscribe_frame(true), &mut slot, &stats).await;
            }
            choice => {
                let resume = choice == 2 && slot.position.is_some();
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                ws = connect(&url, &stats).await;
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
                if resume {
                    stats.resumes.fetch_add(1, Ordering::Relaxed);
                }
                subscribe(&mut ws, slot.subscribe_frame(resume), &mut slot, &stats).await;
            }
        }
        lifetime = Duration::from_millis(rng.between(LIFETIME_MS.0, LIFETIME_MS.1));
    }
}

/// What the bystander saw.
struct Bystander {
    latencies: hdrhistogram::Histogram<u64>,
    received: u64,
    lost: u64,
    out_of_order: u64,
    /// Whether every event arrived before the reading deadline.
    complete: bool,
}

/// Subscribes the bystander to `inventory` (says so on `ready`), then, from
/// the start signal, publishes `EVENTS_PER_SECOND` events for `DURATION`
/// and reads them, timing each from just before its `PUBLISH`.
async fn bystander_and_publisher(
    url: String,
    redis_url: String,
    ready: tokio::sync::oneshot::Sender<()>,
    mut start: watch::Receiver<Option<tokio::time::Instant>>,
) -> Bystander {
    let stats = Stats::default();
    let mut ws = connect(&url, &stats).await;
    let mut state = SlotState { channels: vec!["inventory".into()], position: None };
    assert!(subscribe(&mut ws, state.subscribe_frame(false), &mut state, &stats).await);
    let mut publisher = Publisher::connect(&redis_url).await;
    let _ = ready.send(());
    let _ = start.wait_for(Option::is_some).await;

    let total = EVENTS_PER_SECOND * DURATION.as_secs();
    let epoch = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let publishing = {
        let sent_at = Arc::clone(&sent_at);
        tokio::spawn(async move {
            let period = Duration::from_secs(1) / EVENTS_PER_SECOND as u32;
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for n in 0..total {
                ticks.tick().await;
                let at = epoch.elapsed().as_nanos() as u64;
                sent_at[n as usize].store(at, Ordering::Relaxed);
                publisher.publish("ws:inventory", &inventory_event(n)).await;
            }
        })
    };

    let mut latencies = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    let (mut next, mut lost, mut out_of_order, mut received) = (0u64, 0u64, 0u64, 0u64);
    let reading = tokio::time::timeout(DURATION + Duration::from_secs(15), async {
        while next < total {
            let Some(Ok(message)) = ws.next().await else { break };
            let Message::Text(text) = message else { continue };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] != "event" {
                continue;
            }
            let arrived = epoch.elapsed().as_nanos() as u64;
            let id = frame["data"]["productId"].as_str().unwrap();
            let n: u64 = id.trim_start_matches('p').parse().unwrap();
            let sent = sent_at[n as usize].load(Ordering::Relaxed);
            latencies.record(arrived.saturating_sub(sent) / 1_000).unwrap();
            received += 1;
            match n.cmp(&next) {
                std::cmp::Ordering::Equal => next += 1,
                std::cmp::Ordering::Greater => {
                    lost += n - next;
                    next = n + 1;
                }
                std::cmp::Ordering::Less => out_of_order += 1,
            }
        }
    })
    .await;
    lost += total - next;
    publishing.await.unwrap();
    let _ = ws.close(None).await;
    Bystander { latencies, received, lost, out_of_order, complete: reading.is_ok() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_bystander_stays_fast_and_lossless_while_2000_connections_churn() {
    // Two sockets per connection on this machine, one of them in this process.
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let wanted = (2 * CONNECTIONS as u64 + 1024).min(hard);
    if soft < wanted {
        rlimit::Resource::NOFILE.set(wanted, hard).unwrap();
    }
    let redis = RedisServer::start();
    let mut gateway = GatewayProcess::start(
        &["--listen", "127.0.0.1:0", "--redis", &redis.url()],
        &[("RUST_LOG", "warn,tidings_gateway=info")],
    );
    let url = format!("ws://{}/ws", gateway.addr);
    let stats = Arc::new(Stats::default());

    // The bystander and the publisher run on a thread of their own, as
    // they would on another machine: what they measure is the gateway,
    // not this process's 2,000 client tasks queueing for the same cores.
    let (bystander_ready, subscribed) = tokio::sync::oneshot::channel();
    let (start_tx, start) = watch::channel(None);
    let bystander = {
        let (url, redis_url, start) = (url.clone(), redis.url(), start.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(bystander_and_publisher(url, redis_url, bystander_ready, start))
        })
    };
    subscribed.await.expect("the bystander subscribes");

    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(CONNECTIONS);
    let opened = Instant::now();
    let slots: Vec<_> = (0..CONNECTIONS)
        .map(|index| {
            tokio::spawn(churning_slot(
                index,
                url.clone(),
                Arc::clone(&stats),
                Arc::clone(&opening),
                ready_tx.clone(),
                start.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    for _ in 0..CONNECTIONS {
        tokio::time::timeout(Duration::from_secs(120), ready.recv())
            .await
            .expect("every connection opens and subscribes")
            .expect("the slots are running");
    }
    let open_took = opened.elapsed();

    // Events flow from now on, and churn starts.
    let (load_before, cpu_before) = (load_average(), cpu_time(gateway.child.id()));
    let ours_before = cpu_time(std::process::id());
    let deadline = tokio::time::Instant::now() + DURATION;
    start_tx.send_replace(Some(deadline));
    let report = tokio::task::spawn_blocking(move || bystander.join().unwrap()).await.unwrap();
    for slot in slots {
        tokio::time::timeout(Duration::from_secs(30), slot)
            .await
            .expect("each slot stops at the deadline")
            .unwrap();
    }

    let gateway_cpu = cpu_time(gateway.child.id())
        .zip(cpu_before)
        .map(|(after, before)| {
            format!("{:.0}%", 100.0 * (after - before).as_secs_f64() / DURATION.as_secs_f64())
        })
        .unwrap_or_else(|| "?".to_owned());
    let load_generator_cpu = cpu_time(std::process::id())
        .zip(ours_before)
        .map(|(after, before)| {
            format!("{:.0}%", 100.0 * (after - before).as_secs_f64() / DURATION.as_secs_f64())
        })
        .unwrap_or_else(|| "?".to_owned());
    let churns = stats.churns.load(Ordering::Relaxed);
    let Bystander { latencies, lost, out_of_order, complete, received } = report;
    let total = EVENTS_PER_SECOND * DURATION.as_secs();
    let p50 = Duration::from_micros(latencies.value_at_quantile(0.50));
    let p99 = Duration::from_micros(latencies.value_at_quantile(0.99));
    let max = Duration::from_micros(latencies.max());
    println!(
        "soak: {CONNECTIONS} connections (+1 bystander) opened in {open_took:.1?}; \
         churn {:.0}/s for {}s ({churns} churns: {} reconnects of which {} resumes, \
         {} malformed frames sent, {} error frames back); {} events to the bystander \
         ({} events to the others); bystander p50 {p50:.1?} p99 {p99:.1?} max {max:.1?}; \
         lost {lost}, out of order {out_of_order}; connect retries {}, unexpected closes {}; \
         CPU of one core: gateway {gateway_cpu}, load generator {load_generator_cpu}; load average {load_before} before, {} after",
        churns as f64 / DURATION.as_secs_f64(),
        DURATION.as_secs(),
        stats.reconnects.load(Ordering::Relaxed),
        stats.resumes.load(Ordering::Relaxed),
        stats.malformed_sent.load(Ordering::Relaxed),
        stats.errors_received.load(Ordering::Relaxed),
        received,
        stats.events_received.load(Ordering::Relaxed),
        stats.connect_failures.load(Ordering::Relaxed),
        stats.unexpected_closes.load(Ordering::Relaxed),
        load_average(),
    );

    assert!(complete, "the bystander received {received} of {total} events in time");
    assert_eq!((lost, out_of_order), (0, 0), "the bystander misses nothing");
    let bound = p99_bound();
    assert!(p99 < bound, "bystander p99 {p99:?} (bound {bound:?}); see docs/gateway.md, \"Soak\"");
    let expected_churns = CONNECTIONS as f64 * 0.10 * DURATION.as_secs_f64();
    assert!(churns as f64 > 0.8 * expected_churns, "{churns} churns, expected ~{expected_churns}");
    assert!(stats.errors_received.load(Ordering::Relaxed) > 0, "malformed frames were answered");
    assert_eq!(stats.unexpected_closes.load(Ordering::Relaxed), 0);

    gateway.terminate();
    let (status, _log) = gateway.exited(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}");
}
