//! Tracing errors are recorded (not panics) with the op, operand types and the closure's
//! source location; the verifier reports every broken invariant of hand-built graphs.

use jjt_ir::graph::{Graph, Node, Param};
use jjt_ir::ops::{Binary, Input, Op, Unary};
use jjt_ir::{
    DType, Function, IrError, NodeId, Tensor, TensorType, TraceError, TypeError, VerifyError,
    interp, trace, verify,
};

#[test]
fn traced_closure_evaluates_like_numpy_expression() {
    let f = trace("f", |t| {
        let x = t.input("x", DType::F64, [3]);
        let w = t.input("w", DType::F64, [2, 3]);
        ((w.matmul(&x) / 4.0).sqrt() - 1.0).tanh().sum_all()
    })
    .unwrap();
    let x = [1.0, 2.0, 3.0];
    let w = [1.0, 0.0, 1.0, 0.5, 0.5, 0.5];
    let y = interp::eval(
        &f,
        &[Tensor::f64([3], x.to_vec()).unwrap(), Tensor::f64([2, 3], w.to_vec()).unwrap()],
    )
    .unwrap();
    let want: f64 = [4.0f64, 3.0].iter().map(|v| ((v / 4.0).sqrt() - 1.0).tanh()).sum();
    assert_eq!(y.to_f64_vec(), vec![want]);
}

