//! The UI's TypeScript types are generated from the Rust IPC types with
//! ts-rs and committed under `ui/src/bindings/`. This test regenerates them
//! and fails if the committed files differ, so the two sides cannot drift.
//! Run with `UPDATE_BINDINGS=1` to rewrite the committed files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tidings_desk::error::CommandError;
use tidings_desk::ipc::{
    FeedId, HistoryQuery, Screen, SearchQuery, SearchResults, Snapshot, SnoozeFor, UiBatch,
    WINDOW_FEED_CAP,
};
use tidings_events::event::ApprovalResource;
use ts_rs::{Config, TS};

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings")
}

fn generate(into: &Path) {
    // Timestamps and counters are i64/u64 in Rust but well inside 2^53.
    let config = Config::new().with_large_int("number").with_out_dir(into);
    Snapshot::export_all(&config).expect("export Snapshot");
    UiBatch::export_all(&config).expect("export UiBatch");
    HistoryQuery::export_all(&config).expect("export HistoryQuery");
    Screen::export_all(&config).expect("export Screen");
    SearchQuery::export_all(&config).expect("export SearchQuery");
    SearchResults::export_all(&config).expect("export SearchResults");
    SnoozeFor::export_all(&config).expect("export SnoozeFor");
    CommandError::export_all(&config).expect("export CommandError");
    std::fs::write(into.join("constants.ts"), constants()).expect("write constants.ts");
}

/// The lists and limits the UI takes from Rust rather than copying them.
fn constants() -> String {
    let names = |values: Vec<serde_json::Value>| {
        values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
    };
    let feeds = names(FeedId::ALL.iter().map(|f| serde_json::to_value(f).unwrap()).collect());
    let screens = names(Screen::ALL.iter().map(|s| serde_json::to_value(s).unwrap()).collect());
    let resources =
        names(ApprovalResource::ALL.iter().map(|r| serde_json::to_value(r).unwrap()).collect());
    format!(
        "// Generated from crates/tidings-desk/src/ipc.rs by the bindings test; do not edit.\n\
         import type {{ ApprovalResource }} from './ApprovalResource';\n\
         import type {{ FeedId }} from './FeedId';\n\
         import type {{ Screen }} from './Screen';\n\
         \n\
         /** Every feed, in the order the dashboard lists them (`FeedId::ALL`). */\n\
         export const FEED_IDS = [{feeds}] as const satisfies readonly FeedId[];\n\
         \n\
         /** Every screen, in navigation order (`Screen::ALL`). */\n\
         export const SCREENS = [{screens}] as const satisfies readonly Screen[];\n\
         \n\
         /** Newest items per feed the window keeps in memory (`WINDOW_FEED_CAP`). */\n\
         export const WINDOW_FEED_CAP = {WINDOW_FEED_CAP};\n\
         \n\
         /** Every approval `resourceType` (`ApprovalResource::ALL`). */\n\
         export const APPROVAL_RESOURCES = [{resources}] as const satisfies readonly ApprovalResource[];\n"
    )
}

fn read_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let text = std::fs::read_to_string(&path).expect("read a binding");
                files.insert(path.strip_prefix(root).expect("inside root").to_path_buf(), text);
            }
        }
    }
    files
}

#[test]
fn committed_typescript_bindings_match_the_rust_types() {
    let fresh = tempfile::tempdir().expect("temporary directory");
    generate(fresh.path());
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        let _ = std::fs::remove_dir_all(committed_dir());
        generate(&committed_dir());
        return;
    }
    let expected = read_tree(fresh.path());
    let committed = read_tree(&committed_dir());
    assert!(!expected.is_empty(), "ts-rs generated nothing");
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "ui/src/bindings has other files than the Rust types generate; \
         run `UPDATE_BINDINGS=1 cargo test -p tidings-desk --test bindings` and commit"
    );
    for (path, text) in &expected {
        assert_eq!(
            committed.get(path),
            Some(text),
            "ui/src/bindings/{} is out of date; run `UPDATE_BINDINGS=1 cargo test -p tidings-desk --test bindings` and commit",
            path.display()
        );
    }
}
