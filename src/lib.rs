//! jjt computes products of Jacobians, K = J(p1)·J(p2)ᵀ, and the operator v ↦ J(p1)·J(p2)ᵀ·v,
//! the latter without building J. It is a compiler: a function is traced from a closure (or parsed
//! from a model file) into a tensor graph, which later stages transform, optimise and compile.
//!
//! This crate is the facade host programs use: tracing, the text format, the transforms
//! (JVP, VJP, vmap) and the kernel builder [`Kernel`], evaluated by the reference interpreter.
//!
//! ```
//! use jjt::{DType, RandomState, trace};
//!
//! // f(x) = sqrt(A x / N), with A drawn like `np.random.seed(1701); np.random.rand(5, 100)`.
//! let f = trace("f", |t| {
//!     let x = t.input("x", DType::F64, [100]);
//!     let a = t.uniform(DType::F64, [5, 100], 1701);
//!     (a.matmul(&x) / 100.0).sqrt()
//! })?;
//! let mut rng = RandomState::new(1701);
//! rng.skip_uniform(5 * 100); // the draws A took
//! let x = rng.rand_f64([100])?;
//! let y = jjt::eval(&f, &[x])?;
//! assert_eq!(y.shape.dims(), &[5]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

//!
//! # The smallest host program
//!
//! `examples/embed.rs`, in full:
//!
#![doc = concat!("```rust\n", include_str!("../examples/embed.rs"), "```")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use jjt_import as import;
pub use jjt_ir as ir;
pub use jjt_ir::text;
pub use jjt_ir::{
    DType, EvalError, Function, IrError, Shape, Tensor, TensorType, TraceError, Tracer, Var, trace,
};
pub use jjt_npy as npy;

pub use jjt_ad as ad;
pub use jjt_jit as jit;
pub use jjt_jit::{Compiled, JitError, Options as JitOptions};

/// Compile `f` to native code.
pub fn compile(f: &Function) -> Result<Compiled, Error> {
    Ok(jjt_jit::compile(f)?)
}

/// A kernel compiled in two stages: [`StagedKernel::prepare`] runs the part that depends only
/// on the shared inputs (e.g. network parameters) once; [`Prepared::eval`] then runs the
/// per-call part for any per-side inputs.
///
/// ```
/// use jjt::{DType, Kernel, RandomState, trace};
/// let f = trace("f", |t| {
///     let x = t.input("x", DType::F64, [4]);
///     let w = t.input("w", DType::F64, [4, 3]);
///     x.matmul(&w).tanh()
/// })?;
/// let k = Kernel::new(&f).wrt(["w"]).shared(["w"]).batch(2, 3).compile_staged()?;
/// let mut rng = RandomState::new(0);
/// let w = rng.randn_f64([4, 3])?;
/// let prepared = k.prepare(&[&w])?;
/// let (x1, x2) = (rng.randn_f64([2, 4])?, rng.randn_f64([3, 4])?);
/// let ntk = prepared.eval(&[&x1, &x2])?;
/// assert_eq!(ntk.shape.dims(), &[2, 3, 3, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StagedKernel {
    prepare: Option<Compiled>,
    call: Compiled,
    prepare_inputs: Vec<usize>,
    call_inputs: Vec<usize>,
    roles: Vec<Role>,
}

/// A [`StagedKernel`] with its shared inputs bound and their part computed.
#[derive(Debug)]
pub struct Prepared<'k> {
    kernel: &'k StagedKernel,
    shared: Vec<Tensor>,
    hoisted: Vec<Tensor>,
}

