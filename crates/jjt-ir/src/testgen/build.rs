//! The graph builder behind [`super::generate`]: one draw of an op kind per step, operands
//! from a pool of float values, each with a bound on its magnitude.

use super::{Config, Draw, Outputs, constant};
use crate::builder::{FunctionBuilder, broadcast_shapes};
use crate::graph::{Function, NodeId};
use crate::ops::{
    Binary, Compare, Const, Conv, ConvDims, DotGeneral, Gather, Logic, Op, Pad, Patches,
    ReduceKind, Reverse, ScatterAdd, StopGradient, Unary,
};
use crate::types::{DType, Shape, TensorType};

/// Shapes of inputs: scalars to rank 3, with size-1 axes to broadcast.
const SHAPES: [&[usize]; 7] = [&[3], &[2, 3], &[3, 1], &[4], &[], &[2, 1, 3], &[1]];

/// No intermediate has more elements than this (graphs stay small and fast to check).
const MAX_NUMEL: usize = 64;

/// One kind of step; every op name of the closed set is reached by at least one.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Unary(Unary),
    Binary(Binary),
    /// `select(compare(a, c), …)`.
    Select(Compare),
    /// Between float dtypes, or a comparison converted to float.
    Convert,
    Dot,
    Reduce(ReduceKind),
    Reshape,
    Transpose,
    Broadcast,
    Slice,
    Concat,
    Pad,
    Reverse,
    /// The identity with a zero derivative.
    StopGradient,
    Patches,
    /// A one-dimensional convolution of two pool values reshaped to an input and a kernel.
    Conv,
    /// Rows of a pool value picked by integer indices (`Gen::indices`).
    Gather,
    /// A pool value summed into rows by integer indices.
    ScatterAdd,
    Const(&'static str),
    /// What the simplifier rewrites: x·1, x/1, x + (−0), x − 0, −(−x), select(p, x, x).
    Identity,
}

/// A float value and a bound on its magnitude (meaningful with [`Config::domains`]).
#[derive(Clone, Copy, Debug)]
struct Val {
    id: NodeId,
    m: f64,
}

struct Gen<'g, 'd> {
    b: FunctionBuilder,
    d: &'g mut Draw<'d>,
    cfg: &'g Config,
    pool: Vec<Val>,
    /// Parallel to `pool`: taken as an operand.
    used: Vec<bool>,
    inputs: Vec<Val>,
}

fn kinds(cfg: &Config) -> Vec<Kind> {
    let mut k: Vec<Kind> = Unary::ALL.into_iter().map(Kind::Unary).collect();
    k.extend(Binary::ALL.into_iter().map(Kind::Binary));
    k.extend(Compare::ALL.into_iter().map(Kind::Select));
    k.extend(ReduceKind::ALL.into_iter().map(Kind::Reduce));
    k.extend([Kind::Convert, Kind::Reshape, Kind::Transpose, Kind::Broadcast, Kind::Slice]);
    k.extend([Kind::Concat, Kind::Pad, Kind::Reverse, Kind::Patches, Kind::Conv]);
    k.extend([Kind::Gather, Kind::ScatterAdd, Kind::StopGradient]);
    k.extend((0..cfg.identity_weight.max(1)).map(|_| Kind::Identity));
    k.extend((0..cfg.dot_weight.max(1)).map(|_| Kind::Dot));
    for name in ["const", "full", "zeros", "ones", "eye", "iota", "uniform", "normal", "npy"] {
        if name != "npy" || cfg.npy {
            k.push(Kind::Const(name));
        }
    }
    k
}

/// Magnitude bound of a constant named `name` of type `ty`.
fn const_bound(name: &str, ty: &TensorType) -> f64 {
    match name {
        "zeros" => 0.0,
        "eye" | "ones" | "uniform" => 1.0,
        "iota" => ty.shape.dims().iter().copied().max().unwrap_or(1) as f64,
        "normal" => 8.0,
        _ => 3.0,
    }
}

