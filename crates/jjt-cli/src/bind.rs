//! Binding `.npy` files to a model's inputs, with errors that name the flag, the input, the
//! file, the expected and the actual type.

use std::path::{Path, PathBuf};

use jjt_ad::{Form, KernelSpec, Role};
use jjt_ir::{DType, Function, Tensor, TensorType};

use crate::CliError;
use crate::args::{Item, KernelIo, KernelOpts, Precision, items};

fn known(f: &Function) -> String {
    f.params().iter().map(|p| format!("{}: {}", p.name, p.ty)).collect::<Vec<_>>().join(", ")
}

/// Split `NAME=FILE` (or a bare `FILE` when `only` names the one input it can mean).
fn split<'a>(
    flag: &'static str,
    arg: &'a str,
    only: Option<&'a str>,
) -> Result<(String, &'a str), CliError> {
    match arg.split_once('=') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => Ok((n.to_string(), p)),
        None if !arg.is_empty() && only.is_some() => {
            Ok((only.unwrap_or_default().to_string(), arg))
        }
        _ => Err(CliError::BadInArg { flag, arg: arg.to_string(), single: only.is_some() }),
    }
}

/// The arrays of an `.npz` archive by name, shared between the inputs bound from it.
type Archive = std::rc::Rc<Vec<(String, jjt_npy::Array)>>;

thread_local! {
    /// `.npz` archives read so far, by path: an archive is read once however many of its
    /// arrays are bound.
    static NPZ: std::cell::RefCell<std::collections::HashMap<PathBuf, Archive>> =
        std::cell::RefCell::default();
}

thread_local! {
    /// Values of inputs that were ONNX initializers (the model's own weights), used when no
    /// file gives one.
    static DEFAULTS: std::cell::RefCell<Vec<(String, Tensor)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Record the model's default input values ([`crate::pipeline::load_selecting`]).
pub(crate) fn set_defaults(d: Vec<(String, Tensor)>) {
    DEFAULTS.with(|c| *c.borrow_mut() = d);
}

/// The default value of input `name`, in dtype `want` (an f32 weight of an f64 model is
/// promoted, as a file would be).
fn default_of(name: &str, want: DType) -> Option<Tensor> {
    let t =
        DEFAULTS.with(|c| c.borrow().iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()))?;
    if t.dtype() == want {
        return Some(t);
    }
    Tensor::from_f64(&t.ty().with_dtype(want), &t.to_f64_vec()).ok()
}

