//! Measures the throughputs of the backend's cost model (`jjt_jit::cost`) on this machine and
//! prints them in Rust syntax, ready to paste over `Throughputs::MEASURED` in
//! `crates/jjt-jit/src/cost.rs` (or to save in a file for `JJT_THROUGHPUTS`).
//!
//! Run: `cargo run --release -p jjt-jit --example calibrate`.
//!
//! Each experiment compiles a small f32 graph with profiling on, calls it 15 times and takes
//! the median time of the step it is about (the step kinds come from `jjt_jit::predict`, so
//! the measured steps are the ones the model prices). The matrix multiply's three constants
//! are fitted by least squares on relative error over products of several sizes; the
//! elementwise constants likewise over expressions with different numbers of operations and
//! transcendental calls.

use jjt_ir::{Function, Tensor, text};
use jjt_jit::{Options, StepKind, StepTime, Throughputs, compile_with, predict, take_profile};

const REPS: usize = 15;

/// The `rank`-th fastest call's seconds of each step of `src` compiled with `opts`
/// (`REPS / 2`: the median; 0: the fastest), and the model's view of each step.
fn measure_by(src: &str, opts: Options, rank: usize) -> Vec<(f64, StepTime)> {
    let f: Function = text::parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let c = compile_with(&f, Options { profile: true, ..opts }).unwrap();
    let args: Vec<Tensor> = f
        .params()
        .iter()
        .map(|p| {
            let v: Vec<f64> = (0..p.ty.numel()).map(|i| 0.5 + (i % 7) as f64 * 0.0625).collect();
            Tensor::from_f64(&p.ty, &v).unwrap()
        })
        .collect();
    let refs: Vec<&Tensor> = args.iter().collect();
    std::hint::black_box(c.call(&refs).unwrap());
    take_profile();
    let mut per_step: Vec<Vec<f64>> = vec![Vec::new(); c.steps()];
    for _ in 0..REPS {
        std::hint::black_box(c.call(&refs).unwrap());
        for (k, t) in take_profile().into_iter().enumerate() {
            per_step[k].push(t);
        }
    }
    let pred = predict(&f, &opts).unwrap();
    per_step
        .into_iter()
        .zip(pred.steps)
        .map(|(mut ts, p)| {
            ts.sort_by(f64::total_cmp);
            (ts[rank], p)
        })
        .collect()
}

/// The measured step of `src` of the given kind with the most elements.
fn main_step(src: &str, opts: Options, kind: StepKind) -> (f64, StepTime) {
    main_step_by(src, opts, kind, REPS / 2)
}

/// [`main_step`] by the `rank`-th fastest call.
fn main_step_by(src: &str, opts: Options, kind: StepKind, rank: usize) -> (f64, StepTime) {
    measure_by(src, opts, rank)
        .into_iter()
        .filter(|(_, p)| p.kind == kind)
        .max_by(|a, b| a.1.elements.total_cmp(&b.1.elements))
        .unwrap_or_else(|| panic!("no {kind:?} step in\n{src}"))
}

/// Least squares `rows · x ≈ y`, each row weighted by 1/y (relative error), by the normal
/// equations (few unknowns, well conditioned after scaling).
fn fit(rows: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let n = rows[0].len();
    // Scale each column to unit size so the normal equations are well conditioned.
    let scale: Vec<f64> = (0..n)
        .map(|j| {
            rows.iter().zip(y).map(|(r, yi)| (r[j] / yi).abs()).fold(0.0, f64::max).max(1e-300)
        })
        .collect();
    let mut a = vec![vec![0.0; n + 1]; n];
    for (r, &yi) in rows.iter().zip(y) {
        let x: Vec<f64> = (0..n).map(|j| r[j] / yi / scale[j]).collect();
        for i in 0..n {
            for j in 0..n {
                a[i][j] += x[i] * x[j];
            }
            a[i][n] += x[i];
        }
    }
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let k = row[c] / pivot[c];
                for (x, p) in row.iter_mut().zip(&pivot).skip(c) {
                    *x -= k * p;
                }
            }
        }
    }
    (0..n).map(|i| a[i][n] / a[i][i] / scale[i]).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn matmul(m: usize, k: usize, n: usize) -> String {
    format!("func f(a: f32[{m},{k}], b: f32[{k},{n}]) -> f32[{m},{n}] {{ return a @ b }}")
}

