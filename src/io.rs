//! `.npy` input and output files, with errors that name the file.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use ndarray::{Array2, Array4};
use ndarray_npy::{read_npy, write_npy};

/// Reads a float32 `[N, 3, H, W]` array.
pub fn read_input(path: &Path, size: Option<usize>) -> Result<Array4<f32>> {
    let a: ndarray::ArrayD<f32> = read_npy(path).map_err(|e| {
        anyhow!(
            "{}: expected a float32 .npy array of shape [N, 3, H, W]: {e}",
            path.display()
        )
    })?;
    let shape = a.shape().to_vec();
    if shape.len() != 4 || shape[1] != 3 || shape[0] == 0 {
        bail!(
            "{}: shape {shape:?}, expected [N, 3, H, W] with N >= 1",
            path.display()
        );
    }
    if let Some(s) = size {
        if shape[2] != s || shape[3] != s {
            bail!(
                "{}: spatial size {}x{}, expected {s}x{s}",
                path.display(),
                shape[2],
                shape[3]
            );
        }
    }
    let a = a
        .into_dimensionality()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(a.as_standard_layout().to_owned())
}

pub fn write_logits(path: &Path, y: &Array2<f32>) -> Result<()> {
    write_npy(path, y).map_err(|e| anyhow!("{}: cannot write: {e}", path.display()))
}
