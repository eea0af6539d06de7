//! ONNX models (as `torch.onnx.export` writes them, opset 13 and later) to jjt graphs.
//!
//! Graph inputs become jjt inputs under their own names (sanitised to dotted names). An
//! initializer becomes an input too when `select` picks it (its value is then a default the
//! caller binds unless a file is given), else a constant. Values computable at import time
//! (constants, unselected initializers, `Shape` of static tensors, and the integer arithmetic
//! exporters build shapes with) are evaluated here, so `Reshape`, `Slice`, `Unsqueeze` and
//! friends see constant operands; everything else is built with the [`FunctionBuilder`].
//!
//! A leading dimension that is symbolic (`dynamic_axes`) is read as 1: the graph then computes
//! one example, and jjt batches examples itself. Any other symbolic dimension is an error.

pub mod proto;

use std::collections::HashMap;
use std::path::Path;

use jjt_ir::ops::patches::Window;
use jjt_ir::ops::{Const, Conv, ConvDims, Gather, Logic};
use jjt_ir::{
    Binary, Compare, DType, Function, FunctionBuilder, NodeId, Op, ReduceKind, ScalarSide, Shape,
    Tensor, TensorType, Unary,
};

use crate::error::ImportError;
use crate::names;
use proto::{Attribute, Node, TensorData};

/// Every op the reader converts.
pub const SUPPORTED: &[&str] = &[
    "Add",
    "AveragePool",
    "Cast",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Cos",
    "Div",
    "Dropout",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "Greater",
    "Identity",
    "LayerNormalization",
    "Less",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "Not",
    "Pow",
    "Range",
    "Reciprocal",
    "ReduceMax",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Sin",
    "Slice",
    "Softmax",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// Largest tensor (elements) evaluated at import time.
const MAX_KNOWN: usize = 1 << 24;

/// An ONNX model as a jjt graph, with the values of the initializers that became inputs.
#[derive(Debug)]
pub struct Imported {
    /// The graph.
    pub function: Function,
    /// Default values of inputs that were initializers.
    pub defaults: Vec<(String, Tensor)>,
    /// Every float initializer's (sanitised) name, selected or not.
    pub initializers: Vec<String>,
}

/// A value known at import time: dims, values (f64), dtype.
#[derive(Clone, Debug)]
struct Known {
    dims: Vec<usize>,
    v: Vec<f64>,
    dtype: DType,
}

impl Known {
    fn ints(&self) -> Vec<i64> {
        self.v.iter().map(|&x| x as i64).collect()
    }
}

#[derive(Clone, Debug)]
enum Val {
    Node(NodeId),
    Known(Known),
}

/// Where an op is: its node name and index.
fn at(n: &Node, k: usize) -> String {
    if n.name.is_empty() {
        format!("node {k} ({})", n.op)
    } else {
        format!("node {k} `{}` ({})", n.name, n.op)
    }
}

fn dtype_of(t: i32, what: &str) -> Result<DType, ImportError> {
    Ok(match t {
        1 => DType::F32,
        11 => DType::F64,
        6 | 7 => DType::I32,
        9 => DType::Bool,
        _ => {
            return Err(ImportError::Onnx {
                at: what.to_string(),
                msg: format!(
                    "element type {t} is not supported (float, double, int32, int64, bool are)"
                ),
            });
        }
    })
}

/// The values of a tensor proto (external data read from `dir`, inside it only).
fn tensor_values(t: &TensorData, dir: Option<&Path>) -> Result<Known, ImportError> {
    let what = format!("initializer `{}`", t.name);
    let bad = |msg: String| ImportError::Onnx { at: what.clone(), msg };
    let dtype = dtype_of(t.data_type, &what)?;
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
        .collect::<Result<_, _>>()?;
    let numel = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad("too many elements".into()))?;
    let size = match t.data_type {
        1 | 6 => 4,
        11 | 7 => 8,
        9 => 1,
        _ => 0,
    };
    let raw: std::borrow::Cow<'_, [u8]> = if !t.external.is_empty() {
        let get = |k: &str| t.external.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let loc = get("location").ok_or_else(|| bad("external data without a location".into()))?;
        let dir =
            dir.ok_or_else(|| bad("external data, but the model was not read from a file".into()))?;
        let path = crate::inside(Some(dir), loc).map_err(|m| bad(format!("external data {m}")))?;
        let offset: u64 = get("offset")
            .map_or(Ok(0), str::parse)
            .map_err(|_| bad("bad external data offset".into()))?;
        let len = numel.checked_mul(size).ok_or_else(|| bad("too many elements".into()))? as u64;
        let file_len =
            std::fs::metadata(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?.len();
        if offset.checked_add(len).is_none_or(|end| end > file_len) {
            return Err(bad(format!(
                "external data `{loc}` holds {file_len} bytes, fewer than offset {offset} + {len}"
            )));
        }
        use std::io::{Read, Seek, SeekFrom};
        let mut f =
            std::fs::File::open(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| bad(e.to_string()))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf).map_err(|e| bad(e.to_string()))?;
        buf.into()
    } else {
        (&t.raw[..]).into()
    };
    let v: Vec<f64> = if !raw.is_empty() || (t.values.is_empty() && numel > 0) {
        if raw.len() != numel.saturating_mul(size) {
            return Err(bad(format!("{} bytes of data for {numel} elements", raw.len())));
        }
        raw.chunks_exact(size.max(1))
            .map(|c| match t.data_type {
                1 => f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                6 => f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                11 => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                7 => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64,
                _ => f64::from(u8::from(c[0] != 0)),
            })
            .collect()
    } else {
        if t.values.len() != numel {
            return Err(bad(format!("{} values for {numel} elements", t.values.len())));
        }
        t.values.clone()
    };
    if dtype == DType::I32 && v.iter().any(|&x| x < f64::from(i32::MIN) || x > f64::from(i32::MAX))
    {
        // Shapes use INT64_MAX for "to the end" (Slice): keep them; they are clamped where read.
        if !v.iter().all(|&x| {
            x.abs() >= 2f64.powi(62) || (x >= f64::from(i32::MIN) && x <= f64::from(i32::MAX))
        }) {
            return Err(bad("an int64 value outside the range of i32".into()));
        }
    }
    Ok(Known { dims, v, dtype })
}

