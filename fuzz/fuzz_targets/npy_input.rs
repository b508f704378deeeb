#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = speedbench::io::parse_input(data, std::path::Path::new("x.npy"), None);
});
