//! `--strategy auto`: build the kernel with every strategy, optimise each, and keep the one
//! priced lowest. [`choose_with`] takes the price as a function of the optimised graph, so a
//! backend can price candidates by its predicted time (the facade and the CLI pass
//! `jjt_jit::predict`; this crate does not depend on the JIT). [`choose`] prices by the
//! backend-blind [`crate::cost`] model: multiply-adds per call, with peak live bytes breaking
//! near-ties within 10 %. The operator form (K·v) has one strategy, so it is only optimised.

use jjt_ad::{KernelSpec, Strategy};
use jjt_ir::{Function, IrError};

use crate::cost::{Cost, cost};

/// One candidate of the automatic choice.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The strategy it was built with.
    pub strategy: Strategy,
    /// Its graph-level cost.
    pub cost: Cost,
    /// Its price (what the choice minimised: predicted seconds with [`choose_with`] and a
    /// backend's prediction, multiply-adds with [`choose`]).
    pub price: f64,
}

/// The chosen kernel.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The optimised kernel graph.
    pub kernel: Function,
    /// The strategy it was built with.
    pub strategy: Strategy,
    /// Its cost.
    pub cost: Cost,
    /// Every candidate, in the order they were built, for reports.
    pub candidates: Vec<Candidate>,
}

/// Errors of the automatic choice.
#[derive(Debug, thiserror::Error)]
pub enum AutoError {
    /// Building a candidate failed.
    #[error("{0}")]
    Ad(#[from] jjt_ad::AdError),
    /// Optimising a candidate failed.
    #[error("{0}")]
    Ir(#[from] IrError),
}

/// Build, optimise and price the kernel of `f` with each strategy; keep the cheapest by
/// multiply-adds (peak live bytes break near-ties).
pub fn choose(spec: &KernelSpec, f: &Function) -> Result<Choice, AutoError> {
    pick(spec, f, &|_, c| c.flops, &|c, b| {
        c.cost.flops < 0.9 * b.cost.flops
            || (c.cost.flops <= 1.1 * b.cost.flops && c.cost.peak_bytes < b.cost.peak_bytes)
    })
}

/// Build, optimise and price the kernel of `f` with each strategy; keep the one `price`
/// (called on each optimised candidate) finds lowest, the first built at equal prices. A
/// price of infinity or NaN marks a candidate that cannot run (one the backend cannot plan,
/// say); it is kept only if every candidate is priced so.
pub fn choose_with(
    spec: &KernelSpec,
    f: &Function,
    price: &dyn Fn(&Function) -> f64,
) -> Result<Choice, AutoError> {
    pick(spec, f, &|g, _| price(g), &|c, b| {
        c.price < b.price || (b.price.is_nan() && !c.price.is_nan())
    })
}

/// The candidates, priced, and the best by `better(candidate, best so far)`.
fn pick(
    spec: &KernelSpec,
    f: &Function,
    price: &dyn Fn(&Function, &Cost) -> f64,
    better: &dyn Fn(&Candidate, &Candidate) -> bool,
) -> Result<Choice, AutoError> {
    let mut best: Option<(Candidate, Function)> = None;
    let mut candidates = Vec::new();
    // The candidates fold the same products of constants (A·Aᵀ, say): once is enough.
    let mut folds = crate::fold::FoldCache::default();
    for strategy in [Strategy::Ntvp, Strategy::Jc] {
        let k = KernelSpec { strategy, ..spec.clone() }.kernel(f)?;
        let (opt, _) = crate::optimize_with(&k, |_, _| {}, &mut folds)?;
        let c = cost(&opt);
        let cand = Candidate { strategy, price: price(&opt, &c), cost: c };
        candidates.push(cand.clone());
        if best.as_ref().is_none_or(|(b, _)| better(&cand, b)) {
            best = Some((cand, opt));
        }
    }
    let (b, kernel) = best.ok_or(jjt_ad::AdError::NoWrt)?;
    Ok(Choice { kernel, strategy: b.strategy, cost: b.cost, candidates })
}
