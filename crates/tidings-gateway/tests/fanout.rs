//! Fan-out across processes and clients: two gateways on one Redis each
//! deliver every event exactly once to their own clients, and the project's
//! own gateway client (`tidings::source::spawn_gateway_source`) works
//! against the real gateway, token and all.

mod common;

use std::time::Duration;

use common::{Publisher, TestGateway, WAIT, config, inventory_event, secured_config, token_for};
use tidings::source::{
    Backoff, GatewaySourceConfig, SourceHandle, SourceState, SourceUpdate, spawn_gateway_source,
};
use tidings_events::Channel;
use tidings_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn two_gateways_on_one_redis_each_deliver_every_event_once() {
    let redis = RedisServer::start();
    let first = TestGateway::start(config(&redis.url())).await;
    let second = TestGateway::start(config(&redis.url())).await;
    let mut on_first = first.subscribed(&["inventory", "broadcast"]).await;
    let mut on_second = second.subscribed(&["inventory", "broadcast"]).await;

    let mut publisher = Publisher::connect(&redis.url()).await;
    for n in 0..50 {
        assert_eq!(publisher.publish("ws:inventory", &inventory_event(n)).await, 2);
    }
    // A different channel marks the end: nothing more may precede it.
    let end = r#"{"type":"broadcast","message":"end","timestamp":1}"#;
    publisher.publish("ws:broadcast", end).await;

    for client in [&mut on_first, &mut on_second] {
        for n in 0..50 {
            assert_eq!(client.next_event().await["data"]["productId"], format!("p{n}"));
        }
        let last = client.next_event().await;
        assert_eq!(last["channel"], "broadcast", "no duplicate before the end marker: {last}");
    }
}

async fn next(source: &mut SourceHandle) -> SourceUpdate {
    tokio::time::timeout(WAIT, source.updates.recv()).await.expect("an update").expect("running")
}

#[tokio::test]
async fn the_tidings_gateway_source_receives_redis_events_through_the_real_gateway() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(secured_config(&redis.url())).await;
    let cancel = CancellationToken::new();
    let mut source = spawn_gateway_source(
        GatewaySourceConfig {
            token: Some(token_for("u1").into()),
            channels: vec![Channel::Inventory, Channel::parse("user:u1:notifications").unwrap()],
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            ..GatewaySourceConfig::new(gateway.ws_url(), None, Vec::new())
        },
        cancel.clone(),
        16,
    );
    assert_eq!(next(&mut source).await, SourceUpdate::State(SourceState::Connecting));
    assert_eq!(next(&mut source).await, SourceUpdate::State(SourceState::Live));

    let payload = inventory_event(7);
    redis.publish("ws:inventory", &payload);
    let SourceUpdate::Message(message) = next(&mut source).await else { panic!("a message") };
    assert_eq!(message.channel, "ws:inventory");
    assert_eq!(&message.payload[..], payload.as_bytes(), "byte for byte through the gateway");

    cancel.cancel();
    tokio::time::timeout(WAIT, source.finished()).await.expect("the source stops");
}

#[tokio::test]
async fn the_tidings_gateway_source_reconnects_after_a_gateway_restart() {
    let redis = RedisServer::start();
    let mut gateway = TestGateway::start(config(&redis.url())).await;
    let addr = gateway.addr;
    let cancel = CancellationToken::new();
    let mut source = spawn_gateway_source(
        GatewaySourceConfig {
            channels: vec![Channel::Inventory],
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            ..GatewaySourceConfig::new(gateway.ws_url(), None, Vec::new())
        },
        cancel.clone(),
        16,
    );
    assert_eq!(next(&mut source).await, SourceUpdate::State(SourceState::Connecting));
    assert_eq!(next(&mut source).await, SourceUpdate::State(SourceState::Live));

    gateway.stop().await;
    let SourceUpdate::State(SourceState::Reconnecting { reason, .. }) = next(&mut source).await
    else {
        panic!("expected Reconnecting")
    };
    assert!(reason.contains("1001"), "the source learns the gateway went away: {reason}");

    let mut again = config(&redis.url());
    again.listen = addr;
    let _gateway = TestGateway::start(again).await;
    loop {
        match next(&mut source).await {
            SourceUpdate::State(SourceState::Live) => break,
            SourceUpdate::State(SourceState::Reconnecting { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    redis.publish("ws:inventory", &inventory_event(3));
    let SourceUpdate::Message(message) = next(&mut source).await else { panic!("a message") };
    assert_eq!(message.channel, "ws:inventory");
    cancel.cancel();
}
