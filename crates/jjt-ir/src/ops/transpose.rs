//! `transpose(x, perm=[..])`: axis permutation; output axis `i` is input axis `perm[i]`
//! (NumPy's `np.transpose(x, perm)`).

use super::{Arity, CallArgs, OpRule, ParseOp, Traits, per_axis, write_list};
use super::{Lin, Op, batched_front, linear_jvp};
use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Tensor, for_each_index};
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
    fn name(&self) -> &'static str {
        "transpose"
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(1)
    }
    fn traits(&self) -> Traits {
        Traits { linear: true, ..Traits::default() }
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
            index.push(idx.iter().zip(&self.perm).map(|(&i, &p)| i * strides[p]).sum());
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
        linear_jvp(b, Op::Transpose(self.clone()), t)
    }

    fn transpose(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        operands: &[Lin],
    ) -> Result<Vec<Option<NodeId>>, IrError> {
        match &operands[0] {
            Lin::Linear(_) => Ok(vec![Some(b.transpose(ct, &self.inverse())?)]),
            Lin::Known(_) => Ok(vec![None]),
        }
    }
    fn batch(
        &self,
        b: &mut FunctionBuilder,
        x: &[NodeId],
        dims: &[Option<usize>],
        size: usize,
    ) -> Result<(NodeId, Option<usize>), IrError> {
        let v = batched_front(b, x, dims, size)?;
        let mut perm = vec![0];
        perm.extend(self.perm.iter().map(|p| p + 1));
        Ok((b.transpose(v[0], &perm)?, Some(0)))
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
        (name == "transpose").then(|| Ok(Transpose { perm: args.take_usizes("perm")? }))
    }
}
