//! Error types of the IR layer. Every message says what is wrong and what was expected.

use std::fmt;

use crate::graph::NodeId;
use crate::ops::Arity;
use crate::types::{DType, Shape, TensorType};
use crate::verify::VerifyErrors;

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Fixed(n) => write!(f, "{n}"),
            Arity::AtLeast(n) => write!(f, "at least {n}"),
        }
    }
}

/// Why operands do not fit an op (shape and dtype inference).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    /// Wrong number of operands.
    #[error("takes {arity} operands, got {got}")]
    Arity {
        /// Accepted count.
        arity: Arity,
        /// Given count.
        got: usize,
    },
    /// Operands that must share a dtype do not.
    #[error("operand dtypes differ: {0} and {1}")]
    DTypeMismatch(DType, DType),
    /// Operands that must share a shape do not.
    #[error("operand shapes differ: {0} and {1}")]
    ShapeMismatch(Shape, Shape),
    /// A float operand was expected.
    #[error("needs floating-point operands, got {0}")]
    NotFloat(DType),
    /// A bool operand was expected.
    #[error("needs a bool predicate, got {0}")]
    NotBool(DType),
    /// An axis outside `-rank..rank`.
    #[error("axis {axis} is out of range for rank {rank}")]
    Axis {
        /// The axis given.
        axis: i64,
        /// Rank of the operand.
        rank: usize,
    },
    /// Shapes that do not broadcast under NumPy's rules.
    #[error("shapes {0} and {1} do not broadcast")]
    Broadcast(Shape, Shape),
    /// A result with more elements than `usize` can count.
    #[error("result shape {0} has too many elements")]
    TooLarge(Shape),
    /// Indices (of `gather`, `scatter_add`) that are not `i32`.
    #[error("indices must be i32, got {0}")]
    NotIndex(DType),
    /// An indexed axis that no `i32` index can address: empty while there are indices, or
    /// longer than `i32::MAX`.
    #[error(
        "an indexed axis of size {size} cannot be addressed by {indices} i32 indices (it needs 1 to 2147483647 entries)"
    )]
    IndexedAxis {
        /// Size of the indexed axis.
        size: usize,
        /// Number of indices.
        indices: usize,
    },
    /// `scatter_add` updates whose axes from `axis` on do not start with the indices' shape.
    #[error(
        "scatter_add updates of shape {updates} need the indices' shape {indices} at axis {axis}"
    )]
    ScatterUpdates {
        /// Shape of the updates.
        updates: Shape,
        /// Shape of the indices.
        indices: Shape,
        /// The `axis` attribute.
        axis: usize,
    },
    /// `reverse` axes that are not distinct.
    #[error("reverse axes {} are not distinct", Shape(.0.clone()))]
    ReverseAxes(Vec<usize>),
    /// A `reduce_window` whose attributes do not fit its operand.
    #[error("{0}")]
    Window(String),
    /// `patches` axes that are not distinct.
    #[error("patches axes {} are not distinct", Shape(.0.clone()))]
    PatchesAxes(Vec<usize>),
    /// A `patches` attribute with an entry of 0.
    #[error("patches `{0}` entries must be at least 1")]
    PatchesZero(&'static str),
    /// A `patches` attribute whose length is not the number of axes.
    #[error("patches `{attr}` has {got} entries for {axes} axes")]
    PatchesLength {
        /// The attribute.
        attr: &'static str,
        /// Its length.
        got: usize,
        /// The number of window axes.
        axes: usize,
    },
    /// A `conv` whose operands or attributes do not fit.
    #[error("conv: {0}")]
    Conv(ConvError),
    /// A per-axis attribute (`perm`, `start`, `lo`, ...) whose length is not the operand's rank.
    #[error("`{attr}={}` has {} entries for an operand of rank {rank} (one per axis)", Shape(value.clone()), value.len())]
    AttrLength {
        /// The attribute's name.
        attr: &'static str,
        /// Its value.
        value: Vec<usize>,
        /// Rank of the operand.
        rank: usize,
    },
    /// A `transpose` whose `perm` is not a permutation of the operand's axes.
    #[error("perm {} is not a permutation of 0..{rank}", Shape(perm.clone()))]
    Perm {
        /// The permutation given.
        perm: Vec<usize>,
        /// Rank of the operand.
        rank: usize,
    },
    /// A `slice` whose bounds on one axis do not fit the operand.
    #[error(
        "axis {axis}: slice {start}:{stop}:{step} does not fit size {size} (need 0 <= start <= stop <= size, step >= 1)"
    )]
    SliceBounds {
        /// The axis.
        axis: usize,
        /// First index.
        start: usize,
        /// One past the last index.
        stop: usize,
        /// Stride.
        step: usize,
        /// The operand's size along the axis.
        size: usize,
    },
    /// A `reshape` to a shape with another number of elements.
    #[error("cannot reshape {from} ({} elements) to {to}", from.numel())]
    ReshapeSize {
        /// The operand's shape.
        from: Shape,
        /// The target shape.
        to: Shape,
    },
    /// `concat` operands whose shapes differ on an axis other than the joined one (or in rank).
    #[error("shapes {first} and {other} differ outside axis {axis}")]
    ConcatShapes {
        /// The first operand's shape.
        first: Shape,
        /// The shape that does not agree with it.
        other: Shape,
        /// The joined axis.
        axis: usize,
    },
    /// A `concat` with no operands.
    #[error("needs at least one operand")]
    NoOperands,
    /// Reduction axes (as stored in a built op) that are not sorted and distinct.
    #[error("axes {} must be sorted and distinct", Shape(axes.clone()))]
    UnsortedAxes {
        /// The axes given.
        axes: Vec<usize>,
    },
    /// An axis named twice in a reduction's `axes` (after negative axes are resolved).
    #[error("axis {axis} is given twice in axes")]
    RepeatedAxis {
        /// The axis (non-negative).
        axis: usize,
    },
    /// A `dot_general` operand axis that is both contracted and batch, or named twice.
    #[error("{side} axis {axis} is used twice")]
    DotAxisReused {
        /// `lhs` or `rhs`.
        side: &'static str,
        /// The axis.
        axis: usize,
    },
    /// `dot_general` axis lists that do not come in pairs.
    #[error(
        "contract and batch axes must come in pairs: contract has {} lhs and {} rhs axes, batch {} and {}",
        contract.0, contract.1, batch.0, batch.1
    )]
    UnpairedAxes {
        /// Lengths of the lhs and rhs contracted-axis lists.
        contract: (usize, usize),
        /// Lengths of the lhs and rhs batch-axis lists.
        batch: (usize, usize),
    },
    /// A pair of `dot_general` axes (contracted or batch) of different sizes.
    #[error(
        "{kind} axes differ in size: lhs axis {lhs_axis} has {lhs_size} but rhs axis {rhs_axis} has {rhs_size}"
    )]
    PairedSizes {
        /// `contracted` or `batch`.
        kind: &'static str,
        /// The lhs axis.
        lhs_axis: usize,
        /// Its size.
        lhs_size: usize,
        /// The paired rhs axis.
        rhs_axis: usize,
        /// Its size.
        rhs_size: usize,
    },
    /// `matmul` of a scalar.
    #[error("matmul needs operands of rank >= 1, not scalars")]
    MatmulScalar,
    /// `matmul` operands whose contracted sizes differ.
    #[error("contracted sizes differ: {lhs} has {cols} columns, {rhs} has {rows} rows")]
    MatmulSizes {
        /// The left operand's shape.
        lhs: Shape,
        /// Its number of columns (last axis).
        cols: usize,
        /// The right operand's shape.
        rhs: Shape,
        /// Its number of rows (first axis of a vector, second to last otherwise).
        rows: usize,
    },
    /// A literal constant with the wrong number of values.
    #[error("constant of type {ty} needs {expected} values, got {got}")]
    ConstLength {
        /// The constant's type.
        ty: TensorType,
        /// Values its shape needs.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// An `eye` constant of a rank other than 2.
    #[error("eye needs a rank-2 type, got {0}")]
    EyeRank(TensorType),
    /// A random constant reaching past the draws one stream may give.
    #[error("offset {offset} plus {draws} draws exceeds the limit of {limit} draws per stream")]
    TooManyDraws {
        /// Draws skipped before this constant.
        offset: u64,
        /// Draws this constant takes.
        draws: usize,
        /// The limit per stream.
        limit: u64,
    },
}