pub(super) fn graph(d: &mut Draw, cfg: &Config) -> (Function, Vec<String>, Vec<String>) {
    let mut g =
        Gen { b: FunctionBuilder::new("g"), d, cfg, pool: vec![], used: vec![], inputs: vec![] };
    let (mut wrt, mut shared) = (vec![], vec![]);
    let n_in = 1 + g.d.below(cfg.max_inputs.max(1));
    for i in 0..n_in {
        let name = format!("x{i}");
        let ty = TensorType::new(g.dtype(), g.d.pick(&SHAPES).to_vec());
        let id = g.b.input(&name, ty).unwrap_or_else(|_| unreachable!("fresh name"));
        let v = Val { id, m: cfg.range.0.abs().max(cfg.range.1.abs()) };
        g.push(v);
        g.inputs.push(v);
        if cfg.roles {
            let role = g.d.below(4);
            if role <= 1 {
                wrt.push(name.clone());
            }
            if role == 1 || role == 2 {
                shared.push(name);
            }
        }
    }
    if cfg.roles && wrt.is_empty() {
        wrt.push("x0".into());
    }
    let kinds = kinds(cfg);
    let steps = 2 + g.d.below(cfg.max_steps.max(2) - 1);
    for _ in 0..steps {
        let kind = g.d.pick(&kinds);
        if let Some(v) = g.step(kind) {
            g.push(v);
        }
    }
    let f = g.finish().unwrap_or_else(|e| unreachable!("generated graph is valid: {e}"));
    (f, wrt, shared)
}

impl Gen<'_, '_> {
    fn dtype(&mut self) -> DType {
        self.d.pick(&self.cfg.dtypes)
    }

    fn ty(&self, id: NodeId) -> TensorType {
        self.b.ty(id).cloned().unwrap_or_else(|_| unreachable!("node of this builder"))
    }

    fn push(&mut self, v: Val) {
        self.pool.push(v);
        self.used.push(false);
    }

    fn operand(&mut self) -> Val {
        let i = self.d.below(self.pool.len());
        self.used[i] = true;
        self.pool[i]
    }

    /// A pool value that fits `a` by `fits` (a few tries), else `a`.
    fn partner(&mut self, a: Val, fits: impl Fn(&TensorType, &TensorType) -> bool) -> Val {
        let ta = self.ty(a.id);
        for _ in 0..4 {
            let i = self.d.below(self.pool.len());
            if fits(&ta, &self.ty(self.pool[i].id)) {
                self.used[i] = true;
                return self.pool[i];
            }
        }
        a
    }

    fn broadcastable(&mut self, a: Val) -> Val {
        self.partner(a, |x, y| x.dtype == y.dtype && broadcast_shapes(&x.shape, &y.shape).is_ok())
    }

    /// `v`, through `tanh` if its bound exceeds `limit` (with domains).
    fn bounded(&mut self, v: Val, limit: f64) -> Option<Val> {
        if self.cfg.domains && v.m > limit {
            return Some(Val { id: self.b.unary(Unary::Tanh, v.id).ok()?, m: 1.0 });
        }
        Some(v)
    }

    /// With domains, `v² + ½` (positive, away from zero); else `v`.
    fn positive(&mut self, v: Val) -> Option<Val> {
        if !self.cfg.domains {
            return Some(v);
        }
        let v = self.bounded(v, self.cfg.limit.sqrt())?;
        let s = self.b.unary(Unary::Square, v.id).ok()?;
        Some(Val {
            id: self.b.binary_scalar(Binary::Add, s, 0.5, crate::ScalarSide::Right).ok()?,
            m: v.m * v.m + 0.5,
        })
    }

