//! Every way an op's attributes or operands can fail to fit has its own `TypeError` variant, and
//! its message names the values involved.

use std::sync::Arc;

use jjt_ir::ops::{Concat, Const, DotGeneral, Op, Pad, Reduce, Reshape, Slice, Transpose};
use jjt_ir::random::Distribution;
use jjt_ir::{DType, FunctionBuilder, IrError, NodeId, ReduceKind, Shape, TensorType, TypeError};

fn f32(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

/// The type error of adding `op` to f32 inputs of the given shapes, with its message.
fn fails(op: Op, shapes: &[&[usize]]) -> (TypeError, String) {
    let types: Vec<TensorType> = shapes.iter().map(|s| f32(s)).collect();
    fails_typed(op, &types)
}

#[test]
fn layout_attributes() {
    let (e, m) = fails(Op::Transpose(Transpose { perm: vec![1, 0, 2] }), &[&[2, 3]]);
    assert_eq!(e, TypeError::AttrLength { attr: "perm", value: vec![1, 0, 2], rank: 2 });
    assert_eq!(m, "`perm=[1,0,2]` has 3 entries for an operand of rank 2 (one per axis)");

    let (e, m) = fails(Op::Transpose(Transpose { perm: vec![1, 1] }), &[&[2, 3]]);
    assert_eq!(e, TypeError::Perm { perm: vec![1, 1], rank: 2 });
    assert_eq!(m, "perm [1,1] is not a permutation of 0..2");

    let slice = Slice { start: vec![0, 0], stop: vec![2, 3], step: vec![1] };
    let (e, _) = fails(Op::Slice(slice), &[&[2, 3]]);
    assert_eq!(e, TypeError::AttrLength { attr: "step", value: vec![1], rank: 2 });

    let slice = Slice { start: vec![0, 1], stop: vec![2, 4], step: vec![1, 1] };
    let (e, m) = fails(Op::Slice(slice), &[&[2, 3]]);
    assert_eq!(e, TypeError::SliceBounds { axis: 1, start: 1, stop: 4, step: 1, size: 3 });
    assert!(m.starts_with("axis 1: slice 1:4:1 does not fit size 3"), "{m}");

    let pad = Pad { lo: vec![0, 0], hi: vec![1], interior: vec![0, 0] };
    let (e, _) = fails(Op::Pad(pad), &[&[2, 3]]);
    assert_eq!(e, TypeError::AttrLength { attr: "hi", value: vec![1], rank: 2 });

    let (e, m) = fails(Op::Reshape(Reshape { shape: Shape(vec![4]) }), &[&[2, 3]]);
    assert_eq!(e, TypeError::ReshapeSize { from: Shape(vec![2, 3]), to: Shape(vec![4]) });
    assert_eq!(m, "cannot reshape [2,3] (6 elements) to [4]");

    let (e, m) = fails(Op::Concat(Concat { axis: 0 }), &[&[2, 3], &[2, 4]]);
    assert_eq!(
        e,
        TypeError::ConcatShapes { first: Shape(vec![2, 3]), other: Shape(vec![2, 4]), axis: 0 }
    );
    assert_eq!(m, "shapes [2,3] and [2,4] differ outside axis 0");
    let (e, _) = fails(Op::Concat(Concat { axis: 0 }), &[&[2, 3], &[2]]);
    assert!(matches!(e, TypeError::ConcatShapes { .. }));
}

#[test]
fn reduction_axes() {
    let r = Reduce { kind: ReduceKind::Sum, axes: vec![1, 0] };
    let (e, m) = fails(Op::Reduce(r), &[&[2, 3]]);
    assert_eq!(e, TypeError::UnsortedAxes { axes: vec![1, 0] });
    assert_eq!(m, "axes [1,0] must be sorted and distinct");

    let mut b = FunctionBuilder::new("f");
    let x = b.input("x", f32(&[2, 3])).unwrap();
    match b.reduce(ReduceKind::Max, x, Some(&[1, -1])) {
        Err(IrError::Type { op: "max", source: TypeError::RepeatedAxis { axis: 1 }, .. }) => {}
        other => panic!("expected RepeatedAxis, got {other:?}"),
    }
}

#[test]
fn contractions() {
    let d = DotGeneral { lhs_contract: vec![1], rhs_contract: vec![], ..DotGeneral::default() };
    let (e, m) = fails(Op::DotGeneral(d), &[&[2, 3], &[3, 4]]);
    assert_eq!(e, TypeError::UnpairedAxes { contract: (1, 0), batch: (0, 0) });
    assert!(m.starts_with("contract and batch axes must come in pairs"), "{m}");

    let d = DotGeneral {
        lhs_contract: vec![1],
        rhs_contract: vec![0],
        lhs_batch: vec![1],
        rhs_batch: vec![1],
    };
    let (e, m) = fails(Op::DotGeneral(d), &[&[2, 3], &[3, 4]]);
    assert_eq!(e, TypeError::DotAxisReused { side: "lhs", axis: 1 });
    assert_eq!(m, "lhs axis 1 is used twice");

    let d = DotGeneral { lhs_contract: vec![1], rhs_contract: vec![0], ..DotGeneral::default() };
    let (e, m) = fails(Op::DotGeneral(d), &[&[2, 3], &[4, 4]]);
    let want = TypeError::PairedSizes {
        kind: "contracted",
        lhs_axis: 1,
        lhs_size: 3,
        rhs_axis: 0,
        rhs_size: 4,
    };
    assert_eq!(e, want);
    assert_eq!(m, "contracted axes differ in size: lhs axis 1 has 3 but rhs axis 0 has 4");

    let mut b = FunctionBuilder::new("f");
    let s = b.input("s", f32(&[])).unwrap();
    let v = b.input("v", f32(&[3])).unwrap();
    let m = b.input("m", f32(&[4, 5])).unwrap();
    assert!(matches!(
        b.matmul(s, v),
        Err(IrError::Type { op: "matmul", source: TypeError::MatmulScalar, .. })
    ));
    match b.matmul(m, v) {
        Err(IrError::Type { source: e @ TypeError::MatmulSizes { .. }, .. }) => {
            let want = TypeError::MatmulSizes {
                lhs: Shape(vec![4, 5]),
                cols: 5,
                rhs: Shape(vec![3]),
                rows: 3,
            };
            assert_eq!(e, want);
            assert_eq!(
                e.to_string(),
                "contracted sizes differ: [4,5] has 5 columns, [3] has 3 rows"
            );
        }
        other => panic!("expected MatmulSizes, got {other:?}"),
    }
    assert!(matches!(
        b.concat(&[], 0),
        Err(IrError::Type { op: "concat", source: TypeError::NoOperands, .. })
    ));
}

#[test]
fn constants() {
    let ty = f32(&[3]);
    let lit = Const::Literal { ty: ty.clone(), bits: Arc::from(vec![0u64; 2]) };
    let (e, m) = fails(Op::Const(lit), &[]);
    assert_eq!(e, TypeError::ConstLength { ty: ty.clone(), expected: 3, got: 2 });
    assert_eq!(m, "constant of type f32[3] needs 3 values, got 2");

    let (e, m) = fails(Op::Const(Const::Eye { ty: ty.clone() }), &[]);
    assert_eq!(e, TypeError::EyeRank(ty.clone()));
    assert_eq!(m, "eye needs a rank-2 type, got f32[3]");

    let offset = jjt_ir::random::MAX_DRAWS - 1;
    let r = Const::Random { ty, dist: Distribution::Normal, seed: 0, offset };
    let (e, m) = fails(Op::Const(r), &[]);
    let limit = jjt_ir::random::MAX_DRAWS;
    assert_eq!(e, TypeError::TooManyDraws { offset, draws: 3, limit });
    assert!(m.contains("exceeds the limit"), "{m}");
}

#[test]
fn convolutions_and_windows() {
    use jjt_ir::ConvError;
    use jjt_ir::ops::{Conv, ConvDims, Patches, Reverse};
    let nwc = || Conv::new(ConvDims::parse("NWC,WIO,NWC").unwrap());

    let (e, m) = fails(Op::Conv(nwc()), &[&[2, 5, 3], &[3, 3]]);
    assert_eq!(e, TypeError::Conv(ConvError::Rank { lhs: 3, rhs: 2 }));
    assert!(m.starts_with("conv: operands must have rank 3 to 5"), "{m}");

    let (e, m) = fails(Op::Conv(nwc()), &[&[2, 5, 3], &[3, 4, 6]]);
    assert_eq!(e, TypeError::Conv(ConvError::Features { lhs: 3, rhs: 4, groups: 1 }));
    assert_eq!(m, "conv: input has 3 features in 1 group(s), the kernel takes 4 per group");

    let mut c = nwc();
    c.strides = vec![0];
    let (e, _) = fails(Op::Conv(c), &[&[2, 5, 3], &[3, 3, 6]]);
    assert_eq!(e, TypeError::Conv(ConvError::Zero("strides")));

    let mut c = nwc();
    c.padding = vec![(0, 0), (1, 1)];
    let (e, _) = fails(Op::Conv(c), &[&[2, 5, 3], &[3, 3, 6]]);
    assert_eq!(e, TypeError::Conv(ConvError::AttrLength { attr: "padding", got: 2, spatial: 1 }));

    let mut c = nwc();
    c.padding = vec![(-4, -2)];
    let (e, m) = fails(Op::Conv(c), &[&[2, 5, 3], &[3, 3, 6]]);
    assert_eq!(e, TypeError::Conv(ConvError::Padding { axis: 0, lo: -4, hi: -2 }));
    assert_eq!(m, "conv: spatial axis 0: padding (-4, -2) leaves a negative size");

    let mut c = nwc();
    c.feature_groups = 2;
    c.batch_groups = 2;
    let (e, _) = fails(Op::Conv(c), &[&[2, 5, 4], &[3, 2, 6]]);
    assert!(matches!(e, TypeError::Conv(ConvError::Groups(_))), "{e}");

    let mut c = nwc();
    c.batch_groups = 2;
    let (e, m) = fails(Op::Conv(c), &[&[3, 5, 4], &[3, 4, 6]]);
    assert!(matches!(e, TypeError::Conv(ConvError::Groups(_))), "{e}");
    assert_eq!(m, "conv: input batch (3) are not divisible into 2 groups");

    let mut c = nwc();
    c.dims.lhs = vec![0, 0, 1];
    let (e, _) = fails(Op::Conv(c), &[&[2, 5, 3], &[3, 3, 6]]);
    assert!(matches!(e, TypeError::Conv(ConvError::Dims(_))), "{e}");
    assert!(ConvDims::parse("NHWC,HWIO").is_err());
    assert!(ConvDims::parse("NHWC,HWOO,NHWC").is_err());
    assert!(ConvDims::parse("NHWC,HXIO,NHWC").is_err());

    let (e, m) = fails(Op::Reverse(Reverse { axes: vec![1, 1] }), &[&[2, 3]]);
    assert_eq!(e, TypeError::ReverseAxes(vec![1, 1]));
    assert_eq!(m, "reverse axes [1,1] are not distinct");

    let p =
        Patches { axes: vec![0, 0], window: vec![1, 1], strides: vec![1, 1], dilation: vec![1, 1] };
    let (e, _) = fails(Op::Patches(p), &[&[4, 3]]);
    assert_eq!(e, TypeError::PatchesAxes(vec![0, 0]));
    let p = Patches { axes: vec![0], window: vec![0], strides: vec![1], dilation: vec![1] };
    let (e, m) = fails(Op::Patches(p), &[&[4, 3]]);
    assert_eq!(e, TypeError::PatchesZero("window"));
    assert_eq!(m, "patches `window` entries must be at least 1");
    let p = Patches { axes: vec![0], window: vec![2, 2], strides: vec![1], dilation: vec![1] };
    let (e, _) = fails(Op::Patches(p), &[&[4, 3]]);
    assert_eq!(e, TypeError::PatchesLength { attr: "window", got: 2, axes: 1 });

    let mut b = FunctionBuilder::new("f");
    let x = b.input("x", f32(&[4, 3])).unwrap();
    let w = jjt_ir::ops::patches::Window::new(vec![2], vec![1]);
    match b.reduce_window(x, ReduceKind::Max, &w) {
        Err(IrError::Type { source: TypeError::Window(m), .. }) => {
            assert_eq!(m, "`window` has 1 entries for rank 2")
        }
        other => panic!("{other:?}"),
    }
}

/// The type error of adding `op` to inputs of the given types, with its message.
fn fails_typed(op: Op, types: &[TensorType]) -> (TypeError, String) {
    let mut b = FunctionBuilder::new("f");
    let xs: Vec<NodeId> = types
        .iter()
        .enumerate()
        .map(|(i, t)| b.input(&format!("x{i}"), t.clone()).unwrap())
        .collect();
    match b.add(op, &xs) {
        Err(IrError::Type { source, .. }) => {
            let msg = source.to_string();
            (source, msg)
        }
        other => panic!("expected a type error, got {other:?}"),
    }
}

#[test]
fn gather_and_scatter_add() {
    use jjt_ir::ops::{Gather, ScatterAdd};
    let i32s = |s: &[usize]| TensorType::new(DType::I32, s.to_vec());
    let g = |axis| Op::Gather(Gather { axis });
    let (e, m) = fails_typed(g(0), &[f32(&[5, 3]), f32(&[2])]);
    assert_eq!(e, TypeError::NotIndex(DType::F32));
    assert_eq!(m, "indices must be i32, got f32");
    let (e, _) = fails_typed(g(2), &[f32(&[5, 3]), i32s(&[2])]);
    assert_eq!(e, TypeError::Axis { axis: 2, rank: 2 });
    let (e, m) = fails_typed(g(1), &[f32(&[5, 0]), i32s(&[2])]);
    assert_eq!(e, TypeError::IndexedAxis { size: 0, indices: 2 });
    assert_eq!(
        m,
        "an indexed axis of size 0 cannot be addressed by 2 i32 indices (it needs 1 to 2147483647 entries)"
    );
    // An empty axis with no indices is fine: the result is empty.
    let mut b = FunctionBuilder::new("f");
    let t = b.input("t", f32(&[0, 3])).unwrap();
    let i = b.input("i", i32s(&[0])).unwrap();
    let out = b.add(g(0), &[t, i]).unwrap();
    assert_eq!(b.ty(out).unwrap(), &f32(&[0, 3]));

    let s = |size, axis| Op::ScatterAdd(ScatterAdd { size, axis });
    let (e, m) = fails_typed(s(5, 1), &[i32s(&[4]), f32(&[3, 2])]);
    assert_eq!(
        e,
        TypeError::ScatterUpdates { updates: Shape(vec![3, 2]), indices: Shape(vec![4]), axis: 1 }
    );
    assert_eq!(m, "scatter_add updates of shape [3,2] need the indices' shape [4] at axis 1");
    let (e, _) = fails_typed(s(5, 0), &[i32s(&[4]), i32s(&[4])]);
    assert_eq!(e, TypeError::NotFloat(DType::I32));
    let (e, _) = fails_typed(s(0, 0), &[i32s(&[4]), f32(&[4])]);
    assert_eq!(e, TypeError::IndexedAxis { size: 0, indices: 4 });
    let (e, _) = fails_typed(s(1 << 31, 0), &[i32s(&[4]), f32(&[4])]);
    assert_eq!(e, TypeError::IndexedAxis { size: 1 << 31, indices: 4 });
    let (e, _) = fails_typed(s(5, 0), &[f32(&[4]), f32(&[4])]);
    assert_eq!(e, TypeError::NotIndex(DType::F32));
}

#[test]
fn logic_ops_need_bool_masks_of_one_shape() {
    use jjt_ir::ops::Logic;
    let bools = |s: &[usize]| TensorType::new(DType::Bool, s.to_vec());
    let (e, m) = fails_typed(Op::Logic(Logic::And), &[bools(&[3]), f32(&[3])]);
    assert_eq!(e, TypeError::NotBool(DType::F32));
    assert_eq!(m, "needs a bool predicate, got f32");
    let (e, _) = fails_typed(Op::Logic(Logic::Or), &[bools(&[3]), bools(&[2])]);
    assert_eq!(e, TypeError::ShapeMismatch(Shape(vec![3]), Shape(vec![2])));
    let (e, _) = fails_typed(Op::Logic(Logic::Not), &[TensorType::new(DType::I32, vec![3])]);
    assert_eq!(e, TypeError::NotBool(DType::I32));
}

#[test]
fn any_and_all_need_bool_tensors_and_valid_axes() {
    use jjt_ir::{FunctionBuilder, IrError};
    for all in [false, true] {
        let mut b = FunctionBuilder::new("f");
        let x = b.input("x", f32(&[2, 3])).unwrap();
        match b.any_all(x, all, Some(&[0])) {
            Err(IrError::Type { op, source, .. }) => {
                assert_eq!(op, if all { "all" } else { "any" });
                assert_eq!(source, TypeError::NotBool(DType::F32));
            }
            other => panic!("{other:?}"),
        }
        let p = b.input("p", TensorType::new(DType::Bool, vec![2, 3])).unwrap();
        match b.any_all(p, all, Some(&[2])) {
            Err(IrError::Type { source, .. }) => {
                assert_eq!(source, TypeError::Axis { axis: 2, rank: 2 })
            }
            other => panic!("{other:?}"),
        }
    }
}
