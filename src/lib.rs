//! jjt computes products of Jacobians, K = J(p1)·J(p2)ᵀ, and the operator v ↦ J(p1)·J(p2)ᵀ·v,
//! without building J. It is a compiler: a function is traced from a Rust closure (or parsed
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

#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
    Examples, KernelSpec, Mode, Role, Strategy, jvp, linearize, promote_f64, vjp, vmap,
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
    Model(#[from] text::ModelFileError),
    /// Compiling or calling native code failed.
    #[error("{0}")]
    Jit(#[from] JitError),
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
    /// and keeps the cheapest by the cost model (`auto`); [`Kernel::build`] uses `ntvp`.
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

    /// The kernel's inputs in order, with what each stands for.
    pub fn layout(&self, apply: bool) -> Result<Vec<(String, Role, TensorType)>, Error> {
        Ok(self.spec.layout(self.f, apply)?)
    }

    /// The graph of K(p1, p2): inputs as in [`Kernel::layout`].
    pub fn build(&self) -> Result<Function, Error> {
        Ok(self.spec.kernel(self.f)?)
    }

    /// The graph of v ↦ K(p1, p2)·v, which never materialises J.
    pub fn build_apply(&self) -> Result<Function, Error> {
        Ok(self.spec.apply(self.f)?)
    }

    /// K(p1, p2), optimised ([`optimize`]) and compiled to native code: `call` it with the
    /// inputs of [`Kernel::layout`].
    pub fn compile(&self) -> Result<Compiled, Error> {
        let graph = if self.auto {
            jjt_opt::auto::choose(&self.spec, self.f)
                .map_err(|e| match e {
                    jjt_opt::auto::AutoError::Ad(e) => Error::Ad(e),
                    jjt_opt::auto::AutoError::Ir(e) => Error::Ir(e),
                })?
                .kernel
        } else {
            optimize(&self.build()?)?
        };
        Ok(jjt_jit::compile(&graph)?)
    }

    /// v ↦ K(p1, p2)·v, optimised and compiled to native code.
    pub fn compile_apply(&self) -> Result<Compiled, Error> {
        Ok(jjt_jit::compile(&optimize(&self.build_apply()?)?)?)
    }
}

use jjt_ir::random::Mt19937;

/// Evaluate `f` on `inputs` (in signature order) with the reference interpreter.
pub fn eval(f: &Function, inputs: &[Tensor]) -> Result<Tensor, EvalError> {
    jjt_ir::interp::eval(f, inputs)
}

/// Read and parse a model file (see `docs/format.md`).
pub fn load_model(path: impl AsRef<std::path::Path>) -> Result<Function, text::ModelFileError> {
    text::parse_file(path.as_ref())
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
