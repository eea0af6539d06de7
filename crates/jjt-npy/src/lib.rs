//! Reading and writing NumPy `.npy` files, hardened against malformed input.
//!
//! Only the four element types jjt works with are supported: `f32`, `f64`,
//! `i32` and `bool` ([`DType`]); `int64` files are read as `i32`, each element
//! checked to fit ([`NpyError::IntOutOfRange`] otherwise, never a wrap). Arrays ([`Array`]) are always held in C
//! (row-major) order; Fortran-order files are transposed on reading.
//!
//! # Format
//!
//! A `.npy` file is the magic string `\x93NUMPY`, a major and a minor version
//! byte, the header length (`u16` little-endian for version 1.0, `u32` for
//! 2.0 and 3.0), the header, and the raw data. The header is a Python dict
//! literal such as
//! `{'descr': '<f8', 'fortran_order': False, 'shape': (5, 10000), }`, padded
//! with spaces and a final `'\n'` so that the data starts at a multiple of 64
//! bytes. Version 1.0 and 2.0 headers are latin-1, version 3.0 headers UTF-8.
//!
//! Accepted `descr` values:
//!
//! * `f32`: `'<f4'`, `'=f4'`, `'|f4'`, `'f4'`;
//! * `f64`: `'<f8'`, `'=f8'`, `'|f8'`, `'f8'`;
//! * `i32`: `'<i4'`, `'=i4'`, `'|i4'`, `'i4'`;
//! * `i32` converted from `int64`: `'<i8'`, `'=i8'`, `'|i8'`, `'i8'` (every
//!   element must lie in `i32`'s range);
//! * `bool`: `'|b1'` (what numpy writes), `'<b1'`, `'>b1'`, `'=b1'`, `'b1'`,
//!   and the same with `?` in place of `b1`.
//!
//! `=`, `|` and no prefix mean native byte order, which is little-endian on
//! every supported host. Big-endian floats (`'>f4'`, `'>f8'`) are rejected
//! with [`NpyError::BigEndian`] (so are big-endian integers); every other descriptor (other integers, complex,
//! `'<f2'`, structured, object, ...) with [`NpyError::UnsupportedDtype`].
//!
//! # Hardening
//!
//! The reader never panics on any input. Headers longer than
//! [`MAX_HEADER_LEN`] are rejected from the length field alone, the literal
//! parser bounds its nesting depth, the header must be a dict with exactly
//! the keys `descr`, `fortran_order` and `shape`, all size arithmetic is
//! checked (sizes above `isize::MAX` bytes are [`NpyError::ShapeOverflow`]),
//! and no buffer is allocated from a size taken from the header before that
//! size has been compared with the number of bytes actually present.
//! Trailing bytes after the data are an error, as are bool bytes other than
//! 0 and 1.
//!
//! # Example
//!
//! ```
//! use jjt_npy::{Array, Data};
//!
//! let a = Array::new(vec![2, 3], Data::F64(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))?;
//! let bytes = jjt_npy::write(&a);
//! assert_eq!(jjt_npy::read(&bytes)?, a);
//! # Ok::<(), jjt_npy::NpyError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod header;
mod literal;
mod npz;
mod read;
mod write;

use std::fmt;
use std::path::Path;

pub use error::NpyError;
pub use header::{Header, MAX_HEADER_LEN, read_header};
pub use npz::{read_npz, read_npz_file, write_npz, write_npz_file};
pub use read::{read, read_file, read_file_header};
pub use write::{header_bytes, write, write_file};

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float (`'<f4'`).
    F32,
    /// 64-bit IEEE float (`'<f8'`).
    F64,
    /// 32-bit two's-complement integer (`'<i4'`).
    I32,
    /// Boolean stored as one byte, 0 or 1 (`'|b1'`).
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn item_size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::I32 => 4,
            DType::Bool => 1,
        }
    }

    /// The numpy `descr` string written for this dtype.
    pub(crate) fn descr(self) -> &'static str {
        match self {
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::I32 => "<i4",
            DType::Bool => "|b1",
        }
    }
}

impl fmt::Display for DType {
    /// Formats as `f32`, `f64`, `i32` or `bool`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::Bool => "bool",
        })
    }
}

/// The elements of an array, in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `bool` elements.
    Bool(Vec<bool>),
}

impl Data {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I32(_) => DType::I32,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An n-dimensional array in C (row-major) order.
///
/// The fields are public; [`Array::new`] checks that the product of `shape`
/// equals `data.len()`. A 0-d array has `shape == []` and one element.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Size of each dimension, outermost first.
    pub shape: Vec<usize>,
    /// The elements in C order.
    pub data: Data,
}

impl Array {
    /// Creates an array, checking that the product of `shape` equals the
    /// number of elements ([`NpyError::ShapeMismatch`] otherwise).
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Array, NpyError> {
        let len = data.len();
        if element_count(&shape) != Some(len) {
            return Err(NpyError::ShapeMismatch { shape, len });
        }
        Ok(Array { shape, data })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
}

/// Formats a shape like Python: `()`, `(5,)`, `(2, 3)`.
pub(crate) fn format_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_owned(),
        [n] => format!("({n},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// The product of a shape as text, for [`NpyError::ShapeMismatch`].
pub(crate) fn shape_product_text(shape: &[usize]) -> String {
    match element_count(shape) {
        Some(n) => n.to_string(),
        None => "more than usize::MAX".to_owned(),
    }
}

pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> NpyError {
    NpyError::Io { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_shape_is_python_like() {
        assert_eq!(format_shape(&[]), "()");
        assert_eq!(format_shape(&[5]), "(5,)");
        assert_eq!(format_shape(&[2, 3, 0]), "(2, 3, 0)");
    }
}
