//! Every op × {f32, f64} × lengths {0, 1, 3, 4, 7, 17, 1023} (and broadcast shapes), on inputs
//! that include ±0, subnormals, ±inf and NaN: the JIT against the interpreter.
//!
//! - Elementwise and data-movement ops, and the transcendentals (which call the same Rust libm
//!   functions as the interpreter): bit for bit, NaNs compared as "both NaN". Except in fast
//!   mode, where `exp`, `tanh` and `sigmoid` are inline arithmetic: graphs using them are
//!   compared within `INLINE_MATH_ULPS + 3` ulps (the inline functions' bound plus libm's and
//!   the interpreter's sigmoid formula's own error, under 3 ulps; the graphs here only scale,
//!   select or move those results, which keeps relative errors).
//! - Reductions and contractions, whose summation order the JIT may change (vector partial
//!   sums, FMA, the matrix multiply): |jit − interp| ≤ 2·n·u·Σ|terms| + 2·n·s — each order is
//!   within n·u·Σ|terms| + n·s of the exact sum (n terms, unit roundoff u, s the smallest
//!   subnormal: a rounding in the subnormal range errs by up to s/2). Where the interpreter's
//!   result is not finite, the JIT's must be the same non-finite value.
//! - In strict mode, everything bit for bit.

use jjt_ir::ops::{Binary, Compare, Const, DotGeneral, Pad, ReduceKind, Unary};
use jjt_ir::{DType, Function, FunctionBuilder, NodeId, Op, Shape, Tensor, TensorType, interp};
use jjt_jit::{Options, compile_with};

const LENGTHS: [usize; 7] = [0, 1, 3, 4, 7, 17, 1023];

fn special(d: DType, k: usize) -> f64 {
    let sub = if d == DType::F32 { 1e-40 } else { 5e-324 };
    let table = [
        0.0,
        -0.0,
        sub,
        -sub,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1.5,
        -2.25,
        0.5,
        3.0,
        -0.75,
    ];
    if k < table.len() {
        table[k]
    } else {
        // A deterministic spread of ordinary values.
        let x = ((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / (1u64 << 53) as f64;
        (x - 0.5) * 6.0
    }
}

fn input(ty: &TensorType, shift: usize) -> Tensor {
    let v: Vec<f64> = (0..ty.numel()).map(|k| special(ty.dtype, (k + shift) % 97)).collect();
    Tensor::from_f64(ty, &v).unwrap()
}

/// Finite, varied inputs for `f`: input k holds sin((i + 7k)·step) at element i.
fn waves(f: &Function, step: f64) -> Vec<Tensor> {
    f.params()
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let v: Vec<f64> =
                (0..p.ty.numel()).map(|i| ((i + 7 * k) as f64 * step).sin()).collect();
            Tensor::from_f64(&p.ty, &v).unwrap()
        })
        .collect()
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn run(f: &Function, inputs: &[Tensor], strict: bool) -> Tensor {
    let c = compile_with(f, Options { strict, ..Options::default() })
        .unwrap_or_else(|e| panic!("{}: {e}", f.name));
    let refs: Vec<&Tensor> = inputs.iter().collect();
    c.call(&refs).unwrap().remove(0)
}

/// Whether fast mode computes some op of `f` inline (`exp`, `tanh`, `sigmoid`).
fn inline_math(f: &Function) -> bool {
    f.node_ids().any(|n| {
        matches!(
            f.node(n).map(|x| &x.op),
            Some(Op::Unary(Unary::Exp | Unary::Tanh | Unary::Sigmoid))
        )
    })
}

/// Whether `g` is within `ulps` units in the last place (of `d`) of `w`.
fn within_ulps(g: f64, w: f64, d: DType, ulps: f64) -> bool {
    if !w.is_finite() {
        return same_bits(g, w);
    }
    let ulp = if d == DType::F32 {
        let a = (w as f32).abs().max(f32::MIN_POSITIVE);
        f64::from(f32::from_bits(a.to_bits() + 1) - a)
    } else {
        let a = w.abs().max(f64::MIN_POSITIVE);
        f64::from_bits(a.to_bits() + 1) - a
    };
    (g - w).abs() <= ulps * ulp
}

fn check_exact(f: &Function, inputs: &[Tensor]) {
    let want = interp::eval(f, inputs).unwrap().to_f64_vec();
    let d = f.output_type().unwrap().dtype;
    for strict in [false, true] {
        let got = run(f, inputs, strict).to_f64_vec();
        assert_eq!(got.len(), want.len());
        let near = !strict && inline_math(f);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let ok = if near {
                within_ulps(*g, *w, d, jjt_jit::INLINE_MATH_ULPS + 3.0)
            } else {
                same_bits(*g, *w)
            };
            assert!(
                ok,
                "{} (strict={strict}) element {i}: JIT {g:e} vs interpreter {w:e}\n{}",
                f.name,
                jjt_ir::text::print(f)
            );
        }
    }
}

