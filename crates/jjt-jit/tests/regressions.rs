//! Inputs that once crashed the backend: each now compiles and agrees with the interpreter,
//! or is refused with a typed error.

use jjt_ir::{Tensor, interp, text};
use jjt_jit::{JitError, compile};

fn agree(src: &str, inputs: &[Tensor]) {
    let f = text::parse(src).unwrap();
    let want = interp::eval(&f, inputs).unwrap().to_f64_vec();
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let got = compile(&f).unwrap().call(&refs).unwrap().remove(0).to_f64_vec();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{src}: {g} vs {w}");
    }
}

#[test]
fn reductions_over_no_axes() {
    let x = Tensor::f32([3], vec![1.0, -2.0, 0.5]).unwrap();
    agree("func f(x: f32[3]) -> f32[3] { return sum(x, axes=[]) }", std::slice::from_ref(&x));
    let s = Tensor::f32(Vec::<usize>::new(), vec![2.5]).unwrap();
    agree("func f(x: f32[]) -> f32[] { return sum(x) + max(x) }", &[s]);
}

#[test]
fn contractions_without_contracted_axes() {
    let a = Tensor::f32([2], vec![1.5, -2.0]).unwrap();
    agree(
        "func f(a: f32[2], b: f32[2]) -> f32[2] { return dot_general(a, b, batch=[[0],[0]]) }",
        &[a.clone(), a],
    );
    let s = Tensor::f32(Vec::<usize>::new(), vec![3.0]).unwrap();
    agree("func f(a: f32[], b: f32[]) -> f32[] { return dot_general(a, b) }", &[s.clone(), s]);
}

#[test]
fn oversized_values_are_refused() {
    let f = text::parse(
        "func f(x: f32[1]) -> f32[] {\n  b = broadcast_to(x, shape=[4611686018427387905])\n  e = exp(b)\n  return sum(e * e)\n}",
    )
    .unwrap();
    assert!(matches!(compile(&f), Err(JitError::TooLarge { .. })));
    let g = text::parse("func f(x: f32[]) -> f32[] { return sum(iota(f32[1099511627776])) + x }")
        .unwrap();
    assert!(matches!(compile(&g), Err(JitError::TooLarge { .. })));
}

#[test]
fn raw_buffer_sizes_do_not_overflow() {
    let f = text::parse("func f(x: f32[4611686018427387904]) -> f32[] { return sum(x) }").unwrap();
    // The input alone is 2^64 bytes: refused at compile time, before any call.
    assert!(matches!(compile(&f), Err(JitError::TooLarge { .. })));
}

#[test]
fn misaligned_buffers_through_the_matrix_multiply() {
    let f =
        text::parse("func f(a: f32[64,64], b: f32[64,64]) -> f32[64,64] { return a @ b }").unwrap();
    let c = compile(&f).unwrap();
    let a: Vec<f32> = (0..4096).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
    let b: Vec<f32> = (0..4096).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
    let want = c
        .call(&[
            &Tensor::f32([64, 64], a.clone()).unwrap(),
            &Tensor::f32([64, 64], b.clone()).unwrap(),
        ])
        .unwrap();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for shift in [1usize, 2, 3] {
        let mut sa = vec![0u8; 4096 * 4 + 4];
        sa[shift..shift + 16384].copy_from_slice(&bytes(&a));
        let mut sb = vec![0u8; 4096 * 4 + 4];
        sb[shift..shift + 16384].copy_from_slice(&bytes(&b));
        let mut so = vec![0u8; 4096 * 4 + 4];
        c.call_raw(
            &[&sa[shift..shift + 16384], &sb[shift..shift + 16384]],
            &mut [&mut so[shift..shift + 16384]],
        )
        .unwrap();
        // Small integers: every product and partial sum is exact, so any order agrees.
        let got: Vec<f64> = so[shift..shift + 16384]
            .chunks(4)
            .map(|w| f64::from(f32::from_le_bytes([w[0], w[1], w[2], w[3]])))
            .collect();
        assert_eq!(got, want[0].to_f64_vec(), "shift {shift}");
    }
}

#[test]
fn scalar_wrt_diagonal_jacobian_contraction() {
    let f = text::parse("func f(x: f32[], w: f32[3]) -> f32[3] { return sin(w * x) }").unwrap();
    let spec = jjt_ad::KernelSpec {
        wrt: vec!["x".into()],
        shared: vec!["w".into()],
        mode: jjt_ad::Mode::Diagonal,
        strategy: jjt_ad::Strategy::Jc,
        ..Default::default()
    };
    let k = spec.kernel(&f).unwrap();
    let args = [
        Tensor::f32(Vec::<usize>::new(), vec![0.3]).unwrap(),
        Tensor::f32(Vec::<usize>::new(), vec![-0.7]).unwrap(),
        Tensor::f32([3], vec![1.0, 2.0, 3.0]).unwrap(),
    ];
    let want = interp::eval(&k, &args).unwrap().to_f64_vec();
    let refs: Vec<&Tensor> = args.iter().collect();
    let got = compile(&k).unwrap().call(&refs).unwrap().remove(0).to_f64_vec();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0));
    }
}

#[test]
fn the_memory_budget_is_configurable() {
    let f = text::parse("func f(x: f32[1000]) -> f32[1000,1000] { return broadcast_to(x, shape=[1000,1000]) * 2.0 }").unwrap();
    let tight = jjt_jit::Options { max_bytes: 1 << 20, ..Default::default() };
    assert!(
        matches!(jjt_jit::compile_with(&f, tight), Err(JitError::TooLarge { limit, .. }) if limit == 1 << 20)
    );
    assert!(compile(&f).is_ok());
}
