//! The recorder: the one component that appends plain `PUBLISH`es to
//! history and proves how far it has (docs/positions.md, "Coverage").
//!
//! It subscribes to `ws:*` through the project's bounded subscriber and
//! records what it receives in pipelined batches. One recorder at a time
//! holds the *recording duty* (a lease in Redis): the holder proves, a few
//! times a second, that everything published before a Redis time is
//! recorded (a mark PING on its subscription, answered after every message
//! published before it). When the duty changes hands and the newcomer did
//! not record from before the last proof, the period between is written
//! down as a gap, and recovery across it answers "not recovered".
//!
//! Two kinds of recorder, one loop:
//! - [`Duty::Always`] (the gateway): records every message it receives,
//!   whoever holds the duty, because it needs each message's position to
//!   hand on; it hands every recorded message to its consumer, and after a
//!   reconnect first replays what it missed. It claims the duty whenever it
//!   is free.
//! - [`Duty::Standby`] (a desktop app on Redis directly): records nothing
//!   and holds no subscription while someone else has the duty; checks the
//!   duty every [`STANDBY_POLL`] and takes it over when it lapses. So N
//!   desktops cost one append per event, not N.
//!
//! Memory: the last position handed on per channel (`Delivered`) is
//! bounded by [`MAX_DELIVERED_CHANNELS`] and forgets channels idle past the
//! history's `max_age`.
//!
//! Ending: the task runs until its token is cancelled; it then gives the
//! duty back, so a successor does not wait for the lease to expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cluster;
use crate::redis_url::Commands;
use tidings_events::channel::{REDIS_PATTERN_ALL, REDIS_PREFIX};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::history::{Claim, History, HistoryConfig, HistoryError, Position, redis_time};
use crate::resume::{self, Floors};
use crate::source::Backoff;
use crate::subscriber::{self, Endpoint, Failure, Liveness, Received};

/// How long the duty lasts without a proof: a holder that stops proving
/// (crashed, cut off) loses it after this.
pub const LEASE: Duration = Duration::from_secs(3);

/// How often the holder proves how far it has recorded.
pub const PROVE_EVERY: Duration = Duration::from_millis(250);

/// How often a standby recorder looks whether the duty is free.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

/// How often an idle subscription is checked with `PING`.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Bound on one history round trip (recording a batch, a proof, a claim).
/// Not redis-rs's 500 ms default: a busy Redis can take longer for one
/// batch, and giving up drops what was read but not recorded.
pub const HISTORY_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages read but not yet recorded. When full the reader stops reading
/// and Redis buffers (see `subscriber`).
const RECEIVED_QUEUE: usize = 1024;

/// Most messages recorded in one pipelined round trip.
const RECORD_BATCH: usize = 256;

/// Which kind of recorder (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// Records every message received, whoever holds the duty, and hands
    /// each on with its position (the gateway).
    Always,
    /// Records nothing while someone else holds the duty and takes it over
    /// when it lapses (a desktop app reading Redis directly).
    Standby,
}

/// What a recorder tells its consumer, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Subscribed and recording: messages published from now on follow.
    Live,
    /// The link to Redis failed; retrying after a backoff.
    Reconnecting(String),
    /// A message and its position (only [`Duty::Always`]; no position when
    /// the recorder runs without history, as a plain subscriber).
    Message {
        /// The Redis channel name, e.g. `ws:inventory`.
        channel: String,
        /// The published bytes, unchanged.
        payload: bytes::Bytes,
        /// Where it was recorded; `None` without history.
        position: Option<Position>,
    },
    /// A message on a `ws:` name that is no Tidings channel: not recorded,
    /// handed on for counting (only [`Duty::Always`]).
    Unrecordable {
        /// The Redis channel name as received.
        channel: String,
        /// The published bytes, unchanged.
        payload: bytes::Bytes,
    },
    /// After a reconnect, what happened on `channel` since `since` could not
    /// all be replayed: events may be missing (only [`Duty::Always`]).
    Missed {
        /// The Redis channel name, e.g. `ws:inventory`.
        channel: String,
        /// The last position handed on for `channel` before the reconnect.
        since: Position,
    },
}

