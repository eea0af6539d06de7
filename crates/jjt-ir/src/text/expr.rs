//! Expressions: infix operators with NumPy's weak scalars, calls of ops with their operands
//! and attributes, and attribute values.

use std::path::Path;

use super::error::{ParseError, ParseErrorKind, did_you_mean};
use super::lexer::{Tok, Token};
use super::parser::{PResult, Parser, RESERVED, Val, dtype_of};
use crate::graph::NodeId;
use crate::ops::{AttrValue, Binary, CallArgs, Compare, Op, ReduceKind, Unary};
use crate::types::{DType, TensorType};

/// Names the parser accepts that are not ops (built from ops; see docs/format.md).
pub(super) const SUGAR: [&str; 6] = ["matmul", "reduce_window", "any", "all", "min", "where"];

/// Every attribute name an op or helper of the text format takes (for "did you mean").
const ATTRIBUTES: [&str; 31] = [
    "axes",
    "axis",
    "keepdims",
    "shape",
    "perm",
    "start",
    "stop",
    "step",
    "lo",
    "hi",
    "interior",
    "to",
    "contract",
    "batch",
    "dims",
    "strides",
    "padding",
    "lhs_dilation",
    "rhs_dilation",
    "feature_groups",
    "batch_groups",
    "window",
    "dilation",
    "kind",
    "base_dilation",
    "window_dilation",
    "seed",
    "offset",
    "mean",
    "std",
    "limit",
];

/// For a broadcast error between a shape and the same shape with axes removed (a reduction's
/// result): keep the axes as 1s, so the result lines up with the axes it came from.
fn broadcast_hint(e: &crate::IrError) -> Option<String> {
    let crate::IrError::Type { source: crate::TypeError::Broadcast(a, b), .. } = e else {
        return None;
    };
    let (long, short) = if a.rank() >= b.rank() { (a, b) } else { (b, a) };
    // The axes of `long` that `short` lacks, matching `short`'s sizes in order.
    let mut missing = Vec::new();
    let mut k = 0;
    for (i, &d) in long.dims().iter().enumerate() {
        if k < short.rank() && short.dims()[k] == d {
            k += 1;
        } else {
            missing.push(i);
        }
    }
    if k != short.rank() || missing.is_empty() {
        return None;
    }
    let kept: Vec<String> = long
        .dims()
        .iter()
        .enumerate()
        .map(|(i, d)| if missing.contains(&i) { "1".into() } else { d.to_string() })
        .collect();
    Some(format!(
        "a {short} value lines up with the trailing axes of {long} (NumPy's rule); to line it up \
         with axes {missing:?}, reduce with `keepdims=true` or reshape it: \
         `reshape(v, shape=[{}])`",
        kept.join(",")
    ))
}

