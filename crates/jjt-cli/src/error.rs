//! Everything that can go wrong in `jjt`, one variant per kind of failure, each with a message
//! that says what happened and what to do.

use std::path::PathBuf;

use jjt_ad::AdError;
use jjt_ir::{EvalError, IrError, Shape, TensorType};

/// Everything that can go wrong, each with a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Model(#[from] jjt_import::LoadError),
    #[error("{0}")]
    Ad(#[from] AdError),
    #[error("import: {0}")]
    Import(String),
    #[error("cannot read input `{name}` from {}: {source}", path.display())]
    ReadInput { name: String, path: PathBuf, source: jjt_npy::NpyError },
    #[error("`{flag} {arg}`: expected NAME=FILE.npy{}", if *single { "" } else { " (a bare FILE.npy is only accepted when exactly one input can be meant)" })]
    BadInArg { flag: &'static str, arg: String, single: bool },
    /// A `--wrt` / `--shared` item that is not `NAME` or `NAME=FILE.npy` (e.g. `w=`).
    #[error("input `{name}`: the archive {} has no array `{name}` (its arrays: {arrays})", path.display())]
    NpzMember { name: String, path: PathBuf, arrays: String },
    #[error("`{flag} {arg}`: expected NAME or NAME=FILE.npy (a name, and after `=` a file path)")]
    BadItem { flag: &'static str, arg: String },
    /// `NAME=FILE` given to a command that reads no input files (`dump` needs only types).
    #[error(
        "`{flag} {name}=...`: `jjt dump` reads no input files (it needs only the types, which the model declares); pass `{flag} {name}`"
    )]
    FileNotRead { flag: &'static str, name: String },
    /// An input file whose example batch differs from `--batch`.
    #[error("{flag} input `{name}` has {}, but --batch says {given}", describe(*batch))]
    BatchFlagDisagrees { flag: &'static str, name: String, batch: Option<usize>, given: usize },
    #[error("`{flag} {name}=...`: {reason}; the model's inputs are: {known}")]
    UnknownInput { flag: &'static str, name: String, reason: String, known: String },
    #[error("input `{0}` is given twice")]
    DuplicateInput(String),
    #[error(
        "missing input `{name}` of type {ty}: pass {flag} {name}=FILE.npy{}",
        shared_hint(flag, name)
    )]
    MissingInput { flag: &'static str, name: String, ty: String },
    #[error("input `{name}` ({}): expected {expected}, the file holds {actual}{hint}", path.display())]
    InputType { name: String, path: PathBuf, expected: String, actual: String, hint: String },
    /// `jjt slurm` for a task that needs more memory than `--max-memory`.
    #[error(
        "a task of this grid needs an estimated {mib} MiB, above --max-memory {max}: use a finer --grid (or raise --max-memory)"
    )]
    SlurmMemory { mib: u64, max: u64 },
    /// A `--grid` or `--task` value that cannot be used.
    #[error("{0}")]
    Grid(String),
    /// Reading or writing a grid directory failed.
    #[error("{}: {reason}", path.display())]
    GridIo { path: PathBuf, reason: String },
    /// A grid directory whose manifest describes another kernel.
    #[error(
        "{}: its manifest is for another kernel: `{field}` is {theirs} there, {ours} here (use another directory, or the command that made it)",
        dir.display()
    )]
    ManifestMismatch { dir: PathBuf, field: String, theirs: String, ours: String },
    /// `jjt merge DIR` with blocks missing or invalid.
    #[error(
        "{}: {count} of {blocks} blocks missing or invalid ({which}); compute them with the same `jjt kernel ... --grid ... --task all`",
        dir.display()
    )]
    GridIncomplete { dir: PathBuf, count: usize, blocks: usize, which: String },
    /// Flags that each parse but do not go together, or a value outside what a flag accepts.
    #[error("{0}")]
    Usage(&'static str),
    /// `--rows` / `--cols` that is not a range `A:B` of examples.
    #[error("{flag} {arg}: expected A:B with 0 <= A < B <= {total}")]
    BadRange { flag: &'static str, arg: String, total: usize },
    /// Input files of one side with different example batches.
    #[error(
        "{flag} inputs disagree on the example batch: `{name}` has {}, `{earlier_name}` {}",
        describe(*batch),
        describe(*earlier)
    )]
    BatchDisagrees {
        flag: &'static str,
        name: String,
        batch: Option<usize>,
        earlier: Option<usize>,
        earlier_name: String,
    },
    /// One side batched and the other not.
    #[error(
        "side 1 has {} (--x1 {name1}) but side 2 has {} (--x2 {name2}): batch both sides or neither",
        describe(*side1),
        describe(*side2)
    )]
    OneSideBatched { side1: Option<usize>, side2: Option<usize>, name1: String, name2: String },
    #[error("--stage {stage} needs --wrt NAMES (the inputs to differentiate)")]
    NeedWrt { stage: &'static str },
    /// A random input (`bench`, `check`) too large for memory.
    #[error("cannot allocate a random input of type {0}")]
    Alloc(TensorType),
    /// The optimiser failed (a bug: every pass keeps the graph valid).
    #[error("{0}")]
    Optimize(#[source] IrError),
    /// Building or optimising the candidates of `--strategy auto` failed.
    #[error("{0}")]
    Auto(#[from] jjt_opt::auto::AutoError),
    /// The file of `JJT_THROUGHPUTS` cannot be read or parsed.
    #[error("JJT_THROUGHPUTS={}: {reason}", path.display())]
    Throughputs { path: PathBuf, reason: String },
    /// Splitting the kernel into its shared-inputs part and its per-call part failed.
    #[error("cannot stage the kernel: {0}")]
    Stage(#[source] IrError),
    /// `--examples diagonal` with sides of different batches.
    #[error(
        "--examples diagonal pairs example b of side 1 with example b of side 2, so the sides need equal batches: side 1 has {b1} ({side1}), side 2 has {b2} ({side2})"
    )]
    DiagonalBatch { b1: usize, b2: usize, side1: String, side2: String },
    /// `--wrt` names per-side inputs after the first while nothing is shared.
    #[error(
        "every input is per-side ({inputs}), so each example would have its own {wrt}: pass --shared {wrt} for inputs both sides share (parameters), or --per-side {wrt} to keep them per example"
    )]
    AllPerSide { wrt: String, inputs: String },

    #[error("--around {0}")]
    Around(#[from] jjt_ir::dot::NoSuchNode),

    /// A function without outputs reached evaluation.
    #[error("the function has no output")]
    NoOutput,

    #[error("the model has {count} outputs ({outputs}): choose one with --output NAME|INDEX")]
    AmbiguousOutput { count: usize, outputs: String },

    #[error("--output {given}: the model's outputs are {outputs}{hint}")]
    NoSuchOutput { given: String, outputs: String, hint: &'static str },

    #[error(
        "the model has {count} outputs ({outputs}) but {given} output file(s) were given: pass one -o per output, or one -o FILE.npz"
    )]
    OutputFiles { count: usize, outputs: String, given: usize },
    /// A thread computing kernel tiles panicked; its tiles were not written.
    #[error("a worker thread failed (it panicked while computing kernel tiles)")]
    WorkerPanicked,
    /// Data that does not fit its shape: jjt made it, so this is a bug in jjt.
    #[error("internal error: {0}")]
    TensorShape(#[from] jjt_ir::tensor::TensorShapeError),
    /// A kernel input the binding left empty: a bug in jjt.
    #[error("internal: kernel input `{0}` was not bound")]
    Unbound(String),
    /// `jjt merge`: a block argument that is not `A:B,C:D=FILE.npy`.
    #[error("block `{0}`: expected A:B,C:D=FILE.npy")]
    BadBlock(String),
    /// `jjt merge`: a block whose array does not have the shape its ranges say.
    #[error("block `{block}` has shape {shape}, but its ranges say [{rows}, {cols}, ...]")]
    BlockShape { block: String, shape: Shape, rows: usize, cols: usize },
    /// `jjt merge`: blocks of different dtypes or trailing axes.
    #[error("blocks differ in dtype or in their trailing axes")]
    BlocksDiffer,
    /// `jjt merge`: blocks that leave a gap or overlap.
    #[error("entry ({row}, {col}) is {} by the blocks", if *times == 0 { "not covered" } else { "covered more than once" })]
    BlockCoverage { row: usize, col: usize, times: u8 },
    /// `jjt merge`: a kernel too large to hold.
    #[error("the merged kernel of {rows}×{cols} examples is too large")]
    MergeTooLarge { rows: usize, cols: usize },
    #[error("evaluation failed: {0}")]
    Eval(#[from] EvalError),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    WriteNpy { path: PathBuf, source: jjt_npy::NpyError },
    /// `jjt check` found derivatives off by more than its tolerances.
    #[error("derivative check failed: JVP error {jvp:.2e}, VJP error {vjp:.2e}")]
    CheckFailed { jvp: f64, vjp: f64 },
    #[error("{0}")]
    Jit(#[from] jjt_jit::JitError),
}

/// An example batch as words.
fn describe(b: Option<usize>) -> String {
    match b {
        Some(b) => format!("a batch of {b} examples"),
        None => "no batch axis".into(),
    }
}

/// For a per-side input missing on one side: the other way to give it, when both sides share
/// it (network parameters usually are).
fn shared_hint(flag: &str, name: &str) -> String {
    if flag == "--x1" || flag == "--x2" {
        format!(", or --shared {name}=FILE.npy if both sides use one value (e.g. a parameter)")
    } else {
        String::new()
    }
}
