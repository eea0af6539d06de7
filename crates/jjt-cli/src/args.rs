//! The command line: subcommands, their flags and the value types of those flags.

use std::path::PathBuf;

use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use jjt_ad::{Examples, Form, KernelSpec, Mode, Strategy};

use crate::CliError;

#[derive(Parser, Debug)]
#[command(
    name = "jjt",
    version,
    about = "A compiler for products of Jacobians: K = J(p1)·J(p2)ᵀ, and K·v without building J"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Print a model's graph at a pipeline stage, as canonical text or Graphviz DOT.
    Dump(DumpArgs),
    /// Evaluate a model on .npy inputs.
    Eval {
        /// The model file.
        model: PathBuf,
        /// An input as NAME=FILE.npy (repeat once per input); a bare FILE.npy is accepted
        /// when the model has exactly one input.
        #[arg(long = "in", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        /// Write the outputs to .npy files, one `-o` per output in order, or all of them to
        /// one `.npz` archive (named after the outputs); without it the values are printed.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        output: Vec<PathBuf>,
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
        tiles: crate::tiles::TileOpts,
        /// Write K to this .npy file; without it the values are printed.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Convert a model exported from JAX (StableHLO text) or PyTorch (ONNX) to jjt's text
    /// format, its weights in a `.npz` archive beside it that the text names as the inputs'
    /// defaults.
    Import {
        /// The model file.
        model: PathBuf,
        /// The jjt text file to write; the weights go to the same path with `.npz`.
        #[arg(short = 'o', long = "out", value_name = "FILE.jjt")]
        output: PathBuf,
        /// Default values for the model's inputs: the arrays of this archive, by name (JAX
        /// exports hold no weights: `--defaults params.npz` keeps them with the model).
        #[arg(long, value_name = "FILE.npz")]
        defaults: Option<PathBuf>,
        /// The output to keep when the model has several (NAME or INDEX).
        #[arg(long = "output", value_name = "NAME|INDEX")]
        pick: Option<String>,
    },
    /// Assemble kernel blocks into one kernel: a grid directory (`jjt kernel --grid R,C -o
    /// DIR`), checked and streamed block by block, or blocks written by `jjt kernel --rows A:B
    /// --cols C:D`.
    Merge {
        /// A grid directory, or blocks as A:B,C:D=FILE.npy (rows A..B of side 1, columns C..D
        /// of side 2).
        #[arg(required = true, value_name = "DIR | A:B,C:D=FILE.npy")]
        blocks: Vec<String>,
        /// Where to write the whole kernel.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        output: PathBuf,
    },
    /// Print a script that computes a kernel on a Slurm cluster: a job array with one task per
    /// block of `--grid` (`jjt kernel ... --grid R,C --task slurm -o DIR`), then `jjt merge`.
    /// Takes the arguments of `kernel`, plus the job's resources.
    Slurm {
        #[command(flatten)]
        io: KernelIo,
        #[command(flatten)]
        opts: KernelOpts,
        #[command(flatten)]
        slurm: crate::slurm::SlurmOpts,
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
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Time a kernel (or, without --wrt, the model itself) on .npy inputs given as for
    /// `kernel`, random values for those not given: the first call (parse, transforms,
    /// compile, first run) and the steady state. The last line is JSON.
    Bench(BenchArgs),
    /// Check a model's derivatives: JVPs against central finite differences and VJPs by the
    /// dot-product test, at random points, in f64. Exits with status 1 if a check fails.
    Check {
        /// The model file.
        model: PathBuf,
        /// Inputs to differentiate, NAME or NAME=FILE.npy (fixes the input at that file, as
        /// --in does), comma-separated or repeated.
        #[arg(long, value_delimiter = ',', required = true, value_name = "NAME[=FILE.npy]")]
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
        /// Range the random inputs are drawn from (negative bounds as they are: --range -1,1).
        #[arg(long, value_delimiter = ',', default_values_t = [0.1, 1.0], value_name = "LO,HI",
              allow_hyphen_values = true)]
        range: Vec<f64>,
        /// Which output of a model with several to check (its name or position).
        #[arg(long = "output", value_name = "NAME|INDEX")]
        pick: Option<String>,
    },
}

