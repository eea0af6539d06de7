//! Optimisation passes for jjt graphs, each a function from graph to graph, run in a pipeline
//! with the verifier after every pass.
//!
//! | pass | what it does | preserves |
//! |---|---|---|
//! | `dce` | drops nodes no output uses | values, bit for bit |
//! | `cse` | rebuilds through the hash-consing builder, so equal subexpressions are shared | values, bit for bit |
//! | `simplify` | IEEE-safe rules (`x·1`, `−(−x)`, layout compositions, …), counted by name | values, bit for bit |
//! | `basis` | contractions with an identity (one-hot bases) become transposes | values for finite inputs |
//! | `masks` | `select(p, a, 0)` with `a` a broadcast becomes `a · convert(p)`, a product `reorder` can read through | values for finite inputs, up to the sign of zero |
//! | `convs` | a convolution of `w[o, c] · a[b, …, c]` (batch axis `(b, o)`) becomes a grouped convolution of `a`, then a contraction with `w` | values up to reassociation of sums |
//! | `fold` | evaluates constant-only nodes at compile time (never to NaN) | values, bit for bit |
//! | `reorder` | takes common factors out of sums of products (`factor`), then re-evaluates trees of contractions in the cheapest order | values up to reassociation of sums and distributivity |
//! | `layout` | sinks transposes toward producers, into contractions that can emit the permuted layout | values, bit for bit |
//! | `siblings` | joins contractions that share an operand (both sides' products with θ) into one | values, bit for bit |
//!
//! The cost model ([`cost`]) prices graphs in multiply-adds, bytes and peak live bytes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auto;
pub mod basis;
pub mod convs;
pub mod cost;
pub mod cse;
pub mod dce;
pub mod factor;
pub mod fold;
pub mod layout;
pub mod masks;
pub mod reorder;
pub mod siblings;
pub mod simplify;
pub mod stage;
pub mod sums;
pub mod unsplit;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Instant;

use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Replay, Visit};

pub use cse::cse;

use crate::basis::BasisStats;
use crate::fold::{FoldCache, FoldStats};
use crate::reorder::ReorderStats;
use crate::siblings::SiblingStats;
use crate::simplify::RuleHits;

/// Rebuild `f` through a fresh (hash-consing, type-checking) builder in topological order:
/// `rewrite` returns each non-input node's replacement (it can look up what earlier nodes were
/// mapped to with [`Visit::get`]), or `None` to copy it. Names are kept and the result is
/// pruned. The passes that rewrite node by node share this loop.
pub(crate) fn rebuild(
    f: &Function,
    mut rewrite: impl FnMut(&mut FunctionBuilder, &Visit<'_, NodeId>) -> Result<Option<NodeId>, IrError>,
) -> Result<Function, IrError> {
    let mut b = FunctionBuilder::new(f.name.clone());
    let mut r = replay_inputs(f, &mut b)?;
    r.run(
        &mut b,
        |_| true,
        |b, v| match rewrite(b, &v)? {
            Some(new) => Ok(new),
            None => v.copy(b),
        },
    )?;
    b.finish_many(r.outputs()?).map(|g| g.pruned())
}

/// A replay of `f` with its inputs bound to copies in `b` (same names and types).
pub(crate) fn replay_inputs<'f>(
    f: &'f Function,
    b: &mut FunctionBuilder,
) -> Result<Replay<'f, NodeId>, IrError> {
    let mut r = Replay::new(f);
    for p in f.params() {
        r.bind(p.node, b.input(&p.name, p.ty.clone())?);
    }
    Ok(r)
}

/// A topological order of `f` (from `order`, one) in which each node of `extra` also comes
/// after the nodes listed with it (Kahn's algorithm with those extra edges, ties in `order`'s
/// order); `None` if the extra edges make a cycle.
pub(crate) fn order_with(
    f: &Function,
    order: &[NodeId],
    extra: &[(NodeId, Vec<NodeId>)],
) -> Option<Vec<NodeId>> {
    let mut preds: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &n in order {
        preds.insert(n, f.operands(n));
    }
    for (n, after) in extra {
        preds.get_mut(n)?.extend(after.iter().copied());
    }
    let mut indeg: HashMap<NodeId, usize> = HashMap::new();
    let mut succs: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    // In `order`, not the map's order: the result must not depend on hashing.
    for n in order {
        let ps = preds.get(n)?;
        indeg.insert(*n, ps.len());
        for &p in ps {
            succs.entry(p).or_default().push(*n);
        }
    }
    let mut ready: VecDeque<NodeId> =
        order.iter().copied().filter(|n| indeg.get(n) == Some(&0)).collect();
    let mut out = Vec::with_capacity(order.len());
    while let Some(n) = ready.pop_front() {
        out.push(n);
        for &s in succs.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
            let d = indeg.get_mut(&s)?;
            *d -= 1;
            if *d == 0 {
                ready.push_back(s);
            }
        }
    }
    (out.len() == order.len()).then_some(out)
}

