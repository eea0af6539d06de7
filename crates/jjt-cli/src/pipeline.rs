//! From a model file to the graph that runs: promotion, the graphs of each stage, the optimiser
//! and the backends.

use std::path::Path;

use jjt_ad::KernelSpec;
use jjt_import::load_with as load_model;
use jjt_ir::{Function, Tensor, interp};

use crate::CliError;
use crate::args::{Backend, KernelOpts, Optimizer, Precision, Stage, StrategyArg, Target};

/// Parse a model file, promoted to f64 with [`Precision::F64`].
#[cfg(test)]
pub(crate) fn load(model: &Path, precision: Precision) -> Result<Function, CliError> {
    load_selecting(model, precision, &[])
}

/// [`load`], where the ONNX initializers that an item of `selectors` names (a name, or a glob
/// pattern for initializers of rank ≥ 1, as given to `--wrt`, `--shared` or `--in`) become
/// inputs, their values the
/// defaults that [`crate::bind`] uses when no file gives one; the other initializers are
/// constants.
pub(crate) fn load_selecting(
    model: &Path,
    precision: Precision,
    selectors: &[&[String]],
) -> Result<Function, CliError> {
    // Names only (the flags' own parsers report malformed items later, with their messages).
    let names: Vec<String> = selectors
        .iter()
        .flat_map(|raw| raw.iter())
        .flat_map(|r| r.split(','))
        .filter_map(|item| {
            let name = item.split_once('=').map_or(item, |(n, _)| n).trim();
            (!name.is_empty() && !name.ends_with(".npz")).then(|| name.to_string())
        })
        .collect();
    // A pattern skips scalar initializers: exporters store the constants of the code (a
    // 1/√d scale) as rank-0 initializers, and they are not weights. A name selects anything.
    let select = |n: &str, dims: &[usize]| {
        names
            .iter()
            .any(|p| p == n || (p.contains(['*', '?']) && !dims.is_empty() && jjt_ad::glob(p, n)))
    };
    let loaded = load_model(model, &select)?;
    crate::bind::set_defaults(loaded.defaults);
    let f = loaded.function;
    Ok(match precision {
        Precision::AsModel => f,
        Precision::F64 => jjt_ad::promote_f64(&f)?,
    })
}

/// The outputs of `f` as `0: h, 1: y` for messages.
pub(crate) fn list_outputs(f: &Function) -> String {
    let names = f.output_names();
    let each = names.iter().enumerate().map(|(k, n)| {
        if *n == k.to_string() { format!("{k} (unnamed)") } else { format!("{k}: {n}") }
    });
    each.collect::<Vec<_>>().join(", ")
}

/// The function of the output `pick` names (a name from [`Function::output_names`] or a
/// position). Without `pick`, `f` itself, unless `required` and `f` has several outputs: then
/// an error listing them (differentiating needs one).
pub(crate) fn pick_output(
    f: Function,
    pick: Option<&str>,
    required: bool,
) -> Result<Function, CliError> {
    let names = f.output_names();
    let Some(p) = pick else {
        if required && names.len() > 1 {
            return Err(CliError::AmbiguousOutput {
                count: names.len(),
                outputs: list_outputs(&f),
            });
        }
        return Ok(f);
    };
    let p = p.trim();
    let k = names.iter().position(|n| n == p).or_else(|| p.parse::<usize>().ok());
    k.and_then(|k| f.with_output(k)).ok_or_else(|| {
        // `--output` picks an output; a file is written with `-o`/`--out`.
        let file = p.contains('.') || p.contains('/');
        let hint = if file { "; to write a file, use -o/--out FILE" } else { "" };
        CliError::NoSuchOutput { given: p.to_string(), outputs: list_outputs(&f), hint }
    })
}

/// The throughputs the backend's cost model prices steps with: the committed measurements
/// ([`jjt_jit::Throughputs::MEASURED`]), or, opt-in, the file named by the environment variable
/// `JJT_THROUGHPUTS` (the output of `cargo run --release -p jjt-jit --example calibrate` on
/// this host). Without the variable every prediction, and so `auto`'s choice, is the same on
/// every machine.
pub(crate) fn throughputs() -> Result<jjt_jit::Throughputs, CliError> {
    let Some(path) = std::env::var_os("JJT_THROUGHPUTS") else {
        return Ok(jjt_jit::Throughputs::MEASURED);
    };
    let path = std::path::PathBuf::from(path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Throughputs { path: path.clone(), reason: e.to_string() })?;
    jjt_jit::Throughputs::parse(&text).map_err(|reason| CliError::Throughputs { path, reason })
}

/// `--strategy auto`: every candidate optimised, the one the backend predicts fastest (with
/// the JIT options of `opts`) kept.
pub(crate) fn choose(
    spec: &KernelSpec,
    f: &Function,
    opts: &KernelOpts,
) -> Result<jjt_opt::auto::Choice, CliError> {
    let t = throughputs()?;
    let jit = jit_options(opts.max_memory);
    let price =
        |g: &Function| jjt_jit::predict_with(g, &jit, &t).map_or(f64::INFINITY, |p| p.seconds());
    Ok(jjt_opt::auto::choose_with(spec, f, &price)?)
}

