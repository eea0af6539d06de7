//! Row fusion (`rows`): an elementwise step whose result only one contraction reads, and
//! whose rows are the contraction's products along one of its batch axes, runs with that
//! contraction one row at a time ([`crate::plan::FusedStep`]). Each row of the elementwise
//! result is computed into the calling thread's row buffer, which stays in its cache, and the
//! contraction's products of that row read it there: the result never travels to memory and
//! back. On the zoo's CNN, the first layer's cotangent (its relu derivative times the
//! upsampled pooled cotangent, 21 MB per side) feeds only the layer's kernel gradient, one
//! 1.3 MB row per example.
//!
//! Each product is computed exactly as the unfused contraction computes it (the same
//! descriptor for one row, one thread), so results do not depend on the fusion or on the
//! thread count.

use crate::plan::{Buf, FusedStep, Plan, Step, item_size};
use crate::{DotKind, Options};

/// The fewest bytes an elementwise result must hold to be fused: below it, it stays in cache
/// between the two steps anyway.
pub const FUSE_MIN_BYTES: usize = 4 << 20;

/// The most bytes one row may hold: each thread's row buffer stays in its L2 cache (2 MiB on
/// the machines this project is measured on) with the contraction's packed panels.
pub const ROW_MAX_BYTES: usize = 3 << 19;

/// The fewest bytes one row may hold: each row is one call of the runtime contraction, whose
/// overhead a smaller row would not repay.
pub const ROW_MIN_BYTES: usize = 64 << 10;

/// Fuse, in `p`'s steps, every elementwise step with the one contraction that reads its result
/// where [`candidate`] allows it. The fused step takes the contraction's place (the
/// elementwise step moves there: nothing in between writes what it reads).
pub(crate) fn rows(p: &mut Plan, opts: &Options) {
    let mut j = 0;
    while j < p.steps.len() {
        if let Some((i, f)) = candidate(p, j, opts) {
            p.steps[j] = Step::Fused(f);
            p.steps.remove(i);
            p.step_nodes.remove(i);
            // The fused step is now at j − 1; j is the next step.
            continue;
        }
        j += 1;
    }
}

/// The elementwise step (its index) that the contraction at `j` can run row by row with, and
/// the fused step: the step's result is a scratch buffer only it writes and only the
/// contraction reads, as one operand; nothing between the two writes what it reads (so it may
/// run later) and it reads neither that buffer nor the contraction's destination; its rows
/// (outermost axis, at least two, each a dense block of [`ROW_MIN_BYTES`] to
/// [`ROW_MAX_BYTES`], [`FUSE_MIN_BYTES`] in all) are the operand's slices along a batch axis;
/// and the contraction of one row takes the matrix multiply.
fn candidate(p: &Plan, j: usize, opts: &Options) -> Option<(usize, FusedStep)> {
    let Step::Dot(d) = &p.steps[j] else { return None };
    for lhs in [true, false] {
        let (v, other, vshape, vbatch) = if lhs {
            (&d.lhs, &d.rhs, &d.lhs_shape, &d.dims.lhs_batch)
        } else {
            (&d.rhs, &d.lhs, &d.rhs_shape, &d.dims.rhs_batch)
        };
        if !matches!(v.buf, Buf::Scratch(_)) || other.buf == v.buf || d.dst.buf == v.buf {
            continue;
        }
        let writes = |k: usize, b: Buf| p.steps[k].writes().iter().any(|w| w.buf == b);
        let reads = |k: usize, b: Buf| p.steps[k].reads().iter().any(|r| r.buf == b);
        let writers: Vec<usize> = (0..p.steps.len()).filter(|&k| writes(k, v.buf)).collect();
        let [i] = writers[..] else { continue };
        let Step::Map(m) = &p.steps[i] else { continue };
        if i >= j || (0..p.steps.len()).any(|k| k != j && reads(k, v.buf)) {
            continue;
        }
        let inputs: Vec<Buf> = m.expr.views().iter().map(|x| x.buf).collect();
        if inputs.contains(&v.buf)
            || inputs.contains(&d.dst.buf)
            || (i + 1..j).any(|k| inputs.iter().any(|&b| writes(k, b)))
        {
            continue;
        }
        // Rows: the outermost axis of a destination laid out densely, row after row.
        let (shape, dst) = (&m.shape, &m.dst);
        if shape.len() < 2 || shape[0] < 2 || dst.offset != 0 || v.offset != 0 {
            continue;
        }
        let row = dst.strides[0];
        let inner: Vec<(usize, isize)> =
            shape[1..].iter().copied().zip(dst.strides[1..].iter().copied()).collect();
        if inner.iter().any(|&(_, s)| s < 0) || row <= 0 {
            continue;
        }
        let reach: isize = inner.iter().map(|&(n, s)| (n as isize - 1) * s).sum();
        let elems: usize = inner.iter().map(|x| x.0).product();
        if elems as isize != reach + 1 || row != reach + 1 {
            continue;
        }
        let item = item_size(dst.dtype);
        let row_bytes = elems * item;
        if !(ROW_MIN_BYTES..=ROW_MAX_BYTES).contains(&row_bytes)
            || row_bytes * shape[0] < FUSE_MIN_BYTES
        {
            continue;
        }
        // The batch axis whose index r reads row r of the result, and only it.
        let Some(batch) = vbatch.iter().position(|&a| vshape[a] == shape[0] && v.strides[a] == row)
        else {
            continue;
        };
        let others = (0..vshape.len()).filter(|&a| a != vbatch[batch] && vshape[a] > 1);
        let (mut lo, mut hi) = (0isize, 0isize);
        for a in others {
            let span = (vshape[a] as isize - 1) * v.strides[a];
            if span < 0 { lo += span } else { hi += span }
        }
        if lo < 0 || hi > reach {
            continue;
        }
        let f = FusedStep { map: m.clone(), dot: d.clone(), lhs, batch, row_elems: elems };
        let one = Options { threads: 1, ..*opts };
        if crate::dot_path(&f.row_dot(), &one).kind != DotKind::MatrixMultiply {
            continue;
        }
        return Some((i, f));
    }
    None
}
