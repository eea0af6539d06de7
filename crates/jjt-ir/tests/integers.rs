//! The `i32` element type: the interpreter's integer semantics (wrapping arithmetic, signed
//! comparisons, saturating conversions), the text format, and the typed error every float-only
//! op gives for an `i32` operand.

use jjt_ir::ops::{Const, Conv, ConvDims, DotGeneral, Op, Reduce};
use jjt_ir::random::Distribution;
use jjt_ir::text::{parse, print};
use jjt_ir::{
    Binary, Compare, DType, FunctionBuilder, IrError, NodeId, ReduceKind, Tensor, TensorType,
    TypeError, Unary, interp,
};

fn i32s(shape: &[usize]) -> TensorType {
    TensorType::new(DType::I32, shape.to_vec())
}

fn ints(t: &Tensor) -> Vec<i32> {
    match &t.data {
        jjt_ir::Data::I32(v) => v.clone(),
        other => panic!("expected i32 data, got {:?}", other.dtype()),
    }
}

/// `binary(a, b)` on two i32 vectors, through the builder and the interpreter.
fn int_binary(op: Binary, a: &[i32], b: &[i32]) -> Vec<i32> {
    let mut fb = FunctionBuilder::new("f");
    let x = fb.input("x", i32s(&[a.len()])).unwrap();
    let y = fb.input("y", i32s(&[b.len()])).unwrap();
    let z = fb.binary(op, x, y).unwrap();
    let f = fb.finish(z).unwrap();
    let args =
        [Tensor::i32([a.len()], a.to_vec()).unwrap(), Tensor::i32([b.len()], b.to_vec()).unwrap()];
    ints(&interp::eval(&f, &args).unwrap())
}

#[test]
fn integer_arithmetic_wraps() {
    let a = [i32::MAX, i32::MIN, -7, 3, 0];
    let b = [1, -1, 2, -5, i32::MIN];
    assert_eq!(int_binary(Binary::Add, &a, &b), vec![i32::MIN, i32::MAX, -5, -2, i32::MIN]);
    assert_eq!(int_binary(Binary::Sub, &a, &b), vec![i32::MAX - 1, i32::MIN + 1, -9, 8, i32::MIN]);
    assert_eq!(int_binary(Binary::Mul, &a, &b), vec![i32::MAX, i32::MIN, -14, -15, 0]);
    assert_eq!(int_binary(Binary::Maximum, &a, &b), vec![i32::MAX, -1, 2, 3, 0]);
    assert_eq!(int_binary(Binary::Minimum, &a, &b), vec![1, i32::MIN, -7, -5, i32::MIN]);

    let mut fb = FunctionBuilder::new("f");
    let x = fb.input("x", i32s(&[3])).unwrap();
    let n = fb.unary(Unary::Neg, x).unwrap();
    let f = fb.finish(n).unwrap();
    let out = interp::eval(&f, &[Tensor::i32([3], vec![i32::MIN, 5, 0]).unwrap()]).unwrap();
    assert_eq!(ints(&out), vec![i32::MIN, -5, 0]);
}

#[test]
fn comparisons_are_signed_and_select_picks_integers() {
    let src = "func f(a: i32[4], b: i32[4]) -> i32[4] {\n  return select(lt(a, b), a, b * 10)\n}\n";
    let f = parse(src).unwrap();
    let a = Tensor::i32([4], vec![-3, 5, i32::MIN, 2]).unwrap();
    let b = Tensor::i32([4], vec![2, -1, 0, 2]).unwrap();
    assert_eq!(ints(&interp::eval(&f, &[a, b]).unwrap()), vec![-3, -10, i32::MIN, 20]);
}

#[test]
fn conversions_truncate_saturate_and_map_nan_to_zero() {
    let src = "func f(x: f32[9]) -> i32[9] {\n  return convert(x, to=i32)\n}\n";
    let f = parse(src).unwrap();
    let x = vec![1.9, -1.9, -0.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e9, -3e9, 16.0];
    let out = interp::eval(&f, &[Tensor::f32([9], x).unwrap()]).unwrap();
    assert_eq!(ints(&out), vec![1, -1, 0, 0, i32::MAX, i32::MIN, i32::MAX, i32::MIN, 16]);

    let src =
        "func f(x: i32[3]) -> f64[3] {\n  return convert(x, to=f64) + convert(ne0(x), to=f64)\n}\n";
    // `ne0` is not an op: the conversion to bool is `convert(x, to=bool)`.
    assert!(parse(src).is_err());
    let src = "func f(x: i32[3]) -> f64[3] {\n  return convert(x, to=f64) + convert(convert(x, to=bool), to=f64)\n}\n";
    let f = parse(src).unwrap();
    let out = interp::eval(&f, &[Tensor::i32([3], vec![-4, 0, i32::MAX]).unwrap()]).unwrap();
    assert_eq!(out.to_f64_vec(), vec![-3.0, 0.0, 2147483648.0]);
}

