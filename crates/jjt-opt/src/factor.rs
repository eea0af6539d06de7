//! Common factors out of sums of products: `F·a + F·b − F·c → F·(a + b − c)` when the
//! coefficient `a + b − c` spans fewer elements than the sum. Run by [`crate::reorder`]
//! before it reads contraction trees.
//!
//! A sum is a maximal tree of `add`, `sub` and `neg` (inner nodes used once); each of its terms
//! is read as a product through `mul`, `neg`, `broadcast_to`, `transpose` and reshapes that
//! only add or drop axes of size 1, down to factors that carry some of the sum's axes. A
//! factor (the same node carrying the same axes) found in every term is taken out, and the
//! rest of each term is multiplied and summed at the shape of the axes it carries. The chain
//! rule makes such sums: the transposed derivative of `0.5·y·(1 + tanh(c·(y + 0.044715·y³)))`
//! (a gelu) is a sum of six products of the cotangent with per-example factors, and the
//! cotangent behind a mean over tokens is a weight broadcast over examples and tokens.
//! Factored, the per-example coefficient is computed once per example instead of once per
//! output, and the product `cotangent · coefficient` is a product of broadcasts that the
//! contraction reordering can see through.
//!
//! Preserves: values up to the rounding of distributivity (`x·a + x·b` and `x·(a + b)` differ
//! by at most 2·u·(|x·a| + |x·b|) per pair of terms).

use std::collections::HashMap;

use jjt_ir::ops::{BroadcastTo, Const, DotGeneral, Transpose};
use jjt_ir::{Binary, DType, Function, FunctionBuilder, IrError, NodeId, Op, Unary};

/// A factor of a product term: a node and, for each of its axes, the axis of the sum it
/// carries (`None` for an axis of size 1 that is broadcast or dropped).
type Factor = (NodeId, Vec<Option<usize>>);

/// One term of a sum: its sign and its factors.
struct Term {
    negated: bool,
    factors: Vec<Factor>,
}

/// Statistics of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FactorStats {
    /// Sums rewritten as a factor times a coefficient.
    pub factored: usize,
}

/// Whether `x` only adds or drops axes of size 1 on the way to `shape` (same non-unit dims).
pub(crate) fn unit_reshape(from: &[usize], to: &[usize]) -> bool {
    let a: Vec<usize> = from.iter().copied().filter(|&d| d != 1).collect();
    let b: Vec<usize> = to.iter().copied().filter(|&d| d != 1).collect();
    a == b
}

