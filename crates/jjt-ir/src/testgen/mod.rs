//! One structure-aware random-graph generator for every test (feature `testgen`).
//!
//! [`generate`] builds a small [`Function`] from a [`Draw`] — a seeded generator (proptest's
//! `any::<u64>()`) or a byte stream (the fuzz harness) — and arguments for it. Over its
//! default run ([`default_run`], [`DEFAULT_CASES`] graphs) every name of [`Op::all_names`]
//! appears (a test in `tests/testgen.rs` checks it); inputs and intermediate values are f32 and
//! f64 (bool through comparisons, `select` and `convert`).
//!
//! With [`Config::domains`] every op is kept in its domain: the operand of `log`, `sqrt`,
//! `rsqrt`, a divisor, a `pow` base are made positive (`x² + ½`), `log1p`'s operand is `x²`,
//! and an operand whose magnitude bound would make the result exceed [`Config::limit`] passes through
//! `tanh` first (bounds are tracked per node from the argument range). Without it, graphs reach
//! NaN and infinities; [`finite_count`] counts finite outputs for tests that compare them.
//!
//! Restrictions callers need are parameters of the one generator ([`Config`]): dtypes, sizes,
//! kernel roles (float inputs marked wrt/shared, one output), a weight on contractions, no
//! `npy` constants (for text that is parsed back without the file).
//!
//! [`Op::all_names`]: crate::Op::all_names

mod build;

use std::collections::BTreeSet;

use crate::graph::Function;
use crate::ops::Const;
use crate::random::{Distribution, XorShift64};
use crate::tensor::Tensor;
use crate::types::{DType, TensorType};

/// Graphs in the default run; over them every op name appears.
pub const DEFAULT_CASES: u64 = 256;

/// Where random choices come from: a seeded xorshift64* or a byte string (exhausted bytes read
/// as zero, so every byte string makes a graph).
#[derive(Clone, Debug)]
pub enum Draw<'a> {
    /// A seeded generator.
    Seed(XorShift64),
    /// Bytes and the read position.
    Bytes(&'a [u8], usize),
}

impl<'a> Draw<'a> {
    /// A generator from any seed (0 included).
    pub fn seed(seed: u64) -> Draw<'static> {
        Draw::Seed(XorShift64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1))
    }

    /// A byte stream.
    pub fn bytes(data: &'a [u8]) -> Draw<'a> {
        Draw::Bytes(data, 0)
    }

    fn byte(&mut self) -> u8 {
        match self {
            Draw::Seed(r) => (r.next_u64() >> 32) as u8,
            Draw::Bytes(d, i) => {
                let b = d.get(*i).copied().unwrap_or(0);
                *i += 1;
                b
            }
        }
    }

    /// Uniform in `0..n` (`n > 0`; from one byte for a byte stream).
    pub fn below(&mut self, n: usize) -> usize {
        match self {
            Draw::Seed(r) => r.below(n),
            Draw::Bytes(..) => usize::from(self.byte()) % n,
        }
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.below(2) == 1
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        match self {
            Draw::Seed(r) => r.uniform(lo, hi),
            Draw::Bytes(..) => lo + (hi - lo) * f64::from(self.byte()) / 256.0,
        }
    }

    /// One element of `items` (non-empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A tensor of type `ty` with values uniform in `range` (bool: coin flips).
    pub fn tensor(&mut self, ty: &TensorType, (lo, hi): (f64, f64)) -> Tensor {
        let v: Vec<f64> = (0..ty.numel())
            .map(|_| {
                if ty.dtype == DType::Bool {
                    f64::from(u8::from(self.coin()))
                } else {
                    self.uniform(lo, hi)
                }
            })
            .collect();
        Tensor::from_f64(ty, &v).unwrap_or_else(|_| unreachable!("values match the type"))
    }

    /// Arguments for `f`, uniform in `range`.
    pub fn args(&mut self, f: &Function, range: (f64, f64)) -> Vec<Tensor> {
        f.params().iter().map(|p| self.tensor(&p.ty, range)).collect()
    }
}

/// How many outputs a graph has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outputs {
    /// Up to this many: the last node and other values no node uses (so they stay live).
    /// Nodes no output depends on are dropped.
    Many(usize),
    /// One output with at most this many elements (summed over leading axes until it fits),
    /// depending on every input: the last node times `sin` of the sum of every input's sum,
    /// plus the sums of every other value no node uses (so every node is live).
    Single(usize),
}

/// What the generator may build. [`Config::default`] covers every op.
#[derive(Clone, Debug)]
pub struct Config {
    /// Ops drawn after the inputs: 2 to this many.
    pub max_steps: usize,
    /// Inputs: 1 to this many.
    pub max_inputs: usize,
    /// Float dtypes of inputs and constants (non-empty); `convert` moves between them.
    pub dtypes: Vec<DType>,
    /// Keep every op in its domain and magnitudes below `limit` (see the module docs).
    pub domains: bool,
    /// With `domains`, a bound on every intermediate value's magnitude (at least 10).
    pub limit: f64,
    /// Allow `npy` constants (in memory, with a path no file has: text that holds one does
    /// not parse back).
    pub npy: bool,
    /// Mark inputs wrt/shared for kernels ([`Case::wrt`], [`Case::shared`]): at least one wrt.
    pub roles: bool,
    /// Contractions are drawn this many times as often as any other op (1: as often).
    pub dot_weight: usize,
    /// The simplifier's patterns (`x·1`, `x/1`, `x+(−0)`, `x−0`, `−(−x)`, `select(p,x,x)`) are
    /// drawn this many times as often as any other op (1: as often).
    pub identity_weight: usize,
    /// The outputs.
    pub outputs: Outputs,
    /// Arguments are uniform in this range.
    pub range: (f64, f64),
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_steps: 10,
            max_inputs: 3,
            dtypes: vec![DType::F64, DType::F32],
            domains: false,
            limit: 1e6,
            npy: true,
            roles: false,
            dot_weight: 1,
            identity_weight: 1,
            outputs: Outputs::Many(4),
            range: (-2.0, 2.0),
        }
    }
}

