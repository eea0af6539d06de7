//! Constants: literals, `full`/`zeros`/`ones`, `eye`, `iota`, NumPy-compatible `uniform` and
//! `normal` streams, and `npy("file")`.
//!
//! Floats are stored as f64 bit patterns (f32 values widened exactly), so constants compare
//! and hash by bits. f32 random constants are the f64 draws rounded to nearest.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use super::{Arity, AttrValue, CallArgs, OpInfo, OpRule, ParseOp, Traits};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::random::{Distribution, draws_iter};
use crate::tensor::{Data, Tensor};
use crate::types::{DType, TensorType, is_float};

/// A constant tensor. Every variant carries its type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Const {
    /// Explicit values in row-major order, as f64 bit patterns (bool: 0 or 1).
    Literal {
        /// Type of the constant.
        ty: TensorType,
        /// Values as f64 bits.
        bits: Arc<[u64]>,
    },
    /// Every element equal to one value (`zeros`, `ones`, `full`, scalar literals).
    Full {
        /// Type of the constant.
        ty: TensorType,
        /// The value as f64 bits.
        bits: u64,
    },
    /// Identity matrix (rank 2, may be rectangular).
    Eye {
        /// Type of the constant.
        ty: TensorType,
    },
    /// The index along `axis`.
    Iota {
        /// Type of the constant.
        ty: TensorType,
        /// Axis whose index is the value.
        axis: usize,
    },
    /// Draws `offset..offset+numel` of `np.random.seed(seed)`'s stream.
    Random {
        /// Type of the constant.
        ty: TensorType,
        /// Uniform (`rand`) or normal (`randn`).
        dist: Distribution,
        /// `np.random.seed` argument.
        seed: u32,
        /// Draws of this distribution taken from the stream before this constant.
        offset: u64,
    },
    /// The contents of a `.npy` file, read when the graph is built.
    Npy {
        /// Path as written in the model (relative to the model file).
        path: String,
        /// The loaded value.
        value: NpyValue,
    },
}

/// A loaded `.npy` value. Compares by contents; hashes by type.
#[derive(Clone, Debug)]
pub struct NpyValue(pub Arc<Tensor>);

impl PartialEq for NpyValue {
    fn eq(&self, other: &NpyValue) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.shape == other.0.shape
                && data_bits(&self.0.data) == data_bits(&other.0.data))
    }
}
impl Eq for NpyValue {}
impl Hash for NpyValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.ty().hash(state);
    }
}

fn data_bits(d: &Data) -> Vec<u64> {
    match d {
        Data::F32(v) => v.iter().map(|&x| f64::from(x).to_bits()).collect(),
        Data::F64(v) => v.iter().map(|&x| x.to_bits()).collect(),
        Data::I32(v) => v.iter().map(|&x| f64::from(x).to_bits()).collect(),
        Data::Bool(v) => v.iter().map(|&b| u64::from(b)).collect(),
    }
}

/// Format a float for the text format: shortest text that reads back to the same value at
/// `dtype`'s precision (`inf`, `-inf`, `nan` for the specials; bool as `true`/`false`).
pub fn fmt_value(v: f64, dtype: DType) -> String {
    match dtype {
        DType::Bool => (v != 0.0).to_string(),
        DType::I32 => (v as i32).to_string(),
        _ if v.is_nan() => (if v.is_sign_negative() { "-nan" } else { "nan" }).into(),
        _ if v.is_infinite() => (if v > 0.0 { "inf" } else { "-inf" }).into(),
        DType::F32 => format!("{:?}", v as f32),
        DType::F64 => format!("{v:?}"),
    }
}

