//! `.npz` archives as NumPy writes them (tests/corpus/gen_npz.py): `np.savez` reads back to the
//! arrays the generator describes; `np.savez_compressed` is refused by member name.

use jjt_npy::{Data, NpyError, read_npz_file};

fn corpus(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/npz").join(name)
}

#[test]
fn numpy_savez_reads_back() {
    let arrays = read_npz_file(&corpus("savez.npz")).unwrap();
    let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["w", "params.b", "tok"]);
    assert_eq!(arrays[0].1.shape, [2, 3]);
    assert_eq!(arrays[0].1.data, Data::F64(vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25]));
    assert_eq!(arrays[1].1.data, Data::F32(vec![-1.0, 0.0, 1.0]));
    assert_eq!(arrays[2].1.data, Data::I32(vec![3, 0, 7]));
}

#[test]
fn numpy_savez_compressed_is_refused_by_name() {
    let e = read_npz_file(&corpus("savez_compressed.npz")).unwrap_err();
    assert!(matches!(&e, NpyError::NpzCompressed(m) if m == "w.npy"), "{e}");
    assert!(e.to_string().contains("numpy.savez"), "{e}");
}
