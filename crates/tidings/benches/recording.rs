//! Recording benchmark with a fixed workload (a bench binary, `harness =
//! false`): what history costs Redis per event, and how that cost scales
//! with the number of desktops reading Redis directly (docs/positions.md,
//! "What it costs").
//!
//! Part 1, sources: for N in `--sources` (1, 10, 50), a fresh redis-server
//! and N Redis sources with history (the desktop's direct mode: each with
//! its standby recorder), all subscribed to `ws:inventory`; once one
//! recorder holds the duty, 200 warm-up events, `CONFIG RESETSTAT`, then
//! `--events` (2,000) plain `PUBLISH`es of ~300-byte inventory events at
//! `--rate` (1,000/s), as the backend sends them, until every source has
//! received every event. Printed per N: script calls and script time per
//! event (`cmdstat_evalsha`, the measure the issue used), Redis CPU per
//! event (`used_cpu_user + used_cpu_sys`), and the same N with history off
//! (plain subscribers, no recorder) as the reference in the same run: the
//! difference is what recording costs. The ratio 50 : 1 of the script time
//! per event is the figure that must stay ≤ 1.5.
//!
//! Part 2, the append script: `--appends` (20,000) distinct payloads
//! recorded on a fresh Redis with the previous append script (kept here,
//! verbatim, only as the reference: one call per event, 256 pipelined, as
//! the previous `record_many` did) and with today's `History::record_many`,
//! one event per call (a quiet recorder) and 256 per call (a busy one);
//! printed: Redis time per append (`cmdstat_evalsha`), appends per second
//! end to end, and the ratios.
//!
//! Run (release, from the workspace root):
//!
//!     cargo bench -p tidings --bench recording
//!     cargo bench -p tidings --bench recording -- --sources 1,10,50 --events 2000
//!
//! Load generator, sources and Redis share the machine: the figures include
//! that. 50 sources open about 150 sockets, well inside the 20,000 limit.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use tidings::history::{History, HistoryConfig};
use tidings::source::{
    Backoff, RedisSourceConfig, SourceHandle, SourceState, SourceUpdate, Subscription,
    spawn_redis_source,
};
use tidings_events::Channel;
use tidings_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    about = "Recording benchmark: Redis time per event with 1..N direct sources, and the append script"
)]
struct Args {
    /// Numbers of direct sources to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    sources: Vec<usize>,
    /// Plain PUBLISHes measured per run.
    #[arg(long, default_value_t = 2_000)]
    events: u64,
    /// Publishes per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Appends measured per append-script run.
    #[arg(long, default_value_t = 20_000)]
    appends: u64,
    /// Ignored: `cargo bench` passes `--bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn event(n: u64) -> String {
    format!(
        r#"{{"type":"inventory:change","productId":"P-{n:08}","productName":"不锈钢保温杯 500ml","warehouseId":"WH-SH-01","action":"adjust","oldQuantity":120,"newQuantity":118,"changeAmount":-2,"reason":"cycle count correction after the weekly audit","operatorId":"u-1024","timestamp":1764000000000}}"#
    )
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        println!("Part 1: {} plain PUBLISHes at {}/s per run", args.events, args.rate);
        println!(
            "{:>7} {:>8} {:>13} {:>17} {:>16} {:>22}",
            "sources", "history", "script calls", "script µs/event", "CPU µs/event", "recording CPU µs/event"
        );
        let mut script_per_event = BTreeMap::new();
        for &sources in &args.sources {
            let plain = sources_run(sources, false, &args).await;
            let recorded = sources_run(sources, true, &args).await;
            for (history, figures) in [("off", &plain), ("on", &recorded)] {
                println!(
                    "{:>7} {:>8} {:>13} {:>17.1} {:>16.1} {:>22}",
                    sources,
                    history,
                    figures.script_calls,
                    figures.script_usec / args.events as f64,
                    figures.cpu_usec / args.events as f64,
                    if history == "on" {
                        format!("{:.1}", (recorded.cpu_usec - plain.cpu_usec) / args.events as f64)
                    } else {
                        String::new()
                    },
                );
            }
            script_per_event.insert(sources, recorded.script_usec / args.events as f64);
        }
        if let (Some((&fewest, &base)), Some((&most, &top))) =
            (script_per_event.first_key_value(), script_per_event.last_key_value())
        {
            println!(
                "script time per event, {most} sources : {fewest}: {:.2} (must stay ≤ 1.5)",
                top / base.max(f64::MIN_POSITIVE)
            );
        }

