//! The one resume engine (docs/positions.md, "Resuming"): reading what a
//! channel received after a position, and the replay-then-skip rule. The
//! Redis source, the recorder (the gateway's upstream) and the gateway's
//! connections all resume through these two pieces:
//!
//! - [`replay`] asks history for everything after a position and whether it
//!   is provably everything, waiting briefly for the recorder's proof to
//!   reach the caller's subscribe time; any doubt is "not recovered", with
//!   the position since which events may be missing.
//! - [`Floors`] remembers, per channel, the last position a replay handed
//!   on: a live event at or below it was in the replay and is skipped, so
//!   each event is handed on once.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::history::{Entry, History, HistoryError, Position, Unrecovered};

/// How long a resume waits for the recorder to prove recording up to the
/// caller's subscribe time: a little over the recorder's lease, after which
/// a live holder has either proven it or lost the duty.
pub const PROOF_WAIT: Duration = Duration::from_secs(4);

/// How often the proof is asked for again while waiting.
const PROOF_RETRY: Duration = Duration::from_millis(100);

/// What one channel's resume found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The Redis channel name.
    pub channel: String,
    /// Oldest first: hand these on, in order, before live events.
    pub entries: Vec<Entry>,
    /// When not everything could be proven: the position since which events
    /// may be missing (the one asked from).
    pub missed: Option<Position>,
    /// Why not everything could be proven; `None` when it was.
    pub unrecovered: Option<Unrecovered>,
}

impl Replay {
    /// Whether `entries` is provably everything after the position asked
    /// from.
    pub fn recovered(&self) -> bool {
        self.missed.is_none()
    }

    /// The position of the last entry, or `since` when nothing followed in
    /// the same history: where the next resume starts.
    pub fn last(&self, since: &Position) -> Option<Position> {
        match (self.entries.last(), &self.unrecovered) {
            (Some(entry), _) => Some(entry.position.clone()),
            // Another history, or a position history does not hold (a
            // made-up or future one must never become a floor that hides
            // live events).
            (None, Some(Unrecovered::Epoch | Unrecovered::Trimmed)) => None,
            (None, _) => Some(since.clone()),
        }
    }
}

/// Reads what `channel` received after `since`. `subscribed_at` is the Redis
/// time at which the caller's live subscription was confirmed (0 when the
/// caller records everything it hands on itself): the recorder must have
/// proven recording up to it, or a message published just before could be
/// neither in the replay nor live.
pub async fn replay<C: ConnectionLike>(
    history: &History,
    connection: &mut C,
    channel: &str,
    since: &Position,
    subscribed_at: u64,
) -> Result<Replay, HistoryError> {
    read(history, connection, channel, since, subscribed_at, None).await
}

/// [`replay`] for a reader that pages (the gateway): whether the replay is
/// provably complete, with at most `first_page` entries (oldest first);
/// the rest is read with [`History::page`] from the last one (or `since`),
/// so memory and Redis time per step stay bounded.
pub async fn replay_first<C: ConnectionLike>(
    history: &History,
    connection: &mut C,
    channel: &str,
    since: &Position,
    subscribed_at: u64,
    first_page: usize,
) -> Result<Replay, HistoryError> {
    read(history, connection, channel, since, subscribed_at, Some(first_page)).await
}

async fn read<C: ConnectionLike>(
    history: &History,
    connection: &mut C,
    channel: &str,
    since: &Position,
    subscribed_at: u64,
    first_page: Option<usize>,
) -> Result<Replay, HistoryError> {
    let deadline = tokio::time::Instant::now() + PROOF_WAIT;
    let recovery = loop {
        let recovery = match first_page {
            None => history.recover(connection, channel, since, subscribed_at).await?,
            Some(page) => {
                history.recover_first(connection, channel, since, subscribed_at, page).await?
            }
        };
        let waiting = recovery.unrecovered == Some(Unrecovered::Unproven);
        if !waiting || tokio::time::Instant::now() >= deadline {
            break recovery;
        }
        tokio::time::sleep(PROOF_RETRY).await;
    };
    Ok(Replay {
        channel: channel.to_owned(),
        missed: (!recovery.recovered).then(|| since.clone()),
        unrecovered: recovery.unrecovered,
        entries: recovery.entries,
    })
}

/// Per channel, the last position a replay handed on.
#[derive(Debug, Default, Clone)]
pub struct Floors(HashMap<String, Position>);

impl Floors {
    /// After a replay of `channel` that went up to `position`.
    pub fn raise(&mut self, channel: &str, position: Position) {
        self.0.insert(channel.to_owned(), position);
    }

    /// Whether a live event at `position` was already in `channel`'s replay.
    pub fn covers(&self, channel: &str, position: &Position) -> bool {
        self.0.get(channel).is_some_and(|floor| is_covered(position, floor))
    }

    /// Drops `channel`'s floor, so no live event on it is skipped.
    pub fn forget(&mut self, channel: &str) {
        self.0.remove(channel);
    }

    /// Whether no channel has a floor.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `position` is at or before `floor` in the same history.
pub fn is_covered(position: &Position, floor: &Position) -> bool {
    position.epoch == floor.epoch && position.id <= floor.id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Position {
        text.parse().unwrap()
    }

    #[test]
    fn a_live_event_at_or_below_the_floor_was_in_the_replay() {
        let mut floors = Floors::default();
        floors.raise("ws:orders", at("e:10-0"));
        assert!(floors.covers("ws:orders", &at("e:9-5")));
        assert!(floors.covers("ws:orders", &at("e:10-0")));
        assert!(!floors.covers("ws:orders", &at("e:10-1")));
    }

    #[test]
    fn a_floor_covers_only_its_own_channel_and_epoch() {
        let mut floors = Floors::default();
        floors.raise("ws:orders", at("e:10-0"));
        assert!(!floors.covers("ws:inventory", &at("e:1-0")));
        assert!(!floors.covers("ws:orders", &at("f:1-0")), "another epoch is another history");
    }
}
