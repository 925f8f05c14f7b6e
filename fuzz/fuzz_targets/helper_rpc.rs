#![no_main]
// The rpc helper over the payloads of one flow: cthelpers::fuzzing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cthelpers::fuzzing::helper_flow(cthelpers::HelperKind::Rpc, data);
});
