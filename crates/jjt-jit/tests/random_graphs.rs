//! Property tests over graphs from the shared generator (`jjt_ir::testgen`, every op, f32 and
//! f64, half the cases with every op kept in its domain, half reaching NaN and infinities):
//!
//! - `jit_equals_interpreter`: each graph, and the JVP, VJP and default kernel derived from a
//!   kernel-ready one, give the same values compiled in strict mode as in the interpreter, bit
//!   for bit (NaNs as "both NaN"); in the default (fast) mode within a relative 1e-9 (f64) or
//!   1e-4 (f32, or f64 in a graph computing in f32) of the largest finite magnitude (summation
//!   order, on sums of at most a few hundred terms, and the inline `exp`/`tanh`/`sigmoid` may
//!   differ), with the same count of finite outputs.
//! - `optimised_kernels_equal_interpreter`: what the optimiser hands the JIT. Each case draws a
//!   strategy (ntvp, jc, auto), a mode (full, trace, diagonal, operator form), example batching
//!   (none, all pairs, `Examples::Diagonal`), staged or not (`jjt_opt::stage`: prepare +
//!   per call) and strict or fast mode; the optimised kernel, compiled, equals the interpreter
//!   on the unoptimised kernel graph within |a − b| ≤ 1e-9·(1 + |ref|) per element, and the
//!   counts of finite outputs are equal. f64, values below 100 (`Config::kernel`): the
//!   reassociated sums have at most a few hundred terms, so their error is far below the bound.
//!
//! 256 cases each by default; set `PROPTEST_CASES` to run more (e.g. `PROPTEST_CASES=20000`).

use jjt_ad::{Examples, KernelSpec, Mode, Role, Strategy, jvp, vjp};
use jjt_ir::testgen::{self, Config, Draw};
use jjt_ir::{DType, Function, Tensor, interp, text};
use jjt_jit::{Options, compile_with};
use proptest::prelude::*;

/// Fast mode's bound for one output: f32's if the output or anything in the graph is f32 (an
/// f64 output may be an f32 value converted, carrying f32's rounding: fast mode's inline `exp`
/// differs from libm's by a few f32 ulps), else f64's.
fn fast_tolerance(f: &Function, out: &Tensor) -> f64 {
    let f32_inside = f.node_ids().any(|n| f.node(n).is_some_and(|x| x.ty.dtype == DType::F32));
    if out.dtype() == DType::F32 || f32_inside { 1e-4 } else { 1e-9 }
}

fn compare(f: &Function, inputs: &[Tensor]) -> Result<(), TestCaseError> {
    let want = interp::eval_outputs(f, inputs).unwrap();
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let strict = compile_with(f, Options { strict: true, ..Options::default() })
        .unwrap()
        .call(&refs)
        .unwrap();
    let compiled = compile_with(f, Options::default()).unwrap();
    // The cost model plans every graph the JIT compiles: one finite, positive time per step.
    let predicted = jjt_jit::predict(f, &Options::default()).unwrap();
    prop_assert_eq!(predicted.steps.len(), compiled.steps());
    prop_assert!(predicted.steps.iter().all(|s| s.seconds.is_finite() && s.seconds > 0.0));
    let fast = compiled.call(&refs).unwrap();
    prop_assert_eq!(
        testgen::finite_count(&fast),
        testgen::finite_count(&want),
        "fast: finite outputs\n{}",
        text::print(f)
    );
    for ((w, s), q) in want.iter().zip(&strict).zip(&fast) {
        let tol = fast_tolerance(f, w);
        let (w, s, q) = (w.to_f64_vec(), s.to_f64_vec(), q.to_f64_vec());
        let scale = w.iter().filter(|v| v.is_finite()).fold(1.0f64, |m, v| m.max(v.abs()));
        for i in 0..w.len() {
            let same = w[i].to_bits() == s[i].to_bits() || (w[i].is_nan() && s[i].is_nan());
            prop_assert!(
                same,
                "strict: element {i}: JIT {:e} vs interpreter {:e}\n{}",
                s[i],
                w[i],
                text::print(f)
            );
            let close = (q[i] - w[i]).abs() <= tol * scale
                || q[i].to_bits() == w[i].to_bits()
                || (q[i].is_nan() && w[i].is_nan());
            prop_assert!(
                close,
                "fast: element {i}: JIT {:e} vs interpreter {:e}\n{}",
                q[i],
                w[i],
                text::print(f)
            );
        }
    }
    Ok(())
}

/// One drawn way of building, optimising and compiling a kernel.
#[derive(Clone, Debug)]
struct Variant {
    strategy: Option<Strategy>, // None: auto
    mode: Option<Mode>,         // None: the operator form
    batch: Option<((usize, usize), Examples)>,
    staged: bool,
    strict: bool,
}

fn variant(d: &mut Draw) -> Variant {
    let strategy = d.pick(&[Some(Strategy::Ntvp), Some(Strategy::Jc), None]);
    let mode = d.pick(&[Some(Mode::Full), Some(Mode::Trace), Some(Mode::Diagonal), None]);
    let batch = match d.below(3) {
        0 => None,
        1 => Some(((1 + d.below(3), 1 + d.below(3)), Examples::All)),
        _ => {
            let b = 1 + d.below(3);
            Some(((b, b), Examples::Diagonal))
        }
    };
    Variant { strategy, mode, batch, staged: d.coin(), strict: d.coin() }
}

