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

use crate::redis_url::RedisUrl;

/// Key of a channel's epoch: a random word created with the channel's first
/// entry, expiring with its stream. If Redis loses the channel's history
/// (data loss, eviction, expiry), the epoch goes with it, a new one is made,
/// and every position from before no longer matches. Per channel, with the
/// stream's hash tag, so that every key one channel's scripts touch sits in
/// one Redis Cluster slot (docs/positions.md, "Keys").
pub fn epoch_key(redis_channel: &str) -> String {
    format!("tidings:epoch:{{{redis_channel}}}")
}

/// Key of the history stream of a Redis channel.
pub fn stream_key(redis_channel: &str) -> String {
    format!("tidings:history:{{{redis_channel}}}")
}

/// What to tell the operator when Redis may evict history keys: it has a
/// `maxmemory` and a `maxmemory-policy` other than `noeviction`. Every key
/// of the history expires (streams and epochs after `max_age` idle, `seen`
/// keys after the dedup window), so `volatile-*` policies evict them as
/// readily as `allkeys-*` ones; an evicted stream or epoch makes resumes on
/// its channel report events missing (fail closed, but avoidable). `None`
/// when all is well; a Redis that refuses `CONFIG GET` (some managed ones)
/// is named as unchecked.
pub async fn eviction_warning<C: ConnectionLike>(
    connection: &mut C,
) -> Result<Option<String>, HistoryError> {
    let setting = |name: &'static str| {
        let mut command = redis::cmd("CONFIG");
        command.arg("GET").arg(name);
        command
    };
    let policy: Option<String> = setting("maxmemory-policy")
        .query_async::<Vec<String>>(connection)
        .await
        .ok()
        .and_then(|pair| pair.into_iter().nth(1));
    let limit: Option<u64> = setting("maxmemory")
        .query_async::<Vec<String>>(connection)
        .await
        .ok()
        .and_then(|pair| pair.into_iter().nth(1))
        .and_then(|limit| limit.parse().ok());
    let advice = "Set `maxmemory-policy noeviction` and give Redis enough maxmemory for the history (docs/deploy.md, \"Redis settings\")";
    Ok(match (policy, limit) {
        (Some(policy), _) if policy == "noeviction" => None,
        (Some(_), Some(0)) => None,
        (Some(policy), limit) => Some(format!(
            "Redis's maxmemory-policy is {policy} (maxmemory {}): under memory pressure it evicts history keys, \
             and clients resuming on an evicted channel are told events may be missing. {advice}",
            limit.map_or_else(|| "unknown".to_owned(), |limit| limit.to_string())
        )),
        (None, _) => Some(format!(
            "Redis refused CONFIG GET maxmemory-policy, so whether it may evict history keys is unchecked. {advice}"
        )),
    })
}

/// Key of the recording duty: the session id of the one recorder that
/// proves coverage, with a short expiry it keeps renewing (docs/positions.md,
/// "Coverage"). The coverage keys share the hash tag `{tidings}`, so the
/// scripts that touch them together run in one Redis Cluster slot.
pub const LEASE_KEY: &str = "tidings:recorder:{tidings}";

/// Key of the coverage record: a hash with the holder's `session`, the Redis
/// time `from` which it records, `until` which everything published is
/// proven recorded, and `forgot`, the end of the newest gap no longer kept.
pub const COVERAGE_KEY: &str = "tidings:coverage:{tidings}";

/// Key of the gaps: a sorted set of `FROM-TO` periods (Redis milliseconds)
/// in which nobody was proven recording, scored by their end.
pub const GAPS_KEY: &str = "tidings:gaps:{tidings}";

/// On Redis Cluster, the oldest proof a recovery accepts. The holder proves
/// four times a second; a proof older than this means it cannot hear some
/// node, whose unreplicated history a failover may have dropped before the
/// holder restarts and writes the gap down (shorter than the quickest
/// failover: `cluster-node-timeout` is 1 s at the least in practice).
pub const CLUSTER_PROOF_AGE: Duration = Duration::from_secs(1);

