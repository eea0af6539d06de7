//! The f32 matrix multiply that the runtime contraction calls (`jjt_jit::gemm::matmul_f32`),
//! checked on its own against independent arithmetic:
//!
//! - each element equals, bit for bit, the order `gemm` documents, computed here with
//!   `f32::mul_add`: one chain of fused multiply-adds over k in increasing order from zero, or,
//!   when both operands are contiguous along k and k ≥ `DOT_MIN_K`, sixteen such chains over
//!   the lanes p mod 16 added as a halving tree; and it is within the bound of that order
//!   (k·u·Σ|a·b|, or (⌈k/16⌉ + 4)·u·Σ|a·b|) of the exact product, computed in f64;
//! - a product cut into parts by rows or by columns (as threads cut it) gives the bits of the
//!   whole one;
//! - every operand layout (row- or column-major, padded rows, broadcast rows), ragged edges
//!   of the register tiles, K beyond one block, both operand orientations, the paths that read
//!   A in place or pack it;
//! - bad strides are a typed error.
//!
//! On a host without AVX-512 F the same properties are checked on `matrixmultiply`, except the
//! bit-exact chain, which only the own kernel promises.

use jjt_jit::gemm::{
    DOT_MIN_K, MatmulError, Strided, dot_factor, has_own_kernel, matmul_f32, matmul_f32_part,
    uses_dot_kernel,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// A matrix in a buffer, with its layout.
#[derive(Clone, Debug)]
struct Mat {
    data: Vec<f32>,
    rs: isize,
    cs: isize,
}

impl Mat {
    /// An r×c matrix of `vals` (row-major order of values) in layout `layout`: 0 row-major,
    /// 1 column-major, 2 row-major with rows padded by 5 elements, 3 every row the first
    /// (stride 0; the values of row 0 are used), 4 row-major with rows 2048 elements apart (a
    /// power of two, as rows of a Jacobian are).
    fn new(r: usize, c: usize, vals: &[f32], layout: u8) -> Self {
        let (rs, cs, len) = match layout {
            0 => (c as isize, 1, r * c),
            1 => (1, r as isize, r * c),
            2 => (c as isize + 5, 1, r * (c + 5)),
            4 => (2048, 1, (r - 1) * 2048 + c),
            _ => (0, 1, c),
        };
        let mut data = vec![f32::NAN; len.max(1)];
        for i in 0..r {
            for j in 0..c {
                let at = i as isize * rs + j as isize * cs;
                let v = if layout == 3 { vals[j] } else { vals[i * c + j] };
                data[at as usize] = v;
            }
        }
        Self { data, rs, cs }
    }

    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[(i as isize * self.rs + j as isize * self.cs) as usize]
    }

    fn view(&self) -> Strided<'_> {
        Strided { data: &self.data, rs: self.rs, cs: self.cs }
    }
}

/// `c` (row-major m×n, or column-major when `col_c`) from `matmul_f32`.
fn product(m: usize, k: usize, n: usize, a: &Mat, b: &Mat, col_c: bool) -> Vec<f32> {
    let mut c = vec![f32::NAN; m * n];
    let (rsc, csc) = if col_c { (1, m as isize) } else { (n as isize, 1) };
    matmul_f32(m, k, n, a.view(), b.view(), &mut c, rsc, csc).expect("in bounds");
    // Back to row-major.
    (0..m * n).map(|x| c[((x / n) as isize * rsc + (x % n) as isize * csc) as usize]).collect()
}

/// Checks one product against the fma chain (own kernel) and the f64 bound.
fn check(m: usize, k: usize, n: usize, a: &Mat, b: &Mat, col_c: bool) -> Result<(), String> {
    let c = product(m, k, n, a, b, col_c);
    let u = f64::from(f32::EPSILON) / 2.0;
    for i in 0..m {
        for j in 0..n {
            let got = c[i * n + j];
            let (mut chain, mut exact, mut mag) = (0f32, 0f64, 0f64);
            for p in 0..k {
                let (x, y) = (a.at(i, p), b.at(p, j));
                chain = x.mul_add(y, chain);
                exact += f64::from(x) * f64::from(y);
                mag += (f64::from(x) * f64::from(y)).abs();
            }
            let dot = uses_dot_kernel((m, n), k, a.cs, b.rs);
            let (want, roundings) = if dot {
                // Sixteen lanes over p ≡ l (mod 16), k padded with zeros to a multiple of 16,
                // then the halving tree.
                let mut lanes = [0f32; 16];
                for p in 0..k.next_multiple_of(16) {
                    let (x, y) = if p < k { (a.at(i, p), b.at(p, j)) } else { (0.0, 0.0) };
                    lanes[p % 16] = x.mul_add(y, lanes[p % 16]);
                }
                for half in [8, 4, 2, 1] {
                    for l in 0..half {
                        lanes[l] += lanes[l + half];
                    }
                }
                (lanes[0], k.div_ceil(16) + 4)
            } else {
                (chain, k)
            };
            if has_own_kernel() && got.to_bits() != want.to_bits() {
                let order = if dot { "lanes and tree" } else { "fma chain" };
                return Err(format!("({i}, {j}) of {m}×{k}×{n}: {got} is not the {order} {want}"));
            }
            // n·u·Σ|a·b| bounds n rounded operations in sequence on each term's path (γ_n ≈
            // n·u): k for the chain (matrixmultiply adds its blocks' sums, still k roundings
            // per element), ⌈k/16⌉ + 4 for the lanes and the tree.
            let bound = roundings as f64 * u * mag * (1.0 + 1e-6) + f64::from(f32::MIN_POSITIVE);
            if (f64::from(got) - exact).abs() > bound {
                return Err(format!(
                    "({i}, {j}) of {m}×{k}×{n}: {got} vs exact {exact}, bound {bound}"
                ));
            }
        }
    }
    Ok(())
}

