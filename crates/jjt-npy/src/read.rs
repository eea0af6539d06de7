//! Reading `.npy` data: the whole file checked against its header, Fortran order transposed.

use std::io::Read;
use std::path::Path;

use crate::header::preamble;
use crate::{Array, DType, Data, Header, NpyError, io_error, read_header};

/// Reads and fully validates a `.npy` file held in memory.
///
/// The data section must be exactly as long as shape and dtype require
/// ([`NpyError::DataShort`], [`NpyError::DataTrailing`]); bool bytes must be
/// 0 or 1; `int64` elements must fit in `i32` ([`NpyError::IntOutOfRange`]). Fortran-order data is transposed into C order.
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
        DType::I32 if header.stored_size == 8 => {
            let v = data
                .as_chunks::<8>()
                .0
                .iter()
                .enumerate()
                .map(|(index, c)| {
                    let value = i64::from_le_bytes(*c);
                    i32::try_from(value).map_err(|_| NpyError::IntOutOfRange { index, value })
                })
                .collect::<Result<Vec<i32>, NpyError>>()?;
            Data::I32(to_c_order(v, &shape, header.fortran_order))
        }
        DType::I32 => {
            let v: Vec<i32> =
                data.as_chunks::<4>().0.iter().map(|c| i32::from_le_bytes(*c)).collect();
            Data::I32(to_c_order(v, &shape, header.fortran_order))
        }
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
/// 12 + [`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN) bytes), never the data.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
