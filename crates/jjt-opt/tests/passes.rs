//! Every pass against the unoptimised graph, with the interpreter as the oracle:
//! - `cse`, `simplify`, `layout`, `siblings`, `fold`, `dce` preserve values bit for bit (NaNs as "both NaN"), on random graphs
//!   (256 by default; `PROPTEST_CASES` raises it) and on the example kernels; `basis` on random
//!   contractions with identities (finite inputs, as its contract says);
//! - `sums` lets a sum ride along a product that contracts the same axes: the product's values
//!   bit for bit, the sum within n·u·Σ|terms| of the reduction's;
//! - `reorder` may reassociate sums: on random contraction trees (with transposes and constant
//!   leaves) and random networks with elementwise products, scalings by broadcast vectors and
//!   sums, the result stays within 2·n·u·Σ|terms|, where Σ|terms| is the same tree evaluated
//!   on the absolute values of its leaves and n the number of multiply-adds per output element.
//!   (Each evaluation order is within n·u·Σ|terms| of the exact einsum.)
//! - the seed kernel after the pipeline costs at most 2.2·M·N + 100·M² multiply-adds per call
//!   and holds no intermediate with more than max(N, M²) elements.

use jjt_ad::KernelSpec;
use jjt_ir::ops::{Const, DotGeneral};
use jjt_ir::random::Distribution;
use jjt_ir::testgen::{self, Config, Draw};
use jjt_ir::{Binary, DType, Function, FunctionBuilder, NodeId, Tensor, TensorType, Unary, interp};
use proptest::prelude::*;

use jjt_ir::random::XorShift64 as Rng;

fn args(rng: &mut Rng, f: &Function) -> Vec<Tensor> {
    f.params()
        .iter()
        .map(|p| {
            Tensor::from_f64(
                &p.ty,
                &(0..p.ty.numel()).map(|_| rng.uniform(-2.0, 2.0)).collect::<Vec<_>>(),
            )
            .unwrap()
        })
        .collect()
}

fn bits_equal(a: &[Tensor], b: &[Tensor]) -> bool {
    a.iter().zip(b).all(|(x, y)| {
        x.to_f64_vec()
            .iter()
            .zip(y.to_f64_vec())
            .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
    })
}

/// Whether `g` computes `f`'s outputs bit for bit on arguments drawn from `Rng(seed)`.
fn same_values(f: &Function, g: &Function, seed: u64) -> bool {
    let xs = args(&mut Rng(seed), f);
    let want = interp::eval_outputs(f, &xs).unwrap();
    bits_equal(&interp::eval_outputs(g, &xs).unwrap(), &want)
}

/// A random graph from the shared generator (every op, f32 and f64), with contractions drawn
/// three times and the simplifier's patterns (x·1, x/1, x + (−0), x − 0, −(−x),
/// select(p, x, x)) twenty times as often as other ops, so that most graphs hold one
/// (`most_random_graphs_exercise_the_simplifier`); and arguments for it.
fn random_graph(seed: u64) -> (Function, Vec<Tensor>) {
    let cfg = Config { dot_weight: 3, identity_weight: 20, ..Config::default() };
    let case = testgen::generate(&mut Draw::seed(seed), &cfg);
    (case.f, case.args)
}

/// The generator's graphs give `exact_passes_preserve_values` something to simplify: over the
/// first 256 seeds, at least two graphs in three contain a pattern the simplifier rewrites.
#[test]
fn most_random_graphs_exercise_the_simplifier() {
    let hit = (0..256u64)
        .filter(|&seed| {
            let (f, _) = random_graph(seed);
            let (_, hits) = jjt_opt::simplify::simplify(&f).unwrap();
            hits.values().sum::<usize>() > 0
        })
        .count();
    assert!(hit >= 256 * 2 / 3, "only {hit} of 256 graphs hold a pattern the simplifier rewrites");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]
    #[test]
    fn exact_passes_preserve_values(seed in any::<u64>()) {
        let (f, x) = random_graph(seed);
        let want = interp::eval_outputs(&f, &x).unwrap();
        let cse = jjt_opt::cse(&f).unwrap();
        prop_assert!(bits_equal(&interp::eval_outputs(&cse, &x).unwrap(), &want), "cse");
        let (simple, _) = jjt_opt::simplify::simplify(&f).unwrap();
        prop_assert!(bits_equal(&interp::eval_outputs(&simple, &x).unwrap(), &want), "simplify\n{}", jjt_ir::text::print(&f));
        let (folded, _) = jjt_opt::fold::fold(&f).unwrap();
        prop_assert!(bits_equal(&interp::eval_outputs(&folded, &x).unwrap(), &want), "fold\n{}", jjt_ir::text::print(&f));
        prop_assert!(bits_equal(&interp::eval_outputs(&f.pruned(), &x).unwrap(), &want), "dce");
        let (laid, _) = jjt_opt::layout::layout(&f).unwrap();
        prop_assert!(bits_equal(&interp::eval_outputs(&laid, &x).unwrap(), &want), "layout\n{}", jjt_ir::text::print(&f));
        let (joined, _) = jjt_opt::siblings::siblings_with(&f, 0).unwrap();
        prop_assert!(bits_equal(&interp::eval_outputs(&joined, &x).unwrap(), &want), "siblings\n{}", jjt_ir::text::print(&f));
        for g in [&cse, &folded, &simple, &laid, &joined] {
            prop_assert!(jjt_ir::verify(g).is_ok());
        }
    }

    /// Basis elimination on random contractions with an identity: any operand shape, axis,
    /// side and identity axis; each is eliminated and the values stay bit for bit (finite
    /// inputs, through `tanh`).
    #[test]
    fn basis_elimination_preserves_values(seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let dims: Vec<usize> = (0..3).map(|_| 1 + rng.below(4)).collect();
        let (axis, left, eye_axis) = (rng.below(3), rng.below(2) == 1, rng.below(2));
        let n = dims[axis];
        let mut b = FunctionBuilder::new("e");
        let x = b.input("x", TensorType::new(DType::F64, dims.clone())).unwrap();
        let y = b.unary(Unary::Tanh, x).unwrap();
        let e = b.constant(Const::Eye { ty: TensorType::new(DType::F64, [n, n]) }).unwrap();
        let d = if left {
            DotGeneral { lhs_contract: vec![eye_axis], rhs_contract: vec![axis], ..Default::default() }
        } else {
            DotGeneral { lhs_contract: vec![axis], rhs_contract: vec![eye_axis], ..Default::default() }
        };
        let out = if left { b.dot_general(e, y, d) } else { b.dot_general(y, e, d) }.unwrap();
        let out = b.binary_scalar(Binary::Mul, out, 2.0, jjt_ir::ScalarSide::Right).unwrap();
        let f = b.finish(out).unwrap();
        let (g, stats) = jjt_opt::basis::basis(&f).unwrap();
        prop_assert!(jjt_ir::verify(&g).is_ok());
        prop_assert_eq!(stats.eliminated, 1);
        let xs = args(&mut rng, &f);
        prop_assert!(bits_equal(&interp::eval_outputs(&g, &xs).unwrap(), &interp::eval_outputs(&f, &xs).unwrap()));
    }

    #[test]
    fn reorder_stays_within_the_rounding_bound(seed in any::<u64>(), scalings in any::<bool>()) {
        let mut rng = Rng(seed | 1);
        let (f, abs_f, n_terms) =
            if scalings { random_network(&mut rng) } else { random_tree(&mut rng) };
        let (g, _) = jjt_opt::reorder::reorder(&f).unwrap();
        prop_assert!(jjt_ir::verify(&g).is_ok());
        let x = args(&mut rng, &f);
        let want = interp::eval(&f, &x).unwrap().to_f64_vec();
        let got = interp::eval(&g, &x).unwrap().to_f64_vec();
        let absx: Vec<Tensor> = x.iter().map(|t| Tensor::from_f64(&t.ty(), &t.to_f64_vec().iter().map(|v| v.abs()).collect::<Vec<_>>()).unwrap()).collect();
        let scale = interp::eval(&abs_f, &absx).unwrap().to_f64_vec();
        for i in 0..want.len() {
            let bound = 2.0 * n_terms as f64 * f64::EPSILON / 2.0 * scale[i] + f64::MIN_POSITIVE;
            prop_assert!((got[i] - want[i]).abs() <= bound, "element {i}: {} vs {}, bound {bound:e}", got[i], want[i]);
        }
    }
}

/// A random network of contractions, elementwise products (Hadamard, and scalings of rows or
/// columns by broadcast vectors), transposes and sums: `(A·B) ∘ (C·D) ∘ …`, maybe transposed,
/// maybe summed over an axis. The same network over |leaves| (the constant B replaced by |B|),
/// and the rounding-step count of an output element: the products it sums (k1·k2, times the
/// summed length), plus 5 for the up to five multiplications forming each product (each
/// evaluation order is within that many u·Σ|terms| of the exact value).
fn random_network(rng: &mut Rng) -> (Function, Function, usize) {
    let [p, k1, q, k2] = [(); 4].map(|_| 1 + rng.below(6));
    let (col, row, flip) = (rng.below(2) == 1, rng.below(2) == 1, rng.below(2) == 1);
    let sum_axis = rng.below(3); // 2: no sum
    let build = |abs: bool| {
        let mut b = FunctionBuilder::new("n");
        let f64_ty = |d: &[usize]| TensorType::new(DType::F64, d.to_vec());
        let a = b.input("a", f64_ty(&[p, k1])).unwrap();
        let c0 = b
            .constant(Const::Random {
                ty: f64_ty(&[k1, q]),
                dist: Distribution::Normal,
                seed: 5,
                offset: 0,
            })
            .unwrap();
        let bb = if abs { b.unary(Unary::Abs, c0).unwrap() } else { c0 };
        let c = b.input("c", f64_ty(&[p, k2])).unwrap();
        let d = b.input("d", f64_ty(&[k2, q])).unwrap();
        let v = b.input("v", f64_ty(&[q])).unwrap();
        let w = b.input("w", f64_ty(&[p])).unwrap();
        let mm = DotGeneral { lhs_contract: vec![1], rhs_contract: vec![0], ..Default::default() };
        let ab = b.dot_general(a, bb, mm.clone()).unwrap();
        let cd = b.dot_general(c, d, mm).unwrap();
        let mut h = b.binary(Binary::Mul, ab, cd).unwrap();
        let shape = jjt_ir::Shape(vec![p, q]);
        if col {
            let vb = b.broadcast_to(v, &shape).unwrap();
            h = b.binary(Binary::Mul, h, vb).unwrap();
        }
        if row {
            let wr = b.reshape(w, vec![p, 1]).unwrap();
            let wb = b.broadcast_to(wr, &shape).unwrap();
            h = b.binary(Binary::Mul, wb, h).unwrap();
        }
        if flip {
            h = b.transpose(h, &[1, 0]).unwrap();
        }
        if sum_axis < 2 {
            h = b.reduce(jjt_ir::ops::ReduceKind::Sum, h, Some(&[sum_axis as i64])).unwrap();
        }
        b.finish(h).unwrap()
    };
    let summed = match (sum_axis, flip) {
        (2, _) => 1,
        (0, false) | (1, true) => p,
        _ => q,
    };
    (build(false), build(true), k1 * k2 * summed + 5)
}

