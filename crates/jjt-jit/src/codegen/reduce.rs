//! Reductions (sum, mean, max): a loop over the kept axes around a loop over the reduced
//! ones. [`form`] chooses how:
//!
//! | form | when | order |
//! |---|---|---|
//! | [`Form::Lanes`] | the input's innermost axis is kept (contiguous in the output) | the interpreter's, per lane: bit-identical (groups of [`GROUP`] vectors summed together, each its own chain) |
//! | [`Form::Along`] | not strict, the innermost axis is reduced and contiguous | vector accumulators within blocks, blocks pairwise |
//! | [`Form::Scalar`] | otherwise | the interpreter's: bit-identical |
//!
//! Sums follow the blocked pairwise order of [`jjt_ir::sum`]: at most
//! [`BLOCK`](jjt_ir::sum::BLOCK) terms are summed left to right inline; longer sums cut their
//! terms into blocks of `BLOCK` and combine the block sums on a binary-counter stack in a stack
//! slot (push a block sum, merge the top two once per trailing zero of the block count, fold
//! from the top at the end), exactly as [`jjt_ir::sum::Pairwise`] does; over one axis the
//! blocks are static loops, over several a counter closes a block every `BLOCK` terms. [`Form::Along`] sums
//! each block (a run of at most `BLOCK` terms along the innermost axis) in two vector
//! accumulators and a horizontal sum instead of left to right; its blocks combine pairwise the
//! same way. A term then passes through at most `BLOCK/(2·lanes) + 1` additions in its
//! accumulator lane, one joining the two accumulators, `log2 lanes` in the horizontal sum,
//! `lanes − 1` of a scalar tail and `⌈log2 m⌉` of the tree, so the error bound of the exact
//! order, `(BLOCK − 1 + ⌈log2 m⌉)·u·Σ|t|`, holds for it too and grows like `log n`. `max` is
//! order-independent (up to which NaN propagates) and is taken in one pass.
//!
//! Results never depend on the thread count ([`parallel_reduce`]): large reductions run their
//! outermost kept axis on several threads, every output computed by the same code whichever
//! thread runs it; a large sum to one value in [`Form::Along`] over one row is cut into
//! [`Parts`] of a power of two of blocks fixed by the shape, each a subtree of the pairwise
//! combination, whose sums combine on the stack exactly as the blocks would (so any thread
//! count gives the one-thread bits). Other reductions to one value (several rows, or the
//! vector axis of [`Form::Lanes`] alone) run on the calling thread.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{FuncRef, InstBuilder, StackSlot, StackSlotData, StackSlotKind};
use cranelift_codegen::ir::{Type, Value, types};
use cranelift_frontend::Variable;
use jjt_ir::DType;
use jjt_ir::ops::{Binary, ReduceKind};
use jjt_ir::sum::BLOCK;

use super::expr::vectorizable;
use super::{Cg, Mode, Summation, flags, lanes, scalar_ty, vec_ty};
use crate::JitError;
use crate::plan::{Buf, ReduceStep, Step};

/// Entries of a pairwise stack: one per bit of the block count.
const DEPTH: u32 = 64;

/// Bytes per stack entry (the widest value, a 128-bit vector).
const ENTRY: i64 = 16;

/// Output vectors [`Form::Lanes`] reduces together (independent chains of additions, one per
/// vector, interleaved): the CNN's bias gradient `sum` of `[16,10,1,16,16,64]` over the
/// positions (256 terms per output, 16 vectors per row of outputs), 1.35 → 0.76 ms on one
/// thread (`jjt bench --threads 1 --profile`); in alternating runs of the zoo the CNN 53.3 →
/// 51.9 ms, the mixer 10.9 → 10.6, the transformer 38.8 → 38.2.
const GROUP: usize = 4;

/// Input elements from which a reduction runs its outermost kept axis on several threads.
pub(crate) const PAR_REDUCE_ELEMS: usize = 1 << 16;

/// How a reduction is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// Vector lanes over the innermost (kept) axis: each lane an output, summed in order.
    Lanes,
    /// Vector accumulators along the innermost (reduced, contiguous) axis.
    Along,
    /// One output at a time, one term at a time.
    Scalar,
}

/// The axes of a reduction step.
struct Axes {
    kept: Vec<usize>,
    kept_dims: Vec<usize>,
    red_dims: Vec<usize>,
    count: usize,
}

impl Axes {
    fn of(s: &ReduceStep) -> Axes {
        let kept: Vec<usize> = (0..s.shape.len()).filter(|a| !s.axes.contains(a)).collect();
        let kept_dims = kept.iter().map(|&a| s.shape[a]).collect();
        let red_dims: Vec<usize> = s.axes.iter().map(|&a| s.shape[a]).collect();
        let count = red_dims.iter().product();
        Axes { kept, kept_dims, red_dims, count }
    }
}

