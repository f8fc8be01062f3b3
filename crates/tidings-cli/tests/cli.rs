//! The `tidings` binary against a real redis-server: each publish kind
//! reaches its channel, bad input exits 2 naming the problem, `tail` shows
//! typed, legacy and malformed messages and survives a Redis restart,
//! `demo --seed` is reproducible, and `rediss://…#insecure` needs
//! `--insecure-tls`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tidings_testkit::{RedisServer, eventually_blocking};

const WAIT: Duration = Duration::from_secs(10);

const EXAMPLE: &str = r#"{"type":"inventory:change","productId":"123","action":"adjust","oldQuantity":10,"newQuantity":15,"changeAmount":5,"timestamp":1699999999999}"#;

fn tidings(server: &RedisServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .env("TIDINGS_REDIS_URL", server.url())
        .env_remove("TIDINGS_LOG")
        .output()
        .expect("run tidings")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A raw `PSUBSCRIBE ws:*` on its own thread, independent of the code under test.
struct Listener {
    messages: mpsc::Receiver<(String, String)>,
}

impl Listener {
    fn start(server: &RedisServer) -> Self {
        let client = redis::Client::open(server.url()).unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut connection = client.get_connection().unwrap();
            let mut pubsub = connection.as_pubsub();
            pubsub.psubscribe("ws:*").unwrap();
            ready_tx.send(()).unwrap();
            // Ends when the server goes away at the end of the test.
            while let Ok(message) = pubsub.get_message() {
                let payload: String = message.get_payload().unwrap_or_default();
                if tx.send((message.get_channel_name().to_owned(), payload)).is_err() {
                    break;
                }
            }
        });
        ready_rx.recv_timeout(WAIT).expect("listener subscribed");
        Listener { messages }
    }

    fn next(&self) -> (String, Value) {
        let (channel, payload) = self.messages.recv_timeout(WAIT).expect("a message within 10 s");
        let value = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
        (channel, value)
    }
}

#[test]
fn each_publish_kind_reaches_its_channel_and_reports_the_receivers() {
    let server = RedisServer::start();
    let listener = Listener::start(&server);
    let approval = [
        "--resource-type",
        "refund",
        "--resource-id",
        "r-7",
        "--resource-number",
        "RF-2026-000042",
        "--requester-id",
        "u2",
        "--requester-name",
        "李娜",
    ];
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec![
                "notification",
                "--user",
                "u1",
                "--notification-type",
                "warning",
                "--title",
                "库存不足",
                "--message",
                "only 3 left",
            ],
            "ws:user:u1:notifications",
            "notification",
        ),
        (
            vec![
                "inventory",
                "--product-id",
                "123",
                "--action",
                "adjust",
                "--old-quantity",
                "10",
                "--new-quantity",
                "15",
            ],
            "ws:inventory",
            "inventory:change",
        ),
        (
            vec![
                "order",
                "--order-type",
                "sales",
                "--order-id",
                "o-1",
                "--order-number",
                "SO-2026-000123",
                "--old-status",
                "pending",
                "--new-status",
                "shipped",
            ],
            "ws:orders",
            "order:status",
        ),
        ([&["approval-request"][..], &approval].concat(), "ws:approvals", "approval:request"),
        (
            vec![
                "finance",
                "--type",
                "overdue",
                "--action",
                "overdue",
                "--record-type",
                "payment",
                "--record-id",
                "p-1",
                "--record-number",
                "INV-2026-000001",
                "--amount",
                "12850.50",
            ],
            "ws:finance",
            "finance:overdue",
        ),
        (
            vec![
                "data-change",
                "--resource",
                "customer",
                "--action",
                "updated",
                "--resource-id",
                "C-1",
                "--changes",
                r#"{"phone":"021-5555"}"#,
            ],
            "ws:customers",
            "data:change",
        ),
        (
            vec![
                "system",
                "--type",
                "maintenance",
                "--level",
                "warning",
                "--message",
                "22:00",
                "--affected-user",
                "u1",
            ],
            "ws:system",
            "system:maintenance",
        ),
        (
            vec!["broadcast", "--message", "新年快乐", "--level", "success"],
            "ws:broadcast",
            "broadcast",
        ),
        (
            vec!["raw", "inventory", r#"{"type":"adjust","productId":"123","quantity":10}"#],
            "ws:inventory",
            "adjust",
        ),
    ];
    for (args, channel, kind) in cases {
        let output = tidings(&server, &[&["publish"][..], &args].concat());
        assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
        let stdout = text(&output.stdout);
        assert!(
            stdout.contains(&format!("published to {channel}: 1 subscriber received it")),
            "{stdout}"
        );
        let (received, value) = listener.next();
        assert_eq!((received.as_str(), value["type"].as_str()), (channel, Some(kind)), "{args:?}");
    }
}

