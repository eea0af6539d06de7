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

/// A path in a folder of this test's own: tests run on parallel threads and write files of
/// the same names (the MLP's parameters), so each thread has its folder.
fn tmp(name: &str) -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let d = std::env::temp_dir().join(format!("jjt-cli-test-{}-{thread}", std::process::id()));
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
        jjt_npy::Data::I32(v) => v.into_iter().map(f64::from).collect(),
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
    fails_with(
        &["eval", &m, "--in", &format!("x={}", fixture("ints.npy"))],
        &["ints.npy", "expected f32[10000]", "i32[3]"],
    );
    fails_with(&["eval", &m, "--in", "x=/nonexistent.npy"], &["/nonexistent.npy"]);
    fails_with(&["dump", "/nonexistent.jjt"], &["cannot read model", "/nonexistent.jjt"]);
    let bad = tmp("bad.jjt");
    std::fs::write(&bad, "func f(x: f32[3]) -> f32[3] {\n  return exp(x +)\n}\n").unwrap();
    fails_with(&["dump", bad.to_str().unwrap()], &["bad.jjt:2:17", "^"]);
}

fn read_fixture(name: &str) -> Vec<f64> {
    read(Path::new(&fixture(name)))
}

fn assert_rel(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{what}: element {i}: {g:e} vs reference {w:e}");
    }
}

/// `jjt COMMAND ARGS... -o OUT`, which must succeed; the values written to OUT.
fn run_to(command: &str, args: &[&str], out: &Path) -> Vec<f64> {
    let mut all = vec![command];
    all.extend_from_slice(args);
    all.extend(["-o", out.to_str().unwrap()]);
    let o = jjt(&all);
    assert!(o.status.success(), "{all:?}: {}", String::from_utf8_lossy(&o.stderr));
    read(out)
}

#[test]
fn kernel_seed_matches_numpy_closed_form() {
    let m = seed_model();
    for strategy in ["ntvp", "jc"] {
        let x1 = format!("x={}", fixture("x1_f32.npy"));
        let args = ["--wrt", "x", "--x1", &x1, "--x2", &fixture("x2_f32.npy")];
        let k = run_to(
            "kernel",
            &[&[&m, "--strategy", strategy], &args[..]].concat(),
            &tmp(&format!("k_{strategy}.npy")),
        );
        // f32: sums of 10^4 terms in f32 plus a few roundings; 1e-5 of the largest entry.
        assert_rel(&format!("f32 {strategy}"), &k, &read_fixture("k_seed_f32data_ref.npy"), 1e-5);
        let (x1, x2) = (fixture("x1_f64.npy"), fixture("x2_f64.npy"));
        let args = [&m, "--f64", "--wrt", "x", "--x1", &x1, "--x2", &x2, "--strategy", strategy];
        let k = run_to("kernel", &args, &tmp(&format!("k64_{strategy}.npy")));
        // f64: n·u·Σ|terms| with n = 10^4 is 1.1e-12 of each sum.
        assert_rel(&format!("f64 {strategy}"), &k, &read_fixture("k_seed_f64_ref.npy"), 1e-12);
    }
}

#[test]
fn apply_seed_matches_k_times_v() {
    let (m, x1, x2, v) =
        (seed_model(), fixture("x1_f32.npy"), fixture("x2_f32.npy"), fixture("v_f32.npy"));
    let kv =
        run_to("apply", &[&m, "--wrt", "x", "--x1", &x1, "--x2", &x2, "--v", &v], &tmp("kv.npy"));
    assert_rel("K·v", &kv, &read_fixture("kv_seed_f32data_ref.npy"), 1e-5);
}

/// Parameters and inputs of the MLP test as NumPy's legacy generator makes them (see
/// gen_seed.py), written to .npy files.
fn mlp_files() -> Vec<String> {
    let mut rng = jjt::RandomState::new(0);
    let widths = [784usize, 512, 512, 10];
    let mut args = Vec::new();
    let f32_of = |v: Vec<f64>, shape: Vec<usize>| jjt_npy::Array {
        shape,
        data: jjt_npy::Data::F32(v.into_iter().map(|x| x as f32).collect()),
    };
    for l in 0..3 {
        let (fi, fo) = (widths[l], widths[l + 1]);
        let w: Vec<f64> = rng
            .randn_f64([fi, fo])
            .unwrap()
            .to_f64_vec()
            .iter()
            .map(|v| v / (fi as f64).sqrt())
            .collect();
        let b: Vec<f64> =
            rng.randn_f64([fo]).unwrap().to_f64_vec().iter().map(|v| 0.1 * v).collect();
        for (name, arr) in
            [(format!("w{l}"), f32_of(w, vec![fi, fo])), (format!("b{l}"), f32_of(b, vec![fo]))]
        {
            let p = tmp(&format!("{name}.npy"));
            jjt_npy::write_file(&p, &arr).unwrap();
            args.push("--shared".to_string());
            args.push(format!("{name}={}", p.display()));
        }
    }
    for (flag, b) in [("--x1", 4usize), ("--x2", 3)] {
        let x = rng.randn_f64([b, 784]).unwrap().to_f64_vec();
        let p = tmp(&format!("mlp{flag}.npy"));
        jjt_npy::write_file(&p, &f32_of(x, vec![b, 784])).unwrap();
        args.push(flag.to_string());
        args.push(format!("x={}", p.display()));
    }
    args
}

