//! Common-subexpression elimination: the graph is replayed through the hash-consing builder,
//! so equal ops on equal operands become one node (after other passes have made them equal).
//!
//! Preserves: values bit for bit.

use jjt_ir::{Function, IrError};

/// Share equal subexpressions of `f`.
pub fn cse(f: &Function) -> Result<Function, IrError> {
    crate::rebuild(f, |_, _| Ok(None))
}
