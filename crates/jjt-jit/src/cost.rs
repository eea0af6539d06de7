//! The backend's cost model: the predicted time of one call of a compiled function, step by
//! step, without generating code.
//!
//! [`predict`] plans the graph as [`crate::compile_with`] does ([`crate::plan`]: the same
//! steps, in the same order, with the same labels as [`crate::Compiled::step_labels`]) and
//! prices each step by what the backend will run for it:
//!
//! | kind | seconds |
//! |---|---|
//! | [`StepKind::MatrixMultiply`] | per product and block of K: `call + macs / (peak · s / (s + half))`, `s` the harmonic mean of M, N, K (small or skinny products run below peak); plus packing, `packed bytes / copy_strided` |
//! | [`StepKind::RuntimeLoops`] | `macs / runtime_loops + outputs · map_element` plus packing, as above |
//! | [`StepKind::InlineVector`] | `macs / inline_vector + outputs · map_element` (SIMD loops in the generated code) |
//! | [`StepKind::MatrixVector`] | `bytes read / matvec`: the matrix once, each vector once per block of rows ([`crate::matvec`]) |
//! | [`StepKind::InlineScalar`] | `macs / inline_scalar + outputs · map_element` (one product at a time; `inline_scalar_large` when the operands exceed [`CACHED_BYTES`]) |
//! | [`StepKind::Copy`] | `bytes read and written / copy` (an elementwise step that only loads; `copy_strided` when it gathers its innermost axis, `copy_strided_large` when its source exceeds [`CACHED_BYTES`]) |
//! | [`StepKind::Map`] | `elements · (map_element + map_op · ops + libm_call · calls + tanh_call · tanhs + inline_math · inlined)` |
//! | [`StepKind::Reduce`] | `input elements · (reduce_element + map_op · (ops − 1) + libm_call · calls + tanh_call · tanhs + inline_math · inlined)` (`reduce_outer` when the innermost axis is kept) |
//!
//! Maps and reductions also pay, per element and per load that gathers along a strided
//! innermost axis, a strided copy's time per element (`copy_strided`, or `copy_strided_large`
//! for more than [`CACHED_BYTES`]);
//! where `ops` counts the loads and arithmetic of the step's fused expression, `tanhs` its
//! tanh calls and `calls` its other calls to [`crate::libm`] (exp, log, sin, cos, pow, sigmoid:
//! one; softplus: two; erf: three, one call that costs as much as three exps); tanh is priced
//! apart because it costs several times the others.
//! Outside strict mode exp, sigmoid and tanh are inline arithmetic instead
//! ([`crate::INLINE_MATH_ULPS`]): `inlined` counts them, exp and sigmoid as one, tanh (an exp,
//! a polynomial and a quotient) as two. Every
//! step also pays `step`. Contractions are classified by the code generator's own choice
//! ([`crate::dot_path`]). Steps the backend splits across threads (large matrix multiplies,
//! elementwise steps with rows on threads) divide their time by `threads · parallel` (the
//! measured efficiency of a split). The thread count is [`Options::threads`], or, when that is
//! 0 ("every core"), the count the constants were measured with ([`Throughputs::threads`]),
//! not the host's: predictions, and so `auto`'s choice and every dump, do not depend on the
//! machine they are made on.
//!
//! The constants, [`Throughputs::MEASURED`], were measured on the development machine (AMD
//! EPYC, AVX-512, 2 cores) with
//!
//! ```text
//! cargo run --release -p jjt-jit --example calibrate
//! ```
//!
//! which times small graphs of each kind step by step and prints the constants in Rust syntax,
//! ready to paste here. [`Throughputs::parse`] reads the same output from a file, for hosts
//! that want their own (the CLI's `JJT_THROUGHPUTS`).

use jjt_ir::{Binary, Function, Unary};

