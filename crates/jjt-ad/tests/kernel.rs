//! Kernel strategies against an independent oracle: the dense Jacobian built column by column
//! from one-hot JVPs, evaluated by the interpreter and contracted in plain Rust. Every mode,
//! batched and unbatched, example-diagonal, wrt a subset of inputs, with shared and per-side
//! inputs, on random graphs and on the examples. f64; agreement within 1e-10 relative to the
//! kernel's largest entry (all paths sum at most a few hundred products, error ~1e-14).

mod common;

use common::{Rng, eval, tensor};
use jjt_ad::{Examples, KernelSpec, Mode, Role, Strategy, jvp};
use jjt_ir::testgen::{self, Config, Draw};
use jjt_ir::{Binary, DType, Function, FunctionBuilder, Shape, Tensor, TensorType, Unary};

/// One example's arguments in f's signature order.
type Args = Vec<Tensor>;

/// Dense J_w (rows: flattened output, columns: flattened w) for every wrt input, by one-hot JVPs.
fn dense_jacobian(f: &Function, wrt: &[bool], x: &Args) -> Vec<Vec<Vec<f64>>> {
    let names: Vec<String> =
        f.params().iter().zip(wrt).filter(|(_, w)| **w).map(|(p, _)| p.name.clone()).collect();
    let j = jvp(f, &names).unwrap();
    let o = f.output_type().unwrap().numel();
    let mut res = Vec::new();
    for (i, p) in f.params().iter().enumerate() {
        if !wrt[i] {
            continue;
        }
        let n = p.ty.numel();
        let mut cols = vec![vec![0.0; n]; o];
        for k in 0..n {
            let mut args = x.clone();
            for (q, pq) in f.params().iter().enumerate() {
                if wrt[q] {
                    let mut t = vec![0.0; pq.ty.numel()];
                    if q == i {
                        t[k] = 1.0;
                    }
                    args.push(tensor(&pq.ty, t));
                }
            }
            let col = eval(&j, &args)[1].to_f64_vec();
            for r in 0..o {
                cols[r][k] = col[r];
            }
        }
        res.push(cols);
    }
    res
}

/// K[o1][o2] = Σ_w J1_w[o1]·J2_w[o2].
fn dense_k(j1: &[Vec<Vec<f64>>], j2: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let o = j1[0].len();
    let mut k = vec![vec![0.0; o]; o];
    for (a, c) in j1.iter().zip(j2) {
        for r in 0..o {
            for s in 0..o {
                k[r][s] += a[r].iter().zip(&c[s]).map(|(p, q)| p * q).sum::<f64>();
            }
        }
    }
    k
}

fn reduce_mode(k: &[Vec<f64>], mode: Mode) -> Vec<f64> {
    let o = k.len();
    match mode {
        Mode::Full => k.iter().flatten().copied().collect(),
        Mode::Diagonal => (0..o).map(|i| k[i][i]).collect(),
        Mode::Trace => vec![(0..o).map(|i| k[i][i]).sum()],
    }
}

fn slice_example(t: &Tensor, b: usize) -> Tensor {
    let inner: usize = t.shape.dims()[1..].iter().product();
    let v = t.to_f64_vec()[b * inner..(b + 1) * inner].to_vec();
    tensor(&TensorType::new(t.dtype(), t.shape.dims()[1..].to_vec()), v)
}

struct Setup {
    f: Function,
    wrt: Vec<String>,
    shared: Vec<String>,
    /// Inputs are drawn uniformly from this range.
    domain: (f64, f64),
}

/// The oracle's K (flattened in the kernel's layout) for given side arguments.
fn oracle(s: &Setup, spec: &KernelSpec, args: &[(Role, Tensor)]) -> Vec<f64> {
    let n = s.f.params().len();
    let wrt: Vec<bool> = s.f.params().iter().map(|p| s.wrt.contains(&p.name)).collect();
    let side = |side: u8, b: Option<usize>| -> Args {
        (0..n)
            .map(|i| {
                let t = args
                    .iter()
                    .find(|(r, _)| *r == Role::Side(side, i) || *r == Role::Shared(i))
                    .map(|(_, t)| t.clone())
                    .unwrap();
                match (b, args.iter().any(|(r, _)| *r == Role::Side(side, i))) {
                    (Some(b), true) => slice_example(&t, b),
                    _ => t,
                }
            })
            .collect()
    };
    match (spec.batch, spec.examples) {
        (None, _) => reduce_mode(
            &dense_k(
                &dense_jacobian(&s.f, &wrt, &side(1, None)),
                &dense_jacobian(&s.f, &wrt, &side(2, None)),
            ),
            spec.mode,
        ),
        (Some((b1, b2)), Examples::All) => {
            let j1: Vec<_> =
                (0..b1).map(|b| dense_jacobian(&s.f, &wrt, &side(1, Some(b)))).collect();
            let j2: Vec<_> =
                (0..b2).map(|b| dense_jacobian(&s.f, &wrt, &side(2, Some(b)))).collect();
            let mut out = Vec::new();
            for a in &j1 {
                for c in &j2 {
                    out.extend(reduce_mode(&dense_k(a, c), spec.mode));
                }
            }
            out
        }
        (Some((bb, _)), Examples::Diagonal) => (0..bb)
            .flat_map(|b| {
                reduce_mode(
                    &dense_k(
                        &dense_jacobian(&s.f, &wrt, &side(1, Some(b))),
                        &dense_jacobian(&s.f, &wrt, &side(2, Some(b))),
                    ),
                    spec.mode,
                )
            })
            .collect(),
    }
}

