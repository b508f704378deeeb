//! Weights: seeded deterministic initialisation, and safetensors import and
//! export under the PyTorch state_dict names the graph declares.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use safetensors::tensor::{self as st, Dtype};
use safetensors::SafeTensors;

use super::{Graph, Op, ParamRef};

/// One float32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// The whole tensor, borrowed.
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            shape: self.shape.clone(),
            data: &self.data,
        }
    }

    /// Rows `[start, start+len)` of the first dimension, borrowed: rows of a
    /// row-major tensor are contiguous, so they are one sub-slice.
    pub fn rows(&self, start: usize, len: usize) -> TensorView<'_> {
        let row: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = len;
        TensorView {
            shape,
            data: &self.data[start * row..(start + len) * row],
        }
    }
}

/// A stored tensor or some of its output channels, read in place: what
/// lowering reads, with no copy of the data.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorView<'a> {
    pub shape: Vec<usize>,
    pub data: &'a [f32],
}

impl TensorView<'_> {
    /// An owned copy.
    pub fn to_tensor(&self) -> Tensor {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.to_vec(),
        }
    }
}

/// Every tensor of a graph, by state_dict name.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub tensors: BTreeMap<String, Tensor>,
}

/// 64-bit FNV-1a, so each tensor's stream depends only on seed and name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

impl Weights {
    /// Deterministic weights: the same seed and graph give the same tensors on
    /// every machine. Convolutions and linear layers are normal with variance
    /// 1/fan_in (activations keep their scale); batch norms get statistics
    /// near identity so that a deep network stays numerically tame.
    pub fn seeded(graph: &Graph, seed: u64) -> Weights {
        let tensors = graph
            .params
            .iter()
            .map(|(name, shape)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(name.as_bytes()));
                let n: usize = shape.iter().product();
                let uniform = |lo: f32, hi: f32, rng: &mut ChaCha8Rng| -> Vec<f32> {
                    let d = Uniform::new(lo, hi);
                    (0..n).map(|_| d.sample(rng)).collect()
                };
                let data = match name.rsplit('.').next().unwrap_or("") {
                    "running_var" => uniform(0.5, 1.5, &mut rng),
                    "running_mean" | "bias" if shape.len() == 1 && is_bn(graph, name) => {
                        uniform(-0.1, 0.1, &mut rng)
                    }
                    "weight" if shape.len() == 1 => uniform(0.5, 1.0, &mut rng),
                    "bias" => uniform(-0.05, 0.05, &mut rng),
                    _ => {
                        let fan_in: usize = shape[1..].iter().product();
                        let std = (1.0 / fan_in.max(1) as f32).sqrt();
                        let d = Normal::new(0.0, std).unwrap_or_else(|_| unreachable!());
                        (0..n).map(|_| d.sample(&mut rng)).collect()
                    }
                };
                (
                    name.clone(),
                    Tensor {
                        shape: shape.clone(),
                        data,
                    },
                )
            })
            .collect();
        Weights { tensors }
    }

    /// Loads a safetensors file and checks it against the graph: missing,
    /// unexpected and mis-shaped keys are reported together. PyTorch's
    /// `num_batches_tracked` counters are ignored.
    pub fn load(path: &Path, graph: &Graph) -> Result<Weights> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("{}: cannot read weights", path.display()))?;
        Self::from_bytes(&bytes, graph, path)
    }

    /// Parses safetensors bytes against the graph; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], graph: &Graph, path: &Path) -> Result<Weights> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| {
            anyhow::anyhow!("{}: not a valid safetensors file: {e}", path.display())
        })?;
        let mut tensors = BTreeMap::new();
        let mut unexpected = Vec::new();
        let mut misshaped = Vec::new();
        let mut bad_dtype = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (name, view) in st.tensors() {
            if name.ends_with("num_batches_tracked") {
                continue;
            }
            seen.insert(name.clone());
            let Some(want) = graph.params.get(&name) else {
                unexpected.push(name);
                continue;
            };
            if view.shape() != want.as_slice() {
                misshaped.push(format!("{name} is {:?}, expected {want:?}", view.shape()));
                continue;
            }
            match to_f32(&view) {
                Some(data) => {
                    tensors.insert(
                        name,
                        Tensor {
                            shape: want.clone(),
                            data,
                        },
                    );
                }
                None => bad_dtype.push(format!("{name} is {:?}", view.dtype())),
            }
        }
        let missing: Vec<String> = graph
            .params
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        let mut problems = Vec::new();
        let list = |v: &[String]| summarise(v);
        if !missing.is_empty() {
            problems.push(format!("missing {}", list(&missing)));
        }
        if !unexpected.is_empty() {
            unexpected.sort();
            problems.push(format!("unexpected {}", list(&unexpected)));
        }
        if !misshaped.is_empty() {
            problems.push(format!("wrong shape: {}", list(&misshaped)));
        }
        if !bad_dtype.is_empty() {
            problems.push(format!(
                "wrong dtype (expected F32, F64, F16 or BF16): {}",
                list(&bad_dtype)
            ));
        }
        if !problems.is_empty() {
            bail!(
                "{}: does not fit model '{}': {}",
                path.display(),
                graph.name,
                problems.join("; ")
            );
        }
        let weights = Weights { tensors };
        let bad = weights.non_finite();
        if let Some((first, _)) = bad.first() {
            let n: usize = bad.iter().map(|(_, n)| n).sum();
            eprintln!(
                "warning: {}: {n} weight value(s) in {} tensor(s) (first: {first}) are NaN or infinite; \
                 timings on such values follow other code paths than on real weights",
                path.display(),
                bad.len()
            );
        }
        Ok(weights)
    }

    /// The tensors holding NaN or infinite values, with how many each holds.
    pub fn non_finite(&self) -> Vec<(String, usize)> {
        self.tensors
            .iter()
            .map(|(k, t)| (k.clone(), crate::io::non_finite(&t.data)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Writes the tensors as a float32 safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<Vec<u8>> = self
            .tensors
            .values()
            .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let views: Vec<(&str, st::TensorView)> = self
            .tensors
            .iter()
            .zip(&bytes)
            .map(|((k, t), b)| {
                Ok((
                    k.as_str(),
                    st::TensorView::new(Dtype::F32, t.shape.clone(), b)?,
                ))
            })
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        safetensors::serialize_to_file(views, &None, path)
            .with_context(|| format!("{}: cannot write weights", path.display()))
    }

    /// The tensor `<prefix>.<suffix>` of a node, borrowed, sliced when the
    /// node uses only some output channels.
    pub fn get(&self, p: &ParamRef, suffix: &str) -> Result<TensorView<'_>> {
        let key = format!("{}.{suffix}", p.prefix);
        let t = self
            .tensors
            .get(&key)
            .with_context(|| format!("weights have no tensor '{key}'"))?;
        Ok(match p.out_slice {
            Some(s) => t.rows(s.start, s.len),
            None => t.view(),
        })
    }

    /// The tensors `op` reads, with their suffixes, in the order of
    /// [`Op::params`]; none for an operation without parameters.
    pub fn params_of(&self, op: &Op) -> Result<Vec<(&'static str, TensorView<'_>)>> {
        let Some((p, suffixes)) = op.params() else {
            return Ok(Vec::new());
        };
        suffixes
            .iter()
            .map(|&suffix| Ok((suffix, self.get(p, suffix)?)))
            .collect()
    }
}

