//! Contractions on every path of the fast JIT (inline vector code, the runtime contraction with
//! and without packing, batched, threaded, K cut into blocks, its dot loops), against the
//! interpreter.
//!
//! `contractions_match_the_interpreter_on_every_path`: random `dot_general` configurations
//! (0–2 batch axes, 1–3 contracted axes, 0–2 free axes per side, f32 and f64, extents from 1 to
//! beyond the matrix-multiply thresholds), each operand either transposed in the graph by a
//! random permutation (so its strides do not chain) or broadcast from a smaller input (stride
//! 0 along some axes), the contracted axes paired in a random order; plus fixed cases that make
//! sure each path is taken (including products computed once and copied along the axes where
//! neither operand moves). For each case:
//!
//! - compiled in fast mode with 1, 2 and 3 threads, the results are bit for bit the same;
//! - they are within `2·(min(K, KB) + ⌈log2⌈K/KB⌉⌉ + K + 1)·u·Σ|lhs·rhs|` of the interpreter,
//!   per element, with `Σ|lhs·rhs|` the same contraction of the absolute values (computed by
//!   the interpreter). The fast path sums at most `KB` products in one run (error ≤ KB·u·Σ)
//!   and combines the blocks pairwise (⌈log2(blocks)⌉·u·Σ more); the interpreter sums in its
//!   own order, with error at most (K − 1)·u·Σ whatever that order is; +1 for the rounding of
//!   the result; the factor 2 covers second-order terms and the rounding of Σ itself.
//!
//! `matrix_vector_products_sharing_a_matrix_take_one_pass` checks the joining of two products
//! with one matrix ([`jjt_jit::plan::Step::MatVecs`]) and what keeps two apart.
//!
//! At the end, every path must have been hit at least once (`jjt_jit::dot_path` on the
//! planned step says which one a case took).

use std::cell::RefCell;
use std::collections::BTreeSet;

use jjt_ir::ops::DotGeneral;
use jjt_ir::{DType, Function, FunctionBuilder, NodeId, Shape, Tensor, TensorType, Unary, interp};
use jjt_jit::plan::{self, Step};
use jjt_jit::{DotKind, KB, Options, compile_with, dot_path};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// How an operand reaches the contraction.
#[derive(Clone, Debug)]
enum Feed {
    /// `transpose(x, perm)` of an input whose shape is the operand's permuted.
    Transposed(Vec<usize>),
    /// `broadcast_to(x, shape)` of an input with extent 1 along the axes marked true.
    Broadcast(Vec<bool>),
}

/// One contraction: extents of the batch, free and contracted axes, the order in which the
/// right operand lists the contracted axes, how each operand is fed.
#[derive(Clone, Debug)]
struct Case {
    dtype: DType,
    batch: Vec<usize>,
    lfree: Vec<usize>,
    rfree: Vec<usize>,
    k: Vec<usize>,
    /// Position in rhs's contracted axes of lhs's contracted axis i.
    rk_order: Vec<usize>,
    lhs: Feed,
    rhs: Feed,
}

impl Case {
    fn macs(&self) -> usize {
        [&self.batch, &self.lfree, &self.rfree, &self.k]
            .iter()
            .map(|v| v.iter().product::<usize>())
            .product()
    }

    /// lhs = [batch, lfree, k]; rhs = [batch, k (in rk_order), rfree].
    fn shapes(&self) -> (Vec<usize>, Vec<usize>) {
        let lhs: Vec<usize> = [&self.batch[..], &self.lfree, &self.k].concat();
        let mut rk = vec![0; self.k.len()];
        for (i, &p) in self.rk_order.iter().enumerate() {
            rk[p] = self.k[i];
        }
        let rhs: Vec<usize> = [&self.batch[..], &rk, &self.rfree].concat();
        (lhs, rhs)
    }

    fn dims(&self) -> DotGeneral {
        let nb = self.batch.len();
        let nk = self.k.len();
        DotGeneral {
            lhs_contract: (0..nk).map(|i| nb + self.lfree.len() + i).collect(),
            rhs_contract: self.rk_order.iter().map(|&p| nb + p).collect(),
            lhs_batch: (0..nb).collect(),
            rhs_batch: (0..nb).collect(),
        }
    }

    /// The input type feeding an operand of shape `shape`.
    fn input_type(&self, shape: &[usize], feed: &Feed) -> TensorType {
        let dims: Vec<usize> = match feed {
            Feed::Transposed(perm) => {
                // transpose(x, perm) has extent x[perm[i]] on axis i.
                let mut s = vec![0; shape.len()];
                for (i, &p) in perm.iter().enumerate() {
                    s[p] = shape[i];
                }
                s
            }
            Feed::Broadcast(ones) => {
                shape.iter().zip(ones).map(|(&d, &o)| if o { 1 } else { d }).collect()
            }
        };
        TensorType::new(self.dtype, dims)
    }

    /// The contraction, of the inputs' absolute values when `abs`.
    fn function(&self, abs: bool) -> Function {
        let (ls, rs) = self.shapes();
        let mut b = FunctionBuilder::new("c");
        let operand = |b: &mut FunctionBuilder, name: &str, shape: &[usize], feed: &Feed| {
            let ty = self.input_type(shape, feed);
            let mut x = b.input(name, ty).unwrap();
            if abs {
                x = b.unary(Unary::Abs, x).unwrap();
            }
            match feed {
                Feed::Transposed(perm) => b.transpose(x, perm).unwrap(),
                Feed::Broadcast(_) => b.broadcast_to(x, &Shape(shape.to_vec())).unwrap(),
            }
        };
        let l: NodeId = operand(&mut b, "l", &ls, &self.lhs);
        let r: NodeId = operand(&mut b, "r", &rs, &self.rhs);
        let out = b.dot_general(l, r, self.dims()).unwrap();
        b.finish(out).unwrap()
    }
}

/// Deterministic, varied inputs with both signs.
fn inputs(f: &Function) -> Vec<Tensor> {
    f.params()
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let v: Vec<f64> =
                (0..p.ty.numel()).map(|i| ((i * 7 + 3 * k) as f64 * 0.618).sin()).collect();
            Tensor::from_f64(&p.ty, &v).unwrap()
        })
        .collect()
}

