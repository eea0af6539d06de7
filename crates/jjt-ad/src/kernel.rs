//! The kernel builder: the graph of K = J(p1)·J(p2)ᵀ and of its operator form
//! v ↦ J(p1)·J(p2)ᵀ·v, for a function f whose inputs are differentiated (`wrt`) or not, and
//! are either *per-side* (p1 and p2 hold different values, like x1 and x2) or *shared* (one
//! value for both sides, like network parameters θ).
//!
//! With several `wrt` inputs, J is the Jacobian with respect to all of them, so
//! K = Σ_w J_w(p1)·J_w(p2)ᵀ.
//!
//! **Layout.** Unbatched, K has shape `[out..., out...]`. With example batching (per-side
//! inputs carry one extra leading axis: B1 examples on side 1, B2 on side 2) K has shape
//! `[B1, B2, out..., out...]`, the neural-tangents layout; the example-diagonal variant keeps
//! only b1 = b2 and has shape `[B, out..., out...]`. Output modes reduce the paired output
//! axes: `trace` sums over i = j (`[B1, B2]`), `diagonal` keeps i = j (`[B1, B2, out...]`).
//!
//! **Strategies.**
//! - `ntvp` (NTK-vector products): the operator form `jvp(f, p1)(vjp(f, p2)(v))`, vmapped over
//!   the basis of the output space. The operator itself never builds J, but its VJP half
//!   vmapped over the basis is J(p2), `[O, w...]` per `wrt` input: the full form builds J(p2)
//!   with one VJP per basis vector, then applies the JVP at p1 to each row (J(p1) is never
//!   built). The optimiser may remove J(p2) (on the seed it folds A·Aᵀ instead).
//! - `jc` (Jacobian contraction): J1 and J2 by VJPs vmapped over the output basis, then
//!   contracted over the parameter axes. Also the oracle for `ntvp`.
//!
//! Example batching is itself a `vmap` of the unbatched kernel (over side 2, then side 1), so
//! everything that depends on one side only is computed once per example of that side.

use jjt_ir::ops::{Const, DotGeneral};
use jjt_ir::types::is_float;
use jjt_ir::{Binary, Function, FunctionBuilder, NodeId, ReduceKind, Shape, TensorType};

use crate::vmap::{to_front, vmap_into};
use crate::{AdError, describe_inputs, fresh_name, input_mask, jvp_into, or_zeros, vjp_into};

/// How the paired output axes of K are reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every pair (i, j): `[.., out..., out...]`.
    #[default]
    Full,
    /// Σ_i K_ii: `[..]`.
    Trace,
    /// K_ii: `[.., out...]`.
    Diagonal,
}

/// Which example pairs a batched kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Examples {
    /// Every (b1, b2): `[B1, B2, ...]`.
    #[default]
    All,
    /// Only b1 = b2: `[B, ...]`.
    Diagonal,
}

/// How K is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// NTK-vector products: jvp∘vjp vmapped over the output basis.
    #[default]
    Ntvp,
    /// Jacobian contraction: J1, J2 by batched VJPs, then contracted.
    Jc,
}

/// Which function a kernel description is built into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// K(p1, p2) itself ([`KernelSpec::kernel`]).
    Kernel,
    /// The operator v ↦ K(p1, p2)·v ([`KernelSpec::apply`]), which takes `v` as its last input.
    Apply,
}

/// What a kernel function's input stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Per-side input `i` of f (its index in f's signature), on side 1 or 2.
    Side(u8, usize),
    /// Shared input `i` of f.
    Shared(usize),
    /// The vector K is applied to (operator form).
    V,
}

/// The description of a kernel: which inputs are differentiated and shared, the mode, the
/// example batching and the strategy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelSpec {
    /// Inputs J is taken with respect to.
    pub wrt: Vec<String>,
    /// Inputs with one value for both sides; all other inputs are per-side.
    pub shared: Vec<String>,
    /// Output mode.
    pub mode: Mode,
    /// Example pairs (for batched kernels).
    pub examples: Examples,
    /// Strategy.
    pub strategy: Strategy,
    /// Example batch sizes (B1, B2) of the per-side inputs, or `None` for unbatched inputs.
    pub batch: Option<(usize, usize)>,
}

