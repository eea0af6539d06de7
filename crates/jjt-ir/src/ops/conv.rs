//! `conv(x, k, dims="NHWC,HWIO,NHWC", strides=[..], padding=[[lo,hi],..], lhs_dilation=[..],
//! rhs_dilation=[..], feature_groups=G, batch_groups=B)`: XLA/StableHLO's `convolution`, with 1
//! to 3 spatial axes.
//!
//! **Dimension numbers.** `dims` names the axes of the input, the kernel and the output, as
//! JAX spells them: the input's batch `N` and feature `C`, the kernel's output feature `O` and
//! input feature `I`, the output's `N` and `C`, and one letter per spatial axis shared by the
//! three (`"NCHW,OIHW,NCHW"`, `"NWC,WIO,NWC"`, `"NDHWC,DHWIO,NDHWC"`); spatial axes are taken in
//! the kernel's order. Internally each operand's axes are kept as a permutation to the
//! canonical order (batch, feature, spatial…), so `transpose(x, perm)` is the canonical view.
//!
//! **Semantics**, per output element (canonical index `n', o, p`), with `K = O / groups`:
//! the feature group `g = o / (O / feature_groups)` and batch group `h = o / (O / batch_groups)`
//! select input batch `n = h·(N / batch_groups) + n'` and input features
//! `g·I .. (g+1)·I`; the input is dilated (`lhs_dilation − 1` zeros between elements), padded
//! (`lo`, `hi` per spatial axis; negative amounts crop), and the kernel window, its taps spread
//! `rhs_dilation` apart, moves by `strides`. Output spatial size:
//! `⌊(dilated_in + lo + hi − dilated_window) / stride⌋ + 1` (0 when the window does not fit).
//! At most one of the group counts exceeds 1 (as StableHLO requires).
//!
//! **Summation.** Each output element sums its products — every tap of the window (row-major
//! over the spatial axes) outer, the kernel's input features inner, padding taps included as
//! products with 0 — in the blocked pairwise order of [`crate::sum`], as a contraction
//! (`dot_general`) does; the JIT contracts in the same order, so strict mode is bit-identical.
//!
//! **Rules.** Bilinear: the JVP is `conv(ẋ, k) + conv(x, k̇)`. The transposes are convolutions,
//! as in XLA: with respect to the input, the cotangent convolved with the kernel reversed along
//! its spatial axes (input and output features swapped, the strides becoming the input
//! dilation). With respect to the kernel it is a contraction: the cotangent against the
//! patches of the dilated, padded input, summed over the batch and the window positions (the
//! groups a batch axis), so the optimiser sees a layer's kernel term as an einsum it can
//! reorder (see `ARCHITECTURE.md`, "Convolution, windows and the structured kernels").
//! Batching folds the batch axis into the input's batch (input batched), the kernel's output
//! features (kernel batched) or, both batched, into feature groups (batch groups when the
//! convolution has them).

use std::fmt::Write as _;

use super::{Arity, AttrValue, CallArgs, OpInfo, OpRule, ParseOp, Traits};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{Binary, Reverse, bad_dtype, move_to_front, not_linear, same_dtype_float, zeros};
use super::{DotGeneral, Pad, Patches};
use crate::builder::FunctionBuilder;
use crate::error::{ConvError, EvalError, IrError, TypeError};
use crate::graph::NodeId;
use crate::sum;
use crate::tensor::{Data, Float, Tensor, for_each_index};
use crate::types::{Shape, TensorType};

/// Which axis of each operand is which: each list maps the canonical order (batch, feature,
/// spatial… for the input and output; output feature, input feature, spatial… for the kernel)
/// to the operand's axes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvDims {
    /// The input's batch, feature and spatial axes.
    pub lhs: Vec<usize>,
    /// The kernel's output-feature, input-feature and spatial axes.
    pub rhs: Vec<usize>,
    /// The output's batch, feature and spatial axes.
    pub out: Vec<usize>,
}

/// The letters printed for the spatial axes of 1, 2 and 3 spatial dimensions.
fn spatial_letters(s: usize) -> &'static [char] {
    match s {
        1 => &['W'],
        2 => &['H', 'W'],
        _ => &['D', 'H', 'W'],
    }
}

impl ConvDims {
    /// The canonical dimension numbers of `spatial` spatial axes (`"NC…,OI…,NC…"`).
    pub fn canonical(spatial: usize) -> ConvDims {
        let c: Vec<usize> = (0..spatial + 2).collect();
        ConvDims { lhs: c.clone(), rhs: c.clone(), out: c }
    }

    /// Channels last: `"NHWC,HWIO,NHWC"` (for 2 spatial axes).
    pub fn channels_last(spatial: usize) -> ConvDims {
        let r = spatial + 2;
        let mut lhs = vec![0, r - 1];
        lhs.extend(1..=spatial);
        let mut rhs = vec![r - 1, r - 2];
        rhs.extend(0..spatial);
        ConvDims { lhs: lhs.clone(), rhs, out: lhs }
    }