#[test]
fn mlp_trace_kernel_matches_dense_jacobian_oracle() {
    let model = root().join("examples/models/mlp.jjt").display().to_string();
    let files = mlp_files();
    let wrt = "w0,b0,w1,b1,w2,b2";
    let want = read_fixture("k_mlp_trace_ref.npy");
    for (prec, tol, strategy) in [
        ("--f64", 1e-10, "auto"),
        ("--f64", 1e-10, "ntvp"),
        ("--f64", 1e-10, "jc"),
        ("", 1e-4, "auto"),
    ] {
        let out = tmp(&format!("k_mlp{prec}{strategy}.npy"));
        let mut args: Vec<&str> =
            vec![&model, "--wrt", wrt, "--mode", "trace", "--strategy", strategy];
        if !prec.is_empty() {
            args.push(prec);
        }
        args.extend(files.iter().map(String::as_str));
        run_to("kernel", &args, &out);
        let a = jjt_npy::read_file(&out).unwrap();
        assert_eq!(a.shape, vec![4, 3]);
        // f64: the kernel and the oracle each sum ~7·10^5 products; both far below 1e-10.
        // f32: the data are f32 either way; f32 arithmetic over sums of <= 784 terms through
        // three layers stays within 1e-4 of the largest entry.
        assert_rel(&format!("mlp trace {prec} {strategy}"), &read(&out), &want, tol);
    }
}

#[test]
fn check_passes_on_the_seed_and_fails_at_a_singular_point() {
    let o = jjt(&["check", &seed_model(), "--wrt", "x", "--points", "2"]);
    let out = stdout(&o);
    assert!(out.contains("worst JVP error") && out.trim_end().ends_with("ok"), "{out}");
    // At x = 0, sqrt's derivative is infinite and finite differences are NaN.
    let zeros = tmp("zeros.npy");
    jjt_npy::write_file(
        &zeros,
        &jjt_npy::Array { shape: vec![10000], data: jjt_npy::Data::F32(vec![0.0; 10000]) },
    )
    .unwrap();
    fails_with(
        &["check", &seed_model(), "--wrt", "x", "--in", &format!("x={}", zeros.display())],
        &["derivative check failed"],
    );
}

#[test]
fn dumps_of_every_stage() {
    let m = seed_model();
    for stage in ["jvp", "linearize", "vjp", "kernel", "apply"] {
        let text = stdout(&jjt(&["dump", &m, "--stage", stage, "--wrt", "x"]));
        insta::assert_snapshot!(format!("seed_{stage}_text"), text);
        // Every printed function parses back to the same text.
        for func in text.split("\n\n") {
            let path = tmp(&format!("{stage}.jjt"));
            std::fs::write(&path, func).unwrap();
            let again = stdout(&jjt(&["dump", path.to_str().unwrap()]));
            assert_eq!(again.trim_end(), func.trim_end(), "{stage}");
        }
        let dot = stdout(&jjt(&["dump", &m, "--stage", stage, "--wrt", "x", "--format", "dot"]));
        insta::assert_snapshot!(format!("seed_{stage}_dot"), dot);
        let path = tmp(&format!("{stage}.dot"));
        std::fs::write(&path, &dot).unwrap();
        let svg = Command::new("dot")
            .arg("-Tsvg")
            .arg(&path)
            .output()
            .expect("graphviz `dot` must be installed");
        assert!(svg.status.success(), "{stage}: {}", String::from_utf8_lossy(&svg.stderr));
    }
    let batched = stdout(&jjt(&[
        "dump", &m, "--stage", "kernel", "--wrt", "x", "--batch", "2,3", "--mode", "trace",
    ]));
    assert!(batched.contains("-> f32[2,3]"), "{batched}");
}

#[test]
fn kernel_mistakes_give_clear_errors() {
    let m = seed_model();
    let x1 = fixture("x1_f32.npy");
    let x2 = fixture("x2_f32.npy");
    fails_with(
        &["kernel", &m, "--wrt", "y", "--x1", &x1, "--x2", &x2],
        &["`y` is not an input", "x: f32[10000]"],
    );
    fails_with(&["kernel", &m, "--wrt", "x", "--x1", &x1], &["missing input `x`", "--x2"]);
    fails_with(
        &["kernel", &m, "--wrt", "x", "--x1", &x1, "--x2", &fixture("x2_f64.npy")],
        &["`x`", "f64[10000]", "astype"],
    );
    fails_with(
        &[
            "kernel",
            &m,
            "--wrt",
            "x",
            "--x1",
            &format!("x={x1}"),
            "--x2",
            &x2,
            "--shared",
            &format!("x={x1}"),
        ],
        &["--shared", "one value for both sides"],
    );
    fails_with(&["dump", &m, "--stage", "vjp"], &["needs --wrt"]);
    let v = fixture("v_f32.npy");
    fails_with(
        &["apply", &m, "--wrt", "x", "--x1", &x1, "--x2", &x2, "--v", &x1],
        &["input `v`", "expected f32[5]"],
    );
    let _ = v;
}

#[test]
fn jit_and_interpreter_backends_agree() {
    let m = seed_model();
    let (x1, x2) = (fixture("x1_f32.npy"), fixture("x2_f32.npy"));
    let mut results = Vec::new();
    for backend in ["jit", "interp"] {
        let args = [&m, "--wrt", "x", "--x1", &x1, "--x2", &x2, "--backend", backend];
        results.push(run_to("kernel", &args, &tmp(&format!("k_{backend}.npy"))));
    }
    // The JIT may reassociate the 10^4-term sums (vector partial sums, FMA).
    assert_rel("jit vs interp", &results[0], &results[1], 1e-5);
    assert_rel("jit vs closed form", &results[0], &read_fixture("k_seed_f32data_ref.npy"), 1e-5);
}

#[test]
fn dump_clif_and_asm() {
    let m = seed_model();
    let clif = stdout(&jjt(&["dump", &m, "--stage", "clif", "--of", "kernel", "--wrt", "x"]));
    assert!(clif.contains("function") && (clif.contains("fma") || clif.contains("fmul")), "{clif}");
    let asm = stdout(&jjt(&["dump", &m, "--stage", "asm"]));
    assert!(asm.contains("ret"), "{asm}");
}

