//! `pad(x, lo=[..], hi=[..], interior=[..])`: zero padding: `lo[i]` zeros before axis `i`,
//! `hi[i]` after it, and `interior[i]` zeros between neighbouring elements (XLA's Pad with
//! value 0, non-negative amounts). The transpose of a strided slice; `interior` may be omitted
//! (all 0).

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, per_axis, write_list};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{lead, linear_transpose, view_offsets};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Data, Tensor};
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
    fn info(&self) -> OpInfo {
        OpInfo::new("pad", Arity::Fixed(1), Traits::LINEAR)
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
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        // Input index `i` on axis `k` goes to output index `lo[k] + i·(interior[k] + 1)`.
        let (x, out) = (a.x[0], a.out);
        let strides = out.shape.strides();
        let base = self.lo.iter().zip(&strides).map(|(l, s)| l * s).sum();
        let steps: Vec<usize> =
            self.interior.iter().zip(&strides).map(|(i, s)| (i + 1) * s).collect();
        let targets = view_offsets(x.shape.dims(), base, &steps);
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
            Data::I32(v) => Data::I32(place(v, 0, n, &targets)),
            Data::Bool(v) => Data::Bool(place(v, false, n, &targets)),
        };
        Ok(Tensor { shape: out.shape.clone(), data })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        a.linear(b, self.clone())
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        linear_transpose(operands, |ty| {
            let step: Vec<usize> = self.interior.iter().map(|i| i + 1).collect();
            let stop: Vec<usize> = ty
                .shape
                .dims()
                .iter()
                .enumerate()
                .map(|(a, &d)| if d == 0 { self.lo[a] } else { self.lo[a] + (d - 1) * step[a] + 1 })
                .collect();
            b.slice(ct, &self.lo, &stop, &step)
        })
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        let (lo, hi, interior) = (lead(0, &self.lo), lead(0, &self.hi), lead(0, &self.interior));
        a.leading(b, |b, v| b.add(Pad { lo, hi, interior }.into(), v))
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
