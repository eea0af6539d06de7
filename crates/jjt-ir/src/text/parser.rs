//! Recursive-descent parser from text to a [`Function`], building through the type-checking
//! builder so every node is checked as it is read. Errors carry line:col and print the line
//! with a caret under the offending text.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::lexer::{Tok, Token, lex};
use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::graph::{Function, NodeId};
use crate::ops::{AttrValue, Binary, CallArgs, Compare, Op, Unary};
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

/// What went wrong while parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A character that starts no token.
    UnexpectedChar(char),
    /// A string literal without its closing quote.
    UnterminatedString,
    /// A malformed number.
    BadNumber(String),
    /// Something other than what the grammar allows here.
    Expected {
        /// What the grammar wanted.
        expected: String,
        /// What was there.
        found: String,
    },
    /// A name used before it was defined.
    UnknownName(String),
    /// A call to a name that is no op.
    UnknownOp(String),
    /// A name assigned twice (each name is defined once).
    Redefined(String),
    /// A name that cannot be defined (a keyword or dtype).
    Reserved(String),
    /// Two parameters with one name.
    DuplicateParam(String),
    /// An unknown element type.
    UnknownDType(String),
    /// An integer that does not fit.
    IntOverflow(String),
    /// The op's operands do not fit it (shapes, dtypes).
    Type(String),
    /// The op's attributes are missing or wrong.
    Attr {
        /// The op.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// An argument no op parameter takes.
    UnusedArg {
        /// The op.
        op: String,
        /// The argument.
        arg: String,
    },
    /// A literal whose dtype cannot be inferred from a neighbour.
    UntypedLiteral,
    /// The returned value's type differs from the signature.
    ReturnType {
        /// Declared in the signature.
        declared: TensorType,
        /// Type of the returned value.
        actual: TensorType,
    },
    /// `return` lists a different number of values than the signature.
    ReturnCount {
        /// Outputs in the signature.
        declared: usize,
        /// Values returned.
        actual: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Text longer than [`Limits::max_bytes`].
    TooLong {
        /// Its length in bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More than [`Limits::max_nodes`] nodes.
    TooManyNodes {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::UnexpectedChar(c) => write!(f, "unexpected character {c:?}"),
            ParseErrorKind::UnterminatedString => {
                write!(f, "string literal is not closed (missing `\"`)")
            }
            ParseErrorKind::BadNumber(s) => write!(f, "malformed number `{s}`"),
            ParseErrorKind::Expected { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ParseErrorKind::UnknownName(s) => {
                write!(f, "`{s}` is not defined (define it with `{s} = ...` first)")
            }
            ParseErrorKind::UnknownOp(s) => {
                write!(f, "`{s}` is not an op (see docs/format.md for the op list)")
            }
            ParseErrorKind::Redefined(s) => {
                write!(f, "`{s}` is already defined; each name is assigned once")
            }
            ParseErrorKind::Reserved(s) => {
                write!(f, "`{s}` is reserved and cannot be used as a name")
            }
            ParseErrorKind::DuplicateParam(s) => write!(f, "parameter `{s}` is declared twice"),
            ParseErrorKind::UnknownDType(s) => {
                write!(f, "unknown element type `{s}` (expected f32, f64 or bool)")
            }
            ParseErrorKind::IntOverflow(s) => write!(f, "integer `{s}` is too large"),
            ParseErrorKind::Type(s) => write!(f, "{s}"),
            ParseErrorKind::Attr { op, message } => write!(f, "{op}: {message}"),
            ParseErrorKind::UnusedArg { op, arg } => {
                write!(f, "{op} does not take the argument `{arg}`")
            }
            ParseErrorKind::UntypedLiteral => {
                write!(
                    f,
                    "cannot infer this literal's dtype; combine it with a tensor or write full(f32[], v)"
                )
            }
            ParseErrorKind::ReturnType { declared, actual } => {
                write!(f, "returned value has type {actual}, but the signature declares {declared}")
            }
            ParseErrorKind::ReturnCount { declared, actual } => {
                write!(f, "returns {actual} values, but the signature declares {declared}")
            }
            ParseErrorKind::TooDeep => {
                write!(f, "expression nested deeper than {MAX_DEPTH} levels")
            }
            ParseErrorKind::TooLong { bytes, limit } => write!(
                f,
                "model text is {bytes} bytes, more than the limit of {limit}; \
                 keep weights in npy(\"...\") files"
            ),
            ParseErrorKind::TooManyNodes { limit } => write!(
                f,
                "the function has more than {limit} nodes; split it or keep weights in npy files"
            ),
        }
    }
}

/// A parse error with its position and the source line, displayed with a caret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// The source line.
    pub line_text: String,
    /// The file, when parsed from one.
    pub file: Option<PathBuf>,
}

impl ParseError {
    pub(crate) fn new(src: &str, line: usize, col: usize, kind: ParseErrorKind) -> ParseError {
        let line_text = src.lines().nth(line.saturating_sub(1)).unwrap_or("").to_string();
        ParseError { kind, line, col, line_text, file: None }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.as_ref().map_or("<input>".to_string(), |p| p.display().to_string());
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        let caret_pad: String = self
            .line_text
            .chars()
            .take(self.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(
            f,
            "{}\n{pad}--> {file}:{}:{}\n{pad} |\n{num} | {}\n{pad} | {caret_pad}^",
            self.kind, self.line, self.col, self.line_text
        )
    }
}

impl std::error::Error for ParseError {}

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
    };
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

/// Errors reading a model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// The file could not be read.
    #[error("cannot read model `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text does not parse.
    #[error("{0}")]
    Parse(Box<ParseError>),
    /// The file is longer than [`Limits::max_bytes`].
    #[error(
        "model `{}` is {bytes} bytes, more than the limit of {limit}; keep weights in npy(\"...\") files",
        path.display()
    )]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: usize,
    },
}