/// One operand of a `dot_general`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Side {
    Lhs,
    Rhs,
}

impl Side {
    /// The operand's slot.
    pub(crate) fn slot(self) -> usize {
        match self {
            Side::Lhs => 0,
            Side::Rhs => 1,
        }
    }

    /// The other operand.
    pub(crate) fn other(self) -> Side {
        match self {
            Side::Lhs => Side::Rhs,
            Side::Rhs => Side::Lhs,
        }
    }

    /// This operand's contracted and batch axes.
    pub(crate) fn axes(self, d: &jjt_ir::ops::DotGeneral) -> (&[usize], &[usize]) {
        match self {
            Side::Lhs => (&d.lhs_contract, &d.lhs_batch),
            Side::Rhs => (&d.rhs_contract, &d.rhs_batch),
        }
    }
}

/// One pass of the pipeline. Each module's entry point is named after its pass
/// (`basis::basis`, `fold::fold`, ...; `*_with` takes an extra setting), and [`Pass::run`]
/// runs any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Pass {
    /// Share equal subexpressions (`cse::cse`).
    Cse,
    /// IEEE-safe algebraic rules, counted by name (`simplify::simplify`).
    Simplify,
    /// Products with identity bases become relabellings (`basis::basis`).
    Basis,
    /// Selects against zero of broadcasts become products with masks (`masks::masks`).
    Masks,
    /// Convolutions of products with a per-channel factor convolve the other factor once
    /// (`convs::convs`).
    Convs,
    /// Evaluate constant-only nodes once (`fold::fold`).
    Fold,
    /// Re-evaluate einsum trees in the cheapest order (`reorder::reorder`).
    Reorder,
    /// Sink transposes into the contractions that produce them (`layout::layout`).
    Layout,
    /// Sums over what a product contracts ride along it (`sums::sums`).
    Sums,
    /// Join products that share an operand (`siblings::siblings`).
    Siblings,
    /// Join the two parts' twin elementwise work into one (`unsplit::unsplit`).
    Unsplit,
    /// Drop nodes no output uses (`dce::dce`).
    Dce,
}

impl Pass {
    /// The pipeline [`optimize`] runs, in order.
    pub const PIPELINE: [Pass; 14] = [
        Pass::Cse,
        Pass::Simplify,
        Pass::Basis,
        Pass::Masks,
        Pass::Convs,
        Pass::Fold,
        Pass::Reorder,
        Pass::Fold,
        Pass::Simplify,
        Pass::Layout,
        Pass::Sums,
        Pass::Siblings,
        Pass::Unsplit,
        Pass::Dce,
    ];

