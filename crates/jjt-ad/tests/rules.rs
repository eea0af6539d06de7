//! Every op's AD and batching rules, on f64, for each shape group, at random points from the
//! op's input domain:
//! - JVP against central finite differences, |err| <= 1e-6·(1+|fd|);
//! - second order (JVP of the JVP) against finite differences of the JVP, same bound;
//! - VJP by the dot-product test <J t, c> = <t, J^T c> (both sides from AD), |err| <= 1e-12 of
//!   the sum of |terms| (each side rounds at most n·u·Σ|terms| with n <= 100, far below);
//! - vmap against a loop over slices, bit for bit;
//! - zero tangent in gives exactly zero out, zero cotangent in gives exactly zero out.
//!
//! Integer inputs (the indices of `gather`, `scatter_add`) are held fixed: they have no
//! tangent, are never shifted by the finite differences and get no cotangent; they are drawn
//! from a range that reaches past the indexed axis on both sides (clamped), and batched like
//! the float ones.

mod common;

use common::{Domain, Rng, bits, dot, eval, sample, tensor};
use jjt_ad::{jvp, vjp, vmap};
use jjt_ir::ops::patches::Window;
use jjt_ir::ops::{
    Conv, ConvDims, DotGeneral, Gather, Logic, Pad, Patches, ReduceKind, Reverse, ScatterAdd,
    StopGradient,
};
use jjt_ir::testgen::{Draw, constant};
use jjt_ir::types::is_float;
use jjt_ir::{
    Binary, Compare, DType, Function, FunctionBuilder, NodeId, Op, Shape, Tensor, TensorType, Unary,
};

const POINTS: usize = 25;

struct Case {
    name: String,
    f: Function,
    domains: Vec<Domain>,
}

fn ty(d: &[usize]) -> TensorType {
    TensorType::new(DType::F64, d.to_vec())
}

/// The input domain of each unary op: exhaustive, so a new op must state its own.
fn unary_domain(u: Unary) -> Domain {
    match u {
        Unary::Log | Unary::Sqrt | Unary::Rsqrt => Domain::Range(0.5, 3.0),
        Unary::Log1p => Domain::Range(-0.5, 3.0),
        Unary::Recip => Domain::AwayFromZero(0.5, 3.0),
        // Away from the kinks at 0.
        Unary::Abs | Unary::Relu => Domain::AwayFromZero(0.1, 3.0),
        Unary::Neg
        | Unary::Exp
        | Unary::Expm1
        | Unary::Square
        | Unary::Sin
        | Unary::Cos
        | Unary::Tanh
        | Unary::Sigmoid
        | Unary::Softplus
        | Unary::Erf => Domain::Range(-3.0, 3.0),
    }
}

fn binary_domains(op: Binary) -> [Domain; 2] {
    let any = Domain::Range(-3.0, 3.0);
    match op {
        Binary::Add | Binary::Sub | Binary::Mul | Binary::Maximum | Binary::Minimum => [any, any],
        Binary::Div => [any, Domain::AwayFromZero(0.5, 3.0)],
        Binary::Pow => [Domain::Range(0.5, 3.0), Domain::Range(-2.0, 2.0)],
    }
}

fn case(
    name: &str,
    inputs: &[&[usize]],
    domains: Vec<Domain>,
    body: impl FnOnce(&mut FunctionBuilder, &[NodeId]) -> NodeId,
) -> Case {
    let types: Vec<TensorType> = inputs.iter().map(|s| ty(s)).collect();
    typed_case(name, &types, domains, body)
}

/// A case whose inputs have the given types (integer ones are held fixed).
fn typed_case(
    name: &str,
    inputs: &[TensorType],
    domains: Vec<Domain>,
    body: impl FnOnce(&mut FunctionBuilder, &[NodeId]) -> NodeId,
) -> Case {
    let mut b = FunctionBuilder::new(name);
    let args: Vec<NodeId> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| b.input(&format!("x{i}"), t.clone()).unwrap())
        .collect();
    let out = body(&mut b, &args);
    Case { name: name.into(), f: b.finish(out).unwrap(), domains }
}

