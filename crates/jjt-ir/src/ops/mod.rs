//! The closed op set.
//!
//! [`Op`] is generated from the one list in the `define_ops!` macro below. Every entry names a type that
//! implements [`OpRule`] (shape inference, reference evaluation, attributes for the text format,
//! traits) and [`ParseOp`] (reading it back from the text format). The traits have no default
//! methods, so an op that forgets a rule does not compile; later stages (AD, batching, lowering)
//! add their rules to the same traits.
//!
//! Ops that differ only in their scalar function (the unary and binary elementwise ops, the
//! comparisons) are rows of one table each: an enum whose methods are exhaustive matches, one arm
//! per op. Each row holds everything about that op, so "everything about an op in one place" is
//! kept while the shared loop structure is written once.

pub mod binary;
pub mod broadcast;
pub mod compare;
pub mod concat;
pub mod constant;
pub mod convert;
pub mod dot_general;
pub mod input;
pub mod pad;
pub mod reduce;
pub mod reshape;
pub mod select;
pub mod slice;
pub mod transpose;
pub mod unary;

use std::fmt::Write as _;

use crate::builder::FunctionBuilder;
use crate::error::{EvalError, IrError, TypeError};
use crate::graph::NodeId;
use crate::tensor::Tensor;
use crate::types::{DType, Shape, TensorType};

pub use binary::Binary;
pub use broadcast::BroadcastTo;
pub use compare::Compare;
pub use concat::Concat;
pub use constant::Const;
pub use convert::Convert;
pub use dot_general::DotGeneral;
pub use input::Input;
pub use pad::Pad;
pub use reduce::{Reduce, ReduceKind};
pub use reshape::Reshape;
pub use select::Select;
pub use slice::Slice;
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

/// Everything the compiler knows about one op. No default methods: see the module docs.
pub trait OpRule {
    /// The op's name in the text format.
    fn name(&self) -> &'static str;
    /// Number of operands.
    fn arity(&self) -> Arity;
    /// Static properties.
    fn traits(&self) -> Traits;
    /// The result type for operands of the given types, or why they do not fit.
    /// The operand count has been checked against [`OpRule::arity`].
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError>;
    /// Reference evaluation, written for obviousness. `out` is the inferred result type and
    /// `inputs` the function's arguments (read only by [`Input`]).
    fn eval(
        &self,
        operands: &[&Tensor],
        out: &TensorType,
        inputs: &[Tensor],
    ) -> Result<Tensor, EvalError>;
    /// Forward-mode rule: emit the tangent of this op's output into `b`. `x` holds the operands'
    /// primal values in `b`, `t` their tangents (`None` is a symbolic zero; the driver calls the
    /// rule only when at least one is present), `y` the op's primal output in `b`. `None` means
    /// the output tangent is zero (e.g. bool results).
    fn jvp(
        &self,
        b: &mut FunctionBuilder,
        x: &[NodeId],
        t: &[Option<NodeId>],
        y: NodeId,
    ) -> Result<Option<NodeId>, IrError>;
    /// Transpose rule of an op that is linear in the operands marked [`Lin::Linear`] (the others
    /// are known values, [`Lin::Known`]): given the cotangent `ct` of the output, emit the
    /// cotangent of each linear operand (`None` for known operands). Ops that are not linear in
    /// the marked operands return [`IrError::NotLinear`].
    fn transpose(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        operands: &[Lin],
    ) -> Result<Vec<Option<NodeId>>, IrError>;
    /// Batching rule: `x` are the operands in `b`, `dims[i]` the batch axis of operand `i`
    /// (`None`: not batched; at least one is batched), `size` the batch size. Returns the
    /// output and its batch axis.
    fn batch(
        &self,
        b: &mut FunctionBuilder,
        x: &[NodeId],
        dims: &[Option<usize>],
        size: usize,
    ) -> Result<(NodeId, Option<usize>), IrError>;
    /// Appends the op's attributes in the text format (`, axes=[0,1]`); constants also write
    /// their leading type (`f32[5], `) since they have no operands.
    fn write_attrs(&self, out: &mut String);
}