    /// The pass's name (as `--print-after` spells it).
    pub fn name(self) -> &'static str {
        match self {
            Pass::Cse => "cse",
            Pass::Simplify => "simplify",
            Pass::Basis => "basis",
            Pass::Masks => "masks",
            Pass::Convs => "convs",
            Pass::Fold => "fold",
            Pass::Reorder => "reorder",
            Pass::Layout => "layout",
            Pass::Sums => "sums",
            Pass::Siblings => "siblings",
            Pass::Unsplit => "unsplit",
            Pass::Dce => "dce",
        }
    }

    /// Run the pass on `f` (constant folding reuses and fills `cache`).
    pub fn run(
        self,
        f: &Function,
        cache: &mut FoldCache,
    ) -> Result<(Function, PassStats), IrError> {
        /// A pass's graph with its statistics as the pass's `PassStats` variant.
        fn tagged<S>((g, s): (Function, S), tag: fn(S) -> PassStats) -> (Function, PassStats) {
            (g, tag(s))
        }
        Ok(match self {
            Pass::Cse => (cse(f)?, PassStats::Cse),
            Pass::Simplify => tagged(simplify::simplify(f)?, PassStats::Simplify),
            Pass::Basis => tagged(basis::basis(f)?, PassStats::Basis),
            Pass::Masks => tagged(masks::masks(f)?, PassStats::Masks),
            Pass::Convs => tagged(convs::convs(f)?, PassStats::Convs),
            Pass::Fold => tagged(fold::fold_with(f, cache)?, PassStats::Fold),
            Pass::Reorder => tagged(reorder::reorder(f)?, PassStats::Reorder),
            Pass::Layout => tagged(layout::layout(f)?, PassStats::Layout),
            Pass::Sums => tagged(sums::sums(f)?, PassStats::Sums),
            Pass::Siblings => tagged(siblings::siblings(f)?, PassStats::Siblings),
            Pass::Unsplit => tagged(unsplit::unsplit(f)?, PassStats::Unsplit),
            Pass::Dce => (dce::dce(f), PassStats::Dce),
        })
    }
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What one pass counted, typed per pass. Displayed as `name=value` pairs.
#[derive(Clone, Debug, PartialEq)]
pub enum PassStats {
    /// Nothing counted.
    Cse,
    /// Hits per rule.
    Simplify(RuleHits),
    /// Contractions with identities eliminated.
    Basis(BasisStats),
    /// Selects rewritten as products with masks.
    Masks(usize),
    /// Convolutions factored.
    Convs(usize),
    /// Nodes folded, cache hits.
    Fold(FoldStats),
    /// Trees found and rewritten, multiply-adds before and after.
    Reorder(ReorderStats),
    /// Hits per rule.
    Layout(RuleHits),
    /// Sums that ride along products.
    Sums(usize),
    /// Groups and products joined.
    Siblings(SiblingStats),
    /// Concatenations of twin parts replaced by one joined value.
    Unsplit(usize),
    /// Nothing counted.
    Dce,
}

impl fmt::Display for PassStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<String> = match self {
            PassStats::Cse | PassStats::Dce => vec![],
            PassStats::Simplify(h) | PassStats::Layout(h) => {
                h.iter().map(|(k, v)| format!("{k}={v}")).collect()
            }
            PassStats::Basis(s) => vec![format!("eliminated={}", s.eliminated)],
            PassStats::Fold(s) => {
                vec![format!("folded={}", s.folded), format!("cached={}", s.cached)]
            }
            PassStats::Reorder(s) => vec![
                format!("factored={}", s.factored),
                format!("networks={}", s.networks),
                format!("rewritten={}", s.rewritten),
                format!("flops_before={}", s.flops_before),
                format!("flops_after={}", s.flops_after),
            ],
            PassStats::Siblings(s) => {
                vec![format!("groups={}", s.groups), format!("joined={}", s.joined)]
            }
            PassStats::Sums(n) => vec![format!("rode={n}")],
            PassStats::Masks(n) | PassStats::Convs(n) => vec![format!("rewritten={n}")],
            PassStats::Unsplit(n) => vec![format!("joined={n}")],
        };
        f.write_str(&pairs.join(" "))
    }
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq)]
pub struct PassReport {
    /// The pass.
    pub pass: Pass,
    /// Wall time, in milliseconds.
    pub ms: f64,
    /// What it counted.
    pub stats: PassStats,
    /// Nodes after the pass.
    pub nodes: usize,
}

/// Run the pipeline ([`Pass::PIPELINE`]). `after` is called with each pass and its result
/// (for `--print-after`).
pub fn optimize(
    f: &Function,
    after: impl FnMut(Pass, &Function),
) -> Result<(Function, Vec<PassReport>), IrError> {
    optimize_with(f, after, &mut FoldCache::default())
}

/// [`optimize`], with constant folding reusing and filling `cache` (for optimising several
/// graphs that share constant subexpressions, as `auto`'s candidates do).
pub fn optimize_with(
    f: &Function,
    mut after: impl FnMut(Pass, &Function),
    cache: &mut FoldCache,
) -> Result<(Function, Vec<PassReport>), IrError> {
    let mut g = f.clone();
    let mut reports = Vec::new();
    for pass in Pass::PIPELINE {
        let t = Instant::now();
        let (next, stats) = pass.run(&g, cache)?;
        jjt_ir::verify(&next).map_err(IrError::Verify)?;
        reports.push(PassReport {
            pass,
            ms: t.elapsed().as_secs_f64() * 1e3,
            stats,
            nodes: next.node_count(),
        });
        after(pass, &next);
        g = next;
    }
    Ok((g, reports))
}
