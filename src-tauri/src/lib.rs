//! The Tidings desktop app: thin Tauri glue around the `tidings-desk` core.
//!
//! Module map:
//! - this file: [`run`] parses the flags, loads the config, builds the app
//!   (plugins: single instance first, window state, autostart, opener),
//!   starts the core, the tray and the background tasks, and owns the one
//!   shutdown path on exit.
//! - [`commands`]: the commands the UI calls and the batch relay.
//! - [`window`]: show/hide/focus the dashboard, close-to-tray, unread title.
//! - [`tray`]: the tray icon and its menu.
//! - [`links`]: the http(s)-only gate before the browser opens a link.
//! - [`autostart`]: the optional start at login.
//!
//! Every background task started here is tracked by `Tasks` (a tokio-util
//! `TaskTracker`) and stopped by its cancellation token when the app exits;
//! the core's token is a child of that one, so the same path stops it. Start-up never waits for the network: the
//! core connects in the background and reports its state to the window.

pub mod autostart;
pub mod commands;
pub mod links;
pub mod tray;
pub mod window;

use std::sync::Arc;

use clap::Parser;
use tauri::{AppHandle, Manager, RunEvent};
use tauri_plugin_window_state::StateFlags;
use tidings_desk::notify::{ActionKind, NotificationResponse, Notifier};
use tidings_desk::{Desk, DeskArgs, DeskConfig};
use tidings_notify::NativeNotifier;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::commands::{Core, UiChannel};

/// The app name notifications are sent under.
const APP_NAME: &str = "Tidings";

/// `tidings-desk` flags: the core's (source, profile, config file…).
#[derive(Debug, Parser)]
#[command(name = "tidings-desk", version, about = "Tidings: live ERP events on your desktop")]
struct Cli {
    #[command(flatten)]
    desk: DeskArgs,
    /// Let WebKit composite the window on the GPU: smoother scrolling on
    /// large screens, about 110 MiB more memory. Off by default.
    #[arg(long, env = "TIDINGS_GPU", value_parser = clap::builder::FalseyValueParser::new())]
    gpu: bool,
}