/// Where and how to record.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// The Redis URL: `redis://…`, `rediss://…` or `redis+unix:///path`.
    pub url: String,
    /// `None`: record nothing, hand every message on without a position
    /// (the gateway's `--no-history`): the same subscriber, no duty.
    pub history: Option<HistoryConfig>,
    /// Which kind of recorder to run.
    pub duty: Duty,
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
}

/// Runs a recorder until `cancel`; `consumer` gets every [`Recorded`] in
/// order and must not block (the gateway's hub only queues). A URL that can
/// never work is logged and ends the task at once.
pub async fn run_recorder(
    config: RecorderConfig,
    consumer: impl FnMut(Recorded) + Send,
    cancel: CancellationToken,
) {
    run_recorder_with_tls(config, false, consumer, cancel).await;
}

/// [`run_recorder`], also accepting a `rediss://…#insecure` URL (TLS
/// without certificate checks) when `insecure_tls`: only for an operator's
/// explicit `--insecure-tls` (the gateway, `tidings record`).
pub async fn run_recorder_with_tls(
    config: RecorderConfig,
    insecure_tls: bool,
    mut consumer: impl FnMut(Recorded) + Send,
    cancel: CancellationToken,
) {
    let endpoint = match Endpoint::parse_with(&config.url, insecure_tls) {
        Ok(endpoint) => endpoint,
        Err(reason) => {
            tracing::error!(%reason, "recorder cannot start");
            consumer(Recorded::Reconnecting(reason));
            return;
        }
    };
    let history = config.history.map(|history| History::new(history).on(endpoint.url()));
    let mut recorder = Recorder {
        endpoint,
        history,
        duty: config.duty,
        delivered: Delivered::new(
            MAX_DELIVERED_CHANNELS,
            config.history.map_or(Duration::ZERO, |history| history.max_age),
        ),
        previous_session: None,
        holding: None,
    };
    let mut attempt = 0u32;
    loop {
        if config.duty == Duty::Standby {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = recorder.wait_until_duty_is_free() => {}
            }
        }
        let ended = tokio::select! {
            () = cancel.cancelled() => break,
            ended = recorder.session(&mut consumer) => ended,
        };
        let reason = match ended {
            SessionEnd::LostDuty => {
                attempt = 0;
                continue;
            }
            SessionEnd::Failed { reached_live, failure } => {
                if reached_live {
                    attempt = 0;
                }
                match failure {
                    Failure::Transient(reason) | Failure::Refused(reason) => reason,
                }
            }
        };
        attempt = attempt.saturating_add(1);
        let delay = config.backoff.delay(attempt);
        tracing::warn!(redis = %recorder.endpoint.label, %reason, retry_in = ?delay, "recorder reconnecting");
        consumer(Recorded::Reconnecting(reason));
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    recorder.give_back().await;
}

/// How a session ended.
enum SessionEnd {
    /// A standby recorder lost (or never got) the duty: back to waiting.
    LostDuty,
    Failed {
        reached_live: bool,
        failure: Failure,
    },
}

struct Recorder {
    endpoint: Endpoint,
    history: Option<History>,
    duty: Duty,
    /// The last position handed on per channel: where a replay after a
    /// reconnect starts ([`Duty::Always`]).
    delivered: Delivered,
    /// This recorder's previous session id: it may take its own stale duty
    /// over at once after a reconnect (recording the gap).
    previous_session: Option<String>,
    /// The session that holds the duty now, and a connection to give it
    /// back on shutdown.
    holding: Option<(String, Commands)>,
}

impl Recorder {
    /// Polls the duty until it has been free at two checks in a row (so a
    /// holder restarting at once, or an always-on gateway, gets it first).
    async fn wait_until_duty_is_free(&mut self) {
        let mut free_checks = 0;
        loop {
            let free = async {
                let mut connection = self.endpoint.commands(HISTORY_TIMEOUT).await?;
                let holder: Option<String> = redis::cmd("GET")
                    .arg(crate::history::LEASE_KEY)
                    .query_async(&mut connection)
                    .await?;
                // Its own stale duty (after a reconnect) counts as free.
                Ok::<_, redis::RedisError>(
                    holder.is_none() || holder.as_deref() == self.previous_session.as_deref(),
                )
            };
            match tokio::time::timeout(HISTORY_TIMEOUT, free).await {
                Ok(Ok(true)) => free_checks += 1,
                _ => free_checks = 0,
            }
            if free_checks >= 2 {
                return;
            }
            let half = u64::try_from(STANDBY_POLL.as_millis() / 2).unwrap_or(500);
            let jitter = rand::random_range(0..=half);
            tokio::time::sleep(STANDBY_POLL + Duration::from_millis(jitter)).await;
        }
    }