/// Convert a decoded model. `select(name, dims)`: whether a float initializer becomes an input.
pub fn convert(
    m: &proto::Model,
    model_name: &str,
    dir: Option<&Path>,
    select: &dyn Fn(&str, &[usize]) -> bool,
) -> Result<Imported, ImportError> {
    if let Some((_, v)) = m.opsets.iter().find(|(d, _)| d.is_empty() || d == "ai.onnx")
        && *v < 13
    {
        return Err(ImportError::Onnx {
            at: "the model".into(),
            msg: format!(
                "opset {v}; opset 13 and later are read (re-export with opset_version=13 or newer)"
            ),
        });
    }
    let g = &m.graph;
    if g.sparse {
        return Err(ImportError::Onnx {
            at: "the graph".into(),
            msg: "sparse initializers are not supported".into(),
        });
    }
    let mut cx =
        Cx { b: FunctionBuilder::new(model_name), env: HashMap::new(), consts: HashMap::new() };
    let mut defaults = Vec::new();
    let mut initializers = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut claim = |name: &str| -> Result<String, ImportError> {
        let n = names::sanitize(name);
        if let Some(first) = seen.insert(n.clone(), name.to_string()) {
            return Err(ImportError::NameClash { name: n, first, second: name.to_string() });
        }
        Ok(n)
    };
    let init_names: std::collections::HashSet<&str> =
        g.initializers.iter().map(|t| t.name.as_str()).collect();
    for v in &g.inputs {
        if init_names.contains(v.name.as_str()) {
            continue;
        }
        let what = format!("input `{}`", v.name);
        let dtype = dtype_of(v.elem_type, &what)?;
        let mut dims = Vec::new();
        for (k, d) in v.dims.iter().enumerate() {
            match d {
                Some(d) if *d >= 0 => dims.push(*d as usize),
                None if k == 0 => dims.push(1),
                _ => {
                    return Err(ImportError::Onnx {
                        at: what.clone(),
                        msg: format!(
                            "dimension {k} is dynamic; only the leading (example) dimension may be"
                        ),
                    });
                }
            }
        }
        let name = claim(&v.name)?;
        let ty = TensorType::new(dtype, dims);
        let id =
            cx.b.input(&name, ty)
                .map_err(|e| ImportError::Onnx { at: what.clone(), msg: e.to_string() })?;
        cx.env.insert(v.name.clone(), Val::Node(id));
    }
    for t in &g.initializers {
        let k = tensor_values(t, dir)?;
        let float = matches!(k.dtype, DType::F32 | DType::F64);
        let name = claim(&t.name)?;
        if float {
            initializers.push(name.clone());
        }
        if float && select(&name, &k.dims) {
            let ty = TensorType::new(k.dtype, k.dims.clone());
            let id = cx.b.input(&name, ty).map_err(|e| ImportError::Onnx {
                at: format!("initializer `{}`", t.name),
                msg: e.to_string(),
            })?;
            let tensor = known_tensor(&k).map_err(|msg| ImportError::Onnx {
                at: format!("initializer `{}`", t.name),
                msg,
            })?;
            defaults.push((name, tensor));
            cx.env.insert(t.name.clone(), Val::Node(id));
        } else {
            cx.env.insert(t.name.clone(), Val::Known(k));
        }
    }
    for (k, n) in g.nodes.iter().enumerate() {
        cx.node(n, k)?;
    }
    let mut outs = Vec::new();
    for o in &g.outputs {
        let id = cx.node_of(&o.name, &format!("output `{}`", o.name))?;
        outs.push(id);
    }
    if outs.len() > 1 {
        for (o, v) in outs.iter().zip(&g.outputs) {
            cx.b.name_node(*o, &names::sanitize(&v.name));
        }
    }
    let function =
        cx.b.finish_many(outs)
            .map_err(|e| ImportError::Onnx { at: "the outputs".into(), msg: e.to_string() })?;
    // Shape operands materialised while reading (a `Reshape`'s target) are not computed.
    let function = function.pruned();
    Ok(Imported { function, defaults, initializers })
}

fn known_tensor(k: &Known) -> Result<Tensor, String> {
    let ty = TensorType::new(k.dtype, k.dims.clone());
    Tensor::from_f64(&ty, &k.v).map_err(|e| e.to_string())
}

struct Cx {
    b: FunctionBuilder,
    env: HashMap<String, Val>,
    /// Known values already materialised as constants.
    consts: HashMap<String, NodeId>,
}

impl Cx {
    /// The graph node of a value (a known value becomes a constant).
    fn node_of(&mut self, name: &str, at: &str) -> Result<NodeId, ImportError> {
        match self.env.get(name) {
            Some(Val::Node(id)) => Ok(*id),
            Some(Val::Known(k)) => {
                if let Some(&id) = self.consts.get(name) {
                    return Ok(id);
                }
                let k = k.clone();
                let ty = TensorType::new(k.dtype, k.dims.clone());
                let v: Vec<f64> = if k.dtype == DType::I32 {
                    k.v.iter().map(|x| x.clamp(f64::from(i32::MIN), f64::from(i32::MAX))).collect()
                } else {
                    k.v.clone()
                };
                let c = if v.len() == 1 { Const::full(ty, v[0]) } else { Const::literal(ty, &v) };
                let id = self
                    .b
                    .constant(c)
                    .map_err(|e| ImportError::Onnx { at: at.to_string(), msg: e.to_string() })?;
                self.consts.insert(name.to_string(), id);
                Ok(id)
            }
            None => Err(ImportError::Onnx {
                at: at.to_string(),
                msg: format!("value `{name}` is used before it is defined"),
            }),
        }
    }

    fn known(&self, name: &str) -> Option<&Known> {
        match self.env.get(name) {
            Some(Val::Known(k)) => Some(k),
            _ => None,
        }
    }

    fn ty(&self, id: NodeId) -> TensorType {
        self.b.ty(id).cloned().unwrap_or_else(|_| TensorType::scalar(DType::F32))
    }

