//! The Redis source: SUBSCRIBE/PSUBSCRIBE through the project's bounded
//! subscriber (`crate::subscriber`), reconnect and resubscribe forever.
//!
//! History (optional, [`RedisSourceConfig::history`], docs/positions.md):
//! the source does not record. It learns where it is in each channel's
//! history from what the recorder wrote — at most once per
//! [`LOCATE_EVERY`] per channel, one lookup of the last message it handed
//! on, reported as [`SourceUpdate::Position`] — and after a reconnect it
//! replays, through the one resume engine (`crate::resume`), what each
//! channel received since then, skipping what it had already handed on,
//! and reports [`SourceUpdate::Missed`] whenever continuity cannot be
//! proven. Beside it runs a standby recorder (`crate::recorder`) that takes
//! the recording duty when nobody else holds it, so however many desktops
//! read Redis directly, each event is appended once. On Redis Cluster the
//! subscribed node's bus links are watched too (`crate::cluster`): a link
//! that may have dropped a message is told as `Missed` on every channel.
//!
//! Liveness: the subscriber sends `PING` every [`PING_INTERVAL`] and a
//! connection from which nothing has been read for two intervals is dead,
//! so a silently vanished server (a cut network, a paused VM) is noticed
//! without waiting for TCP to give up. Time spent waiting for a slow
//! consumer does not count, since the source is then not reading on purpose.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use tidings_events::channel::{REDIS_PATTERN_ALL, REDIS_PREFIX};
use tidings_events::{Channel, ChannelError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Backoff, Failure, Session, SourceHandle, SourceState, SourceTask, SourceUpdate, Stop,
    UpdateSender, give_up, reconnect_forever,
};
use crate::cluster::{Broken, LinkWatch};
use crate::history::{History, HistoryConfig, HistoryError, Position, redis_time};
use crate::recorder::{Duty, RecorderConfig, run_recorder};
use crate::resume;
use crate::subscriber::{CONNECT_TIMEOUT, Endpoint, Liveness, Received};

/// How often an idle subscription is checked with `PING`.
const PING_INTERVAL: Duration = Duration::from_secs(15);

/// Bound on one history round trip (a lookup, one replay).
const HISTORY_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages read from the subscription but not yet handed on. When full,
/// the reader stops reading and Redis buffers (see the module docs of
/// `source` for what Redis does when its buffer fills).
const RECEIVED_QUEUE: usize = 1024;

/// Most messages taken from the reader at once.
const DELIVER_BATCH: usize = 256;

/// How often at most the source looks up its position on a channel that
/// received messages (one `MGET` per such channel).
pub const LOCATE_EVERY: Duration = Duration::from_secs(1);

/// How often, on Redis Cluster, the subscribed node's bus links are
/// checked (`crate::cluster::LinkWatch`): a broken one is told within this.
const LINK_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Most messages remembered (as 64-bit hashes) per channel after its last
/// known position, to skip them when a replay sends them again. Past it the
/// oldest are forgotten; a replay may then repeat them, which consumers
/// that deduplicate by content (the desktop app) absorb.
const AFTER_POSITION_CAP: usize = 4096;

/// What to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subscription {
    /// One channel (SUBSCRIBE to its Redis name).
    Channel(Channel),
    /// A Redis glob pattern over Redis names (PSUBSCRIBE), e.g. `ws:*`.
    Pattern(String),
}

impl Subscription {
    /// Every Tidings channel: `ws:*`.
    pub fn all() -> Self {
        Subscription::Pattern(REDIS_PATTERN_ALL.to_owned())
    }

    /// Reads what a person types: a logical channel (`inventory`,
    /// `user:u1:notifications`), the same with its `ws:` prefix, or a pattern
    /// containing `*`, `?` or `[` (`ws:user:*`; `ws:` is added if missing).
    pub fn parse(text: &str) -> Result<Self, ChannelError> {
        if text.contains(['*', '?', '[']) {
            let pattern = if text.starts_with(REDIS_PREFIX) {
                text.to_owned()
            } else {
                format!("{REDIS_PREFIX}{text}")
            };
            return Ok(Subscription::Pattern(pattern));
        }
        let logical = text.strip_prefix(REDIS_PREFIX).unwrap_or(text);
        Channel::parse(logical).map(Subscription::Channel)
    }

    /// As Redis sees it: the channel's Redis name, or the pattern.
    pub fn redis_name(&self) -> String {
        match self {
            Subscription::Channel(channel) => channel.redis_name(),
            Subscription::Pattern(pattern) => pattern.clone(),
        }
    }
}

