//! Models exported by frameworks, as jjt graphs: StableHLO text from JAX (`jax.export`'s
//! `mlir_module()`, `jax.jit(f).lower(…).as_text()`) and ONNX from PyTorch
//! (`torch.onnx.export`).
//!
//! [`load`] reads any model file, recognising the format by its content ([`detect`]): jjt's
//! text format, StableHLO text, or ONNX.
//!
//! | module | what |
//! |---|---|
//! | [`mlir`] | MLIR text: tokens, functions, operations (pretty and generic syntax), locations |
//! | [`stablehlo`] | StableHLO ops to jjt ops ([`stablehlo::SUPPORTED`]) |
//! | [`onnx`] | ONNX protobuf (`onnx::proto`, decoded by hand) to jjt ops ([`onnx::SUPPORTED`]) |
//! | [`names`] | framework paths (`params['w']`) to jjt names (`params.w`) |

use std::path::Path;

use jjt_ir::Function;

pub mod error;
pub mod mlir;
pub mod names;
pub mod onnx;
pub mod stablehlo;

pub use error::{ImportError, LoadError};

/// The largest model file [`load`] reads (StableHLO text holds its constants inline).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// A model file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// jjt's text format.
    Jjt,
    /// MLIR text with StableHLO ops.
    StableHlo,
    /// An ONNX protobuf.
    Onnx,
}

/// The format of a model from its first bytes: MLIR text starts with `module`, `func.func`, a
/// `#loc` alias or (generic syntax) `"builtin.module"` (after blank lines and `//` comments); an ONNX file is a protobuf whose first
/// field is `ir_version` (tag byte `0x08`); anything else is read as jjt text.
pub fn detect(bytes: &[u8]) -> Format {
    if bytes.first() == Some(&0x08) {
        return Format::Onnx;
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let first =
        text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("//")).unwrap_or("");
    let mlir = ["module", "func.func", "#loc", "\"builtin.module\"", "\"func.func\""];
    if mlir.iter().any(|m| first.starts_with(m)) { Format::StableHlo } else { Format::Jjt }
}

/// `path` relative to the folder `dir`, refused unless it stays inside it (no absolute path,
/// no `..`): paths read from a file never reach outside that file's folder.
pub fn inside(dir: Option<&Path>, rel: &str) -> Result<std::path::PathBuf, String> {
    let p = Path::new(rel);
    let normal = p
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
    if rel.is_empty() || p.is_absolute() || !normal {
        return Err(format!("`{rel}` is outside the model's folder"));
    }
    Ok(dir.unwrap_or(Path::new(".")).join(p))
}

/// The default values a text model names (`w: f32[3] = npz("weights.npz")`), read from the
/// archives beside it, each checked against its input's type.
fn text_defaults(f: &Function, path: &Path) -> Result<Vec<(String, jjt_ir::Tensor)>, LoadError> {
    let bad = |msg: String| LoadError::Default { path: path.to_path_buf(), msg };
    let mut out = Vec::new();
    let mut archives: Vec<(String, Vec<(String, jjt_npy::Array)>)> = Vec::new();
    for p in f.params() {
        let Some(file) = &p.default else { continue };
        if !archives.iter().any(|(n, _)| n == file) {
            let full =
                inside(path.parent(), file).map_err(|m| bad(format!("input `{}`: {m}", p.name)))?;
            let arrays = jjt_npy::read_npz_file(&full)
                .map_err(|e| bad(format!("input `{}`: {}: {e}", p.name, full.display())))?;
            archives.push((file.clone(), arrays));
        }
        let arrays =
            archives.iter().find(|(n, _)| n == file).map_or(&[][..], |(_, a)| a.as_slice());
        let a = arrays.iter().find(|(n, _)| *n == p.name).ok_or_else(|| {
            bad(format!("input `{}`: `{file}` has no array of that name", p.name))
        })?;
        let t = jjt_ir::Tensor::from_array(a.1.clone());
        if t.ty() != p.ty {
            return Err(bad(format!(
                "input `{}` is {}, its default in `{file}` is {}",
                p.name,
                p.ty,
                t.ty()
            )));
        }
        out.push((p.name.clone(), t));
    }
    Ok(out)
}

/// A StableHLO module's public function as a jjt graph named `name`.
pub fn import_stablehlo(text: &str, name: &str) -> Result<Function, ImportError> {
    let m = mlir::parse(text)?;
    stablehlo::convert(&m, name)
}

/// An ONNX model's graph; `select(name, dims)` says which float initializers become inputs (with
/// their values as [`onnx::Imported::defaults`]); the others are constants. External data is
/// read from `dir` (and only from inside it).
pub fn import_onnx(
    bytes: &[u8],
    dir: Option<&Path>,
    name: &str,
    select: &dyn Fn(&str, &[usize]) -> bool,
) -> Result<onnx::Imported, ImportError> {
    let m = onnx::proto::decode_model(bytes)?;
    onnx::convert(&m, name, dir, select)
}

/// A model file read by [`load_with`]: the graph, the default values of inputs that were ONNX
/// initializers, and the names of every float initializer (selected or not).
#[derive(Debug)]
pub struct Loaded {
    /// The graph.
    pub function: Function,
    /// Default values (ONNX initializers turned into inputs).
    pub defaults: Vec<(String, jjt_ir::Tensor)>,
    /// Every float ONNX initializer, by its jjt name.
    pub initializers: Vec<String>,
}

/// Read a model file of any supported format ([`detect`]); ONNX initializers are constants.
pub fn load(path: &Path) -> Result<Function, LoadError> {
    load_with(path, &|_, _| false).map(|l| l.function)
}

/// Read a model file of any supported format; `select(name, dims)` picks the ONNX initializers that
/// become inputs (the others are constants; other formats ignore it).
pub fn load_with(
    path: &Path,
    select: &dyn Fn(&str, &[usize]) -> bool,
) -> Result<Loaded, LoadError> {
    let plain = |function| Loaded { function, defaults: vec![], initializers: vec![] };
    let io = |source| LoadError::Io { path: path.to_path_buf(), source };
    let bytes = std::fs::metadata(path).map_err(io)?.len();
    if bytes > MAX_MODEL_BYTES {
        return Err(LoadError::TooLong { path: path.to_path_buf(), bytes, limit: MAX_MODEL_BYTES });
    }
    let data = std::fs::read(path).map_err(io)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let name = names::sanitize(stem).replace('.', "_");
    match detect(&data) {
        Format::Jjt => {
            let function = jjt_ir::text::parse_file(path)?;
            let defaults = text_defaults(&function, path)?;
            Ok(Loaded { function, defaults, initializers: vec![] })
        }
        Format::Onnx => {
            let m = import_onnx(&data, path.parent(), &name, select)
                .map_err(|source| LoadError::Import { path: path.to_path_buf(), source })?;
            Ok(Loaded { function: m.function, defaults: m.defaults, initializers: m.initializers })
        }
        Format::StableHlo => {
            let text = String::from_utf8(data).map_err(|e| {
                io(std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
            })?;
            import_stablehlo(&text, &name)
                .map(plain)
                .map_err(|source| LoadError::Import { path: path.to_path_buf(), source })
        }
    }
}
