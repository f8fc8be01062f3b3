//! Where the programs under test and the tools that drive them are, and
//! where artifacts go. `scripts/e2e.sh` sets the `TIDINGS_E2E_*` variables;
//! without them, the defaults below match a plain `cargo build`.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/tidings-e2e sits two levels below the workspace root")
        .to_owned()
}

/// The app binary, built with `--features custom-protocol` so that it serves
/// its bundled UI: `$TIDINGS_E2E_APP`, else `target/debug/tidings-desk`.
pub fn desk_app() -> anyhow::Result<PathBuf> {
    existing(
        "TIDINGS_E2E_APP",
        target_dir().join("debug").join("tidings-desk"),
        "build it with `scripts/e2e.sh` (the UI, then `cargo build -p tidings-desk-app --features custom-protocol`)",
    )
}

/// The gateway binary: `$TIDINGS_E2E_GATEWAY`, else `target/debug/tidings-gateway`.
pub fn gateway() -> anyhow::Result<PathBuf> {
    existing(
        "TIDINGS_E2E_GATEWAY",
        target_dir().join("debug").join("tidings-gateway"),
        "build it with `cargo build -p tidings-gateway` (scripts/e2e.sh does)",
    )
}

/// The `tidings` command (for `tidings demo`): `$TIDINGS_E2E_TIDINGS`, else
/// `target/debug/tidings`.
pub fn tidings_cli() -> anyhow::Result<PathBuf> {
    existing(
        "TIDINGS_E2E_TIDINGS",
        target_dir().join("debug").join("tidings"),
        "build it with `cargo build -p tidings-cli` (scripts/e2e.sh does)",
    )
}

/// `tauri-driver`: `$TIDINGS_E2E_TAURI_DRIVER`, else on `PATH` or in `~/.cargo/bin`.
pub fn tauri_driver() -> anyhow::Result<PathBuf> {
    let fallback = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo/bin/tauri-driver"))
        .unwrap_or_default();
    let default = on_path("tauri-driver").unwrap_or(fallback);
    existing(
        "TIDINGS_E2E_TAURI_DRIVER",
        default,
        "install it with `cargo install tauri-driver --locked` (scripts/e2e.sh does)",
    )
}

/// `WebKitWebDriver` (Debian package `webkit2gtk-driver`).
pub fn webkit_webdriver() -> anyhow::Result<PathBuf> {
    let default = on_path("WebKitWebDriver").unwrap_or_else(|| "/usr/bin/WebKitWebDriver".into());
    existing(
        "TIDINGS_E2E_WEBKIT_WEBDRIVER",
        default,
        "install the Debian package webkit2gtk-driver (scripts/setup.sh does)",
    )
}

/// `test-artifacts/e2e/NAME/` (created, emptied of an earlier run's files).
pub fn artifacts_dir(name: &str) -> anyhow::Result<PathBuf> {
    let root = std::env::var_os("TIDINGS_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("test-artifacts").join("e2e"));
    let dir = root.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn existing(variable: &str, default: PathBuf, hint: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os(variable).map(PathBuf::from).unwrap_or(default);
    if !path.is_file() {
        bail!("{} does not exist (set {variable} to override): {hint}", path.display());
    }
    Ok(path)
}
