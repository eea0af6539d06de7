//! Recursive-descent parser from text to a [`Function`], building through the type-checking
//! builder so every node is checked as it is read. Errors carry line:col and print the line
//! with a caret under the offending text.

use std::collections::HashMap;
use std::path::Path;

use super::error::{ModelFileError, ParseError, ParseErrorKind};
use super::lexer::{Tok, Token, lex};
use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::graph::{Function, NodeId};
use crate::types::{DType, Shape, TensorType};

/// Deepest nesting of expressions and attribute lists the parser accepts.
pub const MAX_DEPTH: usize = 64;

/// Largest model text the parser accepts, in bytes (weights belong in `npy("...")` files).
pub const MAX_SOURCE_BYTES: usize = 64 << 20;

/// Most nodes a parsed function may have.
pub const MAX_NODES: usize = 1 << 22;

/// Resource limits of the parser. [`Limits::default`] is [`MAX_SOURCE_BYTES`] and
/// [`MAX_NODES`]; the nesting depth is always [`MAX_DEPTH`] (it bounds the parser's stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted text, in bytes.
    pub max_bytes: usize,
    /// Most nodes in the parsed function.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bytes: MAX_SOURCE_BYTES, max_nodes: MAX_NODES }
    }
}

/// Parse a function from text. `npy("...")` paths resolve against the current folder.
pub fn parse(src: &str) -> Result<Function, ParseError> {
    parse_with_base(src, None)
}

/// Parse a function from text, resolving `npy("...")` paths against `base`.
pub fn parse_with_base(src: &str, base: Option<&Path>) -> Result<Function, ParseError> {
    parse_with_limits(src, base, Limits::default())
}

/// Parse a function from text under explicit resource limits.
pub fn parse_with_limits(
    src: &str,
    base: Option<&Path>,
    limits: Limits,
) -> Result<Function, ParseError> {
    if src.len() > limits.max_bytes {
        let kind = ParseErrorKind::TooLong { bytes: src.len(), limit: limits.max_bytes };
        return Err(ParseError::new(src, 1, 1, kind));
    }
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        b: FunctionBuilder::new("f"),
        env: HashMap::new(),
        depth: 0,
        base,
        max_nodes: limits.max_nodes,
        helpers: HashMap::new(),
        inlining: Vec::new(),
    };
    p.helpers()?;
    p.function()
}

/// Read and parse a model file; errors name the file.
pub fn parse_file(path: &Path) -> Result<Function, ModelFileError> {
    parse_file_with_limits(path, Limits::default())
}

/// Read and parse a model file under explicit resource limits.
pub fn parse_file_with_limits(path: &Path, limits: Limits) -> Result<Function, ModelFileError> {
    let io = |source| ModelFileError::Io { path: path.to_path_buf(), source };
    // Check the size before reading, so an oversized file is never loaded.
    let bytes = std::fs::metadata(path).map_err(io)?.len();
    if bytes > limits.max_bytes as u64 {
        let limit = limits.max_bytes;
        return Err(ModelFileError::TooLong { path: path.to_path_buf(), bytes, limit });
    }
    let src = std::fs::read_to_string(path).map_err(io)?;
    parse_with_limits(&src, path.parent(), limits).map_err(|mut e| {
        e.file = Some(path.to_path_buf());
        ModelFileError::Parse(Box::new(e))
    })
}

/// A value during parsing: a node, or a number literal whose dtype comes from its neighbours
/// (NumPy's weak scalars).
#[derive(Clone, Debug)]
pub(super) enum Val {
    Node(NodeId),
    Lit(String),
}

pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) toks: Vec<Token>,
    pub(super) pos: usize,
    pub(super) b: FunctionBuilder,
    pub(super) env: HashMap<String, Val>,
    pub(super) depth: usize,
    pub(super) base: Option<&'a Path>,
    pub(super) max_nodes: usize,
    /// Helper functions by name: parameter names and the token where the body starts.
    pub(super) helpers: HashMap<String, Helper>,
    /// The helpers being inlined, innermost last (a helper may not call itself).
    pub(super) inlining: Vec<String>,
}

