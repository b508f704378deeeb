//! Command-line arguments (clap). Nothing but argument types lives here;
//! they map onto [`crate::config::Request`] and the shared words of
//! [`crate::record`], and `config` turns those into a validated plan.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::record::{Device, Optimize, Precision};

mod values;
pub use values::{CompareFormat, DeviceArg, Format, Gate, ModeArg, PlacementArg, ReportFormat};

#[derive(Debug, Parser)]
#[command(
    name = "speedbench",
    version,
    about = "Cross-framework inference benchmark: one graph IR, the same weights, TensorFlow, libtorch and ONNX Runtime"
)]
pub struct Cli {
    /// Show the frameworks' own log output.
    #[arg(long, global = true)]
    pub verbose: bool,
    /// No progress while measuring: neither the bars on a terminal nor the
    /// line per finished process printed when stderr is not a terminal.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// A folder of model specs that add to the built-in models or replace
    /// them by name.
    #[arg(long, global = true, env = "SPEEDBENCH_MODELS_DIR", value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The cells a run or a trace times: which models in which frameworks,
/// where, in which modes, at which levels, precisions, batches and size,
/// from which profile and weights. `run` and `trace` flatten it.
#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Framework(s) to time; repeat, or `all`. A framework named twice is
    /// timed twice (`ort` and `ort#2`): an A/A check of the method.
    #[arg(long = "framework", value_name = "ort|ort-own|torch|tf|all")]
    pub frameworks: Vec<String>,
    /// Model(s) to time; repeat, or `all`.
    #[arg(long = "model", value_name = "NAME|all")]
    pub models: Vec<String>,
    /// Where the frameworks run: cpu, or cuda (a GPU). Default: cuda where
    /// a CUDA device is present, else cpu.
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
    /// sequential (every operation one after another), parallel
    /// (independent branches at once) or both, side by side. Default from
    /// harness.toml.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// How far each framework may rewrite the graph: none (as written),
    /// default (each framework's standard inference setting), max (plus
    /// batch norms folded, torch channels-last) or cuda-graph (max, each
    /// pass replayed as one captured CUDA graph; CUDA, torch and ort only);
    /// several, comma-separated, are timed side by side in each worker.
    /// Default from harness.toml.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "none|default|max|cuda-graph[,...]"
    )]
    pub optimize: Vec<Optimize>,
    /// Number format of the weights and activations: fp32, bf16, fp16 or
    /// tf32 (CUDA); several, comma-separated, are each their own cells. A
    /// precision a framework cannot run on the device is named in the
    /// report's notes, never run in fp32. Default from harness.toml (fp32).
    #[arg(long, value_delimiter = ',', value_name = "fp32|bf16|fp16|tf32[,...]")]
    pub precision: Vec<Precision>,
    /// Images per forward pass; several, comma-separated (1,4,16), are each
    /// their own cells, and the report draws latency, throughput and
    /// speedup against batch. Default from the profile (paper 16).
    #[arg(long, value_delimiter = ',', value_name = "N[,...]")]
    pub batch: Vec<usize>,
    /// Square input side in pixels. Default from the profile (224).
    #[arg(long)]
    pub size: Option<usize>,
    /// Untimed warm-up passes of each worker process. Default from the
    /// profile.
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// Profile from harness.toml (paper, quick, smoke); default: paper where
    /// a CUDA device is present, else quick.
    #[arg(long)]
    pub profile: Option<String>,
    /// A harness file whose keys override the built-in defaults; default:
    /// ./harness.toml where there is one.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Weights as a safetensors file (one model only); default: seeded.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
}