    /// Gives the duty back if this recorder holds it.
    async fn give_back(&mut self) {
        if let (Some((session, mut connection)), Some(history)) =
            (self.holding.take(), &self.history)
        {
            let release = history.release(&mut connection, &session);
            if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(1), release).await {
                tracing::debug!(%error, "could not give the recording duty back");
            }
        }
    }

    /// Opens the command connection, reads Redis's time (this session has
    /// received everything published since), claims the duty, and (always-on)
    /// reads what each channel received since the last position handed on.
    async fn start(&self, history: &History, session: &str) -> Result<Started, HistoryError> {
        let mut commands = self.endpoint.commands(HISTORY_TIMEOUT).await?;
        history.load(&mut commands).await?;
        let since = redis_time(&mut commands).await?;
        let previous = self.previous_session.as_deref();
        let claim = history.claim(&mut commands, session, since, previous, LEASE).await?;
        let mut replays = Vec::new();
        if self.duty == Duty::Always {
            for (channel, from) in self.delivered.iter() {
                replays.push(resume::replay(history, &mut commands, channel, from, since).await?);
            }
        }
        Ok(Started { commands, claim, since, replays })
    }

    /// One subscription's life: subscribe, claim the duty, replay what was
    /// missed (always-on), then record and prove until something fails.
    async fn session(&mut self, consumer: &mut (impl FnMut(Recorded) + Send)) -> SessionEnd {
        let failed = |failure| SessionEnd::Failed { reached_live: false, failure };
        let label = self.endpoint.label.clone();
        let everything = [REDIS_PATTERN_ALL.to_owned()];
        let session = new_session();
        // On Redis Cluster the marks travel on the session's own channel.
        let on_cluster = self.history.is_some() && self.endpoint.url().is_cluster();
        let marks_channel: Vec<String> =
            on_cluster.then(|| cluster::mark_channel(&session)).into_iter().collect();
        let requested = Instant::now();
        let subscribing = tokio::time::timeout(
            subscriber::CONNECT_TIMEOUT,
            self.endpoint.subscribe(&marks_channel, &everything),
        );
        let connected = match subscribing.await {
            Ok(Ok(connected)) => connected,
            Ok(Err(failure)) => return failed(failure),
            Err(_) => {
                return failed(Failure::Transient(format!(
                    "Redis at {label} did not answer within {:?}",
                    subscriber::CONNECT_TIMEOUT
                )));
            }
        };
        let Some(history) = self.history.clone() else {
            return plain(connected, &label, consumer).await;
        };
        let started =
            match tokio::time::timeout(START_TIMEOUT, self.start(&history, &session)).await {
                Ok(Ok(started)) => started,
                Ok(Err(error)) => {
                    return failed(Failure::Transient(format!(
                        "cannot record history in Redis at {label}: {error}"
                    )));
                }
                Err(_) => {
                    return failed(Failure::Transient(format!(
                        "Redis at {label} did not answer the recorder within {START_TIMEOUT:?}"
                    )));
                }
            };
        let Started { commands, claim, since, replays } = started;
        let cluster = match on_cluster {
            true => {
                match cluster::ClusterProof::start(connected.server.clone(), &session, requested)
                    .await
                {
                    Ok(proof) => Some(proof),
                    Err(failure) => return failed(failure),
                }
            }
            false => None,
        };
        let holding = match claim {
            Claim::Held { gap } => {
                match gap {
                    // Nothing was ever proven on this Redis: coverage starts now.
                    Some(gap) if gap.starts_with("0-") => {
                        tracing::info!("holding the recording duty, the first on this Redis");
                    }
                    Some(gap) => {
                        tracing::warn!(%gap, "took the recording duty; nobody was proven recording during the gap, so resumes across it report events may be missing")
                    }
                    None => tracing::info!("holding the recording duty"),
                }
                self.previous_session = Some(session.clone());
                self.holding = Some((session.clone(), commands.clone()));
                true
            }
            Claim::Busy { .. } if self.duty == Duty::Standby => return SessionEnd::LostDuty,
            Claim::Busy { .. } => false,
        };
        let mut floors = Floors::default();
        for replay in replays {
            self.hand_on_replay(replay, &mut floors, consumer);
        }
        consumer(Recorded::Live);
        tracing::info!(redis = %label, pattern = REDIS_PATTERN_ALL, duty = ?self.duty, "recorder subscribed");

        let subscriber::Connected { mut reader, mut writer, early, .. } = connected;
        let liveness = Liveness::new();
        let (queue, received) = mpsc::channel(RECEIVED_QUEUE);
        let (marks, mark_requests) = mpsc::channel(4);
        let reading = liveness.read(&mut reader, early, &queue, &label);
        let watching = liveness.watch(&mut writer, PING_INTERVAL, mark_requests, &label);
        let mut live = Live {
            history: &history,
            duty: self.duty,
            session,
            since,
            commands,
            holding,
            floors,
            delivered: &mut self.delivered,
            holder_slot: &mut self.holding,
            marks,
            pending_marks: HashMap::new(),
            next_mark: 0,
            cluster,
        };
        let recording = live.run(received, consumer);
        tokio::select! {
            biased;
            end = recording => end,
            failure = reading => SessionEnd::Failed { reached_live: true, failure },
            failure = watching => SessionEnd::Failed { reached_live: true, failure },
        }
    }

    /// Hands on a replay after a reconnect: a `Missed` first when it could
    /// not prove everything, then its entries; raises the channel's floor.
    fn hand_on_replay(
        &mut self,
        replay: resume::Replay,
        floors: &mut Floors,
        consumer: &mut (impl FnMut(Recorded) + Send),
    ) {
        if let Some(since) = replay.missed.clone() {
            tracing::warn!(channel = %replay.channel, %since, reason = ?replay.unrecovered, "cannot replay everything since the last event handed on; telling subscribers events may be missing");
            consumer(Recorded::Missed { channel: replay.channel.clone(), since });
        }
        for entry in replay.entries {
            consumer(Recorded::Message {
                channel: replay.channel.clone(),
                payload: entry.payload.into(),
                position: Some(entry.position.clone()),
            });
            self.delivered.insert(&replay.channel, entry.position);
        }
        if let Some(last) = self.delivered.get(&replay.channel) {
            floors.raise(&replay.channel, last.clone());
        }
    }
}

