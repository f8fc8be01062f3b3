//! The desktop app's core, kept free of Tauri so it builds and tests fast and
//! the `src-tauri` crate stays thin glue (windows, tray, commands).
//!
//! Module map:
//! - [`ipc`]: every type that crosses to the UI; exported to TypeScript with
//!   ts-rs into `ui/src/bindings/` (a test fails if those files drift).
//! - [`notify`]: the notifier seam between the policy and the native desktop.
pub mod ipc;
pub mod notify;
