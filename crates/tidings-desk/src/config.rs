//! Settings: role presets, the TOML file in the platform config dir, env
//! overrides and flags, in that order of precedence (flags win).
//!
//! A config file that cannot be read or parsed never stops the app: the
//! defaults are used and [`DeskConfig::config_error`] says what was wrong and
//! where (file, line, key), for the window to show.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::ipc::{
    FeedId, FeedRule, Language, MinLevel, Profile, QuietHours, Settings, SourceKind, SourceSettings,
};

/// What `settings()` shows instead of a stored token.
pub const TOKEN_MASK: &str = "********";

/// The desktop app's flags (the Tauri binary flattens these).
#[derive(Debug, Clone, Default, Args)]
pub struct DeskArgs {
    /// Connect through the gateway at this URL (ws:// or wss://).
    #[arg(long, value_name = "URL", conflicts_with = "redis")]
    pub gateway: Option<String>,
    /// JWT for the gateway.
    #[arg(long, value_name = "JWT", requires = "gateway", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// File holding the gateway JWT, read at every connect and every 2 s
    /// while connected: a sign-in helper that rewrites it keeps the
    /// connection alive past each token's expiry.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Connect to Redis directly at this URL (any of
    /// [`tidings::redis_url::SCHEMES`]: one server, Sentinel or Cluster).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Your user id, for your notifications channel (with --redis).
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Role preset: which feeds notify, and how.
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Settings file (TOML). Default: tidings/settings.toml in the platform config dir.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where history is kept. Default: the platform data dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Base URL that relative actionUrls are joined to.
    #[arg(long, value_name = "URL")]
    pub erp_base_url: Option<String>,
}

/// `--profile` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// [`Profile::Warehouse`]: stock and orders notify.
    Warehouse,
    /// [`Profile::Approver`]: approval requests and finance warnings notify.
    Approver,
    /// [`Profile::Ops`]: system events and data changes notify.
    Ops,
}

impl From<ProfileArg> for Profile {
    fn from(arg: ProfileArg) -> Self {
        match arg {
            ProfileArg::Warehouse => Profile::Warehouse,
            ProfileArg::Approver => Profile::Approver,
            ProfileArg::Ops => Profile::Ops,
        }
    }
}

/// Settings and where they live.
#[derive(Debug, Clone)]
pub struct DeskConfig {
    /// The settings to start with: defaults, file, environment and flags
    /// applied.
    pub settings: Settings,
    /// The settings file, read at start and rewritten when settings are saved.
    pub config_path: PathBuf,
    /// The directory the history database and snoozes are kept in.
    pub data_dir: PathBuf,
    /// What was wrong with the configuration, for the window to show.
    pub config_error: Option<ConfigError>,
}

/// What is wrong with the configuration, and where. None of these stops
/// the app: it starts with defaults for what it could not use and the
/// window shows the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The settings file exists but could not be read.
    #[error(
        "cannot read the settings file {}: {reason}; check its permissions, or point --config or TIDINGS_CONFIG at another file",
        path.display()
    )]
    Unreadable {
        /// The settings file.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// The settings file is not valid TOML, or a value in it has the wrong
    /// type.
    #[error(
        "the settings file {} is not valid at line {line}, column {column}{}: {message}; the defaults are used until it is fixed (saving settings from the window rewrites it)",
        path.display(),
        key.as_ref().map(|key| format!(", key `{key}`")).unwrap_or_default()
    )]
    File {
        /// The settings file.
        path: PathBuf,
        /// Line of the error, counting from 1.
        line: usize,
        /// Column (in characters) of the error, counting from 1.
        column: usize,
        /// The dotted key the bad value is under (`quietHours.start`), when
        /// the value, not the syntax, is wrong.
        key: Option<String>,
        /// The TOML parser's message.
        message: String,
    },
    /// A setting (from the file, the environment or a flag) the app cannot
    /// use; `key` is its name in the settings file.
    #[error("setting `{key}`: {message}")]
    Invalid {
        /// The setting's name in the settings file (`source.url`).
        key: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// The settings could not be saved to the file.
    #[error(
        "cannot write settings to {}: {reason}; check that the directory is writable",
        path.display()
    )]
    Write {
        /// The settings file.
        path: PathBuf,
        /// What went wrong (serialising, or the operating system's error).
        reason: String,
    },
}

fn rule(notify: bool, min_level: MinLevel) -> FeedRule {
    FeedRule { enabled: true, notify, min_level, sound: true }
}