#[test]
fn shape_error_names_op_shapes_and_location() {
    let line = line!() + 4;
    let e = trace("f", |t| {
        let x = t.input("x", DType::F32, [3]);
        let a = t.input("a", DType::F32, [4, 5]);
        let y = a.matmul(&x);
        y.exp() // not reached: the error above poisons y
    })
    .unwrap_err();
    match &e {
        TraceError::Op { location, source: IrError::Type { op, operands, source } } => {
            assert_eq!(*op, "matmul");
            assert_eq!(
                operands,
                &[TensorType::new(DType::F32, [4, 5]), TensorType::new(DType::F32, [3])]
            );
            assert!(matches!(source, TypeError::MatmulSizes { cols: 5, rows: 3, .. }));
            assert_eq!(location.line(), line);
            assert!(location.file().ends_with("trace_verify.rs"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("matmul") && msg.contains("f32[4,5]") && msg.contains("f32[3]"), "{msg}");
}

#[test]
fn operator_errors_and_first_error_wins() {
    let line = line!() + 4;
    let e = trace("f", |t| {
        let x = t.input("x", DType::F64, [3]);
        let y = t.input("y", DType::F64, [4]);
        let bad = &x + &y;
        let _also_bad = x.reshape([7]);
        bad
    })
    .unwrap_err();
    let TraceError::Op { location, source: IrError::Type { op, source, .. } } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((*op, location.line()), ("add", line));
    assert!(matches!(source, TypeError::Broadcast(..)));
}

#[test]
fn dtype_mismatch_and_duplicate_input() {
    let e = trace("f", |t| {
        let x = t.input("x", DType::F64, [3]);
        let y = t.input("y", DType::F32, [3]);
        x * y
    })
    .unwrap_err();
    assert!(matches!(
        e.ir_error(),
        Some(IrError::Type { source: TypeError::DTypeMismatch(DType::F64, DType::F32), .. })
    ));
    let e = trace("f", |t| {
        let x = t.input("x", DType::F64, [3]);
        let _ = t.input("x", DType::F64, [3]);
        x
    })
    .unwrap_err();
    assert!(matches!(e.ir_error(), Some(IrError::DuplicateInput(n)) if n == "x"));
}

#[test]
fn value_from_another_trace_is_an_error() {
    let mut stolen = None;
    let _ = trace("g", |t| {
        let v = t.input("v", DType::F64, [3]);
        stolen = Some(v.clone());
        v
    });
    let stolen = stolen.unwrap();
    let e = trace("f", |t| {
        let x = t.input("x", DType::F64, [3]);
        x + stolen.clone()
    })
    .unwrap_err();
    assert!(matches!(e, TraceError::ForeignVar { .. }), "{e:?}");
}

fn ty(d: &[usize]) -> TensorType {
    TensorType::new(DType::F64, d.to_vec())
}

fn node(op: Op, t: TensorType) -> Node {
    Node { op, ty: t, name: None }
}

#[test]
fn verifier_reports_every_problem() {
    // x: f64[3]; n1 = exp(x) stored with a wrong type; n2 = add(x) with one operand;
    // n3 = neg(n4), n4 = neg(n3): a cycle; a stray input #5; output points nowhere.
    let mut g = Graph::default();
    let x = g.add_node(node(Op::Input(Input { index: 0, ty: ty(&[3]) }), ty(&[3])));
    let n1 = g.add_node(node(Op::Unary(Unary::Exp), ty(&[4])));
    g.add_edge(x, n1, 0);
    let n2 = g.add_node(node(Op::Binary(Binary::Add), ty(&[3])));
    g.add_edge(x, n2, 0);
    let n3 = g.add_node(node(Op::Unary(Unary::Neg), ty(&[3])));
    let n4 = g.add_node(node(Op::Unary(Unary::Neg), ty(&[3])));
    g.add_edge(n4, n3, 0);
    g.add_edge(n3, n4, 0);
    let stray = g.add_node(node(Op::Input(Input { index: 5, ty: ty(&[3]) }), ty(&[3])));
    let n6 = g.add_node(node(Op::Unary(Unary::Sin), ty(&[3])));
    g.add_edge(x, n6, 0);
    g.add_edge(x, n6, 0);
    let params = vec![
        Param {
            name: "x".into(),
            ty: ty(&[3]),
            node: NodeId::from_index(x.index()),
            default: None,
        },
        Param {
            name: "1bad".into(),
            ty: ty(&[3]),
            node: NodeId::from_index(n1.index()),
            default: None,
        },
    ];
    let f = Function::from_parts("broken", g, params, vec![NodeId::from_index(99)]);
    let errs = verify(&f).unwrap_err().0;
    let has = |p: &dyn Fn(&VerifyError) -> bool| errs.iter().any(p);
    assert!(has(&|e| matches!(e, VerifyError::MissingOutput(_))), "{errs:?}");
    assert!(has(&|e| matches!(e, VerifyError::BadParamName(n) if n == "1bad")));
    assert!(has(&|e| matches!(e, VerifyError::BadParam { index: 1, .. })));
    assert!(has(&|e| matches!(e, VerifyError::TypeMismatch { op: "exp", .. })));
    assert!(has(&|e| matches!(e, VerifyError::IllTyped { op: "add", .. })));
    assert!(has(&|e| matches!(e, VerifyError::Cycle(_))));
    assert!(has(&|e| matches!(e, VerifyError::StrayInput { index: 5, .. })));
    assert!(has(&|e| matches!(e, VerifyError::BadSlots { slots, .. } if slots == &vec![0, 0])));
    let _ = (stray, n6);
    // The interpreter refuses it with the same list instead of panicking.
    let r = interp::eval(&f, &[Tensor::f64([3], vec![0.0; 3]).unwrap()]);
    assert!(matches!(r, Err(jjt_ir::EvalError::Invalid(_))));
}

#[test]
fn verifier_accepts_builder_output() {
    let f = trace("f", |t| {
        let x = t.input("x", DType::F32, [2, 3]);
        let c = t.full(DType::F32, [3], 0.5);
        t.select(&x.gt(&c), &x, &c).max(&[-1])
    })
    .unwrap();
    assert!(verify(&f).is_ok());
}

#[test]
fn interpreter_rejects_wrong_arguments() {
    let f = trace("f", |t| t.input("x", DType::F64, [3]).exp()).unwrap();
    assert!(matches!(
        interp::eval(&f, &[]),
        Err(jjt_ir::EvalError::InputCount { expected: 1, got: 0, .. })
    ));
    let wrong = Tensor::f32([3], vec![0.0; 3]).unwrap();
    assert!(matches!(interp::eval(&f, &[wrong]), Err(jjt_ir::EvalError::InputType { .. })));
}

#[test]
fn tensor_with_inconsistent_fields_is_rejected() {
    let f = trace("f", |t| t.input("x", DType::F64, [3]).exp()).unwrap();
    let bad = Tensor { shape: jjt_ir::Shape(vec![3]), data: jjt_ir::Data::F64(vec![1.0]) };
    assert!(matches!(interp::eval(&f, &[bad]), Err(jjt_ir::EvalError::InputData { len: 1, .. })));
}

/// A traced convolution and max pooling (`Var::conv`, `Var::reduce_window`) build the graph the
/// text format does: the same values, bit for bit.
#[test]
fn traced_conv_and_pooling_match_the_text() {
    use jjt_ir::ops::patches::Window;
    use jjt_ir::ops::{Conv, ConvDims};
    let f = trace("cnn", |t| {
        let x = t.input("x", DType::F64, [2, 6, 6, 3]);
        let k = t.input("k", DType::F64, [3, 3, 3, 4]);
        let mut c = Conv::new(ConvDims::channels_last(2));
        c.padding = vec![(1, 1), (1, 1)];
        let y = x.conv(&k, c).relu();
        y.reduce_window(jjt_ir::ReduceKind::Max, &Window::new(vec![1, 2, 2, 1], vec![1, 2, 2, 1]))
    })
    .unwrap();
    let g = jjt_ir::text::parse(
        "func cnn(x: f64[2,6,6,3], k: f64[3,3,3,4]) -> f64[2,3,3,4] {
  y = relu(conv(x, k, dims=\"NHWC,HWIO,NHWC\", padding=\"SAME\"))
  return reduce_window(y, kind=\"max\", window=[1,2,2,1], strides=[1,2,2,1])
}",
    )
    .unwrap();
    let args: Vec<Tensor> = f
        .params()
        .iter()
        .map(|p| {
            let v: Vec<f64> =
                (0..p.ty.numel()).map(|i| ((i * 7 % 13) as f64 - 6.0) / 5.0).collect();
            Tensor::from_f64(&p.ty, &v).unwrap()
        })
        .collect();
    let a = interp::eval(&f, &args).unwrap().to_f64_vec();
    let b = interp::eval(&g, &args).unwrap().to_f64_vec();
    assert_eq!(a.len(), 2 * 3 * 3 * 4);
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}
