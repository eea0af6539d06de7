//! Contractions vectorised along the innermost contracted axis (contiguous in both operands):
//! dot products of contiguous runs in vector accumulators (reassociated, so not in strict
//! mode), summed horizontally at the end. Matrix–vector products take [`ROWS`] outputs per pass
//! and load the operand they share once.

use cranelift_codegen::ir::{InstBuilder, Value};
use cranelift_frontend::Variable;

use super::{Contraction, Side};
use crate::JitError;
use crate::codegen::{Cg, Mode, lanes, scalar_ty, vec_ty};
use crate::plan::Expr;

/// Outputs per block of a matrix–vector product.
const ROWS: usize = 4;

/// Outputs computed together: `count` consecutive ones along output axis `axis`.
#[derive(Clone, Copy, Debug)]
struct Rows {
    count: usize,
    axis: usize,
}

impl Cg<'_, '_> {
    /// [`super::DotStrategy::ContractionVectors`]: one output at a time.
    pub(super) fn k_vec(&mut self, c: &Contraction<'_>) -> Result<(), JitError> {
        self.for_each(&c.shape, &mut Vec::new(), &mut |cg, oidx| {
            cg.k_vec_rows(c, oidx, Rows { count: 1, axis: 0 })
        })
    }

    /// [`super::DotStrategy::MatrixVector`]: blocks of [`ROWS`] outputs along `axis` (along
    /// which one operand does not move) load that operand once per step and keep one
    /// accumulator set per output; the remaining outputs one at a time.
    pub(super) fn k_vec_blocks(&mut self, c: &Contraction<'_>, a: usize) -> Result<(), JitError> {
        let shape: &[usize] = &c.shape;
        let rows = ROWS.min(shape[a]);
        let (blocks, rem) = (shape[a] / rows, shape[a] % rows);
        let mut blocked = shape.to_vec();
        blocked[a] = blocks;
        self.for_each(&blocked, &mut Vec::new(), &mut |cg, bidx| {
            let mut oidx = bidx.to_vec();
            oidx[a] = cg.b.ins().imul_imm_s(bidx[a], rows as i64);
            cg.k_vec_rows(c, &oidx, Rows { count: rows, axis: a })
        })?;
        if rem > 0 {
            let mut tail = shape.to_vec();
            tail[a] = rem;
            self.for_each(&tail, &mut Vec::new(), &mut |cg, tidx| {
                let mut oidx = tidx.to_vec();
                oidx[a] = cg.b.ins().iadd_imm_s(tidx[a], (blocks * rows) as i64);
                cg.k_vec_rows(c, &oidx, Rows { count: 1, axis: a })
            })?;
        }
        Ok(())
    }

    /// `rows.count` outputs at `oidx`, `oidx + e_a`, … (along output axis `a = rows.axis`),
    /// each a dot product vectorised along the innermost contracted axis. The operand that does
    /// not move along `a` is loaded once per step for all rows.
    fn k_vec_rows(
        &mut self,
        c: &Contraction<'_>,
        oidx: &[Value],
        rows: Rows,
    ) -> Result<(), JitError> {
        let (cdims, d) = (&c.cdims, c.dtype());
        let Rows { count: rows, axis: a } = rows;
        let w = lanes(d);
        let kn = cdims[cdims.len() - 1];
        let outer_c = &cdims[..cdims.len() - 1];
        // Independent accumulators per row hide the FMA latency: 4 for one row, 2 for more.
        let unroll = if rows == 1 { 4 } else { 2 };
        let step = w * unroll;
        let full = (kn / step * step) as i64;
        let shared_side = if c.lhs.strides.get(a) == Some(&0) { Side::Lhs } else { Side::Rhs };
        let (shared, moving) = (c.operand(shared_side), c.operand(shared_side.other()));
        let vaccs: Vec<Vec<Variable>> = (0..rows)
            .map(|_| (0..unroll).map(|_| self.b.declare_var(vec_ty(d))).collect())
            .collect();
        let saccs: Vec<Variable> = (0..rows).map(|_| self.b.declare_var(scalar_ty(d))).collect();
        for row in 0..rows {
            for &v in &vaccs[row] {
                let z = self.constant(Mode::Vector, d, 0.0);
                self.b.def_var(v, z);
            }
            let z = self.fconst(d, 0.0);
            self.b.def_var(saccs[row], z);
        }
        let row_index = |cg: &mut Self, base: &[Value], row: usize| -> Vec<Value> {
            let mut idx = base.to_vec();
            if row > 0 {
                idx[a] = cg.b.ins().iadd_imm_s(base[a], row as i64);
            }
            idx
        };
        self.for_each(outer_c, &mut oidx.to_vec(), &mut |cg, pre| {
            let starts: Vec<Vec<Value>> = (0..rows).map(|row| row_index(cg, pre, row)).collect();
            cg.counted(0, full, step as i64, &mut |cg, j| {
                for u in 0..unroll {
                    let ju = cg.b.ins().iadd_imm_s(j, (u * w) as i64);
                    let mut idx = starts[0].clone();
                    idx.push(ju);
                    let s = cg.eval(&Expr::Load(shared.clone()), &idx, Mode::Vector, d)?;
                    for (start, accs) in starts.iter().zip(&vaccs) {
                        let mut idx = start.clone();
                        idx.push(ju);
                        let o = cg.eval(&Expr::Load(moving.clone()), &idx, Mode::Vector, d)?;
                        let (x, y) = shared_side.order(s, o);
                        let acc = cg.b.use_var(accs[u]);
                        let acc = cg.mac(c.mac, acc, x, y);
                        cg.b.def_var(accs[u], acc);
                    }
                }
                Ok(())
            })?;
            cg.counted(full, kn as i64, 1, &mut |cg, j| {
                for row in 0..rows {
                    let mut idx = starts[row].clone();
                    idx.push(j);
                    cg.mac_into(saccs[row], c, &idx, Mode::Scalar)?;
                }
                Ok(())
            })
        })?;
        // Horizontal sum of each row's vector accumulators, then its scalar tail.
        for row in 0..rows {
            let mut tot = self.b.use_var(vaccs[row][0]);
            for &v in &vaccs[row][1..] {
                let x = self.b.use_var(v);
                tot = self.b.ins().fadd(tot, x);
            }
            let mut s = self.b.ins().extractlane(tot, 0u8);
            for l in 1..w {
                let x = self.b.ins().extractlane(tot, l as u8);
                s = self.b.ins().fadd(s, x);
            }
            let t = self.b.use_var(saccs[row]);
            let s = self.b.ins().fadd(s, t);
            let idx = row_index(self, oidx, row);
            self.store(s, &c.dst, &idx);
        }
        Ok(())
    }
}
