//! `Kernel`: K = J(p1)·J(p2)ᵀ of a model, compiled for each pair of batch sizes it is called
//! with, and called on NumPy arrays in place with the GIL released.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jjt::ad::{Examples, Form, KernelSpec, Mode, Role, Strategy};
use jjt::{Compiled, DType, Function, Tensor, TensorType};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::arrays::{Held, hold, numpy_name, output};
use crate::errors::{InputError, ShapeError, ad, to_py, value_error};

/// What one compilation is for: the kernel or its operator form, and the batch sizes.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Key {
    form: u8,
    batch: Option<(usize, usize)>,
}

/// A compiled kernel for one [`Key`].
#[derive(Debug)]
struct Built {
    compiled: Compiled,
}

/// A compiled kernel of a model: call it with the per-side inputs of both sides and the shared
/// ones.
#[pyclass(frozen, module = "jjt._jjt")]
#[derive(Debug)]
pub struct Kernel {
    f: Function,
    spec: KernelSpec,
    auto: bool,
    /// Inputs of `f` that are per-side / shared, in `f`'s order.
    per_side: Vec<usize>,
    shared: Vec<usize>,
    /// Default values of inputs, in `f`'s dtype.
    defaults: Vec<(String, Tensor)>,
    /// Every per-side input and the output have a leading axis of one example (an export of a
    /// batch of one): a batch of B arrives as `[B, …]` in place of `[1, …]`, and K drops the
    /// size-1 axes of the output.
    batch_of_one: bool,
    cache: Mutex<HashMap<Key, Arc<Built>>>,
}

/// `InputError` for an input name the function does not have.
pub(crate) fn unknown(f: &Function, name: &str, what: &str) -> PyErr {
    let hint = jjt::text::did_you_mean(name, f.params().iter().map(|p| p.name.as_str()));
    let hint = hint.map_or(String::new(), |h| format!("; {h}"));
    InputError::new_err(format!(
        "{what}: the model has no input `{name}` (inputs: {}){hint}",
        crate::model::describe(f)
    ))
}

/// The batch sizes of both sides (`None`: one example each) and the values bound, in the
/// kernel's input order.
type Bound3<'py> = (Option<(usize, usize)>, Vec<Held<'py>>);

/// How a side's arrays are batched.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Batch {
    One,
    Many(usize),
}

