//! Lowering a [`Plan`] to Cranelift IR: one function per graph with the fixed C ABI
//! `fn(inputs: *const *const u8, outputs: *const *mut u8, arena: *mut u8, consts: *const *const u8)`.
//!
//! Every step is a loop nest over a static index space. Addresses are
//! `base + (offset + Σ index·stride)·size`; all memory accesses are unaligned-tolerant
//! (`notrap` without `aligned`), so buffers at any address work. No instruction that can trap
//! is emitted: no integer division, no float-to-int conversion.
//!
//! The innermost loop of an elementwise step runs on f32x4 / f64x2 vectors when every value it
//! reads advances by 0 or 1 element along that axis and it calls no function; a scalar loop
//! handles the remainder. Reductions and contractions accumulate in the interpreter's order
//! (bit-identical) unless a vector form is used, which may reassociate: vector accumulators
//! with a horizontal sum at the end, FMA when the host has it.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    self, AbiParam, BlockArg, FuncRef, InstBuilder, MemFlagsData, Type, Value, types,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use jjt_ir::DType;
use jjt_ir::ops::{Binary, Compare, DotGeneral, ReduceKind, Unary};

use crate::JitError;
use crate::gemm::{GEMM_MIN_MN, GEMM_THRESHOLD};
use crate::libm::Libm;
use crate::plan::{Buf, Expr, Step, View, item_size};

/// Functions the generated code imports.
pub(crate) struct Imports {
    /// (function, f64?) → reference in the current function.
    pub libm: HashMap<(Libm, bool), FuncRef>,
    /// f32 (`false`) / f64 (`true`) matrix multiply.
    pub gemm: HashMap<bool, FuncRef>,
    /// `jjt_par_map`: a row function run over row ranges on several threads.
    pub par_map: FuncRef,
    /// `jjt_profile_mark`, when profiling.
    pub profile: Option<FuncRef>,
}

/// Elements from which an elementwise step runs its rows on several threads: below it,
/// handing half the rows to a helper costs more than it saves.
pub(crate) const PAR_MAP_ELEMS: usize = 1 << 14;

/// Whether `step` runs its rows on several threads: an elementwise step of rank ≥ 2 with at
/// least two rows and [`PAR_MAP_ELEMS`] elements, when more than one thread may be used.
pub(crate) fn parallel_map(step: &Step, threads: usize) -> bool {
    match step {
        Step::Map { shape, .. } => {
            threads > 1
                && shape.len() >= 2
                && shape[0] >= 2
                && shape.iter().product::<usize>() >= PAR_MAP_ELEMS
        }
        _ => false,
    }
}

/// Contractions over at most this many elements are unrolled in the vector-over-outputs form.
const UNROLL_K: usize = 16;

/// A loop body receiving the index of every axis.
type IndexBody<'a, 'b, 'c> = dyn FnMut(&mut Cg<'a, 'b>, &[Value]) -> Result<(), JitError> + 'c;

/// How values are evaluated: one element, or a vector of lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Scalar,
    Vector,
}

pub(crate) struct Cg<'a, 'b> {
    pub b: &'a mut FunctionBuilder<'b>,
    pub bases: HashMap<Buf, Value>,
    pub imports: Imports,
    pub fma: bool,
    /// The axis (of the views' index space) that vector lanes run along.
    pub vaxis: usize,
    /// No reassociation: contractions accumulate in the interpreter's order.
    pub strict: bool,
    /// Large contractions may call the matrix multiply.
    pub gemm: bool,
    /// Threads one matrix multiply may use (≥ 1).
    pub threads: usize,
    /// Inside a loop along `axis`: the address of each view at index 0 of that axis (computed
    /// once per row, before the loop), so the loop body adds one product per access.
    pub rows: Option<(usize, Vec<(View, Value)>)>,
    /// How the last step was emitted (for the profile's step labels).
    pub how: &'static str,
}

/// A short description of a step: its kind, the destination's type and, for contractions, the
/// operand shapes.
pub(crate) fn describe(step: &Step) -> String {
    let dims = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
    match step {
        Step::Map { dst, shape, .. } => format!("map {}[{}]", dst.dtype, dims(shape)),
        Step::Reduce { dst, shape, axes, .. } => {
            format!("reduce {}[{}] over axes {axes:?}", dst.dtype, dims(shape))
        }
        Step::Dot { dst, shape, lhs_shape, rhs_shape, .. } => format!(
            "dot {}[{}]·[{}] -> [{}]",
            dst.dtype,
            dims(lhs_shape),
            dims(rhs_shape),
            dims(shape)
        ),
    }
}

fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn scalar_ty(d: DType) -> Type {
    match d {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::Bool => types::I8,
    }
}

fn vec_ty(d: DType) -> Type {
    match d {
        DType::F64 => types::F64X2,
        DType::F32 | DType::Bool => types::F32X4,
    }
}

fn lanes(d: DType) -> usize {
    if d == DType::F64 { 2 } else { 4 }
}

