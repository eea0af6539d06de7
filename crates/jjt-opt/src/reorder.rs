//! Contraction reordering. Maximal trees of contractions (`dot_general`), elementwise products
//! (`mul`: scalings by diagonals), broadcasts, sums, transposes and reshapes that only insert or
//! drop axes of size 1 — each inner node used once,
//! by its parent — are read as one einsum over their leaves, and re-evaluated in the pairwise
//! order of least cost (multiply-adds plus the memory traffic of intermediates,
//! [`INTERMEDIATE_MACS`] per element): optimal (dynamic programming over subsets) for up to [`EXACT_LEAVES`]
//! leaves, greedy beyond. A label that no leaf carries (a sum over a broadcast axis, an output
//! axis made by a broadcast alone) is not an einsum of the leaves; such trees are left as
//! written. Pairs of leaves that depend only on constants cost nothing per call (constant
//! folding evaluates them once), so `A·(Aᵀ·D)` becomes `(A·Aᵀ)·D` with `A·Aᵀ` precomputed.
//! A tree is read a second time through the products of broadcasts it uses that other nodes
//! use too (`look_through`: recomputed for the tree, kept for the others), and the cheaper
//! reading wins. That reading also goes through reshapes that split or merge axes: a merged
//! axis carries the labels of its parts, and a label that an operand's axis cuts is split
//! everywhere (`network`). A pooled layer's bias gradient, the sum over positions of the
//! upsampled cotangent times the relu mask, is so read as the pooled cotangent times the mask
//! summed over each window (the zoo's CNN: two 2.6 M-element reductions per call become
//! products at a quarter of the positions). A sum that `sums` will let ride along a product
//! is not read through: riding costs it one column.
//!
//! Preserves: values up to reassociation of sums (the result is the same einsum; rounding may
//! differ within n·u·Σ|terms|). A tree is rewritten only when its cost strictly drops.

use std::collections::{HashMap, HashSet};

use jjt_ir::ops::{DotGeneral, ReduceKind};
use jjt_ir::{Binary, Function, FunctionBuilder, IrError, NodeId, Op};

use crate::cost::constant_nodes;

/// Trees with at most this many leaves are ordered optimally.
pub const EXACT_LEAVES: usize = 10;

type Label = usize;

/// A network and its order of pairwise contractions.
type Plan = (Network, Vec<(u64, u64)>);

struct Leaf {
    node: NodeId,
    labels: Vec<Label>,
    constant: bool,
    /// The shape the node is reshaped to when its labels are not its axes (a reshape in the
    /// tree cut one of its axes).
    shape: Option<Vec<usize>>,
}

struct Network {
    leaves: Vec<Leaf>,
    out: Vec<Label>,
    size: HashMap<Label, usize>,
    /// The root's shape when the labels of `out` are not its axes (the result is reshaped).
    root_shape: Option<Vec<usize>>,
}

/// Statistics of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReorderStats {
    /// Sums whose common factor was taken out first ([`crate::factor`]).
    pub factored: usize,
    /// Trees priced (with three or more leaves, or two or more read through shared products).
    pub networks: usize,
    /// Trees rewritten.
    pub rewritten: usize,
    /// Per-call multiply-adds before, summed over rewritten trees.
    pub flops_before: f64,
    /// Per-call multiply-adds after.
    pub flops_after: f64,
}

fn users(f: &Function) -> HashMap<NodeId, usize> {
    let mut u = HashMap::new();
    for n in f.node_ids() {
        for o in f.operands(n) {
            *u.entry(o).or_insert(0) += 1;
        }
    }
    u
}

/// The ops an einsum network is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dot,
    Mul,
    Transpose,
    Broadcast,
    Sum,
    /// A reshape that only inserts or drops axes of size 1 (a relabelling).
    Unit,
    /// Any other reshape: read only through the products a tree is read through a second
    /// time ([`look_through`]), where it splits labels.
    Reshape,
}

fn kind(f: &Function, n: NodeId) -> Option<Kind> {
    let node = f.node(n)?;
    match &node.op {
        Op::DotGeneral(_) => Some(Kind::Dot),
        Op::Binary(Binary::Mul) if node.ty.dtype != jjt_ir::DType::Bool => Some(Kind::Mul),
        Op::Transpose(_) => Some(Kind::Transpose),
        Op::Reshape(_) if unit_reshape(f, n) => Some(Kind::Unit),
        Op::Reshape(_) => Some(Kind::Reshape),
        Op::BroadcastTo(_) => Some(Kind::Broadcast),
        Op::Reduce(r) if r.kind == ReduceKind::Sum => Some(Kind::Sum),
        _ => None,
    }
}