#[test]
fn inventory_publish_fills_in_the_change_amount() {
    let server = RedisServer::start();
    let listener = Listener::start(&server);

    let args = [
        "publish",
        "inventory",
        "--product-id",
        "9",
        "--action",
        "outbound",
        "--old-quantity",
        "10",
        "--new-quantity",
        "7.5",
    ];
    assert!(tidings(&server, &args).status.success());

    assert_eq!(listener.next().1["changeAmount"], -2.5);
}

#[test]
fn an_approval_result_sends_the_decision_and_notifies_the_requester() {
    let server = RedisServer::start();
    let listener = Listener::start(&server);

    let output = tidings(
        &server,
        &[
            "publish",
            "approval-result",
            "--decision",
            "rejected",
            "--resource-type",
            "refund",
            "--resource-id",
            "r-7",
            "--resource-number",
            "RF-2026-000042",
            "--requester-id",
            "u2",
            "--requester-name",
            "李娜",
            "--reason",
            "超出预算",
        ],
    );

    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(listener.next().1["type"], "approval:rejected");
    let (channel, value) = listener.next();
    assert_eq!(channel, "ws:user:u2:notifications");
    assert!(value["message"].as_str().unwrap().contains("超出预算"), "{value}");
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_problem() {
    let server = RedisServer::start();
    let listener = Listener::start(&server);
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "inventory",
                "--product-id",
                "1",
                "--action",
                "teleport",
                "--old-quantity",
                "1",
                "--new-quantity",
                "2",
            ],
            "--action",
        ),
        (
            &[
                "inventory",
                "--product-id",
                "1",
                "--action",
                "adjust",
                "--old-quantity",
                "lots",
                "--new-quantity",
                "2",
            ],
            "--old-quantity",
        ),
        (
            &[
                "notification",
                "--user",
                "u1:*",
                "--notification-type",
                "info",
                "--title",
                "t",
                "--message",
                "m",
            ],
            "--user",
        ),
        (&["raw", "inventory", "not json"], "not JSON"),
        (&["raw", "stock", "{}"], "unknown channel \"stock\""),
        (&["raw", "orders", EXAMPLE], "inventory:change does not belong on channel orders"),
    ];
    for (args, problem) in cases {
        let output = tidings(&server, &[&["publish"][..], args].concat());
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(problem), "{args:?} should mention {problem}: {stderr}");
    }
    // None of them reached Redis.
    assert!(tidings(&server, &["publish", "broadcast", "--message", "marker"]).status.success());
    assert_eq!(listener.next().0, "ws:broadcast");
}

