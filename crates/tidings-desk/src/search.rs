//! Search over the whole local history: full text over every feed, with
//! filters by feed, time and read state, and export of the results as CSV.
//!
//! The index is an SQLite FTS5 table with the `trigram` tokenizer, so any
//! substring of three characters or more is found through the index, in
//! Chinese as in Latin scripts (`保温杯` inside `不锈钢保温杯`, `30001` inside
//! `P-30001`). It holds the text values of each stored event (the JSON's
//! strings, `type` included, not its keys) and is kept by triggers on the
//! `items` table, so whoever writes or prunes items keeps it without knowing
//! of it. It keeps its text (about a third of the database): a term shorter
//! than three characters cannot use a trigram index, and is matched with
//! `LIKE` over that text, newest first, stopping at the page's limit —
//! quick when the term is common, a scan of the text when it is rare
//! (figures in docs/desktop.md, "Measured").
//!
//! A [`Searcher`] opens its own read-only connection, so a search runs on a
//! blocking thread of its own and never waits for, or holds up, the
//! pipeline that writes the history (WAL: readers and the writer do not
//! block each other).

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};

use crate::ipc::{FeedItem, SearchQuery, SearchResults};
use crate::store::{DATABASE, StoreError, feed_name, read_items};

/// Most results one search returns; the UI pages with `before_seq`.
pub const MAX_RESULTS: u32 = 500;

/// Most results one CSV export writes.
pub const MAX_EXPORT: u32 = 100_000;

/// The index's schema version, kept in SQLite's `user_version`.
const INDEX_VERSION: i64 = 2;

/// The text values of an event's JSON, space-separated: what is indexed.
const TEXT_OF_PAYLOAD: &str =
    "(SELECT group_concat(value, ' ') FROM json_tree(payload) WHERE type = 'text')";

/// Creates the index and its triggers if missing, and indexes the items
/// stored before it existed (once; logged, as it may take a few seconds).
pub(crate) fn install(connection: &Connection) -> rusqlite::Result<()> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version >= INDEX_VERSION {
        return Ok(());
    }
    let started = Instant::now();
    let text_of_new = TEXT_OF_PAYLOAD.replace("payload", "new.payload");
    connection.execute_batch(&format!(
        "BEGIN;
         DROP TABLE IF EXISTS items_text;
         CREATE VIRTUAL TABLE items_text USING fts5(body, tokenize = 'trigram');
         CREATE TRIGGER IF NOT EXISTS items_text_insert AFTER INSERT ON items BEGIN
             INSERT INTO items_text (rowid, body) VALUES (new.rowid, {text_of_new});
         END;
         CREATE TRIGGER IF NOT EXISTS items_text_delete AFTER DELETE ON items BEGIN
             DELETE FROM items_text WHERE rowid = old.rowid;
         END;
         INSERT INTO items_text (rowid, body) SELECT rowid, {TEXT_OF_PAYLOAD} FROM items;
         PRAGMA user_version = {INDEX_VERSION};
         COMMIT;"
    ))?;
    let indexed: i64 = connection.query_row("SELECT count(*) FROM items", [], |row| row.get(0))?;
    if indexed > 0 {
        tracing::info!(
            items = indexed,
            took_ms = started.elapsed().as_millis() as u64,
            "indexed the local history for search"
        );
    }
    Ok(())
}

/// Runs searches on its own read-only connection to the history database.
#[derive(Debug)]
pub struct Searcher {
    path: PathBuf,
    connection: Connection,
}

impl Searcher {
    /// Opens `dir/history.sqlite3` read-only. The store must have opened it
    /// first (it creates the file and the index).
    pub fn open(dir: &Path) -> Result<Searcher, StoreError> {
        let path = dir.join(DATABASE);
        let connection = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError { path: path.display().to_string(), source })?;
        Ok(Searcher { path, connection })
    }

    fn wrap(&self, source: rusqlite::Error) -> StoreError {
        StoreError { path: self.path.display().to_string(), source }
    }

    /// The newest items matching `query`, newest first, at most
    /// `query.limit` (capped at [`MAX_RESULTS`]).
    pub fn search(&self, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        let started = Instant::now();
        let limit = query.limit.clamp(1, MAX_RESULTS);
        // One more than asked, to know whether there are more.
        let mut items = self.run(query, limit + 1)?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let took_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        Ok(SearchResults { items, more, took_ms })
    }

    /// Every item matching `query` (up to [`MAX_EXPORT`]) as CSV text.
    pub fn export_csv(&self, query: &SearchQuery) -> Result<String, StoreError> {
        let items = self.run(query, MAX_EXPORT)?;
        Ok(to_csv(&items))
    }

    fn run(&self, query: &SearchQuery, limit: u32) -> Result<Vec<FeedItem>, StoreError> {
        let plan = Plan::of(query, limit);
        let mut statement = self.connection.prepare_cached(&plan.sql).map_err(|e| self.wrap(e))?;
        let params: Vec<&dyn rusqlite::ToSql> = plan.args.iter().map(|a| a.as_ref()).collect();
        read_items(&mut statement, &params).map_err(|e| self.wrap(e))
    }
}

