//! Masks as factors: `select(p, a, 0)` with `a` a broadcast becomes `a · convert(p)`, the mask
//! converted where it is smallest (before the broadcasts, reshapes and transposes that bring it
//! to the select's shape, which are applied again after the conversion).
//!
//! Why: the derivative of `relu` passes a cotangent where its input was positive, a `select`
//! against zero. When the cotangent is a broadcast (a weight's row behind a mean, the one-hot
//! basis through the head), the select is really an elementwise product of two small factors
//! (`W[o, c]` and `mask[b, p, c]`), which the contraction reordering ([`crate::reorder`]) can
//! read through and contract in the order of least cost; as a select it is one large leaf. On
//! the zoo's CNN the last convolution's kernel term of K,
//! `Σ W[c,o₁]·W[c,o₂]·mask₁[b₁,p₁,c]·mask₂[b₂,p₂,c]·⟨patch₁[b₁,p₁], patch₂[b₂,p₂]⟩`, then sums
//! each side's patches under its mask first (`Σ_p mask[b,p,c]·patch[b,p,k]`) instead of
//! forming the 16·64 × 16·64 Gram matrix of all patch pairs.
//!
//! Only selects whose kept branch is a broadcast of fewer elements (through transposes and
//! reshapes: average pooling's cotangent is its window's broadcast reshaped to the input's
//! positions) are rewritten (elsewhere the product would hide nothing and change nothing). On
//! the CNN the products are also cheaper maps than the selects (a mask converted once at its
//! own size against a boolean read per element): its two pooled layers' relu derivatives
//! went from 1.8 to 1.15 and from 0.85 to 0.52 ms per side.
//!
//! Preserves: values for finite inputs, up to the sign of zero. (Where `p` is false the select
//! gives the zero operand, the product `a·0`: NaN when `a` is ±inf or NaN, and −0 when `a` is
//! negative.)

use jjt_ir::ops::Const;
use jjt_ir::{DType, Function, FunctionBuilder, IrError, NodeId, Op};

/// Whether `n` is a zero (a `full` of ±0, through layout ops).
fn is_zero(b: &FunctionBuilder, mut n: NodeId) -> Result<bool, IrError> {
    loop {
        match b.op(n)? {
            Op::Const(Const::Full { bits, .. }) => return Ok(f64::from_bits(*bits) == 0.0),
            Op::BroadcastTo(_) | Op::Reshape(_) | Op::Transpose(_) => n = b.operands(n)?[0],
            _ => return Ok(false),
        }
    }
}

/// Whether `n` is a broadcast of fewer elements (through transposes and reshapes).
fn is_broadcast(b: &FunctionBuilder, mut n: NodeId) -> Result<bool, IrError> {
    loop {
        match b.op(n)? {
            Op::BroadcastTo(_) => {
                let from = b.operands(n)?[0];
                return Ok(b.ty(from)?.numel() < b.ty(n)?.numel());
            }
            Op::Transpose(_) | Op::Reshape(_) => n = b.operands(n)?[0],
            _ => return Ok(false),
        }
    }
}

/// `p` converted to `dtype`: the conversion applied below `p`'s layout ops, which are then
/// applied again in the same order.
fn convert_mask(b: &mut FunctionBuilder, p: NodeId, dtype: DType) -> Result<NodeId, IrError> {
    let mut chain = Vec::new();
    let mut base = p;
    while let op @ (Op::BroadcastTo(_) | Op::Reshape(_) | Op::Transpose(_)) = b.op(base)? {
        chain.push(op.clone());
        base = b.operands(base)?[0];
    }
    let mut m = b.convert(base, dtype)?;
    for op in chain.into_iter().rev() {
        m = b.add(op, &[m])?;
    }
    Ok(m)
}

/// Rewrite the selects described in the module's documentation; returns the graph and how
/// many were rewritten.
pub fn masks(f: &Function) -> Result<(Function, usize), IrError> {
    let mut rewritten = 0;
    let g = crate::rebuild(f, |b, v| {
        let (Op::Select(_), [p, a, z]) = (&v.node.op, v.args) else { return Ok(None) };
        let (p, a, z) = (*p, *a, *z);
        let dtype = b.ty(a)?.dtype;
        if !matches!(dtype, DType::F32 | DType::F64) || !is_zero(b, z)? || !is_broadcast(b, a)? {
            return Ok(None);
        }
        let m = convert_mask(b, p, dtype)?;
        rewritten += 1;
        Ok(Some(b.binary(jjt_ir::Binary::Mul, a, m)?))
    })?;
    Ok((g, rewritten))
}
