//! Writing `.npy` files byte for byte as `np.save` does.

use std::path::Path;

use crate::header::MAGIC;
use crate::{Array, DType, Data, NpyError, format_shape, io_error};

/// numpy aligns the start of the data to this many bytes.
const ARRAY_ALIGN: usize = 64;

/// numpy leaves room for the growth axis to reach this many digits.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Serializes an array exactly as numpy's `np.save` does: little-endian, C
/// order, format version 1.0 (2.0 if the header does not fit in 65535
/// bytes), header padded with spaces and `'\n'` so that the data starts at a
/// multiple of 64 bytes.
///
/// If `shape` and `data` disagree (possible because the fields are public),
/// the bytes are still produced, and reading them back fails with
/// [`NpyError::DataShort`] or [`NpyError::DataTrailing`].
pub fn write(array: &Array) -> Vec<u8> {
    let mut out = header_bytes(array.dtype(), &array.shape);
    let data_len = array.data.len().saturating_mul(array.dtype().item_size());
    out.reserve_exact(data_len);
    match &array.data {
        Data::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
    }
    out
}

/// The bytes [`write()`] puts before the data of an array of `dtype` and `shape`: a file
/// written as this header followed by the elements (little-endian, C order) is what `np.save`
/// writes. For writing an array too large to hold in memory piece by piece.
pub fn header_bytes(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        format_shape(shape)
    );
    // Room for the first axis to grow in place, as numpy leaves it.
    if let Some(first) = shape.first() {
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
    let mut out = Vec::with_capacity(header_start + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    out.extend_from_slice(&len_field);
    out.extend_from_slice(dict.as_bytes());
    out.resize(header_start + header_len - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes an array to disk with [`write()`]. I/O errors carry the path.
pub fn write_file(path: &Path, array: &Array) -> Result<(), NpyError> {
    std::fs::write(path, write(array)).map_err(|source| io_error(path, source))
}
