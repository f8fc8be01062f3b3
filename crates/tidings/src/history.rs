//! Positions and bounded per-channel history in Redis (docs/positions.md).
//!
//! Redis Pub/Sub forgets a message the moment it is delivered. To let a
//! client that was away catch up exactly once, every message on a `ws:*`
//! channel is also appended to a Redis stream for that channel, and its
//! stream id, qualified by an epoch, is its *position*:
//!
//! - [`History::publish`] appends and publishes in one Lua script, so a
//!   message is never published without being recorded (this project's
//!   publishers use it).
//! - [`History::record`] appends a message that was published with a plain
//!   `PUBLISH` (the TypeScript backend, `redis-cli`). Every gateway and every
//!   direct desktop client calls it for each message it receives; a short
//!   lived "seen" key makes it idempotent, so several recorders store the
//!   message once and all learn the same position.
//! - [`History::recover`] returns what a channel received after a position,
//!   and whether that is everything (`recovered`) or history no longer
//!   reaches back that far (trimmed, or a new epoch after Redis lost data).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Script, Value};

/// Key of the epoch: a random word created when absent. If Redis loses its
/// data, the epoch is gone with the streams, a new one is made, and every
/// position from before no longer matches.
pub const EPOCH_KEY: &str = "tidings:epoch";

/// Key of the history stream of a Redis channel.
pub fn stream_key(redis_channel: &str) -> String {
    format!("tidings:history:{{{redis_channel}}}")
}

fn seen_key(redis_channel: &str, payload: &[u8]) -> String {
    let digest = sha1_smol::Sha1::from(payload).digest().to_string();
    format!("tidings:seen:{{{redis_channel}}}:{digest}")
}

/// Limits of the history, set by whoever writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Entries kept per channel (trimmed approximately, as `MAXLEN ~`).
    pub max_len: u64,
    /// Entries older than this are trimmed on the next append (exact
    /// `MINID`); zero keeps all.
    pub max_age: Duration,
    /// How long a recorded payload is remembered, so that recorders that
    /// receive the same message store it once. Identical payloads published
    /// within this window are recorded (and so delivered on resume) once.
    pub dedup_window: Duration,
    /// Most entries a single recovery returns; a longer gap is reported as
    /// not recovered and only the newest entries are returned.
    pub recover_limit: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            max_len: 10_000,
            max_age: Duration::from_secs(24 * 3600),
            dedup_window: Duration::from_secs(60),
            recover_limit: 10_000,
        }
    }
}

/// A stream id: milliseconds of Redis time and a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub millis: u64,
    pub seq: u64,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = PositionError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PositionError(format!("{text:?} is not a stream id (expected MILLIS-SEQ)"));
        let (millis, seq) = text.split_once('-').ok_or_else(bad)?;
        Ok(StreamId {
            millis: millis.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// Where an event sits in its channel's history: `EPOCH:MILLIS-SEQ`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    pub epoch: String,
    pub id: StreamId,
}

/// A position string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad position: {0}")]
pub struct PositionError(String);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.id)
    }
}

impl FromStr for Position {
    type Err = PositionError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (epoch, id) = text.rsplit_once(':').ok_or_else(|| {
            PositionError(format!("{text:?} has no ':' (expected EPOCH:MILLIS-SEQ)"))
        })?;
        if epoch.is_empty() || !epoch.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(PositionError(format!("{text:?} has a bad epoch {epoch:?}")));
        }
        Ok(Position { epoch: epoch.to_owned(), id: id.parse()? })
    }
}

impl Position {
    /// Milliseconds since the epoch (Redis time) at which it was recorded.
    pub fn recorded_at(&self) -> u64 {
        self.id.millis
    }
}

/// One event read back from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub position: Position,
    pub payload: Vec<u8>,
}

/// What a channel received after a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Oldest first.
    pub entries: Vec<Entry>,
    /// True when `entries` is everything after the position; false when
    /// history was trimmed past it or Redis lost its data (new epoch).
    pub recovered: bool,
    pub epoch: String,
}

/// Why a history operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("Redis refused the history script: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the history script answered something unexpected: {0}")]
    Unexpected(String),
}

// Appends ARGV[1] to the stream KEYS[1] unless KEYS[2] says it already was;
// returns {epoch, id, recorded}. With ARGV[6] set, also publishes it on that
// channel and returns the receiver count as a fourth element, atomically.
const APPEND_LUA: &str = r"
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', KEYS[3], epoch)
end
local id = redis.call('GET', KEYS[2])
local recorded = 0
if not id then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local prev = '0-0'
  if #last > 0 then prev = last[1][1] end
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[1], 'p', prev)
  local max_age = tonumber(ARGV[3])
  if max_age > 0 then
    local now = redis.call('TIME')
    local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - max_age
    if cutoff > 0 then redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', cutoff)) end
  end
  redis.call('SET', KEYS[2], id, 'PX', ARGV[4])
  recorded = 1