/// Errors from building graphs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IrError {
    /// Operands do not fit the op.
    #[error("{op}: {source} (operand types: {})", list_types(operands))]
    Type {
        /// Op name.
        op: &'static str,
        /// Operand types.
        operands: Vec<TensorType>,
        /// What is wrong.
        #[source]
        source: TypeError,
    },
    /// Two inputs with the same name.
    #[error("input `{0}` is declared twice")]
    DuplicateInput(String),
    /// A name that is not an identifier.
    #[error(
        "`{0}` is not a valid name (letters, digits and `_`, not starting with a digit; segments joined by `.`)"
    )]
    BadName(String),
    /// A node handle from another graph.
    #[error("node {0} does not belong to this graph")]
    UnknownNode(NodeId),
    /// A `.npy` constant could not be read.
    #[error("npy constant `{path}`: {source}")]
    Npy {
        /// Path as written.
        path: String,
        /// What went wrong.
        #[source]
        source: jjt_npy::NpyError,
    },
    /// A `.npy` constant whose file does not have the declared type.
    #[error("npy constant `{path}`: declared {declared}, but the file holds {actual}")]
    NpyType {
        /// Path as written.
        path: String,
        /// Type written in the graph.
        declared: TensorType,
        /// Type in the file.
        actual: TensorType,
    },
    /// A constant whose data does not match its type.
    #[error("constant of type {ty} needs {expected} values, got {actual}")]
    ConstLength {
        /// The constant's type.
        ty: TensorType,
        /// Values needed.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// A transpose rule was asked to transpose an op in an operand it is not linear in.
    #[error("{op} is not linear in the operand being transposed: {detail}")]
    NotLinear {
        /// The op.
        op: &'static str,
        /// Why.
        detail: String,
    },
    /// A rule was called in a way the transforms never do (a bug in a transform).
    #[error("internal error: {0}")]
    RuleMisuse(String),
    /// The finished graph failed verification (a bug in a transform).
    #[error("{0}")]
    Verify(VerifyErrors),
}

