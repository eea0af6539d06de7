//! `transpose(x, perm=[..])`: axis permutation; output axis `i` is input axis `perm[i]`
//! (NumPy's `np.transpose(x, perm)`).

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, per_axis, write_list};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{gather_view, linear_transpose};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::Tensor;
use crate::types::TensorType;

/// Permute axes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transpose {
    /// Output axis `i` is input axis `perm[i]`.
    pub perm: Vec<usize>,
}

impl Transpose {
    /// The inverse permutation.
    pub fn inverse(&self) -> Vec<usize> {
        let mut inv = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            if let Some(slot) = inv.get_mut(p) {
                *slot = i;
            }
        }
        inv
    }
}

impl OpRule for Transpose {
    fn info(&self) -> OpInfo {
        OpInfo::new("transpose", Arity::Fixed(1), Traits::LINEAR)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        per_axis(x.rank(), &[("perm", &self.perm)])?;
        let mut seen = vec![false; x.rank()];
        for &p in &self.perm {
            if p >= x.rank() || seen[p] {
                return Err(TypeError::Perm { perm: self.perm.clone(), rank: x.rank() });
            }
            seen[p] = true;
        }
        Ok(x.with_shape(self.perm.iter().map(|&p| x.shape.dims()[p]).collect::<Vec<_>>()))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        // Output axis `k` walks input axis `perm[k]`.
        let strides = a.x[0].shape.strides();
        let steps: Vec<usize> = self.perm.iter().map(|&p| strides[p]).collect();
        Ok(gather_view(a.x[0], a.out, 0, &steps))
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        a.linear(b, self.clone())
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        linear_transpose(operands, |_| b.transpose(ct, &self.inverse()))
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        let perm: Vec<usize> = std::iter::once(0).chain(self.perm.iter().map(|p| p + 1)).collect();
        a.leading(b, |b, v| b.transpose(v[0], &perm))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "perm", &self.perm);
    }
}

impl ParseOp for Transpose {
    fn names() -> Vec<&'static str> {
        vec!["transpose"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        // Without `perm`, the axes reversed (NumPy's `x.T`).
        (name == "transpose").then(|| {
            let rank = args.operand_types.first().map_or(0, TensorType::rank);
            let perm = args.take_usizes_or("perm", || (0..rank).rev().collect())?;
            Ok(Transpose { perm })
        })
    }
}
