//! `jjt kernel --grid R,C --task … -o DIR` and `jjt merge DIR`: the blocks reassemble into the
//! kernel computed in one process bit for bit; a rerun skips valid blocks and recomputes the
//! others; every fault a task can leave (killed before or after a rename, truncated or
//! corrupted files, two writers of one block) is found; merge streams (its peak memory stays
//! near one block on a kernel larger than that); `jjt slurm` prints the job array.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jjt::Tensor;
use sha2::{Digest, Sha256};

fn jjt_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jjt")).current_dir(dir).args(args).output().expect("run jjt")
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "jjt failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn err(o: Output) -> String {
    assert!(!o.status.success(), "jjt succeeded where it should fail");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A folder of this test's own, with a small model and its inputs: 10 and 7 examples.
fn setup(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jjt-grid-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("m.jjt"),
        "func m(x: f32[3], w: f32[3,4], b: f32[4], v: f32[4,2]) -> f32[2] {\n  return tanh(x @ w + b) @ v\n}\n",
    )
    .unwrap();
    let mut rng = jjt::RandomState::new(5);
    let mut save = |n: &str, dims: &[usize]| {
        let t = rng.randn_f32(dims.to_vec()).unwrap();
        jjt::npy::write_file(&d.join(format!("{n}.npy")), &t.into_array()).unwrap();
    };
    save("x1", &[10, 3]);
    save("x2", &[7, 3]);
    save("w", &[3, 4]);
    save("b", &[4]);
    save("v", &[4, 2]);
    d
}

const KERNEL: [&str; 10] = [
    "kernel",
    "m.jjt",
    "--wrt",
    "w,b,v",
    "--shared",
    "w=w.npy,b=b.npy,v=v.npy",
    "--x1",
    "x=x1.npy",
    "--x2",
    "x=x2.npy",
];

fn kernel<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = KERNEL.to_vec();
    v.extend_from_slice(extra);
    v
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn blocks_reassemble_bit_for_bit_in_every_mode() {
    let d = setup("modes");
    for mode in ["full", "trace", "diagonal"] {
        let out = format!("g-{mode}");
        let log = ok(jjt_in(
            &d,
            &kernel(&["--mode", mode, "--tile", "2", "--grid", "3,2", "--task", "all", "-o", &out]),
        ));
        assert_eq!(log.matches("computed").count(), 6, "{log}");
        ok(jjt_in(&d, &["merge", &out, "-o", &format!("{mode}.npy")]));
        ok(jjt_in(&d, &kernel(&["--mode", mode, "--tile", "2", "-o", &format!("{mode}-one.npy")])));
        assert_eq!(
            read(&d.join(format!("{mode}.npy"))),
            read(&d.join(format!("{mode}-one.npy"))),
            "{mode}"
        );
    }
    let k = Tensor::from_array(jjt::npy::read_file(&d.join("full.npy")).unwrap());
    assert_eq!(k.shape.dims(), &[10, 7, 2, 2]);
    // Example-diagonal kernels: a grid of R×1 blocks along the diagonal, and its K is the
    // diagonal of the full one's.
    let same = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = KERNEL.to_vec();
        v[9] = "x=x1.npy";
        v.extend_from_slice(extra);
        v
    };
    let diag = ["--examples", "diagonal", "--tile", "3"];
    let mut args = same(&diag);
    args.extend(["--grid", "4,1", "--task", "all", "-o", "gd"]);
    ok(jjt_in(&d, &args));
    ok(jjt_in(&d, &["merge", "gd", "-o", "diag.npy"]));
    let mut one = same(&diag);
    one.extend(["-o", "diag-one.npy"]);
    ok(jjt_in(&d, &one));
    assert_eq!(read(&d.join("diag.npy")), read(&d.join("diag-one.npy")));
    let mut full = same(&["--tile", "3"]);
    full.extend(["-o", "full11.npy"]);
    ok(jjt_in(&d, &full));
    let kd = Tensor::from_array(jjt::npy::read_file(&d.join("diag.npy")).unwrap()).to_f64_vec();
    let kf = Tensor::from_array(jjt::npy::read_file(&d.join("full11.npy")).unwrap()).to_f64_vec();
    assert_eq!(kd.len(), 10 * 4);
    for b in 0..10 {
        for ij in 0..4 {
            // The same entries by another compiled kernel: equal to f32 rounding.
            let (x, y) = (kd[b * 4 + ij], kf[(b * 10 + b) * 4 + ij]);
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{b} {ij}: {x} vs {y}");
        }
    }
    let mut bad = same(&diag);
    bad.extend(["--grid", "2,2", "--task", "0", "-o", "gd2"]);
    assert!(err(jjt_in(&d, &bad)).contains("the grid is R,1"));
}