    fn step(&mut self, kind: Kind) -> Option<Val> {
        let a = self.operand();
        match kind {
            Kind::Unary(u) => self.unary(u, a),
            Kind::Binary(op) => self.binary(op, a),
            Kind::Select(c) => {
                let c2 = self.broadcastable(a);
                let p = self.b.compare(c, a.id, c2.id).ok()?;
                // Half the time the predicate is combined with a second one by a logic op.
                let p = match self.d.below(6) {
                    k @ 0..=2 => {
                        let q = self.b.compare(Compare::Ge, c2.id, a.id).ok()?;
                        let l = [Logic::And, Logic::Or, Logic::Not][k];
                        let args: &[NodeId] = if l == Logic::Not { &[p] } else { &[p, q] };
                        self.b.add(Op::Logic(l), args).ok()?
                    }
                    _ => p,
                };
                let id = self.b.select(p, a.id, c2.id).ok()?;
                Some(Val { id, m: a.m.max(c2.m) })
            }
            Kind::Convert => {
                let from = self.ty(a.id).dtype;
                let to = self.dtype();
                if to != from && self.d.coin() {
                    let a = self.bounded(a, self.cfg.limit)?;
                    return Some(Val { id: self.b.convert(a.id, to).ok()?, m: a.m });
                }
                let p = self.b.compare_scalar(Compare::Gt, a.id, 0.0).ok()?;
                Some(Val { id: self.b.convert(p, to).ok()?, m: 1.0 })
            }
            Kind::Dot => self.dot(a),
            Kind::Reduce(kind) => {
                let t = self.ty(a.id);
                let axes: Option<Vec<i64>> = if t.rank() == 0 || self.d.coin() {
                    None
                } else {
                    let mut ax: Vec<i64> = (0..t.rank() as i64).filter(|_| self.d.coin()).collect();
                    if ax.is_empty() {
                        ax.push(self.d.below(t.rank()) as i64);
                    }
                    Some(ax)
                };
                let n = t.numel().max(1) as f64;
                let a = self.bounded(a, self.cfg.limit / n)?;
                let id = self.b.reduce(kind, a.id, axes.as_deref()).ok()?;
                Some(Val { id, m: if kind == ReduceKind::Sum { a.m * n } else { a.m } })
            }
            Kind::Reshape => {
                let n = self.ty(a.id).numel();
                let divisors: Vec<usize> = (1..=n).filter(|&p| n.is_multiple_of(p)).collect();
                let p = self.d.pick(&divisors);
                let shape = match self.d.below(3) {
                    0 => vec![n],
                    1 => vec![p, n / p],
                    _ => vec![n / p, 1, p],
                };
                Some(Val { id: self.b.reshape(a.id, shape).ok()?, m: a.m })
            }
            Kind::Transpose => {
                let r = self.ty(a.id).rank();
                let mut perm: Vec<usize> = (0..r).collect();
                for i in (1..r).rev() {
                    perm.swap(i, self.d.below(i + 1));
                }
                if r >= 2 && perm.iter().enumerate().all(|(i, &p)| i == p) {
                    perm.swap(0, 1);
                }
                Some(Val { id: self.b.transpose(a.id, &perm).ok()?, m: a.m })
            }
            Kind::Broadcast => {
                let t = self.ty(a.id);
                let mut dims: Vec<usize> = t
                    .shape
                    .dims()
                    .iter()
                    .map(|&n| if n == 1 { 1 + self.d.below(3) } else { n })
                    .collect();
                if dims == t.shape.dims() || self.d.coin() {
                    dims.insert(0, 2);
                }
                let shape = Shape(dims);
                if shape.numel() > MAX_NUMEL {
                    return None;
                }
                Some(Val { id: self.b.broadcast_to(a.id, &shape).ok()?, m: a.m })
            }
            Kind::Slice => {
                let dims = self.ty(a.id).shape.dims().to_vec();
                if dims.is_empty() {
                    return None;
                }
                let start: Vec<usize> = dims.iter().map(|&n| self.d.below(n)).collect();
                let stop: Vec<usize> =
                    dims.iter().zip(&start).map(|(&n, &s)| s + 1 + self.d.below(n - s)).collect();
                let step: Vec<usize> = dims.iter().map(|_| 1 + self.d.below(2)).collect();
                Some(Val { id: self.b.slice(a.id, &start, &stop, &step).ok()?, m: a.m })
            }
            Kind::Concat => {
                let r = self.ty(a.id).rank();
                if r == 0 {
                    return None;
                }
                let axis = self.d.below(r);
                let c = self.partner(a, |x, y| {
                    x.dtype == y.dtype
                        && x.rank() == y.rank()
                        && (0..x.rank())
                            .all(|i| i == axis || x.shape.dims()[i] == y.shape.dims()[i])
                });
                let parts = if self.d.coin() { vec![a.id, c.id] } else { vec![c.id, a.id, c.id] };
                let id = self.b.concat(&parts, axis as i64).ok()?;
                (self.ty(id).numel() <= MAX_NUMEL).then_some(Val { id, m: a.m.max(c.m) })
            }
            Kind::Pad => {
                let r = self.ty(a.id).rank();
                let mut pads = || (0..r).map(|_| self.d.below(2)).collect::<Vec<_>>();
                let pad = Pad { lo: pads(), hi: pads(), interior: pads() };
                let id = self.b.add(Op::Pad(pad), &[a.id]).ok()?;
                (self.ty(id).numel() <= MAX_NUMEL).then_some(Val { id, m: a.m })
            }
            Kind::Reverse => {
                let r = self.ty(a.id).rank();
                let axes: Vec<usize> = (0..r).filter(|_| self.d.coin()).collect();
                let id = self.b.add(Op::Reverse(Reverse { axes }), &[a.id]).ok()?;
                Some(Val { id, m: a.m })
            }
            Kind::StopGradient => {
                let id = self.b.add(Op::StopGradient(StopGradient), &[a.id]).ok()?;
                Some(Val { id, m: a.m })
            }
            Kind::Conv => self.conv(a),
            Kind::Patches => {
                let dims = self.ty(a.id).shape.dims().to_vec();
                let axes: Vec<usize> =
                    (0..dims.len()).filter(|&i| dims[i] > 1 && self.d.coin()).collect();
                if axes.is_empty() {
                    return None;
                }
                let mut draw = || axes.iter().map(|_| 1 + self.d.below(2)).collect::<Vec<_>>();
                let (window, strides, dilation) = (draw(), draw(), draw());
                let p = Patches { axes, window, strides, dilation };
                let id = self.b.add(Op::Patches(p), &[a.id]).ok()?;
                let numel = self.ty(id).numel();
                (numel > 0 && numel <= MAX_NUMEL).then_some(Val { id, m: a.m })
            }
            Kind::Gather => {
                let ta = self.ty(a.id);
                if ta.rank() == 0 {
                    return None;
                }
                let axis = self.d.below(ta.rank());
                let q = [vec![1 + self.d.below(4)], vec![2, 1 + self.d.below(2)], vec![]];
                let q = self.d.pick(&q.each_ref().map(|v| v.as_slice())).to_vec();
                let idx = self.indices(&q)?;
                let id = self.b.add(Op::Gather(Gather { axis }), &[a.id, idx]).ok()?;
                (self.ty(id).numel() <= MAX_NUMEL).then_some(Val { id, m: a.m })
            }
            Kind::ScatterAdd => {
                let ta = self.ty(a.id);
                if ta.rank() == 0 {
                    return None;
                }
                // Indices over one or all of the axes from `axis` on.
                let axis = self.d.below(ta.rank());
                let k = if self.d.coin() { 1 } else { ta.rank() - axis };
                let idx = self.indices(&ta.shape.dims()[axis..axis + k])?;
                let size = 1 + self.d.below(4);
                let terms = ta.shape.dims()[axis..axis + k].iter().product::<usize>().max(1);
                let s = ScatterAdd { size, axis };
                let id = self.b.add(Op::ScatterAdd(s), &[idx, a.id]).ok()?;
                (self.ty(id).numel() <= MAX_NUMEL).then_some(Val { id, m: a.m * terms as f64 })
            }
            Kind::Const(name) => self.constant(name, a),
            Kind::Identity => {
                let id = match self.d.below(6) {
                    4 => {
                        let n = self.b.unary(Unary::Neg, a.id).ok()?;
                        self.b.unary(Unary::Neg, n).ok()?
                    }
                    5 => {
                        let c = self.broadcastable(a);
                        let p = self.b.compare(Compare::Gt, a.id, c.id).ok()?;
                        let shape = self.ty(p).shape;
                        let x = self.b.broadcast_to(a.id, &shape).ok()?;
                        self.b.select(p, x, x).ok()?
                    }
                    i => {
                        let (op, k) = [
                            (Binary::Mul, 1.0),
                            (Binary::Div, 1.0),
                            (Binary::Add, -0.0),
                            (Binary::Sub, 0.0),
                        ][i];
                        self.b.binary_scalar(op, a.id, k, crate::ScalarSide::Right).ok()?
                    }
                };
                Some(Val { id, m: a.m })
            }
        }
    }

