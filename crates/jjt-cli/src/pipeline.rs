//! From a model file to the graph that runs: promotion, the graphs of each stage, the optimiser
//! and the backends.

use std::path::Path;

use jjt_ad::KernelSpec;
use jjt_ir::text::parse_file;
use jjt_ir::{Function, Tensor, interp};

use crate::CliError;
use crate::args::{Backend, KernelOpts, Optimizer, Precision, Stage, StrategyArg, Target};

/// Parse a model file, promoted to f64 with [`Precision::F64`].
pub(crate) fn load(model: &Path, precision: Precision) -> Result<Function, CliError> {
    let f = parse_file(model)?;
    Ok(match precision {
        Precision::AsModel => f,
        Precision::F64 => jjt_ad::promote_f64(&f)?,
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
            let mut spec = target.spec(opts)?;
            if matches!(opts.strategy, StrategyArg::Auto) {
                spec.strategy = choose(&spec, f, opts)?.strategy;
            }
            vec![spec.kernel(f)?]
        }
        Stage::Apply => {
            need("apply")?;
            vec![target.spec(opts)?.apply(f)?]
        }
    })
}

/// The kernel to run: with `--strategy auto` the optimised candidate predicted fastest; otherwise the
/// requested strategy, optimised unless `--no-opt`.
pub(crate) fn kernel_graph(
    f: &Function,
    spec: &KernelSpec,
    opts: &KernelOpts,
) -> Result<Function, CliError> {
    if matches!(opts.strategy, StrategyArg::Auto) && opts.optimizer == Optimizer::Run {
        return Ok(choose(spec, f, opts)?.kernel);
    }
    optimized(&spec.kernel(f)?, opts.optimizer)
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
