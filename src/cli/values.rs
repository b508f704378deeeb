//! The command line's closed sets of values (clap's `ValueEnum`s) and
//! what each maps onto.

use clap::ValueEnum;

use crate::record::{Device, Mode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Sequential,
    Parallel,
    Both,
}

impl ModeArg {
    pub fn modes(self) -> Vec<Mode> {
        match self {
            ModeArg::Sequential => vec![Mode::Sequential],
            ModeArg::Parallel => vec![Mode::Parallel],
            ModeArg::Both => vec![Mode::Sequential, Mode::Parallel],
        }
    }
}

/// `run --placement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlacementArg {
    /// As the host has them.
    Any,
    /// A shared cache.
    Near,
    /// No shared cache.
    Far,
}

impl From<PlacementArg> for crate::record::placement::Wanted {
    fn from(p: PlacementArg) -> Self {
        use crate::record::placement::Wanted;
        match p {
            PlacementArg::Any => Wanted::Any,
            PlacementArg::Near => Wanted::Near,
            PlacementArg::Far => Wanted::Far,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

impl From<DeviceArg> for Device {
    fn from(d: DeviceArg) -> Device {
        match d {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::Cuda,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Md,
    Json,
}

impl From<Format> for crate::report::rows::Format {
    fn from(f: Format) -> Self {
        use crate::report::rows::Format as R;
        match f {
            Format::Table => R::Table,
            Format::Csv => R::Csv,
            Format::Md => R::Md,
            Format::Json => R::Json,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Md,
    Json,
    Svg,
    /// The traced passes as an SVG of timelines (ideal, sequential,
    /// parallel per model).
    Timeline,
    /// Latency, throughput and speedup against batch, per model, as SVG
    /// (files of several batches: `run --batch 1,4,16`).
    Batches,
    /// The traced passes as Chrome trace-event JSON (Perfetto,
    /// chrome://tracing).
    Trace,
    /// One self-contained page (tables, charts, timelines; with --history,
    /// the newest run and the history chart).
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Table,
    Md,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Gate {
    Times,
    Ratios,
}
