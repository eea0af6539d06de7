//! Tensor values: what the interpreter computes with and what `.npy` files hold.

use crate::types::{DType, Shape, TensorType};
pub use jjt_npy::Data;

/// A dense row-major tensor value.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape of the value.
    pub shape: Shape,
    /// Elements in row-major order; `data.len() == shape.numel()`.
    pub data: Data,
}

/// Error for a tensor whose data length does not match its shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tensor of shape {shape} needs {expected} elements, got {actual}")]
pub struct TensorShapeError {
    /// The declared shape.
    pub shape: Shape,
    /// Elements the shape needs.
    pub expected: usize,
    /// Elements given.
    pub actual: usize,
}

impl Tensor {
    /// A tensor from a shape and data of matching length.
    pub fn new(shape: impl Into<Shape>, data: Data) -> Result<Tensor, TensorShapeError> {
        let shape = shape.into();
        let expected = shape.checked_numel().unwrap_or(usize::MAX);
        if expected != data.len() {
            return Err(TensorShapeError { shape, expected, actual: data.len() });
        }
        Ok(Tensor { shape, data })
    }

    /// An f64 tensor.
    pub fn f64(shape: impl Into<Shape>, data: Vec<f64>) -> Result<Tensor, TensorShapeError> {
        Tensor::new(shape, Data::F64(data))
    }

    /// An f32 tensor.
    pub fn f32(shape: impl Into<Shape>, data: Vec<f32>) -> Result<Tensor, TensorShapeError> {
        Tensor::new(shape, Data::F32(data))
    }

    /// A scalar f64 tensor.
    pub fn scalar_f64(v: f64) -> Tensor {
        Tensor { shape: Shape::scalar(), data: Data::F64(vec![v]) }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The tensor type (dtype and shape).
    pub fn ty(&self) -> TensorType {
        TensorType { dtype: self.dtype(), shape: self.shape.clone() }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements widened to f64 (bool as 0/1). Exact for every dtype.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::F64(v) => v.clone(),
            Data::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::Bool(v) => v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect(),
        }
    }

    /// An i32 tensor.
    pub fn i32(shape: impl Into<Shape>, data: Vec<i32>) -> Result<Tensor, TensorShapeError> {
        Tensor::new(shape, Data::I32(data))
    }

    /// A tensor of the given type whose elements are `values` rounded to the dtype
    /// (bool: nonzero is true; i32: truncated toward zero and saturated, NaN gives 0, Rust's
    /// `as i32`).
    pub fn from_f64(ty: &TensorType, values: &[f64]) -> Result<Tensor, TensorShapeError> {
        let data = match ty.dtype {
            DType::F32 => Data::F32(values.iter().map(|&x| x as f32).collect()),
            DType::F64 => Data::F64(values.to_vec()),
            DType::I32 => Data::I32(values.iter().map(|&x| x as i32).collect()),
            DType::Bool => Data::Bool(values.iter().map(|&x| x != 0.0).collect()),
        };
        Tensor::new(ty.shape.clone(), data)
    }

    /// Convert into a `.npy` array.
    pub fn into_array(self) -> jjt_npy::Array {
        jjt_npy::Array { shape: self.shape.0, data: self.data }
    }

    /// Convert from a `.npy` array.
    pub fn from_array(a: jjt_npy::Array) -> Tensor {
        Tensor { shape: Shape(a.shape), data: a.data }
    }

    /// Gather elements: output element `i` is input element `index[i]`.
    /// Indices are produced by the interpreter from checked shapes.
    pub(crate) fn gather(&self, shape: Shape, index: &[usize]) -> Tensor {
        fn g<T: Copy>(v: &[T], index: &[usize]) -> Vec<T> {
            index.iter().map(|&i| v[i]).collect()
        }
        let data = match &self.data {
            Data::F32(v) => Data::F32(g(v, index)),
            Data::F64(v) => Data::F64(g(v, index)),
            Data::I32(v) => Data::I32(g(v, index)),
            Data::Bool(v) => Data::Bool(g(v, index)),
        };
        Tensor { shape, data }
    }
}

/// Calls `f` with every multi-index of `shape` in row-major order.
pub(crate) fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; shape.len()];
    loop {
        f(&idx);
        let mut axis = shape.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            idx[axis] += 1;
            if idx[axis] < shape[axis] {
                break;
            }
            idx[axis] = 0;
        }
    }
}

/// The floating-point element types, with the operations the interpreter needs.
/// Implemented for `f32` and `f64` with the platform's libm and, for `erf`, the `libm` crate (the
/// same functions the JIT calls).
pub trait Float: Copy + PartialOrd + std::fmt::Debug + 'static {
    /// Round from f64.
    fn from_f64(v: f64) -> Self;
    /// Widen to f64 (exact).
    fn to_f64(self) -> f64;
    #[allow(missing_docs)]
    fn zero() -> Self;
    #[allow(missing_docs)]
    fn one() -> Self;
    #[allow(missing_docs)]
    fn add(self, o: Self) -> Self;
    #[allow(missing_docs)]
    fn sub(self, o: Self) -> Self;
    #[allow(missing_docs)]
    fn mul(self, o: Self) -> Self;
    #[allow(missing_docs)]
    fn div(self, o: Self) -> Self;
    #[allow(missing_docs)]
    fn neg(self) -> Self;
    #[allow(missing_docs)]
    fn abs(self) -> Self;
    #[allow(missing_docs)]
    fn exp(self) -> Self;
    #[allow(missing_docs)]
    fn ln(self) -> Self;
    #[allow(missing_docs)]
    fn ln_1p(self) -> Self;
    #[allow(missing_docs)]
    fn exp_m1(self) -> Self;
    #[allow(missing_docs)]
    fn sqrt(self) -> Self;
    #[allow(missing_docs)]
    fn sin(self) -> Self;
    #[allow(missing_docs)]
    fn cos(self) -> Self;
    #[allow(missing_docs)]
    fn tanh(self) -> Self;
    /// The error function, musl's `erf` (`erff` for f32) through the `libm` crate (Rust's std
    /// has none); accurate to about 1 ulp.
    fn erf(self) -> Self;
    #[allow(missing_docs)]
    fn powf(self, o: Self) -> Self;
    #[allow(missing_docs)]
    fn is_nan(self) -> bool;
    /// Wrap a vector of this type as [`Data`].
    fn wrap(v: Vec<Self>) -> Data;
    /// View [`Data`] of this type, or `None` for another dtype.
    fn view(d: &Data) -> Option<&[Self]>;
}

macro_rules! impl_float {
    ($t:ty, $variant:ident, $erf:path) => {
        impl Float for $t {
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn zero() -> Self {
                0.0
            }
            fn one() -> Self {
                1.0
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn div(self, o: Self) -> Self {
                self / o
            }
            fn neg(self) -> Self {
                -self
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn erf(self) -> Self {
                $erf(self)
            }
            fn powf(self, o: Self) -> Self {
                <$t>::powf(self, o)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn wrap(v: Vec<Self>) -> Data {
                Data::$variant(v)
            }
            fn view(d: &Data) -> Option<&[Self]> {
                match d {
                    Data::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

impl_float!(f32, F32, libm::erff);
impl_float!(f64, F64, libm::erf);
