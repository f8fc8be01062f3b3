//! `tidings demo`: a believable ERP back office publishing through the
//! library's publishers, for watching `tail` or the desktop app come alive.
//!
//! A small world (products with stock levels, orders moving through their
//! statuses, approvals waiting for a decision, invoices falling due) is
//! advanced one step per event by [`Simulator`], which draws every choice
//! from one seeded generator: the same `--seed` gives the same sequence of
//! events (timestamps aside). `--chaos` replaces some events with legacy and
//! malformed messages, as a messy backend would send.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidings::publish::PublishOutcome;
use tidings::{Publisher, PublisherConfig};
use tidings_events::event::{
    Approval, ApprovalDecision, ApprovalResource, Broadcast, BroadcastLevel, DataAction,
    DataChange, DataResource, Finance, FinanceAction, FinanceEventType, FinanceRecordType,
    InventoryAction, InventoryChange, Notification, NotificationType, OrderStatus, OrderType,
    SystemEventType, SystemLevel, SystemNotice,
};

use crate::cli::DemoArgs;
use crate::exit::Exit;
use crate::render;

const PRODUCTS: [(&str, &str); 12] = [
    ("P-1001", "螺丝刀"),
    ("P-1002", "Cordless Drill 18V"),
    ("P-1003", "六角扳手套装"),
    ("P-1004", "Safety Gloves (L)"),
    ("P-1005", "不锈钢螺栓 M8"),
    ("P-1006", "LED Work Light"),
    ("P-1007", "电缆扎带 200mm"),
    ("P-1008", "Tape Measure 5m"),
    ("P-1009", "工业胶带"),
    ("P-1010", "Angle Grinder 125mm"),
    ("P-1011", "防护眼镜"),
    ("P-1012", "Hex Key Set"),
];

const CUSTOMERS: [(&str, &str); 6] = [
    ("C-201", "上海华联贸易有限公司"),
    ("C-202", "Acme Trading Ltd."),
    ("C-203", "深圳市鑫达电子"),
    ("C-204", "Northwind Supplies"),
    ("C-205", "杭州西湖五金店"),
    ("C-206", "Pacific Rim Hardware"),
];

const SUPPLIERS: [(&str, &str); 3] =
    [("S-301", "宁波精工工具厂"), ("S-302", "Global Fasteners Inc."), ("S-303", "东莞明亮照明")];

/// Users who receive notifications and file approvals: (id, name).
const USERS: [(&str, &str); 5] =
    [("u1", "张伟"), ("u2", "李娜"), ("u3", "王芳"), ("u4", "Alice Chen"), ("u5", "Bob Li")];

/// Approvers: (id, name).
const APPROVERS: [(&str, &str); 2] = [("u9", "王经理"), ("u8", "Grace Wu")];

const REJECTION_REASONS: [&str; 4] = [
    "金额超出预算",
    "Stock count does not match the warehouse report",
    "缺少发票",
    "Duplicate request",
];

/// Statuses an order walks through, per type.
fn statuses(order_type: OrderType) -> &'static [&'static str] {
    match order_type {
        OrderType::Sales => &["pending", "confirmed", "shipped", "completed"],
        OrderType::Purchase => &["draft", "ordered", "received", "completed"],
        OrderType::Return => &["requested", "approved", "received", "refunded"],
    }
}

/// One thing the back office does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Inventory(InventoryChange),
    Order(OrderStatus),
    Notify(String, Notification),
    ApprovalRequest(Approval),
    ApprovalResult(ApprovalDecision, Approval),
    Finance(FinanceEventType, Finance),
    Data(DataChange),
    /// `starts_in` rather than a time, so the sequence does not depend on the clock.
    System {
        kind: SystemEventType,
        notice: SystemNotice,
        starts_in: Option<Duration>,
    },
    Broadcast(Broadcast),
    /// A message that is not a typed event, sent unchecked on purpose.
    Chaos {
        channel: &'static str,
        payload: &'static str,
        label: &'static str,
    },
}

