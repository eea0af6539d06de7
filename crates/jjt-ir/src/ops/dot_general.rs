//! `dot_general(a, b, contract=[[..],[..]], batch=[[..],[..]])`: the general contraction
//! (XLA's DotGeneral). Axes `contract[0][i]` of `a` and `contract[1][i]` of `b` are summed over;
//! axes `batch[0][i]` and `batch[1][i]` are paired. The result's axes are the batch axes, then
//! `a`'s free axes, then `b`'s free axes, each in operand order. `matmul`/`@` lower to it.
//! The reference sums each output element's products in the element dtype, in the blocked
//! pairwise order of [`crate::sum`] (products in row-major order of the contracted axes, in the
//! order of `lhs_contract`; each block starts from its first product; an empty contraction is
//! `+0.0`).

use std::fmt::Write as _;

use super::view_offsets;
use super::{Arity, AttrValue, CallArgs, OpInfo, OpRule, ParseOp, Traits};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{Binary, bad_dtype, move_to_front, not_linear, same_dtype_float, usizes};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, IrError, TypeError};
use crate::graph::NodeId;
use crate::sum;
use crate::tensor::{Data, Float, Tensor, for_each_index};
use crate::types::{Shape, TensorType};

/// A general contraction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct DotGeneral {
    /// Contracted axes of the left operand.
    pub lhs_contract: Vec<usize>,
    /// Contracted axes of the right operand, paired with `lhs_contract`.
    pub rhs_contract: Vec<usize>,
    /// Batch axes of the left operand.
    pub lhs_batch: Vec<usize>,
    /// Batch axes of the right operand, paired with `lhs_batch`.
    pub rhs_batch: Vec<usize>,
}

impl DotGeneral {
    /// Axes of an operand of rank `rank` that are neither contracted nor batch, in order.
    pub fn free_axes(rank: usize, contract: &[usize], batch: &[usize]) -> Vec<usize> {
        (0..rank).filter(|a| !contract.contains(a) && !batch.contains(a)).collect()
    }

    fn check_axes(
        &self,
        which: &'static str,
        rank: usize,
        contract: &[usize],
        batch: &[usize],
    ) -> Result<(), TypeError> {
        let mut seen = vec![false; rank];
        for &a in contract.iter().chain(batch) {
            if a >= rank {
                return Err(TypeError::Axis { axis: a as i64, rank });
            }
            if seen[a] {
                return Err(TypeError::DotAxisReused { side: which, axis: a });
            }
            seen[a] = true;
        }
        Ok(())
    }

    fn run<T: Float>(&self, a: &Tensor, b: &Tensor, out: &TensorType) -> Option<Vec<T>> {
        let (x, y) = (T::view(&a.data)?, T::view(&b.data)?);
        let (ad, bd) = (a.shape.dims(), b.shape.dims());
        let (sa, sb) = (a.shape.strides(), b.shape.strides());
        let a_free = Self::free_axes(ad.len(), &self.lhs_contract, &self.lhs_batch);
        let b_free = Self::free_axes(bd.len(), &self.rhs_contract, &self.rhs_batch);
        let csizes: Vec<usize> = self.lhs_contract.iter().map(|&i| ad[i]).collect();
        let nb = self.lhs_batch.len();
        let mut res = Vec::with_capacity(out.numel());
        if let [k] = csizes[..] {
            let contract = (k, sa[self.lhs_contract[0]], sb[self.rhs_contract[0]]);
            let a_off = offsets(ad, &a_free, &sa);
            let b_off = offsets(bd, &b_free, &sb);
            let batch_dims: Vec<usize> = self.lhs_batch.iter().map(|&a| ad[a]).collect();
            for_each_index(&batch_dims, |bi| {
                let ba: usize = bi.iter().zip(&self.lhs_batch).map(|(&i, &a)| i * sa[a]).sum();
                let bb: usize = bi.iter().zip(&self.rhs_batch).map(|(&i, &a)| i * sb[a]).sum();
                one_axis(x, y, (ba, &a_off), (bb, &b_off), contract, &mut res);
            });
            return Some(res);
        }
        // The contracted axes' offsets in each operand, in row-major order of `lhs_contract`.
        let ca = offsets(ad, &self.lhs_contract, &sa);
        let cb = offsets(bd, &self.rhs_contract, &sb);
        for_each_index(out.shape.dims(), |idx| {
            let (bi, rest) = idx.split_at(nb);
            let (ai, bj) = rest.split_at(a_free.len());
            let mut base_a: usize = ai.iter().zip(&a_free).map(|(&i, &ax)| i * sa[ax]).sum();
            let mut base_b: usize = bj.iter().zip(&b_free).map(|(&i, &ax)| i * sb[ax]).sum();
            for (k, &i) in bi.iter().enumerate() {
                base_a += i * sa[self.lhs_batch[k]];
                base_b += i * sb[self.rhs_batch[k]];
            }
            let products = ca.iter().zip(&cb).map(|(&i, &j)| x[base_a + i].mul(y[base_b + j]));
            res.push(if ca.is_empty() { T::zero() } else { sum::sum_from(neg_zero(), products) });
        });
        Some(res)
    }
}