/// Whether reshape `n` only inserts or drops axes of size 1 (its operand's other axes, in
/// order, are its own).
fn unit_reshape(f: &Function, n: NodeId) -> bool {
    let dims = |m: NodeId| f.node(m).map(|x| x.ty.shape.0.clone());
    match (f.operands(n).first().and_then(|&o| dims(o)), dims(n)) {
        (Some(from), Some(to)) => crate::factor::unit_reshape(&from, &to),
        _ => false,
    }
}

/// Nodes that can be the root of a network: a contraction, a product or a sum.
fn is_root_kind(k: Option<Kind>) -> bool {
    matches!(k, Some(Kind::Dot | Kind::Mul | Kind::Sum))
}

/// Read the tree under `root` into an einsum network (`None` when a reshape in it cannot be
/// read as a relabelling).
///
/// Each axis of a node in the tree carries a group of labels (one, unless a reshape above
/// merged axes: then the axis is the row-major product of its group). A reshape matches its
/// operand's axes against its result's labels in order: an operand axis spanning several
/// labels gets them as its group; a label an operand axis cuts is split into two (everywhere:
/// `split`), so an upsampling (`[8,2]` broadcast then merged to `16`) and the mask it meets
/// (`16` reshaped to `[8,2]`) end up with the same labels. A leaf whose labels are not its
/// axes is reshaped to them when the tree is rebuilt (row-major: a view), and the tree's
/// result back to the root's shape.
fn network(
    f: &Function,
    root: NodeId,
    inner: &HashSet<NodeId>,
    consts: &HashSet<NodeId>,
) -> Option<Network> {
    let mut size: HashMap<Label, usize> = HashMap::new();
    let mut next = 0usize;
    let mut fresh = |size: &mut HashMap<Label, usize>, d: usize| {
        next += 1;
        size.insert(next - 1, d);
        next - 1
    };
    // Labels replaced by their parts (a label an operand axis cut in two).
    let mut split: HashMap<Label, Vec<Label>> = HashMap::new();
    fn expand(split: &HashMap<Label, Vec<Label>>, l: Label, out: &mut Vec<Label>) {
        match split.get(&l) {
            Some(parts) => parts.iter().for_each(|&p| expand(split, p, out)),
            None => out.push(l),
        }
    }
    let dims = |m: NodeId| f.node(m).map(|x| x.ty.shape.0.clone()).unwrap_or_default();
    let root_dims = dims(root);
    let out: Vec<Label> = root_dims.iter().map(|&d| fresh(&mut size, d)).collect();
    let mut leaves: Vec<(NodeId, Vec<Vec<Label>>)> = Vec::new();
    let mut stack: Vec<(NodeId, Vec<Vec<Label>>)> =
        vec![(root, out.iter().map(|&l| vec![l]).collect())];
    while let Some((n, groups)) = stack.pop() {
        let node = f.node(n)?;
        let in_tree = n == root || inner.contains(&n);
        match &node.op {
            Op::DotGeneral(d) if in_tree => {
                let ops = f.operands(n);
                let (ld, rd) = (dims(ops[0]), dims(ops[1]));
                let lfree = DotGeneral::free_axes(ld.len(), &d.lhs_contract, &d.lhs_batch);
                let rfree = DotGeneral::free_axes(rd.len(), &d.rhs_contract, &d.rhs_batch);
                let nb = d.lhs_batch.len();
                let mut ll = vec![Vec::new(); ld.len()];
                let mut rl = vec![Vec::new(); rd.len()];
                for k in 0..nb {
                    ll[d.lhs_batch[k]] = groups[k].clone();
                    rl[d.rhs_batch[k]] = groups[k].clone();
                }
                for (k, &a) in lfree.iter().enumerate() {
                    ll[a] = groups[nb + k].clone();
                }
                for (k, &a) in rfree.iter().enumerate() {
                    rl[a] = groups[nb + lfree.len() + k].clone();
                }
                for (&a, &b) in d.lhs_contract.iter().zip(&d.rhs_contract) {
                    let l = fresh(&mut size, ld[a]);
                    ll[a] = vec![l];
                    rl[b] = vec![l];
                }
                stack.push((ops[1], rl));
                stack.push((ops[0], ll));
            }
            Op::Binary(Binary::Mul) if in_tree => {
                // An elementwise product: both operands carry the output's labels.
                let ops = f.operands(n);
                stack.push((ops[1], groups.clone()));
                stack.push((ops[0], groups));
            }
            Op::Transpose(t) if inner.contains(&n) => {
                // Output axis i is operand axis perm[i]: the operand's labels, permuted back.
                let mut ol = vec![Vec::new(); groups.len()];
                for (i, &p) in t.perm.iter().enumerate() {
                    ol[p] = groups[i].clone();
                }
                stack.push((f.operands(n)[0], ol));
            }
            Op::Reshape(_) if inner.contains(&n) => {
                // The result's labels of size above 1, in order (its unit axes are dropped),
                // dealt out to the operand's axes; an operand axis of size 1 gets a label of
                // its own.
                let o = f.operands(n)[0];
                let mut flat = Vec::new();
                groups.iter().flatten().for_each(|&l| expand(&split, l, &mut flat));
                flat.retain(|l| size[l] != 1);
                flat.reverse();
                let mut ol = Vec::new();
                for d in dims(o) {
                    if d == 1 {
                        ol.push(vec![fresh(&mut size, 1)]);
                        continue;
                    }
                    let mut group = Vec::new();
                    let mut have = 1usize;
                    while have < d {
                        let l = flat.pop()?;
                        let s = size[&l];
                        if have * s <= d {
                            group.push(l);
                            have *= s;
                        } else {
                            // The axis ends inside label l: cut it.
                            let q = d / have;
                            if !d.is_multiple_of(have) || !s.is_multiple_of(q) {
                                return None;
                            }
                            let (a, b) = (fresh(&mut size, q), fresh(&mut size, s / q));
                            split.insert(l, vec![a, b]);
                            group.push(a);
                            flat.push(b);
                            have = d;
                        }
                    }
                    if have != d {
                        return None;
                    }
                    ol.push(group);
                }
                if !flat.is_empty() {
                    return None;
                }
                stack.push((o, ol));
            }
            Op::BroadcastTo(bc) if inner.contains(&n) => {
                // The operand's axes are the trailing ones; a size-1 axis that is expanded gets a
                // label of its own (of size 1, summed away for free).
                let o = f.operands(n)[0];
                let from = dims(o);
                let lead = bc.shape.rank() - from.len();
                let ol = from
                    .iter()
                    .enumerate()
                    .map(|(a, &d)| {
                        if d == 1 && bc.shape.dims()[lead + a] != 1 {
                            vec![fresh(&mut size, 1)]
                        } else {
                            groups[lead + a].clone()
                        }
                    })
                    .collect();
                stack.push((o, ol));
            }
            Op::Reduce(r) if in_tree => {
                // A sum: the operand carries the output's labels and a new one per summed axis.
                let o = f.operands(n)[0];
                let mut kept = groups.into_iter();
                let ol = dims(o)
                    .iter()
                    .enumerate()
                    .map(|(a, &d)| {
                        if r.axes.contains(&a) {
                            vec![fresh(&mut size, d)]
                        } else {
                            kept.next().unwrap_or_default()
                        }
                    })
                    .collect();
                stack.push((o, ol));
            }
            _ => leaves.push((n, groups)),
        }
    }
    // Every label in its final parts; a leaf or a result whose labels are not its axes is
    // reshaped (`Leaf::shape`, `Network::root_shape`).
    let expand_all = |ls: &[Label]| {
        let mut v = Vec::new();
        ls.iter().for_each(|&l| expand(&split, l, &mut v));
        v
    };
    let leaves = leaves
        .into_iter()
        .map(|(node, groups)| {
            let labels = expand_all(&groups.concat());
            let shape =
                (labels.len() != groups.len()).then(|| labels.iter().map(|l| size[l]).collect());
            Leaf { node, labels, constant: consts.contains(&node), shape }
        })
        .collect();
    let out = expand_all(&out);
    let root_shape = (out.len() != root_dims.len()).then_some(root_dims);
    split.keys().for_each(|l| {
        size.remove(l);
    });
    Some(Network { leaves, out, size, root_shape })
}

