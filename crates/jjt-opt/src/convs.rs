//! Convolutions of products with a per-channel factor: `conv(x, k)` whose input is, through a
//! reshape that merges its leading axes into the batch axis, a product `a · w` where `w` varies
//! only along some of those leading axes (`o`) and the input features (`c`), and `a` does not
//! vary along `o`, becomes
//!
//! ```text
//! T[b, s, c, i] = Σ_window a[b, s + window, c] · k[window, i, c]     (a grouped convolution, c groups)
//! conv[(b, o), s, i] = Σ_c w[o, c] · T[b, s, c, i]
//! ```
//!
//! Why: the backward pass of a CNN's last convolution before a global pooling and a dense
//! head convolves the cotangent `W[o, c] · mask[b, p, c]` (the head's weight behind the mean,
//! times the relu mask) for every output `o`. As written that is `B·O·S·window·C·I`
//! multiply-adds; factored, `B·S·window·C·I + B·O·S·C·I` (the zoo's CNN: 3.8·10⁸ → 8·10⁷ per
//! side). The factored form writes `T` (`C/O` times the output's size), priced at
//! [`crate::reorder::INTERMEDIATE_MACS`] per element: rewritten only when the total drops.
//!
//! Only ungrouped convolutions with the batch axis first in input and output, and leading
//! axes where those of `o` come all before or all after the others (so the merged batch index
//! is `(b, o)` or `(o, b)` in row-major order), are rewritten.
//!
//! Preserves: values up to reassociation of the sum over window and channels (the same
//! products, summed over the window first).

use jjt_ir::ops::{Conv, ConvDims, DotGeneral};
use jjt_ir::{Binary, DType, Function, FunctionBuilder, IrError, NodeId, Op};

use crate::reorder::INTERMEDIATE_MACS;

/// For each axis of `n`, whether `n` may vary along it (false: every element along the axis is
/// the same, as a broadcast makes it). Conservative: through broadcasts, transposes and
/// reshapes that only insert or drop unit axes; anything else varies along every axis of
/// size above 1.
fn varies(b: &FunctionBuilder, n: NodeId) -> Result<Vec<bool>, IrError> {
    let dims = b.ty(n)?.shape.0.clone();
    let all = || dims.iter().map(|&d| d != 1).collect::<Vec<bool>>();
    Ok(match b.op(n)? {
        Op::BroadcastTo(_) => {
            let o = b.operands(n)?[0];
            let from = b.ty(o)?.shape.0.clone();
            let inner = varies(b, o)?;
            let lead = dims.len() - from.len();
            (0..dims.len())
                .map(|a| a >= lead && !(from[a - lead] == 1 && dims[a] != 1) && inner[a - lead])
                .collect()
        }
        Op::Transpose(t) => {
            let inner = varies(b, b.operands(n)?[0])?;
            t.perm.iter().map(|&p| inner[p]).collect()
        }
        Op::Reshape(_) => {
            let o = b.operands(n)?[0];
            let from = b.ty(o)?.shape.0.clone();
            if !crate::factor::unit_reshape(&from, &dims) {
                return Ok(all());
            }
            let inner = varies(b, o)?;
            let mut kept = (0..from.len()).filter(|&i| from[i] != 1).map(|i| inner[i]);
            dims.iter().map(|&d| d != 1 && kept.next().unwrap_or(true)).collect()
        }
        _ => all(),
    })
}

