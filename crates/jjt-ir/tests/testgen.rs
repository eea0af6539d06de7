//! The shared random-graph generator: over its default run every op name of the closed set
//! appears, graphs verify, and byte streams (the fuzz harness's input) make graphs too.

use std::collections::BTreeSet;

use jjt_ir::testgen::{self, Config, Draw};
use jjt_ir::{DType, Op, interp};

#[test]
fn default_run_covers_every_op() {
    let mut seen = BTreeSet::new();
    let mut dtypes = BTreeSet::new();
    for case in testgen::default_run() {
        jjt_ir::verify(&case.f).unwrap();
        seen.extend(testgen::op_names(&case.f));
        for n in case.f.node_ids() {
            let t = &case.f.node(n).unwrap().ty;
            dtypes.insert(format!("{}", t.dtype));
        }
        interp::eval_outputs(&case.f, &case.args).unwrap();
    }
    let missing: Vec<&str> = Op::all_names().into_iter().filter(|n| !seen.contains(n)).collect();
    assert!(missing.is_empty(), "the generator's default run never builds {missing:?}");
    for d in [DType::F32, DType::F64, DType::Bool] {
        assert!(dtypes.contains(&d.to_string()), "no {d} value in the default run");
    }
}

#[test]
fn domains_keep_values_finite() {
    for seed in 0..200 {
        let case = testgen::generate(&mut Draw::seed(seed), &Config::kernel());
        let out = interp::eval_outputs(&case.f, &case.args).unwrap();
        let n: usize = out.iter().map(|t| t.numel()).sum();
        assert_eq!(testgen::finite_count(&out), n, "{}", jjt_ir::text::print(&case.f));
        assert_eq!(case.f.outputs().len(), 1);
        assert!(n <= 6);
        assert!(!case.wrt.is_empty());
    }
}

#[test]
fn byte_streams_make_graphs() {
    for len in [0usize, 1, 7, 64, 300] {
        let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let case = testgen::generate(&mut Draw::bytes(&data), &Config::default());
        jjt_ir::verify(&case.f).unwrap();
        interp::eval_outputs(&case.f, &case.args).unwrap();
    }
}