/// `abs_f` computes Σ|terms| per output element; `n` is the number of terms per element.
fn check_bound(f: &Function, abs_f: &Function, inputs: &[Tensor], n: usize, scale: f64) {
    let want = interp::eval(f, inputs).unwrap().to_f64_vec();
    let abs = interp::eval(abs_f, inputs).unwrap().to_f64_vec();
    let u = if f.output_type().unwrap().dtype == DType::F32 {
        f64::from(f32::EPSILON) / 2.0
    } else {
        f64::EPSILON / 2.0
    };
    let strict = run(f, inputs, true).to_f64_vec();
    for (i, (g, w)) in strict.iter().zip(&want).enumerate() {
        assert!(same_bits(*g, *w), "{} strict element {i}: {g:e} vs {w:e}", f.name);
    }
    let got = run(f, inputs, false).to_f64_vec();
    for (i, ((g, w), a)) in got.iter().zip(&want).zip(&abs).enumerate() {
        if !w.is_finite() || !a.is_finite() {
            assert!(
                same_bits(*g, *w)
                    || (g.is_nan() && w.is_nan())
                    || (!a.is_finite() && !g.is_finite()),
                "{} element {i}: {g:e} vs {w:e}",
                f.name
            );
            continue;
        }
        // With gradual underflow each rounding also errs by up to half the smallest subnormal s
        // (fl(x) = x(1 + δ) + η, |η| ≤ s/2): n multiply-adds (2n roundings) add up to n·s per
        // order, 2n·s between two orders. (s/2 itself is not representable: use s.)
        let s = if f.output_type().unwrap().dtype == DType::F32 {
            f64::from(f32::from_bits(1))
        } else {
            f64::from_bits(1)
        };
        let bound = 2.0 * n as f64 * u * a * scale + 2.0 * u * w.abs() + 2.0 * n as f64 * s;
        assert!(
            (g - w).abs() <= bound,
            "{} element {i}: JIT {g:e} vs interpreter {w:e}, bound {bound:e}",
            f.name
        );
    }
}

fn func(
    name: &str,
    tys: &[TensorType],
    body: impl FnOnce(&mut FunctionBuilder, &[NodeId]) -> NodeId,
) -> Function {
    let mut b = FunctionBuilder::new(name);
    let args: Vec<NodeId> = tys
        .iter()
        .enumerate()
        .map(|(i, t)| b.input(&format!("x{i}"), t.clone()).unwrap())
        .collect();
    let out = body(&mut b, &args);
    b.finish(out).unwrap()
}

#[test]
fn elementwise_ops_are_bit_exact() {
    for d in [DType::F32, DType::F64] {
        for n in LENGTHS {
            let t = TensorType::new(d, [n]);
            for u in Unary::ALL {
                let f =
                    func(&format!("{}_{d}_{n}", u.op_name()), std::slice::from_ref(&t), |b, x| {
                        b.unary(u, x[0]).unwrap()
                    });
                check_exact(&f, &[input(&t, 0)]);
            }
            for op in Binary::ALL {
                let f =
                    func(&format!("{}_{d}_{n}", op.op_name()), &[t.clone(), t.clone()], |b, x| {
                        b.binary(op, x[0], x[1]).unwrap()
                    });
                check_exact(&f, &[input(&t, 0), input(&t, 5)]);
                // Broadcast shapes: [3, n] with [n], and [n, 1] with [1, 3].
                let (a, c) = (TensorType::new(d, [3, n]), TensorType::new(d, [n]));
                let f = func(
                    &format!("{}_bcast_{d}_{n}", op.op_name()),
                    &[a.clone(), c.clone()],
                    |b, x| b.binary(op, x[0], x[1]).unwrap(),
                );
                check_exact(&f, &[input(&a, 1), input(&c, 3)]);
                let (a, c) = (TensorType::new(d, [n, 1]), TensorType::new(d, [1, 3]));
                let f = func(
                    &format!("{}_outer_{d}_{n}", op.op_name()),
                    &[a.clone(), c.clone()],
                    |b, x| b.binary(op, x[0], x[1]).unwrap(),
                );
                check_exact(&f, &[input(&a, 2), input(&c, 7)]);
            }
            for cmp in Compare::ALL {
                let f = func(
                    &format!("select_{}_{d}_{n}", cmp.op_name()),
                    &[t.clone(), t.clone()],
                    |b, x| {
                        let p = b.compare(cmp, x[0], x[1]).unwrap();
                        b.select(p, x[0], x[1]).unwrap()
                    },
                );
                check_exact(&f, &[input(&t, 0), input(&t, 6)]);
                let f =
                    func(&format!("{}_{d}_{n}", cmp.op_name()), &[t.clone(), t.clone()], |b, x| {
                        b.compare(cmp, x[0], x[1]).unwrap()
                    });
                check_exact(&f, &[input(&t, 0), input(&t, 6)]);
            }
            // Conversions: to the other float type, to bool and back.
            let other = if d == DType::F32 { DType::F64 } else { DType::F32 };
            let f = func(&format!("convert_{d}_{n}"), std::slice::from_ref(&t), |b, x| {
                b.convert(x[0], other).unwrap()
            });
            check_exact(&f, &[input(&t, 0)]);
            let f = func(&format!("convert_bool_{d}_{n}"), std::slice::from_ref(&t), |b, x| {
                let p = b.convert(x[0], DType::Bool).unwrap();
                let q = b.convert(p, d).unwrap();
                b.binary(Binary::Mul, q, x[0]).unwrap()
            });
            check_exact(&f, &[input(&t, 0)]);
            // A fused chain with a splatted constant.
            let f = func(&format!("chain_{d}_{n}"), &[t.clone(), t.clone()], |b, x| {
                let s = b.binary(Binary::Add, x[0], x[1]).unwrap();
                let r = b.unary(Unary::Relu, s).unwrap();
                let e = b.unary(Unary::Tanh, r).unwrap();
                b.binary_scalar(Binary::Mul, e, 0.25, jjt_ir::ScalarSide::Left).unwrap()
            });
            check_exact(&f, &[input(&t, 0), input(&t, 9)]);
            // Exact GELU, x·(1 + erf(x/√2))/2: a fused expression around the erf call (a
            // call in every mode, so bit for bit in fast mode too).
            let f = func(&format!("gelu_{d}_{n}"), std::slice::from_ref(&t), |b, x| {
                use jjt_ir::ScalarSide::Right;
                let s = b.binary_scalar(Binary::Mul, x[0], std::f64::consts::FRAC_1_SQRT_2, Right);
                let e = b.unary(Unary::Erf, s.unwrap()).unwrap();
                let p = b.binary_scalar(Binary::Add, e, 1.0, Right).unwrap();
                let h = b.binary_scalar(Binary::Mul, x[0], 0.5, Right).unwrap();
                b.binary(Binary::Mul, h, p).unwrap()
            });
            check_exact(&f, &[input(&t, 0)]);
        }
    }
}