/// Labels of a subset's result: those used outside it (another leaf or the output).
fn result_labels(net: &Network, set: u64) -> Vec<Label> {
    let mut inside: Vec<Label> = Vec::new();
    for (i, l) in net.leaves.iter().enumerate() {
        if set >> i & 1 == 1 {
            for &x in &l.labels {
                if !inside.contains(&x) {
                    inside.push(x);
                }
            }
        }
    }
    inside
        .into_iter()
        .filter(|x| {
            net.out.contains(x)
                || net
                    .leaves
                    .iter()
                    .enumerate()
                    .any(|(i, l)| set >> i & 1 == 0 && l.labels.contains(x))
        })
        .collect()
}

fn is_const(net: &Network, set: u64) -> bool {
    net.leaves.iter().enumerate().all(|(i, l)| set >> i & 1 == 0 || l.constant)
}

/// The price of writing one element of an intermediate result and reading it back, in
/// multiply-adds. A large contraction runs at about 10¹¹ multiply-adds per second on the
/// reference machine (`jjt_jit::Throughputs::MEASURED`); an intermediate that does not fit in
/// cache is written, read (and, when its axes do not chain for its reader, packed: read and
/// written again) at a few 10⁹ elements per second, about 20 multiply-adds' time per pass.
/// Without this term the order of least multiply-adds can be the slower one: on the zoo's
/// transformer, contracting the MLP weight's cotangent with the token Gram matrix first needs
/// 24 % fewer multiply-adds than the per-example-Jacobian order but writes and reads an
/// intermediate of 42 M elements (the Jacobians: 2 × 10.5 M), and takes 1.7× as long.
pub const INTERMEDIATE_MACS: f64 = 32.0;

