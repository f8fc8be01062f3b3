//! Channels: logical names (`inventory`, `user:u1:notifications`), their Redis
//! names (`ws:` + logical), user-id validation, and which channel an event
//! belongs on.
//!
//! The gateway speaks logical names to clients; Redis sees the `ws:` names.
//! Every user id is checked before it becomes part of a channel name, so no id
//! can widen a pattern (`*`, `?`, `[`) or reach another user's channel (`:`).

use std::fmt;
use std::str::FromStr;

use crate::event::{DataResource, Event, EventKind};

/// Prefix of every Redis channel Tidings uses.
pub const REDIS_PREFIX: &str = "ws:";

/// The pattern that matches every Tidings channel in Redis.
pub const REDIS_PATTERN_ALL: &str = "ws:*";

/// Longest user id protocol.md allows, in characters.
pub const USER_ID_MAX_CHARS: usize = 128;

/// A user id that is safe to put into a channel name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// Why a user id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    /// The id has no characters.
    #[error("user id is empty; it needs 1 to 128 letters, digits, '-', '_', '.' or '@'")]
    Empty,
    /// The id is longer than 128 characters; holds its length in characters.
    #[error("user id is {0} characters long; at most 128 are allowed")]
    TooLong(usize),
    /// The id has a character other than a letter, digit, `-`, `_`, `.` or `@`.
    #[error(
        "user id {id:?} has {found:?} at character {position}; only letters, digits, '-', '_', '.' and '@' are allowed"
    )]
    BadCharacter {
        /// The refused id.
        id: String,
        /// The first character that is not allowed.
        found: char,
        /// Where `found` is in the id, counting characters from 1.
        position: usize,
    },
}

impl UserId {
    /// Checks `id` against protocol.md: 1 to 128 of letters, digits, `-_.@`.
    pub fn new(id: impl Into<String>) -> Result<Self, UserIdError> {
        let id = id.into();
        let length = id.chars().count();
        if length == 0 {
            return Err(UserIdError::Empty);
        }
        if length > USER_ID_MAX_CHARS {
            return Err(UserIdError::TooLong(length));
        }
        if let Some((index, found)) = id.chars().enumerate().find(|(_, c)| !is_user_id_char(*c)) {
            return Err(UserIdError::BadCharacter { id, found, position: index + 1 });
        }
        Ok(UserId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Letters and digits in any script (the ERP has Chinese user names), plus
/// the four punctuation marks protocol.md allows. Control characters,
/// whitespace and pattern metacharacters are not alphanumeric.
fn is_user_id_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserId {
    type Err = UserIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserId::new(s)
    }
}

/// One logical channel of protocol.md.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// `user:{userId}:notifications`
    UserNotifications(UserId),
    /// `inventory` (Redis `ws:inventory`): `inventory:change` events.
    Inventory,
    /// `orders` (Redis `ws:orders`): `order:status` events.
    Orders,
    /// `approvals` (Redis `ws:approvals`): approval requests and results.
    Approvals,
    /// `finance` (Redis `ws:finance`): `finance:payment`, `finance:refund`, `finance:overdue`.
    Finance,
    /// `products` (Redis `ws:products`): `data:change` for products and categories.
    Products,
    /// `customers` (Redis `ws:customers`): `data:change` for customers.
    Customers,
    /// `suppliers` (Redis `ws:suppliers`): `data:change` for suppliers.
    Suppliers,
    /// `system` (Redis `ws:system`): `system:*` notices and `data:change` for users.
    System,
    /// `broadcast` (Redis `ws:broadcast`): `broadcast` messages for everyone.
    Broadcast,
}

/// Why a channel name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// A name that is none of protocol.md's channels; holds the name.
    #[error(
        "unknown channel {0:?}; expected one of inventory, orders, approvals, finance, products, customers, suppliers, system, broadcast or user:{{userId}}:notifications"
    )]
    Unknown(String),
    /// A `user:{userId}:notifications` name whose user id is refused.
    #[error("channel {name:?}: {source}")]
    BadUserId {
        /// The channel name as given.
        name: String,
        /// Why the user id was refused.
        #[source]
        source: UserIdError,
    },
    /// A Redis channel name without the `ws:` prefix; holds the name.
    #[error("Redis channel {0:?} does not start with \"ws:\"; it is not a Tidings channel")]
    NotTidings(String),
}

