//! What the rules of [`OpRule`](super::OpRule) receive, and the pieces the rules share: the JVP
//! and transpose of an op linear in its single operand, the batching rules of elementwise ops
//! and of ops that take a leading batch axis, and the strided view the layout ops evaluate by.

use super::Op;
use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::graph::NodeId;
use crate::tensor::{Tensor, for_each_index};
use crate::types::{Shape, TensorType};

/// The arguments of [`OpRule::eval`](super::OpRule::eval).
#[derive(Clone, Copy, Debug)]
pub struct EvalArgs<'a> {
    /// The operands' values, in slot order.
    pub x: &'a [&'a Tensor],
    /// The inferred result type.
    pub out: &'a TensorType,
    /// The function's arguments (read only by [`Input`](super::Input)).
    pub inputs: &'a [Tensor],
}

/// The arguments of [`OpRule::jvp`](super::OpRule::jvp), all nodes of the builder the rule
/// emits into.
#[derive(Clone, Copy, Debug)]
pub struct JvpArgs<'a> {
    /// The operands' primal values.
    pub x: &'a [NodeId],
    /// The operands' tangents (`None` is a symbolic zero; at least one is present).
    pub t: &'a [Option<NodeId>],
    /// The op's primal output.
    pub y: NodeId,
}

/// The arguments of [`OpRule::batch`](super::OpRule::batch).
#[derive(Clone, Copy, Debug)]
pub struct BatchArgs<'a> {
    /// The operands, in the builder the rule emits into.
    pub x: &'a [NodeId],
    /// The batch axis of each operand (`None`: not batched; at least one is batched).
    pub dims: &'a [Option<usize>],
    /// The batch size.
    pub size: usize,
}

/// What a JVP rule returns: the output tangent (`None`: zero), or why it cannot be built.
pub type JvpResult = Result<Option<NodeId>, IrError>;
/// What a transpose rule returns: one cotangent per operand (`None` for known operands).
pub type TransposeResult = Result<Vec<Option<NodeId>>, IrError>;
/// What a batching rule returns: the output and its batch axis (`None`: not batched).
pub type BatchResult = Result<(NodeId, Option<usize>), IrError>;

/// An operand as a transpose rule sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Lin {
    /// A linear operand (its value is not known), of this type.
    Linear(TensorType),
    /// A known value (a residual of the primal computation).
    Known(NodeId),
}

impl Lin {
    /// The known node, if any.
    pub fn known(&self) -> Option<NodeId> {
        match self {
            Lin::Known(n) => Some(*n),
            Lin::Linear(_) => None,
        }
    }

    /// Whether this operand is linear.
    pub fn is_linear(&self) -> bool {
        matches!(self, Lin::Linear(_))
    }
}

impl JvpArgs<'_> {
    /// The JVP of an op linear in its single operand (a reshape, a slice, …): the tangent goes
    /// through the same op.
    pub(crate) fn linear(self, b: &mut FunctionBuilder, op: impl Into<Op>) -> JvpResult {
        self.t[0].map(|t| b.add(op.into(), &[t])).transpose()
    }
}

/// The transpose rule of an op linear in its single operand: `f` builds the operand's
/// cotangent from the operand's type when the operand is linear.
pub(crate) fn linear_transpose(
    operands: &[Lin],
    f: impl FnOnce(&TensorType) -> Result<NodeId, IrError>,
) -> TransposeResult {
    match &operands[0] {
        Lin::Linear(ty) => Ok(vec![Some(f(ty)?)]),
        Lin::Known(_) => Ok(vec![None]),
    }
}

impl BatchArgs<'_> {
    /// The operands with their batch axis at the front; unbatched operands broadcast to
    /// `[size, ...]`.
    pub(crate) fn front(self, b: &mut FunctionBuilder) -> Result<Vec<NodeId>, IrError> {
        self.x
            .iter()
            .zip(self.dims)
            .map(|(&v, d)| match d {
                Some(d) => move_to_front(b, v, *d),
                None => {
                    let mut shape = vec![self.size];
                    shape.extend_from_slice(b.ty(v)?.shape.dims());
                    b.broadcast_to(v, &Shape(shape))
                }
            })
            .collect()
    }

    /// The batching rule of the structural ops: move every operand's batch axis to the front
    /// and `apply` the op with one leading axis more.
    pub(crate) fn leading(
        self,
        b: &mut FunctionBuilder,
        apply: impl FnOnce(&mut FunctionBuilder, &[NodeId]) -> Result<NodeId, IrError>,
    ) -> BatchResult {
        let v = self.front(b)?;
        Ok((apply(b, &v)?, Some(0)))
    }

    /// The batching rule of elementwise ops: operands that share one batch axis stay as they
    /// are; otherwise all move to the front (unbatched ones broadcast).
    pub(crate) fn elementwise(
        self,
        b: &mut FunctionBuilder,
        apply: impl FnOnce(&mut FunctionBuilder, &[NodeId]) -> Result<NodeId, IrError>,
    ) -> BatchResult {
        if let Some(Some(d0)) = self.dims.first()
            && self.dims.iter().all(|d| *d == Some(*d0))
        {
            return Ok((apply(b, self.x)?, Some(*d0)));
        }
        let v = self.front(b)?;
        Ok((apply(b, &v)?, Some(0)))
    }
}

/// `[first, rest...]`: an attribute list with an entry for a new leading axis.
pub(crate) fn lead(first: usize, rest: &[usize]) -> Vec<usize> {
    std::iter::once(first).chain(rest.iter().copied()).collect()
}

/// The error for a transpose rule asked to transpose in an operand it is not linear in.
pub(crate) fn not_linear(op: &'static str, why: &str) -> IrError {
    IrError::NotLinear { op, detail: why.to_string() }
}

/// A zero tensor of `ty`.
pub(crate) fn zeros(b: &mut FunctionBuilder, ty: &TensorType) -> Result<NodeId, IrError> {
    b.full(ty.clone(), 0.0)
}

/// Move axis `d` of `x` to the front.
pub(crate) fn move_to_front(
    b: &mut FunctionBuilder,
    x: NodeId,
    d: usize,
) -> Result<NodeId, IrError> {
    let rank = b.ty(x)?.rank();
    let mut perm = vec![d];
    perm.extend((0..rank).filter(|&a| a != d));
    b.transpose(x, &perm)
}

/// `x`'s shape with the reduced `axes` kept as size 1 (NumPy's keepdims).
pub(crate) fn keepdims(shape: &Shape, axes: &[usize]) -> Shape {
    Shape(
        shape
            .dims()
            .iter()
            .enumerate()
            .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
            .collect(),
    )
}

/// The flat offsets of the elements of a strided view, in row-major order over `dims`: the
/// element at multi-index `idx` is at `base + Σ idx[a]·strides[a]`. Transpose, slice and
/// broadcast read their operand through such a view; pad writes through one.
pub(crate) fn view_offsets(dims: &[usize], base: usize, strides: &[usize]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(dims.iter().product());
    for_each_index(dims, |idx| {
        offsets.push(base + idx.iter().zip(strides).map(|(&i, &s)| i * s).sum::<usize>());
    });
    offsets
}

/// The value of type `out` read from `x` through the strided view `(base, strides)` (one
/// stride per axis of `out`).
pub(crate) fn gather_view(x: &Tensor, out: &TensorType, base: usize, strides: &[usize]) -> Tensor {
    x.gather(out.shape.clone(), &view_offsets(out.shape.dims(), base, strides))
}