use crate::codegen::{self, Policy};
use crate::contract::{DotKind, DotPath};
use crate::plan::{self, DotStep, Expr, MapStep, ReduceStep, Step};
use crate::{JitError, Options};

/// Measured speeds of the backend's kinds of step (seconds per unit of work).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throughputs {
    /// Seconds every step pays (loop set-up, the call into it).
    pub step: f64,
    /// Seconds per call of the matrix multiply (dispatch, packing set-up).
    pub gemm_call: f64,
    /// Multiply-adds per second of a large matrix multiply on one thread.
    pub gemm_peak: f64,
    /// The size (harmonic mean of M, N, K) at which the matrix multiply reaches half its peak.
    pub gemm_half: f64,
    /// Multiply-adds per second of a contraction in vectorised inline loops.
    pub inline_vector: f64,
    /// Multiply-adds per second of the runtime contraction's vectorised dot loops.
    pub runtime_loops: f64,
    /// Bytes per second the matrix–vector kernel ([`crate::matvec`]) reads: its matrix once,
    /// and each vector once per block of rows.
    pub matvec: f64,
    /// Multiply-adds per second of a contraction computed one product at a time, operands of
    /// at most [`CACHED_BYTES`] together.
    pub inline_scalar: f64,
    /// [`Throughputs::inline_scalar`] for larger operands (strided reads missing the cache).
    pub inline_scalar_large: f64,
    /// Bytes (read plus written) per second of a copy reading along unit strides.
    pub copy: f64,
    /// Bytes (read plus written) per second of a copy gathering its innermost axis with a
    /// stride (a transpose) of at most [`CACHED_BYTES`].
    pub copy_strided: f64,
    /// Bytes (read plus written) per second of a strided copy of more than [`CACHED_BYTES`]
    /// (each access a cache and TLB miss).
    pub copy_strided_large: f64,
    /// Seconds per element of an elementwise step (the store and loop).
    pub map_element: f64,
    /// Seconds per load or arithmetic operation per element.
    pub map_op: f64,
    /// Seconds per call of a transcendental function ([`crate::libm`]) per element, other than
    /// tanh.
    pub libm_call: f64,
    /// Seconds per call of tanh per element (strict mode).
    pub tanh_call: f64,
    /// Seconds per element of an inline exp or sigmoid (half an inline tanh), outside strict
    /// mode.
    pub inline_math: f64,
    /// Seconds per input element of a reduction over the innermost axis.
    pub reduce_element: f64,
    /// Seconds per input element of a reduction that keeps the innermost axis.
    pub reduce_outer: f64,
    /// The fraction of linear speed-up a step split across threads achieves.
    pub parallel: f64,
    /// Threads the measuring machine has: the count assumed when [`Options::threads`] is 0.
    pub threads: usize,
}

impl Default for Throughputs {
    fn default() -> Self {
        Throughputs::MEASURED
    }
}

impl Throughputs {
    /// Measured with `cargo run --release -p jjt-jit --example calibrate` (median of 15 calls
    /// per step, f32) on the development machine: AMD EPYC with AVX-512, 2 cores.
    pub const MEASURED: Throughputs = Throughputs {
        step: 2.100e-8,
        gemm_call: 1.000e-8,
        gemm_peak: 9.484e10,
        gemm_half: 4.787e1,
        inline_vector: 1.651e10,
        inline_scalar: 1.422e9,
        inline_scalar_large: 4.428e8,
        runtime_loops: 1.244e10,
        // Measured later than the rest (with the kernel), on an Intel Xeon with AVX-512, 2
        // cores; the same command.
        matvec: 7.961e10,
        copy: 2.960e10,
        copy_strided: 1.103e10,
        copy_strided_large: 1.186e9,
        map_element: 3.775e-10,
        map_op: 2.069e-12,
        libm_call: 3.075e-9,
        tanh_call: 8.079e-9,
        inline_math: 9.258e-10,
        reduce_element: 1.589e-10,
        reduce_outer: 1.664e-9,
        parallel: 9.825e-1,
        threads: 2,
    };

