//! The user's files and the benchmark's input: `.npy` inputs and outputs
//! and TOML errors, each naming the file, and the seeded input.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use ndarray::{Array2, Array4, Axis};
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

/// The `descr` (dtype) an .npy header declares, e.g. `<f4`.
fn declared_dtype(bytes: &[u8]) -> Option<String> {
    let header = std::str::from_utf8(header(bytes)?).ok()?;
    let rest = header.split("'descr':").nth(1)?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    rest[1..].split(quote).next().map(str::to_string)
}

/// numpy's name of an .npy dtype code, for messages.
fn dtype_name(descr: &str) -> String {
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    let name = match code {
        "f2" => "float16",
        "f4" => "float32",
        "f8" => "float64",
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "b1" => "bool",
        _ => return format!("'{descr}'"),
    };
    format!("{name} ('{descr}')")
}

/// The values of `data` that are NaN or infinite.
pub fn non_finite(data: &[f32]) -> usize {
    data.iter().filter(|v| !v.is_finite()).count()
}

/// A warning on standard error when `what` holds NaN or infinite values:
/// a benchmark on them times other code paths than on real data.
pub fn warn_non_finite(what: &str, data: &[f32]) {
    let n = non_finite(data);
    if n > 0 {
        eprintln!(
            "warning: {what}: {n} of {} values are NaN or infinite; timings on such values follow other code paths than on real data",
            data.len()
        );
    }
}

/// Reads `.npy` bytes; `path` names them in errors.
pub fn parse_input(bytes: &[u8], path: &Path, size: Option<usize>) -> Result<Array4<f32>> {
    if !bytes.starts_with(b"\x93NUMPY") || header(bytes).is_none() {
        bail!(
            "{}: expected a float32 .npy array of shape [N, 3, H, W]: not an .npy file, or its header is cut short",
            path.display()
        );
    }
    if let Some(descr) = declared_dtype(bytes) {
        if !matches!(descr.as_str(), "<f4" | "=f4") {
            bail!(
                "{}: dtype {}, expected float32 ('<f4', little-endian); convert it, e.g. numpy's x.astype('<f4')",
                path.display(),
                dtype_name(&descr)
            );
        }
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
    let a: Array4<f32> = a
        .into_dimensionality()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let a = a.as_standard_layout().to_owned();
    warn_non_finite(
        &path.display().to_string(),
        a.as_slice().unwrap_or_default(),
    );
    Ok(a)
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

/// max |a - b|, max |a - b| / max |b|, rows whose argmax agree.
pub fn compare_logits(a: &Array2<f32>, b: &Array2<f32>) -> Result<(f64, f64, usize)> {
    if a.shape() != b.shape() {
        bail!("shapes differ: {:?} vs {:?}", a.shape(), b.shape());
    }
    let max_ref = b.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    let max_diff = a
        .iter()
        .zip(b.iter())
        .fold(0f64, |m, (x, y)| m.max(f64::from((x - y).abs())));
    let argmax = |r: ndarray::ArrayView1<f32>| {
        r.iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                if v > best.1 {
                    (i, v)
                } else {
                    best
                }
            })
            .0
    };
    let agree = a
        .axis_iter(Axis(0))
        .zip(b.axis_iter(Axis(0)))
        .filter(|(x, y)| argmax(*x) == argmax(*y))
        .count();
    let rel = if max_ref > 0.0 {
        max_diff / max_ref
    } else {
        max_diff
    };
    if !rel.is_finite() || a.iter().any(|v| !v.is_finite()) {
        return Ok((f64::INFINITY, f64::INFINITY, agree));
    }
    Ok((max_diff, rel, agree))
}

/// ||a - b|| / ||b|| over every element (infinite where `a` holds a
/// non-finite value or `b` is all zeros and `a` is not).
pub fn relative_l2(a: &Array2<f32>, b: &Array2<f32>) -> Result<f64> {
    if a.shape() != b.shape() {
        bail!("shapes differ: {:?} vs {:?}", a.shape(), b.shape());
    }
    let sq = |it: &mut dyn Iterator<Item = f64>| it.map(|v| v * v).sum::<f64>().sqrt();
    let diff = sq(&mut a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| f64::from(*x) - f64::from(*y)));
    let norm = sq(&mut b.iter().map(|y| f64::from(*y)));
    Ok(match (diff.is_finite(), norm > 0.0) {
        (false, _) => f64::INFINITY,
        (true, true) => diff / norm,
        (true, false) if diff == 0.0 => 0.0,
        (true, false) => f64::INFINITY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_l2_is_the_norm_of_the_difference_over_the_reference() {
        let b = Array2::from_shape_vec((1, 2), vec![3.0f32, 4.0]).unwrap();
        let a = Array2::from_shape_vec((1, 2), vec![3.0f32, 4.5]).unwrap();
        assert_eq!(relative_l2(&a, &b).unwrap(), 0.1);
        assert_eq!(relative_l2(&b, &b).unwrap(), 0.0);
        let nan = Array2::from_shape_vec((1, 2), vec![f32::NAN, 4.0]).unwrap();
        assert_eq!(relative_l2(&nan, &b).unwrap(), f64::INFINITY);
        let zero = Array2::zeros((1, 2));
        assert_eq!(relative_l2(&zero, &zero).unwrap(), 0.0);
        assert_eq!(relative_l2(&b, &zero).unwrap(), f64::INFINITY);
        assert!(relative_l2(&b, &Array2::zeros((2, 2))).is_err());
    }

    /// An .npy file of `descr` values with `shape`, holding `data`.
    fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}",
            dims.join(", ")
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn a_wrong_dtype_is_named() {
        let p = Path::new("x.npy");
        let half = npy("<f2", &[1, 3, 2, 2], &[0u8; 24]);
        let e = parse_input(&half, p, None).unwrap_err().to_string();
        assert!(
            e.contains("x.npy") && e.contains("float16 ('<f2')") && e.contains("expected float32"),
            "{e}"
        );
        let double = npy("<f8", &[1, 3, 2, 2], &[0u8; 96]);
        let e = parse_input(&double, p, None).unwrap_err().to_string();
        assert!(e.contains("float64"), "{e}");
        let big = npy(">f4", &[1, 3, 2, 2], &[0u8; 48]);
        assert!(parse_input(&big, p, None).is_err());
        let good = npy("<f4", &[1, 3, 2, 2], &[0u8; 48]);
        assert_eq!(parse_input(&good, p, None).unwrap().shape(), [1, 3, 2, 2]);
    }

    #[test]
    fn non_finite_values_are_counted() {
        assert_eq!(
            non_finite(&[1.0, f32::NAN, f32::INFINITY, -f32::INFINITY, 0.0]),
            3
        );
        assert_eq!(non_finite(&[1.0, -2.0]), 0);
    }
}
