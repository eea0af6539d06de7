//! `jjt slurm`: the script that computes a kernel on a Slurm cluster, one job-array task per
//! block of a grid (`jjt kernel … --grid R,C --task slurm -o DIR`), then `jjt merge` once the
//! array has succeeded.

use std::path::{Path, PathBuf};

use clap::Args;
use jjt_ad::{Examples, KernelSpec, Role};

use crate::CliError;
use crate::args::{KernelIo, KernelOpts};
use crate::grid::{parse_grid, part};
use crate::pipeline::{jit_options, kernel_graph, load_selecting, pick_output};

/// Flags of `jjt slurm` beyond those of `jjt kernel`.
#[derive(Args, Debug)]
pub(crate) struct SlurmOpts {
    /// The grid of blocks, R,C: one task per block.
    #[arg(long, value_name = "R,C")]
    pub grid: String,
    /// Examples per tile on each side (as `jjt kernel --tile`).
    #[arg(long, default_value_t = 32)]
    pub tile: usize,
    /// The directory of the blocks and the manifest (on a file system every node sees).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Where the merge step writes the whole kernel (default: DIR/K.npy).
    #[arg(long, value_name = "FILE.npy")]
    pub merged: Option<PathBuf>,
    /// The Slurm partition (default: the cluster's default).
    #[arg(long)]
    pub partition: Option<String>,
    /// The time limit of each task, in a form sbatch takes (e.g. 1:00:00).
    #[arg(long, default_value = "1:00:00")]
    pub time: String,
    /// Cores per task; each task runs its tiles on that many threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub cpus_per_task: u32,
    /// The jjt executable the tasks run (default: this one).
    #[arg(long, value_name = "PATH")]
    pub jjt: Option<PathBuf>,
}

/// The flags of `jjt slurm` that `jjt kernel` does not take, and whether each takes a value.
const SLURM_ONLY: [(&str, bool); 6] = [
    ("--merged", true),
    ("--partition", true),
    ("--time", true),
    ("--cpus-per-task", true),
    ("--jjt", true),
    ("--out", true),
];

/// `s` quoted for a POSIX shell.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The arguments after `slurm` without the flags only `slurm` takes (nor `-o`).
fn kernel_args(raw: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = raw.iter();
    while let Some(a) = it.next() {
        let flag = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
        let takes = SLURM_ONLY.iter().find(|(f, _)| *f == flag).map(|(_, v)| *v);
        match takes {
            Some(true) if !a.contains('=') => {
                it.next();
            }
            Some(_) => {}
            None if a == "-o" => {
                it.next();
            }
            None if a.starts_with("-o") && a.len() > 2 && !a.starts_with("--") => {}
            None => out.push(a.clone()),
        }
    }
    out
}

/// The memory one task needs, in MiB, and the bytes of its block: every input (each task reads all of them), its block
/// twice (the kernel and the file's bytes), the compiled tile kernel's scratch per thread, the
/// parameter-only values computed once, and 256 MiB for the process and its code.
fn task_mib(
    f: &jjt_ir::Function,
    spec: &KernelSpec,
    opts: &KernelOpts,
    args: &[jjt_ir::Tensor],
    block: (usize, usize),
    (tile, threads): (usize, usize),
) -> Result<(u64, u64), CliError> {
    let (b1, b2) = spec.batch.unwrap_or((1, 1));
    let (t1, t2) = (tile.min(b1), tile.min(b2));
    let tile_spec = KernelSpec { batch: Some((t1, t2)), ..spec.clone() };
    let layout = spec.layout(f, jjt_ad::Form::Kernel)?;
    let shared: Vec<bool> = layout.iter().map(|(_, r, _)| matches!(r, Role::Shared(_))).collect();
    let (kernel, _) = kernel_graph(f, &tile_spec, opts)?;
    let staged = jjt_opt::stage::stage(&kernel, &shared).map_err(CliError::Stage)?;
    let jit = jit_options(opts.max_memory);
    let call = jjt_jit::compile_with(&staged.call, jit)?;
    let mut bytes: u64 = args.iter().map(|t| t.numel() as u64 * t.dtype().item_size() as u64).sum();
    if let Some(p) = &staged.prepare {
        let prep = jjt_jit::compile_with(p, jit)?;
        bytes += prep.arena_bytes() as u64;
        bytes += prep
            .outputs()
            .iter()
            .map(|t| t.numel() as u64 * t.dtype.item_size() as u64)
            .sum::<u64>();
    }
    let out = call.outputs()[0].clone();
    let per_pair: u64 =
        out.shape.dims()[2..].iter().product::<usize>() as u64 * out.dtype.item_size() as u64;
    let block_bytes = block.0 as u64 * block.1 as u64 * per_pair;
    bytes += 2 * block_bytes;
    bytes += threads as u64 * (call.arena_bytes() as u64 + t1 as u64 * t2 as u64 * per_pair);
    Ok((bytes.div_ceil(1 << 20) + 256, block_bytes))
}

