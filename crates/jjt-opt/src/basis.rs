//! Basis elimination: a contraction with an identity matrix (what vmapping over the one-hot
//! basis of an output space produces) is a relabelling of the other operand, not arithmetic:
//! `eye[i,j]·X[…,j,…] = X[…,i,…]`. The contraction becomes a transpose.
//!
//! Preserves: values for finite inputs. (The contraction computes `1·x_i + Σ 0·x_j`: an inf or
//! NaN elsewhere in the contracted row would have made it NaN, and `−0` would have become `+0`;
//! the transpose returns `x_i` itself.)

use jjt_ir::ops::{Const, DotGeneral};
use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Op};

use crate::Side;

/// Statistics of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BasisStats {
    /// Contractions with an identity replaced by transposes.
    pub eliminated: usize,
}

fn is_square_eye(b: &FunctionBuilder, n: NodeId) -> bool {
    match b.op(n) {
        Ok(Op::Const(Const::Eye { ty })) => {
            ty.rank() == 2 && ty.shape.dims()[0] == ty.shape.dims()[1]
        }
        _ => false,
    }
}

/// If `eye` (operand `slot` of `d`) is a square identity contracted on one axis with no batch
/// axes, the permutation of the other operand that equals the contraction.
fn relabel(d: &DotGeneral, eye: Side, other_rank: usize) -> Option<Vec<usize>> {
    if !d.lhs_batch.is_empty() {
        return None;
    }
    let (ec, oc) = (eye.axes(d).0, eye.other().axes(d).0);
    if ec.len() != 1 {
        return None;
    }
    let j = oc[0];
    let others: Vec<usize> = (0..other_rank).filter(|&a| a != j).collect();
    // Output: eye's free axis (which takes the contracted axis' index), then the other's free
    // axes — or the reverse when the identity is on the right.
    Some(match eye {
        Side::Lhs => std::iter::once(j).chain(others).collect(),
        Side::Rhs => others.into_iter().chain(std::iter::once(j)).collect(),
    })
}

/// Replace contractions with identity matrices by transposes.
pub fn basis(f: &Function) -> Result<(Function, BasisStats), IrError> {
    let mut stats = BasisStats::default();
    let g = crate::rebuild(f, |b, v| {
        let (Op::DotGeneral(d), xs) = (&v.node.op, v.args) else { return Ok(None) };
        for eye in [Side::Lhs, Side::Rhs] {
            let (e, o) = (xs[eye.slot()], xs[eye.other().slot()]);
            if is_square_eye(b, e) {
                let rank = b.ty(o)?.rank();
                if let Some(perm) = relabel(d, eye, rank) {
                    stats.eliminated += 1;
                    return Ok(Some(b.transpose(o, &perm)?));
                }
            }
        }
        Ok(None)
    })?;
    Ok((g, stats))
}
