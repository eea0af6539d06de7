//! Precision promotion: the same function computed in f64 (f32 inputs, constants and
//! conversions become f64). Used for gradient checks and as a high-precision reference.

use jjt_ir::ops::{Const, Convert};
use jjt_ir::{DType, Function, FunctionBuilder, Op, Replay, TensorType};

use crate::AdError;

fn promote(ty: &TensorType) -> TensorType {
    if ty.dtype == DType::F32 { ty.with_dtype(DType::F64) } else { ty.clone() }
}

/// `f` with every f32 value computed in f64. Random constants are drawn in f64 (so they are
/// the unrounded draws); literals keep their values exactly; `convert(x, to=f32)` becomes the
/// identity.
pub fn promote_f64(f: &Function) -> Result<Function, AdError> {
    let mut b = FunctionBuilder::new(f.name.clone());
    for p in f.params() {
        b.input(&p.name, promote(&p.ty))?;
    }
    let mut r = Replay::new(f);
    for (p, q) in f.params().iter().zip(b.params()) {
        r.bind(p.node, q.node);
    }
    r.run(
        &mut b,
        |_| true,
        |b, v| {
            let xs = v.arg_nodes();
            Ok::<_, AdError>(match &v.node.op {
                Op::Convert(Convert { to }) => {
                    b.convert(xs[0], if *to == DType::F32 { DType::F64 } else { *to })?
                }
                Op::Const(c) => b.constant(promote_const(c)?)?,
                _ => v.copy(b)?,
            })
        },
    )?;
    Ok(b.finish_many(r.outputs()?)?)
}

/// A constant of the same values in f64.
fn promote_const(c: &Const) -> Result<Const, AdError> {
    Ok(match c {
        Const::Literal { ty, bits } => Const::Literal { ty: promote(ty), bits: bits.clone() },
        Const::Full { ty, bits } => Const::Full { ty: promote(ty), bits: *bits },
        Const::Eye { ty } => Const::Eye { ty: promote(ty) },
        Const::Iota { ty, axis } => Const::Iota { ty: promote(ty), axis: *axis },
        Const::Random { ty, dist, seed, offset } => {
            Const::Random { ty: promote(ty), dist: *dist, seed: *seed, offset: *offset }
        }
        Const::Npy { path, value } => {
            let t = value.0.as_ref();
            let promoted = jjt_ir::Tensor::from_f64(&promote(&t.ty()), &t.to_f64_vec())
                .map_err(|source| AdError::Promote { path: path.clone(), source })?;
            Const::npy(path.clone(), promoted)
        }
    })
}
