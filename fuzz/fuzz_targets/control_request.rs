#![no_main]
//! The control-socket request parser: never a panic, and only the codes of
//! the 1.4.7 table and our extensions are accepted, alone or with the JSON
//! flag.
use conntrackd_core::request::{EXTENSION_CODES, JSON_FLAG, KNOWN_CODES, parse_request};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(code) = parse_request(data) {
        let plain = code & !JSON_FLAG;
        assert!(KNOWN_CODES.contains(&plain) || EXTENSION_CODES.contains(&plain));
        assert!(code == plain || code == plain | JSON_FLAG);
        assert_eq!(data.len(), 4);
    }
});
