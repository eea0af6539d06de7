//! Loop nests and addresses: counted loops with SSA index variables, nested loops over an
//! index space (optionally with the outermost axis over a run-time row range), and the address
//! of a strided view at an index.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{BlockArg, InstBuilder, StackSlot, Value, types};

use super::Cg;
use crate::JitError;
use crate::plan::{View, item_size};

/// The body of [`Cg::for_tiled`]'s outer loops: per axis, the fixed index `(i, i)`, the row
/// range of a tiled axis 0, or nothing for a tiled axis that runs whole.
type TileBody<'a, 'b, 'c> =
    dyn FnMut(&mut Cg<'a, 'b>, &[Option<(Value, Value)>]) -> Result<(), JitError> + 'c;

/// A loop body receiving the index of every axis.
pub(super) type IndexBody<'a, 'b, 'c> =
    dyn FnMut(&mut Cg<'a, 'b>, &[Value]) -> Result<(), JitError> + 'c;

impl<'a, 'b> Cg<'a, 'b> {
    /// The address of `view` at `idx` (one index per axis of the view's index space).
    pub(super) fn addr(&mut self, view: &View, idx: &[Value]) -> Value {
        let size = item_size(view.dtype) as i64;
        let row = self.rows.as_ref().and_then(|(axis, ptrs)| {
            let p = ptrs.iter().find(|(v, _)| v == view)?.1;
            Some((*axis, p))
        });
        if let Some((axis, p)) = row
            && let Some(&i) = idx.get(axis)
        {
            return match view.strides[axis] {
                0 => p,
                s => {
                    let t = self.b.ins().imul_imm_s(i, s as i64 * size);
                    self.b.ins().iadd(p, t)
                }
            };
        }
        let base = self.bases[&view.buf];
        let mut a = if view.offset != 0 {
            let off = self.iconst(view.offset as i64 * size);
            self.b.ins().iadd(base, off)
        } else {
            base
        };
        for (i, &s) in view.strides.iter().enumerate() {
            if s != 0 {
                let t = self.b.ins().imul_imm_s(idx[i], s as i64 * size);
                a = self.b.ins().iadd(a, t);
            }
        }
        a
    }

    /// Place the computation of each value of `vals` here: a store of each into `slot` (of
    /// at least `8·vals.len()` bytes) makes them used at this point, so Cranelift computes
    /// them once here rather than at their first use inside the loops that follow (where an
    /// address's constant strides would keep it from being hoisted out again: a row's base
    /// addresses would become a multiply per view per iteration).
    pub(super) fn pin<T>(&mut self, slot: StackSlot, vals: &[(T, Value)]) {
        for (k, (_, v)) in vals.iter().enumerate() {
            self.b.ins().stack_store(types::I64, *v, slot, (8 * k) as i32);
        }
    }

    /// Emit nested counted loops over `dims`, calling `body` with the index of every axis.
    pub(super) fn for_each(
        &mut self,
        dims: &[usize],
        prefix: &mut Vec<Value>,
        body: &mut IndexBody<'a, 'b, '_>,
    ) -> Result<(), JitError> {
        let Some((&n, rest)) = dims.split_first() else {
            let idx = prefix.clone();
            return body(self, &idx);
        };
        if n == 1 {
            let z = self.iconst(0);
            prefix.push(z);
            self.for_each(rest, prefix, body)?;
            prefix.pop();
            return Ok(());
        }
        self.counted(0, n as i64, 1, &mut |cg, i| {
            prefix.push(i);
            let r = cg.for_each(rest, prefix, body);
            prefix.pop();
            r
        })
    }

    /// `for (i = from; i < to; i += step) body(i)`.
    pub(super) fn counted(
        &mut self,
        from: i64,
        to: i64,
        step: i64,
        body: &mut dyn FnMut(&mut Self, Value) -> Result<(), JitError>,
    ) -> Result<(), JitError> {
        if from >= to {
            return Ok(());
        }
        let (lo, hi) = (self.iconst(from), self.iconst(to));
        self.counted_between(lo, hi, step, body)
    }

