//! `pad(x, lo=[..], hi=[..], interior=[..])`: zero padding: `lo[i]` zeros before axis `i`,
//! `hi[i]` after it, and `interior[i]` zeros between neighbouring elements (XLA's Pad with
//! value 0, non-negative amounts). The transpose of a strided slice; `interior` may be omitted
//! (all 0).

use super::{Arity, CallArgs, OpRule, ParseOp, Traits, per_axis, write_list};
use super::{Lin, Op, batched_front, linear_jvp};
use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Data, Tensor, for_each_index};
use crate::types::TensorType;

/// Zero padding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pad {
    /// Zeros before each axis.
    pub lo: Vec<usize>,
    /// Zeros after each axis.
    pub hi: Vec<usize>,
    /// Zeros between elements along each axis.
    pub interior: Vec<usize>,
}

impl Pad {
    /// The padded size of an axis of size `d`.
    pub fn padded(&self, axis: usize, d: usize) -> Option<usize> {
        let inner = d.checked_add(d.saturating_sub(1).checked_mul(self.interior[axis])?)?;
        inner.checked_add(self.lo[axis])?.checked_add(self.hi[axis])
    }
}

impl OpRule for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(1)
    }
    fn traits(&self) -> Traits {
        Traits { linear: true, ..Traits::default() }
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        per_axis(x.rank(), &[("lo", &self.lo), ("hi", &self.hi), ("interior", &self.interior)])?;
        let dims = (0..x.rank())
            .map(|a| self.padded(a, x.shape.dims()[a]))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| TypeError::TooLarge(x.shape.clone()))?;
        Ok(x.with_shape(dims))
    }
    fn eval(
        &self,
        operands: &[&Tensor],
        out: &TensorType,
        _: &[Tensor],
    ) -> Result<Tensor, EvalError> {
        let x = operands[0];
        let strides = out.shape.strides();
        let mut targets = Vec::with_capacity(x.numel());
        for_each_index(x.shape.dims(), |idx| {
            targets.push(
                idx.iter()
                    .enumerate()
                    .map(|(a, &i)| (self.lo[a] + i * (self.interior[a] + 1)) * strides[a])
                    .sum::<usize>(),
            );
        });
        fn place<T: Copy>(src: &[T], zero: T, n: usize, targets: &[usize]) -> Vec<T> {
            let mut v = vec![zero; n];
            for (&t, &s) in targets.iter().zip(src) {
                v[t] = s;
            }
            v
        }
        let n = out.numel();
        let data = match &x.data {
            Data::F32(v) => Data::F32(place(v, 0.0, n, &targets)),
            Data::F64(v) => Data::F64(place(v, 0.0, n, &targets)),
            Data::Bool(v) => Data::Bool(place(v, false, n, &targets)),
        };
        Ok(Tensor { shape: out.shape.clone(), data })
    }
    fn jvp(
        &self,
        b: &mut FunctionBuilder,
        _: &[NodeId],
        t: &[Option<NodeId>],
        _: NodeId,
    ) -> Result<Option<NodeId>, IrError> {
        linear_jvp(b, Op::Pad(self.clone()), t)
    }

    fn transpose(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        operands: &[Lin],
    ) -> Result<Vec<Option<NodeId>>, IrError> {
        let Lin::Linear(ty) = &operands[0] else { return Ok(vec![None]) };
        let step: Vec<usize> = self.interior.iter().map(|i| i + 1).collect();
        let stop: Vec<usize> = ty
            .shape
            .dims()
            .iter()
            .enumerate()
            .map(|(a, &d)| if d == 0 { self.lo[a] } else { self.lo[a] + (d - 1) * step[a] + 1 })
            .collect();
        Ok(vec![Some(b.slice(ct, &self.lo, &stop, &step)?)])
    }
    fn batch(
        &self,
        b: &mut FunctionBuilder,
        x: &[NodeId],
        dims: &[Option<usize>],
        size: usize,
    ) -> Result<(NodeId, Option<usize>), IrError> {
        let v = batched_front(b, x, dims, size)?;
        let cat =
            |rest: &[usize]| std::iter::once(0).chain(rest.iter().copied()).collect::<Vec<_>>();
        let pad = Pad { lo: cat(&self.lo), hi: cat(&self.hi), interior: cat(&self.interior) };
        Ok((b.add(Op::Pad(pad), &[v[0]])?, Some(0)))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "lo", &self.lo);
        write_list(out, "hi", &self.hi);
        if self.interior.iter().any(|&s| s != 0) {
            write_list(out, "interior", &self.interior);
        }
    }
}

impl ParseOp for Pad {
    fn names() -> Vec<&'static str> {
        vec!["pad"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "pad").then(|| {
            let lo = args.take_usizes("lo")?;
            let hi = args.take_usizes("hi")?;
            let interior = args.take_usizes_or("interior", || vec![0; lo.len()])?;
            Ok(Pad { lo, hi, interior })
        })
    }
}
