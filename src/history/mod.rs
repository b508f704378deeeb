//! Results over time: a cell's per-run medians as a series, verdicts that
//! know each cell's run-to-run spread ([`verdict`]), and step changes in a
//! series ([`steps`]). Reads `record` and `compare`; pure.

pub mod steps;
pub mod verdict;