fn ity(d: &[usize]) -> TensorType {
    TensorType::new(DType::I32, d.to_vec())
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let unary_shapes: [&[usize]; 3] = [&[], &[4], &[2, 1, 3]];
    for u in Unary::ALL {
        for s in unary_shapes {
            v.push(case(&format!("{}{s:?}", u.op_name()), &[s], vec![unary_domain(u)], |b, x| {
                b.unary(u, x[0]).unwrap()
            }));
        }
    }
    let pairs: [(&[usize], &[usize]); 3] = [(&[], &[]), (&[3, 1], &[4]), (&[2, 1, 3], &[2, 4, 1])];
    for op in Binary::ALL {
        for (sa, sb) in pairs {
            v.push(case(
                &format!("{}{sa:?}{sb:?}", op.op_name()),
                &[sa, sb],
                binary_domains(op).to_vec(),
                |b, x| b.binary(op, x[0], x[1]).unwrap(),
            ));
        }
    }
    let any = Domain::Range(-3.0, 3.0);
    for c in Compare::ALL {
        for (sa, sb) in pairs {
            // The comparison decides which branch flows; its own derivative is zero.
            v.push(case(
                &format!("select_{}{sa:?}{sb:?}", c.op_name()),
                &[sa, sb],
                vec![any, any],
                |b, x| {
                    let p = b.compare(c, x[0], x[1]).unwrap();
                    let two =
                        b.binary_scalar(Binary::Mul, x[0], 2.0, jjt_ir::ScalarSide::Right).unwrap();
                    b.select(p, two, x[1]).unwrap()
                },
            ));
        }
    }
    v.push(case("convert_bool", &[&[2, 3]], vec![Domain::AwayFromZero(0.1, 3.0)], |b, x| {
        let p = b.compare_scalar(Compare::Gt, x[0], 0.0).unwrap();
        let m = b.convert(p, DType::F64).unwrap();
        b.binary(Binary::Mul, x[0], m).unwrap()
    }));
    let dots: [(&str, &[usize], &[usize], DotGeneral); 4] = [
        (
            "matmul",
            &[3, 4],
            &[4, 2],
            DotGeneral { lhs_contract: vec![1], rhs_contract: vec![0], ..Default::default() },
        ),
        (
            "inner",
            &[4],
            &[4],
            DotGeneral { lhs_contract: vec![0], rhs_contract: vec![0], ..Default::default() },
        ),
        (
            "batched",
            &[2, 3, 4],
            &[2, 4, 1],
            DotGeneral {
                lhs_contract: vec![2],
                rhs_contract: vec![1],
                lhs_batch: vec![0],
                rhs_batch: vec![0],
            },
        ),
        (
            "general",
            &[2, 3, 4, 1],
            &[1, 2, 5, 3],
            DotGeneral {
                lhs_contract: vec![1, 3],
                rhs_contract: vec![3, 0],
                lhs_batch: vec![0],
                rhs_batch: vec![1],
            },
        ),
    ];
    for (name, sa, sb, d) in dots {
        v.push(case(&format!("dot_general_{name}"), &[sa, sb], vec![any, any], |b, x| {
            b.dot_general(x[0], x[1], d).unwrap()
        }));
    }
    for kind in ReduceKind::ALL {
        for (s, axes) in [
            (&[2usize, 3, 4][..], Some(&[1i64][..])),
            (&[3, 1, 2][..], None),
            (&[2, 3, 4][..], Some(&[0i64, 2][..])),
        ] {
            v.push(case(&format!("{}{s:?}{axes:?}", kind.op_name()), &[s], vec![any], |b, x| {
                b.reduce(kind, x[0], axes).unwrap()
            }));
        }
    }
    v.push(case("reshape", &[&[2, 3, 4]], vec![any], |b, x| b.reshape(x[0], [4, 1, 6]).unwrap()));
    v.push(case("transpose", &[&[2, 3, 4]], vec![any], |b, x| {
        b.transpose(x[0], &[2, 0, 1]).unwrap()
    }));
    v.push(case("broadcast_to", &[&[3, 1]], vec![any], |b, x| {
        b.broadcast_to(x[0], &Shape(vec![2, 3, 4])).unwrap()
    }));
    v.push(case("slice", &[&[5, 1, 7]], vec![any], |b, x| {
        b.slice(x[0], &[1, 0, 0], &[5, 1, 6], &[2, 1, 3]).unwrap()
    }));
    v.push(case("pad", &[&[2, 1, 3]], vec![any], |b, x| {
        b.add(
            Op::Pad(Pad { lo: vec![1, 0, 2], hi: vec![0, 2, 1], interior: vec![1, 0, 2] }),
            &[x[0]],
        )
        .unwrap()
    }));
    // stop_gradient, in JAX's stable softmax: the shift by the row maxima is held constant,
    // and since softmax does not depend on the shift the derivatives still equal the finite
    // differences of the whole function (which evaluate stop_gradient as the identity).
    v.push(case("stop_gradient", &[&[2, 3]], vec![any], |b, x| {
        let row = |b: &mut FunctionBuilder, v: NodeId| {
            let v = b.reshape(v, [2, 1]).unwrap();
            b.broadcast_to(v, &Shape(vec![2, 3])).unwrap()
        };
        let m = b.reduce(ReduceKind::Max, x[0], Some(&[1])).unwrap();
        let m = b.add(Op::StopGradient(StopGradient), &[m]).unwrap();
        let m = row(b, m);
        let z = b.binary(Binary::Sub, x[0], m).unwrap();
        let e = b.unary(Unary::Exp, z).unwrap();
        let s = b.reduce(ReduceKind::Sum, e, Some(&[1])).unwrap();
        let s = row(b, s);
        b.binary(Binary::Div, e, s).unwrap()
    }));
    v.push(case("reverse", &[&[2, 3, 4]], vec![any], |b, x| {
        b.add(Op::Reverse(Reverse { axes: vec![0, 2] }), &[x[0]]).unwrap()
    }));
    v.push(case("patches", &[&[5, 2, 6]], vec![any], |b, x| {
        let p = Patches {
            axes: vec![2, 0],
            window: vec![3, 2],
            strides: vec![1, 2],
            dilation: vec![2, 1],
        };
        b.add(Op::Patches(p), &[x[0]]).unwrap()
    }));
    // Windows that tile the axes (pooling), with elements no window reaches.
    v.push(case("patches_tiling", &[&[5, 2, 7]], vec![any], |b, x| {
        let p = Patches {
            axes: vec![0, 2],
            window: vec![2, 3],
            strides: vec![2, 3],
            dilation: vec![1, 1],
        };
        b.add(Op::Patches(p), &[x[0]]).unwrap()
    }));
    // The same with the window axes listed out of order (their tap axes follow that order).
    v.push(case("patches_tiling_axes_out_of_order", &[&[5, 2, 7]], vec![any], |b, x| {
        let p = Patches {
            axes: vec![2, 0],
            window: vec![3, 2],
            strides: vec![3, 2],
            dilation: vec![1, 1],
        };
        b.add(Op::Patches(p), &[x[0]]).unwrap()
    }));
    for (kind, name) in [(ReduceKind::Sum, "sum"), (ReduceKind::Max, "max")] {
        v.push(case(&format!("reduce_window_{name}"), &[&[2, 5, 4, 2]], vec![any], |b, x| {
            let mut w = Window::new(vec![1, 2, 3, 1], vec![1, 2, 1, 1]);
            w.padding = vec![(0, 0), (1, 0), (1, 1), (0, 0)];
            w.base_dilation = vec![1, 1, 2, 1];
            w.window_dilation = vec![1, 2, 1, 1];
            b.reduce_window(x[0], kind, &w).unwrap()
        }));
    }
    // Convolutions: every attribute, each layout, groups of both kinds.
    let conv = |dims: &str,
                strides: &[usize],
                padding: &[(i64, i64)],
                ld: &[usize],
                rd: &[usize],
                g: usize,
                bg: usize| {
        let mut c = Conv::new(ConvDims::parse(dims).unwrap());
        c.strides = strides.to_vec();
        c.padding = padding.to_vec();
        c.lhs_dilation = ld.to_vec();
        c.rhs_dilation = rd.to_vec();
        c.feature_groups = g;
        c.batch_groups = bg;
        c
    };
    let convs: [(&str, &[usize], &[usize], Conv); 6] = [
        (
            "nhwc_same",
            &[2, 4, 3, 2],
            &[3, 2, 2, 3],
            conv("NHWC,HWIO,NHWC", &[1, 1], &[(1, 1), (0, 1)], &[1, 1], &[1, 1], 1, 1),
        ),
        (
            "nchw_strided_dilated_cropped",
            &[1, 2, 5, 4],
            &[2, 2, 2, 2],
            conv("NCHW,OIHW,NCHW", &[2, 1], &[(1, 0), (-1, 1)], &[1, 2], &[2, 1], 1, 1),
        ),
        (
            "feature_groups",
            &[2, 5, 4],
            &[2, 2, 6],
            conv("NWC,WIO,NWC", &[2], &[(1, 1)], &[1], &[1], 2, 1),
        ),
        (
            "batch_groups",
            &[4, 5, 2],
            &[3, 2, 4],
            conv("NWC,WIO,NWC", &[1], &[(0, 1)], &[1], &[1], 1, 2),
        ),
        (
            "transposed",
            &[1, 3, 2],
            &[3, 2, 2],
            conv("NWC,WIO,NWC", &[2], &[(2, 1)], &[2], &[1], 1, 1),
        ),
        (
            "3d_mixed_layouts",
            &[1, 2, 3, 2, 3],
            &[2, 2, 1, 2, 2],
            conv(
                "NCDHW,DHWIO,NDHWC",
                &[1, 1, 2],
                &[(0, 1), (1, 0), (1, 1)],
                &[1, 1, 1],
                &[1, 1, 1],
                1,
                1,
            ),
        ),
    ];
    for (name, sx, sk, c) in convs {
        v.push(case(&format!("conv_{name}"), &[sx, sk], vec![any, any], |b, x| {
            b.add(Op::Conv(c), &[x[0], x[1]]).unwrap()
        }));
    }
    // Logic ops combine the predicates of a select.
    v.push(case("logic", &[&[2, 3], &[2, 3]], vec![any, any], |b, x| {
        let p = b.compare_scalar(Compare::Gt, x[0], 0.0).unwrap();
        let q = b.compare(Compare::Lt, x[1], x[0]).unwrap();
        let a = b.add(Op::Logic(Logic::And), &[p, q]).unwrap();
        let n = b.add(Op::Logic(Logic::Not), &[q]).unwrap();
        let o = b.add(Op::Logic(Logic::Or), &[a, n]).unwrap();
        let y = b.binary(Binary::Mul, x[0], x[1]).unwrap();
        b.select(o, y, x[1]).unwrap()
    }));
    // Indices drawn from [-2, 7) and truncated: -1..=6, past both ends of axes of 5 and 6.
    let idx = Domain::Range(-2.0, 7.0);
    v.push(typed_case("gather_axis0", &[ty(&[5, 3]), ity(&[2, 4])], vec![any, idx], |b, x| {
        b.add(Op::Gather(Gather { axis: 0 }), &[x[0], x[1]]).unwrap()
    }));
    v.push(typed_case("gather_axis1", &[ty(&[2, 5, 3]), ity(&[3])], vec![any, idx], |b, x| {
        let g = b.add(Op::Gather(Gather { axis: 1 }), &[x[0], x[1]]).unwrap();
        b.unary(Unary::Sin, g).unwrap()
    }));
    v.push(typed_case(
        "scatter_add_axis0",
        &[ity(&[2, 4]), ty(&[2, 4, 3])],
        vec![idx, any],
        |b, x| b.add(Op::ScatterAdd(ScatterAdd { size: 5, axis: 0 }), &[x[0], x[1]]).unwrap(),
    ));
    v.push(typed_case(
        "scatter_add_axis1",
        &[ty(&[3, 4, 2]), ity(&[4])],
        vec![any, idx],
        |b, x| {
            let s = b.add(Op::ScatterAdd(ScatterAdd { size: 6, axis: 1 }), &[x[1], x[0]]).unwrap();
            b.binary(Binary::Mul, s, s).unwrap()
        },
    ));
    // Integer arithmetic, comparison and select computing the indices (batched like floats).
    v.push(typed_case(
        "gather_of_index_arithmetic",
        &[ty(&[5, 2]), ity(&[3])],
        vec![any, idx],
        |b, x| {
            let i = x[1];
            let two = b.full(ity(&[3]), 2.0).unwrap();
            let three = b.full(ity(&[3]), 3.0).unwrap();
            let j = b.binary(Binary::Mul, i, two).unwrap();
            let j = b.binary(Binary::Sub, j, three).unwrap();
            let n = b.unary(Unary::Neg, i).unwrap();
            let m = b.binary(Binary::Maximum, j, n).unwrap();
            let m = b.binary(Binary::Minimum, m, three).unwrap();
            let p = b.compare(Compare::Lt, i, two).unwrap();
            let k = b.select(p, m, i).unwrap();
            let k = b.binary(Binary::Add, k, i).unwrap();
            b.add(Op::Gather(Gather { axis: 0 }), &[x[0], k]).unwrap()
        },
    ));
    v.push(case("concat", &[&[2, 1, 3], &[2, 2, 3], &[2, 1, 3]], vec![any, any, any], |b, x| {
        b.concat(x, 1).unwrap()
    }));
    v.push(case("const", &[&[2, 3]], vec![any], |b, x| {
        let c = b
            .constant(jjt_ir::ops::Const::Random {
                ty: ty(&[2, 3]),
                dist: jjt_ir::random::Distribution::Normal,
                seed: 5,
                offset: 0,
            })
            .unwrap();
        b.binary(Binary::Mul, x[0], c).unwrap()
    }));
    // Every constant of the closed set, as a factor: x · c.
    for name in Op::all_names() {
        let Some(c) = constant(name, ty(&[2, 3]), &mut Draw::seed(3)) else { continue };
        v.push(case(&format!("const_{name}"), &[&[2, 3]], vec![any], |b, x| {
            let k = b.constant(c).unwrap();
            b.binary(Binary::Mul, x[0], k).unwrap()
        }));
    }
    v
}