    /// An `i32` index tensor of shape `q`, some indices out of range for small axes (so
    /// clamping is exercised): `iota` shifted by a constant, a literal, or a float pool value
    /// of that shape converted (truncated toward zero).
    fn indices(&mut self, q: &[usize]) -> Option<NodeId> {
        let ty = TensorType::new(DType::I32, q.to_vec());
        match self.d.below(3) {
            0 if !q.is_empty() => {
                let axis = self.d.below(q.len());
                let iota = self.b.constant(Const::Iota { ty: ty.clone(), axis }).ok()?;
                let shift = self.b.full(ty, self.d.pick(&[-1.0, 0.0, 2.0])).ok()?;
                self.b.binary(Binary::Sub, iota, shift).ok()
            }
            1 => {
                let v: Vec<f64> = (0..ty.numel()).map(|_| self.d.below(7) as f64 - 2.0).collect();
                self.b.constant(Const::literal(ty, &v)).ok()
            }
            _ => {
                let a = self.operand();
                let p = self.partner(a, |_, y| y.shape.dims() == q);
                if self.ty(p.id).shape.dims() != q {
                    return self
                        .b
                        .constant(Const::Iota { ty, axis: 0 })
                        .ok()
                        .filter(|_| !q.is_empty());
                }
                let scaled =
                    self.b.binary_scalar(Binary::Mul, p.id, 2.0, crate::ScalarSide::Right).ok()?;
                self.b.convert(scaled, DType::I32).ok()
            }
        }
    }

