//! The backend's cost model (`jjt_jit::predict`): one prediction per compiled step, the step
//! kinds the code generator uses, deterministic and host-independent, monotone in the work of
//! a step of one kind, and its throughputs read back from `calibrate`'s output. No timing.

use jjt_ir::text;
use jjt_jit::{Options, Prediction, StepKind, Throughputs, compile_with, predict, predict_with};

fn predict_src(src: &str, opts: Options) -> Prediction {
    predict(&text::parse(src).unwrap(), &opts).unwrap()
}

fn matmul(m: usize, k: usize, n: usize) -> String {
    format!("func f(a: f32[{m},{k}], b: f32[{k},{n}]) -> f32[{m},{n}] {{ return a @ b }}")
}

/// `a` is [K, M] and `b` [N, K]: no operand runs along unit strides where the inline vector
/// forms need them.
fn crossed(m: usize, k: usize, n: usize) -> String {
    format!(
        "func f(a: f32[{k},{m}], b: f32[{n},{k}]) -> f32[{m},{n}] {{ \
         return dot_general(a, b, contract=[[0],[1]], batch=[[],[]]) }}"
    )
}

const MLP: &str = "func f(x: f32[8,64], w: f32[64,32], v: f32[32,4]) -> f32[4] {
  h = tanh(x @ w)
  y = h @ v
  return sum(exp(y), axes=[0]) + sum(transpose(y, perm=[1,0]), axes=[1])
}";

fn kinds(p: &Prediction) -> Vec<StepKind> {
    p.steps.iter().map(|s| s.kind).collect()
}

#[test]
fn one_prediction_per_compiled_step_with_the_same_description() {
    let f = text::parse(MLP).unwrap();
    for opts in [
        Options::default(),
        Options { no_gemm: true, ..Options::default() },
        Options { strict: true, ..Options::default() },
    ] {
        let p = predict(&f, &opts).unwrap();
        let c = compile_with(&f, opts).unwrap();
        assert_eq!(p.steps.len(), c.steps());
        for (s, label) in p.steps.iter().zip(c.step_labels()) {
            // Both start with the step's description (kind, type, shapes).
            let what = s.label.split(" (").next().unwrap();
            assert!(label.starts_with(what), "{} / {label}", s.label);
            assert!(s.seconds > 0.0 && s.seconds.is_finite(), "{s:?}");
        }
        let sum: f64 = p.steps.iter().map(|s| s.seconds).sum();
        assert_eq!(p.seconds(), sum);
    }
}

#[test]
fn step_kinds_follow_the_code_generator() {
    let k = |src: &str, opts| kinds(&predict_src(src, opts));
    let d = Options::default();
    let no_gemm = Options { no_gemm: true, ..d };
    assert_eq!(k(&matmul(64, 64, 64), d), [StepKind::MatrixMultiply]);
    assert_eq!(k(&matmul(64, 64, 64), no_gemm), [StepKind::InlineVector]);
    // Neither the output's innermost axis nor the contracted one runs along unit strides: the
    // runtime contraction's dot loops in fast mode, one product at a time in strict mode.
    assert_eq!(k(&crossed(64, 64, 64), no_gemm), [StepKind::RuntimeLoops]);
    assert_eq!(k(&crossed(64, 64, 64), Options { strict: true, ..d }), [StepKind::InlineScalar]);
    assert_eq!(
        k("func f(x: f32[64,32]) -> f32[32,64] { return transpose(x, perm=[1,0]) }", d),
        [StepKind::Copy]
    );
    assert_eq!(k("func f(x: f32[64,32]) -> f32[64,32] { return tanh(x) * x }", d), [StepKind::Map]);
    assert_eq!(
        k("func f(x: f32[64,32]) -> f32[64] { return sum(x, axes=[1]) }", d),
        [StepKind::Reduce]
    );
    // Contractions count two FLOPs per multiply-add; other steps count elements.
    let p = predict_src(&matmul(64, 32, 16), d);
    assert_eq!(p.steps[0].macs, (64 * 32 * 16) as f64);
    // 2·macs / 1 s / 1e9, two roundings apart from the exact value.
    let rate = p.steps[0].giga_rate(1.0);
    assert!((rate - 2.0 * (64 * 32 * 16) as f64 / 1e9).abs() <= 1e-15 * rate, "{rate}");
}

