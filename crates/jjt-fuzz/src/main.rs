//! `jjt-fuzz TARGET SECONDS [SEED_DIR]`: fuzz one target for a time budget; an input that
//! panics or gives a wrong result is written to `crates/jjt-fuzz/regressions/TARGET/` and the
//! run fails. The seed is printed; `JJT_FUZZ_SEED=N` repeats a run.

use std::time::{Duration, Instant};

use jjt_fuzz::{Rng, TARGETS, input, run_one};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(secs)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok()))
    else {
        eprintln!("usage: jjt-fuzz parse|print|npy|npz|mlir|onnx|diff SECONDS [SEED_DIR]");
        return std::process::ExitCode::from(2);
    };
    let Some(&(_, target)) = TARGETS.iter().find(|(n, _)| n == name) else {
        eprintln!("unknown target `{name}`: parse, print, npy, npz, mlir, onnx or diff");
        return std::process::ExitCode::from(2);
    };
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    if let Some(dir) = args.get(3) {
        collect(std::path::Path::new(dir), &mut seeds);
    }
    std::panic::set_hook(Box::new(|_| {}));
    // The seed is printed so that a run can be repeated with JJT_FUZZ_SEED.
    let seed =
        std::env::var("JJT_FUZZ_SEED").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or_else(
            || {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                now.map_or(0, |d| d.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
            },
        ) | 1;
    eprintln!("{name}: seed {seed}");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let data = input(&mut rng, &seeds);
        runs += 1;
        if let Err(msg) = run_one(target, &data) {
            let dir = format!("{}/regressions/{name}", env!("CARGO_MANIFEST_DIR"));
            let _ = std::fs::create_dir_all(&dir);
            let path = format!("{dir}/found-{runs}.bin");
            let _ = std::fs::write(&path, &data);
            eprintln!("{name}: failure after {runs} runs, input saved to {path}\n{msg}");
            return std::process::ExitCode::FAILURE;
        }
    }
    println!("{name}: {runs} runs in {secs} s, no failure");
    std::process::ExitCode::SUCCESS
}

fn collect(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect(&p, out);
        } else if let Ok(b) = std::fs::read(&p)
            && b.len() <= 1 << 16
        {
            out.push(b);
        }
    }
}