impl Kernel {
    pub(crate) fn new(
        f: Function,
        defaults: Vec<(String, Tensor)>,
        wrt: Vec<String>,
        shared: Vec<String>,
        (mode, examples, strategy): (Mode, Examples, Option<Strategy>),
        batch_of_one: bool,
    ) -> PyResult<Kernel> {
        let wrt_mask = jjt::ad::input_mask(&f, &wrt).map_err(ad)?;
        let shared_mask = jjt::ad::input_mask(&f, &shared).map_err(ad)?;
        // Weights neither differentiated nor shared are constants the optimiser folds.
        let fixed: Vec<(&str, &Tensor)> = defaults
            .iter()
            .filter(|(n, _)| {
                let i = f.params().iter().position(|p| p.name == *n);
                i.is_some_and(|i| !wrt_mask[i] && !shared_mask[i])
            })
            .map(|(n, t)| (n.as_str(), t))
            .collect();
        let names = |mask: &[bool]| -> Vec<String> {
            f.params().iter().zip(mask).filter(|(_, m)| **m).map(|(p, _)| p.name.clone()).collect()
        };
        let (wrt, shared) = (names(&wrt_mask), names(&shared_mask));
        let g = if fixed.is_empty() {
            f.clone()
        } else {
            jjt::fix_inputs(&f, &fixed).map_err(to_py)?
        };
        let defaults: Vec<(String, Tensor)> =
            defaults.into_iter().filter(|(n, _)| g.param(n).is_some()).collect();
        let spec = KernelSpec {
            wrt,
            shared,
            mode,
            examples,
            strategy: strategy.unwrap_or_default(),
            batch: None,
        };
        // Errors of the description (an integer output, no input to differentiate) now.
        spec.layout(&g, Form::Kernel).map_err(ad)?;
        let per_side: Vec<usize> =
            (0..g.params().len()).filter(|&i| !spec.shared.contains(&g.params()[i].name)).collect();
        let shared_idx: Vec<usize> =
            (0..g.params().len()).filter(|&i| spec.shared.contains(&g.params()[i].name)).collect();
        let batch_of_one = batch_of_one && spec.batch_of_one(&g);
        Ok(Kernel {
            f: g,
            spec,
            auto: strategy.is_none(),
            per_side,
            shared: shared_idx,
            defaults,
            batch_of_one,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The values of one side's per-side inputs, in `f`'s order.
    fn side<'py>(&'py self, x: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<Held<'py>>> {
        let params = self.f.params();
        if let Ok(d) = x.cast::<PyDict>() {
            self.check_keys(d, &self.per_side, what, "shared, not per-side: pass it in `shared`")?;
            let mut out = Vec::with_capacity(self.per_side.len());
            for &i in &self.per_side {
                let p = &params[i];
                match d.get_item(&p.name)? {
                    Some(v) => out.push(hold(&v, p.ty.dtype, &p.name, what)?),
                    None => out.push(self.default(&p.name, &p.ty, what)?),
                }
            }
            return Ok(out);
        }
        match self.per_side.as_slice() {
            [i] => Ok(vec![hold(x, params[*i].ty.dtype, &params[*i].name, what)?]),
            [] => Err(InputError::new_err(format!(
                "{what}: the kernel has no per-side inputs (every input is shared); pass x1=None"
            ))),
            _ => Err(InputError::new_err(format!(
                "{what}: the kernel has {} per-side inputs ({}): pass a dict from name to array",
                self.per_side.len(),
                self.per_side
                    .iter()
                    .map(|&i| params[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Every key of `d` names one of the inputs `allowed` (else an `InputError`: an unknown
    /// name, or an input of the other kind, which `other` describes).
    fn check_keys(
        &self,
        d: &Bound<'_, PyDict>,
        allowed: &[usize],
        what: &str,
        other: &str,
    ) -> PyResult<()> {
        let params = self.f.params();
        for k in d.keys() {
            let k: String = k.extract()?;
            if self.f.param(&k).is_none() {
                return Err(unknown(&self.f, &k, what));
            }
            if !allowed.iter().any(|&i| params[i].name == k) {
                return Err(InputError::new_err(format!("{what}: input `{k}` is {other}")));
            }
        }
        Ok(())
    }

    fn default<'py>(&'py self, name: &str, ty: &TensorType, what: &str) -> PyResult<Held<'py>> {
        match self.defaults.iter().find(|(n, _)| n == name) {
            Some((_, t)) => Ok(Held::Owned(t)),
            None => Err(InputError::new_err(format!("{what}: missing input `{name}`: {ty}"))),
        }
    }

    /// The shared inputs' values, in `f`'s order.
    fn shared_values<'py>(&'py self, s: Option<&Bound<'py, PyAny>>) -> PyResult<Vec<Held<'py>>> {
        let params = self.f.params();
        let s = s.filter(|s| !s.is_none());
        let dict = match s {
            None => None,
            Some(s) => match s.cast::<PyDict>() {
                Ok(d) => Some(d.clone()),
                Err(_) if self.shared.len() == 1 => {
                    let p = &params[self.shared[0]];
                    return Ok(vec![hold(s, p.ty.dtype, &p.name, "shared")?]);
                }
                Err(_) => {
                    return Err(InputError::new_err(
                        "shared: pass a dict from input name to array",
                    ));
                }
            },
        };
        if let Some(d) = &dict {
            self.check_keys(
                d,
                &self.shared,
                "shared",
                "per-side, not shared: pass it in x1 and x2",
            )?;
        }
        let mut out = Vec::with_capacity(self.shared.len());
        for &i in &self.shared {
            let p = &params[i];
            let given = match &dict {
                Some(d) => d.get_item(&p.name)?,
                None => None,
            };
            match given {
                Some(v) => out.push(hold(&v, p.ty.dtype, &p.name, "shared")?),
                None => out.push(self.default(&p.name, &p.ty, "shared")?),
            }
        }
        Ok(out)
    }

    /// How one side's arrays are batched, from their shapes.
    fn batch_of(&self, vals: &[Held<'_>], what: &str) -> PyResult<Batch> {
        let params = self.f.params();
        let mut seen: Option<Batch> = None;
        for (h, &i) in vals.iter().zip(&self.per_side) {
            let p = &params[i];
            let want = p.ty.shape.dims();
            let got = h.dims();
            let b = if self.batch_of_one && got.len() == want.len() && got[1..] == want[1..] {
                Batch::Many(got[0])
            } else if got == want {
                Batch::One
            } else if got.len() == want.len() + 1 && got[1..] == *want {
                Batch::Many(got[0])
            } else {
                let ty = |d: &[usize]| TensorType::new(p.ty.dtype, d.to_vec());
                let batched = if self.batch_of_one {
                    format!("[B,{}]", join(&want[1..]))
                } else {
                    format!("[B,{}]", join(want))
                };
                return Err(ShapeError::new_err(format!(
                    "input `{}` ({what}): expected {} (one example) or {}{batched} (a batch), got {}",
                    p.name,
                    p.ty,
                    numpy_name_short(p.ty.dtype),
                    ty(&got)
                )));
            };
            match seen {
                Some(s) if s != b => {
                    let hint = if matches!(h, Held::Owned(_)) {
                        format!(
                            " (`{}` takes its default, one example's value: pass it for each example, or make it shared)",
                            p.name
                        )
                    } else {
                        String::new()
                    };
                    return Err(ShapeError::new_err(format!(
                        "{what}: the per-side inputs disagree on the examples: `{}` is {}, the ones before it {}{hint}",
                        p.name,
                        describe_batch(b),
                        describe_batch(s)
                    )));
                }
                _ => seen = Some(b),
            }
        }
        Ok(seen.unwrap_or(Batch::One))
    }

    /// The compiled function for `key`, compiled (with the GIL released) on first use.
    fn built(&self, py: Python<'_>, key: Key) -> PyResult<Arc<Built>> {
        if let Some(b) = self.cache.lock().map_err(poisoned)?.get(&key) {
            return Ok(b.clone());
        }
        let spec = KernelSpec { batch: key.batch, ..self.spec.clone() };
        let built = py
            .detach(|| {
                if key.form == 0 {
                    let graph = self.builder(&spec).optimized()?;
                    Ok::<_, jjt::Error>(Built { compiled: jjt::compile(&graph)? })
                } else {
                    let graph = jjt::optimize(&spec.apply(&self.f)?)?;
                    Ok(Built { compiled: jjt::compile(&graph)? })
                }
            })
            .map_err(to_py)?;
        let built = Arc::new(built);
        self.cache.lock().map_err(poisoned)?.insert(key, built.clone());
        Ok(built)
    }

    fn builder<'f>(&'f self, spec: &KernelSpec) -> jjt::Kernel<'f> {
        let mut k = jjt::Kernel::new(&self.f)
            .wrt(spec.wrt.iter().cloned())
            .shared(spec.shared.iter().cloned())
            .mode(spec.mode)
            .examples(spec.examples);
        if let Some(b) = spec.batch {
            k = k.batch(b.0, b.1);
        }
        if !self.auto {
            k = k.strategy(spec.strategy);
        }
        k
    }

    /// Bind both sides and the shared inputs; the batch key and the values in the kernel's
    /// input order (side 1, side 2, shared).
    fn bind<'py>(
        &'py self,
        x1: Option<&Bound<'py, PyAny>>,
        x2: Option<&Bound<'py, PyAny>>,
        shared: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound3<'py>> {
        let x1 = x1.filter(|x| !x.is_none());
        let x2 = x2.filter(|x| !x.is_none());
        let (s1, s2) = match (x1, x2, self.per_side.is_empty()) {
            (None, None, true) => (Vec::new(), Vec::new()),
            (Some(_), _, true) | (_, Some(_), true) => {
                return Err(InputError::new_err(
                    "the kernel has no per-side inputs (every input is shared): pass x1=None",
                ));
            }
            (None, _, false) => {
                return Err(InputError::new_err("x1: missing (the per-side inputs of side 1)"));
            }
            (Some(a), None, false) => (self.side(a, "x1")?, self.side(a, "x2")?),
            (Some(a), Some(b), false) => (self.side(a, "x1")?, self.side(b, "x2")?),
        };
        let batch = if self.per_side.is_empty() {
            None
        } else {
            match (self.batch_of(&s1, "x1")?, self.batch_of(&s2, "x2")?) {
                (Batch::One, Batch::One) => None,
                (Batch::Many(a), Batch::Many(b)) => Some((a, b)),
                (a, b) => {
                    return Err(ShapeError::new_err(format!(
                        "x1 is {} and x2 is {}: give both sides one example, or both a batch",
                        describe_batch(a),
                        describe_batch(b)
                    )));
                }
            }
        };
        if let (Some((b1, b2)), Examples::Diagonal) = (batch, self.spec.examples)
            && b1 != b2
        {
            return Err(ShapeError::new_err(format!(
                "examples='diagonal' pairs example i of x1 with example i of x2: the batches have {b1} and {b2} examples"
            )));
        }
        let shared = self.shared_values(shared)?;
        let params = self.f.params();
        for (h, &i) in shared.iter().zip(&self.shared) {
            let p = &params[i];
            if h.dims() != p.ty.shape.dims() {
                return Err(ShapeError::new_err(format!(
                    "input `{}` (shared): expected {}, got {}",
                    p.name,
                    p.ty,
                    TensorType::new(p.ty.dtype, h.dims())
                )));
            }
        }
        let mut all = s1;
        all.extend(s2);
        all.extend(shared);
        Ok((batch, all))
    }

    /// The output's dims with the size-1 example axes dropped, for an export of a batch of one
    /// called with a batch (`axes`: the positions of those axes in `dims`).
    fn squeezed(
        &self,
        dims: &[usize],
        batch: Option<(usize, usize)>,
        axes: &[usize],
    ) -> Vec<usize> {
        if !self.batch_of_one || batch.is_none() || axes.iter().any(|&a| dims.get(a) != Some(&1)) {
            return dims.to_vec();
        }
        dims.iter().enumerate().filter(|(a, _)| !axes.contains(a)).map(|(_, &d)| d).collect()
    }

    /// Run `built` on `vals` (plus `extra` bytes, the operator's `v`) into a new array.
    fn run<'py>(
        &self,
        py: Python<'py>,
        built: &Built,
        vals: &[Held<'py>],
        extra: Option<&Held<'py>>,
        dims: &[usize],
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut bytes = Vec::with_capacity(vals.len() + 1);
        for v in vals.iter().chain(extra) {
            bytes.push(v.bytes()?);
        }
        let refs: Vec<&[u8]> = bytes.iter().map(|b| b.as_ref()).collect();
        let out_ty = built
            .compiled
            .outputs()
            .first()
            .cloned()
            .ok_or_else(|| value_error("the kernel has no output"))?;
        let c = &built.compiled;
        output(py, out_ty.dtype, dims, |buf| {
            py.detach(|| c.call_raw(&refs, &mut [buf])).map_err(crate::errors::jit)
        })
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> PyErr {
    crate::errors::CompileError::new_err("a compilation panicked on another thread")
}

fn join(d: &[usize]) -> String {
    d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

fn numpy_name_short(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I32 => "i32",
        DType::Bool => "bool",
    }
}

fn describe_batch(b: Batch) -> String {
    match b {
        Batch::One => "one example".into(),
        Batch::Many(n) => format!("a batch of {n}"),
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Full => "full",
        Mode::Trace => "trace",
        Mode::Diagonal => "diagonal",
    }
}

#[pymethods]
impl Kernel {
    /// K for the per-side inputs `x1` and `x2` (an array when the kernel has one per-side
    /// input, else a dict from name to array; `x2=None` means `x1`) and the shared inputs (a
    /// dict; inputs with default values may be left out). A leading axis of examples on the
    /// per-side inputs makes K batched: `[B1, B2, out…, out…]` in the full mode.
    #[pyo3(signature = (x1 = None, x2 = None, shared = None))]
    fn __call__<'py>(
        &'py self,
        py: Python<'py>,
        x1: Option<&Bound<'py, PyAny>>,
        x2: Option<&Bound<'py, PyAny>>,
        shared: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (batch, vals) = self.bind(x1, x2, shared)?;
        let built = self.built(py, Key { form: 0, batch })?;
        let out = built.compiled.outputs().first().cloned();
        let out = out.ok_or_else(|| value_error("the kernel has no output"))?;
        let axes = self.spec.batch_of_one_axes(&self.f);
        let dims = self.squeezed(out.shape.dims(), batch, &axes);
        self.run(py, &built, &vals, None, &dims)
    }

    /// K·v: `v` has the output's shape, with side 2's batch axis first when batched
    /// (`[B2, out…]`); the result has side 1's (`[B1, out…]`). J is never built.
    #[pyo3(signature = (v, x1 = None, x2 = None, shared = None))]
    fn apply<'py>(
        &'py self,
        py: Python<'py>,
        v: &Bound<'py, PyAny>,
        x1: Option<&Bound<'py, PyAny>>,
        x2: Option<&Bound<'py, PyAny>>,
        shared: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.spec.mode != Mode::Full {
            return Err(value_error(format!(
                "apply multiplies by the full K: this kernel's mode is '{}'",
                mode_name(self.spec.mode)
            )));
        }
        let (batch, vals) = self.bind(x1, x2, shared)?;
        let built = self.built(py, Key { form: 1, batch })?;
        let c = &built.compiled;
        let v_ty = c.inputs().last().cloned().ok_or_else(|| value_error("no v input"))?;
        let hv = hold(v, v_ty.dtype, "v", "v")?;
        let exact = v_ty.shape.dims().to_vec();
        let short = self.squeezed(&exact, batch, &[1]);
        if hv.dims() != exact && hv.dims() != short {
            return Err(ShapeError::new_err(format!(
                "v: expected {}, got {}",
                TensorType::new(v_ty.dtype, short),
                TensorType::new(v_ty.dtype, hv.dims())
            )));
        }
        let out = c.outputs().first().cloned().ok_or_else(|| value_error("no output"))?;
        let dims = self.squeezed(out.shape.dims(), batch, &[1]);
        self.run(py, &built, &vals, Some(&hv), &dims)
    }

    /// The shape of `v`, the shape of K·v and its dtype (NumPy's name) for these inputs: what
    /// `apply` takes and returns (compiling it if needed).
    #[pyo3(signature = (x1 = None, x2 = None, shared = None))]
    fn _apply_info<'py>(
        &'py self,
        py: Python<'py>,
        x1: Option<&Bound<'py, PyAny>>,
        x2: Option<&Bound<'py, PyAny>>,
        shared: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Vec<usize>, Vec<usize>, &'static str)> {
        let (batch, _) = self.bind(x1, x2, shared)?;
        let built = self.built(py, Key { form: 1, batch })?;
        let c = &built.compiled;
        let v = c.inputs().last().map(|t| t.shape.dims().to_vec()).unwrap_or_default();
        let out = c.outputs().first().ok_or_else(|| value_error("no output"))?;
        let dims = self.squeezed(out.shape.dims(), batch, &[1]);
        Ok((self.squeezed(&v, batch, &[1]), dims, numpy_name(out.dtype)))
    }

    /// The names of the per-side inputs (given in `x1` and `x2`).
    #[getter]
    fn per_side(&self) -> Vec<String> {
        self.per_side.iter().map(|&i| self.f.params()[i].name.clone()).collect()
    }

    /// The names of the shared inputs.
    #[getter]
    fn shared(&self) -> Vec<String> {
        self.shared.iter().map(|&i| self.f.params()[i].name.clone()).collect()
    }

    /// The names of the inputs J is taken with respect to.
    #[getter]
    fn wrt(&self) -> Vec<String> {
        self.spec.wrt.clone()
    }

    /// The output mode: 'full', 'trace' or 'diagonal'.
    #[getter]
    fn mode(&self) -> &'static str {
        mode_name(self.spec.mode)
    }

    /// The inputs `(name, dtype, shape)` of the kernel for batches of `b1` and `b2` examples
    /// (`None`: one example per side), in the order of the compiled function.
    #[pyo3(signature = (b1 = None, b2 = None))]
    fn layout<'py>(
        &self,
        py: Python<'py>,
        b1: Option<usize>,
        b2: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let spec = KernelSpec { batch: batch_arg(b1, b2)?, ..self.spec.clone() };
        let l = spec.layout(&self.f, Form::Kernel).map_err(ad)?;
        let items: Vec<(String, &str, Vec<usize>, &str)> = l
            .into_iter()
            .map(|(n, r, t)| {
                let role = match r {
                    Role::Side(1, _) => "x1",
                    Role::Side(..) => "x2",
                    Role::Shared(_) => "shared",
                    Role::V => "v",
                };
                (n, numpy_name(t.dtype), t.shape.dims().to_vec(), role)
            })
            .collect();
        PyList::new(py, items)
    }

    /// A stage's graph as text, for batches of `b1` and `b2` examples (`None`: one example):
    /// 'model' (the function differentiated, weights that are constants folded in), 'kernel'
    /// (K as the transforms build it), 'optimized' (the graph compiled), 'apply' (the operator
    /// v ↦ K·v), 'clif' (Cranelift's IR of the compiled kernel).
    #[pyo3(signature = (stage = "optimized", b1 = None, b2 = None))]
    fn dump(
        &self,
        py: Python<'_>,
        stage: &str,
        b1: Option<usize>,
        b2: Option<usize>,
    ) -> PyResult<String> {
        let spec = KernelSpec { batch: batch_arg(b1, b2)?, ..self.spec.clone() };
        let text = |g: &Function| jjt::text::print(g);
        py.detach(|| -> Result<Result<String, String>, jjt::Error> {
            Ok(Ok(match stage {
                "model" => text(&self.f),
                "kernel" => {
                    let mut s = spec.clone();
                    if self.auto {
                        s.strategy = Strategy::Ntvp;
                    }
                    text(&self.builder(&s).build()?)
                }
                "optimized" => text(&self.builder(&spec).optimized()?),
                "apply" => text(&spec.apply(&self.f)?),
                "clif" => {
                    let g = self.builder(&spec).optimized()?;
                    let opts = jjt::JitOptions { keep_clif: true, ..Default::default() };
                    let c = jjt::jit::compile_with(&g, opts)?;
                    c.clif().unwrap_or_default().to_string()
                }
                other => {
                    return Ok(Err(format!(
                        "stage must be 'model', 'kernel', 'optimized', 'apply' or 'clif', got '{other}'"
                    )));
                }
            }))
        })
        .map_err(to_py)?
        .map_err(value_error)
    }

    fn __repr__(&self) -> String {
        format!(
            "Kernel(wrt={:?}, shared={:?}, per_side={:?}, mode='{}')",
            self.spec.wrt,
            self.shared(),
            self.per_side(),
            mode_name(self.spec.mode)
        )
    }
}

fn batch_arg(b1: Option<usize>, b2: Option<usize>) -> PyResult<Option<(usize, usize)>> {
    match (b1, b2) {
        (None, None) => Ok(None),
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (Some(a), None) => Ok(Some((a, a))),
        (None, Some(_)) => Err(value_error("give b1 with b2")),
    }
}
