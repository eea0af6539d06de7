//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong when reading or writing a `.npy` file.
///
/// There is one variant per class of problem, so callers (and tests) can
/// match on the kind of failure; the [`Display`](std::fmt::Display) message
/// says what is wrong and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// The file does not start with the `.npy` magic string `\x93NUMPY`.
    #[error("not a .npy file: expected the magic string \\x93NUMPY at the start of the file")]
    BadMagic,

    /// The format version is not 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor}: expected 1.0, 2.0 or 3.0")]
    UnsupportedVersion {
        /// Major version byte found in the file.
        major: u8,
        /// Minor version byte found in the file.
        minor: u8,
    },

    /// The file ends before the fixed preamble or before the end of the
    /// header whose length it declares.
    #[error("truncated .npy file: {what} needs {expected} bytes but the file has only {actual}")]
    Truncated {
        /// What could not be read: `"the preamble"` or `"the header"`.
        what: &'static str,
        /// Number of bytes from the start of the file that were needed.
        expected: usize,
        /// Number of bytes actually present.
        actual: usize,
    },

    /// The declared header length exceeds the 64 KiB safety limit
    /// ([`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN)); the header is not read.
    #[error("header length {len} bytes exceeds the limit of {} bytes", crate::MAX_HEADER_LEN)]
    HeaderTooLong {
        /// Header length declared in the file.
        len: u32,
    },

    /// A version 3.0 header is not valid UTF-8.
    #[error(
        "header is not valid UTF-8 (required by format version 3.0): invalid byte at offset {offset} of the header"
    )]
    HeaderEncoding {
        /// Byte offset, from the start of the header text, of the first invalid byte.
        offset: usize,
    },

    /// The header is not a well-formed Python literal.
    #[error("header syntax error at byte {offset} of the header: {message}")]
    HeaderSyntax {
        /// Byte offset, from the start of the header text, where the error was found.
        offset: usize,
        /// What was wrong and what was expected.
        message: String,
    },

    /// The header is a valid literal but not a dict.
    #[error("header is {found}, expected a dict with keys 'descr', 'fortran_order' and 'shape'")]
    HeaderNotDict {
        /// Kind of literal found instead, e.g. `"a tuple"`.
        found: &'static str,
    },

    /// One of the three required keys is missing from the header dict.
    #[error("header dict has no key '{0}': expected keys 'descr', 'fortran_order' and 'shape'")]
    MissingKey(&'static str),

    /// The header dict has a key other than the three allowed ones. Holds
    /// the key's string value, or the key's source text if it is not a string.
    #[error(
        "unexpected header key '{0}': expected exactly the keys 'descr', 'fortran_order' and 'shape'"
    )]
    UnexpectedKey(String),

    /// A header value has the wrong type or range.
    #[error("invalid value for header key '{key}': {message}")]
    BadValue {
        /// The key whose value is invalid.
        key: &'static str,
        /// What was wrong and what was expected.
        message: String,
    },

    /// The dtype is not one of `f32`, `f64`, `i32`, `i64`, `bool`. Holds the `descr`
    /// string, or the `descr` source text if it is not a string (e.g. the
    /// list of a structured dtype).
    #[error(
        "unsupported dtype '{0}': expected little-endian float32 ('<f4'), float64 ('<f8'), int32 ('<i4'), int64 ('<i8') or bool ('|b1')"
    )]
    UnsupportedDtype(String),

    /// The dtype is a big-endian float, which is not supported.
    #[error(
        "big-endian dtype '{0}' is not supported: convert it first, e.g. with numpy `arr.astype('<f8')` (or '<f4')"
    )]
    BigEndian(String),

    /// The number of elements or the data size in bytes does not fit
    /// (exceeds `isize::MAX`).
    #[error("shape {shape} is too large: the element count or byte size exceeds isize::MAX")]
    ShapeOverflow {
        /// The shape as written in the header, e.g. `"(1099511627776, 1099511627776)"`.
        shape: String,
    },

    /// The data section is shorter than the header's shape and dtype require.
    #[error("data section too short: expected {expected} bytes, found {actual}")]
    DataShort {
        /// Bytes required by shape and dtype.
        expected: usize,
        /// Bytes present after the header.
        actual: usize,
    },

    /// The data section is longer than the header's shape and dtype require.
    #[error("data section has trailing bytes: expected {expected} bytes, found {actual}")]
    DataTrailing {
        /// Bytes required by shape and dtype.
        expected: usize,
        /// Bytes present after the header.
        actual: usize,
    },

    /// A bool element is a byte other than 0 or 1.
    #[error("invalid bool byte {byte:#04x} at element {index} (file order): expected 0x00 or 0x01")]
    InvalidBool {
        /// Index of the element in the file's data section (file order).
        index: usize,
        /// The offending byte.
        byte: u8,
    },

    /// An `int64` element does not fit in `i32`, the integer type arrays are read as.
    #[error(
        "int64 element {value} at element {index} (file order) does not fit in i32 (range -2147483648..=2147483647)"
    )]
    IntOutOfRange {
        /// Index of the element in the file's data section (file order).
        index: usize,
        /// The value in the file.
        value: i64,
    },

    /// [`Array::new`](crate::Array::new) was given a shape whose product
    /// differs from the number of elements.
    #[error(
        "shape {} holds {} elements but the data has {len}",
        crate::format_shape(.shape),
        crate::shape_product_text(.shape)
    )]
    ShapeMismatch {
        /// The requested shape.
        shape: Vec<usize>,
        /// The number of data elements.
        len: usize,
    },

    /// An `.npz` archive would reach 4 GiB (or 65 535 members), which needs ZIP64.
    #[error("the .npz archive would reach 4 GiB or 65535 members (ZIP64 is not written)")]
    NpzTooLarge,

    /// An `.npz` member is compressed (`numpy.savez_compressed`); only stored members are read.
    #[error(
        "member `{0}` of the .npz archive is compressed: save it with numpy.savez, not savez_compressed"
    )]
    NpzCompressed(String),

    /// An `.npz` archive that is not a well-formed ZIP archive of `.npy` members.
    #[error("malformed .npz archive: {0}")]
    NpzMalformed(String),

    /// An I/O error while reading or writing `path`.
    #[error("i/o error on {}: {source}", .path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
