//! `conv` in the JIT against the interpreter (itself checked against JAX in jjt-ir's
//! `ops_numpy` test, on the same models).
//!
//! - Every JAX fixture model (`crates/jjt-ir/tests/fixtures/ops_conv`: strides, padding
//!   including negative, input and kernel dilation, feature and batch groups, 1 to 3 spatial
//!   axes, mixed layouts) and larger ones that take the matrix multiply with packed patches:
//!   strict mode bit for bit; fast mode within `2·(K + 1)·u·Σ|terms|` per element (both orders
//!   are within K·u·Σ|terms| of the exact sum, K products per output, +1 for the result's
//!   rounding), with `Σ|terms|` the convolution of the absolute values; the same bits for 1, 2
//!   and 3 threads.

use std::path::PathBuf;

use jjt_ir::{DType, Function, Tensor, interp, text};
use jjt_jit::{Options, compile_with};

fn load(path: &std::path::Path) -> Tensor {
    Tensor::from_array(jjt_npy::read_file(path).unwrap())
}

/// Σ|terms| per output: the model on the absolute values of its inputs.
fn abs_terms(f: &Function, inputs: &[Tensor]) -> Vec<f64> {
    let abs: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            let v: Vec<f64> = t.to_f64_vec().iter().map(|x| x.abs()).collect();
            Tensor::from_f64(&t.ty(), &v).unwrap()
        })
        .collect();
    interp::eval(f, &abs).unwrap().to_f64_vec()
}

/// Products per output element of the model's single conv: window taps × kernel inputs.
fn terms(f: &Function) -> usize {
    for n in f.node_ids() {
        let node = f.node(n).unwrap();
        if let jjt_ir::Op::Conv(c) = &node.op {
            let k = f.node(f.operands(n)[1]).unwrap().ty.shape.0.clone();
            return c.dims.rhs[1..].iter().map(|&a| k[a]).product();
        }
    }
    panic!("no conv in {}", text::print(f));
}

fn check(name: &str, f: &Function, inputs: &[Tensor]) -> Vec<String> {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let want = interp::eval(f, inputs).unwrap().to_f64_vec();
    let strict = compile_with(f, Options { strict: true, ..Options::default() }).unwrap();
    let got = strict.call(&refs).unwrap().remove(0).to_f64_vec();
    assert!(
        got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()),
        "{name}: strict mode differs from the interpreter"
    );
    let abs = abs_terms(f, inputs);
    let u = if f.output_type().unwrap().dtype == DType::F32 {
        f64::from(f32::EPSILON) / 2.0
    } else {
        f64::EPSILON / 2.0
    };
    let k = terms(f) as f64;
    let mut first: Option<Vec<f64>> = None;
    let mut labels = Vec::new();
    for threads in [1, 2, 3] {
        let c = compile_with(f, Options { threads, ..Options::default() }).unwrap();
        labels = c.step_labels().to_vec();
        let got = c.call(&refs).unwrap().remove(0).to_f64_vec();
        for (i, ((g, w), a)) in got.iter().zip(&want).zip(&abs).enumerate() {
            let bound = 2.0 * (k + 1.0) * u * a;
            assert!((g - w).abs() <= bound, "{name} element {i}: JIT {g:e}, interpreter {w:e}");
        }
        match &first {
            None => first = Some(got),
            Some(one) => assert!(
                one.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name}: {threads} threads differ from one"
            ),
        }
    }
    labels
}

#[test]
fn conv_fixture_models_match_the_interpreter() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../jjt-ir/tests/fixtures/ops_conv");
    let mut seen = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("conv") {
            continue;
        }
        let f = text::parse(&std::fs::read_to_string(dir.join("model.jjt")).unwrap()).unwrap();
        let inputs = vec![load(&dir.join("in0.npy")), load(&dir.join("in1.npy"))];
        check(&name, &f, &inputs);
        seen += 1;
    }
    assert!(seen >= 8, "conv fixtures missing: {seen}");
}

fn seeded(ty: &jjt_ir::TensorType, seed: u64) -> Tensor {
    let mut r = jjt_ir::random::XorShift64(seed | 1);
    let v: Vec<f64> = (0..ty.numel()).map(|_| r.uniform(-1.0, 1.0)).collect();
    Tensor::from_f64(ty, &v).unwrap()
}

/// Larger layers of the kinds networks use: the contraction runs as a matrix multiply over
/// packed patches, padded input or not, grouped or not, channels first or last.
#[test]
fn network_sized_convs_take_the_matrix_multiply() {
    let cases = [
        "func f(x: f32[4,16,16,8], k: f32[3,3,8,16]) -> f32[4,16,16,16] {
  return conv(x, k, dims=\"NHWC,HWIO,NHWC\", padding=\"SAME\")
}",
        "func f(x: f32[2,8,15,15], k: f32[32,8,3,3]) -> f32[2,32,7,7] {
  return conv(x, k, dims=\"NCHW,OIHW,NCHW\", strides=[2,2])
}",
        "func f(x: f64[2,12,12,16], k: f64[3,3,4,32]) -> f64[2,12,12,32] {
  return conv(x, k, dims=\"NHWC,HWIO,NHWC\", padding=\"SAME\", feature_groups=4)
}",
    ];
    for (i, src) in cases.iter().enumerate() {
        let f = text::parse(src).unwrap();
        let inputs: Vec<Tensor> = f
            .params()
            .iter()
            .enumerate()
            .map(|(j, p)| seeded(&p.ty, 7 + i as u64 * 3 + j as u64))
            .collect();
        let labels = check(&format!("case {i}"), &f, &inputs);
        assert!(labels.iter().any(|l| l.contains("matrix multiply")), "case {i}: {labels:?}");
    }
}
