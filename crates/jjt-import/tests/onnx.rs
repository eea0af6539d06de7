//! ONNX files: a PyTorch export with inline weights reads and computes PyTorch's output; bad
//! files give typed errors that say where (node name and index) and what, never a panic; and
//! external data is read only from inside the model's folder.

use std::path::Path;

use jjt_import::{ImportError, LoadError, import_onnx, load, load_with};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnx");

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

fn err(name: &str) -> ImportError {
    match load(Path::new(&format!("{DIR}/{name}"))) {
        Err(LoadError::Import { source, .. }) => source,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn inline_weights_give_pytorchs_output() {
    let f = load(Path::new(&format!("{DIR}/inline_mlp.onnx"))).unwrap();
    assert_eq!(f.params().len(), 1, "the weights are constants");
    let x = jjt_ir::Tensor::f32([1, 4], vec![1.0; 4]).unwrap();
    let y = jjt_ir::interp::eval(&f, &[x]).unwrap().to_f64_vec();
    let a = jjt_npy::read_file(Path::new(&format!("{DIR}/inline_mlp_y.npy"))).unwrap();
    let want = jjt_ir::Tensor::from_array(a).to_f64_vec();
    // f32 through two small layers: within a few ulps of PyTorch.
    for (g, w) in y.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{y:?} vs {want:?}");
    }
    // Selected, the weights are inputs with their values as defaults.
    let m = load_with(Path::new(&format!("{DIR}/inline_mlp.onnx")), &|_, d| !d.is_empty()).unwrap();
    assert_eq!(m.function.params().len(), 1 + m.defaults.len());
    assert_eq!(m.defaults.len(), 4, "{:?}", m.defaults.iter().map(|d| &d.0).collect::<Vec<_>>());
}

#[test]
fn an_unsupported_op_names_the_node_and_its_index() {
    match err("unsupported.onnx") {
        ImportError::Unsupported { op, supported, .. } => {
            assert!(
                op.contains("TopK") && op.contains("node 1") && op.contains("topk_node"),
                "{op}"
            );
            assert!(supported.contains("Conv") && supported.contains("Gemm"), "{supported}");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn external_data_outside_the_models_folder_is_refused() {
    for name in ["escape.onnx", "absolute.onnx"] {
        match err(name) {
            ImportError::Onnx { at, msg } => {
                assert!(
                    at.contains("`w`") && msg.contains("outside the model's folder"),
                    "{at}: {msg}"
                );
            }
            e => panic!("{name}: {e:?}"),
        }
    }
}

#[test]
fn old_opsets_and_dynamic_inner_dimensions_are_refused() {
    match err("opset11.onnx") {
        ImportError::Onnx { msg, .. } => assert!(msg.contains("opset 11"), "{msg}"),
        e => panic!("{e:?}"),
    }
    match err("dynamic.onnx") {
        ImportError::Onnx { at, msg } => {
            assert!(at.contains("`x`") && msg.contains("dimension 1 is dynamic"), "{at}: {msg}")
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn truncated_and_garbage_protobuf_give_errors() {
    let good = bytes("inline_mlp.onnx");
    assert!(import_onnx(&good, None, "m", &|_, _| false).is_ok());
    // Every prefix (the protobuf's fields end anywhere) either reads or fails cleanly; a
    // prefix that cuts the graph is an error.
    for cut in (0..good.len()).step_by(7) {
        let _ = import_onnx(&good[..cut], None, "m", &|_, _| true);
    }
    assert!(import_onnx(&good[..good.len() / 2], None, "m", &|_, _| false).is_err());
    assert!(matches!(
        import_onnx(&[0x08, 0x07, 0xff], None, "m", &|_, _| false),
        Err(ImportError::Proto(_))
    ));
    assert!(matches!(
        import_onnx(b"\x3a\xff\xff\xff\xff\x0f", None, "m", &|_, _| false),
        Err(ImportError::Proto(_))
    ));
}

/// The shape arithmetic exporters emit (Shape, Gather, Unsqueeze, Mul, Div, Concat, Cast,
/// Slice, ConstantOfShape) folds to static shapes at import: the graph is a reshape and an add,
/// and computes NumPy's result.
#[test]
fn shape_arithmetic_folds_to_static_shapes() {
    let f = load(Path::new(&format!("{DIR}/shape_chain.onnx"))).unwrap();
    let x = jjt_ir::Tensor::f32([2, 3, 4], (0..24).map(|v| v as f32).collect()).unwrap();
    let y = jjt_ir::interp::eval(&f, &[x]).unwrap();
    assert_eq!(y.shape.dims(), &[2, 12]);
    let a = jjt_npy::read_file(Path::new(&format!("{DIR}/shape_chain_y.npy"))).unwrap();
    assert_eq!(y.to_f64_vec(), jjt_ir::Tensor::from_array(a).to_f64_vec());
    let text = jjt_ir::text::print(&f);
    assert!(!text.contains("i32"), "no shape computation is left in the graph:\n{text}");
}