/// The preset of a role: every feed shown, and which of them notify.
pub fn preset_feeds(profile: Profile) -> BTreeMap<FeedId, FeedRule> {
    use FeedId::*;
    use MinLevel::*;
    let notifying: &[(FeedId, MinLevel)] = match profile {
        // Stock and orders all day; low stock is a warning.
        Profile::Warehouse => &[
            (Inventory, Warning),
            (Orders, Info),
            (Mine, Info),
            (System, Critical),
            (Broadcast, Warning),
        ],
        // Never miss an approval request.
        Profile::Approver => &[
            (Approvals, Info),
            (Mine, Info),
            (Finance, Warning),
            (System, Critical),
            (Broadcast, Warning),
        ],
        Profile::Ops => &[(System, Info), (Data, Warning), (Mine, Info), (Broadcast, Info)],
    };
    FeedId::ALL
        .into_iter()
        .map(|feed| match notifying.iter().find(|(f, _)| *f == feed) {
            Some((_, level)) => (feed, rule(true, *level)),
            None => (feed, rule(false, Info)),
        })
        .collect()
}

/// Defaults: a local gateway, the given profile's preset.
pub fn default_settings(profile: Profile) -> Settings {
    Settings {
        source: SourceSettings {
            kind: SourceKind::Gateway,
            url: "ws://127.0.0.1:8787/ws".into(),
            token: None,
            token_file: None,
            user_id: None,
        },
        profile,
        language: Language::Auto,
        feeds: preset_feeds(profile),
        quiet_hours: QuietHours { enabled: false, start: "22:00".into(), end: "07:00".into() },
        low_stock_threshold: 10.0,
        coalesce_count: 5,
        coalesce_window_secs: 10,
        erp_base_url: "http://127.0.0.1:3000".into(),
        trusted_hosts: Vec::new(),
        approval_urls: default_approval_urls(),
        autostart: false,
    }
}

/// Every approval resource type's ERP page: `/approvals/{resourceId}`.
pub fn default_approval_urls() -> BTreeMap<String, String> {
    tidings_events::event::ApprovalResource::ALL
        .iter()
        .map(|kind| (kind.as_str().to_owned(), "/approvals/{resourceId}".to_owned()))
        .collect()
}

/// The platform's config and data dirs for Tidings.
fn platform_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("com", "tidings", "tidings")
}

impl DeskConfig {
    /// Defaults, then the file, then `TIDINGS_*` variables, then `args`.
    pub fn load(args: &DeskArgs) -> DeskConfig {
        Self::load_with_env(args, |name| std::env::var(name).ok())
    }

    /// [`DeskConfig::load`] with the environment given (for tests).
    pub fn load_with_env(args: &DeskArgs, env: impl Fn(&str) -> Option<String>) -> DeskConfig {
        let dirs = platform_dirs();
        let config_path = args
            .config
            .clone()
            .or_else(|| env("TIDINGS_CONFIG").map(PathBuf::from))
            .or_else(|| dirs.as_ref().map(|d| d.config_dir().join("settings.toml")))
            .unwrap_or_else(|| PathBuf::from("tidings-settings.toml"));
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| env("TIDINGS_DATA_DIR").map(PathBuf::from))
            .or_else(|| dirs.as_ref().map(|d| d.data_dir().to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("tidings-data"));

        let (mut settings, config_error) = match read_settings(&config_path) {
            Ok(Some(settings)) => (settings, None),
            Ok(None) => (default_settings(Profile::Warehouse), None),
            Err(error) => (default_settings(Profile::Warehouse), Some(error)),
        };

        let profile = args
            .profile
            .map(Profile::from)
            .or_else(|| env("TIDINGS_PROFILE").and_then(|p| parse_profile(&p)));
        if let Some(profile) = profile
            && profile != settings.profile
        {
            settings.profile = profile;
            settings.feeds = preset_feeds(profile);
        }
        if let Some(url) = args.gateway.clone().or_else(|| env("TIDINGS_GATEWAY_URL")) {
            settings.source.kind = SourceKind::Gateway;
            settings.source.url = url;
        }
        // Not TIDINGS_REDIS_URL: the CLI and the gateway read that one, and a
        // shell that exports it for them must not switch the app's source.
        if let Some(url) = args.redis.clone().or_else(|| env("TIDINGS_DESK_REDIS_URL"))
            && args.gateway.is_none()
        {
            settings.source.kind = SourceKind::Redis;
            settings.source.url = url;
        }
        // A flag beats a variable; a token file beats a token given at the
        // same level (the two flags conflict).
        let token_file = args.token_file.as_ref().map(|file| file.display().to_string());
        let from_flags = (args.token.clone(), token_file);
        let (token, file) = if from_flags.0.is_some() || from_flags.1.is_some() {
            from_flags
        } else {
            (env("TIDINGS_TOKEN"), env("TIDINGS_TOKEN_FILE"))
        };
        if let Some(file) = file {
            settings.source.token_file = Some(file);
        } else if let Some(token) = token {
            settings.source.token = Some(token);
            settings.source.token_file = None;
        }
        if let Some(user) = args.user.clone().or_else(|| env("TIDINGS_USER")) {
            settings.source.user_id = Some(user);
        }
        if let Some(base) = args.erp_base_url.clone().or_else(|| env("TIDINGS_ERP_BASE_URL")) {
            settings.erp_base_url = base;
        }
        let config_error = config_error.or_else(|| validate(&settings).err());
        DeskConfig { settings, config_path, data_dir, config_error }
    }
}