/// A helper function of a model file: `func NAME(a, b) { … return expr }`, untyped, inlined
/// at each call.
#[derive(Clone, Debug)]
pub(super) struct Helper {
    pub(super) params: Vec<String>,
    /// The first token of the body (after `{`).
    pub(super) body: usize,
}

pub(super) const RESERVED: [&str; 10] =
    ["func", "return", "f32", "f64", "i32", "bool", "true", "false", "inf", "nan"];

pub(super) type PResult<T> = Result<T, ParseError>;

impl<'a> Parser<'a> {
    pub(super) fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    pub(super) fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }

    pub(super) fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    pub(super) fn err_at(&self, t: &Token, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.src, t.line, t.col, kind)
    }

    pub(super) fn expected(&self, what: &str) -> ParseError {
        let t = self.peek();
        self.err_at(t, ParseErrorKind::Expected { expected: what.into(), found: t.tok.describe() })
    }

    pub(super) fn eat(&mut self, p: &str) -> bool {
        if self.peek().tok == Tok::Punct(static_punct(p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, p: &str) -> PResult<Token> {
        if self.peek().tok == Tok::Punct(static_punct(p)) {
            Ok(self.next())
        } else {
            Err(self.expected(&format!("`{p}`")))
        }
    }

    pub(super) fn keyword(&mut self, kw: &str) -> PResult<Token> {
        match &self.peek().tok {
            Tok::Ident(s) if s == kw => Ok(self.next()),
            _ => Err(self.expected(&format!("`{kw}`"))),
        }
    }

    pub(super) fn ident(&mut self, what: &str) -> PResult<(String, Token)> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Ident(s) => {
                self.pos += 1;
                Ok((s.clone(), t))
            }
            _ => Err(self.expected(what)),
        }
    }

    pub(super) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek().clone();
            return Err(self.err_at(&t, ParseErrorKind::TooDeep));
        }
        Ok(())
    }

    pub(super) fn ir_err(&self, t: &Token, e: IrError) -> ParseError {
        self.err_at(t, ParseErrorKind::Type(e.to_string()))
    }

    /// The helper functions before the model's function: `func NAME(a, b) { … }` with
    /// untyped parameters and no result type. Each is recorded (its parameters and where its
    /// body starts) and skipped; calls inline it ([`Parser::inline`]).
    fn helpers(&mut self) -> PResult<()> {
        loop {
            let start = self.pos;
            let typed = self.peek().tok == Tok::Ident("func".into())
                && *self.peek_at(2) == Tok::Punct("(")
                && match (self.peek_at(3), self.peek_at(4)) {
                    (Tok::Punct(")"), Tok::Punct("->")) => true,
                    (Tok::Punct(")"), _) => false,
                    (_, next) => *next == Tok::Punct(":"),
                };
            if typed || self.peek().tok != Tok::Ident("func".into()) {
                return Ok(());
            }
            self.keyword("func")?;
            let (name, nt) = self.ident("a function name")?;
            self.check_definable(&name, &nt)?;
            if self.helpers.contains_key(&name) {
                return Err(self.err_at(&nt, ParseErrorKind::Redefined(name)));
            }
            let taken = crate::Op::all_names().into_iter().chain(super::expr::SUGAR);
            if taken.into_iter().any(|n| n == name) {
                return Err(self.err_at(&nt, ParseErrorKind::Reserved(name)));
            }
            self.expect("(")?;
            let mut params: Vec<String> = Vec::new();
            if !self.eat(")") {
                loop {
                    let (pname, pt) = self.ident("a parameter name")?;
                    self.check_definable(&pname, &pt)?;
                    if params.contains(&pname) {
                        return Err(self.err_at(&pt, ParseErrorKind::DuplicateParam(pname)));
                    }
                    params.push(pname);
                    if self.eat(")") {
                        break;
                    }
                    self.expect(",")?;
                }
            }
            self.expect("{")?;
            let body = self.pos;
            // Skip to the matching `}` (braces appear only around function bodies).
            let mut depth = 1usize;
            while depth > 0 {
                let t = self.next();
                match t.tok {
                    Tok::Punct("{") => depth += 1,
                    Tok::Punct("}") => depth -= 1,
                    Tok::Eof => {
                        self.pos = start;
                        return Err(self.expected("`}` closing the helper function"));
                    }
                    _ => {}
                }
            }
            self.helpers.insert(name, Helper { params, body });
        }
    }

    /// The value of the helper `name` applied to `args`: its body parsed again with its
    /// parameters bound to the arguments, in a scope of its own, then the parser back where
    /// it was.
    pub(super) fn inline(&mut self, name: &str, t: &Token, args: Vec<Val>) -> PResult<Val> {
        let Some(h) = self.helpers.get(name).cloned() else {
            return Err(self.err_at(t, ParseErrorKind::UnknownOp(name.into())));
        };
        if self.inlining.iter().any(|n| n == name) {
            let message = format!(
                "helper `{name}` calls itself (through {}); helpers are inlined, so they cannot recurse",
                self.inlining.join(" -> ")
            );
            return Err(self.err_at(t, ParseErrorKind::Attr { op: name.into(), message }));
        }
        if args.len() != h.params.len() {
            let message = format!("takes {} operands, got {}", h.params.len(), args.len());
            return Err(self.err_at(t, ParseErrorKind::Attr { op: name.into(), message }));
        }
        // Each call copies the helper's nodes: the node limit bounds what calls build.
        if self.b.node_count() > self.max_nodes {
            return Err(self.err_at(t, ParseErrorKind::TooManyNodes { limit: self.max_nodes }));
        }
        let scope: HashMap<String, Val> = h.params.iter().cloned().zip(args).collect();
        let saved_env = std::mem::replace(&mut self.env, scope);
        let saved_pos = std::mem::replace(&mut self.pos, h.body);
        self.inlining.push(name.to_string());
        let result = self.body_value();
        self.inlining.pop();
        self.pos = saved_pos;
        self.env = saved_env;
        // An error inside the body points there; say which call it came from.
        result.map_err(|e| {
            if e.hint.is_some() {
                return e;
            }
            let hint =
                format!("in the call of helper `{name}` at line {}, column {}", t.line, t.col);
            e.with_hint(Some(hint))
        })
    }

    /// Statements up to (not including) `return`.
    fn statements(&mut self) -> PResult<()> {
        loop {
            let t = self.peek().clone();
            match &t.tok {
                Tok::Ident(s) if s == "return" => return Ok(()),
                Tok::Ident(_) => self.statement()?,
                _ => return Err(self.expected("a statement `name = ...` or `return`")),
            }
        }
    }

    /// A helper's statements and its `return expr }`.
    fn body_value(&mut self) -> PResult<Val> {
        self.statements()?;
        self.next();
        let v = self.expr()?;
        self.expect("}")?;
        Ok(v)
    }

    // func NAME ( params ) -> type { stmts return expr }
    pub(super) fn function(&mut self) -> PResult<Function> {
        self.keyword("func")?;
        let (name, nt) = self.ident("a function name")?;
        self.check_definable(&name, &nt)?;
        self.b = FunctionBuilder::new(name);
        self.expect("(")?;
        if !self.eat(")") {
            loop {
                let (pname, pt) = self.ident("a parameter name")?;
                self.check_definable(&pname, &pt)?;
                if self.env.contains_key(&pname) {
                    return Err(self.err_at(&pt, ParseErrorKind::DuplicateParam(pname)));
                }
                self.expect(":")?;
                let ty = self.tensor_type()?;
                let id = self.b.input(&pname, ty).map_err(|e| self.ir_err(&pt, e))?;
                // `= npz("weights.npz")`: where the input's default value is.
                if self.eat("=") {
                    self.keyword("npz")?;
                    self.expect("(")?;
                    let Tok::Str(path) = self.peek().tok.clone() else {
                        return Err(self.expected("the archive's file name in quotes"));
                    };
                    self.next();
                    self.expect(")")?;
                    self.b.set_default(&pname, &path);
                }
                self.env.insert(pname, Val::Node(id));
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.expect("->")?;
        let mut ret_tys = Vec::new();
        if self.eat("(") {
            loop {
                ret_tys.push(self.tensor_type()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        } else {
            ret_tys.push(self.tensor_type()?);
        }
        self.expect("{")?;
        self.statements()?;
        let rt = self.next();
        let mut outs = Vec::new();
        loop {
            let et = self.peek().clone();
            let v = self.expr()?;
            outs.push((self.node_of(v, &et, None)?, et));
            if !self.eat(",") {
                break;
            }
        }
        self.expect("}")?;
        if self.peek().tok != Tok::Eof {
            return Err(self.expected("end of input after the function"));
        }
        if outs.len() != ret_tys.len() {
            let kind = ParseErrorKind::ReturnCount { declared: ret_tys.len(), actual: outs.len() };
            return Err(self.err_at(&rt, kind));
        }
        for ((out, et), declared) in outs.iter().zip(ret_tys) {
            let actual = self.b.ty(*out).map_err(|e| self.ir_err(et, e))?.clone();
            if actual != declared {
                let at = if outs.len() == 1 { &rt } else { et };
                return Err(self.err_at(at, ParseErrorKind::ReturnType { declared, actual }));
            }
        }
        let b = std::mem::replace(&mut self.b, FunctionBuilder::new(""));
        b.finish_many(outs.into_iter().map(|(o, _)| o).collect()).map_err(|e| self.ir_err(&rt, e))
    }

    pub(super) fn check_definable(&self, name: &str, t: &Token) -> PResult<()> {
        if RESERVED.contains(&name) {
            return Err(self.err_at(t, ParseErrorKind::Reserved(name.into())));
        }
        Ok(())
    }

    pub(super) fn statement(&mut self) -> PResult<()> {
        let (name, t) = self.ident("a name")?;
        self.check_definable(&name, &t)?;
        if self.env.contains_key(&name) {
            return Err(self.err_at(&t, ParseErrorKind::Redefined(name)));
        }
        self.expect("=")?;
        let v = self.expr()?;
        if self.b.node_count() > self.max_nodes {
            return Err(self.err_at(&t, ParseErrorKind::TooManyNodes { limit: self.max_nodes }));
        }
        // Names inside a helper are local to one call: the flat graph does not keep them.
        if let Val::Node(id) = v
            && self.inlining.is_empty()
        {
            self.b.name_node(id, &name);
        }
        self.env.insert(name, v);
        Ok(())
    }

    pub(super) fn tensor_type(&mut self) -> PResult<TensorType> {
        let (name, t) = self.ident("a tensor type such as f32[2,3]")?;
        let dtype =
            dtype_of(&name).ok_or_else(|| self.err_at(&t, ParseErrorKind::UnknownDType(name)))?;
        self.expect("[")?;
        let mut dims = Vec::new();
        if !self.eat("]") {
            loop {
                let t = self.next();
                match &t.tok {
                    Tok::Int(s) => {
                        let d = s
                            .parse::<usize>()
                            .map_err(|_| self.err_at(&t, ParseErrorKind::IntOverflow(s.clone())))?;
                        dims.push(d);
                    }
                    other => {
                        return Err(self.err_at(
                            &t,
                            ParseErrorKind::Expected {
                                expected: "an axis size".into(),
                                found: other.describe(),
                            },
                        ));
                    }
                }
                if self.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
        }
        Ok(TensorType::new(dtype, Shape(dims)))
    }
}

pub(super) fn dtype_of(s: &str) -> Option<DType> {
    match s {
        "f32" => Some(DType::F32),
        "f64" => Some(DType::F64),
        "i32" => Some(DType::I32),
        "bool" => Some(DType::Bool),
        _ => None,
    }
}

fn static_punct(p: &str) -> &'static str {
    super::lexer::PUNCT.into_iter().find(|q| *q == p).unwrap_or("")
}
