//! The Redis source against a real redis-server: what `redis-cli PUBLISH`
//! sends arrives and decodes, states are reported in order, a Redis restart
//! is survived, bad configuration is reported, and the task ends when asked.

use std::time::Duration;

use tidings::source::{
    Backoff, RedisSourceConfig, SourceHandle, SourceMessage, SourceState, SourceUpdate,
    Subscription, spawn_redis_source,
};
use tidings_events::{Channel, Decoded};
use tidings_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

const EXAMPLE: &str = r#"{"type":"inventory:change","productId":"123","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#;

fn quick_backoff() -> Backoff {
    Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) }
}

fn config(url: String, subscriptions: Vec<Subscription>) -> RedisSourceConfig {
    RedisSourceConfig { subscriptions, backoff: quick_backoff(), ..RedisSourceConfig::new(url) }
}

async fn next(handle: &mut SourceHandle) -> SourceUpdate {
    tokio::time::timeout(WAIT, handle.updates.recv())
        .await
        .expect("an update within 5 s")
        .expect("the source is still running")
}

async fn next_state(handle: &mut SourceHandle) -> SourceState {
    match next(handle).await {
        SourceUpdate::State(state) => state,
        other => panic!("expected a state, got {other:?}"),
    }
}

async fn next_message(handle: &mut SourceHandle) -> SourceMessage {
    match next(handle).await {
        SourceUpdate::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Starts a source on everything and waits until it is live.
async fn live_source(server: &RedisServer, cancel: &CancellationToken) -> SourceHandle {
    let mut handle =
        spawn_redis_source(config(server.url(), vec![Subscription::all()]), cancel.clone(), 64);
    assert_eq!(next_state(&mut handle).await, SourceState::Connecting);
    assert_eq!(next_state(&mut handle).await, SourceState::Live);
    handle
}

#[tokio::test]
async fn a_redis_cli_publish_of_the_protocol_example_arrives_and_decodes_as_typed() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut source = live_source(&server, &cancel).await;

    assert_eq!(server.publish("ws:inventory", EXAMPLE), 1);

    let message = next_message(&mut source).await;
    assert_eq!(message.channel, "ws:inventory");
    assert_eq!(&message.payload[..], EXAMPLE.as_bytes());
    assert_eq!(message.logical_channel(), Some(Channel::Inventory));
    assert!(message.received_at > 1_700_000_000_000);
    assert!(matches!(tidings_events::decode(&message.payload), Decoded::Typed { .. }));
}

#[tokio::test]
async fn malformed_payloads_are_delivered_as_received_for_the_consumer_to_judge() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut source = live_source(&server, &cancel).await;

    server.publish("ws:inventory", "not json");
    server.publish("ws:orders", EXAMPLE);

    let first = next_message(&mut source).await;
    assert_eq!((first.channel.as_str(), &first.payload[..]), ("ws:inventory", &b"not json"[..]));
    assert_eq!(next_message(&mut source).await.channel, "ws:orders");
}

#[tokio::test]
async fn a_channel_subscription_receives_that_channel_only() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let subscriptions = vec![Subscription::Channel(Channel::Orders)];
    let mut source = spawn_redis_source(config(server.url(), subscriptions), cancel.clone(), 8);
    assert_eq!(next_state(&mut source).await, SourceState::Connecting);
    assert_eq!(next_state(&mut source).await, SourceState::Live);

    assert_eq!(server.publish("ws:inventory", EXAMPLE), 0);
    assert_eq!(server.publish("ws:orders", "{}"), 1);

    assert_eq!(next_message(&mut source).await.channel, "ws:orders");
}