        println!(
            "\nPart 2: {} appends of distinct ~300-byte events, median of three rounds",
            args.appends
        );
        let runs = [
            ("previous script, one event per round trip", Appending::Previous { batch: 1 }),
            ("today's script, one event per round trip", Appending::Today { batch: 1 }),
            ("previous script, 256 calls pipelined", Appending::Previous { batch: 256 }),
            ("today's script, 256 events per call", Appending::Today { batch: 256 }),
        ];
        let mut rounds: Vec<Vec<(f64, f64)>> = vec![Vec::new(); runs.len()];
        for _ in 0..3 {
            for (index, (_, how)) in runs.iter().enumerate() {
                rounds[index].push(append_run(*how, args.appends).await);
            }
        }
        let medians: Vec<(f64, f64)> = rounds
            .into_iter()
            .map(|mut figures| {
                figures.sort_by(|a, b| a.0.total_cmp(&b.0));
                figures[1]
            })
            .collect();
        for ((name, _), (usec, per_second)) in runs.iter().zip(&medians) {
            println!("{name:>42}: {usec:6.1} µs of Redis time per append, {per_second:8.0} appends/s end to end");
        }
        println!(
            "today's append is {:.1}× cheaper one event at a time (a quiet recorder), {:.1}× in batches (a busy one)",
            medians[0].0 / medians[1].0.max(f64::MIN_POSITIVE),
            medians[2].0 / medians[3].0.max(f64::MIN_POSITIVE)
        );
    });
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    script_calls: u64,
    script_usec: f64,
    cpu_usec: f64,
}