/// The price of contracting two subsets: multiply-adds (the product of the sizes of all their
/// labels) plus [`INTERMEDIATE_MACS`] per element of the result, unless it is the whole
/// tree's (the same for every order). Free when both are constant and the result is no
/// larger than the two together (constant folding then evaluates it once; it does not fold
/// results that grow).
fn pair_cost(net: &Network, a: u64, b: u64) -> f64 {
    pair(net, a, b).0
}

/// The price of [`pair_cost`] and the multiply-adds alone.
fn pair(net: &Network, a: u64, b: u64) -> (f64, f64) {
    let elems =
        |set: u64| -> f64 { result_labels(net, set).iter().map(|l| net.size[l] as f64).product() };
    if is_const(net, a | b) && elems(a | b) <= elems(a) + elems(b) {
        return (0.0, 0.0);
    }
    // Labels each side still carries (its result labels).
    let ra: HashSet<Label> = result_labels(net, a).into_iter().collect();
    let rb: HashSet<Label> = result_labels(net, b).into_iter().collect();
    let macs: f64 = ra.union(&rb).map(|l| net.size[l] as f64).product();
    let whole = (a | b).count_ones() as usize == net.leaves.len();
    if whole { (macs, macs) } else { (macs + INTERMEDIATE_MACS * elems(a | b), macs) }
}

/// The elements the sums every order starts with read: a leaf with labels no other leaf and
/// no output carries is summed over them first (`sum_alone`), reading each of its elements
/// once. The same for every order of one tree, so it decides only between readings of a tree
/// (a sum over tokens of `a[o, j]·g[b, t, j]` read through the product sums `g` alone, not the
/// product) and against the tree as written. Priced at half of [`INTERMEDIATE_MACS`] per
/// element (one pass over memory).
fn lone_sums(net: &Network) -> f64 {
    let mut cost = 0.0;
    for (i, leaf) in net.leaves.iter().enumerate() {
        // (Summing a unit axis moves nothing: a reshape.)
        let alone = |l: &Label| {
            net.size[l] > 1
                && !net.out.contains(l)
                && net.leaves.iter().enumerate().all(|(j, o)| j == i || !o.labels.contains(l))
        };
        if !leaf.constant && leaf.labels.iter().any(alone) {
            cost += leaf.labels.iter().map(|l| net.size[l] as f64).product::<f64>();
        }
    }
    cost
}

