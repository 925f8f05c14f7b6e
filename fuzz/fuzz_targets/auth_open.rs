#![no_main]
//! The envelope opener and the handshake state behind it
//! (`conntrackd_core::fuzzing::auth_open`, replayed by the tests).
libfuzzer_sys::fuzz_target!(|data: &[u8]| conntrackd_core::fuzzing::auth_open(data));
