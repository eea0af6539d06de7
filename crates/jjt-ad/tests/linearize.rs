//! `linearize` and function-level `transpose` against independent oracles, on random graphs
//! (f64, interpreter):
//!
//! - the primal half returns f's outputs bit for bit, and the linear half, fed the primal
//!   half's residuals and a tangent, returns the JVP's output tangents bit for bit: both halves
//!   replay the JVP graph's own nodes in the same order, so any difference is a bug, not
//!   rounding;
//! - the JVP's tangent agrees with central finite differences of f, which ties both halves to
//!   the derivative itself rather than only to each other;
//! - the transpose of the linear half passes the dot-product test ⟨J t, c⟩ = ⟨t, Jᵀ c⟩ within a
//!   rounding bound stated at the check, and agrees with `vjp`.
//!
//! The graphs come from `random_case`, a small generator local to this file: every test only
//! calls `random_case(&mut rng, id) -> Case`, so the shared generator can replace it by
//! changing that one function.

mod common;

use common::{Rng, bits, eval, tensor};
use jjt_ad::{Linearized, jvp, linearize, transpose, vjp};
use jjt_ir::ops::Pad;
use jjt_ir::{
    Binary, Compare, DType, Function, FunctionBuilder, NodeId, Op, ReduceKind, Shape, Tensor,
    TensorType, Unary,
};

/// Number of random graphs each test draws.
const CASES: usize = 96;

/// A function and the inputs it is differentiated with respect to.
struct Case {
    f: Function,
    wrt: Vec<String>,
}

impl Case {
    fn wrt_types(&self) -> Vec<TensorType> {
        self.f
            .params()
            .iter()
            .filter(|p| self.wrt.contains(&p.name))
            .map(|p| p.ty.clone())
            .collect()
    }
}

/// Largest tensor the generator keeps (elements).
const MAX_NUMEL: usize = 48;

/// A random f64 function of four inputs (a matrix, a vector, another matrix, a scalar) with one
/// or two outputs, built from 4 to 15 random nodes over the ops that are defined everywhere
/// (no log/sqrt/division by a value near zero), including the non-smooth `maximum`, `max`
/// and `select`. `wrt` is a random non-empty subset of the inputs.
fn random_case(rng: &mut Rng, id: usize) -> Case {
    let mut b = FunctionBuilder::new(format!("r{id}"));
    let f64t = |d: &[usize]| TensorType::new(DType::F64, d.to_vec());
    let names = ["a", "u", "c", "s"];
    let inputs = [
        b.input(names[0], f64t(&[2, 3])).unwrap(),
        b.input(names[1], f64t(&[3])).unwrap(),
        b.input(names[2], f64t(&[3, 2])).unwrap(),
        b.input(names[3], f64t(&[])).unwrap(),
    ];
    let mut pool: Vec<NodeId> = inputs.to_vec();
    let steps = 4 + rng.below(12);
    let mut attempts = 0;
    while pool.len() < inputs.len() + steps && attempts < 200 {
        attempts += 1;
        // Reading the newest node half the time makes chains, so most nodes reach the output.
        let x = if rng.below(2) == 0 { pool[pool.len() - 1] } else { pool[rng.below(pool.len())] };
        let y = pool[rng.below(pool.len())];
        if let Some(n) = random_node(&mut b, rng, x, y)
            && b.ty(n).is_ok_and(|t| t.numel() <= MAX_NUMEL && t.dtype == DType::F64)
        {
            pool.push(n);
        }
    }
    let last = *pool.last().unwrap();
    let mut outs = vec![last];
    if rng.below(2) == 0 {
        let other = pool[inputs.len() + rng.below(pool.len() - inputs.len())];
        if other != last {
            outs.push(other);
        }
    }
    let f = b.finish_many(outs).unwrap().pruned();
    let wrt: Vec<String> = loop {
        let pick: Vec<String> =
            names.iter().filter(|_| rng.below(2) == 0).map(|s| s.to_string()).collect();
        if !pick.is_empty() {
            break pick;
        }
    };
    Case { f, wrt }
}