fn parse_profile(text: &str) -> Option<Profile> {
    match text.trim().to_ascii_lowercase().as_str() {
        "warehouse" => Some(Profile::Warehouse),
        "approver" => Some(Profile::Approver),
        "ops" => Some(Profile::Ops),
        _ => None,
    }
}

/// The settings in `path`; `None` when there is no file yet.
fn read_settings(path: &Path) -> Result<Option<Settings>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ConfigError::Unreadable {
                path: path.to_path_buf(),
                reason: error.to_string(),
            });
        }
    };
    let file_error = |error: toml::de::Error, key: Option<String>| {
        let offset = error.span().map_or(0, |span| span.start).min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError::File {
            path: path.to_path_buf(),
            line,
            column,
            key,
            message: error.message().trim().to_owned(),
        }
    };
    let document = toml::Deserializer::parse(&text).map_err(|error| file_error(error, None))?;
    serde_path_to_error::deserialize::<_, Settings>(document).map(Some).map_err(|error| {
        let key = error.path().to_string();
        let key = (key != ".").then_some(key);
        file_error(error.into_inner(), key)
    })
}

/// Checks what the pipeline relies on: URL schemes, a user id, times.
pub fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let invalid = |key, message| Err(ConfigError::Invalid { key, message });
    let url = settings.source.url.trim();
    let schemes: &[&str] = match settings.source.kind {
        SourceKind::Gateway => &["ws://", "wss://"],
        SourceKind::Redis => &tidings::redis_url::SCHEMES,
    };
    if !schemes.iter().any(|scheme| url.starts_with(scheme)) {
        let shown = tidings::redact_url(url);
        return invalid(
            "source.url",
            format!("{shown:?} does not start with {}", schemes.join(" or ")),
        );
    }
    let set = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    let has_token_file = set(&settings.source.token_file);
    if has_token_file
        && !settings.source.token_file.as_deref().is_some_and(|f| Path::new(f.trim()).is_absolute())
    {
        return invalid(
            "source.tokenFile",
            "give the token file's full path (it is read by the app, whatever its working directory)".into(),
        );
    }
    let has_token = set(&settings.source.token) || has_token_file;
    if settings.source.kind == SourceKind::Gateway
        && has_token
        && let Ok(parsed) = url::Url::parse(url)
        && parsed.scheme() == "ws"
        && !parsed.host().is_some_and(|host| loopback(&host))
    {
        return invalid(
            "source.url",
            format!(
                "the gateway token is sent only over wss://, or over ws:// to this machine (localhost, 127.0.0.1, ::1); use wss://{}",
                parsed.host_str().unwrap_or_default()
            ),
        );
    }
    if let Some(user) = &settings.source.user_id
        && let Err(error) = tidings_events::UserId::new(user.as_str())
    {
        return invalid("source.userId", error.to_string());
    }
    for (key, value) in [
        ("quietHours.start", &settings.quiet_hours.start),
        ("quietHours.end", &settings.quiet_hours.end),
    ] {
        if parse_hhmm(value).is_none() {
            return invalid(key, format!("{value:?} is not a time like 22:00"));
        }
    }
    if !settings.low_stock_threshold.is_finite() {
        return invalid("lowStockThreshold", "must be a number".into());
    }
    // A host, or host:port: anything else (a URL, a path, a name with a
    // user) would never match, and the user would not know why.
    if let Some(entry) = settings.trusted_hosts.iter().map(|entry| entry.trim()).find(|entry| {
        !entry.is_empty()
            && url::Url::parse(&format!("https://{entry}/"))
                .ok()
                .is_none_or(|url| crate::links::host_of(&url) != entry.to_ascii_lowercase())
    }) {
        return invalid(
            "trustedHosts",
            format!(
                "{entry:?} is not a host (wiki.example.com) or host:port with a port other than 443; international names in their xn-- form"
            ),
        );
    }
    let base = settings.erp_base_url.trim();
    if !(base.is_empty() || base.starts_with("http://") || base.starts_with("https://")) {
        return invalid("erpBaseUrl", format!("{base:?} must start with http:// or https://"));
    }
    for (kind, page) in &settings.approval_urls {
        if let Err(message) = check_approval_page(kind, page.trim()) {
            return invalid("approvalUrls", message);
        }
    }
    Ok(())
}