/// A random left-deep or right-deep chain of matrix products over inputs and constants, with
/// transposes in between; and the same chain over |leaves| (constants replaced by their
/// absolute values), and the number of multiply-adds per output element.
fn random_tree(rng: &mut Rng) -> (Function, Function, usize) {
    let dims: Vec<usize> = (0..5).map(|_| 1 + rng.below(6)).collect();
    let leaves = 3 + rng.below(2);
    let build = |abs: bool| {
        let mut b = FunctionBuilder::new("t");
        let mut mats = Vec::new();
        for i in 0..leaves {
            let ty = TensorType::new(DType::F64, [dims[i], dims[i + 1]]);
            let m = if i == 1 {
                let c = b
                    .constant(Const::Random { ty, dist: Distribution::Normal, seed: 3, offset: 0 })
                    .unwrap();
                if abs { b.unary(Unary::Abs, c).unwrap() } else { c }
            } else {
                b.input(&format!("m{i}"), ty).unwrap()
            };
            mats.push(m);
        }
        let mm = DotGeneral { lhs_contract: vec![1], rhs_contract: vec![0], ..Default::default() };
        let mut acc: NodeId = mats[0];
        for &m in &mats[1..] {
            acc = b.dot_general(acc, m, mm.clone()).unwrap();
        }
        // One transposed product on top: (acc)ᵀ then back via a contraction.
        let t = b.transpose(acc, &[1, 0]).unwrap();
        let last =
            DotGeneral { lhs_contract: vec![1], rhs_contract: vec![0], ..Default::default() };
        let out = b.dot_general(t, mats[0], last).unwrap();
        b.finish(out).unwrap()
    };
    // Contracted sizes per output element: the inner dimensions, and d0 in the last product.
    let n: usize = dims[1..leaves].iter().product::<usize>() * dims[0];
    (build(false), build(true), n)
}

fn seed_kernel(n: usize, m: usize) -> Function {
    let f = testgen::seed_model(DType::F32, n, m, 1701);
    KernelSpec { wrt: vec!["x".into()], ..Default::default() }.kernel(&f).unwrap()
}

#[test]
fn seed_kernel_is_two_matrix_vector_products() {
    let (n, m) = (10_000, 5);
    let k = seed_kernel(n, m);
    let (g, _) = jjt_opt::optimize(&k, |_, _| {}).unwrap();
    let c = jjt_opt::cost::cost(&g);
    let budget = 2.2 * (m * n) as f64 + 100.0 * (m * m) as f64;
    assert!(c.flops <= budget, "{c}");
    assert!(c.largest <= n.max(m * m), "{c}");
    // On the graph itself: no per-call node other than constants holds more than max(N, M²).
    let consts = jjt_opt::cost::constant_nodes(&g);
    for id in g.node_ids() {
        if !consts.contains(&id) {
            assert!(
                g.node(id).unwrap().ty.numel() <= n.max(m * m),
                "{id}: {}",
                g.node(id).unwrap().ty
            );
        }
    }
    // And it computes the same kernel (f32: sums of 10^4 terms reassociated; 1e-5 relative).
    let mut rng = Rng(5);
    let x: Vec<Tensor> = (0..2)
        .map(|_| {
            Tensor::from_f64(
                &TensorType::new(DType::F32, [n]),
                &(0..n).map(|_| rng.uniform(-2.0, 2.0).abs()).collect::<Vec<_>>(),
            )
            .unwrap()
        })
        .collect();
    let want = interp::eval(&k, &x).unwrap().to_f64_vec();
    let got = interp::eval(&g, &x).unwrap().to_f64_vec();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-5 * b.abs(), "{a} vs {b}");
    }
}

/// Every permutation of `0..n`, in lexicographic order.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for first in 0..n {
        for rest in permutations(n - 1) {
            let mut p = vec![first];
            p.extend(rest.into_iter().map(|r| if r >= first { r + 1 } else { r }));
            out.push(p);
        }
    }
    out
}

/// `dot_general` of x[b=2, l1=3, c=5, l2=4] and y[c=5, b=2, r=6] has output axes
/// [b, l1, l2, r]. For each of the 24 permutations of that output (through an elementwise op
/// that `layout` must sink through), the layout pass keeps the values bit for bit, and absorbs
/// the transpose into the contraction exactly when the permuted order is `b` first and then the
/// two free blocks unbroken ({l1, l2} in any order, r before or after) — counted here from the
/// permutation alone — leaving no transpose of a contraction behind. With a second user of the
/// contraction, it never does.
#[test]
fn transposes_sink_into_contractions_that_can_emit_their_layout() {
    let mut rng = Rng(41);
    for perm in permutations(4) {
        for shared in [false, true] {
            let mut b = FunctionBuilder::new("t");
            let x = b.input("x", TensorType::new(DType::F64, [2, 3, 5, 4])).unwrap();
            let y = b.input("y", TensorType::new(DType::F64, [5, 2, 6])).unwrap();
            let dims = DotGeneral {
                lhs_contract: vec![2],
                rhs_contract: vec![0],
                lhs_batch: vec![0],
                rhs_batch: vec![1],
            };
            let d = b.dot_general(x, y, dims).unwrap();
            let e = b.unary(Unary::Tanh, d).unwrap();
            let t = b.transpose(e, &perm).unwrap();
            let out = if shared {
                let s = b.reduce(jjt_ir::ops::ReduceKind::Sum, d, None).unwrap();
                let s = b.broadcast_to(s, &b.ty(t).unwrap().shape.clone()).unwrap();
                b.binary(Binary::Add, t, s).unwrap()
            } else {
                t
            };
            let f = b.finish(out).unwrap();
            let xs = args(&mut rng, &f);
            let (g, hits) = jjt_opt::layout::layout(&f).unwrap();
            assert!(jjt_ir::verify(&g).is_ok());
            let want = interp::eval_outputs(&f, &xs).unwrap();
            assert!(bits_equal(&interp::eval_outputs(&g, &xs).unwrap(), &want), "{perm:?}");
            let rest = &perm[1..];
            let lhs = |p: usize| p == 1 || p == 2;
            let blocks = rest.windows(2).filter(|w| lhs(w[0]) != lhs(w[1])).count();
            let identity = perm == [0, 1, 2, 3];
            let expressible = !identity && perm[0] == 0 && blocks <= 1 && !shared;
            let fired = hits.get("transpose_into_dot_general").copied().unwrap_or(0);
            assert_eq!(fired, usize::from(expressible), "{perm:?} shared={shared}: {hits:?}");
            let transposed_dot = g.topo_order().into_iter().any(|n| {
                matches!(g.node(n).unwrap().op, jjt_ir::Op::Transpose(_))
                    && g.operands(n)
                        .iter()
                        .any(|&o| matches!(g.node(o).unwrap().op, jjt_ir::Op::DotGeneral(_)))
            });
            assert_eq!(transposed_dot, !identity && !expressible, "{perm:?}");
        }
    }
}

/// Products with one weight `w`: `x1·w`, `x2·w` join (shared right operand); `tanh(x1·w)·w`
/// has the same shape and weight but depends on `x1·w`, so it stays apart; `w·x1ᵀ`, `w·x2ᵀ` join
/// (shared left operand, joined output axis 1). Values bit for bit; both groups join the same
/// parts (x1, x2), so the builder's hash-consing leaves one concatenation.
#[test]
fn sibling_products_join_without_cycles() {
    let f = jjt_ir::text::parse(
        "func f(x1: f64[4,6], x2: f64[4,6], w: f64[6,6]) -> f64[4,6] {
  y1 = x1 @ w
  y2 = x2 @ w
  z = tanh(y1) @ w
  u1 = dot_general(w, x1, contract=[[1],[1]], batch=[[],[]])
  u2 = dot_general(w, x2, contract=[[1],[1]], batch=[[],[]])
  return y1 + y2 + z + transpose(u1, perm=[1,0]) + transpose(u2, perm=[1,0])
}",
    )
    .unwrap();
    let (g, stats) = jjt_opt::siblings::siblings_with(&f, 0).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!((stats.groups, stats.joined), (2, 4), "{}", jjt_ir::text::print(&g));
    let concats = g
        .topo_order()
        .into_iter()
        .filter(|&n| matches!(g.node(n).unwrap().op, jjt_ir::Op::Concat(_)))
        .count();
    assert_eq!(concats, 1, "{}", jjt_ir::text::print(&g));
    let mut rng = Rng(5);
    let x = args(&mut rng, &f);
    let want = interp::eval_outputs(&f, &x).unwrap();
    assert!(bits_equal(&interp::eval_outputs(&g, &x).unwrap(), &want));
    // Below the size threshold nothing is joined.
    let (_, stats) = jjt_opt::siblings::siblings(&f).unwrap();
    assert_eq!(stats.groups, 0);
    // Parts of different lengths along the joined axis (B1 = 4, B2 = 5) join too.
    let f = jjt_ir::text::parse(
        "func f(x1: f64[4,6], x2: f64[5,6], w: f64[6,6]) -> f64[6] {
  return sum(x1 @ w, axes=[0]) + sum(tanh(x2 @ w), axes=[0])
}",
    )
    .unwrap();
    let (g, stats) = jjt_opt::siblings::siblings_with(&f, 0).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!((stats.groups, stats.joined), (1, 2), "{}", jjt_ir::text::print(&g));
    let x = args(&mut rng, &f);
    let want = interp::eval_outputs(&f, &x).unwrap();
    assert!(bits_equal(&interp::eval_outputs(&g, &x).unwrap(), &want));
}

/// With a weight smaller than the parts, products join only as a second choice: without
/// batch axes, along the parts' first axis, and only parts computed anyway. The two sides'
/// backward products `tanh(xᵢ)·wᵀ` join; `transpose(xᵢ)·wᵀ` would copy the transposes into
/// the joined buffer and stays apart. Values bit for bit.
#[test]
fn products_through_a_small_weight_join_only_computed_parts() {
    let f = jjt_ir::text::parse(
        "func f(x1: f64[8,10,6], x2: f64[8,10,6], w: f64[6,6]) -> f64[10,8,6] {
  y1 = dot_general(tanh(x1), w, contract=[[2],[1]], batch=[[],[]])
  y2 = dot_general(tanh(x2), w, contract=[[2],[1]], batch=[[],[]])
  p1 = dot_general(transpose(x1, perm=[1,0,2]), w, contract=[[2],[1]], batch=[[],[]])
  p2 = dot_general(transpose(x2, perm=[1,0,2]), w, contract=[[2],[1]], batch=[[],[]])
  return transpose(y1 + y2, perm=[1,0,2]) + p1 + p2
}",
    )
    .unwrap();
    let (g, stats) = jjt_opt::siblings::siblings_with(&f, 0).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!((stats.groups, stats.joined), (1, 2), "{}", jjt_ir::text::print(&g));
    let joined_tanh = g.topo_order().into_iter().any(|n| {
        matches!(g.node(n).unwrap().op, jjt_ir::Op::Concat(_))
            && g.operands(n).iter().all(|&o| matches!(g.node(o).unwrap().op, jjt_ir::Op::Unary(_)))
    });
    assert!(joined_tanh, "{}", jjt_ir::text::print(&g));
    let mut rng = Rng(11);
    let x = args(&mut rng, &f);
    let want = interp::eval_outputs(&f, &x).unwrap();
    assert!(bits_equal(&interp::eval_outputs(&g, &x).unwrap(), &want));
}

