//! Tracing: write f as a Rust closure over [`Var`] handles, with operators and methods, and
//! get a [`Function`] back.
//!
//! ```
//! use jjt_ir::{DType, trace};
//! let f = trace("f", |t| {
//!     let x = t.input("x", DType::F32, [10000]);
//!     let a = t.uniform(DType::F32, [5, 10000], 1701);
//!     (a.matmul(&x) / 10000.0).sqrt()
//! })
//! .unwrap();
//! assert_eq!(f.output_type().unwrap().to_string(), "f32[5]");
//! ```
//!
//! Handles hold a shared reference to the trace's state and a node id; no raw pointers. An
//! op whose operands do not fit does not panic: the first such error is recorded with the
//! closure's source location (`#[track_caller]`), every later op on the poisoned handles is
//! skipped, and [`trace`] returns the error.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::Location;
use std::rc::Rc;

use crate::builder::{FunctionBuilder, ScalarSide};
use crate::error::IrError;
use crate::graph::{Function, NodeId};
use crate::ops::{Binary, Compare, Const, DotGeneral, ReduceKind, Unary};
use crate::random::Distribution;
use crate::tensor::Tensor;
use crate::types::{DType, Shape, TensorType};

/// Why tracing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// An op inside the closure rejected its operands.
    #[error("{}:{}:{}: {source}", location.file(), location.line(), location.column())]
    Op {
        /// Where in the closure.
        location: &'static Location<'static>,
        /// The builder's error (op name, operand types, what is wrong).
        source: IrError,
    },
    /// A handle from a different trace was used.
    #[error("{}:{}:{}: a value from another trace was used in this one", location.file(), location.line(), location.column())]
    ForeignVar {
        /// Where in the closure.
        location: &'static Location<'static>,
    },
    /// The function could not be finished.
    #[error("finishing the trace: {0}")]
    Finish(IrError),
}

impl TraceError {
    /// The builder error behind an op failure.
    pub fn ir_error(&self) -> Option<&IrError> {
        match self {
            TraceError::Op { source, .. } | TraceError::Finish(source) => Some(source),
            TraceError::ForeignVar { .. } => None,
        }
    }
}

#[derive(Debug)]
struct State {
    b: FunctionBuilder,
    error: Option<TraceError>,
    draws: HashMap<(u32, bool), u64>,
}

type Shared = Rc<RefCell<State>>;

/// The context a traced closure receives: declares inputs and constants.
#[derive(Debug)]
pub struct Tracer {
    st: Shared,
}

/// A traced tensor value.
#[derive(Clone, Debug)]
pub struct Var {
    st: Shared,
    id: Option<NodeId>,
}

/// Trace `f` into a function called `name`.
#[track_caller]
pub fn trace(name: &str, f: impl FnOnce(&Tracer) -> Var) -> Result<Function, TraceError> {
    let st = Rc::new(RefCell::new(State {
        b: FunctionBuilder::new(name),
        error: None,
        draws: HashMap::new(),
    }));
    let tracer = Tracer { st: st.clone() };
    let out = f(&tracer);
    let foreign = !Rc::ptr_eq(&out.st, &st);
    drop(tracer);
    let mut state = st.borrow_mut();
    if let Some(e) = state.error.take() {
        return Err(e);
    }
    if foreign {
        return Err(TraceError::ForeignVar { location: Location::caller() });
    }
    let b = std::mem::replace(&mut state.b, FunctionBuilder::new(name));
    let out = out
        .id
        .ok_or_else(|| TraceError::Finish(IrError::Verify(crate::verify::VerifyErrors(vec![]))))?;
    b.finish(out).map_err(TraceError::Finish)
}

fn record(st: &Shared, loc: &'static Location<'static>, r: Result<NodeId, IrError>) -> Var {
    let mut s = st.borrow_mut();
    match r {
        Ok(id) => Var { st: st.clone(), id: Some(id) },
        Err(source) => {
            if s.error.is_none() {
                s.error = Some(TraceError::Op { location: loc, source });
            }
            Var { st: st.clone(), id: None }
        }
    }
}

