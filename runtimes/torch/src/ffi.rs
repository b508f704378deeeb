//! The C++ shim (`shim.cpp` beside this file, built by build.rs): CUDA streams
//! and events, inference mode, channels-last, allocator statistics. Each
//! call returns null or an error message; [`check`] turns that into a
//! `Result`.

use std::ffi::{c_char, c_void, CStr};

use anyhow::{bail, Result};

/// A `c10::Stream` as plain data.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Stream {
    pub id: i64,
    pub device_index: i32,
    pub device_type: i32,
}

extern "C" {
    pub(super) fn sb_torch_config(out: *mut *const c_char) -> *const c_char;
    pub(super) fn sb_cuda_tf32(allow: i32) -> *const c_char;
    pub(super) fn sb_stream_from_pool(device: i32, out: *mut Stream) -> *const c_char;
    pub(super) fn sb_stream_exchange(s: Stream, prev: *mut Stream) -> *const c_char;
    pub(super) fn sb_stream_synchronize(s: Stream) -> *const c_char;
    pub(super) fn sb_event_new(out: *mut *mut c_void) -> *const c_char;
    pub(super) fn sb_event_new_timed(out: *mut *mut c_void) -> *const c_char;
    pub(super) fn sb_event_elapsed(a: *mut c_void, b: *mut c_void, ms: *mut f64) -> *const c_char;
    pub(super) fn sb_event_free(ev: *mut c_void);
    pub(super) fn sb_event_record(ev: *mut c_void, s: Stream) -> *const c_char;
    pub(super) fn sb_event_block(ev: *mut c_void, s: Stream) -> *const c_char;
    pub(super) fn sb_record_stream(t: *mut c_void, s: Stream) -> *const c_char;
    pub(super) fn sb_inference_mode_enter() -> *mut c_void;
    pub(super) fn sb_inference_mode_exit(guard: *mut c_void);
    pub(super) fn sb_channels_last(t: *mut c_void, out: *mut *mut c_void) -> *const c_char;
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sb_conv_pointwise(
        x: *mut c_void,
        w: *mut c_void,
        b: *mut c_void,
        other: *mut c_void,
        stride: i64,
        pad: i64,
        groups: i64,
        relu: i32,
        out: *mut *mut c_void,
    ) -> *const c_char;
    pub(super) fn sb_cuda_memory(device: i32, current: *mut i64, peak: *mut i64) -> *const c_char;
    pub(super) fn sb_cuda_reset_peak(device: i32) -> *const c_char;
}

/// Turns a shim result into a `Result`, naming the call.
pub(super) fn check(what: &str, err: *const c_char) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is a NUL-terminated string owned by the shim
    // that stays valid until this thread's next shim call.
    let msg = unsafe { CStr::from_ptr(err) }.to_string_lossy();
    bail!("libtorch {what}: {}", msg.trim())
}