    fn node(&mut self, n: &Node, k: usize) -> Result<(), ImportError> {
        let here = at(n, k);
        let err = |msg: String| ImportError::Onnx { at: here.clone(), msg };
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(ImportError::Unsupported {
                pos: Default::default(),
                op: format!("{}::{} at {here}", n.domain, n.op),
                supported: SUPPORTED.join(", "),
            });
        }
        if n.attrs.iter().any(|a| a.graph) {
            return Err(err(
                "attributes holding subgraphs (If, Loop, Scan) are not supported".into()
            ));
        }
        // Import-time evaluation when every operand is known and the op is shape arithmetic.
        let inputs: Vec<&str> = n.inputs.iter().map(String::as_str).collect();
        let all_known = inputs.iter().all(|i| i.is_empty() || self.known(i).is_some());
        if all_known && let Some(vals) = self.fold(n).map_err(&err)? {
            for (o, v) in n.outputs.iter().zip(vals) {
                self.env.insert(o.clone(), Val::Known(v));
            }
            return Ok(());
        }
        if n.op == "Shape" {
            let x = self.node_of(inputs.first().copied().unwrap_or(""), &here)?;
            let dims = self.ty(x).shape.dims().to_vec();
            let (s, e) =
                (attr_i(n, "start").unwrap_or(0), attr_i(n, "end").unwrap_or(dims.len() as i64));
            let r = dims.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (s, e) = (clampi(s), clampi(e));
            let v: Vec<f64> = dims[s..e.max(s)].iter().map(|&d| d as f64).collect();
            self.env.insert(
                n.outputs[0].clone(),
                Val::Known(Known { dims: vec![v.len()], v, dtype: DType::I32 }),
            );
            return Ok(());
        }
        let outs = self.build(n, &here)?;
        for (o, id) in n.outputs.iter().zip(outs) {
            if !o.is_empty() {
                self.env.insert(o.clone(), Val::Node(id));
            }
        }
        Ok(())
    }

    /// The graph ops of node `n`.
    fn build(&mut self, n: &Node, here: &str) -> Result<Vec<NodeId>, ImportError> {
        let err = |msg: String| ImportError::Onnx { at: here.to_string(), msg };
        let ir =
            |e: jjt_ir::IrError| ImportError::Onnx { at: here.to_string(), msg: e.to_string() };
        let mut x = Vec::new();
        for i in &n.inputs {
            x.push(if i.is_empty() { None } else { Some(self.node_of(i, here)?) });
        }
        let arg = |k: usize| -> Result<NodeId, ImportError> {
            x.get(k).copied().flatten().ok_or_else(|| err(format!("input {k} is missing")))
        };
        let b = &mut self.b;
        let un = |b: &mut FunctionBuilder, u: Unary| b.unary(u, arg(0)?).map_err(ir);
        let bin = |b: &mut FunctionBuilder, op: Binary| b.binary(op, arg(0)?, arg(1)?).map_err(ir);
        let out = match n.op.as_str() {
            "Identity" | "Dropout" => {
                if n.outputs.len() > 1 && n.outputs[1..].iter().any(|o| !o.is_empty()) {
                    return Err(err("Dropout's mask output is not supported".into()));
                }
                arg(0)?
            }
            "Neg" => un(b, Unary::Neg)?,
            "Exp" => un(b, Unary::Exp)?,
            "Log" => un(b, Unary::Log)?,
            "Sqrt" => un(b, Unary::Sqrt)?,
            "Relu" => un(b, Unary::Relu)?,
            "Tanh" => un(b, Unary::Tanh)?,
            "Sigmoid" => un(b, Unary::Sigmoid)?,
            "Erf" => un(b, Unary::Erf)?,
            "Sin" => un(b, Unary::Sin)?,
            "Cos" => un(b, Unary::Cos)?,
            "Reciprocal" => un(b, Unary::Recip)?,
            "Not" => b.add(Op::Logic(Logic::Not), &[arg(0)?]).map_err(ir)?,
            "Add" => bin(b, Binary::Add)?,
            "Sub" => bin(b, Binary::Sub)?,
            "Mul" => bin(b, Binary::Mul)?,
            "Div" => {
                if self_dtype(b, arg(0)?) == DType::I32 {
                    return Err(err("integer division is not supported".into()));
                }
                bin(b, Binary::Div)?
            }
            "Pow" => {
                let (base, e) = (arg(0)?, arg(1)?);
                let dt = self_dtype(b, base);
                let e = if self_dtype(b, e) != dt { b.convert(e, dt).map_err(ir)? } else { e };
                b.binary(Binary::Pow, base, e).map_err(ir)?
            }
            "Max" | "Min" => {
                let op = if n.op == "Max" { Binary::Maximum } else { Binary::Minimum };
                let mut acc = arg(0)?;
                for k in 1..x.len() {
                    acc = b.binary(op, acc, arg(k)?).map_err(ir)?;
                }
                acc
            }
            "Equal" | "Less" | "Greater" => {
                let (l, r) = (arg(0)?, arg(1)?);
                let c = match n.op.as_str() {
                    "Equal" => Compare::Eq,
                    "Less" => Compare::Lt,
                    _ => Compare::Gt,
                };
                b.compare(c, l, r).map_err(ir)?
            }
            "Where" => b.select(arg(0)?, arg(1)?, arg(2)?).map_err(ir)?,
            "Cast" => {
                let to = dtype_of(attr_i(n, "to").unwrap_or(0) as i32, here)?;
                b.convert(arg(0)?, to).map_err(ir)?
            }
            "MatMul" => b.matmul(arg(0)?, arg(1)?).map_err(ir)?,
            "Gemm" => {
                let (mut a, mut bb) = (arg(0)?, arg(1)?);
                if attr_i(n, "transA").unwrap_or(0) != 0 {
                    a = b.transpose(a, &[1, 0]).map_err(ir)?;
                }
                if attr_i(n, "transB").unwrap_or(0) != 0 {
                    bb = b.transpose(bb, &[1, 0]).map_err(ir)?;
                }
                let mut y = b.matmul(a, bb).map_err(ir)?;
                let alpha = attr_f(n, "alpha").unwrap_or(1.0);
                if alpha != 1.0 {
                    y = b.binary_scalar(Binary::Mul, y, alpha, ScalarSide::Right).map_err(ir)?;
                }
                if let Some(Some(c)) = x.get(2) {
                    let beta = attr_f(n, "beta").unwrap_or(1.0);
                    let c = if beta != 1.0 {
                        b.binary_scalar(Binary::Mul, *c, beta, ScalarSide::Right).map_err(ir)?
                    } else {
                        *c
                    };
                    y = b.binary(Binary::Add, y, c).map_err(ir)?;
                }
                y
            }
            "Softmax" | "LogSoftmax" => {
                let xx = arg(0)?;
                let shape = self_ty(b, xx).shape.clone();
                let r = shape.rank() as i64;
                let axis = attr_i(n, "axis").unwrap_or(-1);
                let axis = if axis < 0 { axis + r } else { axis };
                let m = b.reduce(ReduceKind::Max, xx, Some(&[axis])).map_err(ir)?;
                let m = keep(b, m, axis as usize, &shape).map_err(ir)?;
                let m = b.add(Op::StopGradient(jjt_ir::ops::StopGradient), &[m]).map_err(ir)?;
                let z = b.binary(Binary::Sub, xx, m).map_err(ir)?;
                let e = b.unary(Unary::Exp, z).map_err(ir)?;
                let s = b.reduce(ReduceKind::Sum, e, Some(&[axis])).map_err(ir)?;
                let s = keep(b, s, axis as usize, &shape).map_err(ir)?;
                if n.op == "Softmax" {
                    b.binary(Binary::Div, e, s).map_err(ir)?
                } else {
                    let l = b.unary(Unary::Log, s).map_err(ir)?;
                    b.binary(Binary::Sub, z, l).map_err(ir)?
                }
            }
            "LayerNormalization" => {
                let xx = arg(0)?;
                let shape = self_ty(b, xx).shape.clone();
                let r = shape.rank() as i64;
                let axis = attr_i(n, "axis").unwrap_or(-1);
                let axis = if axis < 0 { axis + r } else { axis };
                let axes: Vec<i64> = (axis..r).collect();
                let eps = attr_f(n, "epsilon").unwrap_or(1e-5);
                let mean = b.reduce(ReduceKind::Mean, xx, Some(&axes)).map_err(ir)?;
                let mean = keep_many(b, mean, &axes, &shape).map_err(ir)?;
                let d = b.binary(Binary::Sub, xx, mean).map_err(ir)?;
                let sq = b.binary(Binary::Mul, d, d).map_err(ir)?;
                let var = b.reduce(ReduceKind::Mean, sq, Some(&axes)).map_err(ir)?;
                let var = keep_many(b, var, &axes, &shape).map_err(ir)?;
                let ve = b.binary_scalar(Binary::Add, var, eps, ScalarSide::Right).map_err(ir)?;
                let inv = b.unary(Unary::Rsqrt, ve).map_err(ir)?;
                let mut y = b.binary(Binary::Mul, d, inv).map_err(ir)?;
                y = b.binary(Binary::Mul, y, arg(1)?).map_err(ir)?;
                if let Some(Some(bias)) = x.get(2) {
                    y = b.binary(Binary::Add, y, *bias).map_err(ir)?;
                }
                if n.outputs.len() > 1 && n.outputs[1..].iter().any(|o| !o.is_empty()) {
                    return Err(err(
                        "LayerNormalization's mean and inverse-deviation outputs are not supported"
                            .into(),
                    ));
                }
                y
            }
            "Gelu" => {
                let xx = arg(0)?;
                let approx = attr_s(n, "approximate").unwrap_or_default();
                if approx == "tanh" {
                    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
                    let x3 = b.binary(Binary::Mul, xx, xx).map_err(ir)?;
                    let x3 = b.binary(Binary::Mul, x3, xx).map_err(ir)?;
                    let t = b
                        .binary_scalar(Binary::Mul, x3, 0.044715, ScalarSide::Right)
                        .map_err(ir)?;
                    let t = b.binary(Binary::Add, xx, t).map_err(ir)?;
                    let t = b
                        .binary_scalar(
                            Binary::Mul,
                            t,
                            (2.0 / std::f64::consts::PI).sqrt(),
                            ScalarSide::Right,
                        )
                        .map_err(ir)?;
                    let t = b.unary(Unary::Tanh, t).map_err(ir)?;
                    let t = b.binary_scalar(Binary::Add, t, 1.0, ScalarSide::Right).map_err(ir)?;
                    let t = b.binary(Binary::Mul, xx, t).map_err(ir)?;
                    b.binary_scalar(Binary::Mul, t, 0.5, ScalarSide::Right).map_err(ir)?
                } else {
                    // 0.5·x·(1 + erf(x/√2)).
                    let t = b
                        .binary_scalar(
                            Binary::Mul,
                            xx,
                            std::f64::consts::FRAC_1_SQRT_2,
                            ScalarSide::Right,
                        )
                        .map_err(ir)?;
                    let t = b.unary(Unary::Erf, t).map_err(ir)?;
                    let t = b.binary_scalar(Binary::Add, t, 1.0, ScalarSide::Right).map_err(ir)?;
                    let t = b.binary(Binary::Mul, xx, t).map_err(ir)?;
                    b.binary_scalar(Binary::Mul, t, 0.5, ScalarSide::Right).map_err(ir)?
                }
            }
            "ReduceMean" | "ReduceSum" | "ReduceMax" => {
                let xx = arg(0)?;
                let shape = self_ty(b, xx).shape.clone();
                let r = shape.rank() as i64;
                let axes: Option<Vec<i64>> = match n.inputs.get(1).filter(|s| !s.is_empty()) {
                    Some(name) => Some(
                        self.known(name)
                            .ok_or_else(|| err("ReduceSum's axes must be constant".into()))?
                            .ints(),
                    ),
                    None => attr_ints(n, "axes"),
                };
                let b = &mut self.b;
                let axes = match axes {
                    Some(a) if !a.is_empty() => {
                        a.iter().map(|&a| if a < 0 { a + r } else { a }).collect::<Vec<_>>()
                    }
                    _ if attr_i(n, "noop_with_empty_axes").unwrap_or(0) != 0 => {
                        return Ok(vec![xx]);
                    }
                    _ => (0..r).collect(),
                };
                let kind = match n.op.as_str() {
                    "ReduceMean" => ReduceKind::Mean,
                    "ReduceSum" => ReduceKind::Sum,
                    _ => ReduceKind::Max,
                };
                let y = b.reduce(kind, xx, Some(&axes)).map_err(ir)?;
                if attr_i(n, "keepdims").unwrap_or(1) != 0 {
                    keep_many(b, y, &axes, &shape).map_err(ir)?
                } else {
                    y
                }
            }
            "Transpose" => {
                let xx = arg(0)?;
                let r = self_ty(b, xx).rank();
                let perm = match attr_ints(n, "perm") {
                    Some(p) => p
                        .iter()
                        .map(|&v| usize::try_from(v).map_err(|_| err("negative perm".into())))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => (0..r).rev().collect(),
                };
                b.transpose(xx, &perm).map_err(ir)?
            }
            "Flatten" => {
                let xx = arg(0)?;
                let d = self_ty(b, xx).shape.dims().to_vec();
                let r = d.len() as i64;
                let axis = attr_i(n, "axis").unwrap_or(1);
                let axis = (if axis < 0 { axis + r } else { axis }).clamp(0, r) as usize;
                let (a, c): (usize, usize) =
                    (d[..axis].iter().product(), d[axis..].iter().product());
                b.reshape(xx, vec![a, c]).map_err(ir)?
            }
            "Reshape" | "Expand" | "Unsqueeze" | "Squeeze" | "Slice" | "Concat" | "Gather"
            | "ConstantOfShape" | "Range" => {
                return self.shape_op(n, here, &x);
            }
            "Conv" => self.conv(n, here, &x)?,
            "MaxPool" | "AveragePool" => self.pool(n, here, arg(0)?)?,
            "GlobalAveragePool" => {
                let xx = arg(0)?;
                let shape = self_ty(b, xx).shape.clone();
                let axes: Vec<i64> = (2..shape.rank() as i64).collect();
                let y = b.reduce(ReduceKind::Mean, xx, Some(&axes)).map_err(ir)?;
                keep_many(b, y, &axes, &shape).map_err(ir)?
            }
            "Constant" => unreachable_constant(n, here)?,
            other => {
                return Err(ImportError::Unsupported {
                    pos: Default::default(),
                    op: format!("{other} at {here}"),
                    supported: SUPPORTED.join(", "),
                });
            }
        };
        Ok(vec![out])
    }

    /// Shape manipulation whose shape operands must be known.
    fn shape_op(
        &mut self,
        n: &Node,
        here: &str,
        x: &[Option<NodeId>],
    ) -> Result<Vec<NodeId>, ImportError> {
        let err = |msg: String| ImportError::Onnx { at: here.to_string(), msg };
        let ir =
            |e: jjt_ir::IrError| ImportError::Onnx { at: here.to_string(), msg: e.to_string() };
        let arg = |k: usize| -> Result<NodeId, ImportError> {
            x.get(k).copied().flatten().ok_or_else(|| err(format!("input {k} is missing")))
        };
        let known_ints = |cx: &Self, k: usize, what: &str| -> Result<Vec<i64>, ImportError> {
            let name = n
                .inputs
                .get(k)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| err(format!("{what} is missing")))?;
            Ok(cx.known(name).ok_or_else(|| err(format!("{what} must be known when the model is read (a constant or computed from shapes)")))?.ints())
        };
        let xx = arg(0)?;
        let ty = self.ty(xx);
        let dims = ty.shape.dims().to_vec();
        let r = dims.len() as i64;
        let norm = |a: i64, rank: i64| -> Result<usize, ImportError> {
            let v = if a < 0 { a + rank } else { a };
            if v < 0 || v >= rank.max(1) {
                Err(err(format!("axis {a} out of range for rank {rank}")))
            } else {
                Ok(v as usize)
            }
        };
        let out = match n.op.as_str() {
            "Reshape" => {
                let s = known_ints(self, 1, "the shape")?;
                let allow_zero = attr_i(n, "allowzero").unwrap_or(0) != 0;
                let mut out: Vec<i64> = s
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| {
                        if v == 0 && !allow_zero { dims.get(k).map_or(0, |&d| d as i64) } else { v }
                    })
                    .collect();
                let total: usize = dims.iter().product();
                if let Some(p) = out.iter().position(|&v| v == -1) {
                    let rest: i64 =
                        out.iter().enumerate().filter(|&(k, _)| k != p).map(|(_, &v)| v).product();
                    if rest <= 0 || total as i64 % rest != 0 {
                        return Err(err(format!("cannot reshape {} into {s:?}", ty.shape)));
                    }
                    out[p] = total as i64 / rest;
                }
                let out: Vec<usize> = out
                    .iter()
                    .map(|&v| usize::try_from(v).map_err(|_| err(format!("bad shape {s:?}"))))
                    .collect::<Result<_, _>>()?;
                self.b.reshape(xx, out).map_err(ir)?
            }
            "Expand" => {
                let s = known_ints(self, 1, "the shape")?;
                let s: Vec<usize> = s
                    .iter()
                    .map(|&v| usize::try_from(v).map_err(|_| err(format!("bad shape {s:?}"))))
                    .collect::<Result<_, _>>()?;
                let target = jjt_ir::builder::broadcast_shapes(&ty.shape, &Shape(s))
                    .map_err(|e| err(e.to_string()))?;
                self.b.broadcast_to(xx, &target).map_err(ir)?
            }
            "Unsqueeze" => {
                let axes = match attr_ints(n, "axes") {
                    Some(a) => a,
                    None => known_ints(self, 1, "the axes")?,
                };
                let out_r = r + axes.len() as i64;
                let mut ax: Vec<usize> =
                    axes.iter().map(|&a| norm(a, out_r)).collect::<Result<_, _>>()?;
                ax.sort_unstable();
                let mut out = dims.clone();
                for &a in &ax {
                    if a > out.len() {
                        return Err(err("bad Unsqueeze axes".into()));
                    }
                    out.insert(a, 1);
                }
                self.b.reshape(xx, out).map_err(ir)?
            }
            "Squeeze" => {
                let axes = match attr_ints(n, "axes") {
                    Some(a) => Some(a),
                    None if n.inputs.len() > 1 && !n.inputs[1].is_empty() => {
                        Some(known_ints(self, 1, "the axes")?)
                    }
                    None => None,
                };
                let drop: Vec<usize> = match axes {
                    Some(a) => a.iter().map(|&a| norm(a, r)).collect::<Result<_, _>>()?,
                    None => (0..dims.len()).filter(|&k| dims[k] == 1).collect(),
                };
                let out: Vec<usize> = dims
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| !drop.contains(k))
                    .map(|(_, &d)| d)
                    .collect();
                self.b.reshape(xx, out).map_err(ir)?
            }
            "Slice" => {
                let starts = known_ints(self, 1, "starts")?;
                let ends = known_ints(self, 2, "ends")?;
                let axes = if n.inputs.len() > 3 && !n.inputs[3].is_empty() {
                    known_ints(self, 3, "axes")?
                } else {
                    (0..starts.len() as i64).collect()
                };
                let steps = if n.inputs.len() > 4 && !n.inputs[4].is_empty() {
                    known_ints(self, 4, "steps")?
                } else {
                    vec![1; starts.len()]
                };
                let (mut s, mut e, mut st) =
                    (vec![0usize; dims.len()], dims.clone(), vec![1usize; dims.len()]);
                for k in 0..starts.len().min(ends.len()).min(axes.len()).min(steps.len()) {
                    let a = norm(axes[k], r)?;
                    let d = dims[a] as i64;
                    if steps[k] <= 0 {
                        return Err(err("Slice with a step ≤ 0 is not supported".into()));
                    }
                    let c = |v: i64| (if v < 0 { v + d } else { v }).clamp(0, d) as usize;
                    s[a] = c(starts[k]);
                    e[a] = c(ends[k]).max(s[a]);
                    st[a] = steps[k] as usize;
                }
                self.b.slice(xx, &s, &e, &st).map_err(ir)?
            }
            "Concat" => {
                let axis = attr_i(n, "axis").ok_or_else(|| err("Concat without axis".into()))?;
                let xs: Vec<NodeId> = x.iter().flatten().copied().collect();
                self.b.concat(&xs, axis).map_err(ir)?
            }
            "Gather" => {
                let axis = norm(attr_i(n, "axis").unwrap_or(0), r)?;
                let idx = arg(1)?;
                let rows = dims[axis] as f64;
                // ONNX wraps negative indices (from the end); jjt's gather clamps: add the row
                // count where an index is negative.
                let neg = self.b.compare_scalar(Compare::Lt, idx, 0.0).map_err(ir)?;
                let wrapped =
                    self.b.binary_scalar(Binary::Add, idx, rows, ScalarSide::Right).map_err(ir)?;
                let idx = self.b.select(neg, wrapped, idx).map_err(ir)?;
                self.b.add(Op::Gather(Gather { axis }), &[xx, idx]).map_err(ir)?
            }
            other => return Err(err(format!("{other} needs known operands here"))),
        };
        Ok(vec![out])
    }

    fn conv(&mut self, n: &Node, here: &str, x: &[Option<NodeId>]) -> Result<NodeId, ImportError> {
        let err = |msg: String| ImportError::Onnx { at: here.to_string(), msg };
        let ir =
            |e: jjt_ir::IrError| ImportError::Onnx { at: here.to_string(), msg: e.to_string() };
        let (xx, w) = (
            x.first().copied().flatten().ok_or_else(|| err("no input".into()))?,
            x.get(1).copied().flatten().ok_or_else(|| err("no weight".into()))?,
        );
        let (xt, wt) = (self.ty(xx), self.ty(w));
        let r = xt.rank();
        if !(3..=5).contains(&r) {
            return Err(err(format!("a rank-{r} input")));
        }
        let s = r - 2;
        let ints_or = |k: &str, d: i64| -> Result<Vec<usize>, ImportError> {
            let v = attr_ints(n, k).unwrap_or_else(|| vec![d; s]);
            v.iter()
                .map(|&v| usize::try_from(v).map_err(|_| err(format!("negative {k}"))))
                .collect()
        };
        let strides = ints_or("strides", 1)?;
        let dil = ints_or("dilations", 1)?;
        let group = attr_i(n, "group").unwrap_or(1).max(1) as usize;
        let kernel: Vec<usize> = wt.shape.dims()[2..].to_vec();
        let padding = self.pads(n, here, &xt.shape.dims()[2..], &kernel, &strides, &dil)?;
        let conv = Conv {
            dims: ConvDims::canonical(s),
            strides,
            padding: padding.iter().map(|&(a, b)| (a as i64, b as i64)).collect(),
            lhs_dilation: vec![1; s],
            rhs_dilation: dil,
            feature_groups: group,
            batch_groups: 1,
        };
        let mut y = self.b.add(Op::Conv(conv), &[xx, w]).map_err(ir)?;
        if let Some(Some(bias)) = x.get(2) {
            let c = self.ty(*bias).numel();
            let mut shape = vec![1usize; r];
            shape[1] = c;
            let bb = self.b.reshape(*bias, shape).map_err(ir)?;
            y = self.b.binary(Binary::Add, y, bb).map_err(ir)?;
        }
        Ok(y)
    }

    /// Explicit (lo, hi) padding per spatial axis from `pads` / `auto_pad`.
    fn pads(
        &self,
        n: &Node,
        here: &str,
        spatial: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dil: &[usize],
    ) -> Result<Vec<(usize, usize)>, ImportError> {
        let err = |msg: String| ImportError::Onnx { at: here.to_string(), msg };
        let s = spatial.len();
        if kernel.len() != s || strides.len() != s || dil.len() != s {
            return Err(err("window attributes of another rank than the input".into()));
        }
        let auto = attr_s(n, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        Ok(match auto.as_str() {
            "NOTSET" => {
                let p = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 2 * s]);
                if p.len() != 2 * s || p.iter().any(|&v| v < 0) {
                    return Err(err(format!("pads {p:?}")));
                }
                (0..s).map(|k| (p[k] as usize, p[k + s] as usize)).collect()
            }
            "VALID" => vec![(0, 0); s],
            "SAME_UPPER" | "SAME_LOWER" => (0..s)
                .map(|k| {
                    let out = spatial[k].div_ceil(strides[k].max(1));
                    let eff = (kernel[k].saturating_sub(1)) * dil[k] + 1;
                    let total =
                        ((out.saturating_sub(1)) * strides[k] + eff).saturating_sub(spatial[k]);
                    let small = total / 2;
                    if auto == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    }
                })
                .collect(),
            other => return Err(err(format!("auto_pad {other}"))),
        })
    }

    fn pool(&mut self, n: &Node, here: &str, xx: NodeId) -> Result<NodeId, ImportError> {
        let err = |msg: String| ImportError::Onnx { at: here.to_string(), msg };
        let ir =
            |e: jjt_ir::IrError| ImportError::Onnx { at: here.to_string(), msg: e.to_string() };
        if n.outputs.len() > 1 && n.outputs[1..].iter().any(|o| !o.is_empty()) {
            return Err(err("MaxPool's indices output is not supported".into()));
        }
        let xt = self.ty(xx);
        let r = xt.rank();
        if r < 3 {
            return Err(err(format!("a rank-{r} input")));
        }
        let s = r - 2;
        let to_usize = |v: Vec<i64>, what: &str| -> Result<Vec<usize>, ImportError> {
            v.iter()
                .map(|&v| usize::try_from(v).map_err(|_| err(format!("negative {what}"))))
                .collect()
        };
        let kernel = to_usize(
            attr_ints(n, "kernel_shape").ok_or_else(|| err("no kernel_shape".into()))?,
            "kernel_shape",
        )?;
        let strides = to_usize(attr_ints(n, "strides").unwrap_or_else(|| vec![1; s]), "strides")?;
        let dil = to_usize(attr_ints(n, "dilations").unwrap_or_else(|| vec![1; s]), "dilations")?;
        let spatial = &xt.shape.dims()[2..];
        let mut pads = self.pads(n, here, spatial, &kernel, &strides, &dil)?;
        if attr_i(n, "ceil_mode").unwrap_or(0) != 0 {
            // The last window may start inside the padded input and run past it: pad more at
            // the end (−∞ for max, and not counted for the average).
            for k in 0..s {
                let eff = (kernel[k] - 1) * dil[k] + 1;
                let len = spatial[k] + pads[k].0 + pads[k].1;
                if len >= eff {
                    let floor = (len - eff) / strides[k] + 1;
                    let ceil = (len - eff).div_ceil(strides[k]) + 1;
                    // ONNX drops a last window that starts in the end padding.
                    let ceil = if (ceil - 1) * strides[k] >= spatial[k] + pads[k].0 {
                        ceil - 1
                    } else {
                        ceil
                    };
                    pads[k].1 += (ceil - floor) * strides[k];
                }
            }
        }
        let full = |v: &[usize], fill: usize| -> Vec<usize> {
            let mut o = vec![fill; 2];
            o.extend_from_slice(v);
            o
        };
        let mut padding = vec![(0, 0); 2];
        padding.extend(pads.iter().copied());
        let w = Window {
            window: full(&kernel, 1),
            strides: full(&strides, 1),
            padding: padding.clone(),
            base_dilation: vec![1; r],
            window_dilation: full(&dil, 1),
        };
        if n.op == "MaxPool" {
            return self.b.reduce_window(xx, ReduceKind::Max, &w).map_err(ir);
        }
        let sum = self.b.reduce_window(xx, ReduceKind::Sum, &w).map_err(ir)?;
        let include = attr_i(n, "count_include_pad").unwrap_or(0) != 0;
        let padded = pads.iter().any(|&(a, b)| a > 0 || b > 0);
        if !padded || include {
            let count: usize = kernel.iter().product();
            return self
                .b
                .binary_scalar(Binary::Div, sum, count as f64, ScalarSide::Right)
                .map_err(ir);
        }
        // Divide by the taps inside the input: the same window sum over ones.
        let ones = self.b.full(xt.clone(), 1.0).map_err(ir)?;
        let count = self.b.reduce_window(ones, ReduceKind::Sum, &w).map_err(ir)?;
        self.b.binary(Binary::Div, sum, count).map_err(ir)
    }

    /// Evaluate a node whose operands are all known, when it is shape arithmetic.
    fn fold(&self, n: &Node) -> Result<Option<Vec<Known>>, String> {
        let k = |i: usize| -> Result<&Known, String> {
            n.inputs
                .get(i)
                .filter(|s| !s.is_empty())
                .and_then(|s| self.known(s))
                .ok_or_else(|| format!("input {i} is missing"))
        };
        let small = |kn: &Known| kn.v.len() <= MAX_KNOWN;
        let one = |v: Known| Ok(Some(vec![v]));
        match n.op.as_str() {
            "Constant" => {
                let a = n.attrs.first().ok_or("Constant without a value")?;
                let kn = match a.name.as_str() {
                    "value" => {
                        tensor_values(a.t.as_ref().ok_or("Constant without a tensor")?, None)
                            .map_err(|e| e.to_string())?
                    }
                    "value_float" => {
                        Known { dims: vec![], v: vec![a.f.unwrap_or(0.0)], dtype: DType::F32 }
                    }
                    "value_int" => {
                        Known { dims: vec![], v: vec![a.i.unwrap_or(0) as f64], dtype: DType::I32 }
                    }
                    "value_floats" => {
                        Known { dims: vec![a.floats.len()], v: a.floats.clone(), dtype: DType::F32 }
                    }
                    "value_ints" => Known {
                        dims: vec![a.ints.len()],
                        v: a.ints.iter().map(|&x| x as f64).collect(),
                        dtype: DType::I32,
                    },
                    other => return Err(format!("Constant's `{other}` is not supported")),
                };
                one(kn)
            }
            "Identity" | "Cast" if small(k(0)?) => {
                let mut v = k(0)?.clone();
                if n.op == "Cast" {
                    v.dtype = dtype_of(attr_i(n, "to").unwrap_or(0) as i32, "Cast")
                        .map_err(|e| e.to_string())?;
                    if v.dtype == DType::I32 {
                        v.v.iter_mut().for_each(|x| *x = x.trunc());
                    }
                }
                one(v)
            }
            "ConstantOfShape" => {
                let dims: Vec<usize> = k(0)?
                    .ints()
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| "negative dimension".to_string()))
                    .collect::<Result<_, _>>()?;
                let numel = dims
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .filter(|&v| v <= MAX_KNOWN)
                    .ok_or("ConstantOfShape too large")?;
                let (value, dtype) =
                    match n.attrs.iter().find(|a| a.name == "value").and_then(|a| a.t.as_ref()) {
                        Some(t) => {
                            let kn = tensor_values(t, None).map_err(|e| e.to_string())?;
                            (kn.v.first().copied().unwrap_or(0.0), kn.dtype)
                        }
                        None => (0.0, DType::F32),
                    };
                one(Known { dims, v: vec![value; numel], dtype })
            }
            // Integer arithmetic only: float values are computed by the graph, in their own
            // precision.
            "Add" | "Sub" | "Mul" | "Div" | "Equal" | "Less" | "Greater" | "Max" | "Min"
                if k(0)?.dtype == DType::I32 && small(k(0)?) && small(k(1)?) =>
            {
                let (a, b) = (k(0)?, k(1)?);
                let f = |x: f64, y: f64| match n.op.as_str() {
                    "Add" => x + y,
                    "Sub" => x - y,
                    "Mul" => x * y,
                    "Div" if a.dtype == DType::I32 => (x / y).floor(),
                    "Div" => x / y,
                    "Equal" => f64::from(u8::from(x == y)),
                    "Less" => f64::from(u8::from(x < y)),
                    "Greater" => f64::from(u8::from(x > y)),
                    "Max" => x.max(y),
                    _ => x.min(y),
                };
                let dtype = if matches!(n.op.as_str(), "Equal" | "Less" | "Greater") {
                    DType::Bool
                } else {
                    a.dtype
                };
                one(broadcast2(a, b, f, dtype)?)
            }
            "Neg" if k(0)?.dtype == DType::I32 && small(k(0)?) => {
                let mut v = k(0)?.clone();
                v.v.iter_mut().for_each(|x| *x = -*x);
                one(v)
            }
            "Where" if k(1)?.dtype == DType::I32 && small(k(0)?) => {
                let (c, a, b) = (k(0)?, k(1)?, k(2)?);
                let ab = broadcast2(a, b, |x, _| x, a.dtype)?;
                let ba = broadcast2(b, a, |x, _| x, a.dtype)?;
                let cc = broadcast2(c, &ab, |x, _| x, DType::Bool)?;
                let ab = broadcast2(&ab, &cc, |x, _| x, a.dtype)?;
                let ba = broadcast2(&ba, &cc, |x, _| x, a.dtype)?;
                let v =
                    cc.v.iter()
                        .zip(ab.v.iter().zip(&ba.v))
                        .map(|(&c, (&x, &y))| if c != 0.0 { x } else { y })
                        .collect();
                one(Known { dims: cc.dims.clone(), v, dtype: a.dtype })
            }
            "Unsqueeze" | "Squeeze" | "Reshape" | "Concat" | "Gather" | "Slice" | "Range"
            | "Expand" | "Shape" | "Transpose" | "Flatten" => {
                // Evaluate through the graph ops on a scratch builder (same code as the graph).
                if n.inputs
                    .iter()
                    .filter(|s| !s.is_empty())
                    .any(|s| self.known(s).is_none_or(|kn| !small(kn)))
                {
                    return Ok(None);
                }
                let mut cx = Cx {
                    b: FunctionBuilder::new("fold"),
                    env: HashMap::new(),
                    consts: HashMap::new(),
                };
                for s in n.inputs.iter().filter(|s| !s.is_empty()) {
                    if let Some(kn) = self.known(s) {
                        cx.env.insert(s.clone(), Val::Known(kn.clone()));
                    }
                }
                if n.op == "Shape" {
                    return Ok(None);
                }
                if n.op == "Range" {
                    let (s, l, d) = (k(0)?.v[0], k(1)?.v[0], k(2)?.v[0]);
                    if d == 0.0 {
                        return Err("Range with delta 0".into());
                    }
                    let count = ((l - s) / d).ceil().max(0.0);
                    if count > MAX_KNOWN as f64 {
                        return Err("Range too long".into());
                    }
                    let v: Vec<f64> = (0..count as usize).map(|i| s + i as f64 * d).collect();
                    return one(Known { dims: vec![v.len()], v, dtype: k(0)?.dtype });
                }
                let mut x = Vec::new();
                for i in &n.inputs {
                    x.push(if i.is_empty() {
                        None
                    } else {
                        Some(cx.node_of(i, "fold").map_err(|e| e.to_string())?)
                    });
                }
                let outs = match n.op.as_str() {
                    "Transpose" | "Flatten" => cx.build(n, "fold").map_err(|e| e.to_string())?,
                    _ => cx.shape_op(n, "fold", &x).map_err(|e| e.to_string())?,
                };
                let f = cx.b.finish_many(outs).map_err(|e| e.to_string())?;
                let vals = jjt_ir::interp::eval_outputs(&f, &[]).map_err(|e| e.to_string())?;
                Ok(Some(
                    vals.iter()
                        .map(|t| Known {
                            dims: t.shape.dims().to_vec(),
                            v: t.to_f64_vec(),
                            dtype: t.dtype(),
                        })
                        .collect(),
                ))
            }
            _ => Ok(None),
        }
    }
}