/// Element offsets of every index of the axes `axes` of an operand (row-major order).
fn offsets(dims: &[usize], axes: &[usize], strides: &[usize]) -> Vec<usize> {
    let shape: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
    let steps: Vec<usize> = axes.iter().map(|&a| strides[a]).collect();
    view_offsets(&shape, 0, &steps)
}

/// Outputs computed together: a block of left free indices × every right free index.
const CHUNK: usize = 4096;

/// `-0.0`, the start of a contraction's blocks: `-0.0 + p = p` for every product `p`, so a
/// block sum started from it is the block's first product plus the rest.
fn neg_zero<T: Float>() -> T {
    T::from_f64(-0.0)
}

/// Append one batch entry's outputs of a contraction over one axis of
/// `(length, lhs stride, rhs stride)`, in output order (left free, then right free indices):
/// `out[i, j] = Σ_c x[xa + a_off[i] + c·sa]·y[yb + b_off[j] + c·sb]`, summed in the blocked
/// pairwise order of [`crate::sum`]. The loop over `c` is outside the loops over a chunk of
/// outputs: for each `c` of a block of [`sum::BLOCK`] the chunk gets a rank-1 update
/// `acc[i, ·] += x_i·y_·` whose inner loop runs along contiguous memory (the block's first
/// product starts each block sum), and each block's sums go onto one [`sum::Pairwise`] stack
/// shared by the chunk: the same sums in the same order, computed an order of magnitude faster
/// than output by output.
fn one_axis<T: Float>(
    x: &[T],
    y: &[T],
    (xa, a_off): (usize, &[usize]),
    (yb, b_off): (usize, &[usize]),
    (k, sa, sb): (usize, usize, usize),
    res: &mut Vec<T>,
) {
    let (nl, nr) = (a_off.len(), b_off.len());
    if nl == 0 || nr == 0 {
        return;
    }
    if k == 0 {
        res.extend((0..nl * nr).map(|_| T::zero()));
        return;
    }
    let rows_per = (CHUNK / nr).clamp(1, nl);
    let mut xs = vec![T::zero(); rows_per];
    let mut ys = vec![T::zero(); nr];
    for r0 in (0..nl).step_by(rows_per) {
        let rows = rows_per.min(nl - r0);
        let start = res.len();
        res.resize(start + rows * nr, T::zero());
        // One block of the contraction, `cs`, into `acc` (rows × nr).
        let mut block = |cs: std::ops::Range<usize>, acc: &mut [T]| {
            let first = cs.start;
            for c in cs {
                for (v, &o) in ys.iter_mut().zip(b_off) {
                    *v = y[yb + o + c * sb];
                }
                for (v, &o) in xs.iter_mut().zip(&a_off[r0..r0 + rows]) {
                    *v = x[xa + o + c * sa];
                }
                for (row, &a) in acc.chunks_exact_mut(nr).zip(&xs) {
                    if c == first {
                        for (r, &v) in row.iter_mut().zip(&ys) {
                            *r = a.mul(v);
                        }
                    } else {
                        for (r, &v) in row.iter_mut().zip(&ys) {
                            *r = r.add(a.mul(v));
                        }
                    }
                }
            }
        };
        if k <= sum::BLOCK {
            block(0..k, &mut res[start..]);
            continue;
        }
        // Each block is summed in place in the stack's next entry.
        let mut stack = sum::Pairwise::with_width(rows * nr);
        for c0 in (0..k).step_by(sum::BLOCK) {
            block(c0..k.min(c0 + sum::BLOCK), stack.next_block());
            stack.commit_block();
        }
        stack.finish_into(&mut res[start..]);
    }
}

