//! Opening an item's action link in the user's browser. Whether a link may
//! be opened, and where it goes, is decided in one place:
//! `tidings_desk::links::resolve_link`, which `Desk::action_url` applies
//! (relative links joined to the ERP base URL; other hosts only when
//! trusted; credentials, `//`, backslashes and downgrades refused). This
//! module only hands the URL it answered to the system opener.
//!
//! With `TIDINGS_RECORD_OPENED=/path/file` set, the URL is appended to that
//! file as one line instead of launching a browser; the end-to-end tests
//! read it.

use std::io::Write;

use tauri::AppHandle;
use tauri_plugin_opener::OpenerExt;
use tidings_desk::error::{CommandError, ErrorCode};

/// The variable that turns opening into recording.
pub const RECORD_OPENED_ENV: &str = "TIDINGS_RECORD_OPENED";

/// Opens `url`, as `Desk::action_url` answered it, in the default browser
/// (or records it, see the module docs).
pub fn open(app: &AppHandle, url: &str) -> Result<(), CommandError> {
    let fail = |reason: String| {
        CommandError::new(ErrorCode::OpenFailed, format!("could not open {url}: {reason}"))
    };
    if let Some(path) = std::env::var_os(RECORD_OPENED_ENV) {
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|error| {
                fail(format!("recording to {}: {error}", path.to_string_lossy()))
            })?;
        return writeln!(file, "{url}").map_err(|error| fail(error.to_string()));
    }
    app.opener().open_url(url, None::<&str>).map_err(|error| fail(error.to_string()))
}
