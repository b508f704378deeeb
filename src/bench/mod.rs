//! Timing: the parent's runner, the per-cell worker process, statistics, the
//! environment and the result records.

pub mod env;
pub mod memory;
pub mod peak;
pub mod record;
pub mod runner;
pub mod stats;
pub mod worker;
