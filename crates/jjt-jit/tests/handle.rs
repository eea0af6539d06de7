//! The compiled handle: argument checks, buffers at any alignment, concurrency, its listings,
//! and that compiling and dropping returns its memory.

use jjt_ir::{DType, Function, Tensor, interp, text};
use jjt_jit::{Compiled, JitError, Options, compile, compile_with};

fn model() -> Function {
    text::parse(
        "func f(x: f32[37], w: f32[5,37]) -> f32[5] {
  y = tanh(w @ x) + sum(x * x)
  return sqrt(abs(y) + 1.0)
}",
    )
    .unwrap()
}

fn inputs() -> Vec<Tensor> {
    vec![
        Tensor::f32([37], (0..37).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap(),
        Tensor::f32([5, 37], (0..185).map(|i| (i as f32 * 0.11).cos()).collect()).unwrap(),
    ]
}

#[test]
fn functions_named_like_runtime_symbols_compile() {
    // Generated code calls runtime functions such as `jjt_exp_f32` and `jjt_par_map`; a model
    // named after one must not clash with it. Large enough that the elementwise step also gets
    // a row function; strict, where exp is a call (fast mode computes it inline).
    for name in ["exp_f32", "tanh_f64", "par_map", "sgemm", "profile_mark", "rows0_f"] {
        let f = text::parse(&format!(
            "func {name}(x: f32[300,300]) -> f32[300,300] {{\n  return exp(x) * 2.0\n}}"
        ))
        .unwrap();
        let x =
            Tensor::f32([300, 300], (0..90_000).map(|i| (i % 7) as f32 * 0.1).collect()).unwrap();
        let strict = Options { strict: true, ..Options::default() };
        let c = compile_with(&f, strict).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = c.call(&[&x]).unwrap();
        assert_eq!(got, vec![interp::eval(&f, std::slice::from_ref(&x)).unwrap()], "{name}");
    }
}

#[test]
fn handle_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Compiled>();
}

#[test]
fn wrong_arguments_are_typed_errors() {
    let c = compile(&model()).unwrap();
    let x = inputs();
    assert!(matches!(c.call(&[&x[0]]), Err(JitError::InputCount { expected: 2, got: 1, .. })));
    let wrong_shape = Tensor::f32([36], vec![0.0; 36]).unwrap();
    assert!(matches!(c.call(&[&wrong_shape, &x[1]]), Err(JitError::InputType { index: 0, .. })));
    let wrong_dtype = Tensor::f64([5, 37], vec![0.0; 185]).unwrap();
    assert!(matches!(c.call(&[&x[0], &wrong_dtype]), Err(JitError::InputType { index: 1, .. })));
    let inconsistent =
        Tensor { shape: jjt_ir::Shape(vec![37]), data: jjt_ir::Data::F32(vec![0.0; 3]) };
    assert!(matches!(c.call(&[&inconsistent, &x[1]]), Err(JitError::InputType { index: 0, .. })));
    let mut out = vec![0u8; 20];
    assert!(matches!(
        c.call_raw(&[&[0u8; 10], &[0u8; 740]], &mut [&mut out]),
        Err(JitError::BufferSize { what: "input", index: 0, .. })
    ));
    let mut short = vec![0u8; 19];
    assert!(matches!(
        c.call_raw(&[&[0u8; 148], &[0u8; 740]], &mut [&mut short]),
        Err(JitError::BufferSize { what: "output", .. })
    ));
}

#[test]
fn misaligned_buffers_give_identical_results() {
    let f = model();
    let c = compile(&f).unwrap();
    let x = inputs();
    let want: Vec<u8> = c.call(&[&x[0], &x[1]]).unwrap()[0]
        .to_f64_vec()
        .iter()
        .flat_map(|&v| (v as f32).to_le_bytes())
        .collect();
    let bytes = |t: &Tensor| -> Vec<u8> {
        t.to_f64_vec().iter().flat_map(|&v| (v as f32).to_le_bytes()).collect()
    };
    let (bx, bw) = (bytes(&x[0]), bytes(&x[1]));
    for shift in [0usize, 4, 8, 12, 1, 3] {
        let mut sx = vec![0u8; bx.len() + 16];
        sx[shift..shift + bx.len()].copy_from_slice(&bx);
        let mut sw = vec![0u8; bw.len() + 16];
        sw[shift..shift + bw.len()].copy_from_slice(&bw);
        let mut so = [0u8; 20 + 16];
        c.call_raw(
            &[&sx[shift..shift + bx.len()], &sw[shift..shift + bw.len()]],
            &mut [&mut so[shift..shift + 20]],
        )
        .unwrap();
        assert_eq!(&so[shift..shift + 20], &want[..], "shift {shift}");
    }
    // And the interpreter agrees with the aligned run.
    let interp_y = interp::eval(&f, &x).unwrap();
    let jit_y: Vec<f64> =
        want.chunks(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect();
    for (a, b) in jit_y.iter().zip(interp_y.to_f64_vec()) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0));
    }
}