/// `jjt bench --profile` lists every step in execution order (index, predicted and measured
/// milliseconds, share, rate with its unit, what the step is) and then the totals, before the
/// JSON line: the shares add up to 100 %, the predicted times to the predicted total.
#[test]
fn bench_profile_lists_steps() {
    let model = root().join("examples/models/mlp.jjt").display().to_string();
    let p = "w0,b0,w1,b1,w2,b2";
    let out = stdout(&jjt(&[
        "bench",
        &model,
        "--wrt",
        p,
        "--shared",
        p,
        "--batch",
        "4,3",
        "--reps",
        "2",
        "--profile",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.last().unwrap().starts_with("{\"median_ms\""), "{out}");
    let head = lines.iter().position(|l| l.starts_with("profile: ")).expect("a profile line");
    let n: usize = lines[head]["profile: ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(lines[head].contains("GFLOP/s (2 per multiply-add) for contractions"), "{out}");
    let columns: Vec<&str> = lines[head + 1].split_whitespace().collect();
    assert_eq!(columns, ["step", "pred", "ms", "median", "ms", "share", "rate", "step"], "{out}");
    let steps = &lines[head + 2..head + 2 + n];
    let (mut share, mut predicted) = (0.0, 0.0);
    for (k, l) in steps.iter().enumerate() {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f[0].parse::<usize>().unwrap(), k, "{l}");
        let pred: f64 = f[1].parse().unwrap();
        let measured: f64 = f[2].parse().unwrap();
        // Printed to 1e-4 ms: a step of a dozen elements predicts 0.0000.
        assert!(pred >= 0.0 && measured >= 0.0, "{l}");
        predicted += pred;
        share += f[3].trim_end_matches('%').parse::<f64>().unwrap();
        let rate: f64 = f[4].parse().unwrap();
        assert!(rate >= 0.0, "{l}");
        let what = f[6..].join(" ");
        match f[5] {
            "GFLOP/s" => assert!(what.starts_with("dot "), "{l}"),
            "Gelem/s" => assert!(what.starts_with("map ") || what.starts_with("reduce "), "{l}"),
            other => panic!("unit {other} in {l}"),
        }
    }
    let total: Vec<&str> = lines[head + 2 + n].split_whitespace().collect();
    assert_eq!(total[0], "total", "{out}");
    // Each printed time is rounded to 5e-5 ms.
    let pred_total: f64 = total[1].parse().unwrap();
    assert!((pred_total - predicted).abs() <= 5e-5 * (n as f64 + 1.0), "{out}");
    assert!((share - 100.0).abs() <= 0.05 * n as f64 + 0.1, "{out}");
    assert!(steps.iter().any(|l| l.contains("(matrix multiply)")), "{out}");
    // Each step names the graph node it computes, as the text dump of the kernel prints it.
    let kernel = stdout(&jjt(&[
        "dump",
        &model,
        "--stage",
        "optimized",
        "--wrt",
        p,
        "--shared",
        p,
        "--batch",
        "4,3",
    ]));
    for l in steps {
        let node = l.rsplit_once('[').map(|(_, n)| n.trim_end_matches(']')).unwrap();
        assert!(
            node == "(output)" || kernel.contains(&format!("  {node} = ")),
            "{node} is not a node of the optimised kernel: {l}"
        );
    }
    // `auto` says what it chose.
    assert!(lines.iter().any(|l| l.starts_with("strategy auto: ")), "{out}");
}

/// `jjt bench --profile --format dot` draws the compiled kernel as one DOT digraph, each
/// timed node filled by its share of the measured time (the slowest fully red) and labelled
/// with its time; with `--around NODE` only its neighbourhood, which Graphviz renders below
/// 2000 pixels on the longer side. `jjt dump` of a two-function stage is one digraph with a
/// cluster per function, and `--around` names an unknown node in its error.
#[test]
fn profile_pictures() {
    let model = root().join("examples/models/mlp.jjt").display().to_string();
    let p = "w0,b0,w1,b1,w2,b2";
    let args = [
        "bench",
        &model,
        "--wrt",
        p,
        "--shared",
        p,
        "--batch",
        "32,32",
        "--reps",
        "2",
        "--profile",
        "--format",
        "dot",
    ];
    let o = jjt(&args);
    let whole = stdout(&o);
    assert!(
        whole.starts_with("digraph \"mlp_kernel\" {") && whole.trim_end().ends_with('}'),
        "{whole}"
    );
    assert_eq!(whole.matches("digraph").count(), 1);
    assert!(whole.contains("fillcolor=\"#ff0000\""), "the slowest node is red: {whole}");
    assert!(whole.contains(" ms ("), "{whole}");
    // The summary went to standard error.
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"median_ms\""));
    // The red node's name, for --around.
    let red = whole.lines().find(|l| l.contains("#ff0000")).unwrap();
    let name = red.split("label=\"").nth(1).unwrap().split(" = ").next().unwrap();
    let near = stdout(&jjt(&[&args[..], &["--around", name, "--depth", "2"]].concat()));
    assert!(near.matches(" [label=").count() < whole.matches(" [label=").count());
    let path = tmp("near.dot");
    std::fs::write(&path, &near).unwrap();
    let png = tmp("near.png");
    let r = Command::new("dot").arg("-Tpng").arg(&path).arg("-o").arg(&png).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let head = std::fs::read(&png).unwrap();
    let (w, h) = (
        u32::from_be_bytes(head[16..20].try_into().unwrap()),
        u32::from_be_bytes(head[20..24].try_into().unwrap()),
    );
    assert!(w.max(h) < 2000, "{w}x{h}");
    // Two functions, one picture.
    let lin = stdout(&jjt(&[
        "dump",
        &seed_model(),
        "--stage",
        "linearize",
        "--wrt",
        "x",
        "--format",
        "dot",
    ]));
    assert_eq!(lin.matches("digraph").count(), 1, "{lin}");
    assert!(lin.contains("subgraph cluster_0") && lin.contains("subgraph cluster_1"), "{lin}");
    fails_with(
        &["dump", &seed_model(), "--format", "dot", "--around", "nosuch"],
        &["--around", "no node is printed as `nosuch`"],
    );
}