struct Plan {
    wrt: Vec<bool>,
    shared: Vec<bool>,
    out: TensorType,
}

impl KernelSpec {
    fn plan(&self, f: &Function) -> Result<Plan, AdError> {
        if f.outputs().len() != 1 {
            return Err(AdError::OutputCount {
                function: f.name.clone(),
                outputs: f.outputs().len(),
            });
        }
        let wrt = input_mask(f, &self.wrt)?;
        if !wrt.contains(&true) {
            return Err(AdError::NoWrt);
        }
        for (p, &w) in f.params().iter().zip(&wrt) {
            if w && !is_float(p.ty.dtype) {
                return Err(AdError::NotFloat { name: p.name.clone(), dtype: p.ty.dtype });
            }
        }
        let shared = input_mask(f, &self.shared)?;
        if let (Examples::Diagonal, Some((b1, b2))) = (self.examples, self.batch)
            && b1 != b2
        {
            return Err(AdError::DiagonalBatch { b1, b2 });
        }
        let out = f
            .output_type()
            .cloned()
            .ok_or_else(|| AdError::MissingOutput { function: f.name.clone(), index: 0 })?;
        if !is_float(out.dtype) {
            return Err(AdError::OutputNotFloat { function: f.name.clone(), ty: out });
        }
        Ok(Plan { wrt, shared, out })
    }

    /// Whether `f` reads as an export of a batch of one: it has per-side inputs (those not in
    /// [`KernelSpec::shared`]), and every one of them and the output lead with an axis of one.
    /// Such a model (e.g. `torch.onnx.export(net, x[:1])`) takes batches `[B, …]` in place of
    /// `[1, …]`, and its batched K drops the size-1 axes ([`KernelSpec::batch_of_one_axes`]).
    pub fn batch_of_one(&self, f: &Function) -> bool {
        let leading_one = |t: &TensorType| t.shape.dims().first() == Some(&1);
        let mut per_side = f.params().iter().filter(|p| !self.shared.contains(&p.name)).peekable();
        per_side.peek().is_some()
            && per_side.all(|p| leading_one(&p.ty))
            && f.output_type().is_some_and(leading_one)
    }

    /// The axes of a batched K (`[B1, B2, out…, out…]`, or `[B, …]` example-diagonal) that the
    /// reading as a batch of one drops: the output's leading axis on each side in the full mode,
    /// once in the diagonal mode, none in the trace mode.
    pub fn batch_of_one_axes(&self, f: &Function) -> Vec<usize> {
        let nb = if self.examples == Examples::All { 2 } else { 1 };
        let r = f.output_type().map_or(0, TensorType::rank);
        match self.mode {
            Mode::Full => vec![nb, nb + r],
            Mode::Diagonal => vec![nb],
            Mode::Trace => vec![],
        }
    }

    /// The inputs of the kernel (or operator) function, in order, with their roles: side-1
    /// per-side inputs, side-2 per-side inputs, shared inputs, then `v` for the operator.
    pub fn layout(
        &self,
        f: &Function,
        form: Form,
    ) -> Result<Vec<(String, Role, TensorType)>, AdError> {
        let plan = self.plan(f)?;
        let (mut v, mut taken) = self.inputs(f, &plan);
        match form {
            Form::Kernel => {}
            Form::Apply => v.push(self.v_input(&plan, &mut taken)),
        }
        Ok(v)
    }

    /// The per-side and shared inputs (K's inputs), and the names they take.
    fn inputs(&self, f: &Function, plan: &Plan) -> (Vec<(String, Role, TensorType)>, Vec<String>) {
        let mut taken: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
        let mut v = Vec::new();
        for side in [1u8, 2] {
            for (i, p) in f.params().iter().enumerate() {
                if !plan.shared[i] {
                    let name = fresh_name(&format!("{}_{side}", p.name), &mut taken);
                    let ty = match self.batch {
                        Some((b1, b2)) => {
                            let mut d = vec![if side == 1 { b1 } else { b2 }];
                            d.extend_from_slice(p.ty.shape.dims());
                            p.ty.with_shape(d)
                        }
                        None => p.ty.clone(),
                    };
                    v.push((name, Role::Side(side, i), ty));
                }
            }
        }
        for (i, p) in f.params().iter().enumerate() {
            if plan.shared[i] {
                v.push((p.name.clone(), Role::Shared(i), p.ty.clone()));
            }
        }
        (v, taken)
    }

