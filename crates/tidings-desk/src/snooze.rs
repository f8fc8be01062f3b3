//! Snoozed approval requests: "remind me in 15 min / 1 h / tomorrow 9:00".
//!
//! A snooze closes the request's notification and remembers when to remind;
//! at that time the pipeline notifies again through the normal routing (so
//! the resident cap and the summary still hold) if the request is still
//! pending, and forgets the snooze either way. Snoozes are kept in
//! `snoozes.json` next to the history database, so they survive a restart;
//! the file is written off the pipeline task (a blocking task, newest state
//! wins) and read once at start. At most [`MAX_SNOOZES`] at once: past it a
//! new snooze is refused (the notification stays).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Snoozes kept at once.
pub const MAX_SNOOZES: usize = 500;
/// The file, in the data dir.
pub const SNOOZE_FILE: &str = "snoozes.json";
/// The latest a snooze may be set for: 7 days ahead.
pub const MAX_SNOOZE_MS: i64 = 7 * 24 * 3_600_000;

/// Item id → when to remind (ms since the epoch).
#[derive(Debug, Default)]
pub struct Snoozes {
    path: Option<PathBuf>,
    until: BTreeMap<String, i64>,
    /// Numbers saves so that an older state never overwrites a newer one.
    saved: Arc<SaveOrder>,
}

#[derive(Debug, Default)]
struct SaveOrder {
    next: AtomicU64,
    written: std::sync::Mutex<u64>,
}

impl Snoozes {
    /// Reads the snoozes kept in `dir` (none when the file is missing or
    /// unreadable: logged, and the next snooze writes a fresh one).
    pub fn load(dir: &Path) -> Snoozes {
        let path = dir.join(SNOOZE_FILE);
        let until = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<BTreeMap<String, i64>>(&bytes)
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, path = %path.display(), "snoozes unreadable; starting without them");
                    BTreeMap::new()
                }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "snoozes unreadable; starting without them");
                BTreeMap::new()
            }
        };
        let until = until.into_iter().take(MAX_SNOOZES).collect();
        Snoozes { path: Some(path), until, saved: Arc::default() }
    }

    /// Remembers to remind of `item_id` at `until`; false when
    /// [`MAX_SNOOZES`] are already kept (a snooze of the same item is
    /// replaced, never refused).
    pub fn add(&mut self, item_id: &str, until: i64) -> bool {
        if !self.until.contains_key(item_id) && self.until.len() >= MAX_SNOOZES {
            return false;
        }
        self.until.insert(item_id.to_owned(), until);
        self.save();
        true
    }

    /// Forgets `item_id`'s snooze (decided, read), if it has one.
    pub fn remove(&mut self, item_id: &str) {
        if self.until.remove(item_id).is_some() {
            self.save();
        }
    }

    /// The snoozes due at `now`, taken out.
    pub fn take_due(&mut self, now: i64) -> Vec<String> {
        let due: Vec<String> =
            self.until.iter().filter(|(_, at)| **at <= now).map(|(id, _)| id.clone()).collect();
        if !due.is_empty() {
            for id in &due {
                self.until.remove(id);
            }
            self.save();
        }
        due
    }

    /// Test hook: every snooze becomes due `by_ms` sooner.
    pub fn bring_forward(&mut self, by_ms: i64) {
        for at in self.until.values_mut() {
            *at -= by_ms;
        }
        self.save();
    }

    /// Item id → when, for the UI.
    pub fn all(&self) -> &BTreeMap<String, i64> {
        &self.until
    }

    fn save(&self) {
        let Some(path) = self.path.clone() else { return };
        let Ok(bytes) = serde_json::to_vec(&self.until) else { return };
        let order = Arc::clone(&self.saved);
        let number = order.next.fetch_add(1, Ordering::Relaxed) + 1;
        let write = move || {
            let mut written = order.written.lock().unwrap_or_else(|p| p.into_inner());
            if *written > number {
                return; // a newer state is on disk already
            }
            let tmp = path.with_extension("json.tmp");
            let result = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
            match result {
                Ok(()) => *written = number,
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "could not keep the snoozes; they will not survive a restart")
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(write)),
            Err(_) => write(),
        }
    }
}