#[test]
fn predictions_are_deterministic_and_do_not_depend_on_the_host() {
    let f = text::parse(MLP).unwrap();
    let a = predict(&f, &Options::default()).unwrap();
    let b = predict(&f, &Options::default()).unwrap();
    assert_eq!(a, b);
    // "Every core" means the core count of the measuring machine, not this one's.
    let fixed = Options { threads: Throughputs::MEASURED.threads, ..Options::default() };
    assert_eq!(a, predict(&f, &fixed).unwrap());
}

#[test]
fn more_work_of_one_kind_takes_longer() {
    let d = Options::default();
    let no_gemm = Options { no_gemm: true, ..d };
    let secs = |src: String, opts: Options, kind: StepKind| {
        let p = predict_src(&src, opts);
        assert_eq!(kinds(&p), [kind], "{src}");
        p.seconds()
    };
    let increasing = |v: Vec<f64>| {
        assert!(v.windows(2).all(|w| w[0] < w[1]), "{v:?}");
    };
    let sizes = [(32, 32, 32), (32, 64, 32), (64, 64, 64), (128, 128, 128), (256, 256, 256)];
    increasing(
        sizes.iter().map(|&(m, k, n)| secs(matmul(m, k, n), d, StepKind::MatrixMultiply)).collect(),
    );
    increasing(
        sizes
            .iter()
            .map(|&(m, k, n)| secs(matmul(m, k, n), no_gemm, StepKind::InlineVector))
            .collect(),
    );
    increasing(
        sizes
            .iter()
            .map(|&(m, k, n)| secs(crossed(m, k, n), no_gemm, StepKind::RuntimeLoops))
            .collect(),
    );
    let strict = Options { strict: true, ..d };
    increasing(
        sizes
            .iter()
            .map(|&(m, k, n)| secs(crossed(m, k, n), strict, StepKind::InlineScalar))
            .collect(),
    );
    let map = |n: usize, body: &str| {
        format!("func f(x: f32[{n},64], y: f32[{n},64]) -> f32[{n},64] {{ return {body} }}")
    };
    for body in ["x + y", "tanh(x) * y", "exp(x) + log(y)"] {
        increasing(
            [1, 4, 16, 256, 1024].iter().map(|&n| secs(map(n, body), d, StepKind::Map)).collect(),
        );
    }
    // More operations, or a transcendental call, on as many elements.
    increasing(
        ["x + y", "(x + y) * x - y", "exp(x) - y", "tanh(x) - y"]
            .iter()
            .map(|b| secs(map(64, b), d, StepKind::Map))
            .collect(),
    );
    let copy = |n: usize| {
        format!("func f(x: f32[{n},64]) -> f32[64,{n}] {{ return transpose(x, perm=[1,0]) }}")
    };
    increasing([4, 64, 1024, 8192].iter().map(|&n| secs(copy(n), d, StepKind::Copy)).collect());
    let reduce =
        |n: usize| format!("func f(x: f32[{n},64]) -> f32[{n}] {{ return sum(x, axes=[1]) }}");
    increasing([4, 64, 1024].iter().map(|&n| secs(reduce(n), d, StepKind::Reduce)).collect());
    // The same product runs slower as a scalar loop than as vector loops.
    assert!(
        secs(crossed(64, 64, 64), strict, StepKind::InlineScalar)
            > secs(matmul(64, 64, 64), no_gemm, StepKind::InlineVector)
    );
}

#[test]
fn throughputs_read_back_from_calibrate_output() {
    let t = Throughputs::MEASURED;
    // The format `calibrate` prints.
    let text = format!(
        "    pub const MEASURED: Throughputs = Throughputs {{\n        step: {:.3e},\n        gemm_peak: {:.3e},\n        threads: 7,\n    }};\n",
        2.0 * t.step,
        t.gemm_peak / 2.0
    );
    let u = Throughputs::parse(&text).unwrap();
    assert_eq!(u.step, format!("{:.3e}", 2.0 * t.step).parse::<f64>().unwrap());
    assert_eq!(u.threads, 7);
    assert_eq!(u.copy, t.copy);
    // Slower throughputs, slower predictions.
    let f = text::parse(&matmul(128, 128, 128)).unwrap();
    let slow = Throughputs { gemm_peak: t.gemm_peak / 2.0, ..t };
    let opts = Options::default();
    assert!(
        predict_with(&f, &opts, &slow).unwrap().seconds()
            > predict_with(&f, &opts, &t).unwrap().seconds()
    );
    let err = Throughputs::parse("copy: -1,").unwrap_err();
    assert!(err.contains("line 1") && err.contains("-1"), "{err}");
    let err = Throughputs::parse("\nwarp: 1,").unwrap_err();
    assert!(err.contains("line 2") && err.contains("warp"), "{err}");
}
