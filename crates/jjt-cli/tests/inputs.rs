//! One input syntax for every command: `bench` binds `--x1`/`--x2`/`--shared` files as
//! `kernel` does (random values only for inputs no file gives), `--wrt`/`--shared` items are
//! `NAME` or `NAME=FILE` whether comma-separated or repeated, and `--wrt NAME=FILE` binds the
//! file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn jjt(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jjt")).args(args).output().expect("run jjt")
}

/// This test's own folder: the harness runs each test on its own thread, so a folder per
/// thread keeps tests that write the same file names in parallel from reading each other's
/// half-written files.
fn dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static DIR: PathBuf = std::env::temp_dir().join(format!(
            "jjt-inputs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
    }
    let d = DIR.with(|d| d.clone());
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `jjt ARGS`, which must succeed; its standard output.
fn ok(args: &[String]) -> String {
    let o = jjt(args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The shape and values of an f32 .npy file.
fn read(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = jjt_npy::read_file(path).unwrap();
    match a.data {
        jjt_npy::Data::F32(v) => (a.shape, v),
        _ => panic!("{}: not f32", path.display()),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A small MLP with its parameters as inputs, parameter files (name, path) and batches of 5
/// and 4 examples.
fn setup() -> (String, Vec<(&'static str, String)>, String, String) {
    let d = dir();
    let model = d.join("m.jjt");
    std::fs::write(
        &model,
        "func mlp(x: f32[2], w0: f32[2,8], b0: f32[8], w1: f32[8,3], b1: f32[3]) -> f32[3] {\n  h0 = tanh(x @ w0 + b0)\n  return h0 @ w1 + b1\n}\n",
    )
    .unwrap();
    let mut k = 0u32;
    let mut write = |name: &str, shape: Vec<usize>| -> String {
        let n: usize = shape.iter().product();
        let v = (0..n)
            .map(|i| {
                k += 1;
                ((i as f32 * 0.37 + k as f32 * 0.11).sin()) / 2.0
            })
            .collect();
        let p = d.join(format!("{name}.npy"));
        jjt_npy::write_file(&p, &jjt_npy::Array { shape, data: jjt_npy::Data::F32(v) }).unwrap();
        p.display().to_string()
    };
    let params = vec![
        ("w0", write("w0", vec![2, 8])),
        ("b0", write("b0", vec![8])),
        ("w1", write("w1", vec![8, 3])),
        ("b1", write("b1", vec![3])),
    ];
    let (xa, xb) = (write("xa", vec![5, 2]), write("xb", vec![4, 2]));
    (model.display().to_string(), params, xa, xb)
}

/// `--shared NAME=FILE` repeated, one per parameter.
fn repeated(flag: &str, params: &[(&str, String)]) -> Vec<String> {
    params.iter().flat_map(|(n, p)| [flag.to_string(), format!("{n}={p}")]).collect()
}

/// `--shared NAME=FILE,NAME=FILE,...`: one comma-separated list.
fn comma(flag: &str, params: &[(&str, String)]) -> Vec<String> {
    let list: Vec<String> = params.iter().map(|(n, p)| format!("{n}={p}")).collect();
    vec![flag.to_string(), list.join(",")]
}

fn out(name: &str) -> String {
    dir().join(name).display().to_string()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: an all-zero reference proves nothing");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * scale, "{what}: element {i}: {g} vs {w}");
    }
}

#[test]
fn bench_times_the_given_files() {
    let (m, params, xa, xb) = setup();
    let wrt = s(&["--wrt", "w0,b0,w1,b1"]);
    let sides = s(&["--x1", &format!("x={xa}"), "--x2", &format!("x={xb}")]);
    let k = out("k_kernel.npy");
    let kernel = [s(&["kernel", &m]), wrt.clone(), sides.clone(), repeated("--shared", &params)];
    ok(&[kernel.concat(), s(&["-o", &k])].concat());
    let b = out("k_bench.npy");
    let bench = [s(&["bench", &m, "--reps", "1"]), wrt, sides, repeated("--shared", &params)];
    let stdout = ok(&[bench.concat(), s(&["-o", &b])].concat());
    assert!(stdout.contains("-> f32[5,4,3,3]"), "{stdout}");
    let ((ks, kv), (bs, bv)) = (read(Path::new(&k)), read(Path::new(&b)));
    assert_eq!(ks, vec![5, 4, 3, 3]);
    assert_eq!(bs, ks);
    assert_close("bench on the kernel's files", &bv, &kv);
    // The agreeing --batch changes nothing; the seed does not matter when files give every
    // input.
    let b2 = out("k_bench2.npy");
    ok(&[bench.concat(), s(&["--batch", "5,4", "--seed", "9", "-o", &b2])].concat());
    assert_eq!(read(Path::new(&b2)).1, bv);
}

#[test]
fn bench_draws_only_what_no_file_gives() {
    let (m, params, xa, _) = setup();
    let base =
        [s(&["bench", &m, "--reps", "1", "--wrt", "w0,b0,w1,b1"]), comma("--shared", &params)]
            .concat();
    // Side 2 has no file: it takes side 1's batch, or --batch's.
    let x1 = s(&["--x1", &format!("x={xa}")]);
    assert!(ok(&[base.clone(), x1.clone()].concat()).contains("-> f32[5,5,3,3]"));
    assert!(
        ok(&[base.clone(), x1.clone(), s(&["--batch", "5,7"])].concat())
            .contains("-> f32[5,7,3,3]")
    );
    // Files fix side 1 and the parameters; side 2 is random, so the seed changes K's values
    // but not the given ones: K's diagonal rows differ, yet the same seed repeats exactly.
    let run = |seed: &str, name: &str| {
        let o = out(name);
        ok(&[base.clone(), x1.clone(), s(&["--seed", seed, "-o", &o])].concat());
        read(Path::new(&o)).1
    };
    let (a, a2, b) = (run("1", "r1.npy"), run("1", "r1b.npy"), run("2", "r2.npy"));
    assert_eq!(a, a2);
    assert_ne!(a, b);
}

#[test]
fn repeated_and_comma_separated_items_agree() {
    let (m, params, xa, xb) = setup();
    let sides = s(&["--x1", &format!("x={xa}"), "--x2", &format!("x={xb}")]);
    let mixed = {
        let (a, b) = params.split_at(2);
        [comma("--shared", a), repeated("--shared", b)].concat()
    };
    for command in ["kernel", "bench"] {
        let mut got = Vec::new();
        for (i, (wrt, shared)) in [
            (s(&["--wrt", "w0,b0,w1,b1"]), repeated("--shared", &params)),
            (s(&["--wrt", "w0", "--wrt", "b0,w1", "--wrt", "b1"]), comma("--shared", &params)),
            (s(&["--wrt", "w0,b0", "--wrt", "w1,b1"]), mixed.clone()),
        ]
        .into_iter()
        .enumerate()
        {
            let o = out(&format!("{command}_{i}.npy"));
            let extra = if command == "bench" { s(&["--reps", "1"]) } else { vec![] };
            ok(&[s(&[command, &m]), wrt, shared, sides.clone(), extra, s(&["-o", &o])].concat());
            got.push(std::fs::read(&o).unwrap());
        }
        assert!(got.iter().all(|g| *g == got[0]), "{command}: the spellings disagree");
    }
    // dump: the same names, comma-separated or repeated, print the same graph.
    let dump = |wrt: &[&str], shared: &[&str]| {
        ok(&[s(&["dump", &m, "--stage", "kernel"]), s(wrt), s(shared)].concat())
    };
    assert_eq!(
        dump(&["--wrt", "w0,b0,w1,b1"], &["--shared", "w0,b0,w1,b1"]),
        dump(
            &["--wrt", "w0", "--wrt", "b0,w1,b1"],
            &["--shared", "w0,b0", "--shared", "w1", "--shared", "b1"]
        )
    );
}

#[test]
fn wrt_name_equals_file_binds_the_file() {
    let (m, params, xa, xb) = setup();
    let sides = s(&["--x1", &format!("x={xa}"), "--x2", &format!("x={xb}")]);
    let names = s(&["--wrt", "w0,b0,w1,b1"]);
    let k = out("k_shared.npy");
    ok(&[s(&["kernel", &m]), names, repeated("--shared", &params), sides.clone(), s(&["-o", &k])]
        .concat());
    let want = std::fs::read(&k).unwrap();
    // --wrt NAME=FILE alone, and with the name also in a bare --shared.
    for (i, extra) in [vec![], s(&["--shared", "w0,b1"])].into_iter().enumerate() {
        let o = out(&format!("k_wrt{i}.npy"));
        ok(&[s(&["kernel", &m]), comma("--wrt", &params), extra, sides.clone(), s(&["-o", &o])]
            .concat());
        assert_eq!(std::fs::read(&o).unwrap(), want, "--wrt NAME=FILE ({i})");
    }
    // bench: the same files through --wrt.
    let b = out("k_wrt_bench.npy");
    ok(&[s(&["bench", &m, "--reps", "1"]), repeated("--wrt", &params), sides, s(&["-o", &b])]
        .concat());
    assert_close("bench --wrt NAME=FILE", &read(Path::new(&b)).1, &read(Path::new(&k)).1);
    // check: --wrt x=FILE fixes x there, as --in x=FILE does (zeros: sqrt is singular at 0).
    let seed = root().join("examples/models/seed.jjt").display().to_string();
    let zeros = dir().join("zeros.npy");
    jjt_npy::write_file(
        &zeros,
        &jjt_npy::Array { shape: vec![10000], data: jjt_npy::Data::F32(vec![0.0; 10000]) },
    )
    .unwrap();
    let check = |wrt: String, extra: &[&str]| {
        let o = jjt(&[s(&["check", &seed, "--points", "1", "--wrt", &wrt]), s(extra)].concat());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let fixed = check(format!("x={}", zeros.display()), &[]);
    assert!(fixed.contains("derivative check failed"), "{fixed}");
    assert_eq!(fixed, check("x".into(), &["--in", &format!("x={}", zeros.display())]));
    assert!(check("x".into(), &[]).is_empty());
}
