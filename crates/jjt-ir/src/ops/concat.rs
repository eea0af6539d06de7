//! `concat(a, b, ..., axis=k)`: join operands of one dtype whose shapes agree except on `axis`.

use std::fmt::Write as _;

use super::zeros;
use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, bad_dtype};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Data, Tensor, for_each_index};
use crate::types::TensorType;

/// Concatenate along `axis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Concat {
    /// The joined axis.
    pub axis: usize,
}

impl OpRule for Concat {
    fn info(&self) -> OpInfo {
        OpInfo::new("concat", Arity::AtLeast(1), Traits::LINEAR)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let first = operands[0];
        if self.axis >= first.rank() {
            return Err(TypeError::Axis { axis: self.axis as i64, rank: first.rank() });
        }
        let mut total = 0usize;
        for t in operands {
            if t.dtype != first.dtype {
                return Err(TypeError::DTypeMismatch(first.dtype, t.dtype));
            }
            let same_rank = t.rank() == first.rank();
            let agree = same_rank
                && (0..first.rank())
                    .all(|a| a == self.axis || t.shape.dims()[a] == first.shape.dims()[a]);
            if !agree {
                return Err(TypeError::ConcatShapes {
                    first: first.shape.clone(),
                    other: t.shape.clone(),
                    axis: self.axis,
                });
            }
            total = total.saturating_add(t.shape.dims()[self.axis]);
        }
        let mut dims = first.shape.0.clone();
        dims[self.axis] = total;
        Ok(first.with_shape(dims))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let (operands, out) = (a.x, a.out);
        // For each output element: which operand and which flat index in it.
        let mut offsets = Vec::with_capacity(operands.len());
        let mut acc = 0;
        for t in operands {
            offsets.push(acc);
            acc += t.shape.dims()[self.axis];
        }
        let mut picks = Vec::with_capacity(out.numel());
        for_each_index(out.shape.dims(), |idx| {
            let k = offsets.iter().rposition(|&o| o <= idx[self.axis]).unwrap_or(0);
            let t = operands[k];
            let strides = t.shape.strides();
            let flat: usize =
                idx.iter()
                    .enumerate()
                    .map(|(a, &i)| {
                        if a == self.axis { (i - offsets[k]) * strides[a] } else { i * strides[a] }
                    })
                    .sum();
            picks.push((k, flat));
        });
        fn join<T: Copy>(parts: &[&[T]], picks: &[(usize, usize)]) -> Vec<T> {
            picks.iter().map(|&(k, i)| parts[k][i]).collect()
        }
        macro_rules! cat {
            ($variant:ident) => {{
                let parts: Option<Vec<&[_]>> = operands
                    .iter()
                    .map(|t| match &t.data {
                        Data::$variant(v) => Some(v.as_slice()),
                        _ => None,
                    })
                    .collect();
                Data::$variant(join(&parts.ok_or_else(|| bad_dtype("concat"))?, &picks))
            }};
        }
        let data = match out.dtype {
            crate::types::DType::F32 => cat!(F32),
            crate::types::DType::F64 => cat!(F64),
            crate::types::DType::I32 => cat!(I32),
            crate::types::DType::Bool => cat!(Bool),
        };
        // Offsets above skip empty operands correctly: `rposition` finds the last operand
        // starting at or before the index, and empty operands never own an index.
        Ok(Tensor { shape: out.shape.clone(), data })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        let mut parts = Vec::with_capacity(a.x.len());
        for (&xi, ti) in a.x.iter().zip(a.t) {
            parts.push(match ti {
                Some(t) => *t,
                None => {
                    let ty = b.ty(xi)?.clone();
                    zeros(b, &ty)?
                }
            });
        }
        b.add((*self).into(), &parts).map(Some)
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        let out = b.ty(ct)?.shape.clone();
        let mut offset = 0;
        let mut res = Vec::with_capacity(operands.len());
        for op in operands {
            let size = match op {
                Lin::Linear(ty) => ty.shape.dims()[self.axis],
                Lin::Known(k) => b.ty(*k)?.shape.dims()[self.axis],
            };
            if op.is_linear() {
                let mut start = vec![0; out.rank()];
                let mut stop = out.0.clone();
                start[self.axis] = offset;
                stop[self.axis] = offset + size;
                res.push(Some(b.slice(ct, &start, &stop, &vec![1; out.rank()])?));
            } else {
                res.push(None);
            }
            offset += size;
        }
        Ok(res)
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        a.leading(b, |b, v| b.add(Concat { axis: self.axis + 1 }.into(), v))
    }
    fn write_attrs(&self, out: &mut String) {
        let _ = write!(out, ", axis={}", self.axis);
    }
}

impl ParseOp for Concat {
    fn names() -> Vec<&'static str> {
        vec!["concat"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "concat").then(|| {
            let axis = args.take_int("axis")?;
            let rank = args.operand_types.first().map_or(0, |t| t.rank());
            let axis = super::norm_axis(axis, rank).map_err(|e| e.to_string())?;
            Ok(Concat { axis })
        })
    }
}
