//! An embedding model — `i32` tokens looked up in a table by `gather`, the mean over tokens,
//! then a dense layer with `tanh` and a readout — has the kernel w.r.t. all its float
//! parameters (named by the glob `*`, which skips the tokens) that the product of dense
//! Jacobians built by the reference interpreter (one-hot VJPs: rows of J) gives, through the
//! JIT with each strategy in f64 and the automatic one in f32. Tokens repeat within and across
//! examples (so `scatter_add` sums several rows) and include indices past both ends of the
//! table (clamped).

mod common;

use common::{assert_within, dense_jacobian_rows, kernel_from_rows};
use jjt::{Kernel, RandomState, Role, Strategy, Tensor, TensorType};

const B: usize = 3;
const VOCAB: usize = 7;

const MODEL: &str = "func embed(tok: i32[5], emb: f32[7,4], w1: f32[4,4], b1: f32[4], w2: f32[4,3], b2: f32[3]) -> f32[3] {
  e = mean(gather(emb, tok, axis=0), axes=[0])
  h = tanh(e @ w1 + b1)
  return h @ w2 + b2
}
";

/// Tokens of example `b` on side `s`: repeats, and indices past both ends (−2 reads row 0, 9
/// and 100 the last row).
fn tokens(s: usize, b: usize) -> Vec<i32> {
    let all = [[3, 3, -2, 6, 1], [0, 9, 2, 2, 5], [4, 100, 3, 0, 3], [1, 1, 1, 6, 6]];
    all[(s + b) % all.len()].to_vec()
}

/// The kernel's inputs in its layout: tokens per side (batched), parameters N(0, 1/fan_in)
/// for matrices and 0.3·N(0, 1) otherwise, rounded to f32 so both precisions see one set.
fn inputs(rng: &mut RandomState, layout: &[(String, Role, TensorType)]) -> Vec<Tensor> {
    layout
        .iter()
        .map(|(_, role, ty)| {
            let dims = ty.shape.dims().to_vec();
            if let Role::Side(s, _) = role {
                let v: Vec<i32> = (0..B).flat_map(|b| tokens(usize::from(*s), b)).collect();
                return Tensor::i32(dims, v).unwrap();
            }
            let r = rng.randn_f64(dims.clone()).unwrap().to_f64_vec();
            let scale = if dims.len() == 2 { 1.0 / (dims[0] as f64).sqrt() } else { 0.3 };
            Tensor::f64(dims, r.iter().map(|&v| f64::from((v * scale) as f32)).collect()).unwrap()
        })
        .collect()
}

fn to_f32(t: &Tensor) -> Tensor {
    match t.dtype() {
        jjt::DType::F64 => {
            Tensor::f32(t.shape.clone(), t.to_f64_vec().iter().map(|&v| v as f32).collect())
                .unwrap()
        }
        _ => t.clone(),
    }
}

#[test]
fn embedding_kernel_matches_dense_interpreter_jacobians() {
    let f = jjt::ir::text::parse(MODEL).unwrap();
    let f64_model = jjt::promote_f64(&f).unwrap();
    let params: Vec<&str> = f.params()[1..].iter().map(|p| p.name.as_str()).collect();
    let kernel = |m| Kernel::new(m).wrt(vec!["*"]).shared(params.clone()).batch(B, B);
    let base = kernel(&f64_model);
    let layout = base.layout(jjt::Form::Kernel).unwrap();
    let data = inputs(&mut RandomState::new(5), &layout);

    // The reference: per example, the parameters and that example's tokens.
    let args = |s: u8, b: usize| -> Vec<Tensor> {
        let mut a = vec![Tensor::i32([5], tokens(usize::from(s), b)).unwrap()];
        for (i, (_, role, _)) in layout.iter().enumerate() {
            if let Role::Shared(_) = role {
                a.push(data[i].clone());
            }
        }
        a
    };
    let j1: Vec<_> = (0..B).map(|b| dense_jacobian_rows(&f64_model, &["*"], &args(1, b))).collect();
    let j2: Vec<_> = (0..B).map(|b| dense_jacobian_rows(&f64_model, &["*"], &args(2, b))).collect();
    let width = j1[0][0].len();
    assert_eq!(width, VOCAB * 4 + 16 + 4 + 12 + 3, "J has a column per float parameter");
    let want = kernel_from_rows(&j1, &j2);
    let refs: Vec<&Tensor> = data.iter().collect();
    // f64: sums of at most 63 products (the columns of J) against the JIT's per-layer sums of
    // fewer terms; with |terms| within a small factor of the largest entry, 1e-12 of it bounds
    // 63·u·Σ|terms| (u = 1.1e-16) with room, and fails any wrong value.
    for (s, k) in [
        ("auto", base.clone()),
        ("ntvp", base.clone().strategy(Strategy::Ntvp)),
        ("jc", base.clone().strategy(Strategy::Jc)),
    ] {
        let got = k.compile().unwrap().call(&refs).unwrap().remove(0);
        assert_eq!(got.shape.dims(), &[B, B, 3, 3], "{s}");
        assert_within(&format!("f64 {s}"), &got.to_f64_vec(), &want, 1e-12);
    }
    // f32 (u = 6.0e-8) through a mean of 5 rows, two layers of 4 and the products of
    // Jacobians (≤ 63 terms): well below 1e-5 of the largest entry; a wrong value is off by O(1).
    let wide: Vec<Tensor> = data.iter().map(to_f32).collect();
    let refs: Vec<&Tensor> = wide.iter().collect();
    let got = kernel(&f).compile().unwrap().call(&refs).unwrap().remove(0);
    assert_within("f32 auto", &got.to_f64_vec(), &want, 1e-5);

    // The tokens cannot be differentiated.
    let err = Kernel::new(&f).wrt(vec!["tok"]).compile().unwrap_err().to_string();
    assert!(err.contains("cannot differentiate with respect to `tok`"), "{err}");
}
