//! Row fusion (`rows`): a step whose result only one contraction reads, and whose rows are
//! the contraction's slices along one of its operand's batch or free axes, runs with that
//! contraction one row at a time ([`crate::plan::FusedStep`]). Each row of the result is
//! computed into the calling thread's row buffer, which stays in its cache, and the
//! contraction's part of that row reads it there: the result never travels to memory and
//! back. The step is elementwise (rows along its outermost axis) or a contraction (rows along
//! its output axis of the largest stride; computed by the runtime contraction for one row).
//! On the zoo's CNN, the first layer's cotangent (its relu derivative times the upsampled
//! pooled cotangent, 21 MB per side) feeds only the layer's kernel gradient, one 1.3 MB row
//! per example; and the last layer's grouped convolution (after `convs`, 16.8 MB per side)
//! feeds only its contraction with the head's weights, one 1 MB row per example, which the
//! fused step lays out in the order its reader takes it (`relayout`): that backward pass
//! takes about half the time (on the Intel host, in alternating `jjt bench --profile` runs
//! without and with the fusion, its two steps per side over the second layer's kernel
//! gradient in the same run: 1.03–1.10 → 0.53–0.61, about 2.9 → 1.6 ms per side).
//!
//! Each row's contractions run on one thread with the same descriptor whatever the thread
//! count, so results do not depend on it. Along a batch axis each product is the unfused
//! contraction's own (the same bits as unfused); along a free axis, or relaid out, the
//! reader's row is a smaller or differently strided product whose sums keep the matrix
//! multiply's documented order and bound.

use crate::plan::{Buf, DotStep, FusedStep, Plan, Producer, RowAxis, Step, item_size};
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
            p.steps[j] = Step::Fused(Box::new(f));
            p.steps.remove(i);
            p.step_nodes.remove(i);
            // The fused step is now at j − 1; j is the next step.
            continue;
        }
        j += 1;
    }
}

/// The step (its index) that the contraction at `j` can run row by row with, and the fused
/// step: the step (elementwise, or a contraction) writes a scratch buffer only it writes and
/// only the contraction reads, as one operand; nothing between the two writes what it reads
/// (so it may run later) and it reads neither that buffer nor the contraction's destination;
/// its rows (an elementwise step's outermost axis, a contraction's output axis of the
/// largest stride; at least two, each a dense block of [`ROW_MIN_BYTES`] to
/// [`ROW_MAX_BYTES`], [`FUSE_MIN_BYTES`] in all) are the operand's slices along a batch axis
/// or one of its free axes (then the other operand, read whole for each row, fits in
/// [`ROW_MAX_BYTES`] with a row); and the contractions of one row take the matrix multiply.
fn candidate(p: &Plan, j: usize, opts: &Options) -> Option<(usize, FusedStep)> {
    let Step::Dot(d) = &p.steps[j] else { return None };
    for lhs in [true, false] {
        let (v, other, vshape) =
            if lhs { (&d.lhs, &d.rhs, &d.lhs_shape) } else { (&d.rhs, &d.lhs, &d.rhs_shape) };
        if !matches!(v.buf, Buf::Scratch(_)) || other.buf == v.buf || d.dst.buf == v.buf {
            continue;
        }
        let writes = |k: usize, b: Buf| p.steps[k].writes().iter().any(|w| w.buf == b);
        let reads = |k: usize, b: Buf| p.steps[k].reads().iter().any(|r| r.buf == b);
        let writers: Vec<usize> = (0..p.steps.len()).filter(|&k| writes(k, v.buf)).collect();
        let [i] = writers[..] else { continue };
        // The producer, its destination's shape and the axis its rows lie along.
        let (producer, shape) = match &p.steps[i] {
            Step::Map(m) => (Producer::Map(m.clone()), &m.shape),
            Step::Dot(pd) => {
                let Some(axis) = (0..pd.shape.len()).max_by_key(|&a| pd.dst.strides[a]) else {
                    continue;
                };
                (Producer::Dot { step: pd.clone(), axis }, &pd.shape)
            }
            _ => continue,
        };
        if i >= j || (0..p.steps.len()).any(|k| k != j && reads(k, v.buf)) {
            continue;
        }
        let inputs: Vec<Buf> = producer.reads().iter().map(|x| x.buf).collect();
        if inputs.contains(&v.buf)
            || inputs.contains(&d.dst.buf)
            || (i + 1..j).any(|k| inputs.iter().any(|&b| writes(k, b)))
        {
            continue;
        }
        // Rows: the row axis of a destination laid out densely, row after row.
        let dst = producer.dst();
        let ra = match &producer {
            Producer::Map(_) => 0,
            Producer::Dot { axis, .. } => *axis,
        };
        if shape.len() < 2 || shape[ra] < 2 || dst.offset != 0 || v.offset != 0 {
            continue;
        }
        let row = dst.strides[ra];
        let inner: Vec<(usize, isize)> =
            (0..shape.len()).filter(|&a| a != ra).map(|a| (shape[a], dst.strides[a])).collect();
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
            || row_bytes * shape[ra] < FUSE_MIN_BYTES
        {
            continue;
        }
        // The operand's axis whose index r reads row r of the result, and only it: a batch
        // axis or a free axis, not a contracted one.
        let Some(axis) = row_axis(d, lhs, shape[ra], row) else { continue };
        // Along a free axis the other operand is read whole for every row: only one that
        // stays in cache with the row (a head's weights, not another side's Jacobians: the
        // zoo's transformer's Gram products of Jacobians, fused along an example axis, read
        // the other side's 10 MB once per example: 5.4–5.7 → 8.2–8.8 ms each, the call about 14 ms slower in alternating runs).
        let oshape = if lhs { &d.rhs_shape } else { &d.lhs_shape };
        let other_bytes = oshape.iter().product::<usize>() * item;
        if axis.out >= d.dims.lhs_batch.len() && other_bytes + row_bytes > ROW_MAX_BYTES {
            continue;
        }
        let others = (0..vshape.len()).filter(|&a| a != axis.op && vshape[a] > 1);
        let (mut lo, mut hi) = (0isize, 0isize);
        for a in others {
            let span = (vshape[a] as isize - 1) * v.strides[a];
            if span < 0 { lo += span } else { hi += span }
        }
        if lo < 0 || hi > reach {
            continue;
        }
        let mut f = FusedStep { producer, dot: d.clone(), lhs, axis, row_elems: elems };
        relayout(&mut f);
        let one = Options { threads: 1, ..*opts };
        let mm = |s: &DotStep| crate::dot_path(s, &one).kind == DotKind::MatrixMultiply;
        if !mm(&f.row_dot()) || f.row_producer().is_some_and(|(s, _)| !mm(&s)) {
            continue;
        }
        return Some((i, f));
    }
    None
}

