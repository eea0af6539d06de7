//! Functions as graphs: a petgraph `StableDiGraph` whose nodes are ops and whose edges run
//! from operand to user, weighted by the operand's slot.

use std::collections::{HashMap, HashSet};
use std::fmt;

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;

use crate::ops::Op;
use crate::types::TensorType;

/// A handle to a node of one [`Function`] (or of the builder making it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) NodeIndex<u32>);

impl NodeId {
    /// The node's index in its graph.
    pub fn index(self) -> usize {
        self.0.index()
    }

    /// A handle from a raw index (for hand-built graphs; the verifier checks it exists).
    pub fn from_index(i: usize) -> NodeId {
        NodeId(NodeIndex::new(i))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0.index())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Which operand an edge feeds: 0 for the first, 1 for the second, ...
pub type Slot = u32;

/// One node: an op, its result type, and an optional name from the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// The result type, as inferred by the builder.
    pub ty: TensorType,
    /// A name from the model text or the tracer, used by the printer when it is free.
    pub name: Option<String>,
}

/// One of a function's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The parameter's name.
    pub name: String,
    /// Its declared type.
    pub ty: TensorType,
    /// The `Input` node that stands for it.
    pub node: NodeId,
    /// Where its default value is: a `.npz` archive (the path as written, relative to the
    /// model file) holding an array of the parameter's name (`w: f32[3] = npz("w.npz")`).
    /// The graph never reads it; loaders bind it when no other value is given.
    pub default: Option<String>,
}

/// The graph type functions are stored in.
pub type Graph = StableDiGraph<Node, Slot>;

/// A function: named, typed inputs and one or more outputs, as a graph. User functions have one
/// output; transforms such as JVP and VJP produce several (primal and tangent outputs, one
/// cotangent per differentiated input).
///
/// Built by [`crate::FunctionBuilder`], which type-checks and hash-conses every node, or by
/// [`Function::from_parts`] for hand-made graphs, which [`crate::verify()`] checks.
#[derive(Clone, Debug)]
pub struct Function {
    /// The function's name.
    pub name: String,
    pub(crate) graph: Graph,
    pub(crate) params: Vec<Param>,
    pub(crate) outputs: Vec<NodeId>,
}

impl Function {
    /// Assemble a function from parts without checking anything. Run [`crate::verify()`] on the
    /// result; every other consumer assumes a verified function.
    pub fn from_parts(
        name: impl Into<String>,
        graph: Graph,
        params: Vec<Param>,
        outputs: Vec<NodeId>,
    ) -> Function {
        Function { name: name.into(), graph, params, outputs }
    }

    /// The underlying graph (read only).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The parameters in signature order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The output nodes in order.
    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    /// The first output: the only one of a single-output function.
    pub fn output(&self) -> NodeId {
        self.outputs.first().copied().unwrap_or(NodeId::from_index(usize::MAX >> 1))
    }

    /// The type of the first output.
    pub fn output_type(&self) -> Option<&TensorType> {
        self.graph.node_weight(self.output().0).map(|n| &n.ty)
    }

    /// The types of all outputs (`None` for an output that is not a node; see the verifier).
    pub fn output_types(&self) -> Vec<Option<&TensorType>> {
        self.outputs.iter().map(|o| self.graph.node_weight(o.0).map(|n| &n.ty)).collect()
    }

    /// Set or clear the default of input `name` ([`Param::default`]); whether it exists.
    pub fn set_default(&mut self, name: &str, path: Option<String>) -> bool {
        match self.params.iter_mut().find(|p| p.name == name) {
            Some(p) => {
                p.default = path;
                true
            }
            None => false,
        }
    }