    /// The number of spatial axes.
    pub fn spatial(&self) -> usize {
        self.lhs.len().saturating_sub(2)
    }

    /// Read `"NHWC,HWIO,NHWC"`: see the module docs.
    pub fn parse(text: &str) -> Result<ConvDims, String> {
        let bad = || format!("`dims=\"{text}\"`: expected three specs such as \"NHWC,HWIO,NHWC\"");
        let parts: Vec<Vec<char>> = text.split(',').map(|p| p.trim().chars().collect()).collect();
        let [l, r, o] = &parts[..] else { return Err(bad()) };
        let rank = l.len();
        if !(3..=5).contains(&rank) || r.len() != rank || o.len() != rank {
            return Err(format!("{}: each spec needs 3 to 5 letters, all of one length", bad()));
        }
        let one = |spec: &[char], c: char| -> Result<usize, String> {
            let at: Vec<usize> = (0..spec.len()).filter(|&i| spec[i] == c).collect();
            match at[..] {
                [i] => Ok(i),
                _ => Err(format!("{}: `{c}` must appear once", bad())),
            }
        };
        let (rb, ri) = (one(r, 'O')?, one(r, 'I')?);
        let spatial: Vec<char> = (0..rank).filter(|&i| i != rb && i != ri).map(|i| r[i]).collect();
        let mut rhs = vec![rb, ri];
        rhs.extend((0..rank).filter(|&i| i != rb && i != ri));
        let order = |spec: &[char], a: char, b: char| -> Result<Vec<usize>, String> {
            let mut v = vec![one(spec, a)?, one(spec, b)?];
            for &c in &spatial {
                if matches!(c, 'N' | 'C' | 'O' | 'I') {
                    return Err(format!("{}: `{c}` is not a spatial letter", bad()));
                }
                v.push(one(spec, c)?);
            }
            Ok(v)
        };
        let dims = ConvDims { lhs: order(l, 'N', 'C')?, rhs, out: order(o, 'N', 'C')? };
        dims.check().map_err(|e| format!("{}: {e}", bad()))?;
        Ok(dims)
    }

    /// Each list a permutation of one rank's axes.
    fn check(&self) -> Result<(), ConvError> {
        let rank = self.lhs.len();
        let perm = |v: &[usize]| {
            let mut s = v.to_vec();
            s.sort_unstable();
            s == (0..rank).collect::<Vec<_>>()
        };
        if !(3..=5).contains(&rank) || !perm(&self.lhs) || !perm(&self.rhs) || !perm(&self.out) {
            return Err(ConvError::Dims(self.to_string()));
        }
        Ok(())
    }
}

impl std::fmt::Display for ConvDims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.spatial();
        if s == 0 || s > 3 {
            return write!(f, "{:?},{:?},{:?}", self.lhs, self.rhs, self.out);
        }
        let letters = spatial_letters(s);
        let spec = |perm: &[usize], a: char, b: char| {
            let mut v = vec!['?'; perm.len()];
            for (j, &axis) in perm.iter().enumerate() {
                if let Some(slot) = v.get_mut(axis) {
                    *slot = match j {
                        0 => a,
                        1 => b,
                        // Lists of another length than the lhs's are refused by `check`,
                        // which prints them: no letter for their extra axes.
                        _ => letters.get(j - 2).copied().unwrap_or('?'),
                    };
                }
            }
            v.into_iter().collect::<String>()
        };
        write!(
            f,
            "{},{},{}",
            spec(&self.lhs, 'N', 'C'),
            spec(&self.rhs, 'O', 'I'),
            spec(&self.out, 'N', 'C')
        )
    }
}

/// A convolution. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conv {
    /// Which axis is which.
    pub dims: ConvDims,
    /// Window strides per spatial axis (≥ 1).
    pub strides: Vec<usize>,
    /// Padding `(lo, hi)` per spatial axis of the dilated input; negative crops.
    pub padding: Vec<(i64, i64)>,
    /// Input dilation per spatial axis (≥ 1; transposed convolution).
    pub lhs_dilation: Vec<usize>,
    /// Kernel dilation per spatial axis (≥ 1; atrous convolution).
    pub rhs_dilation: Vec<usize>,
    /// Feature groups (depthwise: as many as input features).
    pub feature_groups: usize,
    /// Batch groups.
    pub batch_groups: usize,
}

/// The spatial sizes of a canonical `[N, C, s…]` shape.
fn yt_spatial(shape: &[usize]) -> Vec<usize> {
    shape[2..].to_vec()
}

/// The size of `d` elements with `k − 1` zeros between neighbours.
fn dilate(d: usize, k: usize) -> usize {
    if d == 0 { 0 } else { (d - 1) * k + 1 }
}

/// The inverse of a permutation.
fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (j, &p) in perm.iter().enumerate() {
        inv[p] = j;
    }
    inv
}