/// A value during parsing: a node, or a number literal whose dtype comes from its neighbours
/// (NumPy's weak scalars).
#[derive(Clone, Debug)]
enum Val {
    Node(NodeId),
    Lit(String),
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    b: FunctionBuilder,
    env: HashMap<String, Val>,
    depth: usize,
    base: Option<&'a Path>,
    max_nodes: usize,
}

const RESERVED: [&str; 9] = ["func", "return", "f32", "f64", "bool", "true", "false", "inf", "nan"];

type PResult<T> = Result<T, ParseError>;

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_at(&self, t: &Token, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.src, t.line, t.col, kind)
    }

    fn expected(&self, what: &str) -> ParseError {
        let t = self.peek();
        self.err_at(t, ParseErrorKind::Expected { expected: what.into(), found: t.tok.describe() })
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.peek().tok == Tok::Punct(static_punct(p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> PResult<Token> {
        if self.peek().tok == Tok::Punct(static_punct(p)) {
            Ok(self.next())
        } else {
            Err(self.expected(&format!("`{p}`")))
        }
    }

    fn keyword(&mut self, kw: &str) -> PResult<Token> {
        match &self.peek().tok {
            Tok::Ident(s) if s == kw => Ok(self.next()),
            _ => Err(self.expected(&format!("`{kw}`"))),
        }
    }

    fn ident(&mut self, what: &str) -> PResult<(String, Token)> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Ident(s) => {
                self.pos += 1;
                Ok((s.clone(), t))
            }
            _ => Err(self.expected(what)),
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek().clone();
            return Err(self.err_at(&t, ParseErrorKind::TooDeep));
        }
        Ok(())
    }

    fn ir_err(&self, t: &Token, e: IrError) -> ParseError {
        self.err_at(t, ParseErrorKind::Type(e.to_string()))
    }

    // func NAME ( params ) -> type { stmts return expr }
    fn function(&mut self) -> PResult<Function> {
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
        loop {
            let t = self.peek().clone();
            match &t.tok {
                Tok::Ident(s) if s == "return" => break,
                Tok::Ident(_) => self.statement()?,
                _ => return Err(self.expected("a statement `name = ...` or `return`")),
            }
        }
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

    fn check_definable(&self, name: &str, t: &Token) -> PResult<()> {
        if RESERVED.contains(&name) {
            return Err(self.err_at(t, ParseErrorKind::Reserved(name.into())));
        }
        Ok(())
    }

    fn statement(&mut self) -> PResult<()> {
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
        if let Val::Node(id) = v {
            self.b.name_node(id, &name);
        }
        self.env.insert(name, v);
        Ok(())
    }

    fn tensor_type(&mut self) -> PResult<TensorType> {
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

    // expr := term (('+'|'-') term)*
    // expr := sum (('<'|'<='|'>'|'>='|'==') sum)?   (comparisons do not chain)
    fn expr(&mut self) -> PResult<Val> {
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
    fn sum(&mut self) -> PResult<Val> {
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

    fn compare(&mut self, c: Compare, lhs: Val, rhs: Val, t: &Token) -> PResult<Val> {
        let id = match (&lhs, &rhs) {
            (Val::Node(a), Val::Node(b)) => self.b.compare(c, *a, *b),
            (Val::Node(a), Val::Lit(_)) => {
                let ty = self.b.ty(*a).map_err(|e| self.ir_err(t, e))?.clone();
                let k = self.node_of(rhs, t, Some(&ty))?;
                self.b.compare(c, *a, k)
            }
            (Val::Lit(_), Val::Node(b)) => {
                let ty = self.b.ty(*b).map_err(|e| self.ir_err(t, e))?.clone();
                let k = self.node_of(lhs, t, Some(&ty))?;
                self.b.compare(c, k, *b)
            }
            (Val::Lit(_), Val::Lit(_)) => {
                return Err(self.err_at(t, ParseErrorKind::UntypedLiteral));
            }
        };
        Ok(Val::Node(id.map_err(|e| self.ir_err(t, e))?))
    }

    // term := unary (('*'|'/'|'@') unary)*
    fn term(&mut self) -> PResult<Val> {
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
    fn unary(&mut self) -> PResult<Val> {
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
        self.atom()
    }

    fn atom(&mut self) -> PResult<Val> {
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
                    self.env
                        .get(name)
                        .cloned()
                        .ok_or_else(|| self.err_at(&t, ParseErrorKind::UnknownName(name.clone())))
                }
            }
            Tok::Punct("(") => {
                self.pos += 1;
                let v = self.expr()?;
                self.expect(")")?;
                Ok(v)
            }
            _ => Err(self.expected("an expression")),
        }
    }

    /// A literal becomes a `full` constant of type `like`.
    fn node_of(&mut self, v: Val, t: &Token, like: Option<&TensorType>) -> PResult<NodeId> {
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

    fn binary(&mut self, op: Binary, lhs: Val, rhs: Val, t: &Token) -> PResult<Val> {
        let id = match (&lhs, &rhs) {
            (Val::Node(a), Val::Node(b)) => self.b.binary(op, *a, *b),
            (Val::Node(a), Val::Lit(_)) => {
                let ty = self.b.ty(*a).map_err(|e| self.ir_err(t, e))?.clone();
                let c = self.node_of(rhs, t, Some(&ty))?;
                self.b.binary(op, *a, c)
            }
            (Val::Lit(_), Val::Node(b)) => {
                let ty = self.b.ty(*b).map_err(|e| self.ir_err(t, e))?.clone();
                let c = self.node_of(lhs, t, Some(&ty))?;
                self.b.binary(op, c, *b)
            }
            (Val::Lit(_), Val::Lit(_)) => {
                return Err(self.err_at(t, ParseErrorKind::UntypedLiteral));
            }
        };
        Ok(Val::Node(id.map_err(|e| self.ir_err(t, e))?))
    }

    fn call(&mut self, name: String, t: &Token) -> PResult<Val> {
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
                self.expect(",")?;
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
        if Op::parse_call(&name, &mut CallArgs::default()).is_none() {
            return Err(self.err_at(t, ParseErrorKind::UnknownOp(name)));
        }
        // Literal operands take the dtype of the first float operand and the broadcast shape
        // of all operands.
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
        let like = like.filter(|l| crate::types::is_float(l.dtype));
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
            None => return Err(self.err_at(t, ParseErrorKind::UnknownOp(name))),
            Some(Err(message)) => {
                return Err(self.err_at(t, ParseErrorKind::Attr { op: name, message }));
            }
            Some(Ok(op)) => op,
        };
        if let Some((k, _)) = args.keyword.first() {
            return Err(self.err_at(t, ParseErrorKind::UnusedArg { op: name, arg: k.clone() }));
        }
        if let Some(v) = args.positional.first() {
            return Err(self.err_at(t, ParseErrorKind::UnusedArg { op: name, arg: v.to_string() }));
        }
        let id = match op {
            Op::Binary(bop) if ids.len() == 2 => self.b.binary(bop, ids[0], ids[1]),
            Op::Compare(c) if ids.len() == 2 => self.b.compare(c, ids[0], ids[1]),
            Op::Select(_) if ids.len() == 3 => self.b.select(ids[0], ids[1], ids[2]),
            op => self.b.add(op, &ids),
        };
        Ok(Val::Node(id.map_err(|e| self.ir_err(t, e))?))
    }

    fn attr_value(&mut self) -> PResult<AttrValue> {
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

fn dtype_of(s: &str) -> Option<DType> {
    match s {
        "f32" => Some(DType::F32),
        "f64" => Some(DType::F64),
        "bool" => Some(DType::Bool),
        _ => None,
    }
}

fn static_punct(p: &str) -> &'static str {
    [
        "->", "==", "<=", ">=", "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", "=", "+", "-",
        "*", "/", "@",
    ]
    .into_iter()
    .find(|q| *q == p)
    .unwrap_or("")
}
