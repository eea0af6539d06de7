//! Reading and writing NumPy `.npy` files, hardened against malformed input.
//!
//! Only the three element types jjt works with are supported: `f32`, `f64`
//! and `bool` ([`DType`]). Arrays ([`Array`]) are always held in C
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
//! * `bool`: `'|b1'` (what numpy writes), `'<b1'`, `'>b1'`, `'=b1'`, `'b1'`,
//!   and the same with `?` in place of `b1`.
//!
//! `=`, `|` and no prefix mean native byte order, which is little-endian on
//! every supported host. Big-endian floats (`'>f4'`, `'>f8'`) are rejected
//! with [`NpyError::BigEndian`]; every other descriptor (integers, complex,
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
mod literal;

use std::fmt;
use std::io::Read;
use std::path::Path;

pub use error::NpyError;
use literal::{Encoding, Kind, Node};

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Largest accepted header length in bytes (64 KiB). Longer headers are
/// rejected with [`NpyError::HeaderTooLong`] before being read.
pub const MAX_HEADER_LEN: usize = 65536;

/// numpy aligns the start of the data to this many bytes.
const ARRAY_ALIGN: usize = 64;

/// numpy leaves room for the growth axis to reach this many digits.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float (`'<f4'`).
    F32,
    /// 64-bit IEEE float (`'<f8'`).
    F64,
    /// Boolean stored as one byte, 0 or 1 (`'|b1'`).
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn item_size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::Bool => 1,
        }
    }

    /// The numpy `descr` string written for this dtype.
    fn descr(self) -> &'static str {
        match self {
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::Bool => "|b1",
        }
    }
}

impl fmt::Display for DType {
    /// Formats as `f32`, `f64` or `bool`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
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
    /// `bool` elements.
    Bool(Vec<bool>),
}

impl Data {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
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

/// The parsed and validated header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version `(major, minor)`: `(1, 0)`, `(2, 0)` or `(3, 0)`.
    pub version: (u8, u8),
    /// Element type.
    pub dtype: DType,
    /// Whether the data is stored in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// Offset of the first data byte from the start of the file.
    pub data_offset: usize,
}

impl Header {
    /// Number of elements (product of the shape), already checked not to
    /// overflow by [`read_header`].
    pub fn element_count(&self) -> usize {
        element_count(&self.shape).unwrap_or(usize::MAX)
    }

    /// Size of the data section in bytes, already checked not to overflow by
    /// [`read_header`].
    pub fn data_len(&self) -> usize {
        self.element_count().saturating_mul(self.dtype.item_size())
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

fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Element count and byte size for `shape`, both at most `isize::MAX`.
fn checked_sizes(shape: &[usize], dtype: DType) -> Option<(usize, usize)> {
    let count = element_count(shape)?;
    let bytes = count.checked_mul(dtype.item_size())?;
    (isize::try_from(bytes).is_ok()).then_some((count, bytes))
}

/// Fixed part of the file before the header text.
struct Preamble {
    version: (u8, u8),
    header_start: usize,
    header_end: usize,
}

/// Checks magic, version and header length, and that the whole header is
/// present in `bytes`.
fn preamble(bytes: &[u8]) -> Result<Preamble, NpyError> {
    let n = bytes.len().min(MAGIC.len());
    if bytes.get(..n) != MAGIC.get(..n) {
        return Err(NpyError::BadMagic);
    }
    let (Some(&major), Some(&minor)) = (bytes.get(6), bytes.get(7)) else {
        return Err(NpyError::Truncated {
            what: "the preamble",
            expected: 10,
            actual: bytes.len(),
        });
    };
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    let header_start = 8 + len_size;
    let Some(len_bytes) = bytes.get(8..header_start) else {
        return Err(NpyError::Truncated {
            what: "the preamble",
            expected: header_start,
            actual: bytes.len(),
        });
    };
    let len = len_bytes.iter().rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    let header_len = usize::try_from(len).unwrap_or(usize::MAX);
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::HeaderTooLong { len });
    }
    // Cannot overflow: header_start <= 12 and header_len <= MAX_HEADER_LEN.
    let header_end = header_start + header_len;
    if bytes.len() < header_end {
        return Err(NpyError::Truncated {
            what: "the header",
            expected: header_end,
            actual: bytes.len(),
        });
    }
    Ok(Preamble { version: (major, minor), header_start, header_end })
}

