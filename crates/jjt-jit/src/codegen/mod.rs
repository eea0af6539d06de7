//! Lowering a [`Plan`](crate::plan::Plan) to Cranelift IR: one function per graph with the
//! fixed C ABI
//! `fn(inputs: *const *const u8, outputs: *const *mut u8, arena: *mut u8, consts: *const *const u8)`.
//!
//! Every step is a loop nest over a static index space (`loops`). Addresses are
//! `base + (offset + Σ index·stride)·size`; all memory accesses are unaligned-tolerant
//! (`notrap` without `aligned`), so buffers at any address work. No instruction that can trap
//! is emitted: no integer division, no float-to-int conversion.
//!
//! One module per step kind: `map` (elementwise; the innermost loop runs on f32x4 / f64x2
//! vectors when every value it reads advances by 0 or 1 element along that axis and it calls
//! no function, a scalar loop handles the remainder), `reduce`, and `dot` (contractions, with
//! one function choosing among the strategies). `expr` evaluates a fused expression, scalar or
//! vector. Reductions and contractions accumulate in the interpreter's order, the blocked
//! pairwise order of [`jjt_ir::sum`] (bit-identical), unless a reassociating form is used
//! outside strict mode: vector accumulators with a horizontal sum (per block of 128 terms for
//! reductions), FMA when the host has it, the matrix multiply.

mod dot;
pub(crate) use dot::INLINE_MAX_K;
mod expr;
mod fused;
mod loops;
mod map;
mod math;
mod matvec;
mod reduce;
mod scatter;

use std::collections::HashMap;

use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::FunctionBuilder;
use jjt_ir::DType;

pub(crate) use dot::dot_path;
pub(crate) use expr::inline;
pub(crate) use map::parallel_map;
pub(crate) use reduce::parallel_reduce;

use crate::imports::Imports;
use crate::plan::{Buf, DotStep, MapStep, ReduceStep, ScatterStep, Step, View};
use crate::{JitError, Options};

/// How `acc + x·y` rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mac {
    /// One rounding (an FMA instruction).
    Fused,
    /// A rounded product, then a rounded sum (the interpreter's arithmetic).
    Separate,
}

/// The order in which a contraction may sum its products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Summation {
    /// The interpreter's order, so results are bit-identical ([`Options::strict`]).
    InOrder,
    /// Any order (vector accumulators along the contracted axis, the matrix multiply).
    Reassociate,
}

/// Whether large contractions call the matrix multiply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GemmUse {
    /// Above the thresholds in [`crate::gemm`].
    Call,
    /// Never (strict mode, [`Options::no_gemm`]).
    Never,
}

/// What the generated code may do, from the options and the host.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// How the vector forms of a contraction multiply-add: fused when the host has FMA and
    /// the mode is not strict.
    pub mac: Mac,
    /// Whether contractions may reassociate their sums.
    pub summation: Summation,
    /// Whether large contractions call the matrix multiply.
    pub gemm: GemmUse,
    /// Threads one matrix multiply or elementwise step may use (≥ 1).
    pub threads: usize,
    /// The memory budget ([`Options::max_bytes`] resolved), which also bounds the runtime
    /// contraction's packing scratch.
    pub budget: u64,
    /// Whether `exp`, `tanh` and `sigmoid` are inline arithmetic (`math`), which vectorises,
    /// rather than calls to [`crate::libm`] (not strict).
    pub inline_math: bool,
}

impl Policy {
    /// The policy for `opts` on the host `isa`.
    pub fn new(opts: &Options, isa: &dyn TargetIsa) -> Policy {
        Policy::with_fma(opts, isa.has_native_fma())
    }

    /// The policy for `opts` on a host that has FMA or not.
    pub fn with_fma(opts: &Options, fma: bool) -> Policy {
        let (mac, summation) = if opts.strict {
            (Mac::Separate, Summation::InOrder)
        } else {
            (if fma { Mac::Fused } else { Mac::Separate }, Summation::Reassociate)
        };
        let gemm = if opts.strict || opts.no_gemm { GemmUse::Never } else { GemmUse::Call };
        Policy {
            mac,
            summation,
            gemm,
            threads: opts.gemm_threads(),
            budget: opts.budget(),
            inline_math: !opts.strict,
        }
    }
}

/// How values are evaluated: one element, or a vector of lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Scalar,
    Vector,
}