/// How often at most a channel's history is trimmed by age and has its
/// expiry renewed (the append script does it when the expiry says it is due).
pub const MAINTAIN_EVERY: Duration = Duration::from_secs(60);

/// Most gaps kept; older ones are summarised by `forgot` in the coverage
/// record, so a position before them is still refused.
const MAX_GAPS: u32 = 1000;

pub(crate) fn seen_key(redis_channel: &str, payload: &[u8]) -> String {
    let digest = sha1_smol::Sha1::from(payload).digest().to_string();
    format!("tidings:seen:{{{redis_channel}}}:{digest}")
}

/// Limits of the history, set by whoever writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Entries kept per channel (trimmed approximately, as `MAXLEN ~`).
    pub max_len: u64,
    /// Entries older than this are trimmed (`MINID ~`, at most once per
    /// [`MAINTAIN_EVERY`] per channel), and a channel with no write for this
    /// long expires as a whole; zero keeps all, forever.
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
    /// Redis time at which the entry was added, in milliseconds since the
    /// Unix epoch.
    pub millis: u64,
    /// Orders entries added within the same millisecond, from 0.
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
    /// The channel's epoch (the value of [`epoch_key`]): a random word,
    /// replaced when Redis loses the channel's history.
    pub epoch: String,
    /// The entry's id in the channel's history stream.
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
    /// Where the event sits in its channel's history.
    pub position: Position,
    /// The published bytes, unchanged.
    pub payload: Vec<u8>,
}

/// What a channel received after a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Oldest first.
    pub entries: Vec<Entry>,
    /// True when `entries` is provably everything after the position.
    pub recovered: bool,
    /// Why not, when not.
    pub unrecovered: Option<Unrecovered>,
    /// The channel's current epoch (empty when it has none); differs from
    /// the position's after Redis lost the channel's history.
    pub epoch: String,
    /// Redis time (milliseconds) up to which everything published is proven
    /// recorded or written down as a gap.
    pub proven_until: u64,
}

/// One page of a channel's history ([`History::page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Oldest first.
    pub entries: Vec<Entry>,
    /// False when entries after the page's start may have been trimmed.
    pub continuous: bool,
}

/// Why a recovery cannot prove that nothing is missing. Each one fails
/// closed: the client is told since when events may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrecovered {
    /// Redis lost its data (or the position is from another Redis).
    Epoch,
    /// The position is no longer in the history (trimmed by count or age,
    /// the stream expired), or never was (a made-up or future position).
    Trimmed,
    /// Nobody was proven recording for a while after the position.
    Gap(String),
    /// Nobody holds the recording duty right now.
    Unrecorded,
    /// The recorder has not yet proven recording up to the time asked for.
    Unproven,
    /// More entries followed than one recovery returns.
    TooLong,
}

impl fmt::Display for Unrecovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unrecovered::Epoch => f.write_str("Redis lost its history (new epoch)"),
            Unrecovered::Trimmed => f.write_str("the position is no longer in the history"),
            Unrecovered::Gap(gap) => write!(f, "nobody was recording during {gap}"),
            Unrecovered::Unrecorded => f.write_str("nobody is recording right now"),
            Unrecovered::Unproven => f.write_str("the recorder has not caught up yet"),
            Unrecovered::TooLong => f.write_str("more events followed than one replay returns"),
        }
    }
}

impl Unrecovered {
    fn parse(reason: &str) -> Option<Self> {
        Some(match reason {
            "" => return None,
            "epoch" => Unrecovered::Epoch,
            "trimmed" => Unrecovered::Trimmed,
            "unrecorded" => Unrecovered::Unrecorded,
            "unproven" => Unrecovered::Unproven,
            "limit" => Unrecovered::TooLong,
            "gap" => Unrecovered::Gap("an early period".into()),
            other => Unrecovered::Gap(other.strip_prefix("gap:").unwrap_or(other).to_owned()),
        })
    }
}

