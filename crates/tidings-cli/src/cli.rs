//! The command line: every subcommand and flag of `tidings`, in one place.
//!
//! [`Command`] is THE list of subcommands. The gateway crate adds its own as
//! `Gateway(tidings_gateway::GatewayArgs)` here and one arm in `main.rs`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tidings_events::UserId;
use tidings_events::args::finite_number;
use tidings_events::event::{
    Approval, ApprovalDecision, Broadcast, DataChange, Finance, FinanceEventType, InventoryChange,
    Notification, OrderStatus, SystemEventType, SystemNotice,
};

const ABOUT: &str = "Publish, watch and simulate Tidings ERP events on Redis.";

const EXAMPLES: &str = "\
Examples:
  tidings tail                                   # every event on ws:*, one line each
  tidings tail inventory user:u1:notifications   # just these channels
  tidings tail --json | jq .                     # one JSON object per line
  tidings publish inventory --product-id 123 --action adjust --old-quantity 10 --new-quantity 15
  tidings publish raw inventory '{\"type\":\"adjust\",\"productId\":\"123\",\"quantity\":10}'
  tidings demo --rate 20 --duration 1m --seed 42
  TIDINGS_REDIS_URL=redis://:secret@redis.internal:6379 tidings tail

Exit codes: 0 success, 1 other failure, 2 bad input or configuration, 3 Redis unreachable.";

#[derive(Debug, Parser)]
#[command(name = "tidings", version, about = ABOUT, after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// Redis to talk to: redis://[user:password@]host[:port][/db] (rediss:// for TLS),
    /// redis+sentinel://[:password@]host:port[,…]/service or
    /// redis+cluster://[:password@]host:port[,…].
    #[arg(
        long = "redis",
        global = true,
        env = "TIDINGS_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// Allow a `rediss://…#insecure` --redis (TLS without certificate
    /// checks) for publish, demo, record and gateway. Without it such a URL
    /// is refused (exit 2); `tail` always checks certificates.
    #[arg(long, global = true, env = "TIDINGS_INSECURE_TLS")]
    pub insecure_tls: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand. Parsed once at start and matched once, so the size
/// of its largest variant (the gateway's many options) costs nothing.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    /// Publish one event through the Rust publishers.
    #[command(subcommand, after_help = PUBLISH_EXAMPLES)]
    Publish(PublishKind),
    /// Show events as they are published, one line each (or JSON with --json).
    #[command(after_help = TAIL_EXAMPLES)]
    Tail(TailArgs),
    /// Publish realistic ERP traffic: stock moves, orders, approvals, payments, notices.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Run the gateway: Redis `ws:*` events fanned out to WebSocket clients
    /// (the same as the `tidings-gateway` binary; see docs/gateway.md).
    Gateway(tidings_gateway::GatewayArgs),
    /// Print a JWT the gateway accepts for a user (for development and
    /// scripts; production tokens come from the ERP's login).
    #[command(after_help = TOKEN_EXAMPLES)]
    Token(TokenArgs),
    /// Record every `ws:*` event in history and hold the recording duty
    /// (docs/positions.md, "Coverage"), as a gateway does: run one where
    /// desktops read Redis directly and no gateway runs, so their resumes
    /// are exact across their own restarts.
    #[command(after_help = RECORD_EXAMPLES)]
    Record(RecordArgs),
}

const RECORD_EXAMPLES: &str = "\
Examples:
  tidings record
  tidings --redis redis://:secret@redis.internal:6379 record --max-age 7d";

/// `tidings record`.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// Events kept per channel.
    #[arg(long, default_value_t = 10_000)]
    pub max_len: u64,
    /// How long an event stays in history (e.g. 24h, 7d).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub max_age: Duration,
}

const TOKEN_EXAMPLES: &str = "\
Examples:
  tidings token --user u1 --jwt-secret dev-secret-at-least-32-bytes-long
  TIDINGS_JWT_SECRET=dev-secret-at-least-32-bytes-long tidings token --user u1 --ttl 8h --channels inventory,orders";

/// `tidings token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The user id (`sub`): the token reaches `user:{ID}:notifications`.
    #[arg(long, value_parser = parse_user_id)]
    pub user: UserId,
    /// The gateway's HS256 secret.
    #[arg(long, env = "TIDINGS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// How long the token is valid (e.g. 30m, 8h).
    #[arg(long, default_value = "8h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// Narrow the shared channels the token may subscribe to (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<String>>,
}

