#![no_main]
//! A model spec and a structure file, then the graph built from them.
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // the first line is a structure JSON, the rest a model spec
    let (structure, spec) = text.split_once('\n').unwrap_or((text, ""));
    let _ = speedbench::zoo::spec::parse_structure(structure, Path::new("s.json"), &[1, 1, 1, 1], 4);
    if let Ok(s) = speedbench::zoo::ModelSpec::parse(spec, Path::new("models/m.toml")) {
        for size in [32, 64, 224] {
            let _ = speedbench::zoo::build(&s, size);
        }
    }
});
