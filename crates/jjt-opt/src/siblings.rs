//! Sibling contractions: `dot_general(a₁, w)`, `dot_general(a₂, w)`, … with the same `w` (the
//! same node), the same axes and operands `aᵢ` of one dtype and shape (but for the joined axis)
//! become one contraction of
//! `concat(a₁, a₂, …)` along the first free axis of the `aᵢ` (their lengths along it may differ:
//! B1 ≠ B2), whose result is sliced back into the parts. Likewise for a shared left operand.
//!
//! Why: a kernel evaluates the model on both sides, p1 and p2, with the same shared parameters
//! θ, so every layer's product with a weight appears twice (forward, and again in the
//! backward pass). One product with twice the rows reads and packs the weight once and gives the
//! matrix multiply a better shape; the code generator writes the parts straight into the joined
//! buffer, so the concatenation costs no copy when the parts are computed.
//!
//! Only products with at least [`MIN_MADDS`] multiply-adds each are joined, and a product whose
//! operand depends on another member's result (a weight applied twice in a chain) stays apart.
//! Groups whose shared operand has at least as many elements as each part are formed first (the
//! saving is the repeated pass over the shared operand: `h·wq`, `h·wk`, `h·wv` become
//! `h·[wq wk wv]`); the products left are then joined with a smaller shared operand too (the
//! saving is the shape: the two sides' backward products through a 64×64 weight, 320×64×64
//! each, become one of 640 rows, packed once and large enough to be split across threads).
//!
//! Preserves: values bit for bit (each output element is the same sum in the same order).

use std::collections::{BTreeMap, HashMap, HashSet};

use jjt_ir::ops::{DotGeneral, Slice};
use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Op, TensorType};

use crate::Side;

/// Multiply-adds from which a product is worth joining with its siblings.
pub const MIN_MADDS: usize = 1 << 15;

/// What the pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiblingStats {
    /// Groups of sibling products joined.
    pub groups: usize,
    /// Products replaced by slices of a joined one.
    pub joined: usize,
}

/// One group: the shared operand is operand `shared` of every member, the parts the other one.
struct Group {
    shared: Side,
    members: Vec<NodeId>,
    /// Axis of the parts along which they are joined.
    axis: usize,
    /// The same axis's position in the product's output.
    out_axis: usize,
}

/// Join sibling contractions of `f` (those of at least [`MIN_MADDS`] multiply-adds).
pub fn siblings(f: &Function) -> Result<(Function, SiblingStats), IrError> {
    siblings_with(f, MIN_MADDS)
}

/// [`siblings`] with another size threshold (tests use 0, to exercise the pass on small graphs).
pub fn siblings_with(f: &Function, min_madds: usize) -> Result<(Function, SiblingStats), IrError> {
    let order = f.topo_order();
    let groups = find_groups(f, &order, min_madds);
    if groups.is_empty() {
        return Ok((f.clone(), SiblingStats::default()));
    }
    let mut group_of: HashMap<NodeId, usize> = HashMap::new();
    for (g, grp) in groups.iter().enumerate() {
        for &m in &grp.members {
            group_of.insert(m, g);
        }
    }
    // Order the nodes so that every member comes after every member's operands.
    let Some(order) = order_with_groups(f, &order, &groups) else {
        return Ok((f.clone(), SiblingStats::default()));
    };
    let mut b = FunctionBuilder::new(f.name.clone());
    let mut r = crate::replay_inputs(f, &mut b)?;
    let mut stats = SiblingStats::default();
    // The slices standing for the members of a group joined already.
    let mut parts: HashMap<NodeId, NodeId> = HashMap::new();
    r.run_in(&mut b, order, |b, v| {
        if let Some(&part) = parts.get(&v.id) {
            return Ok(part);
        }
        let (Some(&g), Op::DotGeneral(dims)) = (group_of.get(&v.id), &v.node.op) else {
            return v.copy(b);
        };
        let grp = &groups[g];
        let shared = v.args[grp.shared.slot()];
        let joined: Vec<NodeId> = grp
            .members
            .iter()
            .map(|&m| v.get(f.operands(m)[grp.shared.other().slot()]))
            .collect::<Result<_, _>>()?;
        let joined = b.concat(&joined, grp.axis as i64)?;
        let (x, y) = match grp.shared {
            Side::Lhs => (shared, joined),
            Side::Rhs => (joined, shared),
        };
        let whole = b.dot_general(x, y, dims.clone())?;
        let dims_out = b.ty(whole)?.shape.0.clone();
        let mut at = 0;
        for &m in &grp.members {
            let len = f.node(m).map_or(0, |nd| nd.ty.shape.dims()[grp.out_axis]);
            let mut start = vec![0; dims_out.len()];
            let mut stop = dims_out.clone();
            start[grp.out_axis] = at;
            stop[grp.out_axis] = at + len;
            at += len;
            let step = vec![1; dims_out.len()];
            let part = b.add(Op::Slice(Slice { start, stop, step }), &[whole])?;
            parts.insert(m, part);
        }
        stats.groups += 1;
        stats.joined += grp.members.len();
        parts.get(&v.id).copied().ok_or(IrError::UnknownNode(v.id))
    })?;
    Ok((b.finish_many(r.outputs()?)?.pruned(), stats))
}

