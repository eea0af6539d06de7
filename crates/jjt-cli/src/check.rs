//! `jjt check`: a gradient check for users. At random points (in f64), JVPs against central
//! finite differences and VJPs by the dot-product test ⟨J t, c⟩ = ⟨t, Jᵀ c⟩.

use jjt_ir::random::XorShift64 as Rng;
use jjt_ir::{Function, Tensor, interp};

use crate::CliError;
use crate::args::Precision;

/// Thresholds: central differences with h = 1e-6 have truncation error ~h²·|f'''| and
/// rounding error ~u·|f|/h ≈ 1e-10·|f|; 1e-5 relative flags real errors, not noise. The
/// dot-product test compares two exact-arithmetic-equal sums; 1e-10 of their scale is far above
/// rounding.
const JVP_TOL: f64 = 1e-5;
const VJP_TOL: f64 = 1e-10;

fn random(rng: &mut Rng, ty: &jjt_ir::TensorType, lo: f64, hi: f64) -> Result<Tensor, CliError> {
    let mut v: Vec<f64> = Vec::new();
    v.try_reserve_exact(ty.numel()).map_err(|_| CliError::Alloc(ty.clone()))?;
    v.extend((0..ty.numel()).map(|_| rng.uniform(lo, hi)));
    Ok(Tensor::from_f64(ty, &v)?)
}

pub(crate) fn run(
    f: &Function,
    wrt: &[String],
    inputs: &[String],
    points: usize,
    seed: u64,
    (lo, hi): (f64, f64),
) -> Result<(), CliError> {
    let fixed = crate::bind::bind_some(f, inputs, "--in", Precision::F64)?;
    let j = jjt_ad::jvp(f, wrt)?;
    let v = jjt_ad::vjp(f, wrt)?;
    let mask = jjt_ad::input_mask(f, wrt)?;
    let n_out = f.outputs().len();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut worst_jvp, mut worst_vjp) = (0.0f64, 0.0f64);
    let mut worst_at = String::new();
    outln!("checking `{}` with respect to {} at {points} points (f64)", f.name, wrt.join(", "));
    for k in 0..points {
        let x: Vec<Tensor> = f
            .params()
            .iter()
            .zip(&fixed)
            .map(|(p, t)| match t {
                Some(t) => Ok(t.clone()),
                // Integer inputs that index tables: uniform in [0, rows), every lookup in range.
                None => match jjt_ir::ops::gather::index_rows(f, &p.name) {
                    Some(rows) if p.ty.dtype == jjt_ir::DType::I32 => {
                        random(&mut rng, &p.ty, 0.0, rows as f64)
                    }
                    _ => random(&mut rng, &p.ty, lo, hi),
                },
            })
            .collect::<Result<_, _>>()?;
        let t: Vec<Tensor> = f
            .params()
            .iter()
            .zip(&mask)
            .filter(|(_, m)| **m)
            .map(|(p, _)| random(&mut rng, &p.ty, -1.0, 1.0))
            .collect::<Result<_, _>>()?;
        let mut args = x.clone();
        args.extend(t.iter().cloned());
        let outs = interp::eval_outputs(&j, &args)?;
        // Central differences along t.
        let h = 1e-6;
        let shift = |s: f64| -> Result<Vec<Tensor>, CliError> {
            let mut ti = t.iter();
            f.params()
                .iter()
                .zip(&x)
                .zip(&mask)
                .map(|((p, xv), m)| {
                    if !*m {
                        return Ok(xv.clone());
                    }
                    let d = ti.next().map(Tensor::to_f64_vec).unwrap_or_default();
                    let v: Vec<f64> =
                        xv.to_f64_vec().iter().zip(d).map(|(a, b)| a + s * b).collect();
                    Ok(Tensor::from_f64(&p.ty, &v)?)
                })
                .collect()
        };
        let plus = interp::eval_outputs(f, &shift(h)?)?;
        let minus = interp::eval_outputs(f, &shift(-h)?)?;
        for o in 0..n_out {
            let ad = outs[n_out + o].to_f64_vec();
            let (p, m) = (plus[o].to_f64_vec(), minus[o].to_f64_vec());
            for (i, a) in ad.iter().enumerate() {
                let fd = (p[i] - m[i]) / (2.0 * h);
                let err = (a - fd).abs() / (1.0 + fd.abs());
                if err > worst_jvp || err.is_nan() {
                    worst_jvp = if err.is_nan() { f64::INFINITY } else { err };
                    worst_at = format!(
                        "point {k}, output {o}, element {i}: JVP {a:e}, finite differences {fd:e}"
                    );
                }
            }
        }
        // Dot-product test with a random cotangent for each output (one-output functions).
        if n_out == 1 {
            let ty = f
                .output_type()
                .cloned()
                .unwrap_or_else(|| jjt_ir::TensorType::scalar(jjt_ir::DType::F64));
            let c = random(&mut rng, &ty, -1.0, 1.0)?;
            let mut vargs = x.clone();
            vargs.push(c.clone());
            let cts = interp::eval_outputs(&v, &vargs)?;
            let jt = outs[1].to_f64_vec();
            let (mut lhs, mut scale) = (0.0, 0.0);
            for (a, b) in jt.iter().zip(c.to_f64_vec()) {
                lhs += a * b;
                scale += (a * b).abs();
            }
            let mut rhs = 0.0;
            for (ti, ci) in t.iter().zip(&cts) {
                for (a, b) in ti.to_f64_vec().iter().zip(ci.to_f64_vec()) {
                    rhs += a * b;
                    scale += (a * b).abs();
                }
            }
            let err = (lhs - rhs).abs() / scale.max(f64::MIN_POSITIVE);
            worst_vjp = worst_vjp.max(if err.is_nan() { f64::INFINITY } else { err });
        }
    }
    outln!(
        "worst JVP error vs finite differences: {worst_jvp:.2e} (tolerance {JVP_TOL:.0e}, relative to 1+|fd|)"
    );
    if !worst_at.is_empty() {
        outln!("  at {worst_at}");
    }
    if n_out == 1 {
        outln!("worst VJP dot-product error: {worst_vjp:.2e} (tolerance {VJP_TOL:.0e})");
    }
    if worst_jvp > JVP_TOL || worst_vjp > VJP_TOL {
        return Err(CliError::CheckFailed { jvp: worst_jvp, vjp: worst_vjp });
    }
    outln!("ok");
    Ok(())
}