/// Most channels whose last handed-on position a recorder remembers.
pub const MAX_DELIVERED_CHANNELS: usize = 100_000;
/// How often, at most, idle channels are looked for while under the cap.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(60);

/// The last position handed on per channel ([`Duty::Always`]): where the
/// replay after a reconnect starts. Bounded, since user channels come and
/// go: a channel with nothing handed on for longer than the history's
/// `max_age` is forgotten (its stream has expired by then, so no replay
/// from it could be exact), and past `max_entries` the least recently
/// active tenth is forgotten. A forgotten channel is not replayed after a
/// reconnect, like one never seen: its next message is handed on as usual.
#[derive(Debug)]
pub(crate) struct Delivered {
    entries: HashMap<String, (Position, std::time::Instant)>,
    max_entries: usize,
    /// Zero: never forget for idleness (history kept forever).
    max_idle: Duration,
    looked: std::time::Instant,
}

impl Delivered {
    pub(crate) fn new(max_entries: usize, max_idle: Duration) -> Self {
        Delivered {
            entries: HashMap::new(),
            max_entries: max_entries.max(1),
            max_idle,
            looked: std::time::Instant::now(),
        }
    }

    pub(crate) fn get(&self, channel: &str) -> Option<&Position> {
        self.entries.get(channel).map(|(position, _)| position)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Position)> {
        self.entries.iter().map(|(channel, (position, _))| (channel, position))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn insert(&mut self, channel: &str, position: Position) {
        self.insert_at(channel, position, std::time::Instant::now());
    }

    fn insert_at(&mut self, channel: &str, position: Position, now: std::time::Instant) {
        if let Some(entry) = self.entries.get_mut(channel) {
            *entry = (position, now);
            return;
        }
        self.entries.insert(channel.to_owned(), (position, now));
        if self.entries.len() > self.max_entries
            || now.saturating_duration_since(self.looked) >= FORGET_IDLE_EVERY
        {
            self.forget(now);
        }
    }

    fn forget(&mut self, now: std::time::Instant) {
        self.looked = now;
        if !self.max_idle.is_zero() {
            let max_idle = self.max_idle;
            self.entries.retain(|_, (_, at)| now.saturating_duration_since(*at) <= max_idle);
        }
        if self.entries.len() > self.max_entries {
            let keep = self.max_entries - self.max_entries / 10;
            let mut by_age: Vec<(std::time::Instant, String)> =
                self.entries.iter().map(|(channel, (_, at))| (*at, channel.clone())).collect();
            by_age.sort_unstable();
            let forget = by_age.len() - keep;
            for (_, channel) in by_age.into_iter().take(forget) {
                self.entries.remove(&channel);
            }
            tracing::debug!(
                forgotten = forget,
                kept = keep,
                "recorder forgot its least recently active channels"
            );
        }
    }
}

/// Bound on starting a session: the command connection, the claim and the
/// replays (which may wait for the holder's next proof).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// What [`Recorder::start`] gathered.
struct Started {
    commands: Commands,
    claim: Claim,
    since: u64,
    replays: Vec<resume::Replay>,
}

/// A live session's recording side: batches, proofs, claims.
struct Live<'a> {
    history: &'a History,
    duty: Duty,
    session: String,
    /// Redis time since which this session has received everything.
    since: u64,
    commands: Commands,
    holding: bool,
    floors: Floors,
    delivered: &'a mut Delivered,
    holder_slot: &'a mut Option<(String, Commands)>,
    marks: mpsc::Sender<u64>,
    /// Mark number → the Redis time read just before it was sent.
    pending_marks: HashMap<u64, u64>,
    next_mark: u64,
    /// On Redis Cluster: marks go through every node instead (`cluster`).
    cluster: Option<cluster::ClusterProof>,
}

