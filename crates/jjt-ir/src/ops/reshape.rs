//! `reshape(x, shape=[..])`: same elements in row-major order, new shape of equal size.

use super::{Arity, AttrValue, CallArgs, OpInfo, OpRule, ParseOp, Traits, write_list};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{lead, linear_transpose};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::Tensor;
use crate::types::{Shape, TensorType};

/// Reshape to `shape`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reshape {
    /// Target shape.
    pub shape: Shape,
}

impl OpRule for Reshape {
    fn info(&self) -> OpInfo {
        OpInfo::new("reshape", Arity::Fixed(1), Traits::LINEAR)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        if self.shape.checked_numel() != Some(x.numel()) {
            return Err(TypeError::ReshapeSize { from: x.shape.clone(), to: self.shape.clone() });
        }
        Ok(x.with_shape(self.shape.clone()))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        Ok(Tensor { shape: self.shape.clone(), data: a.x[0].data.clone() })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        a.linear(b, self.clone())
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        linear_transpose(operands, |ty| b.reshape(ct, ty.shape.clone()))
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        a.leading(b, |b, v| b.reshape(v[0], lead(a.size, self.shape.dims())))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "shape", self.shape.dims());
    }
}

impl ParseOp for Reshape {
    fn names() -> Vec<&'static str> {
        vec!["reshape"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "reshape").then(|| {
            // One entry may be -1: the size that keeps the element count (NumPy's rule).
            let entries = match args.take("shape") {
                Some(AttrValue::List(items)) => items
                    .iter()
                    .map(|v| match v {
                        AttrValue::Int(i) if *i >= -1 => Ok(*i),
                        _ => Err("`shape` must be a list of sizes (one may be -1)".to_string()),
                    })
                    .collect::<Result<Vec<i64>, String>>()?,
                Some(_) => return Err("`shape` must be a list of sizes (one may be -1)".into()),
                None => return Err("missing attribute `shape=[...]`".into()),
            };
            let known: Vec<usize> =
                entries.iter().filter(|&&d| d >= 0).map(|&d| d as usize).collect();
            let holes = entries.len() - known.len();
            if holes == 0 {
                return Ok(Reshape { shape: Shape(known) });
            }
            if holes > 1 {
                return Err("`shape` may have at most one -1".into());
            }
            let numel = args.operand_types.first().map_or(0, TensorType::numel);
            let rest: usize = known.iter().product();
            if rest == 0 || !numel.is_multiple_of(rest) {
                return Err(format!(
                    "cannot infer the -1 in shape={entries:?}: {numel} elements are not a \
                     multiple of {rest}"
                ));
            }
            let dims = entries.iter().map(|&d| if d < 0 { numel / rest } else { d as usize });
            Ok(Reshape { shape: Shape(dims.collect()) })
        })
    }
}
