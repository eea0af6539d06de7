//! `slice(x, start=[..], stop=[..], step=[..])`: a strided box, one entry per axis, with
//! `0 <= start <= stop <= dim` and `step >= 1` (NumPy's `x[start:stop:step]` on each axis).
//! `step` may be omitted (all 1).

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, per_axis, write_list};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{Pad, gather_view, lead, linear_transpose};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::Tensor;
use crate::types::{Shape, TensorType};

/// A strided slice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slice {
    /// First index per axis.
    pub start: Vec<usize>,
    /// One past the last index per axis.
    pub stop: Vec<usize>,
    /// Stride per axis (≥ 1).
    pub step: Vec<usize>,
}

impl OpRule for Slice {
    fn info(&self) -> OpInfo {
        OpInfo::new("slice", Arity::Fixed(1), Traits::LINEAR)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        per_axis(x.rank(), &[("start", &self.start), ("stop", &self.stop), ("step", &self.step)])?;
        let mut dims = Vec::with_capacity(x.rank());
        for (axis, &d) in x.shape.dims().iter().enumerate() {
            let (a, b, s) = (self.start[axis], self.stop[axis], self.step[axis]);
            if s == 0 || a > b || b > d {
                return Err(TypeError::SliceBounds { axis, start: a, stop: b, step: s, size: d });
            }
            dims.push((b - a).div_ceil(s));
        }
        Ok(x.with_shape(dims))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        // Output index `i` on axis `k` reads input index `start[k] + i·step[k]`.
        let strides = a.x[0].shape.strides();
        let base = self.start.iter().zip(&strides).map(|(s, st)| s * st).sum();
        let steps: Vec<usize> = self.step.iter().zip(&strides).map(|(s, st)| s * st).collect();
        Ok(gather_view(a.x[0], a.out, base, &steps))
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        a.linear(b, self.clone())
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        // Zero-pad back: `start` before, `step - 1` between, the rest after.
        linear_transpose(operands, |ty| {
            let out = b.ty(ct)?.shape.clone();
            let mut hi = Vec::with_capacity(ty.rank());
            for (a, &d) in ty.shape.dims().iter().enumerate() {
                let o = out.dims()[a];
                let used =
                    if o == 0 { self.start[a] } else { self.start[a] + (o - 1) * self.step[a] + 1 };
                hi.push(d - used);
            }
            let interior = self.step.iter().map(|s| s - 1).collect();
            b.add(Pad { lo: self.start.clone(), hi, interior }.into(), &[ct])
        })
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        let (start, stop, step) =
            (lead(0, &self.start), lead(a.size, &self.stop), lead(1, &self.step));
        a.leading(b, |b, v| b.slice(v[0], &start, &stop, &step))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "start", &self.start);
        write_list(out, "stop", &self.stop);
        if self.step.iter().any(|&s| s != 1) {
            write_list(out, "step", &self.step);
        }
    }
}

impl ParseOp for Slice {
    fn names() -> Vec<&'static str> {
        vec!["slice"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "slice").then(|| {
            let start = args.take_usizes("start")?;
            let stop = args.take_usizes("stop")?;
            let step = args.take_usizes_or("step", || vec![1; start.len()])?;
            Ok(Slice { start, stop, step })
        })
    }
}

impl Slice {
    /// The shape `start`/`stop`/`step` describe, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}:{}",
            Shape(self.start.clone()),
            Shape(self.stop.clone()),
            Shape(self.step.clone())
        )
    }
}
