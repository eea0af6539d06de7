//! Evaluating a fused expression at an index, on one element or on a vector of lanes, and
//! the arithmetic of each unary and binary op (inline, or a call to [`crate::libm`]).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Value, types};
use jjt_ir::DType;
use jjt_ir::ops::{Binary, Compare, Unary};

use super::{Cg, Mode, flags, mask_ty, scalar_ty, vec_ty};
use crate::JitError;
use crate::libm::{Libm, Precision};
use crate::plan::{Expr, View};

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
/// `strides[i]` (the innermost stride of each view). With `inline_math` (fast mode) `exp`,
/// `tanh` and `sigmoid` are arithmetic (`math`), not calls.
pub(super) fn vectorizable(e: &Expr, d: DType, axis: usize, inline_math: bool) -> bool {
    // Integer arithmetic runs on scalars (I32 lanes would need their own lane type): an i32
    // load, constant, comparison or conversion never has the lane type `d` of a float loop.
    if d == DType::I32 {
        return false;
    }
    let vectorizable = |e: &Expr, d: DType, axis: usize| vectorizable(e, d, axis, inline_math);
    match e {
        // A bool view is read as a lane mask of a float loop (`Cg::load_mask`).
        Expr::Load(v) => {
            (v.dtype == d || (v.dtype == DType::Bool && matches!(d, DType::F32 | DType::F64)))
                && matches!(v.strides.get(axis), Some(0) | Some(1))
        }
        Expr::Scalar(_, dt) => *dt == d || *dt == DType::Bool,
        Expr::Unary(u, a) => {
            (!Libm::unary_calls(*u) || (inline_math && inline(*u))) && vectorizable(a, d, axis)
        }
        Expr::Binary(op, a, b) => {
            !Libm::binary_calls(*op) && vectorizable(a, d, axis) && vectorizable(b, d, axis)
        }
        Expr::Compare(_, a, b, dt) => {
            *dt == d && vectorizable(a, d, axis) && vectorizable(b, d, axis)
        }
        // A choice between bool masks (the logic ops) runs on scalars: lane masks have no
        // float vector type to select in.
        Expr::Select(p, a, b) => {
            expr_dtype(a) != DType::Bool
                && vectorizable(p, d, axis)
                && vectorizable(a, d, axis)
                && vectorizable(b, d, axis)
        }
        // A row read as vectors: the table contiguous (or broadcast) along the axis and the
        // index the same for every lane (evaluated once, on scalars).
        Expr::Gather { table, index, .. } => {
            table.dtype == d
                && matches!(table.strides.get(axis), Some(0) | Some(1))
                && index.views().iter().all(|v| v.strides.get(axis) == Some(&0))
        }
        Expr::Convert(from, to, a) => {
            let ok = (*from == DType::Bool && *to == d)
                || (*from == d && *to == DType::Bool)
                || from == to;
            ok && vectorizable(a, d, axis)
        }
    }
}

fn int_cc(c: Compare) -> IntCC {
    match c {
        Compare::Gt => IntCC::SignedGreaterThan,
        Compare::Ge => IntCC::SignedGreaterThanOrEqual,
        Compare::Lt => IntCC::SignedLessThan,
        Compare::Le => IntCC::SignedLessThanOrEqual,
        Compare::Eq => IntCC::Equal,
    }
}

/// Whether fast mode evaluates `u` inline (`math`) rather than by a call.
pub(crate) fn inline(u: Unary) -> bool {
    matches!(u, Unary::Exp | Unary::Tanh | Unary::Sigmoid)
}