#[test]
fn concurrent_calls_agree() {
    let c = compile(&model()).unwrap();
    let x = inputs();
    let want = c.call(&[&x[0], &x[1]]).unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..1000 {
                    assert_eq!(c.call(&[&x[0], &x[1]]).unwrap(), want);
                }
            });
        }
    });
}

fn resident_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()).unwrap_or(0) * 4
}

#[test]
fn compile_call_drop_cycles_return_memory() {
    let f = model();
    let x = inputs();
    // Two threads × 500 rounds of compile → call → drop.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..500 {
                    let c = compile(&f).unwrap();
                    assert_eq!(c.call(&[&x[0], &x[1]]).unwrap()[0].shape.dims(), &[5]);
                }
            });
        }
    });
    // 10,000 compile/drop cycles: resident memory stays within 64 MiB of where it was after
    // the first 500 (which warm up the allocator); leaking the ~100 KiB of code and data
    // mappings per handle would add about 1 GiB.
    for _ in 0..500 {
        drop(compile(&f).unwrap());
    }
    let base = resident_kib();
    for _ in 0..10_000 {
        drop(compile(&f).unwrap());
    }
    let after = resident_kib();
    assert!(after <= base + 64 * 1024, "resident memory grew from {base} KiB to {after} KiB");
    let _ = DType::F32;
}

/// Large products split across helper threads, called from four threads at once: callers that
/// find every helper busy compute their parts themselves, and every result equals the
/// single-threaded one bit for bit.
#[test]
fn concurrent_split_products_agree() {
    let f = text::parse(
        "func f(a: f32[256,300], b: f32[300,200]) -> f32[256,200] {\n  return a @ b\n}",
    )
    .unwrap();
    let a =
        Tensor::f32([256, 300], (0..76_800).map(|i| (i as f32 * 0.013).sin()).collect()).unwrap();
    let b =
        Tensor::f32([300, 200], (0..60_000).map(|i| (i as f32 * 0.007).cos()).collect()).unwrap();
    let one = compile_with(&f, Options { threads: 1, ..Default::default() }).unwrap();
    let want = one.call(&[&a, &b]).unwrap();
    let split = compile_with(&f, Options { threads: 2, ..Default::default() }).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    assert_eq!(split.call(&[&a, &b]).unwrap(), want);
                }
            });
        }
    });
}

/// With `Options::profile`, every call adds each step's time to this thread's totals: one
/// total per step label, none negative, together no more than the calls took; without it,
/// nothing is recorded.
#[test]
fn profile_times_every_step() {
    let f = model();
    let x = inputs();
    let c = compile_with(&f, Options { profile: true, ..Default::default() }).unwrap();
    assert_eq!(c.step_labels().len(), c.steps());
    assert!(c.step_labels().iter().any(|l| l.starts_with("dot ")), "{:?}", c.step_labels());
    jjt_jit::take_profile();
    let t = std::time::Instant::now();
    for _ in 0..100 {
        c.call(&[&x[0], &x[1]]).unwrap();
    }
    let wall = t.elapsed().as_secs_f64();
    let totals = jjt_jit::take_profile();
    assert_eq!(totals.len(), c.steps(), "{totals:?}");
    assert!(totals.iter().all(|&s| s >= 0.0));
    assert!(totals.iter().sum::<f64>() <= wall, "{totals:?} vs {wall}");
    assert!(jjt_jit::take_profile().is_empty(), "taking the profile resets it");
    let plain = compile(&f).unwrap();
    plain.call(&[&x[0], &x[1]]).unwrap();
    assert!(jjt_jit::take_profile().is_empty(), "unprofiled calls record nothing");
}

/// The machine-code listing covers the row functions too: a large elementwise step runs its
/// rows on threads in a function of its own, whose code the listing shows under its name (the
/// entry function alone only calls it).
#[test]
fn the_listing_shows_row_functions() {
    let f = text::parse("func f(x: f32[64,512]) -> f32[64,512] { return tanh(x) * x }").unwrap();
    let opts = Options { keep_asm: true, threads: 2, ..Default::default() };
    let c = compile_with(&f, opts).unwrap();
    let asm = c.asm().unwrap();
    let rows = asm.find("; jjt_rows0_f").expect(asm);
    assert!(asm[rows..].contains("ret"), "{asm}");
}