pub(crate) fn list_types(types: &[TensorType]) -> String {
    let v: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// Errors from the reference interpreter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Wrong number of arguments.
    #[error("function `{function}` takes {expected} inputs, got {got}")]
    InputCount {
        /// Function name.
        function: String,
        /// Inputs declared.
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// An argument of the wrong type.
    #[error("input `{name}`: expected {expected}, got {actual}")]
    InputType {
        /// Input name.
        name: String,
        /// Declared type.
        expected: TensorType,
        /// Given type.
        actual: TensorType,
    },
    /// The function does not verify.
    #[error("{0}")]
    Invalid(VerifyErrors),
    /// `eval` was asked for the single output of a function with several.
    #[error("function `{function}` has {outputs} outputs; use eval_outputs")]
    OutputCount {
        /// Function name.
        function: String,
        /// Its number of outputs.
        outputs: usize,
    },
    /// An argument whose data length does not match its own shape.
    #[error(
        "input `{name}`: shape {shape} needs a different number of elements than the {len} given"
    )]
    InputData {
        /// Input name.
        name: String,
        /// The tensor's shape.
        shape: Shape,
        /// Its data length.
        len: usize,
    },
    /// The values would need more memory than the budget.
    #[error("evaluating needs {} bytes of intermediate values, over the budget of {limit} bytes", needed.map_or("more than 2^64".to_string(), |n| n.to_string()))]
    TooLarge {
        /// Bytes needed (`None`: more than `u64` counts).
        needed: Option<u64>,
        /// The budget.
        limit: u64,
    },
    /// An internal inconsistency (a bug, reported instead of a panic).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a `conv` does not fit its operands (see `ops::conv`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvError {
    /// Operands of another rank than `2 + spatial` (1 to 3 spatial axes).
    #[error("operands must have rank 3 to 5 and equal rank (got {lhs} and {rhs})")]
    Rank {
        /// The input's rank.
        lhs: usize,
        /// The kernel's rank.
        rhs: usize,
    },
    /// Dimension numbers that are not a permutation of the axes.
    #[error("dimension numbers {0} do not name each axis once")]
    Dims(String),
    /// A per-spatial-axis attribute of the wrong length.
    #[error("`{attr}` has {got} entries for {spatial} spatial axes")]
    AttrLength {
        /// The attribute.
        attr: &'static str,
        /// Its length.
        got: usize,
        /// The number of spatial axes.
        spatial: usize,
    },
    /// A stride or dilation of 0.
    #[error("`{0}` entries must be at least 1")]
    Zero(&'static str),
    /// Group counts that do not divide the sizes they split.
    #[error("{0}")]
    Groups(String),
    /// The kernel's input features do not match the input's.
    #[error("input has {lhs} features in {groups} group(s), the kernel takes {rhs} per group")]
    Features {
        /// Input features.
        lhs: usize,
        /// Kernel input features.
        rhs: usize,
        /// Feature groups.
        groups: usize,
    },
    /// Padding that crops more than the dilated input.
    #[error("spatial axis {axis}: padding ({lo}, {hi}) leaves a negative size")]
    Padding {
        /// The spatial axis (in order of the dimension numbers).
        axis: usize,
        /// Padding before.
        lo: i64,
        /// Padding after.
        hi: i64,
    },
}
