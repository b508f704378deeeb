// Included by the build scripts of the runtimes that link their library:
// SPEEDBENCH_RPATH (written by ci/setup.sh into .cargo/config.toml) becomes
// the worker binary's rpath.

fn rpath() {
    println!("cargo:rerun-if-env-changed=SPEEDBENCH_RPATH");
    if let Ok(rpath) = std::env::var("SPEEDBENCH_RPATH") {
        for dir in rpath.split(':').filter(|d| !d.is_empty()) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
}
