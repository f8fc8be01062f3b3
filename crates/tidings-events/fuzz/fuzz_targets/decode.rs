//! Fuzz target: `tidings_events::decode` on arbitrary bytes, as Redis could
//! deliver them. It must never panic, and what it says must hold together:
//! a typed event re-encodes to JSON that decodes as the same kind, and a
//! malformed result always carries a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_events::{Decoded, EventKind, decode};

fuzz_target!(|payload: &[u8]| {
    match decode(payload) {
        Decoded::Typed { event, .. } => {
            let again = decode(event.to_json().as_bytes());
            assert_eq!(again.event().map(|e| e.kind()), Some(event.kind()));
        }
        Decoded::Legacy { raw } => {
            let kind = raw.get("type").and_then(|kind| kind.as_str());
            assert!(kind.and_then(EventKind::from_wire).is_none(), "legacy hides {kind:?}");
        }
        Decoded::Malformed(malformed) => assert!(!malformed.reason.is_empty()),
    }
});
