//! Bakes in the git commit the results record. (The core links no runtime;
//! each runtime's crate bakes in where its library lies.)

fn main() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SPEEDBENCH_GIT_COMMIT={commit}");
    // where git keeps HEAD (a worktree or a submodule keeps it elsewhere
    // than .git/): a path that does not exist would rebuild every time
    for what in ["HEAD", "refs/heads"] {
        if let Some(p) = git(&["rev-parse", "--git-path", what]) {
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
}
