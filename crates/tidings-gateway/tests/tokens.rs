//! Tokens on live connections and the rules a token must meet
//! (docs/gateway.md, "Authentication"): a `refresh` keeps a connection past
//! its first token's expiry; a refresh for another user, or a bad one,
//! changes nothing; one whose `channels` claim leaves out a subscription
//! ends it; `aud` / `iss` and the longest token lifetime are enforced when
//! configured; and the desktop's gateway client keeps its connection with a
//! token file a sign-in helper keeps fresh, subscribes to its token user's
//! notifications, and reports an expired token instead of looping quietly.

mod common;

use std::time::Duration;

use common::{Client, SECRET, TestGateway, config, inventory_event, secured_config, sign};
use serde_json::json;
use tidings::{
    Backoff, GatewaySourceConfig, GatewayToken, SourceHandle, SourceState, SourceUpdate,
    spawn_gateway_source,
};
use tidings_events::Channel;
use tidings_testkit::RedisServer;
use tokio_tungstenite::tungstenite;
use tokio_util::sync::CancellationToken;

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The gateway's clock leeway on `exp`, in seconds (docs/gateway.md).
const LEEWAY: u64 = 5;

/// The refusal of an upgrade: HTTP status and JSON body (panics if accepted).
async fn refusal(url: &str, token: &str) -> (u16, serde_json::Value) {
    match Client::connect(url, Some(token)).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            (response.status().as_u16(), serde_json::from_slice(body).unwrap_or_default())
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_refresh_keeps_the_connection_open_past_its_first_tokens_expiry() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let first_exp = now() + 1;
    let token = sign(&json!({"sub": "u1", "exp": first_exp}), SECRET);
    let mut client = Client::connect(&gateway.ws_url(), Some(&token)).await.unwrap();
    client.subscribe(&["inventory"]).await;

    let fresh_exp = now() + 3600;
    let fresh = sign(&json!({"sub": "u1", "exp": fresh_exp}), SECRET);
    client.send_json(json!({"type": "refresh", "token": fresh})).await;
    let refreshed = client.next_of("refreshed").await;
    assert_eq!(refreshed, json!({"type": "refreshed", "exp": fresh_exp}));

    // Nothing to await but time: the first token's end must pass unnoticed.
    let first_end = std::time::UNIX_EPOCH + Duration::from_secs(first_exp + LEEWAY + 1);
    tokio::time::sleep(first_end.duration_since(std::time::SystemTime::now()).unwrap_or_default())
        .await;
    redis.publish("ws:inventory", &inventory_event(1));
    assert_eq!(client.next_event().await["data"]["productId"], "p1", "still subscribed");
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"tidings_gateway_token_refreshes_total{outcome="accepted"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_refresh_for_another_user_is_refused_and_the_first_expiry_stands() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let token = sign(&json!({"sub": "u1", "exp": now() + 1}), SECRET);
    let mut client = Client::connect(&gateway.ws_url(), Some(&token)).await.unwrap();
    client.subscribe(&["inventory"]).await;

    let other = sign(&json!({"sub": "u2", "exp": now() + 3600}), SECRET);
    client.send_json(json!({"type": "refresh", "token": other})).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "unauthorized", "{error}");
    assert!(error["message"].as_str().unwrap().contains("own user (u1)"), "{error}");

    let closed = client.close_frame_within(Duration::from_secs(LEEWAY + 8)).await;
    assert_eq!(u16::from(closed.code), 4001, "{closed:?}");
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"tidings_gateway_token_refreshes_total{outcome="refused"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_badly_signed_refresh_is_refused_and_the_connection_goes_on() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let mut client = gateway.client_as("u1").await;
    client.subscribe(&["inventory"]).await;

    let forged =
        sign(&json!({"sub": "u1", "exp": now() + 3600}), "another-secret-another-secret-1234");
    client.send_json(json!({"type": "refresh", "token": forged})).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "unauthorized", "{error}");
    assert!(error["message"].as_str().unwrap().contains("signed"), "{error}");
    redis.publish("ws:inventory", &inventory_event(1));
    assert_eq!(client.next_event().await["data"]["productId"], "p1");
}

#[tokio::test]
async fn a_refresh_in_open_mode_is_refused() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.client().await;
    client.send_json(json!({"type": "refresh", "token": "a.b.c"})).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "unauthorized", "{error}");
    assert!(error["message"].as_str().unwrap().contains("open mode"), "{error}");
}