fn is_bn(graph: &Graph, name: &str) -> bool {
    let prefix = name.rsplit_once('.').map_or(name, |(p, _)| p);
    graph.params.contains_key(&format!("{prefix}.running_var"))
}

fn summarise(v: &[String]) -> String {
    const SHOW: usize = 6;
    if v.len() <= SHOW {
        v.join(", ")
    } else {
        format!("{} and {} more", v[..SHOW].join(", "), v.len() - SHOW)
    }
}

fn to_f32(view: &st::TensorView) -> Option<Vec<f32>> {
    let b = view.data();
    Some(match view.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a) as f32
            })
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ChannelSlice;

    fn one(shape: Vec<usize>) -> Weights {
        let n = shape.iter().product::<usize>();
        let data = (0..n).map(|v| v as f32).collect();
        Weights {
            tensors: BTreeMap::from([("c.weight".to_string(), Tensor { shape, data })]),
        }
    }

    #[test]
    fn non_finite_tensors_are_found() {
        let mut w = one(vec![4, 1, 1, 1]);
        assert!(w.non_finite().is_empty());
        let t = w.tensors.get_mut("c.weight").unwrap();
        t.data[1] = f32::NAN;
        t.data[3] = f32::NEG_INFINITY;
        assert_eq!(w.non_finite(), [("c.weight".to_string(), 2)]);
    }

    #[test]
    fn get_borrows_the_stored_tensor() {
        let w = one(vec![4, 2, 1, 1]);
        let stored = &w.tensors["c.weight"];
        let v = w.get(&ParamRef::whole("c"), "weight").unwrap();
        assert_eq!(v.shape, [4, 2, 1, 1]);
        assert!(std::ptr::eq(v.data, stored.data.as_slice()));
        assert_eq!(v.to_tensor(), *stored);
    }

    #[test]
    fn an_output_channel_slice_is_a_sub_slice() {
        let w = one(vec![4, 2, 1, 1]);
        let p = ParamRef {
            prefix: "c".into(),
            out_slice: Some(ChannelSlice {
                start: 1,
                len: 2,
                total: 4,
            }),
        };
        let v = w.get(&p, "weight").unwrap();
        assert_eq!(v.shape, [2, 2, 1, 1]);
        assert_eq!(v.data, [2.0, 3.0, 4.0, 5.0]);
        assert!(std::ptr::eq(
            v.data.as_ptr(),
            w.tensors["c.weight"].data[2..].as_ptr()
        ));
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let w = one(vec![1]);
        let err = w.get(&ParamRef::whole("c"), "bias").unwrap_err();
        assert_eq!(err.to_string(), "weights have no tensor 'c.bias'");
        let conv = Op::Conv {
            out: 1,
            kernel: [1; 2],
            stride: [1; 2],
            pad: [0; 2],
            groups: 1,
            bias: true,
            params: ParamRef::whole("c"),
        };
        let err = w.params_of(&conv).unwrap_err();
        assert_eq!(err.to_string(), "weights have no tensor 'c.bias'");
        assert!(w.params_of(&Op::Relu).unwrap().is_empty());
    }

    #[test]
    fn params_of_follows_op_params() {
        let w = one(vec![1, 1, 1, 1]);
        let conv = Op::Conv {
            out: 1,
            kernel: [1; 2],
            stride: [1; 2],
            pad: [0; 2],
            groups: 1,
            bias: false,
            params: ParamRef::whole("c"),
        };
        let got = w.params_of(&conv).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "weight");
        assert_eq!(got[0].1.data, [0.0]);
    }

    #[test]
    fn save_and_load_round_trip() {
        let mut g = Graph::new("t", crate::graph::Shape::new(2, 3, 3));
        let conv = Op::Conv {
            out: 4,
            kernel: [3; 2],
            stride: [1; 2],
            pad: [1; 2],
            groups: 1,
            bias: true,
            params: ParamRef::whole("c"),
        };
        g.add("c", conv, &[0]).unwrap();
        let w = Weights::seeded(&g, 3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        w.save(&path).unwrap();
        assert_eq!(Weights::load(&path, &g).unwrap(), w);
    }
}
