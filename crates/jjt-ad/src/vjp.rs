//! Reverse mode: the VJP is the transpose of the linearized function (JAX's
//! `vjp = transpose ∘ linearize`), emitted next to the primal computation so residuals are
//! shared with it.

use jjt_ir::types::is_float;
use jjt_ir::{Function, FunctionBuilder, NodeId};

use crate::jvp::jvp_mask;
use crate::transpose::transpose_into;
use crate::{AdError, builder_like, fresh_name, inline_into, input_mask, or_zeros, output_types};

/// Emit the VJP of `f` into `b`: inputs bound to `primals`, differentiated inputs marked in
/// `wrt`, output cotangents `out_cts` (`None`: zero). Returns the primal outputs and one
/// cotangent per input (`None` for inputs not in `wrt` and for zero cotangents).
pub fn vjp_into(
    b: &mut FunctionBuilder,
    f: &Function,
    primals: &[NodeId],
    wrt: &[bool],
    out_cts: &[Option<NodeId>],
) -> Result<(Vec<NodeId>, Vec<Option<NodeId>>), AdError> {
    check_wrt(f, wrt)?;
    let lin = jvp_mask(f, wrt)?;
    let n_in = f.params().len();
    let outs = inline_into(b, f, primals)?;
    let mut linear = vec![false; n_in];
    let mut known: Vec<Option<NodeId>> = primals.iter().copied().map(Some).collect();
    for _ in wrt.iter().filter(|&&w| w) {
        linear.push(true);
        known.push(None);
    }
    let mut cts = vec![None; f.outputs().len()];
    cts.extend_from_slice(out_cts);
    let res = transpose_into(b, &lin, &linear, &known, &cts)?;
    let mut tangent_slots = res[n_in..].iter();
    let per_input = wrt
        .iter()
        .map(|&w| if w { tangent_slots.next().copied().flatten() } else { None })
        .collect();
    Ok((outs, per_input))
}

fn check_wrt(f: &Function, wrt: &[bool]) -> Result<(), AdError> {
    if !wrt.contains(&true) {
        return Err(AdError::NoWrt);
    }
    for (p, &w) in f.params().iter().zip(wrt) {
        if w && !is_float(p.ty.dtype) {
            return Err(AdError::NotFloat { name: p.name.clone(), dtype: p.ty.dtype });
        }
    }
    Ok(())
}

/// The VJP of `f` with respect to the inputs named in `wrt`, as a function of
/// `(inputs..., output cotangents...)` returning the cotangents of the `wrt` inputs in
/// signature order (zeros where nothing flows). The cotangent input is named `ct` for one
/// output, `ct0`, `ct1`, ... for several.
pub fn vjp(f: &Function, wrt: &[impl AsRef<str>]) -> Result<Function, AdError> {
    let mask = input_mask(f, wrt)?;
    let (mut b, args) = builder_like(&format!("{}_vjp", f.name), f)?;
    let mut taken: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
    let n_out = f.outputs().len();
    let mut cts = Vec::with_capacity(n_out);
    for (j, ty) in output_types(f)?.into_iter().enumerate() {
        let base = if n_out == 1 { "ct".to_string() } else { format!("ct{j}") };
        let name = fresh_name(&base, &mut taken);
        cts.push(Some(b.input(&name, ty)?));
    }
    let (_, res) = vjp_into(&mut b, f, &args, &mask, &cts)?;
    let mut outs = Vec::new();
    for (i, p) in f.params().iter().enumerate() {
        if mask[i] {
            outs.push(or_zeros(&mut b, res[i], &p.ty)?);
        }
    }
    Ok(b.finish_many(outs)?.pruned())
}