impl Channel {
    /// The shared channels, in protocol.md's order (user channels excluded).
    pub const SHARED: [Channel; 9] = [
        Channel::Inventory,
        Channel::Orders,
        Channel::Approvals,
        Channel::Finance,
        Channel::Products,
        Channel::Customers,
        Channel::Suppliers,
        Channel::System,
        Channel::Broadcast,
    ];

    /// The notifications channel of `user`.
    pub fn user(user: UserId) -> Self {
        Channel::UserNotifications(user)
    }

    /// Parses a logical name such as `inventory` or `user:u1:notifications`.
    pub fn parse(name: &str) -> Result<Self, ChannelError> {
        let shared = match name {
            "inventory" => Some(Channel::Inventory),
            "orders" => Some(Channel::Orders),
            "approvals" => Some(Channel::Approvals),
            "finance" => Some(Channel::Finance),
            "products" => Some(Channel::Products),
            "customers" => Some(Channel::Customers),
            "suppliers" => Some(Channel::Suppliers),
            "system" => Some(Channel::System),
            "broadcast" => Some(Channel::Broadcast),
            _ => None,
        };
        if let Some(channel) = shared {
            return Ok(channel);
        }
        let user = name
            .strip_prefix("user:")
            .and_then(|rest| rest.strip_suffix(":notifications"))
            .ok_or_else(|| ChannelError::Unknown(name.to_owned()))?;
        UserId::new(user)
            .map(Channel::UserNotifications)
            .map_err(|source| ChannelError::BadUserId { name: name.to_owned(), source })
    }

    /// Parses a Redis channel name such as `ws:inventory`.
    pub fn from_redis(name: &str) -> Result<Self, ChannelError> {
        let logical = name
            .strip_prefix(REDIS_PREFIX)
            .ok_or_else(|| ChannelError::NotTidings(name.to_owned()))?;
        Channel::parse(logical)
    }

    /// The logical name, as clients of the gateway write it.
    pub fn name(&self) -> String {
        match self {
            Channel::UserNotifications(user) => format!("user:{user}:notifications"),
            other => other.shared_name().unwrap_or_default().to_owned(),
        }
    }

    /// The Redis channel name: `ws:` + the logical name.
    pub fn redis_name(&self) -> String {
        format!("{REDIS_PREFIX}{}", self.name())
    }

    /// The name of a shared channel; `None` for a user channel.
    pub fn shared_name(&self) -> Option<&'static str> {
        Some(match self {
            Channel::UserNotifications(_) => return None,
            Channel::Inventory => "inventory",
            Channel::Orders => "orders",
            Channel::Approvals => "approvals",
            Channel::Finance => "finance",
            Channel::Products => "products",
            Channel::Customers => "customers",
            Channel::Suppliers => "suppliers",
            Channel::System => "system",
            Channel::Broadcast => "broadcast",
        })
    }

    /// The user a notifications channel belongs to.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Channel::UserNotifications(user) => Some(user),
            _ => None,
        }
    }

    /// Whether protocol.md lists `event` as something this channel carries.
    pub fn carries(&self, event: &Event) -> bool {
        match Channel::for_event(event) {
            Ok(home) => &home == self,
            // A notification without a userId belongs on any user channel.
            Err(_) => matches!(self, Channel::UserNotifications(_)),
        }
    }

    /// The channel `event` belongs on. A notification needs its `userId`.
    pub fn for_event(event: &Event) -> Result<Channel, ChannelError> {
        Ok(match event {
            Event::Notification(n) => {
                let user = n.user_id.clone().unwrap_or_default();
                return UserId::new(user).map(Channel::UserNotifications).map_err(|source| {
                    ChannelError::BadUserId { name: "user:{userId}:notifications".into(), source }
                });
            }
            Event::InventoryChange(_) => Channel::Inventory,
            Event::OrderStatus(_) => Channel::Orders,
            Event::ApprovalRequest(_) | Event::ApprovalApproved(_) | Event::ApprovalRejected(_) => {
                Channel::Approvals
            }
            Event::FinancePayment(_) | Event::FinanceRefund(_) | Event::FinanceOverdue(_) => {
                Channel::Finance
            }
            Event::DataChange(change) => Channel::for_resource(change.resource),
            Event::SystemMaintenance(_) | Event::SystemUpdate(_) | Event::SystemAlert(_) => {
                Channel::System
            }
            Event::Broadcast(_) => Channel::Broadcast,
        })
    }

    /// The channel a `data:change` about `resource` goes on.
    pub fn for_resource(resource: DataResource) -> Channel {
        match resource {
            DataResource::Product | DataResource::Category => Channel::Products,
            DataResource::Customer => Channel::Customers,
            DataResource::Supplier => Channel::Suppliers,
            DataResource::User => Channel::System,
        }
    }

    /// The event kinds protocol.md lists for this channel.
    pub fn kinds(&self) -> &'static [EventKind] {
        use EventKind as K;
        match self {
            Channel::UserNotifications(_) => &[K::Notification],
            Channel::Inventory => &[K::InventoryChange],
            Channel::Orders => &[K::OrderStatus],
            Channel::Approvals => &[K::ApprovalRequest, K::ApprovalApproved, K::ApprovalRejected],
            Channel::Finance => &[K::FinancePayment, K::FinanceRefund, K::FinanceOverdue],
            Channel::Products | Channel::Customers | Channel::Suppliers => &[K::DataChange],
            Channel::System => {
                &[K::SystemMaintenance, K::SystemUpdate, K::SystemAlert, K::DataChange]
            }
            Channel::Broadcast => &[K::Broadcast],
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::UserNotifications(user) => write!(f, "user:{user}:notifications"),
            other => f.write_str(other.shared_name().unwrap_or_default()),
        }
    }
}