    /// `a` as a one-dimensional input (one example, one feature, channels last or first)
    /// against a partner as a kernel of one input feature, with random strides, padding and
    /// dilations.
    fn conv(&mut self, a: Val) -> Option<Val> {
        let c = self.partner(a, |x, y| x.dtype == y.dtype);
        let (n, m) = (self.ty(a.id).numel(), self.ty(c.id).numel());
        if n == 0 || m == 0 {
            return None;
        }
        let last = self.d.coin();
        let (dims, x_shape) =
            if last { ("NWC,WIO,NWC", vec![1, n, 1]) } else { ("NCW,OIW,NCW", vec![1, 1, n]) };
        // The kernel: a window of m taps and one output, or one tap and m outputs.
        let (w, o) = if self.d.coin() { (m, 1) } else { (1, m) };
        let k_shape = if last { vec![w, 1, o] } else { vec![o, 1, w] };
        let mut conv = Conv::new(ConvDims::parse(dims).ok()?);
        conv.strides = vec![1 + self.d.below(2)];
        conv.padding = vec![(self.d.below(3) as i64 - 1, self.d.below(3) as i64)];
        conv.lhs_dilation = vec![1 + self.d.below(2)];
        conv.rhs_dilation = vec![1 + self.d.below(2)];
        let (a, c) =
            (self.bounded(a, self.cfg.limit.sqrt())?, self.bounded(c, self.cfg.limit.sqrt())?);
        let x = self.b.reshape(a.id, x_shape).ok()?;
        let k = self.b.reshape(c.id, k_shape).ok()?;
        let id = self.b.add(Op::Conv(conv), &[x, k]).ok()?;
        let numel = self.ty(id).numel();
        (numel > 0 && numel <= MAX_NUMEL).then_some(Val { id, m: a.m * c.m * w as f64 })
    }

