//! The real app subscribed to Redis directly: what the ERP publishes with
//! `redis-cli PUBLISH` shows up in the right feed, raises the right native
//! notification, survives Redis restarts, and bad input stays in the debug
//! log. Run by `scripts/e2e.sh` (see the crate docs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::ensure;
use tidings_e2e::app::ON_SCREEN;
use tidings_e2e::desktop::mentions;
use tidings_e2e::events::{self, now_ms};
use tidings_e2e::{DeskApp, Desktop, Launch, Source};
use tidings_testkit::{ClusterSetup, RedisServer, eventually};

const USER: &str = "e2e-user";
/// Reconnects back off; a few attempts must fit in this.
const RECONNECT: Duration = Duration::from_secs(45);

fn on_redis(name: &str, redis: &RedisServer) -> Launch {
    Launch::new(name, Source::Redis { url: redis.url(), user: USER.to_owned() })
}

/// Launches the app and waits until it is subscribed.
async fn live_app(desktop: &Desktop, launch: &Launch) -> anyhow::Result<DeskApp> {
    let mut app = DeskApp::launch(desktop, launch).await?;
    app.wait_for_connection("live", ON_SCREEN).await?;
    Ok(app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn every_kind_of_event_published_to_redis_appears_in_its_feed() -> anyhow::Result<()> {
    let desktop = Desktop::start()?;
    let redis = RedisServer::start();
    let mut app = live_app(&desktop, &on_redis("redis-every-kind", &redis)).await?;

    let samples = events::every_kind(USER, now_ms());
    for sample in &samples {
        let receivers = redis.publish(&sample.channel, &sample.payload);
        ensure!(
            receivers >= 1,
            "nobody was subscribed to {} when {} was published",
            sample.channel,
            sample.kind
        );
    }
    app.wait_for_every_sample(&samples).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn on_a_redis_cluster_events_published_on_any_node_appear_in_their_feeds()
-> anyhow::Result<()> {
    let desktop = Desktop::start()?;
    let cluster = tokio::task::spawn_blocking(ClusterSetup::start).await?;
    let source = Source::Redis { url: cluster.url(), user: USER.to_owned() };
    let mut app = live_app(&desktop, &Launch::new("redis-cluster", source)).await?;

    // Each kind through another node: the cluster carries every publish
    // to the node the app listens on.
    let samples = events::every_kind(USER, now_ms());
    let ports = cluster.ports();
    for (i, sample) in samples.iter().enumerate() {
        cluster.publish(ports[i % ports.len()], &sample.channel, &sample.payload);
    }
    app.wait_for_every_sample(&samples).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn an_approval_request_raises_a_critical_resident_native_notification() -> anyhow::Result<()>
{
    let desktop = Desktop::start()?;
    let redis = RedisServer::start();
    let mut app = live_app(&desktop, &on_redis("redis-approval-notification", &redis)).await?;

    let request = events::approval_request("pay-n-1", "PAY-NOTIFY-7");
    redis.publish("ws:approvals", &request);

    let call = desktop.wait_for_notification(ON_SCREEN, |call| mentions(call, "PAY-NOTIFY-7"))?;
    assert_eq!(call.urgency, Some(2), "an approval request must be critical: {call:?}");
    assert_eq!(
        call.resident,
        Some(true),
        "an approval request must stay until dismissed: {call:?}"
    );
    app.wait_for_row("approvals", &["PAY-NOTIFY-7"]).await?;
    app.screenshot("approval-request").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn a_relative_action_url_opens_the_erp_base_url_plus_its_path() -> anyhow::Result<()> {
    let desktop = Desktop::start()?;
    let redis = RedisServer::start();
    let launch =
        on_redis("redis-relative-action-url", &redis).erp_base_url("https://erp.example.test");
    let mut app = live_app(&desktop, &launch).await?;

    let notification = serde_json::json!({
        "type": "notification", "notificationType": "success", "title": "Order approved E2E",
        "message": "SO-42 was approved", "actionUrl": "/sales/orders/42",
        "actionLabel": "Open order E2E", "userId": USER, "timestamp": now_ms(),
    });
    redis.publish(&format!("ws:user:{USER}:notifications"), &notification.to_string());
    app.wait_for_row("mine", &["Order approved E2E"]).await?;
    app.eval(
        "const button = Array.from(document.querySelectorAll('main [data-testid=row] button')).find((b) => b.textContent.includes(arguments[0])); if (!button) throw new Error('no open button'); button.click();",
        vec![serde_json::json!("Open order E2E")],
    )
    .await?;

    let wanted = "https://erp.example.test/sales/orders/42";
    eventually(&format!("the app to open {wanted}"), ON_SCREEN, || {
        app.home().opened().iter().any(|url| url == wanted)
    })
    .await;
    app.screenshot("opened").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn the_open_action_of_an_approval_request_opens_its_erp_page() -> anyhow::Result<()> {
    // The sink presses "open" on the notification, as a user would.
    let desktop = Desktop::start_with(tidings_notify::sink::SinkOptions {
        click_when_contains: Some("PAY-ACTION-9".into()),
        click_action: Some("open".into()),
        ..Default::default()
    })?;
    let redis = RedisServer::start();
    let launch = on_redis("redis-approval-action", &redis).erp_base_url("https://erp.example.test");
    let app = live_app(&desktop, &launch).await?;

    let request = events::approval_request("pay-a-9", "PAY-ACTION-9");
    redis.publish("ws:approvals", &request);

    let call = desktop.wait_for_notification(ON_SCREEN, |call| mentions(call, "PAY-ACTION-9"))?;
    ensure!(call.actions.iter().any(|a| a == "open"), "Open is offered: {call:?}");
    ensure!(call.actions.iter().any(|a| a == "snooze-15"), "snooze is offered: {call:?}");
    ensure!(call.sound_name.as_deref() == Some("message-new-instant"), "it rings: {call:?}");

    let wanted = "https://erp.example.test/approvals/pay-a-9";
    eventually(&format!("the app to open {wanted}"), ON_SCREEN, || {
        app.home().opened().iter().any(|url| url == wanted)
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn a_request_snoozed_from_its_notification_rings_again_when_due_even_after_a_restart()
-> anyhow::Result<()> {
    // The sink presses "Remind me in 15 min", as a user would.
    let desktop = Desktop::start_with(tidings_notify::sink::SinkOptions {
        click_when_contains: Some("PAY-SNOOZE-4".into()),
        click_action: Some("snooze-15".into()),
        ..Default::default()
    })?;
    let redis = RedisServer::start();
    let launch = on_redis("redis-snooze", &redis);
    let app = live_app(&desktop, &launch).await?;

    let request = events::approval_request("pay-s-4", "PAY-SNOOZE-4");
    let before = now_ms();
    redis.publish("ws:approvals", &request);
    let first = desktop.wait_for_notification(ON_SCREEN, |call| mentions(call, "PAY-SNOOZE-4"))?;

    // Snoozing takes the notification off the screen and keeps the
    // reminder on disk, 15 minutes ahead.
    desktop.wait_for_close(ON_SCREEN, first.id)?;
    let (file, snoozes) = wait_for_snoozes(app.home().path()).await;
    ensure!(snoozes.len() == 1, "one snooze kept: {snoozes:?}");
    let (id, until) = snoozes.iter().next().expect("one snooze");
    let quarter = 15 * 60_000;
    ensure!(
        (before + quarter..=now_ms() + quarter).contains(until),
        "the reminder is due 15 minutes after the click, not at {until} (clicked after {before})"
    );

    // Quit, let the clock pass the reminder (the file says it was due a
    // second ago), start again on the same data: it rings once more.
    let home = app.quit().await;
    let due = serde_json::json!({ id.as_str(): now_ms() - 1_000 });
    std::fs::write(&file, due.to_string())?;
    let mut again = DeskApp::launch_in(&desktop, &launch, home).await?;
    again.wait_for_connection("live", ON_SCREEN).await?;
    let reminder = desktop.wait_for_notification(ON_SCREEN, |call| {
        call.id != first.id && mentions(call, "PAY-SNOOZE-4")
    })?;
    ensure!(reminder.urgency == Some(2), "the reminder is as urgent as the request: {reminder:?}");
    ensure!(
        reminder.actions.iter().any(|action| action == "snooze-15"),
        "the reminder can be snoozed again: {reminder:?}"
    );
    Ok(())
}

/// Waits for the app's `snoozes.json` under `home` to hold a snooze;
/// returns its path and what it holds (item id → when, ms).
async fn wait_for_snoozes(home: &Path) -> (PathBuf, BTreeMap<String, i64>) {
    let mut kept = None;
    eventually("a snooze kept on disk", ON_SCREEN, || {
        kept = find_file(home, "snoozes.json").and_then(|file| {
            let bytes = std::fs::read(&file).ok()?;
            let snoozes: BTreeMap<String, i64> = serde_json::from_slice(&bytes).ok()?;
            (!snoozes.is_empty()).then_some((file, snoozes))
        });
        kept.is_some()
    })
    .await;
    kept.expect("eventually returned, so a snooze was found")
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn a_search_finds_a_chinese_product_name_in_history_and_shows_it_in_its_feed()
-> anyhow::Result<()> {
    let desktop = Desktop::start()?;
    let redis = RedisServer::start();
    let mut app = live_app(&desktop, &on_redis("redis-search", &redis)).await?;

    for (product, name) in [("P-E2E-1", "不锈钢保温杯 E2E"), ("P-E2E-2", "玻璃水杯 E2E")]
    {
        let change = serde_json::json!({
            "type": "inventory:change", "action": "inbound", "productId": product,
            "productName": name, "oldQuantity": 1, "newQuantity": 6, "changeAmount": 5,
            "timestamp": now_ms(),
        });
        redis.publish("ws:inventory", &change.to_string());
    }
    app.wait_for_row("inventory", &["玻璃水杯 E2E"]).await?;

    app.show("search").await?;
    app.eval(
        "const box = document.querySelector('[data-testid=search-text]'); box.value = arguments[0]; box.dispatchEvent(new Event('input', { bubbles: true }));",
        vec![serde_json::json!("不锈钢保温")],
    )
    .await?;
    // The history is written by its own thread: a search that answered
    // "nothing" before the item landed is asked again (as a keystroke
    // would), but only once it has answered, or the screen's debounce
    // would never let a search run.
    let found = app
        .wait_until(
            "one search result, the steel cup",
            ON_SCREEN,
            "const rows = Array.from(document.querySelectorAll('[data-testid=search-result]')); \
             if (rows.length > 0) return rows.map((r) => r.textContent); \
             if (document.querySelector('.screen.search')?.dataset.state === 'done') { \
               const box = document.querySelector('[data-testid=search-text]'); \
               box.value = box.value.endsWith(' ') ? box.value.trim() : box.value + ' '; \
               box.dispatchEvent(new Event('input', { bubbles: true })); } \
             return null;",
        )
        .await?;
    let rows: Vec<String> = serde_json::from_value(found)?;
    ensure!(
        rows.len() == 1 && rows[0].contains("不锈钢保温杯 E2E"),
        "the search for 不锈钢保温 found {rows:?}"
    );
    app.screenshot("search").await?;

    app.click("[data-testid=search-result] button").await?;
    app.wait_for_focused_row("inventory", "不锈钢保温杯 E2E").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn after_redis_is_killed_and_restarted_the_status_goes_reconnecting_then_live_and_events_flow()
-> anyhow::Result<()> {
    let desktop = Desktop::start()?;
    let mut redis = RedisServer::start();
    let mut app = live_app(&desktop, &on_redis("redis-restart", &redis)).await?;

    redis.kill();
    app.wait_for_connection("reconnecting", RECONNECT).await?;
    app.screenshot("reconnecting").await?;
    redis.restart();
    app.wait_for_connection("live", RECONNECT).await?;

    let after = serde_json::json!({
        "type": "order:status", "orderType": "purchase", "orderId": "o-after", "orderNumber": "PO-AFTER-RESTART",
        "oldStatus": "draft", "newStatus": "approved", "timestamp": now_ms(),
    });
    redis.publish("ws:orders", &after.to_string());
    app.wait_for_row("orders", &["PO-AFTER-RESTART"]).await?;
    app.screenshot("live-again").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn malformed_and_legacy_messages_reach_the_debug_log_and_not_the_feeds() -> anyhow::Result<()>
{
    let desktop = Desktop::start()?;
    let redis = RedisServer::start();
    let mut app = live_app(&desktop, &on_redis("redis-malformed-legacy", &redis)).await?;

    redis.publish("ws:inventory", "not json MALFORMED-E2E {");
    redis.publish(
        "ws:inventory",
        r#"{"type":"inventory:change","productId":"MISSING-E2E","timestamp":1}"#,
    );
    redis.publish("ws:inventory", r#"{"type":"adjust","productId":"LEGACY-E2E","quantity":10}"#);
    // Published last on the same channel: once it is on screen, the three
    // before it have been through the pipeline.
    let sentinel = serde_json::json!({
        "type": "inventory:change", "productId": "SENTINEL-E2E", "action": "inbound",
        "oldQuantity": 1, "newQuantity": 2, "changeAmount": 1, "timestamp": now_ms(),
    });
    redis.publish("ws:inventory", &sentinel.to_string());
    app.wait_for_row("inventory", &["SENTINEL-E2E"]).await?;

    let inventory = app.row_texts().await?;
    for text in ["MALFORMED-E2E", "MISSING-E2E", "LEGACY-E2E"] {
        ensure!(
            !inventory.iter().any(|row| row.contains(text)),
            "{text} must not be in the inventory feed: {inventory:?}"
        );
    }
    app.wait_for_row("debug", &["[malformed]", "MALFORMED-E2E"]).await?;
    app.wait_for_row("debug", &["[malformed]", "MISSING-E2E"]).await?;
    app.wait_for_row("debug", &["[legacy]", "LEGACY-E2E"]).await?;
    app.screenshot("debug-log").await?;
    Ok(())
}
