//! The bottom layer: the shared vocabulary ([`Device`], [`Mode`],
//! [`Optimize`], the framework names), the stored run plan, the records a
//! run writes, the environment it ran in and the statistics of its samples.
//! It imports nothing else from the crate; everything above reads it.

mod cell;
pub mod env;
mod file;
mod kinds;
mod plan;
mod schedule;
mod shard;
pub mod stats;
mod timeline;

pub use cell::{levels, CellRecord, Failure};
pub use file::{MergedInput, RunFile, SCHEMA_VERSION};
pub use kinds::{Device, Mode, Optimize, FRAMEWORKS};
pub use plan::{one_or_many, RunPlan, SkippedModel};
pub use schedule::{ParallelStage, ScheduleRecord};
pub use shard::{Shard, ShardPlan};
pub use timeline::{Concurrency, OpEvent, Timeline, Trace, NO_OVERLAP};