fn random_args(
    rng: &mut Rng,
    layout: &[(String, Role, TensorType)],
    (lo, hi): (f64, f64),
) -> Vec<(Role, Tensor)> {
    layout
        .iter()
        .map(|(_, r, ty)| (*r, tensor(ty, (0..ty.numel()).map(|_| rng.uniform(lo, hi)).collect())))
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-10 * scale, "{what}: element {i}: {g:e} vs oracle {w:e}");
    }
}

/// Check every strategy, mode and batching against the oracle, and the operator form against
/// K·v from the oracle's full kernel.
fn check_all(s: &Setup, rng: &mut Rng, batches: &[Option<(usize, usize)>]) {
    for &batch in batches {
        for examples in [Examples::All, Examples::Diagonal] {
            if examples == Examples::Diagonal && batch.is_none_or(|(a, c)| a != c) {
                continue;
            }
            for mode in [Mode::Full, Mode::Trace, Mode::Diagonal] {
                let spec = KernelSpec {
                    wrt: s.wrt.clone(),
                    shared: s.shared.clone(),
                    mode,
                    examples,
                    strategy: Strategy::Ntvp,
                    batch,
                };
                let layout = spec.layout(&s.f, jjt_ad::Form::Kernel).unwrap();
                let args = random_args(rng, &layout, s.domain);
                let want = oracle(s, &spec, &args);
                let inputs: Vec<Tensor> = args.iter().map(|(_, t)| t.clone()).collect();
                for strategy in [Strategy::Ntvp, Strategy::Jc] {
                    let spec = KernelSpec { strategy, ..spec.clone() };
                    let k = spec.kernel(&s.f).unwrap_or_else(|e| panic!("{}: {e}", s.f.name));
                    let got = eval(&k, &inputs).remove(0);
                    let what = format!("{} {strategy} {mode} {examples:?} {batch:?}", s.f.name);
                    assert_close(&what, &got.to_f64_vec(), &want);
                    assert_eq!(got.shape, expected_shape(&s.f, &spec), "{what}: layout");
                }
            }
            // Operator form.
            let spec = KernelSpec {
                wrt: s.wrt.clone(),
                shared: s.shared.clone(),
                mode: Mode::Full,
                examples,
                strategy: Strategy::Ntvp,
                batch,
            };
            let layout = spec.layout(&s.f, jjt_ad::Form::Apply).unwrap();
            let args = random_args(rng, &layout, s.domain);
            let full = oracle(s, &spec, &args[..args.len() - 1]);
            let v = args.last().unwrap().1.to_f64_vec();
            let o = s.f.output_type().unwrap().numel();
            let want: Vec<f64> = match (batch, examples) {
                (None, _) => (0..o).map(|i| (0..o).map(|j| full[i * o + j] * v[j]).sum()).collect(),
                (Some((b1, b2)), Examples::All) => (0..b1 * o)
                    .map(|r| {
                        let (a, i) = (r / o, r % o);
                        (0..b2)
                            .flat_map(|c| (0..o).map(move |j| (c, j)))
                            .map(|(c, j)| full[((a * b2 + c) * o + i) * o + j] * v[c * o + j])
                            .sum()
                    })
                    .collect(),
                (Some((bb, _)), Examples::Diagonal) => (0..bb * o)
                    .map(|r| {
                        let (a, i) = (r / o, r % o);
                        (0..o).map(|j| full[(a * o + i) * o + j] * v[a * o + j]).sum()
                    })
                    .collect(),
            };
            let ap = spec.apply(&s.f).unwrap();
            let inputs: Vec<Tensor> = args.iter().map(|(_, t)| t.clone()).collect();
            let got = eval(&ap, &inputs).remove(0).to_f64_vec();
            assert_close(&format!("{} apply {examples:?} {batch:?}", s.f.name), &got, &want);
        }
    }
}

