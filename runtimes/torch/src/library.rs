//! The libtorch in use: its version, its folder, loading its CUDA library,
//! the per-thread intra-op thread count, and the CUDA allocator's figures.

use std::ffi::{c_char, CStr};
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use tch::{Device as TchDevice, Tensor};

use super::ffi::{self, check};
use speedbench::frameworks::{cuda_present, require_cuda, DeviceMemory};

/// The libtorch version compiled into the loaded `libtorch_cpu.so`.
pub(super) fn loaded_version() -> Result<String> {
    let mut config: *const c_char = std::ptr::null();
    // SAFETY: the shim writes a pointer to a static string on success.
    check("show_config", unsafe { ffi::sb_torch_config(&mut config) })?;
    // SAFETY: set to a valid static C string by the successful call above.
    let config = unsafe { CStr::from_ptr(config) }.to_string_lossy();
    config
        .split(|c: char| c == ',' || c.is_whitespace())
        .find_map(|w| w.strip_prefix("TORCH_VERSION="))
        .map(str::to_string)
        .context("libtorch's build configuration names no TORCH_VERSION")
}

/// The folder of the `libtorch_cpu.so` this process runs on.
fn libtorch_dir() -> Result<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").context("reading /proc/self/maps")?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| std::path::Path::new(p).parent().map(PathBuf::from))
        .context("libtorch_cpu.so is not loaded in this process")
}

/// Loads `libtorch_cuda.so` once per process (kept loaded) where an NVIDIA
/// driver is present. This must come before the first libtorch call: libtorch
/// looks its CUDA support up once (even `show_config` does) and keeps the
/// answer, so every entry point of this module calls it first.
pub(super) fn load_cuda() -> Result<(), &'static str> {
    static CUDA: OnceLock<Result<libloading::os::unix::Library, String>> = OnceLock::new();
    CUDA.get_or_init(|| {
        if !cuda_present() {
            return Err("no NVIDIA driver".into());
        }
        let path = libtorch_dir()
            .map_err(|e| format!("{e:#}"))?
            .join("libtorch_cuda.so");
        use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
        // SAFETY: loading libtorch's own CUDA library runs its static
        // initialisers, which register CUDA with the libtorch already loaded.
        unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_GLOBAL) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))
    })
    .as_ref()
    .map(|_| ())
    .map_err(String::as_str)
}

/// `libtorch_cuda.so` of the libtorch in use, loaded globally for the
/// rest of the process; the site-packages it lives in.
pub(super) fn load_cuda_library() -> Result<PathBuf> {
    let dir = libtorch_dir()?;
    let path = dir.join("libtorch_cuda.so");
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: libtorch's own CUDA library; its initialisers register CUDA
    // with the libtorch already loaded.
    let lib = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_GLOBAL) }
        .with_context(|| format!("loading {}", path.display()))?;
    std::mem::forget(lib);
    // <site-packages>/torch/lib
    dir.parent()
        .and_then(|t| t.parent())
        .map(PathBuf::from)
        .context("libtorch is not inside a site-packages")
}

/// Checks that libtorch sees a GPU, and turns TF32 off (plain float32
/// until [`use_tf32`] says otherwise).
pub(super) fn check_cuda() -> Result<()> {
    require_cuda("torch")?;
    load_cuda().map_err(|e| anyhow!("--device cuda: {e}"))?;
    if !tch::Cuda::is_available() {
        bail!("--device cuda: libtorch_cuda.so is loaded but libtorch sees no CUDA device");
    }
    use_tf32(false)
}

/// TF32 tensor-core products in cuBLAS and cuDNN on or off, for the whole
/// process (a worker runs one cell, so one precision).
pub(super) fn use_tf32(allow: bool) -> Result<()> {
    // SAFETY: plain setter calls on libtorch's global context.
    check("setting TF32", unsafe {
        ffi::sb_cuda_tf32(i32::from(allow))
    })
}

/// Makes the calling thread's libtorch operations use `n` intra-op threads.
/// The setting is per thread (OpenMP), but `set_num_threads` also clears
/// oneDNN's caches, so it is called only when the value changes.
/// The intra-op threads libtorch runs with on the calling thread.
pub(super) fn intra_threads() -> usize {
    usize::try_from(tch::get_num_threads()).map_or(1, |n| n.max(1))
}

pub(super) fn use_intra_threads(n: usize) {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    if tch::get_num_threads() != n {
        tch::set_num_threads(n);
    }
}

/// The CUDA caching allocator's figures for device 0. The allocator has no
/// statistics before its first allocation: one tiny tensor starts it (and is
/// freed at once, so it adds nothing to `current`).
pub(super) fn cuda_memory() -> Result<DeviceMemory> {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let _ = Tensor::f_zeros([1], (tch::Kind::Float, TchDevice::Cuda(0)));
    });
    let (mut current, mut peak) = (0i64, 0i64);
    // SAFETY: two out-pointers to live integers.
    check("reading CUDA memory statistics", unsafe {
        ffi::sb_cuda_memory(0, &mut current, &mut peak)
    })?;
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    Ok(DeviceMemory {
        current_mib: mib(current),
        peak_mib: mib(peak),
    })
}