impl Config {
    /// Kernel-ready graphs: f64 inputs marked wrt/shared, one output of at most 6 elements
    /// depending on every input, every op in its domain and values below 100 (finite values
    /// and derivatives of moderate size).
    pub fn kernel() -> Config {
        Config {
            dtypes: vec![DType::F64],
            domains: true,
            limit: 1e2,
            roles: true,
            outputs: Outputs::Single(6),
            range: (-1.0, 1.0),
            ..Config::default()
        }
    }
}

/// A generated graph, arguments for it, and the roles of its inputs.
#[derive(Clone, Debug)]
pub struct Case {
    /// The graph.
    pub f: Function,
    /// Arguments in signature order, uniform in [`Config::range`].
    pub args: Vec<Tensor>,
    /// Inputs differentiated (with [`Config::roles`]; otherwise empty).
    pub wrt: Vec<String>,
    /// Inputs shared by both sides of a kernel (with [`Config::roles`]; otherwise empty).
    pub shared: Vec<String>,
}

/// A random graph and arguments from `draw`.
pub fn generate(draw: &mut Draw, cfg: &Config) -> Case {
    let (f, wrt, shared) = build::graph(draw, cfg);
    let args = draw.args(&f, cfg.range);
    Case { f, args, wrt, shared }
}

/// The default run: [`DEFAULT_CASES`] graphs from seeds `0..DEFAULT_CASES` with
/// [`Config::default`].
pub fn default_run() -> impl Iterator<Item = Case> {
    (0..DEFAULT_CASES).map(|s| generate(&mut Draw::seed(s), &Config::default()))
}

/// The op names of `f`'s nodes.
pub fn op_names(f: &Function) -> BTreeSet<&'static str> {
    f.node_ids().filter_map(|n| f.node(n)).map(|n| n.op.name()).collect()
}

/// How many elements of `outputs` are finite (bool elements count as finite).
pub fn finite_count(outputs: &[Tensor]) -> usize {
    outputs.iter().map(|t| t.to_f64_vec().iter().filter(|v| v.is_finite()).count()).sum()
}

/// A constant of type `ty` named `name` (one of the constant names of [`Op::all_names`]),
/// or `None` for another name or a type it cannot have (`eye` needs rank 2, `iota` rank ≥ 1,
/// random constants a float dtype).
///
/// [`Op::all_names`]: crate::Op::all_names
pub fn constant(name: &str, ty: TensorType, draw: &mut Draw) -> Option<Const> {
    let rank = ty.rank();
    let float = ty.dtype != DType::Bool;
    let random = |dist, draw: &mut Draw| Const::Random {
        ty: ty.clone(),
        dist,
        seed: draw.below(8) as u32,
        offset: draw.below(4) as u64,
    };
    Some(match name {
        "const" => {
            let v = draw.tensor(&ty, (-2.0, 2.0)).to_f64_vec();
            Const::literal(ty, &v)
        }
        "full" if float => Const::full(ty, draw.pick(&[0.5, -1.5, 2.5, 3.0])),
        "zeros" => Const::full(ty, 0.0),
        "ones" if float => Const::full(ty, 1.0),
        "eye" if rank == 2 => Const::Eye { ty },
        "iota" if rank >= 1 && float => Const::Iota { axis: draw.below(rank), ty },
        "uniform" if float => random(Distribution::Uniform, draw),
        "normal" if float => random(Distribution::Normal, draw),
        "npy" => Const::npy("testgen.npy", draw.tensor(&ty, (-2.0, 2.0))),
        _ => return None,
    })
}

/// The seed job's function at any size: `sqrt(A·x / n)` for `x` of `n` elements and `A` the
/// `m × n` draws of `uniform(seed)` (NumPy's `np.random.seed(seed); rand(m, n)`; the job's
/// seed is 1701).
pub fn seed_model(dtype: DType, n: usize, m: usize, seed: u32) -> Function {
    let build = || -> Result<Function, crate::IrError> {
        let mut b = crate::FunctionBuilder::new("seed");
        let x = b.input("x", TensorType::new(dtype, [n]))?;
        let ty = TensorType::new(dtype, [m, n]);
        let a = b.constant(Const::Random { ty, dist: Distribution::Uniform, seed, offset: 0 })?;
        let y = b.matmul(a, x)?;
        let y = b.binary_scalar(crate::Binary::Div, y, n as f64, crate::ScalarSide::Right)?;
        let out = b.unary(crate::Unary::Sqrt, y)?;
        b.finish(out)
    };
    build().unwrap_or_else(|e| unreachable!("the seed model is valid: {e}"))
}