/// An approval page is set for a known resource type, and is empty (no
/// button), a path on the ERP (`/…`, not `//…` or `/\…`, which lead to
/// other hosts), or an http(s) address (opened only on a trusted host).
fn check_approval_page(kind: &str, page: &str) -> Result<(), String> {
    use tidings_events::event::ApprovalResource;
    if kind.parse::<ApprovalResource>().is_err() {
        let known: Vec<&str> = ApprovalResource::ALL.iter().map(|k| k.as_str()).collect();
        return Err(format!("{kind:?} is not an approval resource type ({})", known.join(", ")));
    }
    let path = page.starts_with('/') && !page.starts_with("//") && !page.starts_with("/\\");
    let address = page.starts_with("http://") || page.starts_with("https://");
    if page.is_empty() || path || address {
        Ok(())
    } else {
        Err(format!(
            "the page of {kind} requests, {page:?}, must be a path starting with / or an http(s):// address"
        ))
    }
}

/// Minutes after midnight of `HH:MM`.
pub fn parse_hhmm(text: &str) -> Option<u32> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

/// Writes `settings` to `path` atomically (a temporary file, then rename).
pub fn save_settings(path: &Path, settings: &Settings) -> Result<(), ConfigError> {
    validate(settings)?;
    let text = toml::to_string_pretty(settings).map_err(|error| ConfigError::Write {
        path: path.to_path_buf(),
        reason: format!("the settings could not be written as TOML: {error}"),
    })?;
    let write = |path: &Path| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = path.with_extension("toml.tmp");
        // A leftover from a crash keeps its old mode if reopened; start afresh.
        let _ = std::fs::remove_file(&temporary);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // The file may hold the gateway token: readable by its owner only.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        // On disk before the rename, so a power loss right after it cannot
        // leave an empty settings file in place of the old one.
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write(path)
        .map_err(|error| ConfigError::Write { path: path.to_path_buf(), reason: error.to_string() })
}

/// The settings as the UI may see them: the gateway token and the
/// password in the source URL masked ([`TOKEN_MASK`]), so neither secret
/// ever reaches the webview.
pub fn masked(settings: &Settings) -> Settings {
    let mut shown = settings.clone();
    if shown.source.token.is_some() {
        shown.source.token = Some(TOKEN_MASK.into());
    }
    shown.source.url = mask_password(&shown.source.url);
    shown
}

/// `url` with its password, if it has one, replaced by [`TOKEN_MASK`].
fn mask_password(url: &str) -> String {
    match tidings::redact::split_password(url.trim()) {
        Some((before, password, after)) if !password.is_empty() => {
            format!("{before}{TOKEN_MASK}{after}")
        }
        _ => url.to_owned(),
    }
}

/// Scheme, host and port of a source URL: what "the same server" means for
/// keeping a secret. A Sentinel URL's "host" is its list of sentinels.
fn endpoint(url: &str) -> Option<(String, Option<u16>)> {
    let url = url.trim();
    if let Ok(parsed) = url::Url::parse(url) {
        return Some((parsed.host_str()?.to_ascii_lowercase(), parsed.port_or_known_default()));
    }
    let start = url.find("://")? + 3;
    let authority = &url[start..url[start..].find('/').map_or(url.len(), |end| start + end)];
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    (!hosts.is_empty()).then(|| (format!("{}{}", &url[..start], hosts.to_ascii_lowercase()), None))
}

/// What [`unmask`] did besides putting secrets back.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmasked {
    /// The settings to apply and save, with the stored secrets put back.
    pub settings: Settings,
    /// The stored gateway token was dropped because the source now points
    /// at another host; the user must enter that host's token.
    pub token_dropped: bool,
}

