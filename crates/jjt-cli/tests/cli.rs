//! The `jjt` binary end to end: dumps, evaluation against NumPy, and error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn jjt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jjt")).args(args).output().expect("run jjt")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn seed_model() -> String {
    root().join("examples/models/seed.jjt").display().to_string()
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jjt-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "jjt failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn read(path: &Path) -> Vec<f64> {
    let a = jjt_npy::read_file(path).unwrap();
    match a.data {
        jjt_npy::Data::F32(v) => v.into_iter().map(f64::from).collect(),
        jjt_npy::Data::F64(v) => v,
        jjt_npy::Data::Bool(_) => panic!("bool"),
    }
}

#[test]
fn dump_text_is_canonical_and_reparses_identically() {
    let text = stdout(&jjt(&["dump", &seed_model(), "--format", "text"]));
    insta::assert_snapshot!("seed_traced_text", text);
    let printed = tmp("printed.jjt");
    std::fs::write(&printed, &text).unwrap();
    let again = stdout(&jjt(&["dump", printed.to_str().unwrap()]));
    assert_eq!(text, again);
}

#[test]
fn dump_dot_is_accepted_by_graphviz() {
    let dot = stdout(&jjt(&["dump", &seed_model(), "--format", "dot"]));
    insta::assert_snapshot!("seed_traced_dot", dot);
    let out = tmp("seed.dot");
    let o = jjt(&["dump", &seed_model(), "--format", "dot", "-o", out.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), dot);
    // Graphviz must be installed (README: prerequisites; .ci/run installs it).
    let svg = Command::new("dot")
        .arg("-Tsvg")
        .arg(&out)
        .output()
        .expect("graphviz `dot` must be installed");
    assert!(
        svg.status.success(),
        "dot rejected the graph: {}",
        String::from_utf8_lossy(&svg.stderr)
    );
    assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));
}

#[test]
fn eval_seed_matches_numpy_f32() {
    let out = tmp("y.npy");
    let o = jjt(&[
        "eval",
        &seed_model(),
        "--in",
        &format!("x={}", fixture("x1_f32.npy")),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = read(&out);
    let want = read(Path::new(&fixture("y_x1_ref.npy")));
    assert_eq!(got.len(), 5);
    // f32: 10000-term sums in f32 (relative error ~ sqrt(n)·u typical, n·u = 6e-4 worst case
    // for positive terms), halved by the square root; the acceptance bound is 2e-5.
    for (g, w) in got.iter().zip(&want) {
        assert!(((g - w) / w).abs() <= 2e-5, "got {g}, NumPy {w}");
    }
    // A bare FILE.npy works for a one-input model and gives the same bits.
    let out2 = tmp("y2.npy");
    let o =
        jjt(&["eval", &seed_model(), "--in", &fixture("x1_f32.npy"), "-o", out2.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
}

#[test]
fn eval_seed_matches_numpy_f64() {
    let model = tmp("seed64.jjt");
    let src = std::fs::read_to_string(seed_model()).unwrap().replace("f32", "f64");
    std::fs::write(&model, src).unwrap();
    let text = stdout(&jjt(&[
        "eval",
        model.to_str().unwrap(),
        "--in",
        &format!("x={}", fixture("x2_f64.npy")),
    ]));
    let values: Vec<f64> =
        text.lines().nth(1).unwrap().split(' ').map(|s| s.parse().unwrap()).collect();
    let want = read(Path::new(&fixture("y_x2_f64_ref.npy")));
    // f64: n·u·Σ|terms| with n = 10^4 bounds the sum's relative error by 1.2e-12.
    for (g, w) in values.iter().zip(&want) {
        assert!(((g - w) / w).abs() <= 2e-12, "got {g}, NumPy {w}");
    }
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let o = jjt(args);
    assert_eq!(o.status.code(), Some(1), "expected failure for {args:?}");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing `{n}` in:\n{err}");
    }
}

#[test]
fn user_mistakes_give_clear_errors() {
    let m = seed_model();
    let x = fixture("x1_f32.npy");
    fails_with(&["eval", &m], &["missing input `x`", "f32[10000]", "--in x="]);
    fails_with(&["eval", &m, "--in", &format!("y={x}")], &["no input `y`", "x: f32[10000]"]);
    fails_with(
        &["eval", &m, "--in", &format!("x={x}"), "--in", &format!("x={x}")],
        &["given twice"],
    );
    fails_with(
        &["eval", &m, "--in", &format!("x={}", fixture("x2_f64.npy"))],
        &["expected f32[10000]", "f64[10000]", "astype"],
    );
    fails_with(&["eval", &m, "--in", &format!("x={}", fixture("ints.npy"))], &["ints.npy", "<i8"]);
    fails_with(&["eval", &m, "--in", "x=/nonexistent.npy"], &["/nonexistent.npy"]);
    fails_with(&["dump", "/nonexistent.jjt"], &["cannot read model", "/nonexistent.jjt"]);
    let bad = tmp("bad.jjt");
    std::fs::write(&bad, "func f(x: f32[3]) -> f32[3] {\n  return exp(x +)\n}\n").unwrap();
    fails_with(&["dump", bad.to_str().unwrap()], &["bad.jjt:2:17", "^"]);
}
