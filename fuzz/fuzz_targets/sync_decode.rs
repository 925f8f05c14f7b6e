#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for framed in syncproto::frames(data).flatten() {
        if framed.header.is_data() {
            let _ = syncproto::ct::decode_state(framed.bytes);
            let _ = syncproto::exp::decode_expect(framed.bytes);
        }
        let _ = syncproto::Control::decode(&framed.header, framed.bytes);
    }
});
