//! Search over the local history (`tidings_desk::search`): what it finds,
//! what its filters keep, that the index follows writes and prunes, and
//! what the CSV export holds. Real SQLite files in temporary directories.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tidings_desk::ipc::{FeedId, FeedItem, SearchQuery};
use tidings_desk::policy::feed_of;
use tidings_desk::search::{Searcher, to_csv};
use tidings_desk::store::{Store, StoredItem, extra_fields};
use tidings_events::{Decoded, decode};

const DAY: i64 = 24 * 3600 * 1000;
const T0: i64 = 1_780_000_000_000;

fn stored(seq: u64, received_at: i64, read: bool, payload: &serde_json::Value) -> StoredItem {
    let payload = payload.to_string();
    let Decoded::Typed { event, raw } = decode(payload.as_bytes()) else {
        panic!("test payload is not a typed event: {payload}")
    };
    StoredItem {
        item: FeedItem {
            id: format!("item-{seq}"),
            seq,
            feed: feed_of(&event),
            channel: "test".into(),
            received_at,
            read,
            extra: extra_fields(&event, raw),
            link: None,
            event,
        },
        payload,
        position: None,
    }
}

fn stock(product_id: &str, name: &str, reason: &str) -> serde_json::Value {
    json!({
        "type": "inventory:change", "action": "inbound", "productId": product_id,
        "productName": name, "oldQuantity": 1, "newQuantity": 5, "changeAmount": 4,
        "reason": reason, "timestamp": T0,
    })
}

fn order(number: &str) -> serde_json::Value {
    json!({
        "type": "order:status", "orderType": "sales", "orderId": number, "orderNumber": number,
        "oldStatus": "pending", "newStatus": "shipped", "timestamp": T0,
    })
}

fn store_with(dir: &Path, items: &[StoredItem]) -> Store {
    let mut store = Store::open(dir, 1_000_000, Duration::from_secs(3650 * 24 * 3600)).unwrap();
    store.write(items, &BTreeMap::new()).unwrap();
    store
}

fn ids(dir: &Path, query: &SearchQuery) -> Vec<String> {
    let results = Searcher::open(dir).unwrap().search(query).unwrap();
    results.items.into_iter().map(|item| item.id).collect()
}

fn text(words: &str) -> SearchQuery {
    SearchQuery { text: words.into(), limit: 100, ..SearchQuery::default() }
}

fn sample(dir: &Path) -> Store {
    store_with(
        dir,
        &vec![
            stock("P-30001", "不锈钢保温杯", "补货"),
            stock("P-30002", "玻璃水杯", "退货入库"),
            order("SO-2026-0042"),
            stock("P-40000", "Steel Bottle", "restock"),
        ]
        .into_iter()
        .enumerate()
        .map(|(n, payload)| stored(n as u64 + 1, T0 + n as i64 * DAY, n % 2 == 0, &payload))
        .collect::<Vec<_>>(),
    )
}

#[test]
fn a_chinese_product_name_is_found_by_any_part_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let _store = sample(dir.path());
    assert_eq!(ids(dir.path(), &text("不锈钢保温杯")), ["item-1"]);
    assert_eq!(ids(dir.path(), &text("钢保温")), ["item-1"]);
    assert_eq!(ids(dir.path(), &text("保温杯X")), Vec::<String>::new());
}

#[test]
fn a_term_of_one_or_two_characters_is_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let _store = sample(dir.path());
    assert_eq!(ids(dir.path(), &text("水杯")), ["item-2"]);
    assert_eq!(ids(dir.path(), &text("杯")), ["item-2", "item-1"]);
}

#[test]
fn every_word_must_occur_and_case_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let _store = sample(dir.path());
    assert_eq!(ids(dir.path(), &text("p-300 入库")), ["item-2"]);
    assert_eq!(ids(dir.path(), &text("steel RESTOCK")), ["item-4"]);
}

#[test]
fn ids_numbers_and_the_event_type_are_searchable_but_json_keys_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let _store = sample(dir.path());
    assert_eq!(ids(dir.path(), &text("30001")), ["item-1"]);
    assert_eq!(ids(dir.path(), &text("SO-2026")), ["item-3"]);
    assert_eq!(ids(dir.path(), &text("order:status")), ["item-3"]);
    assert_eq!(ids(dir.path(), &text("productName")), Vec::<String>::new());
}

#[test]
fn what_the_user_types_is_text_never_a_query_operator() {
    let dir = tempfile::tempdir().unwrap();
    let _store = sample(dir.path());
    for typed in ["\"", "保温杯 OR 水杯", "NEAR(保温 杯)", "*", "%", "_", "'; DROP TABLE items; --"]
    {
        let results = Searcher::open(dir.path()).unwrap().search(&text(typed));
        assert!(results.is_ok(), "{typed:?}: {results:?}");
    }
    assert_eq!(ids(dir.path(), &text("%")), Vec::<String>::new());
    assert_eq!(ids(dir.path(), &text("保温杯 OR 水杯")), Vec::<String>::new());
}

