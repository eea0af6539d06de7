//! [`super::DotStrategy::Runtime`]: one call to the runtime contraction ([`crate::contract`])
//! with the address of the step's descriptor (kept alive by the compiled handle), the
//! operands' and the output's addresses, and the thread count.

use cranelift_codegen::ir::{InstBuilder, Value};

use crate::JitError;
use crate::codegen::Cg;
use crate::contract::Descriptor;
use crate::libm::Precision;
use crate::plan::{DotStep, View, item_size};

impl Cg<'_, '_> {
    /// The call computing `s` as `desc` says. The descriptor must end up in
    /// [`Cg::descriptors`] (the caller moves it there), so it lives as long as the code.
    pub(super) fn runtime_call(&mut self, s: &DotStep, desc: &Descriptor) -> Result<(), JitError> {
        self.runtime_call_row(s, desc, None, self.policy.threads)
    }

    /// [`Cg::runtime_call`] on `threads` threads, with the operands and the destination
    /// advanced to row `r` when `row` is `(r, (lhs, rhs, destination) elements per row)`.
    pub(in crate::codegen) fn runtime_call_row(
        &mut self,
        s: &DotStep,
        desc: &Descriptor,
        row: Option<(Value, (isize, isize, isize))>,
        threads: usize,
    ) -> Result<(), JitError> {
        let scratch = (desc.scratch_bytes() as u64).saturating_mul(threads as u64);
        if scratch > self.policy.budget {
            return Err(JitError::TooLarge {
                what: "the packing scratch of a contraction (on every thread)".into(),
                needed: scratch,
                limit: self.policy.budget,
            });
        }
        let f = self.imports.contract.get(Precision::of(s.dst.dtype));
        let item = item_size(s.dst.dtype) as i64;
        let at = |cg: &mut Self, v: &View, per_row: isize| {
            let base = View { strides: Vec::new(), ..v.clone() };
            let a = cg.addr(&base, &[]);
            match row {
                Some((r, _)) if per_row != 0 => {
                    let off = cg.b.ins().imul_imm_s(r, per_row as i64 * item);
                    cg.b.ins().iadd(a, off)
                }
                _ => a,
            }
        };
        let (ls, rs, ds) = row.map_or((0, 0, 0), |(_, s)| s);
        let d = self.iconst(std::ptr::from_ref(desc) as i64);
        let a = at(self, &s.lhs, ls);
        let b = at(self, &s.rhs, rs);
        let c = at(self, &s.dst, ds);
        let t = self.iconst(threads as i64);
        self.b.ins().call(f, &[d, a, b, c, t]);
        Ok(())
    }
}