impl MatrixArgs {
    /// The request of these cells, with what only `run` sets left unset.
    fn request(&self) -> crate::config::Request {
        crate::config::Request {
            config: config_or_local(&self.config),
            profile: self.profile.clone(),
            frameworks: self.frameworks.clone(),
            models: self.models.clone(),
            device: self.device.map(Device::from),
            modes: self.mode.map(ModeArg::modes),
            optimize: self.optimize.clone(),
            precision: self.precision.clone(),
            batch: self.batch.clone(),
            size: self.size,
            warmup: self.warmup,
            iters: None,
            processes: None,
            order_seed: None,
            target: None,
            max_time: None,
            placement: None,
            out: None,
            weights: self.weights.clone(),
        }
    }
}

/// The options of `run` that `--resume` refuses: the resumed file's plan
/// decides them (the walk over every option in the tests keeps this list
/// and [`RESUME_KEEPS`] whole).
pub const RESUME_REFUSES: &[&str] = &[
    "frameworks",
    "models",
    "device",
    "mode",
    "optimize",
    "precision",
    "batch",
    "size",
    "warmup",
    "profile",
    "config",
    "weights",
    "iters",
    "processes",
    "order_seed",
    "target",
    "max_time",
    "placement",
    "out",
    "shard",
    "shard_count",
    "schedules_from",
];

/// The options of `run` that a resumed run still reads: what it does with
/// the results once the plan is finished, and how it shows them.
pub const RESUME_KEEPS: &[&str] = &[
    "resume",
    "save_baseline",
    "force",
    "baseline",
    "threshold",
    "trace",
    "headline_batch",
    "wide",
];

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Timed iterations of each cell, shared out among its worker
    /// processes. Default from the profile.
    #[arg(long, value_name = "N")]
    pub iters: Option<usize>,
    /// Worker processes per cell: each cell is timed in R processes of its
    /// own (the timed iterations shared out among them), in a balanced,
    /// shuffled order, and its intervals span processes and iterations.
    /// Default from the profile (smoke 1, quick 3, paper 5).
    #[arg(long, value_name = "R")]
    pub processes: Option<usize>,
    /// Seed of the processes' shuffled order (recorded in the results);
    /// default: a random one.
    #[arg(long, value_name = "N")]
    pub order_seed: Option<u64>,
    /// The precision to aim for: after each group's minimum rounds
    /// (--iters), rounds are added until every speedup's and A/A ratio's
    /// 95% half-width is at or below it, or --max-time is spent (2%, or
    /// 0.02). Default from the profile (quick 2%).
    #[arg(long, value_name = "PCT")]
    pub target: Option<String>,
    /// The time budget of the timed rounds, shared among the groups still
    /// to run (90s, 8m, 1h). Default from the profile (quick 6m).
    #[arg(long, value_name = "DURATION")]
    pub max_time: Option<String>,
    /// Time only while the host has the machine's two cores near (a shared
    /// cache) or far apart: before each round the runner probes them and
    /// waits until they are (at most 5 minutes at a time). On a VM whose
    /// host moves the cores, a speedup that differs between the two
    /// (the headline's "near .., far ..") then measures one of them.
    #[arg(long, value_enum, default_value_t = PlacementArg::Any)]
    pub placement: PlacementArg,
    /// Run the schedules an earlier run's parallel cells chose (a results
    /// file, or a baseline NAME) rather than calibrate new ones: cells of
    /// the same model, framework, level, precision and batch that ran
    /// speedbench's cost-model schedule. Runs of one held schedule differ
    /// by the runtime and the machine, not by what a calibration picked.
    #[arg(long, value_name = "NAME|RESULTS.json")]
    pub schedules_from: Option<String>,
    /// Folder for the results files.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// After the run, store its results as baseline NAME (results/baselines/NAME.json).
    #[arg(long, value_name = "NAME")]
    pub save_baseline: Option<String>,
    /// Replace the --save-baseline file where it exists (refused otherwise,
    /// before anything is measured).
    #[arg(long)]
    pub force: bool,
    /// After the run, compare with baseline NAME (or a .json path); exit 1 on a regression.
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Noise threshold of --baseline, in percent.
    #[arg(long, default_value_t = 5.0, value_name = "PCT")]
    pub threshold: f64,
    /// Also write the traced passes as Chrome trace-event JSON beside the
    /// results (RESULTS.trace.json; open in Perfetto or chrome://tracing).
    #[arg(long)]
    pub trace: bool,
    /// The batch the headline shows where --batch gives several; default:
    /// the first. Must be one of --batch's.
    #[arg(long, value_name = "N")]
    pub headline_batch: Option<usize>,
    /// Print the wide tables (paper-style and per cell) as the .md file
    /// holds them, instead of the headline fitted to the terminal's width
    /// (COLUMNS, else the terminal's, else 120).
    #[arg(long)]
    pub wide: bool,
    /// Continue an interrupted run: its plan (and shard), skipping the cells
    /// it holds. Refuses every option the plan decides.
    #[arg(long, value_name = "RESULTS.json", conflicts_with_all = RESUME_REFUSES)]
    pub resume: Option<PathBuf>,
    /// Run shard K of N (K is 1-based: 1 <= K <= N): a deterministic slice
    /// of the (model, framework) workers, balanced by expected cost (MACs x
    /// iterations). Every shard needs the same binary, harness and flags;
    /// `speedbench merge` joins their results. Default: from a Slurm array
    /// job (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX, 0-based); `--shard 1/1` runs everything.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// The number of shards of a Kubernetes Indexed Job (its completions);
    /// default: SPEEDBENCH_SHARD_COUNT.
    #[arg(long, value_name = "N")]
    pub shard_count: Option<String>,
}

