//! Source-to-source transforms on jjt graphs.
//!
//! Every transform is a function from graph to graph: it never mutates its input, walks it with
//! [`jjt_ir::Replay`] (a deterministic topological order, a per-node hook that calls the op's
//! rule) and writes into a fresh [`FunctionBuilder`]. Each comes in
//! two forms: `*_into`, which emits into a builder given the nodes standing for the arguments
//! (so transforms compose without intermediate functions), and a function-level form that
//! returns a new, verified [`Function`].
//!
//! - [`jvp()`] — forward mode. Symbolic zero tangents (`None`) emit no nodes.
//! - [`linearize()`] — the primal function (with residuals as extra outputs) and the linear
//!   function of the tangents.
//! - [`transpose`](transpose()) — the transpose of a function linear in some inputs.
//! - [`vjp()`] — reverse mode, `transpose ∘ linearize`.
//! - [`vmap()`] — batching.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cast;
mod error;
mod gather_scatter;
pub mod jvp;
pub mod kernel;
pub mod linearize;
pub mod transpose;
pub mod vjp;
pub mod vmap;

pub use cast::promote_f64;
pub use error::AdError;
pub use jvp::{jvp, jvp_into};
pub use kernel::{Examples, Form, KernelSpec, Mode, Role, Strategy};

pub use linearize::{Linearized, linearize};
pub use transpose::{transpose, transpose_into};
pub use vjp::{vjp, vjp_into};
pub use vmap::{vmap, vmap_into};

use jjt_ir::{Function, FunctionBuilder, NodeId, Op, Replay, Replayed, Visit};

/// Positions of the named inputs, in signature order, with clear errors for unknown names.
///
/// A name holding `*` (any run of characters) or `?` (one character) is a glob: it selects
/// every floating-point input whose name it matches, so `*` names all differentiable inputs
/// and skips integer and bool ones (naming such an input literally is
/// [`AdError::NotFloat`] where it is differentiated). A glob that selects nothing is
/// [`AdError::NoMatch`].
pub fn input_mask(f: &Function, names: &[impl AsRef<str>]) -> Result<Vec<bool>, AdError> {
    let mut mask = vec![false; f.params().len()];
    for n in names {
        let n = n.as_ref();
        if n.contains(['*', '?']) {
            let mut any = false;
            for (i, p) in f.params().iter().enumerate() {
                if jjt_ir::types::is_float(p.ty.dtype)
                    && glob_match(n.as_bytes(), p.name.as_bytes())
                {
                    mask[i] = true;
                    any = true;
                }
            }
            if !any {
                return Err(AdError::NoMatch {
                    pattern: n.to_string(),
                    function: f.name.clone(),
                    inputs: describe_inputs(f),
                });
            }
            continue;
        }
        match f.params().iter().position(|p| p.name == n) {
            Some(i) => mask[i] = true,
            None => {
                let names = f.params().iter().map(|p| p.name.as_str());
                return Err(AdError::UnknownInput {
                    name: n.to_string(),
                    function: f.name.clone(),
                    inputs: describe_inputs(f),
                    hint: jjt_ir::text::did_you_mean(n, names),
                });
            }
        }
    }
    Ok(mask)
}

/// Whether `name` matches the glob `pattern` (`*`: any run of characters, `.` included; `?`:
/// one character).
pub fn glob(pattern: &str, name: &str) -> bool {
    glob_match(pattern.as_bytes(), name.as_bytes())
}

/// [`glob`] on bytes.
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|k| glob_match(rest, &name[k..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

/// `name: type, ...` for messages.
pub(crate) fn describe_inputs(f: &Function) -> String {
    f.params().iter().map(|p| format!("{}: {}", p.name, p.ty)).collect::<Vec<_>>().join(", ")
}

/// A name derived from `base` that is not in `taken` (appending `_` until it is free).
pub(crate) fn fresh_name(base: &str, taken: &mut Vec<String>) -> String {
    let mut name = base.to_string();
    while taken.contains(&name) {
        name.push('_');
    }
    taken.push(name.clone());
    name
}

/// Emit `f` into `b` with its inputs bound to `args`; returns the nodes of its outputs.
/// Hash-consing shares whatever `b` already computes.
pub fn inline_into(
    b: &mut FunctionBuilder,
    f: &Function,
    args: &[NodeId],
) -> Result<Vec<NodeId>, AdError> {
    replay_bound(b, f, args, |b, v| Ok(v.copy(b)?))
}

/// Replay `f` into `b`, input `i` standing for `args[i]` and every other node for what `hook`
/// emits; returns what the outputs stand for. The walk of every `*_into` transform.
pub(crate) fn replay_bound<T: Replayed>(
    b: &mut FunctionBuilder,
    f: &Function,
    args: &[T],
    mut hook: impl FnMut(&mut FunctionBuilder, &Visit<'_, T>) -> Result<T, AdError>,
) -> Result<Vec<T>, AdError> {
    let mut r = Replay::new(f);
    r.run(
        b,
        |_| true,
        |b, v| match &v.node.op {
            Op::Input(i) => args
                .get(i.index)
                .copied()
                .ok_or_else(|| AdError::UnboundInput { function: f.name.clone(), index: i.index }),
            _ => hook(b, &v),
        },
    )?;
    Ok(r.outputs()?)
}

/// The types of `f`'s outputs, each a node of its graph.
pub(crate) fn output_types(f: &Function) -> Result<Vec<jjt_ir::TensorType>, AdError> {
    f.output_types()
        .into_iter()
        .enumerate()
        .map(|(index, ty)| {
            ty.cloned().ok_or_else(|| AdError::MissingOutput { function: f.name.clone(), index })
        })
        .collect()
}

/// A builder holding copies of `f`'s inputs (same names and types), and their nodes.
pub(crate) fn builder_like(
    name: &str,
    f: &Function,
) -> Result<(FunctionBuilder, Vec<NodeId>), AdError> {
    let mut b = FunctionBuilder::new(name);
    let args =
        f.params().iter().map(|p| b.input(&p.name, p.ty.clone())).collect::<Result<Vec<_>, _>>()?;
    Ok((b, args))
}

/// A node for a possibly-zero value: the value, or zeros of `ty`.
pub(crate) fn or_zeros(
    b: &mut FunctionBuilder,
    v: Option<NodeId>,
    ty: &jjt_ir::TensorType,
) -> Result<NodeId, AdError> {
    match v {
        Some(v) => Ok(v),
        None => Ok(b.full(ty.clone(), 0.0)?),
    }
}
