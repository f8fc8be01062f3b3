//! Publishers against a real redis-server: every helper lands on the Redis
//! channel protocol.md names, with exactly the protocol's JSON fields, and a
//! publish with Redis down comes back within the bound and says why.

use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::publish::{
    Approval, ApprovalDecision, Broadcast, DataChange, Finance, FinanceEventType, InventoryChange,
    Notification, OrderStatus, SystemEventType, SystemNotice,
};
use tidings::{PublishError, Publisher, PublisherConfig};
use tidings_events::event::{
    ApprovalResource, BroadcastLevel, DataAction, DataResource, FinanceAction, FinanceRecordType,
    InventoryAction, NotificationType, OrderType, SystemLevel,
};
use tidings_events::{Channel, Event};
use tidings_testkit::RedisServer;

const WAIT: Duration = Duration::from_secs(5);

/// A raw Redis subscriber on `ws:*`, independent of the code under test.
struct Listener {
    stream: redis::aio::PubSubStream,
}

impl Listener {
    async fn start(server: &RedisServer) -> Self {
        let client = redis::Client::open(server.url()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.psubscribe("ws:*").await.unwrap();
        Listener { stream: pubsub.into_on_message() }
    }

    /// The next message: its channel and its JSON.
    async fn next(&mut self) -> (String, Value) {
        let message = tokio::time::timeout(WAIT, self.stream.next())
            .await
            .expect("a message within 5 s")
            .expect("the subscription is open");
        let payload: String = message.get_payload().unwrap();
        (message.get_channel_name().to_owned(), serde_json::from_str(&payload).unwrap())
    }

    /// The next message, with its `timestamp` checked to be now and removed.
    async fn next_stamped(&mut self) -> (String, Value) {
        let (channel, mut value) = self.next().await;
        let stamp = value.as_object_mut().unwrap().remove("timestamp").expect("a timestamp");
        let now = tidings_events::millis_since_epoch(SystemTime::now());
        let stamp = stamp.as_i64().expect("an integer timestamp");
        assert!((now - 10_000..=now).contains(&stamp), "timestamp {stamp} is not now ({now})");
        (channel, value)
    }
}

fn publisher(server: &RedisServer) -> Publisher {
    Publisher::new(PublisherConfig::new(server.url())).unwrap()
}

#[tokio::test]
async fn notify_user_lands_on_the_users_channel_with_the_protocol_fields() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let mut notification =
        Notification::new(NotificationType::Warning, "库存不足", "螺丝刀 only 3 left");
    notification.action_url = Some("https://erp.example.com/products/123".into());
    notification.action_label = Some("Open".into());

    let outcome = publisher(&server).notify_user("u1", notification).await;

    assert_eq!(outcome.result().unwrap(), 1);
    assert_eq!(outcome.channel, "ws:user:u1:notifications");
    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:user:u1:notifications");
    assert_eq!(
        value,
        json!({"type":"notification","notificationType":"warning","title":"库存不足",
               "message":"螺丝刀 only 3 left","actionUrl":"https://erp.example.com/products/123",
               "actionLabel":"Open","userId":"u1"})
    );
}

#[tokio::test]
async fn inventory_change_fills_in_change_amount_and_timestamp() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let mut change = InventoryChange::new(InventoryAction::Adjust, "123", 10.0, 15.0);
    change.product_name = Some("螺丝刀".into());

    publisher(&server).publish_inventory_change(change).await.result().unwrap();

    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:inventory");
    assert_eq!(
        value,
        json!({"type":"inventory:change","action":"adjust","productId":"123","oldQuantity":10,
               "newQuantity":15,"changeAmount":5,"productName":"螺丝刀"})
    );
}

#[tokio::test]
async fn order_status_lands_on_orders() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let mut order =
        OrderStatus::new(OrderType::Sales, "o-9", "SO-2026-000123", "pending", "shipped");
    order.customer_name = Some("Acme Trading Ltd.".into());

    publisher(&server).publish_order_status(order).await.result().unwrap();

    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:orders");
    assert_eq!(
        value,
        json!({"type":"order:status","orderType":"sales","orderId":"o-9",
               "orderNumber":"SO-2026-000123","oldStatus":"pending","newStatus":"shipped",
               "customerName":"Acme Trading Ltd."})
    );
}