#[test]
fn bench_prints_json_last() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = seed_model();
    for (flags, threads) in
        [(vec![], cores), (vec!["--threads", "1"], 1), (vec!["--threads", "3"], 3)]
    {
        let mut args = vec!["bench", &model, "--wrt", "x", "--reps", "3"];
        args.extend(flags);
        let out = stdout(&jjt(&args));
        let last = out.lines().last().unwrap();
        let threads = format!("\"threads\": {threads}}}");
        for key in [
            "\"median_ms\":",
            "\"min_ms\":",
            "\"first_call_ms\":",
            "\"reps\": 3",
            "\"peak_rss_mb\":",
            &threads,
        ] {
            assert!(last.starts_with('{') && last.ends_with('}') && last.contains(key), "{last}");
        }
    }
}

#[test]
fn kernels_of_scalar_and_bool_outputs() {
    let so = tmp("so.jjt");
    std::fs::write(&so, "func f(w: f32[3]) -> f32[] { return sum(sin(w)) }").unwrap();
    let w = tmp("w3.npy");
    jjt_npy::write_file(
        &w,
        &jjt_npy::Array { shape: vec![3], data: jjt_npy::Data::F32(vec![0.1, 0.2, 0.3]) },
    )
    .unwrap();
    let w = w.display().to_string();
    // K = Σ cos(w)², computed here directly.
    let want: f64 = [0.1f32, 0.2, 0.3].iter().map(|&x| f64::from(x.cos()).powi(2)).sum();
    for backend in ["jit", "interp"] {
        let args = [so.to_str().unwrap(), "--wrt", "w", "--x1", &w, "--x2", &w, "--mode", "trace"];
        let out = tmp(&format!("k_so_{backend}.npy"));
        let got = run_to("kernel", &[&args[..], &["--backend", backend]].concat(), &out)[0];
        assert!((got - want).abs() <= 1e-6, "{got} vs {want}");
    }
    let bo = tmp("bo.jjt");
    std::fs::write(&bo, "func f(w: f32[3]) -> bool[3] { return w > 0.0 }").unwrap();
    fails_with(
        &["kernel", bo.to_str().unwrap(), "--wrt", "w", "--x1", &w, "--x2", &w],
        &["output", "bool"],
    );
    fails_with(&["bench", &seed_model(), "--reps", "0"], &["--reps"]);
}

/// A small f32 MLP model and its parameter and batch files (64 and 48 examples).
fn tile_setup() -> (String, Vec<String>, String, String) {
    let dir = tmp("tiles");
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.jjt");
    std::fs::write(
        &model,
        "func mlp(x: f32[2], w0: f32[2,16], b0: f32[16], w1: f32[16,16], b1: f32[16], w2: f32[16,3], b2: f32[3]) -> f32[3] {\n  h0 = tanh(x @ w0 + b0)\n  h1 = tanh(h0 @ w1 + b1)\n  return h1 @ w2 + b2\n}\n",
    )
    .unwrap();
    let mut rng = jjt::RandomState::new(4);
    let mut write = |name: &str, shape: Vec<usize>| -> String {
        let n: usize = shape.iter().product();
        let v = rng.randn_f64([n]).unwrap().to_f64_vec().iter().map(|x| (x / 4.0) as f32).collect();
        let p = dir.join(format!("{name}.npy"));
        jjt_npy::write_file(&p, &jjt_npy::Array { shape, data: jjt_npy::Data::F32(v) }).unwrap();
        p.display().to_string()
    };
    let mut shared = Vec::new();
    for (n, s) in [
        ("w0", vec![2, 16]),
        ("b0", vec![16]),
        ("w1", vec![16, 16]),
        ("b1", vec![16]),
        ("w2", vec![16, 3]),
        ("b2", vec![3]),
    ] {
        shared.push("--shared".to_string());
        shared.push(format!("{n}={}", write(n, s)));
    }
    let (xa, xb) = (write("xa", vec![64, 2]), write("xb", vec![48, 2]));
    (model.display().to_string(), shared, xa, xb)
}

fn tile_kernel(model: &str, shared: &[String], xa: &str, xb: &str, extra: &[&str], out: &Path) {
    let mut args: Vec<&str> =
        vec![model, "--wrt", "w0,b0,w1,b1,w2,b2", "--x1", xa, "--x2", xb, "--tile", "8"];
    args.extend(shared.iter().map(String::as_str));
    args.extend_from_slice(extra);
    run_to("kernel", &args, out);
}

