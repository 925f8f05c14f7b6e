#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for framed in syncproto::frames(data).flatten() {
        let _ = syncproto::Control::decode(&framed.header, framed.bytes);
    }
});