/// The views `e` loads (not a gather's table or index), each once.
pub(super) fn loads(e: &Expr) -> Vec<View> {
    fn walk(e: &Expr, out: &mut Vec<View>) {
        match e {
            Expr::Load(v) => {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Expr::Scalar(..) | Expr::Gather { .. } => {}
            Expr::Unary(_, a) | Expr::Convert(_, _, a) => walk(a, out),
            Expr::Binary(_, a, b) | Expr::Compare(_, a, b, _) => {
                walk(a, out);
                walk(b, out);
            }
            Expr::Select(p, a, b) => {
                walk(p, out);
                walk(a, out);
                walk(b, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out);
    out
}

/// The dtype an expression produces.
fn expr_dtype(e: &Expr) -> DType {
    match e {
        Expr::Load(v) => v.dtype,
        Expr::Scalar(_, d) => *d,
        Expr::Unary(_, a) => expr_dtype(a),
        Expr::Binary(_, a, _) => expr_dtype(a),
        Expr::Compare(..) => DType::Bool,
        Expr::Select(_, a, _) => expr_dtype(a),
        Expr::Convert(_, to, _) => *to,
        Expr::Gather { table, .. } => table.dtype,
    }
}

impl Cg<'_, '_> {
    fn call(&mut self, f: Libm, d: DType, args: &[Value]) -> Value {
        let r = self.imports.libm[&(f, Precision::of(d))];
        let inst = self.b.ins().call(r, args);
        self.b.inst_results(inst)[0]
    }

    /// `c ? x : y` for a scalar bool (i8) or a lane mask.
    pub(super) fn choose(&mut self, mode: Mode, d: DType, c: Value, x: Value, y: Value) -> Value {
        match mode {
            Mode::Scalar => self.b.ins().select(c, x, y),
            Mode::Vector => {
                let m = self.b.ins().bitcast(vec_ty(d), MemFlagsData::new(), c);
                self.b.ins().bitselect(m, x, y)
            }
        }
    }

    pub(super) fn splat_or(&mut self, mode: Mode, d: DType, v: Value) -> Value {
        match mode {
            Mode::Scalar => v,
            Mode::Vector => self.b.ins().splat(vec_ty(d), v),
        }
    }

    pub(super) fn constant(&mut self, mode: Mode, d: DType, v: f64) -> Value {
        let s = self.fconst(d, v);
        self.splat_or(mode, d, s)
    }

    /// Evaluate `e` at `idx`. In vector mode `d` is the lane type and the innermost index is the
    /// first of `lanes(d)` consecutive elements; bools are lane masks.
    pub(super) fn eval(
        &mut self,
        e: &Expr,
        idx: &[Value],
        mode: Mode,
        d: DType,
    ) -> Result<Value, JitError> {
        Ok(match e {
            Expr::Load(v) => {
                let along = v.strides.get(self.vaxis).copied().unwrap_or(0);
                if mode == Mode::Vector
                    && along == 0
                    && let Some((_, x)) = self.splats.iter().find(|(s, _)| s == v)
                {
                    return Ok(*x);
                }
                let a = self.addr(v, idx);
                match mode {
                    Mode::Vector if v.dtype == DType::Bool => self.load_mask(a, along != 0, d),
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
            Expr::Gather { table, row_stride, rows, index } => {
                // In vector mode the index is the same for every lane (`vectorizable`): it is
                // evaluated on scalars at the first lane's index.
                let i = self.eval(index, idx, Mode::Scalar, DType::I32)?;
                let a = self.row_addr(table, idx, i, *row_stride, *rows);
                let along = table.strides.get(self.vaxis).copied().unwrap_or(0);
                match mode {
                    Mode::Vector if along != 0 => {
                        self.b.ins().load(vec_ty(table.dtype), flags(), a, 0)
                    }
                    _ => {
                        let s = self.b.ins().load(scalar_ty(table.dtype), flags(), a, 0);
                        self.splat_or(mode, table.dtype, s)
                    }
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
                } else if *dt == DType::I32 {
                    self.b.ins().icmp(int_cc(*c), x, y)
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
                    // Integers run on scalars only (`vectorizable`). Float → i32 saturates
                    // and gives 0 for NaN (no trapping conversion).
                    (DType::F32 | DType::F64, DType::I32) => {
                        self.b.ins().fcvt_to_sint_sat(types::I32, x)
                    }
                    (DType::I32, DType::F32 | DType::F64) => {
                        self.b.ins().fcvt_from_sint(scalar_ty(*to), x)
                    }
                    (DType::I32, DType::Bool) => {
                        let zero = self.b.ins().iconst(types::I32, 0);
                        self.b.ins().icmp(IntCC::NotEqual, x, zero)
                    }
                    (DType::F32, DType::F64) => self.b.ins().fpromote(types::F64, x),
                    (DType::F64, DType::F32) => self.b.ins().fdemote(types::F32, x),
                    // On lanes, 1.0 masked by the comparison's all-ones or all-zeros lanes: the
                    // bits of choosing between 1.0 and +0.0, in one instruction instead of a
                    // blend (a relu derivative times a cotangent, on the CNN).
                    (DType::Bool, t) if mode == Mode::Vector => {
                        let one = self.constant(mode, *t, 1.0);
                        let m = self.b.ins().bitcast(vec_ty(*t), MemFlagsData::new(), x);
                        self.b.ins().band(m, one)
                    }
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

    /// The lane mask of a float loop of lane type `d` read from bools (bytes 0 or 1) at `a`:
    /// consecutive bytes, one per lane, or one byte for every lane (`along` false). The bytes
    /// are widened to the lanes' width and compared with 0.
    fn load_mask(&mut self, a: Value, along: bool, d: DType) -> Value {
        let wide = if d == DType::F64 { types::I64 } else { types::I32 };
        if !along {
            let s = self.b.ins().load(types::I8, flags(), a, 0);
            let m = self.b.ins().bmask(wide, s);
            return self.b.ins().splat(mask_ty(d), m);
        }
        // Four bytes (two for f64 lanes) into the low lanes of a vector, then each widening
        // step doubles the lanes' width: i8 → i16 → i32 (→ i64).
        let (bytes, v) = if d == DType::F64 {
            let s = self.b.ins().load(types::I16, flags(), a, 0);
            (s, types::I16X8)
        } else {
            let s = self.b.ins().load(types::I32, flags(), a, 0);
            (s, types::I32X4)
        };
        let v = self.b.ins().scalar_to_vector(v, bytes);
        let mut x = self.b.ins().bitcast(
            types::I8X16,
            MemFlagsData::new().with_endianness(Endianness::Little),
            v,
        );
        x = self.b.ins().uwiden_low(x);
        x = self.b.ins().uwiden_low(x);
        if d == DType::F64 {
            x = self.b.ins().uwiden_low(x);
        }
        let zero = self.b.ins().iconst(wide, 0);
        let zero = self.b.ins().splat(mask_ty(d), zero);
        self.b.ins().icmp(IntCC::NotEqual, x, zero)
    }

    /// The address of `view` at `idx` plus `clamp(i, 0, rows − 1)` rows of `row_stride`
    /// elements (`i` an i32): the index clamped with a signed max and min, then widened (it is
    /// non-negative) and scaled.
    pub(super) fn row_addr(
        &mut self,
        view: &View,
        idx: &[Value],
        i: Value,
        row_stride: isize,
        rows: usize,
    ) -> Value {
        let base = self.addr(view, idx);
        let zero = self.b.ins().iconst(types::I32, 0);
        let last = self.b.ins().iconst(types::I32, rows.saturating_sub(1) as i64);
        let c = self.b.ins().smax(i, zero);
        let c = self.b.ins().smin(c, last);
        let c = self.b.ins().uextend(types::I64, c);
        let size = view.dtype.item_size() as i64;
        let off = self.b.ins().imul_imm_s(c, row_stride as i64 * size);
        self.b.ins().iadd(base, off)
    }

    fn unary(&mut self, u: Unary, x: Value, mode: Mode, d: DType) -> Value {
        if self.policy.inline_math {
            match u {
                Unary::Exp => return self.exp_inline(x, mode, d),
                Unary::Tanh => return self.tanh_inline(x, mode, d),
                Unary::Sigmoid => return self.sigmoid_inline(x, mode, d),
                _ => {}
            }
        }
        if d == DType::I32 {
            // Only `neg` accepts i32 (wrapping); the type checker refuses the others.
            return self.b.ins().ineg(x);
        }
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
            | Unary::Tanh
            | Unary::Erf => {
                let f = Libm::of_unary(u).unwrap_or(Libm::Exp);
                self.call(f, d, &[x])
            }
        }
    }

    pub(super) fn binary(&mut self, op: Binary, x: Value, y: Value, mode: Mode, d: DType) -> Value {
        if d == DType::I32 {
            // Wrapping two's-complement arithmetic, as the interpreter's; `div` and `pow` are
            // refused for i32 by the type checker (`smax` stands in, never reached).
            return match op {
                Binary::Add => self.b.ins().iadd(x, y),
                Binary::Sub => self.b.ins().isub(x, y),
                Binary::Mul => self.b.ins().imul(x, y),
                Binary::Minimum => self.b.ins().smin(x, y),
                Binary::Maximum | Binary::Div | Binary::Pow => self.b.ins().smax(x, y),
            };
        }
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
}
