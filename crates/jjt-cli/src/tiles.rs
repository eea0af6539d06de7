//! Batched kernels in tiles: K is computed as T1×T2 blocks of example pairs, each by the same
//! compiled tile kernel (inputs padded to full tiles), on a thread pool. Every entry K[b1, b2]
//! depends only on `x1[b1]` and `x2[b2]` and is computed by the same code wherever it sits in a tile,
//! so any block `--rows A:B --cols C:D` equals the same block of the whole kernel bit for bit, and
//! blocks from many runs (or machines) reassemble exactly (`jjt merge`).
//!
//! The tile kernel is staged ([`jjt_opt::stage`]): the part that depends only on the shared
//! inputs θ (products of weights, say) is computed once, before the tiles, and passed to every
//! tile as extra inputs.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::Args;
use jjt_ad::{KernelSpec, Role};
use jjt_ir::{Data, Function, Shape, Tensor};

use crate::CliError;
use crate::args::KernelOpts;
use crate::pipeline::{jit_options, kernel_graph};

/// Tests set this to make every tile worker panic (see `tests.rs`).
#[cfg(test)]
pub(crate) static PANIC_IN_WORKER: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Tiling flags of `jjt kernel`.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct TileOpts {
    /// Compute only side-1 examples A..B (a block of the kernel).
    #[arg(long, value_name = "A:B")]
    pub rows: Option<String>,
    /// Compute only side-2 examples C..D.
    #[arg(long, value_name = "C:D")]
    pub cols: Option<String>,
    /// K as a grid of R×C blocks written into the directory `-o DIR` with a manifest; block
    /// (i, j) holds side-1 examples ⌊i·B1/R⌋..⌊(i+1)·B1/R⌋ and side-2 examples likewise
    /// (`jjt merge DIR -o K.npy` assembles them; docs/scale.md).
    #[arg(long, value_name = "R,C", conflicts_with_all = ["rows", "cols"], requires = "task")]
    pub grid: Option<String>,
    /// Which blocks of `--grid` to compute: block I (row-major), `slurm` (the job array's
    /// SLURM_ARRAY_TASK_ID) or `all` (every block missing or invalid). Valid blocks are skipped.
    #[arg(long, value_name = "I|slurm|all", requires = "grid")]
    pub task: Option<String>,
    /// Examples per tile on each side (the same for every run whose blocks are merged).
    #[arg(long, default_value_t = 32)]
    pub tile: usize,
    /// Threads (default: all cores): tiles run one per thread; a single tile splits its matrix
    /// multiplies across them.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn range(
    arg: &Option<String>,
    total: usize,
    flag: &'static str,
) -> Result<(usize, usize), CliError> {
    let Some(s) = arg else { return Ok((0, total)) };
    let bad = || CliError::BadRange { flag, arg: s.clone(), total };
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse::<usize>().map_err(|_| bad())?,
        b.trim().parse::<usize>().map_err(|_| bad())?,
    );
    if a >= b || b > total {
        return Err(bad());
    }
    Ok((a, b))
}

/// Examples `from..from+n` of a batched tensor, padded to `tile` by repeating the first.
fn take(t: &Tensor, from: usize, n: usize, tile: usize) -> Tensor {
    let inner: usize = t.shape.dims()[1..].iter().product();
    let pick = |k: usize| from + if k < n { k } else { 0 };
    let mut shape = t.shape.0.clone();
    shape[0] = tile;
    let data = match &t.data {
        Data::F32(v) => Data::F32(
            (0..tile).flat_map(|k| v[pick(k) * inner..(pick(k) + 1) * inner].to_vec()).collect(),
        ),
        Data::F64(v) => Data::F64(
            (0..tile).flat_map(|k| v[pick(k) * inner..(pick(k) + 1) * inner].to_vec()).collect(),
        ),
        Data::I32(v) => Data::I32(
            (0..tile).flat_map(|k| v[pick(k) * inner..(pick(k) + 1) * inner].to_vec()).collect(),
        ),
        Data::Bool(v) => Data::Bool(
            (0..tile).flat_map(|k| v[pick(k) * inner..(pick(k) + 1) * inner].to_vec()).collect(),
        ),
    };
    Tensor { shape: Shape(shape), data }
}

/// Copy the `rows × cols` corner of a tile result `[T1, T2, rest]` into `out` `[R, C, rest]` at
/// (`r0`, `c0`).
fn place(
    out: &mut Data,
    out_cols: usize,
    rest: usize,
    tile: &Tensor,
    t2: usize,
    (rows, cols): (usize, usize),
    (r0, c0): (usize, usize),
) {
    macro_rules! copy {
        ($o:expr, $t:expr) => {
            for i in 0..rows {
                for j in 0..cols {
                    let src = (i * t2 + j) * rest;
                    let dst = ((r0 + i) * out_cols + c0 + j) * rest;
                    $o[dst..dst + rest].copy_from_slice(&$t[src..src + rest]);
                }
            }
        };
    }
    match (out, &tile.data) {
        (Data::F32(o), Data::F32(t)) => copy!(o, t),
        (Data::F64(o), Data::F64(t)) => copy!(o, t),
        (Data::Bool(o), Data::Bool(t)) => copy!(o, t),
        _ => {}
    }
}