/// Integer types, literals, `iota` and weak scalars print and parse back to the same graph and
/// values.
#[test]
fn integer_text_round_trips() {
    let src = "func f(tok: i32[2,3]) -> i32[2,3] {\n  a = tok * 2 - 1\n  b = maximum(a, const(i32[2,3], [0, -5, 7, 2147483647, -2147483648, 3]))\n  return b + iota(i32[2,3], axis=1) + full(i32[2,3], 4)\n}\n";
    let f = parse(src).unwrap();
    let p1 = print(&f);
    assert!(p1.contains("i32[2,3]"), "{p1}");
    let g = parse(&p1).unwrap_or_else(|e| panic!("{e}\n{p1}"));
    assert_eq!(print(&g), p1);
    let tok = Tensor::i32([2, 3], vec![1, -2, 3, 4, 5, -6]).unwrap();
    // tok*2-1 = [1,-5,5,7,9,-13]; max with the literal; + iota along axis 1; + 4.
    let want = vec![1 + 4, -5 + 1 + 4, 7 + 2 + 4, i32::MAX.wrapping_add(4), 9 + 1 + 4, 3 + 2 + 4];
    assert_eq!(ints(&interp::eval(&f, std::slice::from_ref(&tok)).unwrap()), want);
    assert_eq!(ints(&interp::eval(&g, &[tok]).unwrap()), want);
}

#[test]
fn integer_literals_are_checked() {
    // A literal operand of a call next to an i32 tensor is an i32.
    let f = parse("func f(x: i32[2]) -> i32[2] {\n  return maximum(x, 3)\n}\n").unwrap();
    let out = interp::eval(&f, &[Tensor::i32([2], vec![1, 5]).unwrap()]).unwrap();
    assert_eq!(ints(&out), vec![3, 5]);
    // A fractional weak scalar next to an i32 and an out-of-range constant are parse errors.
    assert!(parse("func f(x: i32[2]) -> i32[2] {\n  return x + 1.5\n}\n").is_err());
    let big = "func f(x: i32[1]) -> i32[1] {\n  return x + const(i32[1], [2147483648])\n}\n";
    assert!(parse(big).is_err());
}

/// The type error of building `op` on `i32` operands of the given shapes.
fn int_fails(op: Op, shapes: &[&[usize]]) -> TypeError {
    let mut b = FunctionBuilder::new("f");
    let xs: Vec<NodeId> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| b.input(&format!("x{i}"), i32s(s)).unwrap())
        .collect();
    match b.add(op, &xs) {
        Err(IrError::Type { source, .. }) => source,
        other => panic!("expected a type error, got {other:?}"),
    }
}

#[test]
fn float_only_ops_refuse_integers() {
    for u in Unary::ALL {
        if u == Unary::Neg {
            continue;
        }
        assert_eq!(int_fails(Op::Unary(u), &[&[3]]), TypeError::NotFloat(DType::I32), "{u:?}");
    }
    for op in [Binary::Div, Binary::Pow] {
        assert_eq!(int_fails(Op::Binary(op), &[&[3], &[3]]), TypeError::NotFloat(DType::I32));
    }
    for kind in [ReduceKind::Sum, ReduceKind::Max, ReduceKind::Mean] {
        let r = Op::Reduce(Reduce { kind, axes: vec![0] });
        assert_eq!(int_fails(r, &[&[3]]), TypeError::NotFloat(DType::I32), "{kind:?}");
    }
    let dot = DotGeneral {
        lhs_contract: vec![0],
        rhs_contract: vec![0],
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    assert_eq!(int_fails(Op::DotGeneral(dot), &[&[3], &[3]]), TypeError::NotFloat(DType::I32));
    let conv = Conv::new(ConvDims::channels_last(1));
    assert_eq!(
        int_fails(Op::Conv(conv), &[&[1, 4, 1], &[2, 1, 1]]),
        TypeError::NotFloat(DType::I32)
    );
    // Comparisons and selects of integers are fine; mixing dtypes is not.
    let mut b = FunctionBuilder::new("f");
    let x = b.input("x", i32s(&[2])).unwrap();
    let y = b.input("y", TensorType::new(DType::F32, vec![2])).unwrap();
    assert!(b.compare(Compare::Ge, x, x).is_ok());
    assert!(matches!(
        b.binary(Binary::Add, x, y),
        Err(IrError::Type { source: TypeError::DTypeMismatch(DType::I32, DType::F32), .. })
    ));
    // Random constants are floats only; `iota` may be i32.
    let mut b = FunctionBuilder::new("f");
    let r = Const::Random { ty: i32s(&[2]), dist: Distribution::Uniform, seed: 0, offset: 0 };
    assert!(matches!(
        b.constant(r),
        Err(IrError::Type { source: TypeError::NotFloat(DType::I32), .. })
    ));
    assert!(b.constant(Const::Iota { ty: i32s(&[2]), axis: 0 }).is_ok());
}

/// `index_rows`: the fewest rows addressed by indices computed from an input, through integer
/// arithmetic, over gathers and scatters; `None` for an input no index depends on.
#[test]
fn index_rows_finds_the_smallest_indexed_axis() {
    let f = parse(
        "func f(tok: i32[3], other: i32[3], emb: f32[7,2], u: f32[3]) -> f32[3,2] {
  s = scatter_add(tok + 1, u, size=5, axis=0)
  o = broadcast_to(reshape(convert(other, to=f32), shape=[3,1]), shape=[3,2])
  return gather(emb, tok, axis=0) + o * sum(s)
}
",
    )
    .unwrap();
    assert_eq!(jjt_ir::ops::gather::index_rows(&f, "tok"), Some(5));
    assert_eq!(jjt_ir::ops::gather::index_rows(&f, "other"), None);
    assert_eq!(jjt_ir::ops::gather::index_rows(&f, "emb"), None);
    assert_eq!(jjt_ir::ops::gather::index_rows(&f, "nope"), None);
}
