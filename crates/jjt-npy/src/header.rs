//! The header of a `.npy` file: the preamble (magic, version, header length) and the Python
//! dict literal with `descr`, `fortran_order` and `shape`, validated before any data is read.

use crate::literal::{self, Encoding, Kind, Longs, Node};
use crate::{DType, NpyError, element_count, format_shape};

/// The magic string every `.npy` file starts with.
pub(crate) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Largest accepted header length in bytes (64 KiB). Longer headers are
/// rejected with [`NpyError::HeaderTooLong`] before being read.
pub const MAX_HEADER_LEN: usize = 65536;

/// The parsed and validated header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version `(major, minor)`: `(1, 0)`, `(2, 0)` or `(3, 0)`.
    pub version: (u8, u8),
    /// Element type of the array read from the file (`int64` files read as [`DType::I32`]).
    pub dtype: DType,
    /// Bytes per element in the file: `dtype.item_size()`, except 8 for `int64` files.
    pub stored_size: usize,
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
        self.element_count().saturating_mul(self.stored_size)
    }
}

/// Element count and byte size for `shape`, both at most `isize::MAX`.
fn checked_sizes(shape: &[usize], stored_size: usize) -> Option<(usize, usize)> {
    let count = element_count(shape)?;
    let bytes = count.checked_mul(stored_size)?;
    (isize::try_from(bytes).is_ok()).then_some((count, bytes))
}

/// Fixed part of the file before the header text.
pub(crate) struct Preamble {
    pub(crate) version: (u8, u8),
    pub(crate) header_start: usize,
    pub(crate) header_end: usize,
}

/// Checks magic, version and header length, and that the whole header is
/// present in `bytes`.
pub(crate) fn preamble(bytes: &[u8]) -> Result<Preamble, NpyError> {
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
    let longs = if pre.version <= (2, 0) { Longs::Accepted } else { Longs::Rejected };
    let root = literal::parse(text, encoding, longs)?;
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

    let (dtype, stored_size) = parse_descr(descr, text, encoding)?;
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
    if checked_sizes(&shape, stored_size).is_none() {
        return Err(NpyError::ShapeOverflow { shape: format_shape(&shape) });
    }
    Ok(Header {
        version: pre.version,
        dtype,
        stored_size,
        fortran_order,
        shape,
        data_offset: pre.header_end,
    })
}

/// The element type read and the bytes per element in the file.
fn parse_descr(node: &Node, text: &[u8], encoding: Encoding) -> Result<(DType, usize), NpyError> {
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
        "f4" => (DType::F32, 4),
        "f8" => (DType::F64, 8),
        "i4" => (DType::I32, 4),
        "i8" => (DType::I32, 8),
        "b1" | "?" => return Ok((DType::Bool, 1)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Array, Data, write};

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
        for (d, size) in [("<i4", 4), ("i4", 4), ("<i8", 8), ("=i8", 8), ("|i8", 8)] {
            let h = descr_result(d).ok();
            assert_eq!(
                h.as_ref().map(|h| (h.dtype, h.stored_size)),
                Some((DType::I32, size)),
                "{d}"
            );
        }
    }

    #[test]
    fn rejected_descrs() {
        for d in [">f4", ">f8", ">i4", ">i8"] {
            assert!(matches!(descr_result(d), Err(NpyError::BigEndian(s)) if s == d), "{d}");
        }
        for d in ["<f2", "<i2", "<c16", "|O", "float64", "", "<", "<f16", "<u4", "|u1"] {
            assert!(matches!(descr_result(d), Err(NpyError::UnsupportedDtype(s)) if s == d), "{d}");
        }
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
        let Kind::Dict(entries) =
            literal::parse(text, Encoding::Latin1, Longs::Rejected).unwrap().kind
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
