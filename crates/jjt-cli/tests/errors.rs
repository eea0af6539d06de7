//! What the user sees when they get something wrong: for each of 59 distinct mistakes, `jjt`
//! exits with status 1 and one message that starts with `error: `, is not a Rust panic or a
//! debug-formatted value, and names the offending file or input and what was expected. All
//! messages together are one snapshot (paths replaced by placeholders).

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("jjt-errors-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(name: &str, text: &str) -> String {
    let p = dir().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn npy(name: &str, shape: Vec<usize>, data: jjt_npy::Data) -> String {
    let p = dir().join(name);
    jjt_npy::write_file(&p, &jjt_npy::Array { shape, data }).unwrap();
    p.display().to_string()
}

#[test]
fn user_mistakes() {
    let seed = root().join("examples/models/seed.jjt").display().to_string();
    let fix = root().join("crates/jjt-cli/tests/fixtures");
    let x1 = fix.join("x1_f32.npy").display().to_string();
    let x2 = fix.join("x2_f32.npy").display().to_string();
    let x64 = fix.join("x2_f64.npy").display().to_string();
    let ints = fix.join("ints.npy").display().to_string();
    let bad_model =
        write("bad.jjt", "func f(x: f32[3]) -> f32[3] {\n  y = exp(x +)\n  return y\n}\n");
    let bool_model =
        write("boolin.jjt", "func f(p: bool[3], x: f32[3]) -> f32[3] { return select(p, x, 0.0) }");
    let bool_out = write("boolout.jjt", "func f(x: f32[3]) -> bool[3] { return x > 0.0 }");
    let two_out = write("two.jjt", "func f(x: f32[3]) -> (f32[3], f32[3]) { return x, exp(x) }");
    let two_in = write("twoin.jjt", "func f(x: f32[2], z: f32[2]) -> f32[2] { return x * z }");
    let magic = dir().join("magic.npy");
    std::fs::write(&magic, b"NOTNUMPY-----").unwrap();
    let magic = magic.display().to_string();
    let short = npy("short.npy", vec![3], jjt_npy::Data::F32(vec![1.0, 2.0, 3.0]));
    let b2 = npy("b2.npy", vec![2, 2], jjt_npy::Data::F32(vec![1.0; 4]));
    let b3 = npy("b3.npy", vec![3, 2], jjt_npy::Data::F32(vec![1.0; 6]));
    let un = npy("un.npy", vec![2], jjt_npy::Data::F32(vec![1.0; 2]));
    let bools = npy("p.npy", vec![3], jjt_npy::Data::Bool(vec![true; 3]));
    let zeros = npy("z.npy", vec![10000], jjt_npy::Data::F32(vec![0.0; 10000]));
    // K of an elementwise map of 3000 inputs is 3000×3000 f32 = 36 MB, over a 1 MiB budget.
    let wide = write("wide.jjt", "func f(x: f32[3000]) -> f32[3000] { return exp(x) }");
    let wide_x = npy("wide.npy", vec![3000], jjt_npy::Data::F32(vec![0.0; 3000]));
    // A block whose trailing axis is empty holds no data, whatever its first two axes say.
    let empty = npy("empty.npy", vec![1_000_000_000, 1_000_000_000, 0], jjt_npy::Data::F32(vec![]));
    let k = dir().join("k.npy").display().to_string();
    let kpart = format!("0:2,0:2={k}");
    let mut xs = vec![0.0f32; 2 * 2];
    xs[0] = 1.0;
    let kblock = npy("kblock.npy", vec![2, 2], jjt_npy::Data::F32(xs));
    // `jjt kernel TWO_IN --wrt x` with side-1 files x, z and side-2 files x, z.
    let two_in_kernel = |[x1, z1]: [&str; 2], [x2, z2]: [&str; 2], extra: &[&str]| {
        let (x1, z1, x2, z2) =
            (format!("x={x1}"), format!("z={z1}"), format!("x={x2}"), format!("z={z2}"));
        let mut a = vec!["kernel", &two_in, "--wrt", "x"];
        a.extend_from_slice(extra);
        a.extend(["--x1", &x1, "--x1", &z1, "--x2", &x2, "--x2", &z2]);
        args(&a)
    };
    let (in_x1, in_x64, in_short) = (format!("x={x1}"), format!("x={x64}"), format!("x={short}"));
    let (p_bools, two_in_x1) = (format!("p={bools}"), format!("={x1}"));
    let in_magic = format!("x={magic}");
    let typo_op =
        write("typo_op.jjt", "func f(x: f32[4,5]) -> f32[4,5] {\n  return sofplus(x)\n}\n");
    let typo_attr =
        write("typo_attr.jjt", "func f(x: f32[4,5]) -> f32[5] {\n  return mean(x, axis=0)\n}\n");
    let typo_name = write(
        "typo_name.jjt",
        "func f(x: f32[4,5]) -> f32[4,5] {\n  y = x + 1.0\n  return exp(yy)\n}\n",
    );
    let unclosed = write(
        "unclosed.jjt",
        "func f(x: f32[4,5]) -> f32[4,5] {\n  y = exp((x + 1.0)\n  return y\n}\n",
    );
    let no_keepdims = write(
        "no_keepdims.jjt",
        "func f(x: f32[4,5]) -> f32[4,5] {\n  return x - max(x, axes=[1])\n}\n",
    );
    let npz_w = dir().join("only_w.npz").display().to_string();
    let w_array = jjt_npy::Array { shape: vec![3, 2], data: jjt_npy::Data::F32(vec![0.5; 6]) };
    jjt_npy::write_npz_file(std::path::Path::new(&npz_w), &[("w", &w_array)]).unwrap();
    let layer = write(
        "layer.jjt",
        "func f(x: f32[3], w: f32[3,2], b: f32[2]) -> f32[2] {\n  return tanh(x @ w + b)\n}\n",
    );
    let cases: Vec<(&str, Vec<String>, &[&str])> = vec![
        ("model file missing", args(&["dump", "/nonexistent/m.jjt"]), &["/nonexistent/m.jjt"]),
        ("model text error", args(&["dump", &bad_model]), &["bad.jjt:2:14", "expected"]),
        ("missing input", args(&["eval", &seed]), &["`x`", "f32[10000]"]),
        (
            "unknown input",
            args(&["eval", &seed, "--in", &format!("y={x1}")]),
            &["`y`", "x: f32[10000]"],
        ),
        ("input twice", args(&["eval", &seed, "--in", &in_x1, "--in", &in_x1]), &["`x`", "twice"]),
        (
            "wrong dtype",
            args(&["eval", &seed, "--in", &in_x64]),
            &["x2_f64.npy", "expected f32[10000]", "f64[10000]"],
        ),
        (
            "wrong shape",
            args(&["eval", &seed, "--in", &in_short]),
            &["short.npy", "expected f32[10000]", "f32[3]"],
        ),
        (
            "integer npy for a float input",
            args(&["eval", &seed, "--in", &format!("x={ints}")]),
            &["ints.npy", "expected f32[10000]", "i32[3]"],
        ),
        (
            "npy missing",
            args(&["eval", &seed, "--in", "x=/nonexistent/x.npy"]),
            &["/nonexistent/x.npy"],
        ),
        (
            "not an npy file",
            args(&["eval", &seed, "--in", &format!("x={magic}")]),
            &["magic.npy", "magic"],
        ),
        (
            "bad --in syntax",
            args(&["eval", &two_in, "--in", &two_in_x1]),
            &["--in", "NAME=FILE.npy"],
        ),
        (
            "bare file, two inputs",
            args(&["eval", &two_in, "--in", &un]),
            &["--in", "NAME=FILE.npy"],
        ),
        (
            "unknown wrt",
            args(&["kernel", &seed, "--wrt", "w", "--x1", &x1, "--x2", &x2]),
            &["`w`", "x: f32[10000]"],
        ),
        (
            "wrt a bool input",
            args(&[
                "kernel",
                &bool_model,
                "--wrt",
                "p",
                "--x1",
                &p_bools,
                "--x1",
                &in_short,
                "--x2",
                &p_bools,
                "--x2",
                &in_short,
            ]),
            &["`p`", "bool"],
        ),
        ("side 2 missing", args(&["kernel", &seed, "--wrt", "x", "--x1", &x1]), &["`x`", "--x2"]),
        (
            "one side batched",
            two_in_kernel([&b2, &b2], [&un, &un], &[]),
            &["side 1", "side 2", "batch"],
        ),
        (
            "batches disagree",
            two_in_kernel([&b2, &b3], [&b2, &b2], &[]),
            &["--x1", "`z`", "3 examples"],
        ),
        (
            "shared and per-side",
            args(&["kernel", &seed, "--wrt", "x", "--shared", &in_x1, "--x1", &in_x1]),
            &["`x`", "--shared"],
        ),
        (
            "diagonal needs equal batches",
            two_in_kernel([&b2, &b2], [&b3, &b3], &["--examples", "diagonal"]),
            &["equal batches", "side 1 has 2 (--x1 x)", "side 2 has 3 (--x2 x)"],
        ),
        (
            "bool output",
            args(&["kernel", &bool_out, "--wrt", "x", "--x1", &short, "--x2", &short]),
            &["bool[3]", "floating-point"],
        ),
        (
            "several outputs",
            args(&["kernel", &two_out, "--wrt", "x", "--x1", &short, "--x2", &short]),
            &["2 outputs", "0: x, 1 (unnamed)", "--output NAME|INDEX"],
        ),
        (
            "no such output",
            args(&[
                "kernel", &two_out, "--wrt", "x", "--x1", &short, "--x2", &short, "--output", "2",
            ]),
            &["--output 2", "0: x, 1 (unnamed)"],
        ),
        (
            "output files do not match the outputs",
            args(&[
                "eval",
                &two_out,
                "--in",
                &short,
                "-o",
                &dir().join("one.npy").display().to_string(),
            ]),
            &["2 outputs", "1 output file", "-o FILE.npz"],
        ),
        (
            "v of the wrong shape",
            args(&["apply", &seed, "--wrt", "x", "--x1", &x1, "--x2", &x2, "--v", &x1]),
            &["`v`", "expected f32[5]"],
        ),
        ("stage needs wrt", args(&["dump", &seed, "--stage", "vjp"]), &["--stage vjp", "--wrt"]),
        (
            "op name misspelled",
            args(&["dump", &typo_op]),
            &["`sofplus` is not an op", "help: did you mean `softplus`?"],
        ),
        (
            "attribute name misspelled",
            args(&["dump", &typo_attr]),
            &["does not take the argument `axis`", "help: did you mean `axes`?"],
        ),
        (
            "value name misspelled",
            args(&["dump", &typo_name]),
            &["`yy` is not defined", "help: did you mean `y`?"],
        ),
        (
            "parenthesis not closed",
            args(&["dump", &unclosed]),
            &["this `(` is never closed", "unclosed.jjt:2:10", "before `return`"],
        ),
        (
            "reduction without keepdims",
            args(&["dump", &no_keepdims]),
            &["do not broadcast", "keepdims=true", "reshape(v, shape=[4,1])"],
        ),
        (
            "parameters left per-side",
            args(&["dump", &layer, "--stage", "kernel", "--wrt", "w,b"]),
            &["every input is per-side (x, w, b)", "--shared w,b", "--per-side w,b"],
        ),
        (
            "bench with parameters left per-side",
            args(&["bench", &layer, "--wrt", "w,b", "--reps", "1"]),
            &["every input is per-side (x, w, b)", "--shared w,b", "--per-side w,b"],
        ),
        (
            "npz archive without the input",
            args(&[
                "kernel",
                &layer,
                "--wrt",
                "w",
                "--shared",
                &format!("w={0},b={0}", npz_w),
                "--x1",
                &in_short,
                "--x2",
                &in_short,
            ]),
            &["input `b`", "has no array `b`", "its arrays: w"],
        ),
        (
            "pattern matching nothing",
            args(&["kernel", &layer, "--wrt", "q*", "--x1", &in_short, "--x2", &in_short]),
            &["the pattern `q*` matches no floating-point input", "x: f32[3]"],
        ),
        (
            "--wrt name misspelled",
            args(&["dump", &layer, "--stage", "kernel", "--wrt", "ww", "--shared", "w,b"]),
            &["`ww` is not an input", "did you mean `w`?"],
        ),
        (
            "--x1 name misspelled",
            args(&["kernel", &seed, "--wrt", "x", "--x1", &format!("xx={x1}"), "--x2", &x2]),
            &["no input `xx`", "did you mean `x`?"],
        ),
        (
            "missing per-side input, maybe shared",
            args(&["kernel", &layer, "--wrt", "x", "--x1", &in_short, "--x2", &in_short]),
            &["missing input `w`", "--x1 w=FILE.npy", "or --shared w=FILE.npy"],
        ),
        (
            "batch needs two sizes",
            args(&["dump", &seed, "--stage", "kernel", "--wrt", "x", "--batch", "2,3,4"]),
            &["--batch", "B1,B2"],
        ),
        ("bad --of", args(&["dump", &seed, "--stage", "clif", "--of", "asm"]), &["--of", "kernel"]),
        (
            "rows out of range",
            two_in_kernel([&b2, &b2], [&b2, &b2], &["--rows", "0:9"]),
            &["--rows 0:9", "<= 2"],
        ),
        (
            "merge with a gap",
            args(&["merge", &format!("0:2,0:2={kblock}"), &format!("2:3,0:2={kblock}"), "-o", &k]),
            &["kblock.npy", "2:3,0:2"],
        ),
        (
            "merge syntax",
            args(&["merge", &kpart.replace(',', ";"), "-o", &k]),
            &["A:B,C:D=FILE.npy"],
        ),
        (
            "gradient check fails",
            args(&["check", &seed, "--wrt", "x", "--in", &format!("x={zeros}")]),
            &["derivative check failed"],
        ),
        ("zero repetitions", args(&["bench", &seed, "--reps", "0"]), &["--reps"]),
        ("zero threads", args(&["bench", &seed, "--threads", "0"]), &["--threads", "at least 1"]),
        (
            "over the memory budget",
            args(&[
                "kernel",
                &wide,
                "--wrt",
                "x",
                "--x1",
                &wide_x,
                "--x2",
                &wide_x,
                "--max-memory",
                "1",
            ]),
            &["budget", "--max-memory", "--rows"],
        ),
        (
            "empty path after NAME=",
            args(&["kernel", &seed, "--wrt", "x", "--shared", "x=", "--x1", &x1, "--x2", &x2]),
            &["--shared x=", "NAME=FILE.npy"],
        ),
        (
            "empty name before =FILE",
            args(&["bench", &seed, "--wrt", &format!("={x1}")]),
            &["--wrt", "NAME=FILE.npy"],
        ),
        (
            "bench: not an npy file",
            args(&["bench", &seed, "--wrt", "x", "--x1", &in_magic]),
            &["magic.npy", "`x`"],
        ),
        (
            "bench: wrong shape",
            args(&["bench", &seed, "--wrt", "x", "--x2", &in_short]),
            &["short.npy", "expected f32[10000] or a batch", "f32[3]"],
        ),
        (
            "bench: wrong dtype",
            args(&["bench", &seed, "--wrt", "x", "--x1", &in_x64]),
            &["x2_f64.npy", "f64[10000]", "astype"],
        ),
        (
            "bench: unknown shared input",
            args(&["bench", &seed, "--wrt", "x", "--shared", &format!("w={x1}")]),
            &["--shared w", "no input `w`", "x: f32[10000]"],
        ),
        (
            "bench: unknown wrt input with a file",
            args(&["bench", &seed, "--wrt", &format!("w={x1}")]),
            &["--wrt w", "no input `w`"],
        ),
        (
            "bench: files disagree with --batch",
            args(&["bench", &two_in, "--wrt", "x", "--x1", &format!("x={b2}"), "--batch", "3,3"]),
            &["--x1", "`x`", "2 examples", "--batch says 3"],
        ),
        (
            "bench: unbatched file with --batch",
            args(&["bench", &seed, "--wrt", "x", "--x1", &in_x1, "--batch", "2,2"]),
            &["`x`", "no batch axis", "--batch says 2"],
        ),
        (
            "kernel: shared name without a file",
            args(&["kernel", &two_in, "--wrt", "x", "--shared", "z", "--x1", &un, "--x2", &un]),
            &["`z`", "--shared z=FILE.npy"],
        ),
        (
            "kernel: a file in --wrt and in --shared",
            args(&["kernel", &seed, "--wrt", &in_x1, "--shared", &in_x1]),
            &["`x`", "twice"],
        ),
        (
            "dump: a file where only names are read",
            args(&["dump", &seed, "--stage", "kernel", "--wrt", &in_x1]),
            &["--wrt x", "reads no input files", "pass `--wrt x`"],
        ),
        (
            "merged kernel too large",
            args(&["merge", &format!("0:1000000000,0:1000000000={empty}"), "-o", &k]),
            &["1000000000×1000000000", "too large"],
        ),
    ];
    assert!(cases.len() >= 25);
    let mut snapshot = String::new();
    for (what, args, needles) in &cases {
        let o = Command::new(env!("CARGO_BIN_EXE_jjt")).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(1), "{what}: exit status {:?}\n{err}", o.status.code());
        assert!(err.starts_with("error: "), "{what}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{what}: a panic\n{err}"
        );
        for debug in ["Some(", "None", "Err(", "Ok(", " { ", "\\\""] {
            assert!(
                !err.contains(debug),
                "{what}: looks like a debug-formatted value ({debug}):\n{err}"
            );
        }
        for n in needles.iter() {
            assert!(err.contains(n), "{what}: missing `{n}` in\n{err}");
        }
        // Shapes and lists in messages are balanced (no stray `]]`), outside the quoted source
        // line of a parse error and outside `quoted` tokens.
        let first: String = err.lines().next().unwrap_or("").split('`').step_by(2).collect();
        for (open, close) in [('[', ']'), ('(', ')')] {
            let count = |c| first.chars().filter(|&x| x == c).count();
            assert_eq!(count(open), count(close), "{what}: unbalanced `{open}{close}` in\n{first}");
        }
        snapshot.push_str(&format!("## {what}\n{err}\n"));
    }
    let snapshot = snapshot
        .replace(&dir().display().to_string(), "<tmp>")
        .replace(&fix.display().to_string(), "<fixtures>")
        .replace(&root().display().to_string(), "<root>");
    insta::assert_snapshot!("user_mistakes", snapshot);
}