impl Parser<'_> {
    // expr := term (('+'|'-') term)*
    // expr := sum (('<'|'<='|'>'|'>='|'==') sum)?   (comparisons do not chain)
    pub(super) fn expr(&mut self) -> PResult<Val> {
        self.enter()?;
        let lhs = self.sum()?;
        let t = self.peek().clone();
        let cmp = match t.tok {
            Tok::Punct(">") => Some((Compare::Gt, false)),
            Tok::Punct(">=") => Some((Compare::Ge, false)),
            Tok::Punct("<") => Some((Compare::Gt, true)),
            Tok::Punct("<=") => Some((Compare::Ge, true)),
            Tok::Punct("==") => Some((Compare::Eq, false)),
            _ => None,
        };
        let v = match cmp {
            None => lhs,
            Some((c, swap)) => {
                self.pos += 1;
                let rhs = self.sum()?;
                // `a < b` is `lt(a, b)`; written as the mirrored op so literals type alike.
                let (c, l, r) = match (c, swap) {
                    (Compare::Gt, true) => (Compare::Lt, lhs, rhs),
                    (Compare::Ge, true) => (Compare::Le, lhs, rhs),
                    (c, _) => (c, lhs, rhs),
                };
                self.compare(c, l, r, &t)?
            }
        };
        self.depth -= 1;
        Ok(v)
    }

    // sum := term (('+'|'-') term)*
    pub(super) fn sum(&mut self) -> PResult<Val> {
        let mut lhs = self.term()?;
        loop {
            let t = self.peek().clone();
            let op = match t.tok {
                Tok::Punct("+") => Binary::Add,
                Tok::Punct("-") => Binary::Sub,
                _ => break,
            };
            self.pos += 1;
            let rhs = self.term()?;
            lhs = self.binary(op, lhs, rhs, &t)?;
        }
        Ok(lhs)
    }

    pub(super) fn compare(&mut self, c: Compare, lhs: Val, rhs: Val, t: &Token) -> PResult<Val> {
        let (a, b) = self.infix_operands(lhs, rhs, t)?;
        Ok(Val::Node(self.b.compare(c, a, b).map_err(|e| self.ir_err(t, e))?))
    }

    // term := unary (('*'|'/'|'@') unary)*
    pub(super) fn term(&mut self) -> PResult<Val> {
        let mut lhs = self.unary()?;
        loop {
            let t = self.peek().clone();
            let op = match t.tok {
                Tok::Punct("*") => Some(Binary::Mul),
                Tok::Punct("/") => Some(Binary::Div),
                Tok::Punct("@") => None,
                _ => break,
            };
            self.pos += 1;
            let rhs = self.unary()?;
            lhs = match op {
                Some(op) => self.binary(op, lhs, rhs, &t)?,
                None => {
                    let a = self.node_of(lhs, &t, None)?;
                    let b = self.node_of(rhs, &t, None)?;
                    Val::Node(self.b.matmul(a, b).map_err(|e| self.ir_err(&t, e))?)
                }
            };
        }
        Ok(lhs)
    }

    // unary := '-' unary | atom
    pub(super) fn unary(&mut self) -> PResult<Val> {
        let t = self.peek().clone();
        if self.eat("-") {
            self.enter()?;
            let v = self.unary()?;
            self.depth -= 1;
            return match v {
                Val::Lit(s) => Ok(Val::Lit(match s.strip_prefix('-') {
                    Some(rest) => rest.to_string(),
                    None => format!("-{s}"),
                })),
                Val::Node(id) => {
                    Ok(Val::Node(self.b.unary(Unary::Neg, id).map_err(|e| self.ir_err(&t, e))?))
                }
            };
        }
        self.power()
    }

    /// `a ** b` (`pow`): binds tighter than unary minus on its left (`-x ** 2` is `-(x ** 2)`)
    /// and is right-associative, its exponent a unary expression (`2 ** -1`), as in Python.
    pub(super) fn power(&mut self) -> PResult<Val> {
        let mut base = self.atom()?;
        while self.peek().tok == Tok::Punct("[") {
            base = self.subscript(base)?;
        }
        let t = self.peek().clone();
        if !self.eat("**") {
            return Ok(base);
        }
        self.enter()?;
        let exponent = self.unary()?;
        self.depth -= 1;
        self.binary(Binary::Pow, base, exponent, &t)
    }

    pub(super) fn atom(&mut self) -> PResult<Val> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Int(s) | Tok::Float(s) => {
                self.pos += 1;
                Ok(Val::Lit(s.clone()))
            }
            Tok::Ident(s) if s == "inf" || s == "nan" => {
                self.pos += 1;
                Ok(Val::Lit(s.clone()))
            }
            Tok::Ident(s) if RESERVED.contains(&s.as_str()) => Err(self.expected("an expression")),
            Tok::Ident(name) => {
                self.pos += 1;
                if self.peek().tok == Tok::Punct("(") {
                    self.call(name.clone(), &t)
                } else {
                    self.env.get(name).cloned().ok_or_else(|| {
                        let hint = did_you_mean(name, self.env.keys().map(String::as_str));
                        self.err_at(&t, ParseErrorKind::UnknownName(name.clone())).with_hint(hint)
                    })
                }
            }
            Tok::Punct("(") => {
                self.pos += 1;
                let v = self.expr()?;
                if !self.eat(")") {
                    return Err(self.unclosed(&t));
                }
                Ok(v)
            }
            _ => Err(self.expected("an expression")),
        }
    }

    /// A literal becomes a `full` constant of type `like`.
    pub(super) fn node_of(
        &mut self,
        v: Val,
        t: &Token,
        like: Option<&TensorType>,
    ) -> PResult<NodeId> {
        match (v, like) {
            (Val::Node(id), _) => Ok(id),
            (Val::Lit(s), Some(ty)) => {
                let value =
                    crate::ops::constant::parse_value(&AttrValue::Float(s.clone()), ty.dtype)
                        .map_err(|_| self.err_at(t, ParseErrorKind::BadNumber(s)))?;
                self.b.full(ty.clone(), value).map_err(|e| self.ir_err(t, e))
            }
            (Val::Lit(_), None) => Err(self.err_at(t, ParseErrorKind::UntypedLiteral)),
        }
    }

    pub(super) fn binary(&mut self, op: Binary, lhs: Val, rhs: Val, t: &Token) -> PResult<Val> {
        let (a, b) = self.infix_operands(lhs, rhs, t)?;
        Ok(Val::Node(self.b.binary(op, a, b).map_err(|e| {
            let hint = broadcast_hint(&e);
            self.ir_err(t, e).with_hint(hint)
        })?))
    }

    /// `x[…]`, NumPy's basic indexing and one integer-tensor index: per axis, from the left, a
    /// slice `start:stop:step` (each part optional, negative counting from the end, a negative
    /// step walking backwards), an integer (drops the axis; negative from the end; out of range
    /// is an error), or an `i32` tensor expression (a `gather` along that axis, its indices
    /// clamped as `gather` clamps); axes not indexed are kept whole. Lowered to `reverse`,
    /// `slice`, `reshape` and `gather`.
    fn subscript(&mut self, base: Val) -> PResult<Val> {
        let open = self.peek().clone();
        self.expect("[")?;
        let x = self.node_of(base, &open, None)?;
        // Each item: a slice's three optional integers, an integer, a tensor, `...` (every axis
        // no other item indexes) or `None` (a new axis of size 1).
        #[derive(Clone)]
        enum Item {
            Slice(Option<i64>, Option<i64>, Option<i64>),
            Int(i64),
            Tensor(NodeId, Token),
            Ellipsis,
            NewAxis,
        }
        let mut items = Vec::new();
        loop {
            let at = self.peek().clone();
            // `x[0,]`: a trailing comma, as Python allows.
            if !items.is_empty() && self.eat("]") {
                break;
            }
            let special = match &at.tok {
                Tok::Punct("...") => Some(Item::Ellipsis),
                Tok::Ident(s) if s == "None" => Some(Item::NewAxis),
                _ => None,
            };
            if let Some(item) = special {
                self.pos += 1;
                items.push(item);
                if self.eat("]") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.unclosed_bracket(&open));
                }
                continue;
            }
            let int_or_none = |p: &mut Self| -> PResult<Option<i64>> {
                if matches!(p.peek().tok, Tok::Punct(":") | Tok::Punct(",") | Tok::Punct("]")) {
                    return Ok(None);
                }
                let t = p.peek().clone();
                match p.expr()? {
                    Val::Lit(v) => v.parse::<i64>().map(Some).map_err(|_| {
                        p.err_at(
                            &t,
                            ParseErrorKind::Attr {
                                op: "index".into(),
                                message: format!("a slice bound must be an integer, got `{v}`"),
                            },
                        )
                    }),
                    Val::Node(_) => Err(p.err_at(
                        &t,
                        ParseErrorKind::Attr {
                            op: "index".into(),
                            message: "a slice bound must be an integer literal".into(),
                        },
                    )),
                }
            };
            let first = if matches!(at.tok, Tok::Punct(":")) {
                None
            } else {
                let v = self.expr()?;
                if !matches!(self.peek().tok, Tok::Punct(":")) {
                    items.push(match v {
                        Val::Lit(s) => Item::Int(s.parse::<i64>().map_err(|_| {
                            self.err_at(
                                &at,
                                ParseErrorKind::Attr {
                                    op: "index".into(),
                                    message: format!("an index must be an integer, got `{s}`"),
                                },
                            )
                        })?),
                        Val::Node(n) => Item::Tensor(n, at.clone()),
                    });
                    if self.eat("]") {
                        break;
                    }
                    if !self.eat(",") {
                        return Err(self.unclosed_bracket(&open));
                    }
                    continue;
                }
                match v {
                    Val::Lit(s) => Some(s.parse::<i64>().map_err(|_| {
                        self.err_at(
                            &at,
                            ParseErrorKind::Attr {
                                op: "index".into(),
                                message: format!("a slice bound must be an integer, got `{s}`"),
                            },
                        )
                    })?),
                    Val::Node(_) => {
                        return Err(self.err_at(
                            &at,
                            ParseErrorKind::Attr {
                                op: "index".into(),
                                message: "a slice bound must be an integer literal".into(),
                            },
                        ));
                    }
                }
            };
            self.expect(":")?;
            let stop = int_or_none(self)?;
            let step = if self.eat(":") { int_or_none(self)? } else { None };
            items.push(Item::Slice(first, stop, step));
            if self.eat("]") {
                break;
            }
            if !self.eat(",") {
                return Err(self.unclosed_bracket(&open));
            }
        }
        let err = |p: &Self, message: String| {
            p.err_at(&open, ParseErrorKind::Attr { op: "index".into(), message })
        };
        let dims = self.b.ty(x).map_err(|e| self.ir_err(&open, e))?.shape.0.clone();
        // The layout of the result: which items make output axes (`None` a new one).
        let layout = items.clone();
        if layout.iter().filter(|i| matches!(i, Item::Ellipsis)).count() > 1 {
            return Err(err(self, "at most one `...` per subscript".into()));
        }
        // One item per axis of `x`: `...` stands for the axes no other item takes.
        let taken = items.iter().filter(|i| !matches!(i, Item::Ellipsis | Item::NewAxis)).count();
        let items: Vec<Item> = items
            .into_iter()
            .filter(|i| !matches!(i, Item::NewAxis))
            .flat_map(|i| match i {
                Item::Ellipsis => {
                    vec![Item::Slice(None, None, None); dims.len().saturating_sub(taken)]
                }
                i => vec![i],
            })
            .collect();
        for item in &items {
            if let Item::Tensor(n, t) = item
                && self.b.ty(*n).map_err(|e| self.ir_err(t, e))?.dtype == DType::Bool
            {
                let message = "boolean masks are not supported (the result's shape would depend \
                               on the data): select with `where(mask, x, 0.0)`"
                    .to_string();
                return Err(self.err_at(t, ParseErrorKind::Attr { op: "index".into(), message }));
            }
        }
        if items.len() > dims.len() {
            return Err(err(
                self,
                format!("{} indices for a rank-{} value", items.len(), dims.len()),
            ));
        }
        let ints = items.iter().any(|i| matches!(i, Item::Int(_)));
        let tensors = items.iter().filter(|i| matches!(i, Item::Tensor(..))).count();
        if tensors > 1 || (tensors == 1 && ints) {
            return Err(err(
                self,
                "one tensor index per subscript, without integer indices (NumPy would \
                 broadcast them together): index in two steps"
                    .into(),
            ));
        }
        // Slices and integers first, on every axis at once: reverse the axes walked backwards,
        // then one strided slice, then drop the integer-indexed axes.
        let r = dims.len();
        let (mut start, mut stop, mut step) = (vec![0; r], dims.clone(), vec![1; r]);
        let (mut reversed, mut dropped) = (Vec::new(), Vec::new());
        for (a, item) in items.iter().enumerate() {
            let d = dims[a] as i64;
            match *item {
                Item::Int(i) => {
                    let k = if i < 0 { i + d } else { i };
                    if !(0..d).contains(&k) {
                        return Err(err(
                            self,
                            format!("index {i} is out of range for axis {a} of size {d}"),
                        ));
                    }
                    (start[a], stop[a]) = (k as usize, k as usize + 1);
                    dropped.push(a);
                }
                Item::Slice(lo, hi, st) => {
                    let st = st.unwrap_or(1);
                    if st == 0 {
                        return Err(err(self, "slice step cannot be zero".into()));
                    }
                    // A step longer than the axis takes at most one element, as a step of the
                    // axis' length does: clamping keeps the arithmetic below in range.
                    let st = st.clamp(-d.max(1), d.max(1));
                    // Python's slice.indices(d).
                    let norm = |v: i64, lo_clamp: i64, hi_clamp: i64| {
                        let v = if v < 0 { v + d } else { v };
                        v.clamp(lo_clamp, hi_clamp)
                    };
                    let (b, e) = if st > 0 {
                        (lo.map_or(0, |v| norm(v, 0, d)), hi.map_or(d, |v| norm(v, 0, d)))
                    } else {
                        (
                            lo.map_or(d - 1, |v| norm(v, -1, d - 1)),
                            hi.map_or(-1, |v| norm(v, -1, d - 1)),
                        )
                    };
                    let n = if st > 0 {
                        if e > b { (e - b + st - 1) / st } else { 0 }
                    } else if b > e {
                        (b - e - st - 1) / -st
                    } else {
                        0
                    };
                    let (first, s) = if st > 0 {
                        (b, st)
                    } else {
                        reversed.push(a);
                        (d - 1 - b, -st)
                    };
                    let first = if n == 0 { 0 } else { first };
                    start[a] = first as usize;
                    stop[a] = (first + (n - 1).max(0) * s + i64::from(n > 0)) as usize;
                    step[a] = s as usize;
                }
                Item::Tensor(..) | Item::Ellipsis | Item::NewAxis => {}
            }
        }
        let mut v = x;
        let ir = |p: &Self, e| p.ir_err(&open, e);
        if !reversed.is_empty() {
            let rev = crate::ops::Reverse { axes: reversed };
            v = self.b.add(Op::Reverse(rev), &[v]).map_err(|e| ir(self, e))?;
        }
        if start.iter().any(|&s| s != 0) || stop != dims || step.iter().any(|&s| s != 1) {
            v = self.b.slice(v, &start, &stop, &step).map_err(|e| ir(self, e))?;
        }
        if !dropped.is_empty() {
            let sd = self.b.ty(v).map_err(|e| ir(self, e))?.shape.0.clone();
            let kept: Vec<usize> = sd
                .iter()
                .enumerate()
                .filter(|(a, _)| !dropped.contains(a))
                .map(|(_, &d)| d)
                .collect();
            v = self.b.reshape(v, kept).map_err(|e| ir(self, e))?;
        }
        if let Some((a, (idx, t))) = items.iter().enumerate().find_map(|(a, i)| match i {
            Item::Tensor(n, t) => Some((a, (*n, t.clone()))),
            _ => None,
        }) {
            // Negative indices count from the end, as in NumPy: idx < 0 ? idx + d : idx
            // (then clamped by the gather, where NumPy would raise).
            let wrap = |p: &mut Self| -> Result<NodeId, crate::IrError> {
                if p.b.ty(idx)?.dtype != DType::I32 {
                    return Ok(idx);
                }
                let neg = p.b.compare_scalar(Compare::Lt, idx, 0.0)?;
                let d = dims[a] as f64;
                let up =
                    p.b.binary_scalar(Binary::Add, idx, d, crate::builder::ScalarSide::Right)?;
                p.b.select(neg, up, idx)
            };
            let idx = wrap(self).map_err(|e| self.ir_err(&t, e))?;
            let g = crate::ops::Gather { axis: a };
            v = self.b.add(Op::Gather(g), &[v, idx]).map_err(|e| self.ir_err(&t, e))?;
        }
        if layout.iter().any(|i| matches!(i, Item::NewAxis)) {
            // Walk the result's axes in the order the items made them, a 1 for each `None`.
            let have = self.b.ty(v).map_err(|e| self.ir_err(&open, e))?.shape.0.clone();
            let mut have = have.into_iter();
            let mut shape = Vec::new();
            let mut take = |n: usize, shape: &mut Vec<usize>| {
                shape.extend(have.by_ref().take(n));
            };
            for item in &layout {
                match item {
                    Item::Slice(..) => take(1, &mut shape),
                    Item::Int(_) => {}
                    Item::Tensor(n, t) => {
                        let r = self.b.ty(*n).map_err(|e| self.ir_err(t, e))?.rank();
                        take(r, &mut shape);
                    }
                    Item::Ellipsis => take(dims.len().saturating_sub(taken), &mut shape),
                    Item::NewAxis => shape.push(1),
                }
            }
            shape.extend(have);
            v = self.b.reshape(v, shape).map_err(|e| self.ir_err(&open, e))?;
        }
        Ok(Val::Node(v))
    }

    /// The attributes of the call `op` at `t` do not fit it.
    fn attr_error(&self, t: &Token, op: &str, message: String) -> ParseError {
        self.err_at(t, ParseErrorKind::Attr { op: op.to_string(), message })
    }

    /// `[` at `open` is not matched.
    fn unclosed_bracket(&self, open: &Token) -> ParseError {
        let found = self.peek().tok.describe();
        self.err_at(
            open,
            ParseErrorKind::Expected { expected: "`,` or `]` to close this `[`".into(), found },
        )
    }

    /// `(` at `open` is not matched: reported where it opens, with what came instead.
    fn unclosed(&self, open: &Token) -> ParseError {
        let found = self.peek().tok.describe();
        self.err_at(open, ParseErrorKind::Unclosed { found })
    }

    /// An unknown op name, with the closest op or helper name.
    fn unknown_op(&self, t: &Token, name: String) -> ParseError {
        let names = Op::all_names().into_iter().chain(SUGAR.iter().copied());
        let mut hint = did_you_mean(&name, names.chain(self.helpers.keys().map(String::as_str)));
        // A helper defined after the model's function is not known yet.
        let later = self
            .toks
            .windows(2)
            .any(|w| w[0].tok == Tok::Ident("func".into()) && w[1].tok == Tok::Ident(name.clone()));
        if later {
            hint = Some(format!(
                "`{name}` is defined below: define helpers before the model's function"
            ));
        }
        self.err_at(t, ParseErrorKind::UnknownOp(name)).with_hint(hint)
    }

    /// An argument the op does not take, with the closest attribute name any op takes.
    fn unused_arg(&self, t: &Token, op: String, arg: String) -> ParseError {
        // NumPy's names for attributes this format spells otherwise.
        let numpy = match (op.as_str(), arg.as_str()) {
            ("transpose", "axes") => Some("did you mean `perm`? (NumPy's `axes`)".to_string()),
            ("reshape", "newshape") => Some("did you mean `shape`?".to_string()),
            ("sum" | "mean" | "max" | "min" | "any" | "all", "axis") => {
                Some("did you mean `axes`? (one axis or a list)".to_string())
            }
            _ => None,
        };
        let hint = numpy.or_else(|| did_you_mean(&arg, ATTRIBUTES.iter().copied()));
        self.err_at(t, ParseErrorKind::UnusedArg { op, arg }).with_hint(hint)
    }

    /// The operands of an infix op: a literal takes the type of the node on the other side
    /// (NumPy's weak scalars); between two literals there is no type to take.
    pub(super) fn infix_operands(
        &mut self,
        lhs: Val,
        rhs: Val,
        t: &Token,
    ) -> PResult<(NodeId, NodeId)> {
        let like = match (&lhs, &rhs) {
            (Val::Node(n), _) | (_, Val::Node(n)) => {
                self.b.ty(*n).map_err(|e| self.ir_err(t, e))?.clone()
            }
            (Val::Lit(_), Val::Lit(_)) => {
                return Err(self.err_at(t, ParseErrorKind::UntypedLiteral));
            }
        };
        Ok((self.node_of(lhs, t, Some(&like))?, self.node_of(rhs, t, Some(&like))?))
    }

    pub(super) fn call(&mut self, name: String, t: &Token) -> PResult<Val> {
        let open = self.peek().clone();
        self.expect("(")?;
        self.enter()?;
        let mut operands: Vec<(Val, Token)> = Vec::new();
        let mut args =
            CallArgs { base_dir: self.base.map(Path::to_path_buf), ..CallArgs::default() };
        if !self.eat(")") {
            loop {
                let at = self.peek().clone();
                let is_kw = matches!(at.tok, Tok::Ident(_)) && *self.peek_at(1) == Tok::Punct("=");
                let is_type = matches!(&at.tok, Tok::Ident(s) if dtype_of(s).is_some())
                    && *self.peek_at(1) == Tok::Punct("[");
                if is_kw {
                    let (key, kt) = self.ident("an attribute name")?;
                    if args.keyword.iter().any(|(k, _)| *k == key) {
                        let message = format!("attribute `{key}` is given twice");
                        return Err(self.err_at(&kt, ParseErrorKind::Attr { op: name, message }));
                    }
                    self.expect("=")?;
                    let v = self.attr_value()?;
                    args.keyword.push((key, v));
                } else if is_type
                    || matches!(at.tok, Tok::Str(_) | Tok::Punct("["))
                    || (!operands.is_empty() || !args.positional.is_empty()) && is_const_op(&name)
                {
                    let v = self.attr_value()?;
                    args.positional.push(v);
                } else {
                    let v = self.expr()?;
                    operands.push((v, at));
                }
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.unclosed(&open));
                }
            }
        }
        self.depth -= 1;
        if name == "matmul" {
            if operands.len() != 2 || !args.positional.is_empty() || !args.keyword.is_empty() {
                return Err(self.err_at(
                    t,
                    ParseErrorKind::Attr {
                        op: name,
                        message: "takes exactly two operands: matmul(a, b)".into(),
                    },
                ));
            }
            let (b, bt) = operands.pop().ok_or_else(|| self.expected("an operand"))?;
            let (a, at) = operands.pop().ok_or_else(|| self.expected("an operand"))?;
            let a = self.node_of(a, &at, None)?;
            let b = self.node_of(b, &bt, None)?;
            return Ok(Val::Node(self.b.matmul(a, b).map_err(|e| self.ir_err(t, e))?));
        }
        if name == "reduce_window" {
            return self.reduce_window(name, t, operands, args);
        }
        if self.helpers.contains_key(&name) {
            if let Some((k, _)) = args.keyword.first() {
                return Err(self.unused_arg(t, name, k.clone()));
            }
            if let Some(v) = args.positional.first() {
                return Err(self.unused_arg(t, name, v.to_string()));
            }
            let vals = operands.into_iter().map(|(v, _)| v).collect();
            return self.inline(&name, t, vals);
        }
        if ["sum", "mean", "max", "min", "any", "all"].contains(&name.as_str()) {
            return self.reduction(name, t, operands, args);
        }
        // NumPy's spelling of `select`.
        let name = if name == "where" { "select".to_string() } else { name };
        if Op::parse_call(&name, &mut CallArgs::default()).is_none() {
            return Err(self.unknown_op(t, name));
        }
        // Literal operands take the dtype of the first float (else i32) operand and the
        // broadcast shape of all operands.
        let nodes: Vec<NodeId> = operands
            .iter()
            .filter_map(|(v, _)| if let Val::Node(n) = v { Some(*n) } else { None })
            .collect();
        let mut like: Option<TensorType> = None;
        for &n in &nodes {
            let ty = self.b.ty(n).map_err(|e| self.ir_err(t, e))?.clone();
            like = Some(match like {
                None => ty,
                Some(l) => {
                    let shape = crate::builder::broadcast_shapes(&l.shape, &ty.shape)
                        .unwrap_or(l.shape.clone());
                    let dtype = if crate::types::is_float(l.dtype) { l.dtype } else { ty.dtype };
                    TensorType::new(dtype, shape)
                }
            });
        }
        let like = like.filter(|l| crate::types::is_float(l.dtype) || l.dtype == DType::I32);
        let mut ids = Vec::with_capacity(operands.len());
        for (v, vt) in operands {
            ids.push(self.node_of(v, &vt, like.as_ref())?);
        }
        args.operand_types = ids
            .iter()
            .map(|&i| self.b.ty(i).cloned())
            .collect::<Result<_, _>>()
            .map_err(|e| self.ir_err(t, e))?;
        let op = match Op::parse_call(&name, &mut args) {
            None => return Err(self.unknown_op(t, name)),
            Some(Err(message)) => {
                return Err(self.err_at(t, ParseErrorKind::Attr { op: name, message }));
            }
            Some(Ok(op)) => op,
        };
        if let Some((k, _)) = args.keyword.first() {
            return Err(self.unused_arg(t, name, k.clone()));
        }
        if let Some(v) = args.positional.first() {
            return Err(self.unused_arg(t, name, v.to_string()));
        }
        let id = match op {
            Op::Binary(bop) if ids.len() == 2 => self.b.binary(bop, ids[0], ids[1]),
            Op::Compare(c) if ids.len() == 2 => self.b.compare(c, ids[0], ids[1]),
            Op::Select(_) if ids.len() == 3 => self.b.select(ids[0], ids[1], ids[2]),
            op => self.b.add(op, &ids),
        };
        Ok(Val::Node(id.map_err(|e| self.ir_err(t, e))?))
    }

    /// `sum`, `mean`, `max`, `min`, `any` and `all` over `axes` (all axes when omitted), with
    /// `keepdims=true` keeping each reduced axis as a 1 (NumPy's `keepdims`) so the result
    /// broadcasts back against the operand. `min` is not an op: `neg(max(neg(x)))`, built by
    /// [`crate::FunctionBuilder::reduce_min`]; nor are `any` and `all`
    /// ([`crate::FunctionBuilder::any_all`]).
    fn reduction(
        &mut self,
        name: String,
        t: &Token,
        mut operands: Vec<(Val, Token)>,
        mut args: CallArgs,
    ) -> PResult<Val> {
        let attr_err = |s: &Self, message: String| s.attr_error(t, &name, message);
        if let Some(v) = args.positional.first() {
            let arg = v.to_string();
            return Err(self.unused_arg(t, name, arg));
        }
        if operands.len() != 1 {
            let message =
                format!("takes one operand: {name}(x), {name}(x, axes=[...], keepdims=true)");
            return Err(attr_err(self, message));
        }
        let (v, vt) = operands.remove(0);
        let x = self.node_of(v, &vt, None)?;
        let axes = args.take_axes("axes").map_err(|m| attr_err(self, m))?;
        let keepdims = match args.take("keepdims") {
            None => false,
            Some(AttrValue::Bool(k)) => k,
            Some(_) => return Err(attr_err(self, "`keepdims` must be true or false".into())),
        };
        if let Some((k, _)) = args.keyword.first() {
            let arg = k.clone();
            return Err(self.unused_arg(t, name, arg));
        }
        let r = match name.as_str() {
            "sum" => self.b.reduce(ReduceKind::Sum, x, axes.as_deref()),
            "mean" => self.b.reduce(ReduceKind::Mean, x, axes.as_deref()),
            "max" => self.b.reduce(ReduceKind::Max, x, axes.as_deref()),
            "min" => self.b.reduce_min(x, axes.as_deref()),
            n => self.b.any_all(x, n == "all", axes.as_deref()),
        };
        let r = r.map_err(|e| self.ir_err(t, e))?;
        if !keepdims {
            return Ok(Val::Node(r));
        }
        let xs = self.b.ty(x).map_err(|e| self.ir_err(t, e))?.shape.0.clone();
        let kept = self.b.ty(r).map_err(|e| self.ir_err(t, e))?.shape.0.clone();
        // The reduced axes are those of `x` missing from the result; they come back as 1s.
        let reduced = crate::ops::reduce::RawAxes(axes).resolve(xs.len()).map_err(|e| {
            self.ir_err(t, crate::IrError::Type { op: "reduce", operands: vec![], source: e })
        })?;
        let mut k = kept.into_iter();
        let shape: Vec<usize> = (0..xs.len())
            .map(|a| if reduced.contains(&a) { 1 } else { k.next().unwrap_or(1) })
            .collect();
        Ok(Val::Node(self.b.reshape(r, shape).map_err(|e| self.ir_err(t, e))?))
    }

    /// `reduce_window(x, kind="sum"|"max", window=[..], strides=[..], padding=[[lo,hi],..],
    /// base_dilation=[..], window_dilation=[..])`, one entry per axis (strides, padding and
    /// dilations optional): built by [`crate::FunctionBuilder::reduce_window`] and printed as
    /// what it builds.
    fn reduce_window(
        &mut self,
        name: String,
        t: &Token,
        mut operands: Vec<(Val, Token)>,
        mut args: CallArgs,
    ) -> PResult<Val> {
        let attr_err = |s: &Self, message: String| s.attr_error(t, &name, message);
        if operands.len() != 1 || !args.positional.is_empty() {
            return Err(attr_err(
                self,
                "takes one operand: reduce_window(x, kind=..., window=[...])".into(),
            ));
        }
        let (v, vt) = operands.remove(0);
        let x = self.node_of(v, &vt, None)?;
        let r = self.b.ty(x).map_err(|e| self.ir_err(t, e))?.rank();
        let kind = match args.take("kind") {
            Some(AttrValue::Str(k)) if k == "sum" => ReduceKind::Sum,
            Some(AttrValue::Str(k)) if k == "max" => ReduceKind::Max,
            _ => return Err(attr_err(self, "needs `kind=\"sum\"` or `kind=\"max\"`".into())),
        };
        let mut read = || -> Result<crate::ops::patches::Window, String> {
            let window = args.take_usizes("window")?;
            let strides = args.take_usizes_or("strides", || vec![1; r])?;
            let base_dilation = args.take_usizes_or("base_dilation", || vec![1; r])?;
            let window_dilation = args.take_usizes_or("window_dilation", || vec![1; r])?;
            let padding = match args.take("padding") {
                None => vec![(0, 0); r],
                Some(AttrValue::List(items)) => items
                    .iter()
                    .map(|p| match p {
                        AttrValue::List(pair) => match pair[..] {
                            [AttrValue::Int(l), AttrValue::Int(h)] if l >= 0 && h >= 0 => {
                                Some((l as usize, h as usize))
                            }
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or("`padding` must be [[lo,hi],...] of non-negative integers")?,
                Some(_) => return Err("`padding` must be [[lo,hi],...]".into()),
            };
            Ok(crate::ops::patches::Window {
                window,
                strides,
                padding,
                base_dilation,
                window_dilation,
            })
        };
        let w = read().map_err(|m| attr_err(self, m))?;
        if let Some((k, _)) = args.keyword.first() {
            return Err(self.unused_arg(t, name, k.clone()));
        }
        Ok(Val::Node(self.b.reduce_window(x, kind, &w).map_err(|e| self.ir_err(t, e))?))
    }

    pub(super) fn attr_value(&mut self) -> PResult<AttrValue> {
        self.enter()?;
        let t = self.next();
        let v = match &t.tok {
            Tok::Int(s) => AttrValue::Int(
                s.parse::<i64>()
                    .map_err(|_| self.err_at(&t, ParseErrorKind::IntOverflow(s.clone())))?,
            ),
            Tok::Float(s) => AttrValue::Float(s.clone()),
            Tok::Str(s) => AttrValue::Str(s.clone()),
            Tok::Punct("-") => match self.attr_value()? {
                AttrValue::Int(0) => AttrValue::Float("-0".into()),
                AttrValue::Int(i) => AttrValue::Int(-i),
                AttrValue::Float(s) => AttrValue::Float(format!("-{s}")),
                _ => {
                    return Err(self.err_at(
                        &t,
                        ParseErrorKind::Expected {
                            expected: "a number after `-`".into(),
                            found: "something else".into(),
                        },
                    ));
                }
            },
            Tok::Punct("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.attr_value()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                AttrValue::List(items)
            }
            Tok::Ident(s) if s == "true" || s == "false" => AttrValue::Bool(s == "true"),
            Tok::Ident(s) if s == "inf" || s == "nan" => AttrValue::Float(s.clone()),
            Tok::Ident(s) if dtype_of(s).is_some() => {
                if self.peek().tok == Tok::Punct("[") {
                    self.pos -= 1;
                    AttrValue::Type(self.tensor_type()?)
                } else {
                    AttrValue::DType(dtype_of(s).unwrap_or(DType::F64))
                }
            }
            other => {
                return Err(self.err_at(
                    &t,
                    ParseErrorKind::Expected {
                        expected: "an attribute value".into(),
                        found: other.describe(),
                    },
                ));
            }
        };
        self.depth -= 1;
        Ok(v)
    }
}

fn is_const_op(name: &str) -> bool {
    matches!(
        name,
        "const" | "full" | "zeros" | "ones" | "eye" | "iota" | "uniform" | "normal" | "npy"
    )
}
