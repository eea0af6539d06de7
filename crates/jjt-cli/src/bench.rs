//! `jjt bench`: first-call and steady-state timings of a kernel on random inputs, in one
//! process. The last line printed is one JSON object.

use std::time::Instant;

use jjt_ir::random::Mt19937;
use jjt_ir::{Function, Tensor, TensorType};

use crate::CliError;
use crate::args::{BenchArgs, Format, KernelIo, items};
use crate::bind::{Missing, bind_kernel, bind_some};
use crate::pipeline::{
    jit_options, kernel_graph, load_selecting, optimized, pick_output, throughputs,
};
use jjt_ad::Form;

/// Random values for the input `name` of `f`: uniform in [0, 1), or for an integer input
/// whose values index tables, uniform integers in [0, rows) (`index_rows`: every lookup in
/// range).
fn random(
    rng: &mut Mt19937,
    f: &Function,
    name: &str,
    ty: &TensorType,
) -> Result<Tensor, CliError> {
    let rows = match ty.dtype {
        jjt_ir::DType::I32 => jjt_ir::ops::gather::index_rows(f, name).unwrap_or(1),
        _ => 1,
    };
    let mut v: Vec<f64> = Vec::new();
    v.try_reserve_exact(ty.numel()).map_err(|_| CliError::Alloc(ty.clone()))?;
    v.extend((0..ty.numel()).map(|_| rng.next_f64()));
    if ty.dtype == jjt_ir::DType::I32 {
        v.iter_mut().for_each(|x| *x = (*x * rows as f64).floor());
    }
    Ok(Tensor::from_f64(ty, &v)?)
}

/// Peak resident set size of this process, in MiB (VmHWM).
pub(crate) fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|k| k.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The graph `bench` times and its inputs: the files of `--x1`, `--x2`, `--shared` and
/// `--wrt NAME=FILE` (as `jjt kernel` binds them), random values for the inputs no file gives.
/// The graph to time, its inputs, and what `--strategy auto` chose ([`choice_note`]).
pub(crate) fn inputs(
    b: &BenchArgs,
    f: &Function,
) -> Result<(Function, Vec<Tensor>, Option<String>), CliError> {
    let mut rng = Mt19937::new(b.seed);
    let io = KernelIo {
        model: b.model.clone(),
        wrt: b.target.wrt.clone(),
        x1: b.x1.clone(),
        x2: b.x2.clone(),
        shared: b.target.shared.clone(),
        per_side: b.target.per_side.clone(),
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
            .map(|(p, t)| t.map_or_else(|| random(&mut rng, f, &p.name, &p.ty), Ok))
            .collect::<Result<_, _>>()?;
        return Ok((g, args, None));
    }
    let batch = b.target.batch()?;
    let (spec, bound) = bind_kernel(f, &io, &b.opts, b.form, None, (batch, Missing::Allow))?;
    let (g, choice) = match b.form {
        Form::Kernel => kernel_graph(f, &spec, &b.opts)?,
        Form::Apply => (optimized(&spec.apply(f)?, b.opts.optimizer)?, None),
    };
    let args = bound
        .into_iter()
        .map(|x| {
            let input = x.input.as_deref().unwrap_or(&x.name);
            x.value.map_or_else(|| random(&mut rng, f, input, &x.ty), Ok)
        })
        .collect::<Result<_, _>>()?;
    Ok((g, args, choice))
}

