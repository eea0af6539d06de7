//! Common-subexpression elimination: the graph is replayed through the hash-consing builder,
//! so equal ops on equal operands become one node (after other passes have made them equal).
//!
//! Preserves: values bit for bit.

use jjt_ir::{Function, IrError};

/// Share equal subexpressions of `f`.
pub fn cse(f: &Function) -> Result<Function, IrError> {
    let mut b = jjt_ir::FunctionBuilder::new(f.name.clone());
    let mut map = std::collections::HashMap::new();
    for p in f.params() {
        map.insert(p.node, b.input(&p.name, p.ty.clone())?);
    }
    for n in f.topo_order().unwrap_or_default() {
        let Some(node) = f.node(n) else { continue };
        if matches!(node.op, jjt_ir::Op::Input(_)) {
            continue;
        }
        crate::copy_node(&mut b, f, n, &mut map)?;
    }
    let outs = f.outputs().iter().map(|o| map[o]).collect();
    Ok(b.finish_many(outs)?.pruned())
}
