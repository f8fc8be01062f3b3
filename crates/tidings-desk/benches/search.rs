//! Search benchmark with a fixed workload (a bench binary, `harness =
//! false`): a history of `--items` (200,000) events written through the
//! store as the app writes them (inventory changes over 2,000 products with
//! Chinese names, orders, approvals, notifications), then each query below
//! run `--runs` (20) times on a fresh [`Searcher`] per run, as the app does.
//! Prints p50 and max per query, and the same text found by the store's
//! plain `LIKE` over the JSON (`Store::query`, what the screens had before)
//! as the reference in the same run.
//!
//! Run (release, from the workspace root):
//!
//!     cargo bench -p tidings-desk --bench search
//!     cargo bench -p tidings-desk --bench search -- --items 50000 --runs 50

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tidings_desk::ipc::{FeedId, FeedItem, HistoryQuery, SearchQuery};
use tidings_desk::policy::feed_of;
use tidings_desk::search::Searcher;
use tidings_desk::store::{Store, StoredItem, extra_fields};
use tidings_events::{Decoded, decode};

#[derive(Parser)]
struct Args {
    /// Items in the history.
    #[arg(long, default_value_t = 200_000)]
    items: u64,
    /// Runs per query.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

const NAMES: [&str; 10] = [
    "不锈钢保温杯",
    "玻璃水杯",
    "陶瓷马克杯",
    "儿童学习桌",
    "人体工学椅",
    "蓝牙耳机",
    "机械键盘",
    "无线鼠标",
    "电动牙刷",
    "空气净化器",
];
const T0: i64 = 1_780_000_000_000;

fn payload(n: u64) -> serde_json::Value {
    let product = n % 2000;
    let name = format!("{}{}号", NAMES[(product % 10) as usize], product / 10);
    let action = ["inbound", "outbound", "adjust"][(n % 3) as usize];
    match n % 10 {
        0..=5 => json!({
            "type": "inventory:change", "action": action,
            "productId": format!("P-{:05}", 30000 + product), "productName": name,
            "oldQuantity": n % 100, "newQuantity": n % 100 + 5, "changeAmount": 5,
            "reason": "补货入库", "operator": "仓库管理员", "timestamp": T0 + n as i64,
        }),
        6 | 7 => json!({
            "type": "order:status", "orderType": "sales", "orderId": format!("o{n}"),
            "orderNumber": format!("SO-2026-{n:07}"), "oldStatus": "pending", "newStatus": "shipped",
            "customerName": "上海某某贸易有限公司", "timestamp": T0 + n as i64,
        }),
        8 => json!({
            "type": "approval:request", "resourceType": "order", "resourceId": format!("r{n}"),
            "resourceNumber": format!("PO-{n:07}"), "requesterId": "u1", "requesterName": "张三",
            "reason": format!("采购{name}"), "timestamp": T0 + n as i64,
        }),
        _ => json!({
            "type": "notification", "notificationType": "info", "title": "审批提醒",
            "message": format!("您有一个待审批的采购单 PO-{n:07}"), "timestamp": T0 + n as i64,
        }),
    }
}

fn stored(n: u64) -> StoredItem {
    let payload = payload(n).to_string();
    let Decoded::Typed { event, raw } = decode(payload.as_bytes()) else {
        panic!("the bench made an event the contract refuses: {payload}")
    };
    StoredItem {
        item: FeedItem {
            id: format!("i{n}"),
            seq: n,
            feed: feed_of(&event),
            channel: "bench".into(),
            received_at: T0 + n as i64,
            read: n.is_multiple_of(3),
            extra: extra_fields(&event, raw),
            link: None,
            event,
        },
        payload,
        position: None,
    }
}

fn timed(runs: usize, mut run: impl FnMut() -> usize) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut found = 0;
    for _ in 0..runs {
        let started = Instant::now();
        found = run();
        times.push(started.elapsed());
    }
    times.sort();
    (times[times.len() / 2], *times.last().unwrap(), found)
}

fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path(), args.items + 1, Duration::from_secs(3650 * 24 * 3600))
        .expect("open the store");
    let started = Instant::now();
    for chunk in (1..=args.items).collect::<Vec<_>>().chunks(1000) {
        let items: Vec<StoredItem> = chunk.iter().map(|&n| stored(n)).collect();
        store.write(&items, &BTreeMap::new()).expect("write");
    }
    let written = started.elapsed();
    let size = std::fs::metadata(dir.path().join("history.sqlite3")).map(|m| m.len()).unwrap_or(0);
    println!(
        "history: {} items written in {:.1} s ({:.0} items/s, index kept by triggers), {:.1} MiB",
        args.items,
        written.as_secs_f64(),
        args.items as f64 / written.as_secs_f64(),
        size as f64 / 1048576.0
    );
    let queries: [(&str, SearchQuery); 7] = [
        ("name 不锈钢保温杯", text("不锈钢保温杯")),
        ("one product id P-31234", text("P-31234")),
        ("no match 不存在的商品", text("不存在的商品")),
        ("common word 补货入库", text("补货入库")),
        ("2 chars 水杯 (scan, stops at 100)", text("水杯")),
        ("2 chars no match 鲸鱼 (full scan)", text("鲸鱼")),
        (
            "保温杯 + inventory + 5% of the time + unread",
            SearchQuery {
                feeds: vec![FeedId::Inventory],
                from: Some(T0 + args.items as i64 / 2),
                until: Some(T0 + args.items as i64 / 2 + args.items as i64 / 20),
                read: Some(false),
                ..text("保温杯")
            },
        ),
    ];
    println!(
        "\n{:<40} {:>9} {:>9} {:>7}   reference LIKE p50",
        "query (limit 100)", "p50 ms", "max ms", "found"
    );
    for (label, query) in queries {
        let (p50, max, found) = timed(args.runs, || {
            Searcher::open(dir.path())
                .expect("searcher")
                .search(&query)
                .expect("search")
                .items
                .len()
        });
        let like = HistoryQuery {
            feed: query.feeds.first().copied(),
            before_seq: None,
            text: Some(query.text.clone()),
            limit: 100,
        };
        let (like_p50, _, _) = timed(args.runs.min(5), || store.query(&like).expect("query").len());
        println!(
            "{label:<40} {:>9.2} {:>9.2} {found:>7}   {:>8.2} ms ({:.0}×)",
            ms(p50),
            ms(max),
            ms(like_p50),
            ms(like_p50) / ms(p50).max(0.001)
        );
    }
}

fn text(words: &str) -> SearchQuery {
    SearchQuery { text: words.into(), limit: 100, ..SearchQuery::default() }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