/// Every op name of the closed set (`Op::all_names`, the generated checklist) has a case: a
/// new op without one fails here.
#[test]
fn cases_cover_every_op() {
    let names: std::collections::HashSet<&'static str> = cases()
        .iter()
        .flat_map(|c| c.f.node_ids().map(|n| c.f.node(n).unwrap().op.name()).collect::<Vec<_>>())
        .collect();
    let missing: Vec<&str> = Op::all_names().into_iter().filter(|n| !names.contains(n)).collect();
    assert!(missing.is_empty(), "no AD rule case exercises {missing:?}");
}

/// A constant takes no operands: its tangent and the cotangent it passes on are exactly zero,
/// for every constant of the closed set, also when the function's output is the constant
/// itself and the input is unused.
#[test]
fn constants_have_zero_derivatives() {
    let mut rng = Rng(29);
    let mut checked = 0;
    for name in Op::all_names() {
        let Some(c) = constant(name, ty(&[2, 3]), &mut Draw::seed(5)) else { continue };
        let mut b = FunctionBuilder::new(format!("const_{name}"));
        b.input("x", ty(&[3])).unwrap();
        let k = b.constant(c).unwrap();
        let f = b.finish(k).unwrap();
        let x = tensor(&ty(&[3]), sample(&mut rng, Domain::Range(-3.0, 3.0), 3));
        let t = tensor(&ty(&[3]), sample(&mut rng, Domain::Range(-1.0, 1.0), 3));
        let j = jvp(&f, &["x"]).unwrap();
        let out = eval(&j, &[x.clone(), t]);
        assert_eq!(
            out[0].to_f64_vec(),
            eval(&f, std::slice::from_ref(&x))[0].to_f64_vec(),
            "{name}"
        );
        assert!(out[1].to_f64_vec().iter().all(|&z| z == 0.0), "{name}: tangent {:?}", out[1]);
        let v = vjp(&f, &["x"]).unwrap();
        let ct = tensor(&ty(&[2, 3]), sample(&mut rng, Domain::Range(-1.0, 1.0), 6));
        let back = eval(&v, &[x, ct]);
        let last = back.last().unwrap().to_f64_vec();
        assert_eq!(last.len(), 3, "{name}: the cotangent of x");
        assert!(last.iter().all(|&z| z == 0.0), "{name}: cotangent {last:?}");
        checked += 1;
    }
    assert!(checked >= 9, "every constant name: {checked}");
}