end
if ARGV[6] ~= '' then
  return {epoch, id, recorded, redis.call('PUBLISH', ARGV[6], ARGV[1])}
end
return {epoch, id, recorded}
";

// Entries of stream KEYS[1] after ARGV[2] in epoch ARGV[1], at most ARGV[3];
// returns {epoch, recovered, entries}.
const RECOVER_LUA: &str = r"
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[2], epoch)
end
local limit = tonumber(ARGV[3])
if epoch ~= ARGV[1] then
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', limit)
  return {epoch, 0, newest, 1}
end
local after = redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', limit + 1)
if #after > limit then
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '(' .. ARGV[2], 'COUNT', limit)
  return {epoch, 0, newest, 1}
end
if #after > 0 then
  local fields = after[1][2]
  local prev = nil
  for i = 1, #fields, 2 do
    if fields[i] == 'p' then prev = fields[i + 1] end
  end
  if prev == ARGV[2] then return {epoch, 1, after, 0} end
  return {epoch, 0, after, 0}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {epoch, 0, after, 0}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then
    if info[i + 1] == ARGV[2] then return {epoch, 1, after, 0} end
  end
end
return {epoch, 0, after, 0}
";

/// A connection for recording and replaying history that waits up to
/// `timeout` to connect and for each reply.
///
/// Not redis-rs's default 500 ms reply timeout: a Redis busy recording
/// thousands of events a second can take longer for one batch, and giving
/// up there drops the connection and the messages read but not yet
/// recorded. Gateways and Redis sources both record through one of these.
pub async fn recorder_connection(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client.get_multiplexed_async_connection_with_config(&config).await
}

/// The history scripts and their limits.
#[derive(Debug, Clone)]
pub struct History {
    config: HistoryConfig,
    append: Script,
    recover: Script,
}

impl History {
    pub fn new(config: HistoryConfig) -> Self {
        History { config, append: Script::new(APPEND_LUA), recover: Script::new(RECOVER_LUA) }
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.config
    }

    /// Records a message that was published with a plain `PUBLISH`, once
    /// however many recorders call this, and returns its position.
    pub async fn record<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        payload: &[u8],
    ) -> Result<Position, HistoryError> {
        let reply = self.run_append(connection, redis_channel, payload, "").await?;
        Ok(reply.0)
    }

    /// Records and publishes in one atomic step; returns the position and
    /// how many subscribers received it.
    pub async fn publish<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        payload: &[u8],
    ) -> Result<(Position, u64), HistoryError> {
        let (position, receivers) =
            self.run_append(connection, redis_channel, payload, redis_channel).await?;
        Ok((position, receivers.unwrap_or(0)))
    }

    /// Records several plain-published messages, in order, in one round
    /// trip (a pipeline), and returns their positions in the same order.
    /// Recorders use this to keep up with a busy channel: the order of the
    /// list is the order in which they were received, which is the order in
    /// which they are appended.
    pub async fn record_many<C: ConnectionLike>(
        &self,
        connection: &mut C,
        messages: &[(&str, &[u8])],
    ) -> Result<Vec<Position>, HistoryError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipeline = redis::pipe();
        for (channel, payload) in messages {
            pipeline.add_command(self.append_command(channel, payload, ""));
        }
        let replies: Vec<Value> = match pipeline.query_async(connection).await {
            Err(error) if is_no_script(&error) => {
                self.load(connection).await?;
                pipeline.query_async(connection).await?
            }
            other => other?,
        };
        replies.into_iter().map(|reply| parse_append(reply).map(|(position, _)| position)).collect()
    }

    /// Loads both scripts into Redis's script cache, which a restart empties.
    pub async fn load<C: ConnectionLike>(&self, connection: &mut C) -> Result<(), HistoryError> {
        for script in [APPEND_LUA, RECOVER_LUA] {
            redis::cmd("SCRIPT").arg("LOAD").arg(script).exec_async(connection).await?;
        }
        Ok(())
    }

    async fn run_append<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        payload: &[u8],
        publish_on: &str,
    ) -> Result<(Position, Option<u64>), HistoryError> {
        let command = self.append_command(redis_channel, payload, publish_on);
        let reply: Value = match command.query_async(connection).await {
            Err(error) if is_no_script(&error) => {
                self.load(connection).await?;
                command.query_async(connection).await?
            }
            other => other?,
        };
        parse_append(reply)
    }

    /// `EVALSHA` of the append script (see [`History::load`] for NOSCRIPT).
    fn append_command(&self, redis_channel: &str, payload: &[u8], publish_on: &str) -> redis::Cmd {
        let mut command = redis::cmd("EVALSHA");
        command
            .arg(self.append.get_hash())
            .arg(3)
            .arg(stream_key(redis_channel))
            .arg(seen_key(redis_channel, payload))
            .arg(EPOCH_KEY)
            .arg(payload)
            .arg(self.config.max_len)
            .arg(u64::try_from(self.config.max_age.as_millis()).unwrap_or(u64::MAX))
            .arg(u64::try_from(self.config.dedup_window.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg(new_epoch())
            .arg(publish_on);
        command
    }

    /// What `redis_channel` received after `since`.
    pub async fn recover<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        since: &Position,
    ) -> Result<Recovery, HistoryError> {
        let reply: Value = self
            .recover
            .key(stream_key(redis_channel))
            .key(EPOCH_KEY)
            .arg(&since.epoch)
            .arg(since.id.to_string())
            .arg(self.config.recover_limit.max(1))
            .arg(new_epoch())
            .invoke_async(connection)
            .await?;
        let items = array(reply, "recover reply")?;
        let epoch = text(items.first(), "epoch")?;
        let recovered = matches!(items.get(1), Some(Value::Int(1)));
        let newest_first = matches!(items.get(3), Some(Value::Int(1)));
        let raw = items.get(2).cloned().unwrap_or(Value::Array(Vec::new()));
        let mut entries = Vec::new();
        for entry in array(raw, "entries")? {
            entries.push(parse_entry(entry, &epoch)?);
        }
        if newest_first {
            entries.reverse();
        }
        Ok(Recovery { entries, recovered, epoch })
    }
}