/// Reading an op back from the text format.
pub trait ParseOp: Sized {
    /// Every name this op family has in the text format (an op's [`OpRule::name`] is one of
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
}

impl Op {
    /// The op's name in the text format.
    pub fn name(&self) -> &'static str {
        self.rule().name()
    }

    /// Static properties.
    pub fn traits(&self) -> Traits {
        self.rule().traits()
    }

    /// Check the operand count, then infer the result type.
    pub fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let arity = self.rule().arity();
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

/// A value in a call's argument list, as the parser read it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// An integer literal.
    Int(i64),
    /// A float literal, kept as text so it can be read at the target precision.
    Float(String),
    /// `[a, b, ...]`.
    List(Vec<AttrValue>),
    /// A tensor type `f32[2,3]`.
    Type(TensorType),
    /// A bare dtype `f64`.
    DType(DType),
    /// A string literal.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(s) => f.write_str(s),
            AttrValue::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            AttrValue::Type(t) => write!(f, "{t}"),
            AttrValue::DType(d) => write!(f, "{d}"),
            AttrValue::Str(s) => f.write_str(&constant::quote(s)),
            AttrValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The non-operand arguments of a call: positional values (types, strings, literals of
/// constants) and keyword attributes. Op parsers take what they need; the parser reports
/// anything left over.
#[derive(Clone, Debug, Default)]
pub struct CallArgs {
    /// Positional non-operand values in order.
    pub positional: Vec<AttrValue>,
    /// `name=value` attributes in order.
    pub keyword: Vec<(String, AttrValue)>,
    /// Types of the call's operands (already built), so attributes such as negative axes
    /// can be resolved against their rank.
    pub operand_types: Vec<TensorType>,
    /// Folder that relative `npy("...")` paths are read from.
    pub base_dir: Option<std::path::PathBuf>,
}

impl CallArgs {
    /// Remove and return a keyword attribute.
    pub fn take(&mut self, key: &str) -> Option<AttrValue> {
        let i = self.keyword.iter().position(|(k, _)| k == key)?;
        Some(self.keyword.remove(i).1)
    }

    /// Remove and return the first positional value.
    pub fn take_positional(&mut self) -> Option<AttrValue> {
        if self.positional.is_empty() { None } else { Some(self.positional.remove(0)) }
    }

    /// A required keyword holding a list of non-negative integers.
    pub fn take_usizes(&mut self, key: &str) -> Result<Vec<usize>, String> {
        match self.take(key) {
            Some(v) => {
                usizes(&v).ok_or_else(|| format!("`{key}` must be a list of non-negative integers"))
            }
            None => Err(format!("missing attribute `{key}=[...]`")),
        }
    }

    /// A keyword holding a list of non-negative integers, or `default` when it is absent.
    pub fn take_usizes_or(
        &mut self,
        key: &str,
        default: impl FnOnce() -> Vec<usize>,
    ) -> Result<Vec<usize>, String> {
        if self.keyword.iter().any(|(k, _)| k == key) {
            self.take_usizes(key)
        } else {
            Ok(default())
        }
    }

    /// A keyword holding a list of integers that may be negative (axes), if present.
    pub fn take_axes(&mut self, key: &str) -> Result<Option<Vec<i64>>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(AttrValue::List(items)) => items
                .iter()
                .map(|v| match v {
                    AttrValue::Int(i) => Ok(*i),
                    _ => Err(format!("`{key}` must be a list of integers")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(AttrValue::Int(i)) => Ok(Some(vec![i])),
            Some(_) => Err(format!("`{key}` must be a list of integers")),
        }
    }

    /// A required keyword holding one integer.
    pub fn take_int(&mut self, key: &str) -> Result<i64, String> {
        match self.take(key) {
            Some(AttrValue::Int(i)) => Ok(i),
            Some(_) => Err(format!("`{key}` must be an integer")),
            None => Err(format!("missing attribute `{key}=...`")),
        }
    }

    /// A leading positional tensor type (constants).
    pub fn take_type(&mut self) -> Result<TensorType, String> {
        match self.take_positional() {
            Some(AttrValue::Type(t)) => Ok(t),
            _ => Err("expected a tensor type such as `f32[2,3]` as the first argument".into()),
        }
    }
}

/// A list of non-negative integers.
pub(crate) fn usizes(v: &AttrValue) -> Option<Vec<usize>> {
    match v {
        AttrValue::List(items) => items
            .iter()
            .map(|i| match i {
                AttrValue::Int(i) => usize::try_from(*i).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Writes `, key=[a,b]`.
pub(crate) fn write_list(out: &mut String, key: &str, items: &[usize]) {
    let _ = write!(out, ", {key}={}", Shape(items.to_vec()));
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

/// An operand as a transpose rule sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Lin {
    /// A linear operand (its value is not known), of this type.
    Linear(TensorType),
    /// A known value (a residual of the primal computation).
    Known(NodeId),
}

impl Lin {
    /// The known node, if any.
    pub fn known(&self) -> Option<NodeId> {
        match self {
            Lin::Known(n) => Some(*n),
            Lin::Linear(_) => None,
        }
    }

    /// Whether this operand is linear.
    pub fn is_linear(&self) -> bool {
        matches!(self, Lin::Linear(_))
    }
}

/// The error for a transpose rule asked to transpose in an operand it is not linear in.
pub(crate) fn not_linear(op: &'static str, why: &str) -> IrError {
    IrError::NotLinear { op, detail: why.to_string() }
}

/// A zero tensor of `ty`.
pub(crate) fn zeros(b: &mut FunctionBuilder, ty: &TensorType) -> Result<NodeId, IrError> {
    b.full(ty.clone(), 0.0)
}

/// Move axis `d` of `x` to the front.
pub(crate) fn move_to_front(
    b: &mut FunctionBuilder,
    x: NodeId,
    d: usize,
) -> Result<NodeId, IrError> {
    let rank = b.ty(x)?.rank();
    let mut perm = vec![d];
    perm.extend((0..rank).filter(|&a| a != d));
    b.transpose(x, &perm)
}

/// Operands with their batch axis at the front; unbatched operands broadcast to `[size, ...]`.
pub(crate) fn batched_front(
    b: &mut FunctionBuilder,
    x: &[NodeId],
    dims: &[Option<usize>],
    size: usize,
) -> Result<Vec<NodeId>, IrError> {
    x.iter()
        .zip(dims)
        .map(|(&v, d)| match d {
            Some(d) => move_to_front(b, v, *d),
            None => {
                let mut shape = vec![size];
                shape.extend_from_slice(b.ty(v)?.shape.dims());
                b.broadcast_to(v, &Shape(shape))
            }
        })
        .collect()
}

/// The batching rule of elementwise ops: operands that share one batch axis stay as they
/// are; otherwise all move to the front (unbatched ones broadcast).
pub(crate) fn batch_elementwise(
    b: &mut FunctionBuilder,
    x: &[NodeId],
    dims: &[Option<usize>],
    size: usize,
    apply: impl FnOnce(&mut FunctionBuilder, &[NodeId]) -> Result<NodeId, IrError>,
) -> Result<(NodeId, Option<usize>), IrError> {
    if let Some(Some(d0)) = dims.first()
        && dims.iter().all(|d| *d == Some(*d0))
    {
        return Ok((apply(b, x)?, Some(*d0)));
    }
    let v = batched_front(b, x, dims, size)?;
    Ok((apply(b, &v)?, Some(0)))
}

/// `x`'s shape with the reduced `axes` kept as size 1 (NumPy's keepdims).
pub(crate) fn keepdims(shape: &Shape, axes: &[usize]) -> Shape {
    Shape(
        shape
            .dims()
            .iter()
            .enumerate()
            .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
            .collect(),
    )
}

/// The JVP of a one-operand op that is linear in its operand (a reshape, a slice, …): the
/// tangent goes through the same op.
pub(crate) fn linear_jvp(
    b: &mut FunctionBuilder,
    op: Op,
    t: &[Option<NodeId>],
) -> Result<Option<NodeId>, IrError> {
    t[0].map(|t| b.add(op, &[t])).transpose()
}
