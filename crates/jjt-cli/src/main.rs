//! `jjt`: inspect, differentiate and run jjt models from the command line.
//!
//! - `jjt dump MODEL [--stage traced|jvp|linearize|vjp|kernel|apply] [--format text|dot]`
//! - `jjt eval MODEL --in NAME=FILE.npy ... [-o OUT.npy]`
//! - `jjt kernel MODEL --wrt NAMES --x1 NAME=FILE --x2 NAME=FILE [--shared NAME=FILE] -o K.npy`
//! - `jjt apply ... --v V.npy -o KV.npy`
//! - `jjt check MODEL --wrt NAMES`
//!
//! Errors print one message (with line:col and a caret for model text) and exit with status 1;
//! usage errors exit with status 2.

#![forbid(unsafe_code)]

/// `println!` for results: a closed pipe (`jjt ... | head`) ends the program quietly, as Unix
/// tools do, instead of panicking (see [`write_out`]).
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::write_out(format_args!($($t)*), true)
    };
}

mod bench;
mod bind;
mod check;
mod progress;
mod tiles;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jjt_ad::{AdError, Examples, KernelSpec, Mode, Strategy};
use jjt_ir::text::{ModelFileError, parse_file};
use jjt_ir::{EvalError, Function, Tensor, interp};

