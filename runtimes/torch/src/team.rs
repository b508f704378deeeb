//! libtorch's own intra-op threads as the lanes of a parallel stage.
//!
//! A libtorch built with OpenMP runs each operation on the calling thread's
//! OpenMP team. Between operations the team's other threads spin for a
//! while (libgomp's default wait policy), so lanes on threads of their own
//! competed with them for the cores: on a 2-core machine the second lane of
//! a stage often started only when the first had finished. Here a stage
//! runs *on* that team instead: one OpenMP parallel region
//! (`GOMP_parallel` of the libgomp libtorch loaded), thread `t` running
//! lane `t`. Inside the region libtorch and oneDNN do not nest, so every
//! operation of a lane runs on its one thread, and the spinning threads
//! pick the lanes up at once.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

use libloading::os::unix::{Library, Symbol};

type Parallel = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, c_uint, c_uint);
type ThreadNum = unsafe extern "C" fn() -> c_int;

/// The libgomp this process runs libtorch's operations on.
struct Omp {
    parallel: Symbol<Parallel>,
    thread_num: Symbol<ThreadNum>,
    _lib: Library,
}

/// The libgomp mapped into this process (libtorch's, whatever its file is
/// named: wheels bundle it as `libgomp.so.1` or `libgomp-<hash>.so.1`), or
/// None where libtorch runs without OpenMP.
fn omp() -> Option<&'static Omp> {
    static OMP: OnceLock<Option<Omp>> = OnceLock::new();
    OMP.get_or_init(|| {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let path = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| {
                std::path::Path::new(p)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libgomp") && n.contains(".so"))
            })?
            .to_string();
        use libloading::os::unix::RTLD_NOW;
        // <dlfcn.h> on Linux (libloading does not export it)
        const RTLD_NOLOAD: c_int = 0x4;
        // SAFETY: the library is already loaded (RTLD_NOLOAD): this only
        // takes a reference to it, no initialiser runs.
        let lib = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_NOLOAD) }.ok()?;
        // SAFETY: libgomp's documented ABI for these two entry points.
        let parallel = unsafe { lib.get::<Parallel>(b"GOMP_parallel\0") }.ok()?;
        // SAFETY: as above.
        let thread_num = unsafe { lib.get::<ThreadNum>(b"omp_get_thread_num\0") }.ok()?;
        Some(Omp {
            parallel,
            thread_num,
            _lib: lib,
        })
    })
    .as_ref()
}

/// Whether stages can run on libtorch's OpenMP team (libtorch is loaded
/// and runs on libgomp).
pub(super) fn available() -> bool {
    omp().is_some()
}

/// The work of one region: what each thread calls with its number.
type Work<'a> = &'a (dyn Fn(usize) + Sync);

extern "C" fn on_thread(data: *mut c_void) {
    // SAFETY: `data` is the `&Work` that `run` passed, alive until
    // GOMP_parallel returns (it returns after every thread has finished).
    let work = unsafe { &*(data as *const Work) };
    let Some(omp) = omp() else { return };
    // SAFETY: called inside the parallel region, as OpenMP requires.
    let t = unsafe { (omp.thread_num)() };
    // a panic must not unwind into C; `work` reports its own failures
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        work(usize::try_from(t).unwrap_or(0))
    }));
}

/// Runs `work(t)` on every thread `t` of the calling thread's OpenMP team
/// (as many threads as its intra-op setting; the calling thread is 0), and
/// returns when all have finished. False, without running anything, where
/// there is no libgomp.
pub(super) fn run(work: Work) -> bool {
    let Some(omp) = omp() else { return false };
    let data = &work as *const Work as *mut c_void;
    // SAFETY: `on_thread` reads `data` only while this call runs; 0 threads
    // is the team size the calling thread's settings give, flags 0 the
    // default.
    unsafe { (omp.parallel)(on_thread, data, 0, 0) };
    true
}
