//! How `tail` shows one message: a readable line (time, channel, kind, key
//! facts) with optional colour, or one JSON object for machines.
//!
//! Everything that came from the network is made harmless for a terminal:
//! control characters (escape sequences, carriage returns, newlines) are
//! shown escaped, so a payload cannot move the cursor, recolour the screen
//! or fake other lines.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use tidings::SourceMessage;
use tidings_events::event::{
    Approval, BroadcastLevel, DataChange, Finance, InventoryChange, Notification, NotificationType,
    OrderStatus, SystemLevel, SystemNotice,
};
use tidings_events::{Decoded, Event};

/// Longest preview of a legacy or malformed payload, in characters.
const PREVIEW_CHARS: usize = 160;

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Palette {
    enabled: bool,
}

#[derive(Debug, Clone, Copy)]
enum Colour {
    Dim,
    Red,
    BoldRed,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
    Plain,
}

impl Palette {
    pub(crate) fn new(enabled: bool) -> Self {
        Palette { enabled }
    }

    fn paint(&self, colour: Colour, text: &str) -> String {
        let code = match colour {
            Colour::Plain => return text.to_owned(),
            Colour::Dim => "2",
            Colour::Red => "31",
            Colour::BoldRed => "1;31",
            Colour::Green => "32",
            Colour::Yellow => "33",
            Colour::Blue => "34",
            Colour::Magenta => "35",
            Colour::Cyan => "36",
        };
        if self.enabled { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }
}

/// The readable line for one message.
pub(crate) fn human_line(message: &SourceMessage, decoded: &Decoded, palette: Palette) -> String {
    let time = chrono::DateTime::from_timestamp_millis(message.received_at)
        .map(|utc| utc.with_timezone(&chrono::Local).format("%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| "--:--:--.---".into());
    let channel = format!("{:<26}", safe(&message.channel));
    let (kind, colour, facts) = match decoded {
        Decoded::Typed { event, .. } => {
            (event.kind().as_str().to_owned(), colour_of(event), safe(&facts(event)))
        }
        Decoded::Legacy { raw } => {
            let kind = raw.get("type").and_then(Value::as_str).unwrap_or("(no type)");
            (
                "LEGACY".to_owned(),
                Colour::Yellow,
                safe(&format!(
                    "type {kind:?}: {}",
                    preview(&String::from_utf8_lossy(&message.payload))
                )),
            )
        }
        Decoded::Malformed(malformed) => (
            "MALFORMED".to_owned(),
            Colour::Red,
            safe(&format!(
                "{} — payload: {}",
                malformed.reason,
                preview(&String::from_utf8_lossy(&message.payload))
            )),
        ),
    };
    format!(
        "{}  {}  {}  {}",
        palette.paint(Colour::Dim, &time),
        channel,
        palette.paint(colour, &format!("{kind:<18}")),
        facts
    )
}

/// The JSON line for one message: `channel`, `receivedAt`, `outcome`, and
/// `kind` + `event` (typed), `raw` (legacy) or `reason` + `payload`
/// (malformed).
pub(crate) fn json_line(message: &SourceMessage, decoded: &Decoded) -> String {
    let mut line = Map::new();
    line.insert("channel".into(), json!(message.channel));
    line.insert("receivedAt".into(), json!(message.received_at));
    line.insert("outcome".into(), json!(decoded.outcome()));
    match decoded {
        Decoded::Typed { event, raw } => {
            line.insert("kind".into(), json!(event.kind().as_str()));
            line.insert("event".into(), Value::Object(raw.clone()));
        }
        Decoded::Legacy { raw } => {
            line.insert("raw".into(), Value::Object(raw.clone()));
        }
        Decoded::Malformed(malformed) => {
            line.insert("reason".into(), json!(malformed.reason));
            line.insert("payload".into(), json!(String::from_utf8_lossy(&message.payload)));
        }
    }
    Value::Object(line).to_string()
}

fn colour_of(event: &Event) -> Colour {
    match event {
        Event::Notification(n) => match n.notification_type {
            NotificationType::Info => Colour::Blue,
            NotificationType::Success => Colour::Green,
            NotificationType::Warning => Colour::Yellow,
            NotificationType::Error => Colour::Red,
        },
        Event::InventoryChange(_) => Colour::Cyan,
        Event::OrderStatus(_) => Colour::Blue,
        Event::ApprovalRequest(_) => Colour::Magenta,
        Event::ApprovalApproved(_) => Colour::Green,
        Event::ApprovalRejected(_) => Colour::Yellow,
        Event::FinancePayment(_) | Event::FinanceRefund(_) => Colour::Green,
        Event::FinanceOverdue(_) => Colour::Yellow,
        Event::DataChange(_) => Colour::Plain,
        Event::SystemMaintenance(s) | Event::SystemUpdate(s) | Event::SystemAlert(s) => {
            match s.level {
                SystemLevel::Info => Colour::Blue,
                SystemLevel::Warning => Colour::Yellow,
                SystemLevel::Critical => Colour::BoldRed,
            }
        }
        Event::Broadcast(b) => match b.level {
            BroadcastLevel::Info => Colour::Blue,
            BroadcastLevel::Success => Colour::Green,
            BroadcastLevel::Warning => Colour::Yellow,
            BroadcastLevel::Error => Colour::Red,
        },
    }
}

/// The key facts of an event, in one line.
pub(crate) fn facts(event: &Event) -> String {
    match event {
        Event::Notification(n) => notification(n),
        Event::InventoryChange(c) => inventory(c),
        Event::OrderStatus(o) => order(o),
        Event::ApprovalRequest(a) => approval(a, "requested by", &a.requester_name),
        Event::ApprovalApproved(a) => {
            approval(a, "approved by", a.approver_name.as_deref().unwrap_or("?"))
        }
        Event::ApprovalRejected(a) => {
            approval(a, "rejected by", a.approver_name.as_deref().unwrap_or("?"))
        }
        Event::FinancePayment(f) | Event::FinanceRefund(f) | Event::FinanceOverdue(f) => finance(f),
        Event::DataChange(d) => data_change(d),
        Event::SystemMaintenance(s) | Event::SystemUpdate(s) | Event::SystemAlert(s) => system(s),
        Event::Broadcast(b) => {
            let mut line = format!("[{}]", wire(&b.level));
            if let Some(title) = &b.title {
                let _ = write!(line, " {title}:");
            }
            let _ = write!(line, " {}", b.message);
            line
        }
    }
}

fn notification(n: &Notification) -> String {
    let mut line = format!("[{}] {} — {}", wire(&n.notification_type), n.title, n.message);
    if let Some(user) = &n.user_id {
        let _ = write!(line, " (for {user})");
    }
    line
}

fn inventory(c: &InventoryChange) -> String {
    let product = match &c.product_name {
        Some(name) => format!("{name} ({})", c.product_id),
        None => c.product_id.clone(),
    };
    let sign = if c.change_amount >= 0.0 { "+" } else { "" };
    let mut line = format!(
        "{product} {} {} → {} ({sign}{})",
        wire(&c.action),
        number(c.old_quantity),
        number(c.new_quantity),
        number(c.change_amount)
    );
    if let Some(operator) = &c.operator {
        let _ = write!(line, " by {operator}");
    }
    if let Some(reason) = &c.reason {
        let _ = write!(line, " — {reason}");
    }
    line
}

fn order(o: &OrderStatus) -> String {
    let mut line =
        format!("{} {} {} → {}", wire(&o.order_type), o.order_number, o.old_status, o.new_status);
    if let Some(customer) = &o.customer_name {
        let _ = write!(line, " · {customer}");
    }
    line
}

fn approval(a: &Approval, verb: &str, who: &str) -> String {
    let mut line = format!("{} {} {verb} {who}", wire(&a.resource_type), a.resource_number);
    if let Some(reason) = a.reason.as_ref().or(a.comment.as_ref()) {
        let _ = write!(line, ": {reason}");
    }
    line
}

fn finance(f: &Finance) -> String {
    let mut line = format!(
        "{} {} {} {}",
        wire(&f.action),
        wire(&f.record_type),
        f.record_number,
        yuan(f.amount)
    );
    if let Some(party) = f.customer_name.as_ref().or(f.supplier_name.as_ref()) {
        let _ = write!(line, " · {party}");
    }
    line
}

fn data_change(d: &DataChange) -> String {
    let name = d.resource_name.as_deref().unwrap_or(&d.resource_id);
    let mut line = format!("{} {name} {}", wire(&d.resource), wire(&d.action));
    if let Some(changes) = &d.changes
        && !changes.is_empty()
    {
        let fields: Vec<&str> = changes.keys().map(String::as_str).collect();
        let _ = write!(line, " ({})", fields.join(", "));
    }
    line
}

fn system(s: &SystemNotice) -> String {
    let mut line = format!("[{}] {}", wire(&s.level), s.message);
    if let Some(start) = s.scheduled_time.and_then(chrono::DateTime::from_timestamp_millis) {
        let local = start.with_timezone(&chrono::Local);
        let _ = write!(line, " — from {}", local.format("%Y-%m-%d %H:%M"));
    }
    if let Some(duration) = s.estimated_duration {
        let _ = write!(line, " for {} min", duration / 60_000);
    }
    line
}

/// A protocol enum as its wire word (`adjust`, `paymentOut`).
fn wire<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        _ => String::from("?"),
    }
}

/// A quantity as JavaScript would write it: `15`, `2.5`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

/// `¥12,850.50`.
pub(crate) fn yuan(amount: f64) -> String {
    let cents = (amount.abs() * 100.0).round();
    let whole = format!("{:.0}", (cents / 100.0).trunc());
    let fraction = cents % 100.0;
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if amount < 0.0 { "-" } else { "" };
    format!("{sign}¥{grouped}.{fraction:02.0}")
}

/// Control characters shown escaped, so a payload cannot drive the terminal.
pub(crate) fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn preview(text: &str) -> String {
    if text.chars().count() <= PREVIEW_CHARS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(PREVIEW_CHARS).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(channel: &str, payload: &str) -> SourceMessage {
        SourceMessage {
            channel: channel.into(),
            payload: payload.as_bytes().to_vec().into(),
            received_at: 1_700_000_000_000,
            position: None,
        }
    }

    fn line(channel: &str, payload: &str) -> String {
        let message = message(channel, payload);
        human_line(&message, &tidings_events::decode(&message.payload), Palette::new(false))
    }

    #[test]
    fn the_protocol_example_reads_as_a_stock_movement() {
        let text = line(
            "ws:inventory",
            r#"{"type":"inventory:change","productId":"123","productName":"螺丝刀","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#,
        );
        assert!(text.contains("ws:inventory"), "{text}");
        assert!(text.contains("inventory:change"), "{text}");
        assert!(text.contains("螺丝刀 (123) adjust 10 → 15 (+5)"), "{text}");
    }

    #[test]
    fn legacy_and_malformed_messages_say_so_with_their_channel() {
        let legacy = line("ws:inventory", r#"{"type":"adjust","productId":"123","quantity":10}"#);
        assert!(legacy.contains("ws:inventory") && legacy.contains("LEGACY"), "{legacy}");
        let malformed = line("ws:orders", "not json");
        assert!(malformed.contains("ws:orders") && malformed.contains("MALFORMED"), "{malformed}");
        assert!(malformed.contains("not JSON"), "{malformed}");
    }

    #[test]
    fn escape_sequences_from_the_network_are_shown_not_obeyed() {
        let text = line(
            "ws:broadcast",
            "{\"type\":\"broadcast\",\"message\":\"\\u001b[2Jgone\\r\\nfake line\",\"timestamp\":1}",
        );
        assert!(!text.contains('\x1b') && !text.contains('\n') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("\\u{1b}[2Jgone"), "{text}");
    }

    #[test]
    fn colour_appears_only_when_enabled() {
        let message = message(
            "ws:system",
            r#"{"type":"system:alert","level":"critical","message":"db down","timestamp":1}"#,
        );
        let decoded = tidings_events::decode(&message.payload);
        assert!(human_line(&message, &decoded, Palette::new(true)).contains("\x1b[1;31m"));
        assert!(!human_line(&message, &decoded, Palette::new(false)).contains('\x1b'));
    }

    #[test]
    fn amounts_are_shown_in_yuan_with_cents() {
        assert_eq!(yuan(12850.5), "¥12,850.50");
        assert_eq!(yuan(0.07), "¥0.07");
        assert_eq!(yuan(1_234_567.891), "¥1,234,567.89");
        assert_eq!(yuan(-99.0), "-¥99.00");
    }

    #[test]
    fn json_lines_carry_outcome_and_the_whole_object() {
        let message = message("ws:inventory", r#"{"type":"adjust","x":1}"#);
        let value: Value =
            serde_json::from_str(&json_line(&message, &tidings_events::decode(&message.payload)))
                .unwrap();
        assert_eq!(value["outcome"], "legacy");
        assert_eq!(value["raw"]["x"], 1);
        assert_eq!(value["channel"], "ws:inventory");
    }
}
