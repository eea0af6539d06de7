//! The summation order of every sum jjt computes exactly (the interpreter, constant folding
//! and the strict JIT): **blocked pairwise** with blocks of [`BLOCK`] terms.
//!
//! The terms `t_0 .. t_{n-1}` of a sum (a reduction's terms in row-major order of its reduced
//! axes; a contraction's products in row-major order of its contracted axes, in the order of
//! `lhs_contract`) are summed as follows:
//!
//! - `n ≤ BLOCK`: left to right, `((z + t_0) + t_1) + …`, from the start value `z` (`+0.0`
//!   for `sum`/`mean`, `-0.0` for a contraction, which makes the first product start the sum
//!   exactly, since `-0.0 + p = p` for every `p`);
//! - `n > BLOCK`: the terms are cut into `m = ⌈n / BLOCK⌉` consecutive blocks (the last may be
//!   short), each summed left to right from `z` as above; the block sums `b_0 .. b_{m-1}`
//!   combine as `S(0..m) = S(0..p) + S(p..m)` where `p` is the largest power of two strictly
//!   below `m` (`S(j..j+1) = b_j`).
//!
//! The combination is computed streaming by [`Pairwise`]: a binary-counter stack of partial
//! sums; each block sum is pushed, and the top two entries are merged (`lower + upper`) while
//! they cover equal numbers of blocks; at the end the stack is folded from the top,
//! `s = stack[i] + s`. A stack of 64 entries covers any `m < 2⁶⁴`.
//!
//! **Error bound.** With unit roundoff `u` (`2⁻²⁴` in f32, `2⁻⁵³` in f64), each term passes
//! through at most `BLOCK − 1` additions inside its block and `⌈log2 m⌉` additions of the tree,
//! so to first order `|ŝ − s| ≤ (BLOCK − 1 + ⌈log2 m⌉)·u·Σ|t_i|` — for 10⁶ f32 terms,
//! `(127 + 13)·u ≈ 8.3·10⁻⁶` relative to `Σ|t_i|`, where left-to-right summation allows
//! `(n − 1)·u ≈ 6·10⁻²`.
//!
//! Several sums advancing in lockstep (the outputs of a contraction computed a block of the
//! contracted axis at a time) share one stack shape: [`Pairwise::with_width`] keeps `width`
//! sums and merges them elementwise.

use crate::tensor::Float;

/// Terms per block: summed left to right inside a block, pairwise across blocks.
pub const BLOCK: usize = 128;

/// `width` sums in the blocked pairwise order, fed one block sum per sum at a time
/// ([`Pairwise::push_block_sums`]) and finished with [`Pairwise::finish`].
#[derive(Clone, Debug)]
pub struct Pairwise<T> {
    width: usize,
    /// `len` entries of `width` partial sums each, bottom first.
    stack: Vec<T>,
    len: usize,
    /// Block sums pushed so far.
    blocks: u64,
}

impl<T: Float> Pairwise<T> {
    /// One sum.
    pub fn new() -> Self {
        Self::with_width(1)
    }

    /// `width` sums advancing in lockstep.
    pub fn with_width(width: usize) -> Self {
        Pairwise { width, stack: Vec::new(), len: 0, blocks: 0 }
    }

    /// The number of sums.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Block sums pushed so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Push the next block sum of one sum (`width` 1).
    pub fn push_block_sum(&mut self, b: T) {
        self.push_block_sums(&[b]);
    }

    /// The slot of the next block sums (one per sum), to be filled in place and then pushed
    /// with [`Pairwise::commit_block`] (its contents before filling are unspecified).
    pub fn next_block(&mut self) -> &mut [T] {
        let w = self.width;
        let at = self.len * w;
        if self.stack.len() < at + w {
            self.stack.resize(at + w, T::zero());
        }
        &mut self.stack[at..at + w]
    }

    /// Push the block sums written into [`Pairwise::next_block`].
    pub fn commit_block(&mut self) {
        let w = self.width;
        if self.stack.len() < (self.len + 1) * w {
            self.stack.resize((self.len + 1) * w, T::zero());
        }
        self.len += 1;
        self.blocks += 1;
        // The entries cover the powers of two of the block count's set bits, largest at the
        // bottom: merge once per trailing zero of the new count.
        for _ in 0..self.blocks.trailing_zeros() {
            let (lo, hi) = self.stack.split_at_mut((self.len - 1) * w);
            for (l, &h) in lo[(self.len - 2) * w..].iter_mut().zip(&hi[..w]) {
                *l = l.add(h);
            }
            self.len -= 1;
        }
    }

