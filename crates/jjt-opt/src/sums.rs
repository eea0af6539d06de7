//! Sums that ride along products: `sum(x, axes=S)`, where `x` (or a transpose of it, or of a
//! reshape of it that only inserts or drops unit axes, as models exported from JAX write a
//! convolution's kernel gradient: the CNN's export 53.9 → 50.4 ms) is an operand of a
//! `dot_general` that contracts exactly the axes `S` of `x`, becomes one more column of that
//! product. The other operand `w` is brought to `[batch…, free, contracted…]`
//! (its free axes flattened; `[batch…, contracted…, free]` when the free axes hold more
//! elements than the contracted ones, so that the copy this rearrangement costs moves long
//! runs: a convolution's patches as 27 columns of 1024 positions, 0.5 → 0.065 ms per side on
//! the zoo's CNN, where positions-last copied runs of 3) and a column of ones is appended to
//! its free axis; the product
//! then computes `Σ_S x·w` for every column of `w` and, in the new column, `Σ_S x·1`, the sum.
//! Both the product's old result and the sum are slices of the new result (reshaped, and the
//! sum transposed to `x`'s order of axes).
//!
//! Why: in a convolution's backward pass the bias gradient sums the layer's cotangent over
//! positions, and the kernel gradient contracts the same cotangent with the input's patches
//! over the same positions. Apart, the sum is one more pass over the largest array of the
//! kernel (on the zoo's CNN, `[16,10,32,32,32]` per side: 21 MB read at memory speed, about
//! 1.4 ms of a 75 ms call per side); along the product it is one more column of a product
//! whose 27 columns fill one 32-wide register tile anyway.
//!
//! A sum rides only when it is worth it: `x` has at least [`MIN_ELEMS`] elements, `w` (which
//! the new product reads as a copy with the ones appended) has at most a quarter of `x`'s, the
//! product's columns end inside a vector ([`VECTOR_BYTES`]: 27 columns of f32 leave room for
//! a 28th, while a 65th column after 64 would add a vector to every row of the product; on the
//! zoo's mixer, whose products have 32, 48 and 64 columns, riding sums made the call 15 %
//! slower), and `w` does not depend on the sum. Each product carries at most one sum; float
//! dtypes only. The product's old result becomes a slice of the wider one, its rows one
//! column apart from their neighbours' (a product that reads it then packs it: on the CNN a
//! Gram product of the first layer's kernel gradients, 0.2 → 0.5 ms, against 2.8 ms saved).
//!
//! Preserves: values up to reassociation of the sums (the sum is computed in the product's
//! order of its terms, `x·1` exactly `x`; the product's other columns are the same sums, though
//! the wider product may take another kernel).

use std::collections::{HashMap, HashSet};

use jjt_ir::ops::{DotGeneral, Reduce, ReduceKind, Transpose};
use jjt_ir::types::is_float;
use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Op, Shape, TensorType};

use crate::Side;

/// Elements of the summed operand from which a sum rides along a product.
pub const MIN_ELEMS: usize = 1 << 16;

/// Bytes of the backend's widest vector (AVX-512): a product whose columns do not fill whole
/// vectors has room for one more in its last, partly filled vector.
pub const VECTOR_BYTES: usize = 64;

/// A sum and the product it rides along.
#[derive(Clone, Debug)]
struct Ride {
    /// The `sum` node.
    sum: NodeId,
    /// The `dot_general` node.
    dot: NodeId,
    /// The product's operand that is `x` or a view of it.
    side: Side,
    /// For each axis of that operand, the axis of `x` it is (none for a unit axis that a
    /// reshape inserted).
    perm: Vec<Option<usize>>,
}

/// Let the sums of `f` that qualify ride along products; returns the new function and how
/// many sums ride.
pub fn sums(f: &Function) -> Result<(Function, usize), IrError> {
    sums_with(f, MIN_ELEMS)
}

