//! ScaleNet (Li et al., CVPR 2019): scale aggregation blocks.

use anyhow::{bail, Result};

use super::builder::{bn, conv, head, relu, stem};
use super::spec::ScaleNetSpec;
use crate::graph::{Graph, NodeId, Op, ParamRef, ResizeMode, Shape};

pub fn build(
    name: &str,
    spec: &ScaleNetSpec,
    structure: &[Vec<usize>],
    classes: usize,
    input: Shape,
) -> Result<Graph> {
    let mut g = Graph::new(name, input);
    let mut x = stem(&mut g)?;
    let mut inplanes = 64;
    let mut rows = structure.iter();
    for (stage, &blocks) in spec.layers.iter().enumerate() {
        let planes = 64 << stage;
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let Some(row) = rows.next() else {
                bail!("structure has fewer rows than the layers need");
            };
            let prefix = format!("layer{}.{b}", stage + 1);
            x = block(&mut g, spec, row, &prefix, x, inplanes, planes, stride)?;
            inplanes = planes * 4;
        }
    }
    head(&mut g, x, classes)?;
    Ok(g)
}

#[allow(clippy::too_many_arguments)]
fn block(
    g: &mut Graph,
    spec: &ScaleNetSpec,
    row: &[usize],
    p: &str,
    mut input: NodeId,
    inplanes: usize,
    planes: usize,
    stride: usize,
) -> Result<NodeId> {
    let scales = &spec.scales;
    let side = row[scales.len()];
    if stride == 2 {
        let pool = Op::MaxPool {
            kernel: 2,
            stride: 2,
            pad: 0,
            ceil: false,
        };
        input = g.add(&format!("{p}.pool"), pool, &[input])?;
    }
    let shortcut = if inplanes != planes * 4 {
        let s = conv(g, &format!("{p}.downsample.0"), input, planes * 4, 1, 1, 1)?;
        bn(g, &format!("{p}.downsample.1"), s)?
    } else {
        input
    };
    let x = conv(g, &format!("{p}.conv1"), input, planes, 1, 1, 1)?;
    let x = bn(g, &format!("{p}.bn1"), x)?;
    let x = relu(g, &format!("{p}.relu1"), x)?;
    let here = g.nodes[x].shape;
    let mut branches = Vec::new();
    for (i, (&scale, &channels)) in scales.iter().zip(row).enumerate() {
        if channels == 0 {
            continue;
        }
        if here.h < scale || here.w < scale {
            bail!(
                "block {p}, branch {i} (scale {scale}): the {}x{} feature map is smaller than \
                 its {scale}x{scale} pooling; use a larger --size",
                here.h,
                here.w
            );
        }
        let mut y = x;
        if scale > 1 {
            let pool = Op::MaxPool {
                kernel: scale,
                stride: scale,
                pad: 0,
                ceil: false,
            };
            y = g.add(&format!("{p}.pool2.{i}"), pool, &[y])?;
        }
        let kernel = if side as f64 / f64::from(1u32 << i) <= 1.0 {
            1
        } else {
            3
        };
        let op = Op::Conv {
            out: channels,
            kernel: [kernel; 2],
            stride: [1; 2],
            pad: [kernel / 2; 2],
            groups: 1,
            bias: false,
            params: ParamRef::whole(format!("{p}.conv2.{i}")),
        };
        y = g.add(&format!("{p}.conv2.{i}"), op, &[y])?;
        if scale > 1 {
            // The authors' SABlock.forward: nearest when the branch input
            // size is divisible by the pooled (and convolved) map's size,
            // `size[0] % out.shape[2] == 0 and size[1] % out.shape[3] == 0`,
            // else bilinear. So 32 -> pool 7 -> 4 -> 32 is nearest although
            // 32 is not a multiple of 7.
            let pooled = g.nodes[y].shape;
            let mode = if here.h.is_multiple_of(pooled.h) && here.w.is_multiple_of(pooled.w) {
                ResizeMode::Nearest
            } else {
                ResizeMode::Bilinear
            };
            let up = Op::Resize {
                h: here.h,
                w: here.w,
                mode,
            };
            y = g.add(&format!("{p}.up.{i}"), up, &[y])?;
        }
        branches.push(bn(g, &format!("{p}.bn2.{i}"), y)?);
    }
    let x = g.add(&format!("{p}.concat"), Op::Concat, &branches)?;
    let x = relu(g, &format!("{p}.relu2"), x)?;
    let x = conv(g, &format!("{p}.conv3"), x, planes * 4, 1, 1, 1)?;
    let x = bn(g, &format!("{p}.bn3"), x)?;
    let sum = g.add(&format!("{p}.add"), Op::Add, &[x, shortcut])?;
    relu(g, &format!("{p}.relu3"), sum)
}

#[cfg(test)]
mod tests {
    use crate::graph::{Op, ResizeMode};
    use crate::zoo::{build, Catalog};

    /// Each upsampling of ScaleNet-50 at `size`: (block, branch input
    /// side, pooled side, nearest?).
    fn upsamplings(size: usize) -> Vec<(String, usize, usize, bool)> {
        let catalog = Catalog::built_in().unwrap();
        let g = build(catalog.find("scalenet50").unwrap(), size).unwrap();
        g.nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Resize { h, mode, .. } => Some((
                    n.name.rsplit_once(".up.").unwrap().0.to_string(),
                    h,
                    g.nodes[n.inputs[0]].shape.h,
                    mode == ResizeMode::Nearest,
                )),
                _ => None,
            })
            .collect()
    }

    /// The authors' rule: nearest where the branch input's side divides by
    /// the pooled map's, else bilinear (14 -> pool 4 -> 3 and 7 -> pool 2
    /// -> 3 at 224 px; 32 -> pool 7 -> 4 is nearest at 256 px although 32
    /// is not a multiple of 7).
    #[test]
    fn upsampling_is_nearest_only_where_the_pooled_side_divides() {
        for size in [224, 256, 160] {
            let ups = upsamplings(size);
            assert!(!ups.is_empty());
            for (block, side, pooled, nearest) in &ups {
                assert_eq!(
                    *nearest,
                    side % pooled == 0,
                    "{block} at {size}: {side} from {pooled}"
                );
            }
        }
        let at = |size, side, pooled| {
            upsamplings(size)
                .into_iter()
                .filter(|u| (u.1, u.2) == (side, pooled))
                .map(|u| u.3)
                .collect::<Vec<_>>()
        };
        let (bilinear_14, bilinear_7) = (at(224, 14, 3), at(224, 7, 3));
        assert!(!bilinear_14.is_empty() && bilinear_14.iter().all(|n| !n));
        assert!(!bilinear_7.is_empty() && bilinear_7.iter().all(|n| !n));
        let nearest_32 = at(256, 32, 4);
        assert!(!nearest_32.is_empty() && nearest_32.iter().all(|n| *n));
        assert!(at(224, 56, 8).iter().all(|n| *n));
    }
}
