//! Models exported from JAX as StableHLO text (`tests/fixtures/jax/gen_jax.py`: an MLP, a CNN,
//! a transformer block, an embedding model, and one of every other op the reader converts),
//! read by `jjt::load_model`: the forward pass
//! equals JAX's, and the kernel w.r.t. every parameter equals the product of JAX's own dense
//! Jacobians (f64), in full and in trace mode, through the JIT; the f32 export gives the same
//! kernel within f32's accuracy; the module printed in MLIR's generic syntax gives the same graph.

mod common;

use common::assert_within;

use jjt::{DType, Kernel, Mode, Role, Strategy, Tensor};

const MODELS: [&str; 5] = ["mlp", "cnn", "transformer", "embed", "ops"];
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jax");

fn npy(name: &str) -> Tensor {
    Tensor::from_array(jjt::npy::read_file(format!("{DIR}/{name}").as_ref()).unwrap())
}

fn params(model: &str) -> Vec<(String, Tensor)> {
    let arrays = jjt::npy::read_npz_file(format!("{DIR}/{model}.npz").as_ref()).unwrap();
    arrays.into_iter().map(|(k, a)| (k, Tensor::from_array(a))).collect()
}

fn to_f32(t: &Tensor) -> Tensor {
    if t.dtype() != DType::F64 {
        return t.clone();
    }
    Tensor::f32(t.shape.clone(), t.to_f64_vec().iter().map(|&v| v as f32).collect()).unwrap()
}

/// The kernel's inputs in its layout: the per-side examples from the fixtures, the
/// parameters from the archive by name.
fn inputs(model: &str, k: &Kernel<'_>) -> Vec<Tensor> {
    let p = params(model);
    k.layout(jjt::Form::Kernel)
        .unwrap()
        .iter()
        .map(|(name, role, _)| match role {
            Role::Side(s, _) => npy(&format!("{model}_x{s}.npy")),
            _ => p
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{model}: {name}"))
                .1
                .clone(),
        })
        .collect()
}

#[test]
fn jax_models_import_with_their_forward_pass_and_kernel() {
    for model in MODELS {
        let f = jjt::load_model(format!("{DIR}/{model}.mlir")).unwrap();
        let names: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
        let wrt: Vec<&str> =
            names.iter().map(String::as_str).filter(|n| n.starts_with("params.")).collect();
        let side = names.iter().find(|n| !n.starts_with("params.")).unwrap();

        // The forward pass on the first side-1 example: JAX's output, to rounding (the same
        // f64 operations in possibly another order; 1e-12 of the largest output).
        let p = params(model);
        let args: Vec<Tensor> = f
            .params()
            .iter()
            .map(|q| {
                if q.name == *side {
                    let x = npy(&format!("{model}_x1.npy"));
                    let inner: usize = x.shape.dims()[1..].iter().product();
                    let v = x.to_f64_vec()[..inner].to_vec();
                    let dims = x.shape.dims()[1..].to_vec();
                    if x.dtype() == DType::I32 {
                        Tensor::i32(dims, v.iter().map(|&t| t as i32).collect()).unwrap()
                    } else {
                        Tensor::f64(dims, v).unwrap()
                    }
                } else {
                    p.iter().find(|(n, _)| *n == q.name).unwrap().1.clone()
                }
            })
            .collect();
        let y = jjt::eval(&f, &args).unwrap();
        assert_within(
            &format!("{model} forward"),
            &y.to_f64_vec(),
            &npy(&format!("{model}_y.npy")).to_f64_vec(),
            1e-12,
        );

        // The module printed in MLIR's generic syntax is the same graph.
        let generic = jjt::load_model(format!("{DIR}/{model}_generic.mlir")).unwrap();
        let text = jjt::text::print(&generic).replacen(
            &format!("{model}_generic("),
            &format!("{model}("),
            1,
        );
        assert_eq!(text, jjt::text::print(&f), "{model}: generic syntax");

        // K full, each strategy, against JAX's dense Jacobians: sums of at most a few thousand
        // f64 products on each side (u = 1.1e-16), so 1e-10 of the largest entry bounds the
        // rounding and fails any wrong value.
        let want = npy(&format!("{model}_K.npy"));
        assert_eq!(want.shape.dims(), &[2, 3, 3, 3], "{model}");
        let base = Kernel::new(&f).wrt(wrt.clone()).shared(wrt.clone()).batch(2, 3);
        let data = inputs(model, &base);
        let refs: Vec<&Tensor> = data.iter().collect();
        for (s, k) in [
            ("auto", base.clone()),
            ("jc", base.clone().strategy(Strategy::Jc)),
            ("ntvp", base.clone().strategy(Strategy::Ntvp)),
        ] {
            let got = k.compile().unwrap().call(&refs).unwrap().remove(0);
            assert_eq!(got.shape.dims(), &[2, 3, 3, 3], "{model} {s}");
            assert_within(&format!("{model} {s}"), &got.to_f64_vec(), &want.to_f64_vec(), 1e-10);
        }
        // Trace mode: Σ_i K[a, b, i, i].
        let w = want.to_f64_vec();
        let trace: Vec<f64> = (0..6).map(|ab| (0..3).map(|i| w[ab * 9 + i * 4]).sum()).collect();
        let got = base.clone().mode(Mode::Trace).compile().unwrap().call(&refs).unwrap().remove(0);
        assert_within(&format!("{model} trace"), &got.to_f64_vec(), &trace, 1e-10);

        // The f32 export on the same data rounded to f32: f32 arithmetic (u = 6.0e-8) through
        // contractions of at most 72 terms in a few layers, plus the inputs' rounding (u each,
        // amplified by the models' Lipschitz constants of order 1): 1e-4 of the largest entry.
        let f32_model = jjt::load_model(format!("{DIR}/{model}_f32.mlir")).unwrap();
        let k32 = Kernel::new(&f32_model).wrt(wrt.clone()).shared(wrt.clone()).batch(2, 3);
        let wide: Vec<Tensor> = inputs(model, &k32).iter().map(to_f32).collect();
        let refs: Vec<&Tensor> = wide.iter().collect();
        let got = k32.compile().unwrap().call(&refs).unwrap().remove(0);
        assert_eq!(got.dtype(), DType::F32, "{model}");
        assert_within(&format!("{model} f32"), &got.to_f64_vec(), &want.to_f64_vec(), 1e-4);
    }
}
