//! Steady-state time of compiled kernels (divan). Run: `cargo bench --bench kernels`.
//! For first-call times and comparisons with JAX, neural-tangents and PyTorch in one run, use
//! `benches/compare` (see README).

use jjt::{DType, Kernel, RandomState, Tensor, load_model};

fn main() {
    divan::main();
}

/// The seed workload: f(x) = sqrt(A x / N), N = 10000, M = 5, f32, full 5×5 K, ntvp.
#[divan::bench(sample_count = 200)]
fn seed_kernel(bencher: divan::Bencher) {
    let f = jjt::trace("f", |t| {
        let x = t.input("x", DType::F32, [10000]);
        let a = t.uniform(DType::F32, [5, 10000], 1701);
        (a.matmul(&x) / 10000.0).sqrt()
    })
    .unwrap();
    let k = Kernel::new(&f).wrt(["x"]).compile().unwrap();
    let mut rng = RandomState::new(1701);
    rng.skip_uniform(50_000);
    let (x1, x2) = (rng.rand_f32([10000]).unwrap(), rng.rand_f32([10000]).unwrap());
    bencher.bench_local(|| k.call(&[&x1, &x2]).unwrap());
}

/// The MLP workload (784→512→512→10, tanh, f32, wrt all parameters, full kernel, ntvp) at
/// B1 = B2 = `b`.
#[divan::bench(args = [8, 32], sample_count = 3, sample_size = 1)]
fn mlp_kernel(bencher: divan::Bencher, b: usize) {
    let f = load_model(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/mlp.jjt")).unwrap();
    let params = ["w0", "b0", "w1", "b1", "w2", "b2"];
    let k = Kernel::new(&f).wrt(params).shared(params).batch(b, b).compile().unwrap();
    let mut rng = RandomState::new(0);
    let args: Vec<Tensor> = k.inputs().map(|t| rng.randn_f32(t.shape.clone()).unwrap()).collect();
    let refs: Vec<&Tensor> = args.iter().collect();
    bencher.bench_local(|| k.call(&refs).unwrap());
}
