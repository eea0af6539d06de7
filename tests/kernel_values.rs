//! Kernel values through the JIT (facade `Kernel` API) against independent oracles:
//!
//! - the full-mode MLP kernel against the NumPy reference `k_mlp_full_ref.npy` (the dense
//!   Jacobians materialised block by block in f64 by `crates/jjt-cli/tests/fixtures/gen_seed.py`);
//! - `Examples::Diagonal` and `Mode::Diagonal` (and the other modes with them), compiled one
//!   shot, staged and as the operator, against the interpreter on the unoptimised graph and
//!   against the dense Jacobian product, built here from one-hot VJPs (rows of J).

mod common;

use common::{assert_within, dense_jacobian_rows};
use jjt::{
    DType, Examples, Form, Function, Kernel, Mode, RandomState, Role, Strategy, Tensor, trace,
};

const MLP_PARAMS: [&str; 6] = ["w0", "b0", "w1", "b1", "w2", "b2"];

fn fixture(name: &str) -> Vec<f64> {
    let path = format!("{}/crates/jjt-cli/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    Tensor::from_array(jjt::npy::read_file(path.as_ref()).unwrap()).to_f64_vec()
}

/// gen_seed.py's MLP data from NumPy's legacy stream (seed 0), rounded to f32: per layer
/// W = randn(fan_in, fan_out)/√fan_in and b = 0.1·randn(fan_out); then x1 = randn(4, 784) and
/// x2 = randn(3, 784). In the kernel's input order: x1, x2, w0, b0, w1, b1, w2, b2.
fn mlp_data() -> Vec<Tensor> {
    let mut rng = RandomState::new(0);
    let widths = [784usize, 512, 512, 10];
    let scaled = |t: Tensor, by: f64| -> Tensor {
        let v: Vec<f32> = t.to_f64_vec().iter().map(|x| (x * by) as f32).collect();
        Tensor::f32(t.shape.clone(), v).unwrap()
    };
    let mut params = Vec::new();
    for l in 0..3 {
        let (fi, fo) = (widths[l], widths[l + 1]);
        params.push(scaled(rng.randn_f64([fi, fo]).unwrap(), 1.0 / (fi as f64).sqrt()));
        params.push(scaled(rng.randn_f64([fo]).unwrap(), 0.1));
    }
    let x1 = scaled(rng.randn_f64([4, 784]).unwrap(), 1.0);
    let x2 = scaled(rng.randn_f64([3, 784]).unwrap(), 1.0);
    let mut args = vec![x1, x2];
    args.extend(params);
    args
}

fn to_f64(t: &Tensor) -> Tensor {
    Tensor::f64(t.shape.clone(), t.to_f64_vec()).unwrap()
}

#[test]
fn full_mlp_kernel_matches_numpy_dense_jacobian_reference() {
    let f =
        jjt::load_model(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/mlp.jjt")).unwrap();
    let want = fixture("k_mlp_full_ref.npy");
    assert_eq!(want.len(), 4 * 3 * 10 * 10);
    let data = mlp_data();
    let refs: Vec<&Tensor> = data.iter().collect();

    // f32, the default (automatic) strategy. Both sides see the same f32-rounded data; the
    // kernel's own arithmetic is f32 (u = 6.0e-8). Each entry is built from dot products of
    // at most 784 terms per layer, through three layers: the worst-case bound n·u·Σ|terms| is
    // 4.7e-5 of Σ|terms| per product, and the errors of the layers add, so 1e-4 of the largest
    // entry bounds the difference (observed: 4.4e-7).
    let kernel = Kernel::new(&f).wrt(MLP_PARAMS).shared(MLP_PARAMS).batch(4, 3);
    let got = kernel.compile().unwrap().call(&refs).unwrap().remove(0);
    assert_eq!(got.shape.dims(), &[4, 3, 10, 10]);
    assert_within("mlp full f32 auto", &got.to_f64_vec(), &want, 1e-4);

    // f64 on the same (exactly widened) data, with the automatic and the Jacobian-contraction
    // strategy: the reference sums n = 6.7·10⁵ products per entry in f64, whose worst-case
    // error n·u·Σ|terms| is 7.4e-11 of Σ|terms| (u = 1.1e-16); the kernel sums fewer (the
    // structured form contracts per layer). 1e-10 of the largest entry bounds both
    // (observed: 9.4e-16).
    let f64_model = jjt::promote_f64(&f).unwrap();
    let wide: Vec<Tensor> = data.iter().map(to_f64).collect();
    let refs: Vec<&Tensor> = wide.iter().collect();
    let kernel = Kernel::new(&f64_model).wrt(MLP_PARAMS).shared(MLP_PARAMS).batch(4, 3);
    for (name, k) in [("auto", kernel.clone()), ("jc", kernel.strategy(Strategy::Jc))] {
        let got = k.compile().unwrap().call(&refs).unwrap().remove(0);
        assert_eq!(got.shape.dims(), &[4, 3, 10, 10]);
        assert_within(&format!("mlp full f64 {name}"), &got.to_f64_vec(), &want, 1e-10);
    }
}

/// A small model and the kernel inputs it is differentiated with respect to.
struct Small {
    f: Function,
    wrt: Vec<&'static str>,
    shared: Vec<&'static str>,
}

impl Small {
    /// Its kernel on batches of `b1` and `b2` examples.
    fn kernel(&self, b1: usize, b2: usize) -> Kernel<'_> {
        Kernel::new(&self.f).wrt(self.wrt.clone()).shared(self.shared.clone()).batch(b1, b2)
    }
}

fn small_models() -> Vec<Small> {
    // A two-layer tanh network, the NTK with respect to its shared parameters.
    let net = trace("net", |t| {
        let x = t.input("x", DType::F64, [4]);
        let w = t.input("w", DType::F64, [4, 5]);
        let b = t.input("b", DType::F64, [5]);
        let v = t.input("v", DType::F64, [5, 3]);
        (x.matmul(&w) + &b).tanh().matmul(&v)
    })
    .unwrap();
    // Per-side and shared inputs both differentiated, a matrix output, a non-differentiated
    // per-side input.
    let mixed = trace("mixed", |t| {
        let x = t.input("x", DType::F64, [3]);
        let w = t.input("w", DType::F64, [3, 4]);
        let z = t.input("z", DType::F64, [2]);
        let h = x.matmul(&w).sin();
        let s = z.sum_all().cos();
        (h.reshape([4, 1]).matmul(&z.reshape([1, 2])) * s).sigmoid()
    })
    .unwrap();
    vec![
        Small { f: net, wrt: vec!["w", "b", "v"], shared: vec!["w", "b", "v"] },
        Small { f: mixed, wrt: vec!["x", "w"], shared: vec!["w"] },
    ]
}

/// Example `b` of a batched tensor.
fn example(t: &Tensor, b: usize) -> Tensor {
    let inner: usize = t.shape.dims()[1..].iter().product();
    let v = t.to_f64_vec()[b * inner..(b + 1) * inner].to_vec();
    Tensor::f64(t.shape.dims()[1..].to_vec(), v).unwrap()
}

/// f's arguments for example `b` of `side`, from the kernel's inputs.
fn side_args(
    f: &Function,
    layout: &[(String, Role, jjt::TensorType)],
    inputs: &[Tensor],
    side: u8,
    b: usize,
) -> Vec<Tensor> {
    (0..f.params().len())
        .map(|i| {
            let k = layout
                .iter()
                .position(|(_, r, _)| *r == Role::Side(side, i) || *r == Role::Shared(i))
                .unwrap();
            match layout[k].1 {
                Role::Side(..) => example(&inputs[k], b),
                _ => inputs[k].clone(),
            }
        })
        .collect()
}

/// The oracle: K (example-diagonal, batch `bb`) in the kernel's layout from dense Jacobians.
fn dense_diagonal_kernel(
    m: &Small,
    mode: Mode,
    layout: &[(String, Role, jjt::TensorType)],
    inputs: &[Tensor],
    bb: usize,
) -> Vec<f64> {
    let mut out = Vec::new();
    for b in 0..bb {
        let j1 = dense_jacobian_rows(&m.f, &m.wrt, &side_args(&m.f, layout, inputs, 1, b));
        let j2 = dense_jacobian_rows(&m.f, &m.wrt, &side_args(&m.f, layout, inputs, 2, b));
        let k = |i: usize, j: usize| -> f64 { j1[i].iter().zip(&j2[j]).map(|(p, q)| p * q).sum() };
        let o = j1.len();
        match mode {
            Mode::Full => out.extend((0..o * o).map(|r| k(r / o, r % o))),
            Mode::Diagonal => out.extend((0..o).map(|i| k(i, i))),
            Mode::Trace => out.push((0..o).map(|i| k(i, i)).sum()),
        }
    }
    out
}

fn random_inputs(rng: &mut RandomState, layout: &[(String, Role, jjt::TensorType)]) -> Vec<Tensor> {
    layout.iter().map(|(_, _, ty)| rng.randn_f64(ty.shape.clone()).unwrap()).collect()
}

/// The kernel with the automatic strategy and with each fixed one.
fn strategies<'f>(base: &Kernel<'f>) -> [(&'static str, Kernel<'f>); 3] {
    [
        ("auto", base.clone()),
        ("ntvp", base.clone().strategy(Strategy::Ntvp)),
        ("jc", base.clone().strategy(Strategy::Jc)),
    ]
}