    /// `for (i = lo; i < hi; i += step) body(i)` with bounds computed at run time.
    pub(super) fn counted_between(
        &mut self,
        lo: Value,
        hi: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self, Value) -> Result<(), JitError>,
    ) -> Result<(), JitError> {
        let header = self.b.create_block();
        let blk = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(header, types::I64);
        self.b.ins().jump(header, &[BlockArg::Value(lo)]);
        self.b.switch_to_block(header);
        let c = self.b.ins().icmp(IntCC::SignedLessThan, i, hi);
        self.b.ins().brif(c, blk, &[], exit, &[]);
        self.b.switch_to_block(blk);
        self.b.seal_block(blk);
        body(self, i)?;
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.ins().jump(header, &[BlockArg::Value(next)]);
        self.b.seal_block(header);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        Ok(())
    }

    /// Loops over `dims` like [`Cg::for_each`], but with the outermost axis running over the
    /// dynamic range `rows` when given.
    pub(super) fn for_rows(
        &mut self,
        dims: &[usize],
        rows: Option<(Value, Value)>,
        body: &mut IndexBody<'a, 'b, '_>,
    ) -> Result<(), JitError> {
        let Some((lo, hi)) = rows else {
            return self.for_each(dims, &mut Vec::new(), body);
        };
        self.counted_between(lo, hi, 1, &mut |cg, i| cg.for_each(&dims[1..], &mut vec![i], body))
    }

    /// Loops over `dims` like [`Cg::for_rows`], but with the axis `a` and the innermost axis
    /// run in tiles of [`super::map::TILE`] × [`super::map::TILE`]: every other axis in its
    /// place, then the tiles of `a`, the tiles of the innermost axis, and the elements of one
    /// tile. Only for steps whose elements may be visited in any order.
    pub(super) fn for_tiled(
        &mut self,
        dims: &[usize],
        rows: Option<(Value, Value)>,
        a: usize,
        body: &mut IndexBody<'a, 'b, '_>,
    ) -> Result<(), JitError> {
        let r = dims.len();
        let whole = |cg: &mut Self, n: usize| (cg.iconst(0), cg.iconst(n as i64));
        let mut bounds: Vec<Option<(Value, Value)>> = vec![None; r];
        self.tiled_outer(dims, rows, a, 0, &mut bounds, &mut |cg, bounds| {
            let (alo, ahi) = match bounds[a] {
                Some(b) => b,
                None => whole(cg, dims[a]),
            };
            let (jlo, jhi) = whole(cg, dims[r - 1]);
            let t = super::map::TILE as i64;
            cg.counted_between(alo, ahi, t, &mut |cg, a0| {
                let a_end = cg.b.ins().iadd_imm_s(a0, t);
                let a1 = cg.b.ins().smin(a_end, ahi);
                cg.counted_between(jlo, jhi, t, &mut |cg, j0| {
                    let j_end = cg.b.ins().iadd_imm_s(j0, t);
                    let j1 = cg.b.ins().smin(j_end, jhi);
                    cg.counted_between(a0, a1, 1, &mut |cg, ia| {
                        cg.counted_between(j0, j1, 1, &mut |cg, j| {
                            let idx: Vec<Value> = (0..r)
                                .map(|k| match k {
                                    _ if k == a => ia,
                                    _ if k == r - 1 => j,
                                    _ => bounds[k].map_or(ia, |b| b.0),
                                })
                                .collect();
                            body(cg, &idx)
                        })
                    })
                })
            })
        })
    }

    /// The loops of [`Cg::for_tiled`] over the axes other than `a` and the innermost, from
    /// axis `k` on: each fixes its index (stored as `(i, i)` in `bounds`); the row range, when
    /// given, bounds axis 0 (stored as the range itself when axis 0 is `a`).
    fn tiled_outer(
        &mut self,
        dims: &[usize],
        rows: Option<(Value, Value)>,
        a: usize,
        k: usize,
        bounds: &mut Vec<Option<(Value, Value)>>,
        inner: &mut TileBody<'a, 'b, '_>,
    ) -> Result<(), JitError> {
        let r = dims.len();
        if k == r - 1 {
            return inner(self, bounds);
        }
        let range = match (k, rows) {
            (0, Some(rg)) => rg,
            _ => (self.iconst(0), self.iconst(dims[k] as i64)),
        };
        if k == a {
            bounds[k] = (k == 0 && rows.is_some()).then_some(range);
            return self.tiled_outer(dims, rows, a, k + 1, bounds, inner);
        }
        self.counted_between(range.0, range.1, 1, &mut |cg, i| {
            bounds[k] = Some((i, i));
            cg.tiled_outer(dims, rows, a, k + 1, bounds, inner)
        })
    }
}