/// One search as SQL: the indexed terms as one FTS5 query, short terms as
/// scans of the text values, then the filters.
struct Plan {
    sql: String,
    args: Vec<Box<dyn rusqlite::ToSql>>,
}

impl Plan {
    fn of(query: &SearchQuery, limit: u32) -> Plan {
        let (indexed, short) = split_terms(&query.text);
        let columns = "SELECT i.id, i.seq, i.channel, i.received_at, i.read, i.payload";
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        // With words to find, the index drives, newest match first (its
        // rowid order is arrival order: items are only ever appended, and
        // pruning takes the oldest), and the scan stops at the limit however
        // common the words are.
        let (mut sql, order) = if indexed.is_empty() && short.is_empty() {
            (format!("{columns} FROM items i WHERE 1 = 1"), " ORDER BY i.seq DESC")
        } else {
            (
                format!(
                    "{columns} FROM items_text t JOIN items i ON i.rowid = t.rowid WHERE 1 = 1"
                ),
                " ORDER BY t.rowid DESC",
            )
        };
        if !indexed.is_empty() {
            sql.push_str(" AND items_text MATCH ?");
            args.push(Box::new(fts_query(&indexed)));
        }
        for term in short {
            sql.push_str(" AND t.body LIKE ? ESCAPE '\\'");
            args.push(Box::new(format!("%{}%", escape_like(&term))));
        }
        if !query.feeds.is_empty() {
            let marks = vec!["?"; query.feeds.len()].join(", ");
            sql.push_str(&format!(" AND i.feed IN ({marks})"));
            for feed in &query.feeds {
                args.push(Box::new(feed_name(*feed)));
            }
        }
        if let Some(from) = query.from {
            sql.push_str(" AND i.received_at >= ?");
            args.push(Box::new(from));
        }
        if let Some(until) = query.until {
            sql.push_str(" AND i.received_at < ?");
            args.push(Box::new(until));
        }
        if let Some(read) = query.read {
            sql.push_str(" AND i.read = ?");
            args.push(Box::new(read));
        }
        if let Some(before) = query.before_seq {
            sql.push_str(" AND i.seq < ?");
            args.push(Box::new(before as i64));
        }
        sql.push_str(order);
        sql.push_str(" LIMIT ?");
        args.push(Box::new(i64::from(limit)));
        Plan { sql, args }
    }
}

/// Splits the search text at whitespace into terms the trigram index can
/// find (three characters or more) and shorter ones.
fn split_terms(text: &str) -> (Vec<String>, Vec<String>) {
    text.split_whitespace().map(str::to_owned).partition(|term| term.chars().count() >= 3)
}

/// All terms must occur, each as a literal substring (quoted, so FTS5
/// operators and punctuation in what the user typed mean nothing).
fn fts_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|term| format!("\"{}\"", term.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `term` as a literal inside a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn escape_like(term: &str) -> String {
    term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Results as CSV: one row per item with the time (UTC, RFC 3339), feed,
/// channel, type, read state, the event's text and its JSON. A cell that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is
/// prefixed with `'`, so an exported event cannot run anything when opened.
pub fn to_csv(items: &[FeedItem]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = ["time", "feed", "channel", "type", "read", "text", "event"];
    // Writing to memory cannot fail.
    writer.write_record(header).expect("CSV to memory");
    for item in items {
        let event = serde_json::to_value(&item.event).unwrap_or_default();
        let time = chrono::DateTime::from_timestamp_millis(item.received_at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let record = [
            time,
            feed_name(item.feed).to_owned(),
            item.channel.clone(),
            item.event.kind().as_str().to_owned(),
            if item.read { "read" } else { "unread" }.to_owned(),
            text_values(&event),
            event.to_string(),
        ];
        writer
            .write_record(record.iter().map(|cell| defuse(cell).into_owned()))
            .expect("CSV to memory");
    }
    let bytes = writer.into_inner().expect("CSV to memory");
    String::from_utf8(bytes).expect("CSV of UTF-8 strings is UTF-8")
}

/// The string values of a JSON value, space-separated (what the index holds).
fn text_values(value: &serde_json::Value) -> String {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(values) => values.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut out);
    out.join(" ")
}

/// A cell a spreadsheet will not evaluate (OWASP's CSV injection advice).
fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_under_three_characters_are_not_sent_to_the_trigram_index() {
        let (indexed, short) = split_terms("  保温杯 P-3 杯 ab  abc ");
        assert_eq!(indexed, ["保温杯", "P-3", "abc"]);
        assert_eq!(short, ["杯", "ab"]);
    }

    #[test]
    fn fts_operators_typed_by_the_user_are_literal_text() {
        assert_eq!(fts_query(&["a\"b OR".into(), "NEAR(x".into()]), "\"a\"\"b OR\" AND \"NEAR(x\"");
    }

    #[test]
    fn a_cell_a_spreadsheet_would_evaluate_is_defused() {
        assert_eq!(defuse("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(defuse("-5"), "'-5");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("不锈钢保温杯"), "不锈钢保温杯");
    }
}
