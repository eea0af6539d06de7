//! The facade: a traced closure and the model file describe the same graph, and
//! `RandomState` makes NumPy's data.

use jjt::{DType, RandomState, trace};

#[test]
fn traced_seed_equals_model_file() {
    let traced = trace("f", |t| {
        let x = t.input("x", DType::F32, [10000]);
        let a = t.uniform(DType::F32, [5, 10000], 1701).named("a");
        let y = a.matmul(&x).named("y");
        (y / 10000.0).sqrt()
    })
    .unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let parsed = jjt::load_model(format!("{root}/examples/models/seed.jjt")).unwrap();
    assert_eq!(jjt::text::print(&traced), jjt::text::print(&parsed));
}

#[test]
fn random_state_matches_numpy_x1_x2() {
    let root = env!("CARGO_MANIFEST_DIR");
    let x1 =
        jjt::npy::read_file(format!("{root}/crates/jjt-cli/tests/fixtures/x1_f32.npy").as_ref())
            .unwrap();
    let x2 =
        jjt::npy::read_file(format!("{root}/crates/jjt-cli/tests/fixtures/x2_f64.npy").as_ref())
            .unwrap();
    let mut rng = RandomState::new(1701);
    rng.skip_uniform(5 * 10000);
    assert_eq!(rng.rand_f32([10000]).unwrap().into_array(), x1);
    assert_eq!(rng.rand_f64([10000]).unwrap().into_array(), x2);
}

#[test]
fn compiled_kernel_matches_interpreted_kernel() {
    let f = trace("f", |t| {
        let x = t.input("x", DType::F64, [6]);
        let w = t.input("w", DType::F64, [3, 6]);
        w.matmul(&x).tanh().square()
    })
    .unwrap();
    let kernel = jjt::Kernel::new(&f).wrt(["w"]).shared(["w"]).batch(2, 3);
    let k = kernel.build().unwrap();
    let c = kernel.compile().unwrap();
    let mut rng = RandomState::new(3);
    let x1 = rng.randn_f64([2, 6]).unwrap();
    let x2 = rng.randn_f64([3, 6]).unwrap();
    let w = rng.randn_f64([3, 6]).unwrap();
    let want = jjt::eval(&k, &[x1.clone(), x2.clone(), w.clone()]).unwrap().to_f64_vec();
    let got = c.call(&[&x1, &x2, &w]).unwrap()[0].to_f64_vec();
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(&want) {
        // Sums of at most a few dozen f64 products, reassociated: far below 1e-12 of the scale.
        assert!((g - w).abs() <= 1e-12 * scale, "{g} vs {w}");
    }
}

/// The MLP of examples/models/mlp.jjt and its parameters.
fn mlp() -> jjt::Function {
    jjt::load_model(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/mlp.jjt")).unwrap()
}

const MLP_PARAMS: [&str; 6] = ["w0", "b0", "w1", "b1", "w2", "b2"];

#[test]
fn staged_kernel_equals_one_shot_kernel() {
    let f = mlp();
    let kernel = jjt::Kernel::new(&f).wrt(MLP_PARAMS).shared(MLP_PARAMS).batch(3, 2);
    let one_shot = kernel.compile().unwrap();
    let staged = kernel.compile_staged().unwrap();
    let mut rng = RandomState::new(2);
    let args: Vec<jjt::Tensor> =
        one_shot.inputs().map(|t| rng.randn_f32(t.shape.clone()).unwrap()).collect();
    let refs: Vec<&jjt::Tensor> = args.iter().collect();
    let want = one_shot.call(&refs).unwrap().remove(0);
    let prepared = staged.prepare(&refs[2..]).unwrap();
    for _ in 0..2 {
        let got = prepared.eval(&refs[..2]).unwrap();
        // The same optimised graph, split in two: the same values.
        assert_eq!(got, want);
    }
}

#[test]
fn staged_kernel_argument_counts_and_layouts() {
    let f = mlp();
    let kernel = jjt::Kernel::new(&f).wrt(MLP_PARAMS).shared(MLP_PARAMS).batch(3, 2);
    // Two per-side inputs, six shared ones; the operator form adds `v` last.
    let layout = kernel.layout(jjt::Form::Kernel).unwrap();
    let roles: Vec<jjt::Role> = layout.iter().map(|(_, r, _)| *r).collect();
    assert_eq!(roles[..2], [jjt::Role::Side(1, 0), jjt::Role::Side(2, 0)]);
    assert!(roles[2..].iter().all(|r| matches!(r, jjt::Role::Shared(_))) && roles.len() == 8);
    let apply = kernel.layout(jjt::Form::Apply).unwrap();
    assert_eq!(apply[..8], layout[..]);
    assert!(apply.len() == 9 && apply[8].1 == jjt::Role::V, "{apply:?}");
    let staged = kernel.compile_staged().unwrap();
    let mut rng = RandomState::new(2);
    let args: Vec<jjt::Tensor> =
        layout.iter().map(|(_, _, t)| rng.randn_f32(t.shape.clone()).unwrap()).collect();
    let refs: Vec<&jjt::Tensor> = args.iter().collect();
    let e = staged.prepare(&refs[3..]).unwrap_err();
    assert!(
        matches!(e, jjt::Error::ArgumentCount { call: "prepare", expected: 6, got: 5, .. }),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "`prepare` takes 6 shared inputs, got 5");
    let prepared = staged.prepare(&refs[2..]).unwrap();
    let e = prepared.eval(&refs[..1]).unwrap_err();
    assert!(
        matches!(e, jjt::Error::ArgumentCount { call: "eval", expected: 2, got: 1, .. }),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "`eval` takes 2 per-side inputs, got 1");
}

/// README and the crate docs show examples/embed.rs as it is.
#[test]
fn embed_example_is_shown_verbatim() {
    let embed = include_str!("../examples/embed.rs");
    assert!(embed.lines().count() < 40);
    let readme = include_str!("../README.md");
    assert!(readme.contains(embed), "README's copy of examples/embed.rs is out of date");
}
