//! The summation order of `jjt_ir::sum` (blocked pairwise, BLOCK = 128) as the interpreter's
//! `sum`/`mean` and `dot_general` use it: checked bit for bit against an independent recursive
//! statement of the order, and the error bound checked on a 10⁶-term f32 sum.

use jjt_ir::random::XorShift64;
use jjt_ir::sum::{self, BLOCK};
use jjt_ir::{Tensor, interp, text};

/// Seeded test values, from the project's test generator.
struct Rng(XorShift64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(XorShift64(seed | 1))
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0.uniform(0.0, 1.0)
    }

    /// Terms of mixed signs and magnitudes, so that the order of the additions shows in the
    /// last bits.
    fn mixed(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.next() - 0.3) * 2f64.powi((self.next() * 20.0) as i32 - 10)) as f32)
            .collect()
    }
}

/// The order, stated recursively: at most BLOCK terms left to right from `z`; otherwise the
/// first `p·BLOCK` terms (p the largest power of two below the block count) plus the rest.
fn reference(z: f32, t: &[f32]) -> f32 {
    if t.len() <= BLOCK {
        return t.iter().fold(z, |s, &x| s + x);
    }
    let m = t.len().div_ceil(BLOCK);
    let mut p = 1;
    while p * 2 < m {
        p *= 2;
    }
    let (a, b) = t.split_at(p * BLOCK);
    reference(z, a) + reference(z, b)
}

fn eval1(src: &str, inputs: &[Tensor]) -> Vec<f32> {
    let f = text::parse(src).unwrap();
    let y = interp::eval(&f, inputs).unwrap();
    y.to_f64_vec().into_iter().map(|v| v as f32).collect()
}

const SIZES: [usize; 7] = [1, 127, 128, 129, 300, 1000, 128 * 5 + 3];

#[test]
fn reductions_follow_the_blocked_pairwise_order() {
    let mut rng = Rng::new(7);
    for n in SIZES {
        let t = rng.mixed(n);
        let want = reference(0.0, &t);
        assert_eq!(sum::sum(&t).to_bits(), want.to_bits(), "jjt_ir::sum::sum, n = {n}");
        let x = Tensor::f32([n], t.clone()).unwrap();
        let src = format!("func f(x: f32[{n}]) -> f32[] {{ return sum(x) }}");
        assert_eq!(
            eval1(&src, std::slice::from_ref(&x))[0].to_bits(),
            want.to_bits(),
            "sum, n = {n}"
        );
        let src = format!("func f(x: f32[{n}]) -> f32[] {{ return mean(x) }}");
        let mean = want / n as f32;
        assert_eq!(eval1(&src, &[x])[0].to_bits(), mean.to_bits(), "mean, n = {n}");
        // The terms of a reduction over a leading axis are strided: x[n, 3] over axis 0.
        let u = rng.mixed(3 * n);
        let x = Tensor::f32([n, 3], u.clone()).unwrap();
        let src = format!("func f(x: f32[{n},3]) -> f32[3] {{ return sum(x, axes=[0]) }}");
        let got = eval1(&src, &[x]);
        for (j, g) in got.iter().enumerate() {
            let col: Vec<f32> = u.iter().skip(j).step_by(3).copied().collect();
            assert_eq!(g.to_bits(), reference(0.0, &col).to_bits(), "column {j}, n = {n}");
        }
    }
    // A reduction over two axes takes its terms in row-major order of those axes.
    let u = rng.mixed(2 * 15 * 20);
    let x = Tensor::f32([15, 2, 20], u.clone()).unwrap();
    let got = eval1("func f(x: f32[15,2,20]) -> f32[2] { return sum(x, axes=[0, 2]) }", &[x]);
    for (j, g) in got.iter().enumerate() {
        let terms: Vec<f32> = (0..15)
            .flat_map(|i| (0..20).map(move |k| (i, k)))
            .map(|(i, k)| u[i * 40 + j * 20 + k])
            .collect();
        assert_eq!(g.to_bits(), reference(0.0, &terms).to_bits(), "sum over axes 0 and 2, {j}");
    }
}