impl std::fmt::Display for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redis_name())
    }
}

/// Where and what the Redis source subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSourceConfig {
    /// `redis://[user:password@]host[:port]`, `rediss://…` (TLS, webpki
    /// roots) or `redis+unix:///path`.
    pub url: String,
    /// The channels and patterns to subscribe to.
    pub subscriptions: Vec<Subscription>,
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
    /// Resume from history: learn positions, replay what was missed after a
    /// reconnect, say when something may be missing, and stand by to take
    /// the recording duty when nobody else records. `None`: plain Pub/Sub,
    /// no positions, whatever is published while disconnected is lost.
    pub history: Option<HistoryConfig>,
    /// Where to resume from at the first connect: Redis channel name
    /// (`ws:inventory`) → the last position the consumer has kept. Only used
    /// with `history`. Later reconnects resume from what the source itself
    /// delivered last.
    pub resume: BTreeMap<String, String>,
    /// The last message the consumer kept per Redis channel when its
    /// position was not known yet (the payload and when it was received,
    /// milliseconds since the Unix epoch). Only used with `history`: the
    /// source looks its position up before resuming, so a consumer closed
    /// right after a message neither loses its place nor gets a silent gap.
    pub resume_tails: BTreeMap<String, (bytes::Bytes, i64)>,
}

impl RedisSourceConfig {
    /// Everything (`ws:*`) at `url`, with the default backoff, no history.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSourceConfig {
            url: url.into(),
            subscriptions: vec![Subscription::all()],
            backoff: Backoff::default(),
            history: None,
            resume: BTreeMap::new(),
            resume_tails: BTreeMap::new(),
        }
    }
}

/// Starts a task that subscribes to `config.subscriptions` at `config.url`
/// and sends states and messages to the returned handle, holding at most
/// `capacity` (at least 1) unread updates. With `config.history`, a standby
/// recorder runs beside it on the same token.
///
/// Connection failures and losses are retried forever with `config.backoff`.
/// A URL that cannot be used (not a Redis URL, `#insecure` TLS, an empty
/// subscription list) is reported as `Offline` and ends the task. Refused
/// credentials are reported as `Offline` and retried every `backoff.max`,
/// since a password may be fixed on the server side.
pub fn spawn_redis_source(
    config: RedisSourceConfig,
    cancel: CancellationToken,
    capacity: usize,
) -> SourceHandle {
    let (sender, updates) = tokio::sync::mpsc::channel(capacity.max(1));
    let outbox = UpdateSender::new(sender, cancel.clone());
    let task = tokio::spawn(async move {
        let session = match RedisSession::new(&config) {
            Ok(session) => session,
            Err(reason) => return give_up(outbox, reason).await,
        };
        let Some(history) = config.history else {
            return reconnect_forever(outbox, config.backoff, session).await;
        };
        // The standby recorder ends with the source, whichever ends first.
        let recorder_cancel = cancel.child_token();
        let recorder = RecorderConfig {
            url: config.url.clone(),
            history: Some(history),
            duty: Duty::Standby,
            backoff: config.backoff,
        };
        let recording = run_recorder(recorder, |_| {}, recorder_cancel.clone());
        let reading = async {
            reconnect_forever(outbox, config.backoff, session).await;
            recorder_cancel.cancel();
        };
        tokio::join!(reading, recording);
    });
    SourceHandle { updates, task: SourceTask(task) }
}

#[derive(Debug)]
struct RedisSession {
    endpoint: Endpoint,
    channels: Vec<String>,
    patterns: Vec<String>,
    history: Option<History>,
    /// Per channel: where the source is in its history, as far as known.
    cursors: HashMap<String, Cursor>,
}

/// Where a channel's consumer is in its history: the last known position,
/// and what was handed on after it (not yet located).
#[derive(Debug, Default)]
struct Cursor {
    position: Option<Position>,
    /// Hashes of the payloads handed on after `position`, oldest first.
    after: VecDeque<u64>,
    /// The last payload handed on, to look its position up, and when it
    /// was received (milliseconds since the Unix epoch).
    last: Option<(bytes::Bytes, i64)>,
}

impl Cursor {
    fn handed_on(&mut self, payload: &bytes::Bytes) {
        if self.after.len() >= AFTER_POSITION_CAP {
            self.after.pop_front();
        }
        self.after.push_back(payload_hash(payload));
        let now = tidings_events::millis_since_epoch(std::time::SystemTime::now());
        self.last = Some((payload.clone(), now));
    }
}

