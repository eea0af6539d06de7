//! Every committed regression input is replayed, and each target runs briefly on random and
//! mutated inputs, so the harness cannot rot.

use jjt_fuzz::{Rng, TARGETS, input, run_one};

#[test]
fn regressions_replay_clean() {
    for (name, target) in TARGETS {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions").join(name);
        let entries = std::fs::read_dir(&dir).unwrap();
        let mut replayed = 0;
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            assert_eq!(run_one(target, &data), Ok(()), "{}", e.path().display());
            replayed += 1;
        }
        assert!(replayed > 0, "no inputs in {}", dir.display());
    }
}

#[test]
fn targets_run_briefly() {
    let seeds: Vec<Vec<u8>> = [
        include_str!("../../../examples/models/seed.jjt").as_bytes().to_vec(),
        include_str!("../../../examples/models/mlp.jjt").as_bytes().to_vec(),
        include_bytes!("../../jjt-cli/tests/fixtures/v_f32.npy").to_vec(),
        include_bytes!("../../jjt-npy/tests/corpus/npz/savez.npz").to_vec(),
        include_bytes!("../../../tests/fixtures/jax/mlp.mlir").to_vec(),
        include_bytes!("../../../tests/fixtures/jax/embed_generic.mlir").to_vec(),
        include_bytes!("../../jjt-import/tests/fixtures/onnx/inline_mlp.onnx").to_vec(),
    ]
    .to_vec();
    let mut rng = Rng(12345);
    for (name, target) in TARGETS {
        for _ in 0..300 {
            let data = input(&mut rng, &seeds);
            assert_eq!(run_one(target, &data), Ok(()), "{name}: {data:?}");
        }
    }
}
