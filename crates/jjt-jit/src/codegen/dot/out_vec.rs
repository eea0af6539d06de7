//! Contractions vectorised over the output's innermost axis: each lane is an independent
//! output, summing its products in contraction order from −0 (so with separate rounding the
//! result is the interpreter's, bit for bit). Short contractions are unrolled; long ones with
//! one operand constant along the vector axis (a matrix product's rows) run in register tiles.

use cranelift_codegen::ir::{InstBuilder, Value};
use cranelift_frontend::Variable;

use super::{Contraction, Side, Walk};
use crate::JitError;
use crate::codegen::{Cg, Mode, lanes, scalar_ty, vec_ty};
use crate::plan::Expr;

/// Vectors per register tile along the output's innermost axis.
const TILE: usize = 4;
/// Rows per register tile (along an output axis the vector operand does not move along).
const ROWS: usize = 2;

/// One register tile of [`Cg::out_vec_tiles`]: the index of the first output of each of its
/// rows (without the vector axis), and the number of vectors per row.
struct Tile<'t> {
    starts: &'t [Vec<Value>],
    vectors: usize,
}

impl Cg<'_, '_> {
    /// [`super::DotStrategy::OutputVectors`]: a loop over the outer output axes, vectors of
    /// outputs along the innermost one (the contraction unrolled or looped, as `walk` says),
    /// then a scalar tail.
    pub(super) fn out_vec(&mut self, c: &Contraction<'_>, walk: Walk) -> Result<(), JitError> {
        let (shape, lv, rv, d) = (&c.shape[..], &c.lhs, &c.rhs, c.dtype());
        let w = lanes(d);
        let last = shape.len() - 1;
        let n = shape[last];
        let full = (n / w * w) as i64;
        let vacc = self.b.declare_var(vec_ty(d));
        let sacc = self.b.declare_var(scalar_ty(d));
        let unrolled = walk == Walk::Unrolled;
        // A looped contraction runs TILE vectors of outputs per pass over K: independent
        // chains of multiply-adds, one walk of the contracted axes for all of them (each lane
        // still sums its own terms in order, so the bits do not change).
        let tile = if unrolled { 1 } else { (n / w).min(TILE) };
        let tiled = if tile > 1 { (n / (w * tile) * w * tile) as i64 } else { 0 };
        let taccs: Vec<Variable> = (0..tile).map(|_| self.b.declare_var(vec_ty(d))).collect();
        self.for_each(&shape[..last], &mut Vec::new(), &mut |cg, outer| {
            let mut idx = outer.to_vec();
            cg.counted(0, tiled, (w * tile) as i64, &mut |cg, j| {
                cg.out_vec_walk(c, &idx, j, &taccs)
            })?;
            // Operand elements that do not change along the vector axis are loaded and
            // splatted once, before the loop (loads are not hoisted by Cranelift).
            let mut hoisted: Vec<[Option<Value>; 2]> = Vec::new();
            if unrolled {
                for q in 0..c.cdims[0] {
                    let mut all = idx.clone();
                    all.push(cg.iconst(0));
                    all.push(cg.iconst(q as i64));
                    let mut pair = [None, None];
                    for (slot, v) in [lv, rv].into_iter().enumerate() {
                        if v.strides[last] == 0 {
                            pair[slot] =
                                Some(cg.eval(&Expr::Load(v.clone()), &all, Mode::Vector, d)?);
                        }
                    }
                    hoisted.push(pair);
                }
            }
            cg.counted(tiled, full, w as i64, &mut |cg, j| {
                if !unrolled {
                    return cg.out_vec_walk(c, &idx, j, &taccs[..1]);
                }
                idx.push(j);
                let z = cg.constant(Mode::Vector, d, -0.0);
                cg.b.def_var(vacc, z);
                // Short contraction: straight-line code, no loop.
                for (q, pair) in hoisted.iter().enumerate() {
                    let mut all = idx.clone();
                    all.push(cg.iconst(q as i64));
                    let x = match pair[0] {
                        Some(v) => v,
                        None => cg.eval(&Expr::Load(lv.clone()), &all, Mode::Vector, d)?,
                    };
                    let y = match pair[1] {
                        Some(v) => v,
                        None => cg.eval(&Expr::Load(rv.clone()), &all, Mode::Vector, d)?,
                    };
                    let a = cg.b.use_var(vacc);
                    let a2 = cg.mac(c.mac, a, x, y);
                    cg.b.def_var(vacc, a2);
                }
                let a = cg.b.use_var(vacc);
                cg.store(a, &c.dst, &idx);
                idx.pop();
                Ok(())
            })?;
            cg.counted(full, n as i64, 1, &mut |cg, j| {
                idx.push(j);
                cg.scalar_dot(sacc, c, &idx)?;
                idx.pop();
                Ok(())
            })
        })
    }

    /// The vectors of outputs starting at `j` along the innermost axis, one per accumulator in
    /// `accs`, each summed over the contracted axes in order from −0 (one loop nest for all),
    /// then stored; `idx` indexes the outer output axes.
    fn out_vec_walk(
        &mut self,
        c: &Contraction<'_>,
        idx: &[Value],
        j: Value,
        accs: &[Variable],
    ) -> Result<(), JitError> {
        let (d, w, last) = (c.dtype(), lanes(c.dtype()) as i64, c.shape.len() - 1);
        let z = self.constant(Mode::Vector, d, -0.0);
        for &a in accs {
            self.b.def_var(a, z);
        }
        let mut base = idx.to_vec();
        base.push(j);
        self.for_each(&c.cdims, &mut base.clone(), &mut |cg, all| {
            for (t, &a) in accs.iter().enumerate() {
                let mut at = all.to_vec();
                if t > 0 {
                    at[last] = cg.b.ins().iadd_imm_s(all[last], t as i64 * w);
                }
                cg.mac_into(a, c, &at, Mode::Vector)?;
            }
            Ok(())
        })?;
        for (t, &a) in accs.iter().enumerate() {
            if t > 0 {
                base[last] = self.b.ins().iadd_imm_s(j, t as i64 * w);
            }
            let v = self.b.use_var(a);
            self.store(v, &c.dst, &base);
        }
        Ok(())
    }