/// `stop_gradient` holds its operand constant: for `f(x) = x · stop_gradient(x)` the JVP is
/// `x·t` (not the `2·x·t` of `x²`) and the VJP `x·c`, while `f` evaluates to `x²`.
#[test]
fn stop_gradient_blocks_the_derivative() {
    let mut rng = Rng(31);
    let mut b = FunctionBuilder::new("f");
    let x = b.input("x", ty(&[4])).unwrap();
    let s = b.add(Op::StopGradient(StopGradient), &[x]).unwrap();
    let y = b.binary(Binary::Mul, x, s).unwrap();
    let f = b.finish(y).unwrap();
    let xs = sample(&mut rng, Domain::Range(-3.0, 3.0), 4);
    let ts = sample(&mut rng, Domain::Range(-1.0, 1.0), 4);
    let (xt, tt) = (tensor(&ty(&[4]), xs.clone()), tensor(&ty(&[4]), ts.clone()));
    let out = eval(&jvp(&f, &["x"]).unwrap(), &[xt.clone(), tt.clone()]);
    let want: Vec<f64> = xs.iter().map(|v| v * v).collect();
    assert_eq!(out[0].to_f64_vec(), want);
    let want: Vec<f64> = xs.iter().zip(&ts).map(|(v, t)| v * t).collect();
    assert_eq!(out[1].to_f64_vec(), want);
    let back = eval(&vjp(&f, &["x"]).unwrap(), &[xt, tt]);
    assert_eq!(back.last().unwrap().to_f64_vec(), want);
}

