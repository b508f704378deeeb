//! A lowered graph in a TensorFlow session: one host-to-host pass per run.

use anyhow::{anyhow, Context, Result};
use ndarray::{Array2, Array4};
use tensorflow::{Operation, Session, SessionRunArgs, Tensor};

use super::lower::Lowered;
use super::trace::{full_trace_options, parse_metadata};
use speedbench::frameworks::{check_input, check_output, Prepared};
use speedbench::graph::Shape;
use speedbench::record::Timeline;

pub(super) struct TfSession {
    session: Session,
    input: Operation,
    output: Operation,
    /// Per-sample input shape the graph was built for.
    shape: Shape,
    /// (intra, inter) threads of the session's configuration.
    threads: (usize, usize),
    /// The session keeps the graph alive too; held for clarity.
    _graph: tensorflow::Graph,
}

impl TfSession {
    pub(super) fn new(
        session: Session,
        lowered: Lowered,
        shape: Shape,
        threads: (usize, usize),
    ) -> TfSession {
        TfSession {
            session,
            input: lowered.input,
            output: lowered.output,
            shape,
            threads,
            _graph: lowered.graph,
        }
    }
}

/// The batch as a TensorFlow tensor.
fn host_tensor(input: &Array4<f32>) -> Result<Tensor<f32>> {
    let dims: Vec<u64> = input.shape().iter().map(|&d| d as u64).collect();
    let data = input.as_slice().context("input is not contiguous")?;
    Tensor::<f32>::new(&dims)
        .with_values(data)
        .map_err(|e| anyhow!("TensorFlow input tensor: {e}"))
}

impl Prepared for TfSession {
    /// One run with FULL_TRACE run options; its step_stats.
    fn trace(&mut self, input: &Array4<f32>) -> Result<Timeline> {
        check_input(self.shape, input)?;
        let x = host_tensor(input)?;
        let mut args = SessionRunArgs::new();
        args.add_feed(&self.input, 0, &x);
        args.request_fetch(&self.output, 0);
        args.set_run_options(&full_trace_options());
        args.set_request_metadata(true);
        self.session
            .run(&mut args)
            .map_err(|e| anyhow!("TensorFlow traced run failed: {e}"))?;
        let meta = args
            .get_metadata()
            .context("TensorFlow returned no run metadata")?;
        parse_metadata(meta)
    }

    fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>> {
        check_input(self.shape, input)?;
        let x = host_tensor(input)?;
        let mut args = SessionRunArgs::new();
        args.add_feed(&self.input, 0, &x);
        let token = args.request_fetch(&self.output, 0);
        self.session
            .run(&mut args)
            .map_err(|e| anyhow!("TensorFlow run failed: {e}"))?;
        let y: Tensor<f32> = args
            .fetch(token)
            .map_err(|e| anyhow!("TensorFlow logits: {e}"))?;
        let dims: Vec<usize> = y.dims().iter().map(|&d| d as usize).collect();
        let logits_shape = check_output("TensorFlow", &dims)?;
        Ok(Array2::from_shape_vec(logits_shape, y.to_vec())?)
    }

    fn threads_used(&self) -> Option<(usize, usize)> {
        Some(self.threads)
    }
}