// The JIT reassociates sums (vector lanes, matrix multiply blocks); every entry here sums at
// most a few hundred f64 products of order 1, so it stays within ~1e-14 of the largest entry
// of the interpreter's and the oracle's; 1e-10 leaves room and fails any wrong value.
const JIT_TOL: f64 = 1e-10;

#[test]
fn example_diagonal_kernels_through_the_jit_match_interpreter_and_dense_jacobians() {
    let bb = 3;
    let mut rng = RandomState::new(11);
    for m in small_models() {
        for mode in [Mode::Full, Mode::Trace, Mode::Diagonal] {
            let base = m.kernel(bb, bb).examples(Examples::Diagonal).mode(mode);
            let layout = base.layout(Form::Kernel).unwrap();
            let inputs = random_inputs(&mut rng, &layout);
            let refs: Vec<&Tensor> = inputs.iter().collect();
            let dense = dense_diagonal_kernel(&m, mode, &layout, &inputs, bb);
            for (name, k) in strategies(&base) {
                let what = format!("{} {mode} examples-diagonal {name}", m.f.name);
                let interp = jjt::eval(&k.build().unwrap(), &inputs).unwrap();
                assert_within(&format!("{what}: interpreter"), &interp.to_f64_vec(), &dense, 1e-12);
                let got = k.compile().unwrap().call(&refs).unwrap().remove(0);
                assert_eq!(got.shape, interp.shape, "{what}");
                assert_within(&what, &got.to_f64_vec(), &interp.to_f64_vec(), JIT_TOL);
                assert_within(&format!("{what}: dense"), &got.to_f64_vec(), &dense, JIT_TOL);

                // Staged: the shared inputs bound once, the per-side part per call.
                let staged = k.compile_staged().unwrap();
                let n_sides = layout.iter().filter(|(_, r, _)| matches!(r, Role::Side(..))).count();
                let prepared = staged.prepare(&refs[n_sides..]).unwrap();
                let got = prepared.eval(&refs[..n_sides]).unwrap();
                assert_within(
                    &format!("{what}: staged"),
                    &got.to_f64_vec(),
                    &interp.to_f64_vec(),
                    JIT_TOL,
                );
            }
        }
    }
}

