//! The user's files and the benchmark's input: `.npy` inputs and outputs
//! and TOML errors, each naming the file, and the seeded input.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use ndarray::{Array2, Array4};
use ndarray_npy::{write_npy, ReadNpyExt};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Reads a float32 `[N, 3, H, W]` array.
pub fn read_input(path: &Path, size: Option<usize>) -> Result<Array4<f32>> {
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow!(
            "{}: expected a float32 .npy array of shape [N, 3, H, W]: {e}",
            path.display()
        )
    })?;
    parse_input(&bytes, path, size)
}

/// The header of an .npy file as its format lays it out: magic, version,
/// header length, header. `None` when it is not there in full.
fn header(bytes: &[u8]) -> Option<&[u8]> {
    let (len, start): (usize, usize) = match bytes.get(6)? {
        1 => (
            u16::from_le_bytes([*bytes.get(8)?, *bytes.get(9)?]) as usize,
            10,
        ),
        _ => {
            let b = bytes.get(8..12)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
    };
    bytes.get(start..start.checked_add(len)?)
}

/// The element count an .npy header declares, if it can be read: a guard so
/// that a header promising more data than the file holds is refused before
/// anything is allocated for it.
fn declared_elements(bytes: &[u8]) -> Option<u128> {
    let header = std::str::from_utf8(header(bytes)?).ok()?;
    let shape = header.split("'shape':").nth(1)?;
    let inner = shape.split('(').nth(1)?.split(')').next()?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .try_fold(1u128, |acc, d| acc.checked_mul(d.parse::<u128>().ok()?))
}

/// Reads `.npy` bytes; `path` names them in errors.
pub fn parse_input(bytes: &[u8], path: &Path, size: Option<usize>) -> Result<Array4<f32>> {
    if !bytes.starts_with(b"\x93NUMPY") || header(bytes).is_none() {
        bail!(
            "{}: expected a float32 .npy array of shape [N, 3, H, W]: not an .npy file, or its header is cut short",
            path.display()
        );
    }
    if let Some(n) = declared_elements(bytes) {
        if n.saturating_mul(4) > bytes.len() as u128 {
            bail!(
                "{}: the header declares {n} elements, but the file holds only {} bytes",
                path.display(),
                bytes.len()
            );
        }
    }
    let a = ndarray::ArrayD::<f32>::read_npy(bytes).map_err(|e| {
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

/// One line for a TOML error: `file:line: <the line>: message`.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let src = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("{}:{line}: `{src}`: {msg}", path.display())
        }
        None => format!("{}: {msg}", path.display()),
    }
}

/// The benchmark input: seeded standard normal `[batch, 3, size, size]`.
pub fn seeded_input(batch: usize, size: usize, seed: u64) -> Array4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(0x5eed));
    Array4::from_shape_simple_fn((batch, 3, size, size), || StandardNormal.sample(&mut rng))
}
