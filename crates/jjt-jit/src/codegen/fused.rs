//! [`Step::Fused`](crate::plan::Step::Fused): an elementwise step and the contraction that
//! reads it, one row at a time, in a row function that `jjt_par_map` runs on the threads
//! (see [`crate::fuse`]). Each thread takes its row buffer once (`jjt_row_buffer`), then for
//! each of its rows computes the elementwise row into it and calls the runtime contraction on
//! one thread for the products of that row.

use cranelift_codegen::ir::{FuncRef, InstBuilder, Value};

use super::Cg;
use super::dot::runtime_descriptor;
use crate::JitError;
use crate::plan::{Buf, FusedStep, item_size};

impl Cg<'_, '_> {
    /// Call `jjt_par_map` with the row function `part` of the fused step `f`.
    pub fn call_fused_rows(&mut self, part: FuncRef, f: &FusedStep, params: [Value; 4]) {
        let f_addr = self.b.ins().func_addr(cranelift_codegen::ir::types::I64, part);
        let mut args = vec![f_addr];
        args.extend(params);
        let rows = self.iconst(f.rows() as i64);
        let threads = self.iconst(self.policy.threads as i64);
        args.push(rows);
        args.push(threads);
        let par = self.imports.par_map;
        self.b.ins().call(par, &args);
        let label =
            runtime_descriptor(&f.row_dot(), &self.policy).map_or(String::new(), |d| d.describe());
        self.how = format!("{label}, row by row with its elementwise operand, rows on threads");
    }

    /// Rows `[lo, hi)` of the fused step `f` (the body of its row function).
    pub fn fused_rows(&mut self, f: &FusedStep, lo: Value, hi: Value) -> Result<(), JitError> {
        let (map, dot) = (f.row_map(), f.row_dot());
        let Some(desc) = runtime_descriptor(&dot, &self.policy) else {
            return Err(JitError::Codegen(
                "a fused step's contraction does not take the runtime contraction".into(),
            ));
        };
        let bytes = f.row_elems * item_size(map.dst.dtype);
        let all = (bytes as u64).saturating_mul(self.policy.threads as u64);
        if all > self.policy.budget {
            return Err(JitError::TooLarge {
                what: "the row buffers of a fused step (on every thread)".into(),
                needed: all,
                limit: self.policy.budget,
            });
        }
        let n = self.iconst(bytes as i64);
        let call = self.b.ins().call(self.imports.row_buffer, &[n]);
        let buf = self.b.inst_results(call)[0];
        self.bases.insert(Buf::Row, buf);
        let strides = f.row_strides();
        self.counted_between(lo, hi, 1, &mut |cg, r| {
            let next = cg.b.ins().iadd_imm_s(r, 1);
            cg.map_rows(&map, r, next)?;
            cg.runtime_call_row(&dot, &desc, Some((r, strides)), 1)
        })?;
        self.descriptors.push(desc);
        Ok(())
    }
}