fn values(len: usize, seed: u64) -> Vec<f32> {
    // A fixed linear congruential sequence in [-1, 1): reproducible without the runner's RNG.
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32) / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

#[test]
fn products_follow_the_documented_order_on_every_layout() {
    let mut runner = TestRunner::new(Config { cases: 48, ..Config::default() });
    let dims = (1usize..80, 0usize..1300, 1usize..110, 0u8..4, 0u8..4, any::<bool>(), any::<u64>());
    runner
        .run(&dims, |(m, k, n, la, lb, col_c, seed)| {
            let a = Mat::new(m, k, &values(m * k, seed), la);
            let b = Mat::new(k, n, &values(k * n, seed ^ 1), lb);
            check(m, k, n, &a, &b, col_c).map_err(TestCaseError::fail)
        })
        .unwrap();
}

#[test]
fn fixed_shapes_cover_each_path_of_the_kernel() {
    // (m, k, n): a Gram block (A and Bᵀ row-major: the dot kernel), and ones whose rows of A
    // are not contiguous (padded: read in place; 8 KiB apart: copied by chunks, the last chunk
    // ragged); K over two packed
    // blocks and over one in-place block; B one and two tiles wide (A read in place) with a
    // ragged last row tile; B wider than a column block (512); a tall product that swaps; a
    // head of 10 rows; the dot kernel with ragged tiles and a tail of K, at k = DOT_MIN_K,
    // and the tile kernel just below it; Gram products below DOT_MIN_K, whose operands are
    // packed from rows and columns contiguous along K by 16×16 transposes (two panels of A at a
    // time, an odd panel and a ragged one left; K a multiple of 16 and not); B's columns
    // contiguous along K with a ragged last panel (28 columns: the channels of a cotangent
    // against patches, which swaps so that A's rows are copied as B; 20 columns, a half
    // panel of zeros; 50, one whole panel and a ragged one); A's rows contiguous along K and
    // packed with a ragged last pair of panels (5 rows: the second panel is not in the
    // buffer; 11 rows: both).
    let cases = [
        (320, 64, 320, 0, 1),
        (43, 37, 100, 0, 1),
        (160, 1024, 160, 0, 1),
        (150, 1030, 70, 2, 1),
        (150, 1030, 70, 4, 1),
        (40, 600, 96, 0, 0),
        (37, 1500, 32, 0, 0),
        (45, 300, 50, 1, 0),
        (24, 40, 530, 0, 0),
        (300, 70, 9, 2, 1),
        (10, 2100, 160, 0, 1),
        (37, 700, 45, 0, 1),
        (9, 512, 5, 0, 1),
        (9, 511, 5, 0, 1),
        (32, 1024, 28, 1, 1),
        (40, 300, 20, 0, 1),
        (45, 200, 50, 2, 1),
        (37, 300, 100, 0, 0),
        (27, 200, 100, 2, 0),
    ];
    for (m, k, n, la, lb) in cases {
        let a = Mat::new(m, k, &values(m * k, m as u64), la);
        let b = Mat::new(k, n, &values(k * n, n as u64), lb);
        for col_c in [false, true] {
            check(m, k, n, &a, &b, col_c).unwrap();
        }
    }
}

