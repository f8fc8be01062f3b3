//! Every frame of protocol.md §2 against a real gateway and a real Redis:
//! subscribe/subscribed, events byte for byte and in order, unsubscribe,
//! ping/pong, and an `error` frame (connection kept open) for each kind of
//! bad client frame.

mod common;

use common::{Publisher, TestGateway, config, inventory_event};
use serde_json::json;
use tidings_events::frame::{Incoming, parse_server_frame};
use tidings_testkit::RedisServer;

#[tokio::test]
async fn a_redis_publish_reaches_a_subscriber_with_data_byte_for_byte() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.subscribed(&["inventory"]).await;

    // Odd spacing and escapes must survive: `data` is not re-serialised.
    let payload = r#"{"type":"inventory:change", "productId":"123","action":"adjust","oldQuantity":10,"newQuantity":15.50,"changeAmount":5.5,"timestamp":1699999999999,"note":"caf\u00e9"}"#;
    assert_eq!(redis.publish("ws:inventory", payload), 1, "the gateway is the one subscriber");

    let text = client.next_text().await;
    let Incoming::Event(event) = parse_server_frame(&text).unwrap() else { panic!("{text}") };
    assert_eq!(event.channel, "inventory");
    assert_eq!(event.data.get(), payload);
}

#[tokio::test]
async fn one_subscribe_frame_can_name_several_channels_and_each_delivers() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.subscribed(&["inventory", "user:u1:notifications"]).await;

    let notification = r#"{"type":"notification","notificationType":"info","title":"Hi","message":"m","timestamp":1}"#;
    redis.publish("ws:user:u1:notifications", notification);
    redis.publish("ws:inventory", &inventory_event(1));

    let first = client.next_event().await;
    assert_eq!(first["channel"], "user:u1:notifications");
    assert_eq!(first["data"]["title"], "Hi");
    let second = client.next_event().await;
    assert_eq!(second["channel"], "inventory");
}

#[tokio::test]
async fn events_arrive_once_each_in_the_order_redis_delivered_them() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.subscribed(&["inventory"]).await;
    // Subscribing twice to the same channel must not double deliveries.
    client.subscribe(&["inventory"]).await;

    let mut publisher = Publisher::connect(&redis.url()).await;
    for n in 0..200 {
        publisher.publish("ws:inventory", &inventory_event(n)).await;
    }
    publisher.publish("ws:inventory", &inventory_event(9999)).await;
    for n in 0..200 {
        let event = client.next_event().await;
        assert_eq!(event["data"]["productId"], format!("p{n}"));
    }
    let last = client.next_event().await;
    assert_eq!(last["data"]["productId"], "p9999", "no duplicates before the last event");
}

#[tokio::test]
async fn after_unsubscribed_no_event_of_that_channel_arrives() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.subscribed(&["inventory", "orders"]).await;

    client.send_json(json!({"type":"unsubscribe","channels":["inventory"]})).await;
    let reply = client.next_of("unsubscribed").await;
    assert_eq!(reply["channels"], json!(["inventory"]));

    redis.publish("ws:inventory", &inventory_event(1));
    let order = r#"{"type":"order:status","orderType":"sales","orderId":"o1","orderNumber":"SO-1","oldStatus":"a","newStatus":"b","timestamp":1}"#;
    redis.publish("ws:orders", order);
    let event = client.next_event().await;
    assert_eq!(event["channel"], "orders", "the inventory event must not arrive: {event}");
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.client().await;
    client.send_json(json!({"type":"ping"})).await;
    assert_eq!(client.next().await, json!({"type":"pong"}));
}

#[tokio::test]
async fn legacy_objects_are_forwarded_and_malformed_payloads_are_not() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.subscribed(&["inventory"]).await;

    redis.publish("ws:inventory", "not json");
    redis.publish("ws:inventory", r#"{"type":"inventory:change","productId":"1"}"#);
    redis.publish("ws:inventory", "[1,2]");
    let legacy = r#"{"type":"adjust","productId":"123","quantity":10}"#;
    redis.publish("ws:inventory", legacy);

    let text = client.next_text().await;
    let Incoming::Event(event) = parse_server_frame(&text).unwrap() else { panic!("{text}") };
    assert_eq!(event.data.get(), legacy, "the first frame is the legacy object, as published");

    let metrics = gateway.metrics().await;
    assert!(metrics.contains("tidings_gateway_malformed_messages_total 3"), "{metrics}");
}

#[tokio::test]
async fn bad_client_frames_get_an_error_frame_and_the_connection_stays_open() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.client().await;

    for (frame, code) in [
        ("hello", "bad_request"),
        ("[1]", "bad_request"),
        (r#"{"type":"publish","channels":["inventory"]}"#, "bad_request"),
        (r#"{"type":"subscribe"}"#, "bad_request"),
        (r#"{"type":"subscribe","channels":"inventory"}"#, "bad_request"),
    ] {
        client.send_text(frame).await;
        let error = client.next_of("error").await;
        assert_eq!(error["code"], code, "{frame} → {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    }
    client.ws.send_binary(vec![1, 2, 3]).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "bad_request");

    client.send_json(json!({"type":"ping"})).await;
    client.next_of("pong").await;
}

#[tokio::test]
async fn an_unknown_channel_is_refused_by_name_while_the_others_are_subscribed() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.client().await;

    client
        .send_json(json!({"type":"subscribe","channels":["inventory","warehouse","user:a b:notifications"]}))
        .await;
    let mut errors = Vec::new();
    let subscribed = loop {
        let frame = client.next().await;
        match frame["type"].as_str() {
            Some("error") => errors.push(frame),
            Some("subscribed") => break frame,
            _ => panic!("unexpected {frame}"),
        }
    };
    assert_eq!(subscribed["channels"], json!(["inventory"]));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["code"], "unknown_channel");
    assert_eq!(errors[0]["channel"], "warehouse");
    assert_eq!(errors[1]["code"], "unknown_channel");
    assert_eq!(errors[1]["channel"], "user:a b:notifications");

    redis.publish("ws:inventory", &inventory_event(1));
    assert_eq!(client.next_event().await["channel"], "inventory");
}

#[tokio::test]
async fn subscriptions_past_the_limit_are_refused_with_too_many_subscriptions() {
    let redis = RedisServer::start();
    let mut config = config(&redis.url());
    config.max_subscriptions = 2;
    let gateway = TestGateway::start(config).await;
    let mut client = gateway.client().await;

    client.send_json(json!({"type":"subscribe","channels":["inventory","orders","finance"]})).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "too_many_subscriptions");
    assert_eq!(error["channel"], "finance");
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["channels"], json!(["inventory", "orders"]));
}

trait SendBinary {
    async fn send_binary(&mut self, bytes: Vec<u8>);
}

impl SendBinary for common::Socket {
    async fn send_binary(&mut self, bytes: Vec<u8>) {
        use futures_util::SinkExt;
        self.send(tokio_tungstenite::tungstenite::Message::binary(bytes)).await.unwrap();
    }
}
