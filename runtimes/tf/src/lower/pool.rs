//! Pooling windows with PyTorch's semantics: explicit padding (-inf for
//! the maximum, zeros for the average) and VALID windows, so that the
//! output size, ceil mode included, and the divisor are PyTorch's.

use anyhow::Result;
use tensorflow::{DataType, Output};

use super::{int, Builder, Layout};
use speedbench::graph::{Node, Op, Shape};

/// A square window on an input of `input` with output `output`.
pub(super) struct Window {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub input: Shape,
    pub output: Shape,
}

impl Window {
    /// The window of pooling node `n`, which reads a value of `input`.
    pub fn of(n: &Node, input: Shape) -> Option<Window> {
        match n.op {
            Op::MaxPool {
                kernel,
                stride,
                pad,
                ..
            }
            | Op::AvgPool {
                kernel,
                stride,
                pad,
                ..
            } => Some(Window {
                kernel,
                stride,
                pad,
                input,
                output: n.shape,
            }),
            _ => None,
        }
    }

    /// Padding after the input on an axis: at least `pad`, and enough for
    /// the last window of a ceil-mode output to be whole.
    fn after(&self, size: usize, out: usize) -> usize {
        ((out - 1) * self.stride + self.kernel)
            .saturating_sub(size + self.pad)
            .max(self.pad)
    }

    /// `[before, after]` per axis, in the layout's order.
    fn paddings(&self, layout: Layout) -> Result<Vec<i32>> {
        let p = int(self.pad)?;
        let h = int(self.after(self.input.h, self.output.h))?;
        let w = int(self.after(self.input.w, self.output.w))?;
        Ok(layout.order([0, 0], [0, 0], [p, h], [p, w]).concat())
    }

    fn padded(&self) -> bool {
        self.pad > 0
            || self.after(self.input.h, self.output.h) > 0
            || self.after(self.input.w, self.output.w) > 0
    }

    /// How many input (not padding) elements output `i` of an axis of
    /// `size` covers.
    fn inside(&self, i: usize, size: usize) -> usize {
        let start = (i * self.stride) as i64 - self.pad as i64;
        let end = (start + self.kernel as i64).min(size as i64);
        (end - start.max(0)).max(0) as usize
    }
}

impl Builder<'_> {
    /// `x` padded with `fill` where the window asks for it.
    fn pad_for(&mut self, name: &str, x: &Output, win: &Window, fill: f32) -> Result<Output> {
        if !win.padded() {
            return Ok(x.clone());
        }
        let pads = win.paddings(self.layout)?;
        let pads = self.constant(&format!("{name}/pads"), &[4, 2], &pads)?;
        let fill = self.constant(&format!("{name}/fill"), &[], &[fill])?;
        self.op(
            "PadV2",
            &format!("{name}/pad"),
            &[x.clone(), pads, fill],
            |d| {
                d.set_attr_type("T", DataType::Float)?;
                d.set_attr_type("Tpaddings", DataType::Int32)?;
                Ok(())
            },
        )
    }

    /// A VALID pooling operation of type `ty` on `x`.
    fn valid_pool(&mut self, ty: &str, name: &str, x: Output, win: &Window) -> Result<Output> {
        let ksize = self
            .layout
            .order(1, 1, win.kernel as i64, win.kernel as i64);
        let strides = self
            .layout
            .order(1, 1, win.stride as i64, win.stride as i64);
        let format = self.layout.format();
        self.op(ty, name, &[x], |d| {
            d.set_attr_type("T", DataType::Float)?;
            d.set_attr_int_list("ksize", &ksize)?;
            d.set_attr_int_list("strides", &strides)?;
            d.set_attr_string("padding", "VALID")?;
            d.set_attr_string("data_format", format)?;
            Ok(())
        })
    }

    /// PyTorch's max pooling: -inf padding, VALID windows.
    pub(super) fn max_pool(&mut self, name: &str, x: &Output, win: &Window) -> Result<Output> {
        let x = self.pad_for(name, x, win, f32::NEG_INFINITY)?;
        self.valid_pool("MaxPool", name, x, win)
    }

    /// PyTorch's average pooling: the mean over zero-padded windows, and
    /// where the padding is not counted, that mean times the window's size
    /// over the number of input elements it covers.
    pub(super) fn avg_pool(
        &mut self,
        name: &str,
        x: &Output,
        win: &Window,
        count_include_pad: bool,
    ) -> Result<Output> {
        let x = self.pad_for(name, x, win, 0.0)?;
        if count_include_pad || !win.padded() {
            return self.valid_pool("AvgPool", name, x, win);
        }
        let mean = self.valid_pool("AvgPool", &format!("{name}/mean"), x, win)?;
        let (oh, ow) = (win.output.h, win.output.w);
        let area = (win.kernel * win.kernel) as f32;
        let scale: Vec<f32> = (0..oh)
            .flat_map(|i| (0..ow).map(move |j| (i, j)))
            .map(|(i, j)| area / (win.inside(i, win.input.h) * win.inside(j, win.input.w)) as f32)
            .collect();
        let dims = self.layout.order(1, 1, oh as u64, ow as u64);
        let scale = self.constant(&format!("{name}/divisor"), &dims, &scale)?;
        self.simple("Mul", name, &[mean, scale])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(kernel: usize, stride: usize, pad: usize, size: usize, out: usize) -> Window {
        Window {
            kernel,
            stride,
            pad,
            input: Shape::new(1, size, size),
            output: Shape::new(1, out, out),
        }
    }

    #[test]
    fn ceil_mode_pads_the_last_window_whole() {
        // 112 -> 56 with a 3x3 window, stride 2, ceil mode: 111 + 3 = 114
        // padded elements, one after the input.
        let w = win(3, 2, 0, 112, 56);
        assert_eq!(w.after(112, 56), 1);
        assert!(w.padded());
        // floor mode: nothing after
        assert_eq!(win(3, 2, 0, 112, 55).after(112, 55), 0);
        assert!(!win(3, 2, 0, 112, 55).padded());
        // symmetric padding stays at least `pad`
        assert_eq!(win(3, 2, 1, 112, 56).after(112, 56), 1);
    }

    #[test]
    fn the_divisor_counts_only_the_input() {
        let w = win(3, 1, 1, 4, 4);
        assert_eq!(
            (0..4).map(|i| w.inside(i, 4)).collect::<Vec<_>>(),
            [2, 3, 3, 2]
        );
    }
}