/// The answer to a claim of the recording duty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This session holds the duty. `gap` is the period (`FROM-TO`, Redis
    /// milliseconds) that nobody proved recorded before it, now written down.
    Held {
        /// The newly written-down gap (`FROM-TO`, Redis milliseconds);
        /// `None` when recording was proven right up to this claim.
        gap: Option<String>,
    },
    /// Another session holds it.
    Busy {
        /// The session id of the recorder holding the duty.
        holder: String,
    },
}

/// Why a history operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The Redis command or script failed (connection, error reply).
    #[error("Redis refused the history script: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered something that cannot be read (wrong shape, bad
    /// stream id).
    #[error("the history script answered something unexpected: {0}")]
    Unexpected(String),
}

// Appends messages to their channels' streams, each unless its `seen` key
// says it already was, in order, in one call: one script call per batch, so
// a busy recorder pays the script's fixed cost once per batch, not per
// event (on Redis Cluster, one call per channel of the batch: a script's
// keys must sit in one slot). A message with a channel to publish on is
// also published, in the same atomic step (this project's publishers).
// KEYS, ARGV and the reply: the script's header.
//
// Cheap on purpose (docs/positions.md, "What it costs"): no read of the
// previous entry (recovery checks that its own position is still there
// instead of a link), and the age trim runs at most once per
// `maintain every` per stream, when the stream's own expiry says it is due,
// not on every append. The same step sets the stream and its epoch to
// expire `max_age` after the last write, so an idle channel's history goes
// away by itself.
//
// The text lives in `history/append.lua` so that publishers in other
// languages (`clients/js/packages/publisher`, docs/web.md) run the very same
// bytes: they read that file, never a copy.
const APPEND_LUA: &str = include_str!("history/append.lua");

// Whether coverage proves that nothing published after ARGV[1] (Redis
// milliseconds) and before ARGV[2] (the caller's subscribe time, 0 for
// none) went unrecorded. With ARGV[3] > 0 (Redis Cluster), a proof older
// than ARGV[3] ms is 'unproven' too: the holder cannot hear some node, and
// what that node had may be gone when its replica takes over, before the
// holder's restart writes the gap down. Returns {reason or '', proven_until}.
// KEYS: gaps, lease, coverage (one slot: the `{tidings}` tag).
//
// Recovery runs this before reading the stream (`STREAM_LUA`), in two
// calls, because on Redis Cluster the channel's keys and the coverage keys
// live in different slots. The order keeps it exact: everything proven
// recorded when this runs is in the stream when the stream is read, and a
// gap written in between lies after the proof, so after the caller's
// subscribe time, where it is live.
const COVERAGE_LUA: &str = r"
local since_ms = tonumber(ARGV[1])
local proven = tonumber(redis.call('HGET', KEYS[3], 'until') or '0')
local proven_text = string.format('%d', proven)
if since_ms < tonumber(redis.call('HGET', KEYS[3], 'forgot') or '0') then
  return {'gap', proven_text}
end
local gap = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, 1)
if #gap > 0 then return {'gap:' .. gap[1], proven_text} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'unrecorded', proven_text} end
if proven < tonumber(ARGV[2]) then return {'unproven', proven_text} end
local stale = tonumber(ARGV[3])
if stale > 0 then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - proven > stale then
    return {'unproven', proven_text}
  end
end
return {'', proven_text}
";

