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
    /// An attribute that does not fit the operands (message says which).
    #[error("{0}")]
    Invalid(String),
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
    #[error("`{0}` is not a valid name (letters, digits and `_`, not starting with a digit)")]
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
