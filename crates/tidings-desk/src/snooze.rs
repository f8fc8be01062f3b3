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

/// When "tomorrow 9:00" is, local time, from `now` (ms since the epoch)
/// and the minutes after local midnight now.
pub fn tomorrow_at_nine(now: i64, local_minute: u32) -> i64 {
    let into_minute = now.rem_euclid(60_000);
    let midnight = now - into_minute - i64::from(local_minute) * 60_000;
    midnight + (24 + 9) * 3_600_000
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
    fn tomorrow_nine_is_nine_hours_after_the_next_midnight() {
        // 14:30:20 local.
        let now = 1_000_000_000_000_i64 - 1_000_000_000_000_i64.rem_euclid(86_400_000)
            + (14 * 60 + 30) * 60_000
            + 20_000;
        let at = tomorrow_at_nine(now, 14 * 60 + 30);
        assert_eq!(at - now, ((24 - 14) * 60 - 30 + 9 * 60) * 60_000 - 20_000);
    }
}