const PUBLISH_EXAMPLES: &str = "\
Examples:
  tidings publish notification --user u1 --notification-type warning --title 库存不足 --message '螺丝刀 only 3 left'
  tidings publish inventory --product-id 123 --action adjust --old-quantity 10 --new-quantity 15 --product-name 螺丝刀
  tidings publish order --order-type sales --order-id o-1 --order-number SO-2026-000123 --old-status pending --new-status shipped
  tidings publish approval-request --resource-type refund --resource-id r-7 --resource-number RF-2026-000042 --requester-id u2 --requester-name 李娜
  tidings publish approval-result --decision rejected --resource-type refund --resource-id r-7 --resource-number RF-2026-000042 --requester-id u2 --requester-name 李娜 --reason 超出预算
  tidings publish finance --type overdue --action overdue --record-type payment --record-id p-1 --record-number PAY-2026-000321 --amount 12850.50
  tidings publish data-change --resource product --action updated --resource-id 123 --changes '{\"price\":12.5}'
  tidings publish system --type maintenance --level warning --message 'Maintenance at 22:00'
  tidings publish broadcast --message 'Happy new year' --level success
  echo '{\"type\":\"adjust\",\"productId\":\"123\"}' | tidings publish raw inventory -

Prints where the message went and how many subscribers received it.";

const TAIL_EXAMPLES: &str = "\
Channels are logical names (inventory, orders, user:u1:notifications), Redis
names (ws:inventory) or patterns (ws:user:*). Default: everything (ws:*).

Examples:
  tidings tail
  tidings tail approvals 'user:*'
  tidings tail --json > events.jsonl";

const DEMO_EXAMPLES: &str = "\
Examples:
  tidings demo                          # 5 events/s until Ctrl-C
  tidings demo --rate 50 --duration 30s --chaos
  tidings demo --seed 42 --count 100    # the same 100 events every time";