/// The best contraction order: `plan[set] = (cost, split)`.
fn optimal(net: &Network) -> Option<Vec<(u64, u64)>> {
    let n = net.leaves.len();
    if n > EXACT_LEAVES {
        return None;
    }
    let full = (1u64 << n) - 1;
    let mut best: HashMap<u64, (f64, u64)> = HashMap::new();
    for i in 0..n {
        best.insert(1 << i, (0.0, 0));
    }
    let mut sets: Vec<u64> = (1..=full).filter(|s| s.count_ones() >= 2).collect();
    sets.sort_by_key(|s| s.count_ones());
    for s in sets {
        let mut t = (s - 1) & s;
        let mut choice: Option<(f64, u64)> = None;
        while t > 0 {
            let u = s ^ t;
            if t < u
                && let (Some(&(ct, _)), Some(&(cu, _))) = (best.get(&t), best.get(&u))
            {
                let c = ct + cu + pair_cost(net, t, u);
                if choice.is_none_or(|(bc, _)| c < bc) {
                    choice = Some((c, t));
                }
            }
            t = (t - 1) & s;
        }
        if let Some(c) = choice {
            best.insert(s, c);
        }
    }
    let mut steps = Vec::new();
    let mut stack = vec![full];
    while let Some(s) = stack.pop() {
        if s.count_ones() < 2 {
            continue;
        }
        let (_, t) = best[&s];
        steps.push((t, s ^ t));
        stack.push(t);
        stack.push(s ^ t);
    }
    Some(steps)
}

/// Greedy order: repeatedly contract the cheapest pair.
fn greedy(net: &Network) -> Vec<(u64, u64)> {
    let mut sets: Vec<u64> = (0..net.leaves.len()).map(|i| 1u64 << i).collect();
    let mut steps = Vec::new();
    while sets.len() > 1 {
        let mut bestp = (0, 1, f64::INFINITY);
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                let c = pair_cost(net, sets[i], sets[j]);
                if c < bestp.2 {
                    bestp = (i, j, c);
                }
            }
        }
        let (i, j, _) = bestp;
        let merged = sets[i] | sets[j];
        steps.push((sets[i], sets[j]));
        sets[i] = merged;
        sets.remove(j);
    }
    steps.reverse();
    steps
}

fn order_cost(net: &Network, steps: &[(u64, u64)]) -> f64 {
    steps.iter().map(|&(a, b)| pair_cost(net, a, b)).sum()
}

/// Multiply-adds of an order (for the statistics).
fn order_macs(net: &Network, steps: &[(u64, u64)]) -> f64 {
    steps.iter().map(|&(a, b)| pair(net, a, b).1).sum()
}

/// The order of the tree as written: each dot contracts its two operand subtrees.
fn written_order(f: &Function, root: NodeId, inner: &HashSet<NodeId>) -> Vec<(u64, u64)> {
    // Leaves appear in depth-first order, left operand first, so each dot covers a contiguous
    // range of leaves.
    fn walk(
        f: &Function,
        n: NodeId,
        root: NodeId,
        inner: &HashSet<NodeId>,
        next: &mut usize,
        acc: &mut Vec<(u64, u64)>,
    ) -> u64 {
        let k = kind(f, n);
        let in_tree = n == root || inner.contains(&n);
        if in_tree
            && matches!(
                k,
                Some(Kind::Transpose | Kind::Broadcast | Kind::Sum | Kind::Unit | Kind::Reshape)
            )
        {
            return walk(f, f.operands(n)[0], root, inner, next, acc);
        }
        if !(in_tree && matches!(k, Some(Kind::Dot | Kind::Mul))) {
            let s = 1u64 << *next;
            *next += 1;
            return s;
        }
        let ops = f.operands(n);
        let a = walk(f, ops[0], root, inner, next, acc);
        let b = walk(f, ops[1], root, inner, next, acc);
        acc.push((a, b));
        a | b
    }
    let mut steps = Vec::new();
    let mut next = 0;
    walk(f, root, root, inner, &mut next, &mut steps);
    steps
}