/// `--config`, else ./harness.toml where there is one.
fn config_or_local(config: &Option<PathBuf>) -> Option<PathBuf> {
    config.clone().or_else(|| {
        let here = PathBuf::from("harness.toml");
        here.is_file().then_some(here)
    })
}

impl RunArgs {
    /// The run these arguments ask for, in the words of [`crate::config`].
    pub fn request(&self) -> crate::config::Request {
        crate::config::Request {
            iters: self.iters,
            processes: self.processes,
            order_seed: self.order_seed,
            target: self.target.clone(),
            max_time: self.max_time.clone(),
            placement: Some(self.placement.into()),
            out: self.out.clone(),
            ..self.matrix.request()
        }
    }
}

/// `speedbench trace`: a short run whose traced passes are the product.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The cells to trace (--model and --framework are required).
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Timed iterations before the traced pass (their times are reported
    /// beside it).
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    /// The Chrome trace-event JSON to write.
    #[arg(long, value_name = "FILE.json", required = true)]
    pub out: PathBuf,
    /// Also draw the timelines as SVG here.
    #[arg(long, value_name = "FILE.svg")]
    pub svg: Option<PathBuf>,
}

impl TraceArgs {
    /// The run these arguments ask for, its results kept in `out`: one
    /// process per cell (the traced passes are the product).
    pub fn request(&self, out: PathBuf) -> crate::config::Request {
        crate::config::Request {
            iters: Some(self.iters),
            processes: Some(1),
            out: Some(out),
            ..self.matrix.request()
        }
    }
}

