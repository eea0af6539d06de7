//! `reverse(x, axes=[..])`: the elements of `x` in reverse order along each of `axes` (XLA's
//! Rev, NumPy's `flip`). Linear, its own transpose. The transpose of a convolution with
//! respect to its input is a convolution with the kernel reversed along its spatial axes.

use super::linear_transpose;
use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, write_list};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Tensor, for_each_index};
use crate::types::TensorType;

/// Reversal along axes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reverse {
    /// The reversed axes (distinct, in increasing order).
    pub axes: Vec<usize>,
}

impl OpRule for Reverse {
    fn info(&self) -> OpInfo {
        OpInfo::new("reverse", Arity::Fixed(1), Traits::LINEAR)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        for (i, &a) in self.axes.iter().enumerate() {
            if a >= x.rank() {
                return Err(TypeError::Axis { axis: a as i64, rank: x.rank() });
            }
            if i > 0 && self.axes[i - 1] >= a {
                return Err(TypeError::ReverseAxes(self.axes.clone()));
            }
        }
        Ok(x.clone())
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        // Output index `i` on a reversed axis of size `d` reads input index `d − 1 − i`: read
        // element by element in row-major order of the output.
        let x = a.x[0];
        let dims = x.shape.dims();
        if x.numel() == 0 {
            return Ok(x.clone());
        }
        let strides = x.shape.strides();
        let mut offsets = Vec::with_capacity(x.numel());
        for_each_index(dims, |idx| {
            let off = (0..dims.len())
                .map(|k| {
                    let i = if self.axes.contains(&k) { dims[k] - 1 - idx[k] } else { idx[k] };
                    i * strides[k]
                })
                .sum::<usize>();
            offsets.push(off);
        });
        Ok(x.gather(x.shape.clone(), &offsets))
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        a.linear(b, self.clone())
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        linear_transpose(operands, |_| b.add(self.clone().into(), &[ct]))
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        let axes = self.axes.iter().map(|x| x + 1).collect();
        a.leading(b, |b, v| b.add(Reverse { axes }.into(), v))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "axes", &self.axes);
    }
}

impl ParseOp for Reverse {
    fn names() -> Vec<&'static str> {
        vec!["reverse"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "reverse").then(|| {
            let mut axes = args.take_usizes("axes")?;
            axes.sort_unstable();
            Ok(Reverse { axes })
        })
    }
}
