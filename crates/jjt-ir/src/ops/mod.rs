//! The closed op set.
//!
//! [`Op`] is generated from the one list in the `define_ops!` macro below. Every entry names a
//! type that implements [`OpRule`] (name, arity and traits, shape inference, reference
//! evaluation, the JVP, transpose and batching rules, attributes for the text format) and
//! [`ParseOp`] (its names, and reading it back from the text format). The traits have no default
//! methods, so an op that forgets a rule does not compile. What many rules share (the JVP and
//! transpose of an op linear in its one operand, leading-axis batching, strided gathers) is a
//! helper in `rules.rs` that each rule calls explicitly. ARCHITECTURE.md ("Adding an op") lists
//! every file a new op touches.
//!
//! Ops that differ only in their scalar function (the unary and binary elementwise ops, the
//! comparisons) are rows of one table each: an enum whose methods are exhaustive matches, one arm
//! per op. Each row holds everything about that op, so "everything about an op in one place" is
//! kept while the shared loop structure is written once.

mod attrs;
pub mod binary;
pub mod broadcast;
pub mod compare;
pub mod concat;
pub mod constant;
pub mod conv;
pub mod convert;
pub mod dot_general;
pub mod gather;
pub mod input;
pub mod logic;
pub mod pad;
pub mod patches;
pub mod reduce;
pub mod reshape;
pub mod reverse;
mod rules;
pub mod select;
pub mod slice;
pub mod stop_gradient;
pub mod transpose;
pub mod unary;

use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::Tensor;
use crate::types::TensorType;

pub use attrs::{AttrValue, CallArgs};
pub(crate) use attrs::{usizes, write_list};
pub use binary::Binary;
pub use broadcast::BroadcastTo;
pub use compare::Compare;
pub use concat::Concat;
pub use constant::Const;
pub use conv::{Conv, ConvDims};
pub use convert::Convert;
pub use dot_general::DotGeneral;
pub use gather::{Gather, ScatterAdd};
pub use input::Input;
pub use logic::Logic;
pub use pad::Pad;
pub use patches::Patches;
pub use reduce::{Reduce, ReduceKind};
pub use reshape::Reshape;
pub use reverse::Reverse;
pub use rules::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
pub(crate) use rules::{gather_view, keepdims, lead, linear_transpose, move_to_front};
pub(crate) use rules::{not_linear, view_offsets, zeros};
pub use select::Select;
pub use slice::Slice;
pub use stop_gradient::StopGradient;
pub use transpose::Transpose;
pub use unary::Unary;

/// How many operands an op takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Fixed(usize),
    /// At least this many.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` operands are accepted.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Fixed(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

/// Properties of an op, as data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traits {
    /// Applies a scalar function to each element of same-shaped operands.
    pub elementwise: bool,
    /// Linear in all its float operands jointly (add, neg, reshape, sum, ...).
    pub linear: bool,
    /// Operands may be swapped without changing the result.
    pub commutative: bool,
    /// Takes no operands and produces a value known at build time.
    pub constant: bool,
}

impl Traits {
    /// No special property.
    pub const NONE: Traits =
        Traits { elementwise: false, linear: false, commutative: false, constant: false };
    /// Linear (the layout ops, `concat`).
    pub const LINEAR: Traits = Traits { linear: true, ..Traits::NONE };
    /// Elementwise.
    pub const ELEMENTWISE: Traits = Traits { elementwise: true, ..Traits::NONE };
}

/// What an op is called, how many operands it takes and its properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInfo {
    /// The op's name in the text format.
    pub name: &'static str,
    /// Number of operands.
    pub arity: Arity,
    /// Static properties.
    pub traits: Traits,
}

impl OpInfo {
    /// An op of this name, operand count and traits.
    pub const fn new(name: &'static str, arity: Arity, traits: Traits) -> OpInfo {
        OpInfo { name, arity, traits }
    }
}

/// Everything the compiler knows about one op. No default methods: see the module docs.
///
/// The rules emit through the builder `b`; their arguments come as one struct each
/// ([`EvalArgs`], [`JvpArgs`], [`BatchArgs`]), so a rule's signature is one line and a rule
/// that needs a new argument changes one struct, not every op.
pub trait OpRule {
    /// Name, operand count and static properties.
    fn info(&self) -> OpInfo;
    /// The result type for operands of the given types, or why they do not fit.
    /// The operand count has been checked against [`OpInfo::arity`].
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError>;
    /// Reference evaluation, written for obviousness.
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError>;
    /// Forward-mode rule: emit the tangent of this op's output into `b` (see [`JvpArgs`]; the
    /// driver calls the rule only when at least one operand tangent is present). `None` means
    /// the output tangent is zero (e.g. bool results).
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult;
    /// Transpose rule of an op that is linear in the operands marked [`Lin::Linear`] (the others
    /// are known values, [`Lin::Known`]): given the cotangent `ct` of the output, emit the
    /// cotangent of each linear operand (`None` for known operands). Ops that are not linear in
    /// the marked operands return [`IrError::NotLinear`](crate::IrError::NotLinear).
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult;
    /// Batching rule (see [`BatchArgs`]): the output and its batch axis.
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult;
    /// Appends the op's attributes in the text format (`, axes=[0,1]`); constants also write
    /// their leading type (`f32[5], `) since they have no operands.
    fn write_attrs(&self, out: &mut String);
}