    /// Read throughputs from the text `calibrate` prints: `name: value,` lines (other lines,
    /// such as the surrounding `Throughputs { ... }`, are skipped); names not given keep their
    /// [`Throughputs::MEASURED`] value. Errors name the offending line.
    pub fn parse(text: &str) -> Result<Throughputs, String> {
        let mut t = Throughputs::MEASURED;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim().trim_end_matches(',');
            let Some((name, value)) = line.split_once(':') else { continue };
            let (name, value) = (name.trim(), value.trim());
            // `pub const MEASURED: Throughputs = ...` and other Rust around the fields.
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let bad = || format!("line {}: `{value}` is not a positive number", i + 1);
            let num = || value.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0);
            let slot = match name {
                "step" => &mut t.step,
                "gemm_call" => &mut t.gemm_call,
                "gemm_peak" => &mut t.gemm_peak,
                "gemm_half" => &mut t.gemm_half,
                "inline_vector" => &mut t.inline_vector,
                "inline_scalar" => &mut t.inline_scalar,
                "inline_scalar_large" => &mut t.inline_scalar_large,
                "runtime_loops" => &mut t.runtime_loops,
                "matvec" => &mut t.matvec,
                "copy" => &mut t.copy,
                "copy_strided" => &mut t.copy_strided,
                "copy_strided_large" => &mut t.copy_strided_large,
                "tanh_call" => &mut t.tanh_call,
                "inline_math" => &mut t.inline_math,
                "reduce_outer" => &mut t.reduce_outer,
                "map_element" => &mut t.map_element,
                "map_op" => &mut t.map_op,
                "libm_call" => &mut t.libm_call,
                "reduce_element" => &mut t.reduce_element,
                "parallel" => &mut t.parallel,
                "threads" => {
                    t.threads = value.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(bad)?;
                    continue;
                }
                other => return Err(format!("line {}: unknown throughput `{other}`", i + 1)),
            };
            *slot = num().ok_or_else(bad)?;
        }
        Ok(t)
    }
}

/// The size below which a strided copy's source stays in cache (the copy then runs near the
/// speed of a contiguous one).
pub const CACHED_BYTES: f64 = (1 << 20) as f64;

/// What the backend runs for a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Calls to the matrix multiply.
    MatrixMultiply,
    /// A contraction in vectorised inline loops.
    InlineVector,
    /// A contraction in the runtime contraction's vectorised dot loops (small M or N, or no
    /// inline vector form applies), after packing what does not chain.
    RuntimeLoops,
    /// A contraction one product at a time.
    InlineScalar,
    /// Matrix–vector products in the runtime's kernel, those sharing a matrix in one pass.
    MatrixVector,
    /// A contraction with nothing to compute (an empty output, or zeros).
    Empty,
    /// An elementwise step that only copies.
    Copy,
    /// An elementwise step.
    Map,
    /// A reduction.
    Reduce,
}

impl StepKind {
    /// Whether the step is a contraction (its rate is counted in FLOP/s).
    pub fn is_contraction(self) -> bool {
        matches!(
            self,
            StepKind::MatrixMultiply
                | StepKind::InlineVector
                | StepKind::RuntimeLoops
                | StepKind::InlineScalar
                | StepKind::MatrixVector
                | StepKind::Empty
        )
    }
}

/// The predicted time of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTime {
    /// What the step is ([`crate::plan`]'s step, described as in the profile's labels).
    pub label: String,
    /// How it runs.
    pub kind: StepKind,
    /// Predicted seconds per call.
    pub seconds: f64,
    /// Multiply-adds (contractions; 0 otherwise).
    pub macs: f64,
    /// Elements written (maps, copies, contractions) or read (reductions).
    pub elements: f64,
    /// Loads and arithmetic operations per element (maps and reductions; 0 otherwise).
    pub ops: f64,
    /// Calls to [`crate::libm`] other than tanh per element, erf counting three (maps and
    /// reductions; 0 otherwise).
    pub libm_calls: f64,
    /// Inline exp and sigmoid per element, tanh counting two (outside strict mode; maps and
    /// reductions).
    pub inlined: f64,
    /// Calls of tanh per element (maps and reductions; 0 otherwise).
    pub tanh_calls: f64,
}

