//! Walking a function: the one replay loop every transform and pass is written with, and the
//! forward and backward closures their dependency analyses use.
//!
//! [`Replay`] is jjt's `eval_jaxpr`: it visits the nodes of a source function in its
//! deterministic topological order ([`Function::topo_order`]), hands each to a per-node hook
//! together with the values its operands were mapped to, records what the hook emitted into
//! the target [`FunctionBuilder`] (the old → new map) and carries the node's name over. A
//! transform is its hook: copy the op (inlining, common-subexpression elimination), apply a
//! rule (JVP, batching), or rewrite (simplification). The source is never mutated.
//!
//! [`Function::forward_closure`] (what depends on a seed set) and
//! [`Function::backward_closure`] (what a set of nodes depends on) return a [`NodeSet`] in
//! topological order: linear versus known nodes in transposition, residuals in linearization,
//! constant-only and shared-only nodes in the cost model and staging, live nodes in pruning.

use std::collections::{HashMap, HashSet};

use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::graph::{Function, Node, NodeId};

/// What a replay maps each source node to: a node of the target builder, possibly with more
/// (its tangent in JVP, its batch axis in batching).
pub trait Replayed: Copy {
    /// The target node standing for the source node (the one that receives its name).
    fn node(&self) -> NodeId;
}

impl Replayed for NodeId {
    fn node(&self) -> NodeId {
        *self
    }
}

impl<T: Copy> Replayed for (NodeId, T) {
    fn node(&self) -> NodeId {
        self.0
    }
}

/// One source node as a replay hook sees it.
#[derive(Debug)]
pub struct Visit<'a, T> {
    /// The node's id in the source function.
    pub id: NodeId,
    /// The source node (op, type, name).
    pub node: &'a Node,
    /// What its operands were mapped to, in slot order.
    pub args: &'a [T],
    map: &'a HashMap<NodeId, T>,
}

impl<T: Replayed> Visit<'_, T> {
    /// What an earlier node of the source (`old`) was mapped to.
    pub fn get(&self, old: NodeId) -> Result<T, IrError> {
        self.map.get(&old).copied().ok_or(IrError::UnknownNode(old))
    }

    /// The target nodes of the operands, in slot order.
    pub fn arg_nodes(&self) -> Vec<NodeId> {
        self.args.iter().map(Replayed::node).collect()
    }

    /// The node's op applied to the operands' target nodes: the plain copy.
    pub fn copy(&self, b: &mut FunctionBuilder) -> Result<NodeId, IrError> {
        b.add(self.node.op.clone(), &self.arg_nodes())
    }
}

/// A replay of one source function into builders: the old → new map and the walk.
#[derive(Debug)]
pub struct Replay<'f, T> {
    f: &'f Function,
    map: HashMap<NodeId, T>,
}

impl<'f, T: Replayed> Replay<'f, T> {
    /// A replay of `f` with nothing mapped yet.
    pub fn new(f: &'f Function) -> Self {
        Replay { f, map: HashMap::new() }
    }

    /// The source function.
    pub fn source(&self) -> &'f Function {
        self.f
    }

    /// Map source node `old` to `new` before the walk (an input bound to an argument, a
    /// residual turned into an input); the walk skips nodes already mapped.
    pub fn bind(&mut self, old: NodeId, new: T) {
        self.map.insert(old, new);
    }

    /// Whether `old` is mapped.
    pub fn contains(&self, old: NodeId) -> bool {
        self.map.contains_key(&old)
    }

    /// What `old` was mapped to.
    pub fn get(&self, old: NodeId) -> Result<T, IrError> {
        self.map.get(&old).copied().ok_or(IrError::UnknownNode(old))
    }

    /// What the source's outputs were mapped to, in order.
    pub fn outputs(&self) -> Result<Vec<T>, IrError> {
        self.f.outputs().iter().map(|&o| self.get(o)).collect()
    }

    /// Visit every source node that is not mapped yet and that `only` accepts, in topological
    /// order: `hook` emits into `b` and returns the node's new value, which is recorded, and
    /// the source node's name is given to its target node. The operands of a visited node must
    /// be mapped (by [`Replay::bind`] or an earlier visit); otherwise the walk stops with
    /// [`IrError::UnknownNode`].
    pub fn run<E: From<IrError>>(
        &mut self,
        b: &mut FunctionBuilder,
        only: impl Fn(NodeId) -> bool,
        hook: impl FnMut(&mut FunctionBuilder, Visit<'_, T>) -> Result<T, E>,
    ) -> Result<(), E> {
        let order: Vec<NodeId> = self.f.topo_order().into_iter().filter(|&n| only(n)).collect();
        self.run_in(b, order, hook)
    }

    /// [`Replay::run`] over the nodes of `order`, in that order (a topological order with
    /// extra constraints of the caller's, such as joined nodes after all their operands).
    pub fn run_in<E: From<IrError>>(
        &mut self,
        b: &mut FunctionBuilder,
        order: impl IntoIterator<Item = NodeId>,
        mut hook: impl FnMut(&mut FunctionBuilder, Visit<'_, T>) -> Result<T, E>,
    ) -> Result<(), E> {
        let f = self.f;
        for id in order {
            if self.map.contains_key(&id) {
                continue;
            }
            let node = f.node(id).ok_or(IrError::UnknownNode(id))?;
            let args =
                f.operands(id).into_iter().map(|o| self.get(o)).collect::<Result<Vec<_>, _>>()?;
            let new = hook(b, Visit { id, node, args: &args, map: &self.map })?;
            if let Some(name) = &node.name {
                b.name_node(new.node(), name);
            }
            self.map.insert(id, new);
        }
        Ok(())
    }
}

/// A set of nodes of one function, in its topological order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSet {
    order: Vec<NodeId>,
    members: HashSet<NodeId>,
}

impl NodeSet {
    fn from_order(order: Vec<NodeId>) -> NodeSet {
        let members = order.iter().copied().collect();
        NodeSet { order, members }
    }

    /// Whether `n` is in the set.
    pub fn contains(&self, n: NodeId) -> bool {
        self.members.contains(&n)
    }

    /// The members in topological order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = NodeId> + '_ {
        self.order.iter().copied()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl Function {
    /// The nodes that depend on any of `seeds` (the seeds included), in topological order.
    pub fn forward_closure(&self, seeds: impl IntoIterator<Item = NodeId>) -> NodeSet {
        let mut members: HashSet<NodeId> = seeds.into_iter().collect();
        let mut order = Vec::new();
        for n in self.topo_order() {
            if members.contains(&n) || self.operands(n).iter().any(|o| members.contains(o)) {
                members.insert(n);
                order.push(n);
            }
        }
        NodeSet { order, members }
    }

    /// The nodes any of `roots` depends on (the roots included), in topological order.
    pub fn backward_closure(&self, roots: impl IntoIterator<Item = NodeId>) -> NodeSet {
        let mut members: HashSet<NodeId> = HashSet::new();
        let mut stack: Vec<NodeId> = roots.into_iter().collect();
        while let Some(n) = stack.pop() {
            if self.node(n).is_some() && members.insert(n) {
                stack.extend(self.operands(n));
            }
        }
        NodeSet::from_order(self.topo_order().into_iter().filter(|n| members.contains(n)).collect())
    }
}
