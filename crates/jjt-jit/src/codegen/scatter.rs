//! `scatter_add` steps: a loop nest over the updates in row-major order, each element added
//! into the destination row its clamped index names (a load, an add, a store), one at a time
//! on one thread, so every destination element receives its terms in the interpreter's order
//! and strict and fast results are bit-identical to it.

use cranelift_codegen::ir::InstBuilder;
use jjt_ir::DType;

use super::{Cg, Mode, flags, scalar_ty};
use crate::JitError;
use crate::plan::ScatterStep;

impl Cg<'_, '_> {
    /// A scatter-add step (the destination already holds zeros).
    pub(super) fn scatter(&mut self, s: &ScatterStep) -> Result<(), JitError> {
        if s.shape.contains(&0) {
            return Ok(());
        }
        let d = s.dst.dtype;
        self.how = "scalar read-modify-write".into();
        self.for_rows(&s.shape, None, &mut |cg, idx| {
            let u = cg.eval(&s.updates, idx, Mode::Scalar, d)?;
            let i = cg.eval(&s.index, idx, Mode::Scalar, DType::I32)?;
            let a = cg.row_addr(&s.dst, idx, i, s.row_stride, s.rows);
            let old = cg.b.ins().load(scalar_ty(d), flags(), a, 0);
            let new = cg.b.ins().fadd(old, u);
            cg.b.ins().store(flags(), new, a, 0);
            Ok(())
        })
    }
}
