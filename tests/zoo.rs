//! The model zoo (`benches/models/*.jjt`, written by `benches/models/gen.py`): every model
//! parses and type-checks, and its kernel w.r.t. all parameters, on a batch of two examples per
//! side, equals the product of dense Jacobians built by the reference interpreter (one-hot VJPs:
//! rows of J), through the JIT with each strategy in f64 and with the automatic one in f32.
//!
//! Zoo convention: the per-side input comes first (`x`, or `tok`: token ids, i32, indexing the
//! rows of the first rank-2 parameter), every other input is a parameter, shared between the
//! sides and differentiated.

mod common;

use common::{assert_within, dense_jacobian_rows, kernel_from_rows};
use jjt::{Function, Kernel, RandomState, Role, Strategy, Tensor, TensorType};

const MODELS: [&str; 6] = ["cnn", "deep", "embed", "mixer", "mlp", "transformer"];
const B: usize = 2;

fn zoo_files() -> Vec<(String, std::path::PathBuf)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/models");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jjt"))
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().to_string(), p))
        .collect();
    files.sort();
    files
}

/// The inputs of the kernel in its layout: a batch of B examples of `x` per side, N(0, 1); the
/// parameters as gen.py draws them (weights N(0, 1/fan_in), vectors 0.1·N(0, 1), layernorm gains
/// 1 + 0.1·N(0, 1)). Every value is rounded to f32, so the f32 and f64 kernels see the same data.
fn inputs(rng: &mut RandomState, layout: &[(String, Role, TensorType)]) -> Vec<Tensor> {
    // Token ids index the rows of the first rank-2 parameter (the embedding table).
    let rows = layout.iter().find(|(_, r, t)| !matches!(r, Role::Side(..)) && t.rank() == 2);
    let rows = rows.map_or(1, |(_, _, t)| t.shape.dims()[0]);
    layout
        .iter()
        .map(|(name, role, ty)| {
            let dims = ty.shape.dims().to_vec();
            if ty.dtype == jjt::DType::I32 {
                let u = rng.rand_f64(dims.clone()).unwrap().to_f64_vec();
                let ids =
                    u.iter().map(|v| ((v * rows as f64) as i32).min(rows as i32 - 1)).collect();
                return Tensor::i32(dims, ids).unwrap();
            }
            let r = rng.randn_f64(dims.clone()).unwrap().to_f64_vec();
            let v: Vec<f64> = match role {
                Role::Side(..) => r,
                _ if dims.len() == 2 => r.iter().map(|v| v / (dims[0] as f64).sqrt()).collect(),
                _ if name.starts_with('g') => r.iter().map(|v| 1.0 + 0.1 * v).collect(),
                _ => r.iter().map(|v| 0.1 * v).collect(),
            };
            Tensor::f64(dims, v.iter().map(|&v| f64::from(v as f32)).collect()).unwrap()
        })
        .collect()
}

fn to_f32(t: &Tensor) -> Tensor {
    if t.dtype() == jjt::DType::I32 {
        return t.clone();
    }
    Tensor::f32(t.shape.clone(), t.to_f64_vec().iter().map(|&v| v as f32).collect()).unwrap()
}

/// Example `b` of a batched tensor.
fn example(t: &Tensor, b: usize) -> Tensor {
    let inner: usize = t.shape.dims()[1..].iter().product();
    let v = t.to_f64_vec()[b * inner..(b + 1) * inner].to_vec();
    if t.dtype() == jjt::DType::I32 {
        return Tensor::i32(t.shape.dims()[1..].to_vec(), v.iter().map(|&x| x as i32).collect())
            .unwrap();
    }
    Tensor::f64(t.shape.dims()[1..].to_vec(), v).unwrap()
}