/// Reading an op back from the text format.
pub trait ParseOp: Sized {
    /// Every name this op family has in the text format (an op's [`OpInfo::name`] is one of
    /// them). `Op::all_names` joins these lists: the checklist every "every op" test iterates.
    fn names() -> Vec<&'static str>;
    /// If `name` belongs to this op family, the op built from `args`, or why the arguments do
    /// not fit. Operands remain in `args` for the parser.
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>>;
}

macro_rules! define_ops {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty), )*) => {
        /// An operation: one node of a graph. See the module docs.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Op {
            $( $(#[$doc])* $variant($ty), )*
        }

        $(
            impl From<$ty> for Op {
                fn from(op: $ty) -> Op {
                    Op::$variant(op)
                }
            }
        )*

        impl Op {
            /// The rules of this op.
            pub fn rule(&self) -> &dyn OpRule {
                match self {
                    $( Op::$variant(o) => o, )*
                }
            }

            /// Every op name, family by family in the order of the list: the checklist that
            /// every "every op" test iterates (a test fails for a name it has no case for).
            pub fn all_names() -> Vec<&'static str> {
                let mut names = Vec::new();
                $( names.extend(<$ty as ParseOp>::names()); )*
                names
            }

            /// Build an op from a call in the text format (`None`: no op has that name).
            pub(crate) fn parse_call(name: &str, args: &mut CallArgs) -> Option<Result<Op, String>> {
                $(
                    if let Some(r) = <$ty as ParseOp>::parse(name, args) {
                        return Some(r.map(Op::$variant));
                    }
                )*
                None
            }
        }
    };
}

define_ops! {
    /// A function argument.
    Input(Input),
    /// A constant known at build time.
    Const(Const),
    /// An elementwise unary op.
    Unary(Unary),
    /// An elementwise binary op on same-shaped operands.
    Binary(Binary),
    /// An elementwise comparison producing bool.
    Compare(Compare),
    /// Elementwise `and`, `or`, `not` of bool masks.
    Logic(Logic),
    /// `select(pred, on_true, on_false)`.
    Select(Select),
    /// Element type conversion.
    Convert(Convert),
    /// General contraction (einsum-like), what matmul lowers to.
    DotGeneral(DotGeneral),
    /// Reduction over axes.
    Reduce(Reduce),
    /// Same elements, new shape.
    Reshape(Reshape),
    /// Axis permutation.
    Transpose(Transpose),
    /// NumPy broadcasting to a larger shape.
    BroadcastTo(BroadcastTo),
    /// Strided slice.
    Slice(Slice),
    /// Concatenation along an axis.
    Concat(Concat),
    /// Zero padding (the transpose of a slice).
    Pad(Pad),
    /// Reversal along axes.
    Reverse(Reverse),
    /// Sliding windows as new trailing axes.
    Patches(Patches),
    /// Convolution (XLA's `convolution`).
    Conv(Conv),
    /// Rows of a table picked by `i32` indices (clamped).
    Gather(Gather),
    /// Updates summed into rows picked by `i32` indices (the transpose of `gather`).
    ScatterAdd(ScatterAdd),
    /// The identity with a zero derivative.
    StopGradient(StopGradient),
}

impl Op {
    /// The op's name in the text format.
    pub fn name(&self) -> &'static str {
        self.rule().info().name
    }

    /// Static properties.
    pub fn traits(&self) -> Traits {
        self.rule().info().traits
    }

    /// Check the operand count, then infer the result type.
    pub fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let arity = self.rule().info().arity;
        if !arity.accepts(operands.len()) {
            return Err(TypeError::Arity { arity, got: operands.len() });
        }
        let ty = self.rule().infer(operands)?;
        if ty.shape.checked_numel().is_none() {
            return Err(TypeError::TooLarge(ty.shape));
        }
        Ok(ty)
    }
}
/// Normalise a possibly negative axis against a rank.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Result<usize, TypeError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r { Err(TypeError::Axis { axis, rank }) } else { Ok(a as usize) }
}

/// Per-axis attributes (`perm`, `start`, `lo`, ...) need one entry per axis of the operand.
pub(crate) fn per_axis(rank: usize, attrs: &[(&'static str, &[usize])]) -> Result<(), TypeError> {
    match attrs.iter().find(|(_, v)| v.len() != rank) {
        Some(&(attr, v)) => Err(TypeError::AttrLength { attr, value: v.to_vec(), rank }),
        None => Ok(()),
    }
}

/// Both operands must have the same dtype and shape (elementwise ops after broadcasting).
pub(crate) fn same_type(a: &TensorType, b: &TensorType) -> Result<(), TypeError> {
    if a.dtype != b.dtype {
        return Err(TypeError::DTypeMismatch(a.dtype, b.dtype));
    }
    if a.shape != b.shape {
        return Err(TypeError::ShapeMismatch(a.shape.clone(), b.shape.clone()));
    }
    Ok(())
}

/// The operand must be floating point.
pub(crate) fn want_float(t: &TensorType) -> Result<(), TypeError> {
    if crate::types::is_float(t.dtype) { Ok(()) } else { Err(TypeError::NotFloat(t.dtype)) }
}

/// A checked-type helper: an evaluation saw data of an unexpected dtype (a verifier bug).
pub(crate) fn bad_dtype(op: &str) -> EvalError {
    EvalError::Internal(format!("{op}: operand data does not match its verified type"))
}

/// Both operands float, with one dtype (shapes may differ).
pub(crate) fn same_dtype_float(a: &TensorType, b: &TensorType) -> Result<(), TypeError> {
    if a.dtype != b.dtype {
        return Err(TypeError::DTypeMismatch(a.dtype, b.dtype));
    }
    want_float(a)
}