    /// The operator's `v`: the output's type, with the batch axis of side 2's examples.
    fn v_input(&self, plan: &Plan, taken: &mut Vec<String>) -> (String, Role, TensorType) {
        let mut d = match (self.batch, self.examples) {
            (Some((_, b2)), Examples::All) => vec![b2],
            (Some((b, _)), Examples::Diagonal) => vec![b],
            (None, _) => vec![],
        };
        d.extend_from_slice(plan.out.shape.dims());
        (fresh_name("v", taken), Role::V, plan.out.with_shape(d))
    }

    /// The graph of K(p1, p2).
    pub fn kernel(&self, f: &Function) -> Result<Function, AdError> {
        let plan = self.plan(f)?;
        let unbatched = KernelSpec { batch: None, ..self.clone() };
        let k0 = unbatched.unbatched_kernel(f, &plan)?;
        let layout = self.layout(f, Form::Kernel)?;
        let mut b = FunctionBuilder::new(format!("{}_kernel", f.name));
        let args: Vec<NodeId> =
            layout.iter().map(|(n, _, ty)| b.input(n, ty.clone())).collect::<Result<_, _>>()?;
        let is_side = |s: u8| -> Vec<bool> {
            layout.iter().map(|(_, r, _)| matches!(r, Role::Side(x, _) if *x == s)).collect()
        };
        let out = match (self.batch, self.examples) {
            (None, _) => crate::inline_into(&mut b, &k0, &args)?[0],
            (Some((b1, b2)), Examples::All) => {
                // vmap over side 2's examples, then side 1's: [B1, B2, ...].
                let s2 = is_side(2);
                let s1 = is_side(1);
                let k2 =
                    crate::vmap(&k0, &s2.iter().map(|&s| s.then_some(0)).collect::<Vec<_>>(), b2)?;
                let k12 =
                    crate::vmap(&k2, &s1.iter().map(|&s| s.then_some(0)).collect::<Vec<_>>(), b1)?;
                crate::inline_into(&mut b, &k12, &args)?[0]
            }
            (Some((bb, _)), Examples::Diagonal) => {
                let axes: Vec<Option<usize>> = layout
                    .iter()
                    .map(|(_, r, _)| matches!(r, Role::Side(..)).then_some(0))
                    .collect();
                let kd = crate::vmap(&k0, &axes, bb)?;
                crate::inline_into(&mut b, &kd, &args)?[0]
            }
        };
        Ok(b.finish(out)?.pruned())
    }

    /// The graph of v ↦ K(p1, p2)·v, which never materialises J: with example batching,
    /// `(K·v)[b1] = Σ_b2 K[b1, b2]·v[b2]` (example-diagonal: `K[b, b]·v[b]`).
    pub fn apply(&self, f: &Function) -> Result<Function, AdError> {
        let plan = self.plan(f)?;
        let (mut layout, mut taken) = self.inputs(f, &plan);
        let mut b = FunctionBuilder::new(format!("{}_apply", f.name));
        let mut args: Vec<NodeId> =
            layout.iter().map(|(n, _, ty)| b.input(n, ty.clone())).collect::<Result<_, _>>()?;
        let (name, role, ty) = self.v_input(&plan, &mut taken);
        let v = b.input(&name, ty.clone())?;
        let sides = Sides { f, plan: &plan, layout: &layout, args: &args };
        let out = match (self.batch, self.examples) {
            (None, _) => apply_body(&mut b, &sides, v, None)?,
            (Some((b1, b2)), Examples::All) => apply_body(&mut b, &sides, v, Some((b1, b2)))?,
            (Some((bb, _)), Examples::Diagonal) => {
                layout.push((name, role, ty));
                args.push(v);
                let unbatched = KernelSpec { batch: None, ..self.clone() };
                let a0 = unbatched.apply(f)?;
                let axes: Vec<Option<usize>> = layout
                    .iter()
                    .map(|(_, r, _)| (!matches!(r, Role::Shared(_))).then_some(0))
                    .collect();
                let (v, d) = vmap_into(&mut b, &a0, &args, &axes, bb)?[0];
                to_front(&mut b, (v, d), bb)?
            }
        };
        Ok(b.finish(out)?.pruned())
    }