#[test]
fn one_task_computes_one_block_and_a_rerun_skips_it() {
    let d = setup("tasks");
    let log = ok(jjt_in(&d, &kernel(&["--grid", "3,2", "--task", "4", "-o", "g"])));
    assert!(log.contains("block 4: computed (examples 6..10 × 0..3)"), "{log}");
    let files: Vec<String> = std::fs::read_dir(d.join("g"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut files = files;
    files.sort();
    assert_eq!(files, ["block-00004.json", "block-00004.npy", "manifest.json"]);
    let before = read(&d.join("g/block-00004.npy"));
    let log = ok(jjt_in(&d, &kernel(&["--grid", "3,2", "--task", "all", "-o", "g"])));
    assert!(log.contains("block 4: present and valid, skipped"), "{log}");
    assert_eq!(log.matches("computed").count(), 5);
    assert_eq!(read(&d.join("g/block-00004.npy")), before);
    // The task of a Slurm job array.
    let o = Command::new(env!("CARGO_BIN_EXE_jjt"))
        .current_dir(&d)
        .args(kernel(&["--grid", "3,2", "--task", "slurm", "-o", "g2"]))
        .env("SLURM_ARRAY_TASK_ID", "5")
        .output()
        .unwrap();
    assert!(ok(o).contains("block 5: computed"));
    let o = Command::new(env!("CARGO_BIN_EXE_jjt"))
        .current_dir(&d)
        .args(kernel(&["--grid", "3,2", "--task", "slurm", "-o", "g2"]))
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert!(err(o).contains("SLURM_ARRAY_TASK_ID is not set"));
}

#[test]
fn a_directory_of_another_kernel_is_refused() {
    let d = setup("mismatch");
    ok(jjt_in(&d, &kernel(&["--grid", "2,2", "--task", "0", "-o", "g"])));
    let e =
        err(jjt_in(&d, &kernel(&["--mode", "trace", "--grid", "2,2", "--task", "1", "-o", "g"])));
    assert!(
        e.contains("its manifest is for another kernel: `mode` is \"full\" there, \"trace\" here"),
        "{e}"
    );
    let e = err(jjt_in(&d, &kernel(&["--grid", "2,1", "--task", "1", "-o", "g"])));
    assert!(e.contains("`grid`"), "{e}");
    let e = err(jjt_in(&d, &kernel(&["--tile", "4", "--grid", "2,2", "--task", "1", "-o", "g"])));
    assert!(e.contains("`tile`"), "{e}");
    // Other input values: another kernel.
    std::fs::copy(d.join("x2.npy"), d.join("x2b.npy")).unwrap();
    let mut t = Tensor::from_array(jjt::npy::read_file(&d.join("x2.npy")).unwrap());
    if let jjt::ir::Data::F32(v) = &mut t.data {
        v[0] += 1.0;
    }
    jjt::npy::write_file(&d.join("x2.npy"), &t.into_array()).unwrap();
    let e = err(jjt_in(&d, &kernel(&["--grid", "2,2", "--task", "1", "-o", "g"])));
    assert!(e.contains("`inputs`"), "{e}");
}

#[test]
fn bad_grid_arguments() {
    let d = setup("args");
    for (args, want) in [
        (vec!["--grid", "0,2", "--task", "0", "-o", "g"], "expected R,C"),
        (vec!["--grid", "2", "--task", "0", "-o", "g"], "expected R,C"),
        (vec!["--grid", "11,1", "--task", "0", "-o", "g"], "more blocks than examples"),
        (
            vec!["--grid", "2,2", "--task", "4", "-o", "g"],
            "block 4 does not exist (the grid has 4 blocks, 0 to 3)",
        ),
        (
            vec!["--grid", "2,2", "--task", "x", "-o", "g"],
            "expected a block index, `slurm` or `all`",
        ),
        (vec!["--grid", "2,2", "--task", "0"], "give -o DIR"),
    ] {
        let e = err(jjt_in(&d, &kernel(&args)));
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // clap: --grid excludes --rows.
    let o = jjt_in(&d, &kernel(&["--grid", "2,2", "--task", "0", "--rows", "0:2", "-o", "g"]));
    assert_eq!(o.status.code(), Some(2));
}

/// What a fault does to a grid directory.
type Damage<'a> = Box<dyn Fn() + 'a>;

/// The grid complete: the bytes of its merged kernel.
fn complete(d: &Path) -> Vec<u8> {
    ok(jjt_in(d, &kernel(&["--grid", "3,2", "--task", "all", "-o", "g"])));
    ok(jjt_in(d, &["merge", "g", "-o", "K.npy"]));
    read(&d.join("K.npy"))
}

#[test]
fn faults_are_found_by_merge_and_repaired_by_a_rerun() {
    let d = setup("faults");
    let good = complete(&d);
    let block = |i: usize| d.join(format!("g/block-{i:05}.npy"));
    let side = |i: usize| d.join(format!("g/block-{i:05}.json"));
    let rerun = |d: &Path| ok(jjt_in(d, &kernel(&["--grid", "3,2", "--task", "all", "-o", "g"])));
    let cases: Vec<(&str, Damage)> = vec![
        (
            "truncated",
            Box::new(|| {
                let b = read(&block(1));
                std::fs::write(block(1), &b[..b.len() - 5]).unwrap();
            }),
        ),
        (
            "corrupted",
            Box::new(|| {
                let mut b = read(&block(2));
                let n = b.len();
                b[n - 3] ^= 0x40;
                std::fs::write(block(2), b).unwrap();
            }),
        ),
        // Killed after the block's rename, before its sidecar's.
        ("no sidecar", Box::new(|| std::fs::remove_file(side(3)).unwrap())),
        // Killed before the block's rename: only a temporary file.
        (
            "missing",
            Box::new(|| {
                std::fs::rename(block(0), d.join("g/.block-00000.npy.tmp-1-2")).unwrap();
                std::fs::remove_file(side(0)).unwrap();
            }),
        ),
        // A sidecar of another grid's block.
        (
            "for other examples",
            Box::new(|| {
                let t = std::fs::read_to_string(side(5)).unwrap().replace("[\n    6,", "[\n    5,");
                std::fs::write(side(5), t).unwrap();
            }),
        ),
    ];
    for (what, damage) in cases {
        damage();
        let e = err(jjt_in(&d, &["merge", "g", "-o", "K2.npy"]));
        assert!(e.contains(what) && e.contains("1 of 6 blocks"), "{what}: {e}");
        assert!(!d.join("K2.npy").exists(), "{what}: a refused merge wrote its output");
        let log = rerun(&d);
        assert_eq!(log.matches("computed").count(), 1, "{what}: {log}");
        ok(jjt_in(&d, &["merge", "g", "-o", "K2.npy"]));
        assert_eq!(read(&d.join("K2.npy")), good, "{what}");
        std::fs::remove_file(d.join("K2.npy")).unwrap();
    }
}

#[test]
fn two_tasks_writing_one_block_leave_one_valid_block() {
    let d = setup("race");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_jjt"))
            .current_dir(&d)
            .args(kernel(&["--grid", "3,2", "--task", "3", "-o", "g"]))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    let names: Vec<String> = std::fs::read_dir(d.join("g"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("00003"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}: one block and its sidecar, no temporary file left");
    let good = {
        ok(jjt_in(&d, &kernel(&["-o", "one.npy"])));
        read(&d.join("one.npy"))
    };
    assert_eq!(complete(&d), good);
}

/// A grid written by hand (the directory's contract): a kernel of `b`×`b` f64 entries in a
/// `g`×`g` grid.
fn handmade(dir: &Path, b: usize, g: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let part = |k: usize| (k * b / g, (k + 1) * b / g);
    let manifest = format!(
        "{{\"format\": \"jjt kernel grid 1\", \"grid\": [{g}, {g}], \"batch\": [{b}, {b}], \"examples\": \"all\", \"block_rest\": [], \"out_dtype\": \"f64\", \"cpu\": \"test\"}}"
    );
    std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
    // The kernel's identity: the SHA-256 of the manifest without `cpu`, as serde_json prints
    // it (keys sorted, no spaces).
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let mut o = v.as_object().unwrap().clone();
    o.remove("cpu");
    let id: String = Sha256::digest(serde_json::Value::Object(o).to_string().as_bytes())
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    for i in 0..g * g {
        let ((r0, r1), (c0, c1)) = (part(i / g), part(i % g));
        let vals: Vec<f64> =
            (r0..r1).flat_map(|r| (c0..c1).map(move |c| (r * b + c) as f64)).collect();
        let t = Tensor::f64(vec![r1 - r0, c1 - c0], vals).unwrap();
        let bytes = jjt::npy::write(&t.into_array());
        std::fs::write(dir.join(format!("block-{i:05}.npy")), &bytes).unwrap();
        let sha: String = Sha256::digest(&bytes).iter().map(|x| format!("{x:02x}")).collect();
        let cpu = if i == 3 { "other" } else { "test" };
        let side = format!(
            "{{\"block\": {i}, \"kernel\": \"{id}\", \"rows\": [{r0}, {r1}], \"cols\": [{c0}, {c1}], \"bytes\": {}, \"sha256\": \"{sha}\", \"cpu\": \"{cpu}\"}}",
            bytes.len()
        );
        std::fs::write(dir.join(format!("block-{i:05}.json")), side).unwrap();
    }
}

#[test]
fn merge_streams_a_kernel_larger_than_its_memory() {
    // 4000 × 4000 f64 entries: 128 MB, in 8 × 8 blocks of 2 MB. The merge may hold one block
    // and 64 MB of buffers beside the process itself (under 30 MB): 100 MB is the limit
    // stated here, below the kernel's size, so holding K would fail it.
    let d = std::env::temp_dir().join(format!("jjt-grid-{}-stream", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    handmade(&d.join("g"), 4000, 8);
    let log = ok(jjt_in(&d, &["merge", "g", "-o", "K.npy"]));
    let peak: f64 = log
        .split("peak memory ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {log}"));
    assert!(peak < 100.0, "merge peak memory {peak} MiB for a 128 MB kernel");
    assert!(
        log.contains(
            "blocks computed on a CPU with other features than the manifest's (test): 3 (other)"
        ),
        "{log}"
    );
    let k = Tensor::from_array(jjt::npy::read_file(&d.join("K.npy")).unwrap());
    assert_eq!(k.shape.dims(), &[4000, 4000]);
    let v = k.to_f64_vec();
    for (i, x) in v.iter().enumerate().step_by(997) {
        assert_eq!(*x, i as f64);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn slurm_prints_the_job_array_and_the_merge_step() {
    let d = setup("slurm");
    let o = Command::new(env!("CARGO_BIN_EXE_jjt"))
        .current_dir(&d)
        .args(["slurm"])
        .args(&KERNEL[1..])
        .args([
            "--mode",
            "trace",
            "--grid",
            "2,3",
            "-o",
            "blocks",
            "--time",
            "5:00",
            "--cpus-per-task",
            "2",
            "--partition",
            "gpu q",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8(o.stdout).unwrap();
    let dir = d.join("blocks").display().to_string();
    for want in [
        "#SBATCH --array=0-5\n",
        "#SBATCH --cpus-per-task=2\n",
        "#SBATCH --time=5:00\n",
        "#SBATCH --partition='gpu q'\n",
        " kernel m.jjt --wrt w,b,v --shared w=w.npy,b=b.npy,v=v.npy --x1 x=x1.npy --x2 x=x2.npy --mode trace --grid 2,3 --task slurm --threads \"$SLURM_CPUS_PER_TASK\" --quiet -o ",
        "--dependency=afterok:\"$array\"",
        &format!(" merge {dir} -o {dir}/K.npy"),
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    let mem: u64 = s
        .split("#SBATCH --mem=")
        .nth(1)
        .and_then(|t| t.split('M').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((256..1024).contains(&mem), "--mem={mem}M");
    let o = Command::new(env!("CARGO_BIN_EXE_jjt"))
        .current_dir(&d)
        .args(["slurm"])
        .args(&KERNEL[1..])
        .args(["--grid", "2,3", "-o", "blocks", "--max-memory", "100"])
        .output()
        .unwrap();
    assert!(err(o).contains("above --max-memory 100"));
}

#[test]
fn blocks_of_another_kernel_are_never_taken_even_with_the_manifest_replaced() {
    let d = setup("replaced");
    ok(jjt_in(&d, &kernel(&["--grid", "3,2", "--task", "all", "-o", "g"])));
    std::fs::remove_file(d.join("g/manifest.json")).unwrap();
    let log =
        ok(jjt_in(&d, &kernel(&["--mode", "trace", "--grid", "3,2", "--task", "all", "-o", "g"])));
    assert_eq!(
        log.matches("its sidecar is for another kernel's manifest: recomputing").count(),
        6,
        "{log}"
    );
    ok(jjt_in(&d, &["merge", "g", "-o", "K.npy"]));
    ok(jjt_in(&d, &kernel(&["--mode", "trace", "-o", "one.npy"])));
    assert_eq!(read(&d.join("K.npy")), read(&d.join("one.npy")));
}
