//! Reductions (sum, mean, max): a loop over the kept axes around a loop over the reduced
//! ones, accumulating in the interpreter's order.

use cranelift_codegen::ir::InstBuilder;
use jjt_ir::ops::{Binary, ReduceKind};

use super::{Cg, Mode, scalar_ty};
use crate::JitError;
use crate::plan::ReduceStep;

impl Cg<'_, '_> {
    /// A reduction step.
    pub(super) fn reduce(&mut self, s: &ReduceStep) -> Result<(), JitError> {
        let ReduceStep { dst, shape, axes, kind, expr } = s;
        let kind = *kind;
        let d = dst.dtype;
        let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
        let kept_dims: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
        let red_dims: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
        let count: usize = red_dims.iter().product();
        if kept_dims.contains(&0) {
            return Ok(());
        }
        let acc = self.b.declare_var(scalar_ty(d));
        self.for_each(&kept_dims, &mut Vec::new(), &mut |cg, kidx| {
            let init = match kind {
                ReduceKind::Sum | ReduceKind::Mean => cg.fconst(d, 0.0),
                ReduceKind::Max => cg.fconst(d, f64::NEG_INFINITY),
            };
            cg.b.def_var(acc, init);
            if count > 0 {
                cg.for_each(&red_dims, &mut Vec::new(), &mut |cg, ridx| {
                    let zero = cg.iconst(0);
                    let mut full = vec![zero; shape.len()];
                    for (k, &a) in kept.iter().enumerate() {
                        full[a] = kidx[k];
                    }
                    for (k, &a) in axes.iter().enumerate() {
                        full[a] = ridx[k];
                    }
                    let v = cg.eval(expr, &full, Mode::Scalar, d)?;
                    let a = cg.b.use_var(acc);
                    let n = match kind {
                        ReduceKind::Sum | ReduceKind::Mean => cg.b.ins().fadd(a, v),
                        ReduceKind::Max => cg.binary(Binary::Maximum, a, v, Mode::Scalar, d),
                    };
                    cg.b.def_var(acc, n);
                    Ok(())
                })?;
            }
            let mut a = cg.b.use_var(acc);
            if kind == ReduceKind::Mean {
                let c = cg.fconst(d, count as f64);
                a = cg.b.ins().fdiv(a, c);
            }
            cg.store(a, dst, kidx);
            Ok(())
        })
    }
}
