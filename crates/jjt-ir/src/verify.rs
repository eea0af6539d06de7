//! The verifier: checks every invariant of a [`Function`] and reports all violations, not the
//! first.
//!
//! Invariants:
//! 1. there is at least one output, and every output node exists;
//! 2. parameter names are distinct identifiers; each parameter's node exists, is the `Input`
//!    op with that parameter's index and type; every `Input` node belongs to its parameter;
//! 3. each node's incoming edges carry the slots `0..n` exactly once, and `n` fits the op's
//!    arity;
//! 4. the graph is acyclic (SSA: every operand is defined before its users);
//! 5. each node's stored type equals the type its op infers from its operands' types
//!    (which also checks constants' data against their types).

use std::fmt;

use petgraph::Direction;

use crate::builder::is_identifier;
use crate::graph::{Function, NodeId};
use crate::ops::Op;
use crate::types::TensorType;

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The function has no outputs.
    #[error("the function has no outputs")]
    NoOutputs,
    /// An output is not a node of the graph.
    #[error("output {0} is not a node of the graph")]
    MissingOutput(NodeId),
    /// A parameter's node is missing or is not its `Input`.
    #[error("parameter `{name}` (#{index}) is bound to {node}, which is not its input node")]
    BadParam {
        /// Parameter name.
        name: String,
        /// Position.
        index: usize,
        /// The node it names.
        node: NodeId,
    },
    /// Two parameters share a name, or a name is not an identifier.
    #[error("parameter name `{0}` is duplicated or not an identifier")]
    BadParamName(String),
    /// An `Input` node no parameter owns.
    #[error("{node}: input #{index} does not belong to a parameter")]
    StrayInput {
        /// The node.
        node: NodeId,
        /// The index it claims.
        index: usize,
    },
    /// Operand slots are missing, repeated, or out of order.
    #[error("{node}: operand slots are {slots:?}, expected 0..{}", slots.len())]
    BadSlots {
        /// The node.
        node: NodeId,
        /// Its incoming slots, sorted.
        slots: Vec<u32>,
    },
    /// The graph has a cycle through this node.
    #[error("{0}: the graph has a cycle through this node")]
    Cycle(NodeId),
    /// The op rejects its operands.
    #[error("{node}: {op}: {message}")]
    IllTyped {
        /// The node.
        node: NodeId,
        /// The op.
        op: &'static str,
        /// The type error.
        message: String,
    },
    /// The stored type differs from the inferred one.
    #[error("{node}: {op} is stored as {stored} but its operands give {inferred}")]
    TypeMismatch {
        /// The node.
        node: NodeId,
        /// The op.
        op: &'static str,
        /// Stored type.
        stored: TensorType,
        /// Inferred type.
        inferred: TensorType,
    },
}

/// All broken invariants of one function.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyErrors(pub Vec<VerifyError>);

impl fmt::Display for VerifyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid graph ({} problems)", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyErrors {}

/// Check every invariant in the module docs; `Err` lists all that are broken.
pub fn verify(f: &Function) -> Result<(), VerifyErrors> {
    let mut errs = Vec::new();
    let g = f.graph();
    if f.outputs().is_empty() {
        errs.push(VerifyError::NoOutputs);
    }
    for &o in f.outputs() {
        if g.node_weight(o.0).is_none() {
            errs.push(VerifyError::MissingOutput(o));
        }
    }
    for (index, p) in f.params().iter().enumerate() {
        let dup = f.params()[..index].iter().any(|q| q.name == p.name);
        if dup || !is_identifier(&p.name) {
            errs.push(VerifyError::BadParamName(p.name.clone()));
        }
        let ok = matches!(f.node(p.node), Some(n) if matches!(&n.op, Op::Input(i) if i.index == index && i.ty == p.ty));
        if !ok {
            errs.push(VerifyError::BadParam { name: p.name.clone(), index, node: p.node });
        }
    }
    for id in f.node_ids() {
        let node = &g[id.0];
        if let Op::Input(i) = &node.op
            && f.params().get(i.index).is_none_or(|p| p.node != id)
        {
            errs.push(VerifyError::StrayInput { node: id, index: i.index });
        }
        let mut slots: Vec<u32> =
            g.edges_directed(id.0, Direction::Incoming).map(|e| *e.weight()).collect();
        slots.sort_unstable();
        if slots.iter().enumerate().any(|(i, &s)| s as usize != i) {
            errs.push(VerifyError::BadSlots { node: id, slots });
            continue;
        }
        let types: Vec<&TensorType> = f.operands(id).iter().map(|&o| &g[o.0].ty).collect();
        match node.op.infer(&types) {
            Err(e) => errs.push(VerifyError::IllTyped {
                node: id,
                op: node.op.name(),
                message: e.to_string(),
            }),
            Ok(t) if t != node.ty => errs.push(VerifyError::TypeMismatch {
                node: id,
                op: node.op.name(),
                stored: node.ty.clone(),
                inferred: t,
            }),
            Ok(_) => {}
        }
    }
    if let Err(cycle) = petgraph::algo::toposort(g, None) {
        errs.push(VerifyError::Cycle(NodeId(cycle.node_id())));
    }
    if errs.is_empty() { Ok(()) } else { Err(VerifyErrors(errs)) }
}
