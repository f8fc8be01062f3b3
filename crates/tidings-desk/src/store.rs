//! Local history: an embedded SQLite database in WAL mode, owned by the
//! history writer thread (`crate::history`; one connection, no sharing)
//! once start-up has read what it needs.
//!
//! It keeps typed items (as the raw payload, decoded again when read, so a
//! newer contract reads old rows), their read/acknowledged marks, and the
//! last position per channel (docs/positions.md). Items and positions of one
//! flush are written in one transaction: after a crash or `kill -9` the
//! database holds either both or neither, so the app resumes from exactly the
//! last item it stored — nothing missing, nothing twice.
//!
//! Bounded by count and age: [`Store::prune`] deletes the oldest rows beyond
//! `max_items` and rows older than `max_age`.
//!
//! Private to its user: the data directory is created `0700` and the
//! database `0600` (SQLite gives its `-wal` and `-shm` files the database's
//! mode). A database that SQLite finds damaged or not a database at all on
//! opening is set aside, renamed `history.sqlite3.corrupt-<UTC time>` (kept,
//! for whoever wants to look), and a fresh one started:
//! [`Store::open_or_set_aside`] says so, for the app to tell the user.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, params};
use tidings_events::{Decoded, decode};

use crate::ipc::{FeedId, FeedItem, HistoryQuery};
use crate::policy::feed_of;

/// Why the history database failed.
#[derive(Debug, thiserror::Error)]
#[error("local history ({path}): {source}")]
pub struct StoreError {
    /// The database file.
    pub path: String,
    /// What SQLite said.
    #[source]
    pub source: rusqlite::Error,
}

impl StoreError {
    /// Whether SQLite found the file damaged, or not a database at all.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self.source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
    }
}

/// A damaged database moved out of the way by [`Store::open_or_set_aside`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Where the damaged file now is.
    pub moved_to: PathBuf,
    /// When it was last written (ms since the epoch): events after this may
    /// be missing, since the positions to resume from went with it.
    pub last_written: Option<i64>,
    /// What SQLite said.
    pub reason: String,
}

/// The database file in `dir`.
pub(crate) const DATABASE: &str = "history.sqlite3";

/// One item to store.
#[derive(Debug, Clone)]
pub struct StoredItem {
    /// The item as the feed shows it.
    pub item: FeedItem,
    /// The message as received (lossy UTF-8), decoded again when read.
    pub payload: String,
    /// Where the message sits in its channel's history, when the source gave
    /// one.
    pub position: Option<String>,
}

/// The history database.
#[derive(Debug)]
pub struct Store {
    connection: Connection,
    path: String,
    max_items: u64,
    max_age: Duration,
}

pub(crate) fn feed_name(feed: FeedId) -> &'static str {
    match feed {
        FeedId::Inventory => "inventory",
        FeedId::Orders => "orders",
        FeedId::Approvals => "approvals",
        FeedId::Finance => "finance",
        FeedId::System => "system",
        FeedId::Data => "data",
        FeedId::Broadcast => "broadcast",
        FeedId::Mine => "mine",
    }
}

impl Store {
    /// Opens `dir/history.sqlite3`, and when SQLite finds it damaged, sets
    /// it aside and starts a fresh one (see the module docs).
    pub fn open_or_set_aside(
        dir: &Path,
        max_items: u64,
        max_age: Duration,
    ) -> Result<(Store, Option<SetAside>), StoreError> {
        match Store::open(dir, max_items, max_age) {
            Ok(store) => Ok((store, None)),
            Err(error) if error.is_corrupt() => {
                let set_aside = set_aside(dir, &error)?;
                tracing::error!(
                    moved_to = %set_aside.moved_to.display(),
                    reason = %set_aside.reason,
                    "the history database is damaged; it was set aside and a fresh one started"
                );
                Ok((Store::open(dir, max_items, max_age)?, Some(set_aside)))
            }
            Err(error) => Err(error),
        }
    }