#[test]
fn filters_by_feed_time_and_read_state() {
    let dir = tempfile::tempdir().unwrap();
    let _store = sample(dir.path());
    let feeds = SearchQuery { feeds: vec![FeedId::Orders], limit: 100, ..SearchQuery::default() };
    assert_eq!(ids(dir.path(), &feeds), ["item-3"]);
    let day_two = SearchQuery { from: Some(T0 + DAY), until: Some(T0 + 2 * DAY), ..text("P-") };
    assert_eq!(ids(dir.path(), &day_two), ["item-2"]);
    let unread = SearchQuery { read: Some(false), ..text("P-") };
    assert_eq!(ids(dir.path(), &unread), ["item-4", "item-2"]);
}

#[test]
fn results_come_newest_first_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let items = (1..=25)
        .map(|n| stored(n, T0 + n as i64, false, &order(&format!("SO-{n:03}"))))
        .collect::<Vec<_>>();
    let _store = store_with(dir.path(), &items);
    let searcher = Searcher::open(dir.path()).unwrap();
    let first = searcher.search(&SearchQuery { limit: 10, ..text("SO-") }).unwrap();
    assert!(first.more);
    assert_eq!(first.items.first().unwrap().id, "item-25");
    let last = first.items.last().unwrap().seq;
    let next = SearchQuery { limit: 20, before_seq: Some(last), ..text("SO-") };
    let second = searcher.search(&next).unwrap();
    assert!(!second.more);
    assert_eq!(second.items.len(), 15);
    assert_eq!(second.items.first().unwrap().id, "item-15");
}

#[test]
fn pruned_items_are_no_longer_found() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![stored(1, T0, false, &stock("P-1", "不锈钢保温杯", "old"))];
    let store = Store::open(dir.path(), 10, Duration::from_secs(3600)).unwrap();
    let mut store = store;
    store.write(&items, &BTreeMap::new()).unwrap();
    assert_eq!(ids(dir.path(), &text("保温杯")), ["item-1"]);
    assert_eq!(store.prune(T0 + 2 * 3600 * 1000).unwrap(), 1);
    assert_eq!(ids(dir.path(), &text("保温杯")), Vec::<String>::new());
}

#[test]
fn a_history_kept_before_search_existed_is_indexed_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    // As a version without search left it: no index, no triggers.
    let connection = rusqlite::Connection::open(dir.path().join("history.sqlite3")).unwrap();
    connection
        .execute_batch(
            "DROP TRIGGER items_text_insert; DROP TRIGGER items_text_delete;
             DROP TABLE items_text; PRAGMA user_version = 0;",
        )
        .unwrap();
    drop(connection);
    let _store = Store::open(dir.path(), 1000, Duration::from_secs(3650 * 24 * 3600)).unwrap();
    assert_eq!(ids(dir.path(), &text("保温杯")), ["item-1"]);
}

#[test]
fn a_search_does_not_wait_for_a_write_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let _store = sample(dir.path());
    let writer = rusqlite::Connection::open(dir.path().join("history.sqlite3")).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE; DELETE FROM items;").unwrap();
    // The writer holds its transaction open; the search reads the last commit.
    assert_eq!(ids(dir.path(), &text("保温杯")), ["item-1"]);
    writer.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn the_csv_export_has_a_header_a_row_per_item_and_defused_formulas() {
    let items: Vec<FeedItem> = vec![
        stored(1, T0, true, &stock("P-1", "不锈钢保温杯", "a, \"quoted\" reason")).item,
        stored(
            2,
            T0,
            false,
            &json!({
                "type": "notification", "notificationType": "info", "title": "t",
                "message": "=HYPERLINK(\"http://evil\")", "timestamp": T0,
            }),
        )
        .item,
    ];
    let csv = to_csv(&items);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header, ["time", "feed", "channel", "type", "read", "text", "event"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][1], "inventory");
    assert_eq!(&rows[0][3], "inventory:change");
    assert_eq!(&rows[0][4], "read");
    assert!(rows[0][5].contains("不锈钢保温杯") && rows[0][5].contains("a, \"quoted\" reason"));
    assert!(rows[0][0].starts_with("2026-"), "{}", &rows[0][0]);
    let event: serde_json::Value = serde_json::from_str(&rows[1][6]).unwrap();
    assert_eq!(event["message"], "=HYPERLINK(\"http://evil\")", "the JSON keeps the text as sent");
    assert!(rows[1][5].starts_with("'=HYPERLINK"), "{}", &rows[1][5]);
}