/// Read a literal at `dtype`'s precision (directly, without double rounding).
pub fn parse_value(v: &AttrValue, dtype: DType) -> Result<f64, String> {
    let bad = || format!("expected a {dtype} value");
    match (v, dtype) {
        (AttrValue::Bool(b), DType::Bool) => Ok(if *b { 1.0 } else { 0.0 }),
        (AttrValue::Int(i), DType::Bool) if *i == 0 || *i == 1 => Ok(*i as f64),
        (AttrValue::Int(i), DType::F32) => {
            Ok(f64::from(i.to_string().parse::<f32>().map_err(|_| bad())?))
        }
        (AttrValue::Int(i), DType::F64) => i.to_string().parse::<f64>().map_err(|_| bad()),
        (AttrValue::Int(i), DType::I32) => {
            i32::try_from(*i).map(f64::from).map_err(|_| format!("{i} does not fit in i32"))
        }
        (AttrValue::Float(s), DType::F32) => {
            Ok(f64::from(parse_special(s).parse::<f32>().map_err(|_| bad())?))
        }
        (AttrValue::Float(s), DType::F64) => parse_special(s).parse::<f64>().map_err(|_| bad()),
        // Weak-scalar literals arrive as text: an integer literal only.
        (AttrValue::Float(s), DType::I32) => s.parse::<i32>().map(f64::from).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn parse_special(s: &str) -> &str {
    match s {
        "nan" => "NaN",
        "-nan" => "-NaN",
        other => other,
    }
}

/// Round `value` to `dtype` and canonicalise NaN (sign kept, payload dropped), so every
/// constant prints and parses back to the same bits.
fn canonical_bits(value: f64, dtype: DType) -> u64 {
    let v = match dtype {
        DType::F32 => f64::from(value as f32),
        DType::F64 => value,
        DType::I32 => f64::from(value as i32),
        DType::Bool => f64::from(u8::from(value != 0.0)),
    };
    let v = if v.is_nan() { f64::NAN.copysign(v) } else { v };
    v.to_bits()
}

/// Values (f64, exact for every dtype's values) collected into `ty`'s element type, rounding as
/// [`Tensor::from_f64`] does, without an intermediate f64 buffer.
fn typed(ty: &TensorType, values: impl Iterator<Item = f64>) -> Data {
    match ty.dtype {
        DType::F32 => Data::F32(values.map(|x| x as f32).collect()),
        DType::F64 => Data::F64(values.collect()),
        DType::I32 => Data::I32(values.map(|x| x as i32).collect()),
        DType::Bool => Data::Bool(values.map(|x| x != 0.0).collect()),
    }
}

impl Const {
    /// The constant's type.
    pub fn ty(&self) -> TensorType {
        match self {
            Const::Literal { ty, .. }
            | Const::Full { ty, .. }
            | Const::Eye { ty }
            | Const::Iota { ty, .. }
            | Const::Random { ty, .. } => ty.clone(),
            Const::Npy { value, .. } => value.0.ty(),
        }
    }

    /// A `full` constant of the given value, rounded to the type's dtype.
    pub fn full(ty: TensorType, value: f64) -> Const {
        let bits = canonical_bits(value, ty.dtype);
        Const::Full { ty, bits }
    }

    /// A literal from values rounded to the type's dtype; the count must match the shape.
    pub fn literal(ty: TensorType, values: &[f64]) -> Const {
        let bits = values.iter().map(|&value| canonical_bits(value, ty.dtype)).collect();
        Const::Literal { ty, bits }
    }

    /// A constant holding a `.npy` file's contents.
    pub fn npy(path: impl Into<String>, value: Tensor) -> Const {
        Const::Npy { path: path.into(), value: NpyValue(Arc::new(value)) }
    }

    /// The constant's value, generated straight into its element type (no f64 copy of an f32
    /// constant is ever made, so a large random constant costs its own size only).
    pub fn value(&self) -> Tensor {
        let ty = self.ty();
        let n = ty.numel();
        let data = match self {
            Const::Npy { value, .. } => return (*value.0).clone(),
            Const::Literal { bits, .. } => typed(&ty, bits.iter().map(|&b| f64::from_bits(b))),
            Const::Full { bits, .. } => typed(&ty, std::iter::repeat_n(f64::from_bits(*bits), n)),
            Const::Eye { ty } => {
                let cols = ty.shape.dims().get(1).copied().unwrap_or(0);
                typed(ty, (0..n).map(|i| if cols > 0 && i / cols == i % cols { 1.0 } else { 0.0 }))
            }
            Const::Iota { ty, axis } => {
                let strides = ty.shape.strides();
                let size = ty.shape.dims()[*axis];
                typed(ty, (0..n).map(|i| ((i / strides[*axis]) % size) as f64))
            }
            Const::Random { dist, seed, offset, .. } => {
                typed(&ty, draws_iter(*dist, *seed, *offset, n))
            }
        };
        // Types are checked at construction, so the lengths agree.
        Tensor::new(ty.shape.clone(), data)
            .unwrap_or_else(|_| Tensor { shape: ty.shape.clone(), data: Data::F64(vec![]) })
    }

    fn check(&self) -> Result<(), TypeError> {
        let ty = self.ty();
        let numel =
            ty.shape.checked_numel().ok_or_else(|| TypeError::TooLarge(ty.shape.clone()))?;
        match self {
            Const::Literal { bits, .. } if bits.len() != numel => {
                Err(TypeError::ConstLength { expected: numel, got: bits.len(), ty })
            }
            Const::Eye { .. } if ty.rank() != 2 => Err(TypeError::EyeRank(ty)),
            Const::Iota { axis, .. } if *axis >= ty.rank() => {
                Err(TypeError::Axis { axis: *axis as i64, rank: ty.rank() })
            }
            Const::Iota { .. } if !is_float(ty.dtype) && ty.dtype != DType::I32 => {
                Err(TypeError::NotFloat(ty.dtype))
            }
            Const::Random { .. } if !is_float(ty.dtype) => Err(TypeError::NotFloat(ty.dtype)),
            Const::Random { offset, .. }
                if offset
                    .checked_add(numel as u64)
                    .is_none_or(|end| end > crate::random::MAX_DRAWS) =>
            {
                Err(TypeError::TooManyDraws {
                    offset: *offset,
                    draws: numel,
                    limit: crate::random::MAX_DRAWS,
                })
            }
            _ => Ok(()),
        }
    }
}

impl Const {
    /// The op's name: which constructor prints this constant.
    fn op_name(&self) -> &'static str {
        match self {
            Const::Literal { .. } => "const",
            Const::Full { bits, .. } if *bits == 0 => "zeros",
            Const::Full { ty, bits } if f64::from_bits(*bits) == 1.0 && ty.dtype != DType::Bool => {
                "ones"
            }
            Const::Full { .. } => "full",
            Const::Eye { .. } => "eye",
            Const::Iota { .. } => "iota",
            Const::Random { dist: Distribution::Uniform, .. } => "uniform",
            Const::Random { dist: Distribution::Normal, .. } => "normal",
            Const::Npy { .. } => "npy",
        }
    }
}

impl OpRule for Const {
    fn info(&self) -> OpInfo {
        OpInfo::new(self.op_name(), Arity::Fixed(0), Traits { constant: true, ..Traits::NONE })
    }
    fn infer(&self, _: &[&TensorType]) -> Result<TensorType, TypeError> {
        self.check()?;
        Ok(self.ty())
    }
    fn eval(&self, _: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        Ok(self.value())
    }
    fn jvp(&self, _: &mut FunctionBuilder, _: JvpArgs<'_>) -> JvpResult {
        Ok(None)
    }
    fn transpose(&self, _: &mut FunctionBuilder, _: NodeId, _: &[Lin]) -> TransposeResult {
        Ok(vec![])
    }
    fn batch(&self, b: &mut FunctionBuilder, _: BatchArgs<'_>) -> BatchResult {
        // A constant has no operands, so it is never batched.
        Ok((b.constant(self.clone())?, None))
    }
    fn write_attrs(&self, out: &mut String) {
        let ty = self.ty();
        let _ = write!(out, "{ty}");
        match self {
            Const::Literal { bits, .. } => {
                out.push_str(", [");
                for (i, &b) in bits.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&fmt_value(f64::from_bits(b), ty.dtype));
                }
                out.push(']');
            }
            Const::Full { bits, .. } => {
                if self.op_name() == "full" {
                    let _ = write!(out, ", {}", fmt_value(f64::from_bits(*bits), ty.dtype));
                }
            }
            Const::Eye { .. } => {}
            Const::Iota { axis, .. } => {
                let _ = write!(out, ", axis={axis}");
            }
            Const::Random { seed, offset, .. } => {
                let _ = write!(out, ", seed={seed}");
                if *offset > 0 {
                    let _ = write!(out, ", offset={offset}");
                }
            }
            Const::Npy { path, .. } => {
                let _ = write!(out, ", {}", quote(path));
            }
        }
    }
}