#[test]
fn bool_inputs_and_outputs() {
    for n in LENGTHS {
        let tb = TensorType::new(DType::Bool, [n]);
        let tf = TensorType::new(DType::F64, [n]);
        let f = func(&format!("bool_{n}"), &[tb.clone(), tf.clone(), tf.clone()], |b, x| {
            b.select(x[0], x[1], x[2]).unwrap()
        });
        let p = Tensor::new([n], jjt_ir::Data::Bool((0..n).map(|k| k % 3 == 0).collect())).unwrap();
        check_exact(&f, &[p.clone(), input(&tf, 0), input(&tf, 4)]);
        let g = func(&format!("bool_eq_{n}"), &[tb.clone(), tb.clone()], |b, x| {
            b.compare(Compare::Eq, x[0], x[1]).unwrap()
        });
        let q = Tensor::new([n], jjt_ir::Data::Bool((0..n).map(|k| k % 2 == 0).collect())).unwrap();
        check_exact(&g, &[p, q]);
    }
}

#[test]
fn data_movement_is_bit_exact() {
    for d in [DType::F32, DType::F64] {
        for n in LENGTHS {
            let t = TensorType::new(d, [2, n, 3]);
            let x = input(&t, 0);
            type Build = Box<dyn Fn(&mut FunctionBuilder, NodeId) -> NodeId>;
            let cases: Vec<(&str, Build)> = vec![
                ("reshape", Box::new(move |b, x| b.reshape(x, [n, 6]).unwrap())),
                ("transpose", Box::new(|b, x| b.transpose(x, &[2, 0, 1]).unwrap())),
                (
                    "broadcast",
                    Box::new(move |b, x| b.broadcast_to(x, &Shape(vec![4, 2, n, 3])).unwrap()),
                ),
                (
                    "slice",
                    Box::new(move |b, x| b.slice(x, &[1, 0, 0], &[2, n, 3], &[1, 2, 2]).unwrap()),
                ),
                (
                    "pad",
                    Box::new(|b, x| {
                        b.add(
                            Op::Pad(Pad {
                                lo: vec![1, 0, 2],
                                hi: vec![0, 3, 1],
                                interior: vec![1, 2, 0],
                            }),
                            &[x],
                        )
                        .unwrap()
                    }),
                ),
                (
                    "concat",
                    Box::new(|b, x| {
                        let e = b.unary(Unary::Exp, x).unwrap();
                        b.concat(&[x, e, x], 1).unwrap()
                    }),
                ),
                (
                    "transpose_reshape",
                    Box::new(move |b, x| {
                        let t = b.transpose(x, &[1, 0, 2]).unwrap();
                        b.reshape(t, [2 * n * 3]).unwrap()
                    }),
                ),
                (
                    "const",
                    Box::new(move |b, x| {
                        let c = b
                            .constant(Const::Iota { ty: TensorType::new(d, [2, n, 3]), axis: 1 })
                            .unwrap();
                        b.binary(Binary::Add, x, c).unwrap()
                    }),
                ),
            ];
            for (name, body) in cases {
                let f = func(&format!("{name}_{d}_{n}"), std::slice::from_ref(&t), |b, a| {
                    body(b, a[0])
                });
                check_exact(&f, std::slice::from_ref(&x));
            }
        }
    }
}

