//! Plans that keep values fused which a plain plan would store: a contraction with nothing
//! contracted (an elementwise product over the output's axes, such as a structured NTK's
//! `G ⊙ (H·Hᵀ)` terms) fused into the sum of such terms, and a cheap comparison (a relu's mask)
//! reshaped and broadcast into the loop that reads it. Each is checked against the interpreter
//! (bit for bit in strict mode, where the product of one term is exactly one rounded product,
//! as the interpreter's sum of one term; within a few roundings in fast mode, which may fuse
//! the multiply-adds) and by its step count, which shows the fusion happened.

use jjt_ir::random::XorShift64;
use jjt_ir::{DType, Function, Tensor, TensorType, interp, text};
use jjt_jit::{Options, compile_with};

/// Seeded values in [-1, 1), from the project's test generator.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut g = XorShift64(seed | 1);
    (0..n).map(|_| g.uniform(-1.0, 1.0)).collect()
}

fn inputs(f: &Function) -> Vec<Tensor> {
    f.params()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ty: &TensorType = &p.ty;
            Tensor::from_f64(ty, &values(ty.numel(), 7 + i as u64)).unwrap()
        })
        .collect()
}

/// The JIT's result and step count, and the interpreter's result.
fn run(src: &str, opts: Options) -> (Vec<f64>, usize, Vec<f64>) {
    let f = text::parse(src).unwrap();
    let xs = inputs(&f);
    let refs: Vec<&Tensor> = xs.iter().collect();
    let c = compile_with(&f, opts).unwrap();
    let got = c.call(&refs).unwrap().remove(0).to_f64_vec();
    let want = interp::eval(&f, &xs).unwrap().to_f64_vec();
    (got, c.steps(), want)
}

fn check(src: &str, steps: usize) {
    for d in [DType::F32, DType::F64] {
        let src = src.replace("f32", if d == DType::F32 { "f32" } else { "f64" });
        // Strict: the same bits as the interpreter.
        let (got, n, want) = run(&src, Options { strict: true, ..Options::default() });
        assert_eq!(n, steps, "{src}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.to_bits(), w.to_bits(), "{src}: {g:e} vs {w:e}");
        }
        // Fast: each output is at most a few products and sums of terms in [-1, 1); a fused
        // multiply-add skips one rounding per term, so the difference is within
        // (terms + 1)·u·Σ|terms| ≤ 8·u·8 here.
        let u = if d == DType::F32 { f32::EPSILON as f64 / 2.0 } else { f64::EPSILON / 2.0 };
        let (got, n, want) = run(&src, Options::default());
        assert_eq!(n, steps, "{src}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 64.0 * u, "{src}: {g:e} vs {w:e}");
        }
    }
}

#[test]
fn products_with_nothing_contracted_fuse_into_their_sum() {
    // Two terms G_l[b1, i, b2, j]·H_l[b1, b2] laid out as [b1, b2, i, j], summed: one loop.
    check(
        "func f(g1: f32[4,3,5,2], h1: f32[4,5], g2: f32[4,3,5,2], h2: f32[4,5]) -> f32[4,5,3,2] {\n\
         \x20 a = dot_general(g1, h1, contract=[[],[]], batch=[[0,2],[0,1]])\n\
         \x20 b = dot_general(g2, h2, contract=[[],[]], batch=[[0,2],[0,1]])\n\
         \x20 return a + b\n}",
        1,
    );
    // An outer product (no batch axes either) fused into an elementwise step.
    check(
        "func f(x: f32[6], y: f32[7], z: f32[6,7]) -> f32[6,7] {\n\
         \x20 p = dot_general(x, y, contract=[[],[]], batch=[[],[]])\n\
         \x20 return p * z - z\n}",
        1,
    );
}

#[test]
fn a_cheap_mask_is_recomputed_through_reshape_and_broadcast() {
    // The relu pattern of a batched VJP: the mask of z > 0, reshaped to [4, 1, 8] and broadcast
    // over 3 cotangents, selects the cotangent or zero. z is stored (two users); the mask is
    // not: one step for z, one for the select.
    check(
        "func f(a: f32[4,8], b: f32[4,8], c: f32[4,3,8]) -> f32[4,3,8] {\n\
         \x20 z = a + b\n\
         \x20 m = z > 0.0\n\
         \x20 m3 = broadcast_to(reshape(m, shape=[4,1,8]), shape=[4,3,8])\n\
         \x20 zero = full(f32[4,3,8], 0.0)\n\
         \x20 s = select(m3, c, zero)\n\
         \x20 return s + broadcast_to(reshape(relu(z), shape=[4,1,8]), shape=[4,3,8])\n}",
        2,
    );
}

#[test]
fn a_fused_value_reshaped_by_splitting_axes_stays_fused() {
    // A comparison of stored values (cheap, one user) reshaped [4, 6] → [4, 2, 3], and a scaled
    // transpose reshaped by splitting its leading axis: both are read in place by the select,
    // one step in all.
    check(
        "func f(a: f32[4,6], b: f32[4,6], c: f32[4,2,3], t: f32[3,2,4]) -> f32[4,2,3] {\n\
         \x20 m = reshape(a > b, shape=[4,2,3])\n\
         \x20 u = reshape(transpose(t, perm=[2,1,0]) * 2.0, shape=[2,2,2,3])\n\
         \x20 return select(m, c, reshape(u, shape=[4,2,3]))\n}",
        1,
    );
    // The form `layout` gives a pool's upsampled cotangent under a relu select: the select in
    // the broadcast's shape, its mask reshaped there; neither the broadcast (read in place,
    // stride 0) nor the mask is stored: one step for the select, stored because its reshape
    // merges the broadcast axes, one for the product that reads it.
    check(
        "func f(x: f32[2,3,1,4,1,5], z: f32[2,6,8,5]) -> f32[2,6,8,5] {\n\
         \x20 u = broadcast_to(x, shape=[2,3,2,4,2,5])\n\
         \x20 m = reshape(z > 0.0, shape=[2,3,2,4,2,5])\n\
         \x20 s = select(m, u, full(f32[2,3,2,4,2,5], 0.0))\n\
         \x20 return reshape(s, shape=[2,6,8,5]) * z\n}",
        2,
    );
}
