//! The errors of compiling and calling.

use jjt_ir::TensorType;

/// Errors from compiling or calling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JitError {
    /// The function does not verify.
    #[error("{0}")]
    Invalid(jjt_ir::VerifyErrors),
    /// Cranelift rejected the generated code (a bug in jjt; the message has the details).
    #[error("code generation failed: {0}")]
    Codegen(String),
    /// Something the backend cannot do.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Wrong number of arguments.
    #[error("`{function}` takes {expected} inputs, got {got}")]
    InputCount {
        /// Function name.
        function: String,
        /// Inputs declared.
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// An argument of the wrong type.
    #[error("input #{index} (`{name}`): expected {expected}, got {actual}")]
    InputType {
        /// Position.
        index: usize,
        /// Input name.
        name: String,
        /// Declared type.
        expected: TensorType,
        /// Given type.
        actual: TensorType,
    },
    /// A raw buffer of the wrong byte length.
    #[error("{what} #{index}: expected {expected} bytes, got {actual}")]
    BufferSize {
        /// "input" or "output".
        what: &'static str,
        /// Position.
        index: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The arena could not be allocated.
    #[error("cannot allocate the {0}-byte arena")]
    Alloc(usize),
    /// A part of a step that ran on several threads panicked (a bug in jjt or in a library it
    /// calls). The call's outputs are incomplete; the handle and its helper threads stay
    /// usable.
    #[error("a part of a multi-threaded step panicked on thread `{thread}`: {message}")]
    WorkerPanicked {
        /// The thread the part ran on (a helper, `jjt-gemm-N`, or the caller's own).
        thread: String,
        /// The panic message.
        message: String,
    },
    /// A value, the constants or the scratch memory would exceed the memory budget.
    #[error(
        "{what} needs {needed} bytes, over the budget of {limit} bytes; compute the kernel in tiles (smaller batches) or simplify the model"
    )]
    TooLarge {
        /// What is too large.
        what: String,
        /// Bytes needed (saturated at u64::MAX).
        needed: u64,
        /// The budget.
        limit: u64,
    },
}

/// A Cranelift error as [`JitError::Codegen`].
pub(crate) fn codegen_err(e: impl std::fmt::Display) -> JitError {
    JitError::Codegen(e.to_string())
}