    /// The unbatched kernel: inputs as in [`KernelSpec::layout`] without batching.
    fn unbatched_kernel(&self, f: &Function, plan: &Plan) -> Result<Function, AdError> {
        let layout = self.layout(f, Form::Kernel)?;
        let mut b = FunctionBuilder::new(format!("{}_kernel", f.name));
        let args: Vec<NodeId> =
            layout.iter().map(|(n, _, ty)| b.input(n, ty.clone())).collect::<Result<_, _>>()?;
        let o = plan.out.numel();
        let out_dims = plan.out.shape.dims().to_vec();
        let basis = basis(&mut b, &plan.out)?;
        let kernel = match self.strategy {
            Strategy::Ntvp => {
                // K·e_j for every basis vector e_j: [O (j), out...], then K = its transpose.
                // A table lookup's pull-back and push-forward meet as gather(scatter_add):
                // compared index sets instead (`gather_scatter`), before batching hides them.
                let a0 = crate::gather_scatter::fuse(&self.apply(f)?)?;
                let mut vargs = args.clone();
                vargs.push(basis);
                let mut axes = vec![None; args.len()];
                axes.push(Some(0));
                let cols = vmap_into(&mut b, &a0, &vargs, &axes, o)?[0];
                let cols = to_front(&mut b, cols, o)?;
                let flat = b.reshape(cols, [o, o])?;
                let k = b.transpose(flat, &[1, 0])?;
                match self.mode {
                    Mode::Full => b.reshape(k, [out_dims.clone(), out_dims.clone()].concat())?,
                    Mode::Diagonal => diagonal(&mut b, k, o, &out_dims)?,
                    Mode::Trace => {
                        let d = diagonal(&mut b, k, o, &out_dims)?;
                        b.reduce(ReduceKind::Sum, d, None)?
                    }
                }
            }
            Strategy::Jc => {
                let vf = crate::vjp(f, &self.wrt)?;
                let sides = Sides { f, plan, layout: &layout, args: &args };
                let j1 = jacobians(&mut b, &vf, &sides.args(1), basis, o)?;
                let j2 = jacobians(&mut b, &vf, &sides.args(2), basis, o)?;
                let mut total: Option<NodeId> = None;
                for (a, c) in j1.into_iter().zip(j2) {
                    let r = b.ty(a)?.rank();
                    let params: Vec<usize> = (1..r).collect();
                    let dims = match self.mode {
                        Mode::Full => DotGeneral {
                            lhs_contract: params.clone(),
                            rhs_contract: params,
                            ..Default::default()
                        },
                        Mode::Diagonal => DotGeneral {
                            lhs_contract: params.clone(),
                            rhs_contract: params,
                            lhs_batch: vec![0],
                            rhs_batch: vec![0],
                        },
                        Mode::Trace => {
                            let all: Vec<usize> = (0..r).collect();
                            DotGeneral {
                                lhs_contract: all.clone(),
                                rhs_contract: all,
                                ..Default::default()
                            }
                        }
                    };
                    let k = b.dot_general(a, c, dims)?;
                    total = Some(match total {
                        Some(t) => b.binary(Binary::Add, t, k)?,
                        None => k,
                    });
                }
                let k = total.ok_or(AdError::NoWrt)?;
                match self.mode {
                    Mode::Full => b.reshape(k, [out_dims.clone(), out_dims.clone()].concat())?,
                    Mode::Diagonal => b.reshape(k, out_dims.clone())?,
                    Mode::Trace => k,
                }
            }
        };
        Ok(b.finish(kernel)?.pruned())
    }
}

/// The one-hot basis of the output space: `[O, out...]`.
fn basis(b: &mut FunctionBuilder, out: &TensorType) -> Result<NodeId, AdError> {
    let o = out.numel();
    let eye = b.constant(Const::Eye { ty: TensorType::new(out.dtype, [o, o]) })?;
    let mut dims = vec![o];
    dims.extend_from_slice(out.shape.dims());
    Ok(b.reshape(eye, Shape(dims))?)
}