#[test]
fn tls_without_certificate_checks_exits_2_naming_the_flag_unless_it_is_given() {
    let url = "rediss://:s3cret@127.0.0.1:1/#insecure";
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(args)
            .env("TIDINGS_REDIS_URL", url)
            .env_remove("TIDINGS_LOG")
            .env_remove("TIDINGS_INSECURE_TLS")
            .output()
            .expect("run tidings")
    };
    for args in [
        &["publish", "broadcast", "--message", "m"][..],
        &["record"][..],
        &["gateway"][..],
        &["tail"][..],
        &["--insecure-tls", "tail"][..],
    ] {
        let output = run(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("#insecure") && !stderr.contains("s3cret"), "{args:?}: {stderr}");
        if args != ["tail"] && args != ["--insecure-tls", "tail"] {
            assert!(stderr.contains("--insecure-tls"), "{args:?}: {stderr}");
        }
    }
    // With the flag the URL is used: nothing listens on port 1, so Redis is unreachable.
    let output = run(&["--insecure-tls", "publish", "broadcast", "--message", "m"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
}

#[test]
fn unreachable_redis_exits_3_and_never_shows_the_password() {
    let mut server = RedisServer::start_with_password(Some("s3cret"));
    server.kill();

    let output =
        tidings(&server, &["publish", "broadcast", "--message", "x", "--timeout", "300ms"]);

    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
    assert!(!stderr.contains("s3cret") && stderr.contains(":***@"), "{stderr}");
}

/// A running `tidings tail`, its output read line by line.
struct Tail {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Tail {
    fn start(server: &RedisServer, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .arg("tail")
            .args(args)
            .env("TIDINGS_REDIS_URL", server.url())
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tidings tail");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        let tail = Tail { child, stdout, stderr };
        tail.wait_for_stderr("watching");
        tail
    }

    fn next_line(&self) -> String {
        self.stdout.recv_timeout(WAIT).expect("a line from tail within 10 s")
    }

    fn next_json(&self) -> Value {
        serde_json::from_str(&self.next_line()).unwrap()
    }

    fn wait_for_stderr(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("tail never said {needle:?} on stderr"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Ctrl-C, as a person would press it; returns whether it exited cleanly.
    fn interrupt(mut self) -> bool {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "tail did not exit after Ctrl-C");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn tail_json_shows_the_protocol_example_typed_and_not_json_as_malformed_and_keeps_running() {
    let server = RedisServer::start();
    let tail = Tail::start(&server, &["--json"]);

    server.publish("ws:inventory", EXAMPLE);
    server.publish("ws:inventory", "not json");
    server.publish("ws:inventory", r#"{"type":"adjust","productId":"123","quantity":10}"#);
    server.publish("ws:orders", r#"{"type":"order:status"}"#);

    let typed = tail.next_json();
    assert_eq!(typed["channel"], "ws:inventory");
    assert_eq!(typed["outcome"], "typed");
    assert_eq!(typed["kind"], "inventory:change");
    assert_eq!(typed["event"], serde_json::from_str::<Value>(EXAMPLE).unwrap());
    let malformed = tail.next_json();
    assert_eq!(malformed["outcome"], "malformed");
    assert_eq!(malformed["channel"], "ws:inventory");
    assert!(malformed["reason"].as_str().unwrap().starts_with("not JSON"), "{malformed}");
    assert_eq!(malformed["payload"], "not json");
    let legacy = tail.next_json();
    assert_eq!(
        (legacy["outcome"].as_str(), legacy["raw"]["quantity"].as_i64()),
        (Some("legacy"), Some(10))
    );
    let missing = tail.next_json();
    assert_eq!(missing["channel"], "ws:orders");
    assert!(missing["reason"].as_str().unwrap().contains("missing field"), "{missing}");

    assert!(tail.interrupt(), "Ctrl-C should exit with success");
}

#[test]
fn tail_shows_one_readable_line_per_event_without_colour_when_piped() {
    let server = RedisServer::start();
    let tail = Tail::start(&server, &[]);
    let named =
        EXAMPLE.replace(r#""productId":"123""#, r#""productId":"123","productName":"螺丝刀""#);

    server.publish("ws:inventory", &named);
    server.publish("ws:inventory", "not json");

    let line = tail.next_line();
    assert!(line.contains("ws:inventory") && line.contains("inventory:change"), "{line}");
    assert!(line.contains("螺丝刀 (123) adjust 10 → 15 (+5)"), "{line}");
    assert!(!line.contains('\x1b'), "no colour on a pipe: {line:?}");
    let line = tail.next_line();
    assert!(line.contains("MALFORMED") && line.contains("not JSON"), "{line}");
}

#[test]
fn tail_watches_only_the_channels_it_is_given() {
    let server = RedisServer::start();
    let tail = Tail::start(&server, &["--json", "orders", "user:*"]);

    server.publish("ws:inventory", EXAMPLE);
    server.publish("ws:user:u1:notifications", "{}");
    server.publish("ws:orders", "{}");

    assert_eq!(tail.next_json()["channel"], "ws:user:u1:notifications");
    assert_eq!(tail.next_json()["channel"], "ws:orders");
}

#[test]
fn tail_refuses_an_unknown_channel_with_exit_2() {
    let server = RedisServer::start();

    let output = tidings(&server, &["tail", "stock"]);

    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unknown channel \"stock\""));
}

#[test]
fn tail_survives_a_redis_restart() {
    let mut server = RedisServer::start();
    let tail = Tail::start(&server, &["--json"]);

    server.kill();
    let notice = tail.wait_for_stderr("reconnecting");
    assert!(notice.contains("lost Redis"), "{notice}");
    server.restart();
    tail.wait_for_stderr("reconnected");
    server.publish("ws:inventory", EXAMPLE);

    assert_eq!(tail.next_json()["outcome"], "typed");
}

/// Runs the demo and returns what a subscriber saw, timestamps removed.
fn demo_messages(server: &RedisServer, seed: &str) -> Vec<(String, Value)> {
    let listener = Listener::start(server);
    let output =
        tidings(server, &["demo", "--seed", seed, "--count", "60", "--rate", "2000", "--chaos"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let summary = text(&output.stdout);
    // "demo: 60 events (63 messages) in …"
    let messages: usize = summary
        .split_once(" events (")
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(count, _)| count.parse().ok())
        .unwrap_or_else(|| panic!("no message count in {summary}"));
    (0..messages)
        .map(|_| {
            let (channel, mut value) = listener.next();
            if let Some(object) = value.as_object_mut() {
                object.remove("timestamp");
                object.remove("scheduledTime");
            }
            (channel, value)
        })
        .collect()
}

#[test]
fn demo_with_the_same_seed_publishes_the_same_events() {
    let server = RedisServer::start();

    let first = demo_messages(&server, "42");
    let second = demo_messages(&server, "42");
    let other = demo_messages(&server, "43");

    assert!(first.len() >= 60);
    assert_eq!(first, second);
    assert_ne!(first, other);
}

#[test]
fn demo_prints_a_summary_of_what_it_published() {
    let server = RedisServer::start();

    let output = tidings(&server, &["demo", "--seed", "3", "--count", "20", "--rate", "1000"]);

    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("demo: 20 events"), "{stdout}");
    let per_kind: u64 = stdout
        .lines()
        .filter(|line| line.starts_with("  ") && !line.contains("published"))
        .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert_eq!(per_kind, 20, "each event is counted once under its kind: {stdout}");
    assert!(stdout.contains("failed 0"), "{stdout}");
    assert!(text(&output.stderr).contains("seed 3"), "the seed is shown so a run can be repeated");
}

#[test]
fn demo_stops_after_its_duration() {
    let server = RedisServer::start();
    let started = Instant::now();

    let output = tidings(&server, &["demo", "--duration", "500ms", "--rate", "20"]);

    assert!(output.status.success());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(text(&output.stdout).contains("events"));
}

#[test]
fn record_keeps_every_plain_publish_in_history_holds_the_duty_and_gives_it_back_on_ctrl_c() {
    let server = RedisServer::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("record")
        .env("TIDINGS_REDIS_URL", server.url())
        .env_remove("TIDINGS_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tidings record");
    let stderr = lines(child.stderr.take().unwrap());
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stderr.recv_timeout(left).expect("record says it is recording");
        if line.contains("recording every ws:* event") {
            break;
        }
    }
    eventually_blocking("record to take the recording duty", WAIT, || {
        server.recording_duty_holder().is_some()
    });
    for n in 0..3 {
        server.publish("ws:orders", &format!(r#"{{"type":"test:seq","n":{n}}}"#));
    }
    eventually_blocking("the plain publishes to be recorded", WAIT, || {
        server.cli(&["XLEN", "tidings:history:{ws:orders}"]) == "3"
    });
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(server.recording_duty_holder(), None, "the duty was given back");
}

#[test]
fn record_warns_at_start_when_redis_may_evict_history_keys() {
    let server = RedisServer::start();
    server.cli(&["CONFIG", "SET", "maxmemory", "1gb"]);
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("record")
        .env("TIDINGS_REDIS_URL", server.url())
        .env_remove("TIDINGS_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tidings record");
    let stderr = lines(child.stderr.take().unwrap());
    let deadline = Instant::now() + WAIT;
    let warning = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stderr.recv_timeout(left).expect("record warns about eviction");
        if line.contains("evicts history keys") {
            break line;
        }
    };
    assert!(warning.starts_with("warning:") && warning.contains("allkeys-lru"), "{warning}");
    assert!(warning.contains("maxmemory-policy noeviction"), "says what to do: {warning}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn record_with_an_unusable_redis_url_exits_2_saying_why() {
    let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["--redis", "http://:secret@host", "record"])
        .env_remove("TIDINGS_REDIS_URL")
        .output()
        .expect("run tidings record");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("not usable") && !stderr.contains("secret"), "{stderr}");
}
