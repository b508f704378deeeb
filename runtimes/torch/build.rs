//! Bakes in where ci/setup.sh put libtorch (an rpath, so the worker finds it
//! with no LD_LIBRARY_PATH) and compiles the libtorch shim src/shim.cpp.

include!("../rpath.rs");

fn main() {
    rpath();
    torch_shim();
}

/// Compiles the C++ shim against the headers of the libtorch that torch-sys
/// links (it passes its lib folder on as DEP_TCH_LIBTORCH_LIB).
fn torch_shim() {
    const SHIM: &str = "src/shim.cpp";
    println!("cargo:rerun-if-changed={SHIM}");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); run ci/setup.sh");
    };
    let root = std::path::Path::new(&lib)
        .parent()
        .unwrap_or_else(|| panic!("DEP_TCH_LIBTORCH_LIB={lib} has no parent folder"));
    println!("cargo:rerun-if-changed=src/guarded.h");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    torch_cc(root, &abi)
        .file(SHIM)
        .compile("speedbench_torch_shim");
    cuda_graph_shim(root, &abi);
}

/// A C++ build against the headers of the libtorch in `root`.
fn torch_cc(root: &std::path::Path, abi: &str) -> cc::Build {
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .std("c++17")
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi)
        .define("GLOG_USE_GLOG_EXPORT", None);
    build
}

/// Builds src/cuda_graph.cpp into a shared library of its
/// own, linked to libtorch_cuda, where this libtorch has CUDA (its
/// libtorch_cuda.so and CUDA's runtime headers, from the nvidia wheels
/// beside it or CUDA_HOME); `SPEEDBENCH_CUDA_GRAPH_LIB` names it for the
/// binary, which opens it only for `--optimize cuda-graph`. Without CUDA the
/// binary builds without it and says so when asked for a graph.
fn cuda_graph_shim(root: &std::path::Path, abi: &str) {
    const SRC: &str = "src/cuda_graph.cpp";
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let lib = root.join("lib");
    let mut cuda_includes: Vec<std::path::PathBuf> = Vec::new();
    if let Some(site) = root.parent() {
        if let Ok(dirs) = std::fs::read_dir(site.join("nvidia")) {
            let mut dirs: Vec<_> = dirs.flatten().map(|d| d.path().join("include")).collect();
            dirs.sort();
            cuda_includes.extend(dirs);
        }
    }
    if let Ok(home) = std::env::var("CUDA_HOME") {
        cuda_includes.push(std::path::Path::new(&home).join("include"));
    }
    // headers installed later (ci/setup.sh) build the library then
    for d in cuda_includes.iter().filter(|d| d.is_dir()) {
        println!("cargo:rerun-if-changed={}", d.display());
    }
    let has = |dir: &std::path::Path, file: &str| dir.join(file).is_file();
    let found = cuda_includes.iter().any(|d| has(d, "cuda_runtime_api.h"))
        && cuda_includes.iter().any(|d| has(d, "crt/host_config.h"));
    if !found || !has(&lib, "libtorch_cuda.so") {
        println!("cargo:warning=no CUDA headers or libtorch_cuda.so beside {}: built without CUDA-graph support", root.display());
        return;
    }
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out = out_dir.join("libspeedbench_cuda_graph.so");
    let mut build = torch_cc(root, abi);
    for d in cuda_includes.iter().filter(|d| d.is_dir()) {
        build.include(d);
    }
    let mut cmd = build.get_compiler().to_command();
    cmd.arg("-shared")
        .arg(SRC)
        .arg("-o")
        .arg(&out)
        .arg(format!("-L{}", lib.display()))
        .args(["-ltorch_cuda", "-lc10_cuda", "-ltorch_cpu", "-lc10"])
        .arg(format!("-Wl,-rpath,{}", lib.display()));
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running the C++ compiler for {SRC}: {e}"));
    if !status.success() {
        panic!("compiling {SRC} failed ({status}): {cmd:?}");
    }
    println!(
        "cargo:rustc-env=SPEEDBENCH_CUDA_GRAPH_LIB={}",
        out.display()
    );
}
