//! A part of a multi-threaded step that panics (injected with the test hook
//! `jjt_jit::inject_panic`) makes the call return `JitError::WorkerPanicked` instead of `Ok`
//! with a block never written, whether the part was the helper's or the caller's own, through
//! both runtime functions that split work (the row runner of large elementwise steps and the
//! matrix multiply); the next call on the same handle succeeds with the interpreter's values.
//!
//! One test in its own binary: the hook is process-wide, so no other test may split work
//! meanwhile.

use jjt_ir::{Function, Tensor, interp, text};
use jjt_jit::{Compiled, InjectedPanic, JitError, Options, compile_with};

fn inputs(f: &Function) -> Vec<Tensor> {
    f.params()
        .iter()
        .map(|p| {
            let v: Vec<f64> = (0..p.ty.numel()).map(|i| (i as f64 * 0.37).sin()).collect();
            Tensor::from_f64(&p.ty, &v).unwrap()
        })
        .collect()
}

/// Each injected panic gives the typed error on `call` and `call_raw`; the call after it
/// succeeds and matches `want`.
fn check(c: &Compiled, x: &[Tensor], want: &[f64]) {
    let refs: Vec<&Tensor> = x.iter().collect();
    for part in [InjectedPanic::Second, InjectedPanic::First] {
        jjt_jit::inject_panic(part);
        match c.call(&refs) {
            Err(JitError::WorkerPanicked { message, .. }) => {
                assert!(message.starts_with("injected panic"), "{part:?}: {message}")
            }
            Ok(_) => panic!("{part:?}: Ok, though a part of the step was never computed"),
            Err(e) => panic!("{part:?}: expected WorkerPanicked, got {e}"),
        }
        let got = c.call(&refs).expect("the next call works").remove(0).to_f64_vec();
        assert!(
            got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{part:?}: the call after a panic differs from the reference"
        );
    }
    let bytes: Vec<Vec<u8>> = x
        .iter()
        .map(|t| t.to_f64_vec().iter().flat_map(|&v| (v as f32).to_le_bytes()).collect())
        .collect();
    let ins: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
    let mut out = vec![0u8; want.len() * 4];
    jjt_jit::inject_panic(InjectedPanic::Second);
    assert!(matches!(c.call_raw(&ins, &mut [&mut out]), Err(JitError::WorkerPanicked { .. })));
    c.call_raw(&ins, &mut [&mut out]).expect("the next raw call works");
}

#[test]
fn a_panicking_part_is_an_error_and_the_next_call_works() {
    let threads = Options { threads: 2, ..Options::default() };

    // A large elementwise step: its rows run on two threads through `jjt_par_map`.
    let f = text::parse("func rows(x: f32[256,128]) -> f32[256,128] {\n  return x * x + 1.0\n}")
        .unwrap();
    let c = compile_with(&f, threads).unwrap();
    assert!(c.step_labels().iter().any(|l| l.contains("rows on threads")), "{:?}", c.step_labels());
    let x = inputs(&f);
    let want = interp::eval(&f, &x).unwrap().to_f64_vec();
    check(&c, &x, &want);

    // A matrix multiply above the split threshold: two blocks through `jjt_sgemm`.
    let f = text::parse(
        "func mm(a: f32[128,256], b: f32[256,160]) -> f32[128,160] {\n  return a @ b\n}",
    )
    .unwrap();
    let c = compile_with(&f, threads).unwrap();
    assert!(c.step_labels().iter().any(|l| l.contains("matrix multiply")), "{:?}", c.step_labels());
    const { assert!(128 * 160 * 256 >= jjt_jit::gemm::PAR_THRESHOLD) };
    let x = inputs(&f);
    let one = compile_with(&f, Options { threads: 1, ..Options::default() }).unwrap();
    let refs: Vec<&Tensor> = x.iter().collect();
    let want = one.call(&refs).unwrap().remove(0).to_f64_vec();
    check(&c, &x, &want);
}