#[test]
fn reductions_within_rounding_bound() {
    for d in [DType::F32, DType::F64] {
        for n in LENGTHS {
            let t = TensorType::new(d, [3, n]);
            let x = input(&t, 11);
            for (axes, count) in [(vec![1i64], n), (vec![0], 3), (vec![0, 1], 3 * n)] {
                for kind in ReduceKind::ALL {
                    let f = func(
                        &format!("{}_{axes:?}_{d}_{n}", kind.op_name()),
                        std::slice::from_ref(&t),
                        |b, a| b.reduce(kind, a[0], Some(&axes)).unwrap(),
                    );
                    if kind == ReduceKind::Max {
                        check_exact(&f, std::slice::from_ref(&x));
                        continue;
                    }
                    // Σ|terms| per output (for mean: of the sum, divided like the mean).
                    let abs = func("abs", std::slice::from_ref(&t), |b, a| {
                        let m = b.unary(Unary::Abs, a[0]).unwrap();
                        b.reduce(kind, m, Some(&axes)).unwrap()
                    });
                    check_bound(&f, &abs, std::slice::from_ref(&x), count.max(1), 1.0);
                }
            }
        }
    }
}

#[test]
fn contractions_within_rounding_bound() {
    for d in [DType::F32, DType::F64] {
        let mut shapes: Vec<(Vec<usize>, Vec<usize>, DotGeneral, usize)> = Vec::new();
        for n in LENGTHS {
            let mm =
                DotGeneral { lhs_contract: vec![1], rhs_contract: vec![0], ..Default::default() };
            shapes.push((vec![3, n], vec![n, 5], mm.clone(), n));
            shapes.push((vec![5, n], vec![n, 2], mm, n));
            shapes.push((
                vec![n],
                vec![n],
                DotGeneral { lhs_contract: vec![0], rhs_contract: vec![0], ..Default::default() },
                n,
            ));
            // Matrix-vector and vector-matrix products (rows blocked by 4, with a ragged tail),
            // and a batched one.
            let v = |l: usize, r: usize| DotGeneral {
                lhs_contract: vec![l],
                rhs_contract: vec![r],
                ..Default::default()
            };
            shapes.push((vec![7, n], vec![n], v(1, 0), n));
            shapes.push((vec![n], vec![6, n], v(0, 1), n));
            // Register tiles over outputs (2 rows × 4 vectors, with ragged rows, vectors and a
            // scalar tail), and the vector operand on the left.
            shapes.push((vec![5, n], vec![n, 37], v(1, 0), n));
            shapes.push((vec![n, 37], vec![n], v(0, 0), n));
            shapes.push((
                vec![2, 5, n],
                vec![2, n],
                DotGeneral {
                    lhs_contract: vec![2],
                    rhs_contract: vec![1],
                    lhs_batch: vec![0],
                    rhs_batch: vec![0],
                },
                n,
            ));
            shapes.push((
                vec![2, 3, n],
                vec![2, 4, n],
                DotGeneral {
                    lhs_contract: vec![2],
                    rhs_contract: vec![2],
                    lhs_batch: vec![0],
                    rhs_batch: vec![0],
                },
                n,
            ));
        }
        // Large enough for the matrix multiply, and with batch and outer free axes.
        shapes.push((
            vec![64, 96],
            vec![96, 80],
            DotGeneral { lhs_contract: vec![1], rhs_contract: vec![0], ..Default::default() },
            96,
        ));
        shapes.push((
            vec![3, 40, 50],
            vec![50, 2, 60],
            DotGeneral { lhs_contract: vec![2], rhs_contract: vec![0], ..Default::default() },
            50,
        ));
        shapes.push((
            vec![2, 70, 33],
            vec![2, 33, 65],
            DotGeneral {
                lhs_contract: vec![2],
                rhs_contract: vec![1],
                lhs_batch: vec![0],
                rhs_batch: vec![0],
            },
            33,
        ));
        for (i, (sa, sb, dims, k)) in shapes.into_iter().enumerate() {
            let (ta, tb) = (TensorType::new(d, sa), TensorType::new(d, sb));
            let f = func(&format!("dot{i}_{d}"), &[ta.clone(), tb.clone()], |b, x| {
                b.dot_general(x[0], x[1], dims.clone()).unwrap()
            });
            let abs = func("abs", &[ta.clone(), tb.clone()], |b, x| {
                let p = b.unary(Unary::Abs, x[0]).unwrap();
                let q = b.unary(Unary::Abs, x[1]).unwrap();
                b.dot_general(p, q, dims.clone()).unwrap()
            });
            check_bound(&f, &abs, &[input(&ta, 1), input(&tb, 20)], k.max(1), 1.0);
        }
    }
}