impl OpRule for DotGeneral {
    fn info(&self) -> OpInfo {
        OpInfo::new("dot_general", Arity::Fixed(2), Traits::NONE)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let (a, b) = (operands[0], operands[1]);
        same_dtype_float(a, b)?;
        if self.lhs_contract.len() != self.rhs_contract.len()
            || self.lhs_batch.len() != self.rhs_batch.len()
        {
            return Err(TypeError::UnpairedAxes {
                contract: (self.lhs_contract.len(), self.rhs_contract.len()),
                batch: (self.lhs_batch.len(), self.rhs_batch.len()),
            });
        }
        self.check_axes("lhs", a.rank(), &self.lhs_contract, &self.lhs_batch)?;
        self.check_axes("rhs", b.rank(), &self.rhs_contract, &self.rhs_batch)?;
        let (ad, bd) = (a.shape.dims(), b.shape.dims());
        for (kind, l, r) in [
            ("contracted", &self.lhs_contract, &self.rhs_contract),
            ("batch", &self.lhs_batch, &self.rhs_batch),
        ] {
            for (&i, &j) in l.iter().zip(r.iter()) {
                if ad[i] != bd[j] {
                    return Err(TypeError::PairedSizes {
                        kind,
                        lhs_axis: i,
                        lhs_size: ad[i],
                        rhs_axis: j,
                        rhs_size: bd[j],
                    });
                }
            }
        }
        let mut dims: Vec<usize> = self.lhs_batch.iter().map(|&i| ad[i]).collect();
        dims.extend(
            Self::free_axes(ad.len(), &self.lhs_contract, &self.lhs_batch).iter().map(|&i| ad[i]),
        );
        dims.extend(
            Self::free_axes(bd.len(), &self.rhs_contract, &self.rhs_batch).iter().map(|&i| bd[i]),
        );
        Ok(a.with_shape(dims))
    }
    fn eval(&self, args: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let (a, b, out) = (args.x[0], args.x[1], args.out);
        let data = match a.data {
            Data::F32(_) => self.run::<f32>(a, b, out).map(Data::F32),
            Data::F64(_) => self.run::<f64>(a, b, out).map(Data::F64),
            Data::I32(_) | Data::Bool(_) => None,
        };
        Ok(Tensor { shape: out.shape.clone(), data: data.ok_or_else(|| bad_dtype("dot_general"))? })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        let (x, t) = (a.x, a.t);
        // Bilinear: d(a·c) = ta·c + a·tc.
        let p = t[0].map(|t| b.dot_general(t, x[1], self.clone())).transpose()?;
        let q = t[1].map(|t| b.dot_general(x[0], t, self.clone())).transpose()?;
        match (p, q) {
            (Some(p), Some(q)) => b.binary(Binary::Add, p, q).map(Some),
            (p, q) => Ok(p.or(q)),
        }
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        match (&operands[0], &operands[1]) {
            (Lin::Linear(tx), Lin::Known(y)) => {
                let ty = b.ty(*y)?.clone();
                let xb = transpose_lhs(b, ct, tx.rank(), *y, ty.rank(), self, false)?;
                Ok(vec![Some(xb), None])
            }
            (Lin::Known(x), Lin::Linear(ty)) => {
                let tx = b.ty(*x)?.clone();
                let swapped = DotGeneral {
                    lhs_contract: self.rhs_contract.clone(),
                    rhs_contract: self.lhs_contract.clone(),
                    lhs_batch: self.rhs_batch.clone(),
                    rhs_batch: self.lhs_batch.clone(),
                };
                let yb = transpose_lhs(b, ct, ty.rank(), *x, tx.rank(), &swapped, true)?;
                Ok(vec![None, Some(yb)])
            }
            (Lin::Known(_), Lin::Known(_)) => Ok(vec![None, None]),
            (Lin::Linear(_), Lin::Linear(_)) => Err(not_linear(
                "dot_general",
                "both operands are linear (the product is quadratic)",
            )),
        }
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        let (x, dims) = (a.x, a.dims);
        let shift = |v: &[usize]| v.iter().map(|a| a + 1).collect::<Vec<_>>();
        let nb = self.lhs_batch.len();
        match (dims[0], dims[1]) {
            (Some(da), Some(db)) => {
                let l = move_to_front(b, x[0], da)?;
                let r = move_to_front(b, x[1], db)?;
                let d = DotGeneral {
                    lhs_contract: shift(&self.lhs_contract),
                    rhs_contract: shift(&self.rhs_contract),
                    lhs_batch: std::iter::once(0).chain(shift(&self.lhs_batch)).collect(),
                    rhs_batch: std::iter::once(0).chain(shift(&self.rhs_batch)).collect(),
                };
                Ok((b.dot_general(l, r, d)?, Some(0)))
            }
            (Some(da), None) => {
                // The batch axis becomes lhs's first free axis.
                let l = move_to_front(b, x[0], da)?;
                let d = DotGeneral {
                    lhs_contract: shift(&self.lhs_contract),
                    lhs_batch: shift(&self.lhs_batch),
                    ..self.clone()
                };
                Ok((b.dot_general(l, x[1], d)?, Some(nb)))
            }
            (None, Some(db)) => {
                let r = move_to_front(b, x[1], db)?;
                let lhs_rank = b.ty(x[0])?.rank();
                let lhs_free =
                    DotGeneral::free_axes(lhs_rank, &self.lhs_contract, &self.lhs_batch).len();
                let d = DotGeneral {
                    rhs_contract: shift(&self.rhs_contract),
                    rhs_batch: shift(&self.rhs_batch),
                    ..self.clone()
                };
                Ok((b.dot_general(x[0], r, d)?, Some(nb + lhs_free)))
            }
            (None, None) => Ok((b.dot_general(x[0], x[1], self.clone())?, None)),
        }
    }
    fn write_attrs(&self, out: &mut String) {
        let _ = write!(
            out,
            ", contract=[{},{}], batch=[{},{}]",
            Shape(self.lhs_contract.clone()),
            Shape(self.rhs_contract.clone()),
            Shape(self.lhs_batch.clone()),
            Shape(self.rhs_batch.clone())
        );
    }
}