/// A fold cache shared by several optimisations (as `auto` shares one between its candidates):
/// the jc kernel folds A·Aᵀ from the cache after the ntvp kernel of the same A, but not after
/// the ntvp kernel of an A with another seed; with or without the cache, the optimised graphs
/// are the same.
#[test]
fn fold_cache_reuses_only_equal_constant_expressions() {
    use jjt_ad::{Mode, Strategy};
    let print = |f: &Function| jjt_ir::text::print(f);
    let jc_hits_after = |ntvp_seed: u32| {
        let mut cache = jjt_opt::fold::FoldCache::default();
        let mut jc_hits = 0;
        for (strategy, seed) in [(Strategy::Ntvp, ntvp_seed), (Strategy::Jc, 1701)] {
            let k = seed_kernel_seeded(300, 4, strategy, Mode::Full, seed);
            let before = cache.hits;
            let (cached, _) = jjt_opt::optimize_with(&k, |_, _| {}, &mut cache).unwrap();
            let (fresh, _) = jjt_opt::optimize(&k, |_, _| {}).unwrap();
            assert_eq!(print(&cached), print(&fresh), "{strategy:?} seed {seed}");
            jc_hits = cache.hits - before;
        }
        jc_hits
    };
    let (same, other) = (jc_hits_after(1701), jc_hits_after(1702));
    assert!(same > other, "hits after the same A: {same}, after another A: {other}");
}

/// `Σ_j (A·B)[i, j]·v[j]` — a product, a column scaling and a sum — is the einsum A·(B·v):
/// reordering reads the whole network and evaluates it as two matrix–vector products
/// (2·n² multiply-adds instead of n³ + n²), with no n×n intermediate, within the rounding bound
/// 2·(n² + 2)·u·Σ|terms| (n² products of three factors per output element).
#[test]
fn reorder_sees_through_scalings_and_sums() {
    let n = 20;
    let src = format!(
        "func f(a: f64[{n},{n}], b: f64[{n},{n}], v: f64[{n}]) -> f64[{n}] {{
  return sum((a @ b) * v, axes=[1])
}}"
    );
    let f = jjt_ir::text::parse(&src).unwrap();
    let (g, stats) = jjt_opt::reorder::reorder(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!(stats.rewritten, 1, "{}", jjt_ir::text::print(&g));
    assert_eq!(stats.flops_after, (2 * n * n) as f64, "{stats:?}");
    let c = jjt_opt::cost::cost(&g);
    assert!(c.largest <= n, "{c}\n{}", jjt_ir::text::print(&g));
    assert_reassociated(&f, &g, 17, (n * n) as f64 + 2.0);
}

/// `g`, a reordering of `f`, computes `f`'s values at a random point within the bound of a
/// reassociated sum, `2·n·u·Σ|terms|` per element of every output (`n` the terms' count with
/// their roundings; `Σ|terms|` is `f` on the absolute values of the inputs).
fn assert_reassociated(f: &Function, g: &Function, seed: u64, n: f64) {
    let mut rng = Rng(seed);
    let x = args(&mut rng, f);
    let values = |h: &Function, x: &[Tensor]| -> Vec<f64> {
        interp::eval_outputs(h, x).unwrap().iter().flat_map(|t| t.to_f64_vec()).collect()
    };
    let want = values(f, &x);
    let got = values(g, &x);
    let absx: Vec<Tensor> = x
        .iter()
        .map(|t| {
            let v: Vec<f64> = t.to_f64_vec().iter().map(|v| v.abs()).collect();
            Tensor::from_f64(&t.ty(), &v).unwrap()
        })
        .collect();
    let scale = values(f, &absx);
    assert_eq!((got.len(), want.len()), (scale.len(), scale.len()));
    for ((g, w), s) in got.iter().zip(&want).zip(&scale) {
        let bound = 2.0 * n * f64::EPSILON / 2.0 * s;
        assert!((g - w).abs() <= bound, "{g} vs {w}, bound {bound:e}");
    }
}

/// A sum over an axis of size 1 is one term: when reordering contracts its operand, the axis
/// is reshaped away, not summed (a sum is a step of its own where a reshape is a view; a JAX
/// export's patches carried such an axis into the CNN's last kernel gradient). `((Σ_u a)·b)·c`
/// with `c` one column becomes `a·(b·c)` with no sum left, within the reassociation bound
/// 2·(k·j + 2)·u·Σ|terms|.
#[test]
fn reorder_reshapes_away_a_sum_over_a_unit_axis() {
    let n = 20;
    let src = format!(
        "func f(a: f64[{n},1,{n}], b: f64[{n},{n}], c: f64[{n},1]) -> f64[{n},1] {{
  s = sum(a, axes=[1])
  return (s @ b) @ c
}}"
    );
    let f = jjt_ir::text::parse(&src).unwrap();
    let (g, stats) = jjt_opt::reorder::reorder(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    let text = jjt_ir::text::print(&g);
    assert_eq!(stats.rewritten, 1, "{text}");
    assert!(!text.contains("sum("), "{text}");
    assert_reassociated(&f, &g, 41, (n * n) as f64 + 2.0);
}

/// The empirical-NTK term of a weight applied per token,
/// `K[b,o,B,O] = Σ_{t,T,c} g1[b,o,t,c]·(h1[b,t]·h2[B,T])·g2[B,O,T,c]`, written in the order of
/// least multiply-adds (token Gram matrix first: 23.9 M, with a 1.3 M-element intermediate) is
/// reordered into per-example Jacobians `J = Σ_t h·g` contracted with each other (28.8 M
/// multiply-adds, two intermediates of 164 K elements): the reorder prices each intermediate
/// element at `INTERMEDIATE_MACS`. Values agree within the rounding bound
/// 2·(terms + 3)·u·Σ|terms|.
#[test]
fn reorder_prices_the_memory_of_intermediates() {
    let (b, o, t, d, c) = (16, 10, 8, 16, 64);
    let src = format!(
        "func k(h1: f64[{b},{t},{d}], g1: f64[{b},{o},{t},{c}], h2: f64[{b},{t},{d}], g2: f64[{b},{o},{t},{c}]) -> f64[{b},{o},{b},{o}] {{
  hh = dot_general(h1, h2, contract=[[2],[2]], batch=[[],[]])
  x = dot_general(g1, hh, contract=[[2],[1]], batch=[[0],[0]])
  k = dot_general(x, g2, contract=[[2,4],[3,2]], batch=[[3],[0]])
  return transpose(k, perm=[1,2,0,3])
}}"
    );
    let f = jjt_ir::text::parse(&src).unwrap();
    let (g, stats) = jjt_opt::reorder::reorder(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    let gram_first = (b * b * t * t * d + b * b * o * t * t * c + b * b * o * o * t * c) as f64;
    let jacobians = (2 * b * o * t * d * c + b * b * o * o * d * c) as f64;
    assert!(gram_first < jacobians);
    assert_eq!(stats.rewritten, 1, "{}", jjt_ir::text::print(&g));
    assert_eq!(stats.flops_before, gram_first, "{stats:?}");
    assert_eq!(stats.flops_after, jacobians, "{stats:?}\n{}", jjt_ir::text::print(&g));
    let largest = jjt_opt::cost::cost(&g).largest;
    assert_eq!(largest, b * o * d * c, "{}", jjt_ir::text::print(&g));
    assert_reassociated(&f, &g, 29, (t * t * c * d) as f64 + 3.0);
}

/// The term of an MLP weight in the empirical NTK when the weight's cotangent is a broadcast
/// weight times a per-example factor, as behind a mean over tokens:
/// `c[b,o,t,j] = a[o,j]·g[b,t,j]`, `J[b,o,j,i] = Σ_t c[b,o,t,j]·u[b,t,i]`, `K = J1·J2ᵀ` over
/// (j, i), plus the bias term `Σ_{t,j} c1 · Σ_{t,j} c2`, which gives each cotangent a second
/// user. Read with `c` as a leaf, the cheapest order still builds both Jacobians; read through
/// the product of broadcasts (recomputed for this tree), the token axis is contracted first
/// (`M = Σ_t u·g`, B·I·J·T per side), then `Σ_i M1·M2` and `Σ_j (·)·a·a`: the tree's
/// multiply-adds drop to B·I·J·T·2 + B²·I·J + O²·J + B²·O²·J. Values within the reassociation
/// bound 2·(T²·I·J + 4)·u·Σ|terms|.
#[test]
fn reorder_reads_through_a_shared_product_of_broadcasts() {
    let (b, o, t, i, j) = (4, 3, 8, 6, 12);
    let src = format!(
        "func k(a: f64[{o},{j}], u1: f64[{b},{t},{i}], g1: f64[{b},{t},{j}], u2: f64[{b},{t},{i}], g2: f64[{b},{t},{j}]) -> f64[{b},{o},{b},{o}] {{
  ar = reshape(a, shape=[1,{o},1,{j}])
  c1 = ar * reshape(g1, shape=[{b},1,{t},{j}])
  c2 = ar * reshape(g2, shape=[{b},1,{t},{j}])
  j1 = dot_general(c1, u1, contract=[[2],[1]], batch=[[0],[0]])
  j2 = dot_general(c2, u2, contract=[[2],[1]], batch=[[0],[0]])
  k = dot_general(j1, j2, contract=[[2,3],[2,3]], batch=[[],[]])
  s = dot_general(sum(c1, axes=[2,3]), sum(c2, axes=[2,3]), contract=[[],[]], batch=[[],[]])
  return k + s
}}"
    );
    assert_factored_through_product(&src, (b, o, t, i, j), 31);
}