/// The flags of `jjt dump`.
#[derive(Args, Debug)]
pub(crate) struct DumpArgs {
    /// The model file (jjt text format, see docs/format.md).
    pub model: PathBuf,
    /// Which stage to print.
    #[arg(long, value_enum, default_value_t = Stage::Traced)]
    pub stage: Stage,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub target: Target,
    /// For `--stage optimized`, `clif` and `asm`: which graph (default: `kernel` with
    /// `--wrt`, else the model).
    #[arg(long, value_enum)]
    pub of: Option<Stage>,
    /// With `--stage optimized`: also print the graph after this pass.
    #[arg(long, value_enum, value_name = "PASS")]
    pub print_after: Option<jjt_opt::Pass>,
    /// With `--stage optimized`: print per-pass time and rule hits.
    #[arg(long)]
    pub stats: bool,
    /// With `--format dot`: draw only the nodes near this one (its name as the text dump
    /// prints it), at most `--depth` edges away.
    #[arg(long, value_name = "NODE")]
    pub around: Option<String>,
    /// Edges from the `--around` node to draw.
    #[arg(long, default_value_t = 2, value_name = "K")]
    pub depth: usize,
    #[command(flatten)]
    pub opts: KernelOpts,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The flags of `jjt bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// The model file.
    pub model: PathBuf,
    #[command(flatten)]
    pub target: Target,
    /// A side-1 input as NAME=FILE.npy, as for `jjt kernel` (one extra leading axis: a batch
    /// of examples); per-side inputs not given are random.
    #[arg(long, value_name = "NAME=FILE.npy")]
    pub x1: Vec<String>,
    /// A side-2 input, like --x1.
    #[arg(long, value_name = "NAME=FILE.npy")]
    pub x2: Vec<String>,
    #[command(flatten)]
    pub opts: KernelOpts,
    /// Write the result of the first call (K, K·v or the model's output) to this .npy file.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Timed repetitions after the first call.
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
    /// Time the operator form (K·v) instead of K.
    #[arg(long = "apply", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new().map(form_from_apply_flag))]
    pub form: Form,
    /// Seed of the random inputs, those no file gives (uniform in [0, 1)).
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Threads one call may use for its large matrix products and elementwise steps
    /// (default: all cores; 1: the calling thread only).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also time every step of the compiled kernel and print each with its predicted and
    /// measured time, its rate, what it is, how it was compiled and the graph node it
    /// computes (before the JSON line).
    #[arg(long)]
    pub profile: bool,
    /// With `--profile`: `dot` prints the compiled graph as Graphviz DOT instead of the table,
    /// each node coloured by its share of the measured time and labelled with its time and
    /// flops (the summary and the JSON line go to standard error).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// With `--format dot`: draw only the nodes near this one (as `jjt dump --around`).
    #[arg(long, value_name = "NODE")]
    pub around: Option<String>,
    /// Edges from the `--around` node to draw.
    #[arg(long, default_value_t = 2, value_name = "K")]
    pub depth: usize,
}

/// What `dump` and `bench` differentiate: the names (with optional files) and batch sizes.
#[derive(Args, Debug)]
pub(crate) struct Target {
    /// Inputs to differentiate, NAME or NAME=FILE.npy, comma-separated or repeated (none: the
    /// model itself; `dump` needs them for stages other than `traced`).
    #[arg(long, value_delimiter = ',', value_name = "NAME[=FILE.npy]")]
    pub wrt: Vec<String>,
    /// Inputs shared by both sides of the kernel, NAME or NAME=FILE.npy, comma-separated or
    /// repeated.
    #[arg(long, value_delimiter = ',', value_name = "NAME[=FILE.npy]")]
    pub shared: Vec<String>,
    /// Example batch sizes B1,B2 of the per-side inputs (`bench`: must agree with the batches
    /// of the files given; sizes the random inputs).
    #[arg(long, value_delimiter = ',', value_name = "B1,B2")]
    pub batch: Option<Vec<usize>>,
    /// Inputs that are per side although no file gives them (each example has its own value):
    /// without it, `--wrt` naming per-side inputs after the first while nothing is shared is
    /// refused, since parameters are usually shared.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub per_side: Vec<String>,
}

impl Target {
    /// Which inputs of `f` are shared and which per-side (a note the caller prints on
    /// standard error once it has succeeded), refusing the likely mistake
    /// of differentiating per-side parameters: nothing shared, and `--wrt`
    /// naming a per-side input other than the first (the data, by convention), unless
    /// `--per-side`.
    pub fn check_sides(&self, f: &jjt_ir::Function) -> Result<Option<String>, CliError> {
        let wrt = items("--wrt", &self.wrt)?;
        if wrt.is_empty() {
            return Ok(None);
        }
        let mut shared: Vec<String> =
            items("--shared", &self.shared)?.into_iter().map(|i| i.name).collect();
        shared.extend(wrt.iter().filter(|i| i.file.is_some()).map(|i| i.name.clone()));
        let names: Vec<&str> = f.params().iter().map(|p| p.name.as_str()).collect();
        // A name the model does not have (or a glob) is for the kernel builder to report, with
        // its "did you mean": no guess about sides from a list that is wrong.
        let known = |n: &str| names.contains(&n);
        if !wrt.iter().all(|i| known(&i.name)) || !shared.iter().all(|n| known(n)) {
            return Ok(None);
        }
        let per_side: Vec<&str> =
            names.iter().copied().filter(|n| !shared.iter().any(|s| s == n)).collect();
        let list = |v: &[&str]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        let shared_names: Vec<&str> =
            names.iter().copied().filter(|n| shared.iter().any(|s| s == n)).collect();
        let note = format!(
            "note: shared by both sides: {}; per side (one value per example): {}",
            list(&shared_names),
            list(&per_side)
        );
        // The first input is the data by convention (`f(x, params…)`); a per-side `--wrt`
        // input after it is most likely a parameter.
        let declared: Vec<String> =
            items("--per-side", &self.per_side)?.into_iter().map(|i| i.name).collect();
        let per_side_wrt: Vec<&str> = wrt
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| per_side.contains(n) && names.first() != Some(n))
            .filter(|n| !declared.iter().any(|d| d == n))
            .collect();
        if shared_names.is_empty() && per_side.len() >= 2 && !per_side_wrt.is_empty() {
            return Err(CliError::AllPerSide {
                wrt: per_side_wrt.join(","),
                inputs: list(&per_side),
            });
        }
        Ok(Some(note))
    }

    /// The sizes of `--batch B1,B2`.
    pub fn batch(&self) -> Result<Option<(usize, usize)>, CliError> {
        match self.batch.as_deref() {
            None => Ok(None),
            Some(&[b1, b2]) => Ok(Some((b1, b2))),
            Some(_) => Err(CliError::Usage("--batch takes two sizes: --batch B1,B2")),
        }
    }

    /// The kernel these names and sizes describe, computed as `opts` say (for `dump`, which
    /// reads no input files: an item with a file is refused).
    pub fn spec(&self, f: &jjt_ir::Function, opts: &KernelOpts) -> Result<KernelSpec, CliError> {
        let (wrt, shared) = self.names_only()?;
        // Globs skip the inputs `--per-side` names (`dump` has no side files).
        let per_side: Vec<String> =
            items("--per-side", &self.per_side)?.into_iter().map(|i| i.name).collect();
        let expand = |flag: &'static str, names: Vec<String>| -> Result<Vec<String>, CliError> {
            let its = names.into_iter().map(|name| Item { name, file: None }).collect();
            let out = crate::bind::expand_globs(f, flag, its, &per_side)?;
            Ok(out.into_iter().map(|i| i.name).collect())
        };
        let (wrt, shared) = (expand("--wrt", wrt)?, expand("--shared", shared)?);
        Ok(opts.spec(&wrt, &shared, self.batch()?))
    }

    /// The names of `--wrt` and `--shared`, refusing `NAME=FILE` (`dump` needs only types).
    pub fn names_only(&self) -> Result<(Vec<String>, Vec<String>), CliError> {
        let names = |flag: &'static str, raw: &[String]| {
            items(flag, raw)?
                .into_iter()
                .map(|it| match it.file {
                    None => Ok(it.name),
                    Some(_) => Err(CliError::FileNotRead { flag, name: it.name }),
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok((names("--wrt", &self.wrt)?, names("--shared", &self.shared)?))
    }
}

/// One `--wrt` / `--shared` item: `NAME` or `NAME=FILE.npy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub name: String,
    pub file: Option<PathBuf>,
}

