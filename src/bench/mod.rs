//! Timing: the parent's runner, the order of its worker groups and their
//! lock-step rounds, the per-cell worker process, its load probe, the
//! memory guard, the machine's peak and how far apart its cores are.

pub mod fma;
pub mod groups;
pub mod load;
pub mod lockstep;
pub mod memory;
pub mod order;
pub mod peak;
pub mod placement;
pub mod progress;
pub mod runner;
pub mod threads;
pub mod timing;
pub mod worker;