/// The path names a case counts for.
fn paths(f: &Function) -> Vec<&'static str> {
    let p = plan::plan(f).unwrap();
    if p.steps.iter().any(|s| matches!(s, Step::MatVecs(_))) {
        return vec!["matrix–vector kernel"];
    }
    let Some(step) = p.steps.iter().find_map(|s| match s {
        Step::Dot(d) => Some(d),
        _ => None,
    }) else {
        return vec![];
    };
    let one = dot_path(step, &Options { threads: 1, ..Options::default() });
    let two = dot_path(step, &Options { threads: 2, ..Options::default() });
    let mut hit = Vec::new();
    let runtime = matches!(one.kind, DotKind::MatrixMultiply | DotKind::RuntimeLoops);
    match one.kind {
        DotKind::InlineVector => hit.push("inline"),
        DotKind::MatrixMultiply => hit.push("matrix multiply"),
        DotKind::RuntimeLoops => hit.push("runtime dot loops"),
        DotKind::Trivial | DotKind::InlineScalar => {}
    }
    if runtime {
        if !one.packs_lhs && !one.packs_rhs {
            hit.push("runtime, unpacked");
        }
        if one.packs_lhs {
            hit.push("packed lhs");
        }
        if one.gathers_lhs {
            hit.push("lhs read through offsets");
        }
        if one.packs_lhs_k_outer {
            hit.push("packed lhs K-outer");
        }
        if one.packs_rhs {
            hit.push("packed rhs");
        }
        if one.products > 1 {
            hit.push("batched");
        }
        if one.k_blocks > 1 {
            hit.push("K blocks");
        }
        if two.threaded {
            hit.push("threaded");
        }
        if two.threaded && one.products >= 4 {
            // Two products or more per thread: pieces the threads claim as they go.
            hit.push("threaded, products in pieces");
        }
        if one.copies > 1 {
            hit.push("copied along broadcast axes");
        }
        if one.kind == DotKind::MatrixMultiply
            && one.macs / one.products.max(1) < jjt_jit::gemm::GEMM_THRESHOLD
        {
            hit.push("batched products below the threshold");
        }
    }
    hit
}

const ALL_PATHS: [&str; 14] = [
    "inline",
    "matrix–vector kernel",
    "batched products below the threshold",
    "matrix multiply",
    "runtime dot loops",
    "runtime, unpacked",
    "packed lhs",
    "packed lhs K-outer",
    "packed rhs",
    "batched",
    "K blocks",
    "threaded",
    "threaded, products in pieces",
    "copied along broadcast axes",
];

fn check(case: &Case, hits: &mut BTreeSet<&'static str>) -> Result<(), TestCaseError> {
    let f = case.function(false);
    let abs_f = case.function(true);
    let xs = inputs(&f);
    hits.extend(paths(&f));
    let refs: Vec<&Tensor> = xs.iter().collect();
    let run = |threads: usize| {
        let c = compile_with(&f, Options { threads, ..Options::default() }).unwrap();
        c.call(&refs).unwrap().remove(0).to_f64_vec()
    };
    let one = run(1);
    for threads in [2, 3] {
        let got = run(threads);
        prop_assert!(
            got.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{case:?}: {threads} threads differ from 1"
        );
    }
    let want = interp::eval(&f, &xs).unwrap().to_f64_vec();
    let sums = interp::eval(&abs_f, &xs).unwrap().to_f64_vec();
    let k: usize = case.k.iter().product();
    let blocks = k.div_ceil(KB).max(1);
    let log2 = usize::BITS - (blocks - 1).leading_zeros();
    let u =
        if case.dtype == DType::F32 { f64::from(f32::EPSILON) / 2.0 } else { f64::EPSILON / 2.0 };
    let c = 2.0 * (k.min(KB) + log2 as usize + k + 1) as f64 * u;
    for (i, ((g, w), s)) in one.iter().zip(&want).zip(&sums).enumerate() {
        prop_assert!(
            (g - w).abs() <= c * s,
            "{case:?}: element {i}: JIT {g:e} vs interpreter {w:e} (bound {:e})",
            c * s
        );
    }
    Ok(())
}

/// Operand feed for an operand of rank `r`.
fn feed(r: usize) -> impl Strategy<Value = Feed> {
    let perm = Just((0..r).collect::<Vec<usize>>()).prop_shuffle().prop_map(Feed::Transposed);
    let ones = proptest::collection::vec(prop::bool::weighted(0.3), r).prop_map(Feed::Broadcast);
    prop_oneof![3 => perm, 1 => ones]
}

/// Extents of `n` axes in size class `class` (0: 1–3, 1: 2–9, 2: 4–24).
fn extents(n: usize, class: usize) -> BoxedStrategy<Vec<usize>> {
    let (lo, hi): (usize, usize) = [(1, 3), (2, 9), (4, 24)][class];
    proptest::collection::vec(lo..=hi, n).boxed()
}

fn case() -> impl Strategy<Value = Case> {
    (0usize..=2, 0usize..=2, 0usize..=2, 1usize..=3, 0usize..3, prop::bool::ANY)
        .prop_flat_map(|(nb, nl, nr, nk, class, f64_)| {
            let dtype = if f64_ { DType::F64 } else { DType::F32 };
            let batch = extents(nb, class.min(1));
            (
                Just(dtype),
                batch,
                extents(nl, class),
                extents(nr, class),
                extents(nk, class),
                Just((0..nk).collect::<Vec<usize>>()).prop_shuffle(),
                feed(nb + nl + nk),
                feed(nb + nk + nr),
            )
        })
        .prop_map(|(dtype, batch, lfree, rfree, k, rk_order, lhs, rhs)| Case {
            dtype,
            batch,
            lfree,
            rfree,
            k,
            rk_order,
            lhs,
            rhs,
        })
}