impl StepTime {
    /// The step's speed at `seconds` per call: 10⁹ FLOP/s (2 per multiply-add) for
    /// contractions, 10⁹ elements/s for other steps.
    pub fn giga_rate(&self, seconds: f64) -> f64 {
        let work = if self.kind.is_contraction() { 2.0 * self.macs } else { self.elements };
        if seconds > 0.0 { work / seconds / 1e9 } else { 0.0 }
    }
}

/// The predicted time of one call, step by step.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// One entry per step, in execution order (the indices of
    /// [`crate::Compiled::step_labels`]).
    pub steps: Vec<StepTime>,
}

impl Prediction {
    /// Predicted seconds per call.
    pub fn seconds(&self) -> f64 {
        self.steps.iter().map(|s| s.seconds).sum()
    }
}

/// The predicted time of a call of `f` compiled with `opts`, priced with
/// [`Throughputs::MEASURED`].
pub fn predict(f: &Function, opts: &Options) -> Result<Prediction, JitError> {
    predict_with(f, opts, &Throughputs::MEASURED)
}

/// [`predict`] with other throughputs.
pub fn predict_with(f: &Function, opts: &Options, t: &Throughputs) -> Result<Prediction, JitError> {
    jjt_ir::verify(f).map_err(JitError::Invalid)?;
    let plan = plan::plan_for(f, opts)?;
    let threads = if opts.threads == 0 { t.threads } else { opts.threads };
    // The host's FMA does not change which code is emitted, only its rounding.
    let policy = Policy { threads, ..Policy::with_fma(&Options { threads, ..*opts }, true) };
    let steps = plan.steps.iter().map(|s| step_time(s, &policy, t)).collect();
    Ok(Prediction { steps })
}

/// How the backend computes a contraction: the code generator's own choice
/// ([`crate::dot_path`]: the path, the bytes it packs, its products and blocks of K, whether it
/// splits across threads), as a step kind. This is the one place the cost model classifies a
/// contraction.
fn classify(s: &DotStep, policy: &Policy) -> (StepKind, DotPath) {
    let path = codegen::dot_path(s, policy);
    let kind = match path.kind {
        DotKind::Trivial => StepKind::Empty,
        DotKind::MatrixMultiply => StepKind::MatrixMultiply,
        DotKind::RuntimeLoops => StepKind::RuntimeLoops,
        DotKind::InlineVector => StepKind::InlineVector,
        DotKind::InlineScalar => StepKind::InlineScalar,
    };
    (kind, path)
}

