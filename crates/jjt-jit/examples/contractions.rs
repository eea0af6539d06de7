//! Contraction speed: median time and GFLOP/s (2 flops per multiply-add) of one compiled
//! `dot_general` per shape, f32, default options (every core), with the path each step took.
//! Run: `cargo run --release -p jjt-jit --example contractions` (optionally `-- THREADS`).
//! The table includes the contractions of a transformer block's NTK; the acceptance target is
//! ≥ 20 GFLOP/s for every contraction of ≥ 10⁷ multiply-adds.
//!
//! Measured on this machine (Intel Xeon with AVX-512, 2 cores shared with other jobs, so ±20 %),
//! `-- 1` (one thread), median ms (GFLOP/s), before the runtime contraction and after:
//!
//! | contraction | before | after |
//! |---|---|---|
//! | NTK step [16,10,32,512]·[16,10,512,16,32], K = 32·512 | 1674 (0.5), inline scalar | 47.7 (17.6), packed lhs and rhs |
//! | two axes, rhs permuted, 64×4096×96 | 44.6 (1.1), inline scalar | 0.91 (55), packed rhs |
//! | long K, 32×262144×32 | 8.0 (67), one run of K | 7.9 (68), 256 blocks of K |
//! | transposed lhs matmul 256×512×384 | 0.54 (188) | 0.57 (178) |
//! | attention-like batched 16×(32×128×32) | 0.037 (112) | 0.038 (111) |
//! | MLP layer 32×784×512 | 0.20 (126) | 0.24 (107) |
//! | batched, both operands permuted | 0.55 (92) | 0.48 (104) |
//!
//! With both threads on a quiet machine the NTK step took 23–26 ms (32–36 GFLOP/s).

use std::time::Instant;

use jjt_ir::{Tensor, text};
use jjt_jit::{Options, compile_with};

/// (name, source, multiply-adds).
fn shapes() -> Vec<(&'static str, String, usize)> {
    let dot = |name, a: &str, b: &str, out: &str, contract: &str, batch: &str, macs| {
        let src = format!(
            "func f(a: f32[{a}], b: f32[{b}]) -> f32[{out}] {{\n  y = dot_general(a, b, contract={contract}, batch={batch})\n  return y\n}}"
        );
        (name, src, macs)
    };
    vec![
        dot(
            "NTK step: contract 32·512, batch 16",
            "16,10,32,512",
            "16,10,512,16,32",
            "16,10,16,10",
            "[[2,3],[4,2]]",
            "[[0],[3]]",
            16 * 10 * 160 * 32 * 512,
        ),
        dot(
            "NTK step: K = 32, output 16·1280·512",
            "16,10,32,128",
            "16,32,16,32",
            "16,10,128,16,32",
            "[[2],[1]]",
            "[[0],[0]]",
            16 * 1280 * 512 * 32,
        ),
        dot(
            "attention-like batched",
            "16,32,128",
            "16,128,32",
            "16,32,32",
            "[[2],[1]]",
            "[[0],[0]]",
            16 * 32 * 32 * 128,
        ),
        dot(
            "transposed lhs matmul xᵀ·y",
            "512,256",
            "512,384",
            "256,384",
            "[[0],[0]]",
            "[[],[]]",
            256 * 384 * 512,
        ),
        dot(
            "two axes, rhs permuted",
            "64,32,128",
            "128,96,32",
            "64,96",
            "[[1,2],[2,0]]",
            "[[],[]]",
            64 * 96 * 32 * 128,
        ),
        dot(
            "long K: a·aᵀ, K = 2^18",
            "32,262144",
            "32,262144",
            "32,32",
            "[[1],[1]]",
            "[[],[]]",
            32 * 32 * 262_144,
        ),
        dot("MLP layer", "32,784", "784,512", "32,512", "[[1],[0]]", "[[],[]]", 32 * 784 * 512),
        dot(
            "matrix–vector, transposed matrix",
            "2048,2048",
            "2048",
            "2048",
            "[[0],[0]]",
            "[[],[]]",
            2048 * 2048,
        ),
        dot("matrix–vector", "2048,2048", "2048", "2048", "[[1],[0]]", "[[],[]]", 2048 * 2048),
        dot("dot product, K = 2^22", "4194304", "4194304", "", "[[0],[0]]", "[[],[]]", 1 << 22),
        dot(
            "batched, both operands permuted",
            "8,64,16,64",
            "64,16,8,48",
            "8,64,48",
            "[[1,2],[0,1]]",
            "[[0],[2]]",
            8 * 64 * 48 * 64 * 16,
        ),
    ]
}

fn main() {
    let threads = std::env::args().nth(1).and_then(|t| t.parse().ok()).unwrap_or(0);
    println!(
        "{:<40} {:>12} {:>10} {:>9}  path",
        "contraction", "multiply-adds", "median ms", "GFLOP/s"
    );
    for (name, src, macs) in shapes() {
        let f = text::parse(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = compile_with(&f, Options { threads, ..Options::default() }).unwrap();
        let xs: Vec<Tensor> = f
            .params()
            .iter()
            .map(|p| {
                let v: Vec<f64> =
                    (0..p.ty.numel()).map(|i| ((i % 97) as f64 - 48.0) / 97.0).collect();
                Tensor::from_f64(&p.ty, &v).unwrap()
            })
            .collect();
        let args: Vec<&Tensor> = xs.iter().collect();
        let runs = if macs > 100_000_000 { 7 } else { 21 };
        let mut ts = Vec::new();
        for _ in 0..runs + 1 {
            let t = Instant::now();
            std::hint::black_box(c.call(&args).unwrap());
            ts.push(t.elapsed().as_secs_f64());
        }
        ts.remove(0); // the first call grows the scratch buffers
        ts.sort_by(f64::total_cmp);
        let t = ts[ts.len() / 2];
        let label =
            c.step_labels().iter().find(|l| l.starts_with("dot")).cloned().unwrap_or_default();
        let how = label.split_once(" (").map_or("", |x| x.1.trim_end_matches(')')).to_string();
        println!(
            "{name:<40} {macs:>12.3e} {:>10.3} {:>9.1}  {how}",
            t * 1e3,
            2.0 * macs as f64 / t / 1e9
        );
    }
}
