//! The auth matrix of protocol.md §2 / issue 4: a user reaches their own
//! notifications and no other user's; the `channels` claim narrows the
//! rest; a missing, expired, badly signed or `alg: none` token, or any
//! other algorithm, is refused with HTTP 401 at the upgrade. Plus the
//! Origin allowlist (403), and a secret under 32 bytes stopping the gateway
//! at start.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Client, SECRET, TestGateway, config, secured_config, sign, token_for};
use serde_json::json;
use tidings_gateway::{Gateway, Secret};
use tidings_testkit::RedisServer;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

fn in_an_hour() -> u64 {
    jsonwebtoken::get_current_timestamp() + 3600
}

/// The HTTP status the upgrade was refused with (panics if it was accepted).
async fn refusal_status(url: &str, token: Option<&str>) -> u16 {
    match Client::connect(url, token).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_user_subscribes_to_their_own_notifications_and_receives_them() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let mut client = gateway.client_as("u1").await;
    client.subscribe(&["user:u1:notifications", "inventory"]).await;

    let notification = r#"{"type":"notification","notificationType":"info","title":"For u1","message":"m","userId":"u1","timestamp":1}"#;
    redis.publish("ws:user:u1:notifications", notification);
    let event = client.next_event().await;
    assert_eq!(event["channel"], "user:u1:notifications");
    assert_eq!(event["data"]["title"], "For u1");
}

#[tokio::test]
async fn another_users_channel_is_forbidden_by_name_and_never_delivered() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let mut client = gateway.client_as("u1").await;

    client
        .send_json(json!({"type":"subscribe","channels":["user:u2:notifications","inventory"]}))
        .await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "forbidden");
    assert_eq!(error["channel"], "user:u2:notifications");
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["channels"], json!(["inventory"]));

    let notification = r#"{"type":"notification","notificationType":"info","title":"For u2","message":"m","timestamp":1}"#;
    redis.publish("ws:user:u2:notifications", notification);
    redis.publish("ws:inventory", &common::inventory_event(1));
    let event = client.next_event().await;
    assert_eq!(event["channel"], "inventory", "u2's notification must not arrive: {event}");
}

#[tokio::test]
async fn the_channels_claim_narrows_the_shared_channels() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let token = sign(&json!({"sub":"u1","exp":in_an_hour(),"channels":["orders"]}), SECRET);
    let mut client = Client::connect(&gateway.ws_url(), Some(&token)).await.unwrap();

    client
        .send_json(
            json!({"type":"subscribe","channels":["orders","inventory","user:u1:notifications"]}),
        )
        .await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "forbidden");
    assert_eq!(error["channel"], "inventory");
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["channels"], json!(["orders", "user:u1:notifications"]));
}

#[tokio::test]
async fn the_token_may_come_in_the_query_string() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let url = format!("{}?token={}", gateway.ws_url(), token_for("u1"));
    let mut client = Client::connect(&url, None).await.expect("accepted with ?token=");
    client.subscribe(&["user:u1:notifications"]).await;
}

#[tokio::test]
async fn a_missing_token_is_refused_with_401() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    assert_eq!(refusal_status(&gateway.ws_url(), None).await, 401);
}

#[tokio::test]
async fn an_expired_token_is_refused_with_401() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let expired =
        sign(&json!({"sub":"u1","exp":jsonwebtoken::get_current_timestamp() - 600}), SECRET);
    assert_eq!(refusal_status(&gateway.ws_url(), Some(&expired)).await, 401);
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused_with_401() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let forged = sign(&json!({"sub":"u1","exp":in_an_hour()}), "not-the-secret");
    assert_eq!(refusal_status(&gateway.ws_url(), Some(&forged)).await, 401);
}

#[tokio::test]
async fn an_alg_none_token_is_refused_with_401() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(json!({"sub":"u1","exp":in_an_hour()}).to_string());
    for unsigned in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
        assert_eq!(refusal_status(&gateway.ws_url(), Some(&unsigned)).await, 401, "{unsigned}");
    }
}

#[tokio::test]
async fn a_token_with_another_hmac_algorithm_is_refused_with_401() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &json!({"sub":"u1","exp":in_an_hour()}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(refusal_status(&gateway.ws_url(), Some(&hs512)).await, 401);
}

#[tokio::test]
async fn refusals_are_counted_by_reason_in_metrics() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    refusal_status(&gateway.ws_url(), None).await;
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(r#"tidings_gateway_auth_failures_total{reason="missing"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_origin_outside_the_allowlist_is_refused_with_403() {
    let redis = RedisServer::start();
    let mut config = secured_config(&redis.url());
    config.allowed_origins = vec!["https://erp.example".into()];
    let gateway = TestGateway::start(config).await;

    let connect = |origin: &'static str| {
        let mut request = gateway.ws_url().into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert("origin", origin.parse().unwrap());
        headers.insert("authorization", format!("Bearer {}", token_for("u1")).parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    assert!(connect("https://erp.example").await.is_ok());
    match connect("https://evil.example").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn open_mode_refuses_a_page_from_another_site_and_admits_this_machine_and_non_browsers() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let connect = |origin: Option<&'static str>| {
        let mut request = gateway.ws_url().into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    match connect(Some("https://evil.example")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert!(connect(Some("http://localhost:5173")).await.is_ok(), "a dev server on this machine");
    assert!(connect(None).await.is_ok(), "the desktop app and tools send no Origin");
}

#[tokio::test]
async fn a_connection_is_closed_when_its_token_expires() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let exp = jsonwebtoken::get_current_timestamp() + 1;
    let token = sign(&json!({"sub": "u1", "exp": exp}), SECRET);
    let mut client = Client::connect(&gateway.ws_url(), Some(&token)).await.unwrap();
    client.subscribe(&["inventory"]).await;
    redis.publish("ws:inventory", &common::inventory_event(1));
    assert_eq!(client.next_event().await["data"]["productId"], "p1", "live until it expires");
    // exp + the 5 s leeway: the close comes within the next 6 s or so, and
    // not before (a connection is never cut while its token is good).
    let close = client.close_frame_within(std::time::Duration::from_secs(12)).await;
    let closed_at = std::time::SystemTime::now();
    let earliest = std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp + 5);
    assert!(closed_at >= earliest, "closed {:?} early", earliest.duration_since(closed_at));
    assert_eq!(u16::from(close.code), 4001, "{close:?}");
    assert!(close.reason.contains("token expired"), "{close:?}");
    assert!(gateway.metrics().await.contains(r#"reason="expired_while_connected"} 1"#));
}

#[tokio::test]
async fn a_jwt_secret_shorter_than_32_bytes_stops_the_gateway_at_start() {
    let mut config = config("redis://127.0.0.1:1");
    config.jwt_secret = Some(Secret::new("0123456789abcdef0123456789abcde"));
    let error = Gateway::bind(config, CancellationToken::new()).await.unwrap_err().to_string();
    assert!(error.contains("31 bytes") && error.contains("at least 32"), "{error}");
    assert!(error.contains("openssl rand -hex 32"), "says what to do: {error}");
}