/// Parse the items of a `--wrt` / `--shared` flag (already split at commas and repeats).
pub(crate) fn items(flag: &'static str, raw: &[String]) -> Result<Vec<Item>, CliError> {
    // `--wrt "w0, b0"`: spaces around the items of a comma list are not part of the names.
    let mut out = Vec::new();
    for arg in raw.iter().map(|arg| arg.trim()).filter(|arg| !arg.is_empty() || raw.len() == 1) {
        match arg.split_once('=') {
            // `--shared params.npz`: every array of the archive, by its name.
            None if arg.ends_with(".npz") => {
                let path = PathBuf::from(arg);
                for (name, _) in crate::bind::npz_arrays(arg, &path)?.iter() {
                    out.push(Item { name: name.clone(), file: Some(path.clone()) });
                }
            }
            None if !arg.is_empty() => out.push(Item { name: arg.to_string(), file: None }),
            Some((n, p)) if !n.trim().is_empty() && !p.trim().is_empty() => {
                out.push(Item { name: n.trim().to_string(), file: Some(PathBuf::from(p.trim())) })
            }
            _ => return Err(CliError::BadItem { flag, arg: arg.to_string() }),
        }
    }
    Ok(out)
}

/// The model and the per-side and shared inputs of a kernel.
#[derive(Args, Debug)]
pub(crate) struct KernelIo {
    /// The model file.
    pub model: PathBuf,
    /// Inputs J is taken with respect to, NAME or NAME=FILE.npy, comma-separated or repeated.
    /// A file given here is the input's value on both sides (as with --shared NAME=FILE).
    #[arg(long, value_delimiter = ',', required = true, value_name = "NAME[=FILE.npy]")]
    pub wrt: Vec<String>,
    /// A side-1 input as NAME=FILE.npy (repeat per input; a bare FILE.npy when the model
    /// has one per-side input). One extra leading axis makes it a batch of examples.
    #[arg(long, value_name = "NAME=FILE.npy")]
    pub x1: Vec<String>,
    /// A side-2 input, like --x1.
    #[arg(long, value_name = "NAME=FILE.npy")]
    pub x2: Vec<String>,
    /// Inputs shared by both sides (e.g. parameters), NAME=FILE.npy, comma-separated or
    /// repeated (a bare NAME needs its file from --wrt NAME=FILE).
    #[arg(long, value_delimiter = ',', value_name = "NAME[=FILE.npy]")]
    pub shared: Vec<String>,
    /// Inputs that are per side: `--wrt`/`--shared` patterns never match them (nor the inputs
    /// `--x1`/`--x2` give).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub per_side: Vec<String>,
}

