//! `patches(x, axes=[..], window=[..], strides=[..], dilation=[..])`: every window of `x` along
//! `axes`, as new trailing axes. Along `axes[j]` (size `d`) the window has `window[j]` taps
//! spaced `dilation[j]` apart and moves by `strides[j]`: the output keeps `x`'s axes, with axis
//! `axes[j]` of size `⌊(d − (window[j] − 1)·dilation[j] − 1) / strides[j]⌋ + 1` (0 when the
//! window does not fit), followed by one axis per window dimension, in the order of `axes`.
//! `out[…, o_j, …, t_0, …] = x[…, o_j·strides[j] + t_j·dilation[j], …]`. Windows may overlap,
//! so the result can be larger than `x`; no padding (pad first).
//!
//! Windowed reductions (`reduce_window` in the text format, [`FunctionBuilder::reduce_window`])
//! are a `reduce` of patches; the JIT reads patches through a strided view (overlapping
//! strides), so neither copies them. Linear: the JVP is patches of the tangent; the transpose
//! adds each tap's slice of the cotangent back at its positions (a `pad` with interior zeros
//! per tap, summed: one pass per window tap), or, when the windows tile their axes (stride =
//! window, no dilation: pooling without overlap), moves each tap axis beside its position
//! axis and merges the two (one copy).

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, write_list};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{Binary, Pad, gather_view, linear_transpose, zeros};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, IrError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Tensor, for_each_index};
use crate::types::TensorType;

/// Windows of an operand as new trailing axes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Patches {
    /// The axes windows slide along (distinct).
    pub axes: Vec<usize>,
    /// Taps per window along each of `axes` (≥ 1).
    pub window: Vec<usize>,
    /// Window step along each of `axes` (≥ 1).
    pub strides: Vec<usize>,
    /// Spacing of the taps along each of `axes` (≥ 1).
    pub dilation: Vec<usize>,
}

impl Patches {
    /// Windows of `window` taps along `axes`, stride and dilation 1.
    pub fn new(axes: Vec<usize>, window: Vec<usize>) -> Patches {
        let n = axes.len();
        Patches { axes, window, strides: vec![1; n], dilation: vec![1; n] }
    }

    /// The number of window positions along an axis of size `d` (window dimension `j`).
    pub fn positions(&self, j: usize, d: usize) -> usize {
        let span = (self.window[j] - 1) * self.dilation[j] + 1;
        if d < span { 0 } else { (d - span) / self.strides[j] + 1 }
    }

    fn check(&self, rank: usize) -> Result<(), TypeError> {
        let n = self.axes.len();
        for (attr, v) in
            [("window", &self.window), ("strides", &self.strides), ("dilation", &self.dilation)]
        {
            if v.len() != n {
                return Err(TypeError::PatchesLength { attr, got: v.len(), axes: n });
            }
            if v.contains(&0) {
                return Err(TypeError::PatchesZero(attr));
            }
        }
        for (i, &a) in self.axes.iter().enumerate() {
            if a >= rank {
                return Err(TypeError::Axis { axis: a as i64, rank });
            }
            if self.axes[..i].contains(&a) {
                return Err(TypeError::PatchesAxes(self.axes.clone()));
            }
        }
        Ok(())
    }
}

impl OpRule for Patches {
    fn info(&self) -> OpInfo {
        OpInfo::new("patches", Arity::Fixed(1), Traits::LINEAR)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        self.check(x.rank())?;
        let mut dims = x.shape.0.clone();
        for (j, &a) in self.axes.iter().enumerate() {
            dims[a] = self.positions(j, dims[a]);
        }
        dims.extend(&self.window);
        Ok(x.with_shape(dims))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        // A strided view: position o_j advances strides[j] elements, tap t_j dilation[j].
        let x = a.x[0];
        let xs = x.shape.strides();
        let mut steps = xs.clone();
        for (j, &ax) in self.axes.iter().enumerate() {
            steps[ax] = xs[ax] * self.strides[j];
        }
        for (j, &ax) in self.axes.iter().enumerate() {
            steps.push(xs[ax] * self.dilation[j]);
        }
        Ok(gather_view(x, a.out, 0, &steps))
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        a.linear(b, self.clone())
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        linear_transpose(operands, |ty| self.transpose_into(b, ct, ty))
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        let p = Patches { axes: self.axes.iter().map(|x| x + 1).collect(), ..self.clone() };
        a.leading(b, |b, v| b.add(p.into(), v))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "axes", &self.axes);
        write_list(out, "window", &self.window);
        if self.strides.iter().any(|&s| s != 1) {
            write_list(out, "strides", &self.strides);
        }
        if self.dilation.iter().any(|&s| s != 1) {
            write_list(out, "dilation", &self.dilation);
        }
    }
}

