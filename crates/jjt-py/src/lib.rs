//! The `jjt._jjt` extension module: jjt's models and compiled kernels for Python, NumPy arrays
//! in and out. The Python package `jjt` (in `python/jjt`) wraps it with `from_jax`,
//! `from_torch` and neural-tangents' `empirical_ntk_fn`.

#![forbid(unsafe_code)]

mod arrays;
mod errors;
mod kernel;
mod model;

use pyo3::prelude::*;

/// The jjt name an imported model gives a source name (`params['l0']['w']` → `params.l0.w`,
/// `0.weight` → `_0.weight`).
#[pyfunction]
fn sanitize(name: &str) -> String {
    jjt::import::names::sanitize(name)
}

#[pymodule]
fn _jjt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Model>()?;
    m.add_class::<kernel::Kernel>()?;
    m.add_function(wrap_pyfunction!(sanitize, m)?)?;
    errors::register(m)?;
    Ok(())
}