pub(crate) fn run(b: &BenchArgs) -> Result<(), CliError> {
    if b.reps == 0 {
        return Err(CliError::Usage("--reps must be at least 1"));
    }
    if b.threads == Some(0) {
        return Err(CliError::Usage("--threads must be at least 1"));
    }
    let start = Instant::now();
    let one = !b.target.wrt.is_empty();
    let sel = [&b.target.wrt[..], &b.target.shared[..]];
    let f = load_selecting(&b.model, b.opts.precision, &sel)?;
    let f = pick_output(f, b.opts.pick.as_deref(), one)?;
    let note = b.target.check_sides(&f)?;
    let (g, args, choice) = inputs(b, &f)?;
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
    if let Some(path) = &b.output {
        // Every output, as `eval` writes them (a model with several needs an `.npz`).
        crate::output::write_outputs(&g, out.clone(), std::slice::from_ref(path))?;
    }
    jjt_jit::take_profile();
    let mut times = Vec::with_capacity(b.reps);
    // Seconds of each step in each timed call (with --profile).
    let mut steps: Vec<Vec<f64>> = Vec::new();
    for _ in 0..b.reps {
        let t = Instant::now();
        let o = compiled.call(&refs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(o);
        if b.profile {
            steps.push(jjt_jit::take_profile());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = if times.is_empty() { f64::NAN } else { times[times.len() / 2] };
    let min = times.first().copied().unwrap_or(f64::NAN);
    let out_ty = out.iter().map(|t| t.ty().to_string()).collect::<Vec<_>>().join(", ");
    // With a DOT picture on standard output, the text goes to standard error.
    let dot = b.format == Format::Dot;
    let say = |line: String| if dot { eprintln!("{line}") } else { outln!("{line}") };
    say(format!(
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
    ));
    if let Some(c) = choice {
        say(c);
    }
    if b.profile {
        let predicted = jjt_jit::predict_with(&g, &jit, &throughputs()?)?;
        let medians = step_medians(&steps);
        let (_, names) = jjt_ir::text::layout(&g);
        let node_names: Vec<String> = compiled
            .step_nodes()
            .iter()
            .map(|n| n.and_then(|n| names.get(&n).cloned()).unwrap_or_else(|| "(output)".into()))
            .collect();
        if dot {
            let notes =
                profile_notes(&medians, compiled.step_nodes(), compiled.step_labels(), &predicted);
            let o =
                jjt_ir::dot::DotOptions { around: b.around.clone().map(|n| (n, b.depth)), notes };
            outln!("{}", jjt_ir::dot::to_dot_with(&[&g], &o)?.trim_end());
        } else {
            let table = profile_table(&medians, compiled.step_labels(), &node_names, &predicted);
            outln!("{table}");
        }
    } else if dot {
        return Err(CliError::Usage("--format dot draws the profile: add --profile"));
    }
    say(format!(
        "{{\"median_ms\": {median:.6}, \"min_ms\": {min:.6}, \"first_call_ms\": {first_ms:.3}, \"reps\": {}, \"peak_rss_mb\": {:.1}, \"arena_mb\": {:.3}, \"threads\": {threads}}}",
        b.reps,
        peak_rss_mb(),
        compiled.arena_bytes() as f64 / (1 << 20) as f64
    ));
    if let Some(n) = note {
        eprintln!("{n}");
    }
    Ok(())
}

/// The median over calls of each step's seconds (`calls[c][k]`: step `k` of call `c`; a step
/// missing from a call counts 0).
fn step_medians(calls: &[Vec<f64>]) -> Vec<f64> {
    let n = calls.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|k| {
            let mut v: Vec<f64> = calls.iter().map(|c| c.get(k).copied().unwrap_or(0.0)).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

/// Per graph node: its steps' measured time, share of the total and flops as label lines,
/// and the share as the fill weight (the heaviest node fully red).
fn profile_notes(
    measured: &[f64],
    nodes: &[Option<jjt_ir::NodeId>],
    labels: &[String],
    predicted: &jjt_jit::Prediction,
) -> std::collections::HashMap<jjt_ir::NodeId, (String, f64)> {
    let total: f64 = measured.iter().sum();
    let mut per: std::collections::HashMap<jjt_ir::NodeId, (f64, f64, Vec<String>)> =
        std::collections::HashMap::new();
    for (k, node) in nodes.iter().enumerate() {
        let Some(n) = node else { continue };
        let e = per.entry(*n).or_default();
        e.0 += measured.get(k).copied().unwrap_or(0.0);
        e.1 += predicted.steps.get(k).map_or(0.0, |p| 2.0 * p.macs);
        if let Some(how) = labels.get(k).and_then(|l| l.rsplit_once(" (")).map(|(_, h)| h) {
            let how = format!("({how}");
            if !e.2.contains(&how) {
                e.2.push(how);
            }
        }
    }
    let most = per.values().map(|v| v.0).fold(0.0, f64::max);
    per.into_iter()
        .map(|(n, (t, flops, how))| {
            let share = if total > 0.0 { 100.0 * t / total } else { 0.0 };
            let mut text = format!("{:.3} ms ({share:.1}%)", t * 1e3);
            if flops > 0.0 {
                text.push_str(&format!(", {:.3} GFLOP", flops / 1e9));
            }
            for h in how {
                text.push('\n');
                text.push_str(&h);
            }
            (n, (text, if most > 0.0 { t / most } else { 0.0 }))
        })
        .collect()
}

/// Every step of the compiled kernel in execution order: predicted and measured (median)
/// milliseconds per call, the measured rate, what the step is and the graph node it computes,
/// then the totals. Rates are GFLOP/s for contractions (two per multiply-add) and G elements/s
/// (elements written; read, for reductions) for the other steps.
pub(crate) fn profile_table(
    measured: &[f64],
    labels: &[String],
    node_names: &[String],
    predicted: &jjt_jit::Prediction,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let total_measured: f64 = measured.iter().sum();
    let _ = writeln!(
        out,
        "profile: {} steps; rate: GFLOP/s (2 per multiply-add) for contractions, G elements/s otherwise",
        labels.len()
    );
    let _ = writeln!(
        out,
        "  {:>5}  {:>10}  {:>10}  {:>5}  {:>9}  step",
        "step", "pred ms", "median ms", "share", "rate"
    );
    for (k, label) in labels.iter().enumerate() {
        let m = measured.get(k).copied().unwrap_or(0.0);
        let p = predicted.steps.get(k);
        let share = if total_measured > 0.0 { 100.0 * m / total_measured } else { 0.0 };
        let rate = p.map_or(0.0, |p| p.giga_rate(m));
        let unit = match p {
            Some(p) if p.kind.is_contraction() => "GFLOP/s",
            _ => "Gelem/s",
        };
        let node = node_names.get(k).map_or("", String::as_str);
        let _ = writeln!(
            out,
            "  {k:>5}  {:>10.4}  {:>10.4}  {share:>4.1}%  {rate:>9.3} {unit}  {label}  [{node}]",
            p.map_or(0.0, |p| p.seconds * 1e3),
            m * 1e3,
        );
    }
    let flops: f64 = predicted.steps.iter().map(|s| 2.0 * s.macs).sum();
    let _ = write!(
        out,
        "  total  {:>10.4}  {:>10.4}  100.0%  {:>9.3} GFLOP/s overall (contractions' FLOPs over the measured total)",
        predicted.seconds() * 1e3,
        total_measured * 1e3,
        if total_measured > 0.0 { flops / total_measured / 1e9 } else { 0.0 },
    );
    out
}
