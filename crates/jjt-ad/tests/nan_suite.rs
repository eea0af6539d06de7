//! Gradients at the points where `where`/`select` programs and non-smooth ops usually produce
//! NaN, asserted exactly. Each case is documented in docs/ad.md ("Special points").

mod common;

use common::eval;
use jjt_ad::{jvp, vjp};
use jjt_ir::Tensor;
use jjt_ir::text::parse;

/// The gradient of a scalar function of `x: f64[n]` by the VJP, and by n one-hot JVPs.
fn grads(src: &str, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let f = parse(src).unwrap_or_else(|e| panic!("{e}"));
    let n = x.len();
    let xt = Tensor::f64([n], x.to_vec()).unwrap();
    let v = vjp(&f, &["x"]).unwrap();
    let one = Tensor::f64(Vec::<usize>::new(), vec![1.0]).unwrap();
    let by_vjp = eval(&v, &[xt.clone(), one]).remove(0).to_f64_vec();
    let j = jvp(&f, &["x"]).unwrap();
    let by_jvp = (0..n)
        .map(|k| {
            let mut e = vec![0.0; n];
            e[k] = 1.0;
            eval(&j, &[xt.clone(), Tensor::f64([n], e).unwrap()])[1].to_f64_vec()[0]
        })
        .collect();
    (by_vjp, by_jvp)
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

fn check(name: &str, src: &str, x: &[f64], want: &[f64]) {
    check_modes(name, src, x, want, want);
}

fn check_modes(name: &str, src: &str, x: &[f64], reverse: &[f64], forward: &[f64]) {
    let (r, f) = grads(src, x);
    for (i, w) in reverse.iter().enumerate() {
        assert!(same(r[i], *w), "{name}: reverse-mode gradient[{i}] = {} (expected {w})", r[i]);
    }
    for (i, w) in forward.iter().enumerate() {
        assert!(same(f[i], *w), "{name}: forward-mode gradient[{i}] = {} (expected {w})", f[i]);
    }
}

const SIG: &str = "func f(x: f64[1]) -> f64[] {";

#[test]
fn select_of_log_away_from_the_branch_is_zero() {
    check(
        "select log, x<0",
        &format!("{SIG} return sum(select(x > 0.0, log(x), 0.0)) }}"),
        &[-1.0],
        &[0.0],
    );
}

#[test]
fn select_of_log_at_zero_is_nan() {
    // Reverse mode sends a zero cotangent into the untaken branch, and log's transpose
    // divides it by x = 0: 0/0 = NaN. Forward mode computes the branch's tangent t/x = NaN
    // and select discards it: 0. Both as in JAX.
    let src = format!("{SIG} return sum(select(x > 0.0, log(x), 0.0)) }}");
    check_modes("select log, x=0", &src, &[0.0], &[f64::NAN], &[0.0]);
}

#[test]
fn double_select_fixes_it() {
    let src = format!(
        "{SIG}\n  safe = select(x > 0.0, x, 1.0)\n  return sum(select(x > 0.0, log(safe), 0.0))\n}}"
    );
    check("double select, x=0", &src, &[0.0], &[0.0]);
}

#[test]
fn sqrt_at_zero_is_infinite() {
    check("sqrt at 0", &format!("{SIG} return sum(sqrt(x)) }}"), &[0.0], &[f64::INFINITY]);
}

#[test]
fn norm_at_zero_is_nan() {
    // d sqrt(s)/ds = inf at s = 0, times d(x²)/dx = 0: NaN, as in JAX.
    check(
        "norm at 0",
        "func f(x: f64[2]) -> f64[] { return sqrt(sum(x * x)) }",
        &[0.0, 0.0],
        &[f64::NAN, f64::NAN],
    );
}

#[test]
fn log1p_exp_at_large_x() {
    // exp(100) is finite: exp(x)/(1+exp(x)) rounds to 1. At 1000, exp overflows: inf/inf = NaN;
    // softplus is the stable spelling.
    check(
        "log(1+exp(x)) at 100",
        &format!("{SIG} return sum(log(1.0 + exp(x))) }}"),
        &[100.0],
        &[1.0],
    );
    check(
        "log(1+exp(x)) at 1000",
        &format!("{SIG} return sum(log(1.0 + exp(x))) }}"),
        &[1000.0],
        &[f64::NAN],
    );
    check("softplus at 1000", &format!("{SIG} return sum(softplus(x)) }}"), &[1000.0], &[1.0]);
}

#[test]
fn kinks_take_the_documented_one_sided_values() {
    check("relu at 0", &format!("{SIG} return sum(relu(x)) }}"), &[0.0], &[0.0]);
    check("abs at 0", &format!("{SIG} return sum(abs(x)) }}"), &[0.0], &[0.0]);
    check("maximum(x, 0) at 0", &format!("{SIG} return sum(maximum(x, 0.0)) }}"), &[0.0], &[0.5]);
    check("maximum(x, x)", &format!("{SIG} return sum(maximum(x, x)) }}"), &[2.0], &[1.0]);
    check(
        "max with ties",
        "func f(x: f64[3]) -> f64[] { return max(x, axes=[0]) }",
        &[1.0, 3.0, 3.0],
        &[0.0, 0.5, 0.5],
    );
}

#[test]
fn pow_at_zero_has_no_nan() {
    check("x^2 at 0", &format!("{SIG} return sum(pow(x, 2.0)) }}"), &[0.0], &[0.0]);
    check("x^0 at 0", &format!("{SIG} return sum(pow(x, 0.0)) }}"), &[0.0], &[0.0]);
    check("2^x", &format!("{SIG} return sum(pow(2.0, x)) }}"), &[3.0], &[8.0 * 2f64.ln()]);
    check(
        "0^x",
        "func f(x: f64[1]) -> f64[] {\n  z = zeros(f64[1])\n  return sum(pow(z, x))\n}",
        &[2.0],
        &[0.0],
    );
}

#[test]
fn saturated_activations_have_zero_gradient() {
    check("sigmoid at -1000", &format!("{SIG} return sum(sigmoid(x)) }}"), &[-1000.0], &[0.0]);
    check("tanh at 1000", &format!("{SIG} return sum(tanh(x)) }}"), &[1000.0], &[0.0]);
    check("erf at 1000", &format!("{SIG} return sum(erf(x)) }}"), &[1000.0], &[0.0]);
    check("erf at -inf", &format!("{SIG} return sum(erf(x)) }}"), &[f64::NEG_INFINITY], &[0.0]);
}

#[test]
fn select_on_nan_takes_the_false_branch() {
    check(
        "select at NaN",
        &format!("{SIG} return sum(select(x > 0.0, x, 0.0)) }}"),
        &[f64::NAN],
        &[0.0],
    );
}