/// One random node reading `x` (and `y`), or `None` when the drawn op does not fit their types.
fn random_node(b: &mut FunctionBuilder, rng: &mut Rng, x: NodeId, y: NodeId) -> Option<NodeId> {
    let sx = b.ty(x).ok()?.shape.clone();
    let rank = sx.rank();
    let node = match rng.below(12) {
        0 => {
            let u = [
                Unary::Tanh,
                Unary::Sin,
                Unary::Cos,
                Unary::Sigmoid,
                Unary::Softplus,
                Unary::Square,
                Unary::Neg,
            ][rng.below(7)];
            b.unary(u, x)
        }
        1 | 2 => {
            let op = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Maximum, Binary::Minimum]
                [rng.below(5)];
            b.binary(op, x, y)
        }
        // x / (1 + y²): a division whose denominator stays ≥ 1.
        3 => {
            let sq = b.unary(Unary::Square, y).ok()?;
            let den = b.binary_scalar(Binary::Add, sq, 1.0, jjt_ir::ScalarSide::Right).ok()?;
            b.binary(Binary::Div, x, den)
        }
        4 => b.matmul(x, y),
        5 if rank >= 1 => {
            let kind = [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max][rng.below(3)];
            let axes = [rng.below(rank) as i64];
            b.reduce(kind, x, if rng.below(3) == 0 { None } else { Some(&axes) })
        }
        6 if rank >= 2 => b.transpose(x, &(0..rank).rev().collect::<Vec<_>>()),
        7 if rank >= 1 => b.reshape(x, [sx.numel()]),
        8 => {
            let mut d = vec![2];
            d.extend_from_slice(sx.dims());
            b.broadcast_to(x, &Shape(d))
        }
        9 if rank >= 1 && sx.dims()[0] >= 2 => {
            let stop = sx.dims().to_vec();
            let mut step = vec![1; rank];
            step[0] = 2;
            b.slice(x, &vec![0; rank], &stop, &step)
        }
        10 if rank >= 1 => match rng.below(2) {
            0 => b.concat(&[x, y], 0),
            _ => {
                let pad = Pad { lo: vec![1; rank], hi: vec![0; rank], interior: vec![0; rank] };
                b.add(Op::Pad(pad), &[x])
            }
        },
        11 => {
            let p = b.compare(Compare::Gt, x, y).ok()?;
            b.select(p, x, y)
        }
        _ => return None,
    };
    node.ok()
}

/// Values uniform in [-1, 1) for each type.
fn random_tensors(rng: &mut Rng, types: &[TensorType]) -> Vec<Tensor> {
    types
        .iter()
        .map(|ty| tensor(ty, (0..ty.numel()).map(|_| rng.uniform(-1.0, 1.0)).collect()))
        .collect()
}

fn param_types(f: &Function) -> Vec<TensorType> {
    f.params().iter().map(|p| p.ty.clone()).collect()
}

fn output_types(f: &Function) -> Vec<TensorType> {
    f.output_types().into_iter().map(|t| t.unwrap().clone()).collect()
}

fn flat(ts: &[Tensor]) -> Vec<f64> {
    ts.iter().flat_map(Tensor::to_f64_vec).collect()
}

/// A random case, linearized, with a point x and a tangent t (values uniform in [-1, 1)).
struct Drawn {
    case: Case,
    lin: Linearized,
    x: Vec<Tensor>,
    t: Vec<Tensor>,
    /// The case in text, for failure messages.
    what: String,
}

fn draw(rng: &mut Rng, id: usize) -> Drawn {
    let case = random_case(rng, id);
    let what = format!("wrt {}\n{}", case.wrt.join(","), jjt_ir::text::print(&case.f));
    let lin = linearize(&case.f, &case.wrt).unwrap_or_else(|e| panic!("linearize: {e}\n{what}"));
    let x = random_tensors(rng, &param_types(&case.f));
    let t = random_tensors(rng, &case.wrt_types());
    Drawn { case, lin, x, t, what }
}

impl Drawn {
    /// The primal half's residual outputs at x.
    fn residuals(&self) -> Vec<Tensor> {
        eval(&self.lin.primal, &self.x)[self.case.f.outputs().len()..].to_vec()
    }

    /// J·t by the linear half.
    fn linear_tangents(&self) -> Vec<Tensor> {
        let mut args = self.residuals();
        args.extend(self.t.iter().cloned());
        eval(&self.lin.linear, &args)
    }

    /// f at x + s·t.
    fn f_shifted(&self, s: f64) -> Vec<f64> {
        let mut tangents = self.t.iter();
        let args: Vec<Tensor> = (self.case.f.params().iter().zip(&self.x))
            .map(|(p, xv)| {
                if !self.case.wrt.contains(&p.name) {
                    return xv.clone();
                }
                let tv = tangents.next().unwrap().to_f64_vec();
                let v = xv.to_f64_vec().into_iter().zip(&tv).map(|(a, d)| a + s * d);
                tensor(&p.ty, v.collect())
            })
            .collect();
        flat(&eval(&self.case.f, &args))
    }
}

