//! An ONNX file run as it is: the reference `verify` holds an imported
//! model's lowerings to. ONNX Runtime's default graph optimisations, all
//! cores, the file's own input and output names; a file with a fixed batch
//! gets the input in parts of that batch.

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{s, Array2, Array4, Axis};
use ort::session::Session;
use ort::value::TensorRef;

pub(super) fn run(bytes: &[u8], input: &Array4<f32>, batch: Option<usize>) -> Result<Array2<f32>> {
    let n = input.shape()[0];
    let part = batch.unwrap_or(n).max(1);
    if !n.is_multiple_of(part) {
        bail!("the file takes batches of {part}; the input has {n} samples, not a multiple");
    }
    let mut session = Session::builder(super::env()?)?
        .with_intra_threads(speedbench::record::env::cores())
        .map_err(|e| anyhow!("{e}"))?
        .commit_from_memory(bytes)
        .context("ONNX Runtime cannot load the original file")?;
    let in_name = session
        .inputs()
        .first()
        .map(|i| i.name().to_string())
        .context("the file has no input")?;
    let out_name = session
        .outputs()
        .first()
        .map(|o| o.name().to_string())
        .context("the file has no output")?;
    let mut parts = Vec::new();
    for start in (0..n).step_by(part) {
        let x = input.slice(s![start..start + part, .., .., ..]).to_owned();
        let shape: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
        let data = x.as_slice().context("input is not contiguous")?;
        let tensor = TensorRef::from_array_view((shape, data))?;
        let mut outputs = session.run(ort::inputs![in_name.as_str() => tensor])?;
        let y = outputs
            .remove(out_name.as_str())
            .context("ONNX Runtime gave no output")?;
        let (dims, values) = y.try_extract_tensor::<f32>()?;
        let rows = dims.first().copied().unwrap_or(0) as usize;
        if rows != part || !values.len().is_multiple_of(part) {
            bail!("the file's output has shape {dims:?}; expected {part} rows");
        }
        parts.push(Array2::from_shape_vec(
            (part, values.len() / part),
            values.to_vec(),
        )?);
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    Ok(ndarray::concatenate(Axis(0), &views)?)
}
