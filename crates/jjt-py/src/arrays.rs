//! NumPy arrays in and out: any array-like becomes a C-contiguous array of the input's dtype
//! (without a copy when it already is one), whose bytes the compiled code reads in place.

use std::borrow::Cow;

use jjt::ir::Data;
use jjt::{DType, Tensor};
use numpy::{
    PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::errors::InputError;

/// NumPy's name of a dtype.
pub(crate) fn numpy_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::I32 => "int32",
        DType::Bool => "bool",
    }
}

/// A value bound to an input: borrowed from a NumPy array, or owned (a default).
pub(crate) enum Held<'py> {
    F64(PyReadonlyArrayDyn<'py, f64>),
    F32(PyReadonlyArrayDyn<'py, f32>),
    I32(PyReadonlyArrayDyn<'py, i32>),
    Bool(PyReadonlyArrayDyn<'py, bool>),
    Owned(&'py Tensor),
}

impl Held<'_> {
    pub(crate) fn dims(&self) -> Vec<usize> {
        match self {
            Held::F64(a) => a.shape().to_vec(),
            Held::F32(a) => a.shape().to_vec(),
            Held::I32(a) => a.shape().to_vec(),
            Held::Bool(a) => a.shape().to_vec(),
            Held::Owned(t) => t.shape.dims().to_vec(),
        }
    }

    /// Whether the elements can be read as one aligned slice.
    fn readable(&self) -> bool {
        match self {
            Held::F64(a) => a.as_slice().is_ok(),
            Held::F32(a) => a.as_slice().is_ok(),
            Held::I32(a) => a.as_slice().is_ok(),
            Held::Bool(a) => a.as_slice().is_ok(),
            Held::Owned(_) => true,
        }
    }

    /// The elements' bytes in row-major order (a copy only for booleans).
    pub(crate) fn bytes(&self) -> PyResult<Cow<'_, [u8]>> {
        let contiguous = |e: numpy::AsSliceError| InputError::new_err(e.to_string());
        Ok(match self {
            Held::F64(a) => Cow::Borrowed(bytemuck::cast_slice(a.as_slice().map_err(contiguous)?)),
            Held::F32(a) => Cow::Borrowed(bytemuck::cast_slice(a.as_slice().map_err(contiguous)?)),
            Held::I32(a) => Cow::Borrowed(bytemuck::cast_slice(a.as_slice().map_err(contiguous)?)),
            Held::Bool(a) => {
                Cow::Owned(a.as_slice().map_err(contiguous)?.iter().map(|&b| u8::from(b)).collect())
            }
            Held::Owned(t) => match &t.data {
                Data::F64(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
                Data::F32(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
                Data::I32(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
                Data::Bool(v) => Cow::Owned(v.iter().map(|&b| u8::from(b)).collect()),
            },
        })
    }
}

fn numpy(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("numpy")
}

/// `obj` as a C-contiguous NumPy array of dtype `want`, for input `name` (`what` says where it
/// came from, e.g. `x1`). An array (anything with a `dtype`, such as a JAX array or a PyTorch
/// tensor) must have that dtype already, except that integers of any width are accepted for
/// int32 inputs when every value fits; anything else (lists, scalars) is converted.
pub(crate) fn hold<'py>(
    obj: &Bound<'py, PyAny>,
    want: DType,
    name: &str,
    what: &str,
) -> PyResult<Held<'py>> {
    let py = obj.py();
    let arr: Bound<'py, PyUntypedArray> = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) if obj.hasattr("dtype")? || obj.hasattr("__array__")? => {
            let a = numpy(py)?.getattr("asarray")?.call1((obj,))?;
            a.cast_into::<PyUntypedArray>().map_err(PyErr::from)?
        }
        Err(_) => {
            // Lists and scalars: NumPy's reading, then the input's dtype (floats never
            // truncated to integers).
            let a = numpy(py)?.getattr("asarray")?.call1((obj,)).map_err(|e| {
                InputError::new_err(format!(
                    "input `{name}` ({what}): cannot be read as a {} array: {e}",
                    numpy_name(want)
                ))
            })?;
            let a = a.cast_into::<PyUntypedArray>().map_err(PyErr::from)?;
            let kind = a.dtype().kind();
            let ok = match want {
                DType::F32 | DType::F64 => matches!(kind, b'f' | b'i' | b'u' | b'b'),
                DType::I32 => matches!(kind, b'i' | b'u' | b'b'),
                DType::Bool => kind == b'b',
            };
            if !ok {
                return Err(InputError::new_err(format!(
                    "input `{name}` ({what}): expected {} values, got {}",
                    numpy_name(want),
                    a.dtype().str()?.to_cow()?.trim_start_matches(['<', '>', '=', '|'])
                )));
            }
            if want == DType::I32 {
                a
            } else {
                let c = a.call_method1("astype", (numpy_name(want),))?;
                c.cast_into::<PyUntypedArray>().map_err(PyErr::from)?
            }
        }
    };
    let dt = arr.dtype();
    let kind = dt.kind();
    let matches = match want {
        DType::F64 => dt.is_equiv_to(&numpy::dtype::<f64>(py)),
        DType::F32 => dt.is_equiv_to(&numpy::dtype::<f32>(py)),
        DType::I32 => dt.is_equiv_to(&numpy::dtype::<i32>(py)),
        DType::Bool => dt.is_equiv_to(&numpy::dtype::<bool>(py)),
    };
    // The same type in the other byte order converts exactly.
    let swapped = !matches
        && dt.itemsize() == want.item_size()
        && ((kind == b'f' && matches!(want, DType::F32 | DType::F64))
            || (kind == b'i' && want == DType::I32));
    let arr = if matches {
        arr
    } else if swapped {
        let c = arr.call_method1("astype", (numpy_name(want),))?;
        c.cast_into::<PyUntypedArray>().map_err(PyErr::from)?
    } else if want == DType::I32 && (kind == b'i' || kind == b'u') {
        let converted = arr.call_method1("astype", ("int32",))?;
        let eq = converted.rich_compare(&arr, pyo3::basic::CompareOp::Eq)?;
        let same: bool = eq.call_method0("all")?.extract()?;
        if !same {
            return Err(InputError::new_err(format!(
                "input `{name}` ({what}): its {} values do not all fit in int32",
                dt.str()?.cast_into::<PyString>().map_err(PyErr::from)?.to_cow()?
            )));
        }
        converted.cast_into::<PyUntypedArray>().map_err(PyErr::from)?
    } else {
        let hint = match want {
            DType::F64 | DType::F32 if kind == b'f' => {
                format!(" (convert it with `.astype(np.{})`)", numpy_name(want))
            }
            _ => String::new(),
        };
        return Err(InputError::new_err(format!(
            "input `{name}` ({what}): expected dtype {}, got {}{hint}",
            numpy_name(want),
            dt.str()?.to_cow()?.trim_start_matches(['<', '>', '=', '|'])
        )));
    };
    // C order and aligned (checked in Rust: the hot path makes no Python call), or a copy
    // that is (NumPy's `require`).
    if arr.is_c_contiguous() {
        let held = typed(arr.clone(), want)?;
        if held.readable() {
            return Ok(held);
        }
    }
    let c = numpy(py)?.getattr("require")?.call1((&arr, py.None(), "CA"))?;
    typed(c.cast_into::<PyUntypedArray>().map_err(PyErr::from)?, want)
}

/// A borrow of `arr`, whose dtype is `want`'s.
fn typed<'py>(arr: Bound<'py, PyUntypedArray>, want: DType) -> PyResult<Held<'py>> {
    Ok(match want {
        DType::F64 => Held::F64(arr.cast_into::<PyArrayDyn<f64>>()?.readonly()),
        DType::F32 => Held::F32(arr.cast_into::<PyArrayDyn<f32>>()?.readonly()),
        DType::I32 => Held::I32(arr.cast_into::<PyArrayDyn<i32>>()?.readonly()),
        DType::Bool => Held::Bool(arr.cast_into::<PyArrayDyn<bool>>()?.readonly()),
    })
}

