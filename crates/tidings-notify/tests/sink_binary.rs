//! The `notification-sink` binary as scripts and end-to-end tests use it:
//! started on a private bus, it answers like a daemon and writes each call to
//! its record file as one JSON line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use tidings_notify::sink::{BUS_NAME, INTERFACE, OBJECT_PATH, SinkRecord};
use tidings_notify::testing::PrivateSessionBus;
use zbus::OwnedVariant;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_sink_binary_records_each_notify_as_a_json_line() {
    let bus = PrivateSessionBus::start().expect("start a private dbus-daemon");
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("calls.jsonl");
    let mut sink = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_notification-sink"))
            .args(["--address", bus.address(), "--record"])
            .arg(&record)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start notification-sink"),
    );
    let mut ready = String::new();
    BufReader::new(sink.0.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("ready :"), "sink said {ready:?}");

    let id: u32 = zbus::block_on(async {
        let connection = zbus::connection::Builder::address(bus.address()).build().await.unwrap();
        let mut hints: HashMap<&str, OwnedVariant> = HashMap::new();
        hints.insert("urgency", OwnedVariant::from(2_u8));
        connection
            .call_method(
                Some(BUS_NAME),
                OBJECT_PATH,
                Some(INTERFACE),
                "Notify",
                &(
                    "erp",
                    0_u32,
                    "",
                    "Stock low",
                    "Widget: 3 left",
                    vec!["default", "Open"],
                    hints,
                    5000_i32,
                ),
            )
            .await
            .unwrap()
            .body()
            .deserialize()
            .unwrap()
    });

    // The sink wrote and flushed the line before it answered the call.
    let text = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line per call: {text}");
    let SinkRecord::Notify(call) = serde_json::from_str(lines[0]).unwrap() else {
        panic!("expected a Notify record: {}", lines[0]);
    };
    assert_eq!(call.id, id);
    assert_eq!(call.app_name, "erp");
    assert_eq!(call.summary, "Stock low");
    assert_eq!(call.body, "Widget: 3 left");
    assert_eq!(call.actions, ["default", "Open"]);
    assert_eq!(call.urgency, Some(2));
    assert_eq!(call.expire_timeout, 5000);
}