#[test]
fn blocks_reassemble_the_whole_kernel_bit_for_bit() {
    let (model, shared, xa, xb) = tile_setup();
    let (xa, xb) = (format!("x={xa}"), format!("x={xb}"));
    let whole = tmp("whole.npy");
    tile_kernel(&model, &shared, &xa, &xb, &[], &whole);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    for trial in 0..3 {
        // A random grid: cuts at random rows and columns (not aligned to the tiles).
        let mut rows = vec![0, 64];
        let mut cols = vec![0, 48];
        for _ in 0..1 + next(3) {
            rows.push(1 + next(63));
            cols.push(1 + next(47));
        }
        rows.sort_unstable();
        rows.dedup();
        cols.sort_unstable();
        cols.dedup();
        let mut parts = Vec::new();
        for r in rows.windows(2) {
            for c in cols.windows(2) {
                let out = tmp(&format!("block_{trial}_{}_{}.npy", r[0], c[0]));
                let (rr, cc) = (format!("{}:{}", r[0], r[1]), format!("{}:{}", c[0], c[1]));
                tile_kernel(
                    &model,
                    &shared,
                    &xa,
                    &xb,
                    &["--rows", &rr, "--cols", &cc, "--threads", "2"],
                    &out,
                );
                parts.push(format!("{rr},{cc}={}", out.display()));
            }
        }
        let merged = tmp(&format!("merged_{trial}.npy"));
        let mut args = vec!["merge".to_string()];
        args.extend(parts);
        args.extend(["-o".to_string(), merged.display().to_string()]);
        let o = jjt(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            std::fs::read(&merged).unwrap(),
            std::fs::read(&whole).unwrap(),
            "trial {trial}: rows {rows:?} cols {cols:?}"
        );
    }
    // Merging one block that is the whole kernel gives it back; gaps and overlaps are errors.
    let again = tmp("again.npy");
    let whole_s = whole.display().to_string();
    let o = jjt(&["merge", &format!("0:64,0:48={whole_s}"), "-o", again.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&whole).unwrap());
    fails_with(
        &[
            "merge",
            &format!("0:64,0:48={whole_s}"),
            &format!("0:64,0:48={whole_s}"),
            "-o",
            again.to_str().unwrap(),
        ],
        &["more than once"],
    );
    fails_with(
        &["merge", &format!("0:64,1:49={whole_s}"), "-o", again.to_str().unwrap()],
        &["not covered"],
    );
}

