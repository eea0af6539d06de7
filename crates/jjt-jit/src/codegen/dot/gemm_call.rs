//! Large contractions as calls to the matrix multiply ([`crate::gemm`]): when the contracted
//! axes chain into one K on both sides and the longest chaining suffixes of the free axes
//! give M and N large enough, the remaining axes (batch axes, the free axes' prefixes) become
//! loops around one call per (M×K)·(K×N) product.

use cranelift_codegen::ir::InstBuilder;
use jjt_ir::DType;
use jjt_ir::ops::DotGeneral;

use crate::JitError;
use crate::codegen::Cg;
use crate::gemm::{GEMM_MIN_MN, GEMM_THRESHOLD};
use crate::libm::Precision;
use crate::plan::{DotStep, View};

/// One operand of the call: its view over the outer loops (offset, buffer and one stride per
/// outer axis), and its row and column strides inside one product.
#[derive(Clone, Debug, PartialEq)]
struct Matrix {
    outer: View,
    row_stride: isize,
    col_stride: isize,
}

/// Calls to the matrix multiply computing a contraction: `C = A·B` with `A` M×K, `B` K×N, for
/// every index of the outer loops.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct GemmCall {
    m: usize,
    k: usize,
    n: usize,
    a: Matrix,
    b: Matrix,
    c: Matrix,
    /// Extents of the loops around the call.
    outer_dims: Vec<usize>,
}

impl GemmCall {
    /// The calls computing `s`, if it is large enough and its axes flatten to
    /// (M×K)·(K×N) with the remaining axes as outer loops.
    pub(super) fn plan(s: &DotStep) -> Option<GemmCall> {
        let DotStep { dst, shape, lhs, lhs_shape, rhs, rhs_shape, dims } = s;
        if dst.dtype == DType::Bool {
            return None;
        }
        let lfree = DotGeneral::free_axes(lhs_shape.len(), &dims.lhs_contract, &dims.lhs_batch);
        let rfree = DotGeneral::free_axes(rhs_shape.len(), &dims.rhs_contract, &dims.rhs_batch);
        // K: the contracted axes must chain on both sides.
        let chains = |v: &View, sh: &[usize], ax: &[usize]| {
            ax.windows(2).all(|p| v.strides[p[0]] == v.strides[p[1]] * sh[p[1]] as isize)
        };
        if !chains(lhs, lhs_shape, &dims.lhs_contract)
            || !chains(rhs, rhs_shape, &dims.rhs_contract)
        {
            return None;
        }
        let k: usize = dims.lhs_contract.iter().map(|&a| lhs_shape[a]).product();
        let (&lk, &rk) = (dims.lhs_contract.last()?, dims.rhs_contract.last()?);
        let (csa, rsb) = (lhs.strides[lk], rhs.strides[rk]);
        // M: the longest suffix of lhs's free axes that chains in lhs and in the output.
        let nb = dims.lhs_batch.len();
        let out_pos_l = |k: usize| nb + k;
        let out_pos_r = |k: usize| nb + lfree.len() + k;
        let suffix =
            |free: &[usize], v: &View, sh: &[usize], pos: &dyn Fn(usize) -> usize| -> usize {
                let mut n = 0;
                for j in (0..free.len()).rev() {
                    if n > 0 {
                        let (a, b) = (free[j], free[j + 1]);
                        let ok_in = v.strides[a] == v.strides[b] * sh[b] as isize;
                        let ok_out = dst.strides[pos(j)]
                            == dst.strides[pos(j + 1)] * shape[pos(j + 1)] as isize;
                        if !(ok_in && ok_out) {
                            break;
                        }
                    }
                    n += 1;
                }
                n
            };
        let ml = suffix(&lfree, lhs, lhs_shape, &out_pos_l);
        let nl = suffix(&rfree, rhs, rhs_shape, &out_pos_r);
        let m: usize = lfree[lfree.len() - ml..].iter().map(|&a| lhs_shape[a]).product();
        let n: usize = rfree[rfree.len() - nl..].iter().map(|&a| rhs_shape[a]).product();
        if m.saturating_mul(n).saturating_mul(k) < GEMM_THRESHOLD || m.min(n) < GEMM_MIN_MN {
            return None;
        }
        let rsa = if ml > 0 { lhs.strides[lfree[lfree.len() - 1]] } else { 0 };
        let csb = if nl > 0 { rhs.strides[rfree[rfree.len() - 1]] } else { 0 };
        let rsc = if ml > 0 { dst.strides[out_pos_l(lfree.len() - 1)] } else { 0 };
        let csc = if nl > 0 { dst.strides[out_pos_r(rfree.len() - 1)] } else { 0 };
        // Outer loops: batch axes, lhs free prefix, rhs free prefix.
        let mut outer_dims = Vec::new();
        let mut l_outer = Vec::new();
        let mut r_outer = Vec::new();
        let mut o_outer = Vec::new();
        for (k, (&a, &b)) in dims.lhs_batch.iter().zip(&dims.rhs_batch).enumerate() {
            outer_dims.push(lhs_shape[a]);
            l_outer.push(lhs.strides[a]);
            r_outer.push(rhs.strides[b]);
            o_outer.push(dst.strides[k]);
        }
        for (j, &a) in lfree[..lfree.len() - ml].iter().enumerate() {
            outer_dims.push(lhs_shape[a]);
            l_outer.push(lhs.strides[a]);
            r_outer.push(0);
            o_outer.push(dst.strides[out_pos_l(j)]);
        }
        for (j, &a) in rfree[..rfree.len() - nl].iter().enumerate() {
            outer_dims.push(rhs_shape[a]);
            l_outer.push(0);
            r_outer.push(rhs.strides[a]);
            o_outer.push(dst.strides[out_pos_r(j)]);
        }
        let matrix = |v: &View, strides: Vec<isize>, row_stride, col_stride| Matrix {
            outer: View { strides, ..v.clone() },
            row_stride,
            col_stride,
        };
        Some(GemmCall {
            m,
            k,
            n,
            a: matrix(lhs, l_outer, rsa, csa),
            b: matrix(rhs, r_outer, rsb, csb),
            c: matrix(dst, o_outer, rsc, csc),
            outer_dims,
        })
    }
}

impl Cg<'_, '_> {
    /// [`super::DotStrategy::Gemm`]: the loops around the calls, and the calls.
    pub(super) fn gemm_call(&mut self, call: &GemmCall) -> Result<(), JitError> {
        let f = self.imports.gemm.get(Precision::of(call.c.outer.dtype));
        self.for_each(&call.outer_dims, &mut Vec::new(), &mut |cg, idx| {
            let a = cg.addr(&call.a.outer, idx);
            let b = cg.addr(&call.b.outer, idx);
            let c = cg.addr(&call.c.outer, idx);
            let mut args = Vec::with_capacity(13);
            for v in [call.m as i64, call.k as i64, call.n as i64] {
                args.push(cg.iconst(v));
            }
            for (p, x) in [(a, &call.a), (b, &call.b), (c, &call.c)] {
                args.push(p);
                args.push(cg.iconst(x.row_stride as i64));
                args.push(cg.iconst(x.col_stride as i64));
            }
            let threads = cg.iconst(cg.policy.threads as i64);
            args.push(threads);
            cg.b.ins().call(f, &args);
            Ok(())
        })
    }
}