fn point(rng: &mut Rng, c: &Case) -> Vec<Tensor> {
    c.f.params()
        .iter()
        .zip(&c.domains)
        .map(|(p, &d)| tensor(&p.ty, sample(rng, d, p.ty.numel())))
        .collect()
}

/// A tangent for each float input (integer inputs have none).
fn direction(rng: &mut Rng, f: &Function) -> Vec<Tensor> {
    f.params()
        .iter()
        .filter(|p| is_float(p.ty.dtype))
        .map(|p| tensor(&p.ty, sample(rng, Domain::Range(-1.0, 1.0), p.ty.numel())))
        .collect()
}

/// `x + h·t`, `t` holding one tangent per float element of `x` in order (integers stay fixed).
fn shifted(x: &[Tensor], t: &[Tensor], h: f64) -> Vec<Tensor> {
    let mut t = t.iter();
    x.iter()
        .map(|a| {
            if !is_float(a.dtype()) {
                return a.clone();
            }
            let d = t.next().expect("a tangent per float input");
            let v: Vec<f64> =
                a.to_f64_vec().iter().zip(d.to_f64_vec()).map(|(p, q)| p + h * q).collect();
            tensor(&a.ty(), v)
        })
        .collect()
}

fn fd(f: &Function, x: &[Tensor], t: &[Tensor], out: usize) -> Vec<f64> {
    let h = 1e-5;
    let plus = eval(f, &shifted(x, t, h))[out].to_f64_vec();
    let minus = eval(f, &shifted(x, t, -h))[out].to_f64_vec();
    plus.iter().zip(minus).map(|(p, m)| (p - m) / (2.0 * h)).collect()
}