/// How to compute `s` when sums may (`Reassociate`) or may not be reassociated, and `exp`,
/// `tanh`, `sigmoid` are inline or calls (`inline_math`).
fn form(s: &ReduceStep, ax: &Axes, summation: Summation, inline_math: bool) -> Form {
    let d = s.dst.dtype;
    let r = s.shape.len();
    if r == 0 || d == DType::Bool || ax.count == 0 || !vectorizable(&s.expr, d, r - 1, inline_math)
    {
        return Form::Scalar;
    }
    let w = lanes(d);
    if !s.axes.contains(&(r - 1)) {
        return if s.shape[r - 1] >= w { Form::Lanes } else { Form::Scalar };
    }
    if summation == Summation::Reassociate && s.shape[r - 1] >= 2 * w {
        return Form::Along;
    }
    Form::Scalar
}

/// The reduction `step`, if it runs on several threads (when more than one thread may be
/// used): split into [`Parts`] when it reduces to one value (`parts`), else along its outermost
/// kept axis when it has at least [`PAR_REDUCE_ELEMS`] input elements and two rows, and that
/// axis is not the vector axis of [`Form::Lanes`].
pub(crate) fn parallel_reduce(
    step: &Step,
    threads: usize,
    summation: Summation,
) -> Option<&ReduceStep> {
    let Step::Reduce(s) = step else { return None };
    let ax = Axes::of(s);
    if threads < 2 {
        return None;
    }
    if summation == Summation::Reassociate && parts(s, &ax).is_some() {
        return Some(s);
    }
    let big = s.shape.iter().product::<usize>() >= PAR_REDUCE_ELEMS
        && ax.kept_dims.first().is_some_and(|&k| k >= 2);
    // Lanes' vector axis is the last kept one: split only when another is in front of it.
    let lanes_axis_first = ax.kept.len() == 1 && ax.kept[0] == s.shape.len() - 1;
    (big && !lanes_axis_first).then_some(s)
}

/// A term of a sum at an index (of the summed axes).
pub(super) type TermFn<'a, 'b, 'c> =
    dyn FnMut(&mut Cg<'a, 'b>, &[Value]) -> Result<Value, JitError> + 'c;

/// One term of each of several sums at a reduced index ([`Cg::blocked_sums`]).
type TermsFn<'a, 'b, 'c> =
    dyn FnMut(&mut Cg<'a, 'b>, &[Value]) -> Result<Vec<Value>, JitError> + 'c;

/// The accumulators of [`Form::Along`].
#[derive(Clone, Copy)]
struct AlongAcc {
    va: Variable,
    vb: Variable,
    /// The block sum when there is no stack; `max`'s scalar tail.
    sa: Variable,
    vinit: Value,
    st: Option<Stack>,
    is_max: bool,
}

/// A reduction to one value cut into `count` parts of `blocks` blocks each (a power of two, so
/// each part is a subtree of the pairwise combination; the last part may be short).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parts {
    blocks: usize,
    count: usize,
}

/// Input elements from which a reduction to one value is cut into parts run on several threads.
const PAR_PARTS_ELEMS: usize = 1 << 18;

/// How a sum to one value of `s` is cut into parts, if it is: [`Form::Along`] over one row
/// (every reduced axis but the innermost of length 1) of at least [`PAR_PARTS_ELEMS`] terms.
/// The parts depend on the shape alone, never on the thread count.
fn parts(s: &ReduceStep, ax: &Axes) -> Option<Parts> {
    let nr = ax.red_dims.len();
    let one_row = nr >= 1 && ax.red_dims[..nr - 1].iter().all(|&d| d == 1);
    let ok = ax.kept_dims.is_empty()
        && s.kind != ReduceKind::Max
        && one_row
        && ax.count >= PAR_PARTS_ELEMS
        // Parts are cut only outside strict mode, where math is inline.
        && form(s, ax, Summation::Reassociate, true) == Form::Along;
    if !ok {
        return None;
    }
    let m = ax.count.div_ceil(BLOCK);
    let blocks = (m / 32).next_power_of_two().max(16);
    Some(Parts { blocks, count: m.div_ceil(blocks) })
}

/// A binary-counter stack of partial sums in a stack slot.
#[derive(Clone, Copy)]
struct Stack {
    slot: StackSlot,
    /// Entries in use.
    sp: Variable,
    /// Block sums pushed.
    blocks: Variable,
    ty: Type,
}

impl<'a, 'b> Cg<'a, 'b> {
    /// A reduction step.
    pub(super) fn reduce(&mut self, s: &ReduceStep) -> Result<(), JitError> {
        self.reduce_in(s, None)
    }

