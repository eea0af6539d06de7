//! Round trips through `write`/`read` and the file functions, plus the
//! small value-level API (`Array::new`, `Data`, `DType`).

mod common;

use common::{assert_same, temp_path};
use jjt_npy::{
    Array, DType, Data, NpyError, read, read_file, read_file_header, read_header, write, write_file,
};

const SHAPES: &[&[usize]] =
    &[&[], &[0], &[1], &[5], &[0, 3], &[3, 0], &[2, 3], &[2, 3, 4], &[1, 1, 1, 7], &[4, 0, 2]];

/// Deterministic values for `n` elements, including special floats.
fn data(dtype: DType, n: usize) -> Data {
    let special_f64 = [f64::NAN, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE / 4.0];
    let special_f32 = [f32::NAN, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE / 4.0];
    match dtype {
        DType::F64 => Data::F64(
            (0..n).map(|i| special_f64.get(i).copied().unwrap_or(i as f64 * 1.25 - 3.0)).collect(),
        ),
        DType::F32 => Data::F32(
            (0..n).map(|i| special_f32.get(i).copied().unwrap_or(i as f32 * 0.75 - 2.0)).collect(),
        ),
        DType::I32 => Data::I32(
            (0..n)
                .map(|i| [i32::MIN, i32::MAX, -1].get(i).copied().unwrap_or(i as i32 - 4))
                .collect(),
        ),
        DType::Bool => Data::Bool((0..n).map(|i| i % 3 == 1).collect()),
    }
}

fn arrays() -> Vec<Array> {
    let mut out = Vec::new();
    for dtype in [DType::F32, DType::F64, DType::I32, DType::Bool] {
        for shape in SHAPES {
            let n = shape.iter().product();
            out.push(Array::new(shape.to_vec(), data(dtype, n)).unwrap());
        }
    }
    out
}

