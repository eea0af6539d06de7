//! Long sums in the JIT against the interpreter, whose order is the blocked pairwise order of
//! `jjt_ir::sum` (BLOCK = 128):
//!
//! - strict mode: reductions (every form: vectors over outputs, one output at a time; fused
//!   expressions feeding them; strided views whose contiguous axis the plan moves innermost)
//!   and contractions with more than 128 terms, bit for bit, f32 and f64;
//! - fast mode: reductions within `2·(BLOCK − 1 + ⌈log2 m⌉)·u·Σ|t|` of the interpreter (both
//!   are within `(BLOCK − 1 + ⌈log2 m⌉)·u·Σ|t|` of the exact sum: the interpreter by the order's
//!   bound, the fast form because its vector blocks are shallower than left-to-right ones),
//!   `max` bit for bit, and the same bits for 1, 2 and 3 threads.

use jjt_ir::random::XorShift64;
use jjt_ir::sum::{BLOCK, error_factor};
use jjt_ir::{DType, Function, Tensor, interp, text};
use jjt_jit::{Options, compile_with};

/// Seeded test values in [-1, 1), from the project's test generator.
struct Rng(XorShift64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(XorShift64(seed | 1))
    }

    fn next(&mut self) -> f64 {
        self.0.uniform(-1.0, 1.0)
    }
}

/// A reduction case: the input shape, the reduced axes, the op and the reduced expression of
/// `x` and `y` (both of the input shape); with `perm`, `x` and `y` are the transposes of the
/// function's parameters (whose shape is the input shape permuted back), so the reduction
/// reads strided views.
struct Case {
    shape: &'static [usize],
    axes: &'static [usize],
    op: &'static str,
    expr: &'static str,
    perm: &'static [usize],
}

const fn case(
    shape: &'static [usize],
    axes: &'static [usize],
    op: &'static str,
    expr: &'static str,
) -> Case {
    Case { shape, axes, op, expr, perm: &[] }
}

/// A case on `transpose(·, perm)` of the parameters (see [`Case`]).
const fn case_t(
    shape: &'static [usize],
    perm: &'static [usize],
    axes: &'static [usize],
    op: &'static str,
    expr: &'static str,
) -> Case {
    Case { shape, axes, op, expr, perm }
}

/// Shapes of every form: the innermost axis kept (vectors over outputs, with a scalar tail),
/// reduced (along it), several reduced axes, a full reduction; plain and fused terms.
const CASES: &[Case] = &[
    case(&[3, 1000], &[1], "sum", "x"),
    case(&[1000, 5], &[0], "sum", "x"),
    case(&[1000, 5], &[0], "mean", "x * y + 1.5"),
    case(&[40, 3, 50], &[0, 2], "mean", "x"),
    case(&[300, 7], &[0, 1], "sum", "x - y"),
    case(&[4, 700], &[1], "sum", "exp(x) * 2.0 - y"),
    case(&[300, 6], &[0], "sum", "tanh(x) * y"),
    case(&[5, 1000], &[1], "sum", "x * x"),
    case(&[16, 32, 128], &[2], "sum", "x"),
    case(&[16, 32, 128], &[1], "mean", "x"),
    case(&[16, 32, 128], &[2], "max", "x"),
    case(&[16, 32, 128], &[1], "max", "x - y"),
    case(&[3, 1000], &[1], "max", "x"),
    case(&[257, 3, 9], &[0, 2], "sum", "x * y"),
    case(&[1_000_000], &[0], "sum", "x"),
    case(&[1000, 1000], &[0, 1], "sum", "x * y"),
    case(&[100, 10_000], &[1], "sum", "x"),
    case(&[10_000, 100], &[0], "sum", "x"),
    case(&[1, 300_001], &[0, 1], "mean", "x * y"),
    // The innermost axis strided, the last kept one contiguous: a 2×2 average pooling in
    // channels-last layout (its window axes innermost) runs on lanes over its channels.
    case_t(&[8, 8, 8, 32, 2, 2], &[0, 1, 2, 5, 3, 4], &[4, 5], "mean", "x"),
    // The innermost (kept) axis strided, the reduced one contiguous: a sum over tokens of a
    // transposed [B, J, T] value runs along the tokens.
    case_t(&[16, 32, 64], &[0, 2, 1], &[1], "sum", "x * y"),
    // Vectors over outputs in groups (independent chains, see `codegen::reduce`), then single
    // vectors, then scalars: 23 outputs per row (f32: a group of 16, a vector of 4, 3 alone;
    // f64: 16, three vectors of 2, 1 alone), over one axis in blocks (300 terms) and over two
    // with a counter (240 terms), and `max`.
    case(&[300, 23], &[0], "sum", "x * y"),
    case(&[40, 6, 23], &[0, 1], "mean", "x - y"),
    case(&[20, 23], &[0], "max", "x * y"),
];

