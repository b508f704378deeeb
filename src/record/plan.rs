//! The stored run plan: everything a run was asked to do, validated, as
//! every results file keeps it (no command-line type in it).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Device, Mode, Optimize, Precision, ScheduleRecord, Setting, ShardPlan};

/// Plans saved before `--optimize` existed ran at `default`.
fn default_levels() -> Vec<Optimize> {
    vec![Optimize::Default]
}

fn one() -> usize {
    1
}

fn fp32() -> Vec<Precision> {
    vec![Precision::Fp32]
}

/// A value or a list of values (`16` or `[1, 4, 16]`).
fn number_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(usize),
        Many(Vec<usize>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(o)) => Ok(vec![o]),
        Ok(OneOrMany::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected a batch size or a list of them",
        )),
    }
}

/// A level or a list of levels (`"max"` or `["default", "max"]`).
pub fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Optimize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Optimize),
        Many(Vec<Optimize>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(o)) => Ok(vec![o]),
        Ok(OneOrMany::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected one of \"none\", \"default\", \"max\", or a list of them",
        )),
    }
}

/// Everything `run` needs, validated.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunPlan {
    pub profile: String,
    pub frameworks: Vec<String>,
    pub models: Vec<String>,
    pub device: Device,
    pub modes: Vec<Mode>,
    /// `--optimize` levels, each timed beside the others in every worker.
    /// Plans saved before `--optimize` existed ran at `default`.
    #[serde(default = "default_levels", deserialize_with = "one_or_many")]
    pub optimize: Vec<Optimize>,
    /// `--precision`s, each its own cells; plans saved before the option
    /// ran fp32.
    #[serde(default = "fp32")]
    pub precision: Vec<Precision>,
    /// Batch sizes (`--batch 1,4,16`), each its own cells; plans saved
    /// before batch lists hold one number.
    #[serde(deserialize_with = "number_or_list")]
    pub batch: Vec<usize>,
    pub size: usize,
    /// Warm-up iterations of each worker process.
    pub warmup: usize,
    /// Timed iterations of each cell, shared out among its processes.
    pub iters: usize,
    /// Worker processes per cell (`--processes`); plans saved before
    /// process repetition timed every cell in one.
    #[serde(default = "one")]
    pub processes: usize,
    /// Seed of the shuffled, balanced order of the processes
    /// ([`crate::bench`]'s order); recorded so `--resume` repeats it.
    #[serde(default)]
    pub order_seed: u64,
    /// The precision aimed for (`--target`): rounds are added to a group
    /// until every ratio's 95% half-width is at or below this share, or
    /// its part of `max_time_s` is spent. Absent: each group times its
    /// minimum (`iters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// The time budget of the timed rounds (`--max-time`), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_s: Option<f64>,
    /// The placement of the cores every round is held for (`--placement`);
    /// absent: any.
    #[serde(default, skip_serializing_if = "super::placement::Wanted::is_any")]
    pub placement: super::placement::Wanted,
    pub intra_threads: usize,
    pub inter_threads: usize,
    pub seed: u64,
    pub timeout_s: u64,
    pub out: PathBuf,
    pub weights: Option<PathBuf>,
    /// Frameworks of the default matrix left out because not built in.
    pub skipped: Vec<String>,
    /// Models that `all` stood for but that are not defined at this size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_models: Vec<SkippedModel>,
    /// `--shard K/N`: the slice of the matrix this run measures; absent for
    /// a whole run (and in files from before shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardPlan>,
    /// Precisions a framework cannot run on the run's device: their cells
    /// are not run, and the report names each with its reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<Unsupported>,
    /// `--schedules-from`: the results file whose parallel cells' schedules
    /// this run runs again rather than calibrate; absent where every
    /// parallel cell calibrates its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedules_from: Option<PathBuf>,
    /// The schedules taken from it, one per parallel cell it held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<HeldSchedule>,
}