    /// Opens (creating if needed) `dir/history.sqlite3`, private to its
    /// user.
    pub fn open(dir: &Path, max_items: u64, max_age: Duration) -> Result<Store, StoreError> {
        let path = dir.join(DATABASE);
        let label = path.display().to_string();
        let wrap = |source| StoreError { path: label.clone(), source };
        let io = |error: std::io::Error, what: &Path| StoreError {
            path: label.clone(),
            source: rusqlite::Error::InvalidPath(format!("{}: {error}", what.display()).into()),
        };
        private_dir(dir).map_err(|error| io(error, dir))?;
        private_file(&path).map_err(|error| io(error, &path))?;
        let connection = Connection::open(&path).map_err(wrap)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS items (
                     id TEXT PRIMARY KEY,
                     seq INTEGER NOT NULL,
                     feed TEXT NOT NULL,
                     channel TEXT NOT NULL,
                     received_at INTEGER NOT NULL,
                     read INTEGER NOT NULL DEFAULT 0,
                     acknowledged INTEGER NOT NULL DEFAULT 0,
                     position TEXT,
                     payload TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS items_feed_seq ON items (feed, seq);
                 CREATE INDEX IF NOT EXISTS items_seq ON items (seq);
                 CREATE TABLE IF NOT EXISTS positions (
                     channel TEXT PRIMARY KEY,
                     position TEXT NOT NULL
                 );",
            )
            .map_err(wrap)?;
        crate::search::install(&connection).map_err(wrap)?;
        // Reads what start-up reads, so damage there shows now, not later.
        connection
            .query_row("SELECT max(seq) FROM items", [], |_| Ok(()))
            .and_then(|()| connection.query_row("SELECT count(*) FROM positions", [], |_| Ok(())))
            .map_err(wrap)?;
        Ok(Store { connection, path: label, max_items, max_age })
    }

    fn wrap(&self, source: rusqlite::Error) -> StoreError {
        StoreError { path: self.path.clone(), source }
    }