/// Read `n` (whose axes carry `axes`) as a product; pushes its factors and flips `negated` for
/// each negation on the way. With `outer`, a `dot_general` that contracts nothing is read as
/// the product of its operands too.
fn product(f: &Function, n: NodeId, axes: Vec<Option<usize>>, term: &mut Term, outer: bool) {
    let Some(node) = f.node(n) else { return };
    let ops = f.operands(n);
    let dims = |m: NodeId| f.node(m).map(|x| x.ty.shape.0.clone()).unwrap_or_default();
    let product =
        |n: NodeId, axes: Vec<Option<usize>>, term: &mut Term| product(f, n, axes, term, outer);
    match &node.op {
        Op::Binary(Binary::Mul) if node.ty.dtype != DType::Bool => {
            product(ops[0], axes.clone(), term);
            product(ops[1], axes, term);
        }
        // Output axes: the batch axes, then the lhs's free axes, then the rhs's, in order.
        Op::DotGeneral(d) if outer && d.lhs_contract.is_empty() && node.ty.dtype != DType::Bool => {
            let nb = d.lhs_batch.len();
            let (lr, rr) = (dims(ops[0]).len(), dims(ops[1]).len());
            let lf = DotGeneral::free_axes(lr, &[], &d.lhs_batch);
            let rf = DotGeneral::free_axes(rr, &[], &d.rhs_batch);
            let mut la = vec![None; lr];
            let mut ra = vec![None; rr];
            for (i, (&l, &r)) in d.lhs_batch.iter().zip(&d.rhs_batch).enumerate() {
                la[l] = axes[i];
                ra[r] = axes[i];
            }
            for (j, &a) in lf.iter().enumerate() {
                la[a] = axes[nb + j];
            }
            for (j, &a) in rf.iter().enumerate() {
                ra[a] = axes[nb + lf.len() + j];
            }
            product(ops[0], la, term);
            product(ops[1], ra, term);
        }
        Op::Unary(Unary::Neg) => {
            term.negated = !term.negated;
            product(ops[0], axes, term);
        }
        Op::BroadcastTo(BroadcastTo { shape }) => {
            let from = dims(ops[0]);
            let lead = shape.rank() - from.len();
            let inner = (0..from.len())
                .map(|a| {
                    if from[a] == 1 && shape.dims()[lead + a] != 1 { None } else { axes[lead + a] }
                })
                .collect();
            product(ops[0], inner, term);
        }
        Op::Transpose(Transpose { perm }) => {
            let mut inner = vec![None; axes.len()];
            for (i, &p) in perm.iter().enumerate() {
                inner[p] = axes[i];
            }
            product(ops[0], inner, term);
        }
        Op::Reshape(_) if unit_reshape(&dims(ops[0]), &node.ty.shape.0) => {
            // The non-unit axes correspond in order; unit axes carry nothing.
            let mut carried = node.ty.shape.0.iter().zip(&axes).filter(|(d, _)| **d != 1);
            let inner = dims(ops[0])
                .iter()
                .map(|&d| if d == 1 { None } else { carried.next().and_then(|(_, a)| *a) })
                .collect();
            product(ops[0], inner, term);
        }
        // A splatted constant is a scalar: it carries no axis.
        Op::Const(Const::Full { .. }) => term.factors.push((n, vec![None; axes.len()])),
        _ => term.factors.push((n, axes)),
    }
}

/// The terms of the sum rooted at `n`: through `add`, `sub` and `neg` nodes used once (and the
/// root itself).
fn terms(
    f: &Function,
    n: NodeId,
    root: bool,
    negated: bool,
    uses: &HashMap<NodeId, usize>,
    out: &mut Vec<(bool, NodeId)>,
) {
    let node = f.node(n);
    let inner = root || uses.get(&n) == Some(&1);
    let ops = f.operands(n);
    match node.map(|x| &x.op) {
        Some(Op::Binary(Binary::Add)) if inner => {
            terms(f, ops[0], false, negated, uses, out);
            terms(f, ops[1], false, negated, uses, out);
        }
        Some(Op::Binary(Binary::Sub)) if inner => {
            terms(f, ops[0], false, negated, uses, out);
            terms(f, ops[1], false, !negated, uses, out);
        }
        Some(Op::Unary(Unary::Neg)) if inner && !root => {
            terms(f, ops[0], false, !negated, uses, out)
        }
        _ => out.push((negated, n)),
    }
}

/// A sum's factored form: groups of its terms, each with the factors its terms share and
/// those terms without them, and the terms left as they are (sign and node).
struct Factored {
    groups: Vec<(Vec<Factor>, Vec<Term>)>,
    rest: Vec<(bool, NodeId)>,
}

/// The factors of the first of `terms` that every one of them has, each as often.
fn shared(terms: &[&Term]) -> Vec<Factor> {
    let mut common: Vec<Factor> = Vec::new();
    let first = &terms[0].factors;
    for x in first {
        let count = |fs: &[Factor]| fs.iter().filter(|y| *y == x).count();
        if !common.contains(x) && terms.iter().all(|t| count(&t.factors) == count(first)) {
            common.extend(std::iter::repeat_n(x.clone(), count(first)));
        }
    }
    common
}