/// Emit the contraction of `set` (following `plan`) into `b`; returns the node and its labels.
fn emit(
    b: &mut FunctionBuilder,
    net: &Network,
    leaf_nodes: &[NodeId],
    split: &HashMap<u64, (u64, u64)>,
    set: u64,
) -> Result<(NodeId, Vec<Label>), IrError> {
    if set.count_ones() == 1 {
        let i = set.trailing_zeros() as usize;
        return Ok((leaf_nodes[i], net.leaves[i].labels.clone()));
    }
    let (t, u) = split[&set];
    let keep = result_labels(net, set);
    let (x, lx) = emit(b, net, leaf_nodes, split, t)?;
    let (y, ly) = emit(b, net, leaf_nodes, split, u)?;
    // Labels that only one side carries and nothing after needs are summed first.
    let (x, lx) = sum_alone(b, x, lx, &ly, &keep)?;
    let (y, ly) = sum_alone(b, y, ly, &lx, &keep)?;
    // A pair that would contract unit axes only is an elementwise product, which the backend
    // would run as a batch of 1×1 products: those labels are dropped (a reshape) instead.
    // Beside real contracted axes a unit axis is left in place (dropping it from a strided
    // view can cost a copy).
    let contracted = |l: &Label| ly.contains(l) && !keep.contains(l);
    if lx.iter().any(contracted) && lx.iter().filter(|l| contracted(l)).all(|l| net.size[l] == 1) {
        let unit = |l: &Label| net.size[l] == 1 && contracted(l) && lx.contains(l);
        let (x2, lx2) = drop_labels(b, x, lx.clone(), &unit)?;
        let (y2, ly2) = drop_labels(b, y, ly.clone(), &unit)?;
        return finish_pair(b, x2, lx2, y2, ly2, &keep);
    }
    finish_pair(b, x, lx, y, ly, &keep)
}

/// The contraction of `x` and `y` (labels `lx`, `ly`): shared labels in `keep` become batch
/// axes, the other shared ones are contracted; returns the node and its labels.
fn finish_pair(
    b: &mut FunctionBuilder,
    x: NodeId,
    lx: Vec<Label>,
    y: NodeId,
    ly: Vec<Label>,
    keep: &[Label],
) -> Result<(NodeId, Vec<Label>), IrError> {
    let mut d = DotGeneral::default();
    let mut out = Vec::new();
    for (i, l) in lx.iter().enumerate() {
        if let Some(j) = ly.iter().position(|m| m == l) {
            if keep.contains(l) {
                d.lhs_batch.push(i);
                d.rhs_batch.push(j);
                out.push(*l);
            } else {
                d.lhs_contract.push(i);
                d.rhs_contract.push(j);
            }
        }
    }
    out.extend(lx.iter().filter(|l| !ly.contains(l)));
    out.extend(ly.iter().filter(|l| !lx.contains(l)));
    Ok((b.dot_general(x, y, d)?, out))
}

/// `x` (labels `lx`) without its axes whose labels `drop` selects (all of size 1: a reshape).
fn drop_labels(
    b: &mut FunctionBuilder,
    x: NodeId,
    lx: Vec<Label>,
    drop: &impl Fn(&Label) -> bool,
) -> Result<(NodeId, Vec<Label>), IrError> {
    if !lx.iter().any(drop) {
        return Ok((x, lx));
    }
    let dims = b.ty(x)?.shape.0.clone();
    let kept: Vec<usize> = (0..lx.len()).filter(|&i| !drop(&lx[i])).collect();
    let shape: Vec<usize> = kept.iter().map(|&i| dims[i]).collect();
    Ok((b.reshape(x, shape)?, kept.iter().map(|&i| lx[i]).collect()))
}

/// `x` (labels `lx`) summed over the labels that neither `other` nor `keep` holds. Those of
/// size 1 are one term each: reshaped away rather than summed (a sum would start from +0.0
/// and be a step of its own, where a reshape is a view: in a JAX export of the CNN, the
/// patches of its last layer summed over a unit axis took a scalar reduction and a packed
/// contraction, 1.4 ms per side, where reading them in place takes 0.33 ms).
fn sum_alone(
    b: &mut FunctionBuilder,
    x: NodeId,
    lx: Vec<Label>,
    other: &[Label],
    keep: &[Label],
) -> Result<(NodeId, Vec<Label>), IrError> {
    let dims = b.ty(x)?.shape.0.clone();
    let alone_at = |lx: &[Label], i: usize| !other.contains(&lx[i]) && !keep.contains(&lx[i]);
    let unit: Vec<Label> =
        (0..lx.len()).filter(|&i| alone_at(&lx, i) && dims[i] == 1).map(|i| lx[i]).collect();
    let (x, lx) = drop_labels(b, x, lx, &|l| unit.contains(l))?;
    let alone: Vec<i64> = (0..lx.len()).filter(|&i| alone_at(&lx, i)).map(|i| i as i64).collect();
    if alone.is_empty() {
        return Ok((x, lx));
    }
    let rest = lx.iter().enumerate().filter(|(i, _)| !alone.contains(&(*i as i64)));
    let rest: Vec<Label> = rest.map(|(_, &l)| l).collect();
    Ok((b.reduce(ReduceKind::Sum, x, Some(&alone))?, rest))
}