// What stream KEYS[1] holds after ARGV[2] in epoch ARGV[1], at most ARGV[3]
// entries. Returns {epoch, entries, reason, newest_first}: reason 'epoch'
// (no entries) when the channel's epoch is another or gone, 'trimmed' when
// the entry at ARGV[2] is not there, 'limit' when more than ARGV[3] entries
// followed (then the newest are returned), else ''. With ARGV[4] = 'first'
// returns at most ARGV[3] entries, oldest first, never 'limit': the caller
// pages on.
// KEYS: stream, the channel's epoch (one slot: the `{ws:CHANNEL}` tag).
const STREAM_LUA: &str = r"
local epoch = redis.call('GET', KEYS[2])
if epoch ~= ARGV[1] then
  return {epoch or '', {}, 'epoch', 0}
end
local limit = tonumber(ARGV[3])
local reason = ''
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  reason = 'trimmed'
end
-- The largest possible id has nothing after it ('(' of it is an error).
local after = {}
if limit > 0 or ARGV[4] ~= 'first' then
  after = redis.pcall('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', limit + 1)
  if after.err then after = {} end
end
if ARGV[4] == 'first' then
  if #after > limit then table.remove(after) end
elseif #after > limit then
  return {epoch, redis.call('XREVRANGE', KEYS[1], '+', '(' .. ARGV[2], 'COUNT', limit), 'limit', 1}
end
return {epoch, after, reason, 0}
";

// Redis's clock, read on the node that holds the coverage keys (KEYS[1]):
// on Redis Cluster every time in coverage and gaps comes from that one node.
const TIME_LUA: &str = "return redis.call('TIME')";

// Takes the recording duty (KEYS[1]) for session ARGV[1], recording since
// ARGV[2] (Redis milliseconds), when nobody else holds it or its holder was
// ARGV[4] (this recorder's own earlier session). Writes the period nobody
// proved as a gap. Returns {acquired, gap or holder}.
// KEYS: lease, coverage, gaps. ARGV: session, since, ttl, previous, keep ms, max gaps.
const ACQUIRE_LUA: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, ''}
end
if holder and holder ~= ARGV[4] then
  return {0, holder}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
local proven = tonumber(redis.call('HGET', KEYS[2], 'until') or '0')
local since = tonumber(ARGV[2])
local gap = ''
if since > proven then
  gap = string.format('%d-%d', proven, since)
  redis.call('ZADD', KEYS[3], since, gap)
  local now = redis.call('TIME')
  local old = tonumber(now[1]) * 1000 - tonumber(ARGV[5])
  local forgot = tonumber(redis.call('HGET', KEYS[2], 'forgot') or '0')
  local dropped = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('(%d', old), 'WITHSCORES')
  for i = 2, #dropped, 2 do forgot = math.max(forgot, tonumber(dropped[i])) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('(%d', old))
  local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[6])
  if extra > 0 then
    local oldest = redis.call('ZRANGE', KEYS[3], 0, extra - 1, 'WITHSCORES')
    for i = 2, #oldest, 2 do forgot = math.max(forgot, tonumber(oldest[i])) end
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, extra - 1)
  end
  redis.call('HSET', KEYS[2], 'forgot', string.format('%d', forgot))
end
redis.call('HSET', KEYS[2], 'session', ARGV[1], 'from', ARGV[2],
  'until', string.format('%d', math.max(since, proven)))
return {1, gap}
";

// The holder ARGV[1] proves that everything published before ARGV[2] is
// recorded, and keeps the duty ARGV[3] ms longer. Returns 1, or 0 when the
// duty is no longer this session's.
// KEYS: lease, coverage.
const PROVE_LUA: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local proven = tonumber(redis.call('HGET', KEYS[2], 'until') or '0')
if tonumber(ARGV[2]) > proven then
  redis.call('HSET', KEYS[2], 'until', ARGV[2])
end
return 1
";

// Gives the duty back if session ARGV[1] holds it (a clean shutdown).
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// The history scripts and their limits.
#[derive(Debug, Clone)]
pub struct History {
    config: HistoryConfig,
    /// On Redis Cluster: one append call per channel (one slot per call).
    cluster: bool,
    append: Script,
    coverage: Script,
    stream: Script,
    acquire: Script,
    prove: Script,
    release: Script,
}

