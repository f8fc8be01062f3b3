//! The app as a desktop citizen: a click on its native notification brings
//! the window to the clicked item (its screen shown, the row highlighted),
//! and a broken config file is explained in the window instead of crashing
//! the app. Run by `scripts/e2e.sh`.

use anyhow::ensure;
use tidings_e2e::app::ON_SCREEN;
use tidings_e2e::events::now_ms;
use tidings_e2e::{DeskApp, Desktop, Launch, Source};
use tidings_notify::sink::SinkOptions;
use tidings_testkit::RedisServer;

const USER: &str = "e2e-desk-user";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn clicking_an_approval_notification_shows_the_approvals_screen() -> anyhow::Result<()> {
    // The sink plays a user clicking any notification about this request.
    let desktop = Desktop::start_with(SinkOptions {
        click_when_contains: Some("PAY-CLICK-E2E".to_owned()),
        ..SinkOptions::default()
    })?;
    let redis = RedisServer::start();
    let launch =
        Launch::new("click-focuses-item", Source::Redis { url: redis.url(), user: USER.into() });
    let mut app = DeskApp::launch(&desktop, &launch).await?;
    app.wait_for_connection("live", ON_SCREEN).await?;
    app.show("overview").await?;

    let request = serde_json::json!({
        "type": "approval:request", "resourceType": "payment", "resourceId": "pay-click",
        "resourceNumber": "PAY-CLICK-E2E", "requesterId": "u-req", "requesterName": "Rita Requester",
        "timestamp": now_ms(),
    });
    redis.publish("ws:approvals", &request.to_string());
    let call =
        desktop.wait_for_notification(ON_SCREEN, |call| call.body.contains("PAY-CLICK-E2E"))?;
    ensure!(
        call.actions.iter().any(|action| action == "default"),
        "no default action to click: {call:?}"
    );

    app.wait_for_focused_row("approvals", "PAY-CLICK-E2E").await?;
    app.screenshot("focused").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn an_invalid_config_file_is_explained_in_the_window() -> anyhow::Result<()> {
    let desktop = Desktop::start()?;
    let redis = RedisServer::start();
    let launch =
        Launch::new("invalid-config", Source::Redis { url: redis.url(), user: USER.into() })
            .config("this is [not valid toml\n");
    let mut app = DeskApp::launch(&desktop, &launch).await?;

    let banner = app
        .wait_until(
            "the config error banner",
            ON_SCREEN,
            "const alert = Array.from(document.querySelectorAll('[role=alert]')).find((a) => a.textContent.includes('configuration')); return alert ? alert.textContent : null;",
        )
        .await?;
    app.screenshot("config-error").await?;
    ensure!(
        banner.as_str().is_some_and(|text| text.contains("tidings-desk.toml")),
        "the banner must say which file is wrong: {banner}"
    );
    Ok(())
}