/// K (or the requested block of it) in tiles.
pub(crate) fn run(
    f: &Function,
    spec: &KernelSpec,
    opts: &KernelOpts,
    t: &TileOpts,
    (b1, b2): (usize, usize),
    args: &[Tensor],
) -> Result<Tensor, CliError> {
    // Example-diagonal kernels (b1 = b2) run in tiles along the diagonal: tile k pairs
    // examples k·T.. of both sides, and K's block is `[rows, …]`.
    let diagonal = spec.examples == jjt_ad::Examples::Diagonal;
    if diagonal && t.cols.is_some() {
        return Err(CliError::Usage(
            "--examples diagonal pairs example b with example b: give --rows A:B, not --cols",
        ));
    }
    let (r_lo, r_hi) = range(&t.rows, b1, "--rows")?;
    let (c_lo, c_hi) = if diagonal { (r_lo, r_hi) } else { range(&t.cols, b2, "--cols")? };
    let tile = t.tile.max(1);
    let (t1, t2) =
        if diagonal { (tile.min(b1), tile.min(b1)) } else { (tile.min(b1), tile.min(b2)) };
    let tile_spec = KernelSpec { batch: Some((t1, t2)), ..spec.clone() };
    let threads = t
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // Tiles that already run one per core keep each tile's matrix multiplies on its own
    // thread; a single tile (or worker) lets them use every core.
    let n_jobs = (r_hi - r_lo).div_ceil(t1).saturating_mul((c_hi - c_lo).div_ceil(t2));
    let jit = jjt_jit::Options {
        threads: if threads.min(n_jobs) > 1 { 1 } else { threads },
        ..jit_options(opts.max_memory)
    };
    let layout = spec.layout(f, jjt_ad::Form::Kernel)?;
    // Staging: what depends only on the shared inputs (θ) runs once, not once per tile.
    let shared: Vec<bool> =
        layout.iter().map(|(_, role, _)| matches!(role, Role::Shared(_))).collect();
    let (kernel, note) = kernel_graph(f, &tile_spec, opts)?;
    if let Some(n) = note.filter(|_| opts.verbose) {
        eprintln!("{n}");
    }
    let staged = jjt_opt::stage::stage(&kernel, &shared).map_err(CliError::Stage)?;
    let hoisted: Vec<Tensor> = match &staged.prepare {
        Some(p) => {
            let prepare = jjt_jit::compile_with(p, jit)?;
            let inputs: Vec<&Tensor> = staged.prepare_inputs.iter().map(|&i| &args[i]).collect();
            prepare.call(&inputs)?
        }
        None => Vec::new(),
    };
    let compiled = jjt_jit::compile_with(&staged.call, jit)?;
    let out_ty = compiled.outputs()[0].clone();
    let nb = if diagonal { 1 } else { 2 };
    let rest: usize = out_ty.shape.dims()[nb..].iter().product();
    let (rows, cols) = if diagonal { (r_hi - r_lo, 1) } else { (r_hi - r_lo, c_hi - c_lo) };
    let mut shape = if diagonal { vec![rows] } else { vec![rows, cols] };
    shape.extend_from_slice(&out_ty.shape.dims()[nb..]);
    let total = rows * cols * rest;
    let zeros = Tensor::from_f64(&out_ty.with_shape(vec![total]), &vec![0.0; total])?;
    let result = Mutex::new(zeros.data);
    let jobs: Vec<(usize, usize)> = if diagonal {
        (r_lo..r_hi).step_by(t1).map(|r| (r, r)).collect()
    } else {
        (r_lo..r_hi)
            .step_by(t1)
            .flat_map(|r| (c_lo..c_hi).step_by(t2).map(move |c| (r, c)))
            .collect()
    };
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    let progress = crate::progress::Progress::new(jobs.len(), t.quiet);
    let errors: Mutex<Vec<CliError>> = Mutex::new(Vec::new());
    // A worker that panics has left its tiles unwritten: joining every worker here turns that
    // into an error instead of a kernel with holes (or a panic of the whole program).
    let panicked = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.min(jobs.len().max(1)))
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(r, c)) = jobs.get(j) else { break };
                        #[cfg(test)]
                        if PANIC_IN_WORKER.load(Ordering::Relaxed) {
                            panic!("injected panic in a tile worker");
                        }
                        let (nr, nc) = ((r_hi - r).min(t1), (c_hi - c).min(t2));
                        let inputs: Vec<Tensor> = staged
                            .call_inputs
                            .iter()
                            .map(|&i| match layout[i].1 {
                                Role::Side(1, _) => take(&args[i], r, nr, t1),
                                Role::Side(_, _) => take(&args[i], c, nc, t2),
                                _ => args[i].clone(),
                            })
                            .collect();
                        let refs: Vec<&Tensor> = inputs.iter().chain(&hoisted).collect();
                        match compiled.call(&refs) {
                            Ok(mut out) => {
                                let k = out.remove(0);
                                if let Ok(mut res) = result.lock() {
                                    // A diagonal tile `[T, rest]` is a `[T, 1, rest]` one.
                                    let (t2, nc, c0) =
                                        if diagonal { (1, 1, 0) } else { (t2, nc, c - c_lo) };
                                    place(&mut res, cols, rest, &k, t2, (nr, nc), (r - r_lo, c0));
                                }
                            }
                            Err(e) => {
                                if let Ok(mut errs) = errors.lock() {
                                    errs.push(CliError::Jit(e));
                                }
                                break;
                            }
                        }
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        progress.update(d, start.elapsed());
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join()).filter(Result::is_err).count() > 0
    });
    progress.finish();
    if panicked {
        return Err(CliError::WorkerPanicked);
    }
    if let Some(e) = errors.into_inner().ok().and_then(|mut v| v.pop()) {
        return Err(e);
    }
    let data = result.into_inner().map_err(|_| CliError::WorkerPanicked)?;
    Ok(Tensor::new(shape, data)?)
}