/// `[0, 1 + p...]`: a permutation that keeps a new leading axis in front.
fn behind_front(perm: &[usize]) -> Vec<usize> {
    std::iter::once(0).chain(perm.iter().map(|p| p + 1)).collect()
}

/// `perm` with its first two entries exchanged.
fn swap01(perm: &[usize]) -> Vec<usize> {
    let mut p = perm.to_vec();
    p.swap(0, 1);
    p
}

impl Conv {
    /// Stride 1, no padding or dilation, one group, over `dims`.
    pub fn new(dims: ConvDims) -> Conv {
        let s = dims.spatial();
        Conv {
            dims,
            strides: vec![1; s],
            padding: vec![(0, 0); s],
            lhs_dilation: vec![1; s],
            rhs_dilation: vec![1; s],
            feature_groups: 1,
            batch_groups: 1,
        }
    }

    fn spatial(&self) -> usize {
        self.dims.spatial()
    }

    /// The same convolution on canonical operands, with other group counts.
    fn canonical(&self, feature_groups: usize, batch_groups: usize) -> Conv {
        Conv {
            dims: ConvDims::canonical(self.spatial()),
            feature_groups,
            batch_groups,
            ..self.clone()
        }
    }

    /// The output size of spatial axis `j` for input size `d` and window size `w`.
    fn out_size(&self, j: usize, d: usize, w: usize) -> Result<usize, ConvError> {
        let (lo, hi) = self.padding[j];
        let padded = dilate(d, self.lhs_dilation[j]) as i128 + i128::from(lo) + i128::from(hi);
        if padded < 0 {
            return Err(ConvError::Padding { axis: j, lo, hi });
        }
        let win = dilate(w, self.rhs_dilation[j]) as i128;
        Ok(if padded < win { 0 } else { ((padded - win) / self.strides[j] as i128 + 1) as usize })
    }

    /// The output's canonical shape `[N / batch_groups, O, spatial…]`.
    fn canonical_out(&self, x: &[usize], k: &[usize]) -> Result<Vec<usize>, ConvError> {
        let s = self.spatial();
        for (attr, len) in [
            ("strides", self.strides.len()),
            ("padding", self.padding.len()),
            ("lhs_dilation", self.lhs_dilation.len()),
            ("rhs_dilation", self.rhs_dilation.len()),
        ] {
            if len != s {
                return Err(ConvError::AttrLength { attr, got: len, spatial: s });
            }
        }
        for (attr, v) in [
            ("strides", &self.strides),
            ("lhs_dilation", &self.lhs_dilation),
            ("rhs_dilation", &self.rhs_dilation),
        ] {
            if v.contains(&0) {
                return Err(ConvError::Zero(attr));
            }
        }
        let (g, bg) = (self.feature_groups, self.batch_groups);
        if g == 0 || bg == 0 || (g > 1 && bg > 1) {
            return Err(ConvError::Groups(format!(
                "feature_groups={g} and batch_groups={bg}: both must be at least 1, and one of them 1"
            )));
        }
        let (n, c) = (x[self.dims.lhs[0]], x[self.dims.lhs[1]]);
        let (o, i) = (k[self.dims.rhs[0]], k[self.dims.rhs[1]]);
        if c % g != 0 || c / g != i {
            return Err(ConvError::Features { lhs: c, rhs: i, groups: g });
        }
        for (what, size, groups) in [
            ("kernel output features", o, g),
            ("kernel output features", o, bg),
            ("input batch", n, bg),
        ] {
            if size % groups != 0 {
                return Err(ConvError::Groups(format!(
                    "{what} ({size}) are not divisible into {groups} groups"
                )));
            }
        }
        let mut out = vec![n / bg, o];
        for j in 0..s {
            out.push(self.out_size(j, x[self.dims.lhs[2 + j]], k[self.dims.rhs[2 + j]])?);
        }
        Ok(out)
    }