impl Tracer {
    fn make(
        &self,
        loc: &'static Location<'static>,
        f: impl FnOnce(&mut FunctionBuilder) -> Result<NodeId, IrError>,
    ) -> Var {
        let r = {
            let mut s = self.st.borrow_mut();
            if s.error.is_some() {
                return Var { st: self.st.clone(), id: None };
            }
            f(&mut s.b)
        };
        record(&self.st, loc, r)
    }

    /// Declare the next input.
    #[track_caller]
    pub fn input(&self, name: &str, dtype: DType, shape: impl Into<Shape>) -> Var {
        let ty = TensorType::new(dtype, shape);
        self.make(Location::caller(), |b| b.input(name, ty))
    }

    /// A constant with the given value.
    #[track_caller]
    pub fn constant(&self, value: &Tensor) -> Var {
        let ty = value.ty();
        let c = Const::literal(ty, &value.to_f64_vec());
        self.make(Location::caller(), |b| b.constant(c))
    }

    /// Every element `value`.
    #[track_caller]
    pub fn full(&self, dtype: DType, shape: impl Into<Shape>, value: f64) -> Var {
        let ty = TensorType::new(dtype, shape);
        self.make(Location::caller(), |b| b.full(ty, value))
    }

    /// The identity matrix `[n, m]`.
    #[track_caller]
    pub fn eye(&self, dtype: DType, n: usize, m: usize) -> Var {
        let c = Const::Eye { ty: TensorType::new(dtype, [n, m]) };
        self.make(Location::caller(), |b| b.constant(c))
    }

    /// The index along `axis`.
    #[track_caller]
    pub fn iota(&self, dtype: DType, shape: impl Into<Shape>, axis: usize) -> Var {
        let c = Const::Iota { ty: TensorType::new(dtype, shape), axis };
        self.make(Location::caller(), |b| b.constant(c))
    }

    #[track_caller]
    fn random(&self, dist: Distribution, dtype: DType, shape: Shape, seed: u32) -> Var {
        let ty = TensorType::new(dtype, shape);
        let n = ty.numel() as u64;
        let key = (seed, dist == Distribution::Uniform);
        let offset = {
            let mut s = self.st.borrow_mut();
            let slot = s.draws.entry(key).or_insert(0);
            let o = *slot;
            *slot = o.saturating_add(n);
            o
        };
        let c = Const::Random { ty, dist, seed, offset };
        self.make(Location::caller(), |b| b.constant(c))
    }

    /// `np.random.seed(seed); np.random.rand(*shape)`. Repeated calls with one seed continue
    /// the stream, like consecutive `rand` calls after one `seed`.
    #[track_caller]
    pub fn uniform(&self, dtype: DType, shape: impl Into<Shape>, seed: u32) -> Var {
        self.random(Distribution::Uniform, dtype, shape.into(), seed)
    }

    /// `np.random.seed(seed); np.random.randn(*shape)`, continuing the stream likewise.
    #[track_caller]
    pub fn normal(&self, dtype: DType, shape: impl Into<Shape>, seed: u32) -> Var {
        self.random(Distribution::Normal, dtype, shape.into(), seed)
    }

    /// Concatenate along `axis` (negative counts from the end).
    #[track_caller]
    pub fn concat(&self, xs: &[&Var], axis: i64) -> Var {
        let loc = Location::caller();
        if xs.iter().any(|x| !Rc::ptr_eq(&x.st, &self.st)) {
            return foreign(&self.st, loc);
        }
        let ids: Option<Vec<NodeId>> = xs.iter().map(|x| x.id).collect();
        match ids {
            Some(ids) => self.make(loc, |b| b.concat(&ids, axis)),
            None => Var { st: self.st.clone(), id: None },
        }
    }