    /// Push the next block sum of every sum (`b` holds one per sum; missing ones count as
    /// `+0.0`, extra ones are ignored).
    pub fn push_block_sums(&mut self, b: &[T]) {
        let entry = self.next_block();
        entry.fill(T::zero());
        for (e, &v) in entry.iter_mut().zip(b) {
            *e = v;
        }
        self.commit_block();
    }

    /// The finished sums, written to the first `width` elements of `out` (or as many as it
    /// has); `None` when no block was pushed (the caller's empty sum).
    pub fn finish_into(&self, out: &mut [T]) -> Option<()> {
        let w = self.width;
        let top = self.len.checked_sub(1)?;
        for (o, &s) in out.iter_mut().zip(&self.stack[top * w..(top + 1) * w]) {
            *o = s;
        }
        for i in (0..top).rev() {
            for (o, &s) in out.iter_mut().zip(&self.stack[i * w..(i + 1) * w]) {
                *o = s.add(*o);
            }
        }
        Some(())
    }

    /// The finished sum of a width-1 accumulator; `None` when no block was pushed.
    pub fn finish(&self) -> Option<T> {
        let mut out = [T::zero()];
        self.finish_into(&mut out)?;
        Some(out[0])
    }
}

impl<T: Float> Default for Pairwise<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The sum of `terms` in the blocked pairwise order, each block started from `z`
/// (`z` itself when `terms` is empty).
pub fn sum_from<T: Float>(z: T, terms: impl IntoIterator<Item = T>) -> T {
    let mut p = Pairwise::new();
    let mut acc = z;
    let mut k = 0;
    for t in terms {
        acc = acc.add(t);
        k += 1;
        if k == BLOCK {
            p.push_block_sum(acc);
            acc = z;
            k = 0;
        }
    }
    // n ≤ BLOCK: no block was pushed and `acc` is the left-to-right sum (or `z`).
    if k > 0 && p.blocks() > 0 {
        p.push_block_sum(acc);
    }
    p.finish().unwrap_or(acc)
}

/// The sum of a slice in the blocked pairwise order from `+0.0` (a `sum` reduction's sum).
pub fn sum<T: Float>(terms: &[T]) -> T {
    sum_from(T::zero(), terms.iter().copied())
}

/// The number of blocks of a sum of `n` terms: `⌈n / BLOCK⌉`.
pub fn blocks(n: usize) -> usize {
    n.div_ceil(BLOCK)
}

/// The first-order error bound factor of a sum of `n` terms, `BLOCK − 1 + ⌈log2 m⌉` with
/// `m = ⌈n / BLOCK⌉` (or `n − 1` when `n ≤ BLOCK`): `|ŝ − s| ≤ factor·u·Σ|t_i|`.
pub fn error_factor(n: usize) -> usize {
    let m = blocks(n);
    if m <= 1 {
        n.saturating_sub(1)
    } else {
        BLOCK - 1 + m.next_power_of_two().trailing_zeros() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_two_matches_two_single_sums() {
        let a: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut p = Pairwise::with_width(2);
        for (ca, cb) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
            let sa = ca.iter().fold(0.0, |s, &t| s + t);
            let sb = cb.iter().fold(0.0, |s, &t| s + t);
            p.push_block_sums(&[sa, sb]);
        }
        let mut out = [0.0; 2];
        p.finish_into(&mut out).unwrap();
        assert_eq!(out[0].to_bits(), sum(&a).to_bits());
        assert_eq!(out[1].to_bits(), sum(&b).to_bits());
    }

    #[test]
    fn empty_and_short() {
        assert_eq!(sum::<f32>(&[]).to_bits(), 0f32.to_bits());
        assert_eq!(sum_from(-0.0f64, []).to_bits(), (-0.0f64).to_bits());
        assert_eq!(sum(&[1.0f32, 2.0]), 3.0);
        assert_eq!(error_factor(1), 0);
        assert_eq!(error_factor(128), 127);
        assert_eq!(error_factor(129), 128);
        assert_eq!(error_factor(128 * 5 + 3), 127 + 3);
        assert!(Pairwise::<f32>::new().finish().is_none());
    }
}
