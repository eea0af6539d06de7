//! A kernel as a grid of blocks in a directory: `jjt kernel … --grid R,C --task I|slurm|all -o
//! DIR` computes blocks, `jjt merge DIR -o K.npy` assembles them.
//!
//! The directory is a contract. `manifest.json` records what the blocks are blocks *of*: the
//! model's canonical hash, every input's hash and shape, the kernel's description after glob
//! expansion (with the strategy `auto` resolved to), `--tile`, the grid, the jjt version and the
//! CPU features the code was compiled for. A command whose manifest differs (but for the CPU
//! features) is refused. Block `I` (row-major over the grid) is `block-IIIII.npy` with a
//! sidecar `block-IIIII.json` holding its rows, columns, byte count, SHA-256 and the CPU
//! features of the machine that computed it. Both are written to a temporary file, synced and
//! renamed into place, the sidecar last: a block is valid only when its sidecar exists and the
//! file's bytes hash to what the sidecar says, so a task killed at any moment leaves nothing
//! that passes for a block, two tasks writing one block leave one valid block (they write the
//! same bytes), and a truncated or corrupted file is found and recomputed.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use jjt_ad::{Examples, Form, KernelSpec, Role};
use jjt_ir::{Data, Function, Tensor};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::CliError;
use crate::args::{KernelOpts, Optimizer, Precision, StrategyArg};
use crate::tiles::TileOpts;

/// The format the manifest declares.
const FORMAT: &str = "jjt kernel grid 1";

/// Which blocks a command computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    One(usize),
    All,
}

/// `R,C`.
pub(crate) fn parse_grid(s: &str) -> Result<(usize, usize), CliError> {
    let bad = || {
        CliError::Grid(format!(
            "--grid {s}: expected R,C (rows and columns of blocks, each at least 1)"
        ))
    };
    let (r, c) = s.split_once(',').ok_or_else(bad)?;
    let r: usize = r.trim().parse().map_err(|_| bad())?;
    let c: usize = c.trim().parse().map_err(|_| bad())?;
    if r == 0 || c == 0 {
        return Err(bad());
    }
    Ok((r, c))
}

/// `I`, `slurm` (the task id Slurm gives a job array's task) or `all`.
pub(crate) fn parse_task(s: &str, blocks: usize) -> Result<Task, CliError> {
    let index = |v: &str, from: &str| -> Result<Task, CliError> {
        let i: usize = v.trim().parse().map_err(|_| {
            CliError::Grid(format!(
                "--task {from}: expected a block index, `slurm` or `all`, got `{v}`"
            ))
        })?;
        if i >= blocks {
            return Err(CliError::Grid(format!(
                "--task {from}: block {i} does not exist (the grid has {blocks} blocks, 0 to {})",
                blocks - 1
            )));
        }
        Ok(Task::One(i))
    };
    match s {
        "all" => Ok(Task::All),
        "slurm" => {
            let v = std::env::var("SLURM_ARRAY_TASK_ID").map_err(|_| {
                CliError::Grid(
                    "--task slurm: SLURM_ARRAY_TASK_ID is not set (run it as a task of a Slurm job array)"
                        .into(),
                )
            })?;
            index(&v, "slurm (SLURM_ARRAY_TASK_ID)")
        }
        other => index(other, other),
    }
}

/// The examples of part `k` of `n` parts of `total`: `⌊k·total/n⌋ .. ⌊(k+1)·total/n⌋`.
pub(crate) fn part(k: usize, n: usize, total: usize) -> (usize, usize) {
    let at = |k: usize| ((k as u128 * total as u128) / n as u128) as usize;
    (at(k), at(k + 1))
}

/// The CPU the JIT compiles for: the architecture and the vector features it may use.
pub(crate) fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let mut f = Vec::new();
        macro_rules! has {
            ($($name:tt),*) => {$(
                if std::is_x86_feature_detected!($name) {
                    f.push($name);
                }
            )*};
        }
        has!(
            "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "bmi2", "avx512f", "avx512dq",
            "avx512vl", "avx512bw"
        );
        format!("x86_64 {}", f.join(","))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tensor_hash(t: &Tensor) -> String {
    let mut h = Sha256::new();
    match &t.data {
        Data::F32(v) => v.iter().for_each(|x| h.update(x.to_le_bytes())),
        Data::F64(v) => v.iter().for_each(|x| h.update(x.to_le_bytes())),
        Data::I32(v) => v.iter().for_each(|x| h.update(x.to_le_bytes())),
        Data::Bool(v) => v.iter().for_each(|&b| h.update([u8::from(b)])),
    }
    hex(&h.finalize())
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::GridIo { path: path.to_path_buf(), reason: e.to_string() }
}

