//! Models exported from PyTorch to ONNX (`tests/fixtures/torch/gen_torch.py`: an MLP, a CNN, a
//! transformer block, an embedding model and one of every other op the reader converts, each
//! exported with plain `torch.onnx.export`, its
//! weights in external data beside it): the forward pass equals PyTorch's, and the kernel
//! w.r.t. every weight equals the product of PyTorch's own dense Jacobians (f64) through the
//! JIT, in full and in trace mode; the f32 export gives the same kernel within f32's accuracy.

mod common;

use common::assert_within;

use jjt::import::{Loaded, load_with};
use jjt::{DType, Kernel, Role, Strategy, Tensor};

const MODELS: [&str; 5] = ["mlp", "cnn", "transformer", "embed", "ops"];
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch");

fn npy(name: &str) -> Tensor {
    Tensor::from_array(jjt::npy::read_file(format!("{DIR}/{name}").as_ref()).unwrap())
}

/// Every weight an input (the rank-0 initializers the exporter makes of the code's constants
/// stay constants, as `--wrt '*'` leaves them).
fn load(file: &str) -> Loaded {
    load_with(format!("{DIR}/{file}").as_ref(), &|_, dims| !dims.is_empty()).unwrap()
}

/// A tensor's example `b` (its leading axis dropped), as f64 or i32.
fn example(t: &Tensor, b: usize) -> Tensor {
    let inner: usize = t.shape.dims()[1..].iter().product();
    let v = t.to_f64_vec()[b * inner..(b + 1) * inner].to_vec();
    let ty = jjt::TensorType::new(
        if t.dtype() == DType::I32 { DType::I32 } else { DType::F64 },
        t.shape.dims()[1..].to_vec(),
    );
    Tensor::from_f64(&ty, &v).unwrap()
}

fn cast(t: &Tensor, to: DType) -> Tensor {
    if !matches!(t.dtype(), DType::F32 | DType::F64) {
        return t.clone();
    }
    Tensor::from_f64(&t.ty().with_dtype(to), &t.to_f64_vec()).unwrap()
}

fn kernel_inputs(m: &Loaded, k: &Kernel<'_>, model: &str, dtype: DType) -> Vec<Tensor> {
    k.layout(jjt::Form::Kernel)
        .unwrap()
        .iter()
        .map(|(name, role, _)| match role {
            Role::Side(s, _) => cast(&npy(&format!("{model}_x{s}.npy")), dtype),
            _ => m.defaults.iter().find(|(n, _)| n == name).unwrap().1.clone(),
        })
        .collect()
}

#[test]
fn pytorch_models_import_with_their_forward_pass_and_kernel() {
    for model in MODELS {
        let m = load(&format!("{model}.onnx"));
        let f = &m.function;
        let wrt: Vec<&str> = m.defaults.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!wrt.is_empty(), "{model}: no weights");
        let side: Vec<&str> =
            f.params().iter().map(|p| p.name.as_str()).filter(|n| !wrt.contains(n)).collect();
        assert_eq!(side.len(), 1, "{model}: one per-side input, got {side:?}");

        // The forward pass on the first side-1 example: PyTorch's output to rounding.
        let args: Vec<Tensor> = f
            .params()
            .iter()
            .map(|p| match m.defaults.iter().find(|(n, _)| *n == p.name) {
                Some((_, t)) => t.clone(),
                None => example(&npy(&format!("{model}_x1.npy")), 0),
            })
            .collect();
        let y = jjt::eval(f, &args).unwrap();
        assert_within(
            &format!("{model} forward"),
            &y.to_f64_vec(),
            &npy(&format!("{model}_y.npy")).to_f64_vec(),
            1e-12,
        );
        // Without a selection every initializer is a constant: one input, the same values.
        let plain = jjt::load_model(format!("{DIR}/{model}.onnx")).unwrap();
        assert_eq!(plain.params().len(), 1, "{model}");
        let x0 = example(&npy(&format!("{model}_x1.npy")), 0);
        let y0 = jjt::eval(&plain, &[x0]).unwrap();
        assert_eq!(y0.to_f64_vec(), y.to_f64_vec(), "{model}: constants or inputs, the same graph");

        // K w.r.t. every weight against PyTorch's dense Jacobians (f64; at most a few thousand
        // products per entry, u = 1.1e-16: 1e-10 of the largest entry bounds the rounding).
        // Each example is a batch of one ([1, …]), so K is [2, 3, 1, 3, 1, 3].
        let want = npy(&format!("{model}_K.npy")).to_f64_vec();
        let base = Kernel::new(f).wrt(wrt.clone()).shared(wrt.clone()).batch(2, 3);
        let data = kernel_inputs(&m, &base, model, DType::F64);
        let refs: Vec<&Tensor> = data.iter().collect();
        for (s, k) in [
            ("auto", base.clone()),
            ("jc", base.clone().strategy(Strategy::Jc)),
            ("ntvp", base.clone().strategy(Strategy::Ntvp)),
        ] {
            let got = k.compile().unwrap().call(&refs).unwrap().remove(0);
            assert_eq!(got.shape.dims(), &[2, 3, 1, 3, 1, 3], "{model} {s}");
            assert_within(&format!("{model} {s}"), &got.to_f64_vec(), &want, 1e-10);
        }
        // Trace mode: Σ_i K[a, b, i, i].
        let trace: Vec<f64> = (0..6).map(|ab| (0..3).map(|i| want[ab * 9 + i * 4]).sum()).collect();
        let got =
            base.clone().mode(jjt::Mode::Trace).compile().unwrap().call(&refs).unwrap().remove(0);
        assert_within(&format!("{model} trace"), &got.to_f64_vec(), &trace, 1e-10);

        // The f32 export: f32 arithmetic through contractions of at most a few hundred terms in
        // a few layers and inputs rounded to f32: 1e-4 of the largest entry.
        let m32 = load(&format!("{model}_f32.onnx"));
        let wrt32: Vec<&str> = m32.defaults.iter().map(|(n, _)| n.as_str()).collect();
        let k32 = Kernel::new(&m32.function).wrt(wrt32.clone()).shared(wrt32).batch(2, 3);
        let data = kernel_inputs(&m32, &k32, model, DType::F32);
        let refs: Vec<&Tensor> = data.iter().collect();
        let got = k32.compile().unwrap().call(&refs).unwrap().remove(0);
        assert_eq!(got.dtype(), DType::F32, "{model}");
        assert_within(&format!("{model} f32"), &got.to_f64_vec(), &want, 1e-4);
    }
}
