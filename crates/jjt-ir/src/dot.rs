//! Graphviz DOT export. Nodes are labelled with their printed name, op, attributes, dtype and
//! shape, in the canonical print order (the same names as the text form); edges into
//! multi-operand ops carry the operand slot.
//!
//! [`to_dot_with`] draws several functions as one digraph, a cluster per function (so
//! `| dot -Tpng` writes one picture), only the neighbourhood of one node
//! ([`DotOptions::around`], for graphs too large to read whole), and notes on nodes (extra label
//! lines and a fill colour, e.g. measured time from a profile).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::graph::{Function, NodeId};
use crate::ops::Op;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// What [`to_dot_with`] draws besides the graph.
#[derive(Clone, Debug, Default)]
pub struct DotOptions {
    /// Only the nodes at most `depth` edges (operands or users, any mix) from the node printed
    /// as `name`, in the first function that has one.
    pub around: Option<(String, usize)>,
    /// Notes on nodes of the first function: label lines appended below the node's, and a
    /// weight in `[0, 1]` drawn as a fill from white (0) to red (1).
    pub notes: HashMap<NodeId, (String, f64)>,
}

/// [`DotOptions::around`] names no node of the functions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no node is printed as `{name}` (the names of `jjt dump --stage ...`; e.g. {examples})")]
pub struct NoSuchNode {
    /// The name asked for.
    pub name: String,
    /// A few names that exist.
    pub examples: String,
}

/// The function as a DOT digraph.
pub fn to_dot(f: &Function) -> String {
    to_dot_with(&[f], &DotOptions::default()).unwrap_or_default()
}

/// The functions as one DOT digraph: one function as itself, several as one cluster each
/// (labelled with the function's name), with `opts`' neighbourhood and notes.
pub fn to_dot_with(fs: &[&Function], opts: &DotOptions) -> Result<String, NoSuchNode> {
    let layouts: Vec<_> = fs.iter().map(|f| crate::text::layout(f)).collect();
    // The nodes to draw per function (`None`: all).
    let mut keep: Vec<Option<HashSet<NodeId>>> = vec![None; fs.len()];
    if let Some((name, depth)) = &opts.around {
        let found = layouts.iter().enumerate().find_map(|(k, (_, names))| {
            names.iter().find(|(_, n)| *n == name).map(|(&id, _)| (k, id))
        });
        let Some((k, start)) = found else {
            let mut some: Vec<&String> = layouts.iter().flat_map(|(_, n)| n.values()).collect();
            some.sort();
            some.dedup();
            let examples = some.iter().take(6).map(|s| format!("`{s}`")).collect::<Vec<_>>();
            return Err(NoSuchNode { name: name.clone(), examples: examples.join(", ") });
        };
        let f = fs[k];
        let mut seen: HashSet<NodeId> = HashSet::from([start]);
        let mut frontier = vec![start];
        for _ in 0..*depth {
            let mut next = Vec::new();
            for id in frontier {
                for n in f.operands(id).into_iter().chain(f.users(id)) {
                    if seen.insert(n) {
                        next.push(n);
                    }
                }
            }
            frontier = next;
        }
        keep = (0..fs.len())
            .map(|j| Some(if j == k { seen.clone() } else { HashSet::new() }))
            .collect();
    }
    let clusters = fs.len() > 1;
    let mut out = String::new();
    let title = fs.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join("+");
    let _ = writeln!(out, "digraph \"{}\" {{", escape(&title));
    out.push_str("  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    for (k, (f, (order, names))) in fs.iter().zip(&layouts).enumerate() {
        let drawn = |id: &NodeId| keep[k].as_ref().is_none_or(|s| s.contains(id));
        if keep[k].as_ref().is_some_and(HashSet::is_empty) {
            continue;
        }
        let (indent, prefix) =
            if clusters { ("    ", format!("f{k}")) } else { ("  ", String::new()) };
        if clusters {
            let _ = writeln!(out, "  subgraph cluster_{k} {{\n    label=\"{}\";", escape(&f.name));
        }
        let name = |id| names.get(&id).cloned().unwrap_or_default();
        for id in order.iter().filter(|id| drawn(id)) {
            let Some(node) = f.node(*id) else { continue };
            let (mut label, shape) = match &node.op {
                Op::Input(_) => (format!("{}\\ninput {}", name(*id), node.ty), "ellipse"),
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
                    (format!("{} = {}{}\\n{}", name(*id), op.name(), attrs, node.ty), shape)
                }
            };
            let mut style = String::new();
            if let Some((note, weight)) = opts.notes.get(id).filter(|_| k == 0) {
                label.push_str("\\n");
                label.push_str(&note.replace('\n', "\\n"));
                // White to red: the green and blue channels fall with the weight.
                let gb = (255.0 * (1.0 - weight.clamp(0.0, 1.0))).round() as u8;
                style = format!(", style=filled, fillcolor=\"#ff{gb:02x}{gb:02x}\"");
            }
            let _ = writeln!(
                out,
                "{indent}{prefix}n{} [label=\"{}\", shape={shape}{style}];",
                id.index(),
                escape_label(&label),
            );
        }
        for id in order.iter().filter(|id| drawn(id)) {
            let operands = f.operands(*id);
            let many = operands.len() > 1;
            for (slot, o) in operands.iter().enumerate().filter(|(_, o)| drawn(o)) {
                let (a, b) = (o.index(), id.index());
                if many {
                    let _ =
                        writeln!(out, "{indent}{prefix}n{a} -> {prefix}n{b} [label=\"{slot}\"];");
                } else {
                    let _ = writeln!(out, "{indent}{prefix}n{a} -> {prefix}n{b};");
                }
            }
        }
        let outs: Vec<(usize, &NodeId)> =
            f.outputs().iter().enumerate().filter(|(_, o)| drawn(o)).collect();
        if !outs.is_empty() {
            let _ = writeln!(out, "{indent}{prefix}out [label=\"return\", shape=plaintext];");
        }
        let many = f.outputs().len() > 1;
        for (i, o) in outs {
            if many {
                let _ =
                    writeln!(out, "{indent}{prefix}n{} -> {prefix}out [label=\"{i}\"];", o.index());
            } else {
                let _ = writeln!(out, "{indent}{prefix}n{} -> {prefix}out;", o.index());
            }
        }
        if clusters {
            out.push_str("  }\n");
        }
    }
    out.push_str("}\n");
    Ok(out)
}

/// Labels are already escaped where they hold user text, except for `\n` line breaks that we
/// insert; keep those and escape quotes.
fn escape_label(s: &str) -> String {
    s.replace('"', "\\\"")
}
