//! The cost model: multiply-adds (FLOPs counted as one per multiply-add or elementwise op),
//! bytes moved, and peak live bytes of a graph, on our own graph (no backend involved).
//!
//! - `dot_general`: output elements × contracted elements multiply-adds;
//! - elementwise ops: one per output element; reductions: one per input element;
//! - data movement (`reshape`, `transpose`, `broadcast_to`, `slice`, `pad`, `concat`) and
//!   constants: none (the JIT folds most into index arithmetic);
//! - bytes moved: every non-constant node's output plus its operands, once;
//! - peak live bytes: the largest sum of the sizes of values alive at once when nodes run in
//!   topological order and a value dies after its last use (inputs and constants excluded).
//!
//! Nodes that depend only on constants are *hoisted*: they run once at compile time, so they
//! count separately (`hoisted_flops`) and not in the per-call totals.

use std::collections::{HashMap, HashSet};
use std::fmt;

use jjt_ir::ops::DotGeneral;
use jjt_ir::{Function, NodeId, Op};

/// The cost of one call of a graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cost {
    /// Multiply-adds and elementwise operations per call.
    pub flops: f64,
    /// Operations on constant-only subgraphs (paid once, at compile time).
    pub hoisted_flops: f64,
    /// Bytes read and written per call.
    pub bytes: f64,
    /// Peak bytes of live intermediates.
    pub peak_bytes: f64,
    /// Largest intermediate (elements).
    pub largest: usize,
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flops/call {:.4e}, hoisted flops {:.4e}, bytes/call {:.4e}, peak live bytes {:.4e}, largest intermediate {} elements",
            self.flops, self.hoisted_flops, self.bytes, self.peak_bytes, self.largest
        )
    }
}

/// Nodes that depend on no input.
pub fn constant_nodes(f: &Function) -> HashSet<NodeId> {
    let from_inputs = f.forward_closure(f.params().iter().map(|p| p.node));
    f.node_ids().filter(|&n| !from_inputs.contains(n)).collect()
}

/// Operations of one node.
pub fn node_flops(f: &Function, n: NodeId) -> f64 {
    let Some(node) = f.node(n) else { return 0.0 };
    let out = node.ty.numel() as f64;
    match &node.op {
        Op::DotGeneral(DotGeneral { lhs_contract, .. }) => {
            let lhs = f
                .operands(n)
                .first()
                .and_then(|o| f.node(*o))
                .map(|x| x.ty.shape.0.clone())
                .unwrap_or_default();
            let k: f64 =
                lhs_contract.iter().map(|&a| lhs.get(a).copied().unwrap_or(1) as f64).product();
            out * k
        }
        Op::Conv(c) => {
            // Each output sums window taps × kernel input features products.
            let k = f
                .operands(n)
                .get(1)
                .and_then(|o| f.node(*o))
                .map(|x| x.ty.shape.0.clone())
                .unwrap_or_default();
            let taps: f64 =
                c.dims.rhs.iter().skip(1).map(|&a| k.get(a).copied().unwrap_or(1) as f64).product();
            out * taps
        }
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Logic(_)
        | Op::Select(_)
        | Op::Convert(_) => out,
        Op::Reduce(_) => {
            f.operands(n).first().and_then(|o| f.node(*o)).map_or(0.0, |x| x.ty.numel() as f64)
        }
        // One addition per update.
        Op::ScatterAdd(_) => {
            f.operands(n).get(1).and_then(|o| f.node(*o)).map_or(0.0, |x| x.ty.numel() as f64)
        }
        Op::Input(_)
        | Op::Const(_)
        | Op::Reshape(_)
        | Op::Transpose(_)
        | Op::BroadcastTo(_)
        | Op::Slice(_)
        | Op::Pad(_)
        | Op::Reverse(_)
        | Op::Patches(_)
        | Op::Gather(_)
        | Op::StopGradient(_)
        | Op::Concat(_) => 0.0,
    }
}

fn bytes(f: &Function, n: NodeId) -> f64 {
    f.node(n).map_or(0.0, |x| (x.ty.numel() * x.ty.dtype.item_size()) as f64)
}

/// The cost of `f`.
pub fn cost(f: &Function) -> Cost {
    let consts = constant_nodes(f);
    let order = f.topo_order();
    let mut c = Cost::default();
    let mut last_use: HashMap<NodeId, usize> = HashMap::new();
    for (i, &n) in order.iter().enumerate() {
        for o in f.operands(n) {
            last_use.insert(o, i);
        }
    }
    for &o in f.outputs() {
        last_use.insert(o, usize::MAX);
    }
    let mut live = 0.0f64;
    let mut dying: HashMap<usize, f64> = HashMap::new();
    for (i, &n) in order.iter().enumerate() {
        let Some(node) = f.node(n) else { continue };
        let fl = node_flops(f, n);
        if consts.contains(&n) {
            c.hoisted_flops += fl;
            continue;
        }
        if matches!(node.op, Op::Input(_)) {
            continue;
        }
        c.flops += fl;
        c.bytes += bytes(f, n) + f.operands(n).iter().map(|&o| bytes(f, o)).sum::<f64>();
        let b = bytes(f, n);
        live += b;
        c.peak_bytes = c.peak_bytes.max(live);
        c.largest = c.largest.max(node.ty.numel());
        let end = last_use.get(&n).copied().unwrap_or(i);
        *dying.entry(end).or_default() += b;
        live -= dying.remove(&i).unwrap_or(0.0);
    }
    c
}