    fn run<T: Float>(&self, x: &Tensor, k: &Tensor, out: &TensorType) -> Option<Vec<T>> {
        let (xv, kv) = (T::view(&x.data)?, T::view(&k.data)?);
        let (xd, kd) = (x.shape.dims(), k.shape.dims());
        let (xs, ks, os) = (x.shape.strides(), k.shape.strides(), out.shape.strides());
        let s = self.spatial();
        let (dl, dr, dout) = (&self.dims.lhs, &self.dims.rhs, &self.dims.out);
        let (n_out, o_all) = (out.shape.dims()[dout[0]], kd[dr[0]]);
        let i_all = kd[dr[1]];
        let in_sizes: Vec<usize> = (0..s).map(|j| xd[dl[2 + j]]).collect();
        let window: Vec<usize> = (0..s).map(|j| kd[dr[2 + j]]).collect();
        let out_sp: Vec<usize> = (0..s).map(|j| out.shape.dims()[dout[2 + j]]).collect();
        let (per_g, per_bg) = (o_all / self.feature_groups, o_all / self.batch_groups);
        let mut res = vec![T::zero(); out.numel()];
        let mut canon = vec![n_out, o_all];
        canon.extend(&out_sp);
        for_each_index(&canon, |idx| {
            let (nq, o, p) = (idx[0], idx[1], &idx[2..]);
            let (g, h) = (o / per_g, o / per_bg);
            let n = h * n_out + nq;
            let mut terms = Vec::with_capacity(window.iter().product::<usize>() * i_all);
            for_each_index(&window, |tap| {
                // The input position of this tap, if it is not padding.
                let mut at = Some(n * xs[dl[0]]);
                for j in 0..s {
                    let q = (p[j] * self.strides[j] + tap[j] * self.rhs_dilation[j]) as i128
                        - i128::from(self.padding[j].0);
                    let ld = self.lhs_dilation[j] as i128;
                    let inside = q >= 0 && q % ld == 0 && q / ld < in_sizes[j] as i128;
                    at = at.filter(|_| inside).map(|a| a + (q / ld) as usize * xs[dl[2 + j]]);
                }
                let kbase: usize =
                    o * ks[dr[0]] + (0..s).map(|j| tap[j] * ks[dr[2 + j]]).sum::<usize>();
                for i in 0..i_all {
                    let xval = at.map_or(T::zero(), |a| xv[a + (g * i_all + i) * xs[dl[1]]]);
                    terms.push(xval.mul(kv[kbase + i * ks[dr[1]]]));
                }
            });
            let v =
                if terms.is_empty() { T::zero() } else { sum::sum_from(T::from_f64(-0.0), terms) };
            let off = nq * os[dout[0]]
                + o * os[dout[1]]
                + (0..s).map(|j| p[j] * os[dout[2 + j]]).sum::<usize>();
            res[off] = v;
        });
        Some(res)
    }

    /// The padding of the transpose with respect to the input (see the module docs).
    fn lhs_transpose_padding(&self, x: &[usize], k: &[usize], y: &[usize]) -> Vec<(i64, i64)> {
        (0..self.spatial())
            .map(|j| {
                let ld = dilate(x[j], self.lhs_dilation[j]) as i64;
                let rd = dilate(k[j], self.rhs_dilation[j]) as i64;
                let od = dilate(y[j], self.strides[j]) as i64;
                let before = rd - self.padding[j].0 - 1;
                (before, ld + rd - 1 - od - before)
            })
            .collect()
    }

    /// Spatial sizes of an operand of `shape` whose canonical order is `perm`.
    fn spatial_of(shape: &[usize], perm: &[usize]) -> Vec<usize> {
        perm[2..].iter().map(|&a| shape[a]).collect()
    }

    /// The cotangent of the input (of type `xt`) from the output's `ct`, the kernel `k` known.
    fn transpose_lhs(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        xt: &TensorType,
        k: NodeId,
    ) -> Result<NodeId, IrError> {
        let s = self.spatial();
        let kt = b.ty(k)?.shape.0.clone();
        let yt = b.ty(ct)?.shape.0.clone();
        if yt.iter().product::<usize>() == 0 {
            return zeros(b, xt);
        }
        let (o, i) = (kt[self.dims.rhs[0]], kt[self.dims.rhs[1]]);
        let grp = self.feature_groups.max(self.batch_groups);
        let win = Self::spatial_of(&kt, &self.dims.rhs);
        let x_sp = Self::spatial_of(xt.shape.dims(), &self.dims.lhs);
        let y_sp = Self::spatial_of(&yt, &self.dims.out);
        let transposed = |dims: ConvDims, groups: usize| Conv {
            dims,
            strides: self.lhs_dilation.clone(),
            padding: self.lhs_transpose_padding(&x_sp, &win, &y_sp),
            lhs_dilation: self.strides.clone(),
            rhs_dilation: self.rhs_dilation.clone(),
            feature_groups: groups,
            batch_groups: 1,
        };
        if grp == 1 {
            // Ungrouped: the cotangent and the reversed kernel in their own layouts (the
            // kernel's input and output features exchanged), the result in the input's.
            let spatial: Vec<usize> = self.dims.rhs[2..].to_vec();
            let mut axes = spatial.clone();
            axes.sort_unstable();
            let k_r = b.add(Reverse { axes }.into(), &[k])?;
            let dims = ConvDims {
                lhs: self.dims.out.clone(),
                rhs: swap01(&self.dims.rhs),
                out: self.dims.lhs.clone(),
            };
            return b.add(transposed(dims, 1).into(), &[ct, k_r]);
        }
        let ct_c = b.transpose(ct, &self.dims.out)?;
        let k_c = b.transpose(k, &self.dims.rhs)?;
        // The output features' groups move next to the input features: [O/grp, grp·I, w…], the
        // transposed kernel's input and output features.
        let k_g = b.reshape(k_c, [&[grp, o / grp, i][..], &win].concat())?;
        let k_g = b.transpose(k_g, &swap01(&(0..s + 3).collect::<Vec<_>>()))?;
        let k_g = b.reshape(k_g, [&[o / grp, grp * i][..], &win].concat())?;
        let k_r = b.add(Reverse { axes: (2..s + 2).collect() }.into(), &[k_g])?;
        let mut dims = ConvDims::canonical(s);
        dims.rhs.swap(0, 1);
        let mut dx = b.add(transposed(dims, grp).into(), &[ct_c, k_r])?;
        if self.batch_groups > 1 {
            // [N/bg, bg·C, s…] → [bg, N/bg, C, s…] → [N, C, s…].
            let (n, c) = (xt.shape.dims()[self.dims.lhs[0]], xt.shape.dims()[self.dims.lhs[1]]);
            let bg = self.batch_groups;
            dx = b.reshape(dx, [&[n / bg, bg, c][..], &x_sp].concat())?;
            dx = b.transpose(dx, &swap01(&(0..s + 3).collect::<Vec<_>>()))?;
            dx = b.reshape(dx, [&[n, c][..], &x_sp].concat())?;
        }
        b.transpose(dx, &inverse(&self.dims.lhs))
    }