/// JIT options for a memory budget in MiB.
pub(crate) fn jit_options(max_mib: u64) -> jjt_jit::Options {
    jjt_jit::Options { max_bytes: max_mib.saturating_mul(1 << 20), ..Default::default() }
}

impl Backend {
    /// Every output of `f` on `args`.
    pub(crate) fn run_all(
        self,
        f: &Function,
        args: &[Tensor],
        max_mib: u64,
    ) -> Result<Vec<Tensor>, CliError> {
        match self {
            Backend::Interp => Ok(interp::eval_outputs(f, args)?),
            Backend::Jit => {
                let c = jjt_jit::compile_with(f, jit_options(max_mib))?;
                let refs: Vec<&Tensor> = args.iter().collect();
                Ok(c.call(&refs)?)
            }
        }
    }

    /// The first output of `f` on `args` (the only one of a kernel).
    pub(crate) fn run(
        self,
        f: &Function,
        args: &[Tensor],
        max_mib: u64,
    ) -> Result<Tensor, CliError> {
        match self {
            Backend::Interp => Ok(interp::eval(f, args)?),
            Backend::Jit => {
                let c = jjt_jit::compile_with(f, jit_options(max_mib))?;
                let refs: Vec<&Tensor> = args.iter().collect();
                c.call(&refs)?.into_iter().next().ok_or(CliError::NoOutput)
            }
        }
    }
}

/// The graphs of a stage (two for `linearize`).
pub(crate) fn stage_graphs(
    f: &Function,
    stage: Stage,
    target: &Target,
    opts: &KernelOpts,
) -> Result<Vec<Function>, CliError> {
    let (wrt, _) = target.names_only()?;
    let wrt = &wrt;
    let need = |name: &'static str| {
        if wrt.is_empty() { Err(CliError::NeedWrt { stage: name }) } else { Ok(()) }
    };
    Ok(match stage {
        Stage::Traced | Stage::Clif | Stage::Asm | Stage::Optimized | Stage::Staged => {
            vec![f.clone()]
        }
        Stage::Jvp => {
            need("jvp")?;
            vec![jjt_ad::jvp(f, wrt)?]
        }
        Stage::Linearize => {
            need("linearize")?;
            let l = jjt_ad::linearize(f, wrt)?;
            vec![l.primal, l.linear]
        }
        Stage::Vjp => {
            need("vjp")?;
            vec![jjt_ad::vjp(f, wrt)?]
        }
        Stage::Kernel => {
            need("kernel")?;
            let mut spec = target.spec(f, opts)?;
            if matches!(opts.strategy, StrategyArg::Auto) {
                spec.strategy = choose(&spec, f, opts)?.strategy;
            }
            vec![spec.kernel(f)?]
        }
        Stage::Apply => {
            need("apply")?;
            vec![target.spec(f, opts)?.apply(f)?]
        }
    })
}

/// The kernel to run: with `--strategy auto` the optimised candidate predicted fastest; otherwise the
/// requested strategy, optimised unless `--no-opt`.
/// With `--strategy auto`, also what it chose among which candidates ([`choice_note`]).
pub(crate) fn kernel_graph(
    f: &Function,
    spec: &KernelSpec,
    opts: &KernelOpts,
) -> Result<(Function, Option<String>), CliError> {
    if matches!(opts.strategy, StrategyArg::Auto) && opts.optimizer == Optimizer::Run {
        let choice = choose(spec, f, opts)?;
        let note = choice_note(&choice);
        return Ok((choice.kernel, Some(note)));
    }
    Ok((optimized(&spec.kernel(f)?, opts.optimizer)?, None))
}

/// `strategy auto: jc (predicted per call: ntvp 3.9310 ms, jc 0.6726 ms)`.
pub(crate) fn choice_note(c: &jjt_opt::auto::Choice) -> String {
    let name = |s: jjt_ad::Strategy| match s {
        jjt_ad::Strategy::Ntvp => "ntvp",
        jjt_ad::Strategy::Jc => "jc",
    };
    let each: Vec<String> = c
        .candidates
        .iter()
        .map(|k| format!("{} {:.4} ms", name(k.strategy), k.price * 1e3))
        .collect();
    format!("strategy auto: {} (predicted per call: {})", name(c.strategy), each.join(", "))
}

/// The graph after the optimiser (unless `--no-opt`).
pub(crate) fn optimized(g: &Function, optimizer: Optimizer) -> Result<Function, CliError> {
    match optimizer {
        Optimizer::Skip => Ok(g.clone()),
        Optimizer::Run => {
            jjt_opt::optimize(g, |_, _| {}).map(|(h, _)| h).map_err(CliError::Optimize)
        }
    }
}