#[test]
fn progress_bar_shows_in_a_terminal_and_not_with_quiet() {
    // The MLP of examples/models/mlp.jjt on 16 × 12 examples, one example pair per tile and one
    // thread: 192 tile calls, with the bar's delay set to zero (a fast run of any size could
    // finish before the default one second).
    let model = root().join("examples/models/mlp.jjt").display().to_string();
    let files: Vec<String> =
        mlp_files().into_iter().filter(|a| !a.starts_with("--x") && !a.starts_with("x=")).collect();
    let mut rng = jjt::RandomState::new(5);
    let mut batch = |name: &str, n: usize| -> String {
        let v = rng.randn_f64([n * 784]).unwrap().to_f64_vec().iter().map(|&x| x as f32).collect();
        let p = tmp(name);
        jjt_npy::write_file(
            &p,
            &jjt_npy::Array { shape: vec![n, 784], data: jjt_npy::Data::F32(v) },
        )
        .unwrap();
        p.display().to_string()
    };
    let (xa, xb) = (batch("pa.npy", 16), batch("pb.npy", 12));
    let out = tmp("progress.npy");
    let mut cmd = format!(
        "JJT_PROGRESS_DELAY_MS=0 {} kernel {model} --wrt w0,b0,w1,b1,w2,b2 --mode trace --x1 x={xa} --x2 x={xb} --tile 1 --threads 1 -o {}",
        env!("CARGO_BIN_EXE_jjt"),
        out.display()
    );
    for s in &files {
        cmd.push(' ');
        cmd.push_str(s);
    }
    let run = |c: &str| -> String {
        let o = Command::new("script")
            .args(["-qec", c, "/dev/null"])
            .output()
            .expect("script(1) from util-linux");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let shown = run(&cmd);
    assert!(shown.contains("kernel blocks") && shown.contains("/192"), "{shown}");
    let quiet = run(&format!("{cmd} --quiet"));
    assert!(!quiet.contains("kernel blocks"), "{quiet}");
    // Not a terminal: no bar either.
    let o = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    assert!(o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("kernel blocks"));
}

/// f(x) = tanh(A·x) with A shared: the tiled kernel stages A·Aᵀ-like products of A alone out of
/// the tiles (computed once, passed to every tile). Its blocks K[i, j] = J(x1ᵢ)·J(x2ⱼ)ᵀ, with
/// J(x) = diag(1 − tanh²(A·x))·A, must equal this explicit-Jacobian oracle (f64; sums of 6
/// products, so 1e-12 relative is far above the rounding), for ragged tiles and 1 or 2 threads.
#[test]
fn staged_tiles_match_explicit_jacobians() {
    let model = tmp("tanh_ax.jjt");
    std::fs::write(&model, "func f(x: f64[6], a: f64[4,6]) -> f64[4] {\n  return tanh(a @ x)\n}\n")
        .unwrap();
    let mut rng = jjt::RandomState::new(3);
    let a = rng.randn_f64([4, 6]).unwrap().to_f64_vec();
    let (b1, b2) = (5usize, 3usize);
    let x1 = rng.randn_f64([b1, 6]).unwrap().to_f64_vec();
    let x2 = rng.randn_f64([b2, 6]).unwrap().to_f64_vec();
    let save = |name: &str, v: &[f64], shape: Vec<usize>| {
        let p = tmp(name);
        jjt_npy::write_file(&p, &jjt_npy::Array { shape, data: jjt_npy::Data::F64(v.to_vec()) })
            .unwrap();
        p.display().to_string()
    };
    let (pa, p1, p2) = (
        save("tanh_a.npy", &a, vec![4, 6]),
        save("tanh_x1.npy", &x1, vec![b1, 6]),
        save("tanh_x2.npy", &x2, vec![b2, 6]),
    );
    let jac = |x: &[f64]| -> Vec<f64> {
        let mut j = vec![0.0; 24];
        for r in 0..4 {
            let z: f64 = (0..6).map(|c| a[r * 6 + c] * x[c]).sum();
            let d = 1.0 - z.tanh().powi(2);
            for c in 0..6 {
                j[r * 6 + c] = d * a[r * 6 + c];
            }
        }
        j
    };
    let mut want = Vec::new();
    for i in 0..b1 {
        let j1 = jac(&x1[i * 6..(i + 1) * 6]);
        for j in 0..b2 {
            let j2 = jac(&x2[j * 6..(j + 1) * 6]);
            for r in 0..4 {
                for s in 0..4 {
                    want.push((0..6).map(|c| j1[r * 6 + c] * j2[s * 6 + c]).sum::<f64>());
                }
            }
        }
    }
    let (pa, p1, p2) = (format!("a={pa}"), format!("x={p1}"), format!("x={p2}"));
    let model = model.to_str().unwrap();
    for threads in ["1", "2"] {
        let out = tmp(&format!("tanh_k{threads}.npy"));
        let args = [model, "--wrt", "x", "--shared", &pa, "--x1", &p1, "--x2", &p2, "--tile", "2"];
        let k = run_to("kernel", &[&args[..], &["--threads", threads]].concat(), &out);
        assert_eq!(jjt_npy::read_file(&out).unwrap().shape, vec![b1, b2, 4, 4]);
        assert_rel("staged tiles", &k, &want, 1e-12);
    }
    // What the tiles share: `jjt dump --stage staged` shows A·Aᵀ in `prepare` and the per-call
    // function taking it as an input.
    let args =
        ["dump", model, "--stage", "staged", "--wrt", "x", "--shared", "a", "--batch", "2,2"];
    let text = stdout(&jjt(&args));
    let (prepare, call) = text.split_once("# per call").unwrap();
    assert!(prepare.contains("func f_kernel_prepare(a: f64[4,6]) -> f64[4,4]"), "{text}");
    assert!(prepare.contains("dot_general(a, a, contract=[[1],[1]]"), "{text}");
    assert!(call.contains("hoisted0: f64[4,4]) -> f64[2,2,4,4]"), "{text}");
}

/// A reader that stops early (`jjt eval ... | head -1`) ends `jjt` quietly: exit status 0, no
/// panic about a broken pipe. The output (200 000 values) is far larger than a pipe's buffer,
/// so the writes after the reader has gone fail.
#[test]
fn closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let model = tmp("wide_eval.jjt");
    std::fs::write(&model, "func f(x: f32[200000]) -> f32[200000] {\n  return x * 2.0\n}\n")
        .unwrap();
    let x = tmp("wide_eval_x.npy");
    jjt_npy::write_file(
        &x,
        &jjt_npy::Array { shape: vec![200_000], data: jjt_npy::Data::F32(vec![0.5; 200_000]) },
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_jjt"))
        .args(["eval", model.to_str().unwrap(), "--in", &format!("x={}", x.display())])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains("f32[200000]"), "{first}");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `jjt dump --stage optimized` with `--strategy auto` lists each candidate with its predicted
/// time, marks the one kept (the lowest), and states the dumped graph's predicted time; the
/// opt-in `JJT_THROUGHPUTS` file changes the prediction, and a malformed one is an error that
/// names the file and the line.
#[test]
fn dump_optimized_reports_predicted_times() {
    let m = seed_model();
    let args = ["dump", &m, "--stage", "optimized", "--wrt", "x"];
    let out = stdout(&jjt(&args));
    let ms = |l: &str| -> f64 {
        l.split("predicted ").nth(1).unwrap().split(" ms").next().unwrap().trim().parse().unwrap()
    };
    let cands: Vec<&str> = out.lines().filter(|l| l.starts_with("# candidate ")).collect();
    assert_eq!(cands.len(), 2, "{out}");
    assert!(
        cands[0].starts_with("# candidate ntvp: predicted ")
            && cands[1].starts_with("# candidate jc  : predicted "),
        "{out}"
    );
    let chosen: Vec<&&str> = cands.iter().filter(|l| l.ends_with("(chosen)")).collect();
    assert_eq!(chosen.len(), 1, "{out}");
    let best = cands.iter().map(|l| ms(l)).fold(f64::INFINITY, f64::min);
    assert_eq!(ms(chosen[0]), best, "{out}");
    let total = out.lines().find(|l| l.starts_with("# predicted: ")).expect("a prediction line");
    let total_ms: f64 =
        total["# predicted: ".len()..].split(" ms").next().unwrap().parse().unwrap();
    assert_eq!(total_ms, best, "{out}");

    // Slower arithmetic everywhere: every step of the dumped graph takes longer.
    let slow = tmp("slow-throughputs.txt");
    std::fs::write(&slow, "step: 1.0e-3,\n").unwrap();
    let o =
        Command::new(env!("CARGO_BIN_EXE_jjt")).args(args).env("JJT_THROUGHPUTS", &slow).output();
    let slow_out = stdout(&o.unwrap());
    let slow_total = slow_out.lines().find(|l| l.starts_with("# predicted: ")).unwrap();
    let slow_ms: f64 =
        slow_total["# predicted: ".len()..].split(" ms").next().unwrap().parse().unwrap();
    assert!(slow_ms > total_ms, "{slow_out}");

    let bad = tmp("bad-throughputs.txt");
    std::fs::write(&bad, "copy: fast,\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_jjt"))
        .args(args)
        .env("JJT_THROUGHPUTS", &bad)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("JJT_THROUGHPUTS=") && err.contains("line 1") && err.contains("fast"),
        "{err}"
    );
}

