//! Models exported by frameworks, as jjt graphs: StableHLO text from JAX (`jax.export`'s
//! `mlir_module()`, `jax.jit(f).lower(…).as_text()`).
//!
//! [`load`] reads any model file, recognising the format by its content ([`detect`]): jjt's
//! text format, StableHLO text, or (recognised, not read yet) ONNX.
//!
//! | module | what |
//! |---|---|
//! | [`mlir`] | MLIR text: tokens, functions, operations (pretty and generic syntax), locations |
//! | [`stablehlo`] | StableHLO ops to jjt ops ([`stablehlo::SUPPORTED`]) |
//! | [`names`] | framework paths (`params['w']`) to jjt names (`params.w`) |

use std::path::Path;

use jjt_ir::Function;

pub mod error;
pub mod mlir;
pub mod names;
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

/// A StableHLO module's public function as a jjt graph named `name`.
pub fn import_stablehlo(text: &str, name: &str) -> Result<Function, ImportError> {
    let m = mlir::parse(text)?;
    stablehlo::convert(&m, name)
}

/// Read a model file of any supported format ([`detect`]).
pub fn load(path: &Path) -> Result<Function, LoadError> {
    let io = |source| LoadError::Io { path: path.to_path_buf(), source };
    let bytes = std::fs::metadata(path).map_err(io)?.len();
    if bytes > MAX_MODEL_BYTES {
        return Err(LoadError::TooLong { path: path.to_path_buf(), bytes, limit: MAX_MODEL_BYTES });
    }
    let data = std::fs::read(path).map_err(io)?;
    match detect(&data) {
        Format::Jjt => Ok(jjt_ir::text::parse_file(path)?),
        Format::Onnx => Err(LoadError::NotYet { path: path.to_path_buf(), format: "ONNX" }),
        Format::StableHlo => {
            let text = String::from_utf8(data).map_err(|e| {
                io(std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
            })?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
            let name = names::sanitize(stem).replace('.', "_");
            import_stablehlo(&text, &name)
                .map_err(|source| LoadError::Import { path: path.to_path_buf(), source })
        }
    }
}