pub(crate) fn step_time(step: &Step, policy: &Policy, t: &Throughputs) -> StepTime {
    let threads = policy.threads as f64;
    let split = 1.0 / (threads * t.parallel).max(1.0);
    let mut w = Work::default();
    let (kind, seconds, macs, elements) = match step {
        Step::Scatter(s) => {
            // Per update: the update and index expressions, the clamped row address (four
            // operations, as a gather's), a load, an add and a store, on scalars, one thread;
            // a destination row that is not contiguous is priced as strided accesses.
            let n = numel(&s.shape);
            w = Work::of(&s.updates, policy.inline_math);
            w.add(&s.index);
            w.ops += 7.0;
            let item = plan::item_size(s.dst.dtype) as f64;
            let strided = s.dst.strides.last().is_some_and(|&x| x != 0 && x != 1);
            let per = t.map_element
                + w.price(t)
                + w.gathers(&s.shape) * gather(t, n, item)
                + if strided { gather(t, n, item) } else { 0.0 };
            (StepKind::Map, n * per, 0.0, n)
        }
        Step::Dot(s) => {
            let (kind, path) = classify(s, policy);
            let p = Product::of(s);
            let macs = p.macs();
            let outs = numel(&s.shape);
            let item = plan::item_size(s.dst.dtype) as f64;
            // The runtime paths: packing copies (strided reads) and the copies of products
            // repeated along axes where neither operand moves.
            let packing = path.packed_bytes as f64 / t.copy_strided
                + outs * (1.0 - 1.0 / path.copies.max(1) as f64) * t.map_element;
            let par = if path.threaded { split } else { 1.0 };
            let secs = match kind {
                StepKind::Empty => 0.0,
                // Inline loops also store every output (an outer product is all stores).
                StepKind::InlineVector => macs / t.inline_vector + outs * t.map_element,
                StepKind::InlineScalar => {
                    let bytes = (numel(&s.lhs_shape) + numel(&s.rhs_shape)) * item;
                    let rate =
                        if bytes > CACHED_BYTES { t.inline_scalar_large } else { t.inline_scalar };
                    macs / rate + outs * t.map_element
                }
                StepKind::RuntimeLoops => {
                    (path.macs as f64 / t.runtime_loops + outs * t.map_element + packing) * par
                }
                _ => {
                    // Products of m×k by k×n: `products · k_blocks` calls, K cut in blocks;
                    // M and N as the canonical form gives them (at most the flattened ones).
                    let calls = (path.products.max(1) * path.k_blocks.max(1)) as f64;
                    let k = p.k as f64 / path.k_blocks.max(1) as f64;
                    let mn = (path.macs as f64 / calls / k.max(1.0)).max(1.0);
                    let m = (p.m as f64).min(mn).max(1.0);
                    let n = (mn / m).max(1.0);
                    let size = 3.0 / (1.0 / m + 1.0 / n + 1.0 / k.max(1.0));
                    let per = m * n * k;
                    let rate = t.gemm_peak * size / (size + t.gemm_half);
                    (calls * (t.gemm_call + per / rate) + packing) * par
                }
            };
            (kind, secs, macs, numel(&s.shape))
        }
        Step::Fused(f) => {
            // Priced as its two steps (one step's overhead); its kind is the contraction's.
            let first = match &f.producer {
                plan::Producer::Map(m) => step_time(&Step::Map(m.clone()), policy, t),
                plan::Producer::Dot { step, .. } => step_time(&Step::Dot(step.clone()), policy, t),
            };
            let dot = step_time(&Step::Dot(f.dot.clone()), policy, t);
            let secs = first.seconds + dot.seconds - 2.0 * t.step;
            (dot.kind, secs, dot.macs + first.macs, dot.elements)
        }
        Step::MatVecs(m) => {
            // The matrix once, each vector once per block of rows, the outputs.
            let p = &m.parts[0];
            let item = plan::item_size(p.dst.dtype) as f64;
            let parts = m.parts.len();
            let rmax = if parts > 1 { crate::matvec::ROWS_TWO } else { crate::matvec::ROWS_ONE };
            let blocks = p.rows.div_ceil(rmax);
            let elems = p.rows * p.k + parts * (blocks * p.k + p.rows);
            let macs = m.parts.iter().map(|q| q.macs() as f64).sum::<f64>();
            (StepKind::MatrixVector, elems as f64 * item / t.matvec, macs, (parts * p.rows) as f64)
        }
        Step::Map(MapStep { expr, shape, dst }) => {
            let n = numel(shape);
            let item = plan::item_size(dst.dtype) as f64;
            let par =
                if codegen::parallel_map(step, policy.threads).is_some() { split } else { 1.0 };
            if let Expr::Load(v) = expr {
                let bytes = 2.0 * n * plan::item_size(dst.dtype) as f64;
                let gather = shape.last().is_some_and(|&d| d > 1)
                    && v.strides.last().is_some_and(|&s| s != 1);
                let bw = match (gather, bytes / 2.0 > CACHED_BYTES) {
                    (false, _) => t.copy,
                    (true, false) => t.copy_strided,
                    (true, true) => t.copy_strided_large,
                };
                (StepKind::Copy, bytes / bw * par, 0.0, n)
            } else {
                w = Work::of(expr, policy.inline_math);
                let per = t.map_element + w.price(t) + w.gathers(shape) * gather(t, n, item);
                (StepKind::Map, n * per * par, 0.0, n)
            }
        }
        Step::Reduce(ReduceStep { expr, shape, axes, .. }) => {
            let n = numel(shape);
            w = Work::of(expr, policy.inline_math);
            let inner = axes.last().is_some_and(|&a| a + 1 == shape.len());
            let base = if inner { t.reduce_element } else { t.reduce_outer };
            // The base cost includes one load.
            let item = plan::item_size(expr_dtype(expr)) as f64;
            let per = base + w.price(t) - t.map_op + w.gathers(shape) * gather(t, n, item);
            let par = if codegen::parallel_reduce(step, policy.threads, policy.summation).is_some()
            {
                split
            } else {
                1.0
            };
            (StepKind::Reduce, n * per * par, 0.0, n)
        }
    };
    let how = match kind {
        StepKind::MatrixMultiply => " (matrix multiply)",
        StepKind::InlineVector => " (inline, vectors)",
        StepKind::RuntimeLoops => " (runtime dot loops)",
        StepKind::InlineScalar => " (inline, scalar)",
        StepKind::MatrixVector => " (matrix–vector kernel)",
        StepKind::Empty | StepKind::Map | StepKind::Reduce => "",
        StepKind::Copy => " (copy)",
    };
    StepTime {
        label: format!("{}{how}", codegen::describe(step)),
        kind,
        seconds: t.step + seconds,
        macs,
        elements,
        ops: w.ops,
        libm_calls: w.calls,
        tanh_calls: w.tanh,
        inlined: w.inlined,
    }
}