fn payload_hash(payload: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut hasher);
    hasher.finish()
}

impl RedisSession {
    fn new(config: &RedisSourceConfig) -> Result<Self, String> {
        let endpoint = Endpoint::parse(&config.url)?;
        let mut channels = Vec::new();
        let mut patterns = Vec::new();
        for subscription in &config.subscriptions {
            match subscription {
                Subscription::Channel(channel) => channels.push(channel.redis_name()),
                Subscription::Pattern(pattern) => patterns.push(pattern.clone()),
            }
        }
        channels.sort();
        channels.dedup();
        patterns.sort();
        patterns.dedup();
        if channels.is_empty() && patterns.is_empty() {
            return Err("nothing to subscribe to: the subscription list is empty".into());
        }
        let mut cursors = HashMap::new();
        if config.history.is_some() {
            for (channel, position) in &config.resume {
                match position.parse::<Position>() {
                    Ok(position) => {
                        cursors.insert(
                            channel.clone(),
                            Cursor { position: Some(position), ..Cursor::default() },
                        );
                    }
                    Err(error) => {
                        tracing::warn!(%channel, %error, "ignoring a resume position that does not parse; that channel starts live");
                    }
                }
            }
        }
        if config.history.is_some() {
            for (channel, (payload, received_at)) in &config.resume_tails {
                let cursor = cursors.entry(channel.clone()).or_default();
                cursor.after.push_back(payload_hash(payload));
                cursor.last = Some((payload.clone(), *received_at));
            }
        }
        let history = config.history.map(|history| History::new(history).on(endpoint.url()));
        Ok(RedisSession { endpoint, channels, patterns, history, cursors })
    }

    /// Replays, for every channel with a known position, what it received
    /// since, skipping what was already handed on; returns the hashes of
    /// the replayed payloads per channel (live messages that repeat them
    /// right after subscribing are skipped) and the command connection.
    async fn catch_up(
        &mut self,
        history: &History,
        outbox: &mut UpdateSender,
    ) -> Result<Result<(crate::redis_url::Commands, HashMap<String, HashSet<u64>>), Failure>, Stop>
    {
        let label = &self.endpoint.label;
        let reading = async {
            let mut connection = self.endpoint.commands(HISTORY_TIMEOUT).await?;
            history.load(&mut connection).await?;
            // Subscribed before this: everything published after it is live.
            let subscribed_at = redis_time(&mut connection).await?;
            // Where the last message handed on sits, if a recorder wrote it:
            // the replay then starts right after it.
            let mut located = Vec::new();
            for (channel, cursor) in &self.cursors {
                let Some((last, _)) = &cursor.last else { continue };
                if cursor.after.is_empty() {
                    continue;
                }
                if let Some(position) = history.locate(&mut connection, channel, last).await? {
                    located.push((channel.clone(), position));
                }
            }
            let mut replays = Vec::new();
            for (channel, cursor) in &self.cursors {
                let since = match located.iter().find(|(c, _)| c == channel) {
                    Some((_, position)) => position,
                    None => match &cursor.position {
                        Some(position) => position,
                        None => continue,
                    },
                };
                let replay =
                    resume::replay(history, &mut connection, channel, since, subscribed_at).await?;
                replays.push((since.clone(), replay));
            }
            Ok::<_, HistoryError>((connection, located, replays))
        };
        let wait = CONNECT_TIMEOUT + HISTORY_TIMEOUT + resume::PROOF_WAIT;
        let (connection, located, replays) = tokio::select! {
            biased;
            () = outbox.cancel.cancelled() => return Err(Stop),
            result = tokio::time::timeout(wait, reading) => match result {
                Ok(Ok(read)) => read,
                Ok(Err(error)) => return Ok(Err(Failure::Transient(format!(
                    "cannot read history from Redis at {label}: {error}"
                )))),
                Err(_) => return Ok(Err(Failure::Transient(format!(
                    "Redis at {label} did not answer the history read within {wait:?}"
                )))),
            },
        };
        for (channel, position) in located {
            let cursor = self.cursors.entry(channel).or_default();
            cursor.position = Some(position);
            cursor.after.clear();
        }
        // Messages were handed on, but nobody recorded where: nothing can
        // prove what followed them.
        for (channel, cursor) in &mut self.cursors {
            if cursor.position.is_none() && !cursor.after.is_empty() {
                let since = cursor.last.as_ref().map(|(_, at)| *at);
                tracing::warn!(%channel, "no recorded position for the last message handed on; events may be missing");
                outbox.send(SourceUpdate::Missed { channel: channel.clone(), since }).await?;
                *cursor = Cursor::default();
            }
        }
        let mut replayed = HashMap::new();
        for (since, replay) in replays {
            let channel = replay.channel.clone();
            if let Some(missed) = &replay.missed {
                tracing::warn!(%channel, since = %missed, reason = ?replay.unrecovered, "cannot prove continuity since the last position; events may be missing");
                let since = i64::try_from(missed.recorded_at()).ok();
                outbox.send(SourceUpdate::Missed { channel: channel.clone(), since }).await?;
            }
            let last = replay.last(&since);
            let cursor = self.cursors.entry(channel.clone()).or_default();
            let already: HashSet<u64> = cursor.after.iter().copied().collect();
            let hashes: &mut HashSet<u64> = replayed.entry(channel.clone()).or_default();
            for entry in replay.entries {
                let hash = payload_hash(&entry.payload);
                hashes.insert(hash);
                if already.contains(&hash) {
                    continue;
                }
                let position = entry.position.to_string();
                outbox.message(channel.clone(), entry.payload.into(), Some(position)).await?;
            }
            *cursor = Cursor { position: last.clone(), ..Cursor::default() };
            if let Some(last) = last {
                outbox.send(SourceUpdate::Position { channel, position: last.to_string() }).await?;
            }
        }
        Ok(Ok((connection, replayed)))
    }

