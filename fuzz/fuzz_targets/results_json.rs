#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(f) = speedbench::record::RunFile::parse(text, std::path::Path::new("r.json")) {
            // what report and compare do with a file that parsed
            let _ = speedbench::report::grids(&f.cells, true);
            let _ = speedbench::compare::compare(&f.cells, &f.cells, 0.05);
        }
    }
});
