//! Keeps TensorFlow's start-up log off the terminal unless `--verbose`.
//!
//! libtensorflow is linked at build time, so it loads and runs its static
//! initialisers before `main`, let alone `prepare`: it prints a oneDNN notice
//! then, whatever TF_CPP_MIN_LOG_LEVEL says, and it reads
//! TF_CPP_MIN_LOG_LEVEL once, at load, so setting the variable later from
//! inside the process changes nothing (both checked with TensorFlow 2.21).
//! Two hooks of the executable run before the libraries initialise instead
//! (ELF `.preinit_array`, only plain system calls, no Rust runtime):
//!
//! 1. TF_CPP_MIN_LOG_LEVEL unset: set it (2, errors only; 0 with `--verbose`)
//!    and re-execute `/proc/self/exe` with the same arguments, so TensorFlow
//!    reads it as it loads. Child processes (benchmark workers, `verify`'s
//!    infer runs) inherit it, so they follow the parent's `--verbose`.
//! 2. TF_CPP_MIN_LOG_LEVEL 1 or more: stderr points to /dev/null while the
//!    shared libraries initialise; an `.init_array` hook of the executable,
//!    which runs after theirs and before `main`, restores it.
//!
//! A level set by the user is never changed. When the re-execution fails
//! (no /proc), the program goes on, only noisier. The process keeps its id
//! across the re-execution, so a parent's handle on it stays valid. Whatever
//! the libraries print while muted is lost: `--verbose` shows it.

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicI32, Ordering};

const VAR: &[u8] = b"TF_CPP_MIN_LOG_LEVEL=";
const QUIET: &CStr = c"TF_CPP_MIN_LOG_LEVEL=2";
const LOUD: &CStr = c"TF_CPP_MIN_LOG_LEVEL=0";
/// Environments longer than this are left alone (no re-execution).
const MAX_ENV: usize = 4096;

extern "C" {
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char)
        -> c_int;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(from: c_int, to: c_int) -> c_int;
    fn close(fd: c_int) -> c_int;
}

const O_WRONLY: c_int = 1;
const O_CLOEXEC: c_int = 0o2_000_000;
const STDERR: c_int = 2;

/// The real stderr while it points to /dev/null, else -1.
static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);

type Hook = extern "C" fn(c_int, *const *const c_char, *const *const c_char);

#[used]
#[link_section = ".preinit_array"]
static BEFORE_LIBRARIES: Hook = before_libraries;

#[used]
#[link_section = ".init_array"]
static AFTER_LIBRARIES: Hook = after_libraries;

/// The entries of a NULL-terminated vector of C strings.
///
/// # Safety
/// `v` is NULL or a NULL-terminated vector of valid C strings.
unsafe fn entries<'a>(v: *const *const c_char) -> impl Iterator<Item = &'a CStr> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if v.is_null() {
            return None;
        }
        let p = *v.add(i);
        if p.is_null() {
            return None;
        }
        i += 1;
        Some(CStr::from_ptr(p))
    })
}

extern "C" fn before_libraries(
    _argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    // SAFETY: the loader passes the process's argument and environment
    // vectors: NULL-terminated, valid C strings, alive for the whole process.
    unsafe {
        let level = entries(envp).find_map(|e| e.to_bytes().strip_prefix(VAR));
        match level {
            None => {
                let verbose = entries(argv).any(|a| a.to_bytes() == b"--verbose");
                reexec(argv, envp, if verbose { LOUD } else { QUIET });
            }
            Some(l) if !l.is_empty() && l != b"0" => mute_stderr(),
            Some(_) => {}
        }
    }
}

/// Runs this executable again with `var` added to the environment; returns
/// only if that fails.
///
/// # Safety
/// As for [`before_libraries`].
unsafe fn reexec(argv: *const *const c_char, envp: *const *const c_char, var: &CStr) {
    let mut env = [std::ptr::null::<c_char>(); MAX_ENV];
    let mut n = 0;
    for e in entries(envp) {
        if n + 2 > MAX_ENV {
            return;
        }
        env[n] = e.as_ptr();
        n += 1;
    }
    env[n] = var.as_ptr();
    execve(c"/proc/self/exe".as_ptr(), argv, env.as_ptr());
}

/// Points stderr to /dev/null, keeping the real one in [`SAVED_STDERR`].
fn mute_stderr() {
    // SAFETY: plain file-descriptor system calls on descriptors we own.
    unsafe {
        let saved = dup(STDERR);
        if saved < 0 {
            return;
        }
        let null = open(c"/dev/null".as_ptr(), O_WRONLY | O_CLOEXEC);
        if null < 0 || dup2(null, STDERR) < 0 {
            if null >= 0 {
                close(null);
            }
            close(saved);
            return;
        }
        close(null);
        SAVED_STDERR.store(saved, Ordering::SeqCst);
    }
}

extern "C" fn after_libraries(_: c_int, _: *const *const c_char, _: *const *const c_char) {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor `mute_stderr` duplicated.
        unsafe {
            dup2(saved, STDERR);
            close(saved);
        }
    }
}
