//! What can go wrong reading a model exported by a framework.

use std::path::PathBuf;

use crate::mlir::{MlirError, Pos};

/// A model that could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The MLIR text is malformed.
    #[error("malformed MLIR: {0}")]
    Mlir(#[from] MlirError),
    /// An op jjt does not convert.
    #[error("{pos}: unsupported op `{op}`; supported: {supported}")]
    Unsupported {
        /// Where.
        pos: Pos,
        /// The op (and the form that is not supported).
        op: String,
        /// The supported ops.
        supported: String,
    },
    /// An op's attributes or operands do not make sense.
    #[error("{pos}: {msg}")]
    Malformed {
        /// Where.
        pos: Pos,
        /// What.
        msg: String,
    },
    /// jjt refused to build an op (its types).
    #[error("{pos}: `{op}`: {source}")]
    Build {
        /// Where.
        pos: Pos,
        /// The op.
        op: String,
        /// Why.
        source: jjt_ir::IrError,
    },
    /// The type an op builds differs from the type the text declares.
    #[error("{pos}: `{op}` declares {declared} but computes {built}")]
    TypeMismatch {
        /// Where.
        pos: Pos,
        /// The op.
        op: String,
        /// The declared type.
        declared: String,
        /// What jjt computed.
        built: String,
    },
    /// A symbolic dimension other than an argument's leading (example) one.
    #[error(
        "{pos}: {what} has a symbolic dimension after its first; only the leading (example) dimension may be symbolic"
    )]
    Dynamic {
        /// Where.
        pos: Pos,
        /// The argument or op.
        what: String,
    },
    /// An element type jjt has no dtype for.
    #[error("{pos}: element type `{elem}` is not supported (f32, f64, i32, i64, i1 are)")]
    ElementType {
        /// Where.
        pos: Pos,
        /// The type as written.
        elem: String,
    },
    /// Two inputs map to one name.
    #[error("inputs `{first}` and `{second}` both become `{name}`")]
    NameClash {
        /// The jjt name.
        name: String,
        /// The first source.
        first: String,
        /// The second source.
        second: String,
    },
    /// A value used before it is defined (or never).
    #[error("{pos}: unknown value `%{name}`")]
    UnknownValue {
        /// Where.
        pos: Pos,
        /// The value.
        name: String,
    },
    /// A function that calls itself.
    #[error("{pos}: @{name} is called recursively (or calls nest too deep)")]
    Recursion {
        /// Where.
        pos: Pos,
        /// The function.
        name: String,
    },
    /// A malformed ONNX protobuf.
    #[error("{0}")]
    Proto(#[from] crate::onnx::proto::ProtoError),
    /// An ONNX node or value that cannot be read: where (node name and index, or the value)
    /// and why.
    #[error("{at}: {msg}")]
    Onnx {
        /// The node (`node 3 \`/fc1/Gemm\` (Gemm)`), input or initializer.
        at: String,
        /// What.
        msg: String,
    },
    /// No public function.
    #[error("the module has no public function (`main`)")]
    NoMain,
}

/// A model file that could not be loaded (any format).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A jjt text model.
    #[error(transparent)]
    Text(#[from] jjt_ir::text::ModelFileError),
    /// An exported model.
    #[error("{}: {source}", path.display())]
    Import {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ImportError,
    },
    /// The file could not be read.
    #[error("cannot read model `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An input's default value (`= npz("…")`) that cannot be read.
    #[error("{}: {msg}", path.display())]
    Default {
        /// The model file.
        path: PathBuf,
        /// What.
        msg: String,
    },
    /// Larger than the import limit.
    #[error("model `{}` is {bytes} bytes, more than the limit of {limit}", path.display())]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}
