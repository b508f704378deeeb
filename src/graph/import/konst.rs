//! Constant tensors of an imported ONNX graph: initializers, `Constant`
//! nodes and what the exporter computes from shapes at run time (Shape ->
//! Gather -> Unsqueeze -> Concat chains), folded here.

use anyhow::{bail, Result};

use crate::graph::onnx_proto::{TensorProto, FLOAT, INT64};

/// `TensorProto.DataType` of int32, read as int64.
const INT32: i32 = 6;
/// `TensorProto.DataType` of double, read as float32 where exact enough.
const DOUBLE: i32 = 11;

/// The value of the batch dimension where the file leaves it symbolic:
/// a shape read at run time holds it, and a reshape may carry it on, but no
/// arithmetic may use it.
pub const BATCH: i64 = i64::MIN / 2;

/// The most elements a tensor may declare (16 GiB of float32).
const MAX_ELEMENTS: usize = 1 << 32;

/// The largest size, window or dimension a node may name: beyond it a
/// value is a damaged file, not a network.
pub const MAX_DIM: i64 = 1 << 24;

/// `v` as a size of at most [`MAX_DIM`].
pub fn dim(v: i64, what: &str) -> Result<usize> {
    if !(0..=MAX_DIM).contains(&v) {
        bail!("{what} = {v}: expected 0 to {MAX_DIM}");
    }
    Ok(v as usize)
}

/// The product of dimensions, where it fits.
pub fn product(dims: &[i64]) -> Option<i64> {
    dims.iter().try_fold(1i64, |a, &d| a.checked_mul(d))
}

/// A constant: its dimensions and its elements, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Konst {
    pub dims: Vec<usize>,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F(Vec<f32>),
    I(Vec<i64>),
}

impl Konst {
    pub fn ints(v: Vec<i64>) -> Konst {
        Konst {
            dims: vec![v.len()],
            data: Data::I(v),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    /// The elements as integers (floats must be whole).
    pub fn as_ints(&self) -> Result<Vec<i64>> {
        match &self.data {
            Data::I(v) => Ok(v.clone()),
            Data::F(v) => v
                .iter()
                .map(|&x| {
                    if x.fract() == 0.0 && x.abs() < 9.0e15 {
                        Ok(x as i64)
                    } else {
                        bail!("expected whole numbers, got {x}")
                    }
                })
                .collect(),
        }
    }

    /// The elements as floats.
    pub fn as_floats(&self) -> Result<Vec<f32>> {
        match &self.data {
            Data::F(v) => Ok(v.clone()),
            Data::I(v) => {
                if v.contains(&BATCH) {
                    bail!("depends on the batch size, which the file leaves open");
                }
                Ok(v.iter().map(|&x| x as f32).collect())
            }
        }
    }

    /// One scalar (a tensor of one element).
    pub fn scalar_f(&self) -> Result<f32> {
        match self.as_floats()?.as_slice() {
            [x] => Ok(*x),
            v => bail!("expected one value, got {}", v.len()),
        }
    }
}

/// Reads an initializer or a `Constant`'s tensor, checking that its data
/// holds as many elements as its dimensions declare.
pub fn from_proto(t: &TensorProto) -> Result<Konst> {
    if t.data_location == 1 {
        bail!("its data is in an external file; export the model with its weights inside it");
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        if d < 0 {
            bail!("dimension {d} is negative");
        }
        dims.push(d as usize);
    }
    let want = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| anyhow::anyhow!("declares shape {dims:?}, too large a tensor"))?;
    let raw = |width: usize| -> Result<&[u8]> {
        if t.raw_data.len() != want * width {
            bail!(
                "declares shape {dims:?} ({want} elements, {} bytes) but holds {} bytes",
                want * width,
                t.raw_data.len()
            );
        }
        Ok(&t.raw_data)
    };
    let from_raw = !t.raw_data.is_empty() || want == 0;
    let data = match t.data_type {
        FLOAT if from_raw => Data::F(
            raw(4)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        FLOAT => Data::F(t.float_data.clone()),
        DOUBLE if from_raw => Data::F(
            raw(8)?
                .chunks_exact(8)
                .map(|b| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    f64::from_le_bytes(a) as f32
                })
                .collect(),
        ),
        INT64 if from_raw => Data::I(
            raw(8)?
                .chunks_exact(8)
                .map(|b| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    i64::from_le_bytes(a)
                })
                .collect(),
        ),
        INT64 => Data::I(t.int64_data.clone()),
        INT32 if from_raw => Data::I(
            raw(4)?
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
        ),
        INT32 => Data::I(t.int32_data.iter().map(|&x| i64::from(x)).collect()),
        other => {
            bail!("element type {other} is not supported (float32, float64, int32 and int64 are)")
        }
    };
    let k = Konst { dims, data };
    if k.len() != want {
        bail!(
            "declares shape {:?} ({want} elements) but holds {}",
            k.dims,
            k.len()
        );
    }
    Ok(k)
}

/// An axis as ONNX gives it (negative counts from the end) for `rank`.
pub fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let i = if a < 0 { a + r } else { a };
    if !(0..r).contains(&i) {
        bail!("axis {a} is outside a tensor of rank {rank}");
    }
    Ok(i as usize)
}

/// `Gather` on the first axis of a constant (what shape chains use).
pub fn gather(data: &Konst, indices: &Konst, ax: usize) -> Result<Konst> {
    if ax != 0 || data.dims.len() != 1 {
        bail!("only gathering from a 1-D constant is folded");
    }
    let n = data.dims[0] as i64;
    let idx = indices.as_ints()?;
    let mut picked = Vec::with_capacity(idx.len());
    for &i in &idx {
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            bail!("index {i} is outside 0..{n}");
        }
        picked.push(j as usize);
    }
    let data = match &data.data {
        Data::I(v) => Data::I(picked.iter().map(|&j| v[j]).collect()),
        Data::F(v) => Data::F(picked.iter().map(|&j| v[j]).collect()),
    };
    Ok(Konst {
        dims: indices.dims.clone(),
        data,
    })
}

