//! Shared by the gateway's integration tests: start a real gateway on port 0
//! against a real Redis, connect real WebSocket clients, mint JWTs, and read
//! frames with timeouts (never sleeps).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tidings_gateway::UpstreamStatus;
use tidings_gateway::{Gateway, GatewayConfig, Secret};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long any single expected thing may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

pub(crate) const SECRET: &str = "test-secret-do-not-use-0123456789abcdef";

/// A typed inventory event as the backend publishes it.
pub(crate) fn inventory_event(n: u64) -> String {
    format!(
        r#"{{"type":"inventory:change","productId":"p{n}","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}}"#
    )
}

/// An inventory event padded to about `size` bytes.
pub(crate) fn padded_event(n: u64, size: usize) -> String {
    format!(
        r#"{{"type":"inventory:change","productId":"p{n}","action":"adjust","oldQuantity":1,"newQuantity":2,"changeAmount":1,"timestamp":1,"reason":"{}"}}"#,
        "x".repeat(size)
    )
}

/// A config for a test gateway: port 0 on loopback, the given Redis.
pub(crate) fn config(redis_url: &str) -> GatewayConfig {
    let mut config = GatewayConfig::new("127.0.0.1:0".parse().unwrap());
    config.redis_url = redis_url.to_owned();
    config
}

/// Like [`config`], with JWT auth on.
pub(crate) fn secured_config(redis_url: &str) -> GatewayConfig {
    let mut config = config(redis_url);
    config.jwt_secret = Some(Secret::new(SECRET));
    config
}

/// A gateway running in this test, stopped when dropped.
#[derive(Debug)]
pub(crate) struct TestGateway {
    pub addr: SocketAddr,
    pub upstream: watch::Receiver<UpstreamStatus>,
    pub shutdown: CancellationToken,
    pub task: Option<JoinHandle<Result<(), tidings_gateway::GatewayError>>>,
}

impl TestGateway {
    /// Starts a gateway and waits until its broker link is live.
    pub(crate) async fn start(config: GatewayConfig) -> Self {
        let gateway = Self::start_unready(config).await;
        let mut upstream = gateway.upstream.clone();
        tokio::time::timeout(WAIT, upstream.wait_for(UpstreamStatus::is_live))
            .await
            .expect("the gateway subscribes to Redis within the timeout")
            .expect("the gateway is running");
        gateway
    }

    /// Starts a gateway without waiting for its broker link.
    pub(crate) async fn start_unready(config: GatewayConfig) -> Self {
        let shutdown = CancellationToken::new();
        let bound = Gateway::bind(config, shutdown.clone()).await.expect("gateway binds");
        let task = tokio::spawn(bound.serving);
        TestGateway { addr: bound.addr, upstream: bound.upstream, shutdown, task: Some(task) }
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub(crate) fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Cancels and waits for the serving future to return.
    pub(crate) async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT * 2, task)
                .await
                .expect("gateway stops within the bound")
                .expect("gateway task did not panic")
                .expect("gateway stopped without error");
        }
    }

    /// An open-mode client.
    pub(crate) async fn client(&self) -> Client {
        Client::connect(&self.ws_url(), None).await.expect("connects")
    }

    /// A client with a valid token for `user`.
    pub(crate) async fn client_as(&self, user: &str) -> Client {
        Client::connect(&self.ws_url(), Some(&token_for(user))).await.expect("connects")
    }

    /// A client subscribed to `channels` (waits for `subscribed`).
    pub(crate) async fn subscribed(&self, channels: &[&str]) -> Client {
        let mut client = self.client().await;
        client.subscribe(channels).await;
        client
    }

    /// The `/metrics` text.
    pub(crate) async fn metrics(&self) -> String {
        reqwest::get(self.http_url("/metrics")).await.unwrap().text().await.unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A JWT for `user`, valid for an hour, optionally with a `channels` claim.
pub(crate) fn token_for(user: &str) -> String {
    sign(&json!({"sub": user, "exp": jsonwebtoken::get_current_timestamp() + 3600}), SECRET)
}

pub(crate) fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that reads frames as JSON.
#[derive(Debug)]
pub(crate) struct Client {
    pub ws: Socket,
}

/// What the gateway did with the connection when a frame was expected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed {
    pub code: Option<u16>,
    pub reason: String,
}