    fn unary(&mut self, u: Unary, a: Val) -> Option<Val> {
        let (x, m) = match u {
            Unary::Neg | Unary::Abs | Unary::Relu => (a, a.m),
            Unary::Exp | Unary::Expm1 => {
                let x = self.bounded(a, self.cfg.limit.ln())?;
                (x, x.m.exp())
            }
            Unary::Log => {
                let x = self.positive(a)?;
                (x, x.m.ln().abs().max(0.7))
            }
            Unary::Log1p => {
                let x = self.bounded(a, self.cfg.limit.sqrt())?;
                let x = if self.cfg.domains {
                    Val { id: self.b.unary(Unary::Square, x.id).ok()?, m: x.m * x.m }
                } else {
                    x
                };
                (x, (1.0 + x.m).ln())
            }
            Unary::Sqrt => {
                let x = self.positive(a)?;
                (x, x.m.sqrt())
            }
            Unary::Rsqrt | Unary::Recip => (self.positive(a)?, 2.0),
            Unary::Square => {
                let x = self.bounded(a, self.cfg.limit.sqrt())?;
                (x, x.m * x.m)
            }
            Unary::Sin | Unary::Cos | Unary::Tanh | Unary::Sigmoid | Unary::Erf => (a, 1.0),
            Unary::Softplus => (a, a.m + 1.0),
        };
        Some(Val { id: self.b.unary(u, x.id).ok()?, m })
    }

    fn binary(&mut self, op: Binary, a: Val) -> Option<Val> {
        let c = self.broadcastable(a);
        let (x, y, m) = match op {
            Binary::Add | Binary::Sub | Binary::Maximum | Binary::Minimum => {
                let (x, y) = (
                    self.bounded(a, self.cfg.limit / 2.0)?,
                    self.bounded(c, self.cfg.limit / 2.0)?,
                );
                (x, y, x.m + y.m)
            }
            Binary::Mul => {
                let (x, y) = (
                    self.bounded(a, self.cfg.limit.sqrt())?,
                    self.bounded(c, self.cfg.limit.sqrt())?,
                );
                (x, y, x.m * y.m)
            }
            Binary::Div => {
                let (x, y) = (self.bounded(a, self.cfg.limit / 2.0)?, self.positive(c)?);
                (x, y, x.m * 2.0)
            }
            Binary::Pow => {
                let x = self.positive(a)?;
                let y = self.bounded(c, if self.cfg.domains { 0.0 } else { f64::INFINITY })?;
                (x, y, x.m.max(2.0))
            }
        };
        Some(Val { id: self.b.binary(op, x.id, y.id).ok()?, m })
    }

    /// A contraction over one pair of equal axes (or none: an outer product), maybe with one
    /// batch pair.
    fn dot(&mut self, a: Val) -> Option<Val> {
        let c = self.partner(a, |x, y| {
            x.dtype == y.dtype && x.shape.dims().iter().any(|n| y.shape.dims().contains(n))
        });
        if self.ty(c.id).dtype != self.ty(a.id).dtype {
            return None;
        }
        let (da, dc) = (self.ty(a.id).shape.0, self.ty(c.id).shape.0);
        let pairs: Vec<(usize, usize)> = (0..da.len())
            .flat_map(|i| (0..dc.len()).map(move |j| (i, j)))
            .filter(|&(i, j)| da[i] == dc[j])
            .collect();
        let mut dims = DotGeneral::default();
        let mut k = 1;
        if !pairs.is_empty() {
            let (i, j) = self.d.pick(&pairs);
            dims.lhs_contract.push(i);
            dims.rhs_contract.push(j);
            k = da[i];
            let rest: Vec<_> = pairs.iter().filter(|&&(p, q)| p != i && q != j).copied().collect();
            if !rest.is_empty() && self.d.coin() {
                let (p, q) = self.d.pick(&rest);
                dims.lhs_batch.push(p);
                dims.rhs_batch.push(q);
            }
        }
        let (x, y) = (
            self.bounded(a, self.cfg.limit.sqrt() / 2.0)?,
            self.bounded(c, self.cfg.limit.sqrt() / 2.0)?,
        );
        let id = self.b.dot_general(x.id, y.id, dims).ok()?;
        let t = self.ty(id);
        (t.numel() <= MAX_NUMEL && t.rank() <= 4).then_some(Val { id, m: x.m * y.m * k as f64 })
    }