/// Write `bytes` to `path` through a temporary file in the same directory, synced, then renamed
/// over `path` (atomic on POSIX file systems).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let tmp = temp_name(path);
    let mut f = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// `.NAME.tmp-PID-NANOS` beside `path`: unique to this process and moment.
fn temp_name(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.tmp-{}-{nanos}", std::process::id()))
}

fn block_paths(dir: &Path, i: usize) -> (PathBuf, PathBuf) {
    (dir.join(format!("block-{i:05}.npy")), dir.join(format!("block-{i:05}.json")))
}

/// What a grid directory's blocks are: read from (or written to) its manifest.
#[derive(Debug)]
pub(crate) struct Grid {
    pub rows: usize,
    pub cols: usize,
    pub b1: usize,
    pub b2: usize,
    /// The trailing axes of K after the example axes.
    pub rest: Vec<usize>,
    pub dtype: jjt_ir::DType,
    /// `--examples diagonal`: one example axis, K `[B, …]`, and a grid of R×1 blocks.
    pub diagonal: bool,
}

impl Grid {
    fn blocks(&self) -> usize {
        self.rows * self.cols
    }

    /// The example ranges of block `i`.
    fn ranges(&self, i: usize) -> ((usize, usize), (usize, usize)) {
        let rows = part(i / self.cols, self.rows, self.b1);
        if self.diagonal { (rows, rows) } else { (rows, part(i % self.cols, self.cols, self.b2)) }
    }

    /// The shape of a kernel block of `rows` × `cols` examples.
    fn shape(&self, rows: usize, cols: usize) -> Vec<usize> {
        let mut shape = if self.diagonal { vec![rows] } else { vec![rows, cols] };
        shape.extend_from_slice(&self.rest);
        shape
    }

    fn from_manifest(m: &Value, path: &Path) -> Result<Grid, CliError> {
        let bad = |what: &str| io_err(path, format!("the manifest has no valid `{what}`"));
        let pair = |k: &str| -> Result<(usize, usize), CliError> {
            let a = m.get(k).and_then(Value::as_array).ok_or_else(|| bad(k))?;
            match a.as_slice() {
                [x, y] => Ok((
                    x.as_u64().ok_or_else(|| bad(k))? as usize,
                    y.as_u64().ok_or_else(|| bad(k))? as usize,
                )),
                _ => Err(bad(k)),
            }
        };
        if m.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(bad("format"));
        }
        let (rows, cols) = pair("grid")?;
        let (b1, b2) = pair("batch")?;
        let rest = m
            .get("block_rest")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("block_rest"))?
            .iter()
            .map(|v| v.as_u64().map(|u| u as usize).ok_or_else(|| bad("block_rest")))
            .collect::<Result<Vec<_>, _>>()?;
        let dtype = match m.get("out_dtype").and_then(Value::as_str) {
            Some("f32") => jjt_ir::DType::F32,
            Some("f64") => jjt_ir::DType::F64,
            _ => return Err(bad("out_dtype")),
        };
        let diagonal = match m.get("examples").and_then(Value::as_str) {
            Some("all") => false,
            Some("diagonal") => true,
            _ => return Err(bad("examples")),
        };
        if rows == 0 || cols == 0 || rows > b1.max(1) || cols > b2.max(1) || (diagonal && cols != 1)
        {
            return Err(bad("grid"));
        }
        Ok(Grid { rows, cols, b1, b2, rest, dtype, diagonal })
    }

    /// Bytes of block `i`'s `.npy` file.
    fn block_bytes(&self, i: usize) -> Option<u64> {
        let ((r0, r1), (c0, c1)) = self.ranges(i);
        let shape = self.shape(r1 - r0, c1 - c0);
        let n = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64))?;
        let header = jjt_npy::header_bytes(self.dtype, &shape).len() as u64;
        n.checked_mul(self.dtype.item_size() as u64)?.checked_add(header)
    }
}

/// The identity of the kernel a manifest describes: the SHA-256 of its text without the CPU
/// features (which may differ between the machines of one grid). Every sidecar records it, so
/// that a block is never taken for a block of another kernel, even with the manifest replaced.
fn identity(m: &Value) -> String {
    let mut m = m.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("cpu");
    }
    hex(&Sha256::digest(m.to_string().as_bytes()))
}