/// A bias's term of the empirical NTK: the Gram product of per-example sums over tokens of a
/// cotangent `c[o, j]·d[b, t, j]` that other products also use (so it is computed anyway).
/// Read through the product, the sums over tokens run on `d` alone ([B, T, J], not
/// [B, O, T, J]: a pass over O times fewer elements) before `c` scales them; `reorder` prices
/// those sums at a pass over memory per element, so it takes that reading even though the
/// Gram product, the same either way, dominates the multiply-adds. Values within the rounding
/// bound of reassociation.
#[test]
fn sums_over_tokens_of_a_shared_cotangent_run_on_its_factor() {
    let (b, o, t, j) = (4, 10, 16, 32);
    let src = format!(
        "func f(c: f64[{o},{j}], d1: f64[{b},{t},{j}], d2: f64[{b},{t},{j}], w: f64[{j},{j}]) -> (f64[{b},{o},{b},{o}], f64[{b},{o},{t},{j}], f64[{b},{o},{t},{j}]) {{
  cb = broadcast_to(reshape(c, shape=[1,{o},1,{j}]), shape=[{b},{o},{t},{j}])
  g1 = cb * broadcast_to(reshape(d1, shape=[{b},1,{t},{j}]), shape=[{b},{o},{t},{j}])
  g2 = cb * broadcast_to(reshape(d2, shape=[{b},1,{t},{j}]), shape=[{b},{o},{t},{j}])
  k = dot_general(sum(g1, axes=[2]), sum(g2, axes=[2]), contract=[[2],[2]], batch=[[],[]])
  return k, dot_general(g1, w, contract=[[3],[0]], batch=[[],[]]), dot_general(g2, w, contract=[[3],[0]], batch=[[],[]])
}}"
    );
    let f = jjt_ir::text::parse(&src).unwrap();
    let f = jjt_opt::simplify::simplify(&f).unwrap().0;
    let (g, stats) = jjt_opt::reorder::reorder(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!(stats.rewritten, 1, "{stats:?}");
    // Before: both sums over [B, O, T, J] and the Gram product; after: the sums over
    // [B, T, J], the scalings by c and the same Gram product.
    let gram = (b * o * b * o * j) as f64;
    assert_eq!(stats.flops_before, (2 * b * o * t * j) as f64 + gram, "{stats:?}");
    assert!(stats.flops_after <= (2 * b * t * j + 2 * b * o * j) as f64 + gram, "{stats:?}");
    // No sum in the result reads a [B, O, T, J] value.
    let big_sum = g.topo_order().into_iter().any(|n| {
        matches!(g.node(n).unwrap().op, jjt_ir::Op::Reduce(_))
            && g.node(g.operands(n)[0]).unwrap().ty.shape.dims() == [b, o, t, j]
    });
    assert!(!big_sum, "{}", jjt_ir::text::print(&g));
    assert_reassociated(&f, &g, 37, (t * j) as f64 + 4.0);
}

/// The transposed derivative of a gelu behind a mean over tokens: the cotangent `c[o,j]`
/// broadcast over examples and tokens, times `0.5·(1 + th) + 0.5·y·s·k·(1 + 3·0.044715·y²)`
/// (`s` stands for 1 − th², written 1 + th² so that the terms evaluated on the inputs'
/// absolute values bound the rounding) expanded into a sum of products as the chain rule
/// writes it. `factor` takes `c` (and the
/// constants every term shares) out and sums the per-example coefficient at [B, T, J], not
/// [B, O, T, J]: the multiply-adds drop by more than half, and values stay within the rounding
/// of distributivity, 2·(terms + 3)·u·Σ|terms|.
#[test]
fn common_factors_leave_sums_of_products() {
    let (b, o, t, j) = (3, 5, 4, 6);
    let src = format!(
        "func f(c: f64[{o},{j}], y: f64[{b},{t},{j}], th: f64[{b},{t},{j}]) -> f64[{b},{o},{t},{j}] {{
  cb = broadcast_to(reshape(c, shape=[1,{o},1,{j}]), shape=[{b},{o},{t},{j}])
  yb = broadcast_to(reshape(y, shape=[{b},1,{t},{j}]), shape=[{b},{o},{t},{j}])
  tb = broadcast_to(reshape(th, shape=[{b},1,{t},{j}]), shape=[{b},{o},{t},{j}])
  sb = broadcast_to(reshape(1.0 + th * th, shape=[{b},1,{t},{j}]), shape=[{b},{o},{t},{j}])
  d = 0.7978845608 * (cb * 0.5 * yb * sb)
  return cb * 0.5 + cb * 0.5 * tb + d + d * 0.134145 * yb * yb
}}"
    );
    let f = jjt_ir::text::parse(&src).unwrap();
    let (g, stats) = jjt_opt::factor::factor(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!(stats.factored, 1, "{}", jjt_ir::text::print(&g));
    let flops = |f: &Function| jjt_opt::cost::cost(f).flops;
    assert!(
        flops(&g) < 0.5 * flops(&f),
        "{} vs {}\n{}",
        flops(&g),
        flops(&f),
        jjt_ir::text::print(&g)
    );
    assert_reassociated(&f, &g, 37, 7.0);
    // Through `reorder` (which factors first): no contraction of unit axes only remains (the
    // backend would run it as a batch of 1×1 products).
    let (h, stats) = jjt_opt::reorder::reorder(&f).unwrap();
    assert_eq!(stats.factored, 1);
    for n in h.node_ids() {
        let node = h.node(n).unwrap();
        if let jjt_ir::Op::DotGeneral(d) = &node.op {
            let lhs = &h.node(h.operands(n)[0]).unwrap().ty.shape.0;
            let units = d.lhs_contract.iter().all(|&a| lhs[a] == 1);
            assert!(d.lhs_contract.is_empty() || !units, "{}", jjt_ir::text::print(&h));
        }
    }
    assert_reassociated(&f, &h, 41, 7.0);
}

/// A structured kernel's sum as `reorder` writes it: per layer the weight's term `G ⊙ H` (a
/// `dot_general` contracting nothing, batch axes b and b') and the bias's `G` (transposed to
/// the same layout), and a head's `A ⊗ E` with its bias's `E`. No factor is common to every
/// term, so `factor` leaves it; with groups each pair shares one and becomes `G·(H + 1)`, each
/// of G, G2 and E read once, within the rounding of distributivity, 2·(terms + 3)·u·Σ|terms|.
#[test]
fn terms_sharing_a_factor_are_grouped() {
    let src = "func f(g: f64[3,2,4,2], h: f64[3,4], g2: f64[3,2,4,2], h2: f64[3,4], a: f64[3,4], e: f64[2,2]) -> f64[3,4,2,2] {
  t1 = dot_general(g, h, contract=[[],[]], batch=[[0,2],[0,1]])
  t2 = transpose(g, perm=[0,2,1,3])
  t3 = dot_general(g2, h2, contract=[[],[]], batch=[[0,2],[0,1]])
  t4 = transpose(g2, perm=[0,2,1,3])
  t5 = dot_general(a, e, contract=[[],[]], batch=[[],[]])
  t6 = broadcast_to(e, shape=[3,4,2,2])
  return t1 + t2 + t3 + t4 + t5 + t6
}";
    let f = jjt_ir::text::parse(src).unwrap();
    let (same, stats) = jjt_opt::factor::factor(&f).unwrap();
    assert_eq!(stats.factored, 0, "{}", jjt_ir::text::print(&same));
    let (g, stats) = jjt_opt::factor::factor_with(&f, true).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!(stats.factored, 1, "{}", jjt_ir::text::print(&g));
    for name in ["g", "g2", "e"] {
        let node = g.param(name).unwrap().node;
        assert_eq!(
            g.users(node).len(),
            1,
            "{name} read more than once:\n{}",
            jjt_ir::text::print(&g)
        );
    }
    assert_reassociated(&f, &g, 43, 9.0);
    // Subtracted terms keep their signs inside a group (G2·(−H2 − 1)) and outside one.
    let minus = src.replace("t2 + t3 + t4 + t5 + t6", "t2 - t3 - t4 + t5 - t6");
    let f2 = jjt_ir::text::parse(&minus).unwrap();
    let (g2, stats) = jjt_opt::factor::factor_with(&f2, true).unwrap();
    assert_eq!(stats.factored, 1, "{}", jjt_ir::text::print(&g2));
    let mut rng = Rng(47);
    let x = args(&mut rng, &f2);
    let (want, got) = (interp::eval(&f2, &x).unwrap(), interp::eval(&g2, &x).unwrap());
    let absx: Vec<Tensor> = x
        .iter()
        .map(|t| {
            Tensor::from_f64(&t.ty(), &t.to_f64_vec().iter().map(|v| v.abs()).collect::<Vec<_>>())
                .unwrap()
        })
        .collect();
    // The magnitudes of the terms: the all-plus sum on |inputs|.
    let scale = interp::eval(&f, &absx).unwrap().to_f64_vec();
    for ((w, g), s) in want.to_f64_vec().iter().zip(got.to_f64_vec()).zip(scale) {
        assert!((w - g).abs() <= 9.0 * f64::EPSILON * s, "{g} vs {w}");
    }
}

/// A contraction of a broadcast along an axis it neither contracts nor pairs as a batch axis
/// is computed before the broadcast (`dot_of_broadcast`, 8× fewer multiply-adds here), bit
/// for bit; a broadcast along a contracted axis stays.
#[test]
fn contractions_run_before_broadcasts_of_their_free_axes() {
    let f = jjt_ir::text::parse(
        "func f(a: f64[10,1,16], w: f64[24,16], v: f64[10,8,1]) -> (f64[10,8,24], f64[10,8,24]) {
  x = dot_general(broadcast_to(a, shape=[10,8,16]), w, contract=[[2],[1]])
  y = dot_general(broadcast_to(v, shape=[10,8,16]), w, contract=[[2],[1]])
  return x, y
}",
    )
    .unwrap();
    let (g, hits) = jjt_opt::simplify::simplify(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!(hits.get("dot_of_broadcast").copied(), Some(1), "{hits:?}");
    let flops = |f: &Function| jjt_opt::cost::cost(f).flops;
    assert!(flops(&g) < 0.6 * flops(&f), "{} vs {}", flops(&g), flops(&f));
    let x = g.outputs()[0];
    assert!(
        matches!(g.node(x).unwrap().op, jjt_ir::Op::BroadcastTo(_)),
        "{}",
        jjt_ir::text::print(&g)
    );
    assert!(same_values(&f, &g, 5));
}

/// A transpose moves through a broadcast to its operand when it keeps the broadcast's new
/// leading axes in place (then through `tanh` to the input, leaving a transposed view of `x`
/// under the broadcast), and stays put when it moves them. Values bit for bit either way.
#[test]
fn transposes_sink_through_broadcasts() {
    for (perm, moves) in [([0, 2, 1], true), ([1, 0, 2], false), ([2, 1, 0], false)] {
        let mut b = FunctionBuilder::new("t");
        let x = b.input("x", TensorType::new(DType::F64, [3, 1])).unwrap();
        let e = b.unary(Unary::Tanh, x).unwrap();
        let shape = jjt_ir::Shape(vec![2, 3, 4]);
        let bc = b.broadcast_to(e, &shape).unwrap();
        let t = b.transpose(bc, &perm).unwrap();
        let f = b.finish(t).unwrap();
        let (g, hits) = jjt_opt::layout::layout(&f).unwrap();
        assert!(jjt_ir::verify(&g).is_ok());
        let fired = hits.get("transpose_through_broadcast").copied().unwrap_or(0);
        assert_eq!(fired, usize::from(moves), "{perm:?}: {hits:?}");
        let out = g.node(g.output()).unwrap();
        assert_eq!(
            matches!(out.op, jjt_ir::Op::BroadcastTo(_)),
            moves,
            "{perm:?}\n{}",
            jjt_ir::text::print(&g)
        );
        assert!(same_values(&f, &g, 3), "{perm:?}");
    }
}