/// `{epoch, id, recorded[, receivers]}` from the append script.
fn parse_append(reply: Value) -> Result<(Position, Option<u64>), HistoryError> {
    let items = array(reply, "append reply")?;
    let epoch = text(items.first(), "epoch")?;
    let id: StreamId = text(items.get(1), "stream id")?
        .parse()
        .map_err(|e: PositionError| HistoryError::Unexpected(e.to_string()))?;
    let receivers = match items.get(3) {
        Some(Value::Int(n)) => Some(u64::try_from(*n).unwrap_or(0)),
        _ => None,
    };
    Ok((Position { epoch, id }, receivers))
}

fn is_no_script(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

fn parse_entry(entry: Value, epoch: &str) -> Result<Entry, HistoryError> {
    let mut parts = array(entry, "entry")?.into_iter();
    let id: StreamId = text(parts.next().as_ref(), "entry id")?
        .parse()
        .map_err(|e: PositionError| HistoryError::Unexpected(e.to_string()))?;
    let fields = array(parts.next().unwrap_or(Value::Nil), "entry fields")?;
    let mut payload = None;
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if bytes(&name).as_deref() == Some(b"d".as_slice()) {
            payload = bytes(&value);
        }
    }
    let payload =
        payload.ok_or_else(|| HistoryError::Unexpected(format!("entry {id} has no payload")))?;
    Ok(Entry { position: Position { epoch: epoch.to_owned(), id }, payload })
}

fn array(value: Value, what: &str) -> Result<Vec<Value>, HistoryError> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(HistoryError::Unexpected(format!("{what}: expected an array, got {other:?}"))),
    }
}

fn bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(data) => Some(data.clone()),
        Value::SimpleString(text) => Some(text.clone().into_bytes()),
        _ => None,
    }
}

fn text(value: Option<&Value>, what: &str) -> Result<String, HistoryError> {
    value
        .and_then(bytes)
        .and_then(|data| String::from_utf8(data).ok())
        .ok_or_else(|| HistoryError::Unexpected(format!("{what}: expected text, got {value:?}")))
}

/// A fresh epoch candidate: 12 lowercase hex digits.
fn new_epoch() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_and_parse_back() {
        let position: Position = "a1b2c3:1700000000000-3".parse().unwrap();
        assert_eq!(position.epoch, "a1b2c3");
        assert_eq!(position.id, StreamId { millis: 1_700_000_000_000, seq: 3 });
        assert_eq!(position.to_string(), "a1b2c3:1700000000000-3");
    }

    #[test]
    fn malformed_positions_say_what_is_wrong() {
        for bad in ["", "abc", "e:1", "e:x-1", ":1-1", "e f:1-1"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
    }

    #[test]
    fn stream_ids_order_by_time_then_sequence() {
        let a: StreamId = "5-9".parse().unwrap();
        let b: StreamId = "6-0".parse().unwrap();
        assert!(a < b);
    }
}