/// Why block `i` is not valid, or `None` when it is. Reads the file in chunks (never all of
/// it at once).
fn invalid(dir: &Path, g: &Grid, id: &str, i: usize) -> Option<String> {
    let (npy, side) = block_paths(dir, i);
    let text = match fs::read_to_string(&side) {
        Ok(t) => t,
        Err(_) if !npy.exists() => return Some("missing".into()),
        Err(_) => return Some("no sidecar (the task did not finish)".into()),
    };
    let Ok(meta) = serde_json::from_str::<Value>(&text) else {
        return Some("its sidecar is not valid JSON".into());
    };
    let ((r0, r1), (c0, c1)) = g.ranges(i);
    if meta.get("rows") != Some(&json!([r0, r1])) || meta.get("cols") != Some(&json!([c0, c1])) {
        return Some("its sidecar is for other examples".into());
    }
    if meta.get("kernel").and_then(Value::as_str) != Some(id) {
        return Some("its sidecar is for another kernel's manifest".into());
    }
    let want_bytes = g.block_bytes(i);
    let Some(sha) = meta.get("sha256").and_then(Value::as_str) else {
        return Some("its sidecar has no checksum".into());
    };
    let Ok(mut f) = fs::File::open(&npy) else { return Some("missing".into()) };
    let Ok(len) = f.metadata().map(|m| m.len()) else { return Some("unreadable".into()) };
    if Some(len) != want_bytes {
        return Some(format!(
            "{len} bytes where the block has {} (truncated or wrong)",
            want_bytes.map_or("?".into(), |b| b.to_string())
        ));
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return Some("unreadable".into()),
        }
    }
    if hex(&h.finalize()) != sha {
        return Some("its bytes do not match its checksum (corrupted)".into());
    }
    None
}

/// The manifest of the kernel a command describes.
#[allow(clippy::too_many_arguments)]
fn manifest(
    f: &Function,
    spec: &KernelSpec,
    opts: &KernelOpts,
    strategy: jjt_ad::Strategy,
    tile: usize,
    grid: (usize, usize),
    batch: (usize, usize),
    args: &[Tensor],
    out: (&[usize], jjt_ir::DType),
) -> Result<Value, CliError> {
    let layout = spec.layout(f, Form::Kernel)?;
    let inputs: Vec<Value> = layout
        .iter()
        .zip(args)
        .map(|((name, role, _), t)| {
            let role = match role {
                Role::Side(1, _) => "x1",
                Role::Side(..) => "x2",
                Role::Shared(_) => "shared",
                Role::V => "v",
            };
            json!({"name": name, "role": role, "dtype": t.dtype().to_string(),
                   "shape": t.shape.dims(), "sha256": tensor_hash(t)})
        })
        .collect();
    let model = hex(&Sha256::digest(jjt_ir::text::print(f).as_bytes()));
    Ok(json!({
        "format": FORMAT,
        "jjt": env!("CARGO_PKG_VERSION"),
        "model_sha256": model,
        "inputs": inputs,
        "wrt": spec.wrt,
        "shared": spec.shared,
        "mode": opts.mode_name(),
        "examples": match spec.examples { Examples::All => "all", Examples::Diagonal => "diagonal" },
        "strategy": match strategy { jjt_ad::Strategy::Ntvp => "ntvp", jjt_ad::Strategy::Jc => "jc" },
        "dtype": match opts.precision { Precision::F64 => "f64", Precision::AsModel => "as model" },
        "optimizer": opts.optimizer == Optimizer::Run,
        "tile": tile,
        "grid": [grid.0, grid.1],
        "batch": [batch.0, batch.1],
        "block_rest": out.0,
        "out_dtype": out.1.to_string(),
        "cpu": cpu_features(),
    }))
}

/// Write the manifest unless one exists; if one does, it must describe the same kernel (the
/// CPU features may differ: blocks from several machines are allowed, and `merge` reports them).
fn claim(dir: &Path, m: &Value) -> Result<(), CliError> {
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(m).map_err(|e| io_err(&path, e))? + "\n";
    if !path.exists() {
        // Create it only if absent: a hard link of a complete temporary file fails, atomically,
        // when another task has made it first.
        let tmp = temp_name(&path);
        fs::write(&tmp, &text).map_err(|e| io_err(&tmp, e))?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    let theirs: Value = fs::read_to_string(&path)
        .map_err(|e| io_err(&path, e))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| io_err(&path, e)))?;
    // The most telling difference first.
    let keys = [
        "format",
        "model_sha256",
        "inputs",
        "wrt",
        "shared",
        "mode",
        "examples",
        "dtype",
        "optimizer",
        "strategy",
        "tile",
        "grid",
        "batch",
        "block_rest",
        "out_dtype",
        "jjt",
    ];
    for k in keys {
        let (a, b) = (m.get(k), theirs.get(k));
        if a != b {
            let show = |v: Option<&Value>| {
                let s = v.map_or("(absent)".to_string(), Value::to_string);
                if s.len() > 200 { format!("{}…", &s[..200]) } else { s }
            };
            return Err(CliError::ManifestMismatch {
                dir: dir.to_path_buf(),
                field: k.to_string(),
                theirs: show(b),
                ours: show(a),
            });
        }
    }
    Ok(())
}

