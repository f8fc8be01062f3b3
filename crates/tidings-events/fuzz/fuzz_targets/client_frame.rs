//! Fuzz target: `parse_client_frame` on arbitrary text, as any WebSocket
//! client could send it to the gateway. It must never panic, and what it
//! says must hold together: an accepted frame serialises back to JSON that
//! parses to the same frame, and a refusal always carries a readable message
//! (the gateway sends it to the client in an `error` frame).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_events::frame::{ErrorCode, parse_client_frame};

fuzz_target!(|bytes: &[u8]| {
    // WebSocket text frames are UTF-8; tungstenite rejects anything else
    // before the gateway sees it.
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    match parse_client_frame(text) {
        Ok(frame) => {
            let json = serde_json::to_string(&frame).expect("a parsed frame serialises");
            assert_eq!(parse_client_frame(&json), Ok(frame), "round trip of {json}");
        }
        Err(error) => {
            assert_eq!(error.code, ErrorCode::BadRequest);
            assert!(!error.message.is_empty());
        }
    }
});
