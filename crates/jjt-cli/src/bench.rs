//! `jjt bench`: first-call and steady-state timings of a kernel on random inputs, in one
//! process. The last line printed is one JSON object.

use std::time::Instant;

use jjt_ir::random::Mt19937;
use jjt_ir::{Function, Tensor, TensorType};

use crate::CliError;
use crate::args::{BenchArgs, KernelIo, items};
use crate::bind::{Missing, bind_kernel, bind_some};
use crate::pipeline::{jit_options, kernel_graph, load, optimized};
use jjt_ad::Form;

fn random(rng: &mut Mt19937, ty: &TensorType) -> Result<Tensor, CliError> {
    let mut v: Vec<f64> = Vec::new();
    v.try_reserve_exact(ty.numel()).map_err(|_| CliError::Alloc(ty.clone()))?;
    v.extend((0..ty.numel()).map(|_| rng.next_f64()));
    Ok(Tensor::from_f64(ty, &v)?)
}

/// Peak resident set size of this process, in MiB (VmHWM).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|k| k.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The graph `bench` times and its inputs: the files of `--x1`, `--x2`, `--shared` and
/// `--wrt NAME=FILE` (as `jjt kernel` binds them), random values for the inputs no file gives.
pub(crate) fn inputs(b: &BenchArgs, f: &Function) -> Result<(Function, Vec<Tensor>), CliError> {
    let mut rng = Mt19937::new(b.seed);
    let io = KernelIo {
        model: b.model.clone(),
        wrt: b.target.wrt.clone(),
        x1: b.x1.clone(),
        x2: b.x2.clone(),
        shared: b.target.shared.clone(),
    };
    if b.target.wrt.is_empty() {
        // The model itself: its inputs are given by name with --x1 or --shared.
        if !b.x2.is_empty() {
            return Err(CliError::Usage(
                "without --wrt, bench times the model: give its inputs with --x1 or --shared, not --x2",
            ));
        }
        let mut named = b.x1.clone();
        for it in items("--shared", &b.target.shared)? {
            if let Some(file) = it.file {
                named.push(format!("{}={}", it.name, file.display()));
            }
        }
        let given = bind_some(f, &named, "--x1", b.opts.precision)?;
        let g = optimized(f, b.opts.optimizer)?;
        let args = f
            .params()
            .iter()
            .zip(given)
            .map(|(p, t)| t.map_or_else(|| random(&mut rng, &p.ty), Ok))
            .collect::<Result<_, _>>()?;
        return Ok((g, args));
    }
    let batch = b.target.batch()?;
    let (spec, bound) = bind_kernel(f, &io, &b.opts, b.form, None, (batch, Missing::Allow))?;
    let g = match b.form {
        Form::Kernel => kernel_graph(f, &spec, &b.opts)?,
        Form::Apply => optimized(&spec.apply(f)?, b.opts.optimizer)?,
    };
    let args = bound
        .into_iter()
        .map(|x| x.value.map_or_else(|| random(&mut rng, &x.ty), Ok))
        .collect::<Result<_, _>>()?;
    Ok((g, args))
}

pub(crate) fn run(b: &BenchArgs) -> Result<(), CliError> {
    if b.reps == 0 {
        return Err(CliError::Usage("--reps must be at least 1"));
    }
    if b.threads == Some(0) {
        return Err(CliError::Usage("--threads must be at least 1"));
    }
    let start = Instant::now();
    let f = load(&b.model, b.opts.precision)?;
    let (g, args) = inputs(b, &f)?;
    let refs: Vec<&Tensor> = args.iter().collect();
    let jit = jjt_jit::Options {
        threads: b.threads.unwrap_or(0),
        profile: b.profile,
        ..jit_options(b.opts.max_memory)
    };
    let threads = jit.gemm_threads();
    let compiled = jjt_jit::compile_with(&g, jit)?;
    let out = compiled.call(&refs)?;
    let first_ms = start.elapsed().as_secs_f64() * 1e3;
    if let (Some(path), Some(first)) = (&b.output, out.first()) {
        jjt_npy::write_file(path, &first.clone().into_array())
            .map_err(|source| CliError::WriteNpy { path: path.clone(), source })?;
    }
    jjt_jit::take_profile();
    let mut times = Vec::with_capacity(b.reps);
    for _ in 0..b.reps {
        let t = Instant::now();
        let o = compiled.call(&refs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(o);
    }
    times.sort_by(f64::total_cmp);
    let median = if times.is_empty() { f64::NAN } else { times[times.len() / 2] };
    let min = times.first().copied().unwrap_or(f64::NAN);
    let out_ty = out.first().map(|t| t.ty().to_string()).unwrap_or_default();
    outln!(
        "{}: {} -> {out_ty}; first call {first_ms:.3} ms (parse, transforms, compile, run); steady median {median:.4} ms, min {min:.4} ms over {} reps; arena {:.1} MiB; {threads} thread(s)",
        b.model.display(),
        if b.target.wrt.is_empty() {
            "model".to_string()
        } else {
            format!(
                "{} {} {}",
                match b.form {
                    Form::Kernel => "kernel",
                    Form::Apply => "apply",
                },
                b.opts.mode_name(),
                b.opts.strategy_name()
            )
        },
        b.reps,
        compiled.arena_bytes() as f64 / (1 << 20) as f64,
    );
    if b.profile {
        print_profile(&jjt_jit::take_profile(), compiled.step_labels(), b.reps);
    }
    outln!(
        "{{\"median_ms\": {median:.6}, \"min_ms\": {min:.6}, \"first_call_ms\": {first_ms:.3}, \"reps\": {}, \"peak_rss_mb\": {:.1}, \"arena_mb\": {:.3}, \"threads\": {threads}}}",
        b.reps,
        peak_rss_mb(),
        compiled.arena_bytes() as f64 / (1 << 20) as f64
    );
    Ok(())
}

/// The costliest steps of the timed calls: milliseconds per call, share, what the step is.
fn print_profile(totals: &[f64], labels: &[String], reps: usize) {
    const TOP: usize = 12;
    let sum: f64 = totals.iter().sum();
    let mut order: Vec<usize> = (0..totals.len()).collect();
    order.sort_by(|&a, &b| totals[b].total_cmp(&totals[a]));
    outln!(
        "profile: {} steps, {:.4} ms per call in steps; the costliest {}:",
        labels.len(),
        sum * 1e3 / reps as f64,
        TOP.min(order.len())
    );
    for &k in order.iter().take(TOP) {
        let share = if sum > 0.0 { 100.0 * totals[k] / sum } else { 0.0 };
        let label = labels.get(k).map_or("?", String::as_str);
        outln!("  step {k:>4}  {:>10.4} ms  {share:5.1} %  {label}", totals[k] * 1e3 / reps as f64);
    }
}