    /// Writes items and positions together (one transaction).
    pub fn write(
        &mut self,
        items: &[StoredItem],
        positions: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let transaction = self
            .connection
            .transaction()
            .map_err(|e| StoreError { path: self.path.clone(), source: e })?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO items (id, seq, feed, channel, received_at, read, position, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| StoreError { path: self.path.clone(), source: e })?;
            for stored in items {
                let item = &stored.item;
                insert
                    .execute(params![
                        item.id,
                        item.seq as i64,
                        feed_name(item.feed),
                        item.channel,
                        item.received_at,
                        item.read,
                        stored.position,
                        stored.payload
                    ])
                    .map_err(|e| StoreError { path: self.path.clone(), source: e })?;
            }
            let mut upsert = transaction
                .prepare_cached(
                    "INSERT INTO positions (channel, position) VALUES (?1, ?2)
                     ON CONFLICT (channel) DO UPDATE SET position = excluded.position",
                )
                .map_err(|e| StoreError { path: self.path.clone(), source: e })?;
            for (channel, position) in positions {
                upsert
                    .execute(params![channel, position])
                    .map_err(|e| StoreError { path: self.path.clone(), source: e })?;
            }
        }
        transaction.commit().map_err(|e| self.wrap(e))
    }

    /// The last position kept per Redis channel.
    pub fn positions(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT channel, position FROM positions")
            .map_err(|e| self.wrap(e))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(|e| self.wrap(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.wrap(e))
    }

    /// Per Redis channel, the newest kept item if its position was not
    /// known when it was kept: its payload and when it was received. The
    /// Redis source looks these up before resuming (positions arrive after
    /// the items they cover, and the app may close in between).
    pub fn unlocated_tails(&self) -> Result<BTreeMap<String, (String, i64)>, StoreError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT channel, payload, received_at FROM items
                 WHERE seq IN (SELECT MAX(seq) FROM items GROUP BY channel) AND position IS NULL",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = statement
            .query_map([], |row| {
                let channel: String = row.get(0)?;
                Ok((format!("ws:{channel}"), (row.get::<_, String>(1)?, row.get::<_, i64>(2)?)))
            })
            .map_err(|e| self.wrap(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.wrap(e))
    }

    /// The largest `seq` stored (0 when empty), so numbering continues.
    pub fn max_seq(&self) -> Result<u64, StoreError> {
        self.connection
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM items", [], |row| row.get::<_, i64>(0))
            .map(|seq| seq as u64)
            .map_err(|e| self.wrap(e))
    }

    /// Ids of the newest `limit` items (to seed the dedup set after a restart).
    pub fn recent_ids(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT id FROM items ORDER BY seq DESC LIMIT ?1")
            .map_err(|e| self.wrap(e))?;
        let rows = statement.query_map([limit], |row| row.get(0)).map_err(|e| self.wrap(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.wrap(e))
    }

    /// Items matching `query`, newest first.
    pub fn query(&self, query: &HistoryQuery) -> Result<Vec<FeedItem>, StoreError> {
        let mut sql = String::from(
            "SELECT id, seq, channel, received_at, read, payload FROM items WHERE 1 = 1",
        );
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(feed) = query.feed {
            sql.push_str(" AND feed = ?");
            args.push(Box::new(feed_name(feed)));
        }
        if let Some(before) = query.before_seq {
            sql.push_str(" AND seq < ?");
            args.push(Box::new(before as i64));
        }
        if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
            sql.push_str(" AND payload LIKE ? ESCAPE '\\'");
            args.push(Box::new(format!("%{}%", crate::search::escape_like(text))));
        }
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
        args.push(Box::new(i64::from(query.limit.clamp(1, 1000))));
        let mut statement = self.connection.prepare(&sql).map_err(|e| self.wrap(e))?;
        let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
        read_items(&mut statement, &params).map_err(|e| self.wrap(e))
    }

    /// The newest `per_feed` items of each feed, oldest first.
    pub fn latest(&self, per_feed: u32) -> Result<BTreeMap<FeedId, Vec<FeedItem>>, StoreError> {
        let mut feeds = BTreeMap::new();
        for feed in FeedId::ALL {
            let query =
                HistoryQuery { feed: Some(feed), before_seq: None, text: None, limit: per_feed };
            let mut items = self.query(&query)?;
            items.reverse();
            feeds.insert(feed, items);
        }
        Ok(feeds)
    }

    /// Unread counts per feed.
    pub fn unread(&self) -> Result<BTreeMap<FeedId, u32>, StoreError> {
        let mut counts: BTreeMap<FeedId, u32> = FeedId::ALL.into_iter().map(|f| (f, 0)).collect();
        for feed in FeedId::ALL {
            let count: i64 = self
                .connection
                .query_row(
                    "SELECT COUNT(*) FROM items WHERE feed = ?1 AND read = 0",
                    [feed_name(feed)],
                    |row| row.get(0),
                )
                .map_err(|e| self.wrap(e))?;
            counts.insert(feed, u32::try_from(count).unwrap_or(u32::MAX));
        }
        Ok(counts)
    }

    /// Marks the items with these ids read.
    pub fn mark_read(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("UPDATE items SET read = 1 WHERE id = ?1")
            .map_err(|e| self.wrap(e))?;
        for id in ids {
            statement.execute([id]).map_err(|e| self.wrap(e))?;
        }
        Ok(())
    }

    /// Marks every item of `feed` read.
    pub fn mark_all_read(&self, feed: FeedId) -> Result<(), StoreError> {
        self.connection
            .execute("UPDATE items SET read = 1 WHERE feed = ?1", [feed_name(feed)])
            .map(|_| ())
            .map_err(|e| self.wrap(e))
    }

    /// Marks item `id` acknowledged (a critical notice the user confirmed), and
    /// read.
    pub fn acknowledge(&self, id: &str) -> Result<(), StoreError> {
        self.connection
            .execute("UPDATE items SET acknowledged = 1, read = 1 WHERE id = ?1", [id])
            .map(|_| ())
            .map_err(|e| self.wrap(e))
    }

    /// One item by id.
    pub fn item(&self, id: &str) -> Result<Option<FeedItem>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT id, seq, channel, received_at, read, payload FROM items WHERE id = ?1",
            )
            .map_err(|e| self.wrap(e))?;
        read_items(&mut statement, &[&id])
            .map(|items| items.into_iter().next())
            .map_err(|e| self.wrap(e))
    }

    /// Deletes rows older than `max_age` and beyond the newest `max_items`.
    pub fn prune(&self, now_millis: i64) -> Result<usize, StoreError> {
        let cutoff = now_millis - i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX);
        let by_age = self
            .connection
            .execute("DELETE FROM items WHERE received_at < ?1", [cutoff])
            .map_err(|e| self.wrap(e))?;
        let by_count = self
            .connection
            .execute(
                "DELETE FROM items WHERE seq <= (SELECT seq FROM items ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
                [self.max_items as i64],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(by_age + by_count)
    }
}

