//! The hash-consing, type-checking builder.
//!
//! [`FunctionBuilder::add`] is the one way nodes are made: it infers the result type (or
//! returns a typed error naming the op and the operand types) and returns the existing node
//! when the same op was already applied to the same operands. The other methods are NumPy-style
//! conveniences that insert the broadcasts, reshapes and contractions NumPy's rules call for.

use std::collections::HashMap;

use petgraph::stable_graph::StableDiGraph;

use crate::error::{IrError, TypeError};
use crate::graph::{Function, Graph, Node, NodeId, Param};
use crate::ops::reduce::RawAxes;
use crate::ops::{
    Binary, BroadcastTo, Compare, Concat, Const, Convert, DotGeneral, Input, Logic, Op, Pad,
    Reduce, ReduceKind, Reshape, Select, Slice, Transpose, Unary,
};
use crate::types::{DType, Shape, TensorType};
use crate::verify::verify;

/// Where the scalar of [`FunctionBuilder::binary_scalar`] stands: `value op x` or `x op value`
/// (the two differ for `-`, `/`, `pow`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarSide {
    /// `value op x`.
    Left,
    /// `x op value`.
    Right,
}

/// Builds a [`Function`] node by node.
#[derive(Debug)]
pub struct FunctionBuilder {
    name: String,
    graph: Graph,
    params: Vec<Param>,
    cache: HashMap<(Op, Vec<NodeId>), NodeId>,
}

/// Whether `s` is an identifier of the text format: an ASCII letter or `_`, then letters,
/// digits and `_`, in dot-separated segments after the first (`params.0.w`; no empty segment).
pub fn is_identifier(s: &str) -> bool {
    let mut segments = s.split('.');
    let first = segments.next().unwrap_or("");
    let word =
        |seg: &str| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    matches!(first.chars().next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && word(first)
        && segments.all(word)
}

/// NumPy's broadcast of two shapes.
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Result<Shape, TypeError> {
    let r = a.rank().max(b.rank());
    let mut dims = vec![0; r];
    for (i, slot) in dims.iter_mut().enumerate() {
        let da = if i + a.rank() >= r { a.dims()[i + a.rank() - r] } else { 1 };
        let db = if i + b.rank() >= r { b.dims()[i + b.rank() - r] } else { 1 };
        *slot = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(TypeError::Broadcast(a.clone(), b.clone())),
        };
    }
    Ok(Shape(dims))
}

impl FunctionBuilder {
    /// An empty function called `name`.
    pub fn new(name: impl Into<String>) -> FunctionBuilder {
        FunctionBuilder {
            name: name.into(),
            graph: StableDiGraph::default(),
            params: Vec::new(),
            cache: HashMap::new(),
        }
    }