/// `jjt kernel … --grid R,C --task T -o DIR`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    f: &Function,
    spec: &KernelSpec,
    opts: &KernelOpts,
    t: &TileOpts,
    grid: (usize, usize),
    task: &str,
    args: &[Tensor],
    dir: &Path,
) -> Result<(), CliError> {
    let Some((b1, b2)) = spec.batch else {
        return Err(CliError::Usage("--grid needs batched per-side inputs"));
    };
    let diagonal = spec.examples == Examples::Diagonal;
    if diagonal && grid.1 != 1 {
        return Err(CliError::Grid(format!(
            "--grid {},{}: with --examples diagonal K has one example axis, so the grid is R,1",
            grid.0, grid.1
        )));
    }
    if grid.0 > b1 || grid.1 > b2 {
        return Err(CliError::Grid(format!(
            "--grid {},{}: more blocks than examples ({b1} × {b2}): every block needs at least one example per side",
            grid.0, grid.1
        )));
    }
    let task = parse_task(task, grid.0 * grid.1)?;
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let tile = t.tile.max(1);
    let (t1, t2) = (tile.min(b1), tile.min(b2));
    let tile_spec = KernelSpec { batch: Some((t1, t2)), ..spec.clone() };
    // The strategy `auto` resolves to, recorded (the tiles resolve it the same way: the choice
    // is deterministic, and so the blocks equal the kernel computed in one process bit for bit).
    let strategy = match opts.strategy {
        StrategyArg::Auto if opts.optimizer == Optimizer::Run => {
            crate::pipeline::choose(&tile_spec, f, opts)?.strategy
        }
        StrategyArg::Auto | StrategyArg::Ntvp => jjt_ad::Strategy::Ntvp,
        StrategyArg::Jc => jjt_ad::Strategy::Jc,
    };
    // K's trailing axes after the example axes, as `jjt kernel` writes them.
    let out = f.output_type().cloned().ok_or(CliError::NoOutput)?;
    let o = out.shape.dims();
    let mut dims = if diagonal { vec![b1] } else { vec![b1, b2] };
    match spec.mode {
        jjt_ad::Mode::Full => dims.extend(o.iter().chain(o)),
        jjt_ad::Mode::Diagonal => dims.extend(o),
        jjt_ad::Mode::Trace => {}
    }
    let rest = crate::squeezed_dims(f, spec, &dims)[if diagonal { 1 } else { 2 }..].to_vec();
    let out_ty = out;
    let m = manifest(f, spec, opts, strategy, tile, grid, (b1, b2), args, (&rest, out_ty.dtype))?;
    claim(dir, &m)?;
    let id = identity(&m);
    let g = Grid { rows: grid.0, cols: grid.1, b1, b2, rest, dtype: out_ty.dtype, diagonal };
    let todo: Vec<usize> = match task {
        Task::One(i) => vec![i],
        Task::All => (0..g.blocks()).collect(),
    };
    let cpu = cpu_features();
    for i in todo {
        match invalid(dir, &g, &id, i) {
            // One line per block on standard error, `--quiet` or not (it turns off the progress
            // bar): a job's log says what each task did.
            None => {
                eprintln!("block {i}: present and valid, skipped");
                continue;
            }
            Some(why) if why != "missing" => eprintln!("block {i}: {why}: recomputing"),
            Some(_) => {}
        }
        let ((r0, r1), (c0, c1)) = g.ranges(i);
        let block_opts = TileOpts {
            rows: Some(format!("{r0}:{r1}")),
            cols: (!diagonal).then(|| format!("{c0}:{c1}")),
            grid: None,
            task: None,
            ..t.clone()
        };
        let k = crate::tiles::run(f, spec, opts, &block_opts, (b1, b2), args)?;
        let k = crate::squeeze_example_axes(f, spec, k)?;
        let bytes = jjt_npy::write(&k.into_array());
        let (npy, side) = block_paths(dir, i);
        write_atomic(&npy, &bytes)?;
        let meta = json!({
            "block": i,
            "kernel": id,
            "rows": [r0, r1],
            "cols": [c0, c1],
            "bytes": bytes.len(),
            "sha256": hex(&Sha256::digest(&bytes)),
            "cpu": cpu,
        });
        let text = serde_json::to_string_pretty(&meta).map_err(|e| io_err(&side, e))? + "\n";
        write_atomic(&side, text.as_bytes())?;
        eprintln!("block {i}: computed (examples {r0}..{r1} × {c0}..{c1})");
    }
    Ok(())
}