/// Products above `jjt_jit::gemm::PAR_THRESHOLD` are cut into row or column blocks, one per
/// thread. Each output element is still computed by one single-threaded call over the same K
/// order, so the result must be bit for bit the same for every thread count (including ragged
/// splits: 203 rows, 203 columns), and within 2·K·u·Σ|terms| of the interpreter.
#[test]
fn threaded_matrix_multiply_is_independent_of_thread_count() {
    let shapes = [
        // (lhs shape, rhs shape, dims): rows split; columns split; a transposed right operand.
        (vec![203, 300], vec![300, 97], vec![1], vec![0]),
        (vec![40, 520], vec![520, 203], vec![1], vec![0]),
        (vec![150, 256], vec![130, 256], vec![1], vec![1]),
    ];
    for d in [DType::F32, DType::F64] {
        for (sa, sb, lc, rc) in &shapes {
            let k = sa[lc[0]];
            assert!(sa[1 - lc[0]] * sb[1 - rc[0]] * k >= jjt_jit::gemm::PAR_THRESHOLD);
            let dims = DotGeneral {
                lhs_contract: lc.clone(),
                rhs_contract: rc.clone(),
                ..Default::default()
            };
            let (ta, tb) = (TensorType::new(d, sa.clone()), TensorType::new(d, sb.clone()));
            let f = func("mm", &[ta.clone(), tb.clone()], |b, x| {
                b.dot_general(x[0], x[1], dims.clone()).unwrap()
            });
            let xs = [&ta, &tb].map(|t| {
                let v: Vec<f64> = (0..t.numel()).map(|i| (i as f64 * 0.731).sin()).collect();
                Tensor::from_f64(t, &v).unwrap()
            });
            let call = |threads: usize| {
                let c = compile_with(&f, Options { threads, ..Options::default() }).unwrap();
                c.call(&[&xs[0], &xs[1]]).unwrap().remove(0).to_f64_vec()
            };
            let one = call(1);
            for threads in [2, 3, 5] {
                let got = call(threads);
                assert!(
                    got.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{d} {sa:?}·{sb:?}: {threads} threads differ from 1"
                );
            }
            let want = interp::eval(&f, &xs).unwrap().to_f64_vec();
            let abs: Vec<Tensor> = xs
                .iter()
                .map(|t| {
                    let v: Vec<f64> = t.to_f64_vec().iter().map(|v| v.abs()).collect();
                    Tensor::from_f64(&t.ty(), &v).unwrap()
                })
                .collect();
            let scale = interp::eval(&f, &abs).unwrap().to_f64_vec();
            let u = if d == DType::F32 { f64::from(f32::EPSILON) } else { f64::EPSILON } / 2.0;
            for ((g, w), s) in one.iter().zip(&want).zip(&scale) {
                let bound = 2.0 * k as f64 * u * s + 2.0 * u * w.abs();
                assert!((g - w).abs() <= bound, "{d}: {g:e} vs {w:e}, bound {bound:e}");
            }
        }
    }
}

/// Parts of a concatenation along an axis with only unit axes before it are computed straight
/// into the joined buffer (a product that is also read elsewhere, a value with two users), the
/// rest are written into it by the concatenation (fused expressions, an input, a transposed
/// view); along an axis with a longer axis before it, every part is copied. Strict mode, so each result equals the interpreter's bit for bit.
#[test]
fn concat_parts_are_computed_in_place() {
    let models = [
        "func f(a: f64[3,5], b: f64[5,4], c: f64[3,4], d: f64[2,4], e: f64[4,2]) -> f64[16,4] {
  p = a @ b
  q = tanh(c)
  j = concat(p, q, exp(c) * 2.0, d, transpose(e, perm=[1,0]), p + 1.0, axis=0)
  return j * sum(q)
}",
        "func f(a: f64[3,5], b: f64[5,4], c: f64[1,3,4]) -> f64[1,6,4] {
  p = reshape(a @ b, shape=[1,3,4])
  q = tanh(c)
  return concat(p, q, axis=1) + sum(q)
}",
        "func f(a: f64[3,5], b: f64[5,4], c: f64[3,4]) -> f64[3,8] {
  p = a @ b
  q = tanh(c)
  return concat(p, q, axis=1) * sum(q)
}",
    ];
    for m in models {
        let f = jjt_ir::text::parse(m).unwrap();
        let xs = waves(&f, 0.37);
        let want = interp::eval(&f, &xs).unwrap().to_f64_vec();
        let got = run(&f, &xs, true).to_f64_vec();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(same_bits(*g, *w), "{m}\nelement {i}: {g:e} vs {w:e}");
        }
    }
}

/// Every output of `f` in strict mode (one thread) equals the interpreter's bit for bit, on
/// `waves(f, step)`.
fn assert_strict_bits(f: &Function, step: f64, what: &str) {
    let xs = waves(f, step);
    let want = interp::eval_outputs(f, &xs).unwrap();
    let c = compile_with(f, Options { strict: true, threads: 1, ..Options::default() }).unwrap();
    let refs: Vec<&Tensor> = xs.iter().collect();
    let got = c.call(&refs).unwrap();
    for (g, w) in got.iter().zip(&want) {
        let (g, w) = (g.to_f64_vec(), w.to_f64_vec());
        assert!(g.iter().zip(&w).all(|(x, y)| same_bits(*x, *y)), "{what}");
    }
}

/// The element counts of the zero-fill steps in `f`'s plan, in order.
fn zero_fills(f: &Function) -> Vec<usize> {
    let plan = jjt_jit::plan::plan(f).unwrap();
    plan.steps
        .iter()
        .filter_map(|s| match s {
            jjt_jit::plan::Step::Map(m) if matches!(m.expr, jjt_jit::plan::Expr::Scalar(..)) => {
                Some(m.shape.iter().product())
            }
            _ => None,
        })
        .collect()
}

