//! Fixed workloads that measure the real app (run by
//! `scripts/e2e.sh --measure`, which builds everything in release):
//!
//! - cold start → first event on screen: Redis publishes an inventory event
//!   every 20 ms from before the app is launched; the time from launching
//!   (WebDriver session request) until the first such row is in the DOM.
//! - `PUBLISH` → row in the DOM at a fixed rate: a MutationObserver in the
//!   page stamps each new inventory row with `Date.now()`; the publisher
//!   stamps each event just before its `PUBLISH`; same machine, same clock.
//! - idle memory: the app launched directly (no WebDriver), left idle,
//!   then the PSS and USS of it and every process it started (WebKit's web
//!   and network processes) summed from `/proc/PID/smaps_rollup`; next to
//!   it WebKitGTK's own floor, its MiniBrowser showing one line, measured
//!   the same way.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;

use crate::app::{AppHome, DeskApp, Launch, Source};
use crate::desktop::Desktop;
use crate::events::now_ms;
use crate::locate;
use crate::process::OwnedChild;

/// A connection speaking RESP to Redis, for publishing at a steady rate
/// without a `redis-cli` process per event.
#[derive(Debug)]
pub struct Publisher {
    stream: TcpStream,
}

impl Publisher {
    /// Connects to the Redis listening on `127.0.0.1:port`, with Nagle's
    /// algorithm off.
    pub fn connect(port: u16) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).context("connecting to redis")?;
        stream.set_nodelay(true)?;
        Ok(Self { stream })
    }

    /// `PUBLISH channel payload`; returns the number of receivers.
    pub fn publish(&mut self, channel: &str, payload: &str) -> anyhow::Result<u64> {
        let mut command = Vec::with_capacity(payload.len() + 64);
        write!(
            command,
            "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n",
            channel.len(),
            payload.len()
        )?;
        command.extend_from_slice(payload.as_bytes());
        command.extend_from_slice(b"\r\n");
        self.stream.write_all(&command)?;
        // The reply is one integer line, `:N\r\n`.
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            self.stream.read_exact(&mut byte)?;
            reply.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&reply);
        text.trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("PUBLISH replied {text:?}"))
    }
}

fn inventory_event(product: &str, at: i64) -> String {
    json!({
        "type": "inventory:change", "productId": product, "action": "adjust",
        "oldQuantity": 10, "newQuantity": 11, "changeAmount": 1, "timestamp": at,
    })
    .to_string()
}

