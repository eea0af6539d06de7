//! The f32 matrix multiply of the runtime contraction (`jjt_jit::gemm::matmul_f32`) against
//! the `matrixmultiply` crate, on the shapes that dominate kernels of the zoo, one thread,
//! alternating the two in each of 9 rounds; prints the median µs of each and their ratio.
//! A row of several products gives each its own A and C (B shared), as the products of a
//! batched contraction step are: their C is fresh memory each time.
//!
//! `cargo run --release -p jjt-jit --example gemm_kernels`

use std::time::Instant;

use jjt_jit::gemm::{Strided, has_own_kernel, matmul_f32};

/// Row and column strides.
type Strides = (isize, isize);

/// (what, products, m, k, n, A's strides, B's strides); c is row-major.
type Shape = (&'static str, usize, usize, usize, usize, Strides, Strides);

const SHAPES: [Shape; 9] = [
    (
        "160×1024×160, A·Bᵀ, rows 16384 apart (a block of a Gram product of Jacobians)",
        1,
        160,
        1024,
        160,
        (16384, 1),
        (1, 16384),
    ),
    (
        "40960×576×32 (a convolution's patches times its kernel)",
        1,
        40960,
        576,
        32,
        (576, 1),
        (32, 1),
    ),
    (
        "80 products 512×32×128, Aᵀ·B (per-example Jacobians times inputs)",
        80,
        512,
        32,
        128,
        (1, 512),
        (128, 1),
    ),
    ("10×1024×160, A·Bᵀ (a head of 10 outputs)", 1, 10, 1024, 160, (1024, 1), (1, 1024)),
    ("512×256×512", 1, 512, 256, 512, (256, 1), (512, 1)),
    ("1024×576×1024, A·Bᵀ (a patch Gram product)", 1, 1024, 576, 1024, (576, 1), (1, 576)),
    (
        "320×64×320, A·Bᵀ (a Gram product of a narrow layer's cotangents)",
        1,
        320,
        64,
        320,
        (64, 1),
        (1, 64),
    ),
    ("320×64×64, A·Wᵀ (a cotangent through a 64×64 weight)", 1, 320, 64, 64, (64, 1), (1, 64)),
    (
        "10 products 32×1024×28, Aᵀ·B (channels of a cotangent times 28 columns of patches)",
        10,
        32,
        1024,
        28,
        (1, 32),
        (1, 1024),
    ),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Elements an m×n matrix with strides (rs, cs ≥ 0) spans.
fn span(m: usize, n: usize, (rs, cs): (isize, isize)) -> usize {
    (m - 1) * rs as usize + (n - 1) * cs as usize + 1
}

fn main() {
    println!("f32, 1 thread, median µs of 9 rounds; own kernel on this host: {}", has_own_kernel());
    println!(
        "| M×K×N, layout | matrixmultiply | own | ratio | own GFLOP/s |\n|---|---|---|---|---|"
    );
    for (what, count, m, k, n, sa, sb) in SHAPES {
        let (la, lc) = (span(m, k, sa), m * n);
        // A and B start on a cache line, as buffers of jjt's arena do (a vector load that
        // straddles two lines costs about 1.2× on this machine's dot kernel).
        let a0: Vec<f32> = (0..la * count + 16).map(|i| (i % 1000) as f32 / 1000.0 - 0.5).collect();
        let b0: Vec<f32> =
            (0..span(k, n, sb) + 16).map(|i| (i % 997) as f32 / 997.0 - 0.5).collect();
        let (a, b) = (&a0[a0.as_ptr().align_offset(64)..], &b0[b0.as_ptr().align_offset(64)..]);
        let (mut c1, mut c2) = (vec![0f32; lc * count], vec![0f32; lc * count]);
        let reps = (1e9 / (count * m * n * k) as f64).ceil().max(3.0) as usize;
        let (mut t1, mut t2) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            let s = Instant::now();
            for _ in 0..reps {
                for q in 0..count {
                    let (aq, cq) = (&a[q * la..], &mut c1[q * lc..]);
                    // SAFETY: aq, b and cq hold every element the extents and strides
                    // address (`span`), and cq is a distinct buffer.
                    unsafe {
                        matrixmultiply::sgemm(
                            m,
                            k,
                            n,
                            1.0,
                            aq.as_ptr(),
                            sa.0,
                            sa.1,
                            b.as_ptr(),
                            sb.0,
                            sb.1,
                            0.0,
                            cq.as_mut_ptr(),
                            n as isize,
                            1,
                        )
                    }
                }
            }
            t1.push(s.elapsed().as_secs_f64() / reps as f64);
            let s = Instant::now();
            for _ in 0..reps {
                for q in 0..count {
                    let av = Strided { data: &a[q * la..], rs: sa.0, cs: sa.1 };
                    let bv = Strided { data: b, rs: sb.0, cs: sb.1 };
                    let cq = &mut c2[q * lc..];
                    matmul_f32(m, k, n, av, bv, cq, n as isize, 1).expect("in bounds");
                }
            }
            t2.push(s.elapsed().as_secs_f64() / reps as f64);
        }
        let (x, y) = (median(t1) * 1e6, median(t2) * 1e6);
        let gflops = 2.0 * (count * m * n * k) as f64 / y / 1e3;
        println!("| {what} | {x:.0} | {y:.0} | {:.2} | {gflops:.1} |", x / y);
    }
}