/// `edited` from the UI, with masked secrets replaced by the stored ones
/// while the source still points at the same host and port. A masked
/// token for another host is dropped (never sent there: the user is asked
/// for that host's token); a masked password for another host is refused.
pub fn unmask(edited: Settings, stored: &Settings) -> Result<Unmasked, ConfigError> {
    let mut settings = edited;
    let same_server = settings.source.kind == stored.source.kind
        && endpoint(&settings.source.url).is_some()
        && endpoint(&settings.source.url) == endpoint(&stored.source.url);
    if let Some((before, TOKEN_MASK, after)) =
        tidings::redact::split_password(settings.source.url.trim())
    {
        if !same_server {
            return Err(ConfigError::Invalid {
                key: "source.url",
                message: "the password is hidden (********) and is not sent to another server; type the password for the new one".into(),
            });
        }
        let password =
            tidings::redact::split_password(stored.source.url.trim()).map_or("", |(_, p, _)| p);
        settings.source.url = if password.is_empty() {
            // No stored password to put back: drop the mask, its `:`, and
            // the `@` too when no user name is left.
            let user = &before[..before.len() - 1];
            let hosts = if user.ends_with("://") { &after[1..] } else { after };
            format!("{user}{hosts}")
        } else {
            format!("{before}{password}{after}")
        };
    }
    let mut token_dropped = false;
    if settings.source.token.as_deref() == Some(TOKEN_MASK) {
        if same_server {
            settings.source.token = stored.source.token.clone();
        } else {
            settings.source.token = None;
            token_dropped = stored.source.token.is_some();
        }
    }
    // The token file's token is meant for the stored server too: a source
    // moved elsewhere with the same file drops it, as it drops the token.
    if !same_server
        && settings.source.token_file.is_some()
        && settings.source.token_file == stored.source.token_file
    {
        settings.source.token_file = None;
        token_dropped = true;
    }
    Ok(Unmasked { settings, token_dropped })
}

/// Whether `host` is this machine (a token may go there over plain `ws://`).
fn loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The user whose notifications channel the app names itself: the
/// configured user id. Through the gateway with no id configured, the source
/// subscribes to the channel of the user its token names (`sub`, read from
/// the token of each connection, fixed or from the token file: see
/// [`own_notifications`]), so the user does not type what the token says.
pub fn user_of(source: &SourceSettings) -> Option<tidings_events::UserId> {
    let user = source.user_id.as_deref().map(str::trim).filter(|user| !user.is_empty())?;
    tidings_events::UserId::new(user).ok()
}

/// Whether the gateway source should subscribe to its token user's
/// notifications channel (no user id is configured).
pub fn own_notifications(source: &SourceSettings) -> bool {
    source.kind == SourceKind::Gateway && user_of(source).is_none()
}