/// Seconds per element a load pays for gathering along a strided innermost axis: a strided
/// copy's time per element (read and write, so about the read's), at the bandwidth for `n`
/// elements of `item` bytes.
fn gather(t: &Throughputs, n: f64, item: f64) -> f64 {
    let bw = if n * item > CACHED_BYTES { t.copy_strided_large } else { t.copy_strided };
    2.0 * item / bw
}

/// The element type an expression reads (its first load's; f32 if it loads nothing).
fn expr_dtype(e: &Expr) -> jjt_ir::DType {
    e.views().first().map_or(jjt_ir::DType::F32, |v| v.dtype)
}

fn numel(shape: &[usize]) -> f64 {
    shape.iter().map(|&d| d as f64).product()
}

/// A contraction as batched matrix products: `calls` products of M×K by K×N.
struct Product {
    calls: usize,
    m: usize,
    n: usize,
    k: usize,
}

impl Product {
    fn of(s: &DotStep) -> Product {
        let d = &s.dims;
        let lfree =
            jjt_ir::ops::DotGeneral::free_axes(s.lhs_shape.len(), &d.lhs_contract, &d.lhs_batch);
        let rfree =
            jjt_ir::ops::DotGeneral::free_axes(s.rhs_shape.len(), &d.rhs_contract, &d.rhs_batch);
        let prod = |shape: &[usize], axes: &[usize]| axes.iter().map(|&a| shape[a]).product();
        Product {
            calls: prod(&s.lhs_shape, &d.lhs_batch),
            m: prod(&s.lhs_shape, &lfree),
            n: prod(&s.rhs_shape, &rfree),
            k: prod(&s.lhs_shape, &d.lhs_contract),
        }
    }

