//! Elementwise steps: one loop nest whose innermost loop runs on vectors when it can (two
//! vectors per iteration, then one, then one more ending at the row's end, which recomputes a
//! few elements to the same values, or a scalar tail when the step reads its own destination),
//! and the row functions that run a large step's rows on several threads through
//! `jjt_par_map`. Each view's address at the start of a row is computed once per row.

use cranelift_codegen::ir::{FuncRef, InstBuilder, StackSlotData, StackSlotKind, Value, types};
use jjt_ir::DType;

use super::expr::{loads, vectorizable};
use super::{Cg, Mode, lanes};
use crate::JitError;
use crate::plan::{Expr, MapStep, Step, View};

/// Elements from which an elementwise step runs its rows on several threads: below it,
/// handing half the rows to a helper costs more than it saves.
pub(crate) const PAR_MAP_ELEMS: usize = 1 << 14;

/// The elementwise `step`, if it runs its rows on several threads: rank ≥ 2 with at least two
/// rows and [`PAR_MAP_ELEMS`] elements, when more than one thread may be used.
pub(crate) fn parallel_map(step: &Step, threads: usize) -> Option<&MapStep> {
    match step {
        Step::Map(m) => {
            let shape = &m.shape;
            let parallel = threads > 1
                && shape.len() >= 2
                && shape[0] >= 2
                && shape.iter().product::<usize>() >= PAR_MAP_ELEMS;
            parallel.then_some(m)
        }
        Step::Reduce(_) | Step::Dot(_) | Step::Scatter(_) | Step::MatVecs(_) | Step::Fused(_) => {
            None
        }
    }
}

/// Elements per side of the square tiles a transposing step runs in.
pub(crate) const TILE: usize = 16;

/// The axis to tile together with the innermost one, when the elementwise step `m` reads a
/// view across its rows (a transpose: the view's stride along the innermost axis is neither
/// 0 nor 1): the other axis along which that view moves least. Run in [`TILE`]×[`TILE`]
/// tiles of the two axes, the step reads each cache line of the view and writes each line of
/// its destination once per tile instead of once per element.
fn tile_axis(m: &MapStep) -> Option<usize> {
    let r = m.shape.len();
    if r < 2 || m.shape[r - 1] < 2 {
        return None;
    }
    let across = m.expr.views().into_iter().find(|v| !matches!(v.strides[r - 1], -1..=1))?;
    (0..r - 1)
        .filter(|&i| m.shape[i] >= 2 && across.strides[i] != 0)
        .min_by_key(|&i| across.strides[i].unsigned_abs())
        .filter(|&i| across.strides[i].unsigned_abs() < across.strides[r - 1].unsigned_abs())
}

impl Cg<'_, '_> {
    /// Call `jjt_par_map` with the row function `part` of the elementwise step `m`.
    pub fn call_rows(&mut self, part: FuncRef, m: &MapStep, params: [Value; 4]) {
        self.how = "rows on threads".into();
        let f = self.b.ins().func_addr(types::I64, part);
        let mut args = vec![f];
        args.extend(params);
        let rows = self.iconst(m.shape[0] as i64);
        let threads = self.iconst(self.policy.threads as i64);
        args.push(rows);
        args.push(threads);
        let par = self.imports.par_map;
        self.b.ins().call(par, &args);
    }

    /// The rows `[lo, hi)` of the outermost axis of the elementwise step `m` (the body of its
    /// row function).
    pub fn map_rows(&mut self, m: &MapStep, lo: Value, hi: Value) -> Result<(), JitError> {
        self.map_in(m, Some((lo, hi)))
    }

    /// An elementwise step.
    pub(super) fn map(&mut self, m: &MapStep) -> Result<(), JitError> {
        self.map_in(m, None)
    }

