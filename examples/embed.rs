//! The smallest host program: trace f, build and compile its kernel, call it.
//! (The empirical NTK of a one-layer tanh network with respect to its weights.)

use jjt::{DType, Kernel, Tensor, trace};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // f(x; w) = tanh(x·w), x: [3], w: [3, 2].
    let f = trace("f", |t| {
        let x = t.input("x", DType::F64, [3]);
        let w = t.input("w", DType::F64, [3, 2]);
        x.matmul(&w).tanh()
    })?;
    // K(x1, x2) = J(x1)·J(x2)ᵀ with J = ∂f/∂w; w has one value for both sides.
    let kernel = Kernel::new(&f).wrt(["w"]).shared(["w"]).compile()?;
    let x1 = Tensor::f64([3], vec![0.1, 0.2, 0.3])?;
    let x2 = Tensor::f64([3], vec![-0.5, 0.4, 1.0])?;
    let w = Tensor::f64([3, 2], vec![0.3, -0.2, 0.8, 0.1, -0.4, 0.5])?;
    // Inputs in the kernel's order: side 1, side 2, shared.
    let k = kernel.call(&[&x1, &x2, &w])?.remove(0);
    println!("K(x1, x2) {:?} = {:?}", k.shape, k.to_f64_vec());
    Ok(())
}
