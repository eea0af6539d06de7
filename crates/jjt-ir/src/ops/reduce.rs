//! `sum`, `mean`, `max` over a set of axes (all axes if none are given). Reduced axes are
//! removed from the shape. The reference sums in the element dtype, in the blocked pairwise
//! order of [`crate::sum`] (terms in row-major order of the reduced axes, from `+0.0`); `max`
//! takes the terms left to right.
//! `max` propagates NaN; `max` over zero elements is `-inf` and `mean` over zero elements is
//! NaN (0/0).
//!
//! The derivative of `max` averages the tangent over the maximal elements (ties share it
//! evenly, as in JAX). `sum` and `mean` are linear; their transpose broadcasts back.

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{Binary, Compare, bad_dtype, keepdims, norm_axis, not_linear, want_float};
use super::{linear_transpose, view_offsets, write_list, zeros};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::sum;
use crate::tensor::{Data, Float, Tensor, for_each_index};
use crate::types::TensorType;

/// The reduction applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
}

impl ReduceKind {
    /// Every reduction.
    pub const ALL: [ReduceKind; 3] = [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max];

    /// Name in the text format.
    pub fn op_name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "sum",
            ReduceKind::Mean => "mean",
            ReduceKind::Max => "max",
        }
    }
}

/// Reduce `axes` (sorted, distinct) with `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reduce {
    /// The reduction.
    pub kind: ReduceKind,
    /// Reduced axes, sorted and distinct.
    pub axes: Vec<usize>,
}

impl Reduce {
    fn run<T: Float>(&self, x: &[T], in_dims: &[usize], out: &TensorType) -> Vec<T> {
        let strides = crate::types::Shape(in_dims.to_vec()).strides();
        let (mut kept_dims, mut kept_strides) = (Vec::new(), Vec::new());
        let (mut red_dims, mut red_strides) = (Vec::new(), Vec::new());
        for (a, (&d, &s)) in in_dims.iter().zip(&strides).enumerate() {
            if self.axes.contains(&a) {
                red_dims.push(d);
                red_strides.push(s);
            } else {
                kept_dims.push(d);
                kept_strides.push(s);
            }
        }
        // Each output's terms: the reduced axes' offsets (row-major) from the output's base.
        let terms = view_offsets(&red_dims, 0, &red_strides);
        let count: usize = red_dims.iter().product();
        let mut res = Vec::with_capacity(out.numel());
        for_each_index(&kept_dims, |k| {
            let base: usize = k.iter().zip(&kept_strides).map(|(&i, &s)| i * s).sum();
            let vals = terms.iter().map(|&o| x[base + o]);
            res.push(match self.kind {
                ReduceKind::Sum => sum::sum_from(T::zero(), vals),
                ReduceKind::Mean => sum::sum_from(T::zero(), vals).div(T::from_f64(count as f64)),
                ReduceKind::Max => vals.fold(T::from_f64(f64::NEG_INFINITY), |m, v| {
                    if m.is_nan() || v.is_nan() {
                        m.add(v)
                    } else if v > m {
                        v
                    } else {
                        m
                    }
                }),
            });
        });
        res
    }
}

impl OpRule for Reduce {
    fn info(&self) -> OpInfo {
        let traits = Traits { linear: self.kind != ReduceKind::Max, ..Traits::NONE };
        OpInfo::new(self.kind.op_name(), Arity::Fixed(1), traits)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        want_float(x)?;
        if self.axes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(TypeError::UnsortedAxes { axes: self.axes.clone() });
        }
        if let Some(&a) = self.axes.iter().find(|&&a| a >= x.rank()) {
            return Err(TypeError::Axis { axis: a as i64, rank: x.rank() });
        }
        let dims: Vec<usize> = x
            .shape
            .dims()
            .iter()
            .enumerate()
            .filter(|(a, _)| !self.axes.contains(a))
            .map(|(_, &d)| d)
            .collect();
        Ok(x.with_shape(dims))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let (x, out) = (a.x[0], a.out);
        let dims = x.shape.dims();
        let data = match &x.data {
            Data::F32(v) => Data::F32(self.run(v, dims, out)),
            Data::F64(v) => Data::F64(self.run(v, dims, out)),
            Data::I32(_) | Data::Bool(_) => return Err(bad_dtype(self.kind.op_name())),
        };
        Ok(Tensor { shape: out.shape.clone(), data })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        let (x, y) = (a.x, a.y);
        let Some(t) = a.t[0] else { return Ok(None) };
        match self.kind {
            ReduceKind::Sum | ReduceKind::Mean => a.linear(b, self.clone()),
            // The tangent at the maximising elements, averaged over ties (as in JAX).
            ReduceKind::Max => {
                let ty = b.ty(x[0])?.clone();
                let kept = b.reshape(y, keepdims(&ty.shape, &self.axes))?;
                let yb = b.broadcast_to(kept, &ty.shape)?;
                let at = b.compare(Compare::Eq, x[0], yb)?;
                let z = zeros(b, &ty)?;
                let picked = b.select(at, t, z)?;
                let ones = b.convert(at, ty.dtype)?;
                let sum = Reduce { kind: ReduceKind::Sum, axes: self.axes.clone() };
                let num = b.add(sum.clone().into(), &[picked])?;
                let cnt = b.add(sum.into(), &[ones])?;
                b.binary(Binary::Div, num, cnt).map(Some)
            }
        }
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        linear_transpose(operands, |ty| {
            let ct = match self.kind {
                ReduceKind::Sum => ct,
                ReduceKind::Mean => {
                    let n: usize = self.axes.iter().map(|&a| ty.shape.dims()[a]).product();
                    b.binary_scalar(Binary::Div, ct, n as f64, crate::ScalarSide::Right)?
                }
                ReduceKind::Max => return Err(not_linear("max", "max is not linear")),
            };
            let kept = b.reshape(ct, keepdims(&ty.shape, &self.axes))?;
            b.broadcast_to(kept, &ty.shape)
        })
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        let r = Reduce { kind: self.kind, axes: self.axes.iter().map(|a| a + 1).collect() };
        a.leading(b, |b, v| b.add(r.into(), v))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "axes", &self.axes);
    }
}

/// Parsed reductions keep the axes as written (possibly negative, unsorted, or absent for
/// "all"); the builder normalises them against the operand's rank.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAxes(pub Option<Vec<i64>>);

impl RawAxes {
    /// Normalise against a rank: all axes when absent; negative axes count from the end;
    /// the result is sorted; duplicates are an error.
    pub fn resolve(&self, rank: usize) -> Result<Vec<usize>, TypeError> {
        let mut axes = match &self.0 {
            None => (0..rank).collect(),
            Some(v) => v.iter().map(|&a| norm_axis(a, rank)).collect::<Result<Vec<_>, _>>()?,
        };
        axes.sort_unstable();
        if let Some(w) = axes.windows(2).find(|w| w[0] == w[1]) {
            return Err(TypeError::RepeatedAxis { axis: w[0] });
        }
        Ok(axes)
    }
}

impl ParseOp for Reduce {
    fn names() -> Vec<&'static str> {
        ReduceKind::ALL.iter().map(|k| k.op_name()).collect()
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        let kind = ReduceKind::ALL.into_iter().find(|k| k.op_name() == name)?;
        let rank = args.operand_types.first().map_or(0, |t| t.rank());
        Some(args.take_axes("axes").and_then(|raw| {
            let axes = RawAxes(raw).resolve(rank).map_err(|e| e.to_string())?;
            Ok(Reduce { kind, axes })
        }))
    }
}
