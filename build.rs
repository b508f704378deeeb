//! Bakes in where ci/setup.sh put the runtime libraries (an rpath, so the
//! binary finds them with no LD_LIBRARY_PATH) and the git commit; with the
//! `torch` feature, compiles the libtorch shim src/frameworks/torch/shim.cpp.

fn main() {
    println!("cargo:rerun-if-env-changed=SPEEDBENCH_RPATH");
    println!("cargo:rerun-if-env-changed=SPEEDBENCH_ORT_LIB");
    if let Ok(rpath) = std::env::var("SPEEDBENCH_RPATH") {
        for dir in rpath.split(':').filter(|d| !d.is_empty()) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
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
    #[cfg(feature = "torch")]
    torch_shim();
}

/// Compiles the C++ shim against the headers of the libtorch that torch-sys
/// links (it passes its lib folder on as DEP_TCH_LIBTORCH_LIB).
#[cfg(feature = "torch")]
fn torch_shim() {
    const SHIM: &str = "src/frameworks/torch/shim.cpp";
    println!("cargo:rerun-if-changed={SHIM}");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); run ci/setup.sh");
    };
    let root = std::path::Path::new(&lib)
        .parent()
        .unwrap_or_else(|| panic!("DEP_TCH_LIBTORCH_LIB={lib} has no parent folder"));
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++17")
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .define("GLOG_USE_GLOG_EXPORT", None)
        .file(SHIM)
        .compile("speedbench_torch_shim");
}