#[tokio::test]
async fn a_refresh_whose_channels_claim_leaves_out_a_subscription_ends_it() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let mut client = gateway.client_as("u1").await;
    client.subscribe(&["inventory", "orders"]).await;

    let narrower = sign(&json!({"sub": "u1", "exp": now() + 3600, "channels": ["orders"]}), SECRET);
    client.send_json(json!({"type": "refresh", "token": narrower})).await;
    let unsubscribed = client.next_of("unsubscribed").await;
    assert_eq!(unsubscribed["channels"], json!(["inventory"]));
    let refreshed = client.next_of("refreshed").await;
    assert_eq!(refreshed["dropped"], json!(["inventory"]), "{refreshed}");

    redis.publish("ws:inventory", &inventory_event(1));
    let order = r#"{"type":"test:order","n":1}"#;
    redis.publish("ws:orders", order);
    let event = client.next_event().await;
    assert_eq!(event["channel"], "orders", "inventory is no longer delivered: {event}");
}

#[tokio::test]
async fn audience_and_issuer_are_required_when_configured() {
    let redis = RedisServer::start();
    let mut config = secured_config(&redis.url());
    config.jwt_audience = Some("tidings".into());
    config.jwt_issuer = Some("https://erp.example".into());
    let gateway = TestGateway::start(config).await;
    let exp = now() + 3600;

    let right = sign(
        &json!({"sub": "u1", "exp": exp, "aud": "tidings", "iss": "https://erp.example"}),
        SECRET,
    );
    assert!(Client::connect(&gateway.ws_url(), Some(&right)).await.is_ok());
    for (claims, expected) in [
        (json!({"sub": "u1", "exp": exp, "iss": "https://erp.example"}), "aud"),
        (json!({"sub": "u1", "exp": exp, "aud": "other", "iss": "https://erp.example"}), "aud"),
        (json!({"sub": "u1", "exp": exp, "aud": "tidings"}), "iss"),
        (json!({"sub": "u1", "exp": exp, "aud": "tidings", "iss": "https://evil.example"}), "iss"),
    ] {
        let (status, body) = refusal(&gateway.ws_url(), &sign(&claims, SECRET)).await;
        assert_eq!(status, 401, "{claims}");
        assert!(body["message"].as_str().unwrap().contains(expected), "{claims}: {body}");
    }
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"tidings_gateway_auth_failures_total{reason="bad_audience"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_token_living_longer_than_the_maximum_is_refused() {
    let redis = RedisServer::start();
    let mut config = secured_config(&redis.url());
    config.max_token_lifetime = Some(Duration::from_secs(3600));
    let gateway = TestGateway::start(config).await;

    let short = sign(&json!({"sub": "u1", "iat": now(), "exp": now() + 600}), SECRET);
    assert!(Client::connect(&gateway.ws_url(), Some(&short)).await.is_ok());
    for claims in [
        json!({"sub": "u1", "iat": now(), "exp": now() + 7200}),
        // Without `iat`, the lifetime left counts.
        json!({"sub": "u1", "exp": now() + 7200}),
        // An `iat` in the future does not shorten it.
        json!({"sub": "u1", "iat": now() + 7000, "exp": now() + 7200}),
    ] {
        let (status, body) = refusal(&gateway.ws_url(), &sign(&claims, SECRET)).await;
        assert_eq!(status, 401, "{claims}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("--max-token-lifetime"), "{claims}: {body}");
    }
}

#[tokio::test]
async fn the_desktop_client_reports_an_expired_token_as_offline() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let token = sign(&json!({"sub": "u1", "exp": now() + 1}), SECRET);
    let config = GatewaySourceConfig {
        backoff: Backoff { initial: Duration::from_millis(50), max: Duration::from_secs(30) },
        ..GatewaySourceConfig::new(gateway.ws_url(), Some(token.into()), vec![Channel::Inventory])
    };
    let mut source = spawn_gateway_source(config, CancellationToken::new(), 16);
    let reason = tokio::time::timeout(Duration::from_secs(LEEWAY + 10), async {
        loop {
            match source.updates.recv().await.expect("running") {
                SourceUpdate::State(SourceState::Offline { reason }) => return reason,
                SourceUpdate::State(SourceState::Reconnecting { reason, .. }) => {
                    panic!("an expired token is not retried quietly: {reason}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("offline once the token expired");
    assert!(reason.contains("token expired") && reason.contains("fresh token"), "{reason}");
}

/// Writes `token` to `path` as a sign-in helper would: a new file renamed
/// over the old one, so the reader never sees half a token.
fn write_token_file(path: &std::path::Path, token: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, token).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// The desktop's gateway client on `inventory` with a token file, retrying
/// a refusal every 300 ms.
fn desktop_client_with_token_file(url: String, path: &std::path::Path) -> SourceHandle {
    let config = GatewaySourceConfig {
        backoff: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(300) },
        ..GatewaySourceConfig::new(
            url,
            Some(GatewayToken::File(path.to_owned())),
            vec![Channel::Inventory],
        )
    };
    spawn_gateway_source(config, CancellationToken::new(), 16)
}

/// The next update that is not an event, within `within`.
async fn next_state(source: &mut SourceHandle, within: Duration) -> SourceState {
    tokio::time::timeout(within, async {
        loop {
            if let SourceUpdate::State(state) = source.updates.recv().await.expect("running") {
                return state;
            }
        }
    })
    .await
    .expect("a state change")
}

#[tokio::test]
async fn the_desktop_client_sends_its_token_files_fresh_token_and_keeps_its_connection() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let first_exp = now() + 1;
    write_token_file(&path, &sign(&json!({"sub": "u1", "exp": first_exp}), SECRET));
    let mut source = desktop_client_with_token_file(gateway.ws_url(), &path);
    assert_eq!(next_state(&mut source, Duration::from_secs(5)).await, SourceState::Connecting);
    assert_eq!(next_state(&mut source, Duration::from_secs(5)).await, SourceState::Live);

    write_token_file(&path, &sign(&json!({"sub": "u1", "exp": now() + 3600}), SECRET));
    let accepted = r#"tidings_gateway_token_refreshes_total{outcome="accepted"} 1"#;
    let gateway = &gateway;
    tidings_testkit::retry(
        "the file's fresh token sent and taken",
        Duration::from_secs(5),
        || async move { gateway.metrics().await.contains(accepted).then_some(()) },
    )
    .await;

    // Nothing to await but time: the first token's end must pass unnoticed.
    let first_end = std::time::UNIX_EPOCH + Duration::from_secs(first_exp + LEEWAY + 1);
    tokio::time::sleep(first_end.duration_since(std::time::SystemTime::now()).unwrap_or_default())
        .await;
    redis.publish("ws:inventory", &inventory_event(1));
    let update = tokio::time::timeout(Duration::from_secs(5), source.updates.recv())
        .await
        .expect("an update")
        .expect("running");
    let SourceUpdate::Message(message) = update else {
        panic!("the same connection goes on, with no state change: {update:?}")
    };
    assert!(String::from_utf8_lossy(&message.payload).contains("\"p1\""), "{message:?}");
}

#[tokio::test]
async fn the_desktop_client_reports_an_expired_token_file_and_reconnects_once_it_is_fresh() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    write_token_file(&path, &sign(&json!({"sub": "u1", "exp": now() + 1}), SECRET));
    let mut source = desktop_client_with_token_file(gateway.ws_url(), &path);
    assert_eq!(next_state(&mut source, Duration::from_secs(5)).await, SourceState::Connecting);
    assert_eq!(next_state(&mut source, Duration::from_secs(5)).await, SourceState::Live);

    let state = next_state(&mut source, Duration::from_secs(LEEWAY + 10)).await;
    let SourceState::Offline { reason } = state else { panic!("offline, not {state:?}") };
    assert!(reason.contains("expired") && reason.contains(&path.display().to_string()), "{reason}");

    write_token_file(&path, &sign(&json!({"sub": "u1", "exp": now() + 3600}), SECRET));
    loop {
        match next_state(&mut source, Duration::from_secs(10)).await {
            SourceState::Live => break,
            SourceState::Offline { .. } | SourceState::Reconnecting { .. } => {}
            SourceState::Connecting => panic!("Connecting comes only once, at the start"),
        }
    }
    redis.publish("ws:inventory", &inventory_event(2));
    loop {
        let update = tokio::time::timeout(Duration::from_secs(5), source.updates.recv())
            .await
            .expect("the event")
            .expect("running");
        if let SourceUpdate::Message(message) = update {
            assert!(String::from_utf8_lossy(&message.payload).contains("\"p2\""));
            break;
        }
    }
}

#[tokio::test]
async fn the_desktop_client_subscribes_to_the_notifications_of_its_tokens_user() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let token = sign(&json!({"sub": "u7", "exp": now() + 3600}), SECRET);
    let config = GatewaySourceConfig {
        own_notifications: true,
        ..GatewaySourceConfig::new(gateway.ws_url(), Some(token.into()), vec![Channel::Inventory])
    };
    let mut source = spawn_gateway_source(config, CancellationToken::new(), 16);
    assert_eq!(next_state(&mut source, Duration::from_secs(5)).await, SourceState::Connecting);
    assert_eq!(next_state(&mut source, Duration::from_secs(5)).await, SourceState::Live);
    let notification = r#"{"type":"notification","notificationType":"info","title":"For u7","message":"m","userId":"u7","timestamp":1}"#;
    redis.publish("ws:user:u7:notifications", notification);
    let update = tokio::time::timeout(Duration::from_secs(5), source.updates.recv())
        .await
        .expect("the notification")
        .expect("running");
    let SourceUpdate::Message(message) = update else { panic!("{update:?}") };
    assert_eq!(message.channel, "ws:user:u7:notifications");
}