/// The member `name` of a stored (uncompressed) ZIP archive, found by walking its local file
/// headers: signature, then at offset 18 the compressed size, at 26 the name length and at
/// 28 the extra length, then the name, the extra field and the data.
fn zip_member(bytes: &[u8], name: &str) -> Vec<u8> {
    let u16_at = |i: usize| usize::from(u16::from_le_bytes([bytes[i], bytes[i + 1]]));
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
    let mut at = 0;
    while u32_at(at) == 0x0403_4b50 {
        let (size, n, extra) = (u32_at(at + 18), u16_at(at + 26), u16_at(at + 28));
        let start = at + 30 + n + extra;
        if &bytes[at + 30..at + 30 + n] == name.as_bytes() {
            return bytes[start..start + size].to_vec();
        }
        at = start + size;
    }
    panic!("no member {name}");
}

/// A model with two outputs (`two_outputs.jjt`: `h = tanh(x @ w)`, `s = sum(h * h)`): `eval`
/// prints both, writes one `.npy` per `-o` or both into an `.npz` (read back member by
/// member), each equal to NumPy's values (gen_two_outputs.py) to within the rounding of a
/// length-4 dot product and `tanh` (a few ulp; 1e-14 relative); `kernel` takes `--output`
/// by name or position and gives the same K either way.
#[test]
fn multi_output_models_evaluate_every_output_and_pick_one_to_differentiate() {
    let model = fixture("two_outputs.jjt");
    let (x, w) = (format!("x={}", fixture("two_x.npy")), format!("w={}", fixture("two_w.npy")));
    let near = |got: &[f64], want: &[f64]| {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-14 * w.abs().max(1.0), "{g} vs {w}");
        }
    };
    let h_ref = read(Path::new(&fixture("two_h_ref.npy")));
    let s_ref = read(Path::new(&fixture("two_s_ref.npy")));
    for backend in ["jit", "interp"] {
        let text = stdout(&jjt(&["eval", &model, "--in", &x, "--in", &w, "--backend", backend]));
        assert!(text.starts_with("# output 0: h\nf64[3]\n"), "{text}");
        assert!(text.contains("# output 1: s\nf64[]\n"), "{text}");
        let (h, s) = (tmp("h.npy"), tmp("s.npy"));
        let args = ["eval", &model, "--in", &x, "--in", &w, "--backend", backend, "-o"];
        let o = jjt(&[&args[..], &[h.to_str().unwrap(), "-o", s.to_str().unwrap()]].concat());
        stdout(&o);
        near(&read(&h), &h_ref);
        near(&read(&s), &s_ref);
        let z = tmp("both.npz");
        stdout(&jjt(&[&args[..], &[z.to_str().unwrap()]].concat()));
        let bytes = std::fs::read(&z).unwrap();
        for (name, want) in [("h.npy", &h_ref), ("s.npy", &s_ref)] {
            let a = jjt_npy::read(&zip_member(&bytes, name)).unwrap();
            let jjt_npy::Data::F64(v) = a.data else { panic!("{name}: f64 expected") };
            near(&v, want);
        }
    }
    let kernel = |pick: &str| {
        let o = jjt(&[
            "kernel", &model, "--wrt", "w", "--shared", &w, "--x1", &x, "--x2", &x, "--output",
            pick,
        ]);
        stdout(&o)
    };
    // The other commands that differentiate take --output too.
    let o = jjt(&["check", &model, "--wrt", "w", "--in", &x, "--output", "s"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = tmp("v.npy");
    jjt_npy::write_file(&v, &jjt_npy::Array { shape: vec![], data: jjt_npy::Data::F64(vec![3.0]) })
        .unwrap();
    let kv = stdout(&jjt(&[
        "apply",
        &model,
        "--wrt",
        "w",
        "--shared",
        &w,
        "--x1",
        &x,
        "--x2",
        &x,
        "--v",
        v.to_str().unwrap(),
        "--output",
        "s",
    ]));
    let kv: f64 = kv.lines().nth(1).unwrap().trim().parse().unwrap();
    let ks: f64 = kernel("s").lines().nth(1).unwrap().trim().parse().unwrap();
    assert!((kv - 3.0 * ks).abs() <= 1e-13 * kv.abs(), "{kv} vs 3·{ks}");
    let dump =
        jjt(&["dump", &model, "--stage", "kernel", "--wrt", "w", "--shared", "w", "--output", "h"]);
    assert!(stdout(&dump).contains("-> f64[3,3]"));
    let o = jjt(&["dump", &model, "--stage", "kernel", "--wrt", "w", "--shared", "w"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("choose one with --output"));
    let b = jjt(&[
        "bench", &model, "--wrt", "w", "--shared", &w, "--x1", &x, "--x2", &x, "--reps", "1",
        "--output", "h",
    ]);
    assert!(stdout(&b).contains("-> f64[3,3]"));
    // bench of the model itself writes every output, as eval does.
    let z = tmp("bench.npz");
    stdout(&jjt(&[
        "bench",
        &model,
        "--x1",
        &x,
        "--shared",
        &w,
        "--reps",
        "1",
        "-o",
        z.to_str().unwrap(),
    ]));
    let bytes = std::fs::read(&z).unwrap();
    for name in ["h.npy", "s.npy"] {
        assert!(!zip_member(&bytes, name).is_empty());
    }
    // A file given to --output is pointed to -o.
    fails_with(
        &[
            "kernel", &model, "--wrt", "w", "--shared", &w, "--x1", &x, "--x2", &x, "--output",
            "K.npy",
        ],
        &["--output K.npy", "0: h, 1: s", "use -o/--out FILE"],
    );
    assert_eq!(kernel("s"), kernel("1"));
    assert_eq!(kernel("h"), kernel("0"));
    assert_ne!(kernel("h"), kernel("s"));
    // K of s w.r.t. w on one example is |ds/dw|² = Σ_ij (2 h_j (1 − h_j²) x_i)².
    let xs = read(Path::new(&fixture("two_x.npy")));
    let want: f64 = xs
        .iter()
        .flat_map(|xi| h_ref.iter().map(move |hj| (2.0 * hj * (1.0 - hj * hj) * xi).powi(2)))
        .sum();
    let got: f64 = kernel("s").lines().nth(1).unwrap().trim().parse().unwrap();
    assert!((got - want).abs() <= 1e-13 * want, "{got} vs {want}");
}

/// Flag values as people type them: spaces after the commas of a name list, negative
/// numbers in `--range`; and `dump`/`bench` saying which inputs are shared and which per side.
#[test]
fn lists_with_spaces_negative_ranges_and_the_sides_note() {
    let m = tmp("layer.jjt");
    std::fs::write(
        &m,
        "func f(x: f64[3], w: f64[3,2], b: f64[2]) -> f64[2] {\n  return tanh(x @ w + b)\n}\n",
    )
    .unwrap();
    let m = m.to_str().unwrap();
    let spaced = jjt(&["dump", m, "--stage", "kernel", "--wrt", "w, b", "--shared", " w , b"]);
    let text = stdout(&spaced);
    assert!(
        text.starts_with("func f_kernel(x_1: f64[3], x_2: f64[3], w: f64[3,2], b: f64[2])"),
        "{text}"
    );
    let note = String::from_utf8(spaced.stderr).unwrap();
    assert_eq!(
        note.trim(),
        "note: shared by both sides: w, b; per side (one value per example): x"
    );
    // tanh is smooth on [-1, 1]: the derivative check passes there.
    let o = jjt(&["check", m, "--wrt", "w,b", "--range", "-1,1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `kernel --verbose` says what `auto` chose among which candidates.
    let (x1, x2) = (fixture("x1_f32.npy"), fixture("x2_f32.npy"));
    let o = jjt(&["kernel", &seed_model(), "--wrt", "x", "--x1", &x1, "--x2", &x2, "--verbose"]);
    stdout(&o);
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("strategy auto: ") && err.contains("ntvp ") && err.contains("jc "),
        "{err}"
    );
    // bench says which inputs are shared, and refuses per-side parameters.
    let b = jjt(&["bench", m, "--wrt", "w", "--shared", "w,b", "--reps", "1"]);
    stdout(&b);
    assert!(String::from_utf8_lossy(&b.stderr).contains("note: shared by both sides: w, b"));
    fails_with(
        &["bench", m, "--wrt", "w", "--reps", "1"],
        &["every input is per-side", "--per-side w"],
    );
    // Stages without sides are not refused.
    stdout(&jjt(&["dump", m, "--stage", "vjp", "--wrt", "w"]));
    // A neighbourhood: fewer nodes than the whole graph, the named node among them.
    let whole = stdout(&jjt(&["dump", m, "--format", "dot"]));
    let near = stdout(&jjt(&["dump", m, "--format", "dot", "--around", "w", "--depth", "1"]));
    assert!(near.contains("w\\ninput f64[3,2]"), "{near}");
    assert!(near.matches(" [label=").count() < whole.matches(" [label=").count(), "{near}");
    // `--shared FILE.npz` binds every array of a NumPy archive by name: the same K as the
    // arrays given one by one.
    let (w, b) = (tmp("w.npy"), tmp("b.npy"));
    let wa = jjt_npy::Array {
        shape: vec![3, 2],
        data: jjt_npy::Data::F64(vec![0.3, -0.2, 0.8, 0.1, -0.4, 0.5]),
    };
    let ba = jjt_npy::Array { shape: vec![2], data: jjt_npy::Data::F64(vec![0.1, -0.3]) };
    jjt_npy::write_file(&w, &wa).unwrap();
    jjt_npy::write_file(&b, &ba).unwrap();
    let npz = tmp("params.npz");
    jjt_npy::write_npz_file(&npz, &[("w", &wa), ("b", &ba)]).unwrap();
    let xs = tmp("xs.npy");
    jjt_npy::write_file(
        &xs,
        &jjt_npy::Array {
            shape: vec![2, 3],
            data: jjt_npy::Data::F64(vec![0.1, 0.2, 0.3, -0.5, 0.4, 1.0]),
        },
    )
    .unwrap();
    let xs = format!("x={}", xs.display());
    let k = |shared: &[&str]| {
        let mut a = vec!["kernel", m, "--wrt", "w,b", "--x1", &xs, "--x2", &xs];
        for s in shared {
            a.extend(["--shared", s]);
        }
        stdout(&jjt(&a))
    };
    let one_by_one = k(&[&format!("w={},b={}", w.display(), b.display())]);
    assert_eq!(k(&[npz.to_str().unwrap()]), one_by_one);
    assert_eq!(k(&[&format!("w={0},b={0}", npz.display())]), one_by_one);
    // Patterns never match an input given per side: `--wrt '*'` with `x` from --x1/--x2 is
    // the kernel w.r.t. w and b, and `--shared '*=params.npz'` binds both from the archive.
    let glob = stdout(&jjt(&[
        "kernel",
        m,
        "--wrt",
        "*",
        "--x1",
        &xs,
        "--x2",
        &xs,
        "--shared",
        &format!("*={}", npz.display()),
    ]));
    assert_eq!(glob, one_by_one);
    // `--per-side` keeps parameters per example when that is what is meant.
    let per = jjt(&["dump", m, "--stage", "kernel", "--wrt", "w", "--per-side", "w,b"]);
    assert!(stdout(&per).starts_with("func f_kernel(x_1: f64[3], w_1: f64[3,2], b_1: f64[2]"));
}