    /// `select(pred, on_true, on_false)` with broadcasting.
    #[track_caller]
    pub fn select(&self, pred: &Var, on_true: &Var, on_false: &Var) -> Var {
        pred.combine(&[on_true, on_false], Location::caller(), |b, v| b.select(v[0], v[1], v[2]))
    }
}

fn foreign(st: &Shared, loc: &'static Location<'static>) -> Var {
    let mut s = st.borrow_mut();
    if s.error.is_none() {
        s.error = Some(TraceError::ForeignVar { location: loc });
    }
    Var { st: st.clone(), id: None }
}

macro_rules! unary_methods {
    ($($name:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("Elementwise `", stringify!($name), "`.")]
            #[track_caller]
            pub fn $name(&self) -> Var {
                self.apply(Location::caller(), |b, x| b.unary(Unary::$op, x))
            }
        )*
    };
}

macro_rules! binary_methods {
    ($($name:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("Elementwise `", stringify!($name), "` with broadcasting.")]
            #[track_caller]
            pub fn $name(&self, other: &Var) -> Var {
                self.combine(&[other], Location::caller(), |b, v| b.binary(Binary::$op, v[0], v[1]))
            }
        )*
    };
}

macro_rules! compare_methods {
    ($($name:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("Elementwise `", stringify!($name), "` (bool result) with broadcasting.")]
            #[track_caller]
            pub fn $name(&self, other: &Var) -> Var {
                self.combine(&[other], Location::caller(), |b, v| b.compare(Compare::$op, v[0], v[1]))
            }
        )*
    };
}

impl Var {
    /// Give the value a name for printing (`a = uniform(...)` instead of `_0 = ...`).
    /// The first name given to a node wins.
    pub fn named(self, name: &str) -> Var {
        if let Some(id) = self.id {
            self.st.borrow_mut().b.name_node(id, name);
        }
        self
    }

    /// The node this handle names, unless an earlier error poisoned it.
    pub fn node(&self) -> Option<NodeId> {
        self.id
    }

    /// The value's type, unless poisoned.
    pub fn ty(&self) -> Option<TensorType> {
        self.id.and_then(|id| self.st.borrow().b.ty(id).ok().cloned())
    }

    /// The value's shape, unless poisoned.
    pub fn shape(&self) -> Option<Shape> {
        self.ty().map(|t| t.shape)
    }

    fn apply(
        &self,
        loc: &'static Location<'static>,
        f: impl FnOnce(&mut FunctionBuilder, NodeId) -> Result<NodeId, IrError>,
    ) -> Var {
        let Some(x) = self.id else { return self.clone() };
        let r = {
            let mut s = self.st.borrow_mut();
            if s.error.is_some() {
                return Var { st: self.st.clone(), id: None };
            }
            f(&mut s.b, x)
        };
        record(&self.st, loc, r)
    }

    fn combine(
        &self,
        others: &[&Var],
        loc: &'static Location<'static>,
        f: impl FnOnce(&mut FunctionBuilder, &[NodeId]) -> Result<NodeId, IrError>,
    ) -> Var {
        if others.iter().any(|o| !Rc::ptr_eq(&o.st, &self.st)) {
            return foreign(&self.st, loc);
        }
        let mut ids = vec![];
        for v in std::iter::once(self).chain(others.iter().copied()) {
            match v.id {
                Some(id) => ids.push(id),
                None => return Var { st: self.st.clone(), id: None },
            }
        }
        let r = {
            let mut s = self.st.borrow_mut();
            if s.error.is_some() {
                return Var { st: self.st.clone(), id: None };
            }
            f(&mut s.b, &ids)
        };
        record(&self.st, loc, r)
    }

    #[track_caller]
    fn scalar(&self, op: Binary, value: f64, side: ScalarSide) -> Var {
        self.apply(Location::caller(), |b, x| b.binary_scalar(op, x, value, side))
    }

