//! The two kernel forms of a convolution layer, each chosen by the optimiser's cost model where
//! it is cheaper, both equal to the product of dense Jacobians.
//!
//! For a layer with patches `P` (`T` positions × `R` = taps·input features per example) and
//! cotangents `δ` (`O` outputs × `T` positions × `F` output features), the kernel term is
//! `Σ_{t,s} (P₁[t]·P₂[s]) (δ₁[o,t]·δ₂[p,s])`. Contracting per-example Jacobians
//! (`J[o] = Σ_t P[t] ⊗ δ[o,t]`, then `J₁·J₂ᵀ`) costs `2·B·O·T·R·F + B²·O²·R·F` multiply-adds;
//! the patch-product form (the Gram matrices of the patches and of the cotangents, multiplied
//! elementwise and summed over positions) `B²·T²·(R + O²·F + O²)`. The weight's cotangent is
//! a `dot_general` over `patches`, so the optimiser's contraction reordering sees this einsum
//! and prices both. A layer with many positions and few weights takes the first form; one with
//! few positions and many weights the second. The test reads which form the optimised graph
//! computes (a contraction of two patch tensors is the patches' Gram matrix) and checks both
//! kernels against the interpreter's dense Jacobians.

mod common;

use common::{dense_jacobian_rows, kernel_from_rows};
use jjt::ir::{Function, NodeId, Op};
use jjt::{Kernel, RandomState, Strategy, Tensor};

const B: usize = 4;
const O: usize = 5;

/// A convolution layer (3×3, SAME, `cin` → `cout` features on an `hw`×`hw` input), tanh, the
/// mean over positions and a linear head to `O` outputs, in f64.
fn model(hw: usize, cin: usize, cout: usize) -> Function {
    let src = format!(
        "func f(x: f64[{hw},{hw},{cin}], k: f64[3,3,{cin},{cout}], w: f64[{cout},{O}]) -> f64[{O}] {{\n\
         \x20 h = conv(reshape(x, shape=[1,{hw},{hw},{cin}]), k, dims=\"NHWC,HWIO,NHWC\", padding=\"SAME\")\n\
         \x20 m = mean(tanh(h), axes=[0,1,2])\n\
         \x20 return m @ w\n}}"
    );
    jjt::text::parse(&src).unwrap()
}

/// Whether `n` is a `patches` node, possibly under transposes and reshapes.
fn from_patches(g: &Function, n: NodeId) -> bool {
    let node = g.node(n).unwrap();
    match &node.op {
        Op::Patches(_) => true,
        Op::Transpose(_) | Op::Reshape(_) => from_patches(g, g.operands(n)[0]),
        _ => false,
    }
}

/// The contractions of `g` with a patch tensor on one side, and those with patches on both.
fn patch_contractions(g: &Function) -> (usize, usize) {
    let (mut one, mut both) = (0, 0);
    for n in g.topo_order() {
        if let Op::DotGeneral(_) = g.node(n).unwrap().op {
            let ops = g.operands(n);
            match (from_patches(g, ops[0]), from_patches(g, ops[1])) {
                (true, true) => both += 1,
                (true, false) | (false, true) => one += 1,
                (false, false) => {}
            }
        }
    }
    (one, both)
}

fn check(hw: usize, cin: usize, cout: usize, patch_form: bool) {
    let (t, r, f) = (hw * hw, 9 * cin, cout);
    let jacobians = 2 * B * O * t * r * f + B * B * O * O * r * f;
    let patches = B * B * t * t * (r + O * O * f + O * O);
    assert_eq!(patches < jacobians, patch_form, "the layer shape does not test what it says");

    let m = model(hw, cin, cout);
    let kernel = Kernel::new(&m).wrt(["k"]).shared(["k", "w"]).batch(B, B).strategy(Strategy::Jc);
    let built = kernel.build().unwrap();
    let g = jjt::optimize(&built).unwrap();
    let (one, both) = patch_contractions(&g);
    let text = jjt::text::print(&g);
    if patch_form {
        assert_eq!((one, both), (0, 1), "the patches' Gram matrix, no Jacobian:\n{text}");
    } else {
        assert_eq!((one, both), (2, 0), "one per-example Jacobian per side:\n{text}");
    }
    // The cost model prices what it picked below what the derivative gave it.
    let (before, after) = (jjt_opt::cost::cost(&built).flops, jjt_opt::cost::cost(&g).flops);
    assert!(after <= before, "{after} > {before}");

    // K against the dense Jacobians of the interpreter, both sides' examples.
    let mut rng = RandomState::new(5);
    let x1 = rng.randn_f64([B, hw, hw, cin]).unwrap();
    let x2 = rng.randn_f64([B, hw, hw, cin]).unwrap();
    let k = rng.randn_f64([3, 3, cin, cout]).unwrap();
    let w = rng.randn_f64([cout, O]).unwrap();
    let layout = kernel.layout(jjt::Form::Kernel).unwrap();
    let args: Vec<Tensor> = layout
        .iter()
        .map(|(name, _, _)| match name.as_str() {
            "x_1" => x1.clone(),
            "x_2" => x2.clone(),
            "k" => k.clone(),
            "w" => w.clone(),
            other => panic!("unexpected kernel input {other}"),
        })
        .collect();
    let example = |x: &Tensor, b: usize| {
        let n = hw * hw * cin;
        Tensor::f64(vec![hw, hw, cin], x.to_f64_vec()[b * n..(b + 1) * n].to_vec()).unwrap()
    };
    let rows = |x: &Tensor, b: usize| {
        dense_jacobian_rows(&m, &["k"], &[example(x, b), k.clone(), w.clone()])
    };
    let (j1, j2): (Vec<_>, Vec<_>) = (0..B).map(|b| (rows(&x1, b), rows(&x2, b))).unzip();
    let want = kernel_from_rows(&j1, &j2);
    let refs: Vec<&Tensor> = args.iter().collect();
    let from_graph = jjt::eval(&g, &args).unwrap().to_f64_vec();
    let compiled = kernel.compile().unwrap().call(&refs).unwrap().remove(0).to_f64_vec();
    // Sums of at most R·F·T = 36864 products of f64 values of order 1: the orders of summation
    // differ, and n·u·Σ|terms| with n = 4·10⁴ and u = 1.1e-16 is 4.4e-12 of Σ|terms|, which is
    // within a small factor of the largest entry here.
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    for (what, got) in [("interpreter", &from_graph), ("JIT", &compiled)] {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-10 * scale, "{what} element {i}: {g} vs {w}");
        }
    }
}

#[test]
fn many_positions_few_weights_contracts_per_example_jacobians() {
    check(16, 3, 4, false);
}

#[test]
fn few_positions_many_weights_multiplies_gram_matrices_of_patches() {
    check(3, 16, 16, true);
}
