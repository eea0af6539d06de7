//! Errors of the transforms.

use jjt_ir::tensor::TensorShapeError;
use jjt_ir::{DType, IrError, TensorType};

/// Why a transform could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdError {
    /// A rule or the builder failed (with the op and types).
    #[error("{0}")]
    Ir(#[from] IrError),
    /// A `wrt` (or `shared`) name that is not an input of the function.
    #[error("`{name}` is not an input of `{function}`; its inputs are: {inputs}{}", hint.as_ref().map_or(String::new(), |h| format!("; {h}")))]
    UnknownInput {
        /// The name given.
        name: String,
        /// The function.
        function: String,
        /// Its inputs, `name: type` separated by commas.
        inputs: String,
        /// "did you mean `w0`?" for the closest input name, when one is close.
        hint: Option<String>,
    },
    /// A `wrt` glob pattern that matches no floating-point input.
    #[error(
        "`{pattern}` matches no floating-point input of `{function}`; its inputs are: {inputs}"
    )]
    NoMatch {
        /// The pattern given.
        pattern: String,
        /// The function.
        function: String,
        /// Its inputs, `name: type` separated by commas.
        inputs: String,
    },
    /// Differentiating with respect to a non-float input.
    #[error(
        "cannot differentiate with respect to `{name}`: it has dtype {dtype}; only f32 and f64 inputs have tangents (a glob such as `*` skips the others)"
    )]
    NotFloat {
        /// The input.
        name: String,
        /// Its dtype.
        dtype: DType,
    },
    /// Kernels of a non-float output.
    #[error("`{function}` returns {ty}; kernels need a floating-point (f32 or f64) output")]
    OutputNotFloat {
        /// The function.
        function: String,
        /// Its output type.
        ty: TensorType,
    },
    /// `wrt` is empty.
    #[error("no inputs to differentiate with respect to: give at least one `wrt` name")]
    NoWrt,
    /// Transforms that need one output got several.
    #[error("`{function}` has {outputs} outputs; kernels need a function with one output")]
    OutputCount {
        /// The function.
        function: String,
        /// Its outputs.
        outputs: usize,
    },
    /// A batched argument whose batch axis does not have the batch size.
    #[error(
        "batched argument #{index} has size {actual} on axis {axis}, expected the batch size {expected}"
    )]
    BatchSize {
        /// Argument position.
        index: usize,
        /// Its batch axis.
        axis: usize,
        /// The batch size.
        expected: usize,
        /// The size found.
        actual: usize,
    },
    /// `in_axes` does not match the inputs.
    #[error("{0}")]
    InAxes(String),
    /// Example-diagonal kernels pair example b of side 1 with example b of side 2.
    #[error("example-diagonal kernels need equal batch sizes, got {b1} and {b2}")]
    DiagonalBatch {
        /// Side 1's batch.
        b1: usize,
        /// Side 2's batch.
        b2: usize,
    },
    /// Argument types for a kernel that do not match the function.
    #[error(
        "input `{name}` on side {side}: expected {expected} (or with one leading batch axis), got {actual}"
    )]
    SideType {
        /// The input.
        name: String,
        /// 1 or 2.
        side: u8,
        /// The function's input type.
        expected: TensorType,
        /// What was given.
        actual: TensorType,
    },
    /// Per-side inputs batched inconsistently.
    #[error("per-side inputs must all be batched with one batch size per side: {0}")]
    Batching(String),
    /// An input of the function being replayed has no node bound to it (`transpose_into`'s
    /// `known`, `jvp_into`'s `primals`, ... shorter than the signature or `None` there).
    #[error("input #{index} of `{function}` is not bound to a value")]
    UnboundInput {
        /// The function.
        function: String,
        /// The input's position in its signature.
        index: usize,
    },
    /// An output of the function is not a node of its graph (a hand-made, unverified function).
    #[error("output #{index} of `{function}` is not a node of its graph")]
    MissingOutput {
        /// The function.
        function: String,
        /// The output's position.
        index: usize,
    },
    /// `transpose` got a different number of linearity flags than the function has inputs.
    #[error("{flags} linearity flags for the {inputs} inputs of `{function}`")]
    LinearityFlags {
        /// The function.
        function: String,
        /// Flags given.
        flags: usize,
        /// Its inputs.
        inputs: usize,
    },
    /// An `npy` constant whose values could not be rebuilt in f64.
    #[error("npy constant `{path}` cannot be promoted to f64: {source}")]
    Promote {
        /// The constant's file.
        path: String,
        /// Why.
        source: TensorShapeError,
    },
}
