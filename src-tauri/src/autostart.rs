//! Optional start at login (the `autostart` setting), through Tauri's
//! autostart plugin: an XDG autostart entry on Linux, a launch agent on
//! macOS, a registry key on Windows.

use tauri::AppHandle;
use tauri_plugin_autostart::ManagerExt;

/// Makes the login start match `wanted`; failures are logged (the setting
/// stays saved and is applied again at the next start).
pub fn apply(app: &AppHandle, wanted: bool) {
    let manager = app.autolaunch();
    match manager.is_enabled() {
        Ok(enabled) if enabled == wanted => {}
        Ok(_) => {
            let result = if wanted { manager.enable() } else { manager.disable() };
            match result {
                Ok(()) => tracing::info!(enabled = wanted, "start at login updated"),
                Err(error) => tracing::warn!(%error, "could not change start at login"),
            }
        }
        Err(error) => tracing::warn!(%error, "could not read whether Tidings starts at login"),
    }
}