/// The operand of a pad that is computed into its own buffer anyway (a product, here also read
/// elsewhere) is computed straight into the pad's buffer, and the pad only zeroes its border.
/// Fused operands, interior padding and an operand padded twice take
/// the copy. Strict mode, so each result equals the interpreter's bit for bit.
/// (The zero-fills are one box per padded side, so in the first two models exactly as many
/// as there are nonzero `lo` and `hi` entries, each smaller than the padded shape.)
#[test]
fn pad_operands_are_computed_in_place() {
    let models = [
        "func f(a: f64[6,5], b: f64[5,8]) -> (f64[7,11], f64[6,8]) {
  p = a @ b
  return pad(p, lo=[1,0], hi=[0,3]), p * 2.0
}",
        "func f(a: f64[2,6,5], b: f64[5,4]) -> f64[4,10,6] {
  p = dot_general(a, b, contract=[[2],[0]], batch=[[],[]])
  return pad(p, lo=[1,2,1], hi=[1,2,1]) + 1.0
}",
        "func f(a: f64[6,5], b: f64[5,8], c: f64[3,4]) -> (f64[5,7], f64[7,16], f64[11,15]) {
  p = a @ b
  return pad(tanh(c), lo=[1,1], hi=[1,2]), pad(p, lo=[1,0], hi=[0,1], interior=[0,1]) * 1.0, pad(p, lo=[2,3], hi=[3,4])
}",
        "func f(a: f64[6,5], b: f64[5,8]) -> (f64[7,9], f64[8,8]) {
  p = a @ b
  return pad(p, lo=[1,1], hi=[0,0]), pad(p, lo=[1,0], hi=[1,0])
}",
    ];
    for (k, m) in models.iter().enumerate() {
        let f = jjt_ir::text::parse(m).unwrap();
        assert_strict_bits(&f, 0.41, m);
        // The zero-fills of the first two models: border boxes only.
        if k < 2 {
            let padded = f.node(f.outputs()[0]).unwrap().ty.numel();
            let zeros = zero_fills(&f);
            let sides = [2, 6][k];
            assert_eq!(zeros.len(), sides, "{m}: {zeros:?}");
            assert!(zeros.iter().all(|&z| z < padded), "{m}: {zeros:?} of {padded}");
        }
    }
}

/// A convolution that pads its input writes the padded copy's interior from the node that
/// computes the input (through reshapes) and zeroes only its border: its zero-fills are one box
/// per padded side, none as large as the copy. The convolution may itself be an output
/// (whose buffer is not the copy's), its input may be read elsewhere too, strided and
/// dilated kernels read the copy as before; an input, a dilated input (`lhs_dilation`) and
/// negative padding keep the copy. Strict mode, so each result equals the interpreter's bit
/// for bit.
#[test]
fn convolution_inputs_are_computed_into_their_padded_copy() {
    let models = [
        "func f(a: f64[1,5,1], b: f64[1,5,1], k: f64[2,1,1]) -> f64[1,7,1] {
  return conv(a * b, k, dims=\"NWC,WOI,NWC\", strides=[2], padding=[[5,5]], rhs_dilation=[2])
}",
        "func f(a: f64[2,3,6,5,2], b: f64[2,3,6,5,2], k: f64[3,3,2,4]) -> (f64[6,6,5,4], f64[2,3,6,5,2]) {
  m = a * b + 1.0
  x = reshape(m, shape=[6,6,5,2])
  return conv(x, k, dims=\"NHWC,HWIO,NHWC\", padding=[[1,1],[2,0]]) * 2.0, tanh(m)
}",
        "func f(a: f64[2,6,5,3], k: f64[3,3,3,4]) -> (f64[2,6,5,4], f64[2,11,9,4], f64[2,4,2,4]) {
  return conv(a, k, dims=\"NHWC,HWIO,NHWC\", padding=\"SAME\"), conv(tanh(a) * a, k, dims=\"NHWC,HWIO,NHWC\", padding=[[1,1],[1,1]], lhs_dilation=[2,2]), conv(sin(a) * a, k, dims=\"NHWC,HWIO,NHWC\", padding=[[0,0],[0,-1]])
}",
    ];
    for (k, m) in models.iter().enumerate() {
        let f = jjt_ir::text::parse(m).unwrap();
        assert_strict_bits(&f, 0.29, m);
        let zeros = zero_fills(&f);
        // The padded copies: [1,15,1] and [6,8,7,2] in place (2 and 3 border boxes); in the
        // last model the copies of the input, the dilated input and the cropped one are
        // zeroed whole.
        match k {
            0 => assert_eq!(zeros, [5, 5], "{m}"),
            1 => assert_eq!(zeros, [6 * 7 * 2, 6 * 7 * 2, 6 * 8 * 2 * 2], "{m}"),
            _ => assert_eq!(zeros, [2 * 8 * 7 * 3, 2 * 13 * 11 * 3, 2 * 6 * 4 * 3], "{m}"),
        }
    }
}