    /// [`super::DotStrategy::RegisterTiles`]: up to [`ROWS`] rows (an output axis along which
    /// the vector operand does not move) × [`TILE`] vectors along the innermost axis, so each
    /// step of the contraction loads `TILE` vectors of the vector operand and `ROWS` splats of
    /// the `splat` operand for `ROWS·TILE` multiply-adds (instead of two loads per vector).
    /// Each output still sums its products in contraction order, from −0.
    pub(super) fn out_vec_tiles(
        &mut self,
        c: &Contraction<'_>,
        splat: Side,
    ) -> Result<(), JitError> {
        let (shape, d) = (&c.shape[..], c.dtype());
        let (sv, vv) = (c.operand(splat), c.operand(splat.other()));
        let w = lanes(d);
        let last = shape.len() - 1;
        let n = shape[last];
        let ra =
            (0..last).rev().find(|&a| shape[a] >= 2 && vv.strides[a] == 0 && sv.strides[a] != 0);
        // Passes over the outer axes: (their extents, rows per tile, first row along `ra`).
        let mut passes: Vec<(Vec<usize>, usize, usize)> = Vec::new();
        match ra {
            Some(a) => {
                let mut blocked = shape[..last].to_vec();
                blocked[a] = shape[a] / ROWS;
                passes.push((blocked, ROWS, 0));
                if !shape[a].is_multiple_of(ROWS) {
                    let mut rest = shape[..last].to_vec();
                    rest[a] = shape[a] % ROWS;
                    passes.push((rest, 1, shape[a] / ROWS * ROWS));
                }
            }
            None => passes.push((shape[..last].to_vec(), 1, 0)),
        }
        let tiles = (n / (TILE * w) * TILE * w) as i64;
        let full = (n / w * w) as i64;
        let sacc = self.b.declare_var(scalar_ty(d));
        for (dims, rows, first) in passes {
            self.for_each(&dims, &mut Vec::new(), &mut |cg, outer| {
                let mut starts = Vec::with_capacity(rows);
                for row in 0..rows {
                    let mut idx = outer.to_vec();
                    if let Some(a) = ra {
                        let scaled = cg.b.ins().imul_imm_s(outer[a], rows as i64);
                        idx[a] = cg.b.ins().iadd_imm_s(scaled, (first + row) as i64);
                    }
                    starts.push(idx);
                }
                for (from, to, u) in [(0, tiles, TILE), (tiles, full, 1)] {
                    let tile = Tile { starts: &starts, vectors: u };
                    cg.counted(from, to, (u * w) as i64, &mut |cg, j| {
                        cg.out_vec_tile(c, splat, &tile, j)
                    })?;
                }
                for start in &starts {
                    cg.counted(full, n as i64, 1, &mut |cg, j| {
                        let mut idx = start.clone();
                        idx.push(j);
                        cg.scalar_dot(sacc, c, &idx)
                    })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// One register tile of [`Cg::out_vec_tiles`], its vectors starting at `j`.
    fn out_vec_tile(
        &mut self,
        c: &Contraction<'_>,
        splat: Side,
        tile: &Tile<'_>,
        j: Value,
    ) -> Result<(), JitError> {
        let (starts, u, d) = (tile.starts, tile.vectors, c.dtype());
        let (sv, vv) = (c.operand(splat), c.operand(splat.other()));
        let w = lanes(d);
        let accs: Vec<Vec<Variable>> = starts
            .iter()
            .map(|_| (0..u).map(|_| self.b.declare_var(vec_ty(d))).collect())
            .collect();
        for row in &accs {
            for &a in row {
                let z = self.constant(Mode::Vector, d, -0.0);
                self.b.def_var(a, z);
            }
        }
        let js: Vec<Value> = (0..u).map(|v| self.b.ins().iadd_imm_s(j, (v * w) as i64)).collect();
        self.for_each(&c.cdims, &mut Vec::new(), &mut |cg, kidx| {
            let mut ys = Vec::with_capacity(u);
            for &jv in &js {
                let mut idx = starts[0].clone();
                idx.push(jv);
                idx.extend_from_slice(kidx);
                ys.push(cg.eval(&Expr::Load(vv.clone()), &idx, Mode::Vector, d)?);
            }
            for (start, row) in starts.iter().zip(&accs) {
                let mut idx = start.clone();
                idx.push(j);
                idx.extend_from_slice(kidx);
                let x = cg.eval(&Expr::Load(sv.clone()), &idx, Mode::Vector, d)?;
                for (&y, &a) in ys.iter().zip(row) {
                    let (p, q) = splat.order(x, y);
                    let acc = cg.b.use_var(a);
                    let acc = cg.mac(c.mac, acc, p, q);
                    cg.b.def_var(a, acc);
                }
            }
            Ok(())
        })?;
        for (start, row) in starts.iter().zip(&accs) {
            for (&jv, &a) in js.iter().zip(row) {
                let mut idx = start.clone();
                idx.push(jv);
                let v = self.b.use_var(a);
                self.store(v, &c.dst, &idx);
            }
        }
        Ok(())
    }
}
