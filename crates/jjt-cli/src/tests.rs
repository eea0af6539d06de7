//! Each kind of failure by its variant: a command line runs in-process through the argument
//! parser and [`crate::run`], and the error must be the expected variant with the expected
//! message. (`tests/errors.rs` checks what the user sees through the binary.)

use std::path::PathBuf;

use clap::Parser;

use crate::CliError;
use crate::args::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn seed() -> String {
    root().join("examples/models/seed.jjt").display().to_string()
}

fn fixture(name: &str) -> String {
    root().join("crates/jjt-cli/tests/fixtures").join(name).display().to_string()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jjt-cli-unit-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn model(name: &str, text: &str) -> String {
    let p = tmp(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn npy(name: &str, shape: Vec<usize>, data: jjt_npy::Data) -> String {
    let p = tmp(name);
    jjt_npy::write_file(&p, &jjt_npy::Array { shape, data }).unwrap();
    p.display().to_string()
}

fn f32s(name: &str, shape: Vec<usize>) -> String {
    let n = shape.iter().product();
    npy(name, shape, jjt_npy::Data::F32(vec![0.5; n]))
}

/// Run `jjt ARGS` in-process; it must fail with an error `expect` accepts whose message
/// contains every needle.
fn check(args: &[&str], expect: fn(&CliError) -> bool, needles: &[&str]) {
    let cli = Cli::try_parse_from(std::iter::once("jjt").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?} does not parse: {e}"));
    let err = match crate::run(cli) {
        Ok(()) => panic!("{args:?} succeeded"),
        Err(e) => e,
    };
    assert!(expect(&err), "{args:?}: unexpected variant {err:?}");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "{args:?}: missing `{n}` in `{msg}`");
    }
}

#[test]
fn usage_mistakes() {
    let (m, x1, x2) = (seed(), fixture("x1_f32.npy"), fixture("x2_f32.npy"));
    let usage = |e: &CliError| matches!(e, CliError::Usage(_));
    check(
        &["dump", &m, "--stage", "kernel", "--wrt", "x", "--batch", "2,3,4"],
        usage,
        &["--batch B1,B2"],
    );
    check(&["dump", &m, "--stage", "clif", "--of", "asm"], usage, &["--of takes"]);
    check(&["check", &m, "--wrt", "x", "--range", "0.5"], usage, &["--range LO,HI"]);
    check(&["bench", &m, "--reps", "0"], usage, &["--reps must be at least 1"]);
    check(&["bench", &m, "--threads", "0"], usage, &["--threads must be at least 1"]);
    check(
        &["kernel", &m, "--wrt", "x", "--x1", &x1, "--x2", &x2, "--rows", "0:1"],
        usage,
        &["--rows/--cols need batched per-side inputs"],
    );
    check(
        &["dump", &m, "--stage", "jvp"],
        |e| matches!(e, CliError::NeedWrt { stage: "jvp" }),
        &["--stage jvp needs --wrt"],
    );
}

#[test]
fn batch_mistakes() {
    let two = model("twoin.jjt", "func f(x: f32[2], z: f32[2]) -> f32[2] { return x * z }");
    let (b2, b3, un) =
        (f32s("b2.npy", vec![2, 2]), f32s("b3.npy", vec![3, 2]), f32s("un.npy", vec![2]));
    let kernel = |x1: [&str; 2], x2: [&str; 2], extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["kernel", &two, "--wrt", "x"].map(String::from).to_vec();
        for (flag, [x, z]) in [("--x1", x1), ("--x2", x2)] {
            a.extend([flag.into(), format!("x={x}"), flag.into(), format!("z={z}")]);
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>, expect: fn(&CliError) -> bool, needles: &[&str]| {
        check(&a.iter().map(String::as_str).collect::<Vec<_>>(), expect, needles)
    };
    run(
        kernel([&b2, &b3], [&b2, &b2], &[]),
        |e| matches!(e, CliError::BatchDisagrees { flag: "--x1", name, batch: Some(3), earlier: Some(2), earlier_name } if name == "z" && earlier_name == "x"),
        &["`z` has a batch of 3 examples, `x` a batch of 2 examples"],
    );
    run(
        kernel([&b2, &b2], [&un, &un], &[]),
        |e| matches!(e, CliError::OneSideBatched { side1: Some(2), side2: None, name1, name2 } if name1 == "x" && name2 == "x"),
        &["side 1 has a batch of 2 examples (--x1 x) but side 2 has no batch axis (--x2 x)"],
    );
    run(
        kernel([&b2, &b2], [&b2, &b2], &["--rows", "0:9"]),
        |e| matches!(e, CliError::BadRange { flag: "--rows", total: 2, .. }),
        &["--rows 0:9: expected A:B with 0 <= A < B <= 2"],
    );
}

#[test]
fn random_inputs_too_large_for_memory() {
    // 10^15 f64 values: no machine reserves 8 PB, so the reservation fails and says so.
    let huge = model("huge.jjt", "func f(x: f32[1000000000000000]) -> f32[] { return sum(x) }");
    let alloc =
        |e: &CliError| matches!(e, CliError::Alloc(ty) if ty.numel() == 1_000_000_000_000_000);
    check(&["bench", &huge, "--no-opt"], alloc, &["cannot allocate", "f32[1000000000000000]"]);
    check(&["check", &huge, "--wrt", "x"], alloc, &["f64[1000000000000000]"]);
}

#[test]
fn merge_mistakes() {
    let k = tmp("merged.npy").display().to_string();
    let block = f32s("block.npy", vec![2, 2]);
    let wide = f32s("wide.npy", vec![2, 2, 3]);
    let empty = npy("empty.npy", vec![1_000_000_000, 1_000_000_000, 0], jjt_npy::Data::F32(vec![]));
    let merge = |blocks: &[String], expect: fn(&CliError) -> bool, needles: &[&str]| {
        let mut a: Vec<&str> = vec!["merge"];
        a.extend(blocks.iter().map(String::as_str));
        a.extend(["-o", &k]);
        check(&a, expect, needles);
    };
    merge(
        &[format!("0:2;0:2={block}")],
        |e| matches!(e, CliError::BadBlock(b) if b.starts_with("0:2;0:2=")),
        &["expected A:B,C:D=FILE.npy"],
    );
    merge(
        &[format!("0:3,0:2={block}")],
        |e| matches!(e, CliError::BlockShape { rows: 3, cols: 2, .. }),
        &["has shape [2,2], but its ranges say [3, 2, ...]"],
    );
    merge(
        &[format!("0:2,0:2={block}"), format!("2:4,0:2={wide}")],
        |e| matches!(e, CliError::BlocksDiffer),
        &["trailing axes"],
    );
    merge(
        &[format!("0:2,0:2={block}"), format!("0:2,2:4={block}"), format!("2:4,2:4={block}")],
        |e| matches!(e, CliError::BlockCoverage { row: 2, col: 0, times: 0 }),
        &["entry (2, 0) is not covered"],
    );
    merge(
        &[format!("0:2,0:2={block}"), format!("1:3,0:2={block}")],
        |e| matches!(e, CliError::BlockCoverage { row: 1, col: 0, times: 2 }),
        &["entry (1, 0) is covered more than once"],
    );
    merge(
        &[format!("0:1000000000,0:1000000000={empty}")],
        |e| matches!(e, CliError::MergeTooLarge { rows: 1_000_000_000, cols: 1_000_000_000 }),
        &["too large"],
    );
}

#[test]
fn check_failures_and_writes() {
    // At x = 0, sqrt's derivative is infinite and finite differences are NaN.
    let zeros = npy("z.npy", vec![10000], jjt_npy::Data::F32(vec![0.0; 10000]));
    check(
        &["check", &seed(), "--wrt", "x", "--in", &format!("x={zeros}")],
        |e| matches!(e, CliError::CheckFailed { jvp, .. } if jvp.is_infinite()),
        &["derivative check failed: JVP error inf"],
    );
    let x1 = fixture("x1_f32.npy");
    check(
        &["eval", &seed(), "--in", &x1, "-o", "/nonexistent/dir/y.npy"],
        |e| matches!(e, CliError::WriteNpy { .. }),
        &["cannot write /nonexistent/dir/y.npy"],
    );
    check(
        &["dump", &seed(), "-o", "/nonexistent/dir/seed.jjt"],
        |e| matches!(e, CliError::Write { .. }),
        &["cannot write /nonexistent/dir/seed.jjt"],
    );
}

/// Failures no input can cause (each would be a bug in jjt) still say what happened.
#[test]
fn messages_of_internal_failures() {
    for (e, want) in [
        (
            CliError::WorkerPanicked,
            "a worker thread failed (it panicked while computing kernel tiles)",
        ),
        (CliError::NoOutput, "the function has no output"),
        (CliError::Unbound("x".into()), "internal: kernel input `x` was not bound"),
    ] {
        assert_eq!(e.to_string(), want);
    }
}

/// A tile worker that panics leaves its tiles unwritten: `jjt kernel` must fail with
/// [`CliError::WorkerPanicked`] rather than return the kernel with holes or abort.
#[test]
fn a_panicking_tile_worker_is_an_error() {
    use std::sync::atomic::Ordering;
    let two = model("twoin_panic.jjt", "func f(x: f32[2], z: f32[2]) -> f32[2] { return x * z }");
    let b = f32s("b4.npy", vec![4, 2]);
    let (x, z) = (format!("x={b}"), format!("z={b}"));
    let args = [
        "kernel",
        &two,
        "--wrt",
        "x",
        "--x1",
        &x,
        "--x1",
        &z,
        "--x2",
        &x,
        "--x2",
        &z,
        "--tile",
        "1",
        "--threads",
        "2",
    ];
    crate::tiles::PANIC_IN_WORKER.store(true, Ordering::Relaxed);
    let cli = Cli::try_parse_from(std::iter::once("jjt").chain(args)).unwrap();
    let result = crate::run(cli);
    crate::tiles::PANIC_IN_WORKER.store(false, Ordering::Relaxed);
    assert!(matches!(result, Err(CliError::WorkerPanicked)), "{result:?}");
    // Without the injected panic the same command succeeds.
    let o = tmp("k_panic.npy").display().to_string();
    let cli = Cli::try_parse_from(std::iter::once("jjt").chain(args).chain(["-o", &o])).unwrap();
    assert!(crate::run(cli).is_ok());
}

#[test]
fn input_item_mistakes() {
    let (m, x1) = (seed(), fixture("x1_f32.npy"));
    let two = model("twoin2.jjt", "func f(x: f32[2], z: f32[2]) -> f32[2] { return x * z }");
    let b2 = f32s("ib2.npy", vec![2, 2]);
    check(
        &["bench", &m, "--wrt", "x", "--shared", "x="],
        |e| matches!(e, CliError::BadItem { flag: "--shared", arg } if arg == "x="),
        &["`--shared x=`: expected NAME or NAME=FILE.npy"],
    );
    check(
        &["dump", &m, "--stage", "kernel", "--wrt", &format!("x={x1}")],
        |e| matches!(e, CliError::FileNotRead { flag: "--wrt", name } if name == "x"),
        &["reads no input files", "pass `--wrt x`"],
    );
    check(
        &["bench", &two, "--wrt", "x", "--x2", &format!("z={b2}"), "--batch", "2,5"],
        |e| matches!(e, CliError::BatchFlagDisagrees { flag: "--x2", name, batch: Some(2), given: 5 } if name == "z"),
        &["--x2 input `z` has a batch of 2 examples, but --batch says 5"],
    );
    check(
        &["kernel", &two, "--wrt", "x", "--shared", "z", "--x1", &b2, "--x2", &b2],
        |e| matches!(e, CliError::MissingInput { flag: "--shared", name, .. } if name == "z"),
        &["pass --shared z=FILE.npy"],
    );
    check(
        &["bench", &m, "--wrt", &format!("y={x1}")],
        |e| matches!(e, CliError::UnknownInput { flag: "--wrt", name, .. } if name == "y"),
        &["no input `y`"],
    );
}

/// `bench` runs on the files' contents: each bound input is the file given for it (whichever
/// flag gave it), and only the others are drawn at random.
#[test]
fn bench_binds_the_files_contents() {
    let two = model("twoin3.jjt", "func f(x: f32[2], z: f32[2]) -> f32[2] { return x * z }");
    let xs = npy("bx.npy", vec![3, 2], jjt_npy::Data::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let zs = npy("bz.npy", vec![2], jjt_npy::Data::F32(vec![-1.5, 7.25]));
    let inputs = |args: &[&str]| {
        let cli = Cli::try_parse_from(std::iter::once("jjt").chain(args.iter().copied())).unwrap();
        let crate::args::Command::Bench(b) = cli.command else { panic!("not bench") };
        let f = crate::pipeline::load(&b.model, b.opts.precision).unwrap();
        let (g, args, _) = crate::bench::inputs(&b, &f).unwrap();
        let names: Vec<String> = g.params().iter().map(|p| p.name.clone()).collect();
        (names, args.iter().map(|t| (t.ty().to_string(), t.to_f64_vec())).collect::<Vec<_>>())
    };
    let file = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let x1 = format!("x={xs}");
    for shared in [format!("z={zs}"), "z".to_string()] {
        for wrt in [vec!["--wrt", "x"], vec!["--wrt", "x", "--wrt", "z"], vec!["--wrt", "x,z"]] {
            let mut a = vec!["bench", &two, "--x1", &x1, "--shared", &shared];
            a.extend(wrt);
            let (names, args) = inputs(&a);
            let at = |n: &str| names.iter().position(|m| m.starts_with(n)).unwrap();
            // Side 1's x is the file; side 2's x is random with side 1's batch.
            let (ty1, v1) = &args[at("x")];
            assert_eq!((ty1.as_str(), v1.as_slice()), ("f32[3,2]", &file[..]), "{a:?}: {names:?}");
            let x2 = names.iter().rposition(|m| m.starts_with('x')).unwrap();
            assert_eq!(args[x2].0, "f32[3,2]");
            assert_ne!(args[x2].1, file);
            let (tyz, vz) = &args[at("z")];
            assert_eq!(tyz, "f32[2]");
            if shared.contains('=') {
                assert_eq!(vz, &[-1.5, 7.25], "{a:?}");
            } else {
                assert!(vz.iter().all(|v| (0.0..1.0).contains(v)), "{a:?}: {vz:?}");
            }
        }
    }
}

const EMBED: &str = "func embed(tok: i32[6], emb: f32[7,3], w: f32[3,2]) -> f32[2] {
  return mean(gather(emb, tok, axis=0), axes=[0]) @ w
}
";

/// `bench` fills an integer input that indexes a table of 7 rows with integers in [0, 7),
/// per side and batched, and every row is drawn.
#[test]
fn bench_draws_integer_inputs_within_the_indexed_rows() {
    let m = model("embed_bench.jjt", EMBED);
    let args = ["jjt", "bench", &m, "--wrt", "*", "--shared", "emb,w", "--batch", "40,40"];
    let cli = Cli::try_parse_from(args).unwrap();
    let crate::args::Command::Bench(b) = cli.command else { panic!("not a bench command") };
    let f = crate::pipeline::load(&b.model, b.opts.precision).unwrap();
    let (_, inputs, _) = crate::bench::inputs(&b, &f).unwrap();
    let ints: Vec<i32> = inputs
        .iter()
        .filter_map(|t| match &t.data {
            jjt_ir::Data::I32(v) => Some(v.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(ints.len(), 2 * 40 * 6, "both sides' tokens");
    assert!(ints.iter().all(|&i| (0..7).contains(&i)), "{ints:?}");
    assert!((0..7).all(|r| ints.contains(&r)), "every row is drawn: {ints:?}");
}

/// `check` differentiates the float inputs of `--wrt '*'` at random in-range tokens, and
/// naming the tokens is the transforms' `NotFloat`.
#[test]
fn check_skips_integer_inputs_and_refuses_them_by_name() {
    let m = model("embed_check.jjt", EMBED);
    let cli = Cli::try_parse_from(["jjt", "check", &m, "--wrt", "*"]).unwrap();
    crate::run(cli).unwrap();
    check(
        &["check", &m, "--wrt", "tok"],
        |e| matches!(e, CliError::Ad(jjt_ad::AdError::NotFloat { .. })),
        &["`tok`", "i32"],
    );
}
