//! Timing: the parent's runner, the per-cell worker process, the memory
//! guard and the machine's peak.

pub mod fma;
pub mod memory;
pub mod peak;
pub mod runner;
pub mod timing;
pub mod worker;