#[test]
fn primal_half_is_f_and_linear_half_is_the_jvp_tangent_bit_for_bit() {
    let mut rng = Rng(0x11ea);
    for id in 0..CASES {
        let d = draw(&mut rng, id);
        let (f, lin, what) = (&d.case.f, &d.lin, &d.what);
        let n_out = f.outputs().len();
        assert_eq!(lin.primal.outputs().len(), n_out + lin.residuals, "{what}");
        assert_eq!(lin.linear.params().len(), lin.residuals + d.case.wrt.len(), "{what}");
        assert_eq!(lin.linear.outputs().len(), n_out, "{what}");

        let primal = eval(&lin.primal, &d.x);
        for (i, want) in eval(f, &d.x).iter().enumerate() {
            assert_eq!(bits(&primal[i]), bits(want), "primal output {i}\n{what}");
        }
        let mut jargs = d.x.clone();
        jargs.extend(d.t.iter().cloned());
        let jv = eval(&jvp(f, &d.case.wrt).unwrap(), &jargs);
        let lt = d.linear_tangents();
        for (i, want) in jv[n_out..].iter().enumerate() {
            assert_eq!(lt[i].shape, want.shape, "tangent {i}\n{what}");
            assert_eq!(bits(&lt[i]), bits(want), "tangent {i}\n{what}");
        }
    }
}

#[test]
fn linear_half_matches_central_differences() {
    // (f(x + h·t) − f(x − h·t)) / 2h = J·t + O(h²·|f'''|) + O(u·|f| / h). With h = 2⁻¹⁴
    // (6.1e-5), inputs in [-1, 1) and graphs of ≤ 15 generated nodes the truncation term is
    // ~1e-9 and the rounding term ~1e-12, so 1e-6·(1 + |J·t|) is far above both while a wrong
    // rule (error of the size of J·t) fails it. Where a kink of `maximum`, `max` or `select`
    // lies within h·|t| of x the quotient is not the derivative: such a point is recognised by
    // the quotient changing between h and h/2 by more than the bound, and skipped; at most one
    // case in eight may be skipped.
    let h = 2f64.powi(-14);
    let mut rng = Rng(0xfd);
    let mut skipped = 0;
    for id in 0..CASES {
        let d = draw(&mut rng, id);
        let jt = flat(&d.linear_tangents());
        let quotient = |h: f64| -> Vec<f64> {
            let (up, down) = (d.f_shifted(h), d.f_shifted(-h));
            up.iter().zip(&down).map(|(a, c)| (a - c) / (2.0 * h)).collect()
        };
        let (q1, q2) = (quotient(h), quotient(h / 2.0));
        assert_eq!(q1.len(), jt.len(), "{}", d.what);
        let tol = |v: f64| 1e-6 * (1.0 + v.abs());
        if q1.iter().zip(&q2).any(|(a, c)| (a - c).abs() > tol(*a)) {
            skipped += 1;
            continue;
        }
        for (i, (q, v)) in q1.iter().zip(&jt).enumerate() {
            assert!(
                (q - v).abs() <= tol(*v),
                "element {i}: J·t {v:e}, difference quotient {q:e}\n{}",
                d.what
            );
        }
    }
    assert!(skipped <= CASES / 8, "{skipped} of {CASES} cases sat on a kink");
}

#[test]
fn transpose_of_the_linear_half_passes_the_dot_product_test() {
    // Both sides compute the bilinear form cᵀ·J·t, in different orders. Graphs have ≤ 15
    // generated nodes over tensors of ≤ 48 elements with values of order 1–10, so each side is
    // within a few hundred ulps of the magnitudes it sums; 1e-10·(1 + Σ|cᵢ·(J t)ᵢ| +
    // Σ|tⱼ·(Jᵀc)ⱼ|) is above that by orders of magnitude, and far below the O(1) error of a
    // wrong rule.
    let mut rng = Rng(0xd07);
    for id in 0..CASES {
        let d = draw(&mut rng, id);
        let (f, lin, what) = (&d.case.f, &d.lin, &d.what);
        let mut mask = vec![false; lin.residuals];
        mask.extend(std::iter::repeat_n(true, d.case.wrt.len()));
        let lt = transpose(&lin.linear, &mask).unwrap_or_else(|e| panic!("transpose: {e}\n{what}"));
        assert_eq!(lt.params().len(), lin.residuals + f.outputs().len(), "{what}");
        assert_eq!(output_types(&lt), d.case.wrt_types(), "{what}");

        let c = random_tensors(&mut rng, &output_types(f));
        let jt = flat(&d.linear_tangents());
        let mut targs = d.residuals();
        targs.extend(c.iter().cloned());
        let jtc = eval(&lt, &targs);
        let (lhs, lhs_abs) = common::dot(&jt, &flat(&c));
        let (rhs, rhs_abs) = common::dot(&flat(&d.t), &flat(&jtc));
        let tol = 1e-10 * (1.0 + lhs_abs + rhs_abs);
        assert!((lhs - rhs).abs() <= tol, "⟨J t, c⟩ = {lhs:e}, ⟨t, Jᵀ c⟩ = {rhs:e}\n{what}");

        // vjp is transpose ∘ linearize emitted in one builder: the same cotangents.
        let mut vargs = d.x.clone();
        vargs.extend(c.iter().cloned());
        let (vf, tf) = (flat(&eval(&vjp(f, &d.case.wrt).unwrap(), &vargs)), flat(&jtc));
        assert_eq!(vf.len(), tf.len(), "{what}");
        for (i, (a, e)) in vf.iter().zip(&tf).enumerate() {
            assert!(
                (a - e).abs() <= 1e-12 * (1.0 + e.abs()),
                "cotangent {i}: vjp {a:e}, transpose {e:e}\n{what}"
            );
        }
    }
}

