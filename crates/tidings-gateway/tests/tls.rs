//! TLS to Redis: with `--insecure-tls`, a `rediss://…#insecure` URL really
//! works against a real TLS redis-server with a self-signed certificate —
//! the subscription, history and `POST /api/publish` alike.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestGateway, config, inventory_event};
use tidings_gateway::Secret;

/// A redis-server speaking only TLS, with a fresh self-signed certificate.
struct TlsRedis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl TlsRedis {
    fn start() -> TlsRedis {
        let port = tidings_testkit::free_port();
        let dir = std::env::temp_dir().join(format!("tidings-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(made.success(), "openssl made a certificate");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&cert)
            .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        tidings_testkit::eventually_blocking(
            "redis-server to listen for TLS",
            Duration::from_secs(10),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        TlsRedis { child, port, dir }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn with_insecure_tls_a_self_signed_redis_carries_subscription_history_and_publishing() {
    let redis = TlsRedis::start();
    let mut config = config(&format!("rediss://127.0.0.1:{}/#insecure", redis.port));
    config.insecure_tls = true;
    config.api_key = Some(Secret::new("key"));
    let gateway = TestGateway::start(config).await;
    let mut client = gateway.subscribed(&["inventory"]).await;

    let body = format!(r#"{{"channel":"inventory","event":{}}}"#, inventory_event(7));
    let response = reqwest::Client::new()
        .post(gateway.http_url("/api/publish"))
        .header("x-api-key", "key")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let event = client.next_event().await;
    assert_eq!(event["data"]["productId"], "p7");
    assert!(event["position"].is_string(), "recorded in history: {event}");
}
