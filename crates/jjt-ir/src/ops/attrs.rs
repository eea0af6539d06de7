//! Attributes in the text format: the values a call's argument list holds ([`AttrValue`]), the
//! non-operand arguments an op parser takes them from ([`CallArgs`]), and the writer of list
//! attributes.

use std::fmt::Write as _;

use super::constant;
use crate::types::{DType, Shape, TensorType};

/// A value in a call's argument list, as the parser read it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// An integer literal.
    Int(i64),
    /// A float literal, kept as text so it can be read at the target precision.
    Float(String),
    /// `[a, b, ...]`.
    List(Vec<AttrValue>),
    /// A tensor type `f32[2,3]`.
    Type(TensorType),
    /// A bare dtype `f64`.
    DType(DType),
    /// A string literal.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(s) => f.write_str(s),
            AttrValue::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            AttrValue::Type(t) => write!(f, "{t}"),
            AttrValue::DType(d) => write!(f, "{d}"),
            AttrValue::Str(s) => f.write_str(&constant::quote(s)),
            AttrValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The non-operand arguments of a call: positional values (types, strings, literals of
/// constants) and keyword attributes. Op parsers take what they need; the parser reports
/// anything left over.
#[derive(Clone, Debug, Default)]
pub struct CallArgs {
    /// Positional non-operand values in order.
    pub positional: Vec<AttrValue>,
    /// `name=value` attributes in order.
    pub keyword: Vec<(String, AttrValue)>,
    /// Types of the call's operands (already built), so attributes such as negative axes
    /// can be resolved against their rank.
    pub operand_types: Vec<TensorType>,
    /// Folder that relative `npy("...")` paths are read from.
    pub base_dir: Option<std::path::PathBuf>,
}

impl CallArgs {
    /// Remove and return a keyword attribute.
    pub fn take(&mut self, key: &str) -> Option<AttrValue> {
        let i = self.keyword.iter().position(|(k, _)| k == key)?;
        Some(self.keyword.remove(i).1)
    }

    /// Remove and return the first positional value.
    pub fn take_positional(&mut self) -> Option<AttrValue> {
        if self.positional.is_empty() { None } else { Some(self.positional.remove(0)) }
    }

    /// A required keyword holding a list of non-negative integers.
    pub fn take_usizes(&mut self, key: &str) -> Result<Vec<usize>, String> {
        match self.take(key) {
            Some(v) => {
                usizes(&v).ok_or_else(|| format!("`{key}` must be a list of non-negative integers"))
            }
            None => Err(format!("missing attribute `{key}=[...]`")),
        }
    }

    /// A keyword holding a list of non-negative integers, or `default` when it is absent.
    pub fn take_usizes_or(
        &mut self,
        key: &str,
        default: impl FnOnce() -> Vec<usize>,
    ) -> Result<Vec<usize>, String> {
        if self.keyword.iter().any(|(k, _)| k == key) {
            self.take_usizes(key)
        } else {
            Ok(default())
        }
    }

    /// A keyword holding a list of integers that may be negative (axes), if present.
    pub fn take_axes(&mut self, key: &str) -> Result<Option<Vec<i64>>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(AttrValue::List(items)) => items
                .iter()
                .map(|v| match v {
                    AttrValue::Int(i) => Ok(*i),
                    _ => Err(format!("`{key}` must be a list of integers")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(AttrValue::Int(i)) => Ok(Some(vec![i])),
            Some(_) => Err(format!("`{key}` must be a list of integers")),
        }
    }

    /// A required keyword holding one integer.
    pub fn take_int(&mut self, key: &str) -> Result<i64, String> {
        match self.take(key) {
            Some(AttrValue::Int(i)) => Ok(i),
            Some(_) => Err(format!("`{key}` must be an integer")),
            None => Err(format!("missing attribute `{key}=...`")),
        }
    }

    /// A leading positional tensor type (constants).
    pub fn take_type(&mut self) -> Result<TensorType, String> {
        match self.take_positional() {
            Some(AttrValue::Type(t)) => Ok(t),
            _ => Err("expected a tensor type such as `f32[2,3]` as the first argument".into()),
        }
    }
}

/// A list of non-negative integers.
pub(crate) fn usizes(v: &AttrValue) -> Option<Vec<usize>> {
    match v {
        AttrValue::List(items) => items
            .iter()
            .map(|i| match i {
                AttrValue::Int(i) => usize::try_from(*i).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Writes `, key=[a,b]`.
pub(crate) fn write_list(out: &mut String, key: &str, items: &[usize]) {
    let _ = write!(out, ", {key}={}", Shape(items.to_vec()));
}