    fn constant(&mut self, name: &'static str, a: Val) -> Option<Val> {
        let ta = self.ty(a.id);
        let dtype = if self.d.coin() { ta.dtype } else { self.dtype() };
        let dims = if name == "eye" || (self.d.coin() && name != "iota") {
            vec![1 + self.d.below(3), 1 + self.d.below(3)]
        } else {
            ta.shape.0.clone()
        };
        let dims = if name == "iota" && dims.is_empty() { vec![3] } else { dims };
        let ty = TensorType::new(dtype, dims);
        let m = const_bound(name, &ty);
        let c = constant(name, ty, self.d)?;
        let k = Val { id: self.b.constant(c).ok()?, m };
        if self.d.coin() {
            return Some(k);
        }
        // Combine with the operand so the constant is used.
        let op = self.d.pick(&[Binary::Add, Binary::Mul, Binary::Sub]);
        let x = self.bounded(a, self.cfg.limit.sqrt())?;
        self.b.binary(op, x.id, k.id).ok().map(|id| Val { id, m: x.m * k.m.max(1.0) + k.m })
    }

    fn finish(mut self) -> Result<Function, crate::IrError> {
        let last = *self.pool.last().unwrap_or_else(|| unreachable!("at least one input"));
        let leaves: Vec<Val> = self
            .pool
            .iter()
            .zip(&self.used)
            .filter(|(v, used)| {
                !**used && v.id != last.id && !self.inputs.iter().any(|i| i.id == v.id)
            })
            .map(|(v, _)| *v)
            .collect();
        match self.cfg.outputs {
            Outputs::Many(k) => {
                let mut outs = vec![last.id];
                for v in leaves.iter().rev() {
                    if outs.len() < k.max(1) && !outs.contains(&v.id) {
                        outs.push(v.id);
                    }
                }
                self.b.finish_many(outs).map(|f| f.pruned())
            }
            Outputs::Single(max) => {
                let dt = self.ty(last.id).dtype;
                let mut s = None;
                for v in self.inputs.clone() {
                    let t = self.b.reduce(ReduceKind::Sum, v.id, None)?;
                    let t = self.b.convert(t, dt)?;
                    s = Some(match s {
                        None => t,
                        Some(s) => self.b.binary(Binary::Add, s, t)?,
                    });
                }
                let s = self.b.unary(Unary::Sin, s.unwrap_or(last.id))?;
                let last = self.bounded(last, self.cfg.limit).unwrap_or(last);
                let mut out = self.b.binary(Binary::Mul, last.id, s)?;
                for v in &leaves {
                    let v = self.bounded(*v, self.cfg.limit).unwrap_or(*v);
                    let t = self.b.reduce(ReduceKind::Sum, v.id, None)?;
                    let t = self.b.convert(t, dt)?;
                    out = self.b.binary(Binary::Add, out, t)?;
                }
                while self.ty(out).numel() > max.max(1) {
                    out = self.b.reduce(ReduceKind::Sum, out, Some(&[0]))?;
                }
                self.b.finish(out).map(|f| f.pruned())
            }
        }
    }
}
