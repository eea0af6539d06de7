//! The graph walker: the topological order, the forward and backward closures (against
//! reachability computed by brute force), and replays (plain copies print the same text;
//! hooks see every node once, operands first).

use std::collections::HashSet;

use jjt_ir::graph::Graph;
use jjt_ir::ops::Input;
use jjt_ir::{
    DType, Function, FunctionBuilder, IrError, Node, NodeId, Op, Param, Replay, TensorType, Unary,
    text,
};

const SRC: &str = "func f(x: f64[3], y: f64[3], z: f64[]) -> f64[] {
  a = exp(x)
  b = a * y
  c = sin(y)
  d = full(f64[3], 2.0) * c
  return sum(b + d) + z
}";

/// Whether `to` depends on `from` (or is it), by following operands.
fn reaches(f: &Function, from: NodeId, to: NodeId) -> bool {
    to == from || f.operands(to).into_iter().any(|o| reaches(f, from, o))
}

#[test]
fn topo_order_puts_operands_first_and_is_deterministic() {
    let f = text::parse(SRC).unwrap();
    let order = f.topo_order();
    assert_eq!(order.len(), f.node_count());
    let pos = |n: NodeId| order.iter().position(|&m| m == n).unwrap();
    for n in f.node_ids() {
        for o in f.operands(n) {
            assert!(pos(o) < pos(n), "{o} after its user {n}");
        }
    }
    assert_eq!(order, f.topo_order());
}

#[test]
fn topo_order_of_a_cyclic_hand_made_graph_lists_every_node() {
    // n1 = exp(n2), n2 = exp(n1): rejected by the verifier, but ordering must not fail.
    let ty = TensorType::new(DType::F64, [2]);
    let mut g = Graph::default();
    let node = |op| Node { op, ty: ty.clone(), name: None };
    let x = g.add_node(node(Op::Input(Input { index: 0, ty: ty.clone() })));
    let a = g.add_node(node(Op::Unary(Unary::Exp)));
    let b = g.add_node(node(Op::Unary(Unary::Exp)));
    g.add_edge(a, b, 0);
    g.add_edge(b, a, 0);
    let params = vec![Param {
        name: "x".into(),
        ty: ty.clone(),
        node: NodeId::from_index(x.index()),
        default: None,
    }];
    let f = Function::from_parts("cyc", g, params, vec![NodeId::from_index(b.index())]);
    assert!(jjt_ir::verify(&f).is_err());
    let order = f.topo_order();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, f.node_ids().collect::<Vec<_>>());
}

#[test]
fn closures_match_brute_force_reachability() {
    let f = text::parse(SRC).unwrap();
    let all: Vec<NodeId> = f.node_ids().collect();
    let params: Vec<NodeId> = f.params().iter().map(|p| p.node).collect();
    for seeds in [vec![params[0]], vec![params[1]], vec![params[0], params[2]], vec![]] {
        let fwd = f.forward_closure(seeds.iter().copied());
        let want: HashSet<NodeId> =
            all.iter().copied().filter(|&n| seeds.iter().any(|&s| reaches(&f, s, n))).collect();
        assert_eq!(fwd.iter().collect::<HashSet<_>>(), want, "forward from {seeds:?}");
        assert_eq!(fwd.len(), want.len());
        let in_order: Vec<NodeId> =
            f.topo_order().into_iter().filter(|n| want.contains(n)).collect();
        assert_eq!(fwd.iter().collect::<Vec<_>>(), in_order);
    }
    for roots in [f.outputs().to_vec(), vec![params[1]], all[3..5].to_vec()] {
        let bwd = f.backward_closure(roots.iter().copied());
        let want: HashSet<NodeId> =
            all.iter().copied().filter(|&n| roots.iter().any(|&r| reaches(&f, n, r))).collect();
        assert_eq!(bwd.iter().collect::<HashSet<_>>(), want, "backward from {roots:?}");
        for n in &all {
            assert_eq!(bwd.contains(*n), want.contains(n));
        }
    }
    // The constant `full` and nothing else depends on no input.
    let from_inputs = f.forward_closure(params.iter().copied());
    let constant: Vec<NodeId> = all.iter().copied().filter(|&n| !from_inputs.contains(n)).collect();
    assert_eq!(constant.len(), 1);
    assert!(matches!(f.node(constant[0]).unwrap().op, Op::Const(_)));
}

/// A replay of `f` into a fresh builder with the inputs bound and `hook` on every other node.
fn replay(
    f: &Function,
    mut hook: impl FnMut(&mut FunctionBuilder, &jjt_ir::Visit<'_, NodeId>) -> Result<NodeId, IrError>,
) -> Result<Function, IrError> {
    let mut b = FunctionBuilder::new(f.name.clone());
    let mut r = Replay::new(f);
    for p in f.params() {
        r.bind(p.node, b.input(&p.name, p.ty.clone())?);
    }
    r.run(&mut b, |_| true, |b, v| hook(b, &v))?;
    b.finish_many(r.outputs()?)
}

#[test]
fn a_copying_replay_prints_the_same_text_and_visits_operands_first() {
    let f = text::parse(SRC).unwrap();
    let mut seen: Vec<NodeId> = Vec::new();
    let g = replay(&f, |b, v| {
        for &o in &f.operands(v.id) {
            assert!(seen.contains(&o) || f.params().iter().any(|p| p.node == o));
        }
        assert_eq!(v.args.len(), f.operands(v.id).len());
        seen.push(v.id);
        v.copy(b)
    })
    .unwrap();
    assert_eq!(text::print(&g), text::print(&f));
    // Every node but the three inputs, each once.
    assert_eq!(seen.len(), f.node_count() - 3);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

#[test]
fn a_rewriting_replay_keeps_names_and_the_source() {
    let f = text::parse(SRC).unwrap();
    let before = text::print(&f);
    let g = replay(&f, |b, v| match v.node.op {
        Op::Unary(Unary::Exp) => b.add(Op::Unary(Unary::Cos), &v.arg_nodes()),
        _ => v.copy(b),
    })
    .unwrap();
    let want = text::parse(&SRC.replace("exp(x)", "cos(x)")).unwrap();
    assert_eq!(text::print(&g), text::print(&want));
    assert!(text::print(&g).contains("a = cos(x)"));
    assert_eq!(text::print(&f), before);
}

#[test]
fn a_node_whose_operand_is_not_mapped_stops_the_replay() {
    let f = text::parse(SRC).unwrap();
    let mut b = FunctionBuilder::new("g");
    let mut r: Replay<'_, NodeId> = Replay::new(&f);
    // No input is bound, and the walk skips them, so `exp(x)` finds no operand.
    let x = f.params()[0].node;
    let err = r.run(&mut b, |n| !f.params().iter().any(|p| p.node == n), |b, v| v.copy(b));
    assert!(matches!(err, Err(IrError::UnknownNode(n)) if n == x), "{err:?}");
    assert!(matches!(r.get(x), Err(IrError::UnknownNode(_))));
}
