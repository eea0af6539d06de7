//! Measures reductions (the layernorm and softmax shapes and a full reduction of 10⁶ elements)
//! in fast mode with 1 and 2 threads and in strict mode (the interpreter's order, one term at a
//! time where no lane form applies), and the interpreter on a large contraction.
//! Run: `cargo run --release -p jjt-jit --example reductions`. Prints the median time of each
//! and the input bytes read per second.

use std::time::{Duration, Instant};

use jjt_ir::{DType, Tensor, TensorType, interp, text};
use jjt_jit::{Options, compile_with};

fn median(mut f: impl FnMut(), reps: usize) -> Duration {
    let mut ts: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    ts.sort();
    ts[ts.len() / 2]
}

fn input(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.618).fract() - 0.3).collect();
    Tensor::from_f64(&TensorType::new(DType::F32, shape.to_vec()), &v).unwrap()
}

fn main() {
    let cases: &[(&str, &[usize], &str)] = &[
        ("f32[16,32,128]", &[16, 32, 128], "sum(x, axes=[2]) -> f32[16,32]"),
        ("f32[16,32,128]", &[16, 32, 128], "max(x, axes=[2]) -> f32[16,32]"),
        ("f32[16,32,128]", &[16, 32, 128], "mean(x, axes=[1]) -> f32[16,128]"),
        ("f32[1000000]", &[1_000_000], "sum(x) -> f32[]"),
        ("f32[1000,1000]", &[1000, 1000], "sum(x, axes=[1]) -> f32[1000]"),
        ("f32[1000,1000]", &[1000, 1000], "sum(x, axes=[0]) -> f32[1000]"),
    ];
    println!(
        "{:<48} {:>12} {:>12} {:>12} {:>9}",
        "reduction", "fast 1 thr", "fast 2 thr", "strict", "GB/s"
    );
    for (ty, shape, red) in cases {
        let (call, out) = red.split_once(" -> ").unwrap();
        let src = format!("func f(x: {ty}) -> {out} {{ return {call} }}");
        let f = text::parse(&src).unwrap();
        let x = input(shape);
        let mut t = Vec::new();
        for opts in [
            Options { threads: 1, ..Options::default() },
            Options { threads: 2, ..Options::default() },
            Options { strict: true, threads: 1, ..Options::default() },
        ] {
            let c = compile_with(&f, opts).unwrap();
            t.push(median(|| drop(std::hint::black_box(c.call(&[&x]).unwrap())), 51));
        }
        let bytes = 4.0 * shape.iter().product::<usize>() as f64;
        let best = t[0].min(t[1]).as_secs_f64();
        println!(
            "{:<48} {:>10.1}µs {:>10.1}µs {:>10.1}µs {:>9.2}",
            format!("{call} of {ty}"),
            t[0].as_secs_f64() * 1e6,
            t[1].as_secs_f64() * 1e6,
            t[2].as_secs_f64() * 1e6,
            bytes / best / 1e9
        );
    }
    let (m, k, n) = (256, 2048, 256);
    let src =
        format!("func f(a: f32[{m},{k}], b: f32[{k},{n}]) -> f32[{m},{n}] {{ return a @ b }}");
    let f = text::parse(&src).unwrap();
    let (a, b) = (input(&[m, k]), input(&[k, n]));
    let t = median(
        || drop(std::hint::black_box(interp::eval(&f, &[a.clone(), b.clone()]).unwrap())),
        7,
    );
    println!(
        "interpreter f32[{m},{k}]·[{k},{n}]: {:.1} ms, {:.2} G multiply-adds/s",
        t.as_secs_f64() * 1e3,
        (m * k * n) as f64 / t.as_secs_f64() / 1e9
    );
}