/// K[a, b, i, j] = J(x1[a])[i] · J(x2[b])[j], in f64 from the interpreter's dense Jacobians.
fn dense_kernel(
    f: &Function,
    wrt: &[&str],
    layout: &[(String, Role, TensorType)],
    inputs: &[Tensor],
) -> Vec<f64> {
    let side = |s: u8, b: usize| -> Vec<Tensor> {
        (0..f.params().len())
            .map(|i| {
                let k = layout
                    .iter()
                    .position(|(_, r, _)| *r == Role::Side(s, i) || *r == Role::Shared(i))
                    .unwrap();
                match layout[k].1 {
                    Role::Side(..) => example(&inputs[k], b),
                    _ => inputs[k].clone(),
                }
            })
            .collect()
    };
    let j1: Vec<_> = (0..B).map(|b| dense_jacobian_rows(f, wrt, &side(1, b))).collect();
    let j2: Vec<_> = (0..B).map(|b| dense_jacobian_rows(f, wrt, &side(2, b))).collect();
    kernel_from_rows(&j1, &j2)
}

#[test]
fn every_zoo_model_parses_and_its_kernel_matches_dense_interpreter_jacobians() {
    let files = zoo_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for m in MODELS {
        assert!(names.contains(&m), "benches/models/{m}.jjt is missing (found {names:?})");
    }
    let mut rng = RandomState::new(12);
    for (name, path) in &files {
        // Parses and type-checks (an error names the file, line and column).
        let f = jjt::load_model(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let side = f.params()[0].name.as_str();
        assert!(
            side == "x" || side == "tok",
            "{name}: the per-side input comes first (`x`, `tok`)"
        );
        let params: Vec<&str> = f.params()[1..].iter().map(|p| p.name.as_str()).collect();
        let f64_model = jjt::promote_f64(&f).unwrap();
        let kernel = |m| Kernel::new(m).wrt(params.clone()).shared(params.clone()).batch(B, B);

        let base = kernel(&f64_model);
        let layout = base.layout(jjt::Form::Kernel).unwrap();
        let data = inputs(&mut rng, &layout);
        let want = dense_kernel(&f64_model, &params, &layout, &data);
        let refs: Vec<&Tensor> = data.iter().collect();
        let o = f.output_type().unwrap().numel();
        assert_eq!(want.len(), B * B * o * o);

        // f64 through the JIT, each strategy: the reference sums J1·J2 over every parameter (at
        // most n = 6.7·10⁵ products, the MLP's), whose worst-case error n·u·Σ|terms| is 7.4e-11 of
        // Σ|terms| (u = 1.1e-16); the kernels sum fewer terms per product (they contract layer
        // by layer) and Σ|terms| is within a small factor of the largest entry here, so 1e-10 of
        // the largest entry bounds the difference and fails any wrong value.
        for (s, k) in [
            ("auto", base.clone()),
            ("ntvp", base.clone().strategy(Strategy::Ntvp)),
            ("jc", base.clone().strategy(Strategy::Jc)),
        ] {
            let got = k.compile().unwrap().call(&refs).unwrap().remove(0);
            assert_eq!(got.shape.dims(), &[B, B, o, o], "{name} {s}");
            assert_within(&format!("{name} f64 {s}"), &got.to_f64_vec(), &want, 1e-10);
        }

        // The model as written, in f32 (automatic strategy), on the same (f32-exact) data: f32
        // arithmetic (u = 6.0e-8) through contractions of at most 784 terms (the MLP's first
        // layer) in a few layers: the worst-case bound 784·u = 4.7e-5 of the sums of magnitudes
        // per contraction, with the layers' errors adding, stays below 1e-4 of the largest entry
        // (as for the MLP in tests/kernel_values.rs); a wrong value is off by O(1).
        let wide: Vec<Tensor> = data.iter().map(to_f32).collect();
        let refs: Vec<&Tensor> = wide.iter().collect();
        let got = kernel(&f).compile().unwrap().call(&refs).unwrap().remove(0);
        assert_eq!(got.shape.dims(), &[B, B, o, o], "{name} f32");
        assert_within(&format!("{name} f32 auto"), &got.to_f64_vec(), &want, 1e-4);
    }
}
