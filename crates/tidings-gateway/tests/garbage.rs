//! Arbitrary client input (proptest): the frame parser never panics, and a
//! real gateway answers every arbitrary text frame with one well-formed
//! frame while keeping the connection open. Complements the `client_frame`
//! cargo-fuzz target in crates/tidings-events/fuzz.

mod common;

use common::{TestGateway, config};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;
use tidings_events::frame::{ErrorCode, parse_client_frame};
use tidings_testkit::RedisServer;

/// Text that is sometimes a frame, sometimes nearly one, often garbage.
fn client_text() -> impl Strategy<Value = String> {
    let channel = prop_oneof![
        Just("inventory".to_owned()),
        Just("user:u1:notifications".to_owned()),
        "[a-z:*?\\[ ]{0,12}",
        any::<String>(),
    ];
    let frame = (
        prop_oneof![
            Just("subscribe".to_owned()),
            Just("unsubscribe".to_owned()),
            Just("ping".to_owned()),
            Just("pong".to_owned()),
            "[a-z]{0,8}",
        ],
        proptest::collection::vec(channel, 0..4),
    )
        .prop_map(|(kind, channels)| json!({"type": kind, "channels": channels}).to_string());
    prop_oneof![any::<String>(), frame, "[\\[\\]{}\":,a-z0-9 ]{0,40}"]
}

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(error) = parse_client_frame(&text) {
            prop_assert_eq!(error.code, ErrorCode::BadRequest);
            prop_assert!(!error.message.is_empty());
        }
    }

    #[test]
    fn parsing_arbitrary_frames_never_panics(text in client_text()) {
        if let Err(error) = parse_client_frame(&text) {
            prop_assert!(!error.message.is_empty());
        }
    }
}

#[tokio::test]
async fn the_gateway_answers_every_arbitrary_text_frame_and_stays_open() {
    let redis = RedisServer::start();
    let gateway = TestGateway::start(config(&redis.url())).await;
    let mut client = gateway.client().await;
    let mut runner = TestRunner::deterministic();
    let strategy = client_text();

    for _ in 0..300 {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        client.send_text(&text).await;
        // Each frame gets at least one answer; a subscribe may add an error
        // per refused channel before its `subscribed`. A ping closes the
        // round so answers cannot be confused between frames.
        client.send_json(json!({"type":"ping"})).await;
        let mut answers = Vec::new();
        loop {
            let frame = client.next().await;
            if frame["type"] == "pong" {
                break;
            }
            let kind = frame["type"].as_str().unwrap_or_default().to_owned();
            assert!(
                ["error", "subscribed", "unsubscribed"].contains(&kind.as_str()),
                "{text:?} → {frame}"
            );
            answers.push(frame);
        }
        let pinged =
            parse_client_frame(&text).is_ok_and(|f| f == tidings_events::frame::ClientFrame::Ping);
        if pinged {
            // Its own pong was the first one; the round's pong is next.
            client.next_of("pong").await;
        } else {
            assert!(!answers.is_empty(), "{text:?} got no answer");
        }
    }
}