// parsed once per process: the size of the largest variant costs nothing
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Time models in frameworks and write results.
    Run(RunArgs),
    /// Trace one pass per cell: per-operation timelines as Chrome
    /// trace-event JSON (Perfetto, chrome://tracing) and the measured
    /// concurrency of each mode.
    Trace(TraceArgs),
    /// Print parameters, MACs and work/span of every model.
    Models {
        /// Square input side in pixels the counts are for.
        #[arg(long, default_value_t = 224)]
        size: usize,
        /// How to print the table.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One forward pass of a .npy input to a .npy of logits.
    Infer {
        /// The framework to run (ort, ort-own, torch, tf).
        #[arg(long)]
        framework: String,
        /// The model to run.
        #[arg(long)]
        model: String,
        /// Weights as a safetensors file; default: seeded.
        #[arg(long, value_name = "FILE")]
        weights: Option<PathBuf>,
        /// The input batch, float32 [N, 3, H, W], as .npy.
        #[arg(long, value_name = "X.npy")]
        input: PathBuf,
        /// Where to write the logits, float32 [N, classes], as .npy.
        #[arg(long, value_name = "Y.npy")]
        output: PathBuf,
        /// cpu or cuda.
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// sequential or parallel.
        #[arg(long, value_enum, default_value_t = ModeArg::Sequential)]
        mode: ModeArg,
        /// The optimisation level, as for `run`.
        #[arg(long, default_value_t = Optimize::Default, value_name = "none|default|max|cuda-graph")]
        optimize: Optimize,
        /// The number format, as for `run` (the logits are written as
        /// float32 whatever it is).
        #[arg(long, default_value_t = Precision::Fp32, value_name = "fp32|bf16|fp16|tf32")]
        precision: Precision,
        /// An imported model's own ONNX file, as it is, in ONNX Runtime on
        /// the CPU (no IR): the reference `verify` holds it to.
        #[arg(long)]
        original: bool,
    },
    /// Write a model as ONNX.
    Export {
        /// The model to export.
        #[arg(long)]
        model: String,
        /// Weights as a safetensors file; default: seeded.
        #[arg(long, value_name = "FILE")]
        weights: Option<PathBuf>,
        /// Accepted for compatibility: the batch dimension is dynamic.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Square input side in pixels the graph is built for.
        #[arg(long, default_value_t = 224)]
        size: usize,
        /// The ONNX file to write.
        #[arg(long, value_name = "FILE.onnx")]
        out: PathBuf,
        /// Also write the weights used (seeded unless --weights) as safetensors.
        #[arg(long, value_name = "FILE")]
        save_weights: Option<PathBuf>,
    },
    /// Read an ONNX CNN (opset 7-21, static image shape) into the graph IR
    /// and add it to the models folder (--models-dir, else
    /// SPEEDBENCH_MODELS_DIR, else ~/.local/share/speedbench/models), so
    /// that every command takes it by name.
    Import {
        /// The ONNX file.
        #[arg(value_name = "FILE.onnx")]
        file: PathBuf,
        /// The model's name (letters, digits, '_' and '-'); default: the
        /// file's name without .onnx.
        #[arg(long)]
        name: Option<String>,
    },
    /// Check that every installed framework gives the same logits.
    Verify(VerifyArgs),
    /// Merge results files and render the report.
    Report {
        /// Results JSON files (from any machines).
        #[arg(required = true, value_name = "RESULTS.json")]
        files: Vec<PathBuf>,
        /// What to write: tables (terminal, csv, md), json, charts (svg),
        /// timelines, a trace for Perfetto or one HTML page.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Show the paper's published numbers (shown anyway for batch 16 at 224 px).
        #[arg(long)]
        published: bool,
        /// --format table: print the wide tables (paper-style and per cell)
        /// instead of the headline fitted to the terminal's width (COLUMNS,
        /// else the terminal's, else 120); with --out they are always wide.
        #[arg(long)]
        wide: bool,
        /// --format md: only the headline (per model and framework: the
        /// medians, the speedup and its interval), with its notes; for a
        /// README or a pull request.
        #[arg(long)]
        headline: bool,
        /// The batch the headline shows where the files hold several
        /// (`run --batch 1,4,16`); default: the first.
        #[arg(long, value_name = "N")]
        headline_batch: Option<usize>,
        /// The runs over time (files, or folders of them): median time per
        /// cell with its step changes marked (svg; html: the newest run's
        /// page with that chart), or the step changes listed (table, md,
        /// json).
        #[arg(long)]
        history: bool,
        /// The baseline run to mark in --history.
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
    },
    /// Join results files (the shards of a run, or runs on several machines)
    /// into one; a cell in two files is refused.
    Merge {
        /// Results JSON files.
        #[arg(required = true, value_name = "RESULTS.json")]
        files: Vec<PathBuf>,
        /// The merged results file (CSV, markdown and SVG are written beside
        /// it, as `run` does).
        #[arg(long, value_name = "ALL.json")]
        out: PathBuf,
        /// Replace --out where it exists (refused otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Compare a run with a baseline, or with a folder of earlier runs
    /// (--history); exit 1 on a regression, 2 on bad input.
    Compare {
        /// BASELINE.json CURRENT.json; with --history DIR, CURRENT.json alone.
        #[arg(value_name = "FILE", required = true, num_args = 1..=2)]
        files: Vec<PathBuf>,
        /// A folder of earlier results files (the committed baseline and
        /// appended runs): each cell is judged against the spread of its
        /// last --lookback runs started before CURRENT as well as the threshold.
        #[arg(long, value_name = "DIR")]
        history: Option<PathBuf>,
        /// Runs of each cell's history that give its reference and spread.
        #[arg(long, default_value_t = 10, value_name = "L", requires = "history")]
        lookback: usize,
        /// A regression lies more than this many run-to-run spreads above
        /// the reference (as well as beyond the threshold).
        #[arg(long, default_value_t = 3.0, value_name = "Z", requires = "history")]
        z: f64,
        /// After the verdict, copy CURRENT.json into the history folder.
        #[arg(long, requires = "history")]
        append: bool,
        /// Noise threshold in percent: smaller changes never count.
        #[arg(long, default_value_t = 5.0, value_name = "PCT")]
        threshold: f64,
        /// How to print the verdicts.
        #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
        format: CompareFormat,
        /// What fails the comparison: raw times, or the within-run ratios
        /// (for runners whose speed varies).
        #[arg(long, value_enum, default_value_t = Gate::Times)]
        gate: Gate,
    },
    /// Load a framework's CUDA libraries as its worker does on --device
    /// cuda (ORT's and TensorFlow's by full path, libtorch's through
    /// libtorch_cuda), and check and list what resolved: every NVIDIA
    /// library from the framework's own environment, of its CUDA major, none
    /// twice. No GPU needed.
    CudaLibs {
        /// ort, ort-own, torch or tf.
        #[arg(long, value_name = "ort|ort-own|torch|tf")]
        framework: String,
    },
    /// Internal: one worker process timing one cell (JSON job on stdin).
    #[command(hide = true)]
    Worker,
}

/// `speedbench verify`'s options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Model(s); repeat, or `all` (default).
    #[arg(long = "model", value_name = "NAME|all")]
    pub models: Vec<String>,
    /// Framework(s) to compare; repeat, or `all` (default: every installed
    /// one). The first is the reference.
    #[arg(long = "framework", value_name = "ort|ort-own|torch|tf|all")]
    pub frameworks: Vec<String>,
    /// Square input side in pixels.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Images in the compared batch.
    #[arg(long, default_value_t = 2)]
    pub batch: usize,
    /// Weights as a safetensors file; default: seeded.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Largest allowed max|diff| / max|ref|.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,
    /// Where the compared runs execute; the reference runs on the CPU.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// The level of the compared runs; the reference is always the first
    /// framework, sequential, on the CPU, at `default`.
    #[arg(long, default_value_t = Optimize::Default, value_name = "none|default|max|cuda-graph")]
    pub optimize: Optimize,
    /// The number format of the compared runs; the reference is fp32.
    /// A reduced precision is held to its own tolerance instead of
    /// --tolerance: relative L2 error ||y - ref|| / ||ref|| at most 2e-2
    /// (bf16) or 5e-3 (fp16, tf32), and the same top-1 class on every
    /// input. A framework that cannot run it is listed as skipped.
    #[arg(long, default_value_t = Precision::Fp32, value_name = "fp32|bf16|fp16|tf32")]
    pub precision: Precision,
    /// How to print the comparison.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