impl Live<'_> {
    async fn run(
        &mut self,
        mut received: mpsc::Receiver<Received>,
        consumer: &mut (impl FnMut(Recorded) + Send),
    ) -> SessionEnd {
        let mut prove_ticks = tokio::time::interval(PROVE_EVERY);
        prove_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut claim_ticks = tokio::time::interval(STANDBY_POLL);
        claim_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        let step = |result: Result<(), Failure>| {
            result.err().map(|failure| SessionEnd::Failed { reached_live: true, failure })
        };
        loop {
            let outcome = tokio::select! {
                count = received.recv_many(&mut batch, RECORD_BATCH) => {
                    if count == 0 {
                        return SessionEnd::Failed { reached_live: true, failure: Failure::Transient("the subscription reader ended".into()) };
                    }
                    match self.record(&mut batch, consumer).await {
                        Ok(proven) => match self.prove(proven).await {
                            Ok(true) => None,
                            Ok(false) => return SessionEnd::LostDuty,
                            Err(failure) => step(Err(failure)),
                        },
                        Err(failure) => step(Err(failure)),
                    }
                }
                _ = prove_ticks.tick(), if self.holding || self.cluster.is_some() => step(self.send_mark().await),
                _ = claim_ticks.tick(), if !self.holding => step(self.try_claim().await),
            };
            if let Some(end) = outcome {
                return end;
            }
        }
    }

    /// Records a batch in one round trip and hands on (always-on) what was
    /// not already replayed; returns the Redis time up to which the marks
    /// the batch carried prove recording, once this batch is recorded.
    async fn record(
        &mut self,
        batch: &mut Vec<Received>,
        consumer: &mut (impl FnMut(Recorded) + Send),
    ) -> Result<Option<u64>, Failure> {
        let mut proven = None;
        let mut messages = Vec::with_capacity(batch.len());
        for item in batch.drain(..) {
            let until = match item {
                Received::Mark(mark) => self.pending_marks.remove(&mark),
                Received::Message { channel, payload } => match &mut self.cluster {
                    Some(cluster) if channel == cluster.channel() => cluster.arrived(&payload),
                    _ => {
                        messages.push((channel, payload));
                        None
                    }
                },
            };
            proven = proven.max(until);
        }
        let (recordable, other): (Vec<_>, Vec<_>) =
            messages.into_iter().partition(|(channel, _)| is_recordable(channel));
        if self.duty == Duty::Always {
            for (channel, payload) in other {
                consumer(Recorded::Unrecordable { channel, payload });
            }
        }
        if recordable.is_empty() {
            return Ok(proven);
        }
        let list: Vec<(&str, &[u8])> =
            recordable.iter().map(|(c, p)| (c.as_str(), p.as_ref())).collect();
        let record = self.history.record_many(&mut self.commands, &list);
        let positions = match tokio::time::timeout(HISTORY_TIMEOUT, record).await {
            Ok(Ok(positions)) => positions,
            // Not handed on: the replay after reconnecting sends them if
            // anyone recorded them, or says they may be missing.
            Ok(Err(error)) => {
                return Err(Failure::Transient(format!("recording history failed: {error}")));
            }
            Err(_) => {
                return Err(Failure::Transient(format!(
                    "recording history: no answer within {HISTORY_TIMEOUT:?}"
                )));
            }
        };
        if self.duty == Duty::Standby {
            return Ok(proven);
        }
        for ((channel, payload), position) in recordable.into_iter().zip(positions) {
            let replayed = self.floors.covers(&channel, &position);
            let repeated = self.delivered.get(&channel) == Some(&position);
            if replayed || repeated {
                continue;
            }
            self.delivered.insert(&channel, position.clone());
            consumer(Recorded::Message { channel, payload, position: Some(position) });
        }
        Ok(proven)
    }

    /// Proves recording up to `proven`, the time of the newest answered
    /// mark. False when a standby recorder lost the duty (its session ends).
    async fn prove(&mut self, proven: Option<u64>) -> Result<bool, Failure> {
        let Some(until) = proven else { return Ok(true) };
        if !self.holding {
            return Ok(true);
        }
        if let Some(cluster) = &mut self.cluster {
            cluster.check_links().await?;
        }
        let proof = self.history.prove(&mut self.commands, &self.session, until, LEASE);
        match tokio::time::timeout(HISTORY_TIMEOUT, proof).await {
            Ok(Ok(true)) => Ok(true),
            Ok(Ok(false)) => {
                tracing::warn!("lost the recording duty (it lapsed and another recorder took it)");
                *self.holder_slot = None;
                self.holding = false;
                Ok(self.duty == Duty::Always)
            }
            Ok(Err(error)) => Err(Failure::Transient(format!("cannot prove recording: {error}"))),
            Err(_) => Err(Failure::Transient(format!(
                "Redis did not answer a proof within {HISTORY_TIMEOUT:?}"
            ))),
        }
    }

    /// Reads Redis's time, then sends a mark: every message published
    /// before that time is answered before the mark. On a cluster without
    /// the duty, only watches the subscribed node's bus links.
    async fn send_mark(&mut self) -> Result<(), Failure> {
        if let Some(cluster) = &mut self.cluster
            && !self.holding
        {
            return cluster.check_links().await;
        }
        let now = match tokio::time::timeout(HISTORY_TIMEOUT, redis_time(&mut self.commands)).await
        {
            Ok(Ok(now)) => now,
            Ok(Err(error)) => {
                return Err(Failure::Transient(format!("cannot read Redis time: {error}")));
            }
            Err(_) => return Err(Failure::Transient("Redis did not answer TIME".into())),
        };
        if let Some(cluster) = &mut self.cluster {
            return cluster.send(now).await;
        }
        self.next_mark += 1;
        let oldest_kept = self.next_mark.saturating_sub(64);
        self.pending_marks.retain(|mark, _| *mark > oldest_kept);
        if self.marks.try_send(self.next_mark).is_ok() {
            self.pending_marks.insert(self.next_mark, now);
        }
        Ok(())
    }

    /// Always-on: takes the duty when it is free. This session has recorded
    /// everything since it subscribed, so the takeover is seamless when that
    /// is before the last proof.
    async fn try_claim(&mut self) -> Result<(), Failure> {
        let claim = self.history.claim(&mut self.commands, &self.session, self.since, None, LEASE);
        if let Ok(Ok(Claim::Held { gap })) = tokio::time::timeout(HISTORY_TIMEOUT, claim).await {
            match gap {
                Some(gap) => tracing::warn!(%gap, "took the recording duty over after a gap"),
                None => tracing::info!("took the recording duty over"),
            }
            *self.holder_slot = Some((self.session.clone(), self.commands.clone()));
            self.holding = true;
        }
        Ok(())
    }
}