/// The state of lowering steps into one Cranelift function.
pub(crate) struct Cg<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    /// The base address of every buffer.
    bases: HashMap<Buf, Value>,
    imports: Imports,
    policy: Policy,
    /// The axis (of the views' index space) that vector lanes run along.
    vaxis: usize,
    /// Inside a loop along `axis`: the address of each view at index 0 of that axis (computed
    /// once per row, before the loop), so the loop body adds one product per access.
    rows: Option<(usize, Vec<(View, Value)>)>,
    /// Inside a row of a vectorised elementwise step: each view the expression loads that
    /// stays put along the row (stride 0 along `vaxis`), loaded and splat once per row.
    splats: Vec<(View, Value)>,
    /// How the last step was emitted (for the profile's step labels).
    pub how: String,
    /// The runtime contractions' descriptors, whose addresses the code passes: the compiled
    /// handle keeps them for as long as the code lives.
    #[expect(
        clippy::vec_box,
        reason = "the code holds each descriptor's address: boxes never move"
    )]
    pub descriptors: Vec<Box<crate::contract::Descriptor>>,
}

/// A short description of a step: its kind, the destination's type and, for contractions, the
/// operand shapes.
pub(crate) fn describe(step: &Step) -> String {
    let dims = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
    match step {
        Step::Map(MapStep { dst, shape, .. }) => format!("map {}[{}]", dst.dtype, dims(shape)),
        Step::Reduce(ReduceStep { dst, shape, axes, .. }) => {
            format!("reduce {}[{}] over axes {axes:?}", dst.dtype, dims(shape))
        }
        Step::Scatter(ScatterStep { dst, shape, rows, .. }) => {
            format!("scatter_add {}[{}] into {rows} rows", dst.dtype, dims(shape))
        }
        Step::Dot(DotStep { dst, shape, lhs_shape, rhs_shape, .. }) => format!(
            "dot {}[{}]·[{}] -> [{}]",
            dst.dtype,
            dims(lhs_shape),
            dims(rhs_shape),
            dims(shape)
        ),
        Step::Fused(f) => describe(&Step::Dot(f.dot.clone())),
        Step::MatVecs(m) => {
            let p = &m.parts[0];
            format!(
                "matvec {}[{},{}]·{}×[{}] -> {}×[{}]",
                p.dst.dtype,
                p.rows,
                p.k,
                m.parts.len(),
                p.k,
                m.parts.len(),
                p.rows
            )
        }
    }
}

fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn scalar_ty(d: DType) -> Type {
    match d {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::I32 => types::I32,
        DType::Bool => types::I8,
    }
}

fn vec_ty(d: DType) -> Type {
    match d {
        DType::F64 => types::F64X2,
        // Integer expressions run on scalars only (`expr::vectorizable`).
        DType::F32 | DType::I32 | DType::Bool => types::F32X4,
    }
}

fn lanes(d: DType) -> usize {
    if d == DType::F64 { 2 } else { 4 }
}

fn mask_ty(d: DType) -> Type {
    if d == DType::F64 { types::I64X2 } else { types::I32X4 }
}

impl<'a, 'b> Cg<'a, 'b> {
    /// Lower into `b`, whose buffers start at `bases`.
    pub fn new(
        b: &'a mut FunctionBuilder<'b>,
        bases: HashMap<Buf, Value>,
        imports: Imports,
        policy: Policy,
    ) -> Self {
        Cg {
            b,
            bases,
            imports,
            policy,
            vaxis: 0,
            rows: None,
            splats: Vec::new(),
            how: String::new(),
            descriptors: Vec::new(),
        }
    }

    fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    fn fconst(&mut self, d: DType, v: f64) -> Value {
        match d {
            DType::F32 => self.b.ins().f32const(v as f32),
            DType::F64 => self.b.ins().f64const(v),
            DType::I32 => self.b.ins().iconst(types::I32, i64::from(v as i32)),
            DType::Bool => self.b.ins().iconst(types::I8, i64::from(v != 0.0)),
        }
    }

    fn store(&mut self, v: Value, dst: &View, idx: &[Value]) {
        let a = self.addr(dst, idx);
        self.b.ins().store(flags(), v, a, 0);
    }

    /// With profiling on: the clock mark after step `k` (-1: on entry).
    pub fn profile_mark(&mut self, k: i64) {
        if let Some(f) = self.imports.profile {
            let k = self.iconst(k);
            self.b.ins().call(f, &[k]);
        }
    }

    /// Emit one step.
    pub fn step(&mut self, s: &Step) -> Result<(), JitError> {
        self.how.clear();
        match s {
            Step::Map(m) => self.map(m),
            Step::Reduce(r) => self.reduce(r),
            Step::Dot(d) => self.dot(d),
            Step::Scatter(s) => self.scatter(s),
            Step::MatVecs(m) => {
                self.matvecs(m);
                Ok(())
            }
            // Compiled into its row function, which the entry calls (`crate::compile`).
            Step::Fused(_) => {
                Err(JitError::Codegen("a fused step outside its row function".into()))
            }
        }
    }
}
