//! Measures where calling the matrix multiply beats the inline SIMD loops, for the
//! contraction shapes kernels produce: `[M,K]·[K,N]` with row-major operands, f32.
//! Run: `cargo run --release -p jjt-jit --example gemm_threshold`. Prints the median time of
//! each path per shape; `GEMM_THRESHOLD` and the minimum M, N in `gemm.rs` come from this.

use std::time::Instant;

use jjt_ir::{DType, Tensor, TensorType, text};
use jjt_jit::{Options, compile_with};

/// Median µs of one `[m,k]·[k,n]` product compiled with `opts`.
fn time(m: usize, k: usize, n: usize, opts: Options) -> f64 {
    let src =
        format!("func f(a: f32[{m},{k}], b: f32[{k},{n}]) -> f32[{m},{n}] {{ return a @ b }}");
    let f = text::parse(&src).unwrap();
    let c = compile_with(&f, opts).unwrap();
    let a = Tensor::from_f64(&TensorType::new(DType::F32, [m, k]), &vec![0.5; m * k]).unwrap();
    let b = Tensor::from_f64(&TensorType::new(DType::F32, [k, n]), &vec![0.25; k * n]).unwrap();
    let mut ts = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        std::hint::black_box(c.call(&[&a, &b]).unwrap());
        ts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    ts.sort_by(f64::total_cmp);
    ts[ts.len() / 2]
}

fn main() {
    println!(
        "{:>6} {:>6} {:>6} {:>12} {:>12} {:>8}",
        "M", "K", "N", "inline µs", "gemm µs", "ratio"
    );
    for &(m, k, n) in &[
        (5, 10000, 5),
        (5, 5, 10000),
        (8, 512, 8),
        (16, 512, 16),
        (32, 64, 32),
        (32, 512, 32),
        (32, 784, 512),
        (64, 64, 64),
        (128, 128, 128),
        (320, 512, 512),
        (4, 784, 512),
        (512, 32, 4),
    ] {
        let inline = Options { no_gemm: true, ..Options::default() };
        let (a, b) = (time(m, k, n, inline), time(m, k, n, Options::default()));
        println!("{m:>6} {k:>6} {n:>6} {a:>12.1} {b:>12.1} {:>8.2}", a / b);
    }
}
