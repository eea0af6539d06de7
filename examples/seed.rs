//! The seed question: f(x) = sqrt(A x / N) with A = rand(5, 10000) after np.random.seed(1701),
//! and x1, x2 = rand(10000) drawn next, in f32. Prints K = J(x1)·J(x2)ᵀ, computed by jjt without
//! building J (jvp∘vjp over the output basis), and the same K from the explicit Jacobians
//! J = diag(0.5 / sqrt(A x / N))·A / N multiplied out in f64, for comparison.

use jjt::{DType, Kernel, RandomState, trace};

const N: usize = 10_000;
const M: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let f = trace("f", |t| {
        let x = t.input("x", DType::F32, [N]);
        let a = t.uniform(DType::F32, [M, N], 1701).named("a");
        let y = a.matmul(&x).named("y");
        (y / N as f64).sqrt()
    })?;
    println!("f:\n{}", jjt::text::print(&f));
    let kernel = Kernel::new(&f).wrt(["x"]).build()?;

    // The same data a NumPy script makes after np.random.seed(1701).
    let mut rng = RandomState::new(1701);
    let a = rng.rand_f32([M, N])?.to_f64_vec();
    let x1 = rng.rand_f32([N])?;
    let x2 = rng.rand_f32([N])?;

    let k = jjt::eval(&kernel, &[x1.clone(), x2.clone()])?.to_f64_vec();
    println!("K = J(x1)·J(x2)ᵀ from jjt (f32):");
    print_matrix(&k);

    let jac = |x: &[f64]| -> Vec<f64> {
        let mut j = vec![0.0; M * N];
        for i in 0..M {
            let y: f64 = (0..N).map(|c| a[i * N + c] * x[c]).sum::<f64>() / N as f64;
            for c in 0..N {
                j[i * N + c] = 0.5 / y.sqrt() * a[i * N + c] / N as f64;
            }
        }
        j
    };
    let (j1, j2) = (jac(&x1.to_f64_vec()), jac(&x2.to_f64_vec()));
    let explicit: Vec<f64> = (0..M * M)
        .map(|r| (0..N).map(|c| j1[(r / M) * N + c] * j2[(r % M) * N + c]).sum())
        .collect();
    println!("K from the explicit Jacobians (f64):");
    print_matrix(&explicit);
    let worst = k.iter().zip(&explicit).map(|(p, q)| ((p - q) / q).abs()).fold(0.0, f64::max);
    println!("largest relative difference: {worst:.1e}");
    Ok(())
}

fn print_matrix(k: &[f64]) {
    for row in k.chunks(M) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.7e}")).collect();
        println!("  [{}]", cells.join(" "));
    }
}
