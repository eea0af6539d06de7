//! Constant folding: every node whose operands are all constants is evaluated once, with the
//! interpreter's own evaluation, and replaced by a constant. Results holding NaN are not
//! folded (folding must not invent or hide a NaN the program would compute at run time), and
//! neither are results larger than their operands together (a broadcast of a scalar stays a
//! broadcast: the JIT splats it for free).
//!
//! Preserves: values bit for bit (the same evaluation, done earlier).

use std::collections::HashMap;

use jjt_ir::ops::{Const, EvalArgs};
use jjt_ir::{Data, Function, FunctionBuilder, IrError, NodeId, Op, Tensor};

/// Statistics of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoldStats {
    /// Nodes replaced by constants.
    pub folded: usize,
    /// Lookups answered from the [`FoldCache`].
    pub cached: usize,
}

fn as_const(t: &Tensor) -> Const {
    let v = t.to_f64_vec();
    if !v.is_empty() && v.iter().all(|x| x.to_bits() == v[0].to_bits()) {
        Const::full(t.ty(), v[0])
    } else {
        Const::literal(t.ty(), &v)
    }
}

/// Whether `t` holds a NaN (read in place: a large result is not copied to f64).
fn has_nan(t: &Tensor) -> bool {
    match &t.data {
        Data::F32(v) => v.iter().any(|x| x.is_nan()),
        Data::F64(v) => v.iter().any(|x| x.is_nan()),
        Data::I32(_) | Data::Bool(_) => false,
    }
}

/// Folded values by the structure of the constant expression that computed them, shared by
/// several runs of [`fold_with`] (`auto` optimises one kernel per strategy, and the
/// candidates fold the same products of constants). A key is the expression printed in full
/// (ops with their attributes, constants with their seeds or values); expressions whose key
/// would exceed [`MAX_KEY`] bytes (large literal constants) are not cached.
#[derive(Debug, Default)]
pub struct FoldCache {
    /// `None`: evaluated and found not foldable (NaN, or larger than its operands).
    values: HashMap<String, Option<Tensor>>,
    /// Lookups answered from the cache.
    pub hits: usize,
}

/// Longest cache key, in bytes.
pub const MAX_KEY: usize = 4096;

/// Fold constant subgraphs of `f`.
pub fn fold(f: &Function) -> Result<(Function, FoldStats), IrError> {
    fold_with(f, &mut FoldCache::default())
}

/// [`fold`], reusing and filling `cache`.
pub fn fold_with(f: &Function, cache: &mut FoldCache) -> Result<(Function, FoldStats), IrError> {
    let mut stats = FoldStats::default();
    // The cache key of each constant-valued node (None: too long to cache).
    let mut keys: HashMap<NodeId, Option<String>> = HashMap::new();
    let mut b = FunctionBuilder::new(f.name.clone());
    // Values of constants, computed only when a consumer is folded (random and literal
    // constants can be large).
    let mut values: HashMap<NodeId, Tensor> = HashMap::new();
    let mut consts: HashMap<NodeId, Const> = HashMap::new();
    // Uses of each node not yet visited: a value is dropped after its last use, so a large
    // constant (a 128 MB random matrix) is not kept alive past the products that read it.
    let mut uses: HashMap<NodeId, usize> = HashMap::new();
    for n in f.node_ids() {
        for o in f.operands(n) {
            *uses.entry(o).or_default() += 1;
        }
    }
    let hits_before = cache.hits;
    let mut r = crate::replay_inputs(f, &mut b)?;
    r.run(
        &mut b,
        |_| true,
        |b, v| {
            let (n, node) = (v.id, v.node);
            let ops = f.operands(n);
            let new = match &node.op {
                Op::Const(c) => {
                    consts.insert(n, c.clone());
                    // A constant holding its values prints them all: decide from its size first,
                    // so a large one is never formatted (each value takes at least two bytes).
                    let holds_values = matches!(c, Const::Literal { .. } | Const::Npy { .. });
                    let key = if holds_values && c.ty().numel().saturating_mul(2) > MAX_KEY {
                        None
                    } else {
                        Some(format!("{c:?}")).filter(|k| k.len() <= MAX_KEY)
                    };
                    keys.insert(n, key);
                    b.constant(c.clone())?
                }
                op if !ops.is_empty()
                    && ops.iter().all(|o| values.contains_key(o) || consts.contains_key(o)) =>
                {
                    let parts: Option<Vec<&str>> =
                        ops.iter().map(|o| keys.get(o).and_then(|k| k.as_deref())).collect();
                    let key = parts
                        .map(|p| format!("{op:?}({})", p.join(",")))
                        .filter(|k| k.len() <= MAX_KEY);
                    let cached = key.as_ref().and_then(|k| cache.values.get(k)).cloned();
                    let folded = match cached {
                        Some(v) => {
                            cache.hits += 1;
                            v
                        }
                        // A result larger than its operands is not folded: decided from the
                        // types, before evaluating (it could be too large to allocate).
                        None if node.ty.numel()
                            > ops
                                .iter()
                                .filter_map(|o| f.node(*o).map(|x| x.ty.numel()))
                                .sum::<usize>()
                                .max(1) =>
                        {
                            None
                        }
                        None => {
                            for o in &ops {
                                if !values.contains_key(o) {
                                    values.insert(*o, consts[o].value());
                                }
                            }
                            let args: Vec<&Tensor> = ops.iter().map(|o| &values[o]).collect();
                            let in_elems: usize = args.iter().map(|t| t.numel()).sum();
                            let v = op
                                .rule()
                                .eval(EvalArgs { x: &args, out: &node.ty, inputs: &[] })
                                .ok()
                                .filter(|t| t.numel() <= in_elems.max(1) && !has_nan(t));
                            if let Some(k) = &key {
                                cache.values.insert(k.clone(), v.clone());
                            }
                            v
                        }
                    };
                    keys.insert(n, key);
                    match folded {
                        Some(t) => {
                            stats.folded += 1;
                            let c = as_const(&t);
                            consts.insert(n, c.clone());
                            values.insert(n, t);
                            b.constant(c)?
                        }
                        None => v.copy(b)?,
                    }
                }
                _ => v.copy(b)?,
            };
            for o in &ops {
                if let Some(u) = uses.get_mut(o) {
                    *u -= 1;
                    if *u == 0 {
                        values.remove(o);
                    }
                }
            }
            Ok::<_, IrError>(new)
        },
    )?;
    stats.cached = cache.hits - hits_before;
    Ok((b.finish_many(r.outputs()?)?.pruned(), stats))
}