/// A string literal in the text format: double quotes, `\"` and `\\` escaped.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

fn int_attr(args: &mut CallArgs, key: &str, default: Option<i64>) -> Result<i64, String> {
    match (args.take(key), default) {
        (Some(AttrValue::Int(i)), _) => Ok(i),
        (Some(_), _) => Err(format!("`{key}` must be an integer")),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(format!("missing attribute `{key}=...`")),
    }
}

/// Load a `.npy` constant, resolving `path` against `base` (the model file's folder).
pub fn load_npy(path: &str, base: Option<&Path>) -> Result<Tensor, jjt_npy::NpyError> {
    let full = match base {
        Some(b) if Path::new(path).is_relative() => b.join(path),
        _ => Path::new(path).to_path_buf(),
    };
    jjt_npy::read_file(&full).map(Tensor::from_array)
}

/// The text names of the constant ops.
const CONST_NAMES: [&str; 9] =
    ["const", "full", "zeros", "ones", "eye", "iota", "uniform", "normal", "npy"];

impl ParseOp for Const {
    fn names() -> Vec<&'static str> {
        CONST_NAMES.to_vec()
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        if !CONST_NAMES.contains(&name) {
            return None;
        }
        if name == "npy" {
            return Some(parse_npy(args));
        }
        Some((|| {
            let ty = args.take_type()?;
            let c = match name {
                "zeros" => Const::full(ty, 0.0),
                "ones" => Const::full(ty, 1.0),
                "full" => {
                    let v =
                        args.take_positional().ok_or("full needs a value: full(f32[3], 2.5)")?;
                    let v = parse_value(&v, ty.dtype)?;
                    Const::full(ty, v)
                }
                "const" => {
                    let values = match args.take_positional() {
                        Some(AttrValue::List(items)) => items,
                        Some(scalar) => vec![scalar],
                        None => return Err("const needs values: const(f32[2], [1.0, 2.0])".into()),
                    };
                    let values = values.iter().map(|v| parse_value(v, ty.dtype)).collect::<Result<
                        Vec<_>,
                        _,
                    >>(
                    )?;
                    Const::literal(ty, &values)
                }
                "eye" => Const::Eye { ty },
                "iota" => {
                    let axis = int_attr(args, "axis", Some(0))?;
                    let axis = super::norm_axis(axis, ty.rank()).map_err(|e| e.to_string())?;
                    Const::Iota { ty, axis }
                }
                _ => {
                    let dist = if name == "uniform" {
                        Distribution::Uniform
                    } else {
                        Distribution::Normal
                    };
                    let seed = int_attr(args, "seed", None)?;
                    let seed = u32::try_from(seed).map_err(|_| "`seed` must be in 0..2^32")?;
                    let offset = int_attr(args, "offset", Some(0))?;
                    let offset =
                        u64::try_from(offset).map_err(|_| "`offset` must be non-negative")?;
                    Const::Random { ty, dist, seed, offset }
                }
            };
            c.check().map_err(|e| e.to_string())?;
            Ok(c)
        })())
    }
}

fn parse_npy(args: &mut CallArgs) -> Result<Const, String> {
    let declared = match args.positional.first() {
        Some(AttrValue::Type(_)) => Some(args.take_type()?),
        _ => None,
    };
    let path = match args.take_positional() {
        Some(AttrValue::Str(s)) => s,
        _ => return Err("npy needs a file name: npy(\"weights.npy\")".into()),
    };
    let value = load_npy(&path, args.base_dir.as_deref()).map_err(|e| format!("`{path}`: {e}"))?;
    if let Some(d) = declared
        && d != value.ty()
    {
        return Err(format!("`{path}`: declared {d}, but the file holds {}", value.ty()));
    }
    Ok(Const::npy(path, value))
}
