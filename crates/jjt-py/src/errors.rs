//! The Python exceptions jjt raises, and the mapping of the crate's errors onto them.

use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyMemoryError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;

create_exception!(
    _jjt,
    JjtError,
    PyException,
    "Base of jjt's own errors that are neither a ValueError nor a TypeError."
);
create_exception!(
    _jjt,
    ShapeError,
    PyValueError,
    "An array whose shape is not the one the model's input needs."
);
create_exception!(
    _jjt,
    InputError,
    PyTypeError,
    "A missing, unknown or duplicated input, or a value of the wrong dtype."
);
create_exception!(_jjt, ModelError, PyValueError, "A model file or text jjt cannot read.");
create_exception!(
    _jjt,
    TransformError,
    PyValueError,
    "A kernel jjt cannot build for this model (an op without a rule, an integer output, …)."
);
create_exception!(_jjt, CompileError, JjtError, "Compiling or running native code failed.");

/// A `PyErr` for any error of the facade crate.
pub(crate) fn to_py(e: jjt::Error) -> PyErr {
    use jjt::Error as E;
    match e {
        E::Model(jjt::import::LoadError::Io { path, source })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            PyFileNotFoundError::new_err(format!("{}: {source}", path.display()))
        }
        E::Model(e) => ModelError::new_err(e.to_string()),
        E::Trace(e) => ModelError::new_err(e.to_string()),
        E::Ad(e) => ad(e),
        E::Ir(e) => TransformError::new_err(e.to_string()),
        E::Jit(e) => jit(e),
        E::Eval(e) => CompileError::new_err(e.to_string()),
        E::Shape(e) => ShapeError::new_err(e.to_string()),
        E::FixedType { .. } => InputError::new_err(e.to_string()),
        other => JjtError::new_err(other.to_string()),
    }
}

/// Input names the model does not have are `InputError`s; the rest are about the model.
pub(crate) fn ad(e: jjt::ad::AdError) -> PyErr {
    use jjt::ad::AdError as A;
    match e {
        A::UnknownInput { .. } | A::NoMatch { .. } | A::NoWrt | A::NotFloat { .. } => {
            InputError::new_err(e.to_string())
        }
        A::DiagonalBatch { .. } => ShapeError::new_err(e.to_string()),
        other => TransformError::new_err(other.to_string()),
    }
}

pub(crate) fn jit(e: jjt::JitError) -> PyErr {
    match e {
        jjt::JitError::Alloc(_) => PyMemoryError::new_err(e.to_string()),
        other => CompileError::new_err(other.to_string()),
    }
}

pub(crate) fn load(e: jjt::import::LoadError) -> PyErr {
    to_py(jjt::Error::Model(e))
}

pub(crate) fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("JjtError", py.get_type::<JjtError>())?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("TransformError", py.get_type::<TransformError>())?;
    m.add("CompileError", py.get_type::<CompileError>())?;
    Ok(())
}