/// A new NumPy array of `dims` and dtype `d`, and `fill` run on its bytes (with the GIL held by
/// the caller; `fill` may release it).
pub(crate) fn output<'py>(
    py: Python<'py>,
    d: DType,
    dims: &[usize],
    fill: impl FnOnce(&mut [u8]) -> PyResult<()>,
) -> PyResult<Bound<'py, PyAny>> {
    let n: usize = dims.iter().product();
    let dims = numpy::IxDyn(dims);
    match d {
        DType::F64 => {
            let a = PyArrayDyn::<f64>::zeros(py, dims, false);
            fill(bytemuck::cast_slice_mut(a.readwrite().as_slice_mut()?))?;
            Ok(a.into_any())
        }
        DType::F32 => {
            let a = PyArrayDyn::<f32>::zeros(py, dims, false);
            fill(bytemuck::cast_slice_mut(a.readwrite().as_slice_mut()?))?;
            Ok(a.into_any())
        }
        DType::I32 => {
            let a = PyArrayDyn::<i32>::zeros(py, dims, false);
            fill(bytemuck::cast_slice_mut(a.readwrite().as_slice_mut()?))?;
            Ok(a.into_any())
        }
        DType::Bool => {
            let mut bytes = vec![0u8; n];
            fill(&mut bytes)?;
            let v: Vec<bool> = bytes.iter().map(|&b| b != 0).collect();
            Ok(PyArray1::<bool>::from_vec(py, v).reshape(dims)?.into_any())
        }
    }
}

/// A tensor as a new NumPy array (its data moved, not copied).
pub(crate) fn to_numpy<'py>(py: Python<'py>, t: Tensor) -> PyResult<Bound<'py, PyAny>> {
    let dims = numpy::IxDyn(t.shape.dims());
    Ok(match t.data {
        Data::F64(v) => PyArray1::from_vec(py, v).reshape(dims)?.into_any(),
        Data::F32(v) => PyArray1::from_vec(py, v).reshape(dims)?.into_any(),
        Data::I32(v) => PyArray1::from_vec(py, v).reshape(dims)?.into_any(),
        Data::Bool(v) => PyArray1::from_vec(py, v).reshape(dims)?.into_any(),
    })
}

/// A NumPy array (or array-like) of dtype `want` as an owned tensor.
pub(crate) fn to_tensor(obj: &Bound<'_, PyAny>, want: DType, name: &str) -> PyResult<Tensor> {
    let h = hold(obj, want, name, "value")?;
    let dims = h.dims();
    let data = match &h {
        Held::F64(a) => Data::F64(a.as_slice()?.to_vec()),
        Held::F32(a) => Data::F32(a.as_slice()?.to_vec()),
        Held::I32(a) => Data::I32(a.as_slice()?.to_vec()),
        Held::Bool(a) => Data::Bool(a.as_slice()?.to_vec()),
        Held::Owned(t) => t.data.clone(),
    };
    Tensor::new(dims, data).map_err(|e| crate::errors::ShapeError::new_err(e.to_string()))
}
