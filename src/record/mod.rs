//! The bottom layer: the shared vocabulary ([`Device`], [`Mode`],
//! [`Optimize`], the framework names), the stored run plan, the records a
//! run writes, the environment it ran in and the statistics of its samples.
//! It imports nothing else from the crate; everything above reads it.

mod cell;
pub mod env;
mod file;
pub mod intervals;
mod kinds;
pub mod limits;
pub mod placement;
mod plan;
mod process;
pub mod runtimes;
mod schedule;
mod shard;
pub mod stats;
pub mod target;
mod timeline;

#[cfg(test)]
pub(crate) use cell::tests::cell as test_cell;
pub use cell::{
    busy_cells, contrast, group_by_process, levels, paired, paired_by_process, paired_logs,
    paired_times, CellRecord, CpuPath, Failure,
};
pub use file::{write_durably, MergedInput, RunFile, SCHEMA_VERSION};
pub use kinds::{
    base_framework, level_suffix, setting_suffix, Device, Mode, Optimize, Precision, Setting,
    FRAMEWORKS,
};
pub use plan::{one_or_many, HeldSchedule, RunPlan, SkippedModel, Unsupported};
pub use process::{MachineLoad, ProcessRecord, BUSY_CORES};
pub use schedule::{LaneNodes, ParallelStage, ScheduleRecord, StageNodes};
pub use shard::{Shard, ShardPlan};
pub use timeline::{Concurrency, OpEvent, Timeline, Trace, NO_OVERLAP};
