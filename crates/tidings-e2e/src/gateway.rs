//! The real `tidings-gateway` binary for one test: JWT auth on, on a fixed
//! free loopback port so that a killed gateway can be restarted where the
//! app expects it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::process::{OwnedChild, free_port, wait_for_port};

/// How long a gateway gets to listen after it is started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running gateway in front of one Redis.
#[derive(Debug)]
pub struct Gateway {
    binary: PathBuf,
    redis_url: String,
    secret: String,
    port: u16,
    log: PathBuf,
    server: Option<OwnedChild>,
}

impl Gateway {
    /// Starts `binary` in front of `redis_url`, logging to `log`.
    pub fn start(binary: &Path, redis_url: &str, log: &Path) -> anyhow::Result<Self> {
        let mut gateway = Self {
            binary: binary.to_owned(),
            redis_url: redis_url.to_owned(),
            secret: format!("e2e-secret-{}-do-not-use-anywhere-else", std::process::id()),
            port: free_port(),
            log: log.to_owned(),
            server: None,
        };
        gateway.spawn()?;
        Ok(gateway)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening the gateway log {}", self.log.display()))?;
        let mut command = Command::new(&self.binary);
        // Only the flags below configure it, not the caller's environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TIDINGS_") {
                command.env_remove(name);
            }
        }
        command
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--redis", &self.redis_url])
            .args(["--jwt-secret", &self.secret])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut server = OwnedChild::spawn("tidings-gateway", &mut command)?;
        wait_for_port(self.address(), STARTUP_TIMEOUT, "the gateway", || server.ensure_running())?;
        self.server = Some(server);
        Ok(())
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The WebSocket endpoint, `ws://127.0.0.1:PORT/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// A valid HS256 token for `user` (one hour).
    pub fn token_for(&self, user: &str) -> String {
        let expires =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() + 3600;
        let claims = serde_json::json!({ "sub": user, "exp": expires });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )
        .expect("HS256 signing of a JSON object cannot fail")
    }

    /// Kills the gateway (SIGKILL): its clients see the connection drop.
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }
}