fn dims(s: &[usize]) -> String {
    s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
}

impl Case {
    fn out_shape(&self) -> Vec<usize> {
        (0..self.shape.len()).filter(|a| !self.axes.contains(a)).map(|a| self.shape[a]).collect()
    }

    /// The function reducing `expr` (or, with `abs`, its absolute value).
    /// The parameters' shape: the input shape, permuted back when the case transposes.
    fn param_shape(&self) -> Vec<usize> {
        let mut p = self.shape.to_vec();
        for (i, &a) in self.perm.iter().enumerate() {
            p[a] = self.shape[i];
        }
        p
    }

    fn function(&self, d: DType, abs: bool) -> Function {
        let t = d.to_string();
        let e = if abs { format!("abs({})", self.expr) } else { self.expr.to_string() };
        let axes = dims(self.axes);
        let (params, views) = if self.perm.is_empty() {
            let s = dims(self.shape);
            (format!("x: {t}[{s}], y: {t}[{s}]"), String::new())
        } else {
            let (s, p) = (dims(&self.param_shape()), dims(self.perm));
            (
                format!("x0: {t}[{s}], y0: {t}[{s}]"),
                format!("x = transpose(x0, perm=[{p}])\n  y = transpose(y0, perm=[{p}])\n  "),
            )
        };
        let src = format!(
            "func f({params}) -> {t}[{}] {{\n  {views}return {}({e}, axes=[{axes}])\n}}",
            dims(&self.out_shape()),
            self.op
        );
        text::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn count(&self) -> usize {
        self.axes.iter().map(|&a| self.shape[a]).product()
    }

    fn inputs(&self, d: DType, seed: u64) -> Vec<Tensor> {
        let n: usize = self.shape.iter().product();
        let mut rng = Rng::new(seed);
        (0..2)
            .map(|_| {
                let v: Vec<f64> = (0..n).map(|_| rng.next()).collect();
                let ty = jjt_ir::TensorType::new(d, self.param_shape());
                Tensor::from_f64(&ty, &v).unwrap()
            })
            .collect()
    }
}

fn run(f: &Function, inputs: &[Tensor], opts: Options) -> Vec<f64> {
    let c = compile_with(f, opts).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    let refs: Vec<&Tensor> = inputs.iter().collect();
    c.call(&refs).unwrap().remove(0).to_f64_vec()
}

fn assert_same_bits(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits(), "{what}: element {i}: JIT {g:e} vs interpreter {w:e}");
    }
}

fn strict() -> Options {
    Options { strict: true, ..Options::default() }
}

#[test]
fn strict_reductions_equal_the_interpreter_bit_for_bit() {
    for d in [DType::F32, DType::F64] {
        for (k, c) in CASES.iter().enumerate() {
            let f = c.function(d, false);
            let inputs = c.inputs(d, k as u64);
            let want = interp::eval(&f, &inputs).unwrap().to_f64_vec();
            for threads in [1, 2] {
                let got = run(&f, &inputs, Options { threads, ..strict() });
                let what = format!(
                    "{d} {}({}) over {:?} of {:?}, {threads} threads",
                    c.op, c.expr, c.axes, c.shape
                );
                assert_same_bits(&got, &want, &what);
            }
        }
    }
}

#[test]
fn fast_reductions_are_within_the_bound_and_thread_independent() {
    for d in [DType::F32, DType::F64] {
        let u = if d == DType::F32 { 2f64.powi(-24) } else { 2f64.powi(-53) };
        for (k, c) in CASES.iter().enumerate() {
            let f = c.function(d, false);
            let inputs = c.inputs(d, 100 + k as u64);
            let want = interp::eval(&f, &inputs).unwrap().to_f64_vec();
            let abs = interp::eval(&c.function(d, true), &inputs).unwrap().to_f64_vec();
            let what = format!("{d} {}({}) over {:?} of {:?}", c.op, c.expr, c.axes, c.shape);
            let got: Vec<Vec<f64>> = [1, 2, 3]
                .iter()
                .map(|&threads| run(&f, &inputs, Options { threads, ..Options::default() }))
                .collect();
            assert_same_bits(&got[1], &got[0], &format!("{what}: 2 threads vs 1"));
            assert_same_bits(&got[2], &got[0], &format!("{what}: 3 threads vs 1"));
            if c.op == "max" {
                assert_same_bits(&got[0], &want, &what);
                continue;
            }
            // Both within factor·u·Σ|t| of the exact sum (Σ|t| from the interpreter's sum of
            // |t|, itself within a factor 1 + factor·u of the exact one); a mean divides both
            // sides by the count (one more rounding each: + u·|mean| each).
            let factor = error_factor(c.count()).max(BLOCK - 1) as f64;
            for (i, ((g, w), a)) in got[0].iter().zip(&want).zip(&abs).enumerate() {
                let tol = 2.0 * factor * u * a * (1.0 + factor * u) + 2.0 * u * w.abs();
                assert!(
                    (g - w).abs() <= tol,
                    "{what}: element {i}: JIT {g:e} vs interpreter {w:e} (tolerance {tol:e})"
                );
            }
        }
    }
}