/// [`sums`] with another size threshold for the summed operand (tests use 0, to exercise the
/// pass on small graphs).
pub fn sums_with(f: &Function, min_elems: usize) -> Result<(Function, usize), IrError> {
    let order = f.topo_order();
    let rides = find(f, &order, min_elems);
    if rides.is_empty() {
        return Ok((f.clone(), 0));
    }
    // The sum is built from the product's operands: it comes after them.
    let extra: Vec<(NodeId, Vec<NodeId>)> =
        rides.iter().map(|r| (r.sum, f.operands(r.dot))).collect();
    let Some(order) = crate::order_with(f, &order, &extra) else {
        return Ok((f.clone(), 0));
    };
    let by_sum: HashMap<NodeId, usize> =
        rides.iter().enumerate().map(|(i, r)| (r.sum, i)).collect();
    let by_dot: HashMap<NodeId, usize> =
        rides.iter().enumerate().map(|(i, r)| (r.dot, i)).collect();
    let mut b = FunctionBuilder::new(f.name.clone());
    let mut r = crate::replay_inputs(f, &mut b)?;
    // Per ride: the product's replacement and the sum's, built when the first of them is met.
    let mut built: HashMap<usize, (NodeId, NodeId)> = HashMap::new();
    r.run_in(&mut b, order, |b, v| {
        let (i, want_sum) = match (by_sum.get(&v.id), by_dot.get(&v.id)) {
            (Some(&i), _) => (i, true),
            (None, Some(&i)) => (i, false),
            (None, None) => return v.copy(b),
        };
        let pair = match built.get(&i) {
            Some(&p) => p,
            None => {
                let ride = &rides[i];
                let ops = f.operands(ride.dot);
                let a = v.get(ops[0])?;
                let c = v.get(ops[1])?;
                let p = build(f, b, ride, a, c)?;
                built.insert(i, p);
                p
            }
        };
        Ok(if want_sum { pair.1 } else { pair.0 })
    })?;
    Ok((b.finish_many(r.outputs()?)?.pruned(), rides.len()))
}

/// The sums of `f` that would ride along a product if [`sums`] ran on `f` now (reordering
/// leaves them be: such a sum costs one column of its product, however cheap its own reading).
pub(crate) fn riding(f: &Function) -> HashSet<NodeId> {
    find(f, &f.topo_order(), MIN_ELEMS).into_iter().map(|r| r.sum).collect()
}

/// The sums of `f` that ride, each with its product (in `order`, a product taken once).
fn find(f: &Function, order: &[NodeId], min_elems: usize) -> Vec<Ride> {
    let mut taken: HashSet<NodeId> = HashSet::new();
    let mut out = Vec::new();
    for &s in order {
        let Some(node) = f.node(s) else { continue };
        let Op::Reduce(Reduce { kind: ReduceKind::Sum, axes }) = &node.op else { continue };
        let [x] = f.operands(s)[..] else { continue };
        let Some(xt) = f.node(x).map(|n| n.ty.clone()) else { continue };
        let elems: usize = xt.shape.dims().iter().product();
        if !is_float(xt.dtype) || elems < min_elems || axes.is_empty() {
            continue;
        }
        // `x` itself, its reshapes that only insert or drop unit axes (as exported models
        // write them), and the transposes of both, with the axis of `x` each of their axes is.
        let xd = xt.shape.dims();
        let mut bases = vec![(x, (0..xt.rank()).map(Some).collect::<Vec<Option<usize>>>())];
        for u in f.users(x) {
            if let Some(map) = unit_reshape(f, u, xd) {
                bases.push((u, map));
            }
        }
        let mut views = bases.clone();
        for (base, map) in &bases {
            for u in f.users(*base) {
                if let Some(Op::Transpose(Transpose { perm })) = f.node(u).map(|n| &n.op) {
                    views.push((u, perm.iter().map(|&a| map[a]).collect()));
                }
            }
        }
        // Summed unit axes of `x` need no view axis.
        let want: HashSet<usize> = axes.iter().copied().filter(|&a| xd[a] != 1).collect();
        let found = views.iter().find_map(|(op, perm)| {
            f.users(*op).into_iter().find_map(|d| {
                let Some(Op::DotGeneral(dims)) = f.node(d).map(|n| &n.op) else { return None };
                let ops = f.operands(d);
                if taken.contains(&d) || ops[0] == ops[1] {
                    return None;
                }
                let side = if ops[0] == *op { Side::Lhs } else { Side::Rhs };
                let (contract, _) = side.axes(dims);
                let got: HashSet<usize> =
                    contract.iter().filter_map(|&a| perm[a]).filter(|&a| xd[a] != 1).collect();
                let w = ops[side.other().slot()];
                let wt = &f.node(w)?.ty;
                let w_elems: usize = wt.shape.dims().iter().product();
                let (w_contract, w_batch) = side.other().axes(dims);
                let cols: usize = (0..wt.rank())
                    .filter(|a| !w_contract.contains(a) && !w_batch.contains(a))
                    .map(|a| wt.shape.dims()[a])
                    .product();
                let lanes = VECTOR_BYTES / wt.dtype.item_size();
                let fits = got == want
                    && 4 * w_elems <= elems
                    && !cols.is_multiple_of(lanes)
                    && !f.backward_closure([w]).contains(s);
                fits.then(|| Ride { sum: s, dot: d, side, perm: perm.clone() })
            })
        });
        if let Some(ride) = found {
            taken.insert(ride.dot);
            out.push(ride);
        }
    }
    out
}