impl Step {
    /// A short name for the summary.
    fn label(&self) -> &'static str {
        match self {
            Step::Inventory(_) => "inventory:change",
            Step::Order(_) => "order:status",
            Step::Notify(..) => "notification",
            Step::ApprovalRequest(_) => "approval:request",
            Step::ApprovalResult(decision, _) => decision.kind().as_str(),
            Step::Finance(kind, _) => kind.as_str(),
            Step::Data(_) => "data:change",
            Step::System { kind, .. } => kind.as_str(),
            Step::Broadcast(_) => "broadcast",
            Step::Chaos { label, .. } => label,
        }
    }
}

const CHAOS: [(&str, &str, &str); 7] = [
    ("ws:inventory", r#"{"type":"adjust","productId":"P-1001","quantity":10}"#, "legacy"),
    ("ws:orders", r#"{"type":"orderUpdated","orderId":"o-17","status":"shipped"}"#, "legacy"),
    ("ws:inventory", "not json", "malformed"),
    ("ws:inventory", r#"{"type":"inventory:change","productId":"P-1002"}"#, "malformed"),
    (
        "ws:orders",
        r#"{"type":"order:status","orderType":"sales","orderId":17,"orderNumber":"SO-2026-000017","oldStatus":"pending","newStatus":"shipped","timestamp":1}"#,
        "malformed",
    ),
    ("ws:broadcast", r#"{"type":"broadcast","message":"truncated"#, "malformed"),
    ("ws:finance", "[1,2,3]", "malformed"),
];

#[derive(Debug)]
struct OpenOrder {
    order_type: OrderType,
    id: String,
    number: String,
    status: usize,
    customer: (&'static str, &'static str),
}

/// The simulated back office.
#[derive(Debug)]
pub(crate) struct Simulator {
    rng: StdRng,
    chaos: bool,
    stock: Vec<f64>,
    orders: Vec<OpenOrder>,
    /// Approvals waiting for a decision, and the step at which it comes.
    pending: VecDeque<(u64, Approval)>,
    next_number: u64,
    step: u64,
}

impl Simulator {
    pub(crate) fn new(seed: u64, chaos: bool) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let stock = PRODUCTS.iter().map(|_| f64::from(rng.random_range(20..400_u32))).collect();
        let next_number = rng.random_range(100..900);
        Simulator {
            rng,
            chaos,
            stock,
            orders: Vec::new(),
            pending: VecDeque::new(),
            next_number,
            step: 0,
        }
    }

    /// The next thing that happens.
    pub(crate) fn next_step(&mut self) -> Step {
        self.step += 1;
        if self.chaos && self.rng.random_bool(0.12) {
            let (channel, payload, label) = CHAOS[self.rng.random_range(0..CHAOS.len())];
            return Step::Chaos { channel, payload, label };
        }
        if let Some((due, _)) = self.pending.front()
            && *due <= self.step
            && let Some((_, approval)) = self.pending.pop_front()
        {
            return self.decide(approval);
        }
        match self.rng.random_range(0..100) {
            0..30 => self.inventory(),
            30..50 => self.order(),
            50..62 => self.notification(),
            62..70 => self.approval_request(),
            70..84 => self.finance(),
            84..94 => self.data_change(),
            94..98 => self.system(),
            _ => self.broadcast(),
        }
    }

    fn number(&mut self, prefix: &str) -> String {
        self.next_number += 1;
        format!("{prefix}-2026-{:06}", self.next_number)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn inventory(&mut self) -> Step {
        let index = self.rng.random_range(0..PRODUCTS.len());
        let (id, name) = PRODUCTS[index];
        let old = self.stock[index];
        let (action, new, reason) = match self.rng.random_range(0..5) {
            0 => (
                InventoryAction::Inbound,
                old + f64::from(self.rng.random_range(10..200_u32)),
                "采购入库",
            ),
            1 | 2 => {
                let out = f64::from(self.rng.random_range(1..30_u32)).min(old);
                (InventoryAction::Outbound, old - out, "Sales shipment")
            }
            3 => {
                let held = f64::from(self.rng.random_range(1..10_u32)).min(old);
                (InventoryAction::Reserve, old - held, "Reserved for an open order")
            }
            _ => {
                let delta = f64::from(self.rng.random_range(0..11_u32)) - 5.0;
                (InventoryAction::Adjust, (old + delta).max(0.0), "盘点调整")
            }
        };
        self.stock[index] = new;
        let mut change = InventoryChange::new(action, id, old, new);
        change.product_name = Some(name.into());
        change.reason = Some(reason.into());
        change.operator = Some(self.pick(&USERS).1.into());
        Step::Inventory(change)
    }

    fn order(&mut self) -> Step {
        // Advance an open order most of the time, or open a new one.
        if !self.orders.is_empty() && self.rng.random_bool(0.7) {
            let index = self.rng.random_range(0..self.orders.len());
            let cancel = self.rng.random_bool(0.05);
            let order = &mut self.orders[index];
            let flow = statuses(order.order_type);
            let old = flow[order.status];
            let new = if cancel { "cancelled" } else { flow[order.status + 1] };
            order.status += 1;
            let mut update = OrderStatus::new(order.order_type, &order.id, &order.number, old, new);
            update.customer_id = Some(order.customer.0.into());
            update.customer_name = Some(order.customer.1.into());
            if cancel || order.status + 1 >= flow.len() {
                self.orders.swap_remove(index);
            }
            return Step::Order(update);
        }
        let order_type = match self.rng.random_range(0..10) {
            0..7 => OrderType::Sales,
            7..9 => OrderType::Purchase,
            _ => OrderType::Return,
        };
        let prefix = match order_type {
            OrderType::Sales => "SO",
            OrderType::Purchase => "PO",
            OrderType::Return => "RT",
        };
        let number = self.number(prefix);
        let customer = self.pick(&CUSTOMERS);
        let id = format!("o-{}", self.next_number);
        let flow = statuses(order_type);
        let mut update = OrderStatus::new(order_type, &id, &number, "new", flow[0]);
        update.customer_id = Some(customer.0.into());
        update.customer_name = Some(customer.1.into());
        self.orders.push(OpenOrder { order_type, id, number, status: 0, customer });
        if self.orders.len() > 40 {
            self.orders.remove(0);
        }
        Step::Order(update)
    }

    fn notification(&mut self) -> Step {
        let (user, _) = self.pick(&USERS);
        let (index, stock) = {
            let index = self.rng.random_range(0..PRODUCTS.len());
            (index, self.stock[index])
        };
        let product = PRODUCTS[index].1;
        let number = self.next_number;
        let notification = match self.rng.random_range(0..4) {
            0 => Notification::new(
                NotificationType::Warning,
                "库存预警",
                format!("{product} 库存仅剩 {stock:.0}, below the reorder point"),
            ),
            1 => Notification::new(
                NotificationType::Success,
                "Order shipped",
                format!("SO-2026-{number:06} has left the warehouse"),
            ),
            2 => Notification::new(
                NotificationType::Info,
                "新任务",
                format!("请复核 PO-2026-{number:06} 的收货数量"),
            ),
            _ => Notification::new(
                NotificationType::Error,
                "Sync failed",
                "Could not sync prices with the e-shop; will retry in 5 minutes",
            ),
        };
        Step::Notify(user.into(), notification)
    }

    fn approval_request(&mut self) -> Step {
        let (resource_type, prefix) = self.pick(&[
            (ApprovalResource::Order, "SO"),
            (ApprovalResource::Refund, "RF"),
            (ApprovalResource::Payment, "PAY"),
            (ApprovalResource::Adjustment, "ADJ"),
            (ApprovalResource::Return, "RT"),
        ]);
        let number = self.number(prefix);
        let (requester_id, requester_name) = self.pick(&USERS);
        let (approver_id, approver_name) = self.pick(&APPROVERS);
        let mut approval = Approval::new(
            resource_type,
            format!("r-{}", self.next_number),
            number,
            requester_id,
            requester_name,
        );
        approval.approver_id = Some(approver_id.into());
        approval.approver_name = Some(approver_name.into());
        let due = self.step + self.rng.random_range(3..12);
        self.pending.push_back((due, approval.clone()));
        Step::ApprovalRequest(approval)
    }

    fn decide(&mut self, mut approval: Approval) -> Step {
        if self.rng.random_bool(0.75) {
            approval.comment = Some("同意".into());
            Step::ApprovalResult(ApprovalDecision::Approved, approval)
        } else {
            approval.reason = Some(self.pick(&REJECTION_REASONS).into());
            Step::ApprovalResult(ApprovalDecision::Rejected, approval)
        }
    }

    fn finance(&mut self) -> Step {
        let amount = f64::from(self.rng.random_range(10_000..5_000_000_u32)) / 100.0;
        let (customer_id, customer_name) = self.pick(&CUSTOMERS);
        let roll = self.rng.random_range(0..10);
        let (kind, action, record_type, prefix) = match roll {
            0..4 => (
                FinanceEventType::Payment,
                FinanceAction::Created,
                FinanceRecordType::Payment,
                "PAY",
            ),
            4..6 => (
                FinanceEventType::Payment,
                FinanceAction::Confirmed,
                FinanceRecordType::Payment,
                "PAY",
            ),
            6 => (
                FinanceEventType::Payment,
                FinanceAction::Created,
                FinanceRecordType::PaymentOut,
                "PO-PAY",
            ),
            7 => {
                (FinanceEventType::Refund, FinanceAction::Created, FinanceRecordType::Refund, "RF")
            }
            _ => (
                FinanceEventType::Overdue,
                FinanceAction::Overdue,
                FinanceRecordType::Payment,
                "INV",
            ),
        };
        let number = self.number(prefix);
        let mut record =
            Finance::new(action, record_type, format!("f-{}", self.next_number), number, amount);
        if record_type == FinanceRecordType::PaymentOut {
            let (supplier_id, supplier_name) = self.pick(&SUPPLIERS);
            record.supplier_id = Some(supplier_id.into());
            record.supplier_name = Some(supplier_name.into());
        } else {
            record.customer_id = Some(customer_id.into());
            record.customer_name = Some(customer_name.into());
        }
        Step::Finance(kind, record)
    }

    fn data_change(&mut self) -> Step {
        let action = self.pick(&[
            DataAction::Updated,
            DataAction::Updated,
            DataAction::Created,
            DataAction::Deleted,
        ]);
        let mut change = match self.rng.random_range(0..4) {
            0 | 1 => {
                let (id, name) = self.pick(&PRODUCTS);
                let mut change = DataChange::new(DataResource::Product, action, id);
                change.resource_name = Some(name.into());
                if action == DataAction::Updated {
                    let old = f64::from(self.rng.random_range(500..20_000_u32)) / 100.0;
                    let new = (old * 1.05 * 100.0).round() / 100.0;
                    let changes = serde_json::json!({"price": {"old": old, "new": new}});
                    change.changes = changes.as_object().cloned();
                }
                change
            }
            2 => {
                let (id, name) = self.pick(&CUSTOMERS);
                let mut change = DataChange::new(DataResource::Customer, action, id);
                change.resource_name = Some(name.into());
                change
            }
            _ => {
                let (id, name) = self.pick(&SUPPLIERS);
                let mut change = DataChange::new(DataResource::Supplier, action, id);
                change.resource_name = Some(name.into());
                change
            }
        };
        change.user_id = Some(self.pick(&USERS).0.into());
        Step::Data(change)
    }

    fn system(&mut self) -> Step {
        match self.rng.random_range(0..4) {
            0 | 1 => {
                let mut notice = SystemNotice::new(
                    SystemLevel::Warning,
                    "系统维护: ERP will be read-only during scheduled maintenance",
                );
                notice.estimated_duration = Some(30 * 60 * 1000);
                Step::System {
                    kind: SystemEventType::Maintenance,
                    notice,
                    starts_in: Some(Duration::from_secs(2 * 3600)),
                }
            }
            2 => Step::System {
                kind: SystemEventType::Update,
                notice: SystemNotice::new(
                    SystemLevel::Info,
                    "ERP 3.4.1 deployed: faster stock reports",
                ),
                starts_in: None,
            },
            _ => Step::System {
                kind: SystemEventType::Alert,
                notice: SystemNotice::new(
                    SystemLevel::Critical,
                    "Database replication lag above 30 s",
                ),
                starts_in: None,
            },
        }
    }

    fn broadcast(&mut self) -> Step {
        let mut message = Broadcast::new(self.pick(&[
            "本周五下午三点全员盘点",
            "New return policy takes effect on Monday",
            "祝大家节日快乐!",
        ]));
        message.title = Some("公告 Announcement".into());
        message.level = BroadcastLevel::Info;
        Step::Broadcast(message)
    }
}

/// Publishes one step; returns the outcomes (two for an approval result).
async fn publish(publisher: &Publisher, step: Step) -> Vec<PublishOutcome> {
    match step {
        Step::Inventory(change) => vec![publisher.publish_inventory_change(change).await],
        Step::Order(order) => vec![publisher.publish_order_status(order).await],
        Step::Notify(user, notification) => vec![publisher.notify_user(&user, notification).await],
        Step::ApprovalRequest(approval) => vec![publisher.publish_approval_request(approval).await],
        Step::ApprovalResult(decision, approval) => {
            let outcome = publisher.publish_approval_result(decision, approval).await;
            vec![outcome.approval, outcome.notification]
        }
        Step::Finance(kind, record) => vec![publisher.publish_finance_event(kind, record).await],
        Step::Data(change) => vec![publisher.publish_data_change(change).await],
        Step::System { kind, mut notice, starts_in } => {
            if let Some(starts_in) = starts_in {
                let now = tidings_events::millis_since_epoch(std::time::SystemTime::now());
                let offset = i64::try_from(starts_in.as_millis()).unwrap_or(0);
                notice.scheduled_time = Some(now + offset);
            }
            vec![publisher.publish_system_event(kind, notice).await]
        }
        Step::Broadcast(message) => vec![publisher.broadcast(message).await],
        Step::Chaos { channel, payload, .. } => {
            vec![publisher.publish_unchecked(channel, payload).await]
        }
    }
}

pub(crate) async fn run(redis_url: &str, args: DemoArgs) -> anyhow::Result<Exit> {
    let publisher = match Publisher::new(PublisherConfig {
        timeout: args.options.timeout,
        ..PublisherConfig::new(redis_url)
    }) {
        Ok(publisher) => publisher,
        Err(error) => {
            eprintln!("error: --redis: {error}");
            return Ok(Exit::BadInput);
        }
    };
    let seed = args.seed.unwrap_or_else(|| rand::rng().random_range(1..1_000_000));
    let mut simulator = Simulator::new(seed, args.chaos);
    let limit = match (args.duration, args.count) {
        (Some(duration), Some(count)) => format!(" for {duration:?} or {count} events"),
        (Some(duration), None) => format!(" for {duration:?}"),
        (None, Some(count)) => format!(" for {count} events"),
        (None, None) => " until Ctrl-C".into(),
    };
    eprintln!(
        "demo: publishing to {} at {} events/s{limit}, seed {seed}{} (same seed, same events)",
        publisher.url(),
        args.rate,
        if args.chaos { ", with chaos" } else { "" }
    );

    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let deadline = args.duration.map(|duration| tokio::time::Instant::now() + duration);
    let shutdown = tidings::process::shutdown_signal();
    tokio::pin!(shutdown);
    let mut summary = Summary::default();

    loop {
        if args.count.is_some_and(|count| summary.events >= count) {
            break;
        }
        let until_deadline = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = until_deadline => break,
            _ = ticks.tick() => {}
        }
        let step = simulator.next_step();
        let label = step.label();
        for outcome in publish(&publisher, step).await {
            summary.record(&outcome);
            if args.verbose {
                match &outcome.error {
                    None => println!(
                        "{:<24} {:<20} → {} subscriber(s)  {}",
                        outcome.channel,
                        label,
                        outcome.receivers.unwrap_or(0),
                        render::safe(&outcome.payload)
                    ),
                    Some(error) => println!("{:<24} {label:<20} FAILED: {error}", outcome.channel),
                }
            }
        }
        summary.record_event(label);
    }
    summary.print(started.elapsed(), seed);
    Ok(if summary.events > 0 && summary.failed == summary.messages {
        Exit::Unreachable
    } else {
        Exit::Success
    })
}

#[derive(Debug, Default)]
struct Summary {
    events: u64,
    messages: u64,
    failed: u64,
    receivers: u64,
    by_kind: BTreeMap<&'static str, u64>,
    last_error: Option<String>,
}

impl Summary {
    /// Counts one event of the simulation (an approval result is one
    /// event and two messages).
    fn record_event(&mut self, label: &'static str) {
        self.events += 1;
        *self.by_kind.entry(label).or_default() += 1;
    }

    fn record(&mut self, outcome: &PublishOutcome) {
        self.messages += 1;
        match (&outcome.error, outcome.receivers) {
            (Some(error), _) => {
                self.failed += 1;
                self.last_error = Some(error.to_string());
            }
            (None, receivers) => self.receivers += receivers.unwrap_or(0),
        }
    }

    fn print(&self, elapsed: Duration, seed: u64) {
        let seconds = elapsed.as_secs_f64();
        println!(
            "demo: {} events ({} messages) in {seconds:.1} s ({:.1}/s), seed {seed}",
            self.events,
            self.messages,
            if seconds > 0.0 { self.events as f64 / seconds } else { 0.0 }
        );
        for (kind, count) in &self.by_kind {
            println!("  {kind:<20} {count}");
        }
        println!(
            "  published {}, failed {}, delivered to {} subscriber(s) in total",
            self.messages - self.failed,
            self.failed,
            self.receivers
        );
        if let Some(error) = &self.last_error {
            println!("  last error: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, chaos: bool, steps: usize) -> Vec<Step> {
        let mut simulator = Simulator::new(seed, chaos);
        (0..steps).map(|_| simulator.next_step()).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_steps() {
        assert_eq!(run(42, true, 500), run(42, true, 500));
    }

    #[test]
    fn different_seeds_give_different_steps() {
        assert_ne!(run(1, false, 50), run(2, false, 50));
    }

    #[test]
    fn every_kind_of_event_shows_up_in_a_long_run() {
        let labels: std::collections::BTreeSet<_> =
            run(7, false, 3000).iter().map(Step::label).collect();
        for kind in tidings_events::EventKind::ALL {
            assert!(labels.contains(kind.as_str()), "{kind} never happened");
        }
    }

    #[test]
    fn chaos_mixes_in_legacy_and_malformed_messages() {
        let labels: Vec<_> = run(7, true, 500).iter().map(Step::label).collect();
        assert!(labels.contains(&"legacy") && labels.contains(&"malformed"));
        let calm: Vec<_> = run(7, false, 500).iter().map(Step::label).collect();
        assert!(!calm.contains(&"legacy") && !calm.contains(&"malformed"));
    }

    #[test]
    fn chaos_messages_are_what_they_claim_to_be() {
        for (_, payload, label) in CHAOS {
            assert_eq!(tidings_events::decode(payload.as_bytes()).outcome(), label, "{payload}");
        }
    }

    #[test]
    fn stock_never_goes_negative_and_change_amounts_add_up() {
        for step in run(3, false, 2000) {
            if let Step::Inventory(change) = step {
                assert!(change.new_quantity >= 0.0, "{change:?}");
            }
        }
    }

    #[test]
    fn order_numbers_look_like_the_erps() {
        let numbers: Vec<String> = run(5, false, 300)
            .into_iter()
            .filter_map(|step| match step {
                Step::Order(order) => Some(order.order_number),
                _ => None,
            })
            .collect();
        assert!(!numbers.is_empty());
        for number in numbers {
            let (prefix, rest) = number.split_once("-2026-").expect("PREFIX-2026-NNNNNN");
            assert!(["SO", "PO", "RT"].contains(&prefix) && rest.len() == 6, "{number}");
        }
    }
}