fn close(name: &str, what: &str, ad: &[f64], fd: &[f64]) {
    for (i, (a, f)) in ad.iter().zip(fd).enumerate() {
        assert!(
            (a - f).abs() <= 1e-6 * (1.0 + f.abs()),
            "{name}: {what} element {i}: AD {a:e} vs FD {f:e}"
        );
    }
}

/// The names of the float inputs: every input that can be differentiated.
fn all_names(f: &Function) -> Vec<String> {
    f.params().iter().filter(|p| is_float(p.ty.dtype)).map(|p| p.name.clone()).collect()
}

#[test]
fn jvp_matches_finite_differences() {
    let mut rng = Rng(7);
    for c in cases() {
        let j = jvp(&c.f, &all_names(&c.f)).unwrap();
        for _ in 0..POINTS {
            let x = point(&mut rng, &c);
            let t = direction(&mut rng, &c.f);
            let mut args = x.clone();
            args.extend(t.iter().cloned());
            let ad = eval(&j, &args)[1].to_f64_vec();
            close(&c.name, "jvp", &ad, &fd(&c.f, &x, &t, 0));
        }
    }
}

#[test]
fn second_order_matches_finite_differences() {
    let mut rng = Rng(11);
    for c in cases() {
        let names = all_names(&c.f);
        let j = jvp(&c.f, &names).unwrap();
        // Differentiate the JVP again with respect to the primal inputs.
        let jj = jvp(&j, &names).unwrap();
        for _ in 0..POINTS {
            let x = point(&mut rng, &c);
            let t = direction(&mut rng, &c.f);
            let s = direction(&mut rng, &c.f);
            let mut args = x.clone();
            args.extend(t.iter().cloned());
            args.extend(s.iter().cloned());
            // Outputs of jj: (y, jvp, dy/ds, d(jvp)/ds).
            let ad = eval(&jj, &args)[3].to_f64_vec();
            let mut base = x.clone();
            base.extend(t.iter().cloned());
            let mut dir = s.clone();
            dir.extend(t.iter().map(|q| tensor(&q.ty(), vec![0.0; q.numel()])));
            close(&c.name, "jvp of jvp", &ad, &fd(&j, &base, &dir, 1));
        }
    }
}

