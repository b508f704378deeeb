//! Running the parts of a segmented ORT graph: one part, the steps in
//! order (a parallel stage's lanes on concurrent threads), a traced pass.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result};
use ndarray::Array4;
use ort::session::SessionInputValue;
use ort::value::{DynValue, TensorRef};

use super::{Part, PartSpan, Step, Values};
use speedbench::graph::onnx;

/// Runs one part on its inputs (the batch for the graph's input, else
/// earlier parts' values); its outputs by name.
fn run_part(
    part: &mut Part,
    x: &TensorRef<f32>,
    values: &HashMap<String, DynValue>,
) -> Result<Values> {
    let mut inputs: Vec<(Cow<str>, SessionInputValue)> = Vec::with_capacity(part.inputs.len());
    for name in &part.inputs {
        let v: SessionInputValue = if name == onnx::INPUT {
            SessionInputValue::from(x.view())
        } else {
            values
                .get(name)
                .with_context(|| format!("ORT segments: value '{name}' is missing"))?
                .into()
        };
        inputs.push((Cow::Borrowed(name.as_str()), v));
    }
    let mut out = part.session.run(inputs)?;
    part.outputs
        .iter()
        .map(|name| {
            out.remove(name.as_str())
                .map(|v| (name.clone(), v))
                .with_context(|| format!("ORT segments: no output '{name}'"))
        })
        .collect()
}

/// The shape of every value that crosses a boundary in one pass of
/// `steps` (one part after another), by name.
pub(super) fn value_shapes(
    steps: &mut [Step],
    input: &Array4<f32>,
) -> Result<HashMap<String, Vec<i64>>> {
    let (values, _) = pass(steps, input, false, false)?;
    Ok(values
        .iter()
        .map(|(name, v)| (name.clone(), v.shape().iter().copied().collect()))
        .collect())
}

/// One pass through the parts; the graph's output and, with `trace`, each
/// part's span ([`pass`]).
pub(super) fn run_steps(
    steps: &mut [Step],
    input: &Array4<f32>,
    concurrent: bool,
    trace: bool,
) -> Result<(DynValue, Vec<PartSpan>)> {
    let (mut values, spans) = pass(steps, input, concurrent, trace)?;
    let output = values
        .remove(onnx::OUTPUT)
        .context("ORT segments produced no output")?;
    Ok((output, spans))
}

/// One pass through the parts: every value they passed on, by name;
/// `concurrent`: the lanes of a stage on their own threads (else one after
/// another on this one). With `trace`, each part's span (its track: 0 for
/// the calling thread, lane index from 1 for the others).
pub(super) fn pass(
    steps: &mut [Step],
    input: &Array4<f32>,
    concurrent: bool,
    trace: bool,
) -> Result<(HashMap<String, DynValue>, Vec<PartSpan>)> {
    let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
    let data = input.as_slice().context("input is not contiguous")?;
    let x = TensorRef::from_array_view((shape, data))?;
    let origin = Instant::now();
    let us = |t: Instant| t.duration_since(origin).as_secs_f64() * 1e6;
    let mut values: HashMap<String, DynValue> = HashMap::new();
    let mut spans = Vec::new();
    for step in steps.iter_mut() {
        let results: Vec<(usize, Result<Values>, f64, f64)> = match step {
            Step::One(part) => {
                let start = Instant::now();
                let r = run_part(part, &x, &values);
                vec![(0, r, us(start), us(Instant::now()))]
            }
            Step::Lanes(parts) if concurrent => std::thread::scope(|scope| {
                let values = &values;
                let x = &x;
                let handles: Vec<_> = parts
                    .iter_mut()
                    .enumerate()
                    .map(|(i, part)| {
                        scope.spawn(move || {
                            let start = Instant::now();
                            let r = run_part(part, x, values);
                            (i + 1, r, us(start), us(Instant::now()))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            (0, Err(anyhow::anyhow!("an ORT lane panicked")), 0.0, 0.0)
                        })
                    })
                    .collect()
            }),
            Step::Lanes(parts) => parts
                .iter_mut()
                .enumerate()
                .map(|(i, part)| {
                    let start = Instant::now();
                    let r = run_part(part, &x, &values);
                    (i + 1, r, us(start), us(Instant::now()))
                })
                .collect(),
        };
        for (track, r, start, end) in results {
            for (id, v) in r? {
                values.insert(id, v);
            }
            if trace {
                spans.push((track, start, end));
            }
        }
    }
    Ok((values, spans))
}
