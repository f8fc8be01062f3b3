//! Fuzz target: the Redis source's RESP reader on arbitrary bytes, as a
//! broken or hostile server (or a proxy in between) could send them. It must
//! never panic or wait on bytes already there, and an error must say what
//! went wrong (the source reconnects and reports it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let (_read, error) = tidings::fuzzing::read_replies(bytes, 64);
    if let Some(error) = error {
        assert!(!error.is_empty());
    }
});