/// NumPy broadcast of two known values under `f`.
fn broadcast2(
    a: &Known,
    b: &Known,
    f: impl Fn(f64, f64) -> f64,
    dtype: DType,
) -> Result<Known, String> {
    let r = a.dims.len().max(b.dims.len());
    let pad = |d: &[usize]| {
        let mut v = vec![1; r - d.len()];
        v.extend_from_slice(d);
        v
    };
    let (da, db) = (pad(&a.dims), pad(&b.dims));
    let mut out = Vec::with_capacity(r);
    for k in 0..r {
        out.push(match (da[k], db[k]) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {:?} and {:?} do not broadcast", a.dims, b.dims)),
        });
    }
    let numel = out
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&v| v <= MAX_KNOWN)
        .ok_or("too large")?;
    let strides = |d: &[usize]| {
        let mut s = vec![0usize; r];
        let mut acc = 1;
        for k in (0..r).rev() {
            s[k] = if d[k] == 1 { 0 } else { acc };
            acc *= d[k];
        }
        s
    };
    let (sa, sb) = (strides(&da), strides(&db));
    let mut v = Vec::with_capacity(numel);
    let mut idx = vec![0usize; r];
    for _ in 0..numel {
        let ia: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
        let ib: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
        v.push(f(a.v.get(ia).copied().unwrap_or(0.0), b.v.get(ib).copied().unwrap_or(0.0)));
        for k in (0..r).rev() {
            idx[k] += 1;
            if idx[k] < out[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    Ok(Known { dims: out, v, dtype })
}

fn unreachable_constant(n: &Node, here: &str) -> Result<NodeId, ImportError> {
    Err(ImportError::Onnx { at: here.to_string(), msg: format!("{} could not be evaluated", n.op) })
}

fn self_ty(b: &FunctionBuilder, x: NodeId) -> TensorType {
    b.ty(x).cloned().unwrap_or_else(|_| TensorType::scalar(DType::F32))
}

fn self_dtype(b: &FunctionBuilder, x: NodeId) -> DType {
    self_ty(b, x).dtype
}

/// `y` (reduced over `axis`) reshaped back to `shape` with a 1 at `axis`.
fn keep(
    b: &mut FunctionBuilder,
    y: NodeId,
    axis: usize,
    shape: &Shape,
) -> Result<NodeId, jjt_ir::IrError> {
    keep_many(b, y, &[axis as i64], shape)
}

fn keep_many(
    b: &mut FunctionBuilder,
    y: NodeId,
    axes: &[i64],
    shape: &Shape,
) -> Result<NodeId, jjt_ir::IrError> {
    let dims: Vec<usize> = shape
        .dims()
        .iter()
        .enumerate()
        .map(|(k, &d)| if axes.contains(&(k as i64)) { 1 } else { d })
        .collect();
    b.reshape(y, dims)
}

fn attr<'a>(n: &'a Node, name: &str) -> Option<&'a Attribute> {
    n.attrs.iter().find(|a| a.name == name)
}

fn attr_i(n: &Node, name: &str) -> Option<i64> {
    attr(n, name).and_then(|a| a.i)
}

fn attr_f(n: &Node, name: &str) -> Option<f64> {
    attr(n, name).and_then(|a| a.f)
}

fn attr_s(n: &Node, name: &str) -> Option<String> {
    attr(n, name).and_then(|a| a.s.clone())
}

fn attr_ints(n: &Node, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}