/// Elementwise steps with at least 2¹⁴ elements and two rows (here 2¹⁵ and more) run their rows
/// on several threads (row functions called through `jjt_par_map`): vectorised rows, strided
/// (scalar) rows, rows of a concatenation's and a padding's sub-boxes, bool rows, libm calls. Each output element is
/// the same computation on any thread, so every thread count must give the interpreter's bits.
#[test]
fn parallel_rows_are_bit_exact() {
    let m = "func f(x: f32[131,257], y: f32[257,131], z: f64[3,131,257]) -> f32[131,257] {
  a = tanh(x) * transpose(y, perm=[1,0]) + sum(x)
  b = concat(a, x * 2.0, axis=0)
  c = pad(b, lo=[1,0], hi=[2,3])
  d = select(x > 0.5, exp(x), sqrt(abs(x)))
  e = convert(sum(z * z, axes=[0]), to=f32)
  return slice(c, start=[1,0], stop=[132,257], step=[1,1]) + d + e
}";
    let f = jjt_ir::text::parse(m).unwrap();
    let xs = waves(&f, 0.0137);
    let want = interp::eval(&f, &xs).unwrap().to_f64_vec();
    let refs: Vec<&Tensor> = xs.iter().collect();
    for threads in [1, 2, 3] {
        let c = compile_with(&f, Options { strict: true, threads, ..Options::default() }).unwrap();
        let got = c.call(&refs).unwrap().remove(0).to_f64_vec();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(same_bits(*g, *w), "{threads} threads, element {i}: {g:e} vs {w:e}");
        }
    }
}

/// A case exercising the op named `name` (a name of `Op::all_names`) at dtype `d`, on one input
/// of type `t` (`[2, 3]`), and whether its summation order may differ in fast mode; `None` for
/// a name this table does not know, which fails `every_op_name_has_a_jit_case`.
fn case_for(name: &str, d: DType, t: &TensorType) -> Option<(Function, bool)> {
    let one = std::slice::from_ref(t);
    let f = |body: &dyn Fn(&mut FunctionBuilder, NodeId) -> NodeId| {
        func(&format!("case_{name}_{d}"), one, |b, x| body(b, x[0]))
    };
    if let Some(u) = Unary::ALL.into_iter().find(|u| u.op_name() == name) {
        return Some((f(&|b, x| b.unary(u, x).unwrap()), false));
    }
    if let Some(op) = Binary::ALL.into_iter().find(|o| o.op_name() == name) {
        return Some((
            f(&|b, x| {
                let y = b.unary(Unary::Sin, x).unwrap();
                b.binary(op, x, y).unwrap()
            }),
            false,
        ));
    }
    if let Some(c) = Compare::ALL.into_iter().find(|c| c.op_name() == name) {
        return Some((
            f(&|b, x| {
                let y = b.transpose(x, &[1, 0]).unwrap();
                let y = b.reshape(y, [2, 3]).unwrap();
                b.compare(c, x, y).unwrap()
            }),
            false,
        ));
    }
    if let Some(l) = jjt_ir::ops::Logic::ALL.into_iter().find(|l| l.op_name() == name) {
        return Some((
            f(&|b, x| {
                let p = b.compare_scalar(Compare::Gt, x, 0.0).unwrap();
                let q = b.compare_scalar(Compare::Lt, x, 1.0).unwrap();
                let args: &[NodeId] = if l.operands() == 1 { &[p] } else { &[p, q] };
                let r = b.add(Op::Logic(l), args).unwrap();
                let y = b.unary(Unary::Sin, x).unwrap();
                b.select(r, x, y).unwrap()
            }),
            false,
        ));
    }
    if let Some(k) = ReduceKind::ALL.into_iter().find(|k| k.op_name() == name) {
        return Some((f(&|b, x| b.reduce(k, x, Some(&[1])).unwrap()), k != ReduceKind::Max));
    }
    let mut draw = jjt_ir::testgen::Draw::seed(1);
    if let Some(c) = jjt_ir::testgen::constant(name, t.clone(), &mut draw) {
        return Some((
            f(&|b, x| {
                let k = b.constant(c.clone()).unwrap();
                b.binary(Binary::Add, x, k).unwrap()
            }),
            false,
        ));
    }
    let other = if d == DType::F32 { DType::F64 } else { DType::F32 };
    Some(match name {
        "input" => (func(&format!("case_input_{d}"), one, |_, x| x[0]), false),
        "select" => (
            f(&|b, x| {
                let p = b.compare_scalar(Compare::Gt, x, 0.0).unwrap();
                let y = b.unary(Unary::Exp, x).unwrap();
                b.select(p, x, y).unwrap()
            }),
            false,
        ),
        "convert" => (f(&|b, x| b.convert(x, other).unwrap()), false),
        "dot_general" => (
            f(&|b, x| {
                let y = b.transpose(x, &[1, 0]).unwrap();
                b.matmul(x, y).unwrap()
            }),
            true,
        ),
        "reshape" => (f(&|b, x| b.reshape(x, [3, 1, 2]).unwrap()), false),
        "patches" => (
            f(&|b, x| {
                let p = jjt_ir::ops::Patches {
                    axes: vec![1, 0],
                    window: vec![2, 1],
                    strides: vec![1, 1],
                    dilation: vec![1, 1],
                };
                b.add(Op::Patches(p), &[x]).unwrap()
            }),
            false,
        ),
        "stop_gradient" => (
            f(&|b, x| {
                let s = b.add(Op::StopGradient(jjt_ir::ops::StopGradient), &[x]).unwrap();
                let t = b.unary(Unary::Tanh, s).unwrap();
                b.binary(Binary::Mul, t, s).unwrap()
            }),
            false,
        ),
        "reverse" => (
            f(&|b, x| b.add(Op::Reverse(jjt_ir::ops::Reverse { axes: vec![1] }), &[x]).unwrap()),
            false,
        ),
        "conv" => (
            f(&|b, x| {
                // NWC input [1, 3, 2] against a WIO kernel [1, 2, 3], padded by one each side.
                let lhs = b.reshape(x, [1, 3, 2]).unwrap();
                let k = b.reshape(x, [1, 2, 3]).unwrap();
                let mut c = jjt_ir::ops::Conv::new(jjt_ir::ops::ConvDims::channels_last(1));
                c.padding = vec![(1, 1)];
                b.add(Op::Conv(c), &[lhs, k]).unwrap()
            }),
            true,
        ),
        // Indices out of range on both sides (clamped), from a literal and from the input
        // converted (its specials: NaN gives 0, ±inf saturate).
        "gather" => (
            f(&|b, x| {
                let ty = TensorType::new(DType::I32, [4]);
                let i = b.constant(Const::literal(ty, &[2.0, -1.0, 0.0, 7.0])).unwrap();
                let g = b.add(Op::Gather(jjt_ir::ops::Gather { axis: 1 }), &[x, i]).unwrap();
                let j = b.convert(x, DType::I32).unwrap();
                let h = b.add(Op::Gather(jjt_ir::ops::Gather { axis: 0 }), &[x, j]).unwrap();
                let h = b.reduce(ReduceKind::Max, h, Some(&[0, 1, 2])).unwrap();
                let h = b.broadcast_to(h, &Shape(vec![2, 4])).unwrap();
                b.binary(Binary::Add, g, h).unwrap()
            }),
            false,
        ),
        // In the interpreter's order (strict and fast alike): terms into clamped rows.
        "scatter_add" => (
            f(&|b, x| {
                let ty = TensorType::new(DType::I32, [3]);
                let i = b.constant(Const::literal(ty, &[2.0, -1.0, 2.0])).unwrap();
                let s = jjt_ir::ops::ScatterAdd { size: 4, axis: 1 };
                b.add(Op::ScatterAdd(s), &[i, x]).unwrap()
            }),
            false,
        ),
        "transpose" => (f(&|b, x| b.transpose(x, &[1, 0]).unwrap()), false),
        "broadcast_to" => (f(&|b, x| b.broadcast_to(x, &Shape(vec![2, 2, 3])).unwrap()), false),
        "slice" => (f(&|b, x| b.slice(x, &[1, 0], &[2, 3], &[1, 2]).unwrap()), false),
        "concat" => (f(&|b, x| b.concat(&[x, x], 1).unwrap()), false),
        "pad" => (
            f(&|b, x| {
                b.add(Op::Pad(Pad { lo: vec![1, 0], hi: vec![0, 2], interior: vec![1, 1] }), &[x])
                    .unwrap()
            }),
            false,
        ),
        _ => return None,
    })
}