/// The factored form of the sum at `root`: the factors common to every term and the terms
/// without them, when the coefficient (the sum of the terms without them) spans at most half
/// the sum's elements. With `groups`, when no factor is common to every term, groups of two or
/// more terms that share factors under the same condition, each factored on its own
/// (`G·H + G + c → G·(H + 1) + c`), the other terms kept; and a `dot_general` contracting
/// nothing is read as a product. `None` when nothing is factored.
fn plan(
    f: &Function,
    root: NodeId,
    uses: &HashMap<NodeId, usize>,
    groups: bool,
) -> Option<Factored> {
    let ty = &f.node(root)?.ty;
    if !matches!(ty.dtype, DType::F32 | DType::F64) {
        return None;
    }
    let dims = ty.shape.0.clone();
    let mut parts = Vec::new();
    terms(f, root, true, false, uses, &mut parts);
    if parts.len() < 2 {
        return None;
    }
    let all: Vec<Option<usize>> = (0..dims.len()).map(Some).collect();
    let read: Vec<Term> = parts
        .iter()
        .map(|&(negated, n)| {
            let mut t = Term { negated, factors: Vec::new() };
            product(f, n, all.clone(), &mut t, groups);
            t
        })
        .collect();
    let whole: usize = dims.iter().product();
    // `members` without the factors `common`, if their coefficient is small enough.
    let factored = |members: &[usize], common: &[Factor]| -> Option<Vec<Term>> {
        let rest: Vec<Term> = members
            .iter()
            .map(|&i| Term {
                negated: read[i].negated,
                factors: read[i].factors.iter().filter(|x| !common.contains(x)).cloned().collect(),
            })
            .collect();
        // The coefficient's axes: those the remaining factors carry.
        let mut carried = vec![false; dims.len()];
        for (_, axes) in rest.iter().flat_map(|t| &t.factors) {
            for &a in axes.iter().flatten() {
                carried[a] = true;
            }
        }
        let coefficient: usize = (0..dims.len()).filter(|&a| carried[a]).map(|a| dims[a]).product();
        (2 * coefficient <= whole).then_some(rest)
    };
    let everyone: Vec<usize> = (0..read.len()).collect();
    let common = shared(&read.iter().collect::<Vec<_>>());
    if !common.is_empty() {
        return factored(&everyone, &common)
            .map(|t| Factored { groups: vec![(common, t)], rest: Vec::new() });
    }
    if !groups {
        return None;
    }
    // Greedily, in the terms' order: the first factor of an ungrouped term that a later
    // ungrouped term also has, if the terms having it factor.
    let mut taken = vec![false; read.len()];
    let mut found = Vec::new();
    for i in 0..read.len() {
        if taken[i] {
            continue;
        }
        for x in &read[i].factors {
            let members: Vec<usize> =
                (i..read.len()).filter(|&j| !taken[j] && read[j].factors.contains(x)).collect();
            if members.len() < 2 {
                continue;
            }
            let common = shared(&members.iter().map(|&j| &read[j]).collect::<Vec<_>>());
            // (`x` itself is not common when the members hold it different numbers of times.)
            if common.is_empty() {
                continue;
            }
            if let Some(t) = factored(&members, &common) {
                for &j in &members {
                    taken[j] = true;
                }
                found.push((common, t));
                break;
            }
        }
    }
    if found.is_empty() {
        return None;
    }
    let rest = (0..parts.len()).filter(|&i| !taken[i]).map(|i| parts[i]).collect();
    Some(Factored { groups: found, rest })
}

/// `x` (a node of `b` standing for a factor with `axes`) as a tensor of the sum's rank: its
/// carried axes in place, size 1 elsewhere. `None` if an axis is carried twice.
fn view(
    b: &mut FunctionBuilder,
    x: NodeId,
    axes: &[Option<usize>],
    rank: usize,
) -> Result<Option<NodeId>, IrError> {
    if let Op::Const(Const::Full { bits, .. }) = b.op(x)? {
        let (value, dtype) = (f64::from_bits(*bits), b.ty(x)?.dtype);
        return Ok(Some(b.full(jjt_ir::TensorType::new(dtype, vec![1; rank]), value)?));
    }
    let dims = b.ty(x)?.shape.0.clone();
    let kept: Vec<(usize, usize)> =
        axes.iter().zip(&dims).filter_map(|(a, &d)| a.map(|a| (a, d))).collect();
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by_key(|&i| kept[i].0);
    if order.windows(2).any(|w| kept[w[0]].0 == kept[w[1]].0) {
        return Ok(None);
    }
    let x = b.reshape(x, kept.iter().map(|&(_, d)| d).collect::<Vec<_>>())?;
    let x = b.transpose(x, &order)?;
    let mut shape = vec![1; rank];
    for &(a, d) in &kept {
        shape[a] = d;
    }
    Ok(Some(b.reshape(x, shape)?))
}