fn map(shape: &str, body: &str) -> String {
    format!("func f(x: f32[{shape}], y: f32[{shape}]) -> f32[{shape}] {{ return {body} }}")
}

fn main() {
    let one = Options { threads: 1, ..Options::default() };
    let two = Options { threads: 2, ..Options::default() };

    // The matrix multiply, one thread: per product, call + macs/peak + macs·half/(peak·size).
    let (mut rows, mut y) = (Vec::new(), Vec::new());
    for &(m, k, n) in &[
        (32, 32, 32),
        (64, 64, 64),
        (128, 128, 128),
        (256, 256, 256),
        (512, 512, 512),
        (32, 784, 512),
        (16, 512, 16),
        (320, 512, 512),
        (8, 4096, 8),
        (512, 16, 512),
    ] {
        let (t, p) = main_step(&matmul(m, k, n), one, StepKind::MatrixMultiply);
        let size = 3.0 / (1.0 / m as f64 + 1.0 / n as f64 + 1.0 / k as f64);
        rows.push(vec![1.0, p.macs, p.macs / size]);
        y.push(t);
        eprintln!("gemm {m}×{k}×{n}: {:.1} µs, {:.2} GFLOP/s", t * 1e6, 2.0 * p.macs / t / 1e9);
    }
    let g = fit(&rows, &y);
    let gemm_call = g[0].max(1e-8);
    let gemm_peak = 1.0 / g[1].max(1e-13);
    let gemm_half = (g[2] * gemm_peak).max(0.0);

    // Inline contractions: vector loops (no matrix multiply), and one product at a time (strict
    // mode, the only one that emits it). The transposed form: `a` is [K, M] and `b` [N, K], so
    // neither the output's innermost axis nor the contracted axis runs along unit strides in
    // both operands: fast mode runs it in the runtime contraction's dot loops.
    let vector = Options { no_gemm: true, ..one };
    let strict = Options { strict: true, ..one };
    let rate = |kind: StepKind| {
        median(
            [(64, 64, 64), (32, 512, 32), (128, 128, 128), (16, 256, 64)]
                .iter()
                .map(|&(m, k, n)| {
                    let src = match kind {
                        StepKind::InlineScalar | StepKind::RuntimeLoops => format!(
                            "func f(a: f32[{k},{m}], b: f32[{n},{k}]) -> f32[{m},{n}] {{ \
                             return dot_general(a, b, contract=[[0],[1]], batch=[[],[]]) }}"
                        ),
                        _ => matmul(m, k, n),
                    };
                    let opts = if kind == StepKind::InlineScalar { strict } else { vector };
                    let (t, p) = main_step(&src, opts, kind);
                    eprintln!("{kind:?} {m}×{k}×{n}: {:.2} GFLOP/s", 2.0 * p.macs / t / 1e9);
                    p.macs / t
                })
                .collect(),
        )
    };
    let inline_vector = rate(StepKind::InlineVector);
    let inline_scalar = rate(StepKind::InlineScalar);
    let runtime_loops = rate(StepKind::RuntimeLoops);
    // Operands of 2 to 4 MB, beyond the caches.
    let inline_scalar_large = median(
        [(64, 16384, 64), (128, 4096, 128), (512, 1024, 32)]
            .iter()
            .map(|&(m, k, n)| {
                let src = format!(
                    "func f(a: f32[{k},{m}], b: f32[{n},{k}]) -> f32[{m},{n}] {{ \
                     return dot_general(a, b, contract=[[0],[1]], batch=[[],[]]) }}"
                );
                let (t, p) = main_step(&src, strict, StepKind::InlineScalar);
                eprintln!("InlineScalar {m}×{k}×{n}: {:.2} GFLOP/s", 2.0 * p.macs / t / 1e9);
                p.macs / t
            })
            .collect(),
    );

    // The matrix–vector kernel: bytes read (the matrix, the vector once per block of rows,
    // the outputs) per second, matrices from 160 KB to 1 MB (in L2, as the products it takes).
    let matvec = median(
        [(5usize, 10000usize), (16, 8192), (64, 4096), (200, 1000)]
            .iter()
            .map(|&(m, k)| {
                let src =
                    format!("func f(a: f32[{m},{k}], x: f32[{k}]) -> f32[{m}] {{ return a @ x }}");
                let (t, _) = main_step(&src, vector, StepKind::MatrixVector);
                let bytes = 4.0 * (m * k + m.div_ceil(jjt_jit::matvec::ROWS_ONE) * k + m) as f64;
                eprintln!("MatrixVector {m}×{k}: {:.2} GB/s", bytes / t / 1e9);
                bytes / t
            })
            .collect(),
    );

    // Copies: contiguous and transposed.
    let bandwidth = |srcs: &[&str]| {
        median(
            srcs.iter()
                .map(|src| {
                    let (t, p) = main_step(src, one, StepKind::Copy);
                    eprintln!("{src}: {:.2} GB/s", 8.0 * p.elements / t / 1e9);
                    8.0 * p.elements / t
                })
                .collect(),
        )
    };
    let copy = bandwidth(&[
        "func f(x: f32[1024,1024]) -> f32[1024,1024] { return x }",
        "func f(x: f32[64,64,256]) -> f32[64,64,256] { return x }",
        "func f(x: f32[4096,64]) -> f32[4096,64] { return x }",
    ]);
    let copy_strided = bandwidth(&[
        "func f(x: f32[64,512]) -> f32[512,64] { return transpose(x, perm=[1,0]) }",
        "func f(x: f32[128,256]) -> f32[256,128] { return transpose(x, perm=[1,0]) }",
        "func f(x: f32[16,16,64]) -> f32[64,16,16] { return transpose(x, perm=[2,0,1]) }",
    ]);
    let copy_strided_large = bandwidth(&[
        "func f(x: f32[1024,1024]) -> f32[1024,1024] { return transpose(x, perm=[1,0]) }",
        "func f(x: f32[64,64,256]) -> f32[256,64,64] { return transpose(x, perm=[2,0,1]) }",
        "func f(x: f32[512,2048]) -> f32[2048,512] { return transpose(x, perm=[1,0]) }",
    ]);

    // Elementwise: per element, map_element + map_op·ops + libm_call·calls + inline_math·inlined
    // (fast mode: exp, sigmoid and tanh inline; log, sin, cos calls).
    let (mut rows, mut y) = (Vec::new(), Vec::new());
    for body in [
        "x + y",
        "((x + y) * x - y) * y + x",
        "(((x * y + x) * y - x) * (x + y) - y) * x + y * y",
        "exp(x)",
        "tanh(x) * y",
        "exp(x) + log(y)",
        "sin(x) * cos(y) + tanh(x + y)",
        "tanh(x)",
        "sigmoid(x) * y",
        "log(x) * y",
    ] {
        let (t, p) = main_step(&map("1024,1024", body), one, StepKind::Map);
        let per = t / p.elements;
        rows.push(vec![1.0, p.ops, p.libm_calls, p.inlined]);
        y.push(per);
        eprintln!("map {body}: {:.3} ns per element", per * 1e9);
    }
    let m = fit(&rows, &y);
    let [map_element, map_op, libm_call, inline_math] = [0, 1, 2, 3].map(|i| m[i].max(1e-12));
    // tanh as a call (strict mode): what a map of it costs beyond the fitted rest.
    let strict = Options { strict: true, ..one };
    let (t, p) = main_step(&map("1024,1024", "tanh(x)"), strict, StepKind::Map);
    let tanh_call = (t / p.elements - map_element - map_op * p.ops).max(1e-12);
    eprintln!("map tanh(x), strict: {:.3} ns per element", t / p.elements * 1e9);

    // Reductions of a load, over the innermost axis and keeping it.
    let per_element = |srcs: &[&str]| {
        median(
            srcs.iter()
                .map(|src| {
                    let (t, p) = main_step(src, one, StepKind::Reduce);
                    eprintln!("{src}: {:.3} ns per element", t / p.elements * 1e9);
                    t / p.elements
                })
                .collect(),
        )
    };
    let reduce_element = per_element(&[
        "func f(x: f32[1024,1024]) -> f32[1024] { return sum(x, axes=[1]) }",
        "func f(x: f32[1024,1024]) -> f32[1024] { return max(x, axes=[1]) }",
        "func f(x: f32[64,64,256]) -> f32[64] { return sum(x, axes=[1,2]) }",
    ]);
    let reduce_outer = per_element(&[
        "func f(x: f32[1024,1024]) -> f32[1024] { return sum(x, axes=[0]) }",
        "func f(x: f32[64,64,256]) -> f32[64,256] { return sum(x, axes=[1]) }",
        "func f(x: f32[256,32,128]) -> f32[128] { return sum(x, axes=[0,1]) }",
    ]);

    // Splitting across two threads: the speed-up of a large map and a large product over one
    // thread, as a fraction of 2.
    let mut eff = Vec::new();
    for src in [map("2048,1024", "x * y + x"), matmul(512, 512, 512)] {
        let kind = if src.contains('@') { StepKind::MatrixMultiply } else { StepKind::Map };
        // The fastest call of each, not the median: other processes on a shared machine take
        // cores from the two-thread runs far more than from the one-thread runs.
        let (t1, _) = main_step_by(&src, one, kind, 0);
        let (t2, _) = main_step_by(&src, two, kind, 0);
        eprintln!("{kind:?} on 2 threads: {:.2}× one", t1 / t2);
        eff.push(t1 / t2 / 2.0);
    }
    let parallel = (eff.iter().sum::<f64>() / eff.len() as f64).clamp(0.3, 1.0);

    // The fixed cost of a step: a map over four elements.
    let step = main_step(&map("4", "x + y"), one, StepKind::Map).0;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Throughputs {
        step,
        gemm_call,
        gemm_peak,
        gemm_half,
        inline_vector,
        inline_scalar,
        inline_scalar_large,
        runtime_loops,
        matvec,
        copy,
        copy_strided,
        copy_strided_large,
        map_element,
        map_op,
        libm_call,
        tanh_call,
        inline_math,
        reduce_element,
        reduce_outer,
        parallel,
        threads,
    };
    println!("    pub const MEASURED: Throughputs = Throughputs {{");
    for (name, v) in [
        ("step", t.step),
        ("gemm_call", t.gemm_call),
        ("gemm_peak", t.gemm_peak),
        ("gemm_half", t.gemm_half),
        ("inline_vector", t.inline_vector),
        ("inline_scalar", t.inline_scalar),
        ("inline_scalar_large", t.inline_scalar_large),
        ("runtime_loops", t.runtime_loops),
        ("matvec", t.matvec),
        ("copy", t.copy),
        ("copy_strided", t.copy_strided),
        ("copy_strided_large", t.copy_strided_large),
        ("map_element", t.map_element),
        ("map_op", t.map_op),
        ("libm_call", t.libm_call),
        ("tanh_call", t.tanh_call),
        ("inline_math", t.inline_math),
        ("reduce_element", t.reduce_element),
        ("reduce_outer", t.reduce_outer),
        ("parallel", t.parallel),
    ] {
        println!("        {name}: {v:.3e},");
    }
    println!("        threads: {},", t.threads);
    println!("    }};");
}