/// Cases that make sure each path is taken (whatever the random draws).
fn fixed() -> Vec<Case> {
    let id = |r: usize| Feed::Transposed((0..r).collect());
    let t2 = Feed::Transposed(vec![1, 0]);
    let mut v = Vec::new();
    for dtype in [DType::F32, DType::F64] {
        // The matrix–vector kernel: 7 rows (a block and a shorter one), K with a tail.
        v.push(Case {
            dtype,
            batch: vec![],
            lfree: vec![7],
            rfree: vec![],
            k: vec![1001],
            rk_order: vec![0],
            lhs: id(2),
            rhs: id(1),
        });
        // Inline: a small plain matrix product.
        v.push(Case {
            dtype,
            batch: vec![],
            lfree: vec![4],
            rfree: vec![8],
            k: vec![8],
            rk_order: vec![0],
            lhs: id(2),
            rhs: id(2),
        });
        // Runtime dot loops: three outputs (fewer than a vector), K not contiguous in lhs.
        v.push(Case {
            dtype,
            batch: vec![],
            lfree: vec![3],
            rfree: vec![],
            k: vec![6],
            rk_order: vec![0],
            lhs: t2.clone(),
            rhs: id(1),
        });
        // Many products each below the matrix multiply's threshold (16·10 of 32×64×10, as
        // in the embedding model's kernel): matrix multiplies all the same.
        v.push(Case {
            dtype,
            batch: vec![16, 10],
            lfree: vec![32],
            rfree: vec![10],
            k: vec![64],
            rk_order: vec![0],
            lhs: id(4),
            rhs: id(4),
        });
        // K cut into blocks: 8×5000×8, unpacked.
        v.push(Case {
            dtype,
            batch: vec![],
            lfree: vec![8],
            rfree: vec![8],
            k: vec![5000],
            rk_order: vec![0],
            lhs: id(2),
            rhs: id(2),
        });
        // Packed lhs: lhs's contracted axes (16, 16) around its free axis.
        v.push(Case {
            dtype,
            batch: vec![],
            lfree: vec![32],
            rfree: vec![32],
            k: vec![16, 16],
            rk_order: vec![0, 1],
            lhs: Feed::Transposed(vec![1, 0, 2]),
            rhs: id(3),
        });
        // Packed rhs: the mirror image.
        v.push(Case {
            dtype,
            batch: vec![],
            lfree: vec![32],
            rfree: vec![32],
            k: vec![16, 16],
            rk_order: vec![0, 1],
            lhs: id(3),
            rhs: Feed::Transposed(vec![0, 2, 1]),
        });
    }
    // A free axis along which lhs is broadcast: 32×64×32 computed once, copied 3 times.
    v.push(Case {
        dtype: DType::F32,
        batch: vec![2],
        lfree: vec![3, 32],
        rfree: vec![32],
        k: vec![64],
        rk_order: vec![0],
        lhs: Feed::Broadcast(vec![false, true, false, false]),
        rhs: id(3),
    });
    // Batched and threaded: 4 products of 64×300×64 (4.9·10⁶ multiply-adds), rhs transposed.
    v.push(Case {
        dtype: DType::F32,
        batch: vec![4],
        lfree: vec![64],
        rfree: vec![64],
        k: vec![300],
        rk_order: vec![0],
        lhs: id(3),
        rhs: Feed::Transposed(vec![0, 2, 1]),
    });
    // Threaded, one product cut into column blocks: 40×520×203.
    v.push(Case {
        dtype: DType::F64,
        batch: vec![],
        lfree: vec![40],
        rfree: vec![203],
        k: vec![520],
        rk_order: vec![0],
        lhs: t2.clone(),
        rhs: id(2),
    });
    // Lhs packed K-outer: stored [8, k, 12], so its rows (8·12, not collapsing) have the
    // smallest stride and K does not; B 32 wide, so the tile kernel multiplies it.
    v.push(Case {
        dtype: DType::F32,
        batch: vec![],
        lfree: vec![8, 12],
        rfree: vec![32],
        k: vec![600],
        rk_order: vec![0],
        lhs: Feed::Transposed(vec![0, 2, 1]),
        rhs: id(2),
    });
    // Threaded across the halves of the pairwise tree by choice: 96×2048×96 (two blocks of
    // K, one per thread) balances better than cutting 96 rows into 64 + 32.
    v.push(Case {
        dtype: DType::F32,
        batch: vec![],
        lfree: vec![96],
        rfree: vec![96],
        k: vec![2 * KB],
        rk_order: vec![0],
        lhs: id(2),
        rhs: id(2),
    });
    // Threaded across the halves of the pairwise tree: 32×(3·4096 + 5)×32 with a broadcast
    // batch-free lhs row block.
    v.push(Case {
        dtype: DType::F32,
        batch: vec![],
        lfree: vec![32],
        rfree: vec![32],
        k: vec![3 * 4096 + 5],
        rk_order: vec![0],
        lhs: id(2),
        rhs: t2,
    });
    // Both operands packed, B's 40000 columns in two chunks of at most PACK_ELEMS elements
    // and A's 20 rows in one (packed once and kept for B's second chunk): [4,5,3]·[3,4000,10]
    // with neither side's free axes collapsing to one stride (transposed inputs [4,3,5] and
    // [4000,3,10]).
    for dtype in [DType::F32, DType::F64] {
        v.push(Case {
            dtype,
            batch: vec![],
            lfree: vec![4, 5],
            rfree: vec![4000, 10],
            k: vec![3],
            rk_order: vec![0],
            lhs: Feed::Transposed(vec![0, 2, 1]),
            rhs: Feed::Transposed(vec![1, 0, 2]),
        });
    }
    v
}