/// A pool's upsampled cotangent, `reshape(broadcast_to(x, [2,4,2,3,2,5]), [2,8,6,5])`, merges
/// broadcast axes with stored ones, so no strided view reads it; the relu select that reads
/// it is computed in the broadcast's shape instead (mask and zeros reshaped there, splits) and
/// its result reshaped back: `reshape_out_of_elementwise` fires once, the select's shape is
/// the broadcast's, and the values are bit for bit the original's. A reshape whose merges do
/// not mix broadcast and stored axes (`[2,4,1,3,1,5]` → `[2,4,3,5]`) is left alone.
#[test]
fn reshapes_of_broadcasts_move_out_of_elementwise_ops() {
    let src = |from: &str, to: &str, bc: &str| {
        format!(
            "func f(x: f64[{from}], z: f64[{to}]) -> f64[{to}] {{\n  \
             u = reshape(broadcast_to(x, shape=[{bc}]), shape=[{to}])\n  \
             return select(z > 0.0, u, full(f64[{to}], 0.0))\n}}"
        )
    };
    for (from, to, bc, moves) in [
        ("2,4,1,3,1,5", "2,8,6,5", "2,4,2,3,2,5", true),
        ("2,4,1,3,1,5", "2,4,3,5", "2,4,1,3,1,5", false),
    ] {
        let f = jjt_ir::text::parse(&src(from, to, bc)).unwrap();
        let (g, hits) = jjt_opt::layout::layout(&f).unwrap();
        assert!(jjt_ir::verify(&g).is_ok());
        let fired = hits.get("reshape_out_of_elementwise").copied().unwrap_or(0);
        assert_eq!(fired, usize::from(moves), "{to}: {hits:?}");
        let out = g.node(g.output()).unwrap();
        if moves {
            assert!(matches!(out.op, jjt_ir::Op::Reshape(_)), "{}", jjt_ir::text::print(&g));
            let sel = g.node(g.operands(g.output())[0]).unwrap();
            assert!(matches!(sel.op, jjt_ir::Op::Select(_)), "{}", jjt_ir::text::print(&g));
            assert_eq!(sel.ty.shape.dims(), [2, 4, 2, 3, 2, 5]);
        }
        assert!(same_values(&f, &g, 5), "{to}");
    }
}

/// Both sides' elementwise work on the halves of a joined product, concatenated again for the
/// next one: the bias and relu of each half, and each half's relu mask reshaped and broadcast
/// under a select, become one joined step each (`unsplit`: two concatenations replaced, no
/// concatenation left), the parts' other users reading halves; values bit for bit. Parts that
/// are not twins (different ops, or two inputs that only a copy would join) stay apart.
#[test]
fn twin_parts_of_a_joined_product_are_computed_once() {
    let f = jjt_ir::text::parse(
        "func f(y: f64[5,4], b: f64[4], g: f64[5,3,4]) -> (f64[5,4], f64[5,3,4], f64[2,4]) {\n\
         \x20 b2 = broadcast_to(b, shape=[2,4])\n\
         \x20 b3 = broadcast_to(b, shape=[3,4])\n\
         \x20 h1 = relu(slice(y, start=[0,0], stop=[2,4]) + b2)\n\
         \x20 h2 = relu(slice(y, start=[2,0], stop=[5,4]) + b3)\n\
         \x20 m1 = broadcast_to(reshape(slice(y, start=[0,0], stop=[2,4]) > 0.0, shape=[2,1,4]), shape=[2,3,4])\n\
         \x20 m2 = broadcast_to(reshape(slice(y, start=[2,0], stop=[5,4]) > 0.0, shape=[3,1,4]), shape=[3,3,4])\n\
         \x20 s1 = select(m1, slice(g, start=[0,0,0], stop=[2,3,4]), full(f64[2,3,4], 0.0))\n\
         \x20 s2 = select(m2, slice(g, start=[2,0,0], stop=[5,3,4]), full(f64[3,3,4], 0.0))\n\
         \x20 return concat(h1, h2, axis=0), concat(s1, s2, axis=0), h1 * 2.0\n}",
    )
    .unwrap();
    let (g, joined) = jjt_opt::unsplit::unsplit(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!(joined, 2);
    let text = jjt_ir::text::print(&g);
    assert!(!text.contains("concat("), "{text}");
    assert_eq!(text.matches("relu(").count(), 1, "{text}");
    assert_eq!(text.matches("select(").count(), 1, "{text}");
    assert!(same_values(&f, &g, 9));

    for src in [
        "func f(y: f64[5,4]) -> f64[5,4] {\n  \
         return concat(relu(slice(y, start=[0,0], stop=[2,4])), tanh(slice(y, start=[2,0], stop=[5,4])), axis=0)\n}",
        "func f(a: f64[2,4], c: f64[3,4]) -> f64[5,4] {\n  return concat(relu(a), relu(c), axis=0)\n}",
    ] {
        let f = jjt_ir::text::parse(src).unwrap();
        let (_, joined) = jjt_opt::unsplit::unsplit(&f).unwrap();
        assert_eq!(joined, 0, "{src}");
    }
}

#[test]
fn simplifier_rules_fire_and_count() {
    let f = jjt_ir::text::parse(
        "func f(x: f64[2,3]) -> f64[2,3] {\n  a = neg(neg(x)) * 1.0\n  b = transpose(transpose(a, perm=[1,0]), perm=[1,0])\n  return b + (-0.0) - 0.0\n}",
    )
    .unwrap();
    let (g, hits) = jjt_opt::simplify::simplify(&f).unwrap();
    for rule in ["neg_neg", "mul_by_one", "transpose_of_transpose", "add_negative_zero", "sub_zero"]
    {
        assert!(hits.get(rule).copied().unwrap_or(0) >= 1, "{rule} did not fire: {hits:?}");
    }
    // Everything cancels: the output is the input.
    assert_eq!(g.output(), g.params()[0].node, "{}", jjt_ir::text::print(&g));
}

/// MLP 784→512→512→10 (tanh), B1 = B2 = 32, wrt all parameters: `auto` picks a plan whose
/// per-call multiply-adds are at most the structured-derivatives count
/// N·O·FP + N²·O²·Σ widths — N = 32 examples per side, O = 10 outputs, FP = 784·512 + 512·512 +
/// 512·10 multiply-adds of one forward pass, Σ widths = 512 + 512 + 10 (the layer outputs) — and
/// whose peak live bytes are below the size of one Jacobian (N·O·P f32 values, P = 669 706).
/// `examples/models/mlp.jjt` and its parameter names.
fn mlp_model() -> (Function, Vec<String>) {
    let f = jjt_ir::text::parse_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/models/mlp.jjt"
    )))
    .unwrap();
    (f, ["w0", "b0", "w1", "b1", "w2", "b2"].iter().map(|s| s.to_string()).collect())
}

#[test]
fn mlp_auto_plan_is_structured() {
    let (f, params) = mlp_model();
    let spec = KernelSpec {
        wrt: params.clone(),
        shared: params,
        batch: Some((32, 32)),
        ..Default::default()
    };
    let choice = jjt_opt::auto::choose(&spec, &f).unwrap();
    let (n, o) = (32.0, 10.0);
    let fp = 784.0 * 512.0 + 512.0 * 512.0 + 512.0 * 10.0;
    let widths = 512.0 + 512.0 + 10.0;
    let sd = n * o * fp + n * n * o * o * widths;
    assert!(
        choice.cost.flops <= sd,
        "auto: {} ({:?}); structured derivatives: {sd:e}",
        choice.cost,
        choice.strategy
    );
    let p = 784.0 * 512.0 + 512.0 + 512.0 * 512.0 + 512.0 + 512.0 * 10.0 + 10.0;
    let jacobian_bytes = n * o * p * 4.0;
    assert!(choice.cost.peak_bytes < jacobian_bytes, "{}", choice.cost);
}

/// The zoo's MLP weights behind a mean over tokens (B1 = B2 = 16, every parameter): the
/// optimiser never forms their per-example Jacobians. The transformer's w1 (128×512) term
/// costs 2·160·512·128·32 + 160²·65536 = 2.3·10⁹ multiply-adds in the Jacobian order and the
/// whole kernel 6.7·10⁹ with it; the mixer's wc1 (64×256) term 5.9·10⁸, the whole 1.27·10⁹
/// (before its gelu's cotangent was factored). Both must come in well below, and no
/// contraction of unit axes only (a batch of 1×1 products in the backend) may remain.
#[test]
fn zoo_mlp_weights_skip_per_example_jacobians() {
    for (model, limit) in [("transformer", 5.0e9), ("mixer", 9.0e8)] {
        let path = format!("{}/../../benches/models/{model}.jjt", env!("CARGO_MANIFEST_DIR"));
        let f = jjt_ir::text::parse_file(std::path::Path::new(&path)).unwrap();
        let params: Vec<String> = f.params().iter().skip(1).map(|p| p.name.clone()).collect();
        let spec = KernelSpec {
            wrt: params.clone(),
            shared: params,
            batch: Some((16, 16)),
            ..Default::default()
        };
        let choice = jjt_opt::auto::choose(&spec, &f).unwrap();
        assert!(choice.cost.flops < limit, "{model}: {}", choice.cost);
        let k = &choice.kernel;
        for n in k.node_ids() {
            if let jjt_ir::Op::DotGeneral(d) = &k.node(n).unwrap().op {
                let lhs = &k.node(k.operands(n)[0]).unwrap().ty.shape.0;
                let units_only =
                    !d.lhs_contract.is_empty() && d.lhs_contract.iter().all(|&a| lhs[a] == 1);
                assert!(!units_only, "{model}: {}", jjt_ir::text::print(k));
            }
        }
    }
}

