//! NumPy-compatible random streams: MT19937 seeded like `np.random.seed(s)`, with the legacy
//! `RandomState` constructions of `np.random.rand` (53-bit doubles from two 32-bit draws) and
//! `np.random.randn` (Marsaglia's polar method, caching the second normal).

const N: usize = 624;
const M: usize = 397;

/// MT19937 in the state `np.random.seed(seed)` leaves it in.
#[derive(Clone, Debug)]
pub struct Mt19937 {
    mt: [u32; N],
    pos: usize,
    cached_gauss: Option<f64>,
}

impl Mt19937 {
    /// `np.random.seed(seed)` (NumPy's `mt19937_seed`, Knuth's initialisation).
    pub fn new(seed: u32) -> Mt19937 {
        let mut mt = [0u32; N];
        let mut s = seed;
        for (i, slot) in mt.iter_mut().enumerate() {
            *slot = s;
            s = 1_812_433_253u32.wrapping_mul(s ^ (s >> 30)).wrapping_add(i as u32 + 1);
        }
        Mt19937 { mt, pos: N, cached_gauss: None }
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % N] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.mt[i] = self.mt[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// The next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.twist();
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Skip `n` 32-bit outputs (no tempering needed for discarded words).
    pub fn skip_u32(&mut self, mut n: u64) {
        while n > 0 {
            if self.pos >= N {
                self.twist();
            }
            let step = ((N - self.pos) as u64).min(n);
            self.pos += step as usize;
            n -= step;
        }
    }

    /// A double in [0, 1) with 53 random bits: one draw of `np.random.rand`.
    pub fn next_f64(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// A standard normal: one draw of `np.random.randn` (legacy polar method).
    pub fn next_gauss(&mut self) -> f64 {
        if let Some(g) = self.cached_gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.next_f64() - 1.0;
            let x2 = 2.0 * self.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached_gauss = Some(f * x1);
                return f * x2;
            }
        }
    }
}

/// The largest `offset + count` a random constant may have (2^32 draws): normal draws cannot be
/// skipped faster than they are made, and no real model needs more.
pub const MAX_DRAWS: u64 = 1 << 32;

/// The distribution of a random constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// `np.random.rand`: uniform on [0, 1).
    Uniform,
    /// `np.random.randn`: standard normal.
    Normal,
}

/// `count` draws after skipping `offset` draws of the same distribution, from a stream seeded
/// with `seed`: the values `np.random.seed(seed)` followed by draws totalling `offset + count`
/// would produce at positions `offset..offset + count`.
pub fn draws(dist: Distribution, seed: u32, offset: u64, count: usize) -> Vec<f64> {
    draws_iter(dist, seed, offset, count).collect()
}

/// The values of [`draws`], one at a time, so that a constant can be generated straight into
/// its element type (a 32×10⁶ f32 constant then never exists as f64: 128 MB, not 384 MB).
/// The iterator reports its exact length, so collecting it allocates once.
pub fn draws_iter(
    dist: Distribution,
    seed: u32,
    offset: u64,
    count: usize,
) -> impl ExactSizeIterator<Item = f64> {
    let mut rng = Mt19937::new(seed);
    let offset = if dist == Distribution::Uniform {
        // Each uniform draw is exactly two 32-bit words.
        rng.skip_u32(offset.saturating_mul(2));
        0
    } else {
        offset
    };
    let mut next = move || match dist {
        Distribution::Uniform => rng.next_f64(),
        Distribution::Normal => rng.next_gauss(),
    };
    for _ in 0..offset {
        next();
    }
    (0..count).map(move |_| next())
}

/// xorshift64* (Vigna 2016): a small deterministic generator for random test inputs, fuzzing
/// and the gradient check's probe points. Not NumPy-compatible (that is [`Mt19937`]). The
/// state must be nonzero (zero stays zero).
#[derive(Clone, Debug)]
pub struct XorShift64(pub u64);

impl XorShift64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[lo, hi)`, from 53 random bits.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }

    /// Uniform in `0..n` (`n > 0`; modulo bias is below 2⁻⁵⁰ for the small `n` this serves).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
