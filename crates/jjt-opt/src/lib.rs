//! Optimisation passes for jjt graphs, each a function from graph to graph, run in a pipeline
//! with the verifier after every pass.
//!
//! | pass | what it does | preserves |
//! |---|---|---|
//! | `dce` | drops nodes no output uses | values, bit for bit |
//! | `cse` | rebuilds through the hash-consing builder, so equal subexpressions are shared | values, bit for bit |
//! | `simplify` | IEEE-safe rules (`x·1`, `−(−x)`, layout compositions, …), counted by name | values, bit for bit |
//! | `basis` | contractions with an identity (one-hot bases) become transposes | values for finite inputs |
//! | `fold` | evaluates constant-only nodes at compile time (never to NaN) | values, bit for bit |
//! | `reorder` | re-evaluates trees of contractions in the cheapest order | values up to reassociation of sums |
//! | `layout` | sinks transposes toward producers, into contractions that can emit the permuted layout | values, bit for bit |
//! | `siblings` | joins contractions that share an operand (both sides' products with θ) into one | values, bit for bit |
//!
//! The cost model ([`cost`]) prices graphs in multiply-adds, bytes and peak live bytes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auto;
pub mod basis;
pub mod cost;
pub mod cse;
pub mod dce;
pub mod fold;
pub mod layout;
pub mod reorder;
pub mod siblings;
pub mod simplify;
pub mod stage;

use std::time::Instant;

use jjt_ir::{Function, IrError};

pub use cse::cse;

/// What [`rebuild`]'s hook gets: the builder, the mapping of `f`'s nodes so far, the node's id
/// in `f`, its op, and its operands already mapped.
pub(crate) type Rewrite<'a> = dyn FnMut(
        &mut jjt_ir::FunctionBuilder,
        &std::collections::HashMap<jjt_ir::NodeId, jjt_ir::NodeId>,
        jjt_ir::NodeId,
        &jjt_ir::Op,
        &[jjt_ir::NodeId],
    ) -> Result<Option<jjt_ir::NodeId>, IrError>
    + 'a;

/// Rebuild `f` through a fresh (hash-consing, type-checking) builder in topological order:
/// `rewrite` returns each non-input node's replacement, or `None` to copy it. Names are kept
/// and the result is pruned. The passes that rewrite node by node share this loop.
pub(crate) fn rebuild(f: &Function, rewrite: &mut Rewrite<'_>) -> Result<Function, IrError> {
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
        let xs: Vec<jjt_ir::NodeId> = f.operands(n).iter().map(|o| map[o]).collect();
        let v = match rewrite(&mut b, &map, n, &node.op, &xs)? {
            Some(v) => v,
            None => b.add(node.op.clone(), &xs)?,
        };
        if let Some(name) = &node.name {
            b.name_node(v, name);
        }
        map.insert(n, v);
    }
    let outs = f.outputs().iter().map(|o| map[o]).collect();
    Ok(b.finish_many(outs)?.pruned())
}

/// Copy node `n` of `f` into `b` (its operands mapped through `map`, its name kept) and
/// record it in `map`: the replay step every rebuilding pass shares.
pub(crate) fn copy_node(
    b: &mut jjt_ir::FunctionBuilder,
    f: &Function,
    n: jjt_ir::NodeId,
    map: &mut std::collections::HashMap<jjt_ir::NodeId, jjt_ir::NodeId>,
) -> Result<jjt_ir::NodeId, IrError> {
    let node = f.node(n).ok_or(IrError::UnknownNode(n))?;
    let xs: Vec<jjt_ir::NodeId> = f.operands(n).iter().map(|o| map[o]).collect();
    let v = b.add(node.op.clone(), &xs)?;
    if let Some(name) = &node.name {
        b.name_node(v, name);
    }
    map.insert(n, v);
    Ok(v)
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq)]
pub struct PassReport {
    /// The pass.
    pub name: &'static str,
    /// Wall time, in milliseconds.
    pub ms: f64,
    /// Rule hits and other counts, as `name=value` pairs.
    pub hits: Vec<(String, f64)>,
    /// Nodes after the pass.
    pub nodes: usize,
}

/// The names of the passes, in pipeline order.
pub const PASSES: [&str; 10] = [
    "cse", "simplify", "basis", "fold", "reorder", "fold", "simplify", "layout", "siblings", "dce",
];

/// Run the pipeline. `after` is called with each pass's name and result (for
/// `--print-after`).
pub fn optimize(
    f: &Function,
    after: impl FnMut(&'static str, &Function),
) -> Result<(Function, Vec<PassReport>), IrError> {
    optimize_cached(f, after, &mut fold::FoldCache::default())
}

/// [`optimize`], with constant folding reusing and filling `cache` (for optimising several
/// graphs that share constant subexpressions, as `auto`'s candidates do).
pub fn optimize_cached(
    f: &Function,
    mut after: impl FnMut(&'static str, &Function),
    cache: &mut fold::FoldCache,
) -> Result<(Function, Vec<PassReport>), IrError> {
    let mut g = f.clone();
    let mut reports = Vec::new();
    for name in PASSES {
        let t = Instant::now();
        let (next, hits) = match name {
            "cse" => (cse(&g)?, vec![]),
            "simplify" => {
                let (h, s) = simplify::simplify(&g)?;
                (h, s.into_iter().map(|(k, v)| (k.to_string(), v as f64)).collect())
            }
            "layout" => {
                let (h, s) = layout::canonicalize(&g)?;
                (h, s.into_iter().map(|(k, v)| (k.to_string(), v as f64)).collect())
            }
            "siblings" => {
                let (h, s) = siblings::join(&g)?;
                (
                    h,
                    vec![
                        ("groups".to_string(), s.groups as f64),
                        ("joined".to_string(), s.joined as f64),
                    ],
                )
            }
            "basis" => {
                let (h, s) = basis::eliminate(&g)?;
                (h, vec![("eliminated".to_string(), s.eliminated as f64)])
            }
            "fold" => {
                let hits = cache.hits;
                let (h, s) = fold::fold_cached(&g, cache)?;
                (
                    h,
                    vec![
                        ("folded".to_string(), s.folded as f64),
                        ("cached".to_string(), (cache.hits - hits) as f64),
                    ],
                )
            }
            "reorder" => {
                let (h, s) = reorder::reorder(&g)?;
                (
                    h,
                    vec![
                        ("networks".to_string(), s.networks as f64),
                        ("rewritten".to_string(), s.rewritten as f64),
                        ("flops_before".to_string(), s.flops_before),
                        ("flops_after".to_string(), s.flops_after),
                    ],
                )
            }
            _ => (dce::dce(&g), vec![]),
        };
        jjt_ir::verify(&next).map_err(IrError::Verify)?;
        reports.push(PassReport {
            name,
            ms: t.elapsed().as_secs_f64() * 1e3,
            hits,
            nodes: next.node_count(),
        });
        after(name, &next);
        g = next;
    }
    Ok((g, reports))
}
