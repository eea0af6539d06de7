//! The seed question: f(x) = sqrt(A x / N) with A = rand(5, 10000) after np.random.seed(1701),
//! and x1, x2 = rand(10000) drawn next. This traces f from a Rust closure, prints its graph,
//! and evaluates f at x1 and x2 with the reference interpreter. (The kernel
//! K = J(x1)·J(x2)ᵀ builds on this graph.)

use jjt::{DType, RandomState, trace};

const N: usize = 10_000;
const M: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let f = trace("f", |t| {
        let x = t.input("x", DType::F32, [N]);
        let a = t.uniform(DType::F32, [M, N], 1701).named("a");
        let y = a.matmul(&x).named("y");
        (y / N as f64).sqrt()
    })?;
    println!("traced graph:\n{}", jjt::text::print(&f));

    // The same data a NumPy script makes after np.random.seed(1701).
    let mut rng = RandomState::new(1701);
    rng.skip_uniform(M * N);
    let x1 = rng.rand_f32([N])?;
    let x2 = rng.rand_f32([N])?;
    for (name, x) in [("x1", x1), ("x2", x2)] {
        let y = jjt::eval(&f, &[x])?;
        let cells: Vec<String> = y.to_f64_vec().iter().map(|v| format!("{:.7e}", v)).collect();
        println!("f({name}) = [{}]", cells.join(" "));
    }
    Ok(())
}