/// For a reshape `u` of a value of shape `xd` that only inserts or drops unit axes, the axis
/// of the value each of `u`'s axes is (none for a unit axis; the value's own unit axes map to
/// `u`'s unit axes in order where they can).
fn unit_reshape(f: &Function, u: NodeId, xd: &[usize]) -> Option<Vec<Option<usize>>> {
    let node = f.node(u)?;
    let Op::Reshape(_) = &node.op else { return None };
    let ud = node.ty.shape.dims();
    let big = |d: &[usize]| -> Vec<usize> { d.iter().copied().filter(|&n| n != 1).collect() };
    if big(ud) != big(xd) {
        return None;
    }
    let mut xi = (0..xd.len()).filter(|&a| xd[a] != 1);
    Some(ud.iter().map(|&d| if d == 1 { None } else { xi.next() }).collect())
}

/// The new product of `ride` (operands already replayed as `lhs` and `rhs`), and the nodes
/// standing for the old product and for the sum.
fn build(
    f: &Function,
    b: &mut FunctionBuilder,
    ride: &Ride,
    lhs: NodeId,
    rhs: NodeId,
) -> Result<(NodeId, NodeId), IrError> {
    let Some(Op::DotGeneral(dims)) = f.node(ride.dot).map(|n| &n.op) else {
        return Err(IrError::UnknownNode(ride.dot));
    };
    let (x, w) = match ride.side {
        Side::Lhs => (lhs, rhs),
        Side::Rhs => (rhs, lhs),
    };
    let (x_contract, x_batch) = ride.side.axes(dims);
    let (w_contract, w_batch) = ride.side.other().axes(dims);
    let wt = b.ty(w)?.clone();
    let wd = wt.shape.dims().to_vec();
    let w_free: Vec<usize> =
        (0..wd.len()).filter(|a| !w_contract.contains(a) && !w_batch.contains(a)).collect();
    // w as [batch…, free, contracted…] (the contracted axes innermost, when they hold at least
    // as many elements as the free ones: the copy that transposes w then moves runs along them,
    // a convolution's 32 positions of a row rather than its 3 window columns) or as
    // [batch…, contracted…, free], with a column of ones after its free columns.
    let (nb, nc) = (w_batch.len(), w_contract.len());
    let cols: usize = w_free.iter().map(|&a| wd[a]).product();
    let depth: usize = w_contract.iter().map(|&a| wd[a]).product();
    let inner = depth >= cols;
    let perm: Vec<usize> = if inner {
        w_batch.iter().chain(&w_free).chain(w_contract).copied().collect()
    } else {
        w_batch.iter().chain(w_contract).chain(&w_free).copied().collect()
    };
    let w = if perm.iter().enumerate().all(|(i, &p)| i == p) { w } else { b.transpose(w, &perm)? };
    let batch_dims: Vec<usize> = w_batch.iter().map(|&a| wd[a]).collect();
    let contract_dims: Vec<usize> = w_contract.iter().map(|&a| wd[a]).collect();
    let with = |n: usize| {
        if inner {
            [batch_dims.clone(), vec![n], contract_dims.clone()].concat()
        } else {
            [batch_dims.clone(), contract_dims.clone(), vec![n]].concat()
        }
    };
    let flat = b.reshape(w, Shape(with(cols)))?;
    let ones = b.full(TensorType::new(wt.dtype, with(1)), 1.0)?;
    let col_axis = if inner { nb } else { nb + nc };
    let w = b.concat(&[flat, ones], col_axis as i64)?;
    let new_batch: Vec<usize> = (0..nb).collect();
    let first = if inner { nb + 1 } else { nb };
    let new_contract: Vec<usize> = (first..first + nc).collect();
    let dims2 = match ride.side {
        Side::Lhs => DotGeneral {
            lhs_contract: x_contract.to_vec(),
            rhs_contract: new_contract,
            lhs_batch: x_batch.to_vec(),
            rhs_batch: new_batch,
        },
        Side::Rhs => DotGeneral {
            lhs_contract: new_contract,
            rhs_contract: x_contract.to_vec(),
            lhs_batch: new_batch,
            rhs_batch: x_batch.to_vec(),
        },
    };
    let (l, r) = match ride.side {
        Side::Lhs => (x, w),
        Side::Rhs => (w, x),
    };
    let prod = b.dot_general(l, r, dims2)?;
    let pd = b.ty(prod)?.shape.dims().to_vec();
    // The new column's axis in the product: after x's free axes (x on the left), or right
    // after the batch axes (x on the right).
    let axis = match ride.side {
        Side::Lhs => pd.len() - 1,
        Side::Rhs => nb,
    };
    let cut = |b: &mut FunctionBuilder, lo: usize, hi: usize| {
        let mut start = vec![0; pd.len()];
        let mut stop = pd.clone();
        start[axis] = lo;
        stop[axis] = hi;
        b.slice(prod, &start, &stop, &vec![1; pd.len()])
    };
    let old = cut(b, 0, cols)?;
    let old_shape = f.node(ride.dot).ok_or(IrError::UnknownNode(ride.dot))?.ty.shape.clone();
    let old = b.reshape(old, old_shape)?;
    let sum = cut(b, cols, cols + 1)?;
    let mut kept: Vec<usize> = pd.clone();
    kept.remove(axis);
    let sum = b.reshape(sum, Shape(kept))?;
    // The sum's axes are the batch axes then x's free axes (in the operand's order), each an
    // axis of x or a unit axis a reshape inserted (dropped here); the sum's result has x's
    // kept axes in x's order (its unit axes put back by the last reshape).
    let xr = ride.perm.len();
    let x_free = (0..xr).filter(|a| !x_contract.contains(a) && !x_batch.contains(a));
    let axes: Vec<usize> = x_batch.iter().copied().chain(x_free).collect();
    let sd = b.ty(sum)?.shape.dims().to_vec();
    let (of_x, dims): (Vec<usize>, Vec<usize>) =
        axes.iter().enumerate().filter_map(|(i, &a)| ride.perm[a].map(|x| (x, sd[i]))).unzip();
    let sum = if dims.len() == sd.len() { sum } else { b.reshape(sum, Shape(dims))? };
    let mut sorted = of_x.clone();
    sorted.sort_unstable();
    let back: Vec<usize> =
        sorted.iter().map(|a| of_x.iter().position(|b| b == a).unwrap_or(0)).collect();
    let sum =
        if back.iter().enumerate().all(|(i, &p)| i == p) { sum } else { b.transpose(sum, &back)? };
    let want = f.node(ride.sum).ok_or(IrError::UnknownNode(ride.sum))?.ty.shape.clone();
    let sum = if b.ty(sum)?.shape == want { sum } else { b.reshape(sum, want)? };
    Ok((old, sum))
}