/// A session without history: hands every message on, unrecorded, until
/// the connection fails.
async fn plain(
    connected: subscriber::Connected,
    label: &str,
    consumer: &mut (impl FnMut(Recorded) + Send),
) -> SessionEnd {
    consumer(Recorded::Live);
    tracing::info!(redis = %label, pattern = REDIS_PATTERN_ALL, "subscribed to Redis (no history)");
    let subscriber::Connected { mut reader, mut writer, early, .. } = connected;
    let liveness = Liveness::new();
    let (queue, mut received) = mpsc::channel(RECEIVED_QUEUE);
    let (_marks, no_marks) = mpsc::channel(1);
    let reading = liveness.read(&mut reader, early, &queue, label);
    let watching = liveness.watch(&mut writer, PING_INTERVAL, no_marks, label);
    let handing_on = async {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while received.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            for item in batch.drain(..) {
                let Received::Message { channel, payload } = item else { continue };
                consumer(Recorded::Message { channel, payload, position: None });
            }
        }
    };
    let failure = tokio::select! {
        () = handing_on => Failure::Transient("the subscription reader ended".into()),
        failure = reading => failure,
        failure = watching => failure,
    };
    SessionEnd::Failed { reached_live: true, failure }
}

/// Whether `channel` is a Tidings channel, which history keeps.
fn is_recordable(channel: &str) -> bool {
    channel
        .strip_prefix(REDIS_PREFIX)
        .is_some_and(|logical| tidings_events::Channel::parse(logical).is_ok())
}