#[tokio::test]
async fn a_redis_restart_is_reported_as_reconnecting_then_live_and_later_messages_arrive() {
    let mut server = RedisServer::start();
    let cancel = CancellationToken::new();
    let mut source = live_source(&server, &cancel).await;

    server.kill();
    let SourceState::Reconnecting { attempt, reason, .. } = next_state(&mut source).await else {
        panic!("expected Reconnecting")
    };
    assert_eq!(attempt, 1);
    assert!(reason.contains("lost Redis"), "{reason}");
    server.restart();

    // Possibly more failed attempts before the server is back, then Live.
    loop {
        match next_state(&mut source).await {
            SourceState::Live => break,
            SourceState::Reconnecting { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(server.publish("ws:inventory", EXAMPLE), 1);
    assert_eq!(&next_message(&mut source).await.payload[..], EXAMPLE.as_bytes());
}

#[tokio::test]
async fn a_source_started_before_redis_keeps_trying_until_it_is_there() {
    let mut server = RedisServer::start();
    server.kill();
    let cancel = CancellationToken::new();
    let mut source =
        spawn_redis_source(config(server.url(), vec![Subscription::all()]), cancel.clone(), 8);
    assert_eq!(next_state(&mut source).await, SourceState::Connecting);
    let SourceState::Reconnecting { attempt: 1, retry_in, reason } = next_state(&mut source).await
    else {
        panic!("expected the first Reconnecting")
    };
    assert!(retry_in <= quick_backoff().initial);
    assert!(reason.contains("cannot reach Redis"), "{reason}");

    server.restart();
    loop {
        match next_state(&mut source).await {
            SourceState::Live => break,
            SourceState::Reconnecting { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_wrong_password_is_reported_offline_without_revealing_it() {
    let server = RedisServer::start_with_password(Some("right"));
    let cancel = CancellationToken::new();
    let url = format!("redis://:wrong@127.0.0.1:{}", server.port());
    let mut source = spawn_redis_source(config(url, vec![Subscription::all()]), cancel.clone(), 8);
    assert_eq!(next_state(&mut source).await, SourceState::Connecting);

    let SourceState::Offline { reason } = next_state(&mut source).await else {
        panic!("expected Offline")
    };
    assert!(reason.contains("refused the credentials"), "{reason}");
    assert!(!reason.contains("wrong@"), "{reason}");
}

#[tokio::test]
async fn the_right_password_subscribes() {
    let server = RedisServer::start_with_password(Some("right"));
    let cancel = CancellationToken::new();
    let mut source = live_source(&server, &cancel).await;

    server.publish("ws:broadcast", "{}");

    assert_eq!(next_message(&mut source).await.channel, "ws:broadcast");
}

#[tokio::test]
async fn an_unusable_url_is_reported_offline_and_the_source_ends() {
    let cancel = CancellationToken::new();
    let mut source = spawn_redis_source(
        config("http://127.0.0.1:1".into(), vec![Subscription::all()]),
        cancel.clone(),
        8,
    );

    let SourceState::Offline { reason } = next_state(&mut source).await else {
        panic!("expected Offline")
    };
    assert!(reason.contains("not usable"), "{reason}");
    assert!(source.updates.recv().await.is_none(), "the source should have ended");
}

#[tokio::test]
async fn cancelling_ends_the_source() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let source = live_source(&server, &cancel).await;

    cancel.cancel();

    tokio::time::timeout(WAIT, source.finished()).await.expect("ends promptly");
}

#[tokio::test]
async fn dropping_the_updates_ends_the_source() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    let SourceHandle { updates, task } = live_source(&server, &cancel).await;

    drop(updates);
    server.publish("ws:inventory", "{}");

    tokio::time::timeout(WAIT, task.wait()).await.expect("ends once it notices");
}

#[tokio::test]
async fn a_consumer_that_reads_late_still_gets_every_message_in_order() {
    let server = RedisServer::start();
    let cancel = CancellationToken::new();
    // Capacity 4: the source must stop reading and let Redis hold the rest.
    let mut source =
        spawn_redis_source(config(server.url(), vec![Subscription::all()]), cancel.clone(), 4);
    assert_eq!(next_state(&mut source).await, SourceState::Connecting);
    assert_eq!(next_state(&mut source).await, SourceState::Live);

    let script: String = (0..500).map(|n| format!("PUBLISH ws:inventory message-{n}\n")).collect();
    let published = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s' '{script}' | redis-cli -p {} > /dev/null", server.port()))
        .status()
        .unwrap();
    assert!(published.success());

    for n in 0..500 {
        let message = next_message(&mut source).await;
        assert_eq!(message.payload, format!("message-{n}"), "message {n}");
    }
}
