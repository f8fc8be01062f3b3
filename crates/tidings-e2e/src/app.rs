//! The real `tidings-desk` binary driven over WebDriver: `tauri-driver`
//! (which runs `WebKitWebDriver`, which launches the app with automation on)
//! on a [`Desktop`], with a private home so config, history and window state
//! never touch the user's, and with what it would open in a browser
//! recorded to a file instead (`TIDINGS_RECORD_OPENED`).
//!
//! The DOM helpers find things by the UI's stable test hooks:
//! `.app[data-screen]` on the root, `[data-testid=status][data-state]`,
//! `[data-testid=row]` feed rows and `[data-testid=debug-row][data-kind]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::desktop::Desktop;
use crate::events::Sample;
use crate::locate;
use crate::process::{OwnedChild, free_port, wait_for_port};

/// How long tauri-driver gets to listen.
const DRIVER_STARTUP: Duration = Duration::from_secs(20);
/// How long the app gets from launch to a painted dashboard.
pub const APP_STARTUP: Duration = Duration::from_secs(60);
/// The default wait for something to show up on screen.
pub const ON_SCREEN: Duration = Duration::from_secs(15);
/// The longest one WebDriver call may take: a hung driver fails the test
/// with a message instead of hanging it.
const WEBDRIVER_CALL: Duration = Duration::from_secs(30);
/// How long WebDriver gets for a screenshot before the display is captured
/// instead.
const SCREENSHOT: Duration = Duration::from_secs(10);

/// Where the app takes its events from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Straight from Redis (`--redis URL --user ID`).
    Redis {
        /// The Redis URL.
        url: String,
        /// The user id, whose notifications channel the app follows.
        user: String,
    },
    /// Through the gateway (`--gateway URL --token JWT`).
    Gateway {
        /// The gateway's WebSocket URL (`ws://…/ws`).
        url: String,
        /// The JWT the app authenticates with.
        token: String,
    },
}

/// How to launch the app.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Names the artifacts directory (`test-artifacts/e2e/NAME/`).
    pub name: String,
    /// Where the app takes its events from.
    pub source: Source,
    /// `--profile`: `warehouse`, `approver` (the default) or `ops`.
    pub profile: String,
    /// The TOML config file's content, if the test writes one.
    pub config: Option<String>,
    /// `--erp-base-url`, which relative `actionUrl`s are joined to.
    pub erp_base_url: Option<String>,
    /// More flags, after the others (e.g. `--gpu`).
    pub extra_args: Vec<String>,
}

impl Launch {
    /// Launches named `name` from `source`, profile `approver`, no config
    /// file, no ERP base URL, no extra flags.
    pub fn new(name: &str, source: Source) -> Self {
        Self {
            name: name.to_owned(),
            source,
            profile: "approver".to_owned(),
            config: None,
            erp_base_url: None,
            extra_args: Vec::new(),
        }
    }

    /// Adds a flag.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    /// Sets the `--profile`.
    pub fn profile(mut self, profile: &str) -> Self {
        self.profile = profile.to_owned();
        self
    }

    /// Sets the content of the TOML config file the app reads.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// Sets `--erp-base-url`.
    pub fn erp_base_url(mut self, url: &str) -> Self {
        self.erp_base_url = Some(url.to_owned());
        self
    }