/// The arrays of the `.npz` archive `path` (read once per process).
pub(crate) fn npz_arrays(name: &str, path: &Path) -> Result<Archive, CliError> {
    if let Some(a) = NPZ.with(|c| c.borrow().get(path).cloned()) {
        return Ok(a);
    }
    let arrays = jjt_npy::read_npz_file(path).map_err(|source| CliError::ReadInput {
        name: name.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    let arrays = std::rc::Rc::new(arrays);
    NPZ.with(|c| c.borrow_mut().insert(path.to_path_buf(), arrays.clone()));
    Ok(arrays)
}

/// Read a file for input `name` (an `.npy` file, or the array of that name in an `.npz`
/// archive), promoting f32 to f64 with [`Precision::F64`] when the model wants f64.
fn read(
    name: &str,
    path: &Path,
    want: DType,
    precision: Precision,
) -> Result<(PathBuf, Tensor), CliError> {
    let t =
        if path.extension().is_some_and(|e| e == "npz") {
            // The archive's array of the input's name.
            let arrays = npz_arrays(name, path)?;
            let found = arrays.iter().find(|(n, _)| n == name).map(|(_, a)| a.clone());
            let names = || arrays.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
            Tensor::from_array(found.ok_or_else(|| CliError::NpzMember {
                name: name.to_string(),
                path: path.to_path_buf(),
                arrays: names(),
            })?)
        } else {
            jjt_npy::read_file(path).map(Tensor::from_array).map_err(|source| {
                CliError::ReadInput { name: name.to_string(), path: path.to_path_buf(), source }
            })?
        };
    let t = if precision == Precision::F64 && t.dtype() == DType::F32 && want == DType::F64 {
        let ty = t.ty().with_dtype(DType::F64);
        Tensor::from_f64(&ty, &t.to_f64_vec())?
    } else {
        t
    };
    Ok((path.to_path_buf(), t))
}

fn type_error(
    name: &str,
    path: &Path,
    expected: String,
    t: &Tensor,
    want: &TensorType,
) -> CliError {
    let hint = if t.dtype() != want.dtype && t.dtype() != DType::Bool && want.dtype != DType::Bool {
        format!(
            " (convert it with `arr.astype(np.float{})`)",
            if want.dtype == DType::F32 { 32 } else { 64 }
        )
    } else {
        String::new()
    };
    CliError::InputType {
        name: name.to_string(),
        path: path.to_path_buf(),
        expected,
        actual: t.ty().to_string(),
        hint,
    }
}

/// Bind `NAME=FILE` arguments to all of `f`'s inputs (each exactly once).
pub(crate) fn bind_named(
    f: &Function,
    args: &[String],
    flag: &'static str,
    precision: Precision,
) -> Result<Vec<Tensor>, CliError> {
    let partial = bind_some(f, args, flag, precision)?;
    f.params()
        .iter()
        .zip(partial)
        .map(|(p, t)| {
            t.or_else(|| default_of(&p.name, p.ty.dtype)).ok_or_else(|| CliError::MissingInput {
                flag,
                name: p.name.clone(),
                ty: p.ty.to_string(),
            })
        })
        .collect()
}

/// Bind `NAME=FILE` arguments to some of `f`'s inputs.
pub(crate) fn bind_some(
    f: &Function,
    args: &[String],
    flag: &'static str,
    precision: Precision,
) -> Result<Vec<Option<Tensor>>, CliError> {
    let only = (f.params().len() == 1).then(|| f.params()[0].name.as_str());
    bind_args(f, args, flag, precision, only)
}

/// Bind `NAME=FILE` arguments (a bare `FILE` means `only`, when given) to inputs of `f`,
/// checking each file's type against the input's.
fn bind_args(
    f: &Function,
    args: &[String],
    flag: &'static str,
    precision: Precision,
    only: Option<&str>,
) -> Result<Vec<Option<Tensor>>, CliError> {
    let params = f.params();
    let mut bound: Vec<Option<Tensor>> = vec![None; params.len()];
    for arg in args {
        let (name, file) = split(flag, arg, only)?;
        let i = input_index(f, flag, &name)?;
        if bound[i].is_some() {
            return Err(CliError::DuplicateInput(name));
        }
        let (path, t) = read(&name, Path::new(file), params[i].ty.dtype, precision)?;
        if t.ty() != params[i].ty {
            return Err(type_error(&name, &path, params[i].ty.to_string(), &t, &params[i].ty));
        }
        bound[i] = Some(t);
    }
    Ok(bound)
}

/// The position of input `name` among the model's inputs, or the error naming them.
fn input_index(f: &Function, flag: &'static str, name: &str) -> Result<usize, CliError> {
    f.params().iter().position(|p| p.name == name).ok_or_else(|| CliError::UnknownInput {
        reason: match jjt_ir::text::did_you_mean(name, f.params().iter().map(|p| p.name.as_str())) {
            Some(h) => format!("the model has no input `{name}` ({h})"),
            None => format!("the model has no input `{name}`"),
        },
        flag,
        name: name.to_string(),
        known: known(f),
    })
}

/// What binding does with an input no file gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// An error naming the flag to pass (`kernel`, `apply`).
    Refuse,
    /// Leave it unbound, for the caller to fill (`bench`: random values).
    Allow,
}

/// The shared inputs of `--shared` and `--wrt` together: every `--shared` item, and each
/// `--wrt NAME=FILE` (a value given with `--wrt` is the input's value on both sides).
fn shared_items(wrt: &[Item], shared: &[Item]) -> Result<Vec<(&'static str, Item)>, CliError> {
    let mut out: Vec<(&'static str, Item)> =
        shared.iter().map(|it| ("--shared", it.clone())).collect();
    for it in wrt.iter().filter(|it| it.file.is_some()) {
        match out.iter_mut().find(|(_, o)| o.name == it.name) {
            Some((_, o)) if o.file.is_some() => {
                return Err(CliError::DuplicateInput(it.name.clone()));
            }
            Some((flag, o)) => (*flag, *o) = ("--wrt", it.clone()),
            None => out.push(("--wrt", it.clone())),
        }
    }
    Ok(out)
}

/// Bind the files of `jjt kernel`, `jjt apply` and `jjt bench`: shared inputs (from `--shared`
/// and `--wrt NAME=FILE`), both sides' per-side inputs (detecting example batches from one
/// extra leading axis, which must agree with `batch` when given), and `v`. Returns the
/// kernel's specification and its inputs in the kernel function's order: name, type and the
/// value, `None` for what no file gives (only with [`Missing::Allow`]).
/// The items of `flag` with every glob (`*`, `?`) replaced by the inputs it matches: the
/// floating-point inputs whose names match, except those given per side (`per_side`); a
/// glob's file, if any, goes to each match (an `.npz` archive gives each its own array). A
/// glob that matches nothing is an error listing the inputs.
pub(crate) fn expand_globs(
    f: &Function,
    flag: &'static str,
    items: Vec<Item>,
    per_side: &[String],
) -> Result<Vec<Item>, CliError> {
    let mut out = Vec::new();
    // In an ONNX model whose weights were selected, a pattern matches weights only, never the
    // graph's own inputs (its data).
    let weights: Vec<String> =
        DEFAULTS.with(|c| c.borrow().iter().map(|(n, _)| n.clone()).collect());
    for it in items {
        if !it.name.contains(['*', '?']) {
            out.push(it);
            continue;
        }
        let matches: Vec<Item> = f
            .params()
            .iter()
            .filter(|p| jjt_ir::types::is_float(p.ty.dtype) && !per_side.contains(&p.name))
            .filter(|p| weights.is_empty() || weights.contains(&p.name))
            .filter(|p| jjt_ad::glob(&it.name, &p.name))
            .map(|p| Item { name: p.name.clone(), file: it.file.clone() })
            .collect();
        if matches.is_empty() {
            return Err(CliError::UnknownInput {
                flag,
                name: it.name.clone(),
                reason: format!(
                    "the pattern `{}` matches no floating-point input that is not given per side",
                    it.name
                ),
                known: known(f),
            });
        }
        out.extend(matches);
    }
    Ok(out)
}

/// The names of the per-side inputs given with `--x1`/`--x2` (`NAME=FILE` items).
pub(crate) fn side_names(x1: &[String], x2: &[String]) -> Vec<String> {
    x1.iter()
        .chain(x2)
        .filter_map(|a| a.split_once('=').map(|(n, _)| n.trim().to_string()))
        .collect()
}

pub(crate) fn bind_kernel(
    f: &Function,
    io: &KernelIo,
    opts: &KernelOpts,
    form: Form,
    v: Option<&Path>,
    (batch_flag, missing): (Option<(usize, usize)>, Missing),
) -> Result<(KernelSpec, Vec<Bound>), CliError> {
    let params = f.params();
    let precision = opts.precision;
    // Globs never match an input given per side.
    let mut per_side_given = side_names(&io.x1, &io.x2);
    per_side_given.extend(items("--per-side", &io.per_side)?.into_iter().map(|i| i.name));
    let wrt = expand_globs(f, "--wrt", items("--wrt", &io.wrt)?, &per_side_given)?;
    let shared_list = expand_globs(f, "--shared", items("--shared", &io.shared)?, &per_side_given)?;
    // Shared inputs first: they decide which inputs are per-side.
    let mut shared: Vec<Option<Tensor>> = vec![None; params.len()];
    let mut is_shared = vec![false; params.len()];
    for (flag, it) in shared_items(&wrt, &shared_list)? {
        let i = input_index(f, flag, &it.name)?;
        if is_shared[i] {
            return Err(CliError::DuplicateInput(it.name));
        }
        is_shared[i] = true;
        if let Some(file) = &it.file {
            let want = &params[i].ty;
            let (path, t) = read(&it.name, file, want.dtype, precision)?;
            if t.ty() != *want {
                return Err(type_error(&it.name, &path, want.to_string(), &t, want));
            }
            shared[i] = Some(t);
        } else if let Some(t) = default_of(&it.name, params[i].ty.dtype) {
            shared[i] = Some(t);
        } else if missing == Missing::Refuse {
            return Err(CliError::MissingInput {
                flag: "--shared",
                name: it.name,
                ty: params[i].ty.to_string(),
            });
        }
    }
    // An input with a default (a model's own weights) that no flag names is shared at its
    // default: a constant of the model, as the weights of an ONNX file that nothing selects.
    let named_per_side: Vec<String> = per_side_given.clone();
    for (i, p) in params.iter().enumerate() {
        if !is_shared[i]
            && !named_per_side.contains(&p.name)
            && let Some(t) = default_of(&p.name, p.ty.dtype)
        {
            is_shared[i] = true;
            shared[i] = Some(t);
        }
    }
    let per_side: Vec<usize> = (0..params.len()).filter(|&i| !is_shared[i]).collect();
    let only = (per_side.len() == 1).then(|| params[per_side[0]].name.as_str());
    let mut sides: [Vec<Option<Tensor>>; 2] = [vec![None; params.len()], vec![None; params.len()]];
    let mut batch: [Option<Option<usize>>; 2] = [None, None];
    // The first input of each side, named in batch errors.
    let mut first: [String; 2] = [String::new(), String::new()];
    for (s, (flag, list)) in [("--x1", &io.x1), ("--x2", &io.x2)].into_iter().enumerate() {
        for arg in list {
            let (name, file) = split(flag, arg, only)?;
            let i = input_index(f, flag, &name)?;
            if is_shared[i] {
                return Err(CliError::UnknownInput {
                    reason: format!(
                        "input `{name}` is given as --shared, so it has one value for both sides"
                    ),
                    flag,
                    name,
                    known: known(f),
                });
            }
            if sides[s][i].is_some() {
                return Err(CliError::DuplicateInput(name));
            }
            let want = &params[i].ty;
            let (path, mut t) = read(&name, Path::new(file), want.dtype, precision)?;
            let dims = t.shape.dims().to_vec();
            let wd = want.shape.dims();
            let this_batch = if t.ty() == *want {
                None
            } else if t.dtype() == want.dtype && dims.len() == want.rank() + 1 && dims[1..] == *wd {
                Some(dims[0])
            } else if t.dtype() == want.dtype
                && wd.first() == Some(&1)
                && dims.len() == wd.len()
                && dims[1..] == wd[1..]
            {
                // A model exported with a batch of one ([1, …]) takes its examples along that
                // axis: [B, …] is B examples of [1, …].
                let mut shape = vec![dims[0]];
                shape.extend_from_slice(wd);
                t = Tensor::new(shape, t.data)?;
                Some(dims[0])
            } else {
                let dims: Vec<String> = want.shape.dims().iter().map(|d| d.to_string()).collect();
                let expected = format!(
                    "{want} or a batch [B{}]",
                    dims.iter().map(|d| format!(",{d}")).collect::<String>()
                );
                return Err(type_error(&name, &path, expected, &t, want));
            };
            if let Some(given) = batch_flag.map(|(b1, b2)| if s == 0 { b1 } else { b2 })
                && this_batch != Some(given)
            {
                return Err(CliError::BatchFlagDisagrees { flag, name, batch: this_batch, given });
            }
            match batch[s] {
                None => {
                    batch[s] = Some(this_batch);
                    first[s] = name.clone();
                }
                Some(b) if b == this_batch => {}
                Some(earlier) => {
                    return Err(CliError::BatchDisagrees {
                        flag,
                        name,
                        batch: this_batch,
                        earlier,
                        earlier_name: first[s].clone(),
                    });
                }
            }
            sides[s][i] = Some(t);
        }
        for &i in per_side.iter().filter(|_| missing == Missing::Refuse) {
            if sides[s][i].is_none() {
                return Err(CliError::MissingInput {
                    flag,
                    name: params[i].name.clone(),
                    ty: params[i].ty.to_string(),
                });
            }
        }
    }
    // A side without files takes its batch from --batch, or else from the other side.
    let batch = match (batch, batch_flag) {
        (_, Some(b)) => Some(b),
        ([None, None], None) => None,
        ([Some(b), None] | [None, Some(b)], None) => b.map(|b| (b, b)),
        ([Some(b1), Some(b2)], None) => match (b1, b2) {
            (None, None) => None,
            (Some(b1), Some(b2)) => Some((b1, b2)),
            (side1, side2) => {
                let [name1, name2] = first.clone();
                return Err(CliError::OneSideBatched { side1, side2, name1, name2 });
            }
        },
    };
    let shared_names: Vec<String> =
        params.iter().zip(&is_shared).filter(|(_, s)| **s).map(|(p, _)| p.name.clone()).collect();
    let wrt_names: Vec<String> = wrt.into_iter().map(|it| it.name).collect();
    let spec = opts.spec(&wrt_names, &shared_names, batch);
    // Example b of side 1 with example b of side 2: say which inputs disagree.
    if let (jjt_ad::Examples::Diagonal, Some((b1, b2))) = (spec.examples, batch)
        && b1 != b2
    {
        // A side without files has its batch from --batch.
        let by = |flag: &str, n: &str| {
            if n.is_empty() { "--batch".to_string() } else { format!("{flag} {n}") }
        };
        let (side1, side2) = (by("--x1", &first[0]), by("--x2", &first[1]));
        return Err(CliError::DiagonalBatch { b1, b2, side1, side2 });
    }
    let layout = spec.layout(f, form)?;
    let mut args = Vec::with_capacity(layout.len());
    for (name, role, ty) in layout {
        let t = match role {
            Role::Side(s, i) => sides[usize::from(s) - 1][i].take(),
            Role::Shared(i) => shared[i].take(),
            Role::V => match v {
                Some(path) => {
                    let (path, t) = read("v", path, ty.dtype, precision)?;
                    if t.ty() != ty {
                        return Err(type_error("v", &path, ty.to_string(), &t, &ty));
                    }
                    Some(t)
                }
                None => None,
            },
        };
        if t.is_none() && missing == Missing::Refuse {
            return Err(CliError::Unbound(name));
        }
        let input = match role {
            Role::Side(_, i) | Role::Shared(i) => Some(params[i].name.clone()),
            Role::V => None,
        };
        args.push(Bound { name, input, ty, value: t });
    }
    Ok((spec, args))
}

/// One input of a kernel function: its name, its type, and its value when a file gave one.
#[derive(Debug)]
pub(crate) struct Bound {
    pub name: String,
    /// The model input it holds (`None` for `v`).
    pub input: Option<String>,
    pub ty: TensorType,
    pub value: Option<Tensor>,
}

/// The values of inputs bound with [`Missing::Refuse`] (all of them).
pub(crate) fn values(bound: Vec<Bound>) -> Result<Vec<Tensor>, CliError> {
    bound.into_iter().map(|b| b.value.ok_or(CliError::Unbound(b.name))).collect()
}