/// The factored form of convolution `cv` of `x` by `k` (output shape `out`), if it applies.
fn factored(
    b: &mut FunctionBuilder,
    cv: &Conv,
    x: NodeId,
    k: NodeId,
    out: &[usize],
) -> Result<Option<NodeId>, IrError> {
    if cv.feature_groups != 1
        || cv.batch_groups != 1
        || cv.dims.lhs[0] != 0
        || cv.dims.out[0] != 0
        || !matches!(b.ty(x)?.dtype, DType::F32 | DType::F64)
    {
        return Ok(None);
    }
    let Op::Reshape(_) = b.op(x)? else { return Ok(None) };
    let m = b.operands(x)?[0];
    let Op::Binary(Binary::Mul) = b.op(m)? else { return Ok(None) };
    let ops = b.operands(m)?;
    let xd = b.ty(x)?.shape.0.clone();
    let md = b.ty(m)?.shape.0.clone();
    let r = xd.len();
    if md.len() < r || md[md.len() - (r - 1)..] != xd[1..] {
        return Ok(None);
    }
    // Leading axes of m (merged into the batch axis), and m's axis for each of x's others.
    let nl = md.len() - (r - 1);
    let m_axis = |a: usize| nl + a - 1;
    let feat = m_axis(cv.dims.lhs[1]);
    let spatial: Vec<usize> = cv.dims.lhs[2..].iter().map(|&a| m_axis(a)).collect();
    let kd = b.ty(k)?.shape.0.clone();
    let (c, ci) = (md[feat], kd[cv.dims.rhs[0]]);
    let window: usize = cv.dims.rhs[2..].iter().map(|&a| kd[a]).product();
    let positions: usize = cv.dims.out[2..].iter().map(|&a| out[a]).product();
    for (w, a) in [(ops[0], ops[1]), (ops[1], ops[0])] {
        let (vw, va) = (varies(b, w)?, varies(b, a)?);
        if spatial.iter().any(|&s| vw[s]) {
            continue;
        }
        let lo: Vec<usize> = (0..nl).filter(|&i| md[i] > 1 && vw[i]).collect();
        let lb: Vec<usize> = (0..nl).filter(|&i| md[i] > 1 && !vw[i]).collect();
        if lo.is_empty() || lo.iter().any(|&i| va[i]) {
            continue;
        }
        let lb_first = lb.iter().all(|&i| lo.iter().all(|&j| i < j));
        let lo_first = lo.iter().all(|&j| lb.iter().all(|&i| j < i));
        if !(lb_first || lo_first) {
            continue;
        }
        let o: usize = lo.iter().map(|&i| md[i]).product();
        let bs: usize = lb.iter().map(|&i| md[i]).product();
        let t_elems = (bs * positions * c * ci) as f64;
        let before = t_elems * (o * window) as f64;
        let after = t_elems * (window + o) as f64 + INTERMEDIATE_MACS * t_elems;
        if after >= before {
            continue;
        }
        let (zeros, ones) = (vec![0; md.len()], vec![1; md.len()]);
        // a without the axes of o (it is the same along them), merged to the batch axis.
        let mut stop = md.clone();
        lo.iter().for_each(|&i| stop[i] = 1);
        let a_s = b.slice(a, &zeros, &stop, &ones)?;
        let mut xs = xd.clone();
        xs[0] = bs;
        let a_s = b.reshape(a_s, xs)?;
        // w at the first position and batch index: [o, c].
        let mut stop = vec![1; md.len()];
        lo.iter().for_each(|&i| stop[i] = md[i]);
        stop[feat] = c;
        let w_s = b.slice(w, &zeros, &stop, &ones)?;
        let w_s = b.reshape(w_s, vec![o, c])?;
        // The kernel as c groups of i output features, window first: [window…, 1, c·i], so
        // that each window tap's outputs of a group lie contiguous (the grouped product's
        // right operand then copies rows rather than transposing nine-element columns).
        let kc = b.transpose(k, &cv.dims.rhs)?;
        let mut perm: Vec<usize> = (2..r).collect();
        perm.extend([1, 0]);
        let kc = b.transpose(kc, &perm)?;
        let mut kshape: Vec<usize> = cv.dims.rhs[2..].iter().map(|&a| kd[a]).collect();
        kshape.extend([1, c * ci]);
        let kg = b.reshape(kc, kshape)?;
        let mut rhs = vec![r - 1, r - 2];
        rhs.extend(0..r - 2);
        // T: [b, s…, c·i] in the convolution's own layout, then [.., c, i, ..].
        let grouped =
            Conv { dims: ConvDims { rhs, ..cv.dims.clone() }, feature_groups: c, ..cv.clone() };
        let t = b.add(Op::Conv(grouped), &[a_s, kg])?;
        let td = b.ty(t)?.shape.0.clone();
        let f = cv.dims.out[1];
        let mut t5 = td[..f].to_vec();
        t5.extend([c, ci]);
        t5.extend(&td[f + 1..]);
        let t5 = b.reshape(t, t5)?;
        let dims =
            DotGeneral { lhs_contract: vec![1], rhs_contract: vec![f], ..DotGeneral::default() };
        // y: [o, b, (out's other axes, i for the feature)…]; b and o in the merged order.
        let y = b.dot_general(w_s, t5, dims)?;
        let mut perm: Vec<usize> = (0..r + 1).collect();
        if lb_first {
            perm.swap(0, 1);
        }
        let y = b.transpose(y, &perm)?;
        return Ok(Some(b.reshape(y, out.to_vec())?));
    }
    Ok(None)
}

/// Rewrite the convolutions described in the module's documentation; returns the graph and how
/// many were rewritten.
pub fn convs(f: &Function) -> Result<(Function, usize), IrError> {
    let mut rewritten = 0;
    let g = crate::rebuild(f, |b, v| {
        let (Op::Conv(cv), [x, k]) = (&v.node.op, v.args) else { return Ok(None) };
        let out = v.node.ty.shape.0.clone();
        let y = factored(b, cv, *x, *k, &out)?;
        rewritten += usize::from(y.is_some());
        Ok(y)
    })?;
    Ok((g, rewritten))
}
