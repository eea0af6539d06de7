//! The canonical printer. Statements appear in post-order of a depth-first walk from the
//! output over operands in slot order, then any nodes the output does not use (in index
//! order, each with its own walk). Names: parameters keep theirs; other nodes keep their name
//! hint when it is free, else get `_N`. Nothing depends on hash-map order, so equal graphs
//! print equal text, and printed text parses back to a graph that prints the same.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::graph::{Function, NodeId};
use crate::ops::Op;

const RESERVED: [&str; 10] =
    ["func", "return", "f32", "f64", "i32", "bool", "true", "false", "inf", "nan"];

/// Print `f` in the canonical text form.
pub fn print(f: &Function) -> String {
    let (order, names) = layout(f);
    let name = |id: NodeId| names.get(&id).cloned().unwrap_or_else(|| id.to_string());
    let mut out = String::new();
    let params: Vec<String> = f
        .params()
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{}: {} = npz({d:?})", p.name, p.ty),
            None => format!("{}: {}", p.name, p.ty),
        })
        .collect();
    let types: Vec<String> = f
        .output_types()
        .iter()
        .map(|t| t.map_or_else(|| "?".to_string(), |t| t.to_string()))
        .collect();
    let ret = if types.len() == 1 { types[0].clone() } else { format!("({})", types.join(", ")) };
    let _ = writeln!(out, "func {}({}) -> {} {{", f.name, params.join(", "), ret);
    for &id in &order {
        let Some(node) = f.node(id) else { continue };
        if matches!(node.op, Op::Input(_)) {
            continue;
        }
        let mut call = String::new();
        let operands: Vec<String> = f.operands(id).into_iter().map(name).collect();
        call.push_str(&operands.join(", "));
        let mut attrs = String::new();
        node.op.rule().write_attrs(&mut attrs);
        if operands.is_empty() {
            attrs = attrs.trim_start_matches(", ").to_string();
        }
        call.push_str(&attrs);
        let _ = writeln!(out, "  {} = {}({})", name(id), node.op.name(), call);
    }
    let rets: Vec<String> = f.outputs().iter().map(|&o| name(o)).collect();
    let _ = writeln!(out, "  return {}", rets.join(", "));
    out.push_str("}\n");
    out
}

/// Canonical statement order and the printed name of every node.
pub fn layout(f: &Function) -> (Vec<NodeId>, std::collections::HashMap<NodeId, String>) {
    let order = print_order(f);
    let names = assign_names(f, &order);
    (order, names)
}

/// Canonical statement order (see module docs).
fn print_order(f: &Function) -> Vec<NodeId> {
    let mut seen = HashSet::new();
    let mut order = Vec::with_capacity(f.node_count());
    let mut roots = f.outputs().to_vec();
    roots.extend(f.node_ids());
    for root in roots {
        if f.node(root).is_none() || seen.contains(&root) {
            continue;
        }
        // Iterative post-order DFS: operands in slot order.
        let mut stack = vec![(root, false)];
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                order.push(n);
                continue;
            }
            if !seen.insert(n) {
                continue;
            }
            stack.push((n, true));
            for o in f.operands(n).into_iter().rev() {
                if !seen.contains(&o) {
                    stack.push((o, false));
                }
            }
        }
    }
    order
}

fn assign_names(f: &Function, order: &[NodeId]) -> std::collections::HashMap<NodeId, String> {
    let mut names = std::collections::HashMap::new();
    let mut taken: HashSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    for p in f.params() {
        names.insert(p.node, p.name.clone());
        taken.insert(p.name.clone());
    }
    for &id in order {
        if names.contains_key(&id) {
            continue;
        }
        if let Some(hint) = f.node(id).and_then(|n| n.name.clone())
            && crate::builder::is_identifier(&hint)
            && !taken.contains(&hint)
        {
            taken.insert(hint.clone());
            names.insert(id, hint);
        }
    }
    let mut counter = 0usize;
    for &id in order {
        if names.contains_key(&id) {
            continue;
        }
        let name = loop {
            let candidate = format!("_{counter}");
            counter += 1;
            if !taken.contains(&candidate) {
                break candidate;
            }
        };
        taken.insert(name.clone());
        names.insert(id, name);
    }
    names
}
