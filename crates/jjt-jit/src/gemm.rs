//! The thresholds of the matrix multiply (the `matrixmultiply` crate), which the runtime
//! contraction (`contract`) calls for each block of a large contraction.
//!
//! A contraction takes the matrix-multiply path when one product's M·N·K reaches
//! [`GEMM_THRESHOLD`] (or all its products together reach [`BATCHED_GEMM_TOTAL`]) and its M
//! and N reach [`GEMM_MIN_MN`] (whatever its strides: operands
//! whose axes do not chain are packed); smaller ones are emitted inline with SIMD, or run in
//! the runtime contraction's vectorised dot loops when no inline vector form applies. The
//! thresholds are measured with `cargo run --release -p jjt-jit --example gemm_threshold`.
//!
//! **matrixmultiply or gemm.** Both crates were measured on this machine (AMD EPYC with
//! AVX-512, f32, row-major, median of 15 calls, µs):
//!
//! | M×K×N | matrixmultiply | gemm, 1 thread | gemm, 2 threads |
//! |---|---|---|---|
//! | 32×784×512 | 585 | 433 | 325 |
//! | 320×512×512 | 1206 | 1961 | 2251 |
//! | 32×512×512 | 203 | 226 | 357 |
//! | 64×64×64 | 7.5 | 6.5 | 6.2 |
//! | 16×512×16 | 7.8 | 2.9 | 2.8 |
//!
//! Neither wins everywhere; `gemm` is faster on small and skinny products, `matrixmultiply` on
//! the large square ones, and above the thresholds (where only large products arrive) the two
//! are within 1.4× of each other. `matrixmultiply` is used: it is small, pure Rust, and builds
//! in seconds.

/// Multiply-adds from which a contraction calls the matrix multiply instead of inline loops.
pub const GEMM_THRESHOLD: usize = 1 << 15;

/// The smaller of M and N from which the matrix multiply pays off: below it the inline loops
/// (vectorised over the output or along K) win, because the library packs both operands.
/// Measured with `cargo run --release -p jjt-jit --example gemm_threshold` on this machine
/// (Intel Xeon with AVX-512, 2 cores, f32, median µs inline / through the runtime contraction's
/// matrix multiply, 2 threads):
///
/// | M×K×N | inline | matrix multiply |
/// |---|---|---|
/// | 5×10000×5 | 76 | (inline: M, N < 8) |
/// | 8×512×8 | 4.0 | 4.7 |
/// | 16×512×16 | 8.0 | 3.6 |
/// | 32×64×32 | 4.3 | 1.4 |
/// | 64×64×64 | 19.3 | 4.1 |
/// | 32×784×512 | 1212 | 209 |
/// | 320×512×512 | 5258 | 1026 |
///
/// At 8 the two are within 20 %; from 16 the matrix multiply wins by 2× and more.
pub const GEMM_MIN_MN: usize = 8;

/// Multiply-adds from which a matrix multiply is split across threads. Below it the cost of
/// waking a pool thread (a few microseconds) is not repaid; above it each half still runs
/// for ≥ 40 µs on this machine.
pub const PAR_THRESHOLD: usize = 1 << 22;

/// The smallest extent (rows of A or columns of B) a thread's share is cut to: a multiple of
/// the micro-kernels' register tiles, so a split never leaves a ragged tile on both sides.
pub(crate) const PAR_GRAIN: usize = 32;

/// Multiply-adds of all the products of a batched contraction from which products below
/// [`GEMM_THRESHOLD`] call the matrix multiply too, when each has at least
/// [`BATCHED_GEMM_MIN`]: the call's overhead is then repaid product by product, and the
/// products are shared among threads. On the zoo's embedding model (`jjt bench --profile`)
/// 320 products of 32×64×10 took 4.9 ms inline (vectors of four over the 10 outputs, a scalar
/// tail) and 0.63 ms so; no other contraction of the zoo changed path.
pub const BATCHED_GEMM_TOTAL: usize = 1 << 20;

/// The fewest multiply-adds per product of a batched contraction that calls the matrix
/// multiply ([`BATCHED_GEMM_TOTAL`]).
pub const BATCHED_GEMM_MIN: usize = 1 << 12;