/// The diagonal of an `[O, O]` matrix, reshaped to the output shape: a strided slice of the
/// flattened matrix (exact, no multiplication by an identity).
fn diagonal(
    b: &mut FunctionBuilder,
    k: NodeId,
    o: usize,
    out_dims: &[usize],
) -> Result<NodeId, AdError> {
    let flat = b.reshape(k, [o * o])?;
    let d = b.slice(flat, &[0], &[o * o], &[o + 1])?;
    Ok(b.reshape(d, out_dims.to_vec())?)
}

/// A kernel function's inputs (`layout`, bound to `args`) as the arguments of f on each side.
struct Sides<'a> {
    f: &'a Function,
    plan: &'a Plan,
    layout: &'a [(String, Role, TensorType)],
    args: &'a [NodeId],
}

impl Sides<'_> {
    /// f's arguments (in f's order) for one side.
    fn args(&self, side: u8) -> Vec<NodeId> {
        (0..self.f.params().len())
            .map(|i| {
                let want = if self.plan.shared[i] { Role::Shared(i) } else { Role::Side(side, i) };
                let k = self.layout.iter().position(|(_, r, _)| *r == want).unwrap_or(0);
                self.args[k]
            })
            .collect()
    }
}

/// J_w for every wrt input, `[O, w...]` each: the VJP vmapped over the output basis.
fn jacobians(
    b: &mut FunctionBuilder,
    vf: &Function,
    fargs: &[NodeId],
    basis: NodeId,
    o: usize,
) -> Result<Vec<NodeId>, AdError> {
    let mut vargs = fargs.to_vec();
    vargs.push(basis);
    let mut axes = vec![None; fargs.len()];
    axes.push(Some(0));
    let outs = vmap_into(b, vf, &vargs, &axes, o)?;
    outs.into_iter().map(|x| to_front(b, x, o)).collect()
}

/// K·v: `u = vjp(f, p2)(v)`, then `jvp(f, p1)(u)`. With example batching (b1, b2) the
/// per-side inputs carry a leading example axis; the VJP of the batched function sums over
/// side-2 examples for shared inputs by construction (the transpose of the broadcast that
/// batching inserts), and per-side `wrt` cotangents are summed explicitly, then broadcast to
/// side 1's examples.
fn apply_body(
    b: &mut FunctionBuilder,
    sides: &Sides<'_>,
    v: NodeId,
    batch: Option<(usize, usize)>,
) -> Result<NodeId, AdError> {
    let (f, plan) = (sides.f, sides.plan);
    let a1 = sides.args(1);
    let a2 = sides.args(2);
    let (f1, f2) = match batch {
        None => (f.clone(), f.clone()),
        Some((b1, b2)) => {
            let axes: Vec<Option<usize>> = plan.shared.iter().map(|&s| (!s).then_some(0)).collect();
            (crate::vmap(f, &axes, b1)?, crate::vmap(f, &axes, b2)?)
        }
    };
    let (_, cts) = vjp_into(b, &f2, &a2, &plan.wrt, &[Some(v)])?;
    let mut tangents = vec![None; cts.len()];
    for (i, ct) in cts.into_iter().enumerate() {
        tangents[i] = match (ct, batch, plan.shared[i]) {
            (Some(c), Some((b1, _)), false) => {
                // Per-side wrt input: Σ over side-2 examples, then the same tangent for every
                // side-1 example.
                let s = b.reduce(ReduceKind::Sum, c, Some(&[0]))?;
                let mut dims = vec![b1];
                dims.extend_from_slice(f.params()[i].ty.shape.dims());
                Some(b.broadcast_to(s, &Shape(dims))?)
            }
            (c, _, _) => c,
        };
    }
    let (outs, kv) = jvp_into(b, &f1, &a1, &tangents)?;
    let ty = b.ty(outs[0])?.clone();
    or_zeros(b, kv[0], &ty)
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Full => "full",
            Mode::Trace => "trace",
            Mode::Diagonal => "diagonal",
        })
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::Ntvp => "ntvp",
            Strategy::Jc => "jc",
        })
    }
}

/// For error messages: the function's inputs.
pub fn describe(f: &Function) -> String {
    describe_inputs(f)
}
