#![no_main]
// nfnetlink_queue packets and cthelper stubs: nfq::frame, nfq::queue,
// nfq::cthelper. Whatever the bytes, decoding ends without a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nfq::fuzz_decode(data);
});
