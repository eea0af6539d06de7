//! `slice(x, start=[..], stop=[..], step=[..])`: a strided box, one entry per axis, with
//! `0 <= start <= stop <= dim` and `step >= 1` (NumPy's `x[start:stop:step]` on each axis).
//! `step` may be omitted (all 1).

use super::{Arity, CallArgs, OpRule, ParseOp, Traits, per_axis, write_list};
use super::{Lin, Op, Pad, batched_front, linear_jvp};
use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Tensor, for_each_index};
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
    fn name(&self) -> &'static str {
        "slice"
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(1)
    }
    fn traits(&self) -> Traits {
        Traits { linear: true, ..Traits::default() }
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
    fn eval(
        &self,
        operands: &[&Tensor],
        out: &TensorType,
        _: &[Tensor],
    ) -> Result<Tensor, EvalError> {
        let x = operands[0];
        let strides = x.shape.strides();
        let mut index = Vec::with_capacity(out.numel());
        for_each_index(out.shape.dims(), |idx| {
            index.push(
                idx.iter()
                    .enumerate()
                    .map(|(a, &i)| (self.start[a] + i * self.step[a]) * strides[a])
                    .sum(),
            );
        });
        Ok(x.gather(out.shape.clone(), &index))
    }
    fn jvp(
        &self,
        b: &mut FunctionBuilder,
        _: &[NodeId],
        t: &[Option<NodeId>],
        _: NodeId,
    ) -> Result<Option<NodeId>, IrError> {
        linear_jvp(b, Op::Slice(self.clone()), t)
    }

    fn transpose(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        operands: &[Lin],
    ) -> Result<Vec<Option<NodeId>>, IrError> {
        let Lin::Linear(ty) = &operands[0] else { return Ok(vec![None]) };
        // Zero-pad back: `start` before, `step - 1` between, the rest after.
        let out = b.ty(ct)?.shape.clone();
        let mut hi = Vec::with_capacity(ty.rank());
        for (a, &d) in ty.shape.dims().iter().enumerate() {
            let o = out.dims()[a];
            let used =
                if o == 0 { self.start[a] } else { self.start[a] + (o - 1) * self.step[a] + 1 };
            hi.push(d - used);
        }
        let interior = self.step.iter().map(|s| s - 1).collect();
        let pad = Pad { lo: self.start.clone(), hi, interior };
        Ok(vec![Some(b.add(Op::Pad(pad), &[ct])?)])
    }
    fn batch(
        &self,
        b: &mut FunctionBuilder,
        x: &[NodeId],
        dims: &[Option<usize>],
        size: usize,
    ) -> Result<(NodeId, Option<usize>), IrError> {
        let v = batched_front(b, x, dims, size)?;
        let cat = |first: usize, rest: &[usize]| {
            std::iter::once(first).chain(rest.iter().copied()).collect::<Vec<_>>()
        };
        let s = b.slice(v[0], &cat(0, &self.start), &cat(size, &self.stop), &cat(1, &self.step))?;
        Ok((s, Some(0)))
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