#[test]
fn contractions_follow_the_blocked_pairwise_order() {
    let mut rng = Rng::new(11);
    for n in SIZES {
        let (a, b) = (rng.mixed(2 * n), rng.mixed(3 * n));
        let at = Tensor::f32([2, n], a.clone()).unwrap();
        let bt = Tensor::f32([n, 3], b.clone()).unwrap();
        let src = format!(
            "func f(a: f32[2,{n}], b: f32[{n},3]) -> f32[2,3] {{ return dot_general(a, b, contract=[[1],[0]]) }}"
        );
        let got = eval1(&src, &[at, bt]);
        for i in 0..2 {
            for j in 0..3 {
                let p: Vec<f32> = (0..n).map(|c| a[i * n + c] * b[c * 3 + j]).collect();
                // Each block starts from its first product (-0.0 + p = p).
                let want = reference(-0.0, &p);
                assert_eq!(got[i * 3 + j].to_bits(), want.to_bits(), "({i},{j}), n = {n}");
            }
        }
    }
    // Two contracted axes (the general path), in the order of `lhs_contract`: a[i, c0, c1],
    // b[c1, c0] contracted as contract=[[2, 1], [0, 1]], so c1 is the outer (slower) index.
    let (c0, c1) = (15, 20);
    let (a, b) = (rng.mixed(2 * c0 * c1), rng.mixed(c1 * c0));
    let at = Tensor::f32([2, c0, c1], a.clone()).unwrap();
    let bt = Tensor::f32([c1, c0], b.clone()).unwrap();
    let got = eval1(
        "func f(a: f32[2,15,20], b: f32[20,15]) -> f32[2] { return dot_general(a, b, contract=[[2,1],[0,1]]) }",
        &[at, bt],
    );
    for (i, g) in got.iter().enumerate() {
        let mut p = Vec::new();
        for k1 in 0..c1 {
            for k0 in 0..c0 {
                p.push(a[i * c0 * c1 + k0 * c1 + k1] * b[k1 * c0 + k0]);
            }
        }
        assert_eq!(g.to_bits(), reference(-0.0, &p).to_bits(), "two contracted axes, {i}");
    }
}

/// `|ŝ − s|` and `Σ|t|` of f32 results against the exact-enough f64 sum of the same terms.
fn error_of(got: f32, terms_f64: &[f64]) -> (f64, f64) {
    let exact: f64 = terms_f64.iter().sum();
    let abs: f64 = terms_f64.iter().map(|t| t.abs()).sum();
    ((got as f64 - exact).abs(), abs)
}

#[test]
fn a_million_term_f32_sum_meets_the_stated_bound() {
    const N: usize = 1_000_000;
    let u = 2f64.powi(-24);
    let factor = sum::error_factor(N) as f64;
    assert_eq!(factor, (BLOCK - 1) as f64 + 13.0, "⌈log2 7813⌉ = 13");
    let mut rng = Rng::new(2026);
    // Positive random terms that share their low-order bits: 0.1 plus a random multiple of 2⁻⁷.
    // The running sum stays below 2¹⁷, where a multiple of 2⁻⁷ adds exactly, so left to right
    // every addition rounds the shared part of the term the same way within a binade and the
    // errors pile up: left-to-right summation exceeds the blocked bound (checked below), which
    // the blocked pairwise order must meet.
    let t: Vec<f32> =
        (0..N).map(|_| 0.1f32 + (rng.next() * 8.0).floor() as f32 * 2f32.powi(-7)).collect();
    let t64: Vec<f64> = t.iter().map(|&v| v as f64).collect();

    let x = Tensor::f32([N], t.clone()).unwrap();
    let got = eval1(&format!("func f(x: f32[{N}]) -> f32[] {{ return sum(x) }}"), &[x])[0];
    let (err, abs) = error_of(got, &t64);
    // The f64 reference's own error (≤ N·2⁻⁵³·Σ|t| ≈ 1e-10 relative) is negligible here.
    let bound = factor * u * abs;
    assert!(err <= bound, "sum: error {err:e} above the bound {bound:e}");
    let naive = t.iter().fold(0f32, |s, &v| s + v);
    let (naive_err, _) = error_of(naive, &t64);
    assert!(
        naive_err > bound,
        "left to right ({naive_err:e}) should exceed the blocked bound {bound:e}, or this test shows nothing"
    );

    // The same terms as a contraction with ones (exact products), through the one-axis path
    // and through the general path (two contracted axes, 1000 × 1000).
    let ones = vec![1f32; N];
    let one_axis = format!(
        "func f(a: f32[{N}], b: f32[{N}]) -> f32[] {{ return dot_general(a, b, contract=[[0],[0]]) }}"
    );
    let two_axes = "func f(a: f32[1000,1000], b: f32[1000,1000]) -> f32[] { return dot_general(a, b, contract=[[0,1],[0,1]]) }";
    for (src, shape) in [(one_axis.as_str(), vec![N]), (two_axes, vec![1000, 1000])] {
        let at = Tensor::f32(shape.clone(), t.clone()).unwrap();
        let bt = Tensor::f32(shape, ones.clone()).unwrap();
        let got = eval1(src, &[at, bt])[0];
        let (err, _) = error_of(got, &t64);
        assert!(err <= bound, "{src}: error {err:e} above the bound {bound:e}");
    }

    // Products of two random vectors (exact in f64), rounded once each in f32 and then
    // summed: one more rounding per term, so the bound's factor grows by one.
    let a: Vec<f32> = (0..N).map(|_| (0.5 + rng.next()) as f32).collect();
    let b: Vec<f32> = (0..N).map(|_| (0.5 + rng.next()) as f32).collect();
    let p64: Vec<f64> = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).collect();
    let bound = (factor + 1.0) * u * p64.iter().sum::<f64>();
    let got = eval1(&one_axis, &[Tensor::f32([N], a).unwrap(), Tensor::f32([N], b).unwrap()])[0];
    let (err, _) = error_of(got, &p64);
    assert!(err <= bound, "random products: error {err:e} above the bound {bound:e}");
}
