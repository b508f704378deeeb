//! speedbench: one graph IR, the same weights, three inference runtimes.
//!
//! Data flows one way: `models/*.toml` -> [`zoo`] builds a [`graph::Graph`]
//! -> [`graph::analysis`] counts it -> [`frameworks`] prepare and run it ->
//! [`bench`] times it into [`record`]s -> [`results`] stores them ->
//! [`report`] renders them. [`record`] is the bottom layer every other
//! module may read: the shared words, the stored plan and records.
//! [`shard`] cuts a run's matrix into cost-balanced slices for several
//! machines; `speedbench merge` joins their results files again.

pub mod app;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod config;
pub mod frameworks;
pub mod graph;
pub mod history;
pub mod io;
pub mod record;
pub mod report;
pub mod results;
pub mod schedule;
pub mod shard;
pub mod trace;
pub mod verify;
pub mod zoo;