    /// Looks up the position of the last message handed on, for each
    /// channel that received some since the last lookup, and reports it.
    async fn locate(
        &mut self,
        history: &History,
        connection: &mut crate::redis_url::Commands,
        outbox: &UpdateSender,
    ) -> Result<Result<(), Failure>, Stop> {
        for (channel, cursor) in &mut self.cursors {
            let (Some((last, _)), false) = (&cursor.last, cursor.after.is_empty()) else {
                continue;
            };
            let handed_on = cursor.after.len();
            let lookup = history.locate(connection, channel, last);
            let found = match tokio::time::timeout(HISTORY_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found,
                Ok(Err(error)) => {
                    return Ok(Err(Failure::Transient(format!(
                        "cannot read history positions: {error}"
                    ))));
                }
                Err(_) => {
                    return Ok(Err(Failure::Transient(format!(
                        "Redis did not answer a position lookup within {HISTORY_TIMEOUT:?}"
                    ))));
                }
            };
            // Not recorded yet (or nobody records): look again next time.
            let Some(position) = found else { continue };
            cursor.after.drain(..handed_on);
            cursor.position = Some(position.clone());
            let update =
                SourceUpdate::Position { channel: channel.clone(), position: position.to_string() };
            outbox.send(update).await?;
        }
        Ok(Ok(()))
    }
}

impl Session for RedisSession {
    async fn run(&mut self, outbox: &mut UpdateSender) -> Result<Failure, Stop> {
        let label = self.endpoint.label.clone();
        let requested = std::time::Instant::now();
        let subscribing = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.endpoint.subscribe(&self.channels, &self.patterns),
        );
        let connected = tokio::select! {
            biased;
            () = outbox.cancel.cancelled() => return Err(Stop),
            result = subscribing => match result {
                Ok(Ok(connected)) => connected,
                Ok(Err(failure)) => return Ok(failure),
                Err(_) => return Ok(Failure::Transient(format!(
                    "Redis at {label} did not answer within {CONNECT_TIMEOUT:?}"
                ))),
            },
        };
        tracing::info!(url = %label, channels = ?self.channels, patterns = ?self.patterns, "subscribed to Redis");
        // On Redis Cluster with history: what other nodes publish reaches
        // this one over the bus, whose links are watched (crate::cluster).
        let mut links = None;
        if self.history.is_some() && self.endpoint.url().is_cluster() {
            match LinkWatch::start(&connected.server, requested).await {
                Ok(watch) => links = Some(watch),
                Err(failure) => return Ok(failure),
            }
        }

        // With history: replay what was missed before going live. Messages
        // published meanwhile wait in the subscription's socket.
        let mut history_link = None;
        if let Some(history) = self.history.clone() {
            match self.catch_up(&history, outbox).await? {
                Ok((connection, replayed)) => history_link = Some((history, connection, replayed)),
                Err(failure) => return Ok(failure),
            }
        }
        outbox.state(SourceState::Live).await?;