impl StagedKernel {
    /// Bind the shared inputs (in the kernel's order) and run the part that depends only on
    /// them.
    pub fn prepare(&self, shared: &[&Tensor]) -> Result<Prepared<'_>, Error> {
        let n_shared = self.roles.iter().filter(|r| matches!(r, Role::Shared(_))).count();
        argument_count("prepare", "shared inputs", n_shared, shared.len())?;
        let first_shared =
            self.roles.iter().position(|r| matches!(r, Role::Shared(_))).unwrap_or(0);
        let args: Vec<&Tensor> =
            self.prepare_inputs.iter().map(|&i| shared[i - first_shared]).collect();
        let hoisted = match &self.prepare {
            Some(p) => p.call(&args)?,
            None => Vec::new(),
        };
        Ok(Prepared { kernel: self, shared: shared.iter().map(|&t| t.clone()).collect(), hoisted })
    }
}

impl Prepared<'_> {
    /// K for these per-side inputs (side 1's, then side 2's, in the kernel's order).
    pub fn eval(&self, sides: &[&Tensor]) -> Result<Tensor, Error> {
        let k = self.kernel;
        let n_sides = k.roles.iter().filter(|r| matches!(r, Role::Side(..))).count();
        argument_count("eval", "per-side inputs", n_sides, sides.len())?;
        let first_shared =
            k.roles.iter().position(|r| matches!(r, Role::Shared(_))).unwrap_or(n_sides);
        let mut args: Vec<&Tensor> = k
            .call_inputs
            .iter()
            .map(|&i| if i < first_shared { sides[i] } else { &self.shared[i - first_shared] })
            .collect();
        args.extend(self.hoisted.iter());
        let mut out = k.call.call(&args)?;
        Ok(out.remove(0))
    }
}

/// [`Error::ArgumentCount`] unless `got == expected`.
fn argument_count(
    call: &'static str,
    what: &'static str,
    expected: usize,
    got: usize,
) -> Result<(), Error> {
    if got == expected { Ok(()) } else { Err(Error::ArgumentCount { call, expected, what, got }) }
}

/// `f.compile()` for functions: native code through the JIT.
///
/// ```
/// use jjt::{CompileExt, DType, Tensor, trace};
/// let f = trace("f", |t| t.input("x", DType::F64, [3]).exp().sum_all())?;
/// let c = f.compile()?;
/// let y = c.call(&[&Tensor::f64([3], vec![0.0; 3])?])?;
/// assert_eq!(y[0].to_f64_vec(), vec![3.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait CompileExt {
    /// Compile to native code.
    fn compile(&self) -> Result<Compiled, Error>;
}

impl CompileExt for Function {
    fn compile(&self) -> Result<Compiled, Error> {
        compile(self)
    }
}

/// Run the optimiser's pass pipeline (common subexpressions, constant folding, contraction
/// reordering, dead code) on `f`.
pub fn optimize(f: &Function) -> Result<Function, Error> {
    Ok(jjt_opt::optimize(f, |_, _| {})?.0)
}
pub use jjt_ad::{
    Examples, Form, KernelSpec, Mode, Role, Strategy, jvp, linearize, promote_f64, vjp, vmap,
};

