//! `--strategy auto`: build the kernel with every strategy, optimise each, and keep the one the
//! cost model prices lowest (multiply-adds per call; peak live bytes break near-ties within
//! 10 %). The operator form (K·v) has one strategy, so it is only optimised.

use jjt_ad::{KernelSpec, Strategy};
use jjt_ir::{Function, IrError};

use crate::cost::{Cost, cost};

/// The chosen kernel.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The optimised kernel graph.
    pub kernel: Function,
    /// The strategy it was built with.
    pub strategy: Strategy,
    /// Its cost.
    pub cost: Cost,
    /// The cost of every candidate, for reports.
    pub candidates: Vec<(Strategy, Cost)>,
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

/// Build, optimise and price the kernel of `f` with each strategy; keep the cheapest.
pub fn choose(spec: &KernelSpec, f: &Function) -> Result<Choice, AutoError> {
    let mut best: Option<Choice> = None;
    let mut candidates = Vec::new();
    // The candidates fold the same products of constants (A·Aᵀ, say): once is enough.
    let mut folds = crate::fold::FoldCache::default();
    for strategy in [Strategy::Ntvp, Strategy::Jc] {
        let k = KernelSpec { strategy, ..spec.clone() }.kernel(f)?;
        let (opt, _) = crate::optimize_with(&k, |_, _| {}, &mut folds)?;
        let c = cost(&opt);
        candidates.push((strategy, c.clone()));
        let better = match &best {
            None => true,
            Some(b) => {
                c.flops < 0.9 * b.cost.flops
                    || (c.flops <= 1.1 * b.cost.flops && c.peak_bytes < b.cost.peak_bytes)
            }
        };
        if better {
            best = Some(Choice { kernel: opt, strategy, cost: c, candidates: vec![] });
        }
    }
    let mut b = best.ok_or(jjt_ad::AdError::NoWrt)?;
    b.candidates = candidates;
    Ok(b)
}
