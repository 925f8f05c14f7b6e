#![no_main]
//! The metrics endpoint's HTTP request parser
//! (`conntrackd_core::fuzzing::metrics_request`, replayed by the tests).
libfuzzer_sys::fuzz_target!(|data: &[u8]| conntrackd_core::fuzzing::metrics_request(data));