/// Parses and validates the header of a `.npy` file.
///
/// `bytes` must contain at least the preamble and the header; the data need
/// not be present. Besides the syntax and the three keys, this checks that
/// the element count and the data size in bytes fit in `isize`
/// ([`NpyError::ShapeOverflow`]).
pub fn read_header(bytes: &[u8]) -> Result<Header, NpyError> {
    let pre = preamble(bytes)?;
    let text = bytes.get(pre.header_start..pre.header_end).unwrap_or_default();
    let encoding = if pre.version == (3, 0) {
        std::str::from_utf8(text)
            .map_err(|e| NpyError::HeaderEncoding { offset: e.valid_up_to() })?;
        Encoding::Utf8
    } else {
        Encoding::Latin1
    };
    let root = literal::parse(text, encoding, pre.version <= (2, 0))?;
    let Kind::Dict(entries) = root.kind else {
        return Err(NpyError::HeaderNotDict { found: root.kind.describe() });
    };

    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (key, value) in &entries {
        let slot = match &key.kind {
            Kind::Str(k) if k == "descr" => &mut descr,
            Kind::Str(k) if k == "fortran_order" => &mut fortran_order,
            Kind::Str(k) if k == "shape" => &mut shape,
            Kind::Str(k) => return Err(NpyError::UnexpectedKey(k.clone())),
            _ => {
                return Err(NpyError::UnexpectedKey(literal::text(
                    text, key.start, key.end, encoding,
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(NpyError::HeaderSyntax {
                offset: key.start,
                message: format!(
                    "duplicate key {}, expected each key once",
                    literal::text(text, key.start, key.end, encoding)
                ),
            });
        }
    }
    let descr = descr.ok_or(NpyError::MissingKey("descr"))?;
    let fortran_order = fortran_order.ok_or(NpyError::MissingKey("fortran_order"))?;
    let shape = shape.ok_or(NpyError::MissingKey("shape"))?;

    let dtype = parse_descr(descr, text, encoding)?;
    let Kind::Bool(fortran_order) = fortran_order.kind else {
        return Err(NpyError::BadValue {
            key: "fortran_order",
            message: format!(
                "expected True or False, found {}",
                literal::text(text, fortran_order.start, fortran_order.end, encoding)
            ),
        });
    };
    let shape = parse_shape(shape, text, encoding)?;
    if checked_sizes(&shape, dtype).is_none() {
        return Err(NpyError::ShapeOverflow { shape: format_shape(&shape) });
    }
    Ok(Header { version: pre.version, dtype, fortran_order, shape, data_offset: pre.header_end })
}

fn parse_descr(node: &Node, text: &[u8], encoding: Encoding) -> Result<DType, NpyError> {
    let Kind::Str(descr) = &node.kind else {
        // Structured dtypes are lists; anything else is not a dtype at all.
        return Err(NpyError::UnsupportedDtype(literal::text(
            text, node.start, node.end, encoding,
        )));
    };
    // '=', '|' and no prefix mean native order; only little-endian hosts
    // read native floats directly.
    let native_is_little = cfg!(target_endian = "little");
    let (order, code) = match descr.as_bytes().first() {
        Some(&c @ (b'<' | b'>' | b'=' | b'|')) => (c, descr.get(1..).unwrap_or_default()),
        _ => (b'=', descr.as_str()),
    };
    let dtype = match code {
        "f4" => DType::F32,
        "f8" => DType::F64,
        "b1" | "?" => return Ok(DType::Bool),
        _ => return Err(NpyError::UnsupportedDtype(descr.clone())),
    };
    let little = match order {
        b'<' => true,
        b'>' => false,
        _ => native_is_little,
    };
    if little { Ok(dtype) } else { Err(NpyError::BigEndian(descr.clone())) }
}

fn parse_shape(node: &Node, text: &[u8], encoding: Encoding) -> Result<Vec<usize>, NpyError> {
    let source = || literal::text(text, node.start, node.end, encoding);
    let Kind::Tuple(items) = &node.kind else {
        return Err(NpyError::BadValue {
            key: "shape",
            message: format!(
                "expected a tuple of non-negative integers, found {} {}",
                node.kind.describe(),
                source()
            ),
        });
    };
    let mut shape = Vec::with_capacity(items.len());
    for item in items {
        match item.kind {
            Kind::Int { negative: false, magnitude: Some(d) } => shape.push(d),
            Kind::Int { negative: true, magnitude: Some(0) } => shape.push(0),
            Kind::Int { negative: false, magnitude: None } => {
                return Err(NpyError::ShapeOverflow { shape: source() });
            }
            _ => {
                return Err(NpyError::BadValue {
                    key: "shape",
                    message: format!(
                        "expected a tuple of non-negative integers, found {} {} in {}",
                        item.kind.describe(),
                        literal::text(text, item.start, item.end, encoding),
                        source()
                    ),
                });
            }
        }
    }
    Ok(shape)
}

/// Reads and fully validates a `.npy` file held in memory.
///
/// The data section must be exactly as long as shape and dtype require
/// ([`NpyError::DataShort`], [`NpyError::DataTrailing`]); bool bytes must be
/// 0 or 1. Fortran-order data is transposed into C order.
pub fn read(bytes: &[u8]) -> Result<Array, NpyError> {
    let header = read_header(bytes)?;
    let expected = header.data_len();
    let data = bytes.get(header.data_offset..).unwrap_or_default();
    // Compare before allocating anything sized from the header.
    if data.len() < expected {
        return Err(NpyError::DataShort { expected, actual: data.len() });
    }
    if data.len() > expected {
        return Err(NpyError::DataTrailing { expected, actual: data.len() });
    }
    let shape = header.shape;
    let data = match header.dtype {
        DType::F32 => {
            let v: Vec<f32> =
                data.as_chunks::<4>().0.iter().map(|c| f32::from_le_bytes(*c)).collect();
            Data::F32(to_c_order(v, &shape, header.fortran_order))
        }
        DType::F64 => {
            let v: Vec<f64> =
                data.as_chunks::<8>().0.iter().map(|c| f64::from_le_bytes(*c)).collect();
            Data::F64(to_c_order(v, &shape, header.fortran_order))
        }
        DType::Bool => {
            let v = data
                .iter()
                .enumerate()
                .map(|(index, &byte)| match byte {
                    0 => Ok(false),
                    1 => Ok(true),
                    _ => Err(NpyError::InvalidBool { index, byte }),
                })
                .collect::<Result<Vec<bool>, NpyError>>()?;
            Data::Bool(to_c_order(v, &shape, header.fortran_order))
        }
    };
    Ok(Array { shape, data })
}

/// Reorders Fortran-order elements into C order (no-op for C order).
///
/// `src.len()` equals the product of `shape` (checked by the caller).
fn to_c_order<T: Copy>(src: Vec<T>, shape: &[usize], fortran_order: bool) -> Vec<T> {
    // With at most one dimension larger than 1, both orders coincide.
    if !fortran_order || shape.iter().filter(|&&d| d > 1).count() <= 1 {
        return src;
    }
    // Fortran strides: the first axis varies fastest. Every partial product
    // is at most src.len() unless a dimension is 0, in which case src is
    // empty and the loop below does not run.
    let mut strides = Vec::with_capacity(shape.len());
    let mut stride = 1usize;
    for &d in shape {
        strides.push(stride);
        stride = stride.saturating_mul(d);
    }
    let mut out = Vec::with_capacity(src.len());
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..src.len() {
        match src.get(offset) {
            Some(&x) => out.push(x),
            None => break, // unreachable by construction
        }
        // Advance the C-order multi-index (last axis fastest).
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}

/// Reads a `.npy` file from disk; see [`read`]. I/O errors carry the path.
pub fn read_file(path: &Path) -> Result<Array, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| io_error(path, source))?;
    read(&bytes)
}

/// Reads and validates only the header of a `.npy` file on disk; see
/// [`read_header`].
///
/// Reads at most the preamble and the header (no more than
/// 12 + [`MAX_HEADER_LEN`] bytes), never the data.
pub fn read_file_header(path: &Path) -> Result<Header, NpyError> {
    let file = std::fs::File::open(path).map_err(|source| io_error(path, source))?;
    let mut reader = file.take(12);
    let mut buf = Vec::with_capacity(12);
    reader.read_to_end(&mut buf).map_err(|source| io_error(path, source))?;
    let needed = match preamble(&buf) {
        Ok(pre) => pre.header_end,
        Err(NpyError::Truncated { what: "the header", expected, .. }) => expected,
        Err(e) => return Err(e),
    };
    // `needed` is at most 12 + MAX_HEADER_LEN, checked by `preamble`.
    let mut file = reader.into_inner();
    let more = needed.saturating_sub(buf.len());
    (&mut file)
        .take(u64::try_from(more).unwrap_or(u64::MAX))
        .read_to_end(&mut buf)
        .map_err(|source| io_error(path, source))?;
    read_header(&buf)
}

/// Serializes an array exactly as numpy's `np.save` does: little-endian, C
/// order, format version 1.0 (2.0 if the header does not fit in 65535
/// bytes), header padded with spaces and `'\n'` so that the data starts at a
/// multiple of 64 bytes.
///
/// If `shape` and `data` disagree (possible because the fields are public),
/// the bytes are still produced, and reading them back fails with
/// [`NpyError::DataShort`] or [`NpyError::DataTrailing`].
pub fn write(array: &Array) -> Vec<u8> {
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        array.dtype().descr(),
        format_shape(&array.shape)
    );
    // Room for the first axis to grow in place, as numpy leaves it.
    if let Some(first) = array.shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    let padded_len = |len_size: usize| {
        let unpadded = MAGIC.len() + 2 + len_size + dict.len() + 1;
        // numpy pads by a full 64 bytes when already aligned.
        dict.len() + 1 + ARRAY_ALIGN - unpadded % ARRAY_ALIGN
    };
    let v1_len = padded_len(2);
    let (version, len_field, header_len) = match u16::try_from(v1_len) {
        Ok(len) => (1u8, len.to_le_bytes().to_vec(), v1_len),
        Err(_) => {
            let len = padded_len(4);
            (2u8, u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes().to_vec(), len)
        }
    };
    let header_start = MAGIC.len() + 2 + len_field.len();
    let data_len = array.data.len().saturating_mul(array.dtype().item_size());
    let mut out = Vec::with_capacity(header_start + header_len + data_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    out.extend_from_slice(&len_field);
    out.extend_from_slice(dict.as_bytes());
    out.resize(header_start + header_len - 1, b' ');
    out.push(b'\n');
    match &array.data {
        Data::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
    }
    out
}

/// Writes an array to disk with [`write()`]. I/O errors carry the path.
pub fn write_file(path: &Path, array: &Array) -> Result<(), NpyError> {
    std::fs::write(path, write(array)).map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: std::io::Error) -> NpyError {
    NpyError::Io { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(version: (u8, u8), header: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        if version.0 == 1 {
            out.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
        } else {
            out.extend_from_slice(&u32::try_from(header.len()).unwrap().to_le_bytes());
        }
        out.extend_from_slice(header);
        out
    }

    fn descr_result(descr: &str) -> Result<Header, NpyError> {
        let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}\n");
        read_header(&header_bytes((1, 0), h.as_bytes()))
    }

    #[test]
    fn accepted_descrs() {
        for (d, t) in [
            ("<f4", DType::F32),
            ("=f4", DType::F32),
            ("|f4", DType::F32),
            ("f4", DType::F32),
            ("<f8", DType::F64),
            ("=f8", DType::F64),
            ("f8", DType::F64),
            ("|b1", DType::Bool),
            ("<b1", DType::Bool),
            (">b1", DType::Bool),
            ("b1", DType::Bool),
            ("?", DType::Bool),
            ("|?", DType::Bool),
        ] {
            assert_eq!(descr_result(d).map(|h| h.dtype).ok(), Some(t), "{d}");
        }
    }

    #[test]
    fn rejected_descrs() {
        for d in [">f4", ">f8"] {
            assert!(matches!(descr_result(d), Err(NpyError::BigEndian(s)) if s == d), "{d}");
        }
        for d in ["<f2", "<i8", "<c16", "|O", "float64", "", "<", "<f16", ">i4", "|u1"] {
            assert!(matches!(descr_result(d), Err(NpyError::UnsupportedDtype(s)) if s == d), "{d}");
        }
    }

    #[test]
    fn format_shape_is_python_like() {
        assert_eq!(format_shape(&[]), "()");
        assert_eq!(format_shape(&[5]), "(5,)");
        assert_eq!(format_shape(&[2, 3, 0]), "(2, 3, 0)");
    }

    #[test]
    fn fortran_transpose_2d_and_3d() {
        // numpy: np.arange(6).reshape(2, 3) stored in F order is [0, 3, 1, 4, 2, 5].
        assert_eq!(to_c_order(vec![0, 3, 1, 4, 2, 5], &[2, 3], true), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(to_c_order(vec![0, 3, 1, 4, 2, 5], &[2, 3], false), vec![0, 3, 1, 4, 2, 5]);
        // Shape (2, 3, 4): element (i, j, k) = 12i + 4j + k sits at F offset i + 2j + 6k.
        let mut f = vec![0; 24];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    f[i + 2 * j + 6 * k] = 12 * i + 4 * j + k;
                }
            }
        }
        assert_eq!(to_c_order(f, &[2, 3, 4], true), (0..24).collect::<Vec<_>>());
        // Unit dimensions do not change the order.
        assert_eq!(to_c_order(vec![1, 2, 3], &[1, 3, 1], true), vec![1, 2, 3]);
    }

    #[test]
    fn header_accessors() {
        let h = descr_result("<f8").unwrap();
        assert_eq!(h.element_count(), 2);
        assert_eq!(h.data_len(), 16);
        let text = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
        assert_eq!(h.data_offset, 10 + text.len());
    }

    #[test]
    fn version_2_header_written_by_us_parses() {
        let array = Array::new(vec![1; 22_000], Data::F64(vec![0.5])).unwrap();
        let bytes = write(&array);
        // Too long for the reader's limit, so parse the header by hand.
        assert!(matches!(preamble(&bytes), Err(NpyError::HeaderTooLong { .. })));
        assert_eq!(&bytes[6..8], &[2, 0]);
        let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert!(len > usize::from(u16::MAX));
        let text = &bytes[12..12 + len];
        let Kind::Dict(entries) = literal::parse(text, Encoding::Latin1, false).unwrap().kind
        else {
            panic!("not a dict")
        };
        let shape = entries.iter().find(|(k, _)| k.kind == Kind::Str("shape".into())).unwrap();
        assert_eq!(parse_shape(&shape.1, text, Encoding::Latin1).unwrap(), vec![1; 22_000]);
    }

    #[test]
    fn negative_zero_dimension_is_zero() {
        let h = b"{'descr': '<f8', 'fortran_order': False, 'shape': (-0, 3)}";
        assert_eq!(read_header(&header_bytes((1, 0), h)).unwrap().shape, vec![0, 3]);
    }

    #[test]
    fn python2_long_suffix_only_before_v3() {
        let h = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L)}";
        assert_eq!(read_header(&header_bytes((1, 0), h)).unwrap().shape, vec![2, 3]);
        assert!(matches!(
            read_header(&header_bytes((3, 0), h)),
            Err(NpyError::HeaderSyntax { .. })
        ));
    }
}