/// Any error the facade can return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Tracing a closure failed.
    #[error("{0}")]
    Trace(#[from] TraceError),
    /// Building a graph failed.
    #[error("{0}")]
    Ir(#[from] IrError),
    /// A transform failed.
    #[error("{0}")]
    Ad(#[from] jjt_ad::AdError),
    /// Evaluation failed.
    #[error("{0}")]
    Eval(#[from] EvalError),
    /// A model file could not be read or parsed.
    #[error("{0}")]
    Model(#[from] jjt_import::LoadError),
    /// Compiling or calling native code failed.
    #[error("{0}")]
    Jit(#[from] JitError),
    /// A tensor whose data does not match its shape.
    #[error("{0}")]
    Shape(#[from] jjt_ir::tensor::TensorShapeError),
    /// [`fix_inputs`] given a value whose type is not the input's.
    #[error("input `{name}` is {expected}, the value given is {actual}")]
    FixedType {
        /// The input.
        name: String,
        /// Its type.
        expected: TensorType,
        /// The value's type.
        actual: TensorType,
    },
    /// [`StagedKernel::prepare`] or [`Prepared::eval`] called with the wrong number of tensors.
    #[error("`{call}` takes {expected} {what}, got {got}")]
    ArgumentCount {
        /// The method called: `prepare` or `eval`.
        call: &'static str,
        /// How many tensors it takes.
        expected: usize,
        /// What they are: shared or per-side inputs.
        what: &'static str,
        /// How many it was given.
        got: usize,
    },
}

/// The price `auto` gives a candidate kernel: its predicted seconds per call with the default
/// JIT options ([`jjt_jit::predict`]), or infinity if the JIT cannot plan it.
pub fn predicted_seconds(g: &Function) -> f64 {
    jjt_jit::predict(g, &jjt_jit::Options::default()).map_or(f64::INFINITY, |p| p.seconds())
}

/// Builds the graph of K = J(p1)·J(p2)ᵀ (or of v ↦ K·v) for a function.
///
/// ```
/// use jjt::{DType, Kernel, Mode, trace};
/// let f = trace("f", |t| {
///     let x = t.input("x", DType::F64, [3]);
///     let w = t.input("w", DType::F64, [2, 3]);
///     w.matmul(&x).tanh()
/// })?;
/// // The NTK with respect to the parameters w, for batches of 4 and 5 examples.
/// let k = Kernel::new(&f).wrt(["w"]).shared(["w"]).batch(4, 5).mode(Mode::Trace).build()?;
/// assert_eq!(k.output_type().unwrap().to_string(), "f64[4,5]");
/// # Ok::<(), jjt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Kernel<'f> {
    f: &'f Function,
    spec: KernelSpec,
    auto: bool,
}

impl<'f> Kernel<'f> {
    /// A kernel of `f`; set at least [`Kernel::wrt`].
    pub fn new(f: &'f Function) -> Kernel<'f> {
        Kernel { f, spec: KernelSpec::default(), auto: true }
    }

    /// The inputs J is taken with respect to.
    pub fn wrt<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.spec.wrt = names.into_iter().map(Into::into).collect();
        self
    }

    /// The inputs with one value for both sides (e.g. network parameters); the others are
    /// per-side.
    pub fn shared<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.spec.shared = names.into_iter().map(Into::into).collect();
        self
    }

    /// Output mode (default [`Mode::Full`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.spec.mode = mode;
        self
    }

    /// Strategy. Without this call, [`Kernel::compile`] builds every strategy, optimises each
    /// and keeps the one the backend's cost model ([`jjt_jit::predict`]) predicts fastest
    /// (`auto`); [`Kernel::build`] uses `ntvp`.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.spec.strategy = strategy;
        self.auto = false;
        self
    }

    /// Which example pairs a batched kernel computes (default [`Examples::All`]).
    pub fn examples(mut self, examples: Examples) -> Self {
        self.spec.examples = examples;
        self
    }

    /// Per-side inputs carry a leading batch axis of `b1` examples on side 1 and `b2` on side 2.
    pub fn batch(mut self, b1: usize, b2: usize) -> Self {
        self.spec.batch = Some((b1, b2));
        self
    }

    /// The specification built so far.
    pub fn spec(&self) -> &KernelSpec {
        &self.spec
    }

    /// The inputs of the kernel or of its operator form, in order, with what each stands for.
    pub fn layout(&self, form: Form) -> Result<Vec<(String, Role, TensorType)>, Error> {
        Ok(self.spec.layout(self.f, form)?)
    }

    /// The graph of K(p1, p2): inputs as in [`Kernel::layout`].
    pub fn build(&self) -> Result<Function, Error> {
        Ok(self.spec.kernel(self.f)?)
    }

    /// The graph of v ↦ K(p1, p2)·v, which never materialises J.
    pub fn build_apply(&self) -> Result<Function, Error> {
        Ok(self.spec.apply(self.f)?)
    }

    /// The graph of K that [`Kernel::compile`] compiles: with the automatic strategy the
    /// cheapest optimised candidate, else the chosen strategy's graph through [`optimize`].
    pub fn optimized(&self) -> Result<Function, Error> {
        if !self.auto {
            return optimize(&self.build()?);
        }
        let choice = jjt_opt::auto::choose_with(&self.spec, self.f, &predicted_seconds).map_err(
            |e| match e {
                jjt_opt::auto::AutoError::Ad(e) => Error::Ad(e),
                jjt_opt::auto::AutoError::Ir(e) => Error::Ir(e),
            },
        )?;
        Ok(choice.kernel)
    }

    /// K(p1, p2), optimised ([`optimize`]) and compiled to native code: `call` it with the
    /// inputs of [`Kernel::layout`].
    pub fn compile(&self) -> Result<Compiled, Error> {
        let graph = self.optimized()?;
        Ok(jjt_jit::compile(&graph)?)
    }

    /// K(p1, p2), optimised and compiled in two stages (see [`StagedKernel`]).
    pub fn compile_staged(&self) -> Result<StagedKernel, Error> {
        let graph = self.optimized()?;
        let roles: Vec<Role> = self.layout(Form::Kernel)?.into_iter().map(|(_, r, _)| r).collect();
        let shared: Vec<bool> = roles.iter().map(|r| matches!(r, Role::Shared(_))).collect();
        let st = jjt_opt::stage::stage(&graph, &shared)?;
        Ok(StagedKernel {
            prepare: st.prepare.as_ref().map(jjt_jit::compile).transpose()?,
            call: jjt_jit::compile(&st.call)?,
            prepare_inputs: st.prepare_inputs,
            call_inputs: st.call_inputs,
            roles,
        })
    }

    /// v ↦ K(p1, p2)·v, optimised and compiled to native code.
    pub fn compile_apply(&self) -> Result<Compiled, Error> {
        Ok(jjt_jit::compile(&optimize(&self.build_apply()?)?)?)
    }
}

/// `f` with some inputs replaced by constants: `values` pairs input names with their values
/// (of the input's type). The result takes the other inputs, in `f`'s order, and the optimiser
/// folds whatever depends only on the fixed ones, e.g. a model's weights that are neither
/// differentiated nor given per call.
///
/// ```
/// use jjt::{DType, Tensor, trace};
/// let f = trace("f", |t| {
///     let x = t.input("x", DType::F64, [2]);
///     let w = t.input("w", DType::F64, [2]);
///     (x * w).sum_all()
/// })?;
/// let g = jjt::fix_inputs(&f, &[("w", &Tensor::f64([2], vec![3.0, 4.0])?)])?;
/// assert_eq!(g.params().len(), 1);
/// let y = jjt::eval(&g, &[Tensor::f64([2], vec![1.0, 1.0])?])?;
/// assert_eq!(y.to_f64_vec(), vec![7.0]);
/// # Ok::<(), jjt::Error>(())
/// ```
pub fn fix_inputs(f: &Function, values: &[(&str, &Tensor)]) -> Result<Function, Error> {
    let mut b = jjt_ir::FunctionBuilder::new(f.name.clone());
    let mut args = Vec::with_capacity(f.params().len());
    for p in f.params() {
        let node = match values.iter().find(|(n, _)| *n == p.name) {
            Some((_, t)) => {
                if t.ty() != p.ty {
                    return Err(Error::FixedType {
                        name: p.name.clone(),
                        expected: p.ty.clone(),
                        actual: t.ty(),
                    });
                }
                b.constant(jjt_ir::ops::Const::npy(format!("{}.npy", p.name), (*t).clone()))?
            }
            None => b.input(&p.name, p.ty.clone())?,
        };
        args.push(node);
    }
    if let Some((name, _)) = values.iter().find(|(n, _)| f.param(n).is_none()) {
        return Err(Error::Ad(jjt_ad::AdError::UnknownInput {
            name: (*name).to_string(),
            function: f.name.clone(),
            inputs: f
                .params()
                .iter()
                .map(|p| format!("{}: {}", p.name, p.ty))
                .collect::<Vec<_>>()
                .join(", "),
            hint: text::did_you_mean(name, f.params().iter().map(|p| p.name.as_str())),
        }));
    }
    let outs = jjt_ad::inline_into(&mut b, f, &args)?;
    let mut g = b.finish_many(outs)?;
    for p in f.params() {
        if let Some(d) = &p.default {
            g.set_default(&p.name, Some(d.clone()));
        }
    }
    Ok(g.pruned())
}

use jjt_ir::random::Mt19937;

/// Evaluate `f` on `inputs` (in signature order) with the reference interpreter.
pub fn eval(f: &Function, inputs: &[Tensor]) -> Result<Tensor, EvalError> {
    jjt_ir::interp::eval(f, inputs)
}

/// Read a model file: jjt's text format (see `docs/format.md`) or StableHLO text exported from
/// JAX, recognised by content ([`jjt_import::detect`]).
pub fn load_model(path: impl AsRef<std::path::Path>) -> Result<Function, jjt_import::LoadError> {
    jjt_import::load(path.as_ref())
}

/// A random tensor too large to allocate.
#[derive(Debug, thiserror::Error)]
#[error("cannot allocate a random tensor of shape {shape}")]
pub struct AllocError {
    /// The requested shape.
    pub shape: Shape,
}

/// NumPy's legacy random stream (`np.random.seed`, `rand`, `randn`), for making the same data
/// a NumPy script would, bit for bit in f64 (f32 values are the f64 draws rounded).
#[derive(Clone, Debug)]
pub struct RandomState {
    mt: Mt19937,
}

impl RandomState {
    /// `np.random.seed(seed)`.
    pub fn new(seed: u32) -> RandomState {
        RandomState { mt: Mt19937::new(seed) }
    }

    /// `np.random.rand(*shape)` in f64.
    pub fn rand_f64(&mut self, shape: impl Into<Shape>) -> Result<Tensor, AllocError> {
        self.fill(DType::F64, shape.into(), Mt19937::next_f64)
    }

    /// `np.random.rand(*shape).astype(np.float32)`.
    pub fn rand_f32(&mut self, shape: impl Into<Shape>) -> Result<Tensor, AllocError> {
        self.fill(DType::F32, shape.into(), Mt19937::next_f64)
    }

    /// `np.random.randn(*shape)` in f64.
    pub fn randn_f64(&mut self, shape: impl Into<Shape>) -> Result<Tensor, AllocError> {
        self.fill(DType::F64, shape.into(), Mt19937::next_gauss)
    }

    /// `np.random.randn(*shape).astype(np.float32)`.
    pub fn randn_f32(&mut self, shape: impl Into<Shape>) -> Result<Tensor, AllocError> {
        self.fill(DType::F32, shape.into(), Mt19937::next_gauss)
    }

    /// Skip `n` uniform draws (what `rand` of `n` elements would consume).
    pub fn skip_uniform(&mut self, n: usize) {
        for _ in 0..n {
            self.mt.next_f64();
        }
    }

    fn fill(
        &mut self,
        dtype: DType,
        shape: Shape,
        mut next: impl FnMut(&mut Mt19937) -> f64,
    ) -> Result<Tensor, AllocError> {
        let n = shape.checked_numel().ok_or_else(|| AllocError { shape: shape.clone() })?;
        let mut values: Vec<f64> = Vec::new();
        values.try_reserve_exact(n).map_err(|_| AllocError { shape: shape.clone() })?;
        values.extend((0..n).map(|_| next(&mut self.mt)));
        let ty = TensorType { dtype, shape };
        Tensor::from_f64(&ty, &values).map_err(|_| AllocError { shape: ty.shape })
    }
}
