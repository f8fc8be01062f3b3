//! The desk through a real gateway on a real redis-server: its feeds fill
//! from the gateway, including the user's own channel (configured, or the
//! token file's user when none is), and a gateway restart shows
//! reconnecting, then live, with events flowing again.

mod common;

use std::sync::Arc;

use common::{Recorded, order, settings, start_with};
use tidings_desk::ipc::{ConnectionState, FeedId, Profile, SourceKind};
use tidings_gateway::{Gateway, GatewayConfig};
use tidings_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

/// A gateway on `listen` until the returned token is cancelled.
async fn gateway_on(
    redis: &RedisServer,
    listen: std::net::SocketAddr,
) -> (std::net::SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let mut config = GatewayConfig::new(listen);
    config.redis_url = redis.url();
    serve(config).await
}

/// `config`'s gateway until the returned token is cancelled.
async fn serve(
    config: GatewayConfig,
) -> (std::net::SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let bound = Gateway::bind(config, shutdown.clone()).await.unwrap();
    let addr = bound.addr;
    bound.live().await;
    let task = tokio::spawn(async move {
        let _ = bound.serving.await;
    });
    (addr, shutdown, task)
}

fn through(redis: &RedisServer, addr: std::net::SocketAddr) -> tidings_desk::ipc::Settings {
    let mut settings = settings(redis, Profile::Warehouse);
    settings.source.kind = SourceKind::Gateway;
    settings.source.url = format!("ws://{addr}/ws");
    settings
}

#[tokio::test]
async fn events_and_the_users_own_notifications_arrive_through_the_gateway() {
    let redis = RedisServer::start();
    let (addr, shutdown, task) = gateway_on(&redis, "127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut app = start_with(through(&redis, addr), dir.path(), Arc::new(Recorded::default()));
    app.live().await;
    redis.publish("ws:orders", &order(1));
    redis.publish(
        "ws:user:u1:notifications",
        r#"{"type":"notification","notificationType":"success","title":"导出完成","message":"orders.xlsx","timestamp":1764000000000}"#,
    );
    let items = app.items(2).await;
    assert_eq!(
        items.iter().map(|i| (i.feed, i.channel.as_str())).collect::<Vec<_>>(),
        [(FeedId::Orders, "orders"), (FeedId::Mine, "user:u1:notifications")]
    );
    app.desk.shutdown().await;
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn with_a_token_file_and_no_user_id_the_tokens_user_gets_their_notifications() {
    const SECRET: &str = "desk-test-secret-0123456789abcdef0123";
    let redis = RedisServer::start();
    let mut config = GatewayConfig::new("127.0.0.1:0".parse().unwrap());
    config.redis_url = redis.url();
    config.jwt_secret = Some(tidings_gateway::Secret::new(SECRET));
    let (addr, shutdown, task) = serve(config).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("erp-token");
    let claims =
        serde_json::json!({"sub": "u5", "exp": jsonwebtoken::get_current_timestamp() + 3600});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    std::fs::write(&token_file, token).unwrap();
    let mut settings = through(&redis, addr);
    settings.source.user_id = None;
    settings.source.token_file = Some(token_file.display().to_string());
    let mut app = start_with(settings, dir.path(), Arc::new(Recorded::default()));
    app.live().await;
    redis.publish(
        "ws:user:u5:notifications",
        r#"{"type":"notification","notificationType":"info","title":"For u5","message":"m","timestamp":1764000000000}"#,
    );
    let items = app.items(1).await;
    assert_eq!(items[0].feed, FeedId::Mine);
    assert_eq!(items[0].channel, "user:u5:notifications");
    app.desk.shutdown().await;
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_gateway_restart_shows_reconnecting_then_live_and_events_flow_again() {
    let redis = RedisServer::start();
    let (addr, shutdown, task) = gateway_on(&redis, "127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut app = start_with(through(&redis, addr), dir.path(), Arc::new(Recorded::default()));
    app.live().await;
    shutdown.cancel();
    task.await.unwrap();
    loop {
        let batch = app.batch().await;
        if batch
            .status
            .is_some_and(|s| matches!(s.connection, ConnectionState::Reconnecting { .. }))
        {
            break;
        }
    }
    let (_, again, again_task) = gateway_on(&redis, addr).await;
    app.live().await;
    redis.publish("ws:orders", &order(7));
    let items = app.items(1).await;
    assert_eq!(items[0].feed, FeedId::Orders);
    app.desk.shutdown().await;
    again.cancel();
    again_task.await.unwrap();
}