/// `jjt slurm …`: print the submission script.
pub(crate) fn run(
    io: &KernelIo,
    opts: &KernelOpts,
    s: &SlurmOpts,
    raw: &[String],
) -> Result<(), CliError> {
    let (rows, cols) = parse_grid(&s.grid)?;
    if opts.backend != crate::args::Backend::Jit {
        return Err(CliError::Usage("jjt slurm computes blocks with --backend jit"));
    }
    let sel = [&io.wrt[..], &io.shared[..]];
    let f = load_selecting(&io.model, opts.precision, &sel)?;
    let f = pick_output(f, opts.pick.as_deref(), true)?;
    let (spec, bound) = crate::bind::bind_kernel(
        &f,
        io,
        opts,
        jjt_ad::Form::Kernel,
        None,
        (None, crate::bind::Missing::Refuse),
    )?;
    let args = crate::bind::values(bound)?;
    let (b1, b2) = match (spec.batch, spec.examples) {
        (Some(b), Examples::All) => b,
        _ => {
            return Err(CliError::Usage(
                "jjt slurm needs batched per-side inputs and --examples all",
            ));
        }
    };
    if rows > b1 || cols > b2 {
        return Err(CliError::Grid(format!(
            "--grid {rows},{cols}: more blocks than examples ({b1} × {b2})"
        )));
    }
    // The largest block.
    let largest = |n: usize, total: usize| {
        (0..n).map(|k| part(k, n, total)).map(|(a, b)| b - a).max().unwrap_or(0)
    };
    let block = (largest(rows, b1), largest(cols, b2));
    let (mib, block_bytes) =
        task_mib(&f, &spec, opts, &args, block, (s.tile.max(1), s.cpus_per_task as usize))?;
    if mib > opts.max_memory {
        return Err(CliError::SlurmMemory { mib, max: opts.max_memory });
    }
    let jjt = match &s.jjt {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| CliError::GridIo { path: "jjt".into(), reason: e.to_string() })?,
    };
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::GridIo { path: ".".into(), reason: e.to_string() })?;
    let dir = absolute(&cwd, &s.out);
    let merged = s.merged.as_ref().map_or_else(|| dir.join("K.npy"), |m| absolute(&cwd, m));
    let q = |p: &Path| quote(&p.to_string_lossy());
    let mut task: Vec<String> = vec![q(&jjt), "kernel".into()];
    task.extend(kernel_args(raw).iter().map(|a| quote(a)));
    task.extend([
        "--task".into(),
        "slurm".into(),
        "--threads".into(),
        "\"$SLURM_CPUS_PER_TASK\"".into(),
        "--quiet".into(),
        "-o".into(),
        q(&dir),
    ]);
    let partition = s
        .partition
        .as_ref()
        .map_or(String::new(), |p| format!("#SBATCH --partition={}\n", quote(p)));
    let n = rows * cols;
    // The merge holds one block at a time.
    let merge_mib = block_bytes.div_ceil(1 << 20) + 64 + 256;
    outln!(
        r#"#!/bin/bash
# The kernel of {model} as a {rows}×{cols} grid of blocks in {dir}: one task of a Slurm job
# array per block, then `jjt merge` into {merged} once every task has succeeded.
# Written by `jjt slurm`. Submit it with `bash` (it calls sbatch twice). Submitting it again
# computes only the blocks that are missing or invalid: the others are checked and skipped.
# Estimated memory per task: {mib} MiB (inputs, one block twice, the compiled tile kernel's
# scratch per thread, and 256 MiB for the process).
set -euo pipefail
mkdir -p {qdir}
array=$(sbatch --parsable <<'JJT_ARRAY'
#!/bin/bash
#SBATCH --job-name=jjt-kernel
#SBATCH --array=0-{last}
#SBATCH --cpus-per-task={cpus}
#SBATCH --mem={mib}M
#SBATCH --time={time}
{partition}#SBATCH --chdir={cwd}
#SBATCH --output={dir_out}/slurm-%A_%a.out
exec {task}
JJT_ARRAY
)
array=${{array%%;*}}
merge=$(sbatch --parsable --dependency=afterok:"$array" --job-name=jjt-merge --mem={merge_mib}M \
  --time={time} {partition_flag}--chdir={cwd} --output={dir_out}/slurm-merge-%j.out \
  --wrap={wrap})
echo "array job $array ({n} tasks), merge job ${{merge%%;*}}""#,
        model = io.model.display(),
        dir = dir.display(),
        merged = merged.display(),
        qdir = q(&dir),
        last = n - 1,
        cpus = s.cpus_per_task,
        time = quote(&s.time),
        cwd = q(&cwd),
        // Slurm expands `%` in --output: the directory's own are doubled.
        dir_out = q(Path::new(&dir.to_string_lossy().replace('%', "%%"))),
        task = task.join(" "),
        partition_flag =
            s.partition.as_ref().map_or(String::new(), |p| format!("--partition={} ", quote(p))),
        wrap = quote(&format!("{} merge {} -o {}", q(&jjt), q(&dir), q(&merged))),
    );
    Ok(())
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) }
}