/// `sum ± x` (`x` or `−x` when there is no sum yet).
fn accumulate(
    b: &mut FunctionBuilder,
    sum: Option<NodeId>,
    x: NodeId,
    negated: bool,
) -> Result<NodeId, IrError> {
    match (sum, negated) {
        (None, false) => Ok(x),
        (None, true) => b.unary(Unary::Neg, x),
        (Some(s), false) => b.binary(Binary::Add, s, x),
        (Some(s), true) => b.binary(Binary::Sub, s, x),
    }
}

/// Factor every sum of `f` whose terms all share a factor.
pub fn factor(f: &Function) -> Result<(Function, FactorStats), IrError> {
    factor_with(f, false)
}

/// Factor every sum of `f` whose terms all share a factor, and with `groups` also the groups
/// of terms that share one (see `plan`).
pub fn factor_with(f: &Function, groups: bool) -> Result<(Function, FactorStats), IrError> {
    let mut uses: HashMap<NodeId, usize> = HashMap::new();
    for n in f.node_ids() {
        for o in f.operands(n) {
            *uses.entry(o).or_insert(0) += 1;
        }
    }
    let is_sum = |n: NodeId| {
        matches!(
            f.node(n).map(|x| &x.op),
            Some(Op::Binary(Binary::Add | Binary::Sub) | Op::Unary(Unary::Neg))
        )
    };
    // Roots: sums not read by another node of a sum they would be inner to.
    let mut plans = HashMap::new();
    for n in f.node_ids() {
        let add_or_sub =
            matches!(f.node(n).map(|x| &x.op), Some(Op::Binary(Binary::Add | Binary::Sub)));
        let inside = uses.get(&n) == Some(&1) && f.users(n).iter().all(|&u| is_sum(u));
        if add_or_sub
            && !inside
            && let Some(p) = plan(f, n, &uses, groups)
        {
            plans.insert(n, p);
        }
    }
    let mut stats = FactorStats::default();
    if plans.is_empty() {
        return Ok((f.clone(), stats));
    }
    let g = crate::rebuild(f, |b, v| {
        let Some(fx) = plans.get(&v.id) else { return Ok(None) };
        let ty = v.node.ty.clone();
        let rank = ty.rank();
        let mut total: Option<NodeId> = None;
        for (common, terms) in &fx.groups {
            let mut sum: Option<NodeId> = None;
            for t in terms {
                let mut prod: Option<NodeId> = None;
                for (x, axes) in &t.factors {
                    let Some(x) = view(b, v.get(*x)?, axes, rank)? else { return Ok(None) };
                    prod = Some(match prod {
                        Some(p) => b.binary(Binary::Mul, p, x)?,
                        None => x,
                    });
                }
                let prod = match prod {
                    Some(p) => p,
                    None => b.full(jjt_ir::TensorType::new(ty.dtype, vec![1; rank]), 1.0)?,
                };
                sum = Some(accumulate(b, sum, prod, t.negated)?);
            }
            let Some(coefficient) = sum else { return Ok(None) };
            let mut r = coefficient;
            for (x, axes) in common {
                let Some(x) = view(b, v.get(*x)?, axes, rank)? else { return Ok(None) };
                r = b.binary(Binary::Mul, x, r)?;
            }
            total = Some(accumulate(b, total, r, false)?);
        }
        for &(negated, n) in &fx.rest {
            let x = v.get(n)?;
            total = Some(accumulate(b, total, x, negated)?);
        }
        let Some(r) = total else { return Ok(None) };
        stats.factored += 1;
        Ok(Some(b.broadcast_to(r, &ty.shape)?))
    })?;
    Ok((g, stats))
}