    /// The cotangent of the kernel (of type `kt`) from the output's `ct`, the input `x` known:
    /// a `dot_general` of the cotangent with the patches of the dilated, padded input,
    /// contracting the batch and the window positions (`dk[o, i, taps] = Σ_{n, pos} ct[n, o,
    /// pos]·patches[n, i, pos, taps]`), with the feature or batch groups as a batch axis. As a
    /// contraction, not a convolution, it is an einsum the optimiser's reordering sees into:
    /// a layer's kernel term `dk₁·dk₂ᵀ` can then be computed from per-example Jacobians or as
    /// the product of the patches' and the cotangents' Gram matrices, whichever is cheaper.
    fn transpose_rhs(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        x: NodeId,
        kt: &TensorType,
    ) -> Result<NodeId, IrError> {
        let s = self.spatial();
        let yt = b.ty(ct)?.shape.0.clone();
        if yt.iter().product::<usize>() == 0 || kt.numel() == 0 {
            return zeros(b, kt);
        }
        let w_sp = Self::spatial_of(kt.shape.dims(), &self.dims.rhs);
        let (o, i) = (kt.shape.dims()[self.dims.rhs[0]], kt.shape.dims()[self.dims.rhs[1]]);
        // The input in canonical order [N, C, s…], dilated and padded (negative padding crops).
        let mut xc = b.transpose(x, &self.dims.lhs)?;
        let xd = b.ty(xc)?.shape.0.clone();
        let grow = |p: i64| usize::try_from(p.max(0)).unwrap_or(0);
        let pad = Pad {
            lo: [&[0, 0][..], &self.padding.iter().map(|p| grow(p.0)).collect::<Vec<_>>()].concat(),
            hi: [&[0, 0][..], &self.padding.iter().map(|p| grow(p.1)).collect::<Vec<_>>()].concat(),
            interior: [&[0, 0][..], &self.lhs_dilation.iter().map(|d| d - 1).collect::<Vec<_>>()]
                .concat(),
        };
        if pad.lo.iter().chain(&pad.hi).chain(&pad.interior).any(|&p| p != 0) {
            xc = b.add(pad.into(), &[xc])?;
        }
        if self.padding.iter().any(|p| p.0 < 0 || p.1 < 0) {
            let pd = b.ty(xc)?.shape.0.clone();
            let crop = |p: i64| usize::try_from(-p.min(0)).unwrap_or(0);
            let start: Vec<usize> =
                [&[0, 0][..], &self.padding.iter().map(|p| crop(p.0)).collect::<Vec<_>>()].concat();
            let stop: Vec<usize> = (0..s + 2)
                .map(|a| if a < 2 { pd[a] } else { pd[a] - crop(self.padding[a - 2].1) })
                .collect();
            xc = b.slice(xc, &start, &stop, &vec![1; s + 2])?;
        }
        let spatial: Vec<usize> = (2..s + 2).collect();
        let p = Patches {
            axes: spatial.clone(),
            window: w_sp.clone(),
            strides: self.strides.clone(),
            dilation: self.rhs_dilation.clone(),
        };
        let pt = b.add(p.into(), &[xc])?; // [N, C, pos…, taps…]
        let ctc = b.transpose(ct, &self.dims.out)?; // [N', O, pos…]
        let pos: Vec<usize> = yt_spatial(&b.ty(ctc)?.shape.0);
        let (n, c) = (xd[0], xd[1]);
        let (g, bg) = (self.feature_groups, self.batch_groups);
        let dk = if g == 1 && bg == 1 {
            // [O, C, taps…]
            let dims = DotGeneral {
                lhs_contract: [&[0][..], &spatial].concat(),
                rhs_contract: [&[0][..], &spatial].concat(),
                lhs_batch: vec![],
                rhs_batch: vec![],
            };
            b.dot_general(ctc, pt, dims)?
        } else if bg == 1 {
            // Feature groups: ct [N, g, O/g, pos…], patches [N, g, C/g, pos…, taps…].
            let ctg = b.reshape(ctc, [&[n, g, o / g][..], &pos].concat())?;
            let ptg = b.reshape(pt, [&[n, g, c / g][..], &pos, &w_sp].concat())?;
            let sp3: Vec<usize> = (3..s + 3).collect();
            let dims = DotGeneral {
                lhs_contract: [&[0][..], &sp3].concat(),
                rhs_contract: [&[0][..], &sp3].concat(),
                lhs_batch: vec![1],
                rhs_batch: vec![1],
            };
            let d = b.dot_general(ctg, ptg, dims)?; // [g, O/g, C/g, taps…]
            b.reshape(d, [&[o, i][..], &w_sp].concat())?
        } else {
            // Batch groups: ct [N/bg, bg, O/bg, pos…], patches [bg, N/bg, C, pos…, taps…].
            let ctg = b.reshape(ctc, [&[n / bg, bg, o / bg][..], &pos].concat())?;
            let ptg = b.reshape(pt, [&[bg, n / bg, c][..], &pos, &w_sp].concat())?;
            let sp3: Vec<usize> = (3..s + 3).collect();
            let dims = DotGeneral {
                lhs_contract: [&[0][..], &sp3].concat(),
                rhs_contract: [&[1][..], &sp3].concat(),
                lhs_batch: vec![1],
                rhs_batch: vec![0],
            };
            let d = b.dot_general(ctg, ptg, dims)?; // [bg, O/bg, C, taps…]
            b.reshape(d, [&[o, i][..], &w_sp].concat())?
        };
        // Canonical [O, I, w…] to the kernel's layout.
        b.transpose(dk, &inverse(&self.dims.rhs))
    }