#[test]
fn vjp_passes_the_dot_product_test() {
    let mut rng = Rng(13);
    for c in cases() {
        let names = all_names(&c.f);
        let j = jvp(&c.f, &names).unwrap();
        let v = vjp(&c.f, &names).unwrap();
        let out_ty = c.f.output_type().unwrap().clone();
        for _ in 0..POINTS {
            let x = point(&mut rng, &c);
            let t = direction(&mut rng, &c.f);
            let ct = tensor(&out_ty, sample(&mut rng, Domain::Range(-1.0, 1.0), out_ty.numel()));
            let mut a = x.clone();
            a.extend(t.iter().cloned());
            let jt = eval(&j, &a)[1].to_f64_vec();
            let mut b = x.clone();
            b.push(ct.clone());
            let jtc: Vec<Tensor> = eval(&v, &b);
            let (lhs, la) = dot(&jt, &ct.to_f64_vec());
            let (mut rhs, mut ra) = (0.0, 0.0);
            for (ti, ci) in t.iter().zip(&jtc) {
                let (s, sa) = dot(&ti.to_f64_vec(), &ci.to_f64_vec());
                rhs += s;
                ra += sa;
            }
            assert!(
                (lhs - rhs).abs() <= 1e-12 * (la + ra).max(f64::MIN_POSITIVE),
                "{}: <Jt,c> = {lhs:e}, <t,J'c> = {rhs:e}",
                c.name
            );
        }
    }
}

#[test]
fn vmap_matches_a_loop_over_slices() {
    let mut rng = Rng(17);
    let size = 3;
    for c in cases() {
        let n = c.f.params().len();
        // Batch every input: the first along axis 0, the others along their last axis.
        let axes: Vec<Option<usize>> =
            c.f.params()
                .iter()
                .enumerate()
                .map(|(i, p)| Some(if i == 0 { 0 } else { p.ty.rank() }))
                .collect();
        let vf = vmap(&c.f, &axes, size).unwrap();
        let slices: Vec<Vec<Tensor>> = (0..size).map(|_| point(&mut rng, &c)).collect();
        let stacked: Vec<Tensor> = (0..n)
            .map(|i| {
                stack(&slices.iter().map(|s| s[i].clone()).collect::<Vec<_>>(), axes[i].unwrap())
            })
            .collect();
        let batched = eval(&vf, &stacked).remove(0);
        let per: Vec<Tensor> = slices.iter().map(|s| eval(&c.f, s).remove(0)).collect();
        let want = stack(&per, 0);
        assert_eq!(batched.shape, want.shape, "{}", c.name);
        assert_eq!(bits(&batched), bits(&want), "{}: vmap differs from the loop", c.name);
        // One of the first two inputs batched, the others shared.
        for one in (0..n.min(2)).filter(|_| n > 1) {
            let mut axes1 = vec![None; n];
            axes1[one] = Some(0);
            let vf1 = vmap(&c.f, &axes1, size).unwrap();
            let mut args = slices[0].clone();
            args[one] = stack(&slices.iter().map(|s| s[one].clone()).collect::<Vec<_>>(), 0);
            let got = eval(&vf1, &args).remove(0);
            let per: Vec<Tensor> = slices
                .iter()
                .map(|s| {
                    let mut a = slices[0].clone();
                    a[one] = s[one].clone();
                    eval(&c.f, &a).remove(0)
                })
                .collect();
            assert_eq!(
                bits(&got),
                bits(&stack(&per, 0)),
                "{}: vmap of input {one} alone, the others shared, differs",
                c.name
            );
        }
    }
}