/// When "tomorrow 9:00" is (ms since the epoch), on the wall clock of
/// `now`'s time zone: on a day the clocks change, that is still 9:00, not
/// 33 hours after midnight. Where 9:00 is skipped (a zone that moves its
/// clock at that hour) it is the first hour after the jump; where it comes
/// twice, the first.
pub fn tomorrow_at_nine<Tz: chrono::TimeZone>(now: &chrono::DateTime<Tz>) -> i64 {
    let tomorrow = now.date_naive().succ_opt().unwrap_or(chrono::NaiveDate::MAX);
    let zone = now.timezone();
    [9, 10]
        .into_iter()
        .filter_map(|hour| tomorrow.and_hms_opt(hour, 0, 0))
        .find_map(|wall| zone.from_local_datetime(&wall).earliest())
        .map_or_else(|| now.timestamp_millis() + 24 * 3_600_000, |at| at.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snoozes_survive_a_reload_and_are_taken_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let mut snoozes = Snoozes::load(dir.path());
        assert!(snoozes.add("a", 1_000));
        assert!(snoozes.add("b", 5_000));
        drop(snoozes);
        let mut again = Snoozes::load(dir.path());
        assert_eq!(again.all().len(), 2);
        assert_eq!(again.take_due(2_000), vec!["a".to_owned()]);
        assert_eq!(Snoozes::load(dir.path()).all().keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn past_the_cap_a_new_snooze_is_refused_but_an_old_one_moves() {
        let mut snoozes = Snoozes::default();
        for n in 0..MAX_SNOOZES {
            assert!(snoozes.add(&n.to_string(), 1));
        }
        assert!(!snoozes.add("one more", 1));
        assert!(snoozes.add("0", 2));
    }

    #[test]
    fn tomorrow_nine_is_nine_on_the_next_day() {
        let zone = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let now = zone.with_ymd_and_hms(2026, 12, 3, 14, 30, 20).unwrap();
        let at = tomorrow_at_nine(&now);
        assert_eq!(at, zone.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap().timestamp_millis());
    }

    #[test]
    fn tomorrow_nine_is_still_nine_when_the_clocks_go_forward_overnight() {
        let zone = SpringForward::<2>;
        let now = zone.with_ymd_and_hms(2026, 3, 28, 14, 30, 0).unwrap();
        // 9:00 summer time (UTC+2) is 7:00 UTC, not the 8:00 UTC that
        // "33 hours after midnight" would give.
        let utc = chrono::Utc.with_ymd_and_hms(2026, 3, 29, 7, 0, 0).unwrap();
        assert_eq!(tomorrow_at_nine(&now), utc.timestamp_millis());
    }

    #[test]
    fn tomorrow_nine_skipped_by_the_clock_becomes_the_hour_after_the_jump() {
        let zone = SpringForward::<9>;
        let now = zone.with_ymd_and_hms(2026, 3, 28, 20, 0, 0).unwrap();
        // 9:00 never happens; 10:00 summer time is 8:00 UTC.
        let utc = chrono::Utc.with_ymd_and_hms(2026, 3, 29, 8, 0, 0).unwrap();
        assert_eq!(tomorrow_at_nine(&now), utc.timestamp_millis());
    }

    use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, TimeZone};

    /// A zone like central Europe in 2026: UTC+1, then on 29 March at
    /// `HOUR`:00 local the clocks jump an hour to UTC+2.
    #[derive(Debug, Clone, Copy)]
    struct SpringForward<const HOUR: u32>;

    impl<const HOUR: u32> SpringForward<HOUR> {
        fn jump_local() -> NaiveDateTime {
            let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
            day.and_hms_opt(HOUR, 0, 0).unwrap()
        }
    }

    fn hours(n: i32) -> FixedOffset {
        FixedOffset::east_opt(n * 3600).unwrap()
    }

    impl<const HOUR: u32> TimeZone for SpringForward<HOUR> {
        type Offset = FixedOffset;
        fn from_offset(_: &FixedOffset) -> Self {
            SpringForward
        }
        fn offset_from_local_date(&self, _: &NaiveDate) -> MappedLocalTime<FixedOffset> {
            unreachable!("the tests use date-times")
        }
        fn offset_from_local_datetime(
            &self,
            local: &NaiveDateTime,
        ) -> MappedLocalTime<FixedOffset> {
            let jump = Self::jump_local();
            if *local < jump {
                MappedLocalTime::Single(hours(1))
            } else if *local < jump + chrono::Duration::hours(1) {
                MappedLocalTime::None
            } else {
                MappedLocalTime::Single(hours(2))
            }
        }
        fn offset_from_utc_date(&self, _: &NaiveDate) -> FixedOffset {
            unreachable!("the tests use date-times")
        }
        fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
            let jump_utc = Self::jump_local() - chrono::Duration::hours(1);
            if *utc < jump_utc { hours(1) } else { hours(2) }
        }
    }
}