/// Staging: prepare(θ) then call(x1, x2, hoisted) equals the unstaged kernel bit for bit, and
/// the per-call part does no more work than the whole.
#[test]
fn staged_kernel_equals_unstaged() {
    let f = jjt_ir::text::parse(
        "func mlp(x: f64[4], w0: f64[4,5], b0: f64[5], w1: f64[5,3], b1: f64[3]) -> f64[3] {\n  h = tanh(x @ w0 + b0)\n  return h @ w1 + b1\n}",
    )
    .unwrap();
    let params: Vec<String> = ["w0", "b0", "w1", "b1"].iter().map(|s| s.to_string()).collect();
    for strategy in [jjt_ad::Strategy::Ntvp, jjt_ad::Strategy::Jc] {
        let spec = KernelSpec {
            wrt: params.clone(),
            shared: params.clone(),
            batch: Some((2, 3)),
            strategy,
            ..Default::default()
        };
        let (k, _) = jjt_opt::optimize(&spec.kernel(&f).unwrap(), |_, _| {}).unwrap();
        let shared: Vec<bool> = k.params().iter().map(|p| params.contains(&p.name)).collect();
        let st = jjt_opt::stage::stage(&k, &shared).unwrap();
        let mut rng = Rng(11);
        let x = args(&mut rng, &k);
        let want = interp::eval_outputs(&k, &x).unwrap();
        let pin: Vec<Tensor> = st.prepare_inputs.iter().map(|&i| x[i].clone()).collect();
        let hoisted = match &st.prepare {
            Some(p) => interp::eval_outputs(p, &pin).unwrap(),
            None => Vec::new(),
        };
        let mut cin: Vec<Tensor> = st.call_inputs.iter().map(|&i| x[i].clone()).collect();
        cin.extend(hoisted);
        let got = interp::eval_outputs(&st.call, &cin).unwrap();
        assert!(bits_equal(&got, &want), "{strategy}");
        assert!(jjt_opt::cost::cost(&st.call).flops <= jjt_opt::cost::cost(&k).flops, "{strategy}");
    }
}

/// Basis elimination: a contraction with an identity equals the transposed operand for finite,
/// non-zero inputs (bit for bit), on both sides and on every axis.
#[test]
fn basis_elimination_is_a_relabelling() {
    for (src, eliminated) in [
        ("func f(x: f64[3,4]) -> f64[3,4] { return eye(f64[3,3]) @ x }", 1),
        ("func f(x: f64[3,4]) -> f64[3,4] { return x @ eye(f64[4,4]) }", 1),
        (
            "func f(x: f64[2,4,3]) -> f64[3,2,4] { return dot_general(eye(f64[3,3]), x, contract=[[1],[2]], batch=[[],[]]) }",
            1,
        ),
        (
            "func f(x: f64[3,4]) -> f64[3,3] { return dot_general(x, eye(f64[3,4]), contract=[[1],[1]], batch=[[],[]]) }",
            0,
        ),
    ] {
        let f = jjt_ir::text::parse(src).unwrap();
        let (g, stats) = jjt_opt::basis::basis(&f).unwrap();
        assert_eq!(stats.eliminated, eliminated, "{src}");
        let mut rng = Rng(17);
        let x = args(&mut rng, &f);
        assert!(
            bits_equal(
                &interp::eval_outputs(&g, &x).unwrap(),
                &interp::eval_outputs(&f, &x).unwrap()
            ),
            "{src}"
        );
    }
    // The MLP kernel's basis contraction (ct · w2ᵀ) disappears.
    let (f, params) = mlp_model();
    let spec = KernelSpec {
        wrt: params.clone(),
        shared: params,
        batch: Some((2, 2)),
        strategy: jjt_ad::Strategy::Jc,
        ..Default::default()
    };
    let (_, stats) = jjt_opt::basis::basis(&spec.kernel(&f).unwrap()).unwrap();
    assert!(stats.eliminated >= 1);
}

/// Parameter-only work moves to `prepare`: here `w0·w1` (a product of two shared inputs).
#[test]
fn staging_hoists_parameter_only_products() {
    let f = jjt_ir::text::parse(
        "func f(x: f64[4], w0: f64[4,6], w1: f64[6,3]) -> f64[3] { return tanh(x @ (w0 @ w1)) }",
    )
    .unwrap();
    let shared = vec![false, true, true];
    let st = jjt_opt::stage::stage(&f, &shared).unwrap();
    let prepare = st.prepare.expect("w0·w1 is hoisted");
    assert_eq!(prepare.outputs().len(), 1);
    assert!(jjt_opt::cost::cost(&st.call).flops < jjt_opt::cost::cost(&f).flops);
}

/// Every pass on the example kernels (the seed at a small size, the MLP model, every strategy
/// and mode): exact passes bit for bit; the whole pipeline (with reordering) within a relative
/// 1e-12 of the kernel's largest entry (f64, sums of at most a few hundred terms reassociated).
#[test]
fn passes_on_example_kernels() {
    let mlp = jjt_ir::text::parse(
        "func mlp(x: f64[6], w0: f64[6,5], b0: f64[5], w1: f64[5,3], b1: f64[3]) -> f64[3] {\n  h = tanh(x @ w0 + b0)\n  return h @ w1 + b1\n}",
    )
    .unwrap();
    let params: Vec<String> = ["w0", "b0", "w1", "b1"].iter().map(|s| s.to_string()).collect();
    let mut kernels = vec![];
    for strategy in [jjt_ad::Strategy::Ntvp, jjt_ad::Strategy::Jc] {
        for mode in [jjt_ad::Mode::Full, jjt_ad::Mode::Trace, jjt_ad::Mode::Diagonal] {
            kernels.push(
                KernelSpec {
                    wrt: params.clone(),
                    shared: params.clone(),
                    batch: Some((2, 3)),
                    strategy,
                    mode,
                    ..Default::default()
                }
                .kernel(&mlp)
                .unwrap(),
            );
            kernels.push(seed_kernel_f64(40, 3, strategy, mode));
        }
    }
    let mut rng = Rng(29);
    for k in &kernels {
        let x: Vec<Tensor> = k
            .params()
            .iter()
            .map(|p| {
                Tensor::from_f64(
                    &p.ty,
                    &(0..p.ty.numel())
                        .map(|_| rng.uniform(-2.0, 2.0).abs() + 0.1)
                        .collect::<Vec<_>>(),
                )
                .unwrap()
            })
            .collect();
        let want = interp::eval_outputs(k, &x).unwrap();
        for (name, g) in [
            ("cse", jjt_opt::cse(k).unwrap()),
            ("simplify", jjt_opt::simplify::simplify(k).unwrap().0),
            ("fold", jjt_opt::fold::fold(k).unwrap().0),
            ("dce", jjt_opt::dce::dce(k)),
            ("layout", jjt_opt::layout::layout(k).unwrap().0),
            ("siblings", jjt_opt::siblings::siblings_with(k, 0).unwrap().0),
            ("basis", jjt_opt::basis::basis(k).unwrap().0),
        ] {
            assert!(
                bits_equal(&interp::eval_outputs(&g, &x).unwrap(), &want),
                "{name} on {}",
                k.name
            );
        }
        let (opt, _) = jjt_opt::optimize(k, |_, _| {}).unwrap();
        let got = interp::eval_outputs(&opt, &x).unwrap();
        let (w, g) = (want[0].to_f64_vec(), got[0].to_f64_vec());
        let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in g.iter().zip(&w) {
            assert!((a - b).abs() <= 1e-12 * scale, "{}: {a} vs {b}", k.name);
        }
    }
}

fn seed_kernel_f64(n: usize, m: usize, strategy: jjt_ad::Strategy, mode: jjt_ad::Mode) -> Function {
    seed_kernel_seeded(n, m, strategy, mode, 1701)
}

fn seed_kernel_seeded(
    n: usize,
    m: usize,
    strategy: jjt_ad::Strategy,
    mode: jjt_ad::Mode,
    seed: u32,
) -> Function {
    let f = testgen::seed_model(DType::F64, n, m, seed);
    KernelSpec { wrt: vec!["x".into()], strategy, mode, ..Default::default() }.kernel(&f).unwrap()
}

/// `auto` with a pluggable price keeps the candidate priced lowest, whatever the price says:
/// priced by node count it keeps the smaller graph, by minus the node count the larger one;
/// each candidate's reported price is the price of its optimised graph, and a candidate
/// priced infinite loses to any finite one.
#[test]
fn auto_keeps_the_candidate_priced_lowest() {
    let (f, params) = mlp_model();
    let spec = KernelSpec {
        wrt: params.clone(),
        shared: params,
        batch: Some((4, 3)),
        ..Default::default()
    };
    let nodes = |g: &Function| g.node_ids().count() as f64;
    let small = jjt_opt::auto::choose_with(&spec, &f, &nodes).unwrap();
    let large = jjt_opt::auto::choose_with(&spec, &f, &|g| -nodes(g)).unwrap();
    let prices: Vec<f64> = small.candidates.iter().map(|c| c.price).collect();
    assert_eq!(prices.len(), 2);
    assert_ne!(prices[0], prices[1], "the candidates must differ for this test to mean anything");
    let min = prices.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(nodes(&small.kernel), min);
    assert_eq!(-nodes(&large.kernel), -prices.iter().copied().fold(0.0, f64::max));
    assert_ne!(small.strategy, large.strategy);
    for (c, d) in small.candidates.iter().zip(&large.candidates) {
        assert_eq!((c.strategy, c.price), (d.strategy, -d.price));
    }
    // A candidate that cannot run (infinite price) is never kept over one that can.
    let jc = if small.strategy == jjt_ad::Strategy::Jc { &small.kernel } else { &large.kernel };
    let jc_only = |g: &Function| if nodes(g) == nodes(jc) { 1.0 } else { f64::INFINITY };
    assert_eq!(
        jjt_opt::auto::choose_with(&spec, &f, &jc_only).unwrap().strategy,
        jjt_ad::Strategy::Jc
    );
}

