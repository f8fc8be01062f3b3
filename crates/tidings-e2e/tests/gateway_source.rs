//! The real app connected through the real gateway (JWT auth on): events
//! published to Redis with `redis-cli PUBLISH` reach the app's feeds over
//! WebSocket, and a killed and restarted gateway is reconnected to. Run by
//! `scripts/e2e.sh` (see the crate docs).

use std::time::Duration;

use anyhow::ensure;
use tidings_e2e::app::ON_SCREEN;
use tidings_e2e::events::{self, now_ms};
use tidings_e2e::{DeskApp, Desktop, Gateway, Launch, Source, locate};
use tidings_testkit::RedisServer;

const USER: &str = "e2e-gateway-user";
/// Reconnects back off; a few attempts must fit in this.
const RECONNECT: Duration = Duration::from_secs(45);

/// Redis, a gateway in front of it, and the app on a desktop.
async fn through_gateway(name: &str) -> anyhow::Result<(Desktop, RedisServer, Gateway, DeskApp)> {
    let desktop = Desktop::start()?;
    let redis = RedisServer::start();
    let artifacts = locate::artifacts_dir(&format!("{name}-gateway"))?;
    let gateway =
        Gateway::start(&locate::gateway()?, &redis.url(), &artifacts.join("gateway.log"))?;
    let launch = Launch::new(
        name,
        Source::Gateway { url: gateway.ws_url(), token: gateway.token_for(USER) },
    );
    let mut app = DeskApp::launch(&desktop, &launch).await?;
    app.wait_for_connection("live", ON_SCREEN).await?;
    Ok((desktop, redis, gateway, app))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn every_kind_of_event_published_to_redis_reaches_its_feed_through_the_gateway()
-> anyhow::Result<()> {
    let (_desktop, redis, _gateway, mut app) = through_gateway("gateway-every-kind").await?;

    let samples = events::every_kind(USER, now_ms());
    for sample in &samples {
        let receivers = redis.publish(&sample.channel, &sample.payload);
        ensure!(receivers >= 1, "the gateway was not subscribed to {}", sample.channel);
    }
    app.wait_for_every_sample(&samples).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the app built with custom-protocol; run scripts/e2e.sh"]
async fn after_the_gateway_is_killed_and_restarted_the_status_goes_reconnecting_then_live_and_events_flow()
-> anyhow::Result<()> {
    let (_desktop, redis, mut gateway, mut app) = through_gateway("gateway-restart").await?;

    gateway.kill();
    app.wait_for_connection("reconnecting", RECONNECT).await?;
    app.screenshot("reconnecting").await?;
    gateway.restart()?;
    app.wait_for_connection("live", RECONNECT).await?;

    let after = serde_json::json!({
        "type": "broadcast", "message": "Back after the gateway restart E2E", "timestamp": now_ms(),
    });
    redis.publish("ws:broadcast", &after.to_string());
    app.wait_for_row("broadcast", &["Back after the gateway restart E2E"]).await?;
    app.screenshot("live-again").await?;
    Ok(())
}