    /// A name per output, for messages and file names: the model's name for the returned value
    /// (`return h, y` names its outputs `h` and `y`), else its position (`0`, `1`, …).
    pub fn output_names(&self) -> Vec<String> {
        self.outputs
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let named = self.graph.node_weight(o.0).and_then(|n| n.name.clone());
                named.unwrap_or_else(|| k.to_string())
            })
            .collect()
    }

    /// The function of output `k` alone (`None` when there is no output `k`), without the nodes
    /// only the other outputs need. The parameters stay, used or not.
    pub fn with_output(&self, k: usize) -> Option<Function> {
        let o = *self.outputs.get(k)?;
        let one = Function { outputs: vec![o], ..self.clone() };
        Some(one.pruned())
    }

    /// A node, if it exists.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.graph.node_weight(id.0)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Every node id in index order (which is a topological order for builder-made graphs).
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.graph.node_indices().map(NodeId)
    }

    /// The operands of `id` in slot order. Edge order in petgraph is not operand order: this
    /// is the only way operands are read.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(Slot, NodeId)> = self
            .graph
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| (*e.weight(), NodeId(e.source())))
            .collect();
        edges.sort_unstable_by_key(|&(slot, n)| (slot, n));
        edges.into_iter().map(|(_, n)| n).collect()
    }

    /// The nodes that use `id`, in index order (with repeats removed).
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut u: Vec<NodeId> = self
            .graph
            .edges_directed(id.0, Direction::Outgoing)
            .map(|e| NodeId(e.target()))
            .collect();
        u.sort_unstable();
        u.dedup();
        u
    }

    /// A copy without the nodes no output depends on (inputs are always kept). Node order,
    /// names and operand slots are preserved.
    pub fn pruned(&self) -> Function {
        let live = self.backward_closure(
            self.outputs.iter().copied().chain(self.params.iter().map(|p| p.node)),
        );
        let mut graph = Graph::default();
        let mut map = HashMap::new();
        for id in self.node_ids() {
            if live.contains(id) {
                map.insert(id, NodeId(graph.add_node(self.graph[id.0].clone())));
            }
        }
        for id in self.node_ids() {
            if let Some(&new) = map.get(&id) {
                for (slot, o) in self.operands(id).into_iter().enumerate() {
                    if let Some(&src) = map.get(&o) {
                        graph.add_edge(src.0, new.0, slot as Slot);
                    }
                }
            }
        }
        let params = self
            .params
            .iter()
            .map(|p| Param {
                name: p.name.clone(),
                ty: p.ty.clone(),
                node: map.get(&p.node).copied().unwrap_or(p.node),
                default: p.default.clone(),
            })
            .collect();
        let outputs = self.outputs.iter().map(|o| map.get(o).copied().unwrap_or(*o)).collect();
        Function { name: self.name.clone(), graph, params, outputs }
    }

    /// A topological order of all nodes: operands before users, then by depth (the longest
    /// path from a node without operands) and index, so the order is deterministic. It cannot
    /// fail: the builder adds a node after its operands, so built functions have no cycle.
    /// A hand-made graph with a cycle (which [`crate::verify()`] rejects) still gets an order
    /// of all its nodes; an edge that closes a cycle is ignored.
    pub fn topo_order(&self) -> Vec<NodeId> {
        let mut depth: HashMap<NodeId, usize> = HashMap::with_capacity(self.node_count());
        let mut open: HashSet<NodeId> = HashSet::new();
        for start in self.node_ids() {
            let mut stack = vec![(start, false)];
            while let Some((n, operands_done)) = stack.pop() {
                if operands_done {
                    let d = self
                        .operands(n)
                        .iter()
                        .filter_map(|o| depth.get(o).map(|d| d + 1))
                        .max()
                        .unwrap_or(0);
                    depth.insert(n, d);
                    open.remove(&n);
                } else if !depth.contains_key(&n) && open.insert(n) {
                    stack.push((n, true));
                    let operands = self.operands(n);
                    stack.extend(operands.into_iter().rev().map(|o| (o, false)));
                }
            }
        }
        let mut order: Vec<NodeId> = self.node_ids().collect();
        order.sort_by_key(|n| (depth[n], *n));
        order
    }
}