/// Background tasks of the app: tracked by one [`TaskTracker`] and stopped
/// by one token (the core's token is a child of it).
#[derive(Debug, Default)]
struct Tasks {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// Runs `task` on Tauri's runtime until it ends or the app stops.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        tauri::async_runtime::spawn(self.tracker.track_future(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = task => {}
            }
        }));
    }

    /// Cancels every task (and the core's token) and waits for each to return.
    async fn stop_all(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Builds and runs the app until the user quits.
pub fn run() {
    init_tracing();
    // Bad flags: clap prints what was wrong and exits, before any window.
    let cli = Cli::parse();
    let config = DeskConfig::load(&cli.desk);
    if let Some(error) = &config.config_error {
        // Also shown in the window (the snapshot carries it).
        tracing::warn!(%error, "configuration problem");
    }
    let autostart_wanted = config.settings.autostart;
    let gpu = cli.gpu;

    let (notifier, responses) = NativeNotifier::start(APP_NAME);
    let notifier: Arc<dyn Notifier> = Arc::new(notifier);
    let tasks = Arc::new(Tasks::default());
    let desk_stop = tasks.stop.child_token();
    // The core spawns its tasks on Tauri's tokio runtime; creating it only
    // opens the local history and returns, the source connects later.
    let started = tauri::async_runtime::block_on({
        let desk_stop = desk_stop;
        async move { Desk::start(config, notifier, desk_stop) }
    });
    let (core, batches) = match started {
        Ok((desk, batches)) => (Core::new(Ok(desk)), Some(batches)),
        Err(error) => {
            tracing::error!(%error, "the desktop core could not start");
            (Core::new(Err(error)), None)
        }
    };
    let core = Arc::new(core);
    let ui_channel = Arc::new(UiChannel::default());

    let app = tauri::Builder::default()
        // First, so a second launch hands over before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| window::show(app)))
        .plugin(
            tauri_plugin_window_state::Builder::new()
                // Visibility is not restored: a window hidden to the tray
                // when the app quit must still open on the next launch.
                .with_state_flags(StateFlags::all() - StateFlags::VISIBLE)
                .build(),
        )
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(tauri_plugin_opener::init())
        .manage(Arc::clone(&core))
        .manage(Arc::clone(&ui_channel))
        .manage(Arc::clone(&tasks))
        .invoke_handler(tauri::generate_handler![
            commands::subscribe,
            commands::snapshot,
            commands::history,
            commands::mark_read,
            commands::mark_all_read,
            commands::get_settings,
            commands::set_settings,
            commands::send_test_notification,
            commands::open_item,
            commands::acknowledge,
            commands::snooze,
            commands::pause_notifications,
            commands::report_ui_error,
            commands::search,
            commands::export_search,
        ])
        .setup({
            let tasks = Arc::clone(&tasks);
            move |app| {
                let handle = app.handle();
                window::set_gpu_compositing(handle, gpu);
                tray::create(handle, on_tray_action)?;
                autostart::apply(handle, autostart_wanted);
                if let Some(batches) = batches {
                    tasks.spawn(commands::relay_batches(handle.clone(), ui_channel, batches));
                }
                tasks.spawn(forward_notification_responses(handle.clone(), responses));
                Ok(())
            }
        })
        .on_window_event(window::on_window_event)
        .build(tauri::generate_context!())
        .unwrap_or_else(|error| {
            // Nothing to show a message in yet: say it where it can be read.
            eprintln!("tidings-desk: could not start the desktop app: {error}");
            std::process::exit(1);
        });

    app.run(move |app, event| {
        if let RunEvent::Exit = event {
            tracing::info!("quitting: stopping the core and background tasks");
            let core = Arc::clone(app.state::<Arc<Core>>().inner());
            let tasks = Arc::clone(app.state::<Arc<Tasks>>().inner());
            tauri::async_runtime::block_on(async move {
                core.shutdown().await;
                tasks.stop_all().await;
            });
        }
    });
}

fn on_tray_action(app: &AppHandle, action: tray::TrayAction) {
    match action {
        tray::TrayAction::PauseNotifications => {
            let core = Arc::clone(app.state::<Arc<Core>>().inner());
            tauri::async_runtime::spawn(async move {
                let minutes = tray::PAUSE_MINUTES;
                match core.with(async |desk| desk.pause_notifications(minutes).await).await {
                    Ok(()) => tracing::info!(minutes, "notifications paused from the tray"),
                    Err(error) => tracing::warn!(%error, "could not pause notifications"),
                }
            });
        }
        tray::TrayAction::Quit => app.exit(0),
    }
}

/// Hands clicks on native notifications to the core (which sends the UI a
/// focus request) and brings the window up. The "Open" button opens the
/// item's link as the core resolves it again from history (by the link
/// rule; nothing the notification carried is opened as it is).
async fn forward_notification_responses(
    app: AppHandle,
    mut responses: mpsc::Receiver<NotificationResponse>,
) {
    let core = Arc::clone(app.state::<Arc<Core>>().inner());
    while let Some(response) = responses.recv().await {
        let clicked = matches!(response, NotificationResponse::Clicked(_));
        if let NotificationResponse::Action { target, kind: ActionKind::Open } = &response {
            let item_id = target.item_id.clone();
            let opened = match core.with(async |desk| desk.action_url(item_id).await).await {
                Ok(url) => links::open(&app, &url),
                Err(error) => Err(error),
            };
            if let Err(error) = opened {
                tracing::warn!(%error, "could not open the link of a notification's button");
            }
            continue;
        }
        if let Err(error) = core.with(async |desk| desk.notification_response(response).await).await
        {
            tracing::warn!(%error, "could not hand a notification response to the core");
        }
        if clicked {
            window::show(&app);
        }
    }
}

/// The workspace's one tracing set-up (`tidings::process`): `TIDINGS_LOG`,
/// `info` by default, colour only at a terminal without `NO_COLOR`.
fn init_tracing() {
    tidings::process::init_logging(tidings::process::LogSetup {
        env_var: "TIDINGS_LOG",
        default_filter: "info",
        json: false,
        with_target: true,
    });
}
