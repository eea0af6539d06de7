//! [`Step::MatVecs`](crate::plan::Step::MatVecs): one call to the matrix–vector kernel
//! ([`crate::matvec`]) with the matrix's, the vectors' and the outputs' addresses.

use cranelift_codegen::ir::InstBuilder;

use crate::codegen::Cg;
use crate::libm::Precision;
use crate::plan::MatVecStep;

impl Cg<'_, '_> {
    /// The call computing every product of `m` in one pass over the matrix.
    pub(super) fn matvecs(&mut self, m: &MatVecStep) {
        let first = &m.parts[0];
        let f = self.imports.matvec.get(Precision::of(first.dst.dtype));
        let a = self.addr(&first.matrix, &[]);
        let lda = self.iconst(first.lda as i64);
        let rows = self.iconst(first.rows as i64);
        let k = self.iconst(first.k as i64);
        let parts = self.iconst(m.parts.len() as i64);
        let mut args = vec![a, lda, rows, k, parts];
        // A single product passes its own pointers twice (the kernel reads only the first).
        let second = m.parts.get(1).unwrap_or(first);
        for p in [first, second] {
            let x = self.addr(&p.vector, &[]);
            let y = self.addr(&p.dst, &[]);
            let inc = self.iconst(p.inc as i64);
            args.extend([x, y, inc]);
        }
        self.b.ins().call(f, &args);
        self.how = if m.parts.len() > 1 {
            format!("{} vectors in one pass over the matrix", m.parts.len())
        } else {
            "matrix–vector kernel".into()
        };
    }
}