#[test]
fn diagonal_mode_on_all_example_pairs_through_the_jit_matches_dense_jacobians() {
    let (b1, b2) = (2, 3);
    let mut rng = RandomState::new(12);
    for m in small_models() {
        let base = m.kernel(b1, b2).mode(Mode::Diagonal);
        let layout = base.layout(Form::Kernel).unwrap();
        let inputs = random_inputs(&mut rng, &layout);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let o = m.f.output_type().unwrap().numel();
        let mut dense = Vec::new();
        for a in 0..b1 {
            let j1 = dense_jacobian_rows(&m.f, &m.wrt, &side_args(&m.f, &layout, &inputs, 1, a));
            for c in 0..b2 {
                let j2 =
                    dense_jacobian_rows(&m.f, &m.wrt, &side_args(&m.f, &layout, &inputs, 2, c));
                dense.extend(
                    (0..o).map(|i| j1[i].iter().zip(&j2[i]).map(|(p, q)| p * q).sum::<f64>()),
                );
            }
        }
        for (name, k) in strategies(&base) {
            let what = format!("{} diagonal {name}", m.f.name);
            let interp = jjt::eval(&k.build().unwrap(), &inputs).unwrap();
            let mut shape = vec![b1, b2];
            shape.extend(m.f.output_type().unwrap().shape.dims());
            assert_eq!(interp.shape.dims(), &shape[..], "{what}");
            let got = k.compile().unwrap().call(&refs).unwrap().remove(0);
            assert_within(&what, &got.to_f64_vec(), &interp.to_f64_vec(), JIT_TOL);
            assert_within(&format!("{what}: dense"), &got.to_f64_vec(), &dense, JIT_TOL);
        }
    }
}

#[test]
fn example_diagonal_operator_through_the_jit_is_k_times_v_per_example() {
    let bb = 3;
    let mut rng = RandomState::new(13);
    for m in small_models() {
        let k = m.kernel(bb, bb).examples(Examples::Diagonal);
        let layout = k.layout(Form::Apply).unwrap();
        let inputs = random_inputs(&mut rng, &layout);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let what = format!("{} apply examples-diagonal", m.f.name);
        // (K·v)[b] = K[b, b]·v[b] from the dense full kernel.
        let kl = k.layout(Form::Kernel).unwrap();
        let full = dense_diagonal_kernel(&m, Mode::Full, &kl, &inputs[..kl.len()], bb);
        let v = inputs.last().unwrap().to_f64_vec();
        let o = m.f.output_type().unwrap().numel();
        let want: Vec<f64> = (0..bb * o)
            .map(|r| {
                let (b, i) = (r / o, r % o);
                (0..o).map(|j| full[(b * o + i) * o + j] * v[b * o + j]).sum()
            })
            .collect();
        let interp = jjt::eval(&k.build_apply().unwrap(), &inputs).unwrap();
        assert_within(&format!("{what}: interpreter"), &interp.to_f64_vec(), &want, 1e-12);
        let got = k.compile_apply().unwrap().call(&refs).unwrap().remove(0);
        assert_eq!(got.shape, interp.shape, "{what}");
        assert_within(&what, &got.to_f64_vec(), &interp.to_f64_vec(), JIT_TOL);
    }
}