fn pair(args: &mut CallArgs, key: &str) -> Result<(Vec<usize>, Vec<usize>), String> {
    let err = || format!("`{key}` must be a pair of axis lists, e.g. {key}=[[1],[0]]");
    match args.take(key) {
        None => Ok((Vec::new(), Vec::new())),
        Some(AttrValue::List(v)) if v.len() == 2 => {
            Ok((usizes(&v[0]).ok_or_else(err)?, usizes(&v[1]).ok_or_else(err)?))
        }
        Some(_) => Err(err()),
    }
}

impl ParseOp for DotGeneral {
    fn names() -> Vec<&'static str> {
        vec!["dot_general"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "dot_general").then(|| {
            let (lhs_contract, rhs_contract) = pair(args, "contract")?;
            let (lhs_batch, rhs_batch) = pair(args, "batch")?;
            Ok(DotGeneral { lhs_contract, rhs_contract, lhs_batch, rhs_batch })
        })
    }
}

/// The cotangent of the left operand `x` (rank `x_rank`) of `dot_general(x, y, dims)` given the
/// output cotangent `g` (JAX's `_dot_general_transpose_lhs`). With `swap_ans`, `g`'s free axes
/// are ordered (y's, x's), which is how the right operand's rule reuses this one.
fn transpose_lhs(
    b: &mut FunctionBuilder,
    g: NodeId,
    x_rank: usize,
    y: NodeId,
    y_rank: usize,
    dims: &DotGeneral,
    swap_ans: bool,
) -> Result<NodeId, IrError> {
    let x_kept = DotGeneral::free_axes(x_rank, &dims.lhs_contract, &dims.lhs_batch);
    let y_kept = DotGeneral::free_axes(y_rank, &dims.rhs_contract, &dims.rhs_batch);
    let nb = dims.lhs_batch.len();
    let ans_batch: Vec<usize> = (0..nb).collect();
    let ans_y: Vec<usize> = if swap_ans {
        (nb..nb + y_kept.len()).collect()
    } else {
        (nb + x_kept.len()..nb + x_kept.len() + y_kept.len()).collect()
    };
    let d = DotGeneral {
        lhs_contract: ans_y,
        rhs_contract: y_kept,
        lhs_batch: ans_batch,
        rhs_batch: dims.rhs_batch.clone(),
    };
    let prod = b.dot_general(g, y, d)?;
    // prod's axes: x's batch axes, x's kept axes, then x's contracted axes in the order of the
    // matching y axes (y's free axes come out sorted).
    let mut order: Vec<usize> = (0..dims.rhs_contract.len()).collect();
    order.sort_by_key(|&i| dims.rhs_contract[i]);
    let mut layout = dims.lhs_batch.clone();
    layout.extend_from_slice(&x_kept);
    layout.extend(order.iter().map(|&i| dims.lhs_contract[i]));
    // Output axis j of x is at position layout.index(j) in prod.
    let mut perm = vec![0; x_rank];
    for (pos, &axis) in layout.iter().enumerate() {
        perm[axis] = pos;
    }
    b.transpose(prod, &perm)
}
