//! `--print-after` takes a pass of the pipeline: a misspelt pass is a usage error that lists
//! the passes, never a silent run of another pass.

use std::path::PathBuf;
use std::process::{Command, Output};

fn jjt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jjt")).args(args).output().expect("run jjt")
}

fn seed_model() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("examples/models/seed.jjt").to_string_lossy().into_owned()
}

#[test]
fn a_misspelt_pass_is_a_usage_error() {
    let model = seed_model();
    let o = jjt(&["dump", &model, "--stage", "optimized", "--wrt", "x", "--print-after", "dcee"]);
    assert_eq!(o.status.code(), Some(2), "clap's usage-error status");
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("invalid value 'dcee' for '--print-after <PASS>'"), "{err}");
    assert!(
        err.contains(
            "[possible values: cse, simplify, basis, masks, convs, fold, reorder, layout, sums, \
             siblings, unsplit, dce]"
        ),
        "{err}"
    );
}

#[test]
fn each_pass_prints_after_every_run_of_it() {
    let model = seed_model();
    for (pass, runs) in
        [("cse", 1), ("simplify", 2), ("basis", 1), ("masks", 1), ("convs", 1), ("fold", 2)]
            .into_iter()
            .chain([("reorder", 1), ("layout", 1)])
            .chain([("sums", 1), ("siblings", 1), ("unsplit", 1), ("dce", 1)])
    {
        let o = jjt(&["dump", &model, "--stage", "optimized", "--wrt", "x", "--print-after", pass]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out.matches(&format!("# after {pass}\n")).count(), runs, "{out}");
        assert_eq!(out.matches("# after ").count(), runs, "{out}");
    }
}