fn expected_shape(f: &Function, spec: &KernelSpec) -> Shape {
    let out = f.output_type().unwrap().shape.dims().to_vec();
    let mut d = match (spec.batch, spec.examples) {
        (None, _) => vec![],
        (Some((a, c)), Examples::All) => vec![a, c],
        (Some((a, _)), Examples::Diagonal) => vec![a],
    };
    match spec.mode {
        Mode::Full => {
            d.extend(&out);
            d.extend(&out);
        }
        Mode::Diagonal => d.extend(&out),
        Mode::Trace => {}
    }
    Shape(d)
}

#[test]
fn seed_kernel_matches_closed_form_and_oracle() {
    // f(x) = sqrt(A x / N) with small N; K = diag(g1) A Aᵀ diag(g2) / N², g = 0.5/sqrt(A x / N).
    let (m, n) = (3, 7);
    let f = testgen::seed_model(DType::F64, n, m, 1701);
    let aval = jjt_ir::random::draws(jjt_ir::random::Distribution::Uniform, 1701, 0, m * n);
    let mut rng = Rng(3);
    let x1: Vec<f64> = (0..n).map(|_| rng.uniform(0.0, 1.0)).collect();
    let x2: Vec<f64> = (0..n).map(|_| rng.uniform(0.0, 1.0)).collect();
    let g = |x: &[f64]| -> Vec<f64> {
        (0..m)
            .map(|i| 0.5 / ((0..n).map(|k| aval[i * n + k] * x[k]).sum::<f64>() / n as f64).sqrt())
            .collect()
    };
    let (g1, g2) = (g(&x1), g(&x2));
    let closed: Vec<f64> = (0..m * m)
        .map(|r| {
            let (i, j) = (r / m, r % m);
            g1[i] * g2[j] * (0..n).map(|k| aval[i * n + k] * aval[j * n + k]).sum::<f64>()
                / (n * n) as f64
        })
        .collect();
    for strategy in [Strategy::Ntvp, Strategy::Jc] {
        let spec = KernelSpec { wrt: vec!["x".into()], strategy, ..Default::default() };
        let k = spec.kernel(&f).unwrap();
        let got = eval(
            &k,
            &[Tensor::f64([n], x1.clone()).unwrap(), Tensor::f64([n], x2.clone()).unwrap()],
        )
        .remove(0);
        assert_close(&format!("seed {strategy}"), &got.to_f64_vec(), &closed);
    }
    let s = Setup { f, wrt: vec!["x".into()], shared: vec![], domain: (0.1, 1.0) };
    check_all(&s, &mut rng, &[None, Some((2, 3)), Some((2, 2))]);
}

/// A small MLP with tanh, parameters shared, wrt the parameters (the NTK).
fn mlp(sizes: &[usize]) -> Setup {
    let mut b = FunctionBuilder::new("mlp");
    let x = b.input("x", TensorType::new(DType::F64, [sizes[0]])).unwrap();
    let mut names = Vec::new();
    let mut params = Vec::new();
    for l in 0..sizes.len() - 1 {
        let w = b
            .input(&format!("w{l}"), TensorType::new(DType::F64, [sizes[l + 1], sizes[l]]))
            .unwrap();
        let bias = b.input(&format!("b{l}"), TensorType::new(DType::F64, [sizes[l + 1]])).unwrap();
        names.push(format!("w{l}"));
        names.push(format!("b{l}"));
        params.push((w, bias));
    }
    let mut h = x;
    for (l, (w, bias)) in params.iter().enumerate() {
        let z = b.matmul(*w, h).unwrap();
        let z = b.binary(Binary::Add, z, *bias).unwrap();
        h = if l + 2 < sizes.len() { b.unary(Unary::Tanh, z).unwrap() } else { z };
    }
    Setup { f: b.finish(h).unwrap(), wrt: names.clone(), shared: names, domain: (-1.0, 1.0) }
}

#[test]
fn mlp_kernel_matches_oracle() {
    let mut rng = Rng(5);
    check_all(&mlp(&[4, 5, 3]), &mut rng, &[None, Some((2, 3)), Some((2, 2))]);
    // wrt a subset of the parameters.
    let mut s = mlp(&[3, 4, 2]);
    s.wrt = vec!["w1".into(), "b0".into()];
    check_all(&s, &mut rng, &[None, Some((3, 2))]);
}

