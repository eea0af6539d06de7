//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use jjt_npy::{Array, DType, Data};

/// `tests/corpus/<kind>` inside this crate.
pub fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("corpus").join(kind)
}

/// Sorted `.npy` files in `tests/corpus/<kind>`, as (stem, path).
pub fn npy_files(kind: &str) -> Vec<(String, PathBuf)> {
    let dir = corpus_dir(kind);
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    files.sort();
    files
}

/// Element bit patterns, so that NaN, -0.0 and subnormals compare exactly.
pub fn bits(data: &Data) -> Vec<u64> {
    match data {
        Data::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        Data::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
        Data::I32(v) => v.iter().map(|&x| u64::from(x as u32)).collect(),
        Data::Bool(v) => v.iter().map(|&b| u64::from(b)).collect(),
    }
}

/// Asserts that two arrays have the same shape, dtype and element bits.
pub fn assert_same(actual: &Array, expected: &Array, what: &str) {
    assert_eq!(actual.shape, expected.shape, "{what}: shape");
    assert_eq!(actual.dtype(), expected.dtype(), "{what}: dtype");
    assert_eq!(bits(&actual.data), bits(&expected.data), "{what}: values");
}

/// Parses an `.expected.txt` file written by `gen_corpus.py`, without using
/// the `.npy` reader: `dtype X`, `shape d0 d1 ...`, then one value per line
/// (hex IEEE bits for floats, 0/1 for bools).
pub fn load_expected(path: &Path) -> Array {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let dtype = match lines.next().and_then(|l| l.strip_prefix("dtype ")) {
        Some("f32") => DType::F32,
        Some("f64") => DType::F64,
        Some("bool") => DType::Bool,
        Some("i32") => DType::I32,
        other => panic!("{}: bad dtype line {other:?}", path.display()),
    };
    let shape_line = lines.next().expect("shape line");
    let shape: Vec<usize> = shape_line
        .strip_prefix("shape")
        .expect("shape line")
        .split_whitespace()
        .map(|d| d.parse().expect("dimension"))
        .collect();
    let first_tokens: Vec<&str> =
        lines.map(|l| l.split_whitespace().next().expect("value")).collect();
    let hex = |t: &str| u64::from_str_radix(t.strip_prefix("0x").expect("hex value"), 16).unwrap();
    let data = match dtype {
        DType::F32 => Data::F32(
            first_tokens.iter().map(|t| f32::from_bits(u32::try_from(hex(t)).unwrap())).collect(),
        ),
        DType::F64 => Data::F64(first_tokens.iter().map(|t| f64::from_bits(hex(t))).collect()),
        DType::I32 => {
            Data::I32(first_tokens.iter().map(|t| t.parse().expect("i32 value")).collect())
        }
        DType::Bool => Data::Bool(
            first_tokens
                .iter()
                .map(|t| match *t {
                    "0" => false,
                    "1" => true,
                    other => panic!("bad bool {other}"),
                })
                .collect(),
        ),
    };
    Array::new(shape, data).expect("expected file is consistent")
}

/// The expected-values file next to a corpus `.npy` file.
pub fn expected_path(npy: &Path) -> PathBuf {
    npy.with_extension("expected.txt")
}

/// A fresh path in the system temp directory, unique to this process.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("jjt-npy-test-{}-{name}", std::process::id()))
}