/// A sum over exactly the axes a product contracts of the same operand rides along the product
/// (`sums`): no reduction is left, the product's old columns are the same values bit for bit
/// (the interpreter's order of terms does not depend on the other columns), and the sum is
/// within n·u·Σ|terms| of the reduction's (another order of the same n terms). Covered: the
/// operand on the left, and on the right through a transpose whose batch axis comes before
/// the free one (the sum is transposed back to the operand's order); the other operand
/// rearranged with its contracted axes innermost (1024 of them against 2 columns) and with its
/// columns innermost (20 against 16); the operand through a reshape that inserts a unit axis
/// and a transpose (as models exported from JAX write a convolution's kernel gradient), and
/// through one that drops a unit axis the sum keeps. A sum over other axes,
/// a product whose other operand is more than a quarter of the summed one, or one whose
/// columns fill whole vectors (8 of f64), is left alone.
#[test]
fn sums_over_contracted_axes_ride_along_products() {
    let cases = [
        "func f(x: f64[4,8,32,32], w: f64[4,32,32,2]) -> (f64[4,8,2], f64[4,8]) {\n  \
         return dot_general(x, w, contract=[[2,3],[1,2]], batch=[[0],[0]]), sum(x, axes=[2,3])\n}",
        "func f(x: f64[8,2,16,16], w: f64[2,16,16,2]) -> (f64[2,2,8], f64[8,2]) {\n  \
         t = transpose(x, perm=[1,3,2,0])\n  \
         return dot_general(w, t, contract=[[1,2],[1,2]], batch=[[0],[0]]), sum(x, axes=[2,3])\n}",
        "func f(x: f64[4,80,4,4], w: f64[4,4,4,20]) -> (f64[4,80,20], f64[4,80]) {\n  \
         return dot_general(x, w, contract=[[2,3],[1,2]], batch=[[0],[0]]), sum(x, axes=[2,3])\n}",
        "func f(x: f64[4,3,16,16,8], w: f64[4,5,1,16,16]) -> (f64[4,3,8,5], f64[4,3,8]) {\n  \
         t = transpose(reshape(x, shape=[4,3,1,16,16,8]), perm=[0,1,2,5,3,4])\n  \
         return dot_general(t, w, contract=[[2,4,5],[2,3,4]], batch=[[0],[0]]), sum(x, axes=[2,3])\n}",
        "func f(x: f64[4,1,16,16,8], w: f64[4,16,16,2]) -> (f64[4,8,2], f64[4,1,8]) {\n  \
         t = transpose(reshape(x, shape=[4,16,16,8]), perm=[0,3,1,2])\n  \
         return dot_general(t, w, contract=[[2,3],[1,2]], batch=[[0],[0]]), sum(x, axes=[2,3])\n}",
    ];
    for src in cases {
        let f = jjt_ir::text::parse(src).unwrap();
        let (g, rode) = jjt_opt::sums::sums_with(&f, 0).unwrap();
        assert!(jjt_ir::verify(&g).is_ok());
        assert_eq!(rode, 1, "{src}");
        let text = jjt_ir::text::print(&g);
        assert!(!text.contains("sum("), "{text}");
        assert_eq!(text.matches("dot_general(").count(), 1, "{text}");
        let xs = args(&mut Rng(11), &f);
        let want = interp::eval_outputs(&f, &xs).unwrap();
        let got = interp::eval_outputs(&g, &xs).unwrap();
        assert!(bits_equal(&got[..1], &want[..1]), "{text}");
        // n = 1024, 256, 16 or 256 terms in [-2, 2]: each sum within n·u·2n of the reduction's.
        let n = (xs[0].ty().numel() / want[1].ty().numel()) as f64;
        let bound = n * f64::EPSILON / 2.0 * 2.0 * n;
        let (a, b) = (got[1].to_f64_vec(), want[1].to_f64_vec());
        assert_eq!(got[1].ty(), want[1].ty());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= bound, "{x} vs {y} (bound {bound:e})");
        }
    }
    for src in [
        "func f(x: f64[4,8,32,32], w: f64[4,32,32,2]) -> (f64[4,8,2], f64[4,8,32]) {\n  \
         return dot_general(x, w, contract=[[2,3],[1,2]], batch=[[0],[0]]), sum(x, axes=[3])\n}",
        "func f(x: f64[4,3,32,32], w: f64[4,32,32,5]) -> (f64[4,3,5], f64[4,3]) {\n  \
         return dot_general(x, w, contract=[[2,3],[1,2]], batch=[[0],[0]]), sum(x, axes=[2,3])\n}",
        "func f(x: f64[4,64,32,32], w: f64[4,32,32,8]) -> (f64[4,64,8], f64[4,64]) {\n  \
         return dot_general(x, w, contract=[[2,3],[1,2]], batch=[[0],[0]]), sum(x, axes=[2,3])\n}",
    ] {
        let f = jjt_ir::text::parse(src).unwrap();
        let (_, rode) = jjt_opt::sums::sums_with(&f, 0).unwrap();
        assert_eq!(rode, 0, "{src}");
    }
}

/// A relu layer's kernel term behind a linear head: the cotangent is
/// `select(z > 0, w[o, c], 0)` over [B, O, P, C] (the head's weight broadcast, masked per
/// example), used by the Gram product of per-example Jacobians `Σ_p c·u` and by a bias sum.
/// `masks` makes both selects products with masks (values unchanged for finite inputs);
/// `reorder` then reads through them and sums each side's patches under its mask first: at
/// most `2·B·P·C·I + B²·C·I + O²·C + B²·O²·C` multiply-adds for K and `2·(B·P·C + B·O·C)`
/// for the bias sums (the masks summed over positions, then scaled by w), where the selects as
/// leaves leave K the Jacobians' `2·B·O·P·C·I + B²·O²·C·I`. Values within the rounding bound of
/// reassociation. Selects whose kept branch is not a broadcast, or whose other branch is not
/// zero, stay.
#[test]
fn masks_let_reorder_read_through_relu_cotangents() {
    let (b, o, p, c, i) = (4, 3, 8, 6, 5);
    let src = format!(
        "func k(w: f64[{o},{c}], z1: f64[{b},{p},{c}], u1: f64[{b},{p},{i}], z2: f64[{b},{p},{c}], u2: f64[{b},{p},{i}]) -> (f64[{b},{o},{b},{o}], f64[{b},{o},{c}], f64[{b},{o},{c}]) {{
  wb = broadcast_to(reshape(w, shape=[1,{o},1,{c}]), shape=[{b},{o},{p},{c}])
  zero = broadcast_to(zeros(f64[{c}]), shape=[{b},{o},{p},{c}])
  m1 = broadcast_to(reshape(z1 > 0.0, shape=[{b},1,{p},{c}]), shape=[{b},{o},{p},{c}])
  m2 = broadcast_to(reshape(z2 > 0.0, shape=[{b},1,{p},{c}]), shape=[{b},{o},{p},{c}])
  c1 = select(m1, wb, zero)
  c2 = select(m2, wb, zero)
  j1 = dot_general(c1, u1, contract=[[2],[1]], batch=[[0],[0]])
  j2 = dot_general(c2, u2, contract=[[2],[1]], batch=[[0],[0]])
  return dot_general(j1, j2, contract=[[2,3],[2,3]], batch=[[],[]]), sum(c1, axes=[2]), sum(c2, axes=[2])
}}"
    );
    let f = jjt_ir::text::parse(&src).unwrap();
    let f = jjt_opt::simplify::simplify(&f).unwrap().0;
    let (m, rewritten) = jjt_opt::masks::masks(&f).unwrap();
    assert!(jjt_ir::verify(&m).is_ok());
    assert_eq!(rewritten, 2);
    assert!(!jjt_ir::text::print(&m).contains("select("));
    // The same values (finite inputs; products compare equal to the selects' zeros).
    let xs = args(&mut Rng(41), &f);
    let (want, got) =
        (interp::eval_outputs(&f, &xs).unwrap(), interp::eval_outputs(&m, &xs).unwrap());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.to_f64_vec(), w.to_f64_vec());
    }
    let (_, plain) = jjt_opt::reorder::reorder(&f).unwrap();
    let (g, masked) = jjt_opt::reorder::reorder(&m).unwrap();
    let jacobians = (2 * b * o * p * c * i + b * b * o * o * c * i) as f64;
    let factored = (2 * b * p * c * i + b * b * c * i + o * o * c + b * b * o * o * c) as f64
        + (2 * (b * p * c + b * o * c)) as f64;
    assert!(plain.flops_after >= jacobians || plain.rewritten == 0, "{plain:?}");
    assert!(masked.flops_after <= factored, "{masked:?}\n{}", jjt_ir::text::print(&g));
    assert_reassociated(&f, &g, 43, (p * p * c * i) as f64 + 4.0);
    // Not a broadcast kept, or not a zero dropped: unchanged.
    for body in [
        format!("select(z1 > 0.0, z2, zeros(f64[{b},{p},{c}]))"),
        format!(
            "select(z1 > 0.0, broadcast_to(w[0:1, :], shape=[{b},{p},{c}]), full(f64[{b},{p},{c}], 1.0))"
        ),
    ] {
        let src = format!(
            "func k(w: f64[{o},{c}], z1: f64[{b},{p},{c}], z2: f64[{b},{p},{c}]) -> f64[{b},{p},{c}] {{\n  return {body}\n}}"
        );
        let f = jjt_ir::text::parse(&src).unwrap();
        assert_eq!(jjt_opt::masks::masks(&f).unwrap().1, 0, "{src}");
    }
}

/// Average pooling's cotangent behind a relu: the pooled cotangent broadcast over each 2×2
/// window and reshaped to the input's positions, `select(z > 0, reshape(broadcast(g)), 0)`.
/// `masks` sees through the reshape to the broadcast (four times fewer elements) and makes
/// it a product with the mask: the same values for finite inputs, on every element
/// (including those whose mask is false, and a kept branch with negative values).
#[test]
fn masks_see_through_the_reshape_of_an_upsampled_cotangent() {
    let (b, h, c) = (3, 4, 5);
    let (hh, h2) = (h / 2, h);
    let src = format!(
        "func k(g: f64[{b},{hh},{hh},{c}], z: f64[{b},{h2},{h2},{c}]) -> f64[{b},{h2},{h2},{c}] {{
  up = reshape(broadcast_to(reshape(g, shape=[{b},{hh},1,{hh},1,{c}]), shape=[{b},{hh},2,{hh},2,{c}]), shape=[{b},{h2},{h2},{c}])
  return select(z > 0.0, up, zeros(f64[{b},{h2},{h2},{c}]))
}}"
    );
    let f = jjt_ir::text::parse(&src).unwrap();
    let (m, rewritten) = jjt_opt::masks::masks(&f).unwrap();
    assert!(jjt_ir::verify(&m).is_ok());
    assert_eq!(rewritten, 1);
    assert!(!jjt_ir::text::print(&m).contains("select("));
    let xs = args(&mut Rng(47), &f);
    let (want, got) =
        (interp::eval_outputs(&f, &xs).unwrap(), interp::eval_outputs(&m, &xs).unwrap());
    let (want, got) = (want[0].to_f64_vec(), got[0].to_f64_vec());
    assert!(want.contains(&0.0) && want.iter().any(|&x| x < 0.0));
    assert_eq!(got, want);
}

/// As `reorder_reads_through_a_shared_product_of_broadcasts`, with the products reshaped to
/// insert a unit axis before the contractions read them (as models exported from JAX write
/// them): a reshape that only inserts or drops unit axes is read as a relabelling, so the tree
/// still reaches the factors behind it, within the same multiply-add bound.
#[test]
fn reorder_reads_through_reshapes_of_unit_axes() {
    let (b, o, t, i, j) = (4, 3, 8, 6, 12);
    let src = format!(
        "func k(a: f64[{o},{j}], u1: f64[{b},{t},{i}], g1: f64[{b},{t},{j}], u2: f64[{b},{t},{i}], g2: f64[{b},{t},{j}]) -> f64[{b},{o},{b},{o}] {{
  ar = reshape(a, shape=[1,{o},1,{j}])
  c1 = reshape(ar * reshape(g1, shape=[{b},1,{t},{j}]), shape=[{b},{o},1,{t},{j}])
  c2 = reshape(ar * reshape(g2, shape=[{b},1,{t},{j}]), shape=[{b},{o},1,{t},{j}])
  j1 = dot_general(c1, u1, contract=[[3],[1]], batch=[[0],[0]])
  j2 = dot_general(c2, u2, contract=[[3],[1]], batch=[[0],[0]])
  k = dot_general(j1, j2, contract=[[2,3,4],[2,3,4]], batch=[[],[]])
  s = dot_general(sum(c1, axes=[2,3,4]), sum(c2, axes=[2,3,4]), contract=[[],[]], batch=[[],[]])
  return k + s
}}"
    );
    assert_factored_through_product(&src, (b, o, t, i, j), 37);
}