impl FromStr for Channel {
    type Err = ChannelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::parse(s)
    }
}

impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Channel::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shared_channel_round_trips_through_its_names() {
        for channel in Channel::SHARED {
            assert_eq!(Channel::parse(&channel.name()), Ok(channel.clone()));
            assert_eq!(Channel::from_redis(&channel.redis_name()), Ok(channel.clone()));
            assert_eq!(channel.redis_name(), format!("ws:{}", channel.name()));
        }
    }

    #[test]
    fn user_channel_has_the_protocol_names() {
        let channel = Channel::user(UserId::new("u1").unwrap());
        assert_eq!(channel.name(), "user:u1:notifications");
        assert_eq!(channel.redis_name(), "ws:user:u1:notifications");
        assert_eq!(Channel::parse("user:u1:notifications"), Ok(channel));
    }

    #[test]
    fn user_ids_allow_letters_digits_and_four_marks() {
        for id in ["u1", "alice@example.com", "A-b_c.d", "张三", &"x".repeat(128)] {
            assert!(UserId::new(id).is_ok(), "{id} should be accepted");
        }
    }

    #[test]
    fn user_ids_refuse_pattern_and_separator_characters() {
        for id in ["a:b", "*", "u?", "u[1]", "a b", "tab\there", "nul\0", "new\nline"] {
            let error = UserId::new(id).unwrap_err();
            assert!(matches!(error, UserIdError::BadCharacter { .. }), "{id}: {error}");
        }
        assert_eq!(UserId::new(""), Err(UserIdError::Empty));
        assert_eq!(UserId::new("x".repeat(129)), Err(UserIdError::TooLong(129)));
    }

    #[test]
    fn bad_user_id_error_says_which_character_and_where() {
        let message = UserId::new("ab:c").unwrap_err().to_string();
        assert!(message.contains("':'") && message.contains("character 3"), "{message}");
    }

    #[test]
    fn a_user_channel_cannot_smuggle_another_channel() {
        assert!(Channel::parse("user:u1:notifications:user:u2:notifications").is_err());
        assert!(Channel::parse("user:*:notifications").is_err());
        assert!(Channel::parse("user::notifications").is_err());
    }

    #[test]
    fn unknown_channels_are_refused_with_the_list_of_known_ones() {
        let message = Channel::parse("stock").unwrap_err().to_string();
        assert!(message.contains("\"stock\"") && message.contains("inventory"), "{message}");
        assert!(matches!(Channel::from_redis("inventory"), Err(ChannelError::NotTidings(_))));
    }

    #[test]
    fn data_changes_go_to_the_channel_of_their_resource() {
        assert_eq!(Channel::for_resource(DataResource::Product), Channel::Products);
        assert_eq!(Channel::for_resource(DataResource::Category), Channel::Products);
        assert_eq!(Channel::for_resource(DataResource::Customer), Channel::Customers);
        assert_eq!(Channel::for_resource(DataResource::Supplier), Channel::Suppliers);
        assert_eq!(Channel::for_resource(DataResource::User), Channel::System);
    }
}