/// Every script, for loading after a restart emptied Redis's cache.
const SCRIPTS: [&str; 7] =
    [APPEND_LUA, COVERAGE_LUA, STREAM_LUA, ACQUIRE_LUA, PROVE_LUA, RELEASE_LUA, TIME_LUA];

impl History {
    /// The scripts with the limits of `config`; nothing is sent to Redis
    /// until they are used.
    pub fn new(config: HistoryConfig) -> Self {
        History {
            config,
            cluster: false,
            append: Script::new(APPEND_LUA),
            coverage: Script::new(COVERAGE_LUA),
            stream: Script::new(STREAM_LUA),
            acquire: Script::new(ACQUIRE_LUA),
            prove: Script::new(PROVE_LUA),
            release: Script::new(RELEASE_LUA),
        }
    }

    /// The same scripts for the Redis that `url` names: on Redis Cluster
    /// ([`RedisUrl::is_cluster`]) each append call holds one channel, so
    /// that its keys sit in one slot.
    pub fn on(mut self, url: &RedisUrl) -> Self {
        self.cluster = url.is_cluster();
        self
    }

    /// The limits this history was created with.
    pub fn config(&self) -> &HistoryConfig {
        &self.config
    }

    /// The append script's source, for publishers in other languages that
    /// must append exactly as this one does.
    pub fn append_script() -> &'static str {
        APPEND_LUA
    }

    /// Records a message that was published with a plain `PUBLISH`, once
    /// however many recorders call this, and returns its position.
    pub async fn record<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        payload: &[u8],
    ) -> Result<Position, HistoryError> {
        let mut appended = self.append(connection, &[(redis_channel, payload, false)]).await?;
        let (position, _) = appended.pop().ok_or_else(|| unexpected("an empty append reply"))?;
        Ok(position)
    }

    /// Records and publishes in one atomic step; returns the position and
    /// how many subscribers received it.
    pub async fn publish<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        payload: &[u8],
    ) -> Result<(Position, u64), HistoryError> {
        let mut appended = self.append(connection, &[(redis_channel, payload, true)]).await?;
        let (position, receivers) =
            appended.pop().ok_or_else(|| unexpected("an empty append reply"))?;
        Ok((position, receivers.unwrap_or(0)))
    }

    /// Records several plain-published messages, in order, in one script
    /// call, and returns their positions in the same order. The recorder
    /// uses this to keep up with a busy channel: the order of the list is
    /// the order in which they were received, which is the order in which
    /// they are appended.
    pub async fn record_many<C: ConnectionLike>(
        &self,
        connection: &mut C,
        messages: &[(&str, &[u8])],
    ) -> Result<Vec<Position>, HistoryError> {
        let messages: Vec<(&str, &[u8], bool)> =
            messages.iter().map(|(channel, payload)| (*channel, *payload, false)).collect();
        let appended = self.append(connection, &messages).await?;
        Ok(appended.into_iter().map(|(position, _)| position).collect())
    }

    /// Loads every script into Redis's script cache, which a restart empties.
    pub async fn load<C: ConnectionLike>(&self, connection: &mut C) -> Result<(), HistoryError> {
        for script in SCRIPTS {
            redis::cmd("SCRIPT").arg("LOAD").arg(script).exec_async(connection).await?;
        }
        Ok(())
    }

    /// Runs the append script for `messages` (channel, payload, publish
    /// too); loads the scripts once if Redis forgot them.
    async fn append<C: ConnectionLike>(
        &self,
        connection: &mut C,
        messages: &[(&str, &[u8], bool)],
    ) -> Result<Vec<(Position, Option<u64>)>, HistoryError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        if self.cluster {
            return self.append_per_channel(connection, messages).await;
        }
        self.append_call(connection, messages).await
    }

    /// Redis Cluster: one call per channel (in the order each channel first
    /// appears; a channel's own messages keep their order), the positions
    /// put back in the order of `messages`.
    async fn append_per_channel<C: ConnectionLike>(
        &self,
        connection: &mut C,
        messages: &[(&str, &[u8], bool)],
    ) -> Result<Vec<(Position, Option<u64>)>, HistoryError> {
        let mut channels: Vec<(&str, Vec<usize>)> = Vec::new();
        for (index, (channel, _, _)) in messages.iter().enumerate() {
            match channels.iter_mut().find(|(name, _)| name == channel) {
                Some((_, indices)) => indices.push(index),
                None => channels.push((channel, vec![index])),
            }
        }
        let mut appended = vec![None; messages.len()];
        for (_, indices) in channels {
            let group: Vec<_> = indices.iter().map(|&index| messages[index]).collect();
            let results = self.append_call(connection, &group).await?;
            for (index, result) in indices.into_iter().zip(results) {
                appended[index] = Some(result);
            }
        }
        Ok(appended.into_iter().flatten().collect())
    }

    /// One call of the append script for `messages`.
    async fn append_call<C: ConnectionLike>(
        &self,
        connection: &mut C,
        messages: &[(&str, &[u8], bool)],
    ) -> Result<Vec<(Position, Option<u64>)>, HistoryError> {
        let command = self.append_command(messages);
        let reply: Value = match command.query_async(connection).await {
            Err(error) if is_no_script(&error) => {
                self.load(connection).await?;
                command.query_async(connection).await?
            }
            other => other?,
        };
        let appended = parse_append(reply)?;
        if appended.len() != messages.len() {
            return Err(unexpected(&format!(
                "{} positions for {} messages",
                appended.len(),
                messages.len()
            )));
        }
        Ok(appended)
    }

    /// `EVALSHA` of the append script (see [`History::load`] for NOSCRIPT).
    fn append_command(&self, messages: &[(&str, &[u8], bool)]) -> redis::Cmd {
        let max_age = millis(self.config.max_age);
        let mut command = redis::cmd("EVALSHA");
        command.arg(self.append.get_hash()).arg(3 * messages.len());
        for (channel, payload, _) in messages {
            command
                .arg(epoch_key(channel))
                .arg(stream_key(channel))
                .arg(seen_key(channel, payload));
        }
        command
            .arg(self.config.max_len)
            .arg(millis(self.config.dedup_window).max(1))
            .arg(new_epoch())
            .arg(max_age)
            .arg(millis(MAINTAIN_EVERY).min(max_age / 2));
        for (channel, payload, publish) in messages {
            command.arg(if *publish { *channel } else { "" }).arg(*payload);
        }
        command
    }

    /// What `redis_channel` received after `since`, and whether that is
    /// provably everything. `need_until` (Redis milliseconds, 0 for none)
    /// asks the recorder to have proven recording up to that time: a
    /// subscriber that does not record itself passes the time it subscribed.
    pub async fn recover<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        since: &Position,
        need_until: u64,
    ) -> Result<Recovery, HistoryError> {
        let limit = self.config.recover_limit.max(1);
        self.run_recover(connection, redis_channel, since, need_until, limit, "").await
    }

    /// [`History::recover`] for a reader that pages: whether the gap is
    /// provably recoverable, and its first `first_page` entries (oldest
    /// first, none is fine); read on with [`History::page`].
    pub async fn recover_first<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        since: &Position,
        need_until: u64,
        first_page: usize,
    ) -> Result<Recovery, HistoryError> {
        self.run_recover(connection, redis_channel, since, need_until, first_page, "first").await
    }

    async fn run_recover<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        since: &Position,
        need_until: u64,
        limit: usize,
        mode: &str,
    ) -> Result<Recovery, HistoryError> {
        // Coverage first, then the stream: see COVERAGE_LUA for why this
        // order is exact.
        let coverage: Value = self
            .coverage
            .key(GAPS_KEY)
            .key(LEASE_KEY)
            .key(COVERAGE_KEY)
            .arg(since.id.millis)
            .arg(need_until)
            .arg(if self.cluster { millis(CLUSTER_PROOF_AGE) } else { 0 })
            .invoke_async(connection)
            .await?;
        let coverage = array(coverage, "coverage reply")?;
        let covered = Unrecovered::parse(&text(coverage.first(), "coverage reason")?);
        let proven_until = number(coverage.get(1)).unwrap_or(0);
        let reply: Value = self
            .stream
            .key(stream_key(redis_channel))
            .key(epoch_key(redis_channel))
            .arg(&since.epoch)
            .arg(since.id.to_string())
            .arg(limit)
            .arg(mode)
            .invoke_async(connection)
            .await?;
        let items = array(reply, "stream reply")?;
        let epoch = text(items.first(), "epoch")?;
        let read = Unrecovered::parse(&text(items.get(2), "stream reason").unwrap_or_default());
        let newest_first = matches!(items.get(3), Some(Value::Int(1)));
        let raw = items.get(1).cloned().unwrap_or(Value::Array(Vec::new()));
        let mut entries = Vec::new();
        for entry in array(raw, "entries")? {
            entries.push(parse_entry(entry, &epoch)?);
        }
        if newest_first {
            entries.reverse();
        }
        // The stream's reasons (epoch, too long, trimmed) come before
        // coverage's, as one answer would give them.
        let unrecovered = read.or(covered);
        let recovered = unrecovered.is_none();
        Ok(Recovery { entries, recovered, unrecovered, epoch, proven_until })
    }

    /// Up to `count` entries of `redis_channel` after `after`, oldest first,
    /// without a script. `continuous` is false when `after` itself is no
    /// longer there (trimmed meanwhile: entries after it may be gone too)
    /// or the epoch changed (Redis lost its data); then the entries are
    /// what remains.
    pub async fn page<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        after: &Position,
        count: usize,
    ) -> Result<Page, HistoryError> {
        let (epoch, raw): (Option<String>, Value) = redis::pipe()
            .cmd("GET")
            .arg(epoch_key(redis_channel))
            .cmd("XRANGE")
            .arg(stream_key(redis_channel))
            .arg(after.id.to_string())
            .arg("+")
            .arg("COUNT")
            .arg(count + 1)
            .query_async(connection)
            .await?;
        if epoch.as_deref() != Some(after.epoch.as_str()) {
            return Ok(Page { entries: Vec::new(), continuous: false });
        }
        let mut entries = Vec::new();
        for entry in array(raw, "page")? {
            entries.push(parse_entry(entry, &after.epoch)?);
        }
        let continuous = entries.first().is_some_and(|first| first.position.id == after.id);
        if continuous {
            entries.remove(0);
        } else {
            entries.truncate(count);
        }
        Ok(Page { entries, continuous })
    }

    /// The position at which `payload` was recorded on `redis_channel`, if a
    /// recorder recorded it within the dedup window. Subscribers that do not
    /// record learn their resume point this way, one lookup per channel at a
    /// time, not one per message.
    pub async fn locate<C: ConnectionLike>(
        &self,
        connection: &mut C,
        redis_channel: &str,
        payload: &[u8],
    ) -> Result<Option<Position>, HistoryError> {
        let (epoch, id): (Option<String>, Option<String>) = redis::cmd("MGET")
            .arg(epoch_key(redis_channel))
            .arg(seen_key(redis_channel, payload))
            .query_async(connection)
            .await?;
        let (Some(epoch), Some(id)) = (epoch, id) else { return Ok(None) };
        let id = id.parse().map_err(|e: PositionError| HistoryError::Unexpected(e.to_string()))?;
        Ok(Some(Position { epoch, id }))
    }

    /// Claims the recording duty for `session`, which has received (and
    /// will record) everything published since `since` (Redis milliseconds).
    /// `previous` is this recorder's own earlier session, which it may take
    /// over at once after a reconnect.
    pub async fn claim<C: ConnectionLike>(
        &self,
        connection: &mut C,
        session: &str,
        since: u64,
        previous: Option<&str>,
        lease: Duration,
    ) -> Result<Claim, HistoryError> {
        let keep =
            if self.config.max_age.is_zero() { u64::MAX / 4 } else { millis(self.config.max_age) };
        let reply: Value = self
            .acquire
            .key(LEASE_KEY)
            .key(COVERAGE_KEY)
            .key(GAPS_KEY)
            .arg(session)
            .arg(since)
            .arg(millis(lease).max(1))
            .arg(previous.unwrap_or(""))
            .arg(keep)
            .arg(MAX_GAPS)
            .invoke_async(connection)
            .await?;
        let items = array(reply, "claim reply")?;
        let detail = text(items.get(1), "claim detail").unwrap_or_default();
        Ok(if matches!(items.first(), Some(Value::Int(1))) {
            Claim::Held { gap: (!detail.is_empty()).then_some(detail) }
        } else {
            Claim::Busy { holder: detail }
        })
    }

    /// The holder proves that everything published before `until` (Redis
    /// milliseconds) is recorded, and keeps the duty for `lease` more.
    /// False when the duty is no longer `session`'s.
    pub async fn prove<C: ConnectionLike>(
        &self,
        connection: &mut C,
        session: &str,
        until: u64,
        lease: Duration,
    ) -> Result<bool, HistoryError> {
        let held: i64 = self
            .prove
            .key(LEASE_KEY)
            .key(COVERAGE_KEY)
            .arg(session)
            .arg(until)
            .arg(millis(lease).max(1))
            .invoke_async(connection)
            .await?;
        Ok(held == 1)
    }

    /// Gives the duty back (a clean shutdown), so a successor need not wait
    /// for it to expire.
    pub async fn release<C: ConnectionLike>(
        &self,
        connection: &mut C,
        session: &str,
    ) -> Result<(), HistoryError> {
        let _: i64 = self.release.key(LEASE_KEY).arg(session).invoke_async(connection).await?;
        Ok(())
    }
}

