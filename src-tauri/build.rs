//! Tauri's build step: reads tauri.conf.json and capabilities/, embeds the
//! icons and, with `custom-protocol`, the bundled UI from `ui/dist`, which
//! must have been built first (a clear message here beats the macro's).
//!
//! The app's commands are declared here so that Tauri generates an
//! `allow-<command>` permission for each: a window may call only those its
//! capability lists (capabilities/default.json), not every command.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_CUSTOM_PROTOCOL");
    if std::env::var_os("CARGO_FEATURE_CUSTOM_PROTOCOL").is_some() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist");
        println!("cargo:rerun-if-changed={}", dist.display());
        if !dist.join("index.html").is_file() {
            eprintln!(
                "error: the bundled UI is missing ({}/index.html).\n\
                 Build the UI first: `cd ui && npm ci && npm run build` \
                 (scripts/e2e.sh and scripts/run.sh do this).",
                dist.display()
            );
            std::process::exit(1);
        }
    }
    let manifest = tauri_build::AppManifest::new().commands(&[
        "subscribe",
        "snapshot",
        "history",
        "mark_read",
        "mark_all_read",
        "get_settings",
        "set_settings",
        "send_test_notification",
        "open_item",
        "acknowledge",
        "pause_notifications",
        "report_ui_error",
        "search",
        "export_search",
    ]);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("tauri-build failed: check tauri.conf.json and capabilities/");
}
