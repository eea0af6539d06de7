//! Graphviz DOT export. Nodes are labelled with their printed name, op, attributes, dtype and
//! shape, in the canonical print order (the same names as the text form); edges into
//! multi-operand ops carry the operand slot.

use std::fmt::Write as _;

use crate::graph::Function;
use crate::ops::Op;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The function as a DOT digraph.
pub fn to_dot(f: &Function) -> String {
    let (order, names) = crate::text::layout(f);
    let name = |id| names.get(&id).cloned().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", escape(&f.name));
    out.push_str("  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    for &id in &order {
        let Some(node) = f.node(id) else { continue };
        let (label, shape) = match &node.op {
            Op::Input(_) => (format!("{}\\ninput {}", name(id), node.ty), "ellipse"),
            op => {
                let mut attrs = String::new();
                op.rule().write_attrs(&mut attrs);
                let attrs = attrs.trim_start_matches(", ");
                let attrs = if attrs.is_empty() || op.traits().constant {
                    String::new()
                } else {
                    format!("\\n{attrs}")
                };
                let shape = if op.traits().constant { "note" } else { "box" };
                (format!("{} = {}{}\\n{}", name(id), op.name(), attrs, node.ty), shape)
            }
        };
        let _ = writeln!(
            out,
            "  n{} [label=\"{}\", shape={}];",
            id.index(),
            escape_label(&label),
            shape
        );
    }
    for &id in &order {
        let operands = f.operands(id);
        let many = operands.len() > 1;
        for (slot, o) in operands.iter().enumerate() {
            if many {
                let _ = writeln!(out, "  n{} -> n{} [label=\"{slot}\"];", o.index(), id.index());
            } else {
                let _ = writeln!(out, "  n{} -> n{};", o.index(), id.index());
            }
        }
    }
    out.push_str("  out [label=\"return\", shape=plaintext];\n");
    let many = f.outputs().len() > 1;
    for (i, o) in f.outputs().iter().enumerate() {
        if many {
            let _ = writeln!(out, "  n{} -> out [label=\"{i}\"];", o.index());
        } else {
            let _ = writeln!(out, "  n{} -> out;", o.index());
        }
    }
    out.push_str("}\n");
    out
}

/// Labels are already escaped where they hold user text, except for `\n` line breaks that we
/// insert; keep those and escape quotes.
fn escape_label(s: &str) -> String {
    s.replace('"', "\\\"")
}