    /// An elementwise step, over all rows or (`rows`) over a range of its outermost axis.
    fn map_in(&mut self, m: &MapStep, rows: Option<(Value, Value)>) -> Result<(), JitError> {
        let MapStep { dst, shape, expr } = m;
        if shape.contains(&0) {
            return Ok(());
        }
        let d = dst.dtype;
        let r = shape.len();
        let w = lanes(d);
        let vec_ok = r > 0
            && d != DType::Bool
            && dst.strides[r - 1] == 1
            && shape[r - 1] >= w
            && vectorizable(expr, d, r - 1, self.policy.inline_math);
        if !vec_ok {
            if let Some(a) = tile_axis(m) {
                return self.for_tiled(shape, rows, a, &mut |cg, idx| {
                    let v = cg.eval(expr, idx, Mode::Scalar, d)?;
                    cg.store(v, dst, idx);
                    Ok(())
                });
            }
            return self.for_rows(shape, rows, &mut |cg, idx| {
                let v = cg.eval(expr, idx, Mode::Scalar, d)?;
                cg.store(v, dst, idx);
                Ok(())
            });
        }
        let n = shape[r - 1];
        let full = (n / w * w) as i64;
        let pairs = (n / (2 * w) * 2 * w) as i64;
        self.vaxis = r - 1;
        let mut views = expr.views();
        let aliased = views.iter().any(|v| v.buf == dst.buf);
        let steady: Vec<View> =
            loads(expr).into_iter().filter(|v| v.strides[r - 1] == 0 && v.buf != dst.buf).collect();
        views.push(dst.clone());
        // Row ranges split the outermost axis, which is never the vector axis (rank ≥ 2).
        let rows = rows.filter(|_| r >= 2);
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            8 * views.len() as u32,
            3,
        ));
        self.for_rows(&shape[..r - 1], rows, &mut |cg, outer| {
            // Each view's address at the start of this row, once; the loops below add i·stride.
            let mut idx = outer.to_vec();
            idx.push(cg.iconst(0));
            let mut ptrs: Vec<(View, Value)> = Vec::new();
            for v in &views {
                if !ptrs.iter().any(|(p, _)| p == v) {
                    let a = cg.addr(v, &idx);
                    ptrs.push((v.clone(), a));
                }
            }
            idx.pop();
            cg.pin(slot, &ptrs);
            let outer_rows = cg.rows.replace((r - 1, ptrs));
            // Views that stay put along the row: loaded and splat here, once, rather than in
            // every vector of the row (the rows of a kernel's `[.., 10, 10]` outputs are short).
            let zero = cg.iconst(0);
            idx.push(zero);
            let mut splats = Vec::new();
            for v in steady.iter() {
                let x = cg.eval(&Expr::Load(v.clone()), &idx, Mode::Vector, d)?;
                splats.push((v.clone(), x));
            }
            idx.pop();
            let outer_splats = std::mem::replace(&mut cg.splats, splats);
            let mut one = |cg: &mut Self, i: Value, mode: Mode| -> Result<(), JitError> {
                idx.push(i);
                let v = cg.eval(expr, &idx, mode, d)?;
                cg.store(v, dst, &idx);
                idx.pop();
                Ok(())
            };
            // Two vectors per iteration, then one, then the tail: one more vector ending at the
            // row's end (it recomputes a few elements, to the same values) when the step reads
            // nothing of its destination, else scalars.
            cg.counted(0, pairs, 2 * w as i64, &mut |cg, i| {
                one(cg, i, Mode::Vector)?;
                let j = cg.b.ins().iadd_imm_s(i, w as i64);
                one(cg, j, Mode::Vector)
            })?;
            cg.counted(pairs, full, w as i64, &mut |cg, i| one(cg, i, Mode::Vector))?;
            if full < n as i64 && !aliased {
                let last = cg.iconst(n as i64 - w as i64);
                one(cg, last, Mode::Vector)?;
            } else {
                cg.counted(full, n as i64, 1, &mut |cg, i| one(cg, i, Mode::Scalar))?;
            }
            cg.rows = outer_rows;
            cg.splats = outer_splats;
            Ok(())
        })
    }
}
