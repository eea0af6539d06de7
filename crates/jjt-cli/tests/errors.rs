//! What the user sees when they get something wrong: for each of 33 distinct mistakes, `jjt`
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
    let cases: Vec<(&str, Vec<String>, Vec<String>)> = vec![
        (
            "model file missing",
            vec!["dump".into(), "/nonexistent/m.jjt".into()],
            vec!["/nonexistent/m.jjt".into()],
        ),
        (
            "model text error",
            vec!["dump".into(), bad_model.clone()],
            vec!["bad.jjt:2:14".into(), "expected".into()],
        ),
        (
            "missing input",
            vec!["eval".into(), seed.clone()],
            vec!["`x`".into(), "f32[10000]".into()],
        ),
        (
            "unknown input",
            vec!["eval".into(), seed.clone(), "--in".into(), format!("y={x1}")],
            vec!["`y`".into(), "x: f32[10000]".into()],
        ),
        (
            "input twice",
            vec![
                "eval".into(),
                seed.clone(),
                "--in".into(),
                format!("x={x1}"),
                "--in".into(),
                format!("x={x1}"),
            ],
            vec!["`x`".into(), "twice".into()],
        ),
        (
            "wrong dtype",
            vec!["eval".into(), seed.clone(), "--in".into(), format!("x={x64}")],
            vec!["x2_f64.npy".into(), "expected f32[10000]".into(), "f64[10000]".into()],
        ),
        (
            "wrong shape",
            vec!["eval".into(), seed.clone(), "--in".into(), format!("x={short}")],
            vec!["short.npy".into(), "expected f32[10000]".into(), "f32[3]".into()],
        ),
        (
            "unsupported npy dtype",
            vec!["eval".into(), seed.clone(), "--in".into(), format!("x={ints}")],
            vec!["ints.npy".into(), "<i8".into()],
        ),
        (
            "npy missing",
            vec!["eval".into(), seed.clone(), "--in".into(), "x=/nonexistent/x.npy".into()],
            vec!["/nonexistent/x.npy".into()],
        ),
        (
            "not an npy file",
            vec!["eval".into(), seed.clone(), "--in".into(), format!("x={magic}")],
            vec!["magic.npy".into(), "magic".into()],
        ),
        (
            "bad --in syntax",
            vec!["eval".into(), two_in.clone(), "--in".into(), format!("={x1}")],
            vec!["--in".into(), "NAME=FILE.npy".into()],
        ),
        (
            "bare file, two inputs",
            vec!["eval".into(), two_in.clone(), "--in".into(), un.clone()],
            vec!["--in".into(), "NAME=FILE.npy".into()],
        ),
        (
            "unknown wrt",
            vec![
                "kernel".into(),
                seed.clone(),
                "--wrt".into(),
                "w".into(),
                "--x1".into(),
                x1.clone(),
                "--x2".into(),
                x2.clone(),
            ],
            vec!["`w`".into(), "x: f32[10000]".into()],
        ),
        (
            "wrt a bool input",
            vec![
                "kernel".into(),
                bool_model.clone(),
                "--wrt".into(),
                "p".into(),
                "--x1".into(),
                format!("p={bools}"),
                "--x1".into(),
                format!("x={short}"),
                "--x2".into(),
                format!("p={bools}"),
                "--x2".into(),
                format!("x={short}"),
            ],
            vec!["`p`".into(), "bool".into()],
        ),
        (
            "side 2 missing",
            vec![
                "kernel".into(),
                seed.clone(),
                "--wrt".into(),
                "x".into(),
                "--x1".into(),
                x1.clone(),
            ],
            vec!["`x`".into(), "--x2".into()],
        ),
        (
            "one side batched",
            vec![
                "kernel".into(),
                two_in.clone(),
                "--wrt".into(),
                "x".into(),
                "--x1".into(),
                format!("x={b2}"),
                "--x1".into(),
                format!("z={b2}"),
                "--x2".into(),
                format!("x={un}"),
                "--x2".into(),
                format!("z={un}"),
            ],
            vec!["side 1".into(), "side 2".into(), "batch".into()],
        ),
        (
            "batches disagree",
            vec![
                "kernel".into(),
                two_in.clone(),
                "--wrt".into(),
                "x".into(),
                "--x1".into(),
                format!("x={b2}"),
                "--x1".into(),
                format!("z={b3}"),
                "--x2".into(),
                format!("x={b2}"),
                "--x2".into(),
                format!("z={b2}"),
            ],
            vec!["--x1".into(), "`z`".into(), "3 examples".into()],
        ),
        (
            "shared and per-side",
            vec![
                "kernel".into(),
                seed.clone(),
                "--wrt".into(),
                "x".into(),
                "--shared".into(),
                format!("x={x1}"),
                "--x1".into(),
                format!("x={x1}"),
            ],
            vec!["`x`".into(), "--shared".into()],
        ),
        (
            "diagonal needs equal batches",
            vec![
                "kernel".into(),
                two_in.clone(),
                "--wrt".into(),
                "x".into(),
                "--examples".into(),
                "diagonal".into(),
                "--x1".into(),
                format!("x={b2}"),
                "--x1".into(),
                format!("z={b2}"),
                "--x2".into(),
                format!("x={b3}"),
                "--x2".into(),
                format!("z={b3}"),
            ],
            vec!["equal batch sizes".into(), "2".into(), "3".into()],
        ),
        (
            "bool output",
            vec![
                "kernel".into(),
                bool_out.clone(),
                "--wrt".into(),
                "x".into(),
                "--x1".into(),
                short.clone(),
                "--x2".into(),
                short.clone(),
            ],
            vec!["bool[3]".into(), "floating-point".into()],
        ),
        (
            "several outputs",
            vec![
                "kernel".into(),
                two_out.clone(),
                "--wrt".into(),
                "x".into(),
                "--x1".into(),
                short.clone(),
                "--x2".into(),
                short.clone(),
            ],
            vec!["2 outputs".into(), "one output".into()],
        ),
        (
            "v of the wrong shape",
            vec![
                "apply".into(),
                seed.clone(),
                "--wrt".into(),
                "x".into(),
                "--x1".into(),
                x1.clone(),
                "--x2".into(),
                x2.clone(),
                "--v".into(),
                x1.clone(),
            ],
            vec!["`v`".into(), "expected f32[5]".into()],
        ),
        (
            "stage needs wrt",
            vec!["dump".into(), seed.clone(), "--stage".into(), "vjp".into()],
            vec!["--stage vjp".into(), "--wrt".into()],
        ),
        (
            "batch needs two sizes",
            vec![
                "dump".into(),
                seed.clone(),
                "--stage".into(),
                "kernel".into(),
                "--wrt".into(),
                "x".into(),
                "--batch".into(),
                "2,3,4".into(),
            ],
            vec!["--batch".into(), "B1,B2".into()],
        ),
        (
            "bad --of",
            vec![
                "dump".into(),
                seed.clone(),
                "--stage".into(),
                "clif".into(),
                "--of".into(),
                "asm".into(),
            ],
            vec!["--of".into(), "kernel".into()],
        ),
        (
            "rows out of range",
            vec![
                "kernel".into(),
                two_in.clone(),
                "--wrt".into(),
                "x".into(),
                "--rows".into(),
                "0:9".into(),
                "--x1".into(),
                format!("x={b2}"),
                "--x1".into(),
                format!("z={b2}"),
                "--x2".into(),
                format!("x={b2}"),
                "--x2".into(),
                format!("z={b2}"),
            ],
            vec!["--rows 0:9".into(), "<= 2".into()],
        ),
        (
            "merge with a gap",
            vec![
                "merge".into(),
                format!("0:2,0:2={kblock}"),
                format!("2:3,0:2={kblock}"),
                "-o".into(),
                k.clone(),
            ],
            vec!["kblock.npy".into(), "2:3,0:2".into()],
        ),
        (
            "merge syntax",
            vec!["merge".into(), kpart.replace(',', ";"), "-o".into(), k.clone()],
            vec!["A:B,C:D=FILE.npy".into()],
        ),
        (
            "gradient check fails",
            vec![
                "check".into(),
                seed.clone(),
                "--wrt".into(),
                "x".into(),
                "--in".into(),
                format!("x={zeros}"),
            ],
            vec!["derivative check failed".into()],
        ),
        (
            "zero repetitions",
            vec!["bench".into(), seed.clone(), "--reps".into(), "0".into()],
            vec!["--reps".into()],
        ),
        (
            "zero threads",
            vec!["bench".into(), seed.clone(), "--threads".into(), "0".into()],
            vec!["--threads".into(), "at least 1".into()],
        ),
        (
            "over the memory budget",
            vec![
                "kernel".into(),
                wide.clone(),
                "--wrt".into(),
                "x".into(),
                "--x1".into(),
                wide_x.clone(),
                "--x2".into(),
                wide_x.clone(),
                "--max-memory".into(),
                "1".into(),
            ],
            vec!["budget".into(), "--max-memory".into(), "--rows".into()],
        ),
        (
            "merged kernel too large",
            vec![
                "merge".into(),
                format!("0:1000000000,0:1000000000={empty}"),
                "-o".into(),
                k.clone(),
            ],
            vec!["1000000000×1000000000".into(), "too large".into()],
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
        for n in needles {
            assert!(err.contains(n.as_str()), "{what}: missing `{n}` in\n{err}");
        }
        snapshot.push_str(&format!("## {what}\n{err}\n"));
    }
    let snapshot = snapshot
        .replace(&dir().display().to_string(), "<tmp>")
        .replace(&fix.display().to_string(), "<fixtures>")
        .replace(&root().display().to_string(), "<root>");
    insta::assert_snapshot!("user_mistakes", snapshot);
}