/// A kernel-ready graph from the shared generator (`Config::kernel`: f64 inputs marked
/// wrt/shared — at least one wrt — one output of at most 6 elements depending on every input,
/// every op in its domain).
fn random_setup(seed: u64) -> Setup {
    let case = testgen::generate(&mut Draw::seed(seed), &Config::kernel());
    Setup { f: case.f, wrt: case.wrt, shared: case.shared, domain: Config::kernel().range }
}

#[test]
fn strategies_agree_with_oracle_on_random_graphs() {
    let mut rng = Rng(23);
    let (mut with_shared, mut with_fixed_side) = (0, 0);
    for id in 0..24 {
        let s = random_setup(id);
        let params: Vec<&str> = s.f.params().iter().map(|p| p.name.as_str()).collect();
        with_shared += usize::from(!s.shared.is_empty());
        // A per-side input that is not differentiated (the old fixed setups' `z`).
        with_fixed_side += usize::from(
            params
                .iter()
                .any(|p| !s.wrt.iter().any(|w| w == p) && !s.shared.iter().any(|x| x == p)),
        );
        check_all(&s, &mut rng, &[None, Some((2, 3)), Some((2, 2))]);
    }
    // The graphs cover the roles an input can have: shared (θ), and per side but not
    // differentiated.
    assert!(with_shared >= 4, "only {with_shared} of 24 graphs have a shared input");
    assert!(
        with_fixed_side >= 4,
        "only {with_fixed_side} of 24 graphs have a fixed per-side input"
    );
}

/// An embedding lookup's NTK-vector product compares the two examples' token sets instead of
/// scattering cotangents into a table-sized gradient: the `ntvp` kernel of a model with
/// `gather` has no `scatter_add` and no intermediate with the table's row count, and equals
/// the `jc` kernel (which does scatter) — tokens repeating within and across examples and
/// indices past both ends of the table (clamped) included.
#[test]
fn embedding_ntvp_kernel_compares_token_sets() {
    let src = "func f(tok: i32[5], emb: f64[37,3], w: f64[3,2]) -> f64[2] {
  e = mean(gather(emb, tok, axis=0), axes=[0])
  return tanh(e @ w)
}";
    let f = jjt_ir::text::parse(src).unwrap();
    let spec = |strategy| KernelSpec {
        wrt: vec!["emb".into(), "w".into()],
        shared: vec!["emb".into(), "w".into()],
        strategy,
        batch: Some((3, 2)),
        ..Default::default()
    };
    let ntvp = spec(Strategy::Ntvp).kernel(&f).unwrap();
    let jc = spec(Strategy::Jc).kernel(&f).unwrap();
    let scatters = |g: &Function| {
        g.node_ids().filter(|&n| matches!(g.node(n).unwrap().op, jjt_ir::Op::ScatterAdd(_))).count()
    };
    assert_eq!(scatters(&ntvp), 0, "{}", jjt_ir::text::print(&ntvp));
    assert!(scatters(&jc) > 0);
    // Nothing but the table itself has its 37 rows.
    let tables = ntvp
        .node_ids()
        .filter(|&n| {
            let node = ntvp.node(n).unwrap();
            node.ty.shape.dims().contains(&37) && !matches!(node.op, jjt_ir::Op::Input(_))
        })
        .count();
    assert_eq!(tables, 0, "a table-sized intermediate:\n{}", jjt_ir::text::print(&ntvp));
    let layout = spec(Strategy::Ntvp).layout(&f, jjt_ad::Form::Kernel).unwrap();
    let mut rng = Rng(31);
    let args: Vec<Tensor> = layout
        .iter()
        .map(|(_, _, ty)| {
            if ty.dtype == DType::I32 {
                // Repeats, and indices below 0 and past 36 (clamped).
                let v: Vec<i32> =
                    (0..ty.numel()).map(|k| [-3, 5, 5, 36, 40, 0, 7][k % 7]).collect();
                Tensor::i32(ty.shape.clone(), v).unwrap()
            } else {
                tensor(ty, (0..ty.numel()).map(|_| rng.uniform(-1.0, 1.0)).collect())
            }
        })
        .collect();
    let a = eval(&ntvp, &args).remove(0).to_f64_vec();
    let b = eval(&jc, &args).remove(0).to_f64_vec();
    // f64, each entry a sum of at most a few hundred products in either order: the two
    // orders differ by ~1e-15 of the largest entry; 1e-12 fails any wrong term.
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-12 * scale, "{x} vs {y}");
    }
}