/// The axis of the contraction `d`'s operand (`lhs` or rhs) of extent `rows` and stride
/// `row`, as a batch axis or a free axis of that operand, with its output axis.
fn row_axis(d: &DotStep, lhs: bool, rows: usize, row: isize) -> Option<RowAxis> {
    let (v, vshape) = if lhs { (&d.lhs, &d.lhs_shape) } else { (&d.rhs, &d.rhs_shape) };
    (0..d.shape.len()).find_map(|out| {
        let (la, ra) = RowAxis::operands_of(d, out);
        let op = if lhs { la? } else { ra? };
        (vshape[op] == rows && v.strides[op] == row).then_some(RowAxis { op, out })
    })
}

/// Lay a contraction producer's row out in the order its reader takes it, when both address
/// the row through the same axes (each of the producer's axes is one of the reader's, of
/// the same extent and stride): the reader's batch axes, then for an lhs its free axes and
/// the contracted ones, for an rhs the contracted ones and its free axes, each group in its
/// order in memory. The row buffer is the fused step's own, so its layout is free; in this
/// order the reader's operand is one matrix per batch index, read in place, instead of one
/// product for every index of its free axes that do not chain (on the zoo's CNN, the last
/// layer's grouped convolution wrote each example's row as 8·8 blocks of 64×64 that its
/// reader multiplied in 64 products of 10×64×64; laid out channel-major, one product of
/// 10×64×4096). Kept as it is unless the producer's contiguous axis stays contiguous, so its
/// stores still run along memory. An elementwise producer keeps its layout: the CNN's
/// first-layer cotangent laid out for one product per example (positions outer, channels
/// of every output inner) made its fused step slower, 0.88 → 1.18 of the second layer's
/// kernel gradient in the same runs (alternating `jjt bench --profile`).
fn relayout(f: &mut FusedStep) {
    let Producer::Dot { step, axis: pa } = &mut f.producer else { return };
    let d = &mut f.dot;
    let (v, vshape) = if f.lhs { (&mut d.lhs, &d.lhs_shape) } else { (&mut d.rhs, &d.rhs_shape) };
    let (contract, batch) = if f.lhs {
        (&d.dims.lhs_contract, &d.dims.lhs_batch)
    } else {
        (&d.dims.rhs_contract, &d.dims.rhs_batch)
    };
    let axes = |shape: &[usize], strides: &[isize], skip: usize| {
        let mut a: Vec<(usize, isize)> = (0..shape.len())
            .filter(|&i| i != skip && shape[i] > 1)
            .map(|i| (shape[i], strides[i]))
            .collect();
        a.sort_unstable_by_key(|x| x.1);
        a
    };
    if axes(&step.shape, &step.dst.strides, *pa) != axes(vshape, &v.strides, f.axis.op) {
        return;
    }
    // The reader's axes in the new order, outermost first.
    let class = |a: usize| {
        if batch.contains(&a) {
            0
        } else if contract.contains(&a) == f.lhs {
            2
        } else {
            1
        }
    };
    let mut order: Vec<usize> =
        (0..vshape.len()).filter(|&a| a != f.axis.op && vshape[a] > 1).collect();
    order.sort_by_key(|&a| (class(a), std::cmp::Reverse(v.strides[a])));
    let mut new: Vec<(isize, isize)> = Vec::new();
    let mut acc = 1isize;
    for &a in order.iter().rev() {
        new.push((v.strides[a], acc));
        acc *= vshape[a] as isize;
    }
    let to = |s: isize| new.iter().find(|x| x.0 == s).map(|x| x.1);
    if to(1) != Some(1) {
        return;
    }
    for (i, &n) in vshape.iter().enumerate() {
        if i != f.axis.op && n > 1 {
            v.strides[i] = to(v.strides[i]).unwrap_or(v.strides[i]);
        }
    }
    for (i, &n) in step.shape.iter().enumerate() {
        if i != *pa && n > 1 {
            step.dst.strides[i] = to(step.dst.strides[i]).unwrap_or(step.dst.strides[i]);
        }
    }
}