/// `Concat` of constants (1-D, as in shape chains).
pub fn concat(parts: &[Konst]) -> Result<Konst> {
    let mut ints = Vec::new();
    let mut floats = Vec::new();
    for p in parts {
        if p.dims.len() > 1 {
            bail!("only 1-D constants are concatenated here");
        }
        match &p.data {
            Data::I(v) => ints.extend_from_slice(v),
            Data::F(v) => floats.extend_from_slice(v),
        }
    }
    match (ints.is_empty(), floats.is_empty()) {
        (_, true) => Ok(Konst::ints(ints)),
        (true, false) => Ok(Konst {
            dims: vec![floats.len()],
            data: Data::F(floats),
        }),
        _ => bail!("mixes integer and float constants"),
    }
}

/// Element-wise arithmetic on integer constants (`Add`, `Sub`, `Mul`,
/// `Div`), with a scalar broadcast; the batch placeholder refuses it.
pub fn arith(op: &str, a: &Konst, b: &Konst) -> Result<Konst> {
    let (x, y) = (a.as_ints()?, b.as_ints()?);
    if x.contains(&BATCH) || y.contains(&BATCH) {
        bail!("uses the batch size, which the file leaves open");
    }
    let n = x.len().max(y.len());
    if !(x.len() == n || x.len() == 1) || !(y.len() == n || y.len() == 1) {
        bail!(
            "operands of {} and {} elements do not broadcast",
            x.len(),
            y.len()
        );
    }
    let at = |v: &[i64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (p, q) = (at(&x, i), at(&y, i));
        out.push(
            match op {
                "Add" => p.checked_add(q),
                "Sub" => p.checked_sub(q),
                "Mul" => p.checked_mul(q),
                "Div" if q != 0 => Some(p.div_euclid(q)),
                _ => None,
            }
            .ok_or_else(|| anyhow::anyhow!("{op} of {p} and {q} is not defined"))?,
        );
    }
    let dims = if a.len() >= b.len() {
        a.dims.clone()
    } else {
        b.dims.clone()
    };
    Ok(Konst {
        dims,
        data: Data::I(out),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_f32(dims: Vec<i64>, v: &[f32]) -> TensorProto {
        TensorProto {
            dims,
            data_type: FLOAT,
            raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn tensors_are_read_in_each_encoding() {
        let k = from_proto(&raw_f32(vec![2], &[1.5, -2.0])).unwrap();
        assert_eq!(k.data, Data::F(vec![1.5, -2.0]));
        let t = TensorProto {
            dims: vec![3],
            data_type: INT64,
            int64_data: vec![4, -1, 7],
            ..Default::default()
        };
        assert_eq!(from_proto(&t).unwrap().as_ints().unwrap(), [4, -1, 7]);
        let t = TensorProto {
            dims: vec![2],
            data_type: INT32,
            raw_data: [3i32, -5].iter().flat_map(|x| x.to_le_bytes()).collect(),
            ..Default::default()
        };
        assert_eq!(from_proto(&t).unwrap().as_ints().unwrap(), [3, -5]);
        let scalar = from_proto(&raw_f32(vec![], &[0.25])).unwrap();
        assert_eq!(scalar.scalar_f().unwrap(), 0.25);
    }

    #[test]
    fn a_tensor_that_does_not_fill_its_shape_is_refused() {
        let e = from_proto(&raw_f32(vec![2, 3], &[1.0; 5])).unwrap_err();
        assert!(e.to_string().contains("[2, 3]"), "{e}");
        let t = TensorProto {
            dims: vec![4],
            data_type: FLOAT,
            float_data: vec![1.0, 2.0],
            ..Default::default()
        };
        assert!(from_proto(&t).unwrap_err().to_string().contains("holds 2"));
        let t = TensorProto {
            data_location: 1,
            ..raw_f32(vec![1], &[1.0])
        };
        assert!(from_proto(&t).unwrap_err().to_string().contains("external"));
    }

    #[test]
    fn shape_chains_fold() {
        let shape = Konst::ints(vec![BATCH, 8, 4, 4]);
        let n = gather(&shape, &Konst::ints(vec![0]), 0).unwrap();
        let c = gather(
            &shape,
            &Konst {
                dims: vec![],
                data: Data::I(vec![-3]),
            },
            0,
        )
        .unwrap();
        assert_eq!(c.dims, Vec::<usize>::new());
        let half = arith("Div", &c, &Konst::ints(vec![2])).unwrap();
        let joined = concat(&[n, Konst::ints(vec![2]), half]).unwrap();
        assert_eq!(joined.as_ints().unwrap(), [BATCH, 2, 4]);
        assert!(arith("Mul", &joined, &Konst::ints(vec![2]))
            .unwrap_err()
            .to_string()
            .contains("batch"));
        assert!(gather(&shape, &Konst::ints(vec![4]), 0).is_err());
        // a real 0 is a number, not the batch
        let zeros = arith("Mul", &Konst::ints(vec![0, 3]), &Konst::ints(vec![2])).unwrap();
        assert_eq!(zeros.as_ints().unwrap(), [0, 6]);
        assert!(Konst::ints(vec![BATCH]).as_floats().is_err());
        assert_eq!(Konst::ints(vec![0, 2]).as_floats().unwrap(), [0.0, 2.0]);
        assert_eq!(axis(-1, 4).unwrap(), 3);
        assert!(axis(4, 4).is_err());
    }
}