fn mask_ty(d: DType) -> Type {
    if d == DType::F64 { types::I64X2 } else { types::I32X4 }
}

fn float_cc(c: Compare) -> FloatCC {
    match c {
        Compare::Gt => FloatCC::GreaterThan,
        Compare::Ge => FloatCC::GreaterThanOrEqual,
        Compare::Lt => FloatCC::LessThan,
        Compare::Le => FloatCC::LessThanOrEqual,
        Compare::Eq => FloatCC::Equal,
    }
}

/// Whether `e` can run on `d`-typed vectors along an axis where the views advance by
/// `strides[i]` (the innermost stride of each view).
fn vectorizable(e: &Expr, d: DType, axis: usize) -> bool {
    match e {
        Expr::Load(v) => v.dtype == d && matches!(v.strides.get(axis), Some(0) | Some(1)),
        Expr::Scalar(_, dt) => *dt == d || *dt == DType::Bool,
        Expr::Unary(u, a) => !Libm::unary_calls(*u) && vectorizable(a, d, axis),
        Expr::Binary(op, a, b) => {
            !Libm::binary_calls(*op) && vectorizable(a, d, axis) && vectorizable(b, d, axis)
        }
        Expr::Compare(_, a, b, dt) => {
            *dt == d && vectorizable(a, d, axis) && vectorizable(b, d, axis)
        }
        Expr::Select(p, a, b) => {
            vectorizable(p, d, axis) && vectorizable(a, d, axis) && vectorizable(b, d, axis)
        }
        Expr::Convert(from, to, a) => {
            let ok = (*from == DType::Bool && *to == d)
                || (*from == d && *to == DType::Bool)
                || from == to;
            ok && vectorizable(a, d, axis)
        }
    }
}

impl<'a, 'b> Cg<'a, 'b> {
    fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    fn fconst(&mut self, d: DType, v: f64) -> Value {
        match d {
            DType::F32 => self.b.ins().f32const(v as f32),
            DType::F64 => self.b.ins().f64const(v),
            DType::Bool => self.b.ins().iconst(types::I8, i64::from(v != 0.0)),
        }
    }

