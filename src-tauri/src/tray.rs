//! The tray icon: Show, Pause notifications for 1 h, and Quit; its tooltip
//! (and title, where the tray shows one) carries the unread count.

use tauri::AppHandle;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};

use crate::window;

const TRAY_ID: &str = "tidings";
const SHOW: &str = "show";
const PAUSE: &str = "pause";
const QUIT: &str = "quit";

/// How long "Pause notifications" pauses them.
pub const PAUSE_MINUTES: u32 = 60;

/// What the tray's menu asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Pause desktop notifications for [`PAUSE_MINUTES`].
    PauseNotifications,
    /// Exit the app.
    Quit,
}

/// Creates the tray icon; `on_action` handles Pause and Quit (Show is
/// handled here).
pub fn create(
    app: &AppHandle,
    on_action: impl Fn(&AppHandle, TrayAction) + Send + Sync + 'static,
) -> tauri::Result<TrayIcon> {
    let menu = Menu::with_items(
        app,
        &[
            &MenuItem::with_id(app, SHOW, "Show Tidings", true, None::<&str>)?,
            &MenuItem::with_id(app, PAUSE, "Pause notifications for 1 hour", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, QUIT, "Quit Tidings", true, None::<&str>)?,
        ],
    )?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip(tooltip(0))
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(move |app, event| match event.id().as_ref() {
            SHOW => window::show(app),
            PAUSE => on_action(app, TrayAction::PauseNotifications),
            QUIT => on_action(app, TrayAction::Quit),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            // A left click shows the window where the platform reports
            // clicks (Windows, macOS); on Linux the menu does it.
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                window::show(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)
}

/// The tooltip for `unread` unread items.
pub fn tooltip(unread: u32) -> String {
    match unread {
        0 => "Tidings: nothing unread".to_owned(),
        1 => "Tidings: 1 unread".to_owned(),
        n => format!("Tidings: {n} unread"),
    }
}

/// Shows the unread count on the tray icon.
pub fn set_unread(app: &AppHandle, unread: u32) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_tooltip(Some(tooltip(unread)));
        // Only some trays (macOS, some Linux panels) draw a title.
        let title = (unread > 0).then(|| unread.to_string());
        let _ = tray.set_title(title);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tooltip_counts_unread_items() {
        assert_eq!(tooltip(0), "Tidings: nothing unread");
        assert_eq!(tooltip(1), "Tidings: 1 unread");
        assert_eq!(tooltip(12), "Tidings: 12 unread");
    }
}