    /// The batching rule on canonical operands (`x`: `[B?, N, C, s…]`, `k`: `[B?, O, I, w…]`,
    /// the batch axis first where batched): the result `[B, N', O, s…]`.
    fn batch_canonical(
        &self,
        b: &mut FunctionBuilder,
        x: NodeId,
        k: NodeId,
        batched: (bool, bool),
        size: usize,
    ) -> Result<NodeId, IrError> {
        let s = self.spatial();
        let (xd, kd) = (b.ty(x)?.shape.0.clone(), b.ty(k)?.shape.0.clone());
        let (g, bg) = (self.feature_groups, self.batch_groups);
        let tail = |v: &[usize], from: usize| v[from..].to_vec();
        let front2 = |b: &mut FunctionBuilder, v: NodeId, rank: usize| {
            b.transpose(v, &swap01(&(0..rank).collect::<Vec<_>>()))
        };
        let y = match batched {
            (true, false) => {
                // [B, N, C, s] → [bg, B, N/bg, C, s] → [B·N, C, s]: each batch group keeps its rows.
                let (n, c) = (xd[1], xd[2]);
                let x = b.reshape(x, [&[size, bg, n / bg, c][..], &tail(&xd, 3)].concat())?;
                let x = front2(b, x, s + 4)?;
                let x = b.reshape(x, [&[size * n, c][..], &tail(&xd, 3)].concat())?;
                let y = b.add(self.canonical(g, bg).into(), &[x, k])?;
                let yd = b.ty(y)?.shape.0.clone();
                b.reshape(y, [&[size, n / bg][..], &tail(&yd, 1)].concat())?
            }
            (false, true) => {
                // [B, O, I, w] → [grp, B, O/grp, I, w] → [B·O, I, w]: each group keeps its outputs.
                let grp = g.max(bg);
                let (o, i) = (kd[1], kd[2]);
                let k = b.reshape(k, [&[size, grp, o / grp, i][..], &tail(&kd, 3)].concat())?;
                let k = front2(b, k, s + 4)?;
                let k = b.reshape(k, [&[size * o, i][..], &tail(&kd, 3)].concat())?;
                let y = b.add(self.canonical(g, bg).into(), &[x, k])?;
                let yd = b.ty(y)?.shape.0.clone();
                let sp = tail(&yd, 2);
                let y = b.reshape(y, [&[yd[0], grp, size, o / grp][..], &sp].concat())?;
                let mut perm = vec![2, 0, 1, 3];
                perm.extend(4..s + 4);
                let y = b.transpose(y, &perm)?;
                b.reshape(y, [&[size, yd[0], o][..], &sp].concat())?
            }
            _ => {
                // Both: the batch joins the groups, batch-major.
                let (n, c, o, i) = (xd[1], xd[2], kd[1], kd[2]);
                let k = b.reshape(k, [&[size * o, i][..], &tail(&kd, 3)].concat())?;
                let (x, conv) = if bg > 1 {
                    let x = b.reshape(x, [&[size * n, c][..], &tail(&xd, 3)].concat())?;
                    (x, self.canonical(1, size * bg))
                } else {
                    let x = front2(b, x, s + 3)?;
                    let x = b.reshape(x, [&[n, size * c][..], &tail(&xd, 3)].concat())?;
                    (x, self.canonical(size * g, 1))
                };
                let y = b.add(conv.into(), &[x, k])?;
                let yd = b.ty(y)?.shape.0.clone();
                let y = b.reshape(y, [&[yd[0], size, o][..], &tail(&yd, 2)].concat())?;
                front2(b, y, s + 3)?
            }
        };
        Ok(y)
    }
}

