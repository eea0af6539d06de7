//! [`super::DotStrategy::Runtime`]: one call to the runtime contraction ([`crate::contract`])
//! with the address of the step's descriptor (kept alive by the compiled handle), the
//! operands' and the output's addresses, and the thread count.

use cranelift_codegen::ir::InstBuilder;

use crate::JitError;
use crate::codegen::Cg;
use crate::contract::Descriptor;
use crate::libm::Precision;
use crate::plan::{DotStep, View};

impl Cg<'_, '_> {
    /// The call computing `s` as `desc` says. The descriptor must end up in
    /// [`Cg::descriptors`] (the caller moves it there), so it lives as long as the code.
    pub(super) fn runtime_call(&mut self, s: &DotStep, desc: &Descriptor) -> Result<(), JitError> {
        let threads = self.policy.threads;
        let scratch = (desc.scratch_bytes() as u64).saturating_mul(threads as u64);
        if scratch > self.policy.budget {
            return Err(JitError::TooLarge {
                what: "the packing scratch of a contraction (on every thread)".into(),
                needed: scratch,
                limit: self.policy.budget,
            });
        }
        let f = self.imports.contract.get(Precision::of(s.dst.dtype));
        let base = |v: &View| View { strides: Vec::new(), ..v.clone() };
        let d = self.iconst(std::ptr::from_ref(desc) as i64);
        let a = self.addr(&base(&s.lhs), &[]);
        let b = self.addr(&base(&s.rhs), &[]);
        let c = self.addr(&base(&s.dst), &[]);
        let t = self.iconst(threads as i64);
        self.b.ins().call(f, &[d, a, b, c, t]);
        Ok(())
    }
}