/// The checks of `reorder_reads_through_a_shared_product_of_broadcasts` and
/// `reorder_reads_through_reshapes_of_unit_axes` (`src` built from the extents `(b, o, t, i, j)`): `reorder`
/// rewrites the Gram product of per-example Jacobians (at least their multiply-adds before) into
/// the factored order (at most `2·B·I·J·T + B²·I·J + O²·J + B²·O²·J` after), values within the
/// rounding bound of reassociation.
fn assert_factored_through_product(
    src: &str,
    (b, o, t, i, j): (usize, usize, usize, usize, usize),
    seed: u64,
) {
    let f = jjt_ir::text::parse(src).unwrap();
    let f = jjt_opt::simplify::simplify(&f).unwrap().0;
    let (g, stats) = jjt_opt::reorder::reorder(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    let jacobians = (2 * b * o * j * i * t + b * b * o * o * j * i) as f64;
    let factored = (2 * b * i * j * t + b * b * i * j + o * o * j + b * b * o * o * j) as f64;
    assert!(stats.flops_before >= jacobians, "{stats:?}");
    assert!(stats.flops_after <= factored, "{stats:?}\n{}", jjt_ir::text::print(&g));
    assert_reassociated(&f, &g, seed, (t * t * i * j) as f64 + 4.0);
}

/// A CNN's pooled-layer bias and kernel gradients, `(b, o, s, c, d)`: `u` (`[b,o,s,s,c]`)
/// repeated over 2×2 windows by a broadcast and a reshape that merges each window's axes,
/// times the relu mask `m`, is the cotangent `g`; `Σ_positions g` is the bias gradient and `g`
/// contracted with the patches `p` (`d` columns) the kernel gradient; K sums both Gram
/// products.
fn pooled_bias_gradients(b: usize, o: usize, s: usize, c: usize, d: usize) -> Function {
    let n = 2 * s;
    let side = |k: usize| {
        format!(
            "  up{k} = reshape(broadcast_to(reshape(u{k}, shape=[{b},{o},{s},1,{s},1,{c}]), shape=[{b},{o},{s},2,{s},2,{c}]), shape=[{b},{o},{n},{n},{c}])
  g{k} = up{k} * broadcast_to(reshape(m{k}, shape=[{b},1,{n},{n},{c}]), shape=[{b},{o},{n},{n},{c}])
  j{k} = dot_general(g{k}, p{k}, contract=[[2,3],[1,2]], batch=[[0],[0]])
  s{k} = sum(g{k}, axes=[2,3])
"
        )
    };
    let src = format!(
        "func k(u1: f64[{b},{o},{s},{s},{c}], m1: f64[{b},{n},{n},{c}], p1: f64[{b},{n},{n},{d}], u2: f64[{b},{o},{s},{s},{c}], m2: f64[{b},{n},{n},{c}], p2: f64[{b},{n},{n},{d}]) -> f64[{b},{o},{b},{o}] {{
{}{}  kj = dot_general(j1, j2, contract=[[2,3],[2,3]], batch=[[],[]])
  kb = dot_general(s1, s2, contract=[[2],[2]], batch=[[],[]])
  return kj + kb
}}",
        side(1),
        side(2)
    );
    let f = jjt_ir::text::parse(&src).unwrap();
    jjt_opt::simplify::simplify(&f).unwrap().0
}

/// The most elements a sum of `h` reads.
fn largest_sum(h: &Function) -> usize {
    h.node_ids()
        .filter(|&m| matches!(h.node(m).map(|x| &x.op), Some(jjt_ir::Op::Reduce(_))))
        .map(|m| h.node(h.operands(m)[0]).map_or(0, |x| x.ty.numel()))
        .max()
        .unwrap_or(0)
}

/// The bias gradient of [`pooled_bias_gradients`] is read through the merging reshape: the
/// position label splits into window and offset, so the mask is summed over each window
/// first and the product runs at the pooled resolution; no sum reads a value of the
/// upsampled size. Values within the reassociation bound 2·(2·S² + 2)·u·Σ|terms| (S²
/// positions). Where the sum would ride along the kernel gradient (`sums`: a large `g`, a
/// product of 3 columns), it costs one column there and is left as written.
#[test]
fn reorder_splits_labels_through_reshapes_that_merge_axes() {
    let (b, o, s, c, d) = (3, 4, 4, 5, 3);
    let n = 2 * s;
    let f = pooled_bias_gradients(b, o, s, c, d);
    let (g, stats) = jjt_opt::reorder::reorder(&f).unwrap();
    assert!(jjt_ir::verify(&g).is_ok());
    assert_eq!(largest_sum(&f), b * o * n * n * c);
    assert!(largest_sum(&g) <= b * n * n * c, "{stats:?}\n{}", jjt_ir::text::print(&g));
    assert!(stats.rewritten >= 1, "{stats:?}");
    assert_reassociated(&f, &g, 41, (2 * n * n + 2) as f64);

    let (b, o, s, c) = (4, 10, 16, 8);
    let n = 2 * s;
    let f = pooled_bias_gradients(b, o, s, c, d);
    let g = jjt_opt::reorder::reorder(&f).unwrap().0;
    assert_eq!(largest_sum(&g), b * o * n * n * c);
    let (_, rode) = jjt_opt::sums::sums(&g).unwrap();
    assert_eq!(rode, 2);
}

/// `conv(reshape(w ⊙ a), k)` where the batch axis merges examples `b` and outputs `o`, `w`
/// varies along `o` and the channels only and `a` not along `o` (the cotangent of a CNN's
/// last convolution behind a global mean and a dense head); `bo` the merged order (else
/// `(o, b)`); `spatial_w` makes `w` vary along a spatial axis too (then nothing factors);
/// a 3×3 window with `stride` and padding `(lo, hi)` on both spatial axes.
fn conv_of_product(bo: bool, spatial_w: bool, stride: usize, (lo, hi): (usize, usize)) -> Function {
    let (b, o, h, c, i) = (3, 6, 7, 5, 4);
    let wh = if spatial_w { h } else { 1 };
    let (wshape, full, ashape) = if bo {
        (
            format!("[1,{o},{wh},1,{c}]"),
            format!("[{b},{o},{h},{h},{c}]"),
            format!("[{b},1,{h},{h},{c}]"),
        )
    } else {
        (
            format!("[{o},1,{wh},1,{c}]"),
            format!("[{o},{b},{h},{h},{c}]"),
            format!("[1,{b},{h},{h},{c}]"),
        )
    };
    let n = b * o;
    let out = (h + lo + hi - 3) / stride + 1;
    let src = format!(
        "func f(w: f64{wshape}, a: f64{ashape}, k: f64[3,3,{c},{i}]) -> f64[{n},{out},{out},{i}] {{
  x = reshape(broadcast_to(w, shape={full}) * broadcast_to(a, shape={full}), shape=[{n},{h},{h},{c}])
  return conv(x, k, dims=\"NHWC,HWIO,NHWC\", strides=[{stride},{stride}], padding=[[{lo},{hi}],[{lo},{hi}]])
}}"
    );
    jjt_ir::text::parse(&src).unwrap()
}

/// `convs` convolves `a` once per example (a grouped convolution, one group per channel) and
/// contracts the result with `w`, in either merged order of examples and outputs, with
/// strides and asymmetric padding: the values are the convolution's within the reassociation
/// bound 2·(9·C + 2)·u·Σ|terms| (9·C terms per output). A `w` that varies along a spatial
/// axis is left alone.
#[test]
fn convolutions_of_products_with_a_channel_factor_convolve_once_per_example() {
    for (bo, stride, pad) in [(true, 1, (1, 1)), (false, 2, (0, 2)), (true, 2, (2, 1))] {
        let f = conv_of_product(bo, false, stride, pad);
        let (g, n) = jjt_opt::convs::convs(&f).unwrap();
        assert!(jjt_ir::verify(&g).is_ok());
        assert_eq!(n, 1, "{}", jjt_ir::text::print(&g));
        let grouped = g.node_ids().any(|m| {
            matches!(g.node(m).map(|x| &x.op), Some(jjt_ir::Op::Conv(cv)) if cv.feature_groups == 5)
        });
        assert!(grouped, "{}", jjt_ir::text::print(&g));
        assert_reassociated(&f, &g, 43, (9 * 5 + 2) as f64);
    }
    let f = conv_of_product(true, true, 1, (1, 1));
    assert_eq!(jjt_opt::convs::convs(&f).unwrap().1, 0);
}

/// `reorder` on the shared generator's random graphs (every op, f32 and f64; a safety net
/// beside the targeted tests, which exercise its label splitting): the graph verifies and its outputs stay within a loose bound
/// of the original's (a wrong relabelling gives errors of the outputs' own size; reassociation,
/// propagated through the graph's other ops, stays far below: 1e-3 of the largest output in
/// f32, 1e-9 in f64). Contractions are drawn eight times as often as other ops; over the
/// first 4096 seeds some graphs are rewritten.
#[test]
fn reorder_keeps_random_graphs_values() {
    let mut rewritten = 0;
    let cfg = Config { dot_weight: 8, max_steps: 16, ..Config::default() };
    for seed in 0..4096u64 {
        let case = testgen::generate(&mut Draw::seed(seed), &cfg);
        let (f, x) = (case.f, case.args);
        let (g, stats) = jjt_opt::reorder::reorder(&f).unwrap();
        assert!(jjt_ir::verify(&g).is_ok(), "seed {seed}");
        rewritten += usize::from(stats.rewritten > 0);
        let (want, got) =
            (interp::eval_outputs(&f, &x).unwrap(), interp::eval_outputs(&g, &x).unwrap());
        for (w, o) in want.iter().zip(&got) {
            let tol = if w.ty().dtype == DType::F32 { 1e-3 } else { 1e-9 };
            let (w, o) = (w.to_f64_vec(), o.to_f64_vec());
            let finite = |v: &f64| v.is_finite() && v.abs() < 1e30;
            let scale = w.iter().filter(|v| finite(v)).fold(1.0f64, |m, v| m.max(v.abs()));
            for (i, (a, b)) in w.iter().zip(&o).enumerate() {
                if finite(a) {
                    assert!(
                        (a - b).abs() <= tol * scale,
                        "seed {seed} element {i}: {a} vs {b}\n{}",
                        jjt_ir::text::print(&f)
                    );
                }
            }
        }
    }
    assert!(rewritten > 0);
}