    unary_methods! {
        neg => Neg, abs => Abs, exp => Exp, log => Log, log1p => Log1p, expm1 => Expm1,
        sqrt => Sqrt, rsqrt => Rsqrt, recip => Recip, square => Square, sin => Sin, cos => Cos,
        tanh => Tanh, sigmoid => Sigmoid, relu => Relu, softplus => Softplus, erf => Erf,
    }

    binary_methods! { pow => Pow, maximum => Maximum, minimum => Minimum }

    compare_methods! { gt => Gt, ge => Ge, lt => Lt, le => Le, eq => Eq }

    /// `self ** value` with a scalar exponent.
    #[track_caller]
    pub fn powf(&self, value: f64) -> Var {
        self.scalar(Binary::Pow, value, ScalarSide::Right)
    }

    /// NumPy's `self @ other`.
    #[track_caller]
    pub fn matmul(&self, other: &Var) -> Var {
        self.combine(&[other], Location::caller(), |b, v| b.matmul(v[0], v[1]))
    }

    /// A general contraction.
    #[track_caller]
    pub fn dot_general(&self, other: &Var, dims: DotGeneral) -> Var {
        self.combine(&[other], Location::caller(), |b, v| b.dot_general(v[0], v[1], dims))
    }

    /// A convolution of `self` (the input) with the kernel `k` (see
    /// [`Conv`](crate::ops::Conv): dimension numbers, strides, padding, dilations, groups).
    #[track_caller]
    pub fn conv(&self, k: &Var, conv: crate::ops::Conv) -> Var {
        self.combine(&[k], Location::caller(), |b, v| b.add(conv.into(), &[v[0], v[1]]))
    }

    /// XLA's `reduce_window` with `sum` or `max` (see [`FunctionBuilder::reduce_window`]).
    #[track_caller]
    pub fn reduce_window(&self, kind: ReduceKind, window: &crate::ops::patches::Window) -> Var {
        self.apply(Location::caller(), |b, x| b.reduce_window(x, kind, window))
    }

    /// Whether any element of a bool tensor is true along `axes` (negative from the end; `&[]`
    /// reduces nothing): see [`FunctionBuilder::any_all`](crate::FunctionBuilder::any_all).
    #[track_caller]
    pub fn any(&self, axes: &[i64]) -> Var {
        self.apply(Location::caller(), |b, x| b.any_all(x, false, Some(axes)))
    }

    /// Whether every element of a bool tensor is true along `axes` (as [`Var::any`]).
    #[track_caller]
    pub fn all(&self, axes: &[i64]) -> Var {
        self.apply(Location::caller(), |b, x| b.any_all(x, true, Some(axes)))
    }

    /// Sum over `axes` (negative from the end); `&[]` is not "all": use [`Var::sum_all`].
    #[track_caller]
    pub fn sum(&self, axes: &[i64]) -> Var {
        self.apply(Location::caller(), |b, x| b.reduce(ReduceKind::Sum, x, Some(axes)))
    }

    /// Sum of all elements.
    #[track_caller]
    pub fn sum_all(&self) -> Var {
        self.apply(Location::caller(), |b, x| b.reduce(ReduceKind::Sum, x, None))
    }

    /// Mean over `axes`.
    #[track_caller]
    pub fn mean(&self, axes: &[i64]) -> Var {
        self.apply(Location::caller(), |b, x| b.reduce(ReduceKind::Mean, x, Some(axes)))
    }

    /// Maximum over `axes`.
    #[track_caller]
    pub fn max(&self, axes: &[i64]) -> Var {
        self.apply(Location::caller(), |b, x| b.reduce(ReduceKind::Max, x, Some(axes)))
    }

    /// Reshape.
    #[track_caller]
    pub fn reshape(&self, shape: impl Into<Shape>) -> Var {
        let shape = shape.into();
        self.apply(Location::caller(), |b, x| b.reshape(x, shape))
    }

    /// Permute axes.
    #[track_caller]
    pub fn transpose(&self, perm: &[usize]) -> Var {
        self.apply(Location::caller(), |b, x| b.transpose(x, perm))
    }