fn approval() -> Approval {
    let mut approval =
        Approval::new(ApprovalResource::Refund, "r-7", "RF-2026-000042", "u2", "李娜");
    approval.approver_id = Some("u9".into());
    approval.approver_name = Some("王经理".into());
    approval
}

#[tokio::test]
async fn approval_request_lands_on_approvals() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;

    publisher(&server).publish_approval_request(approval()).await.result().unwrap();

    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:approvals");
    assert_eq!(
        value,
        json!({"type":"approval:request","resourceType":"refund","resourceId":"r-7",
               "resourceNumber":"RF-2026-000042","requesterId":"u2","requesterName":"李娜",
               "approverId":"u9","approverName":"王经理"})
    );
}

#[tokio::test]
async fn an_approved_result_publishes_the_decision_and_notifies_the_requester() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;

    let outcome =
        publisher(&server).publish_approval_result(ApprovalDecision::Approved, approval()).await;

    assert!(outcome.is_published(), "{outcome:?}");
    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:approvals");
    assert_eq!(value["type"], "approval:approved");
    assert_eq!(value["resourceNumber"], "RF-2026-000042");
    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:user:u2:notifications");
    assert_eq!(
        value,
        json!({"type":"notification","notificationType":"success","title":"Approval approved",
               "message":"Your refund RF-2026-000042 was approved by 王经理","userId":"u2"})
    );
}

#[tokio::test]
async fn a_rejected_result_publishes_the_decision_and_warns_the_requester_with_the_reason() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let mut rejected = approval();
    rejected.reason = Some("金额超出预算".into());

    publisher(&server).publish_approval_result(ApprovalDecision::Rejected, rejected).await;

    let (_, value) = listener.next_stamped().await;
    assert_eq!(value["type"], "approval:rejected");
    assert_eq!(value["reason"], "金额超出预算");
    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:user:u2:notifications");
    assert_eq!(value["notificationType"], "warning");
    assert_eq!(value["message"], "Your refund RF-2026-000042 was rejected by 王经理: 金额超出预算");
}

#[tokio::test]
async fn finance_events_land_on_finance_with_their_type_and_amount_in_cents() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let publisher = publisher(&server);
    for (kind, wire) in [
        (FinanceEventType::Payment, "finance:payment"),
        (FinanceEventType::Refund, "finance:refund"),
        (FinanceEventType::Overdue, "finance:overdue"),
    ] {
        let mut record = Finance::new(
            FinanceAction::Overdue,
            FinanceRecordType::Payment,
            "p-1",
            "PAY-2026-000321",
            12850.5,
        );
        record.customer_id = Some("c-3".into());
        publisher.publish_finance_event(kind, record).await.result().unwrap();

        let (channel, value) = listener.next_stamped().await;
        assert_eq!(channel, "ws:finance");
        assert_eq!(
            value,
            json!({"type":wire,"action":"overdue","recordType":"payment","recordId":"p-1",
                   "recordNumber":"PAY-2026-000321","amount":12850.5,"customerId":"c-3"})
        );
    }
}

#[tokio::test]
async fn data_changes_land_on_the_channel_of_their_resource() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let publisher = publisher(&server);
    for (resource, expected) in [
        (DataResource::Product, "ws:products"),
        (DataResource::Category, "ws:products"),
        (DataResource::Customer, "ws:customers"),
        (DataResource::Supplier, "ws:suppliers"),
        (DataResource::User, "ws:system"),
    ] {
        let mut change = DataChange::new(resource, DataAction::Updated, "id-1");
        change.changes = Some(json!({"price":{"old":9.9,"new":12.5}}).as_object().unwrap().clone());
        publisher.publish_data_change(change).await.result().unwrap();

        let (channel, value) = listener.next_stamped().await;
        assert_eq!(channel, expected, "{resource:?}");
        assert_eq!(value["type"], "data:change");
        assert_eq!(value["resource"], serde_json::to_value(resource).unwrap());
        assert_eq!(value["changes"], json!({"price":{"old":9.9,"new":12.5}}));
    }
}