/// The op checklist: every name of `Op::all_names` has a JIT case (a new op without one fails
/// here), checked in f32 and f64 on inputs with ±0, subnormals, ±inf and NaN: bit for bit in
/// strict mode, and in fast mode too except where the summation order may differ (sums, means,
/// contractions: their bounds are checked by the tests above).
#[test]
fn every_op_name_has_a_jit_case() {
    let mut missing = Vec::new();
    for name in Op::all_names() {
        for d in [DType::F32, DType::F64] {
            let t = TensorType::new(d, [2, 3]);
            let Some((f, reorders)) = case_for(name, d, &t) else {
                missing.push(name);
                break;
            };
            let x = input(&t, 3);
            if reorders {
                let want = interp::eval(&f, std::slice::from_ref(&x)).unwrap().to_f64_vec();
                let got = run(&f, std::slice::from_ref(&x), true).to_f64_vec();
                assert!(got.iter().zip(&want).all(|(g, w)| same_bits(*g, *w)), "{}", f.name);
            } else {
                check_exact(&f, std::slice::from_ref(&x));
            }
        }
    }
    assert!(missing.is_empty(), "no JIT case for {missing:?}");
}

/// A broadcast constant with several users (average pooling's 1/4 spread over both sides'
/// cotangents) is not stored: each user reads the scalar. The plan has one map, the output's,
/// and the values are the interpreter's bit for bit (one rounding per product and sum).
#[test]
fn broadcast_constants_are_not_stored() {
    let src = "func f(x: f32[64,256], y: f32[64,256]) -> f32[64,256] {
  q = broadcast_to(full(f32[1,256], 0.25), shape=[64,256])
  return x * q + y * q
}";
    let f = jjt_ir::text::parse(src).unwrap();
    let p = jjt_jit::plan::plan_for(&f, &Options::default()).unwrap();
    let maps = p.steps.iter().filter(|s| matches!(s, jjt_jit::plan::Step::Map(_))).count();
    assert_eq!((maps, p.steps.len()), (1, 1), "{:?}", p.steps);
    check_exact(&f, &waves(&f, 0.37));
}