/// Assemble blocks `A:B,C:D=FILE`.
pub(crate) fn merge(blocks: &[String]) -> Result<Tensor, CliError> {
    let mut parts = Vec::new();
    for b in blocks {
        let bad = || CliError::BadBlock(b.clone());
        let (ranges, file) = b.split_once('=').ok_or_else(bad)?;
        let (rr, cc) = ranges.split_once(',').ok_or_else(bad)?;
        let (r0, r1) = range(&Some(rr.to_string()), usize::MAX, "rows").map_err(|_| bad())?;
        let (c0, c1) = range(&Some(cc.to_string()), usize::MAX, "cols").map_err(|_| bad())?;
        let path = std::path::PathBuf::from(file);
        let t = jjt_npy::read_file(&path).map(Tensor::from_array).map_err(|source| {
            CliError::ReadInput { name: b.clone(), path: path.clone(), source }
        })?;
        let d = t.shape.dims();
        if d.len() < 2 || d[0] != r1 - r0 || d[1] != c1 - c0 {
            return Err(CliError::BlockShape {
                block: b.clone(),
                shape: t.shape.clone(),
                rows: r1 - r0,
                cols: c1 - c0,
            });
        }
        parts.push((r0, c0, t));
    }
    let rows = parts.iter().map(|(r, _, t)| r + t.shape.dims()[0]).max().unwrap_or(0);
    let cols = parts.iter().map(|(_, c, t)| c + t.shape.dims()[1]).max().unwrap_or(0);
    let first = &parts[0].2;
    let rest_dims = first.shape.dims()[2..].to_vec();
    let rest: usize = rest_dims.iter().product();
    // Shapes come from files (a block with a zero-sized trailing axis holds no data whatever
    // its first two axes say), so sizes are checked and memory is reserved fallibly.
    let too_large = || CliError::MergeTooLarge { rows, cols };
    let entries = rows.checked_mul(cols).ok_or_else(too_large)?;
    entries.checked_mul(rest.max(1)).ok_or_else(too_large)?;
    let mut covered: Vec<u8> = Vec::new();
    covered.try_reserve_exact(entries).map_err(|_| too_large())?;
    covered.resize(entries, 0);
    for (r0, c0, t) in &parts {
        if t.shape.dims()[2..] != rest_dims[..] || t.dtype() != first.dtype() {
            return Err(CliError::BlocksDiffer);
        }
        for i in 0..t.shape.dims()[0] {
            for j in 0..t.shape.dims()[1] {
                let c = &mut covered[(r0 + i) * cols + c0 + j];
                *c = c.saturating_add(1);
            }
        }
    }
    if let Some(k) = covered.iter().position(|&c| c != 1) {
        return Err(CliError::BlockCoverage { row: k / cols, col: k % cols, times: covered[k] });
    }
    let ty = first.ty().with_shape(vec![rows * cols * rest]);
    let mut data = Tensor::from_f64(&ty, &vec![0.0; rows * cols * rest])?.data;
    for (r0, c0, t) in &parts {
        let (nr, nc) = (t.shape.dims()[0], t.shape.dims()[1]);
        place(&mut data, cols, rest, t, nc, (nr, nc), (*r0, *c0));
    }
    let mut shape = vec![rows, cols];
    shape.extend(rest_dims);
    Ok(Tensor::new(shape, data)?)
}