#[test]
fn transpose_of_a_function_linear_in_several_inputs_is_its_adjoint() {
    // A hand-written function linear in `p` and `q` with a known input `k` read non-linearly,
    // two outputs, and every layout op: transpose against the dense adjoint, element by
    // element. The dense matrix comes from one-hot evaluations of the function itself.
    let mut b = FunctionBuilder::new("lin");
    let p = b.input("p", TensorType::new(DType::F64, [2, 3])).unwrap();
    let k = b.input("k", TensorType::new(DType::F64, [3, 2])).unwrap();
    let q = b.input("q", TensorType::new(DType::F64, [3])).unwrap();
    let tk = b.unary(Unary::Tanh, k).unwrap();
    let pk = b.matmul(p, tk).unwrap(); // [2, 2]
    let pt = b.transpose(p, &[1, 0]).unwrap(); // [3, 2]
    let scaled = b.binary(Binary::Mul, pt, k).unwrap();
    let sum = b.reduce(ReduceKind::Sum, scaled, Some(&[1])).unwrap(); // [3]
    let mixed = b.binary(Binary::Sub, sum, q).unwrap();
    let padded =
        b.add(Op::Pad(Pad { lo: vec![1], hi: vec![2], interior: vec![1] }), &[mixed]).unwrap();
    let sl = b.slice(padded, &[1], &[8], &[3]).unwrap(); // [3]
    let joined = b.concat(&[sl, q], 0).unwrap(); // [6]
    let out1 = b.reshape(joined, [2, 3]).unwrap();
    let flat_pk = b.reshape(pk, [4]).unwrap();
    let bq = b.broadcast_to(q, &Shape(vec![4, 3])).unwrap();
    let row = b.reduce(ReduceKind::Mean, bq, Some(&[1])).unwrap(); // [4]
    let out2 = b.binary(Binary::Add, flat_pk, row).unwrap();
    let lf = b.finish_many(vec![out1, out2]).unwrap();
    let mask = [true, false, true];

    let mut rng = Rng(0xad7);
    let kv = random_tensors(&mut rng, &[TensorType::new(DType::F64, [3, 2])]).remove(0);
    let lin_types = [TensorType::new(DType::F64, [2, 3]), TensorType::new(DType::F64, [3])];
    let apply = |lin: &[Vec<f64>]| -> Vec<f64> {
        let args = [
            tensor(&lin_types[0], lin[0].clone()),
            kv.clone(),
            tensor(&lin_types[1], lin[1].clone()),
        ];
        flat(&eval(&lf, &args))
    };
    let n_in = 6 + 3;
    let n_out = 6 + 4;
    // Dense matrix M [n_out, n_in] from one-hot inputs.
    let mut m = vec![vec![0.0; n_in]; n_out];
    for j in 0..n_in {
        let mut e = vec![0.0; n_in];
        e[j] = 1.0;
        let col = apply(&[e[..6].to_vec(), e[6..].to_vec()]);
        for (r, v) in col.into_iter().enumerate() {
            m[r][j] = v;
        }
    }
    let lt = transpose(&lf, &mask).unwrap();
    assert_eq!(output_types(&lt), lin_types.to_vec());
    for _ in 0..4 {
        let c = random_tensors(&mut rng, &output_types(&lf));
        let mut args = vec![kv.clone()];
        args.extend(c.iter().cloned());
        let got = flat(&eval(&lt, &args));
        let cf = flat(&c);
        for (j, g) in got.iter().enumerate() {
            let want: f64 = (0..n_out).map(|r| m[r][j] * cf[r]).sum();
            let scale: f64 = (0..n_out).map(|r| (m[r][j] * cf[r]).abs()).sum();
            // At most 10 terms of order 1: a few ulps apart; 1e-13·(1 + Σ|terms|) bounds it.
            assert!(
                (g - want).abs() <= 1e-13 * (1.0 + scale),
                "cotangent {j}: {g:e} vs Mᵀc {want:e}"
            );
        }
    }
}
