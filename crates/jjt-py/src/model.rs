//! `Model`: a function read from a file or text, with the default values of its weights.

use std::path::PathBuf;

use jjt::ad::{Examples, Mode, Strategy};
use jjt::{DType, Function, Tensor};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::arrays::{numpy_name, to_numpy, to_tensor};
use crate::errors::{InputError, ModelError, ad, load, to_py, value_error};
use crate::kernel::Kernel;

/// A model: its graph, and the default values of inputs that are its weights (ONNX
/// initializers, `= npz(...)` defaults of the text format).
#[pyclass(frozen, module = "jjt._jjt")]
#[derive(Debug)]
pub struct Model {
    pub(crate) f: Function,
    pub(crate) defaults: Vec<(String, Tensor)>,
}

/// Every float ONNX initializer of rank ≥ 1 becomes an input with its value as default; scalar
/// initializers are code constants (an attention's 1/√d).
fn weights(_: &str, dims: &[usize]) -> bool {
    !dims.is_empty()
}

fn type_tuple<'py>(py: Python<'py>, ty: &jjt::TensorType) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, ty.shape.dims())
}

/// A string or a list of strings as names.
pub(crate) fn names(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Vec<String>>> {
    let Some(obj) = obj else { return Ok(None) };
    if let Ok(s) = obj.extract::<String>() {
        return Ok(Some(vec![s]));
    }
    let bad = |_| InputError::new_err(format!("{what} takes a name or a list of names"));
    let list: Vec<String> = obj.extract().map_err(bad)?;
    Ok(Some(list))
}

impl Model {
    pub(crate) fn new(f: Function, defaults: Vec<(String, Tensor)>) -> Model {
        Model { f, defaults }
    }

    /// The function of one output (`pick`: a name or a position), or `f` when it has one.
    pub(crate) fn one_output(&self, pick: Option<&Bound<'_, PyAny>>) -> PyResult<Function> {
        let outs = self.f.output_names();
        let listed = || outs.join(", ");
        let k = match pick {
            None if outs.len() == 1 => 0,
            None => {
                return Err(value_error(format!(
                    "the model has {} outputs ({}): choose one with output=",
                    outs.len(),
                    listed()
                )));
            }
            Some(p) => {
                if let Ok(i) = p.extract::<usize>() {
                    i
                } else {
                    let n: String = p.extract()?;
                    outs.iter().position(|o| *o == n).ok_or_else(|| {
                        value_error(format!(
                            "the model has no output `{n}` (outputs: {})",
                            listed()
                        ))
                    })?
                }
            }
        };
        self.f.with_output(k).ok_or_else(|| {
            value_error(format!("the model has no output {k} (outputs: {})", listed()))
        })
    }
}

fn parse_mode(s: &str) -> PyResult<Mode> {
    match s {
        "full" => Ok(Mode::Full),
        "trace" => Ok(Mode::Trace),
        "diagonal" => Ok(Mode::Diagonal),
        _ => Err(value_error(format!("mode must be 'full', 'trace' or 'diagonal', got '{s}'"))),
    }
}

fn parse_examples(s: &str) -> PyResult<Examples> {
    match s {
        "all" => Ok(Examples::All),
        "diagonal" => Ok(Examples::Diagonal),
        _ => Err(value_error(format!("examples must be 'all' or 'diagonal', got '{s}'"))),
    }
}

fn parse_strategy(s: &str) -> PyResult<Option<Strategy>> {
    match s {
        "auto" => Ok(None),
        "ntvp" => Ok(Some(Strategy::Ntvp)),
        "jc" => Ok(Some(Strategy::Jc)),
        _ => Err(value_error(format!("strategy must be 'auto', 'ntvp' or 'jc', got '{s}'"))),
    }
}

#[pymethods]
impl Model {
    /// Read a model file: jjt text (`.jjt`), StableHLO text (`.mlir`, from `jax.export`) or
    /// ONNX (`.onnx`), recognised by content. ONNX weights become inputs whose default is their
    /// value.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
        let loaded = py.detach(|| jjt::import::load_with(&path, &weights)).map_err(load)?;
        Ok(Model::new(loaded.function, loaded.defaults))
    }

    /// A model from text: `format` is `'jjt'` or `'stablehlo'`.
    #[staticmethod]
    #[pyo3(signature = (text, format = "jjt", name = "model"))]
    fn from_text(text: &str, format: &str, name: &str) -> PyResult<Model> {
        let f = match format {
            "jjt" => jjt::text::parse(text).map_err(|e| ModelError::new_err(e.to_string()))?,
            "stablehlo" => jjt::import::import_stablehlo(text, name)
                .map_err(|e| ModelError::new_err(e.to_string()))?,
            _ => {
                return Err(value_error(format!(
                    "format must be 'jjt' or 'stablehlo', got '{format}'"
                )));
            }
        };
        Ok(Model::new(f, Vec::new()))
    }

    /// A model from the bytes of an ONNX file whose weights are inline.
    #[staticmethod]
    #[pyo3(signature = (data, name = "model"))]
    fn from_onnx(py: Python<'_>, data: &[u8], name: &str) -> PyResult<Model> {
        let m = py
            .detach(|| jjt::import::import_onnx(data, None, name, &weights))
            .map_err(|e| ModelError::new_err(e.to_string()))?;
        Ok(Model::new(m.function, m.defaults))
    }

    /// The model's name.
    #[getter]
    fn name(&self) -> &str {
        &self.f.name
    }

    /// The inputs, in order: `(name, dtype, shape, has_default)`.
    #[getter]
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self.f.params().iter().map(|p| {
            let has = self.defaults.iter().any(|(n, _)| *n == p.name);
            Ok::<_, PyErr>((p.name.as_str(), numpy_name(p.ty.dtype), type_tuple(py, &p.ty)?, has))
        });
        PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)
    }

    /// The outputs, in order: `(name, dtype, shape)`.
    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names = self.f.output_names();
        let mut items = Vec::new();
        for (n, t) in names.iter().zip(self.f.output_types()) {
            let t = t.ok_or_else(|| ModelError::new_err("an output has no type"))?;
            items.push((n.clone(), numpy_name(t.dtype), type_tuple(py, t)?));
        }
        PyList::new(py, items)
    }

    /// The default values of inputs (the model's weights), by name.
    #[getter]
    fn defaults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (n, t) in &self.defaults {
            d.set_item(n, to_numpy(py, t.clone())?)?;
        }
        Ok(d)
    }

    /// The graph in jjt's text format.
    fn text(&self) -> String {
        jjt::text::print(&self.f)
    }

    /// The model's outputs on `inputs` (a dict from input name to array; inputs with defaults
    /// may be left out), computed by the compiled model: one array, or a tuple of them.
    #[pyo3(signature = (inputs = None))]
    fn eval<'py>(
        &self,
        py: Python<'py>,
        inputs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut args = Vec::with_capacity(self.f.params().len());
        if let Some(d) = inputs {
            for k in d.keys() {
                let k: String = k.extract()?;
                if self.f.param(&k).is_none() {
                    return Err(crate::kernel::unknown(&self.f, &k, "inputs"));
                }
            }
        }
        for p in self.f.params() {
            let given = match inputs {
                Some(d) => d.get_item(&p.name)?,
                None => None,
            };
            let t = match given {
                Some(v) => to_tensor(&v, p.ty.dtype, &p.name)?,
                None => self
                    .defaults
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| {
                        InputError::new_err(format!("missing input `{}`: {}", p.name, p.ty))
                    })?,
            };
            if t.ty() != p.ty {
                return Err(crate::errors::ShapeError::new_err(format!(
                    "input `{}`: expected {}, got {}",
                    p.name,
                    p.ty,
                    t.ty()
                )));
            }
            args.push(t);
        }
        let f = &self.f;
        let outs = py
            .detach(|| {
                let c = jjt::compile(f)?;
                let refs: Vec<&Tensor> = args.iter().collect();
                Ok::<_, jjt::Error>(c.call(&refs)?)
            })
            .map_err(to_py)?;
        let mut arrays = Vec::with_capacity(outs.len());
        for t in outs {
            arrays.push(to_numpy(py, t)?);
        }
        if arrays.len() == 1 {
            Ok(arrays.remove(0))
        } else {
            Ok(PyTuple::new(py, arrays)?.into_any())
        }
    }

    /// A compiled kernel K = J(p1)·J(p2)ᵀ of one output of the model.
    ///
    /// `wrt`: the inputs J is taken with respect to (names or glob patterns; default: the
    /// inputs with default values, i.e. the weights). `shared`: inputs with one value for both
    /// sides (default: the inputs with default values). Inputs with defaults that are neither
    /// become constants; the rest are per-side. `mode`: 'full', 'trace' (sum over the output's
    /// elements) or 'diagonal'; `examples`: 'all' or 'diagonal'; `strategy`: 'auto', 'ntvp' or
    /// 'jc'; `dtype`: None (the model's) or 'float64' (every f32 value computed in f64).
    /// `batch_of_one`: when every per-side input and the output lead with an axis of one, the
    /// model is an export of a batch of one, and a batch `[B, …]` arrives in place of `[1, …]`
    /// (K drops the size-1 axes); False reads those inputs as one example like any other.
    #[pyo3(signature = (wrt = None, shared = None, mode = "full", examples = "all", strategy = "auto", dtype = None, output = None, batch_of_one = true))]
    #[allow(clippy::too_many_arguments)]
    fn kernel(
        &self,
        wrt: Option<&Bound<'_, PyAny>>,
        shared: Option<&Bound<'_, PyAny>>,
        mode: &str,
        examples: &str,
        strategy: &str,
        dtype: Option<&Bound<'_, PyAny>>,
        output: Option<&Bound<'_, PyAny>>,
        batch_of_one: bool,
    ) -> PyResult<Kernel> {
        let mode = parse_mode(mode)?;
        let examples = parse_examples(examples)?;
        let strategy = parse_strategy(strategy)?;
        let f = self.one_output(output)?;
        let (f, defaults) = match dtype_of(dtype)? {
            None => (f, self.defaults.clone()),
            Some(DType::F64) => {
                let g = jjt::promote_f64(&f).map_err(ad)?;
                let d = self
                    .defaults
                    .iter()
                    .map(|(n, t)| {
                        let ty = t.ty().with_dtype(DType::F64);
                        let v = if t.dtype() == DType::F32 {
                            Tensor::from_f64(&ty, &t.to_f64_vec())
                                .map_err(|e| to_py(jjt::Error::Shape(e)))?
                        } else {
                            t.clone()
                        };
                        Ok((n.clone(), v))
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                (g, d)
            }
            Some(d) => {
                let all = f.params().iter().all(|p| p.ty.dtype != DType::F64)
                    && f.output_types().iter().all(|t| t.is_some_and(|t| t.dtype != DType::F64));
                if !all || d != DType::F32 {
                    return Err(value_error(format!(
                        "dtype={}: jjt computes a model in its own precision or, with dtype='float64', in f64",
                        numpy_name(d)
                    )));
                }
                (f, self.defaults.clone())
            }
        };
        let with_default: Vec<String> = defaults.iter().map(|(n, _)| n.clone()).collect();
        let wrt = match names(wrt, "wrt")? {
            Some(w) => w,
            None if with_default.is_empty() => {
                return Err(InputError::new_err(format!(
                    "the model has no weights with default values: name the inputs to differentiate with wrt= (inputs: {})",
                    describe(&f)
                )));
            }
            None => with_default.clone(),
        };
        let shared = names(shared, "shared")?.unwrap_or_else(|| with_default.clone());
        Kernel::new(f, defaults, wrt, shared, (mode, examples, strategy), batch_of_one)
    }

    fn __repr__(&self) -> String {
        format!("Model({}: {} -> {})", self.f.name, describe(&self.f), {
            let t: Vec<String> = self
                .f
                .output_types()
                .iter()
                .map(|t| t.map_or("?".into(), |t| t.to_string()))
                .collect();
            t.join(", ")
        })
    }
}

/// `name: type, …` of the inputs.
pub(crate) fn describe(f: &Function) -> String {
    f.params().iter().map(|p| format!("{}: {}", p.name, p.ty)).collect::<Vec<_>>().join(", ")
}

/// A dtype argument (`None`, `'float64'`, `np.float64`, `np.dtype('float32')`, …).
fn dtype_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<DType>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let py = obj.py();
    let d = py.import("numpy")?.getattr("dtype")?.call1((obj,))?;
    let name: String = d.getattr("name")?.extract()?;
    match name.as_str() {
        "float64" => Ok(Some(DType::F64)),
        "float32" => Ok(Some(DType::F32)),
        other => Err(value_error(format!("dtype must be float32 or float64, got {other}"))),
    }
}