impl Patches {
    /// The transpose: for each tap, the cotangent's slice at that tap, zero-padded back to the
    /// positions it was read from (`tap·dilation` before, `stride − 1` between), summed.
    fn transpose_into(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        ty: &TensorType,
    ) -> Result<NodeId, IrError> {
        let ctt = b.ty(ct)?.shape.0.clone();
        let r = ty.rank();
        if ctt.contains(&0) {
            return zeros(b, ty);
        }
        if self.tiles() {
            return self.untile(b, ct, &ctt, ty);
        }
        let mut taps = Vec::new();
        for_each_index(&self.window, |tap| taps.push(tap.to_vec()));
        let mut acc: Option<NodeId> = None;
        for tap in taps {
            let mut start = vec![0; ctt.len()];
            let mut stop = ctt.clone();
            for (j, &t) in tap.iter().enumerate() {
                start[r + j] = t;
                stop[r + j] = t + 1;
            }
            let s = b.slice(ct, &start, &stop, &vec![1; ctt.len()])?;
            let s = b.reshape(s, ctt[..r].to_vec())?;
            let (mut lo, mut hi, mut interior) = (vec![0; r], vec![0; r], vec![0; r]);
            for (j, &ax) in self.axes.iter().enumerate() {
                let first = tap[j] * self.dilation[j];
                let used = first + (ctt[ax] - 1) * self.strides[j] + 1;
                lo[ax] = first;
                interior[ax] = self.strides[j] - 1;
                hi[ax] = ty.shape.dims()[ax] - used;
            }
            let p = b.add(Pad { lo, hi, interior }.into(), &[s])?;
            acc = Some(match acc {
                None => p,
                Some(a) => b.binary(Binary::Add, a, p)?,
            });
        }
        match acc {
            Some(a) => Ok(a),
            None => zeros(b, ty),
        }
    }
}

impl Patches {
    /// Whether the windows tile their axes: each element is read by at most one tap (windows
    /// of stride equal to their size, taps adjacent), as in pooling without overlap.
    fn tiles(&self) -> bool {
        self.dilation.iter().all(|&d| d == 1) && self.window == self.strides
    }

    /// The transpose of tiling windows: each tap axis moved beside its position axis and the
    /// two merged (position·window + tap is the element read), then zeros after the last
    /// window where it does not reach the end of the axis. One copy, where the general
    /// transpose makes a padded copy per tap and sums them.
    fn untile(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        ctt: &[usize],
        ty: &TensorType,
    ) -> Result<NodeId, IrError> {
        let r = ty.rank();
        let mut perm = Vec::with_capacity(ctt.len());
        let mut dims = Vec::with_capacity(r);
        for i in 0..r {
            perm.push(i);
            dims.push(ctt[i]);
            if let Some(j) = self.axes.iter().position(|&a| a == i) {
                perm.push(r + j);
                dims[i] *= self.window[j];
            }
        }
        let t = b.transpose(ct, &perm)?;
        let m = b.reshape(t, dims.clone())?;
        let hi: Vec<usize> = ty.shape.dims().iter().zip(&dims).map(|(&d, &u)| d - u).collect();
        if hi.iter().all(|&h| h == 0) {
            return Ok(m);
        }
        b.add(Pad { lo: vec![0; r], hi, interior: vec![0; r] }.into(), &[m])
    }
}

impl ParseOp for Patches {
    fn names() -> Vec<&'static str> {
        vec!["patches"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "patches").then(|| {
            let axes = args.take_usizes("axes")?;
            let window = args.take_usizes("window")?;
            let strides = args.take_usizes_or("strides", || vec![1; axes.len()])?;
            let dilation = args.take_usizes_or("dilation", || vec![1; axes.len()])?;
            Ok(Patches { axes, window, strides, dilation })
        })
    }
}

/// The attributes of a windowed reduction, one entry per axis of the operand (see
/// [`FunctionBuilder::reduce_window`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Taps per window.
    pub window: Vec<usize>,
    /// Window steps.
    pub strides: Vec<usize>,
    /// Zeros (or −∞ for `max`) before and after each axis of the dilated operand.
    pub padding: Vec<(usize, usize)>,
    /// Operand dilation: `base_dilation − 1` holes between neighbours.
    pub base_dilation: Vec<usize>,
    /// Tap spacing.
    pub window_dilation: Vec<usize>,
}

impl Window {
    /// Windows of `window` moving by `strides`, no padding or dilation.
    pub fn new(window: Vec<usize>, strides: Vec<usize>) -> Window {
        let r = window.len();
        Window {
            window,
            strides,
            padding: vec![(0, 0); r],
            base_dilation: vec![1; r],
            window_dilation: vec![1; r],
        }
    }
}
