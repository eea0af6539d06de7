//! Dead-code elimination: nodes no output depends on are dropped (inputs stay, so the
//! signature does not change).
//!
//! Preserves: values bit for bit.

use jjt_ir::Function;

/// `f` without dead nodes.
pub fn dce(f: &Function) -> Function {
    f.pruned()
}