    /// Nodes built so far.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Declare the next input.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Result<NodeId, IrError> {
        if !is_identifier(name) {
            return Err(IrError::BadName(name.into()));
        }
        if self.params.iter().any(|p| p.name == name) {
            return Err(IrError::DuplicateInput(name.into()));
        }
        if ty.shape.checked_numel().is_none() {
            return Err(IrError::Type {
                op: "input",
                operands: vec![],
                source: TypeError::TooLarge(ty.shape),
            });
        }
        let index = self.params.len();
        let node = NodeId(self.graph.add_node(Node {
            op: Op::Input(Input { index, ty: ty.clone() }),
            ty: ty.clone(),
            name: Some(name.into()),
        }));
        self.params.push(Param { name: name.into(), ty, node, default: None });
        Ok(node)
    }

    /// Give the input `name` a default: the array of its name in the `.npz` archive `path`
    /// (see [`Param::default`]). Returns whether there is such an input.
    pub fn set_default(&mut self, name: &str, path: &str) -> bool {
        match self.params.iter_mut().find(|p| p.name == name) {
            Some(p) => {
                p.default = Some(path.to_string());
                true
            }
            None => false,
        }
    }

    /// The declared inputs so far.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The type of a node.
    pub fn ty(&self, id: NodeId) -> Result<&TensorType, IrError> {
        self.graph.node_weight(id.0).map(|n| &n.ty).ok_or(IrError::UnknownNode(id))
    }

    /// The op of a node.
    pub fn op(&self, id: NodeId) -> Result<&Op, IrError> {
        self.graph.node_weight(id.0).map(|n| &n.op).ok_or(IrError::UnknownNode(id))
    }

    /// The operands of a node, in slot order.
    pub fn operands(&self, id: NodeId) -> Result<Vec<NodeId>, IrError> {
        use petgraph::visit::EdgeRef;
        self.ty(id)?;
        let mut edges: Vec<(u32, NodeId)> = self
            .graph
            .edges_directed(id.0, petgraph::Direction::Incoming)
            .map(|e| (*e.weight(), NodeId(e.source())))
            .collect();
        edges.sort_unstable();
        Ok(edges.into_iter().map(|(_, n)| n).collect())
    }

    /// Apply `op` to `operands`: type-check, then return the existing node for the same op on
    /// the same operands, or a new one.
    pub fn add(&mut self, op: Op, operands: &[NodeId]) -> Result<NodeId, IrError> {
        let types: Vec<TensorType> =
            operands.iter().map(|&o| self.ty(o).cloned()).collect::<Result<_, _>>()?;
        let refs: Vec<&TensorType> = types.iter().collect();
        let ty = op.infer(&refs).map_err(|source| IrError::Type {
            op: op.name(),
            operands: types.clone(),
            source,
        })?;
        let key = (op, operands.to_vec());
        if let Some(&id) = self.cache.get(&key) {
            return Ok(id);
        }
        let id = NodeId(self.graph.add_node(Node { op: key.0.clone(), ty, name: None }));
        for (slot, o) in operands.iter().enumerate() {
            self.graph.add_edge(o.0, id.0, slot as u32);
        }
        self.cache.insert(key, id);
        Ok(id)
    }

    /// Give a node a name for printing, unless it has one.
    pub fn name_node(&mut self, id: NodeId, name: &str) {
        if let Some(n) = self.graph.node_weight_mut(id.0)
            && n.name.is_none()
            && is_identifier(name)
        {
            n.name = Some(name.into());
        }
    }

    /// Finish with `output` as the result, and verify.
    pub fn finish(self, output: NodeId) -> Result<Function, IrError> {
        self.finish_many(vec![output])
    }

    /// Finish with several outputs, and verify.
    pub fn finish_many(self, outputs: Vec<NodeId>) -> Result<Function, IrError> {
        for &o in &outputs {
            self.ty(o)?;
        }
        let f = Function::from_parts(self.name, self.graph, self.params, outputs);
        verify(&f).map_err(IrError::Verify)?;
        Ok(f)
    }

    fn type_error(&self, op: &'static str, operands: &[NodeId], source: TypeError) -> IrError {
        let types = operands.iter().filter_map(|&o| self.ty(o).ok().cloned()).collect();
        IrError::Type { op, operands: types, source }
    }

    // ----- constants -----

    /// A constant node.
    pub fn constant(&mut self, c: Const) -> Result<NodeId, IrError> {
        self.add(Op::Const(c), &[])
    }

    /// Every element equal to `value`, of the given type.
    pub fn full(&mut self, ty: TensorType, value: f64) -> Result<NodeId, IrError> {
        self.constant(Const::full(ty, value))
    }

    // ----- elementwise, with NumPy broadcasting -----

    /// NumPy broadcast of `x` to `shape` (no node if the shape is already right).
    pub fn broadcast_to(&mut self, x: NodeId, shape: &Shape) -> Result<NodeId, IrError> {
        if &self.ty(x)?.shape == shape {
            return Ok(x);
        }
        self.add(Op::BroadcastTo(BroadcastTo { shape: shape.clone() }), &[x])
    }

    /// Broadcast all operands to their common shape.
    fn broadcast_all(&mut self, op: &'static str, xs: &[NodeId]) -> Result<Vec<NodeId>, IrError> {
        let mut shape = Shape::scalar();
        for &x in xs {
            let s = self.ty(x)?.shape.clone();
            shape = broadcast_shapes(&shape, &s).map_err(|e| self.type_error(op, xs, e))?;
        }
        xs.iter().map(|&x| self.broadcast_to(x, &shape)).collect()
    }

    fn same_dtype(&self, op: &'static str, xs: &[NodeId]) -> Result<(), IrError> {
        let d0 = self.ty(xs[0])?.dtype;
        for &x in &xs[1..] {
            let d = self.ty(x)?.dtype;
            if d != d0 {
                return Err(self.type_error(op, xs, TypeError::DTypeMismatch(d0, d)));
            }
        }
        Ok(())
    }

    /// An elementwise unary op.
    pub fn unary(&mut self, u: Unary, x: NodeId) -> Result<NodeId, IrError> {
        self.add(Op::Unary(u), &[x])
    }

    /// An elementwise binary op with NumPy broadcasting.
    pub fn binary(&mut self, b: Binary, x: NodeId, y: NodeId) -> Result<NodeId, IrError> {
        self.same_dtype(b.op_name(), &[x, y])?;
        let v = self.broadcast_all(b.op_name(), &[x, y])?;
        self.add(Op::Binary(b), &v)
    }

    /// `x op value` ([`ScalarSide::Right`]) or `value op x` ([`ScalarSide::Left`]), the scalar
    /// taking `x`'s dtype: NumPy's weak scalar rule.
    pub fn binary_scalar(
        &mut self,
        b: Binary,
        x: NodeId,
        value: f64,
        side: ScalarSide,
    ) -> Result<NodeId, IrError> {
        let ty = self.ty(x)?.clone();
        let c = self.full(ty, value)?;
        match side {
            ScalarSide::Left => self.add(Op::Binary(b), &[c, x]),
            ScalarSide::Right => self.add(Op::Binary(b), &[x, c]),
        }
    }

    /// An elementwise comparison with NumPy broadcasting.
    pub fn compare(&mut self, c: Compare, x: NodeId, y: NodeId) -> Result<NodeId, IrError> {
        self.same_dtype(c.op_name(), &[x, y])?;
        let v = self.broadcast_all(c.op_name(), &[x, y])?;
        self.add(Op::Compare(c), &v)
    }

    /// `x cmp value` with the scalar taking `x`'s dtype.
    pub fn compare_scalar(&mut self, c: Compare, x: NodeId, value: f64) -> Result<NodeId, IrError> {
        let ty = self.ty(x)?.clone();
        let k = self.full(ty, value)?;
        self.add(Op::Compare(c), &[x, k])
    }

    /// `select(pred, a, b)` with NumPy broadcasting of all three.
    pub fn select(&mut self, pred: NodeId, a: NodeId, b: NodeId) -> Result<NodeId, IrError> {
        self.same_dtype("select", &[a, b])?;
        let v = self.broadcast_all("select", &[pred, a, b])?;
        self.add(Op::Select(Select), &v)
    }

    /// Convert to another dtype (no node if it already has it).
    pub fn convert(&mut self, x: NodeId, to: DType) -> Result<NodeId, IrError> {
        if self.ty(x)?.dtype == to {
            return Ok(x);
        }
        self.add(Op::Convert(Convert { to }), &[x])
    }

    // ----- contractions -----

    /// A general contraction.
    pub fn dot_general(
        &mut self,
        a: NodeId,
        b: NodeId,
        dims: DotGeneral,
    ) -> Result<NodeId, IrError> {
        self.add(Op::DotGeneral(dims), &[a, b])
    }

    /// NumPy's `a @ b`: 1-D operands are vectors, leading axes are batch axes and broadcast.
    /// Lowers to [`DotGeneral`] (with broadcasts of the batch axes where needed).
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, IrError> {
        let (ta, tb) = (self.ty(a)?.clone(), self.ty(b)?.clone());
        let fail = |s: &Self, e: TypeError| s.type_error("matmul", &[a, b], e);
        if ta.rank() == 0 || tb.rank() == 0 {
            return Err(fail(self, TypeError::MatmulScalar));
        }
        if ta.dtype != tb.dtype {
            return Err(fail(self, TypeError::DTypeMismatch(ta.dtype, tb.dtype)));
        }
        let a_mat = ta.rank().min(2);
        let b_mat = tb.rank().min(2);
        let (ad, bd) = (ta.shape.dims(), tb.shape.dims());
        let ka = ad[ad.len() - 1];
        let kb = if tb.rank() == 1 { bd[0] } else { bd[bd.len() - 2] };
        if ka != kb {
            let (lhs, rhs) = (ta.shape.clone(), tb.shape.clone());
            return Err(fail(self, TypeError::MatmulSizes { lhs, cols: ka, rhs, rows: kb }));
        }
        let a_batch = Shape(ad[..ad.len() - a_mat].to_vec());
        let b_batch = Shape(bd[..bd.len() - b_mat].to_vec());
        let batch = broadcast_shapes(&a_batch, &b_batch).map_err(|e| fail(self, e))?;
        let nb = batch.rank();
        let (a, b) = if nb == 0 {
            (a, b)
        } else {
            let mut sa = batch.0.clone();
            sa.extend_from_slice(&ad[ad.len() - a_mat..]);
            let mut sb = batch.0.clone();
            sb.extend_from_slice(&bd[bd.len() - b_mat..]);
            (self.broadcast_to(a, &Shape(sa))?, self.broadcast_to(b, &Shape(sb))?)
        };
        let dims = DotGeneral {
            lhs_contract: vec![nb + a_mat - 1],
            rhs_contract: vec![nb],
            lhs_batch: (0..nb).collect(),
            rhs_batch: (0..nb).collect(),
        };
        self.dot_general(a, b, dims)
    }

    // ----- reductions and layout -----

    /// Reduce over `axes` (NumPy style: negative axes count from the end; `None` is all axes).
    pub fn reduce(
        &mut self,
        kind: ReduceKind,
        x: NodeId,
        axes: Option<&[i64]>,
    ) -> Result<NodeId, IrError> {
        let axes = self.resolve_axes(kind.op_name(), x, axes)?;
        self.add(Op::Reduce(Reduce { kind, axes }), &[x])
    }

    /// `axes` of `x` resolved (negative from the end, `None` all), an error naming `op`.
    fn resolve_axes(
        &self,
        op: &'static str,
        x: NodeId,
        axes: Option<&[i64]>,
    ) -> Result<Vec<usize>, IrError> {
        let rank = self.ty(x)?.rank();
        RawAxes(axes.map(<[i64]>::to_vec)).resolve(rank).map_err(|e| self.type_error(op, &[x], e))
    }

    /// The minimum over `axes` (`None`: every axis; negative from the end). Not an op:
    /// `neg(max(neg(x)))`, exact (negation is), so its derivative is `max`'s: at ties the
    /// average over the minimal elements.
    pub fn reduce_min(&mut self, x: NodeId, axes: Option<&[i64]>) -> Result<NodeId, IrError> {
        let axes = self.resolve_axes("min", x, axes)?;
        let n = self.unary(Unary::Neg, x)?;
        let m = self.add(Op::Reduce(Reduce { kind: ReduceKind::Max, axes }), &[n])?;
        self.unary(Unary::Neg, m)
    }

    /// Whether any (`all` false) or every (`all` true) element of the bool tensor `x` is true
    /// along `axes` (`None`: every axis; negative from the end), as a bool tensor without
    /// those axes. Not an op: built as `max` over `select(x, 1, 0)` in f32 compared with ½
    /// (exact: the maximum of zeros and ones is 0 or 1), `all` as `not(any(not(x)))`. An
    /// empty reduction is false for `any`, true for `all` (the maximum of nothing is −∞).
    pub fn any_all(
        &mut self,
        x: NodeId,
        all: bool,
        axes: Option<&[i64]>,
    ) -> Result<NodeId, IrError> {
        let name = if all { "all" } else { "any" };
        let ty = self.ty(x)?.clone();
        if ty.dtype != DType::Bool {
            return Err(self.type_error(name, &[x], TypeError::NotBool(ty.dtype)));
        }
        let axes = self.resolve_axes(name, x, axes)?;
        let p = if all { self.add(Op::Logic(Logic::Not), &[x])? } else { x };
        let f32s = TensorType { dtype: DType::F32, ..ty };
        let one = self.full(f32s.clone(), 1.0)?;
        let zero = self.full(f32s, 0.0)?;
        let v = self.select(p, one, zero)?;
        let m = self.add(Op::Reduce(Reduce { kind: ReduceKind::Max, axes }), &[v])?;
        let any = self.compare_scalar(Compare::Gt, m, 0.5)?;
        if all { self.add(Op::Logic(Logic::Not), &[any]) } else { Ok(any) }
    }

    /// XLA's `reduce_window` with `sum` or `max` (`kind`), every attribute per axis of `x`:
    /// `x` dilated (`base_dilation − 1` holes between elements) and padded (`padding`), each
    /// window of `window` taps spaced `window_dilation` apart moving by `strides`, reduced.
    /// Holes and padding count as 0 for `sum` and −∞ for `max`. Built as `pad` (and, for
    /// `max`, a `select` of −∞ outside `x`'s elements), [`Patches`](crate::ops::Patches) over
    /// the axes with a window, and a `reduce` over its tap axes; the derivative of `max` at ties
    /// is `reduce`'s (the average over the maximal taps).
    pub fn reduce_window(
        &mut self,
        x: NodeId,
        kind: ReduceKind,
        w: &crate::ops::patches::Window,
    ) -> Result<NodeId, IrError> {
        let ty = self.ty(x)?.clone();
        let r = ty.rank();
        let bad =
            |s: &Self, msg: String| s.type_error("reduce_window", &[x], TypeError::Window(msg));
        if kind == ReduceKind::Mean {
            return Err(bad(self, "kind must be sum or max".into()));
        }
        for (name, len) in [
            ("window", w.window.len()),
            ("strides", w.strides.len()),
            ("padding", w.padding.len()),
            ("base_dilation", w.base_dilation.len()),
            ("window_dilation", w.window_dilation.len()),
        ] {
            if len != r {
                return Err(bad(self, format!("`{name}` has {len} entries for rank {r}")));
            }
        }
        let dilated = w.base_dilation.iter().any(|&d| d != 1);
        let padded = w.padding.iter().any(|&p| p != (0, 0));
        if w.base_dilation.contains(&0) {
            return Err(bad(self, "`base_dilation` entries must be at least 1".into()));
        }
        let mut v = x;
        if dilated || padded {
            let pad = Pad {
                lo: w.padding.iter().map(|p| p.0).collect(),
                hi: w.padding.iter().map(|p| p.1).collect(),
                interior: w.base_dilation.iter().map(|d| d - 1).collect(),
            };
            v = self.add(Op::Pad(pad.clone()), &[x])?;
            if kind == ReduceKind::Max {
                let ones = self.full(ty.clone(), 1.0)?;
                let inside = self.add(Op::Pad(pad), &[ones])?;
                let mask = self.compare_scalar(Compare::Gt, inside, 0.5)?;
                let shape = self.ty(v)?.clone();
                let low = self.full(shape, f64::NEG_INFINITY)?;
                v = self.select(mask, v, low)?;
            }
        }
        let axes: Vec<usize> = (0..r)
            .filter(|&a| w.window[a] != 1 || w.strides[a] != 1 || w.window_dilation[a] != 1)
            .collect();
        if axes.is_empty() {
            return Ok(v);
        }
        let p = crate::ops::Patches {
            window: axes.iter().map(|&a| w.window[a]).collect(),
            strides: axes.iter().map(|&a| w.strides[a]).collect(),
            dilation: axes.iter().map(|&a| w.window_dilation[a]).collect(),
            axes: axes.clone(),
        };
        let pt = self.add(Op::Patches(p), &[v])?;
        let taps: Vec<i64> = (r..r + axes.len()).map(|a| a as i64).collect();
        self.reduce(kind, pt, Some(&taps))
    }

    /// Reshape (no node if the shape is unchanged).
    pub fn reshape(&mut self, x: NodeId, shape: impl Into<Shape>) -> Result<NodeId, IrError> {
        let shape = shape.into();
        if self.ty(x)?.shape == shape {
            return Ok(x);
        }
        self.add(Op::Reshape(Reshape { shape }), &[x])
    }

    /// Permute axes (no node for the identity permutation).
    pub fn transpose(&mut self, x: NodeId, perm: &[usize]) -> Result<NodeId, IrError> {
        if perm.iter().enumerate().all(|(i, &p)| i == p) && perm.len() == self.ty(x)?.rank() {
            return Ok(x);
        }
        self.add(Op::Transpose(Transpose { perm: perm.to_vec() }), &[x])
    }

    /// A strided slice.
    pub fn slice(
        &mut self,
        x: NodeId,
        start: &[usize],
        stop: &[usize],
        step: &[usize],
    ) -> Result<NodeId, IrError> {
        self.add(
            Op::Slice(Slice { start: start.to_vec(), stop: stop.to_vec(), step: step.to_vec() }),
            &[x],
        )
    }

    /// Concatenate along `axis` (negative counts from the end).
    pub fn concat(&mut self, xs: &[NodeId], axis: i64) -> Result<NodeId, IrError> {
        let Some(&first) = xs.first() else {
            return Err(IrError::Type {
                op: "concat",
                operands: vec![],
                source: TypeError::NoOperands,
            });
        };
        let rank = self.ty(first)?.rank();
        let axis =
            crate::ops::norm_axis(axis, rank).map_err(|e| self.type_error("concat", xs, e))?;
        self.add(Op::Concat(Concat { axis }), xs)
    }
}