    /// The rows `[lo, hi)` of the outermost kept axis of the reduction `s`, or its parts
    /// `[lo, hi)` when it is split into [`Parts`] (the body of its row function; `table` is
    /// the function's constants table, followed by the address of the part sums for parts).
    pub fn reduce_rows(
        &mut self,
        s: &ReduceStep,
        lo: Value,
        hi: Value,
        table: Value,
    ) -> Result<(), JitError> {
        let ax = Axes::of(s);
        match self.parts_of(s, &ax) {
            Some(pp) => {
                self.how = "vectors along the reduction, parts on threads".into();
                self.vaxis = s.shape.len() - 1;
                let nc = self.const_count();
                let sums = self.b.ins().load(types::I64, flags(), table, (8 * nc) as i32);
                self.reduce_parts(s, &ax, pp, (lo, hi), sums)
            }
            None => self.reduce_in(s, Some((lo, hi))),
        }
    }

    /// The parts of `s` when it runs as [`Parts`] (a reduction to one value, not strict).
    fn parts_of(&self, s: &ReduceStep, ax: &Axes) -> Option<Parts> {
        (self.policy.summation == Summation::Reassociate).then(|| parts(s, ax)).flatten()
    }

    /// The number of constants (the length of the table the entry receives).
    fn const_count(&self) -> usize {
        self.bases.keys().filter(|b| matches!(b, Buf::Const(_))).count()
    }