#[test]
fn contractions_match_the_interpreter_on_every_path() {
    let mut hits = BTreeSet::new();
    for c in fixed() {
        check(&c, &mut hits).unwrap();
    }
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(96);
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let random_hits = RefCell::new(BTreeSet::new());
    let result = runner.run(&case(), |c| {
        // Keep each case's interpreter run short (debug builds).
        prop_assume!(c.macs() <= 3_000_000);
        let mut h = BTreeSet::new();
        let r = check(&c, &mut h);
        random_hits.borrow_mut().extend(h);
        r
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    hits.extend(random_hits.into_inner());
    // A host with the own f32 kernel also reads a lhs that does not collapse in place.
    let own = jjt_jit::gemm::has_own_kernel().then_some("lhs read through offsets");
    let missing: Vec<&str> =
        ALL_PATHS.iter().copied().chain(own).filter(|p| !hits.contains(p)).collect();
    assert!(missing.is_empty(), "paths never taken: {missing:?}");
}

/// The packing scratch counts against the memory budget: a 64×4096×64 product whose lhs is
/// transposed so that it must be packed holds about 0.56 MB of scratch per thread (two packed
/// blocks of 64 rows of 1040 f32, two 64×64 partials); with 3 threads that exceeds a 1.5 MB
/// budget (every single value, 1 MiB, fits), with 1 thread it does not.
#[test]
fn packing_scratch_is_bounded_by_the_memory_budget() {
    let case = Case {
        dtype: DType::F32,
        batch: vec![],
        lfree: vec![64],
        rfree: vec![64],
        k: vec![4096],
        rk_order: vec![0],
        lhs: Feed::Transposed(vec![1, 0]),
        rhs: Feed::Transposed(vec![0, 1]),
    };
    let f = case.function(false);
    let opts = |threads| Options { threads, max_bytes: 1_500_000, ..Options::default() };
    match compile_with(&f, opts(3)) {
        Err(jjt_jit::JitError::TooLarge { what, needed, limit }) => {
            assert!(what.contains("packing scratch"), "{what}");
            assert!(needed > limit && limit == 1_500_000, "{needed} {limit}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let c = compile_with(&f, opts(1)).unwrap();
    let xs = inputs(&f);
    let got = c.call(&[&xs[0], &xs[1]]).unwrap().remove(0).to_f64_vec();
    let want = interp::eval(&f, &xs).unwrap().to_f64_vec();
    // A relative 1e-4 of Σ|terms| ≤ 4096: far above the (KB + 2 + K + 1)·u bound, far below
    // a wrong element's O(1) error.
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * 4096.0, "{g} vs {w}");
    }
}

/// The path (on one thread) of the first contraction step of `p`.
fn first_dot_path(p: &plan::Plan) -> jjt_jit::DotPath {
    let step = p
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Dot(d) => Some(d.clone()),
            _ => None,
        })
        .expect("a contraction step");
    dot_path(&step, &Options { threads: 1, ..Options::default() })
}

/// An operand whose free axes do not collapse, with a contracted axis between them (the
/// per-example Jacobian of a dense layer applied at every token: `[o, t, j]` contracted over
/// `t`), is not packed when the axes after the contracted one hold at least `DIRECT_MIN_ROWS`
/// rows: the axes before become products. Unless that multiplies the packing of the other
/// operand: then the plan keeps one packed product. Each plan also matches the interpreter
/// (`check`: 1, 2 and 3 threads bit for bit, and the rounding bound).
#[test]
fn free_axes_around_a_contracted_axis_become_products_instead_of_packing() {
    let plan_of = |c: &Case| first_dot_path(&plan::plan(&c.function(false)).unwrap());
    let case = |rfree: Vec<usize>, rhs: Feed| Case {
        dtype: DType::F32,
        batch: vec![],
        lfree: vec![3, jjt_jit::DIRECT_MIN_ROWS],
        rfree,
        k: vec![16],
        rk_order: vec![0],
        // lhs in memory as [o, t, j].
        lhs: Feed::Transposed(vec![0, 2, 1]),
        rhs,
    };
    let mut hits = BTreeSet::new();
    // rhs [t, i] in place: lhs's o becomes 3 products, nothing is packed.
    let c = case(vec![64], Feed::Transposed(vec![0, 1]));
    let p = plan_of(&c);
    assert_eq!((p.products, p.packs_lhs, p.packs_rhs), (3, false, false), "{p:?}");
    check(&c, &mut hits).unwrap();
    // rhs in memory as [p, t, i] with i = 64: both sides split, 9 products, nothing packed.
    let c = case(vec![3, 64], Feed::Transposed(vec![1, 0, 2]));
    let p = plan_of(&c);
    assert_eq!((p.products, p.packs_lhs, p.packs_rhs), (9, false, false), "{p:?}");
    check(&c, &mut hits).unwrap();
    // rhs as [p, t, i] with i below DIRECT_MIN_ROWS (too short to split): splitting lhs
    // would pack rhs three times, so one product; the operands exchange roles, the rhs (A)
    // read through offsets by the tile kernel and only the lhs packed.
    let short = jjt_jit::DIRECT_MIN_ROWS / 2;
    let c = case(vec![3, short], Feed::Transposed(vec![1, 0, 2]));
    let p = plan_of(&c);
    let packed = (p.products, p.swapped, p.packs_lhs, p.gathers_lhs, p.packs_rhs);
    assert_eq!(packed, (1, true, false, true, true), "{p:?}");
    check(&c, &mut hits).unwrap();
    // The same with rhs three tiles wide or more (8 of p): as written, lhs's rows (K-outer,
    // in runs of whole panels) would be packed by the matrix multiply from their offsets
    // and the rhs (128 columns) packed; exchanged, the rhs's rows (K-outer in runs of 16)
    // are read that way against the lhs's 96 columns packed, which copies less.
    let c = case(vec![8, short], Feed::Transposed(vec![1, 0, 2]));
    let p = plan_of(&c);
    let packed = (p.products, p.swapped, p.packs_lhs, p.gathers_lhs, p.packs_rhs);
    assert_eq!(packed, (1, true, false, true, true), "{p:?}");
    check(&c, &mut hits).unwrap();
    // rhs narrower than lhs's rows (2·8 columns against 32), K = 64: splitting lhs into 3
    // products would pack fewer elements in all (3·64·16 against 3·32·64 + 64·16) but the
    // same rhs block three times, so it is not taken.
    let c = Case { k: vec![64], ..case(vec![2, 8], Feed::Transposed(vec![1, 0, 2])) };
    let p = plan_of(&c);
    assert_eq!(p.products, 1, "{p:?}");
    check(&c, &mut hits).unwrap();
}

/// Two chained contractions in the shape of a convolution layer's patch-product kernel term:
/// `y[b, p, f, a, t] = Σ_s d2[b, p, f, s]·g[b, s, a, t]`, then
/// `k[a, o, b, p] = Σ_{f, t} d1[a, o, f, t]·y[b, p, f, a, t]` with `d1` stored `f` innermost.
/// Row-major, `y`'s contracted axes do not chain and the second step packs all of `y`; the
/// plan stores `y` in the order the second step reads it (of the inputs' absolute values when
/// `abs`).
fn chained(abs: bool) -> Function {
    let (a, o, b, p, f, s, t) = (4, 10, 4, 10, 32, 32, 64);
    let mut fb = FunctionBuilder::new("chained");
    let mut input = |name: &str, dims: Vec<usize>| {
        let x = fb.input(name, TensorType::new(DType::F64, dims)).unwrap();
        if abs { fb.unary(Unary::Abs, x).unwrap() } else { x }
    };
    let d2 = input("d2", vec![b, p, f, s]);
    let g = input("g", vec![b, s, a, t]);
    let d1 = input("d1", vec![a, o, t, f]);
    let d1 = fb.transpose(d1, &[0, 1, 3, 2]).unwrap();
    let y = fb
        .dot_general(
            d2,
            g,
            DotGeneral {
                lhs_contract: vec![3],
                rhs_contract: vec![1],
                lhs_batch: vec![0],
                rhs_batch: vec![0],
            },
        )
        .unwrap();
    let k = fb
        .dot_general(
            d1,
            y,
            DotGeneral {
                lhs_contract: vec![2, 3],
                rhs_contract: vec![2, 4],
                lhs_batch: vec![0],
                rhs_batch: vec![3],
            },
        )
        .unwrap();
    fb.finish(k).unwrap()
}

#[test]
fn a_contraction_feeding_another_is_stored_in_the_order_it_is_read() {
    let f = chained(false);
    let dots = |p: &plan::Plan| -> Vec<plan::DotStep> {
        p.steps
            .iter()
            .filter_map(|s| match s {
                Step::Dot(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    };
    let one = Options { threads: 1, ..Options::default() };
    let steps = dots(&plan::plan_for(&f, &Options::default()).unwrap());
    let [producer, consumer] = steps.as_slice() else { panic!("two contractions: {steps:?}") };
    // y is not row-major, and the second step reads it (and d1) in place.
    let row_major: Vec<isize> =
        Shape(producer.shape.clone()).strides().into_iter().map(|s| s as isize).collect();
    assert_ne!(producer.dst.strides, row_major);
    assert_eq!(consumer.rhs.strides, producer.dst.strides);
    let path = dot_path(consumer, &one);
    assert_eq!(
        (path.kind, path.packs_lhs, path.packs_rhs),
        (DotKind::MatrixMultiply, false, false)
    );
    // Row-major, the same step would pack y.
    let mut rm = consumer.clone();
    rm.rhs.strides = row_major;
    assert!(dot_path(&rm, &one).packs_rhs);
    // Strict mode keeps row-major (its loops do not depend on the layout).
    let strict =
        dots(&plan::plan_for(&f, &Options { strict: true, ..Options::default() }).unwrap());
    assert_eq!(strict[0].dst.strides, rm.rhs.strides);

    // The values: the same for 1, 2 and 3 threads, and within the summation bound of the
    // interpreter (K = 32 then 32·64 products per element; the fast mode's blocks as in
    // `check`, the interpreter's order anywhere: 2·(KB + log2 + K + 1)·u per level, two levels).
    let k = 32 * 64;
    let c = 2.0 * 2.0 * (KB + 2 + k + 32 + 1) as f64 * f64::EPSILON / 2.0;
    assert_threads_and_bound(&f, &chained(true), c);
}

/// `f`'s only output from the fast JIT: the same bits for 1, 2 and 3 threads, and within
/// `c·Σ` of the interpreter per element, `Σ` the same element of `abs` (`f` of the inputs'
/// absolute values), on the inputs of `inputs`.
fn assert_threads_and_bound(f: &Function, abs: &Function, c: f64) {
    let xs = inputs(f);
    let refs: Vec<&Tensor> = xs.iter().collect();
    let run = |threads: usize| {
        let c = compile_with(f, Options { threads, ..Options::default() }).unwrap();
        c.call(&refs).unwrap().remove(0).to_f64_vec()
    };
    let got = run(1);
    for threads in [2, 3] {
        assert!(run(threads).iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    let want = interp::eval(f, &xs).unwrap().to_f64_vec();
    let sums = interp::eval(abs, &xs).unwrap().to_f64_vec();
    assert!(sums.iter().all(|&s| s > 0.0));
    for (i, ((g, w), s)) in got.iter().zip(&want).zip(&sums).enumerate() {
        assert!((g - w).abs() <= c * s, "element {i}: JIT {g:e} vs interpreter {w:e}");
    }
}

/// The number of products of each matrix–vector step in `f`'s plan.
fn matvec_parts(f: &Function) -> Vec<usize> {
    let p = plan::plan(f).unwrap();
    p.steps
        .iter()
        .filter_map(|s| match s {
            Step::MatVecs(mv) => Some(mv.parts.len()),
            _ => None,
        })
        .collect()
}

/// `a·x₁` and `a·x₂` (a 9×1500 matrix, so blocks of 5 and 4 rows, K with a tail), in f32 and
/// f64: planned as one [`Step::MatVecs`] with both products, each result bit for bit what the
/// product computes alone and within the kernel's bound (module `matvec`),
/// `(⌈K/2L⌉ + log2(2L) + 1)·u·Σ|a·x|`, of a reference summed in f64 with Neumaier's
/// compensation (error at most `3·u_f64·Σ|a·x|`: the products' roundings and the sum's, so 4
/// more units `u` cover it in f64 and it is negligible in f32). A product that reads another's
/// result (`a·(a·x)`, a square `a`) stays apart.
#[test]
fn matrix_vector_products_sharing_a_matrix_take_one_pass() {
    let (m, k) = (9usize, 1500usize);
    for dtype in [DType::F32, DType::F64] {
        let mut b = FunctionBuilder::new("mv");
        let a = b.input("a", TensorType::new(dtype, vec![m, k])).unwrap();
        let x1 = b.input("x1", TensorType::new(dtype, vec![k])).unwrap();
        let x2 = b.input("x2", TensorType::new(dtype, vec![k])).unwrap();
        let y1 = b.matmul(a, x1).unwrap();
        let y1s = b.unary(Unary::Exp, y1).unwrap();
        let y2 = b.matmul(a, x2).unwrap();
        let f = b.finish_many(vec![y1s, y2, y1]).unwrap();
        assert_eq!(matvec_parts(&f), [2], "{dtype}");
        let xs = inputs(&f);
        let refs: Vec<&Tensor> = xs.iter().collect();
        let got = compile_with(&f, Options::default()).unwrap().call(&refs).unwrap();
        // Each product alone, with the same inputs.
        let alone = |x: &str| {
            let mut b = FunctionBuilder::new("one");
            let a = b.input("a", TensorType::new(dtype, vec![m, k])).unwrap();
            let x = b.input(x, TensorType::new(dtype, vec![k])).unwrap();
            let y = b.matmul(a, x).unwrap();
            b.finish(y).unwrap()
        };
        let exact = |xi: usize| -> (Vec<f64>, Vec<f64>) {
            let (av, xv) = (xs[0].to_f64_vec(), xs[xi].to_f64_vec());
            (0..m)
                .map(|r| {
                    let terms = (0..k).map(|c| av[r * k + c] * xv[c]);
                    let (mut sum, mut comp) = (0.0f64, 0.0f64);
                    for t in terms.clone() {
                        let next = sum + t;
                        comp +=
                            if sum.abs() >= t.abs() { (sum - next) + t } else { (t - next) + sum };
                        sum = next;
                    }
                    (sum + comp, terms.map(f64::abs).sum::<f64>())
                })
                .unzip()
        };
        let (u, lanes) = if dtype == DType::F32 {
            (f64::from(f32::EPSILON) / 2.0, 16)
        } else {
            (f64::EPSILON / 2.0, 8)
        };
        let bound = (k.div_ceil(2 * lanes) + 6 + 4) as f64 * u;
        for (out, xi, name) in [(2usize, 1usize, "x1"), (1, 2, "x2")] {
            let g = got[out].to_f64_vec();
            let one = compile_with(&alone(name), Options::default())
                .unwrap()
                .call(&[&xs[0], &xs[xi]])
                .unwrap()
                .remove(0)
                .to_f64_vec();
            let (want, mag) = exact(xi);
            for r in 0..m {
                assert_eq!(g[r].to_bits(), one[r].to_bits(), "{dtype} {name} row {r}");
                assert!(
                    (g[r] - want[r]).abs() <= bound * mag[r],
                    "{dtype} {name} row {r}: {} vs {}",
                    g[r],
                    want[r]
                );
            }
        }
    }
    // A square matrix applied twice: the second product reads the first's result.
    let mut b = FunctionBuilder::new("twice");
    let a = b.input("a", TensorType::new(DType::F32, vec![128, 128])).unwrap();
    let x = b.input("x", TensorType::new(DType::F32, vec![128])).unwrap();
    let y = b.matmul(a, x).unwrap();
    let z = b.matmul(a, y).unwrap();
    let f = b.finish(z).unwrap();
    assert_eq!(matvec_parts(&f), [1, 1]);
    let xs = inputs(&f);
    let refs: Vec<&Tensor> = xs.iter().collect();
    let got = compile_with(&f, Options::default()).unwrap().call(&refs).unwrap().remove(0);
    let want = interp::eval(&f, &xs).unwrap().to_f64_vec();
    for (g, w) in got.to_f64_vec().iter().zip(&want) {
        // Two f32 products of 128 terms of magnitude ≤ 128 each: well within 1e-3 relative.
        assert!((g - w).abs() <= 1e-3 * w.abs().max(1.0), "{g} vs {w}");
    }
}

/// A convolution's kernel gradient, `Σ_positions g[n, pos, o]·patches(x)[n, i, pos, window]`,
/// with the cotangent `g` first: as written, `g` is read in place and the patches packed for
/// every example; with the operands exchanged the patches are the matrix multiply's A, read in
/// place through offsets against the narrow `g` (16 channels), and nothing is copied. The plan
/// exchanges them; the values are the same for 1, 2 and 3 threads and within the summation
/// bound of the interpreter (f32: `2·(K + K + 1)·u·Σ|g·patch|`, K = 64 positions in one block;
/// `Σ` from the same function of the inputs' absolute values).
#[test]
fn operands_exchange_roles_when_that_copies_less() {
    let model = |abs: bool| {
        let (g, x) = if abs { ("abs(g)", "abs(x)") } else { ("g", "x") };
        let src = format!(
            "func f(g: f32[4,8,8,16], x: f32[4,8,8,24]) -> f32[4,16,24,3,3] {{
  xt = pad(transpose({x}, perm=[0,3,1,2]), lo=[0,0,1,1], hi=[0,0,1,1])
  return dot_general({g}, patches(xt, axes=[2,3], window=[3,3]), contract=[[1,2],[2,3]], batch=[[0],[0]])
}}"
        );
        jjt_ir::text::parse(&src).unwrap()
    };
    let f = model(false);
    let path = first_dot_path(&plan::plan_for(&f, &Options::default()).unwrap());
    let how = (path.kind, path.swapped, path.packs_lhs, path.gathers_lhs, path.packs_rhs);
    assert_eq!(how, (DotKind::MatrixMultiply, true, false, true, false), "{path:?}");
    let c = 2.0 * (2 * 64 + 1) as f64 * f64::from(f32::EPSILON) / 2.0;
    assert_threads_and_bound(&f, &model(true), c);
}

/// A layer's kernel gradient in the shape of the CNN's first layer: `g = up(u)·z` (a pooled
/// cotangent upsampled 2×2 times a same-size factor, `[r, a, 2h, 2w, c]`), then
/// `k[r, a, c, t] = Σ_{y, x} g[r, a, c, y, x]·p[r, t, y, x]`. Only the contraction reads `g`,
/// one row per batch index (`r`), so the plan runs them row by row (`abs`: of the inputs'
/// absolute values; `both`: `g` is also an output, which keeps the two steps apart).
fn upsampled_product(dtype: DType, abs: bool, both: bool) -> Function {
    let (r, a, h, c, t) = (8, 4, 16, 32, 12);
    let mut fb = FunctionBuilder::new("upsampled");
    let mut input = |name: &str, dims: Vec<usize>| {
        let x = fb.input(name, TensorType::new(dtype, dims)).unwrap();
        if abs { fb.unary(Unary::Abs, x).unwrap() } else { x }
    };
    let u = input("u", vec![r, a, h, h, c]);
    let z = input("z", vec![r, 2 * h, 2 * h, c]);
    let p = input("p", vec![r, t, 2 * h, 2 * h]);
    let split = Shape(vec![r, a, h, 2, h, 2, c]);
    let u = fb.reshape(u, vec![r, a, h, 1, h, 1, c]).unwrap();
    let u = fb.broadcast_to(u, &split).unwrap();
    let z = fb.reshape(z, vec![r, 1, h, 2, h, 2, c]).unwrap();
    let z = fb.broadcast_to(z, &split).unwrap();
    let g = fb.binary(jjt_ir::Binary::Mul, u, z).unwrap();
    let g = fb.reshape(g, vec![r, a, 2 * h, 2 * h, c]).unwrap();
    let gt = fb.transpose(g, &[0, 1, 4, 2, 3]).unwrap();
    let dims = DotGeneral {
        lhs_contract: vec![3, 4],
        rhs_contract: vec![2, 3],
        lhs_batch: vec![0],
        rhs_batch: vec![0],
    };
    let k = fb.dot_general(gt, p, dims).unwrap();
    if both { fb.finish_many(vec![k, g]).unwrap() } else { fb.finish(k).unwrap() }
}

/// The elementwise operand and its contraction run row by row (one [`Step::Fused`] in the
/// plan, no separate step for either), in f32 and f64: the same bits for 1, 2 and 3 threads,
/// the same bits as the two steps unfused (each product is computed as the contraction
/// computes it), and within `2·(K + K + 2)·u·Σ|g·p|` of the interpreter (module
/// documentation, K = 1024 ≤ KB, one rounding more for the product in `g`).
#[test]
fn an_elementwise_operand_runs_row_by_row_with_its_contraction() {
    for dtype in [DType::F32, DType::F64] {
        let f = upsampled_product(dtype, false, false);
        let steps = plan::plan(&f).unwrap().steps;
        let fused = steps.iter().filter(|s| matches!(s, Step::Fused(_))).count();
        let apart = steps.iter().filter(|s| matches!(s, Step::Dot(_) | Step::Map(_))).count();
        assert_eq!((fused, apart), (1, 0), "{dtype}: {steps:?}");
        let both = upsampled_product(dtype, false, true);
        let steps = plan::plan(&both).unwrap().steps;
        assert!(!steps.iter().any(|s| matches!(s, Step::Fused(_))), "{dtype}: g is an output");
        let xs = inputs(&f);
        let refs: Vec<&Tensor> = xs.iter().collect();
        let run = |f: &Function| {
            let c = compile_with(f, Options::default()).unwrap();
            c.call(&refs).unwrap().remove(0).to_f64_vec()
        };
        let (fused, apart) = (run(&f), run(&both));
        assert!(fused.iter().zip(&apart).all(|(x, y)| x.to_bits() == y.to_bits()), "{dtype}");
        let eps = if dtype == DType::F32 { f64::from(f32::EPSILON) } else { f64::EPSILON };
        let k = 32 * 32;
        let c = 2.0 * (k + k + 2) as f64 * eps / 2.0;
        assert_threads_and_bound(&f, &upsampled_product(dtype, true, false), c);
    }
}

/// `y[o, r, s, t, i] = Σ_c w[o, c]·(Σ_window k_c·m[r, ·, ·, c])[s, t, c·I + i]`: a grouped
/// convolution (one group of `I` outputs per channel) of 8 examples of 16×16×16 (each
/// example's result 512 KiB of f32, 4 MiB in all) read only by a contraction with `w` over
/// the groups; of the inputs' absolute values when `abs`.
fn grouped_then_contracted(dtype: DType, abs: bool) -> Function {
    let t = if dtype == DType::F32 { "f32" } else { "f64" };
    let a = |x: &str| if abs { format!("abs({x})") } else { x.to_string() };
    let src = format!(
        "func f(m: {t}[8,16,16,16], k: {t}[512,1,3,3], w: {t}[10,16]) -> {t}[10,8,16,16,32] {{
  g = conv({m}, {k}, dims=\"NHWC,OIHW,NHWC\", padding=[[1,1],[1,1]], feature_groups=16)
  return dot_general({w}, reshape(g, shape=[8,16,16,16,32]), contract=[[1],[3]], batch=[[],[]])
}}",
        m = a("m"),
        k = a("k"),
        w = a("w"),
    );
    jjt_ir::text::parse(&src).unwrap()
}

/// A contraction's result read only by another contraction, along one of its free axes (the
/// examples of a grouped convolution contracted with per-channel weights, as the zoo's CNN's
/// last layer backward after `convs`), runs with it row by row: one [`Step::Fused`] whose
/// producer is the convolution's contraction, no contraction apart; each example's row laid
/// out in the reader's order, so that the reader's part of a row is one matrix product (in
/// the producer's layout, one for each of the 16·16 positions). In f32 and f64: the same bits
/// for 1, 2 and 3 threads and within `2·(9 + 16 + 2)·u·Σ|w·k·m|` of the interpreter (9 window
/// terms, then 16 channels over a rounded sum).
#[test]
fn a_contraction_runs_row_by_row_with_the_contraction_that_computes_its_operand() {
    for dtype in [DType::F32, DType::F64] {
        let f = grouped_then_contracted(dtype, false);
        let steps = plan::plan(&f).unwrap().steps;
        let fused: Vec<&plan::FusedStep> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Fused(x) => Some(&**x),
                _ => None,
            })
            .collect();
        let apart = steps.iter().filter(|s| matches!(s, Step::Dot(_))).count();
        assert_eq!((fused.len(), apart), (1, 0), "{dtype}: {steps:?}");
        let f0 = fused[0];
        assert!(matches!(f0.producer, plan::Producer::Dot { .. }), "{dtype}");
        let one = Options { threads: 1, ..Options::default() };
        assert_eq!(dot_path(&f0.row_dot(), &one).products, 1, "{dtype}: {:?}", f0.row_dot());
        let eps = if dtype == DType::F32 { f64::from(f32::EPSILON) } else { f64::EPSILON };
        let c = 2.0 * (9 + 16 + 2) as f64 * eps / 2.0;
        assert_threads_and_bound(&f, &grouped_then_contracted(dtype, true), c);
    }
}

/// Along a free axis, a reader reads its other operand whole for every row: a grouped
/// convolution's examples read by a Gram-like product against a 21 MB operand (the zoo's
/// transformer's Gram products of Jacobians: fused, the other side's Jacobians were read once
/// per example) stay two steps; against a head's weights they are fused (the test above).
#[test]
fn a_reader_of_a_large_operand_is_not_fused_along_a_free_axis() {
    let src =
        "func f(m: f32[8,16,16,16], k: f32[512,1,3,3], u: f32[40,16,16,512]) -> f32[8,512,40,512] {
  g = conv(m, k, dims=\"NHWC,OIHW,NHWC\", padding=[[1,1],[1,1]], feature_groups=16)
  return dot_general(g, u, contract=[[1,2],[1,2]], batch=[[],[]])
}";
    let f = jjt_ir::text::parse(src).unwrap();
    let steps = plan::plan(&f).unwrap().steps;
    assert!(!steps.iter().any(|s| matches!(s, Step::Fused(_))), "{steps:?}");
    assert_eq!(steps.iter().filter(|s| matches!(s, Step::Dot(_))).count(), 2, "{steps:?}");
}

/// A fused step's row buffers, one per thread, count against the memory budget: with 64
/// threads the f32 rows (512 KiB each) need 32 MiB, over a budget of 8 MiB that every value
/// fits (the largest, `g`'s 4 MiB, is never stored whole).
#[test]
fn row_buffers_are_bounded_by_the_memory_budget() {
    let f = upsampled_product(DType::F32, false, false);
    let opts = Options { threads: 64, max_bytes: 8 << 20, ..Options::default() };
    match compile_with(&f, opts) {
        Err(jjt_jit::JitError::TooLarge { what, needed, limit }) => {
            assert!(what.contains("row buffers"), "{what}");
            assert_eq!((needed, limit), (64 * (512 << 10), 8 << 20));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// `y_k[b, c, o] = Σ_s u_k[b, o, s, c]·m_k[b, s, c]` (batch axes `b` and `c`, `c` innermost in
/// both operands; a pooled layer's per-example bias gradients), then
/// `k = Σ_c y_1[b, c, o]·y_2[b', c, o']`; of the inputs' absolute values when `abs`.
fn batch_innermost(abs: bool) -> Function {
    let (b, o, s, c) = (8, 10, 64, 64);
    let mut fb = FunctionBuilder::new("batch_innermost");
    let mut y = Vec::new();
    for k in 0..2 {
        let mut input = |name: String, dims: Vec<usize>| {
            let x = fb.input(&name, TensorType::new(DType::F32, dims)).unwrap();
            if abs { fb.unary(Unary::Abs, x).unwrap() } else { x }
        };
        let u = input(format!("u{k}"), vec![b, o, s, c]);
        let m = input(format!("m{k}"), vec![b, s, c]);
        let dims = DotGeneral {
            lhs_contract: vec![2],
            rhs_contract: vec![1],
            lhs_batch: vec![0, 3],
            rhs_batch: vec![0, 2],
        };
        y.push(fb.dot_general(u, m, dims).unwrap());
    }
    let dims = DotGeneral {
        lhs_contract: vec![1],
        rhs_contract: vec![1],
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    let k = fb.dot_general(y[0], y[1], dims).unwrap();
    fb.finish(k).unwrap()
}

/// A contraction whose result is stored with another axis than its last one contiguous (the
/// order its reader wants, `a_contraction_feeding_another_is_stored_in_the_order_it_is_read`)
/// runs in vectors along that axis: the output's axes are loops in any order. Stored
/// row-major, the same step has no vector form (its last axis is strided in both operands)
/// and goes to the runtime's dot loops. Values: the same bits for 1, 2 and 3 threads, within
/// the summation bound of the interpreter (K = 64, then 64).
#[test]
fn a_contraction_stored_across_its_axes_runs_in_vectors_along_its_contiguous_axis() {
    let f = batch_innermost(false);
    let p = plan::plan_for(&f, &Options::default()).unwrap();
    let one = Options { threads: 1, ..Options::default() };
    let producers: Vec<plan::DotStep> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Dot(d) if d.shape.len() == 3 => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(producers.len(), 2, "{:?}", p.steps);
    for y in &producers {
        // [b, c, o] stored with c innermost.
        assert_eq!(y.dst.strides[1], 1, "{:?}", y.dst);
        assert_eq!(dot_path(y, &one).kind, DotKind::InlineVector);
        let mut rm = y.clone();
        rm.dst.strides = Shape(y.shape.clone()).strides().into_iter().map(|s| s as isize).collect();
        assert_eq!(dot_path(&rm, &one).kind, DotKind::RuntimeLoops);
    }
    let eps = f64::from(f32::EPSILON);
    let c = 2.0 * 2.0 * (KB + 2 + 64 + 64 + 1) as f64 * eps / 2.0;
    assert_threads_and_bound(&f, &batch_innermost(true), c);
}
