//! The desktop app's "done when", as one test: started against a local
//! Redis with `tidings demo` publishing, the app's feeds go live; an
//! approval request pops a critical native notification which, clicked,
//! brings the window to that request; killing and restarting Redis shows
//! reconnecting, then live, and the demo's events flow again without a
//! restart of the app. Run by `scripts/e2e.sh`.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::json;
use tidings_e2e::app::ON_SCREEN;
use tidings_e2e::events::now_ms;
use tidings_e2e::process::OwnedChild;
use tidings_e2e::{DeskApp, Desktop, Launch, Source, locate};
use tidings_notify::sink::SinkOptions;
use tidings_testkit::RedisServer;

/// The demo's first user: it sends them notifications and approvals.
const USER: &str = "u1";
/// Reconnects back off; a few attempts must fit in this.
const RECONNECT: Duration = Duration::from_secs(45);

/// Counts the rows the current screen shows (feed rows only).
const ROW_COUNT: &str = "return document.querySelectorAll('main [data-testid=row]').length;";

/// The item ids of the rows the current screen shows (relative times in a
/// row's text change by themselves; ids do not).
const ROW_IDS: &str = "return Array.from(document.querySelectorAll('main [data-testid=row]')).map((r) => r.dataset.itemId);";

/// `tidings demo` publishing to `redis` at 20 events/s, logging to the
/// test's artifacts.
fn start_demo(redis: &RedisServer, app: &DeskApp) -> anyhow::Result<OwnedChild> {
    let log_path = app.artifacts().join("demo.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new(locate::tidings_cli()?);
    command
        .args(["--redis", &redis.url(), "demo", "--rate", "20", "--seed", "7"])
        .env_remove("TIDINGS_REDIS_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    OwnedChild::spawn("tidings demo", &mut command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn with_the_demo_running_feeds_go_live_a_clicked_approval_is_focused_and_a_redis_restart_recovers()
-> anyhow::Result<()> {
    let desktop = Desktop::start_with(SinkOptions {
        click_when_contains: Some("PAY-WALK-E2E".to_owned()),
        ..SinkOptions::default()
    })?;
    let mut redis = RedisServer::start();
    let launch = Launch::new("walkthrough", Source::Redis { url: redis.url(), user: USER.into() })
        .profile("approver");
    let mut app = DeskApp::launch(&desktop, &launch).await?;
    app.wait_for_connection("live", ON_SCREEN).await?;
    let mut demo = start_demo(&redis, &app)?;

    // Live feeds: the demo's stock moves and orders fill their screens.
    for screen in ["inventory", "orders"] {
        app.show(screen).await?;
        app.wait_until(&format!("demo rows on the {screen} screen"), ON_SCREEN, ROW_COUNT).await?;
        demo.ensure_running()?;
    }
    app.show("overview").await?;
    app.screenshot("live-with-demo").await?;

    // An approval request: critical, resident, and a click focuses it.
    let request = json!({
        "type": "approval:request", "resourceType": "payment", "resourceId": "pay-walk",
        "resourceNumber": "PAY-WALK-E2E", "requesterId": "u2", "requesterName": "李娜",
        "reason": "supplier invoice", "timestamp": now_ms(),
    });
    redis.publish("ws:approvals", &request.to_string());
    let call =
        desktop.wait_for_notification(ON_SCREEN, |call| call.body.contains("PAY-WALK-E2E"))?;
    ensure!(call.urgency == Some(2), "an approval request must be critical: {call:?}");
    ensure!(call.resident == Some(true), "an approval request must stay until dismissed: {call:?}");
    let focused = app.wait_for_focused_row("approvals", "PAY-WALK-E2E").await?;
    ensure!(focused.contains("李娜"), "the focused row must be the request: {focused}");
    app.screenshot("approval-focused").await?;

    // Redis killed and restarted: reconnecting, then live, no app restart.
    app.show("inventory").await?;
    let before = app.eval(ROW_IDS, Vec::new()).await?;
    redis.kill();
    app.wait_for_connection("reconnecting", RECONNECT).await?;
    app.screenshot("reconnecting").await?;
    redis.restart();
    app.wait_for_connection("live", RECONNECT).await?;
    app.wait_until_with(
        "a demo event published after the restart",
        RECONNECT,
        &format!("const ids = (() => {{ {ROW_IDS} }})(); return ids.some((id) => !arguments[0].includes(id));"),
        vec![before],
    )
    .await?;
    demo.ensure_running()?;
    app.screenshot("live-again").await?;
    Ok(())
}