/// Redis's clock, in milliseconds: every time in coverage and gaps is
/// Redis time, read on the node that holds the coverage keys (the one
/// server, or on Redis Cluster the primary of their slot), so that all of
/// them come from one clock.
pub async fn redis_time<C: ConnectionLike>(connection: &mut C) -> Result<u64, HistoryError> {
    static TIME: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(TIME_LUA));
    let (seconds, micros): (u64, u64) = TIME.key(COVERAGE_KEY).invoke_async(connection).await?;
    Ok(seconds * 1000 + micros / 1000)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => bytes(other).and_then(|b| String::from_utf8(b).ok()).and_then(|t| t.parse().ok()),
    }
}

/// `{epoch_1, id_1, receivers_1, ...}` from the append script.
fn parse_append(reply: Value) -> Result<Vec<(Position, Option<u64>)>, HistoryError> {
    let items = array(reply, "append reply")?;
    let mut appended = Vec::with_capacity(items.len() / 3);
    for triple in items.chunks(3) {
        let epoch = text(triple.first(), "epoch")?;
        let id: StreamId = text(triple.get(1), "stream id")?
            .parse()
            .map_err(|e: PositionError| HistoryError::Unexpected(e.to_string()))?;
        let receivers = match triple.get(2) {
            Some(Value::Int(n)) if *n >= 0 => Some(u64::try_from(*n).unwrap_or(0)),
            _ => None,
        };
        appended.push((Position { epoch, id }, receivers));
    }
    Ok(appended)
}

fn unexpected(what: &str) -> HistoryError {
    HistoryError::Unexpected(what.to_owned())
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