/// Stack tensors of one shape along a new `axis`.
fn stack(ts: &[Tensor], axis: usize) -> Tensor {
    let shape = ts[0].shape.dims().to_vec();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis..].iter().product();
    let vals: Vec<Vec<f64>> = ts.iter().map(Tensor::to_f64_vec).collect();
    let mut out = Vec::with_capacity(outer * inner * ts.len());
    for o in 0..outer {
        for v in &vals {
            out.extend_from_slice(&v[o * inner..(o + 1) * inner]);
        }
    }
    let mut dims = shape.clone();
    dims.insert(axis, ts.len());
    Tensor::from_f64(&TensorType::new(ts[0].dtype(), dims), &out).unwrap()
}

#[test]
fn zero_in_gives_exactly_zero_out() {
    let mut rng = Rng(19);
    for c in cases() {
        let names = all_names(&c.f);
        // Symbolic: no tangent at all emits no tangent node.
        let mut b = FunctionBuilder::new("z");
        let args: Vec<NodeId> =
            c.f.params().iter().map(|p| b.input(&p.name, p.ty.clone()).unwrap()).collect();
        let (_, touts) = jjt_ad::jvp_into(&mut b, &c.f, &args, &vec![None; args.len()]).unwrap();
        assert_eq!(touts, vec![None], "{}", c.name);
        let floats: Vec<bool> = c.f.params().iter().map(|p| is_float(p.ty.dtype)).collect();
        let (_, cts) = jjt_ad::vjp_into(&mut b, &c.f, &args, &floats, &[None]).unwrap();
        assert!(cts.iter().all(Option::is_none), "{}", c.name);
        // Numeric zeros.
        let j = jvp(&c.f, &names).unwrap();
        let v = vjp(&c.f, &names).unwrap();
        let x = point(&mut rng, &c);
        let mut a = x.clone();
        a.extend(
            c.f.params()
                .iter()
                .filter(|p| is_float(p.ty.dtype))
                .map(|p| tensor(&p.ty, vec![0.0; p.ty.numel()])),
        );
        assert!(eval(&j, &a)[1].to_f64_vec().iter().all(|&z| z == 0.0), "{}: zero tangent", c.name);
        let out_ty = c.f.output_type().unwrap().clone();
        let mut bargs = x.clone();
        bargs.push(tensor(&out_ty, vec![0.0; out_ty.numel()]));
        for ct in eval(&v, &bargs) {
            assert!(ct.to_f64_vec().iter().all(|&z| z == 0.0), "{}: zero cotangent", c.name);
        }
    }
}

/// Max pooling at ties: the tangent is the average of the tangents of the maximal taps (the
/// convention of `max`, which `reduce_window` reduces with), and padding taps (−∞) never
/// win. Windows of 2 with stride 2 over `[1, 1, 0, 3, −1]` padded by one at the end (the last
/// window is `[−1, −∞]`).
#[test]
fn max_pooling_averages_the_tangent_over_ties() {
    let t5 = ty(&[5]);
    let mut b = FunctionBuilder::new("pool");
    let x = b.input("x", t5.clone()).unwrap();
    let mut w = Window::new(vec![2], vec![2]);
    w.padding = vec![(0, 1)];
    let y = b.reduce_window(x, ReduceKind::Max, &w).unwrap();
    let f = b.finish(y).unwrap();
    let j = jvp(&f, &["x".to_string()]).unwrap();
    let xv = tensor(&t5, vec![1.0, 1.0, 0.0, 3.0, -1.0]);
    let tv = tensor(&t5, vec![2.0, 4.0, 8.0, 16.0, 32.0]);
    let out = eval(&j, &[xv, tv]);
    assert_eq!(out[0].to_f64_vec(), vec![1.0, 3.0, -1.0]);
    assert_eq!(out[1].to_f64_vec(), vec![3.0, 16.0, 32.0]);
}