/// `jjt merge DIR -o K.npy`: every block present and valid, streamed into the output one
/// block at a time (peak memory: one block and a buffer). Blocks computed on machines with
/// other CPU features than the manifest's are reported on standard error.
pub(crate) fn merge(dir: &Path, out: &Path) -> Result<(), CliError> {
    let mpath = dir.join("manifest.json");
    let m: Value = fs::read_to_string(&mpath)
        .map_err(|e| io_err(&mpath, e))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| io_err(&mpath, e)))?;
    let g = Grid::from_manifest(&m, &mpath)?;
    let id = identity(&m);
    let mut bad = Vec::new();
    for i in 0..g.blocks() {
        if let Some(why) = invalid(dir, &g, &id, i) {
            bad.push(format!("block {i}: {why}"));
        }
    }
    if !bad.is_empty() {
        return Err(CliError::GridIncomplete {
            dir: dir.to_path_buf(),
            count: bad.len(),
            blocks: g.blocks(),
            which: bad.join("; "),
        });
    }
    let cpu = m.get("cpu").and_then(Value::as_str).unwrap_or("").to_string();
    let mut other = Vec::new();
    for i in 0..g.blocks() {
        let side = block_paths(dir, i).1;
        let meta: Option<Value> =
            fs::read_to_string(&side).ok().and_then(|t| serde_json::from_str(&t).ok());
        let theirs = meta.as_ref().and_then(|v| v.get("cpu")).and_then(Value::as_str);
        if theirs != Some(cpu.as_str()) {
            other.push(format!("{i} ({})", theirs.unwrap_or("unknown")));
        }
    }
    if !other.is_empty() {
        eprintln!(
            "note: blocks computed on a CPU with other features than the manifest's ({cpu}): {}; \
             their rounding may differ from the others'",
            other.join(", ")
        );
    }
    let shape = g.shape(g.b1, g.b2);
    let header = jjt_npy::header_bytes(g.dtype, &shape);
    let item = g.dtype.item_size();
    let rest: usize = g.rest.iter().product();
    let total = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .and_then(|n| n.checked_mul(item as u64))
        .ok_or(CliError::MergeTooLarge { rows: g.b1, cols: g.b2 })?;
    let tmp = temp_name(out);
    let mut f = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(&header).map_err(|e| io_err(&tmp, e))?;
    f.set_len(header.len() as u64 + total).map_err(|e| io_err(&tmp, e))?;
    for i in 0..g.blocks() {
        let ((r0, r1), (c0, c1)) = g.ranges(i);
        let path = block_paths(dir, i).0;
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let h = jjt_npy::read_header(&bytes).map_err(|e| io_err(&path, e))?;
        // A row of the block: its columns of one side-1 example (all of it when diagonal).
        let (width, stride, c0) = if g.diagonal { (1, 1, 0) } else { (c1 - c0, g.b2, c0) };
        let row = width * rest * item;
        let data = bytes.get(h.data_offset..).filter(|d| d.len() == (r1 - r0) * row);
        let data = data.ok_or_else(|| io_err(&path, "the block's data does not fill its rows"))?;
        for r in 0..(r1 - r0) {
            let at = header.len() as u64 + (((r0 + r) * stride + c0) * rest * item) as u64;
            f.seek(SeekFrom::Start(at)).map_err(|e| io_err(&tmp, e))?;
            f.write_all(&data[r * row..(r + 1) * row]).map_err(|e| io_err(&tmp, e))?;
        }
    }
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, out).map_err(|e| io_err(out, e))?;
    eprintln!(
        "merged {} blocks into {} ({} {:?}); peak memory {:.1} MiB",
        g.blocks(),
        out.display(),
        g.dtype,
        shape,
        crate::bench::peak_rss_mb()
    );
    Ok(())
}