    /// Reverse the axes (NumPy's `.T`).
    #[track_caller]
    pub fn t(&self) -> Var {
        let rank = self.ty().map_or(0, |t| t.rank());
        let perm: Vec<usize> = (0..rank).rev().collect();
        self.apply(Location::caller(), |b, x| b.transpose(x, &perm))
    }

    /// NumPy broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Var {
        let shape = shape.into();
        self.apply(Location::caller(), |b, x| b.broadcast_to(x, &shape))
    }

    /// Strided slice, one `start`/`stop`/`step` per axis.
    #[track_caller]
    pub fn slice(&self, start: &[usize], stop: &[usize], step: &[usize]) -> Var {
        self.apply(Location::caller(), |b, x| b.slice(x, start, stop, step))
    }

    /// Convert the element type.
    #[track_caller]
    pub fn convert(&self, to: DType) -> Var {
        self.apply(Location::caller(), |b, x| b.convert(x, to))
    }

    /// Rows of `self` along `axis` picked by the `i32` indices `idx` (clamped to the axis):
    /// an embedding lookup is `emb.gather(&tok, 0)`.
    #[track_caller]
    pub fn gather(&self, idx: &Var, axis: usize) -> Var {
        let op = crate::ops::Gather { axis };
        self.combine(&[idx], Location::caller(), |b, v| b.add(op.into(), &[v[0], v[1]]))
    }

    /// `self` (updates) summed into `size` rows along `axis` at the `i32` indices `idx`
    /// (clamped): the transpose of [`Var::gather`].
    #[track_caller]
    pub fn scatter_add(&self, idx: &Var, size: usize, axis: usize) -> Var {
        let op = crate::ops::ScatterAdd { size, axis };
        self.combine(&[idx], Location::caller(), |b, v| b.add(op.into(), &[v[1], v[0]]))
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $op:ident) => {
        impl std::ops::$trait<&Var> for &Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: &Var) -> Var {
                self.combine(&[rhs], Location::caller(), |b, v| b.binary(Binary::$op, v[0], v[1]))
            }
        }
        impl std::ops::$trait<Var> for Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: Var) -> Var {
                self.combine(&[&rhs], Location::caller(), |b, v| b.binary(Binary::$op, v[0], v[1]))
            }
        }
        impl std::ops::$trait<&Var> for Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: &Var) -> Var {
                self.combine(&[rhs], Location::caller(), |b, v| b.binary(Binary::$op, v[0], v[1]))
            }
        }
        impl std::ops::$trait<Var> for &Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: Var) -> Var {
                self.combine(&[&rhs], Location::caller(), |b, v| b.binary(Binary::$op, v[0], v[1]))
            }
        }
        impl std::ops::$trait<f64> for Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: f64) -> Var {
                self.scalar(Binary::$op, rhs, ScalarSide::Right)
            }
        }
        impl std::ops::$trait<f64> for &Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: f64) -> Var {
                self.scalar(Binary::$op, rhs, ScalarSide::Right)
            }
        }
        impl std::ops::$trait<Var> for f64 {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: Var) -> Var {
                rhs.scalar(Binary::$op, self, ScalarSide::Left)
            }
        }
        impl std::ops::$trait<&Var> for f64 {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: &Var) -> Var {
                rhs.scalar(Binary::$op, self, ScalarSide::Left)
            }
        }
    };
}

operator!(Add, add, Add);
operator!(Sub, sub, Sub);
operator!(Mul, mul, Mul);
operator!(Div, div, Div);

impl std::ops::Neg for Var {
    type Output = Var;
    #[track_caller]
    fn neg(self) -> Var {
        self.apply(Location::caller(), |b, x| b.unary(Unary::Neg, x))
    }
}

impl std::ops::Neg for &Var {
    type Output = Var;
    #[track_caller]
    fn neg(self) -> Var {
        self.apply(Location::caller(), |b, x| b.unary(Unary::Neg, x))
    }
}