#[test]
fn write_then_read_gives_the_same_array() {
    for array in arrays() {
        let what = format!("{} {:?}", array.dtype(), array.shape);
        let bytes = write(&array);
        let back = read(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_same(&back, &array, &what);

        let header = read_header(&bytes).unwrap();
        assert_eq!(header.version, (1, 0), "{what}");
        assert!(!header.fortran_order, "{what}");
        assert_eq!(header.data_offset % 64, 0, "{what}");
        assert_eq!(bytes[header.data_offset - 1], b'\n', "{what}");
        assert_eq!(bytes.len(), header.data_offset + array.data.len() * array.dtype().item_size());
    }
}

#[test]
fn write_header_text_is_what_numpy_writes() {
    let array = Array::new(vec![2, 3], data(DType::F64, 6)).unwrap();
    let bytes = write(&array);
    let mut expected = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    expected.extend_from_slice(b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }");
    expected.resize(127, b' ');
    expected.push(b'\n');
    assert_eq!(&bytes[..128], &expected[..]);

    let zero_d = write(&Array::new(vec![], Data::Bool(vec![true])).unwrap());
    let text = String::from_utf8_lossy(&zero_d[10..zero_d.len() - 1]);
    assert_eq!(text.trim_end(), "{'descr': '|b1', 'fortran_order': False, 'shape': (), }");
    assert_eq!(zero_d.last(), Some(&1));
}

/// A header that does not fit in 65535 bytes is written as version 2.0. Such
/// a header also exceeds the reader's 64 KiB limit, so it is not read back.
#[test]
fn very_long_header_is_written_as_version_2() {
    let shape = vec![1usize; 22_000];
    let array = Array::new(shape, Data::F32(vec![1.5])).unwrap();
    let bytes = write(&array);
    assert_eq!(&bytes[..8], b"\x93NUMPY\x02\x00");
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let data_offset = 12 + len as usize;
    assert_eq!(data_offset % 64, 0);
    assert_eq!(bytes.len(), data_offset + 4);
    assert_eq!(bytes[data_offset - 1], b'\n');
    assert_eq!(&bytes[data_offset..], &1.5f32.to_le_bytes());
    assert!(matches!(read(&bytes), Err(NpyError::HeaderTooLong { len: l }) if l == len));
}

#[test]
fn file_round_trip() {
    let path = temp_path("roundtrip.npy");
    let array = Array::new(vec![3, 2], data(DType::F64, 6)).unwrap();
    write_file(&path, &array).unwrap();
    let back = read_file(&path);
    let header = read_file_header(&path);
    let on_disk = std::fs::read(&path);
    std::fs::remove_file(&path).unwrap();
    assert_same(&back.unwrap(), &array, "file");
    assert_eq!(on_disk.unwrap(), write(&array));
    let header = header.unwrap();
    assert_eq!((header.shape, header.dtype, header.data_offset), (vec![3, 2], DType::F64, 128));
}

#[test]
fn read_file_header_does_not_need_the_data() {
    // A valid header followed by far less data than it declares.
    let path = temp_path("header-only.npy");
    let full = write(&Array::new(vec![1000], data(DType::F32, 1000)).unwrap());
    std::fs::write(&path, &full[..200]).unwrap();
    let header = read_file_header(&path);
    let array = read_file(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(header.unwrap().shape, vec![1000]);
    assert!(matches!(array, Err(NpyError::DataShort { expected: 4000, actual: 72 })));
}

#[test]
fn io_errors_carry_the_path() {
    let missing = temp_path("does-not-exist.npy");
    for result in [read_file(&missing).map(drop), read_file_header(&missing).map(drop)] {
        assert!(matches!(result, Err(NpyError::Io { ref path, .. }) if *path == missing));
    }
    let bad_dir = temp_path("no-such-dir").join("x.npy");
    let array = Array::new(vec![], Data::F64(vec![1.0])).unwrap();
    let err = write_file(&bad_dir, &array).unwrap_err();
    assert!(matches!(err, NpyError::Io { ref path, .. } if *path == bad_dir));
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn array_new_checks_the_shape() {
    let ok = |shape: Vec<usize>, n| Array::new(shape, data(DType::F32, n)).is_ok();
    assert!(ok(vec![], 1));
    assert!(ok(vec![2, 3], 6));
    assert!(ok(vec![0, 3], 0));
    assert!(!ok(vec![], 0));
    assert!(!ok(vec![2, 3], 5));
    assert!(!ok(vec![0, 3], 3));
    let err = Array::new(vec![usize::MAX, 2], Data::Bool(vec![])).unwrap_err();
    assert!(
        matches!(err, NpyError::ShapeMismatch { ref shape, len: 0 } if *shape == [usize::MAX, 2])
    );
    let err = Array::new(vec![2, 3], Data::F64(vec![0.0; 4])).unwrap_err();
    assert_eq!(err.to_string(), "shape (2, 3) holds 6 elements but the data has 4");
}

/// The fields are public, so an inconsistent array can be built; writing it
/// does not panic and reading the result reports the mismatch.
#[test]
fn inconsistent_array_writes_a_file_that_fails_to_read() {
    let short = Array { shape: vec![4], data: Data::F64(vec![1.0, 2.0]) };
    assert!(matches!(read(&write(&short)), Err(NpyError::DataShort { expected: 32, actual: 16 })));
    let long = Array { shape: vec![1], data: Data::Bool(vec![true, false]) };
    assert!(matches!(read(&write(&long)), Err(NpyError::DataTrailing { expected: 1, actual: 2 })));
}

#[test]
fn data_and_dtype_accessors() {
    let d = Data::Bool(vec![true, false]);
    assert_eq!((d.len(), d.is_empty(), d.dtype()), (2, false, DType::Bool));
    let e = Data::F32(vec![]);
    assert_eq!((e.len(), e.is_empty(), e.dtype()), (0, true, DType::F32));
    assert_eq!(Data::F64(vec![1.0]).dtype(), DType::F64);
    assert_eq!(
        [DType::F32, DType::F64, DType::I32, DType::Bool].map(|t| t.to_string()),
        ["f32", "f64", "i32", "bool"]
    );
    assert_eq!(
        [DType::F32, DType::F64, DType::I32, DType::Bool].map(DType::item_size),
        [4, 8, 4, 1]
    );
    let a = Array::new(vec![1, 2], Data::F64(vec![1.0, 2.0])).unwrap();
    assert_eq!(a.dtype(), DType::F64);
}
