//! The seed question's kernel through the facade: K = J(x1)·J(x2)ᵀ for f(x) = sqrt(A x / N)
//! on NumPy's data agrees with the matrix printed in the seed question (computed there with
//! JAX) to 5 significant digits, and with the closed form diag(g1)·A·Aᵀ·diag(g2)/N²,
//! g = 0.5/sqrt(A x/N), computed here in f64.

use jjt::{DType, Kernel, RandomState, Strategy, trace};

const N: usize = 10_000;
const M: usize = 5;

fn seed_f(dtype: DType) -> jjt::Function {
    trace("f", |t| {
        let x = t.input("x", dtype, [N]);
        let a = t.uniform(dtype, [M, N], 1701);
        (a.matmul(&x) / N as f64).sqrt()
    })
    .unwrap()
}

fn closed_form(a: &[f64], x1: &[f64], x2: &[f64]) -> Vec<f64> {
    let g = |x: &[f64]| -> Vec<f64> {
        (0..M)
            .map(|i| 0.5 / ((0..N).map(|k| a[i * N + k] * x[k]).sum::<f64>() / N as f64).sqrt())
            .collect()
    };
    let (g1, g2) = (g(x1), g(x2));
    (0..M * M)
        .map(|r| {
            let (i, j) = (r / M, r % M);
            g1[i] * g2[j] * (0..N).map(|k| a[i * N + k] * a[j * N + k]).sum::<f64>()
                / (N * N) as f64
        })
        .collect()
}

fn round5(v: f64) -> String {
    format!("{v:.4e}")
}

#[test]
fn f32_kernel_matches_the_seed_question() {
    let f = seed_f(DType::F32);
    let mut rng = RandomState::new(1701);
    let a = rng.rand_f32([M, N]).unwrap().to_f64_vec();
    let x1 = rng.rand_f32([N]).unwrap();
    let x2 = rng.rand_f32([N]).unwrap();
    let printed_first_row =
        [3.3123782e-05, 2.5001222e-05, 2.4946943e-05, 2.5180108e-05, 2.4940484e-05];
    let closed = closed_form(&a, &x1.to_f64_vec(), &x2.to_f64_vec());
    for strategy in [Strategy::Ntvp, Strategy::Jc] {
        let k = Kernel::new(&f).wrt(["x"]).strategy(strategy).build().unwrap();
        let got = jjt::eval(&k, &[x1.clone(), x2.clone()]).unwrap().to_f64_vec();
        for (g, w) in got.iter().zip(printed_first_row) {
            assert_eq!(round5(*g), round5(w), "{strategy}: {g:e} vs the seed's {w:e}");
            assert!(((g - w) / w).abs() < 1e-5, "{strategy}: {g:e} vs the seed's {w:e}");
        }
        // f32: each entry sums 10^4 products in f32 (sqrt(n)·u ≈ 6e-6 typical); 2e-5 allows
        // for the unlucky accumulation orders.
        for (g, w) in got.iter().zip(&closed) {
            assert!(((g - w) / w).abs() < 2e-5, "{strategy}: {g:e} vs closed form {w:e}");
        }
    }
}

#[test]
fn f64_kernel_matches_closed_form() {
    let f = seed_f(DType::F64);
    let mut rng = RandomState::new(1701);
    let a = rng.rand_f64([M, N]).unwrap().to_f64_vec();
    let x1 = rng.rand_f64([N]).unwrap();
    let x2 = rng.rand_f64([N]).unwrap();
    let closed = closed_form(&a, &x1.to_f64_vec(), &x2.to_f64_vec());
    for strategy in [Strategy::Ntvp, Strategy::Jc] {
        let k = Kernel::new(&f).wrt(["x"]).strategy(strategy).build().unwrap();
        let got = jjt::eval(&k, &[x1.clone(), x2.clone()]).unwrap().to_f64_vec();
        // Sums of 10^4 positive terms: n·u·Σ|terms| bounds the relative error by 1.1e-12 per
        // sum; the closed form and the kernel each round a few such sums.
        for (g, w) in got.iter().zip(&closed) {
            assert!(((g - w) / w).abs() < 1e-11, "{strategy}: {g:e} vs closed form {w:e}");
        }
    }
}