    /// The address of `view` at `idx` (one index per axis of the view's index space).
    fn addr(&mut self, view: &View, idx: &[Value]) -> Value {
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

    /// Emit nested counted loops over `dims`, calling `body` with the index of every axis.
    fn for_each(
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
    fn counted(
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
    fn counted_between(
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

    fn call(&mut self, f: Libm, d: DType, args: &[Value]) -> Value {
        let r = self.imports.libm[&(f, d == DType::F64)];
        let inst = self.b.ins().call(r, args);
        self.b.inst_results(inst)[0]
    }

    /// `c ? x : y` for a scalar bool (i8) or a lane mask.
    fn choose(&mut self, mode: Mode, d: DType, c: Value, x: Value, y: Value) -> Value {
        match mode {
            Mode::Scalar => self.b.ins().select(c, x, y),
            Mode::Vector => {
                let m = self.b.ins().bitcast(vec_ty(d), MemFlagsData::new(), c);
                self.b.ins().bitselect(m, x, y)
            }
        }
    }

    fn splat_or(&mut self, mode: Mode, d: DType, v: Value) -> Value {
        match mode {
            Mode::Scalar => v,
            Mode::Vector => self.b.ins().splat(vec_ty(d), v),
        }
    }

    fn constant(&mut self, mode: Mode, d: DType, v: f64) -> Value {
        let s = self.fconst(d, v);
        self.splat_or(mode, d, s)
    }

    /// Evaluate `e` at `idx`. In vector mode `d` is the lane type and the innermost index is the
    /// first of `lanes(d)` consecutive elements; bools are lane masks.
    fn eval(&mut self, e: &Expr, idx: &[Value], mode: Mode, d: DType) -> Result<Value, JitError> {
        Ok(match e {
            Expr::Load(v) => {
                let a = self.addr(v, idx);
                let along = v.strides.get(self.vaxis).copied().unwrap_or(0);
                match mode {
                    Mode::Vector if along != 0 => self.b.ins().load(vec_ty(v.dtype), flags(), a, 0),
                    _ => {
                        let s = self.b.ins().load(scalar_ty(v.dtype), flags(), a, 0);
                        self.splat_or(mode, v.dtype, s)
                    }
                }
            }
            Expr::Scalar(bits, dt) => {
                let x = f64::from_bits(*bits);
                match (mode, dt) {
                    (Mode::Vector, DType::Bool) => {
                        let lane = if d == DType::F64 { types::I64 } else { types::I32 };
                        let s = self.b.ins().iconst(lane, if x != 0.0 { -1 } else { 0 });
                        self.b.ins().splat(mask_ty(d), s)
                    }
                    _ => self.constant(mode, *dt, x),
                }
            }
            Expr::Unary(u, a) => {
                let dt = expr_dtype(a);
                let x = self.eval(a, idx, mode, d)?;
                self.unary(*u, x, mode, dt)
            }
            Expr::Binary(op, a, b) => {
                let dt = expr_dtype(a);
                let x = self.eval(a, idx, mode, d)?;
                let y = self.eval(b, idx, mode, d)?;
                self.binary(*op, x, y, mode, dt)
            }
            Expr::Compare(c, a, b, dt) => {
                let x = self.eval(a, idx, mode, d)?;
                let y = self.eval(b, idx, mode, d)?;
                if *dt == DType::Bool {
                    self.b.ins().icmp(IntCC::Equal, x, y)
                } else {
                    self.b.ins().fcmp(float_cc(*c), x, y)
                }
            }
            Expr::Select(p, a, b) => {
                let dt = expr_dtype(a);
                let c = self.eval(p, idx, mode, d)?;
                let x = self.eval(a, idx, mode, d)?;
                let y = self.eval(b, idx, mode, d)?;
                self.choose(mode, dt, c, x, y)
            }
            Expr::Convert(from, to, a) => {
                let x = self.eval(a, idx, mode, d)?;
                match (from, to) {
                    (f, t) if f == t => x,
                    (DType::F32, DType::F64) => self.b.ins().fpromote(types::F64, x),
                    (DType::F64, DType::F32) => self.b.ins().fdemote(types::F32, x),
                    (DType::Bool, t) => {
                        let one = self.constant(mode, *t, 1.0);
                        let zero = self.constant(mode, *t, 0.0);
                        self.choose(mode, *t, x, one, zero)
                    }
                    (f, DType::Bool) => {
                        let zero = self.constant(mode, *f, 0.0);
                        self.b.ins().fcmp(FloatCC::NotEqual, x, zero)
                    }
                    (_, _) => x,
                }
            }
        })
    }

    fn unary(&mut self, u: Unary, x: Value, mode: Mode, d: DType) -> Value {
        match u {
            Unary::Neg => self.b.ins().fneg(x),
            Unary::Abs => self.b.ins().fabs(x),
            Unary::Sqrt => self.b.ins().sqrt(x),
            Unary::Rsqrt => {
                let s = self.b.ins().sqrt(x);
                let one = self.constant(mode, d, 1.0);
                self.b.ins().fdiv(one, s)
            }
            Unary::Recip => {
                let one = self.constant(mode, d, 1.0);
                self.b.ins().fdiv(one, x)
            }
            Unary::Square => self.b.ins().fmul(x, x),
            // x if x > 0 or NaN, else +0.
            Unary::Relu => {
                let zero = self.constant(mode, d, 0.0);
                let c = self.b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, x, zero);
                self.choose(mode, d, c, x, zero)
            }
            // 1 / (1 + exp(-x)), as the interpreter computes it.
            Unary::Sigmoid => {
                let n = self.b.ins().fneg(x);
                let e = self.call(Libm::Exp, d, &[n]);
                let one = self.fconst(d, 1.0);
                let den = self.b.ins().fadd(one, e);
                self.b.ins().fdiv(one, den)
            }
            // NaN stays NaN; else max(x, 0) + log1p(exp(-|x|)).
            Unary::Softplus => {
                let a = self.b.ins().fabs(x);
                let n = self.b.ins().fneg(a);
                let e = self.call(Libm::Exp, d, &[n]);
                let l = self.call(Libm::Log1p, d, &[e]);
                let zero = self.fconst(d, 0.0);
                let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                let pos = self.b.ins().select(gt, x, zero);
                let r = self.b.ins().fadd(pos, l);
                let nan = self.b.ins().fcmp(FloatCC::Unordered, x, x);
                self.b.ins().select(nan, x, r)
            }
            Unary::Exp
            | Unary::Log
            | Unary::Log1p
            | Unary::Expm1
            | Unary::Sin
            | Unary::Cos
            | Unary::Tanh => {
                let f = Libm::of_unary(u).unwrap_or(Libm::Exp);
                self.call(f, d, &[x])
            }
        }
    }

    fn binary(&mut self, op: Binary, x: Value, y: Value, mode: Mode, d: DType) -> Value {
        match op {
            Binary::Add => self.b.ins().fadd(x, y),
            Binary::Sub => self.b.ins().fsub(x, y),
            Binary::Mul => self.b.ins().fmul(x, y),
            Binary::Div => self.b.ins().fdiv(x, y),
            Binary::Pow => self.call(Libm::Pow, d, &[x, y]),
            // NaN in either: x + y (NaN); else the larger (smaller), the first at ties.
            Binary::Maximum | Binary::Minimum => {
                let cc =
                    if op == Binary::Maximum { FloatCC::GreaterThan } else { FloatCC::LessThan };
                let wins = self.b.ins().fcmp(cc, y, x);
                let r = self.choose(mode, d, wins, y, x);
                let uno = self.b.ins().fcmp(FloatCC::Unordered, x, y);
                let s = self.b.ins().fadd(x, y);
                self.choose(mode, d, uno, s, r)
            }
        }
    }

    fn store(&mut self, v: Value, dst: &View, idx: &[Value]) {
        let a = self.addr(dst, idx);
        self.b.ins().store(flags(), v, a, 0);
    }

    /// Emit one step.
    /// With profiling on: the clock mark after step `k` (-1: on entry).
    pub fn profile_mark(&mut self, k: i64) {
        if let Some(f) = self.imports.profile {
            let k = self.iconst(k);
            self.b.ins().call(f, &[k]);
        }
    }

    /// Call `jjt_par_map` with the row function `part` of the elementwise `step`.
    pub fn call_rows(&mut self, part: FuncRef, step: &Step, params: [Value; 4]) {
        self.how = "rows on threads";
        let Step::Map { shape, .. } = step else { return };
        let f = self.b.ins().func_addr(types::I64, part);
        let mut args = vec![f];
        args.extend(params);
        let rows = self.iconst(shape[0] as i64);
        let threads = self.iconst(self.threads as i64);
        args.push(rows);
        args.push(threads);
        let par = self.imports.par_map;
        self.b.ins().call(par, &args);
    }

    /// The rows `[lo, hi)` of the outermost axis of the elementwise `step`.
    pub fn step_rows(&mut self, step: &Step, lo: Value, hi: Value) -> Result<(), JitError> {
        match step {
            Step::Map { dst, shape, expr } => self.map_in(dst, shape, expr, Some((lo, hi))),
            _ => Err(JitError::Codegen("only elementwise steps run by rows".into())),
        }
    }

    pub fn step(&mut self, s: &Step) -> Result<(), JitError> {
        self.how = "";
        match s {
            Step::Map { dst, shape, expr } => self.map(dst, shape, expr),
            Step::Reduce { dst, shape, axes, kind, expr } => {
                self.reduce(dst, shape, axes, *kind, expr)
            }
            Step::Dot { dst, shape, lhs, lhs_shape, rhs, rhs_shape, dims } => {
                self.dot(dst, shape, lhs, lhs_shape, rhs, rhs_shape, dims)
            }
        }
    }

    fn map(&mut self, dst: &View, shape: &[usize], expr: &Expr) -> Result<(), JitError> {
        self.map_in(dst, shape, expr, None)
    }

    /// Loops over `dims` like [`Cg::for_each`], but with the outermost axis running over the
    /// dynamic range `rows` when given.
    fn for_rows(
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

    /// An elementwise step, over all rows or (`rows`) over a range of its outermost axis.
    fn map_in(
        &mut self,
        dst: &View,
        shape: &[usize],
        expr: &Expr,
        rows: Option<(Value, Value)>,
    ) -> Result<(), JitError> {
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
            && vectorizable(expr, d, r - 1);
        if !vec_ok {
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
        views.push(dst.clone());
        // Row ranges split the outermost axis, which is never the vector axis (rank ≥ 2).
        let rows = rows.filter(|_| r >= 2);
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
            let outer_rows = cg.rows.replace((r - 1, ptrs));
            let mut one = |cg: &mut Self, i: Value, mode: Mode| -> Result<(), JitError> {
                idx.push(i);
                let v = cg.eval(expr, &idx, mode, d)?;
                cg.store(v, dst, &idx);
                idx.pop();
                Ok(())
            };
            // Two vectors per iteration, then one, then the scalar tail.
            cg.counted(0, pairs, 2 * w as i64, &mut |cg, i| {
                one(cg, i, Mode::Vector)?;
                let j = cg.b.ins().iadd_imm_s(i, w as i64);
                one(cg, j, Mode::Vector)
            })?;
            cg.counted(pairs, full, w as i64, &mut |cg, i| one(cg, i, Mode::Vector))?;
            cg.counted(full, n as i64, 1, &mut |cg, i| one(cg, i, Mode::Scalar))?;
            cg.rows = outer_rows;
            Ok(())
        })
    }

    fn reduce(
        &mut self,
        dst: &View,
        shape: &[usize],
        axes: &[usize],
        kind: ReduceKind,
        expr: &Expr,
    ) -> Result<(), JitError> {
        let d = dst.dtype;
        let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
        let kept_dims: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
        let red_dims: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
        let count: usize = red_dims.iter().product();
        if kept_dims.contains(&0) {
            return Ok(());
        }
        let acc = self.b.declare_var(scalar_ty(d));
        self.for_each(&kept_dims, &mut Vec::new(), &mut |cg, kidx| {
            let init = match kind {
                ReduceKind::Sum | ReduceKind::Mean => cg.fconst(d, 0.0),
                ReduceKind::Max => cg.fconst(d, f64::NEG_INFINITY),
            };
            cg.b.def_var(acc, init);
            if count > 0 {
                cg.for_each(&red_dims, &mut Vec::new(), &mut |cg, ridx| {
                    let zero = cg.iconst(0);
                    let mut full = vec![zero; shape.len()];
                    for (k, &a) in kept.iter().enumerate() {
                        full[a] = kidx[k];
                    }
                    for (k, &a) in axes.iter().enumerate() {
                        full[a] = ridx[k];
                    }
                    let v = cg.eval(expr, &full, Mode::Scalar, d)?;
                    let a = cg.b.use_var(acc);
                    let n = match kind {
                        ReduceKind::Sum | ReduceKind::Mean => cg.b.ins().fadd(a, v),
                        ReduceKind::Max => cg.binary(Binary::Maximum, a, v, Mode::Scalar, d),
                    };
                    cg.b.def_var(acc, n);
                    Ok(())
                })?;
            }
            let mut a = cg.b.use_var(acc);
            if kind == ReduceKind::Mean {
                let c = cg.fconst(d, count as f64);
                a = cg.b.ins().fdiv(a, c);
            }
            cg.store(a, dst, kidx);
            Ok(())
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn dot(
        &mut self,
        dst: &View,
        shape: &[usize],
        lhs: &View,
        lhs_shape: &[usize],
        rhs: &View,
        rhs_shape: &[usize],
        dims: &DotGeneral,
    ) -> Result<(), JitError> {
        let d = dst.dtype;
        if shape.contains(&0) {
            return Ok(());
        }
        let lfree = DotGeneral::free_axes(lhs_shape.len(), &dims.lhs_contract, &dims.lhs_batch);
        let rfree = DotGeneral::free_axes(rhs_shape.len(), &dims.rhs_contract, &dims.rhs_batch);
        let cdims: Vec<usize> = dims.lhs_contract.iter().map(|&a| lhs_shape[a]).collect();
        let k: usize = cdims.iter().product();
        if k == 0 {
            return self.map(dst, shape, &Expr::Scalar(0f64.to_bits(), d));
        }
        if self.gemm
            && self.try_gemm(dst, shape, lhs, lhs_shape, rhs, rhs_shape, dims, &lfree, &rfree)?
        {
            self.how = "matrix multiply";
            return Ok(());
        }
        let nb = dims.lhs_batch.len();
        // Views of the operands over the output index space (+ contract axes appended).
        let expand = |v: &View,
                      batch: &[usize],
                      free: &[usize],
                      lhs_side: bool,
                      contract: &[usize]|
         -> View {
            let mut strides = vec![0isize; shape.len() + contract.len()];
            for (k, &a) in batch.iter().enumerate() {
                strides[k] = v.strides[a];
            }
            let start = if lhs_side { nb } else { nb + lfree.len() };
            for (k, &a) in free.iter().enumerate() {
                strides[start + k] = v.strides[a];
            }
            for (k, &a) in contract.iter().enumerate() {
                strides[shape.len() + k] = v.strides[a];
            }
            View { strides, ..v.clone() }
        };
        let lv = expand(lhs, &dims.lhs_batch, &lfree, true, &dims.lhs_contract);
        let rv = expand(rhs, &dims.rhs_batch, &rfree, false, &dims.rhs_contract);
        let r = shape.len();
        let w = lanes(d);
        let last = r.saturating_sub(1);
        // Vector over the output's innermost axis: lanes are independent outputs.
        let out_vec = r > 0
            && d != DType::Bool
            && dst.strides[last] == 1
            && shape[last] >= w
            && matches!(lv.strides[last], 0 | 1)
            && matches!(rv.strides[last], 0 | 1);
        // Vector along the innermost contracted axis: a dot product of contiguous runs.
        let cl = (r + cdims.len()).saturating_sub(1);
        let k_vec = !out_vec
            && !self.strict
            && d != DType::Bool
            && !cdims.is_empty()
            && lv.strides[cl] == 1
            && rv.strides[cl] == 1
            && cdims[cdims.len() - 1] >= 2 * w;
        let fma = self.fma;
        let mac = |cg: &mut Self, acc: Value, x: Value, y: Value| -> Value {
            if fma {
                cg.b.ins().fma(x, y, acc)
            } else {
                let p = cg.b.ins().fmul(x, y);
                cg.b.ins().fadd(acc, p)
            }
        };
        if out_vec {
            self.how = "inline, vectors over outputs";
            self.vaxis = last;
            let n = shape[last];
            let full = (n / w * w) as i64;
            let vacc = self.b.declare_var(vec_ty(d));
            let sacc = self.b.declare_var(scalar_ty(d));
            let unrolled = cdims.len() == 1 && cdims[0] <= UNROLL_K;
            // A long contraction with one operand constant along the vector axis (a matrix
            // product's rows): register tiles of outputs, see `out_vec_blocked`.
            if !unrolled {
                if lv.strides[last] == 0 && rv.strides[last] == 1 {
                    return self.out_vec_blocked(dst, shape, &lv, &rv, true, &cdims, d, &mac);
                }
                if rv.strides[last] == 0 && lv.strides[last] == 1 {
                    return self.out_vec_blocked(dst, shape, &rv, &lv, false, &cdims, d, &mac);
                }
            }
            return self.for_each(&shape[..last], &mut Vec::new(), &mut |cg, outer| {
                let mut idx = outer.to_vec();
                // Operand elements that do not change along the vector axis are loaded and
                // splatted once, before the loop (loads are not hoisted by Cranelift).
                let mut hoisted: Vec<[Option<Value>; 2]> = Vec::new();
                if unrolled {
                    for c in 0..cdims[0] {
                        let mut all = idx.clone();
                        all.push(cg.iconst(0));
                        all.push(cg.iconst(c as i64));
                        let mut pair = [None, None];
                        for (slot, v) in [&lv, &rv].into_iter().enumerate() {
                            if v.strides[last] == 0 {
                                pair[slot] =
                                    Some(cg.eval(&Expr::Load(v.clone()), &all, Mode::Vector, d)?);
                            }
                        }
                        hoisted.push(pair);
                    }
                }
                cg.counted(0, full, w as i64, &mut |cg, j| {
                    idx.push(j);
                    let z = cg.constant(Mode::Vector, d, -0.0);
                    cg.b.def_var(vacc, z);
                    if unrolled {
                        // Short contraction: straight-line code, no loop.
                        for (c, pair) in hoisted.iter().enumerate() {
                            let mut all = idx.clone();
                            all.push(cg.iconst(c as i64));
                            let x = match pair[0] {
                                Some(v) => v,
                                None => cg.eval(&Expr::Load(lv.clone()), &all, Mode::Vector, d)?,
                            };
                            let y = match pair[1] {
                                Some(v) => v,
                                None => cg.eval(&Expr::Load(rv.clone()), &all, Mode::Vector, d)?,
                            };
                            let a = cg.b.use_var(vacc);
                            let a2 = mac(cg, a, x, y);
                            cg.b.def_var(vacc, a2);
                        }
                    } else {
                        cg.for_each(&cdims, &mut idx.clone(), &mut |cg, all| {
                            cg.mac_into(vacc, &lv, &rv, all, Mode::Vector, d, &mac)
                        })?;
                    }
                    let a = cg.b.use_var(vacc);
                    cg.store(a, dst, &idx);
                    idx.pop();
                    Ok(())
                })?;
                cg.counted(full, n as i64, 1, &mut |cg, j| {
                    idx.push(j);
                    cg.scalar_dot(sacc, &lv, &rv, &cdims, &idx, dst, d, &mac)?;
                    idx.pop();
                    Ok(())
                })
            });
        }
        if k_vec {
            self.how = "inline, vectors along the contraction";
            self.vaxis = cl;
            // An output axis along which one operand does not move (the rows of a
            // matrix-vector product): blocks of `ROWS` outputs along it load that operand once
            // per step and keep one accumulator set per output.
            let block = (0..r)
                .rev()
                .find(|&a| shape[a] >= 2 && ((lv.strides[a] == 0) != (rv.strides[a] == 0)));
            let Some(a) = block else {
                return self.for_each(shape, &mut Vec::new(), &mut |cg, oidx| {
                    cg.k_vec_rows(oidx, 1, 0, &lv, &rv, &cdims, dst, d, &mac)
                });
            };
            const ROWS: usize = 4;
            let rows = ROWS.min(shape[a]);
            let (blocks, rem) = (shape[a] / rows, shape[a] % rows);
            let mut blocked = shape.to_vec();
            blocked[a] = blocks;
            self.for_each(&blocked, &mut Vec::new(), &mut |cg, bidx| {
                let mut oidx = bidx.to_vec();
                oidx[a] = cg.b.ins().imul_imm_s(bidx[a], rows as i64);
                cg.k_vec_rows(&oidx, rows, a, &lv, &rv, &cdims, dst, d, &mac)
            })?;
            if rem > 0 {
                let mut tail = shape.to_vec();
                tail[a] = rem;
                self.for_each(&tail, &mut Vec::new(), &mut |cg, tidx| {
                    let mut oidx = tidx.to_vec();
                    oidx[a] = cg.b.ins().iadd_imm_s(tidx[a], (blocks * rows) as i64);
                    cg.k_vec_rows(&oidx, 1, a, &lv, &rv, &cdims, dst, d, &mac)
                })?;
            }
            return Ok(());
        }
        let sacc = self.b.declare_var(scalar_ty(d));
        self.how = "inline, scalar";
        let plain = |cg: &mut Self, acc: Value, x: Value, y: Value| -> Value {
            let p = cg.b.ins().fmul(x, y);
            cg.b.ins().fadd(acc, p)
        };
        self.for_each(shape, &mut Vec::new(), &mut |cg, oidx| {
            cg.scalar_dot(sacc, &lv, &rv, &cdims, oidx, dst, d, &plain)
        })
    }

    /// A contraction vectorised over the output's innermost axis, in register tiles: up to
    /// `ROWS` rows (an output axis along which the vector operand `vv` does not move) × `TILE`
    /// vectors along the innermost axis, so each step of the contraction loads `TILE` vectors of
    /// `vv` and `ROWS` splats of `sv` for `ROWS·TILE` multiply-adds (instead of two loads per
    /// vector). Each output still sums its products in contraction order, from −0.
    #[allow(clippy::too_many_arguments)]
    fn out_vec_blocked(
        &mut self,
        dst: &View,
        shape: &[usize],
        sv: &View,
        vv: &View,
        splat_is_lhs: bool,
        cdims: &[usize],
        d: DType,
        mac: &dyn Fn(&mut Self, Value, Value, Value) -> Value,
    ) -> Result<(), JitError> {
        const TILE: usize = 4;
        const ROWS: usize = 2;
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
        let (lv, rv) = if splat_is_lhs { (sv, vv) } else { (vv, sv) };
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
                    cg.counted(from, to, (u * w) as i64, &mut |cg, j| {
                        cg.out_vec_tile(&starts, j, u, sv, vv, splat_is_lhs, cdims, dst, d, mac)
                    })?;
                }
                for start in &starts {
                    cg.counted(full, n as i64, 1, &mut |cg, j| {
                        let mut idx = start.clone();
                        idx.push(j);
                        cg.scalar_dot(sacc, lv, rv, cdims, &idx, dst, d, mac)
                    })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// One register tile of [`Cg::out_vec_blocked`]: rows `starts` × `u` vectors from `j`.
    #[allow(clippy::too_many_arguments)]
    fn out_vec_tile(
        &mut self,
        starts: &[Vec<Value>],
        j: Value,
        u: usize,
        sv: &View,
        vv: &View,
        splat_is_lhs: bool,
        cdims: &[usize],
        dst: &View,
        d: DType,
        mac: &dyn Fn(&mut Self, Value, Value, Value) -> Value,
    ) -> Result<(), JitError> {
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
        self.for_each(cdims, &mut Vec::new(), &mut |cg, kidx| {
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
                    let (p, q) = if splat_is_lhs { (x, y) } else { (y, x) };
                    let acc = cg.b.use_var(a);
                    let acc = mac(cg, acc, p, q);
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
                self.store(v, dst, &idx);
            }
        }
        Ok(())
    }

    /// `rows` outputs at `oidx`, `oidx + e_a`, … (along output axis `a`), each a dot product
    /// vectorised along the innermost contracted axis (contiguous in both operands). The
    /// operand that does not move along `a` is loaded once per step for all rows.
    #[allow(clippy::too_many_arguments)]
    fn k_vec_rows(
        &mut self,
        oidx: &[Value],
        rows: usize,
        a: usize,
        lv: &View,
        rv: &View,
        cdims: &[usize],
        dst: &View,
        d: DType,
        mac: &dyn Fn(&mut Self, Value, Value, Value) -> Value,
    ) -> Result<(), JitError> {
        let w = lanes(d);
        let kn = cdims[cdims.len() - 1];
        let outer_c = &cdims[..cdims.len() - 1];
        // Independent accumulators per row hide the FMA latency: 4 for one row, 2 for more.
        let unroll = if rows == 1 { 4 } else { 2 };
        let step = w * unroll;
        let full = (kn / step * step) as i64;
        let lhs_shared = lv.strides.get(a) == Some(&0);
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
                    let shared = if lhs_shared { lv } else { rv };
                    let s = cg.eval(&Expr::Load(shared.clone()), &idx, Mode::Vector, d)?;
                    for (start, accs) in starts.iter().zip(&vaccs) {
                        let mut idx = start.clone();
                        idx.push(ju);
                        let moving = if lhs_shared { rv } else { lv };
                        let o = cg.eval(&Expr::Load(moving.clone()), &idx, Mode::Vector, d)?;
                        let (x, y) = if lhs_shared { (s, o) } else { (o, s) };
                        let acc = cg.b.use_var(accs[u]);
                        let acc = mac(cg, acc, x, y);
                        cg.b.def_var(accs[u], acc);
                    }
                }
                Ok(())
            })?;
            cg.counted(full, kn as i64, 1, &mut |cg, j| {
                for row in 0..rows {
                    let mut idx = starts[row].clone();
                    idx.push(j);
                    cg.mac_into(saccs[row], lv, rv, &idx, Mode::Scalar, d, mac)?;
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
            self.store(s, dst, &idx);
        }
        Ok(())
    }

    /// `acc += lv[idx]·rv[idx]` (in `mode`), with `mac` choosing fused or separate rounding.
    #[allow(clippy::too_many_arguments)]
    fn mac_into(
        &mut self,
        acc: Variable,
        lv: &View,
        rv: &View,
        idx: &[Value],
        mode: Mode,
        d: DType,
        mac: &dyn Fn(&mut Self, Value, Value, Value) -> Value,
    ) -> Result<(), JitError> {
        let x = self.eval(&Expr::Load(lv.clone()), idx, mode, d)?;
        let y = self.eval(&Expr::Load(rv.clone()), idx, mode, d)?;
        let a = self.b.use_var(acc);
        let a2 = mac(self, a, x, y);
        self.b.def_var(acc, a2);
        Ok(())
    }

    /// One output element of a contraction, accumulated in the interpreter's order from -0.0
    /// (so the result equals the interpreter's "first product, then sums" bit for bit when
    /// `mac` is a multiply and an add).
    #[allow(clippy::too_many_arguments)]
    fn scalar_dot(
        &mut self,
        acc: Variable,
        lv: &View,
        rv: &View,
        cdims: &[usize],
        oidx: &[Value],
        dst: &View,
        d: DType,
        mac: &dyn Fn(&mut Self, Value, Value, Value) -> Value,
    ) -> Result<(), JitError> {
        let z = self.fconst(d, -0.0);
        self.b.def_var(acc, z);
        self.for_each(cdims, &mut oidx.to_vec(), &mut |cg, all| {
            cg.mac_into(acc, lv, rv, all, Mode::Scalar, d, mac)
        })?;
        let a = self.b.use_var(acc);
        self.store(a, dst, oidx);
        Ok(())
    }

    /// Call the matrix multiply when the contraction is large and its axes flatten to
    /// (M×K)·(K×N) with the remaining axes as outer loops.
    #[allow(clippy::too_many_arguments)]
    fn try_gemm(
        &mut self,
        dst: &View,
        shape: &[usize],
        lhs: &View,
        lhs_shape: &[usize],
        rhs: &View,
        rhs_shape: &[usize],
        dims: &DotGeneral,
        lfree: &[usize],
        rfree: &[usize],
    ) -> Result<bool, JitError> {
        let d = dst.dtype;
        if d == DType::Bool {
            return Ok(false);
        }
        // K: the contracted axes must chain on both sides.
        let chains = |v: &View, sh: &[usize], ax: &[usize]| {
            ax.windows(2).all(|p| v.strides[p[0]] == v.strides[p[1]] * sh[p[1]] as isize)
        };
        if !chains(lhs, lhs_shape, &dims.lhs_contract)
            || !chains(rhs, rhs_shape, &dims.rhs_contract)
        {
            return Ok(false);
        }
        let k: usize = dims.lhs_contract.iter().map(|&a| lhs_shape[a]).product();
        let (Some(&lk), Some(&rk)) = (dims.lhs_contract.last(), dims.rhs_contract.last()) else {
            return Ok(false);
        };
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
        let ml = suffix(lfree, lhs, lhs_shape, &out_pos_l);
        let nl = suffix(rfree, rhs, rhs_shape, &out_pos_r);
        let m: usize = lfree[lfree.len() - ml..].iter().map(|&a| lhs_shape[a]).product();
        let n: usize = rfree[rfree.len() - nl..].iter().map(|&a| rhs_shape[a]).product();
        if m.saturating_mul(n).saturating_mul(k) < GEMM_THRESHOLD || m.min(n) < GEMM_MIN_MN {
            return Ok(false);
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
        let f = self.imports.gemm[&(d == DType::F64)];
        let lo = View { strides: l_outer, ..lhs.clone() };
        let ro = View { strides: r_outer, ..rhs.clone() };
        let oo = View { strides: o_outer, ..dst.clone() };
        self.for_each(&outer_dims, &mut Vec::new(), &mut |cg, idx| {
            let a = cg.addr(&lo, idx);
            let b = cg.addr(&ro, idx);
            let c = cg.addr(&oo, idx);
            let mut args = Vec::with_capacity(13);
            for v in [m as i64, k as i64, n as i64] {
                args.push(cg.iconst(v));
            }
            for (p, rs, cs) in [(a, rsa, csa), (b, rsb, csb), (c, rsc, csc)] {
                args.push(p);
                args.push(cg.iconst(rs as i64));
                args.push(cg.iconst(cs as i64));
            }
            let threads = cg.iconst(cg.threads as i64);
            args.push(threads);
            cg.b.ins().call(f, &args);
            Ok(())
        })?;
        Ok(true)
    }
}

/// The dtype an expression produces.
pub(crate) fn expr_dtype(e: &Expr) -> DType {
    match e {
        Expr::Load(v) => v.dtype,
        Expr::Scalar(_, d) => *d,
        Expr::Unary(_, a) => expr_dtype(a),
        Expr::Binary(_, a, _) => expr_dtype(a),
        Expr::Compare(..) => DType::Bool,
        Expr::Select(_, a, _) => expr_dtype(a),
        Expr::Convert(_, to, _) => *to,
    }
}

/// The Cranelift signature of the matrix multiply: 13 pointer-sized arguments (dimensions,
/// three strided operands, the number of threads it may use).
pub(crate) fn gemm_signature(sig: &mut ir::Signature) {
    for _ in 0..13 {
        sig.params.push(AbiParam::new(types::I64));
    }
}
