//! [`Step::Fused`](crate::plan::Step::Fused): a step (elementwise, or a contraction) and the
//! contraction that reads it, one row at a time, in a row function that `jjt_par_map` runs on
//! the threads (see [`crate::fuse`]). Each thread takes its row buffer once
//! (`jjt_row_buffer`), then for each of its rows computes the producer's row into it (the
//! elementwise loops, or the runtime contraction on one thread) and calls the runtime
//! contraction on one thread for the part of the reader that row feeds.

use cranelift_codegen::ir::{FuncRef, InstBuilder, Value};

use super::Cg;
use super::dot::runtime_descriptor;
use crate::JitError;
use crate::plan::{Buf, DotStep, FusedStep, Producer, item_size};

/// What computes one row of a fused step: its elementwise step, or its contraction (the
/// runtime contraction's descriptor, the step and its per-row strides).
#[allow(clippy::large_enum_variant)] // one per fused step, built once at compile time
enum Row {
    Map(crate::plan::MapStep),
    Dot(Box<crate::contract::Descriptor>, DotStep, (isize, isize, isize)),
}

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
        let operand = match f.producer {
            Producer::Map(_) => "elementwise operand",
            Producer::Dot { .. } => "operand's contraction",
        };
        self.how = format!("{label}, row by row with its {operand}, rows on threads");
    }

    /// Rows `[lo, hi)` of the fused step `f` (the body of its row function).
    pub fn fused_rows(&mut self, f: &FusedStep, lo: Value, hi: Value) -> Result<(), JitError> {
        let dot = f.row_dot();
        let runtime = |s: &DotStep, what: &str| {
            runtime_descriptor(s, &self.policy).ok_or_else(|| {
                JitError::Codegen(format!(
                    "a fused step's {what} does not take the runtime contraction"
                ))
            })
        };
        let desc = runtime(&dot, "contraction")?;
        // The producer of one row: the elementwise step, or a contraction's descriptor.
        let producer = match (f.row_map(), f.row_producer()) {
            (Some(map), _) => Row::Map(map),
            (None, Some((s, strides))) => Row::Dot(runtime(&s, "producer")?, s, strides),
            (None, None) => {
                return Err(JitError::Codegen("a fused step without a producer".into()));
            }
        };
        let bytes = f.row_elems * item_size(f.producer.dst().dtype);
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
            match &producer {
                Row::Map(map) => {
                    let next = cg.b.ins().iadd_imm_s(r, 1);
                    cg.map_rows(map, r, next)?;
                }
                Row::Dot(pdesc, s, ps) => cg.runtime_call_row(s, pdesc, Some((r, *ps)), 1)?,
            }
            cg.runtime_call_row(&dot, &desc, Some((r, strides)), 1)
        })?;
        self.descriptors.push(desc);
        if let Row::Dot(pdesc, _, _) = producer {
            self.descriptors.push(pdesc);
        }
        Ok(())
    }
}
