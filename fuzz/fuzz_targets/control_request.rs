#![no_main]
//! The control-socket request parser: never a panic, and only the codes of
//! the 1.4.7 table are accepted.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(code) = conntrackd_core::request::parse_request(data) {
        assert!(conntrackd_core::request::KNOWN_CODES.contains(&code));
        assert_eq!(data.len(), 4);
    }
});