async fn sources_run(count: usize, history: bool, args: &Args) -> Figures {
    let redis = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut sources: Vec<SourceHandle> = (0..count)
        .map(|_| {
            let config = RedisSourceConfig {
                subscriptions: vec![Subscription::Channel(Channel::Inventory)],
                backoff: Backoff::default(),
                history: history.then(HistoryConfig::default),
                ..RedisSourceConfig::new(redis.url())
            };
            spawn_redis_source(config, cancel.clone(), 4096)
        })
        .collect();
    for source in &mut sources {
        while !matches!(source.updates.recv().await, Some(SourceUpdate::State(SourceState::Live))) {
        }
    }
    if history {
        let deadline = Instant::now() + Duration::from_secs(20);
        while redis.recording_duty_holder().is_none() {
            assert!(Instant::now() < deadline, "no recorder took the duty");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    publish(&mut connection, 0..200, args.rate).await;
    drain(&mut sources, 200).await;
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut connection).await.unwrap();
    let cpu_before = redis_cpu(&mut connection).await;
    publish(&mut connection, 200..200 + args.events, args.rate).await;
    drain(&mut sources, args.events).await;
    let cpu_usec = redis_cpu(&mut connection).await - cpu_before;
    let (script_calls, script_usec) = evalsha(&mut connection).await;
    cancel.cancel();
    for source in sources {
        source.finished().await;
    }
    Figures { script_calls, script_usec, cpu_usec }
}

/// Plain PUBLISHes of events `numbers` at `rate` per second.
async fn publish(
    connection: &mut redis::aio::MultiplexedConnection,
    numbers: std::ops::Range<u64>,
    rate: u64,
) {
    let start = tokio::time::Instant::now();
    let first = numbers.start;
    for n in numbers {
        let due = start + Duration::from_micros((n - first) * 1_000_000 / rate.max(1));
        tokio::time::sleep_until(due).await;
        let _: u64 = redis::cmd("PUBLISH")
            .arg("ws:inventory")
            .arg(event(n))
            .query_async(connection)
            .await
            .unwrap();
    }
}

/// Waits until every source has handed on `count` more messages.
async fn drain(sources: &mut [SourceHandle], count: u64) {
    for source in sources {
        let mut got = 0;
        while got < count {
            let update = tokio::time::timeout(Duration::from_secs(30), source.updates.recv())
                .await
                .expect("a source stalled")
                .expect("a source ended");
            got += u64::from(matches!(update, SourceUpdate::Message(_)));
        }
    }
}

async fn info(connection: &mut redis::aio::MultiplexedConnection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query_async(connection).await.unwrap()
}

/// Redis's own CPU time so far, in microseconds.
async fn redis_cpu(connection: &mut redis::aio::MultiplexedConnection) -> f64 {
    let text = info(connection, "cpu").await;
    let field = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (field("used_cpu_user:") + field("used_cpu_sys:")) * 1e6
}

/// `cmdstat_evalsha`: calls and microseconds since the last reset.
async fn evalsha(connection: &mut redis::aio::MultiplexedConnection) -> (u64, f64) {
    let text = info(connection, "commandstats").await;
    let Some(line) = text.lines().find_map(|line| line.strip_prefix("cmdstat_evalsha:")) else {
        return (0, 0.0);
    };
    let field = |name: &str| {
        line.split(',').find_map(|part| part.strip_prefix(name)).unwrap_or("0").to_owned()
    };
    (field("calls=").parse().unwrap_or(0), field("usec=").parse().unwrap_or(0.0))
}

/// How an append run calls Redis.
#[derive(Debug, Clone, Copy)]
enum Appending {
    /// The previous script, one call per event, `batch` calls pipelined
    /// (the previous `record_many`).
    Previous { batch: u64 },
    /// Today's `History::record_many`, `batch` events per script call.
    Today { batch: u64 },
}

/// Records `count` distinct payloads (after 1,000 warm-up ones): Redis µs
/// per append (`cmdstat_evalsha` time / appends) and appends/s end to end.
async fn append_run(how: Appending, count: u64) -> (f64, f64) {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(PREVIOUS_APPEND_LUA)
        .query_async(&mut connection)
        .await
        .unwrap();
    let history = History::new(HistoryConfig::default());
    history.load(&mut connection).await.unwrap();
    let mut run = async |numbers: std::ops::Range<u64>| match how {
        Appending::Previous { batch } => {
            let mut n = numbers.start;
            while n < numbers.end {
                let end = (n + batch).min(numbers.end);
                let mut pipeline = redis::pipe();
                for m in n..end {
                    let payload = event(m);
                    let digest = sha1_smol::Sha1::from(payload.as_bytes()).digest().to_string();
                    pipeline
                        .cmd("EVALSHA")
                        .arg(&sha)
                        .arg(3)
                        .arg("tidings:history:{ws:inventory}")
                        .arg(format!("tidings:seen:{{ws:inventory}}:{digest}"))
                        .arg("tidings:epoch")
                        .arg(payload)
                        .arg(10_000)
                        .arg(86_400_000)
                        .arg(60_000)
                        .arg("e1")
                        .arg("");
                }
                let _: Vec<redis::Value> = pipeline.query_async(&mut connection).await.unwrap();
                n = end;
            }
        }
        Appending::Today { batch } => {
            let mut n = numbers.start;
            while n < numbers.end {
                let end = (n + batch).min(numbers.end);
                let payloads: Vec<String> = (n..end).map(event).collect();
                let messages: Vec<(&str, &[u8])> =
                    payloads.iter().map(|p| ("ws:inventory", p.as_bytes())).collect();
                history.record_many(&mut connection, &messages).await.unwrap();
                n = end;
            }
        }
    };
    run(0..1_000).await;
    let mut stats = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut stats).await.unwrap();
    let started = Instant::now();
    run(1_000..1_000 + count).await;
    let per_second = count as f64 / started.elapsed().as_secs_f64();
    let (_, usec) = evalsha(&mut stats).await;
    (usec / count as f64, per_second)
}

/// The append script before issue 15, only as this bench's reference.
const PREVIOUS_APPEND_LUA: &str = r"
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', KEYS[3], epoch)
end
local id = redis.call('GET', KEYS[2])
local recorded = 0
if not id then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local prev = '0-0'
  if #last > 0 then prev = last[1][1] end
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[1], 'p', prev)
  local max_age = tonumber(ARGV[3])
  if max_age > 0 then
    local now = redis.call('TIME')
    local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - max_age
    if cutoff > 0 then redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', cutoff)) end
  end
  redis.call('SET', KEYS[2], id, 'PX', ARGV[4])
  recorded = 1
end
if ARGV[6] ~= '' then
  return {epoch, id, recorded, redis.call('PUBLISH', ARGV[6], ARGV[1])}
end
return {epoch, id, recorded}
";