    fn macs(&self) -> f64 {
        self.calls as f64 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// Operations per element of a fused expression.
#[derive(Default)]
struct Work {
    /// Loads and arithmetic operations.
    ops: f64,
    /// Calls to [`crate::libm`] other than tanh.
    calls: f64,
    /// Calls of tanh.
    tanh: f64,
    /// Inline exp and sigmoid, tanh counting two.
    inlined: f64,
    /// Whether exp, sigmoid and tanh are inline (not strict).
    inline_math: bool,
    /// Loads whose innermost stride is neither 0 nor 1.
    strided_loads: f64,
}

impl Work {
    fn of(e: &Expr, inline_math: bool) -> Work {
        let mut w = Work { inline_math, ..Work::default() };
        w.add(e);
        w
    }

    /// Loads of `e` that gather: the innermost axis of `shape` is longer than 1 and the
    /// load's stride along it is neither 0 (a broadcast) nor 1.
    fn gathers(&self, shape: &[usize]) -> f64 {
        if shape.last().is_some_and(|&d| d > 1) { self.strided_loads } else { 0.0 }
    }

    /// Seconds per element for the operations and calls.
    fn price(&self, t: &Throughputs) -> f64 {
        t.map_op * self.ops
            + t.libm_call * self.calls
            + t.tanh_call * self.tanh
            + t.inline_math * self.inlined
    }

    fn add(&mut self, e: &Expr) {
        match e {
            Expr::Scalar(..) => {}
            Expr::Load(v) => {
                self.ops += 1.0;
                if v.strides.last().is_some_and(|&s| s != 0 && s != 1) {
                    self.strided_loads += 1.0;
                }
            }
            Expr::Unary(u, a) => {
                self.ops += 1.0;
                if self.inline_math && codegen::inline(*u) {
                    self.inlined += if *u == Unary::Tanh { 2.0 } else { 1.0 };
                } else if *u == Unary::Tanh {
                    self.tanh += 1.0;
                } else {
                    self.calls += libm_calls(*u);
                }
                self.add(a);
            }
            Expr::Binary(b, x, y) => {
                self.ops += 1.0;
                if *b == Binary::Pow {
                    self.calls += 1.0;
                }
                self.add(x);
                self.add(y);
            }
            Expr::Compare(_, x, y, _) => {
                self.ops += 1.0;
                self.add(x);
                self.add(y);
            }
            Expr::Select(p, x, y) => {
                self.ops += 1.0;
                self.add(p);
                self.add(x);
                self.add(y);
            }
            Expr::Convert(_, _, a) => {
                self.ops += 1.0;
                self.add(a);
            }
            // Clamp (max, min), scale and add the row, load: four operations; the load is a
            // strided one only if the row itself is (rows are read along the innermost axis).
            Expr::Gather { table, index, .. } => {
                self.ops += 4.0;
                if table.strides.last().is_some_and(|&s| s != 0 && s != 1) {
                    self.strided_loads += 1.0;
                }
                self.add(index);
            }
        }
    }
}

/// Calls to [`crate::libm`] a unary op makes per element (as `codegen::expr` emits it), in
/// units of an exp call: erf's one call counts three (musl's erf, a rational approximation
/// times two exps beyond |x| = 1.25, took 10.1 ns per f32 element against 3.6 ns for exp, in a
/// loop of 2²⁰ calls on the development machine).
fn libm_calls(u: Unary) -> f64 {
    match u {
        Unary::Exp
        | Unary::Log
        | Unary::Log1p
        | Unary::Expm1
        | Unary::Sin
        | Unary::Cos
        | Unary::Tanh
        | Unary::Sigmoid => 1.0,
        Unary::Softplus => 2.0,
        Unary::Erf => 3.0,
        Unary::Neg
        | Unary::Abs
        | Unary::Sqrt
        | Unary::Rsqrt
        | Unary::Recip
        | Unary::Square
        | Unary::Relu => 0.0,
    }
}