/// Creates `dir` (and missing parents) readable by its owner only. A
/// directory that already exists keeps its mode: it may be one the user
/// chose and shares; the database in it is private either way.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the database file `0600` before SQLite does (SQLite would use
/// the umask, typically `0644`), and takes group and world access from one
/// an older version left, with its `-wal` and `-shm` files.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    drop(options.open(path)?);
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Renames the damaged database in `dir` (and its `-wal` and `-shm`) to
/// `history.sqlite3.corrupt-<UTC time>[-wal|-shm]`.
fn set_aside(dir: &Path, error: &StoreError) -> Result<SetAside, StoreError> {
    let path = dir.join(DATABASE);
    let last_written = std::fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .ok()
        .map(tidings_events::millis_since_epoch);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let moved_to = dir.join(format!("{DATABASE}.corrupt-{stamp}"));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        let to = PathBuf::from(format!("{}{suffix}", moved_to.display()));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(io) if io.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(io) => {
                return Err(StoreError {
                    path: path.display().to_string(),
                    source: rusqlite::Error::InvalidPath(
                        format!(
                            "the database is damaged ({}) and could not be moved aside to {}: {io}; move or delete it by hand",
                            error.source,
                            to.display()
                        )
                        .into(),
                    ),
                });
            }
        }
    }
    Ok(SetAside { moved_to, last_written, reason: error.source.to_string() })
}

/// Runs `statement`, whose columns are `id, seq, channel, received_at,
/// read, payload`, and rebuilds its items (a row this contract cannot read
/// any more is skipped).
pub(crate) fn read_items(
    statement: &mut rusqlite::Statement<'_>,
    params: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<Vec<FeedItem>> {
    let rows = statement.query_map(params, |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, bool>(4)?,
            row.get::<_, String>(5)?,
        ))
    })?;
    let mut items = Vec::new();
    for row in rows {
        let (id, seq, channel, received_at, read, payload) = row?;
        if let Some(item) = item_from_row(id, seq as u64, channel, received_at, read, &payload) {
            items.push(item);
        }
    }
    Ok(items)
}

/// Rebuilds an item from its stored payload.
pub(crate) fn item_from_row(
    id: String,
    seq: u64,
    channel: String,
    received_at: i64,
    read: bool,
    payload: &str,
) -> Option<FeedItem> {
    let Decoded::Typed { event, raw } = decode(payload.as_bytes()) else { return None };
    let mut item = FeedItem {
        id,
        seq,
        feed: feed_of(&event),
        channel,
        received_at,
        read,
        extra: extra_fields(&event, raw),
        link: None,
        event,
    };
    crate::text::clean_item(&mut item, payload.as_bytes());
    Some(item)
}