/// A schedule an earlier run chose for one parallel cell, run again by
/// this run's processes of the cell instead of a calibration of their own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeldSchedule {
    pub model: String,
    /// The framework's own name (an A/A repeat runs its original's).
    pub framework: String,
    pub setting: Setting,
    pub schedule: ScheduleRecord,
}

/// A precision a framework cannot run on the run's device, and why: one
/// line in a report's notes, not a failure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Unsupported {
    pub framework: String,
    pub precision: Precision,
    /// The one level it cannot run the precision at; absent: at any
    /// level (and in files from before levels mattered here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize: Option<Optimize>,
    pub reason: String,
}

impl Unsupported {
    /// "tf does not run --precision bf16 on cpu[ at --optimize default]".
    pub fn what(&self, device: Device) -> String {
        let at = self
            .optimize
            .map(|o| format!(" at --optimize {o}"))
            .unwrap_or_default();
        format!(
            "{} does not run --precision {} on {device}{at}",
            self.framework, self.precision
        )
    }
}

/// A model left out of a run, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkippedModel {
    pub model: String,
    pub reason: String,
}

impl RunPlan {
    /// The settings `framework` runs, in plan order (level, then precision,
    /// then batch): every combination, less the precisions it cannot run.
    pub fn settings(&self, framework: &str) -> Vec<Setting> {
        let mut v = Vec::new();
        for &optimize in &self.optimize {
            for &precision in &self.precision {
                if self
                    .unsupported_reason(framework, precision, optimize)
                    .is_some()
                {
                    continue;
                }
                for &batch in &self.batch {
                    v.push(Setting {
                        optimize,
                        precision,
                        batch,
                    });
                }
            }
        }
        v
    }

    /// Why `framework` (or its base, for an A/A repeat) does not run
    /// `precision` at `optimize` in this plan, where it does not.
    pub fn unsupported_reason(
        &self,
        framework: &str,
        precision: Precision,
        optimize: Optimize,
    ) -> Option<&str> {
        let base = super::base_framework(framework);
        self.unsupported
            .iter()
            .find(|u| {
                u.framework == base
                    && u.precision == precision
                    && u.optimize.is_none_or(|o| o == optimize)
            })
            .map(|u| u.reason.as_str())
    }

    /// The first batch: the one a headline shows unless told otherwise.
    pub fn first_batch(&self) -> usize {
        self.batch.first().copied().unwrap_or(1)
    }

    /// Timed iterations of process `process` of a cell: `iters` shared out
    /// among the processes, the first ones taking one more where it does
    /// not divide.
    pub fn iters_of(&self, process: usize) -> usize {
        let r = self.processes.max(1);
        self.iters / r + usize::from(process < self.iters % r)
    }

    /// The schedule `--schedules-from` holds for the cell of `model` and
    /// `framework` (or its original, for an A/A repeat) in `mode` at
    /// `setting`, if any: only a parallel cell has one.
    pub fn held_schedule(
        &self,
        model: &str,
        framework: &str,
        mode: Mode,
        setting: Setting,
    ) -> Option<&ScheduleRecord> {
        let base = super::base_framework(framework);
        self.schedules
            .iter()
            .filter(|_| mode == Mode::Parallel)
            .find(|h| h.model == model && h.framework == base && h.setting == setting)
            .map(|h| &h.schedule)
    }