#[test]
fn the_dot_kernel_is_chosen_by_layout_k_and_the_whole_product() {
    // Operands both contiguous along k (a.cs == 1, b.rs == 1).
    if !has_own_kernel() {
        assert!(!uses_dot_kernel((160, 160), 1024, 1, 1));
        return;
    }
    // A head of 10 rows: the dot kernel on every host. Gram blocks and large squares: the dot
    // kernel where its cost per tile is 1.3 times the tile kernel's (AMD hosts), the tile
    // kernel where it is 1.6 times (the others).
    assert!(uses_dot_kernel((10, 160), 1024, 1, 1));
    let f = dot_factor();
    assert!(f == 1.3 || f == 1.6, "{f}");
    assert_eq!(uses_dot_kernel((160, 160), 1024, 1, 1), f == 1.3);
    assert_eq!(uses_dot_kernel((1024, 1024), 576, 1, 1), f == 1.3);
    // One side at most two tiles of 32 wide: the tile kernel reads the other in place.
    assert!(!uses_dot_kernel((40960, 32), 576, 1, 1));
    assert!(!uses_dot_kernel((64, 4096), 1024, 1, 1));
    // Short k, or another layout: the tile kernel.
    assert!(!uses_dot_kernel((160, 160), DOT_MIN_K - 1, 1, 1));
    assert!(!uses_dot_kernel((160, 160), 1024, 1024, 1));
}

#[test]
fn a_product_cut_by_rows_or_columns_has_the_bits_of_the_whole() {
    // Both layouts of B: the dot kernel (B's columns contiguous along k) and the tile kernel.
    for lb in [1, 0] {
        let (m, k, n) = (97, 1100, 150);
        let a = Mat::new(m, k, &values(m * k, 7), 0);
        let b = Mat::new(k, n, &values(k * n, 8), lb);
        let whole = product(m, k, n, &a, &b, false);
        if lb == 1 && has_own_kernel() {
            // The whole runs in the dot kernel; a part of 32 rows alone would not.
            assert!(uses_dot_kernel((m, n), k, a.cs, b.rs));
            assert!(!uses_dot_kernel((32, n), k, a.cs, b.rs));
        }
        for cut in [1, 8, 32, 45, 64, 96] {
            // Rows [0, cut) and [cut, m) into the same row-major c, by offsetting a and c.
            let mut c = vec![f32::NAN; m * n];
            let (top, rest) = c.split_at_mut(cut.min(m) * n);
            matmul_f32_part(cut, k, n, a.view(), b.view(), top, n as isize, 1, (m, n)).unwrap();
            let a_low = Strided { data: &a.data[cut * k..], rs: a.rs, cs: a.cs };
            matmul_f32_part(m - cut, k, n, a_low, b.view(), rest, n as isize, 1, (m, n)).unwrap();
            let same = c.iter().zip(&whole).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "layout {lb}: rows cut at {cut}");
        }
        for cut in [1, 31, 32, 64, 100, 149] {
            // Columns [0, cut) and [cut, n) into column-major parts.
            let mut left = vec![f32::NAN; m * cut];
            let mut right = vec![f32::NAN; m * (n - cut)];
            let whole_mn = (m, n);
            matmul_f32_part(m, k, cut, a.view(), b.view(), &mut left, 1, m as isize, whole_mn)
                .unwrap();
            let off = (cut as isize * b.cs) as usize;
            let b_right = Strided { data: &b.data[off..], rs: b.rs, cs: b.cs };
            let right_n = n - cut;
            matmul_f32_part(m, k, right_n, a.view(), b_right, &mut right, 1, m as isize, whole_mn)
                .unwrap();
            for i in 0..m {
                for j in 0..n {
                    let got = if j < cut { left[j * m + i] } else { right[(j - cut) * m + i] };
                    let want = whole[i * n + j];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "layout {lb}: columns cut at {cut}: ({i}, {j})"
                    );
                }
            }
        }
    }
}

#[test]
fn strides_outside_a_slice_are_refused() {
    let a: &'static [f32] = &[1.0; 12];
    let b = vec![1f32; 12];
    let mut c = vec![0f32; 9];
    let ok = |d: &'static [f32]| Strided { data: d, rs: 4, cs: 1 };
    // a 3×4 fits 12 elements; 3×5 does not.
    let b34 = Strided { data: &b, rs: 3, cs: 1 };
    assert_eq!(matmul_f32(3, 4, 3, ok(a), b34, &mut c, 3, 1), Ok(()));
    assert!(c.iter().all(|&x| x == 4.0), "{c:?}");
    let a35 = Strided { data: a, rs: 5, cs: 1 };
    assert_eq!(
        matmul_f32(3, 5, 3, a35, b34, &mut c, 3, 1),
        Err(MatmulError::OutOfBounds { which: "a" })
    );
    let neg = Strided { data: &b, rs: -3, cs: 1 };
    assert_eq!(
        matmul_f32(3, 4, 3, ok(a), neg, &mut c, 3, 1),
        Err(MatmulError::OutOfBounds { which: "b" })
    );
    assert_eq!(
        matmul_f32(3, 4, 3, ok(a), b34, &mut c, 4, 1),
        Err(MatmulError::OutOfBounds { which: "c" })
    );
    let huge = Strided { data: a, rs: isize::MAX, cs: 1 };
    assert_eq!(
        matmul_f32(3, 4, 3, huge, b34, &mut c, 3, 1),
        Err(MatmulError::OutOfBounds { which: "a" })
    );
}
