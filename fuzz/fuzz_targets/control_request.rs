#![no_main]
//! The control-socket request parser: never a panic, and only the codes of
//! the request table (1.4.7's and our extensions) are accepted, alone or
//! with the JSON flag. The body is `conntrackd_core::fuzzing`'s, where the
//! tests replay the corpus.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    conntrackd_core::fuzzing::control_request(data);
});
