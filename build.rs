//! Bakes in where ci/setup.sh put the runtime libraries (an rpath, so the
//! binary finds them with no LD_LIBRARY_PATH) and the git commit.

fn main() {
    println!("cargo:rerun-if-env-changed=SPEEDBENCH_RPATH");
    println!("cargo:rerun-if-env-changed=SPEEDBENCH_ORT_LIB");
    if let Ok(rpath) = std::env::var("SPEEDBENCH_RPATH") {
        for dir in rpath.split(':').filter(|d| !d.is_empty()) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SPEEDBENCH_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