impl OpRule for Conv {
    fn info(&self) -> OpInfo {
        OpInfo::new("conv", Arity::Fixed(2), Traits::NONE)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let (x, k) = (operands[0], operands[1]);
        same_dtype_float(x, k)?;
        let r = self.dims.lhs.len();
        if x.rank() != r || k.rank() != r || !(3..=5).contains(&r) {
            return Err(TypeError::Conv(ConvError::Rank { lhs: x.rank(), rhs: k.rank() }));
        }
        self.dims.check().map_err(TypeError::Conv)?;
        let canon = self.canonical_out(x.shape.dims(), k.shape.dims()).map_err(TypeError::Conv)?;
        let mut dims = vec![0; r];
        for (j, &axis) in self.dims.out.iter().enumerate() {
            dims[axis] = canon[j];
        }
        Ok(x.with_shape(dims))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let (x, k, out) = (a.x[0], a.x[1], a.out);
        let data = match x.data {
            Data::F32(_) => self.run::<f32>(x, k, out).map(Data::F32),
            Data::F64(_) => self.run::<f64>(x, k, out).map(Data::F64),
            Data::I32(_) | Data::Bool(_) => None,
        };
        Ok(Tensor { shape: out.shape.clone(), data: data.ok_or_else(|| bad_dtype("conv"))? })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        let (x, t) = (a.x, a.t);
        // Bilinear: d conv(x, k) = conv(ẋ, k) + conv(x, k̇).
        let p = t[0].map(|t| b.add(self.clone().into(), &[t, x[1]])).transpose()?;
        let q = t[1].map(|t| b.add(self.clone().into(), &[x[0], t])).transpose()?;
        match (p, q) {
            (Some(p), Some(q)) => b.binary(Binary::Add, p, q).map(Some),
            (p, q) => Ok(p.or(q)),
        }
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        match (&operands[0], &operands[1]) {
            (Lin::Linear(xt), Lin::Known(k)) => {
                Ok(vec![Some(self.transpose_lhs(b, ct, xt, *k)?), None])
            }
            (Lin::Known(x), Lin::Linear(kt)) => {
                Ok(vec![None, Some(self.transpose_rhs(b, ct, *x, kt)?)])
            }
            (Lin::Known(_), Lin::Known(_)) => Ok(vec![None, None]),
            (Lin::Linear(_), Lin::Linear(_)) => Err(not_linear(
                "conv",
                "both operands are linear (the convolution is quadratic in them)",
            )),
        }
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        let (x, k) = (a.x[0], a.x[1]);
        if let (Some(d), None) = (a.dims[0], a.dims[1])
            && self.batch_groups == 1
        {
            // Only the input batched: the batch joins the input's batch axis in the input's own
            // layout (`[…, B, N, …]` → `[…, B·N, …]`), the convolution keeps its dimension
            // numbers, and the output's batch axis splits back. A channels-last network stays
            // channels-last: no transposes to the canonical order and back, which would make
            // the merge a copy and the JIT's patches gather across features.
            let xd = b.ty(x)?.shape.0.clone();
            let n_at = self.dims.lhs[0];
            let mut perm: Vec<usize> = (0..xd.len()).filter(|&a| a != d).collect();
            perm.insert(n_at, d);
            let xt = b.transpose(x, &perm)?;
            let mut merged: Vec<usize> = perm.iter().map(|&a| xd[a]).collect();
            merged[n_at] *= merged.remove(n_at + 1);
            let xm = b.reshape(xt, merged)?;
            let y = b.add(self.clone().into(), &[xm, k])?;
            let mut yd = b.ty(y)?.shape.0.clone();
            let o_at = self.dims.out[0];
            yd[o_at] /= a.size;
            yd.insert(o_at, a.size);
            return Ok((b.reshape(y, yd)?, Some(o_at)));
        }
        let to_canon =
            |b: &mut FunctionBuilder, v: NodeId, d: Option<usize>, perm: &[usize]| match d {
                Some(d) => {
                    let v = move_to_front(b, v, d)?;
                    b.transpose(v, &behind_front(perm))
                }
                None => b.transpose(v, perm),
            };
        let x = to_canon(b, x, a.dims[0], &self.dims.lhs)?;
        let k = to_canon(b, k, a.dims[1], &self.dims.rhs)?;
        let batched = (a.dims[0].is_some(), a.dims[1].is_some());
        let y = self.batch_canonical(b, x, k, batched, a.size)?;
        Ok((b.transpose(y, &behind_front(&inverse(&self.dims.out)))?, Some(0)))
    }
    fn write_attrs(&self, out: &mut String) {
        let _ = write!(out, ", dims=\"{}\"", self.dims);
        let list = |v: &[usize]| Shape(v.to_vec()).to_string();
        if self.strides.iter().any(|&s| s != 1) {
            let _ = write!(out, ", strides={}", list(&self.strides));
        }
        if self.padding.iter().any(|&p| p != (0, 0)) {
            let pairs: Vec<String> =
                self.padding.iter().map(|(l, h)| format!("[{l},{h}]")).collect();
            let _ = write!(out, ", padding=[{}]", pairs.join(","));
        }
        if self.lhs_dilation.iter().any(|&s| s != 1) {
            let _ = write!(out, ", lhs_dilation={}", list(&self.lhs_dilation));
        }
        if self.rhs_dilation.iter().any(|&s| s != 1) {
            let _ = write!(out, ", rhs_dilation={}", list(&self.rhs_dilation));
        }
        if self.feature_groups != 1 {
            let _ = write!(out, ", feature_groups={}", self.feature_groups);
        }
        if self.batch_groups != 1 {
            let _ = write!(out, ", batch_groups={}", self.batch_groups);
        }
    }
}

