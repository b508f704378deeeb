//! `--optimize cuda-graph` for libtorch: one pass captured as a CUDA graph
//! and replayed. The capture is libtorch's own `at::cuda::CUDAGraph`, behind
//! the C interface of `cuda_graph.cpp`, a shared library of its own that
//! build.rs links to libtorch_cuda (see there); it is opened on first use,
//! after libtorch's CUDA library.

use std::ffi::{c_char, c_void};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

use super::ffi::check;

type NewFn = unsafe extern "C" fn(*mut *mut c_void) -> *const c_char;
type GraphFn = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type FreeFn = unsafe extern "C" fn(*mut c_void);

/// The shim library's entry points.
struct Api {
    new: NewFn,
    free: FreeFn,
    begin: GraphFn,
    end: GraphFn,
    replay: GraphFn,
}

/// Where build.rs put the shim library, if it built one.
pub(super) fn library_path() -> Option<&'static str> {
    option_env!("SPEEDBENCH_CUDA_GRAPH_LIB")
}

/// Opens the shim library once per process.
fn api() -> Result<&'static Api> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        let Some(path) = library_path() else {
            return Err("this speedbench was built without libtorch's CUDA-graph shim (its libtorch has no libtorch_cuda.so or no CUDA headers beside it; run ci/setup.sh and rebuild)".into());
        };
        // SAFETY: speedbench's own shim, linked to the libtorch in use; its
        // initialisers are libtorch_cuda's, which register CUDA with it.
        let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }
            .map_err(|e| format!("cannot load {path}: {e}"))?;
        // SAFETY: the symbols have these C signatures in cuda_graph.cpp.
        let api = unsafe {
            let sym = |name: &[u8]| {
                lib.get::<*const c_void>(name)
                    .map(|s| *s)
                    .map_err(|e| format!("{path}: {e}"))
            };
            Api {
                new: std::mem::transmute::<*const c_void, NewFn>(sym(b"sbg_graph_new\0")?),
                free: std::mem::transmute::<*const c_void, FreeFn>(sym(b"sbg_graph_free\0")?),
                begin: std::mem::transmute::<*const c_void, GraphFn>(sym(b"sbg_capture_begin\0")?),
                end: std::mem::transmute::<*const c_void, GraphFn>(sym(b"sbg_capture_end\0")?),
                replay: std::mem::transmute::<*const c_void, GraphFn>(sym(b"sbg_replay\0")?),
            }
        };
        // kept for the life of the process: the graphs live in it
        std::mem::forget(lib);
        Ok(api)
    })
    .as_ref()
    .map_err(|e| anyhow!("--optimize cuda-graph: {e}"))
}

/// One CUDA graph: captured once, replayed on every timed pass.
pub(super) struct CudaGraph(*mut c_void);

impl CudaGraph {
    /// An empty graph; fails with libtorch's own error where CUDA is not
    /// usable (no GPU, no driver).
    pub(super) fn new() -> Result<CudaGraph> {
        let api = api()?;
        let mut g = std::ptr::null_mut();
        // SAFETY: the shim writes a new graph on success.
        check("creating a CUDA graph", unsafe { (api.new)(&mut g) })?;
        Ok(CudaGraph(g))
    }

    /// Captures the work `pass` queues on the calling thread's current
    /// stream (not the default stream), and on the streams it forks off
    /// that one and joins back; the capture ends even if `pass` fails.
    pub(super) fn capture<T>(&mut self, pass: impl FnOnce() -> Result<T>) -> Result<T> {
        let api = api()?;
        // SAFETY: a live graph.
        check("beginning a CUDA-graph capture", unsafe {
            (api.begin)(self.0)
        })?;
        let out = pass();
        // SAFETY: a live graph whose capture began above.
        let ended = check("ending a CUDA-graph capture", unsafe { (api.end)(self.0) });
        let out = out?;
        ended?;
        Ok(out)
    }

    /// Launches the captured work on the current stream.
    pub(super) fn replay(&self) -> Result<()> {
        let api = api()?;
        // SAFETY: a live, captured graph.
        check("replaying a CUDA graph", unsafe { (api.replay)(self.0) })
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        if let Ok(api) = api() {
            // SAFETY: made by `new`, freed once.
            unsafe { (api.free)(self.0) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a GPU: the shim library was built (this libtorch has CUDA
    /// headers), it loads with its entry points, and creating a graph fails
    /// with CUDA's own error instead of crashing.
    #[test]
    fn the_shim_loads_and_refuses_to_graph_without_a_gpu() {
        let _ = super::super::library::load_cuda();
        assert!(
            library_path().is_some(),
            "build.rs built no CUDA-graph shim"
        );
        api().expect("the CUDA-graph shim loads");
        if speedbench::frameworks::cuda_present() {
            return;
        }
        let err = CudaGraph::new().err().expect("no GPU: no graph");
        let msg = format!("{err:#}");
        assert!(msg.starts_with("libtorch creating a CUDA graph:"), "{msg}");
    }
}