/// Options every publish shares.
#[derive(Debug, Clone, Args)]
pub(crate) struct PublishOptions {
    /// Give up on a publish after this long (e.g. 500ms, 2s).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// One variant per publisher helper; the event's own flags come from the
/// contract's payload types (`tidings-events`, feature `clap`), so a field
/// added there is a flag here without an edit.
#[derive(Debug, Subcommand)]
pub(crate) enum PublishKind {
    /// `notification` on user:{userId}:notifications.
    Notification {
        #[arg(long, value_parser = parse_user_id)]
        user: UserId,
        #[command(flatten)]
        notification: Notification,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// `inventory:change` on inventory (changeAmount = new − old is filled in).
    Inventory {
        #[command(flatten)]
        change: InventoryChange,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// `order:status` on orders.
    Order {
        #[command(flatten)]
        order: OrderStatus,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// `approval:request` on approvals.
    ApprovalRequest {
        #[command(flatten)]
        approval: Approval,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// `approval:approved`/`approval:rejected` on approvals, plus a notification to the requester.
    ApprovalResult {
        #[arg(long, value_enum)]
        decision: ApprovalDecision,
        #[command(flatten)]
        approval: Approval,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// `finance:payment`/`finance:refund`/`finance:overdue` on finance.
    Finance {
        #[arg(long = "type", value_enum)]
        kind: FinanceEventType,
        #[command(flatten)]
        record: Finance,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// `data:change` on the channel of its resource.
    DataChange {
        #[command(flatten)]
        change: DataChange,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// `system:maintenance`/`system:update`/`system:alert` on system.
    System {
        #[arg(long = "type", value_enum)]
        kind: SystemEventType,
        #[command(flatten)]
        notice: SystemNotice,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// `broadcast` on broadcast.
    Broadcast {
        #[command(flatten)]
        broadcast: Broadcast,
        #[command(flatten)]
        options: PublishOptions,
    },
    /// Any JSON object on a channel, checked first (malformed is refused, legacy is sent).
    Raw {
        /// Logical channel (inventory, user:u1:notifications) or its ws: name.
        channel: String,
        /// The JSON text, or - to read it from stdin.
        json: String,
        #[command(flatten)]
        options: PublishOptions,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Channels or patterns to watch; default: everything (ws:*).
    pub channels: Vec<String>,
    /// One JSON object per line: channel, outcome, event/raw, reason.
    #[arg(long)]
    pub json: bool,
    /// Colour the output: auto (only on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Events per second.
    #[arg(long, default_value = "5", value_parser = parse_rate)]
    pub rate: f64,
    /// Stop after this long (e.g. 30s, 5m); default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seed for the random choices: the same seed gives the same events.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Mix in legacy (untyped) and malformed messages, as a messy backend would.
    #[arg(long)]
    pub chaos: bool,
    /// Print each event as it is published.
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub options: PublishOptions,
}

fn parse_user_id(text: &str) -> Result<UserId, String> {
    UserId::new(text).map_err(|error| error.to_string())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate = finite_number(text)?;
    if rate > 0.0 && rate <= 100_000.0 {
        Ok(rate)
    } else {
        Err(format!("{text} events/s is out of range; use more than 0 and at most 100000"))
    }
}

/// `500ms`, `2s`, `1.5s`, `5m`, `1h`; a bare number is seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 500ms, 2s, 5m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {text:?}; use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn protocol_values_are_parsed_with_their_wire_spelling() {
        use tidings_events::event::{FinanceRecordType, InventoryAction};
        assert_eq!("paymentOut".parse::<FinanceRecordType>(), Ok(FinanceRecordType::PaymentOut));
        let error = "teleport".parse::<InventoryAction>().unwrap_err();
        assert!(error.contains("teleport") && error.contains("adjust"), "{error}");
    }

    /// The wire field names of a payload type, as serde knows them: a
    /// deserializer that only records the `fields` serde hands it.
    fn wire_fields<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
        struct Fields(Vec<&'static str>);
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stop")
            }
        }
        impl std::error::Error for Stop {}
        impl serde::de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Stop
            }
        }
        impl<'de> serde::Deserializer<'de> for &mut Fields {
            type Error = Stop;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                self.0.extend_from_slice(fields);
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut fields = Fields(Vec::new());
        let _ = T::deserialize(&mut fields);
        fields.0
    }

    /// The long flags of the `clap::Args` a payload type derives.
    fn flags<T: Args>() -> Vec<String> {
        T::augment_args(clap::Command::new("t"))
            .get_arguments()
            .filter_map(|arg| arg.get_long().map(str::to_owned))
            .collect()
    }

    fn kebab(camel: &str) -> String {
        camel.chars().fold(String::new(), |mut out, c| {
            if c.is_ascii_uppercase() {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
            out
        })
    }

    /// Issue 20: an event's fields are defined once, in `tidings-events`.
    /// Every field of every payload is a `tidings publish` flag, derived from
    /// the contract; what the publisher stamps (`timestamp`, `changeAmount`,
    /// a notification's `userId`, which is `--user`) is the only exception.
    /// So an optional field added to a payload in the contract is a flag
    /// here with no edit to this crate (and the publisher passes it through
    /// with `..payload`); a field added there without its `arg(long)`
    /// attribute fails this test, pointing back at the contract.
    #[test]
    fn every_payload_field_is_a_publish_flag_derived_from_the_contract() {
        use tidings_events::event::*;
        fn check<T: Args + serde::de::DeserializeOwned>(name: &str, stamped: &[&str]) {
            let fields = wire_fields::<T>();
            assert!(!fields.is_empty(), "{name}: no fields found");
            let flags = flags::<T>();
            for field in fields.iter().filter(|field| !stamped.contains(field)) {
                let flag = match *field {
                    "affectedUsers" => "affected-user".to_owned(),
                    other => kebab(other),
                };
                assert!(flags.contains(&flag), "{name}.{field} has no --{flag}: {flags:?}");
            }
            for stamped in stamped {
                assert!(!flags.contains(&kebab(stamped)), "{name}.{stamped} is stamped");
            }
        }
        check::<Notification>("Notification", &["timestamp", "userId"]);
        check::<InventoryChange>("InventoryChange", &["timestamp", "changeAmount"]);
        check::<OrderStatus>("OrderStatus", &["timestamp"]);
        check::<Approval>("Approval", &["timestamp"]);
        check::<Finance>("Finance", &["timestamp"]);
        check::<DataChange>("DataChange", &["timestamp"]);
        check::<SystemNotice>("SystemNotice", &["timestamp"]);
        check::<Broadcast>("Broadcast", &["timestamp"]);
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