/// The token the gateway source connects with: the token file when one is
/// set (read at every connect and watched, so a sign-in helper can keep it
/// fresh), otherwise the stored token.
pub fn gateway_token(source: &SourceSettings) -> Option<tidings::GatewayToken> {
    let file = source.token_file.as_deref().map(str::trim).filter(|file| !file.is_empty());
    if let Some(file) = file {
        return Some(tidings::GatewayToken::File(file.into()));
    }
    let token = source.token.as_deref().map(str::trim).filter(|token| !token.is_empty())?;
    Some(tidings::GatewayToken::Fixed(token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_sentinel_urls_password_is_hidden_and_put_back_only_for_the_same_sentinels() {
        let mut stored = default_settings(Profile::Approver);
        stored.source.kind = SourceKind::Redis;
        stored.source.url = "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379/tidings".into();
        let shown = masked(&stored);
        assert_eq!(
            shown.source.url,
            "redis+sentinel://:********@10.0.0.1:26379,10.0.0.2:26379/tidings"
        );
        let saved = unmask(shown.clone(), &stored).unwrap();
        assert_eq!(saved.settings.source.url, stored.source.url);

        let mut elsewhere = shown;
        elsewhere.source.url = "redis+sentinel://:********@10.9.9.9:26379/tidings".into();
        let error = unmask(elsewhere, &stored).unwrap_err().to_string();
        assert!(error.contains("not sent to another server"), "{error}");
    }

    #[test]
    fn an_approval_page_must_be_an_erp_path_or_an_http_address_for_a_known_type() {
        let with = |kind: &str, page: &str| {
            let mut settings = default_settings(Profile::Approver);
            settings.approval_urls.insert(kind.into(), page.into());
            validate(&settings)
        };
        assert!(with("order", "/approvals/{resourceId}").is_ok());
        assert!(with("order", "https://erp.example.com/a/{resourceId}").is_ok());
        assert!(with("order", "").is_ok());
        for bad in ["//evil.example/x", "/\\evil.example/x", "javascript:alert(1)"] {
            let error = with("order", bad).unwrap_err().to_string();
            assert!(error.contains("approvalUrls") && error.contains("order"), "{bad}: {error}");
        }
        let error = with("invoice", "/x").unwrap_err().to_string();
        assert!(error.contains("\"invoice\" is not an approval resource type"), "{error}");
    }

    #[test]
    fn each_profile_notifies_for_its_own_feeds() {
        assert!(preset_feeds(Profile::Approver)[&FeedId::Approvals].notify);
        assert!(!preset_feeds(Profile::Warehouse)[&FeedId::Approvals].notify);
        assert!(preset_feeds(Profile::Warehouse)[&FeedId::Inventory].notify);
        assert!(preset_feeds(Profile::Ops)[&FeedId::System].notify);
        for profile in [Profile::Warehouse, Profile::Approver, Profile::Ops] {
            assert!(preset_feeds(profile).values().all(|rule| rule.enabled));
        }
    }

    fn gateway_source(token: Option<&str>, user: Option<&str>) -> SourceSettings {
        SourceSettings {
            kind: SourceKind::Gateway,
            url: "ws://127.0.0.1:8787/ws".into(),
            token: token.map(str::to_owned),
            token_file: None,
            user_id: user.map(str::to_owned),
        }
    }

    #[test]
    fn through_the_gateway_the_source_reads_the_user_from_the_token_unless_one_is_configured() {
        let user = |source: &SourceSettings| user_of(source).map(|u| u.as_str().to_owned());
        for configured in [None, Some(""), Some("  ")] {
            let source = gateway_source(Some("a.b.c"), configured);
            assert_eq!(user(&source), None, "{configured:?}");
            assert!(own_notifications(&source), "{configured:?}");
        }
        let source = gateway_source(Some("a.b.c"), Some("u1"));
        assert_eq!(user(&source).as_deref(), Some("u1"));
        assert!(!own_notifications(&source));
        let redis = SourceSettings { kind: SourceKind::Redis, ..gateway_source(None, None) };
        assert!(!own_notifications(&redis), "a Redis source has no token to read a user from");
    }

    #[test]
    fn a_token_file_is_used_instead_of_a_stored_token() {
        let mut source = gateway_source(Some("a.b.c"), None);
        assert_eq!(gateway_token(&source), Some(tidings::GatewayToken::Fixed("a.b.c".into())));
        source.token_file = Some("/run/user/1000/erp-token".into());
        assert_eq!(
            gateway_token(&source),
            Some(tidings::GatewayToken::File("/run/user/1000/erp-token".into()))
        );
        source.token_file = Some(" ".into());
        source.token = Some(String::new());
        assert_eq!(gateway_token(&source), None);
    }

    #[test]
    fn flags_override_env_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        save_settings(&path, &default_settings(Profile::Ops)).unwrap();
        let args = DeskArgs {
            config: Some(path),
            redis: Some("redis://127.0.0.1:6390".into()),
            user: Some("u9".into()),
            ..DeskArgs::default()
        };
        let env = |name: &str| (name == "TIDINGS_PROFILE").then(|| "approver".to_owned());
        let config = DeskConfig::load_with_env(&args, env);
        assert_eq!(config.config_error, None);
        assert_eq!(config.settings.profile, Profile::Approver);
        assert_eq!(config.settings.source.kind, SourceKind::Redis);
        assert_eq!(config.settings.source.url, "redis://127.0.0.1:6390");
        assert_eq!(config.settings.source.user_id.as_deref(), Some("u9"));
    }

    #[test]
    fn a_token_file_comes_from_the_flag_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let args = DeskArgs {
            config: Some(dir.path().join("settings.toml")),
            gateway: Some("ws://127.0.0.1:8787/ws".into()),
            token_file: Some("/run/user/1000/erp-token".into()),
            ..DeskArgs::default()
        };
        let config = DeskConfig::load_with_env(&args, no_env);
        assert_eq!(config.config_error, None);
        assert_eq!(config.settings.source.token_file.as_deref(), Some("/run/user/1000/erp-token"));
        let env = |name: &str| match name {
            "TIDINGS_TOKEN_FILE" => Some("/tmp/t".to_owned()),
            "TIDINGS_TOKEN" => Some("e.n.v".to_owned()),
            _ => None,
        };
        let from_env =
            DeskConfig::load_with_env(&DeskArgs { token_file: None, ..args.clone() }, env);
        assert_eq!(from_env.settings.source.token_file.as_deref(), Some("/tmp/t"));
        let flag = DeskArgs { token_file: None, token: Some("f.l.ag".into()), ..args };
        let config = DeskConfig::load_with_env(&flag, env);
        assert_eq!(
            config.settings.source.token.as_deref(),
            Some("f.l.ag"),
            "a flag beats a variable"
        );
        assert_eq!(config.settings.source.token_file, None);
    }

    #[test]
    fn a_bad_value_in_the_file_gives_defaults_and_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        let mut text = toml::to_string_pretty(&default_settings(Profile::Ops)).unwrap();
        text = text.replace("start = \"22:00\"", "start = 2200");
        std::fs::write(&path, &text).unwrap();
        let line = text.lines().position(|l| l.starts_with("start = 2200")).unwrap() + 1;
        let args = DeskArgs { config: Some(path.clone()), ..DeskArgs::default() };
        let config = DeskConfig::load_with_env(&args, no_env);
        let error = config.config_error.expect("an error");
        let ConfigError::File { path: at, line: error_line, key, .. } = &error else {
            panic!("not a file error: {error:?}")
        };
        assert_eq!((at, *error_line, key.as_deref()), (&path, line, Some("quietHours.start")));
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("quietHours.start") && message.contains("string"), "{message}");
        assert_eq!(config.settings.profile, Profile::Warehouse, "defaults");
    }

    #[test]
    fn a_file_that_is_not_toml_says_where_it_stops_making_sense() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "profile = \"ops\"\nlowStockThreshold = = 3\n").unwrap();
        let args = DeskArgs { config: Some(path), ..DeskArgs::default() };
        let error = DeskConfig::load_with_env(&args, no_env).config_error.expect("an error");
        assert!(matches!(&error, ConfigError::File { line: 2, key: None, .. }), "{error:?}");
    }

    #[test]
    fn an_unknown_profile_in_the_file_is_reported_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "profile = \"boss\"\n").unwrap();
        let args = DeskArgs { config: Some(path), ..DeskArgs::default() };
        let error = DeskConfig::load_with_env(&args, no_env).config_error.expect("an error");
        let message = error.to_string();
        assert!(message.contains("line 1") && message.contains("boss"), "{message}");
    }

    #[test]
    fn a_bad_source_url_is_reported_with_its_key_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let args = DeskArgs {
            gateway: Some("http://x".into()),
            config: Some(dir.path().join("none.toml")),
            ..DeskArgs::default()
        };
        let config = DeskConfig::load_with_env(&args, no_env);
        let error = config.config_error.expect("an error");
        assert!(matches!(error, ConfigError::Invalid { key: "source.url", .. }), "{error:?}");
        assert!(error.to_string().contains("ws://"), "{error}");
    }

    #[test]
    fn saved_settings_read_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/settings.toml");
        let mut settings = default_settings(Profile::Approver);
        settings.quiet_hours.enabled = true;
        save_settings(&path, &settings).unwrap();
        assert_eq!(read_settings(&path).unwrap(), Some(settings));
    }

    #[cfg(unix)]
    #[test]
    fn the_saved_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        let mut settings = default_settings(Profile::Ops);
        settings.source.token = Some("secret.jwt".into());
        save_settings(&path, &settings).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    #[test]
    fn the_token_never_goes_to_the_ui_and_a_masked_one_keeps_the_stored() {
        let mut stored = default_settings(Profile::Ops);
        stored.source.token = Some("secret.jwt".into());
        let shown = masked(&stored);
        assert_eq!(shown.source.token.as_deref(), Some(TOKEN_MASK));
        let back = unmask(shown, &stored).unwrap();
        assert_eq!(back.settings.source.token.as_deref(), Some("secret.jwt"));
        assert!(!back.token_dropped);
    }

    fn redis_with_password() -> Settings {
        let mut stored = default_settings(Profile::Ops);
        stored.source.kind = SourceKind::Redis;
        stored.source.url = "redis://:s3cret@redis.example.com:6379/0".into();
        stored
    }

    #[test]
    fn the_redis_password_never_goes_to_the_ui_and_a_masked_one_keeps_the_stored() {
        let stored = redis_with_password();
        let shown = masked(&stored);
        assert_eq!(shown.source.url, "redis://:********@redis.example.com:6379/0");
        let back = unmask(shown, &stored).unwrap().settings;
        assert_eq!(back.source.url, stored.source.url);
    }

    #[test]
    fn a_masked_redis_password_is_not_sent_to_another_server() {
        let stored = redis_with_password();
        let mut edited = masked(&stored);
        edited.source.url = "redis://:********@evil.example.com:6379/0".into();
        let error = unmask(edited, &stored).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { key: "source.url", .. }), "{error}");
    }

    #[test]
    fn a_source_on_another_host_drops_the_stored_token() {
        let mut stored = default_settings(Profile::Ops);
        stored.source.url = "wss://gw.example.com/ws".into();
        stored.source.token = Some("secret.jwt".into());
        let mut edited = masked(&stored);
        edited.source.url = "wss://other.example.com/ws".into();
        let back = unmask(edited, &stored).unwrap();
        assert_eq!(back.settings.source.token, None);
        assert!(back.token_dropped);
        let mut same = masked(&stored);
        same.source.url = "wss://GW.example.com:443/ws/".into();
        assert_eq!(
            unmask(same, &stored).unwrap().settings.source.token.as_deref(),
            Some("secret.jwt")
        );
    }

    #[test]
    fn a_token_is_refused_over_plain_ws_to_another_machine() {
        let mut settings = default_settings(Profile::Ops);
        settings.source.url = "ws://gw.example.com/ws".into();
        settings.source.token = Some("secret.jwt".into());
        let error = validate(&settings).unwrap_err();
        assert!(error.to_string().contains("wss://gw.example.com"), "{error}");
        settings.source.url = "wss://gw.example.com/ws".into();
        assert_eq!(validate(&settings), Ok(()));
    }

    #[test]
    fn a_token_file_follows_the_tokens_rules() {
        let mut settings = default_settings(Profile::Ops);
        settings.source.url = "ws://gw.example.com/ws".into();
        settings.source.token_file = Some("/run/user/1000/erp-token".into());
        let error = validate(&settings).unwrap_err();
        assert!(error.to_string().contains("wss://gw.example.com"), "{error}");
        settings.source.url = "wss://gw.example.com/ws".into();
        assert_eq!(validate(&settings), Ok(()));
        settings.source.token_file = Some("erp-token".into());
        let error = validate(&settings).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { key: "source.tokenFile", .. }), "{error}");
        assert!(error.to_string().contains("full path"), "{error}");
    }

    #[test]
    fn a_source_moved_to_another_host_with_the_same_token_file_drops_it() {
        let mut stored = default_settings(Profile::Ops);
        stored.source.url = "wss://gw.example.com/ws".into();
        stored.source.token_file = Some("/run/user/1000/erp-token".into());
        let mut moved = stored.clone();
        moved.source.url = "wss://other.example.com/ws".into();
        let back = unmask(moved.clone(), &stored).unwrap();
        assert_eq!(back.settings.source.token_file, None);
        assert!(back.token_dropped);
        moved.source.token_file = Some("/run/user/1000/other-token".into());
        let back = unmask(moved, &stored).unwrap();
        assert_eq!(back.settings.source.token_file.as_deref(), Some("/run/user/1000/other-token"));
        assert!(!back.token_dropped, "a file chosen for the new host is kept");
        let same = stored.clone();
        assert_eq!(unmask(same, &stored).unwrap().settings, stored);
    }

    #[test]
    fn a_token_may_go_over_plain_ws_to_this_machine() {
        let mut settings = default_settings(Profile::Ops);
        settings.source.token = Some("secret.jwt".into());
        for url in [
            "ws://127.0.0.1:8787/ws",
            "ws://localhost:8787/ws",
            "ws://[::1]:8787/ws",
            "ws://127.8.0.1/ws",
        ] {
            settings.source.url = url.into();
            assert_eq!(validate(&settings), Ok(()), "{url}");
        }
        settings.source.url = "ws://gw.example.com/ws".into();
        settings.source.token = None;
        assert_eq!(validate(&settings), Ok(()), "no token, nothing to leak (an open gateway)");
    }

    #[test]
    fn a_trusted_host_must_be_a_host_or_host_and_port() {
        let mut settings = default_settings(Profile::Ops);
        settings.trusted_hosts =
            vec!["wiki.example.com".into(), " erp.example.com:8443 ".into(), String::new()];
        assert_eq!(validate(&settings), Ok(()));
        for wrong in ["https://wiki.example.com", "wiki.example.com/docs", "u@wiki.example.com"] {
            settings.trusted_hosts = vec![wrong.into()];
            let error = validate(&settings).unwrap_err();
            assert!(matches!(error, ConfigError::Invalid { key: "trustedHosts", .. }), "{wrong}");
        }
    }

    #[test]
    fn times_parse_as_minutes_after_midnight() {
        assert_eq!(parse_hhmm("22:30"), Some(22 * 60 + 30));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("7"), None);
    }
}