#[tokio::test]
async fn system_events_land_on_system() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let mut notice = SystemNotice::new(SystemLevel::Warning, "ERP maintenance at 22:00");
    notice.scheduled_time = Some(1_900_000_000_000);
    notice.estimated_duration = Some(1_800_000);
    notice.affected_users = Some(vec!["u1".into(), "u2".into()]);

    publisher(&server)
        .publish_system_event(SystemEventType::Maintenance, notice)
        .await
        .result()
        .unwrap();

    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:system");
    assert_eq!(
        value,
        json!({"type":"system:maintenance","level":"warning","message":"ERP maintenance at 22:00",
               "affectedUsers":["u1","u2"],"scheduledTime":1_900_000_000_000_i64,
               "estimatedDuration":1_800_000})
    );
}

#[tokio::test]
async fn broadcasts_land_on_broadcast() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let mut message = Broadcast::new("新年快乐!");
    message.level = BroadcastLevel::Success;
    message.title = Some("Happy new year".into());

    publisher(&server).broadcast(message).await.result().unwrap();

    let (channel, value) = listener.next_stamped().await;
    assert_eq!(channel, "ws:broadcast");
    assert_eq!(
        value,
        json!({"type":"broadcast","message":"新年快乐!","level":"success","title":"Happy new year"})
    );
}

#[tokio::test]
async fn the_outcome_counts_the_subscribers_that_received_it() {
    let server = RedisServer::start();
    let _first = Listener::start(&server).await;
    let _second = Listener::start(&server).await;

    let outcome = publisher(&server).broadcast(Broadcast::new("hello")).await;

    assert_eq!(outcome.receivers, Some(2));
}

#[tokio::test]
async fn an_event_on_a_channel_that_does_not_carry_it_is_refused_unsent() {
    let server = RedisServer::start();
    let event = tidings_events::decode(
        br#"{"type":"inventory:change","productId":"1","action":"adjust","oldQuantity":1,"newQuantity":2,"changeAmount":1,"timestamp":1}"#,
    )
    .event()
    .cloned()
    .unwrap();

    let outcome = publisher(&server).publish_event(&Channel::Orders, &event).await;

    let error = outcome.error.expect("refused");
    assert!(error.is_invalid());
    assert!(error.to_string().contains("inventory:change does not belong on channel orders"));
    assert_eq!(outcome.receivers, None);
}

#[tokio::test]
async fn a_user_id_that_could_widen_a_pattern_is_refused_before_redis() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let publisher = publisher(&server);

    let outcome =
        publisher.notify_user("*", Notification::new(NotificationType::Info, "t", "m")).await;

    assert!(outcome.error.as_ref().is_some_and(PublishError::is_invalid), "{outcome:?}");
    // Prove nothing was sent: the next message the listener sees is this one.
    publisher.broadcast(Broadcast::new("marker")).await;
    assert_eq!(listener.next().await.0, "ws:broadcast");
}

