//! End-to-end test kit for the real Tidings desktop app.
//!
//! The tests under `tests/` start everything for real, per test: an X
//! display ([`xvfb`]), a D-Bus session bus with a notification sink
//! ([`desktop`]), `redis-server` (`tidings_testkit`), the gateway binary
//! ([`gateway`]) and the app itself, driven over WebDriver by `tauri-driver`
//! and `WebKitWebDriver` ([`app`]). They publish with the real `redis-cli`
//! and look at the real DOM, D-Bus calls and recorded browser opens.
//!
//! The tests are `#[ignore]`d in a plain `cargo test`, because they need the
//! app built with `--features custom-protocol` (so it serves `ui/dist`):
//! `scripts/e2e.sh` builds everything and runs them with `--ignored`.
//!
//! Errors are `anyhow`: the callers are tests and the measuring binary,
//! which report them and never match on them.

pub mod app;
pub mod desktop;
pub mod events;
pub mod gateway;
pub mod locate;
pub mod measure;
pub mod process;
pub mod xvfb;

pub use app::{DeskApp, Launch, Source};
pub use desktop::Desktop;
pub use gateway::Gateway;