/// Fields the publisher sent that the contract does not name.
pub fn extra_fields(
    event: &tidings_events::Event,
    mut raw: serde_json::Map<String, serde_json::Value>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    if let Ok(serde_json::Value::Object(known)) = serde_json::to_value(event) {
        raw.retain(|key, _| !known.contains_key(key) && key != "type");
    }
    (!raw.is_empty()).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(n: u64) -> StoredItem {
        let payload = format!(
            r#"{{"type":"inventory:change","productId":"p{n}","productName":"Widget {n}","action":"outbound","oldQuantity":10,"newQuantity":9,"changeAmount":-1,"timestamp":{n}}}"#
        );
        let Decoded::Typed { event, raw } = decode(payload.as_bytes()) else {
            panic!("the test payload is not a typed event: {payload}")
        };
        StoredItem {
            item: FeedItem {
                id: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(payload.as_bytes())),
                seq: n,
                feed: feed_of(&event),
                channel: "inventory".into(),
                received_at: 1,
                read: false,
                extra: extra_fields(&event, raw),
                link: None,
                event,
            },
            payload,
            position: None,
        }
    }

    #[test]
    fn a_new_data_directory_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data").join("tidings");
        drop(Store::open(&dir, 10, Duration::from_secs(60)).unwrap());
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    #[test]
    fn the_database_and_its_log_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE);
        // As an older version left it: world-readable.
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut store = Store::open(dir.path(), 10, Duration::from_secs(60)).unwrap();
        store.write(&[stored(1)], &BTreeMap::new()).unwrap();
        for file in [DATABASE, "history.sqlite3-wal", "history.sqlite3-shm"] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
    }

    #[test]
    fn a_corrupt_database_is_set_aside_kept_and_a_fresh_one_started() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = b"this is not a database, it is a shopping list".repeat(200);
        std::fs::write(dir.path().join(DATABASE), &garbage).unwrap();
        let (mut store, set_aside) =
            Store::open_or_set_aside(dir.path(), 10, Duration::from_secs(60)).unwrap();
        let set_aside = set_aside.expect("the damaged file was set aside");
        let name = set_aside.moved_to.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("history.sqlite3.corrupt-"), "{name}");
        assert_eq!(std::fs::read(&set_aside.moved_to).unwrap(), garbage, "kept as it was");
        assert!(set_aside.last_written.is_some());
        store.write(&[stored(1)], &BTreeMap::new()).unwrap();
        assert_eq!(store.max_seq().unwrap(), 1, "the fresh database works");
    }

    #[test]
    fn a_sound_database_is_not_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), 10, Duration::from_secs(60)).unwrap());
        let (_, set_aside) =
            Store::open_or_set_aside(dir.path(), 10, Duration::from_secs(60)).unwrap();
        assert_eq!(set_aside, None);
    }

    // A checkpointer that copied the log on its own thread, PASSIVE, once a
    // second, was tried: under a steady writer it never caught up, the log
    // could never restart, and it grew to 3 GB in two minutes at 5,000
    // events/s. This keeps any such change honest.
    #[test]
    fn the_write_ahead_log_stays_bounded_under_a_steady_writer() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 1_000_000, Duration::from_secs(86_400)).unwrap();
        let wal = dir.path().join("history.sqlite3-wal");
        let mut largest = 0;
        for flush in 0..200_u64 {
            let items: Vec<StoredItem> = (0..250).map(|i| stored(flush * 250 + i)).collect();
            store.write(&items, &BTreeMap::new()).unwrap();
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        assert_eq!(store.max_seq().unwrap(), 200 * 250 - 1);
        assert!(
            largest < 16 << 20,
            "the log reached {} MiB while 50,000 rows were written",
            largest >> 20
        );
    }
}
