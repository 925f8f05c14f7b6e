#![no_main]
//! The TCP stream splitter (`syncproto::stream::fuzz_split`, replayed by
//! the tests).
libfuzzer_sys::fuzz_target!(|data: &[u8]| syncproto::stream::fuzz_split(data));
