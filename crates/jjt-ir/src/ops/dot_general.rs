//! `dot_general(a, b, contract=[[..],[..]], batch=[[..],[..]])`: the general contraction
//! (XLA's DotGeneral). Axes `contract[0][i]` of `a` and `contract[1][i]` of `b` are summed over;
//! axes `batch[0][i]` and `batch[1][i]` are paired. The result's axes are the batch axes, then
//! `a`'s free axes, then `b`'s free axes, each in operand order. `matmul`/`@` lower to it.
//! The reference accumulates each output element in contraction order, in the element dtype.

use std::fmt::Write as _;

use super::{
    Arity, AttrValue, CallArgs, OpRule, ParseOp, Traits, bad_dtype, same_dtype_float, usizes,
};
use crate::error::{EvalError, TypeError};
use crate::tensor::{Data, Float, Tensor, for_each_index};
use crate::types::{Shape, TensorType};

/// A general contraction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct DotGeneral {
    /// Contracted axes of the left operand.
    pub lhs_contract: Vec<usize>,
    /// Contracted axes of the right operand, paired with `lhs_contract`.
    pub rhs_contract: Vec<usize>,
    /// Batch axes of the left operand.
    pub lhs_batch: Vec<usize>,
    /// Batch axes of the right operand, paired with `lhs_batch`.
    pub rhs_batch: Vec<usize>,
}

impl DotGeneral {
    /// Axes of an operand of rank `rank` that are neither contracted nor batch, in order.
    pub fn free_axes(rank: usize, contract: &[usize], batch: &[usize]) -> Vec<usize> {
        (0..rank).filter(|a| !contract.contains(a) && !batch.contains(a)).collect()
    }

    fn check_axes(
        &self,
        which: &str,
        rank: usize,
        contract: &[usize],
        batch: &[usize],
    ) -> Result<(), TypeError> {
        let mut seen = vec![false; rank];
        for &a in contract.iter().chain(batch) {
            if a >= rank {
                return Err(TypeError::Axis { axis: a as i64, rank });
            }
            if seen[a] {
                return Err(TypeError::Invalid(format!("{which} axis {a} is used twice")));
            }
            seen[a] = true;
        }
        Ok(())
    }

    fn run<T: Float>(&self, a: &Tensor, b: &Tensor, out: &TensorType) -> Option<Vec<T>> {
        let (x, y) = (T::view(&a.data)?, T::view(&b.data)?);
        let (ad, bd) = (a.shape.dims(), b.shape.dims());
        let (sa, sb) = (a.shape.strides(), b.shape.strides());
        let a_free = Self::free_axes(ad.len(), &self.lhs_contract, &self.lhs_batch);
        let b_free = Self::free_axes(bd.len(), &self.rhs_contract, &self.rhs_batch);
        let csizes: Vec<usize> = self.lhs_contract.iter().map(|&i| ad[i]).collect();
        let nb = self.lhs_batch.len();
        let mut res = Vec::with_capacity(out.numel());
        for_each_index(out.shape.dims(), |idx| {
            let (bi, rest) = idx.split_at(nb);
            let (ai, bj) = rest.split_at(a_free.len());
            let mut base_a: usize = ai.iter().zip(&a_free).map(|(&i, &ax)| i * sa[ax]).sum();
            let mut base_b: usize = bj.iter().zip(&b_free).map(|(&i, &ax)| i * sb[ax]).sum();
            for (k, &i) in bi.iter().enumerate() {
                base_a += i * sa[self.lhs_batch[k]];
                base_b += i * sb[self.rhs_batch[k]];
            }
            let mut acc = T::zero();
            let mut first = true;
            for_each_index(&csizes, |c| {
                let mut ia = base_a;
                let mut ib = base_b;
                for (k, &i) in c.iter().enumerate() {
                    ia += i * sa[self.lhs_contract[k]];
                    ib += i * sb[self.rhs_contract[k]];
                }
                let p = x[ia].mul(y[ib]);
                acc = if first { p } else { acc.add(p) };
                first = false;
            });
            res.push(acc);
        });
        Some(res)
    }
}

impl OpRule for DotGeneral {
    fn name(&self) -> &'static str {
        "dot_general"
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(2)
    }
    fn traits(&self) -> Traits {
        Traits::default()
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let (a, b) = (operands[0], operands[1]);
        same_dtype_float(a, b)?;
        if self.lhs_contract.len() != self.rhs_contract.len()
            || self.lhs_batch.len() != self.rhs_batch.len()
        {
            return Err(TypeError::Invalid("contract and batch axes must come in pairs".into()));
        }
        self.check_axes("lhs", a.rank(), &self.lhs_contract, &self.lhs_batch)?;
        self.check_axes("rhs", b.rank(), &self.rhs_contract, &self.rhs_batch)?;
        let (ad, bd) = (a.shape.dims(), b.shape.dims());
        for (kind, l, r) in [
            ("contracted", &self.lhs_contract, &self.rhs_contract),
            ("batch", &self.lhs_batch, &self.rhs_batch),
        ] {
            for (&i, &j) in l.iter().zip(r.iter()) {
                if ad[i] != bd[j] {
                    return Err(TypeError::Invalid(format!(
                        "{kind} axes differ in size: lhs axis {i} has {} but rhs axis {j} has {}",
                        ad[i], bd[j]
                    )));
                }
            }
        }
        let mut dims: Vec<usize> = self.lhs_batch.iter().map(|&i| ad[i]).collect();
        dims.extend(
            Self::free_axes(ad.len(), &self.lhs_contract, &self.lhs_batch).iter().map(|&i| ad[i]),
        );
        dims.extend(
            Self::free_axes(bd.len(), &self.rhs_contract, &self.rhs_batch).iter().map(|&i| bd[i]),
        );
        Ok(a.with_shape(dims))
    }
    fn eval(
        &self,
        operands: &[&Tensor],
        out: &TensorType,
        _: &[Tensor],
    ) -> Result<Tensor, EvalError> {
        let (a, b) = (operands[0], operands[1]);
        let data = match a.data {
            Data::F32(_) => self.run::<f32>(a, b, out).map(Data::F32),
            Data::F64(_) => self.run::<f64>(a, b, out).map(Data::F64),
            Data::Bool(_) => None,
        };
        Ok(Tensor { shape: out.shape.clone(), data: data.ok_or_else(|| bad_dtype("dot_general"))? })
    }
    fn write_attrs(&self, out: &mut String) {
        let _ = write!(
            out,
            ", contract=[{},{}], batch=[{},{}]",
            Shape(self.lhs_contract.clone()),
            Shape(self.rhs_contract.clone()),
            Shape(self.lhs_batch.clone()),
            Shape(self.rhs_batch.clone())
        );
    }
}

fn pair(args: &mut CallArgs, key: &str) -> Result<(Vec<usize>, Vec<usize>), String> {
    let err = || format!("`{key}` must be a pair of axis lists, e.g. {key}=[[1],[0]]");
    match args.take(key) {
        None => Ok((Vec::new(), Vec::new())),
        Some(AttrValue::List(v)) if v.len() == 2 => {
            Ok((usizes(&v[0]).ok_or_else(err)?, usizes(&v[1]).ok_or_else(err)?))
        }
        Some(_) => Err(err()),
    }
}

impl ParseOp for DotGeneral {
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "dot_general").then(|| {
            let (lhs_contract, rhs_contract) = pair(args, "contract")?;
            let (lhs_batch, rhs_batch) = pair(args, "batch")?;
            Ok(DotGeneral { lhs_contract, rhs_contract, lhs_batch, rhs_batch })
        })
    }
}
