//! The main window's desktop manners: closing hides it to the tray, the
//! tray, a second launch and a notification click bring it back, its title
//! carries the unread count (Linux trays show no badges), and it draws
//! without GPU compositing unless asked.

use tauri::{AppHandle, Manager, WebviewWindow, Window, WindowEvent};

/// The label of the dashboard window in `tauri.conf.json`.
pub const MAIN: &str = "main";

fn main_window(app: &AppHandle) -> Option<WebviewWindow> {
    app.get_webview_window(MAIN)
}

/// Shows, unminimises and focuses the dashboard.
pub fn show(app: &AppHandle) {
    let Some(window) = main_window(app) else {
        tracing::warn!("the main window is gone; nothing to show");
        return;
    };
    // Each step may fail on a desktop that refuses (e.g. focus stealing
    // prevention); the others are still worth doing.
    if let Err(error) = window.unminimize() {
        tracing::debug!(%error, "could not unminimise the window");
    }
    if let Err(error) = window.show() {
        tracing::warn!(%error, "could not show the window");
    }
    if let Err(error) = window.set_focus() {
        tracing::debug!(%error, "could not focus the window");
    }
}

/// Lets WebKit composite the page on the GPU, or not (the default).
///
/// Compositing through OpenGL costs the web process about 110 MB more
/// resident memory when idle (measured under Xvfb with Mesa, docs/desktop.md)
/// and buys nothing a dashboard of text tables needs; `--gpu` turns it back
/// on for people who want the smoothest scrolling on large screens.
pub fn set_gpu_compositing(app: &AppHandle, allowed: bool) {
    #[cfg(target_os = "linux")]
    {
        use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
        if allowed {
            return; // WebKit's own default.
        }
        let Some(window) = main_window(app) else { return };
        let applied = window.with_webview(|webview| {
            if let Some(settings) = WebViewExt::settings(&webview.inner()) {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
        if let Err(error) = applied {
            tracing::warn!(%error, "could not turn GPU compositing off; the window still works");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (app, allowed);
}

/// Closing the dashboard hides it: Tidings keeps watching from the tray
/// until the user picks Quit.
pub fn on_window_event(window: &Window, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event
        && window.label() == MAIN
    {
        api.prevent_close();
        if let Err(error) = window.hide() {
            tracing::warn!(%error, "could not hide the window to the tray");
        }
    }
}

/// The window title for `unread` unread items: "Tidings" or "Tidings (N)".
pub fn title(unread: u32) -> String {
    if unread == 0 { "Tidings".to_owned() } else { format!("Tidings ({unread})") }
}

/// Puts the unread count in the window title.
pub fn set_unread(app: &AppHandle, unread: u32) {
    if let Some(window) = main_window(app)
        && let Err(error) = window.set_title(&title(unread))
    {
        tracing::debug!(%error, "could not set the window title");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_shows_the_unread_count_only_when_there_is_one() {
        assert_eq!(title(0), "Tidings");
        assert_eq!(title(7), "Tidings (7)");
    }
}