#[tokio::test]
async fn raw_json_is_checked_legacy_is_sent_and_malformed_is_refused() {
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let publisher = publisher(&server);

    let legacy = r#"{"type":"adjust","productId":"123","quantity":10}"#;
    publisher.publish_raw(&Channel::Inventory, legacy).await.result().unwrap();
    assert_eq!(listener.next().await.1, serde_json::from_str::<Value>(legacy).unwrap());

    let malformed = publisher
        .publish_raw(&Channel::Inventory, r#"{"type":"inventory:change","productId":"1"}"#)
        .await;
    let reason = malformed.error.expect("refused").to_string();
    assert!(reason.contains("missing field"), "{reason}");
}

#[tokio::test]
async fn a_publish_with_redis_stopped_returns_within_the_bound_and_says_why() {
    let mut server = RedisServer::start();
    let publisher = Publisher::new(PublisherConfig {
        timeout: Duration::from_millis(500),
        ..PublisherConfig::new(server.url())
    })
    .unwrap();
    publisher.broadcast(Broadcast::new("warm up")).await.result().unwrap();
    server.kill();

    for _ in 0..3 {
        let started = Instant::now();
        let outcome = publisher.broadcast(Broadcast::new("into the void")).await;
        let took = started.elapsed();

        assert!(took < Duration::from_millis(700), "took {took:?}");
        let error = outcome.error.expect("an error");
        assert!(!error.is_invalid());
        assert!(error.to_string().contains(&format!(":{}", server.port())), "{error}");
    }
}

#[tokio::test]
async fn a_publish_against_an_unroutable_address_times_out_within_the_bound() {
    // 10.255.255.1 is private and normally unroutable: connecting hangs
    // rather than being refused, which is what the bound is for.
    let publisher = Publisher::new(PublisherConfig {
        timeout: Duration::from_millis(300),
        ..PublisherConfig::new("redis://10.255.255.1:6379")
    })
    .unwrap();

    let started = Instant::now();
    let outcome = publisher.broadcast(Broadcast::new("x")).await;

    assert!(started.elapsed() < Duration::from_millis(600), "took {:?}", started.elapsed());
    assert!(outcome.error.is_some());
}

#[tokio::test]
async fn a_failed_publish_is_logged_with_its_channel_and_reason() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish(),
    );
    let mut server = RedisServer::start();
    let publisher = publisher(&server);
    server.kill();

    let _ = publisher.broadcast(Broadcast::new("lost")).await;

    let text = logs.text();
    assert!(text.contains("WARN") && text.contains("publish failed"), "{text}");
    assert!(text.contains("ws:broadcast") && text.contains("cannot reach Redis"), "{text}");
}

#[tokio::test]
async fn publishing_works_again_after_redis_restarts() {
    let mut server = RedisServer::start();
    let publisher = publisher(&server);
    publisher.broadcast(Broadcast::new("before")).await.result().unwrap();

    server.restart();
    let mut listener = Listener::start(&server).await;

    // The first publish may find the old connection broken; within a
    // second publishing works again on a fresh connection.
    let publisher = &publisher;
    tidings_testkit::retry("publishing after the restart", WAIT, || async move {
        publisher.broadcast(Broadcast::new("after")).await.is_published().then_some(())
    })
    .await;
    assert_eq!(listener.next().await.1["message"], "after");
}

#[tokio::test]
async fn a_password_protected_redis_works_with_the_password_in_the_url() {
    let server = RedisServer::start_with_password(Some("s3cret"));
    let mut listener = Listener::start(&server).await;

    publisher(&server).broadcast(Broadcast::new("authenticated")).await.result().unwrap();

    assert_eq!(listener.next().await.1["message"], "authenticated");
}

#[tokio::test]
async fn errors_never_show_the_password() {
    let mut server = RedisServer::start_with_password(Some("s3cret"));
    let publisher = publisher(&server);
    server.kill();

    let error = publisher.broadcast(Broadcast::new("x")).await.error.unwrap().to_string();

    assert!(!error.contains("s3cret") && error.contains(":***@"), "{error}");
}

#[tokio::test]
async fn every_helper_event_decodes_as_the_kind_it_claims() {
    // The JSON the helpers build is what the decoder accepts as typed.
    let server = RedisServer::start();
    let mut listener = Listener::start(&server).await;
    let publisher = publisher(&server);
    publisher
        .publish_inventory_change(InventoryChange::new(InventoryAction::Outbound, "9", 5.0, 2.5))
        .await;
    let (_, value) = listener.next().await;
    let decoded = tidings_events::decode(value.to_string().as_bytes());
    let Some(Event::InventoryChange(change)) = decoded.event() else { panic!("{decoded:?}") };
    assert_eq!(change.change_amount, -2.5);
}

/// Log lines written by `tracing_subscriber::fmt`, kept for assertions.
#[derive(Clone, Default)]
struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