/// Whether every output label and every label of size above 1 is carried by some leaf (else
/// the tree is not an einsum of its leaves: a sum over a broadcast axis multiplies by its
/// length, and an output axis made by a broadcast alone has no leaf to come from).
fn well_formed(net: &Network) -> bool {
    let carried: HashSet<Label> =
        net.leaves.iter().flat_map(|l| l.labels.iter().copied()).collect();
    net.out.iter().all(|l| carried.contains(l))
        && net.size.iter().all(|(l, &d)| d <= 1 || carried.contains(l))
}

/// The nodes a tree may be read through besides its inner ones: inner nodes, and products
/// (`mul`, contractions of nothing) of broadcasts and transposes that other nodes also use,
/// when every leaf under them is smaller than they are. A cotangent that is a weight's
/// broadcast times a per-example factor (`a[o, j]·g[b, t, j]`) is such a product: read as a
/// leaf of the Gram product of per-example Jacobians it hides the factorisation that
/// contracts the token axis before the broadcast one.
fn look_through(
    f: &Function,
    inner: &HashSet<NodeId>,
    outputs: &HashSet<NodeId>,
) -> HashSet<NodeId> {
    let elems = |n: NodeId| f.node(n).map_or(0, |x| x.ty.shape.dims().iter().product::<usize>());
    let candidate = |n: NodeId| {
        let Some(node) = f.node(n) else { return false };
        match &node.op {
            Op::DotGeneral(d) => d.lhs_contract.is_empty(),
            _ => matches!(
                kind(f, n),
                Some(Kind::Mul | Kind::Broadcast | Kind::Transpose | Kind::Unit | Kind::Reshape)
            ),
        }
    };
    let mut through = inner.clone();
    for n in f.node_ids() {
        if inner.contains(&n) || outputs.contains(&n) || !candidate(n) {
            continue;
        }
        // Leaves under n through inner nodes and other candidates.
        let mut stack = vec![n];
        let mut smaller = true;
        while let Some(m) = stack.pop() {
            let expands = m == n || inner.contains(&m) || candidate(m);
            if expands
                && matches!(
                    kind(f, m),
                    Some(
                        Kind::Mul
                            | Kind::Dot
                            | Kind::Broadcast
                            | Kind::Transpose
                            | Kind::Unit
                            | Kind::Reshape
                    )
                )
            {
                stack.extend(f.operands(m));
            } else if elems(m) >= elems(n) {
                smaller = false;
                break;
            }
        }
        if smaller {
            through.insert(n);
        }
    }
    through
}