/// A contraction of `a[shape_a]` and `b[shape_b]`.
fn contraction(d: DType, a: &[usize], b: &[usize], out: &[usize], dims_attr: &str) -> Function {
    let t = d.to_string();
    let src = format!(
        "func f(a: {t}[{}], b: {t}[{}]) -> {t}[{}] {{ return dot_general(a, b, {dims_attr}) }}",
        dims(a),
        dims(b),
        dims(out)
    );
    text::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// Left shape, right shape, output shape, the contraction's attributes.
type DotCase = (&'static [usize], &'static [usize], &'static [usize], &'static str);

#[test]
fn strict_contractions_equal_the_interpreter_bit_for_bit() {
    let cases: &[DotCase] = &[
        (&[3, 1000], &[1000, 2], &[3, 2], "contract=[[1],[0]]"),
        (&[1000], &[1000], &[], "contract=[[0],[0]]"),
        (&[2, 15, 20], &[20, 15], &[2], "contract=[[2,1],[0,1]]"),
        (&[4, 300, 3], &[4, 300], &[4, 3], "contract=[[1],[1]], batch=[[0],[0]]"),
        (&[129, 5], &[129, 6], &[5, 6], "contract=[[0],[0]]"),
        (&[2, 643], &[643, 7], &[2, 7], "contract=[[1],[0]]"),
    ];
    for d in [DType::F32, DType::F64] {
        for (k, (a, b, out, attr)) in cases.iter().enumerate() {
            let f = contraction(d, a, b, out, attr);
            let mut rng = Rng::new(7 + k as u64);
            let inputs: Vec<Tensor> = [a, b]
                .iter()
                .map(|s| {
                    let ty = jjt_ir::TensorType::new(d, s.to_vec());
                    let v: Vec<f64> = (0..ty.numel()).map(|_| rng.next()).collect();
                    Tensor::from_f64(&ty, &v).unwrap()
                })
                .collect();
            let want = interp::eval(&f, &inputs).unwrap().to_f64_vec();
            let got = run(&f, &inputs, strict());
            assert_same_bits(&got, &want, &format!("{d} {a:?}·{b:?} {attr}"));
        }
    }
}

/// The cases above exercise the intended forms (so the comparisons cover each of them).
#[test]
fn reductions_take_the_intended_forms() {
    let expect: &[(usize, Options, &str)] = &[
        (
            8,
            Options { threads: 2, ..Options::default() },
            "vectors along the reduction, rows on threads",
        ),
        (8, Options { threads: 1, ..Options::default() }, "(vectors along the reduction)"),
        (9, Options { threads: 2, ..Options::default() }, "vectors over outputs, rows on threads"),
        (9, Options { threads: 1, ..strict() }, "(vectors over outputs)"),
        (1, strict(), "(vectors over outputs)"),
        (0, strict(), "(scalar)"),
        (5, strict(), "(scalar)"),
        (5, Options::default(), "(vectors along the reduction)"),
        (14, Options { threads: 1, ..Options::default() }, "(vectors along the reduction)"),
        (14, Options { threads: 2, ..Options::default() }, "parts on threads"),
        (18, Options { threads: 3, ..Options::default() }, "parts on threads"),
        (18, Options { threads: 3, ..strict() }, "(scalar)"),
        (17, Options { threads: 2, ..Options::default() }, "(vectors over outputs)"),
        (19, Options { threads: 1, ..strict() }, "(vectors over outputs)"),
        (19, Options { threads: 2, ..Options::default() }, "vectors over outputs, rows on threads"),
        (20, Options { threads: 1, ..Options::default() }, "(vectors along the reduction)"),
        (20, strict(), "(scalar)"),
        (21, strict(), "(vectors over outputs)"),
        (22, Options { threads: 1, ..Options::default() }, "(vectors over outputs)"),
        (23, strict(), "(vectors over outputs)"),
    ];
    for (k, opts, label) in expect {
        let f = CASES[*k].function(DType::F32, false);
        let c = compile_with(&f, *opts).unwrap();
        let labels = c.step_labels().join("; ");
        assert!(labels.contains(label), "case {k}: {labels} lacks {label}");
    }
}
