//! Each failure of the transforms has its own `AdError` variant, named for what happened.

use jjt_ad::{AdError, KernelSpec, promote_f64, transpose, transpose_into, vjp, vmap_into};
use jjt_ir::ops::Const;
use jjt_ir::{DType, Data, Function, FunctionBuilder, NodeId, Tensor, TensorType, text};

fn parse(src: &str) -> Function {
    text::parse(src).unwrap()
}

/// `f` with its only output pointing at a node its graph does not have (as a hand-made,
/// unverified function can).
fn dangling_output(f: &Function) -> Function {
    let missing = NodeId::from_index(f.node_count() + 7);
    Function::from_parts(f.name.clone(), f.graph().clone(), f.params().to_vec(), vec![missing])
}

#[test]
fn an_unbound_known_input_is_named_as_such() {
    // Linear in x; y is known but no value is bound to it.
    let lf = parse("func f(x: f64[3], y: f64[3]) -> f64[3] { return x * y }");
    let mut b = FunctionBuilder::new("t");
    let ct = b.input("ct", TensorType::new(DType::F64, [3])).unwrap();
    let err = transpose_into(&mut b, &lf, &[true, false], &[None, None], &[Some(ct)]).unwrap_err();
    assert!(
        matches!(&err, AdError::UnboundInput { function, index: 1 } if function == "f"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "input #1 of `f` is not bound to a value");
}

#[test]
fn too_few_arguments_to_an_into_transform_are_an_unbound_input() {
    let f = parse("func f(x: f64[3], y: f64[3]) -> f64[3] { return x * y }");
    let mut b = FunctionBuilder::new("t");
    let x = b.input("x", TensorType::new(DType::F64, [3])).unwrap();
    let err = vmap_into(&mut b, &f, &[x], &[None], 3).unwrap_err();
    assert!(matches!(err, AdError::UnboundInput { index: 1, .. }), "{err:?}");
}

#[test]
fn an_output_that_is_not_a_node_is_a_missing_output() {
    let f = dangling_output(&parse("func f(x: f64[3]) -> f64[] { return sum(exp(x)) }"));
    let err = vjp(&f, &["x"]).unwrap_err();
    assert!(
        matches!(&err, AdError::MissingOutput { function, index: 0 } if function == "f"),
        "{err:?}"
    );
    let err = transpose(&f, &[true]).unwrap_err();
    assert!(matches!(err, AdError::MissingOutput { index: 0, .. }), "{err:?}");
    let spec = KernelSpec { wrt: vec!["x".into()], ..Default::default() };
    let err = spec.kernel(&f).unwrap_err();
    assert!(matches!(err, AdError::MissingOutput { index: 0, .. }), "{err:?}");
}

#[test]
fn a_wrong_number_of_linearity_flags_is_named_as_such() {
    let lf = parse("func f(x: f64[3], y: f64[3]) -> f64[3] { return x * y }");
    let err = transpose(&lf, &[true]).unwrap_err();
    assert!(
        matches!(&err, AdError::LinearityFlags { function, flags: 1, inputs: 2 } if function == "f"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "1 linearity flags for the 2 inputs of `f`");
}

#[test]
fn an_npy_constant_whose_data_does_not_fit_its_shape_cannot_be_promoted() {
    // Tensor's fields are public, so a constant can hold fewer values than its shape says.
    let bad = Tensor { shape: [4].into(), data: Data::F32(vec![1.0, 2.0]) };
    let mut b = FunctionBuilder::new("f");
    let x = b.input("x", TensorType::new(DType::F32, [4])).unwrap();
    let c = b.constant(Const::npy("w.npy", bad)).unwrap();
    let y = b.binary(jjt_ir::Binary::Mul, x, c).unwrap();
    let f = b.finish(y).unwrap();
    let err = promote_f64(&f).unwrap_err();
    assert!(matches!(&err, AdError::Promote { path, .. } if path == "w.npy"), "{err:?}");
}

/// Integer inputs are never differentiated: naming one is `NotFloat` in every transform, a
/// glob such as `*` skips it, and a glob matching no float input is `NoMatch`.
#[test]
fn integer_inputs_are_refused_by_name_and_skipped_by_globs() {
    let f = parse(
        "func f(tok: i32[3], w: f64[3], b: f64[3]) -> f64[3] { return convert(tok, to=f64) * w + b }",
    );
    let not_float = |err: AdError| {
        assert!(
            matches!(&err, AdError::NotFloat { name, dtype: DType::I32 } if name == "tok"),
            "{err:?}"
        );
    };
    not_float(vjp(&f, &["tok"]).unwrap_err());
    not_float(jjt_ad::jvp(&f, &["w", "tok"]).unwrap_err());
    let spec = KernelSpec { wrt: vec!["tok".into()], ..Default::default() };
    not_float(spec.kernel(&f).unwrap_err());

    assert_eq!(jjt_ad::input_mask(&f, &["*"]).unwrap(), vec![false, true, true]);
    assert_eq!(jjt_ad::input_mask(&f, &["?"]).unwrap(), vec![false, true, true]);
    assert_eq!(
        jjt_ad::input_mask(&f, &["t*"]).map_err(|e| e.to_string()).unwrap_err(),
        "`t*` matches no floating-point input of `f`; its inputs are: tok: i32[3], w: f64[3], b: f64[3]"
    );
    // The kernel with respect to `*` is the kernel with respect to w and b.
    let glob = KernelSpec { wrt: vec!["*".into()], ..Default::default() }.kernel(&f).unwrap();
    let named =
        KernelSpec { wrt: vec!["w".into(), "b".into()], ..Default::default() }.kernel(&f).unwrap();
    assert_eq!(text::print(&glob), text::print(&named));
    // The VJP w.r.t. `*` returns one cotangent per float input.
    let v = vjp(&f, &["*"]).unwrap();
    assert_eq!(v.outputs().len(), 2);
}