/// Reorder every contraction tree of `f` whose cost drops.
pub fn reorder(f: &Function) -> Result<(Function, ReorderStats), IrError> {
    let (factored, fs) = crate::factor::factor(f)?;
    let f = &factored;
    let uses = users(f);
    let outputs: HashSet<NodeId> = f.outputs().iter().copied().collect();
    let consts = constant_nodes(f);
    // Inner nodes: network ops used once, by a node of the same network (a contraction, a
    // product, a sum, or an inner transpose or broadcast), and not outputs (decided from the
    // users down, so a transpose or broadcast counts only inside a tree).
    let mut inner: HashSet<NodeId> = HashSet::new();
    for n in f.topo_order().into_iter().rev() {
        if matches!(kind(f, n), None | Some(Kind::Reshape))
            || uses.get(&n) != Some(&1)
            || outputs.contains(&n)
        {
            continue;
        }
        let in_network = |u: NodeId| {
            let k = kind(f, u);
            is_root_kind(k) || (k.is_some() && inner.contains(&u))
        };
        if f.users(n).iter().all(|&u| in_network(u)) {
            inner.insert(n);
        }
    }
    // A sum that will ride along a product (`sums`) costs one column of it: the second reading
    // leaves it whole (a leaf), however cheap reading through it would be.
    let riding = crate::sums::riding(f);
    let mut through = look_through(f, &inner, &outputs);
    through.retain(|n| !riding.contains(n));
    let mut stats = ReorderStats { factored: fs.factored, ..ReorderStats::default() };
    let mut plans: HashMap<NodeId, Plan> = HashMap::new();
    for n in f.node_ids() {
        if !is_root_kind(kind(f, n)) || inner.contains(&n) {
            continue;
        }
        let Some(plain) = network(f, n, &inner, &consts) else { continue };
        // The tree as written is priced (and so read) with up to 63 leaves; it has orders to
        // choose from with three or more, and a second reading (below) with two or more.
        let priced = |net: &Network| (1..=63).contains(&net.leaves.len()) && well_formed(net);
        let contracts = match f.node(n).map(|x| &x.op) {
            Some(Op::DotGeneral(d)) => !d.lhs_contract.is_empty(),
            _ => kind(f, n) == Some(Kind::Sum),
        };
        if !priced(&plain) || (plain.leaves.len() < 3 && !contracts) {
            continue;
        }
        let written = written_order(f, n, &inner);
        let pass = INTERMEDIATE_MACS / 2.0;
        let lone = lone_sums(&plain);
        let baseline = order_cost(&plain, &written) + pass * lone;
        let macs_before = order_macs(&plain, &written) + lone;
        let mut best: Option<(f64, Plan)> = None;
        // The tree as it is, and the tree read through the products of broadcasts it uses
        // (recomputed for it; their other users keep them). The second reading is taken only
        // for a tree that contracts something and only when it at least halves the price:
        // recomputed products are elementwise work in whatever layout the new order emits,
        // which the einsum price does not see (on the zoo's mixer, reading elementwise trees
        // through their shared factors cut 1 % of the multiply-adds and doubled the time of
        // the maps that read the results across their layout).
        let expanded =
            if contracts && !riding.contains(&n) { network(f, n, &through, &consts) } else { None };
        for (k, net) in std::iter::once(plain).chain(expanded).enumerate() {
            let least = if k == 0 { 3 } else { 2 };
            if !priced(&net) || net.leaves.len() < least {
                continue;
            }
            let steps = optimal(&net).unwrap_or_else(|| greedy(&net));
            let cost = order_cost(&net, &steps) + pass * lone_sums(&net);
            let share = if k == 0 { 1.0 } else { 0.5 };
            if best.as_ref().is_none_or(|(c, _)| cost < share * *c) {
                best = Some((cost, (net, steps)));
            }
        }
        let Some((cost, (net, steps))) = best else { continue };
        stats.networks += 1;
        if cost < baseline {
            stats.rewritten += 1;
            stats.flops_before += macs_before;
            stats.flops_after += order_macs(&net, &steps) + lone_sums(&net);
            plans.insert(n, (net, steps));
        }
    }
    if plans.is_empty() {
        let (g, after) = crate::factor::factor_with(&factored, true)?;
        stats.factored += after.factored;
        return Ok((g, stats));
    }
    // Rebuild, replacing each rewritten root by its new tree (the old inner nodes, copied but
    // unused, are pruned).
    let g = crate::rebuild(f, |b, v| {
        let Some((net, steps)) = plans.get(&v.id) else { return Ok(None) };
        let mut leaf_nodes = Vec::new();
        for l in &net.leaves {
            let x = v.get(l.node)?;
            leaf_nodes.push(match &l.shape {
                Some(shape) => b.reshape(x, shape.clone())?,
                None => x,
            });
        }
        let split: HashMap<u64, (u64, u64)> = steps.iter().map(|&(a, c)| (a | c, (a, c))).collect();
        let full = (1u64 << net.leaves.len()) - 1;
        let (v, labels) = emit(b, net, &leaf_nodes, &split, full)?;
        let perm: Vec<usize> =
            net.out.iter().map(|l| labels.iter().position(|m| m == l).unwrap_or(0)).collect();
        let t = b.transpose(v, &perm)?;
        Ok(Some(match &net.root_shape {
            Some(shape) => b.reshape(t, shape.clone())?,
            None => t,
        }))
    })?;
    // The new trees' terms, grouped by the factors they share: a structured kernel's layer
    // adds its weight's term `G ⊙ (h·h'ᵀ)` and its bias's `G`, one read of G instead of two.
    let (g, after) = crate::factor::factor_with(&g, true)?;
    stats.factored += after.factored;
    Ok((g, stats))
}
