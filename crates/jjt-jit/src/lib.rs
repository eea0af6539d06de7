//! jjt's backend: native code for any graph, with Cranelift.
//!
//! [`compile`] plans a [`Function`](jjt_ir::Function) into loop steps over strided buffers
//! ([`plan`]), places the scratch buffers in one arena ([`arena`]), lowers everything to
//! Cranelift IR (`codegen`, one module per step kind), and returns a [`Compiled`] handle. The
//! handle owns its JIT memory, checks argument types, is `Send + Sync`, and gives each
//! concurrent caller its own arena.
//!
//! | module | what |
//! |---|---|
//! | `compile` | [`compile_with`]: ISA, JIT module, the entry point and row functions |
//! | `codegen` | Cranelift IR per step: loops, expressions, map, reduce, dot strategies |
//! | `imports` | the runtime functions generated code calls, by symbol |
//! | `handle` | [`Compiled`]: calling, argument checks, arenas |
//! | [`cost`] | [`predict`]: the time of a call, step by step, without generating code |
//! | `error`, `options` | [`JitError`], [`Options`] |
//! | `contract` | the runtime contraction: any large `dot_general` as packed, K-blocked, threaded matrix products ([`dot_path`] says which path a step takes) |
//! | [`matvec`] | matrix–vector products, those sharing a matrix in one pass over it (a plan pass and its AVX-512 kernel) |
//! | [`gemm`], `pool` | the matrix multiply's thresholds and the helper threads that split work |
//! | [`libm`], `profile` | transcendental functions, step timing |
//! | `codegen::math` | fast mode's inline `exp`, `tanh`, `sigmoid` ([`INLINE_MATH_ULPS`]) |
//!
//! This is the only crate of the workspace with `unsafe` code: the one conversion from the
//! JIT's code pointer to a function pointer, the calls through it, freeing the code memory,
//! and the runtime functions the generated code calls with raw buffer pointers (the runtime
//! contraction in `contract`, the row runner in `pool`, which hand disjoint parts of one output to
//! other threads); each block states why it is sound.

#![warn(missing_docs)]

pub mod arena;
mod codegen;
mod compile;
mod contract;
pub mod cost;
mod error;
pub mod fuse;
pub mod gemm;
mod handle;
mod imports;
pub mod libm;
pub mod matvec;
mod options;
pub mod plan;
mod pool;
mod profile;

pub use compile::{compile, compile_with};
pub use contract::{DIRECT_MIN_ROWS, DotKind, DotPath, KB};
pub use cost::{Prediction, StepKind, StepTime, Throughputs, predict, predict_with};
pub use error::JitError;
pub use handle::Compiled;
pub use options::{MAX_BYTES, Options};
#[doc(hidden)]
pub use pool::{InjectedPanic, inject_panic};
pub use profile::take_profile;

/// Outside strict mode `exp`, `tanh` and `sigmoid` are inline arithmetic, which runs on
/// vectors, instead of calls to [`libm`]: each result is within this many units in the last
/// place of the exact value (of the interpreter's formula, for sigmoid), in f32 and f64, and
/// special values (±0, ±∞, NaN, overflow, underflow) come out as libm's do. The bound is derived
/// and tested in `tests/math.rs`.
pub const INLINE_MATH_ULPS: f64 = 4.0;

/// Which path contraction step `s` takes when compiled with `opts` (see [`DotPath`]): inline
/// vector code, the runtime contraction's dot loops or its matrix multiply, what it packs, how
/// many products and blocks of K, whether it splits across threads. The host's FMA does not
/// change the path.
pub fn dot_path(s: &plan::DotStep, opts: &Options) -> DotPath {
    codegen::dot_path(s, &codegen::Policy::with_fma(opts, false))
}
