//! Shared test helpers: a seeded generator, evaluation shortcuts.
#![allow(dead_code)]

use jjt_ir::{Data, Function, Tensor, TensorType, interp};

/// xorshift64*: deterministic inputs.
pub use jjt_ir::random::XorShift64 as Rng;

/// Where an op's inputs are drawn from.
#[derive(Clone, Copy, Debug)]
pub enum Domain {
    /// Uniform in [lo, hi).
    Range(f64, f64),
    /// |x| in [lo, hi) with a random sign: away from zero.
    AwayFromZero(f64, f64),
}

pub fn sample(rng: &mut Rng, d: Domain, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| match d {
            Domain::Range(lo, hi) => rng.uniform(lo, hi),
            Domain::AwayFromZero(lo, hi) => {
                let v = rng.uniform(lo, hi);
                if rng.next_u64() & 1 == 1 { v } else { -v }
            }
        })
        .collect()
}

pub fn tensor(ty: &TensorType, v: Vec<f64>) -> Tensor {
    Tensor::from_f64(ty, &v).unwrap()
}

pub fn eval(f: &Function, args: &[Tensor]) -> Vec<Tensor> {
    interp::eval_outputs(f, args)
        .unwrap_or_else(|e| panic!("eval {}: {e}\n{}", f.name, jjt_ir::text::print(f)))
}

/// Inner product and the sum of |terms| (the scale of its rounding error).
pub fn dot(a: &[f64], b: &[f64]) -> (f64, f64) {
    let s = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let abs = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    (s, abs)
}

pub fn bits(t: &Tensor) -> Vec<u64> {
    match &t.data {
        Data::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
        Data::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        Data::I32(v) => v.iter().map(|&x| u64::from(x as u32)).collect(),
        Data::Bool(v) => v.iter().map(|&b| u64::from(b)).collect(),
    }
}