    /// Whether this run measures (`model`, `framework`): always, unless it
    /// is a shard that left the pair to another.
    pub fn runs(&self, model: &str, framework: &str) -> bool {
        self.shard.as_ref().is_none_or(|s| s.runs(model, framework))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn iterations_shared_out_among_processes() {
        let mut p: super::RunPlan = serde_json::from_value(serde_json::json!({
            "profile": "quick", "frameworks": ["ort"], "models": ["resnet50"],
            "device": "cpu", "modes": ["sequential"], "batch": 1, "size": 224,
            "warmup": 5, "iters": 100, "intra_threads": 2, "inter_threads": 2,
            "seed": 0, "timeout_s": 60, "out": "results", "weights": null, "skipped": []
        }))
        .unwrap();
        // a plan from before process repetition: one process, no seed
        assert_eq!((p.processes, p.order_seed), (1, 0));
        assert_eq!(p.iters_of(0), 100);
        p.processes = 3;
        let each: Vec<usize> = (0..3).map(|i| p.iters_of(i)).collect();
        assert_eq!(each, [34, 33, 33]);
        p.iters = 2;
        assert_eq!((0..3).map(|i| p.iters_of(i)).collect::<Vec<_>>(), [1, 1, 0]);
        p.processes = 0;
        assert_eq!(p.iters_of(0), 2);
    }

    #[test]
    fn a_plan_from_before_the_axes_is_fp32_at_its_one_batch() {
        use super::{Optimize, Precision, Setting, Unsupported};
        let mut p: super::RunPlan = serde_json::from_value(serde_json::json!({
            "profile": "quick", "frameworks": ["ort", "torch"], "models": ["resnet50"],
            "device": "cpu", "modes": ["sequential"], "batch": 16, "size": 224,
            "warmup": 5, "iters": 100, "intra_threads": 2, "inter_threads": 2,
            "seed": 0, "timeout_s": 60, "out": "results", "weights": null, "skipped": []
        }))
        .unwrap();
        assert_eq!(
            (p.precision.clone(), p.batch.clone()),
            (vec![Precision::Fp32], vec![16])
        );
        assert!(p.unsupported.is_empty());
        let s = |optimize, precision, batch| Setting {
            optimize,
            precision,
            batch,
        };
        assert_eq!(
            p.settings("torch"),
            [s(Optimize::Default, Precision::Fp32, 16)]
        );
        assert_eq!(p.first_batch(), 16);
        // level, then precision, then batch; a precision it cannot run left out
        p.optimize = vec![Optimize::Default, Optimize::Max];
        p.precision = vec![Precision::Fp32, Precision::Bf16];
        p.batch = vec![1, 4];
        p.unsupported = vec![
            Unsupported {
                framework: "ort".into(),
                precision: Precision::Bf16,
                optimize: None,
                reason: "no kernels".into(),
            },
            Unsupported {
                framework: "tf".into(),
                precision: Precision::Bf16,
                optimize: Some(Optimize::Default),
                reason: "oneDNN off".into(),
            },
        ];
        let torch = p.settings("torch");
        assert_eq!(torch.len(), 8);
        assert_eq!(torch[0], s(Optimize::Default, Precision::Fp32, 1));
        assert_eq!(torch[1], s(Optimize::Default, Precision::Fp32, 4));
        assert_eq!(torch[2], s(Optimize::Default, Precision::Bf16, 1));
        assert_eq!(torch[7], s(Optimize::Max, Precision::Bf16, 4));
        let ort = p.settings("ort#2");
        assert_eq!(ort.len(), 4);
        assert!(ort.iter().all(|x| x.precision == Precision::Fp32));
        assert_eq!(
            p.unsupported_reason("ort#2", Precision::Bf16, Optimize::Max),
            Some("no kernels")
        );
        assert_eq!(
            p.unsupported_reason("ort", Precision::Fp32, Optimize::Default),
            None
        );
        // a refusal at one level leaves the others
        let tf = p.settings("tf");
        assert_eq!(tf.len(), 6);
        assert!(!tf.contains(&s(Optimize::Default, Precision::Bf16, 1)));
        assert!(tf.contains(&s(Optimize::Max, Precision::Bf16, 4)));
        assert_eq!(
            p.unsupported[1].what(crate::record::Device::Cpu),
            "tf does not run --precision bf16 on cpu at --optimize default"
        );
        assert_eq!(
            p.unsupported[0].what(crate::record::Device::Cuda),
            "ort does not run --precision bf16 on cuda"
        );
        // a list round-trips; a wrong type is named
        let back: super::RunPlan =
            serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let mut v = serde_json::to_value(&p).unwrap();
        v["batch"] = serde_json::json!("16");
        let e = serde_json::from_value::<super::RunPlan>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a batch size or a list of them"), "{e}");
    }
}