fn new_session() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(n: u64) -> Position {
        format!("e1:{n}-0").parse().unwrap_or_else(|_| panic!("a position for {n}"))
    }

    #[test]
    fn past_its_cap_the_recorder_forgets_its_least_recently_active_channels() {
        let mut delivered = Delivered::new(10, Duration::from_secs(3600));
        let start = std::time::Instant::now();
        for n in 0..10 {
            delivered.insert_at(&format!("ws:user:u{n}:notifications"), position(n), start);
        }
        // The first user is active again, so it is no longer the oldest.
        let later = start + Duration::from_secs(1);
        delivered.insert_at("ws:user:u0:notifications", position(100), later);
        delivered.insert_at("ws:user:u10:notifications", position(10), later);
        assert!(delivered.len() <= 10, "{}", delivered.len());
        assert_eq!(delivered.get("ws:user:u0:notifications"), Some(&position(100)));
        assert_eq!(delivered.get("ws:user:u10:notifications"), Some(&position(10)));
        assert_eq!(delivered.get("ws:user:u1:notifications"), None);
    }

    #[test]
    fn a_channel_idle_past_the_history_age_is_forgotten() {
        let mut delivered = Delivered::new(1000, Duration::from_secs(60));
        let start = std::time::Instant::now();
        delivered.insert_at("ws:user:idle:notifications", position(1), start);
        delivered.insert_at("ws:inventory", position(2), start + Duration::from_secs(30));
        let much_later = start + Duration::from_secs(120);
        delivered.insert_at("ws:orders", position(3), much_later);
        assert_eq!(delivered.get("ws:user:idle:notifications"), None);
        assert_eq!(delivered.get("ws:inventory"), None);
        assert_eq!(delivered.get("ws:orders"), Some(&position(3)));
    }
}
