#![no_main]
//! Whole datagrams into a sync core in each mode, with and without
//! authentication and with several peers (the body and its checks are
//! `conntrackd_core::fuzzing::sync_core`, which the tests replay).
libfuzzer_sys::fuzz_target!(|data: &[u8]| conntrackd_core::fuzzing::sync_core(data));