impl Client {
    /// Connects with the token as `Authorization: Bearer`, if any.
    pub(crate) async fn connect(
        url: &str,
        token: Option<&str>,
    ) -> Result<Client, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(token) = token {
            request.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Client { ws })
    }

    pub(crate) async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub(crate) async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends `subscribe` and waits for its `subscribed`.
    pub(crate) async fn subscribe(&mut self, channels: &[&str]) {
        self.send_json(json!({"type": "subscribe", "channels": channels})).await;
        // While the gateway is (re)connecting to Redis it says so first.
        let mut reply = self.next().await;
        while reply["type"] == "status" {
            reply = self.next().await;
        }
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["channels"], json!(channels), "{reply}");
    }

    /// The next text frame as JSON, or the close it got instead.
    pub(crate) async fn next_or_close(&mut self) -> Result<Value, Closed> {
        self.next_text_or_close()
            .await
            .map(|text| serde_json::from_str(&text).expect("the gateway sends JSON"))
    }

    /// The next text frame exactly as sent.
    pub(crate) async fn next_text(&mut self) -> String {
        match self.next_text_or_close().await {
            Ok(text) => text,
            Err(closed) => panic!("expected a frame, the connection closed: {closed:?}"),
        }
    }

    /// The next text frame, or the close it got instead.
    pub(crate) async fn next_text_or_close(&mut self) -> Result<String, Closed> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame from the gateway within the timeout");
            match message {
                Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    return Err(Closed { code: None, reason: error.to_string() });
                }
                None => return Err(Closed { code: None, reason: "stream ended".into() }),
            }
        }
    }

    /// The next text frame as JSON; panics on close.
    pub(crate) async fn next(&mut self) -> Value {
        match self.next_or_close().await {
            Ok(value) => value,
            Err(closed) => panic!("expected a frame, the connection closed: {closed:?}"),
        }
    }

    /// The next frame, which must have type `kind`.
    pub(crate) async fn next_of(&mut self, kind: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], kind, "expected a {kind} frame, got {frame}");
        frame
    }

    /// The next `event` frame's `data`, skipping `status` frames.
    pub(crate) async fn next_event(&mut self) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == "status" {
                continue;
            }
            assert_eq!(frame["type"], "event", "expected an event, got {frame}");
            return frame;
        }
    }

    /// Waits up to `within` for the gateway's close frame, skipping any
    /// other frame (for closes that come late, as at a token's expiry);
    /// panics if the connection ends without one.
    pub(crate) async fn close_frame_within(
        &mut self,
        within: Duration,
    ) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
        tokio::time::timeout(within, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => {}
                    other => panic!("the connection ended without a close frame: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no close within {within:?}"))
        .expect("a close frame with a code")
    }

    /// Reads until the gateway closes; returns the close code. Like a
    /// well-behaved client, sends the close reply (tungstenite does so on the
    /// next read) and reads to the end.
    pub(crate) async fn expect_close(&mut self) -> Closed {
        loop {
            match self.next_or_close().await {
                Ok(_) => {}
                Err(closed) => {
                    let _ = tokio::time::timeout(WAIT, async {
                        while let Some(Ok(_)) = self.ws.next().await {}
                    })
                    .await;
                    return closed;
                }
            }
        }
    }
}

pub(crate) fn close_code(code: CloseCode) -> u16 {
    u16::from(code)
}

/// Publishes over a real Redis connection (the way the backend does: plain
/// `PUBLISH`), fast enough for bursts.
#[derive(Clone)]
pub(crate) struct Publisher {
    connection: redis::aio::MultiplexedConnection,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher")
    }
}

impl Publisher {
    pub(crate) async fn connect(url: &str) -> Publisher {
        let client = redis::Client::open(url).unwrap();
        let connection = client.get_multiplexed_async_connection().await.expect("Redis reachable");
        Publisher { connection }
    }

    /// `PUBLISH channel payload`; returns the receiver count.
    pub(crate) async fn publish(&mut self, channel: &str, payload: &str) -> usize {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut self.connection)
            .await
            .expect("PUBLISH")
    }
}

/// The real `tidings-gateway` binary as a child process; killed when dropped.
#[derive(Debug)]
pub(crate) struct GatewayProcess {
    pub child: std::process::Child,
    /// The address from its "gateway listening" log line.
    pub addr: String,
    /// That log line, as written.
    pub listening_line: String,
    /// The rest of its log, once it has exited.
    pub log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl GatewayProcess {
    /// Starts the binary with `args` and `env` and waits for it to listen.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> GatewayProcess {
        use std::io::{BufRead, BufReader};
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tidings-gateway"));
        command
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the tidings-gateway binary");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let listening_line = loop {
            let line = lines.next().expect("the gateway logs its address").unwrap();
            if line.contains("gateway listening") {
                break line;
            }
        };
        let after = listening_line.split("listen=").nth(1).expect("listen= in the line");
        let addr = after.split_whitespace().next().unwrap().to_owned();
        let log = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        GatewayProcess { child, addr, listening_line, log: Some(log) }
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (after [`Self::terminate`]); returns
    /// its status and log. Kills it and fails if it takes longer than `within`.
    pub(crate) async fn exited(&mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let mut child = std::mem::replace(
            &mut self.child,
            // A stand-in so `Drop` has something to reap: an already-finished `true`.
            std::process::Command::new("true").spawn().unwrap(),
        );
        let waiting = tokio::task::spawn_blocking(move || child.wait());
        let Ok(status) = tokio::time::timeout(within, waiting).await else {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
            panic!("the gateway did not exit within {within:?}");
        };
        let status = status.unwrap().unwrap();
        let log = self.log.take().unwrap().join().unwrap().join("\n");
        (status, log)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