/// `padding="SAME"` (JAX's: the output is ⌈input / stride⌉, the extra zero after when odd) or
/// `"VALID"` (none), for the operand types of a call.
fn named_padding(conv: &Conv, name: &str, args: &CallArgs) -> Result<Vec<(i64, i64)>, String> {
    let s = conv.spatial();
    match name {
        "VALID" => Ok(vec![(0, 0); s]),
        "SAME" => {
            let [x, k] = &args.operand_types[..] else {
                return Err("`padding=\"SAME\"` needs the two operands".into());
            };
            if x.rank() != s + 2 || k.rank() != s + 2 {
                return Err("`padding=\"SAME\"`: operand ranks do not match `dims`".into());
            }
            Ok((0..s)
                .map(|j| {
                    let d = dilate(x.shape.dims()[conv.dims.lhs[2 + j]], conv.lhs_dilation[j]);
                    let w = dilate(k.shape.dims()[conv.dims.rhs[2 + j]], conv.rhs_dilation[j]);
                    let st = conv.strides[j].max(1);
                    let out = d.div_ceil(st);
                    let total = ((out.saturating_sub(1)) * st + w).saturating_sub(d) as i64;
                    (total / 2, total - total / 2)
                })
                .collect())
        }
        other => {
            Err(format!("`padding=\"{other}\"`: expected \"SAME\", \"VALID\" or [[lo,hi],...]"))
        }
    }
}

fn int_pairs(v: &AttrValue) -> Option<Vec<(i64, i64)>> {
    let AttrValue::List(items) = v else { return None };
    items
        .iter()
        .map(|p| match p {
            AttrValue::List(pair) => match pair[..] {
                [AttrValue::Int(l), AttrValue::Int(h)] => Some((l, h)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

impl ParseOp for Conv {
    fn names() -> Vec<&'static str> {
        vec!["conv"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "conv").then(|| {
            let dims = match args.take("dims") {
                Some(AttrValue::Str(s)) => ConvDims::parse(&s)?,
                Some(_) => return Err("`dims` must be a string such as \"NHWC,HWIO,NHWC\"".into()),
                None => return Err("missing attribute `dims=\"NHWC,HWIO,NHWC\"`".into()),
            };
            let mut conv = Conv::new(dims);
            let s = conv.spatial();
            conv.strides = args.take_usizes_or("strides", || vec![1; s])?;
            conv.lhs_dilation = args.take_usizes_or("lhs_dilation", || vec![1; s])?;
            conv.rhs_dilation = args.take_usizes_or("rhs_dilation", || vec![1; s])?;
            for (key, slot) in [
                ("feature_groups", &mut conv.feature_groups),
                ("batch_groups", &mut conv.batch_groups),
            ] {
                if args.keyword.iter().any(|(k, _)| k == key) {
                    *slot = usize::try_from(args.take_int(key)?)
                        .map_err(|_| format!("`{key}` must be a positive integer"))?;
                }
            }
            conv.padding = match args.take("padding") {
                None => vec![(0, 0); s],
                Some(AttrValue::Str(p)) => named_padding(&conv, &p, args)?,
                Some(v) => int_pairs(&v).ok_or_else(|| {
                    "`padding` must be [[lo,hi],...] (integers), \"SAME\" or \"VALID\"".to_string()
                })?,
            };
            Ok(conv)
        })
    }
}