#[derive(Parser, Debug)]
#[command(
    name = "jjt",
    version,
    about = "A compiler for products of Jacobians: K = J(p1)·J(p2)ᵀ, and K·v without building J"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a model's graph at a pipeline stage, as canonical text or Graphviz DOT.
    Dump {
        /// The model file (jjt text format, see docs/format.md).
        model: PathBuf,
        /// Which stage to print.
        #[arg(long, value_enum, default_value_t = Stage::Traced)]
        stage: Stage,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Inputs to differentiate, comma-separated (stages other than `traced`).
        #[arg(long, value_delimiter = ',')]
        wrt: Vec<String>,
        /// Inputs shared by both sides of the kernel, comma-separated (`kernel`, `apply`).
        #[arg(long, value_delimiter = ',')]
        shared: Vec<String>,
        /// Example batch sizes B1,B2 of the per-side inputs (`kernel`, `apply`).
        #[arg(long, value_delimiter = ',', value_name = "B1,B2")]
        batch: Option<Vec<usize>>,
        /// For `--stage optimized`, `clif` and `asm`: which graph (default: `kernel` with
        /// `--wrt`, else the model).
        #[arg(long, value_enum)]
        of: Option<Stage>,
        /// With `--stage optimized`: also print the graph after this pass.
        #[arg(long, value_enum, value_name = "PASS")]
        print_after: Option<jjt_opt::Pass>,
        /// With `--stage optimized`: print per-pass time and rule hits.
        #[arg(long)]
        stats: bool,
        #[command(flatten)]
        opts: KernelOpts,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Evaluate a model on .npy inputs.
    Eval {
        /// The model file.
        model: PathBuf,
        /// An input as NAME=FILE.npy (repeat once per input); a bare FILE.npy is accepted
        /// when the model has exactly one input.
        #[arg(long = "in", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        /// Write the result to this .npy file; without it the values are printed.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// How to evaluate.
        #[arg(long, value_enum, default_value_t = Backend::Jit)]
        backend: Backend,
    },
    /// Compute K = J(p1)·J(p2)ᵀ on .npy inputs.
    Kernel {
        #[command(flatten)]
        io: KernelIo,
        #[command(flatten)]
        opts: KernelOpts,
        #[command(flatten)]
        tiles: tiles::TileOpts,
        /// Write K to this .npy file; without it the values are printed.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Assemble kernel blocks (written by `jjt kernel --rows A:B --cols C:D`) into one kernel.
    Merge {
        /// Blocks as A:B,C:D=FILE.npy (rows A..B of side 1, columns C..D of side 2).
        #[arg(required = true, value_name = "A:B,C:D=FILE.npy")]
        blocks: Vec<String>,
        /// Where to write the whole kernel.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Compute K·v = J(p1)·J(p2)ᵀ·v without building J or K.
    Apply {
        #[command(flatten)]
        io: KernelIo,
        #[command(flatten)]
        opts: KernelOpts,
        /// The vector (batched: [B2, out...]) K is applied to.
        #[arg(long, value_name = "V.npy")]
        v: PathBuf,
        /// Write K·v to this .npy file; without it the values are printed.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Time a kernel (or, without --wrt, the model itself) on random inputs: the first call
    /// (parse, transforms, compile, first run) and the steady state. The last line is JSON.
    Bench {
        /// The model file.
        model: PathBuf,
        /// Inputs J is taken with respect to (none: time the model).
        #[arg(long, value_delimiter = ',')]
        wrt: Vec<String>,
        /// Inputs shared by both sides, comma-separated.
        #[arg(long, value_delimiter = ',')]
        shared: Vec<String>,
        /// Example batch sizes B1,B2 of the per-side inputs.
        #[arg(long, value_delimiter = ',', value_name = "B1,B2")]
        batch: Option<Vec<usize>>,
        #[command(flatten)]
        opts: KernelOpts,
        /// Timed repetitions after the first call.
        #[arg(long, default_value_t = 20)]
        reps: usize,
        /// Time the operator form (K·v) instead of K.
        #[arg(long)]
        apply: bool,
        /// Seed of the random inputs (uniform in [0, 1)).
        #[arg(long, default_value_t = 0)]
        seed: u32,
        /// Threads one call may use for its large matrix products and elementwise steps
        /// (default: all cores; 1: the calling thread only).
        #[arg(long)]
        threads: Option<usize>,
        /// Also time every step of the compiled kernel and print the costliest, with what each
        /// step is and how it was compiled (before the JSON line).
        #[arg(long)]
        profile: bool,
    },
    /// Check a model's derivatives: JVPs against central finite differences and VJPs by the
    /// dot-product test, at random points, in f64. Exits with status 1 if a check fails.
    Check {
        /// The model file.
        model: PathBuf,
        /// Inputs to differentiate, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        wrt: Vec<String>,
        /// Fix inputs to these values (NAME=FILE.npy); the others are drawn uniformly from
        /// [lo, hi).
        #[arg(long = "in", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        /// Number of random points.
        #[arg(long, default_value_t = 3)]
        points: usize,
        /// Seed of the random points.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Range the random inputs are drawn from.
        #[arg(long, value_delimiter = ',', default_values_t = [0.1, 1.0], value_name = "LO,HI")]
        range: Vec<f64>,
    },
}

/// The model and the per-side and shared inputs of a kernel.
#[derive(Args, Debug)]
struct KernelIo {
    /// The model file.
    model: PathBuf,
    /// Inputs J is taken with respect to, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    wrt: Vec<String>,
    /// A side-1 input as NAME=FILE.npy (repeat per input; a bare FILE.npy when the model
    /// has one per-side input). One extra leading axis makes it a batch of examples.
    #[arg(long, value_name = "NAME=FILE.npy")]
    x1: Vec<String>,
    /// A side-2 input, like --x1.
    #[arg(long, value_name = "NAME=FILE.npy")]
    x2: Vec<String>,
    /// An input shared by both sides (e.g. parameters) as NAME=FILE.npy.
    #[arg(long, value_name = "NAME=FILE.npy")]
    shared: Vec<String>,
}

/// How the kernel is computed and reduced.
#[derive(Args, Debug)]
pub(crate) struct KernelOpts {
    /// Output mode: all output pairs, their trace, or their diagonal.
    #[arg(long, value_enum, default_value_t = ModeArg::Full)]
    mode: ModeArg,
    /// For batched inputs: every example pair, or only b1 = b2.
    #[arg(long, value_enum, default_value_t = ExamplesArg::All)]
    examples: ExamplesArg,
    /// How K is built (auto: the cheapest by the cost model).
    #[arg(long, value_enum, default_value_t = StrategyArg::Auto)]
    strategy: StrategyArg,
    /// Compute in f64 (an f32 model and its inputs are promoted).
    #[arg(long)]
    f64: bool,
    /// How to evaluate.
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    backend: Backend,
    /// Skip the optimiser (contraction reordering, constant folding) before compiling.
    #[arg(long)]
    no_opt: bool,
    /// Memory budget of the compiled kernel (constants, scratch, any one value), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 8192,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_memory: u64,
}

/// JIT options for a memory budget in MiB.
pub(crate) fn jit_options(max_mib: u64) -> jjt_jit::Options {
    jjt_jit::Options { max_bytes: max_mib.saturating_mul(1 << 20), ..Default::default() }
}

/// Pipeline stages `dump` can print.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Stage {
    /// The graph as parsed, before any transform.
    Traced,
    /// The JVP: (inputs, tangents of wrt) -> (outputs, output tangents).
    Jvp,
    /// The primal function (with residuals) and the linear function of the tangents.
    Linearize,
    /// The VJP: (inputs, output cotangent) -> cotangents of wrt.
    Vjp,
    /// The kernel K(p1, p2).
    Kernel,
    /// The operator v -> K(p1, p2)·v.
    Apply,
    /// The kernel (or the graph selected by `--of`) after the optimiser, with its cost.
    Optimized,
    /// The optimised kernel split for repeated calls: `prepare` (what depends on the shared
    /// inputs alone, run once) and the per-call function (what `jjt kernel` runs per tile).
    Staged,
    /// Cranelift IR of the graph selected by `--of`.
    Clif,
    /// Machine code (Cranelift's listing) of the graph selected by `--of`.
    Asm,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Canonical text (parses back to the same graph).
    Text,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// Native code compiled with Cranelift.
    Jit,
    /// The reference interpreter (slow; the oracle the JIT is tested against).
    Interp,
}

impl Backend {
    fn run(self, f: &Function, args: &[Tensor], max_mib: u64) -> Result<Tensor, CliError> {
        match self {
            Backend::Interp => Ok(interp::eval(f, args)?),
            Backend::Jit => {
                let c = jjt_jit::compile_with(f, jit_options(max_mib))?;
                let refs: Vec<&Tensor> = args.iter().collect();
                c.call(&refs)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| CliError::Batch("the function has no output".into()))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Full,
    Trace,
    Diagonal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExamplesArg {
    All,
    Diagonal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StrategyArg {
    /// Build with every strategy, optimise each, keep the cheapest by the cost model.
    Auto,
    /// jvp∘vjp over the output basis: builds J(p2) by VJPs, then applies JVPs at p1.
    Ntvp,
    /// Jacobian contraction: build J1 and J2, contract them.
    Jc,
}

impl KernelOpts {
    fn mode_name(&self) -> &'static str {
        match self.mode {
            ModeArg::Full => "full",
            ModeArg::Trace => "trace",
            ModeArg::Diagonal => "diagonal",
        }
    }

    fn strategy_name(&self) -> &'static str {
        match self.strategy {
            StrategyArg::Auto => "auto",
            StrategyArg::Ntvp => "ntvp",
            StrategyArg::Jc => "jc",
        }
    }

    fn spec(&self, wrt: &[String], shared: &[String], batch: Option<(usize, usize)>) -> KernelSpec {
        KernelSpec {
            wrt: wrt.to_vec(),
            shared: shared.to_vec(),
            mode: match self.mode {
                ModeArg::Full => Mode::Full,
                ModeArg::Trace => Mode::Trace,
                ModeArg::Diagonal => Mode::Diagonal,
            },
            examples: match self.examples {
                ExamplesArg::All => Examples::All,
                ExamplesArg::Diagonal => Examples::Diagonal,
            },
            strategy: match self.strategy {
                StrategyArg::Ntvp | StrategyArg::Auto => Strategy::Ntvp,
                StrategyArg::Jc => Strategy::Jc,
            },
            batch,
        }
    }
}

/// Everything that can go wrong, each with a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Model(#[from] ModelFileError),
    #[error("{0}")]
    Ad(#[from] AdError),
    #[error("cannot read input `{name}` from {}: {source}", path.display())]
    ReadInput { name: String, path: PathBuf, source: jjt_npy::NpyError },
    #[error("`{flag} {arg}`: expected NAME=FILE.npy{}", if *single { "" } else { " (a bare FILE.npy is only accepted when exactly one input can be meant)" })]
    BadInArg { flag: &'static str, arg: String, single: bool },
    #[error("`{flag} {name}=...`: {reason}; the model's inputs are: {known}")]
    UnknownInput { flag: &'static str, name: String, reason: String, known: String },
    #[error("input `{0}` is given twice")]
    DuplicateInput(String),
    #[error("missing input `{name}` of type {ty}: pass {flag} {name}=FILE.npy")]
    MissingInput { flag: &'static str, name: String, ty: String },
    #[error("input `{name}` ({}): expected {expected}, the file holds {actual}{hint}", path.display())]
    InputType { name: String, path: PathBuf, expected: String, actual: String, hint: String },
    #[error("{0}")]
    Batch(String),
    #[error("--stage {stage} needs --wrt NAMES (the inputs to differentiate)")]
    NeedWrt { stage: &'static str },
    #[error("evaluation failed: {0}")]
    Eval(#[from] EvalError),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    WriteNpy { path: PathBuf, source: jjt_npy::NpyError },
    #[error("{0}")]
    CheckFailed(String),
    #[error("{0}")]
    Jit(#[from] jjt_jit::JitError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let CliError::Jit(jjt_jit::JitError::TooLarge { .. }) = e {
                eprintln!(
                    "hint: raise --max-memory MIB, or compute K in blocks with \
                     `jjt kernel ... --rows A:B --cols C:D` and `jjt merge` (docs/scale.md)"
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// The sizes of `--batch B1,B2`.
fn batch_sizes(batch: Option<&[usize]>) -> Result<Option<(usize, usize)>, CliError> {
    match batch {
        None => Ok(None),
        Some(&[b1, b2]) => Ok(Some((b1, b2))),
        Some(_) => Err(CliError::Batch("--batch takes two sizes: --batch B1,B2".into())),
    }
}

fn load(model: &Path, f64: bool) -> Result<Function, CliError> {
    let f = parse_file(model)?;
    Ok(if f64 { jjt_ad::promote_f64(&f)? } else { f })
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Dump {
            model,
            stage,
            format,
            wrt,
            shared,
            batch,
            of,
            print_after,
            stats,
            opts,
            output,
        } => {
            let f = load(&model, opts.f64)?;
            let batch = batch_sizes(batch.as_deref())?;
            let of = of.unwrap_or(if wrt.is_empty() { Stage::Traced } else { Stage::Kernel });
            if matches!(
                of,
                Stage::Clif | Stage::Asm | Stage::Linearize | Stage::Optimized | Stage::Staged
            ) {
                return Err(CliError::Batch("--of takes traced, jvp, vjp, kernel or apply".into()));
            }
            if matches!(stage, Stage::Optimized) {
                let g = stage_graphs(&f, of, &wrt, &shared, batch, &opts)?.remove(0);
                let mut text = String::new();
                let (opt, reports) = jjt_opt::optimize(&g, |pass, h| {
                    if print_after == Some(pass) {
                        text.push_str(&format!("# after {pass}\n{}\n", render(h, format)));
                    }
                })
                .map_err(|e| CliError::Batch(e.to_string()))?;
                let mut out = format!(
                    "# before: {}\n# after:  {}\n",
                    jjt_opt::cost::cost(&g),
                    jjt_opt::cost::cost(&opt)
                );
                if stats {
                    for r in &reports {
                        out.push_str(&format!(
                            "# pass {:8} {:8.3} ms  {} nodes  {}\n",
                            r.pass, r.ms, r.nodes, r.stats
                        ));
                    }
                }
                out.push_str(&text);
                out.push_str(&render(&opt, format));
                return emit(&out, output.as_deref());
            }
            if matches!(stage, Stage::Staged) {
                let g = optimized(
                    &stage_graphs(&f, Stage::Kernel, &wrt, &shared, batch, &opts)?.remove(0),
                    opts.no_opt,
                )?;
                let spec = opts.spec(&wrt, &shared, batch);
                let flags: Vec<bool> = spec
                    .layout(&f, jjt_ad::Form::Kernel)?
                    .iter()
                    .map(|(_, role, _)| matches!(role, jjt_ad::Role::Shared(_)))
                    .collect();
                let st = jjt_opt::stage::stage(&g, &flags)
                    .map_err(|e| CliError::Batch(format!("cannot stage the kernel: {e}")))?;
                let mut out = match &st.prepare {
                    Some(p) => format!(
                        "# prepare: run once per value of the shared inputs\n{}\n",
                        render(p, format)
                    ),
                    None => "# prepare: nothing depends on the shared inputs alone\n".to_string(),
                };
                out.push_str("# per call: takes the prepared values as its last inputs\n");
                out.push_str(&render(&st.call, format));
                return emit(&out, output.as_deref());
            }
            if matches!(stage, Stage::Clif | Stage::Asm) {
                let g = optimized(
                    &stage_graphs(&f, of, &wrt, &shared, batch, &opts)?.remove(0),
                    opts.no_opt,
                )?;
                let keep = jjt_jit::Options {
                    keep_clif: matches!(stage, Stage::Clif),
                    keep_asm: matches!(stage, Stage::Asm),
                    ..Default::default()
                };
                let c = jjt_jit::compile_with(&g, keep)?;
                let text = c.clif().or(c.asm()).unwrap_or_default().to_string();
                return emit(&text, output.as_deref());
            }
            let graphs = stage_graphs(&f, stage, &wrt, &shared, batch, &opts)?;
            let text: Vec<String> = graphs.iter().map(|g| render(g, format)).collect();
            emit(&text.join("\n"), output.as_deref())
        }
        Command::Bench { model, wrt, shared, batch, opts, reps, apply, seed, threads, profile } => {
            let batch = batch_sizes(batch.as_deref())?;
            bench::run(&bench::Bench {
                model: &model,
                wrt: &wrt,
                shared: &shared,
                batch,
                opts: &opts,
                reps,
                apply,
                seed,
                threads,
                profile,
            })
        }
        Command::Eval { model, inputs, output, backend } => {
            let f = parse_file(&model)?;
            let args = bind::bind_named(&f, &inputs, "--in", false)?;
            write_result(backend.run(&f, &args, 8192)?, output)
        }
        Command::Kernel { io, opts, tiles, output } => {
            let f = load(&io.model, opts.f64)?;
            let (spec, args) = bind::bind_kernel(&f, &io, &opts, None)?;
            let k = match (spec.batch, spec.examples, opts.backend) {
                (Some(batch), Examples::All, Backend::Jit) => {
                    tiles::run(&f, &spec, &opts, &tiles, batch, &args)?
                }
                _ => {
                    if tiles.rows.is_some() || tiles.cols.is_some() {
                        return Err(CliError::Batch(
                            "--rows/--cols need batched per-side inputs, --examples all and --backend jit".into(),
                        ));
                    }
                    opts.backend.run(&kernel_graph(&f, &spec, &opts)?, &args, opts.max_memory)?
                }
            };
            write_result(k, output)
        }
        Command::Merge { blocks, output } => {
            let k = tiles::merge(&blocks)?;
            jjt_npy::write_file(&output, &k.into_array())
                .map_err(|source| CliError::WriteNpy { path: output, source })
        }
        Command::Apply { io, opts, v, output } => {
            let f = load(&io.model, opts.f64)?;
            let (spec, args) = bind::bind_kernel(&f, &io, &opts, Some(&v))?;
            let a = optimized(&spec.apply(&f)?, opts.no_opt)?;
            write_result(opts.backend.run(&a, &args, opts.max_memory)?, output)
        }
        Command::Check { model, wrt, inputs, points, seed, range } => {
            let f = jjt_ad::promote_f64(&parse_file(&model)?)?;
            let &[lo, hi] = range.as_slice() else {
                return Err(CliError::Batch("--range takes two numbers: --range LO,HI".into()));
            };
            check::run(&f, &wrt, &inputs, points, seed, (lo, hi))
        }
    }
}

/// The graphs of a stage (two for `linearize`).
pub(crate) fn stage_graphs(
    f: &Function,
    stage: Stage,
    wrt: &[String],
    shared: &[String],
    batch: Option<(usize, usize)>,
    opts: &KernelOpts,
) -> Result<Vec<Function>, CliError> {
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
            let mut spec = opts.spec(wrt, shared, batch);
            if matches!(opts.strategy, StrategyArg::Auto) {
                spec.strategy = jjt_opt::auto::choose(&spec, f)
                    .map_err(|e| CliError::Batch(e.to_string()))?
                    .strategy;
            }
            vec![spec.kernel(f)?]
        }
        Stage::Apply => {
            need("apply")?;
            vec![opts.spec(wrt, shared, batch).apply(f)?]
        }
    })
}

fn render(g: &Function, format: Format) -> String {
    match format {
        Format::Text => jjt_ir::text::print(g),
        Format::Dot => jjt_ir::dot::to_dot(g),
    }
}

/// The kernel to run: with `--strategy auto` the cheapest optimised candidate; otherwise the
/// requested strategy, optimised unless `--no-opt`.
pub(crate) fn kernel_graph(
    f: &Function,
    spec: &KernelSpec,
    opts: &KernelOpts,
) -> Result<Function, CliError> {
    if matches!(opts.strategy, StrategyArg::Auto) && !opts.no_opt {
        return jjt_opt::auto::choose(spec, f)
            .map(|c| c.kernel)
            .map_err(|e| CliError::Batch(e.to_string()));
    }
    optimized(&spec.kernel(f)?, opts.no_opt)
}

/// The graph after the optimiser (unless `--no-opt`).
pub(crate) fn optimized(g: &Function, no_opt: bool) -> Result<Function, CliError> {
    if no_opt {
        return Ok(g.clone());
    }
    jjt_opt::optimize(g, |_, _| {}).map(|(h, _)| h).map_err(|e| CliError::Batch(e.to_string()))
}

fn write_result(y: Tensor, output: Option<PathBuf>) -> Result<(), CliError> {
    match output {
        Some(path) => jjt_npy::write_file(&path, &y.into_array())
            .map_err(|source| CliError::WriteNpy { path, source }),
        None => emit(&format_tensor(&y), None),
    }
}

/// Write to standard output (and a newline if `newline`). A reader that has gone away (a
/// closed pipe) ends the program with status 0; another write error is reported and ends it
/// with status 1.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| if newline { out.write_all(b"\n") } else { Ok(()) })
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

fn emit(text: &str, output: Option<&Path>) -> Result<(), CliError> {
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|source| CliError::Write { path: path.to_path_buf(), source }),
        None => {
            write_out(format_args!("{text}"), false);
            Ok(())
        }
    }
}

/// A tensor as text: its type, then the values, one line per last-axis row.
fn format_tensor(t: &Tensor) -> String {
    let ty = t.ty();
    let v = t.to_f64_vec();
    let width = ty.shape.dims().last().copied().unwrap_or(1).max(1);
    let mut out = format!("{ty}\n");
    for row in v.chunks(width) {
        let cells: Vec<String> =
            row.iter().map(|&x| jjt_ir::ops::constant::fmt_value(x, ty.dtype)).collect();
        out.push_str(&cells.join(" "));
        out.push('\n');
    }
    out
}
