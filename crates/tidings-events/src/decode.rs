//! The decoder: bytes as Redis delivers them → typed, legacy or malformed.
//!
//! Every consumer (CLI `tail`, gateway, desktop app) calls [`decode`] and
//! nothing else, so they all agree on what is an event. It never panics on
//! any input and always keeps the parsed object, so the debug view can show
//! unknown extra fields and legacy messages whole.

use serde_json::{Map, Value};

use crate::event::{Event, EventKind};

/// What one Redis message turned out to be.
// Most messages are typed, so boxing the big variant would add an allocation
// to nearly every message to save space only on the rare other two.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A known `type` with every required field well typed. `raw` is the
    /// whole object, unknown extra fields included.
    Typed {
        /// The event, parsed into its type.
        event: Event,
        /// The whole JSON object as published.
        raw: Map<String, Value>,
    },
    /// A JSON object whose `type` is not one of protocol.md's (the older
    /// `publishWs` helper, say). Delivered and shown, marked as legacy.
    Legacy {
        /// The whole JSON object as published.
        raw: Map<String, Value>,
    },
    /// Not JSON, not an object, or a known `type` with a missing or
    /// ill-typed field. Never delivered as an event.
    Malformed(Malformed),
}

/// Why a message is malformed, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Malformed {
    /// For example ``inventory:change: missing field `productId` ``.
    pub reason: String,
    /// The `type` the message claimed, when it was an object with a known one.
    pub kind: Option<EventKind>,
}

impl Malformed {
    fn new(reason: impl Into<String>) -> Self {
        Malformed { reason: reason.into(), kind: None }
    }
}

impl Decoded {
    /// The typed event, if this is one.
    pub fn event(&self) -> Option<&Event> {
        match self {
            Decoded::Typed { event, .. } => Some(event),
            _ => None,
        }
    }

    /// A short word for the outcome: `typed`, `legacy` or `malformed`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decoded::Typed { .. } => "typed",
            Decoded::Legacy { .. } => "legacy",
            Decoded::Malformed(_) => "malformed",
        }
    }
}

/// Decodes one message payload.
pub fn decode(payload: &[u8]) -> Decoded {
    let text = match std::str::from_utf8(payload) {
        Ok(text) => text,
        Err(error) => {
            return Decoded::Malformed(Malformed::new(format!(
                "not UTF-8 text: invalid byte at offset {}",
                error.valid_up_to()
            )));
        }
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => return Decoded::Malformed(Malformed::new(format!("not JSON: {error}"))),
    };
    if !value.is_object() {
        return Decoded::Malformed(Malformed::new(format!(
            "not a JSON object: got {}",
            describe(&value)
        )));
    }
    let kind = value.get("type").and_then(Value::as_str).and_then(EventKind::from_wire);
    let outcome = kind.map(|kind| typed(kind, &value));
    let Value::Object(raw) = value else {
        unreachable!("checked above that the value is an object")
    };
    match outcome {
        None => Decoded::Legacy { raw },
        Some(Ok(event)) => Decoded::Typed { event, raw },
        Some(Err(reason)) => Decoded::Malformed(Malformed { reason, kind }),
    }
}

/// Decodes an object already known to have the `type` of `kind`.
fn typed(kind: EventKind, raw: &Value) -> Result<Event, String> {
    use crate::event::{
        Approval, Broadcast, DataChange, Finance, InventoryChange, Notification, OrderStatus,
        SystemNotice,
    };
    fn fields<T: serde::de::DeserializeOwned>(kind: EventKind, raw: &Value) -> Result<T, String> {
        // serde_path_to_error names the field a type error is in; serde alone
        // only says "invalid type" without saying where.
        serde_path_to_error::deserialize(raw).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner().to_string();
            if path == "." || inner.starts_with("missing field") {
                format!("{kind}: {inner}")
            } else {
                format!("{kind}: field `{path}`: {inner}")
            }
        })
    }
    Ok(match kind {
        EventKind::Notification => Event::Notification(fields::<Notification>(kind, raw)?),
        EventKind::InventoryChange => Event::InventoryChange(fields::<InventoryChange>(kind, raw)?),
        EventKind::OrderStatus => Event::OrderStatus(fields::<OrderStatus>(kind, raw)?),
        EventKind::ApprovalRequest => Event::ApprovalRequest(fields::<Approval>(kind, raw)?),
        EventKind::ApprovalApproved => Event::ApprovalApproved(fields::<Approval>(kind, raw)?),
        EventKind::ApprovalRejected => Event::ApprovalRejected(fields::<Approval>(kind, raw)?),
        EventKind::FinancePayment => Event::FinancePayment(fields::<Finance>(kind, raw)?),
        EventKind::FinanceRefund => Event::FinanceRefund(fields::<Finance>(kind, raw)?),
        EventKind::FinanceOverdue => Event::FinanceOverdue(fields::<Finance>(kind, raw)?),
        EventKind::DataChange => Event::DataChange(fields::<DataChange>(kind, raw)?),
        EventKind::SystemMaintenance => {
            Event::SystemMaintenance(fields::<SystemNotice>(kind, raw)?)
        }
        EventKind::SystemUpdate => Event::SystemUpdate(fields::<SystemNotice>(kind, raw)?),
        EventKind::SystemAlert => Event::SystemAlert(fields::<SystemNotice>(kind, raw)?),
        EventKind::Broadcast => Event::Broadcast(fields::<Broadcast>(kind, raw)?),
    })
}

/// "a string", "an array", ... for error messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