/// How the kernel is computed and reduced.
#[derive(Args, Clone, Debug)]
pub(crate) struct KernelOpts {
    /// Output mode: all output pairs, their trace, or their diagonal.
    #[arg(long, value_enum, default_value_t = ModeArg::Full)]
    pub mode: ModeArg,
    /// For batched inputs: every example pair, or only b1 = b2.
    #[arg(long, value_enum, default_value_t = ExamplesArg::All)]
    pub examples: ExamplesArg,
    /// How K is built (auto: the fastest by the JIT's cost model).
    #[arg(long, value_enum, default_value_t = StrategyArg::Auto)]
    pub strategy: StrategyArg,
    /// Compute in f64 (an f32 model and its inputs are promoted).
    #[arg(long = "f64", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new().map(Precision::from_f64_flag))]
    pub precision: Precision,
    /// How to evaluate.
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    pub backend: Backend,
    /// Skip the optimiser (contraction reordering, constant folding) before compiling.
    #[arg(long = "no-opt", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new().map(Optimizer::from_no_opt_flag))]
    pub optimizer: Optimizer,
    /// Memory budget of the compiled kernel (constants, scratch, any one value), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 8192,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_memory: u64,
    /// Which output of a model with several to differentiate (its name or position); a
    /// kernel of such a model without it is refused with the list of outputs.
    #[arg(long = "output", value_name = "NAME|INDEX")]
    pub pick: Option<String>,
    /// Print what `--strategy auto` chose and the predicted time of each candidate (standard
    /// error; `bench` always prints it).
    #[arg(long)]
    pub verbose: bool,
}

/// The arithmetic a model is computed in (`--f64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precision {
    /// The model's own dtypes; input files must match them.
    AsModel,
    /// f64: an f32 model and its f32 input files are promoted.
    F64,
}

impl Precision {
    fn from_f64_flag(f64: bool) -> Precision {
        if f64 { Precision::F64 } else { Precision::AsModel }
    }
}

/// Whether graphs go through the optimiser before they run (`--no-opt` skips it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Optimizer {
    /// Optimise (and with `--strategy auto`, pick the cheapest optimised candidate).
    Run,
    /// Run the graph as the transforms built it.
    Skip,
}

impl Optimizer {
    fn from_no_opt_flag(no_opt: bool) -> Optimizer {
        if no_opt { Optimizer::Skip } else { Optimizer::Run }
    }
}

/// Which function of the kernel `bench` times: the `--apply` switch read as a [`Form`].
fn form_from_apply_flag(apply: bool) -> Form {
    if apply { Form::Apply } else { Form::Kernel }
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Canonical text (parses back to the same graph).
    Text,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// Native code compiled with Cranelift.
    Jit,
    /// The reference interpreter (slow; the oracle the JIT is tested against).
    Interp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ModeArg {
    Full,
    Trace,
    Diagonal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ExamplesArg {
    All,
    Diagonal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum StrategyArg {
    /// Build with every strategy, optimise each, keep the one the JIT predicts fastest.
    Auto,
    /// jvp∘vjp over the output basis: builds J(p2) by VJPs, then applies JVPs at p1.
    Ntvp,
    /// Jacobian contraction: build J1 and J2, contract them.
    Jc,
}

impl KernelOpts {
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            ModeArg::Full => "full",
            ModeArg::Trace => "trace",
            ModeArg::Diagonal => "diagonal",
        }
    }

    pub fn strategy_name(&self) -> &'static str {
        match self.strategy {
            StrategyArg::Auto => "auto",
            StrategyArg::Ntvp => "ntvp",
            StrategyArg::Jc => "jc",
        }
    }

    pub fn spec(
        &self,
        wrt: &[String],
        shared: &[String],
        batch: Option<(usize, usize)>,
    ) -> KernelSpec {
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