/// Milliseconds from the launch request to the first live event's row.
pub async fn cold_start(
    desktop: &Desktop,
    redis: &tidings_testkit::RedisServer,
    run: u32,
    gpu: bool,
) -> anyhow::Result<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let stop = Arc::clone(&stop);
        let mut publisher = Publisher::connect(redis.port())?;
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                publisher
                    .publish("ws:inventory", &inventory_event(&format!("COLD-{n}"), now_ms()))?;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        })
    };
    let mut launch = Launch::new(
        &format!("measure-cold-start-{run}"),
        Source::Redis { url: redis.url(), user: "measure".into() },
    );
    if gpu {
        launch = launch.arg("--gpu");
    }
    let started = Instant::now();
    let result = async {
        let mut app = DeskApp::launch(desktop, &launch).await?;
        app.show("inventory").await?;
        loop {
            let found = app
                .eval("return !!Array.from(document.querySelectorAll('main [data-testid=row]')).find((r) => r.innerText.includes('COLD-'));", Vec::new())
                .await?;
            if found.as_bool() == Some(true) {
                return Ok::<_, anyhow::Error>((started.elapsed(), app));
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("no event on screen within a minute of launch");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    publisher.join().map_err(|_| anyhow::anyhow!("the publisher thread panicked"))??;
    let (elapsed, app) = result?;
    app.quit().await;
    Ok(elapsed)
}

/// Latencies (ms) from `PUBLISH` to row in the DOM of `count` events
/// published at `per_second`, and how many never showed up.
pub async fn publish_to_dom(
    desktop: &Desktop,
    redis: &tidings_testkit::RedisServer,
    per_second: u32,
    count: u32,
    gpu: bool,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut launch =
        Launch::new("measure-latency", Source::Redis { url: redis.url(), user: "measure".into() });
    if gpu {
        launch = launch.arg("--gpu");
    }
    let mut app = DeskApp::launch(desktop, &launch).await?;
    app.wait_for_connection("live", Duration::from_secs(30)).await?;
    app.show("inventory").await?;
    app.eval(
        // The list is windowed and updates its row nodes in place (a new
        // event changes the text of the top rows rather than adding a
        // node), so every mutation rescans the rows on screen.
        r"window.__seen = {};
          new MutationObserver(() => {
            const now = Date.now();
            for (const row of document.querySelectorAll('main [data-testid=row]')) {
              const m = /LAT-(\d+)/.exec(row.textContent || '');
              if (m && !(m[1] in window.__seen)) window.__seen[m[1]] = now;
            }
          }).observe(document.querySelector('main'), { childList: true, subtree: true, characterData: true });",
        Vec::new(),
    )
    .await?;

    let mut publisher = Publisher::connect(redis.port())?;
    let interval = Duration::from_secs(1) / per_second;
    let mut sent_at = Vec::with_capacity(count as usize);
    let start = Instant::now();
    for i in 0..count {
        let due = start + interval * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let at = now_ms();
        sent_at.push(at);
        ensure!(
            publisher.publish("ws:inventory", &inventory_event(&format!("LAT-{i}"), at))? >= 1,
            "the app is not subscribed"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = app.eval("return window.__seen;", Vec::new()).await?;
    app.screenshot("after-latency-run").await?;
    app.quit().await;

    let mut latencies = Vec::new();
    let mut missing = 0;
    for (i, at) in sent_at.iter().enumerate() {
        match seen.get(i.to_string()).and_then(serde_json::Value::as_i64) {
            Some(shown) => latencies.push((shown - at) as f64),
            None => missing += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, missing))
}

/// One process's memory, in KiB: PSS (shared pages divided among the
/// processes mapping them) and USS (pages no other process maps).
#[derive(Debug, Clone)]
pub struct ProcessMemory {
    /// The process id.
    pub pid: u32,
    /// The command name from `/proc/PID/comm`; empty if unreadable.
    pub name: String,
    /// Proportional set size, in KiB.
    pub pss_kib: u64,
    /// Unique set size (private clean + private dirty), in KiB.
    pub uss_kib: u64,
}

/// What [`idle_memory`] found: each process of the measured tree, and the
/// other processes on the machine that also map WebKit.
///
/// PSS divides a shared library's pages among everyone mapping it, so a
/// second WebKit app (a leftover from an earlier run, WebKitWebDriver) makes
/// the measured app look up to 70 MiB smaller than it is alone; the report
/// names them so such a figure is never taken for the real one. USS does
/// not depend on them.
#[derive(Debug)]
pub struct IdleMemory {
    /// The launched process and every process below it still running.
    pub processes: Vec<ProcessMemory>,
    /// Other processes mapping WebKitGTK's library: PID and command name.
    pub other_webkit: Vec<(u32, String)>,
}

impl IdleMemory {
    /// The PSS of the whole measured tree, in KiB.
    pub fn pss_kib(&self) -> u64 {
        self.processes.iter().map(|p| p.pss_kib).sum()
    }

    /// The USS of the whole measured tree, in KiB.
    pub fn uss_kib(&self) -> u64 {
        self.processes.iter().map(|p| p.uss_kib).sum()
    }
}

/// Memory of the app launched directly and left idle for `idle`; with
/// `gpu`, launched with `--gpu` (WebKit's GPU compositing on).
pub fn idle_memory(
    desktop: &Desktop,
    redis: &tidings_testkit::RedisServer,
    idle: Duration,
    gpu: bool,
) -> anyhow::Result<IdleMemory> {
    let home = AppHome::new()?;
    let mut launch =
        Launch::new("measure-idle", Source::Redis { url: redis.url(), user: "measure".into() });
    if gpu {
        launch = launch.arg("--gpu");
    }
    let mut command = Command::new(locate::desk_app()?);
    command
        .args(launch.args(&home.config_file()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    home.configure(&mut command, desktop);
    measure_idle_tree("tidings-desk", &mut command, idle)
}

/// Where Debian and Ubuntu install WebKitGTK's own minimal browser.
const MINIBROWSER: &str = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

/// WebKitGTK's floor on this machine: its MiniBrowser showing a one-line
/// page, compositing off like the app, measured the same way. `None` when
/// MiniBrowser is not installed (it ships in `libwebkit2gtk-4.1-0`).
pub fn webkit_floor(desktop: &Desktop, idle: Duration) -> anyhow::Result<Option<IdleMemory>> {
    if !Path::new(MINIBROWSER).exists() {
        return Ok(None);
    }
    let home = AppHome::new()?;
    let page = home.path().join("floor.html");
    std::fs::write(&page, "<!doctype html><title>floor</title><p>Tidings</p>")?;
    let mut command = Command::new(MINIBROWSER);
    command
        .arg(format!("file://{}", page.display()))
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    home.configure(&mut command, desktop);
    measure_idle_tree("MiniBrowser", &mut command, idle).map(Some)
}

fn measure_idle_tree(
    name: &'static str,
    command: &mut Command,
    idle: Duration,
) -> anyhow::Result<IdleMemory> {
    // The previous run's WebKit processes may still be exiting; waiting
    // for them keeps their shared pages out of this run's PSS.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !webkit_processes(&[]).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut child = OwnedChild::spawn_group(name, command)?;
    std::thread::sleep(idle);
    child.ensure_running()?;
    let root = child.id().context("the measured process has a PID")?;
    let tree = descendants_and_self(root)?;
    let processes = tree.iter().filter_map(|&pid| process_memory(pid)).collect();
    let other_webkit = webkit_processes(&tree);
    child.terminate(Duration::from_secs(5));
    Ok(IdleMemory { processes, other_webkit })
}

/// Processes, other than `except`, that map WebKitGTK's library.
fn webkit_processes(except: &[u32]) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !except.contains(pid) && *pid != std::process::id())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/maps"))
                .is_ok_and(|maps| maps.contains("libwebkit2gtk"))
        })
        .map(|pid| (pid, process_name(pid)))
        .collect()
}

fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_owned()
}

/// `root` and every process below it, from `/proc/*/stat` parent links.
fn descendants_and_self(root: u32) -> anyhow::Result<Vec<u32>> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The field after the parenthesised command is the state, then the PPID.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    Ok(found)
}

/// PSS and USS (private clean + private dirty) from
/// `/proc/PID/smaps_rollup`, in KiB; `None` once the process is gone.
fn process_memory(pid: u32) -> Option<ProcessMemory> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| -> u64 {
        rollup
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Some(ProcessMemory {
        pid,
        name: process_name(pid),
        pss_kib: field("Pss:"),
        uss_kib: field("Private_Clean:") + field("Private_Dirty:"),
    })
}

/// The value at quantile `q` (0..=1) of sorted `values`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