/// The unoptimised kernel (the reference), the optimised one, and its layout's roles.
fn kernels(
    f: &Function,
    spec: &KernelSpec,
    v: &Variant,
) -> (Function, Function, Vec<(String, Role, jjt_ir::TensorType)>) {
    let apply = v.mode.is_none();
    let form = if apply { jjt_ad::Form::Apply } else { jjt_ad::Form::Kernel };
    let layout = spec.layout(f, form).unwrap();
    if apply {
        let k = spec.apply(f).unwrap();
        let (opt, _) = jjt_opt::optimize(&k, |_, _| {}).unwrap();
        return (k, opt, layout);
    }
    match v.strategy {
        Some(_) => {
            let k = spec.kernel(f).unwrap();
            let (opt, _) = jjt_opt::optimize(&k, |_, _| {}).unwrap();
            (k, opt, layout)
        }
        None => {
            // As the facade and the CLI choose: by the JIT's predicted time.
            let price = |g: &Function| {
                jjt_jit::predict(g, &Options::default()).map_or(f64::INFINITY, |p| p.seconds())
            };
            let choice = jjt_opt::auto::choose_with(spec, f, &price).unwrap();
            let k = KernelSpec { strategy: choice.strategy, ..spec.clone() }.kernel(f).unwrap();
            (k, choice.kernel, layout)
        }
    }
}

/// Run the optimised kernel `opt` on `inputs` through the JIT, whole or staged as the facade's
/// `compile_staged` does (prepare on the shared inputs, then the per-call part).
fn run(opt: &Function, inputs: &[Tensor], shared: &[bool], v: &Variant) -> Vec<Tensor> {
    let options = Options { strict: v.strict, ..Options::default() };
    let refs: Vec<&Tensor> = inputs.iter().collect();
    if !v.staged {
        return compile_with(opt, options).unwrap().call(&refs).unwrap();
    }
    let st = jjt_opt::stage::stage(opt, shared).unwrap();
    let hoisted = match &st.prepare {
        Some(p) => {
            let args: Vec<&Tensor> = st.prepare_inputs.iter().map(|&i| refs[i]).collect();
            compile_with(p, options).unwrap().call(&args).unwrap()
        }
        None => vec![],
    };
    let mut args: Vec<&Tensor> = st.call_inputs.iter().map(|&i| refs[i]).collect();
    args.extend(hoisted.iter());
    compile_with(&st.call, options).unwrap().call(&args).unwrap()
}

fn optimised_kernel_case(seed: u64) -> Result<(), TestCaseError> {
    let mut d = Draw::seed(seed);
    let case = testgen::generate(&mut d, &Config { max_steps: 8, ..Config::kernel() });
    let v = variant(&mut d);
    let spec = KernelSpec {
        wrt: case.wrt.clone(),
        shared: case.shared.clone(),
        mode: v.mode.unwrap_or(Mode::Full),
        examples: v.batch.map_or(Examples::All, |b| b.1),
        strategy: v.strategy.unwrap_or(Strategy::Ntvp),
        batch: v.batch.map(|b| b.0),
    };
    let (reference, opt, layout) = kernels(&case.f, &spec, &v);
    let inputs: Vec<Tensor> = layout.iter().map(|(_, _, t)| d.tensor(t, (-1.0, 1.0))).collect();
    let shared: Vec<bool> = layout.iter().map(|(_, r, _)| matches!(r, Role::Shared(_))).collect();
    let want = interp::eval_outputs(&reference, &inputs).unwrap();
    let got = run(&opt, &inputs, &shared, &v);
    let what = || format!("{v:?}\n{}\noptimised:\n{}", text::print(&case.f), text::print(&opt));
    prop_assert_eq!(
        testgen::finite_count(&got),
        testgen::finite_count(&want),
        "finite outputs: {}",
        what()
    );
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        prop_assert_eq!(&g.shape, &w.shape, "{}", what());
        for (i, (a, b)) in g.to_f64_vec().iter().zip(w.to_f64_vec()).enumerate() {
            let ok =
                (a - b).abs() <= 1e-9 * (1.0 + b.abs()) || (a.is_nan() && b.is_nan()) || *a == b;
            prop_assert!(
                ok,
                "element {i}: JIT on optimised {a:e} vs interpreter {b:e}: {}",
                what()
            );
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]
    #[test]
    fn jit_equals_interpreter(seed in any::<u64>()) {
        let mut d = Draw::seed(seed);
        let cfg = Config { domains: seed & 1 == 1, ..Config::default() };
        let case = testgen::generate(&mut d, &cfg);
        compare(&case.f, &case.args)?;
        // The transforms of a kernel-ready graph (f64, one output, wrt/shared roles).
        let k = testgen::generate(&mut d, &Config { domains: cfg.domains, ..Config::kernel() });
        let (f, x) = (&k.f, &k.args);
        let names: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
        let j = jvp(f, &names).unwrap();
        let mut ja = x.clone();
        ja.extend(d.args(f, (-2.0, 2.0)));
        compare(&j, &ja)?;
        let v = vjp(f, &names).unwrap();
        let mut va = x.clone();
        va.push(d.tensor(f.output_type().unwrap(), (-2.0, 2.0)));
        compare(&v, &va)?;
        let spec = KernelSpec { wrt: k.wrt.clone(), shared: k.shared.clone(), ..Default::default() };
        let kernel = spec.kernel(f).unwrap();
        let layout = spec.layout(f, jjt_ad::Form::Kernel).unwrap();
        let ka: Vec<Tensor> = layout.iter().map(|(_, _, t)| d.tensor(t, (-2.0, 2.0))).collect();
        compare(&kernel, &ka)?;
    }

    #[test]
    fn optimised_kernels_equal_interpreter(seed in any::<u64>()) {
        optimised_kernel_case(seed)?;
    }
}
