#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for message in ctnl::messages(data) {
        let _ = message;
    }
});