/// Groups of joinable siblings (two or more members each, every product in at most one group).
fn find_groups(f: &Function, order: &[NodeId], min_madds: usize) -> Vec<Group> {
    let mut taken: HashSet<NodeId> = HashSet::new();
    // Operands that already are parts of a concatenation (each can be computed in place into
    // one only; a second would copy it).
    let mut parts: HashSet<NodeId> = HashSet::new();
    for &n in order {
        if let Some(node) = f.node(n)
            && matches!(node.op, Op::Concat(_))
        {
            parts.extend(f.operands(n).iter().copied());
        }
    }
    let mut groups = Vec::new();
    // First the groups whose shared operand is at least as large as each part (the saving is
    // the repeated pass over it), then, among the products left, those with a smaller shared
    // operand (the saving is the shape: one product with twice the rows packs its operands
    // once, and is large enough to be split across threads), each part in one concatenation
    // at most and the largest groups first.
    for small_shared in [false, true] {
        find_tier(f, order, min_madds, small_shared, &mut taken, &mut parts, &mut groups);
    }
    groups
}

/// The groups of one tier of [`find_groups`]: products not `taken` yet whose shared operand is
/// smaller than their part (`small_shared`, and then only with operands not in `parts`) or not.
fn find_tier(
    f: &Function,
    order: &[NodeId],
    min_madds: usize,
    small_shared: bool,
    taken: &mut HashSet<NodeId>,
    parts: &mut HashSet<NodeId>,
    groups: &mut Vec<Group>,
) {
    // Key: (shared operand, the parts' side, the axes and the other operand's type but for its
    // length along the joined axis).
    type Key = (NodeId, Side, String);
    let mut by_key: BTreeMap<Key, Vec<NodeId>> = BTreeMap::new();
    for side in [Side::Rhs, Side::Lhs] {
        for &n in order {
            let Some(node) = f.node(n) else { continue };
            let Op::DotGeneral(d) = &node.op else { continue };
            let ops = f.operands(n);
            let (shared, part) = (ops[side.slot()], ops[side.other().slot()]);
            let (Some(st), Some(pt)) = (f.node(shared), f.node(part)) else { continue };
            let madds = node.ty.numel().saturating_mul(contracted(d, &st.ty, side));
            let small = st.ty.numel() < pt.ty.numel();
            if madds < min_madds || small != small_shared || shared == part || taken.contains(&n) {
                continue;
            }
            // The other operands may differ in length along the joined axis (B1 ≠ B2).
            let (contract, batch) = side.other().axes(d);
            let Some(&axis) = DotGeneral::free_axes(pt.ty.rank(), contract, batch).first() else {
                continue;
            };
            // With a smaller shared operand, only products without batch axes joined along
            // their parts' first axis: each part of the result is then one contiguous block
            // (joined along another axis, the parts become strided views that the products
            // reading them must pack, which costs what the join saved), and only parts that
            // are computed anyway, with arithmetic of their own (an input or a view, a
            // transpose say, would be copied into the joined buffer).
            if small_shared
                && (!batch.is_empty() || axis != 0 || crate::cost::node_flops(f, part) == 0.0)
            {
                continue;
            }
            let mut dims: Vec<String> = pt.ty.shape.dims().iter().map(|x| x.to_string()).collect();
            dims[axis] = "*".into();
            let what = format!("{d:?} {} [{}]", pt.ty.dtype, dims.join(","));
            by_key.entry((shared, side.other(), what)).or_default().push(n);
        }
    }
    let mut keyed: Vec<_> = by_key.into_iter().collect();
    if small_shared {
        let flops = |c: &[NodeId]| c.iter().map(|&m| crate::cost::node_flops(f, m)).sum::<f64>();
        keyed.sort_by(|(_, a), (_, b)| flops(b).total_cmp(&flops(a)));
    }
    for ((_, parts_side, _), candidates) in keyed {
        let side = parts_side.other();
        let part_of = |m: NodeId| f.operands(m)[side.other().slot()];
        // Greedily, in graph order: a product joins unless its operand depends on a member
        // already taken or a member's operand depends on it (joining would make a cycle).
        let mut members: Vec<NodeId> = Vec::new();
        for m in candidates.into_iter().filter(|m| !taken.contains(m)) {
            if small_shared
                && (parts.contains(&part_of(m))
                    || members.iter().any(|&o| part_of(o) == part_of(m)))
            {
                continue;
            }
            members.push(m);
            if depends_on_each_other(f, &members, side.other().slot()) {
                members.pop();
            }
        }
        if members.len() < 2 {
            continue;
        }
        let Some(node) = f.node(members[0]) else { continue };
        let Op::DotGeneral(d) = &node.op else { continue };
        let part_rank =
            f.node(f.operands(members[0])[side.other().slot()]).map_or(0, |p| p.ty.rank());
        let (contract, batch) = side.other().axes(d);
        let Some(&axis) = DotGeneral::free_axes(part_rank, contract, batch).first() else {
            continue;
        };
        let nb = d.lhs_batch.len();
        let out_axis = if side == Side::Lhs {
            nb + DotGeneral::free_axes(
                f.node(f.operands(members[0])[0]).map_or(0, |p| p.ty.rank()),
                &d.lhs_contract,
                &d.lhs_batch,
            )
            .len()
        } else {
            nb
        };
        taken.extend(members.iter().copied());
        parts.extend(members.iter().map(|&m| part_of(m)));
        groups.push(Group { shared: side, members, axis, out_axis });
    }
}

/// The product of the contracted dimensions, read from the shared operand's type.
fn contracted(d: &DotGeneral, shared: &TensorType, side: Side) -> usize {
    let axes = side.axes(d).0;
    axes.iter().map(|&a| shared.shape.dims()[a]).product()
}

/// Whether any member is an ancestor of another member's joined operand (joining would make
/// a cycle).
fn depends_on_each_other(f: &Function, members: &[NodeId], part_slot: usize) -> bool {
    let ancestors = f.backward_closure(members.iter().map(|&m| f.operands(m)[part_slot]));
    members.iter().any(|&m| ancestors.contains(m))
}

/// A topological order of `f` in which each group's members come after all of the members'
/// operands; `None` if they make a cycle.
fn order_with_groups(f: &Function, order: &[NodeId], groups: &[Group]) -> Option<Vec<NodeId>> {
    let extra: Vec<(NodeId, Vec<NodeId>)> = groups
        .iter()
        .flat_map(|g| {
            let all: Vec<NodeId> = g.members.iter().flat_map(|&m| f.operands(m)).collect();
            g.members.iter().map(move |&m| (m, all.clone()))
        })
        .collect();
    crate::order_with(f, order, &extra)
}
