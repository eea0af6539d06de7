//! The seed at scale keeps one copy of its large constant: parsing, building the kernel,
//! optimising and pricing its candidates (folding A·Aᵀ with the interpreter), compiling it and calling it allocate
//! at most 1.3× the bytes of A at any moment (measured with a counting allocator; one test in
//! this binary, so nothing else allocates meanwhile).

#[path = "common/counting.rs"]
mod counting;

use jjt_ad::KernelSpec;
use jjt_ir::ops::Const;
use jjt_ir::{Op, Tensor};

use counting::{Counting, peak_during};

#[global_allocator]
static A: Counting = Counting;

#[test]
fn seed_at_scale_holds_its_constant_once() {
    // examples/models/seed_large.jjt with N = 10⁵ instead of 10⁶ (the same code paths; A is
    // 12.8 MB, large against everything else the pipeline allocates).
    const M: usize = 32;
    const N: usize = 100_000;
    let src = format!(
        "func f(x: f32[{N}]) -> f32[{M}] {{\n  a = uniform(f32[{M},{N}], seed=1701)\n  \
         y = matmul(a, x)\n  return sqrt(y / {N}.0)\n}}\n"
    );
    let a_bytes = M * N * 4;
    let ((kernel, k), peak) = peak_during(|| {
        let f = jjt_ir::text::parse(&src).unwrap();
        let spec = KernelSpec { wrt: vec!["x".into()], ..KernelSpec::default() };
        // Priced by the backend's prediction, which plans each candidate without generating
        // its constants.
        let price = |g: &jjt_ir::Function| {
            jjt_jit::predict(g, &jjt_jit::Options::default()).unwrap().seconds()
        };
        let choice = jjt_opt::auto::choose_with(&spec, &f, &price).unwrap();
        let c = jjt_jit::compile(&choice.kernel).unwrap();
        let tys: Vec<_> = c.inputs().cloned().collect();
        let x1 = Tensor::from_f64(&tys[0], &vec![0.5; N]).unwrap();
        let x2 = Tensor::from_f64(&tys[1], &vec![0.25; N]).unwrap();
        let k = c.call(&[&x1, &x2]).unwrap().remove(0);
        (choice.kernel, k)
    });
    assert_eq!(k.shape.dims(), &[M, M]);
    // Before generating constants straight into their element type, A existed as f64 (8 bytes
    // an element) beside its f32 copy: 3× |A|.
    assert!(
        peak as f64 <= 1.3 * a_bytes as f64,
        "peak {peak} bytes allocated for a {a_bytes}-byte constant"
    );
    // The optimised graph keeps A as its seed (generated when compiled), never as a literal
    // copy of its values (a folded transpose, say).
    for n in kernel.node_ids() {
        let node = kernel.node(n).unwrap();
        if let Op::Const(c) = &node.op
            && node.ty.numel() >= M * N
        {
            assert!(matches!(c, Const::Random { .. }), "{c:?}");
        }
    }
}