    /// The app's command-line arguments.
    pub fn args(&self, config_path: &Path) -> Vec<String> {
        let mut args = match &self.source {
            Source::Redis { url, user } => {
                vec!["--redis".into(), url.clone(), "--user".into(), user.clone()]
            }
            Source::Gateway { url, token } => {
                vec!["--gateway".into(), url.clone(), "--token".into(), token.clone()]
            }
        };
        args.extend(["--profile".into(), self.profile.clone()]);
        args.extend(["--config".into(), config_path.display().to_string()]);
        if let Some(url) = &self.erp_base_url {
            args.extend(["--erp-base-url".into(), url.clone()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// Private directories the app runs with, and the files it leaves.
#[derive(Debug)]
pub struct AppHome {
    dir: tempfile::TempDir,
}

impl AppHome {
    /// Creates a temporary directory with empty `config`, `data`, `cache`,
    /// `state` and `runtime` (mode 0700) directories; removed when dropped.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("tidings-e2e-home-").tempdir()?;
        for sub in ["config", "data", "cache", "state", "runtime"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        // XDG_RUNTIME_DIR must be private to its user.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )?;
        Ok(Self { dir })
    }

    /// The home's root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The config file passed with `--config`.
    pub fn config_file(&self) -> PathBuf {
        self.path().join("config").join("tidings-desk.toml")
    }

    /// Where the app appends each URL it would open in a browser.
    pub fn opened_file(&self) -> PathBuf {
        self.path().join("opened.txt")
    }

    /// Sets the environment that points the app at these directories and
    /// at `desktop`.
    pub fn configure(&self, command: &mut Command, desktop: &Desktop) {
        // The app reads TIDINGS_* overrides: only the test's flags count.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TIDINGS_") {
                command.env_remove(name);
            }
        }
        let home = self.path();
        command
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_RUNTIME_DIR", home.join("runtime"))
            .env("DISPLAY", desktop.display())
            .env_remove("WAYLAND_DISPLAY")
            .env("GDK_BACKEND", "x11")
            .env("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address())
            // No accessibility bus on a test desktop; do not look for one.
            .env("NO_AT_BRIDGE", "1")
            // Xvfb has no GPU: Mesa renders in software. (Not
            // WEBKIT_DISABLE_DMABUF_RENDERER: with it, WebKitWebDriver's
            // screenshot command never answers.)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("TIDINGS_RECORD_OPENED", self.opened_file())
            .env("TIDINGS_LOG", "info,tidings_desk=debug,tidings_desk_app=debug");
    }

    /// URLs the app would have opened, in order.
    pub fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.opened_file())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A running app under WebDriver. Dropping it ends the session (which
/// closes the app) and stops tauri-driver.
#[derive(Debug)]
pub struct DeskApp {
    client: Option<Client>,
    driver: OwnedChild,
    home: AppHome,
    artifacts: PathBuf,
    /// The X display the app's window is on (screenshots are taken there).
    display: String,
    screenshots: u32,
}

impl DeskApp {
    /// Launches the app on `desktop` and waits for its dashboard.
    pub async fn launch(desktop: &Desktop, launch: &Launch) -> anyhow::Result<Self> {
        let home = AppHome::new()?;
        Self::launch_in(desktop, launch, home).await
    }

    /// Like [`DeskApp::launch`], reusing `home` (e.g. to start again after
    /// a quit, with the same history).
    pub async fn launch_in(
        desktop: &Desktop,
        launch: &Launch,
        home: AppHome,
    ) -> anyhow::Result<Self> {
        let app = locate::desk_app()?;
        let artifacts = locate::artifacts_dir(&launch.name)?;
        let config_path = home.config_file();
        if let Some(toml) = &launch.config {
            std::fs::write(&config_path, toml)?;
        }

        let port = free_port();
        let native_port = free_port();
        let log_path = artifacts.join("app.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(locate::tauri_driver()?);
        command
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .args(["--native-driver", &locate::webkit_webdriver()?.display().to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        home.configure(&mut command, desktop);
        let mut driver = OwnedChild::spawn_group("tauri-driver", &mut command)?;
        // tauri-driver listens at once but forwards to WebKitWebDriver, which
        // starts a moment later: wait for both.
        for (listener, what) in [(port, "tauri-driver"), (native_port, "WebKitWebDriver")] {
            wait_for_port(
                SocketAddr::from(([127, 0, 0, 1], listener)),
                DRIVER_STARTUP,
                what,
                || driver.ensure_running(),
            )?;
        }

        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("wry"));
        capabilities.insert(
            "tauri:options".into(),
            json!({ "application": app, "args": launch.args(&config_path) }),
        );
        let client = tokio::time::timeout(
            APP_STARTUP,
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .with_context(|| {
            format!("the app did not start within {APP_STARTUP:?}; see {}", log_path.display())
        })?
        .with_context(|| {
            format!("WebDriver could not start the app; see {}", log_path.display())
        })?;

        let mut app = Self {
            client: Some(client),
            driver,
            home,
            artifacts,
            display: desktop.display().to_owned(),
            screenshots: 0,
        };
        app.wait_until(
            "the dashboard to render",
            APP_STARTUP,
            "return !!document.querySelector('.app[data-screen]')",
        )
        .await?;
        Ok(app)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open until the app is dropped")
    }

    /// The private home the app runs with.
    pub fn home(&self) -> &AppHome {
        &self.home
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        tokio::time::timeout(WEBDRIVER_CALL, self.client().execute(script, args))
            .await
            .with_context(|| {
                format!("WebDriver did not answer within {WEBDRIVER_CALL:?} running: {script}")
            })?
            .with_context(|| format!("running in the page: {script}"))
    }

    /// Polls `script` until it returns something truthy, for at most
    /// `timeout`; returns that value. `what` names the wait in errors.
    pub async fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        script: &str,
    ) -> anyhow::Result<Value> {
        self.wait_until_with(what, timeout, script, Vec::new()).await
    }

    /// [`DeskApp::wait_until`] with arguments for the script.
    pub async fn wait_until_with(
        &mut self,
        what: &str,
        timeout: Duration,
        script: &str,
        args: Vec<Value>,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(script, args.clone()).await?;
            if truthy(&value) {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                let shot = self.screenshot("timeout").await.ok();
                bail!(
                    "timed out after {timeout:?} waiting for {what}; last value {value}; screenshot {shot:?}; page errors {:?}; app log {}",
                    self.ui_errors(),
                    self.artifacts.join("app.log").display()
                );
            }
            self.driver.ensure_running()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shows one screen (`inventory`, `orders`, …, `debug`, `settings`).
    pub async fn show(&mut self, screen: &str) -> anyhow::Result<()> {
        self.eval("location.hash = '#/' + arguments[0];", vec![json!(screen)]).await?;
        self.wait_until_with(
            &format!("the {screen} screen"),
            ON_SCREEN,
            "const root = document.querySelector('.app[data-screen]'); return root && root.dataset.screen === arguments[0];",
            vec![json!(screen)],
        )
        .await?;
        Ok(())
    }

    /// The text of every row the current screen's list shows.
    pub async fn row_texts(&self) -> anyhow::Result<Vec<String>> {
        let value = self.eval(ROW_TEXTS, Vec::new()).await?;
        Ok(serde_json::from_value(value)?)
    }

    /// Shows `screen` and waits for a row containing every one of `texts`;
    /// returns that row's text.
    pub async fn wait_for_row(&mut self, screen: &str, texts: &[&str]) -> anyhow::Result<String> {
        self.show(screen).await?;
        self.wait_for_row_here(screen, texts).await
    }

    /// Shows `tab` of the current screen (`[role=tab][data-tab=TAB]`).
    pub async fn show_tab(&mut self, tab: &str) -> anyhow::Result<()> {
        self.click(&format!("[role=tab][data-tab={tab}]")).await?;
        self.wait_until_with(
            &format!("the {tab} tab to be shown"),
            ON_SCREEN,
            "const tab = document.querySelector(`[role=tab][data-tab=${arguments[0]}]`); return !!tab && tab.getAttribute('aria-selected') === 'true';",
            vec![json!(tab)],
        )
        .await?;
        Ok(())
    }

    /// Waits for `sample`'s row on its screen (and tab); returns its text.
    pub async fn wait_for_sample(&mut self, sample: &Sample) -> anyhow::Result<String> {
        self.show(sample.screen).await?;
        if let Some(tab) = sample.tab {
            self.show_tab(tab).await?;
        }
        let texts: Vec<&str> = sample.texts.iter().map(String::as_str).collect();
        self.wait_for_row_here(sample.screen, &texts)
            .await
            .with_context(|| format!("{} published on {}", sample.kind, sample.channel))
    }

    /// Waits for each of `samples` in turn, with a screenshot of each
    /// screen (and tab) the first time it is checked.
    pub async fn wait_for_every_sample(&mut self, samples: &[Sample]) -> anyhow::Result<()> {
        let mut seen = Vec::new();
        for sample in samples {
            self.wait_for_sample(sample).await?;
            let place = (sample.screen, sample.tab);
            if !seen.contains(&place) {
                seen.push(place);
                let label = match sample.tab {
                    Some(tab) => format!("{}-{tab}", sample.screen),
                    None => sample.screen.to_owned(),
                };
                self.screenshot(&label).await?;
            }
        }
        Ok(())
    }

    /// Waits for a row containing every one of `texts` on what is shown.
    async fn wait_for_row_here(&mut self, screen: &str, texts: &[&str]) -> anyhow::Result<String> {
        let script = format!(
            "const rows = (() => {{ {ROW_TEXTS} }})(); const wanted = arguments[0]; \
             return rows.find((text) => wanted.every((w) => text.includes(w))) || null;"
        );
        let row = self
            .wait_until_with(
                &format!("a row with {texts:?} on the {screen} screen"),
                ON_SCREEN,
                &script,
                vec![json!(texts)],
            )
            .await?;
        Ok(row.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until `screen` is shown with the row containing `text`
    /// highlighted, as a focus request (a notification click) leaves it;
    /// returns that row's text.
    pub async fn wait_for_focused_row(
        &mut self,
        screen: &str,
        text: &str,
    ) -> anyhow::Result<String> {
        let row = self
            .wait_until_with(
                &format!("the {screen} screen with the row of {text} highlighted"),
                ON_SCREEN,
                "const root = document.querySelector('.app[data-screen]'); \
                 if (!root || root.dataset.screen !== arguments[0]) return null; \
                 const row = Array.from(document.querySelectorAll('main [data-testid=row].flash')) \
                   .find((r) => r.innerText.includes(arguments[1])); \
                 return row ? row.innerText.replace(/\\s+/g, ' ').trim() : null;",
                vec![json!(screen), json!(text)],
            )
            .await?;
        Ok(row.as_str().unwrap_or_default().to_owned())
    }

    /// The connection state the status bar shows (`live`, `reconnecting`…).
    pub async fn connection_state(&self) -> anyhow::Result<String> {
        let value = self.eval(CONNECTION_STATE, Vec::new()).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until the status bar shows `state`.
    pub async fn wait_for_connection(
        &mut self,
        state: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let script =
            format!("const s = (() => {{ {CONNECTION_STATE} }})(); return s === arguments[0];");
        self.wait_until_with(
            &format!("the status to show {state}"),
            timeout,
            &script,
            vec![json!(state)],
        )
        .await?;
        Ok(())
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self
            .client()
            .wait()
            .at_most(ON_SCREEN)
            .for_element(fantoccini::Locator::Css(css))
            .await
            .with_context(|| format!("no element matches {css}"))?;
        element.click().await.with_context(|| format!("clicking {css}"))?;
        Ok(())
    }

    /// Saves a screenshot of the page as WebKit renders it as
    /// `NN-label.png` in the test's artifacts; if WebDriver cannot take
    /// one, of the whole display as X shows it (`NN-label-display.png`).
    pub async fn screenshot(&mut self, label: &str) -> anyhow::Result<PathBuf> {
        self.screenshots += 1;
        let path = self.artifacts.join(format!("{:02}-{label}.png", self.screenshots));
        match tokio::time::timeout(SCREENSHOT, self.client().screenshot()).await {
            Ok(Ok(png)) => {
                std::fs::write(&path, png)
                    .with_context(|| format!("writing {}", path.display()))?;
                return Ok(path);
            }
            Ok(Err(error)) => {
                eprintln!("WebDriver screenshot failed ({error}); capturing the display")
            }
            Err(_) => {
                eprintln!("WebDriver screenshot took over {SCREENSHOT:?}; capturing the display")
            }
        }
        let path = self.artifacts.join(format!("{:02}-{label}-display.png", self.screenshots));
        let (display, target) = (self.display.clone(), path.clone());
        tokio::task::spawn_blocking(move || crate::xvfb::capture_png(&display, &target))
            .await
            .context("the screenshot task panicked")??;
        Ok(path)
    }

    /// Uncaught page errors the dashboard reported to the app's log
    /// (`report_ui_error`), one line each.
    pub fn ui_errors(&self) -> Vec<String> {
        std::fs::read_to_string(self.artifacts.join("app.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(UI_ERROR_LOG_LINE))
            .map(str::to_owned)
            .collect()
    }

    /// The test's artifacts directory.
    pub fn artifacts(&self) -> &Path {
        &self.artifacts
    }

    /// Ends the session (the app quits) and returns the app's home, so a
    /// test can start it again on the same data.
    pub async fn quit(mut self) -> AppHome {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        self.driver.kill();
        std::mem::replace(&mut self.home, AppHome::new().expect("a temporary directory"))
    }
}

impl Drop for DeskApp {
    fn drop(&mut self) {
        // The session cannot be closed without awaiting here; killing
        // tauri-driver kills WebKitWebDriver, which ends the app it launched.
        self.driver.kill();
        // Every test also checks that the page never threw: an uncaught
        // error can stop the dashboard rendering while the test's own
        // checks happen to pass.
        let errors = self.ui_errors();
        if !errors.is_empty() && !std::thread::panicking() {
            panic!(
                "the dashboard reported {} uncaught error(s) (app log {}):\n{}",
                errors.len(),
                self.artifacts.join("app.log").display(),
                errors.join("\n")
            );
        }
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Text of each row of the current screen's lists (feed rows and debug
/// rows; header rows excluded). A debug row's text starts with its kind in
/// brackets, e.g. `[legacy] `.
const ROW_TEXTS: &str = "return Array.from(document.querySelectorAll('main [data-testid=row], main [data-testid=debug-row]')).map((row) => (row.dataset.kind ? '[' + row.dataset.kind + '] ' : '') + row.innerText.replace(/\\s+/g, ' ').trim());";

/// What the app logs for each error the page reports (src-tauri's
/// `report_ui_error`).
const UI_ERROR_LOG_LINE: &str = "the dashboard hit an error";

/// The status pill's `data-state`.
const CONNECTION_STATE: &str = "const pill = document.querySelector('[data-testid=status]'); return pill ? pill.dataset.state : null;";