        let crate::subscriber::Connected { mut reader, mut writer, early, .. } = connected;
        let liveness = Liveness::new();
        let (queue, mut received) = mpsc::channel(RECEIVED_QUEUE);
        let (_marks, no_marks) = mpsc::channel(1);
        let reading = liveness.read(&mut reader, early, &queue, &label);
        let watching = liveness.watch(&mut writer, PING_INTERVAL, no_marks, &label);
        let outbox = &*outbox;
        let delivering = async {
            let mut batch = Vec::with_capacity(DELIVER_BATCH);
            let mut ticks = tokio::time::interval(LOCATE_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut link_ticks = tokio::time::interval(LINK_CHECK_EVERY);
            link_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    count = received.recv_many(&mut batch, DELIVER_BATCH) => {
                        if count == 0 {
                            std::future::pending::<()>().await;
                        }
                        for item in batch.drain(..) {
                            let Received::Message { channel, payload } = item else { continue };
                            if let Some((_, _, replayed)) = &mut history_link {
                                if skip_replayed(replayed, &channel, &payload) {
                                    continue;
                                }
                                self.cursors.entry(channel.clone()).or_default().handed_on(&payload);
                            }
                            outbox.message(channel, payload, None).await?;
                        }
                    }
                    _ = ticks.tick(), if history_link.is_some() => {
                        let Some((history, connection, _)) = &mut history_link else { continue };
                        if let Err(failure) = self.locate(history, connection, outbox).await? {
                            return Ok(failure);
                        }
                    }
                    _ = link_ticks.tick(), if links.is_some() => {
                        let Some(watch) = &mut links else { continue };
                        if let Err(broken) = watch.check().await {
                            return self.tell_broken_link(broken, outbox).await;
                        }
                    }
                }
            }
        };
        tokio::select! {
            biased;
            () = outbox.cancel.cancelled() => Err(Stop),
            result = delivering => result,
            failure = reading => Ok(failure),
            failure = watching => Ok(failure),
        }
    }
}

impl RedisSession {
    /// A bus link of the subscribed node may have dropped a message: the
    /// replay after reconnecting cannot tell which (it starts after the
    /// last message handed on), so every channel is told it may have missed
    /// events since the links were last seen whole, and the session ends.
    async fn tell_broken_link(
        &mut self,
        broken: Broken,
        outbox: &UpdateSender,
    ) -> Result<Failure, Stop> {
        tracing::warn!(reason = %broken.reason, "events may be missing on every channel");
        let mut told: Vec<String> = self.channels.iter().chain(&self.patterns).cloned().collect();
        told.extend(
            self.cursors.keys().filter(|channel| !self.channels.contains(channel)).cloned(),
        );
        for channel in told {
            outbox.send(SourceUpdate::Missed { channel, since: Some(broken.intact_at) }).await?;
        }
        Ok(Failure::Transient(broken.reason))
    }
}

/// Whether a live message right after a replay was already in it. Live
/// messages that repeat the replay's tail come first and in order; the
/// first that is not in it ends the overlap for its channel.
fn skip_replayed(
    replayed: &mut HashMap<String, HashSet<u64>>,
    channel: &str,
    payload: &[u8],
) -> bool {
    let Some(hashes) = replayed.get(channel) else { return false };
    if hashes.contains(&payload_hash(payload)) {
        return true;
    }
    replayed.remove(channel);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_names_become_channels_and_globs_become_patterns() {
        assert_eq!(Subscription::parse("inventory"), Ok(Subscription::Channel(Channel::Inventory)));
        assert_eq!(
            Subscription::parse("ws:inventory"),
            Ok(Subscription::Channel(Channel::Inventory))
        );
        assert_eq!(Subscription::parse("ws:*"), Ok(Subscription::all()));
        assert_eq!(Subscription::parse("user:*"), Ok(Subscription::Pattern("ws:user:*".into())));
        assert!(Subscription::parse("stock").is_err());
    }

    #[test]
    fn bad_urls_are_refused_up_front_with_the_password_hidden() {
        let error = RedisSession::new(&RedisSourceConfig::new("http://:pw@host")).unwrap_err();
        assert!(error.contains("not usable") && !error.contains("pw@"), "{error}");
    }

    #[test]
    fn an_empty_subscription_list_is_refused() {
        let mut config = RedisSourceConfig::new("redis://127.0.0.1");
        config.subscriptions.clear();
        assert!(RedisSession::new(&config).unwrap_err().contains("empty"));
    }
}