    /// Call `jjt_par_map` with the row function `part` of the reduction `s`. Split into
    /// [`Parts`], the row function gets, in place of the constants table, a copy of it with
    /// the address of the part sums appended (a stack slot of this frame); the part sums are
    /// then combined on a pairwise stack as blocks would be.
    pub fn call_reduce_rows(
        &mut self,
        part: FuncRef,
        s: &ReduceStep,
        params: [Value; 4],
    ) -> Result<(), JitError> {
        let ax = Axes::of(s);
        let d = s.dst.dtype;
        let parts = self.parts_of(s, &ax);
        let mut args = params;
        let rows = match parts {
            Some(pp) => {
                let nc = self.const_count();
                let table = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    (8 * (nc + 1)) as u32,
                    3,
                ));
                let sums = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    (ENTRY as usize * pp.count) as u32,
                    4,
                ));
                let t = self.b.ins().stack_addr(types::I64, table, 0);
                for i in 0..nc {
                    let c = self.b.ins().load(types::I64, flags(), params[3], (8 * i) as i32);
                    self.b.ins().store(flags(), c, t, (8 * i) as i32);
                }
                let sa = self.b.ins().stack_addr(types::I64, sums, 0);
                self.b.ins().store(flags(), sa, t, (8 * nc) as i32);
                args[3] = t;
                pp.count
            }
            None => ax.kept_dims[0],
        };
        let f = self.b.ins().func_addr(types::I64, part);
        let mut call = vec![f];
        call.extend(args);
        let rows = self.iconst(rows as i64);
        let threads = self.iconst(self.policy.threads as i64);
        call.push(rows);
        call.push(threads);
        let par = self.imports.par_map;
        self.b.ins().call(par, &call);
        self.how = match form(s, &ax, self.policy.summation, self.policy.inline_math) {
            Form::Lanes => "vectors over outputs, rows on threads",
            Form::Along if parts.is_some() => "vectors along the reduction, parts on threads",
            Form::Along => "vectors along the reduction, rows on threads",
            Form::Scalar => "scalar, rows on threads",
        }
        .into();
        let Some(pp) = parts else { return Ok(()) };
        // The part sums, pairwise.
        let t = args[3];
        let nc = self.const_count();
        let sums = self.b.ins().load(types::I64, flags(), t, (8 * nc) as i32);
        let st = self.stack_new(scalar_ty(d));
        self.counted(0, pp.count as i64, 1, &mut |cg, p| {
            let off = cg.b.ins().imul_imm_s(p, ENTRY);
            let a = cg.b.ins().iadd(sums, off);
            let v = cg.b.ins().load(scalar_ty(d), flags(), a, 0);
            cg.stack_push(st, v)
        })?;
        let v = self.stack_finish(st)?;
        let v = self.finish_mean(s.kind, v, ax.count, Mode::Scalar, d);
        self.store(v, &s.dst, &[]);
        Ok(())
    }

    fn reduce_in(&mut self, s: &ReduceStep, rows: Option<(Value, Value)>) -> Result<(), JitError> {
        let ax = Axes::of(s);
        if ax.kept_dims.contains(&0) {
            return Ok(());
        }
        let form = form(s, &ax, self.policy.summation, self.policy.inline_math);
        self.how = match form {
            Form::Lanes => "vectors over outputs",
            Form::Along => "vectors along the reduction",
            Form::Scalar => "scalar",
        }
        .into();
        let r = s.shape.len();
        self.vaxis = r.saturating_sub(1);
        match form {
            Form::Lanes => self.reduce_lanes(s, &ax, rows),
            Form::Along => self.reduce_along(s, &ax, rows),
            Form::Scalar => self.for_rows(&ax.kept_dims, rows, &mut |cg, kidx| {
                let v = cg.reduce_one(s, &ax, kidx, Mode::Scalar)?;
                cg.store(v, &s.dst, kidx);
                Ok(())
            }),
        }
    }

    /// The full input index from the kept and reduced indices.
    fn full_index(
        &mut self,
        s: &ReduceStep,
        ax: &Axes,
        kidx: &[Value],
        ridx: &[Value],
    ) -> Vec<Value> {
        let zero = self.iconst(0);
        let mut full = vec![zero; s.shape.len()];
        for (k, &a) in ax.kept.iter().enumerate() {
            full[a] = kidx[k];
        }
        for (k, &a) in s.axes.iter().enumerate() {
            full[a] = ridx[k];
        }
        full
    }

    /// The reduction of the output at `kidx` (in `mode`: a vector of outputs along the
    /// innermost kept axis), in the interpreter's order.
    fn reduce_one(
        &mut self,
        s: &ReduceStep,
        ax: &Axes,
        kidx: &[Value],
        mode: Mode,
    ) -> Result<Value, JitError> {
        Ok(self.reduce_group(s, ax, kidx, mode, 1)?[0])
    }

    /// The reductions of `count` consecutive outputs (vectors in [`Mode::Vector`]) along the
    /// innermost kept axis from `kidx`, each in the interpreter's order, computed together.
    fn reduce_group(
        &mut self,
        s: &ReduceStep,
        ax: &Axes,
        kidx: &[Value],
        mode: Mode,
        count: usize,
    ) -> Result<Vec<Value>, JitError> {
        let d = s.dst.dtype;
        let (ty, step) = match mode {
            Mode::Scalar => (scalar_ty(d), 1),
            Mode::Vector => (vec_ty(d), lanes(d) as i64),
        };
        let mut terms = |cg: &mut Self, ridx: &[Value]| {
            let mut k = kidx.to_vec();
            (0..count)
                .map(|u| {
                    // Output u of the group: `u` vectors (or elements) further along the
                    // innermost kept axis (a group of one is `kidx` itself, which may be empty).
                    if let (Some(at), Some(&first)) = (k.last_mut(), kidx.last())
                        && u > 0
                    {
                        *at = cg.b.ins().iadd_imm_s(first, u as i64 * step);
                    }
                    let full = cg.full_index(s, ax, &k, ridx);
                    cg.eval(&s.expr, &full, mode, d)
                })
                .collect::<Result<Vec<Value>, JitError>>()
        };
        let vs = match s.kind {
            ReduceKind::Max => {
                let init = self.constant(mode, d, f64::NEG_INFINITY);
                let acc: Vec<Variable> = (0..count).map(|_| self.b.declare_var(ty)).collect();
                for &a in &acc {
                    self.b.def_var(a, init);
                }
                self.for_each(&ax.red_dims, &mut Vec::new(), &mut |cg, ridx| {
                    for (&a, v) in acc.iter().zip(terms(cg, ridx)?) {
                        let x = cg.b.use_var(a);
                        let m = cg.binary(Binary::Maximum, x, v, mode, d);
                        cg.b.def_var(a, m);
                    }
                    Ok(())
                })?;
                acc.iter().map(|&a| self.b.use_var(a)).collect()
            }
            ReduceKind::Sum | ReduceKind::Mean => {
                let zero = self.constant(mode, d, 0.0);
                self.blocked_sums(ty, zero, count, &ax.red_dims, &mut terms)?
            }
        };
        Ok(vs.into_iter().map(|v| self.finish_mean(s.kind, v, ax.count, mode, d)).collect())
    }

    /// `v / count` for a mean, else `v`.
    fn finish_mean(
        &mut self,
        kind: ReduceKind,
        v: Value,
        count: usize,
        mode: Mode,
        d: DType,
    ) -> Value {
        if kind == ReduceKind::Mean {
            let c = self.constant(mode, d, count as f64);
            self.b.ins().fdiv(v, c)
        } else {
            v
        }
    }

    /// The sum of the terms `term(idx)` over `dims` (row-major) in the blocked pairwise order
    /// of [`jjt_ir::sum`], every block started from `zero` (values of type `ty`, scalar or
    /// vector: each lane its own sum).
    pub(super) fn blocked_sum(
        &mut self,
        ty: Type,
        zero: Value,
        dims: &[usize],
        term: &mut TermFn<'a, 'b, '_>,
    ) -> Result<Value, JitError> {
        let mut one = |cg: &mut Self, idx: &[Value]| Ok(vec![term(cg, idx)?]);
        Ok(self.blocked_sums(ty, zero, 1, dims, &mut one)?[0])
    }

    /// [`Cg::blocked_sum`] of `count` independent sums at once, `term(idx)` giving one term of
    /// each: every sum in the same order as alone, their additions interleaved so that they
    /// do not wait on one another (one chain of dependent additions per output vector left a
    /// reduction latency-bound, about a quarter of the adder's throughput).
    fn blocked_sums(
        &mut self,
        ty: Type,
        zero: Value,
        count: usize,
        dims: &[usize],
        term: &mut TermsFn<'a, 'b, '_>,
    ) -> Result<Vec<Value>, JitError> {
        let n: usize = dims.iter().product();
        let acc: Vec<Variable> = (0..count).map(|_| self.b.declare_var(ty)).collect();
        for &a in &acc {
            self.b.def_var(a, zero);
        }
        let add = |cg: &mut Self, vs: Vec<Value>| {
            for (&a, v) in acc.iter().zip(vs) {
                let x = cg.b.use_var(a);
                let x2 = cg.b.ins().fadd(x, v);
                cg.b.def_var(a, x2);
            }
        };
        if n <= BLOCK {
            self.for_each(dims, &mut Vec::new(), &mut |cg, idx| {
                let vs = term(cg, idx)?;
                add(cg, vs);
                Ok(())
            })?;
            return Ok(acc.iter().map(|&a| self.b.use_var(a)).collect());
        }
        let st: Vec<Stack> = (0..count).map(|_| self.stack_new(ty)).collect();
        let push = |cg: &mut Self| -> Result<(), JitError> {
            for (&a, &s) in acc.iter().zip(&st) {
                let x = cg.b.use_var(a);
                cg.stack_push(s, x)?;
                cg.b.def_var(a, zero);
            }
            Ok(())
        };
        if let [n] = *dims {
            // One axis: the blocks are static ranges, each a plain loop.
            let full = (n / BLOCK * BLOCK) as i64;
            let mut run = |cg: &mut Self, lo: Value, hi: Value| -> Result<(), JitError> {
                cg.counted_between(lo, hi, 1, &mut |cg, i| {
                    let vs = term(cg, &[i])?;
                    add(cg, vs);
                    Ok(())
                })?;
                push(cg)
            };
            self.counted(0, full, BLOCK as i64, &mut |cg, c0| {
                let end = cg.b.ins().iadd_imm_s(c0, BLOCK as i64);
                run(cg, c0, end)
            })?;
            if full < n as i64 {
                let (lo, hi) = (self.iconst(full), self.iconst(n as i64));
                run(self, lo, hi)?;
            }
            return st.iter().map(|&s| self.stack_finish(s)).collect();
        }
        let cnt = self.b.declare_var(types::I64);
        let z = self.iconst(0);
        self.b.def_var(cnt, z);
        self.for_each(dims, &mut Vec::new(), &mut |cg, idx| {
            let vs = term(cg, idx)?;
            add(cg, vs);
            let c = cg.b.use_var(cnt);
            let c2 = cg.b.ins().iadd_imm_s(c, 1);
            cg.b.def_var(cnt, c2);
            // A full block: push its sums, start the next.
            let full = cg.b.ins().icmp_imm_s(IntCC::Equal, c2, BLOCK as i64);
            let blk = cg.b.create_block();
            let cont = cg.b.create_block();
            cg.b.ins().brif(full, blk, &[], cont, &[]);
            cg.b.switch_to_block(blk);
            cg.b.seal_block(blk);
            push(cg)?;
            let z = cg.iconst(0);
            cg.b.def_var(cnt, z);
            cg.b.ins().jump(cont, &[]);
            cg.b.switch_to_block(cont);
            cg.b.seal_block(cont);
            Ok(())
        })?;
        if !n.is_multiple_of(BLOCK) {
            push(self)?;
        }
        st.iter().map(|&s| self.stack_finish(s)).collect()
    }

    /// An empty pairwise stack of `ty` values.
    fn stack_new(&mut self, ty: Type) -> Stack {
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            DEPTH * ENTRY as u32,
            4,
        ));
        let sp = self.b.declare_var(types::I64);
        let blocks = self.b.declare_var(types::I64);
        let z = self.iconst(0);
        self.b.def_var(sp, z);
        self.b.def_var(blocks, z);
        Stack { slot, sp, blocks, ty }
    }

    /// The address of entry `i` of `st`.
    fn stack_entry(&mut self, st: Stack, i: Value) -> Value {
        let base = self.b.ins().stack_addr(types::I64, st.slot, 0);
        let off = self.b.ins().imul_imm_s(i, ENTRY);
        self.b.ins().iadd(base, off)
    }

    /// Push a block sum: merge the top two entries (`lower + upper`) once per trailing zero of
    /// the new block count.
    fn stack_push(&mut self, st: Stack, v: Value) -> Result<(), JitError> {
        let sp = self.b.use_var(st.sp);
        let a = self.stack_entry(st, sp);
        self.b.ins().store(flags(), v, a, 0);
        let sp1 = self.b.ins().iadd_imm_s(sp, 1);
        self.b.def_var(st.sp, sp1);
        let bl = self.b.use_var(st.blocks);
        let bl1 = self.b.ins().iadd_imm_s(bl, 1);
        self.b.def_var(st.blocks, bl1);
        let merges = self.b.ins().ctz(bl1);
        let z = self.iconst(0);
        self.counted_between(z, merges, 1, &mut |cg, _| {
            let sp = cg.b.use_var(st.sp);
            let top = cg.b.ins().iadd_imm_s(sp, -1);
            let below = cg.b.ins().iadd_imm_s(sp, -2);
            let hi_a = cg.stack_entry(st, top);
            let lo_a = cg.stack_entry(st, below);
            let hi = cg.b.ins().load(st.ty, flags(), hi_a, 0);
            let lo = cg.b.ins().load(st.ty, flags(), lo_a, 0);
            let s = cg.b.ins().fadd(lo, hi);
            cg.b.ins().store(flags(), s, lo_a, 0);
            cg.b.def_var(st.sp, top);
            Ok(())
        })
    }

    /// Fold the stack from the top: `s = entry[i] + s`.
    fn stack_finish(&mut self, st: Stack) -> Result<Value, JitError> {
        let sp = self.b.use_var(st.sp);
        let top = self.b.ins().iadd_imm_s(sp, -1);
        let a = self.stack_entry(st, top);
        let first = self.b.ins().load(st.ty, flags(), a, 0);
        let s = self.b.declare_var(st.ty);
        self.b.def_var(s, first);
        // i = top - 1 down to 0, as j = 1..sp with i = top - j.
        let one = self.iconst(1);
        self.counted_between(one, sp, 1, &mut |cg, j| {
            let i = cg.b.ins().isub(top, j);
            let a = cg.stack_entry(st, i);
            let e = cg.b.ins().load(st.ty, flags(), a, 0);
            let cur = cg.b.use_var(s);
            let n = cg.b.ins().fadd(e, cur);
            cg.b.def_var(s, n);
            Ok(())
        })?;
        Ok(self.b.use_var(s))
    }

    /// [`Form::Lanes`]: vectors of outputs along the innermost (kept) axis, each lane summed in
    /// the interpreter's order; a scalar tail.
    fn reduce_lanes(
        &mut self,
        s: &ReduceStep,
        ax: &Axes,
        rows: Option<(Value, Value)>,
    ) -> Result<(), JitError> {
        let d = s.dst.dtype;
        let w = lanes(d);
        let nk = ax.kept_dims.len();
        let n = ax.kept_dims[nk - 1];
        let full = (n / w * w) as i64;
        let grouped = (n / (GROUP * w) * GROUP * w) as i64;
        self.for_rows(&ax.kept_dims[..nk - 1], rows, &mut |cg, outer| {
            let mut kidx = outer.to_vec();
            cg.counted(0, grouped, (GROUP * w) as i64, &mut |cg, j| {
                kidx.push(j);
                let vs = cg.reduce_group(s, ax, &kidx, Mode::Vector, GROUP)?;
                for (u, v) in vs.into_iter().enumerate() {
                    let at = cg.b.ins().iadd_imm_s(j, (u * w) as i64);
                    *kidx.last_mut().expect("pushed") = at;
                    cg.store(v, &s.dst, &kidx);
                }
                kidx.pop();
                Ok(())
            })?;
            cg.counted(grouped, full, w as i64, &mut |cg, j| {
                kidx.push(j);
                let v = cg.reduce_one(s, ax, &kidx, Mode::Vector)?;
                cg.store(v, &s.dst, &kidx);
                kidx.pop();
                Ok(())
            })?;
            cg.counted(full, n as i64, 1, &mut |cg, j| {
                kidx.push(j);
                let v = cg.reduce_one(s, ax, &kidx, Mode::Scalar)?;
                cg.store(v, &s.dst, &kidx);
                kidx.pop();
                Ok(())
            })
        })
    }

    /// The sum (or max) of the lanes of `v`, pairwise: `(l0 + l1) + (l2 + l3)`.
    fn horizontal(&mut self, kind: ReduceKind, v: Value, d: DType) -> Value {
        let mut parts: Vec<Value> =
            (0..lanes(d)).map(|l| self.b.ins().extractlane(v, l as u8)).collect();
        while parts.len() > 1 {
            parts = parts
                .chunks(2)
                .map(|p| match kind {
                    ReduceKind::Max => self.binary(Binary::Maximum, p[0], p[1], Mode::Scalar, d),
                    ReduceKind::Sum | ReduceKind::Mean => self.b.ins().fadd(p[0], p[1]),
                })
                .collect();
        }
        parts[0]
    }

    /// [`Form::Along`]: for each output, the innermost (reduced, contiguous) axis in blocks of
    /// [`BLOCK`], each block summed in two vector accumulators, a horizontal sum and a scalar
    /// tail, the block sums combined pairwise; `max` in vector accumulators over every block.
    fn reduce_along(
        &mut self,
        s: &ReduceStep,
        ax: &Axes,
        rows: Option<(Value, Value)>,
    ) -> Result<(), JitError> {
        let d = s.dst.dtype;
        let nr = ax.red_dims.len();
        let len = ax.red_dims[nr - 1];
        let outer_dims = ax.red_dims[..nr - 1].to_vec();
        let chunks_per_row = len.div_ceil(BLOCK);
        let blocks = outer_dims.iter().product::<usize>() * chunks_per_row;
        let is_max = s.kind == ReduceKind::Max;
        let vty = vec_ty(d);
        self.for_rows(&ax.kept_dims, rows, &mut |cg, kidx| {
            let vinit = cg.constant(Mode::Vector, d, if is_max { f64::NEG_INFINITY } else { 0.0 });
            let va = cg.b.declare_var(vty);
            let vb = cg.b.declare_var(vty);
            let sa = cg.b.declare_var(scalar_ty(d));
            cg.b.def_var(va, vinit);
            cg.b.def_var(vb, vinit);
            let st = (blocks > 1 && !is_max).then(|| cg.stack_new(scalar_ty(d)));
            let acc = AlongAcc { va, vb, sa, vinit, st, is_max };
            let block = |cg: &mut Self, outer: &[Value], c0: Value, blen: usize| {
                cg.along_block(s, ax, kidx, outer, c0, blen, &acc)
            };
            if is_max {
                let ninf = cg.fconst(d, f64::NEG_INFINITY);
                cg.b.def_var(sa, ninf);
            }
            let full_chunks = (len / BLOCK) as i64;
            let rem = len % BLOCK;
            cg.for_each(&outer_dims, &mut Vec::new(), &mut |cg, outer| {
                cg.counted(0, full_chunks * BLOCK as i64, BLOCK as i64, &mut |cg, c0| {
                    block(cg, outer, c0, BLOCK)
                })?;
                if rem > 0 {
                    let c0 = cg.iconst(full_chunks * BLOCK as i64);
                    block(cg, outer, c0, rem)?;
                }
                Ok(())
            })?;
            let v = if is_max {
                let v = cg.b.use_var(va);
                let v2 = cg.b.use_var(vb);
                let m = cg.binary(Binary::Maximum, v, v2, Mode::Vector, d);
                let h = cg.horizontal(s.kind, m, d);
                let t = cg.b.use_var(sa);
                cg.binary(Binary::Maximum, h, t, Mode::Scalar, d)
            } else {
                match st {
                    Some(st) => cg.stack_finish(st)?,
                    None => cg.b.use_var(sa),
                }
            };
            let v = cg.finish_mean(s.kind, v, ax.count, Mode::Scalar, d);
            cg.store(v, &s.dst, kidx);
            Ok(())
        })
    }

    /// One block of [`Form::Along`]: the terms `[c0, c0 + blen)` of the innermost axis in the
    /// row `outer` of the reduced axes, into `acc` (a sum is pushed onto its stack, or kept in
    /// `acc.sa` when there is no stack; `max` accumulates across blocks).
    #[allow(clippy::too_many_arguments)]
    fn along_block(
        &mut self,
        s: &ReduceStep,
        ax: &Axes,
        kidx: &[Value],
        outer: &[Value],
        c0: Value,
        blen: usize,
        acc: &AlongAcc,
    ) -> Result<(), JitError> {
        let d = s.dst.dtype;
        let w = lanes(d);
        let AlongAcc { va, vb, sa, vinit, st, is_max } = *acc;
        if !is_max {
            self.b.def_var(va, vinit);
            self.b.def_var(vb, vinit);
        }
        let pairs = (blen / (2 * w) * 2 * w) as i64;
        let vfull = (blen / w * w) as i64;
        let at = |cg: &mut Self, i: Value, mode: Mode| {
            let mut ridx = outer.to_vec();
            ridx.push(i);
            let full = cg.full_index(s, ax, kidx, &ridx);
            cg.eval(&s.expr, &full, mode, d)
        };
        let add = |cg: &mut Self, var: Variable, v: Value, mode: Mode| {
            let a = cg.b.use_var(var);
            let n = if is_max {
                cg.binary(Binary::Maximum, a, v, mode, d)
            } else {
                cg.b.ins().fadd(a, v)
            };
            cg.b.def_var(var, n);
        };
        let end = self.b.ins().iadd_imm_s(c0, pairs);
        self.counted_between(c0, end, 2 * w as i64, &mut |cg, i| {
            let x = at(cg, i, Mode::Vector)?;
            add(cg, va, x, Mode::Vector);
            let j = cg.b.ins().iadd_imm_s(i, w as i64);
            let y = at(cg, j, Mode::Vector)?;
            add(cg, vb, y, Mode::Vector);
            Ok(())
        })?;
        if vfull > pairs {
            let i = self.b.ins().iadd_imm_s(c0, pairs);
            let x = at(self, i, Mode::Vector)?;
            add(self, va, x, Mode::Vector);
        }
        if is_max {
            // The tail goes into a scalar accumulator kept across blocks.
            for t in vfull as usize..blen {
                let i = self.b.ins().iadd_imm_s(c0, t as i64);
                let x = at(self, i, Mode::Scalar)?;
                add(self, sa, x, Mode::Scalar);
            }
            return Ok(());
        }
        let (a, b) = (self.b.use_var(va), self.b.use_var(vb));
        let v = self.b.ins().fadd(a, b);
        let mut sum = self.horizontal(s.kind, v, d);
        for t in vfull as usize..blen {
            let i = self.b.ins().iadd_imm_s(c0, t as i64);
            let x = at(self, i, Mode::Scalar)?;
            sum = self.b.ins().fadd(sum, x);
        }
        match st {
            Some(st) => self.stack_push(st, sum),
            None => {
                self.b.def_var(sa, sum);
                Ok(())
            }
        }
    }

    /// Parts `[lo, hi)` of a reduction to one value split into [`Parts`]: each part's blocks
    /// summed as [`Form::Along`] does, pairwise within the part, its sum stored at
    /// `partials[part]`.
    fn reduce_parts(
        &mut self,
        s: &ReduceStep,
        ax: &Axes,
        parts: Parts,
        (lo, hi): (Value, Value),
        partials: Value,
    ) -> Result<(), JitError> {
        let d = s.dst.dtype;
        let vty = vec_ty(d);
        let nr = ax.red_dims.len();
        let len = ax.red_dims[nr - 1];
        let full_end = (len / BLOCK * BLOCK) as i64;
        let rem = len % BLOCK;
        let span = (parts.blocks * BLOCK) as i64;
        self.counted_between(lo, hi, 1, &mut |cg, p| {
            let vinit = cg.constant(Mode::Vector, d, 0.0);
            let va = cg.b.declare_var(vty);
            let vb = cg.b.declare_var(vty);
            let sa = cg.b.declare_var(scalar_ty(d));
            let st = cg.stack_new(scalar_ty(d));
            let acc = AlongAcc { va, vb, sa, vinit, st: Some(st), is_max: false };
            let zero = cg.iconst(0);
            let outer = vec![zero; nr - 1];
            let start = cg.b.ins().imul_imm_s(p, span);
            let stop = cg.b.ins().iadd_imm_s(start, span);
            let cap = cg.iconst(full_end);
            let stop = cg.b.ins().smin(stop, cap);
            cg.counted_between(start, stop, BLOCK as i64, &mut |cg, c0| {
                cg.along_block(s, ax, &[], &outer, c0, BLOCK, &acc)
            })?;
            if rem > 0 {
                // The short block ends the last part.
                let last = cg.b.ins().icmp_imm_s(IntCC::Equal, p, parts.count as i64 - 1);
                let tail = cg.b.create_block();
                let cont = cg.b.create_block();
                cg.b.ins().brif(last, tail, &[], cont, &[]);
                cg.b.switch_to_block(tail);
                cg.b.seal_block(tail);
                let c0 = cg.iconst(full_end);
                cg.along_block(s, ax, &[], &outer, c0, rem, &acc)?;
                cg.b.ins().jump(cont, &[]);
                cg.b.switch_to_block(cont);
                cg.b.seal_block(cont);
            }
            let v = cg.stack_finish(st)?;
            let off = cg.b.ins().imul_imm_s(p, ENTRY);
            let a = cg.b.ins().iadd(partials, off);
            cg.b.ins().store(flags(), v, a, 0);
            Ok(())
        })
    }
}
