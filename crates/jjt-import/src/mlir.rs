//! A reader for the MLIR text that JAX prints (`jax.export`'s `mlir_module()`,
//! `jax.jit(f).lower(…).as_text()`): tokens, then modules of `func.func`s whose bodies are
//! lists of operations in the pretty or the generic syntax. It knows the structure of MLIR
//! (values, types, attribute dictionaries, regions, locations), not what any op means; the
//! StableHLO meaning is `stablehlo.rs`'s.
//!
//! Every size comes from the text itself and is bounded by it (no count read from the input
//! is used to allocate), and nesting is limited to [`MAX_DEPTH`], so malformed input gives a
//! [`MlirError`] with its line and column, never a panic or an unbounded recursion.

use std::collections::HashMap;

/// Deepest nesting of brackets, regions and attribute values accepted.
pub const MAX_DEPTH: usize = 64;

/// A position in the text (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line.
    pub line: usize,
    /// Column (in characters).
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Malformed MLIR text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{pos}: {msg}")]
pub struct MlirError {
    /// Where.
    pub pos: Pos,
    /// What was expected or found.
    pub msg: String,
}

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// `%name`, `%name#1` (the `#` part kept in the text).
    Value(String),
    /// `@name` or `@"name"`.
    Symbol(String),
    /// `#name` (an alias or an attribute such as `#stablehlo.gather<…>`, with its `<…>`).
    Hash(String),
    /// `^bb0`.
    Block(String),
    /// A bare identifier (letters, digits, `_`, `.`, `$`, `-` inside).
    Ident(String),
    /// An integer or float literal as written (including `0x…` and a sign).
    Number(String),
    /// A string literal (escapes resolved).
    Str(String),
    /// `tensor<…>`, `dense<…>`, `array<…>`, `dense_resource<…>`: the keyword and the raw text
    /// between the angle brackets.
    Angle(String, String),
    /// Punctuation: `( ) [ ] { } < > , : = -> ? * + x`.
    Punct(&'static str),
}

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its position.
    pub pos: Pos,
}

/// Split `text` into tokens (comments `//…` skipped).
pub fn tokenize(text: &str) -> Result<Vec<Token>, MlirError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let ident_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '-');
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col };
        let start = i;
        let adv = |i: &mut usize, n: usize, line: &mut usize, col: &mut usize| {
            for _ in 0..n {
                if chars[*i] == '\n' {
                    *line += 1;
                    *col = 1;
                } else {
                    *col += 1;
                }
                *i += 1;
            }
        };
        if c.is_whitespace() {
            adv(&mut i, 1, &mut line, &mut col);
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                adv(&mut i, 1, &mut line, &mut col);
            }
            continue;
        }
        let err = |msg: String| MlirError { pos, msg };
        let run = |from: usize| {
            let mut j = from;
            while j < chars.len() && ident_char(chars[j]) {
                j += 1;
            }
            j
        };
        let tok = match c {
            '%' | '@' | '^' | '#' => {
                if c == '@' && chars.get(i + 1) == Some(&'"') {
                    let (s, n) = string_at(&chars, i + 1)
                        .ok_or_else(|| err("unterminated string".into()))?;
                    adv(&mut i, 1 + n, &mut line, &mut col);
                    out.push(Token { tok: Tok::Symbol(s), pos });
                    continue;
                }
                let mut j = run(i + 1);
                if c == '%' && chars.get(j) == Some(&'#') {
                    j = run(j + 1);
                }
                if j == i + 1 {
                    return Err(err(format!("`{c}` without a name")));
                }
                let name: String = chars[i + 1..j].iter().collect();
                if c == '#' && chars.get(j) == Some(&'<') {
                    let close = angle_end(&chars, j).ok_or_else(|| err("unclosed `<`".into()))?;
                    let body: String = chars[j + 1..close].iter().collect();
                    adv(&mut i, close + 1 - start, &mut line, &mut col);
                    out.push(Token { tok: Tok::Angle(format!("#{name}"), body), pos });
                    continue;
                }
                adv(&mut i, j - start, &mut line, &mut col);
                match c {
                    '%' => Tok::Value(name),
                    '@' => Tok::Symbol(name),
                    '^' => Tok::Block(name),
                    _ => Tok::Hash(name),
                }
            }
            '"' => {
                let (s, n) =
                    string_at(&chars, i).ok_or_else(|| err("unterminated string".into()))?;
                adv(&mut i, n, &mut line, &mut col);
                out.push(Token { tok: Tok::Str(s), pos });
                continue;
            }
            '-' if chars.get(i + 1) == Some(&'>') => {
                adv(&mut i, 2, &mut line, &mut col);
                out.push(Token { tok: Tok::Punct("->"), pos });
                continue;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let mut j = i + 1;
                if chars.get(i + 1) == Some(&'x') || chars.get(i + 1) == Some(&'X') {
                    j = i + 2;
                    while j < chars.len() && chars[j].is_ascii_hexdigit() {
                        j += 1;
                    }
                } else {
                    while j < chars.len() {
                        let d = chars[j];
                        let exp_sign = (d == '-' || d == '+') && matches!(chars[j - 1], 'e' | 'E');
                        if d.is_ascii_digit() || d == '.' || d == 'e' || d == 'E' || exp_sign {
                            j += 1;
                        } else {
                            break;
                        }
                    }
                }
                let s: String = chars[i..j].iter().collect();
                adv(&mut i, j - start, &mut line, &mut col);
                Tok::Number(s)
            }
            c if c.is_alphabetic() || c == '_' => {
                let j = run(i);
                let word: String = chars[i..j].iter().collect();
                if chars.get(j) == Some(&'<')
                    && matches!(word.as_str(), "tensor" | "dense" | "array" | "dense_resource")
                {
                    let close = angle_end(&chars, j).ok_or_else(|| err("unclosed `<`".into()))?;
                    let body: String = chars[j + 1..close].iter().collect();
                    adv(&mut i, close + 1 - start, &mut line, &mut col);
                    out.push(Token { tok: Tok::Angle(word, body), pos });
                    continue;
                }
                adv(&mut i, j - start, &mut line, &mut col);
                Tok::Ident(word)
            }
            _ => {
                let p = match c {
                    '(' => "(",
                    ')' => ")",
                    '[' => "[",
                    ']' => "]",
                    '{' => "{",
                    '}' => "}",
                    '<' => "<",
                    '>' => ">",
                    ',' => ",",
                    ':' => ":",
                    '=' => "=",
                    '?' => "?",
                    '*' => "*",
                    '+' => "+",
                    '-' => "-",
                    _ => return Err(err(format!("unexpected character `{c}`"))),
                };
                adv(&mut i, 1, &mut line, &mut col);
                Tok::Punct(p)
            }
        };
        out.push(Token { tok, pos });
    }
    Ok(out)
}

/// The string literal starting at `chars[i] == '"'`: its value and its length in characters.
fn string_at(chars: &[char], i: usize) -> Option<(String, usize)> {
    let mut s = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '"' => return Some((s, j + 1 - i)),
            '\\' => {
                let a = *chars.get(j + 1)?;
                match a {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    '"' | '\\' => s.push(a),
                    _ if a.is_ascii_hexdigit() => {
                        let b = *chars.get(j + 2)?;
                        let v = u8::from_str_radix(&format!("{a}{b}"), 16).ok()?;
                        s.push(v as char);
                        j += 1;
                    }
                    _ => s.push(a),
                }
                j += 2;
            }
            c => {
                s.push(c);
                j += 1;
            }
        }
    }
    None
}

/// The index of the `>` closing the `<` at `chars[i]` (nested `<…>` and strings skipped; `->`
/// is not a closing bracket).
fn angle_end(chars: &[char], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '<' => depth += 1,
            '>' if j > 0 && chars[j - 1] == '-' => {}
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            '"' => j += string_at(chars, j)?.1 - 1,
            _ => {}
        }
        j += 1;
    }
    None
}

/// An attribute value, kept close to the text: what the op readers need to interpret.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// One token (a number, identifier, string, `tensor<…>`, `dense<…>`, …), and, after a
    /// `:`, its type token (`1 : i64`).
    Tok(Tok, Option<Tok>),
    /// `[a, b, …]`.
    List(Vec<Attr>),
    /// `{k = v, …}` (a key without value is `unit`).
    Dict(Vec<(String, Attr)>),
}

impl Attr {
    /// A dictionary entry.
    pub fn get<'a>(&'a self, key: &str) -> Option<&'a Attr> {
        match self {
            Attr::Dict(d) => d.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A type: a ranked tensor (`None` dimensions are dynamic) of an element type such as `f32`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorTy {
    /// Dimensions (`None`: `?`).
    pub dims: Vec<Option<usize>>,
    /// The element type as written (`f32`, `i1`, …).
    pub elem: String,
}

/// Parse the inside of `tensor<…>`: `4x8xf32`, `f64`, `?x3xi32`.
pub fn parse_tensor(body: &str) -> Option<TensorTy> {
    let body = body.split(',').next()?.trim();
    let parts: Vec<&str> = body.split('x').collect();
    let (elem, dims) = parts.split_last()?;
    let dims = dims
        .iter()
        .map(|d| if *d == "?" { Some(None) } else { d.trim().parse::<usize>().ok().map(Some) })
        .collect::<Option<Vec<_>>>()?;
    Some(TensorTy { dims, elem: elem.trim().to_string() })
}

/// One operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Where it starts.
    pub pos: Pos,
    /// Result names (`%0`, `%3:2` gives `3#0`, `3#1`).
    pub results: Vec<String>,
    /// The op's name (`stablehlo.add`, `func.call`, `func.return`).
    pub name: String,
    /// The tokens between the name and the type signature (pretty syntax), or the operand
    /// list (generic syntax), as written; the op readers interpret them.
    pub body: Vec<Token>,
    /// Generic syntax: the `<{…}>` properties and `{…}` attributes, merged.
    pub attrs: Vec<(String, Attr)>,
    /// Generic syntax: operands.
    pub operands: Vec<String>,
    /// Regions (each a block's arguments and operations).
    pub regions: Vec<Region>,
    /// Whether the op was written in the generic syntax.
    pub generic: bool,
    /// The signature's operand types (empty when the signature is a single type).
    pub in_types: Vec<TensorTy>,
    /// The signature's result types.
    pub out_types: Vec<TensorTy>,
    /// The `loc(…)` of the op, resolved to a name where it has one.
    pub loc: Option<String>,
}

/// A region: one block's arguments and operations.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Region {
    /// Block arguments (names, types, the names of their locations).
    pub args: Vec<(String, TensorTy, Option<String>)>,
    /// The operations.
    pub ops: Vec<Operation>,
}

/// A function argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Argument {
    /// `%arg0`'s name without `%`.
    pub value: String,
    /// Its type.
    pub ty: TensorTy,
    /// Its attributes (`{jax.arg_info = "…"}`).
    pub attrs: Vec<(String, Attr)>,
    /// Its location's name (`loc("params['w']")`), aliases resolved.
    pub loc: Option<String>,
    /// Where it is.
    pub pos: Pos,
}

/// A `func.func`.
#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    /// Its symbol.
    pub name: String,
    /// Whether it is `public`.
    pub public: bool,
    /// Arguments.
    pub args: Vec<Argument>,
    /// Result types and attributes (`{jax.result_info = "…"}`).
    pub results: Vec<(TensorTy, Vec<(String, Attr)>)>,
    /// The body.
    pub body: Region,
    /// Where it starts.
    pub pos: Pos,
}

/// A parsed module: its functions.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Module {
    /// Functions in the order of the text.
    pub funcs: Vec<Func>,
}

/// Parse MLIR text.
pub fn parse(text: &str) -> Result<Module, MlirError> {
    let toks = tokenize(text)?;
    let mut p = Parser { toks, i: 0, aliases: HashMap::new(), depth: 0 };
    p.collect_aliases();
    let mut m = Module::default();
    while !p.done() {
        match p.peek_tok() {
            Some(Tok::Hash(_)) => p.skip_alias_def()?,
            Some(Tok::Ident(w)) if w == "module" => {
                p.i += 1;
                // `module @name attributes {…} {` … `}`.
                while !matches!(p.peek_tok(), Some(Tok::Punct("{")) | None) {
                    if matches!(p.peek_tok(), Some(Tok::Ident(w)) if w == "attributes") {
                        p.i += 1;
                        p.attr_dict()?;
                    } else {
                        p.i += 1;
                    }
                }
                p.expect("{")?;
                while !matches!(p.peek_tok(), Some(Tok::Punct("}")) | None) {
                    m.funcs.push(p.func()?);
                }
                p.expect("}")?;
                p.skip_loc()?;
            }
            Some(Tok::Ident(w)) if w == "func.func" => m.funcs.push(p.func()?),
            Some(Tok::Str(w)) if w == "builtin.module" || w == "func.func" => {
                let op = p.operation()?;
                generic_funcs(&op, &mut m.funcs)?;
            }
            _ => return Err(p.err("expected `module` or `func.func`")),
        }
    }
    Ok(m)
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// `#locN` → the name its `loc(…)` gives (if any).
    aliases: HashMap<String, Option<String>>,
    depth: usize,
}

impl Parser {
    fn done(&self) -> bool {
        self.i >= self.toks.len()
    }

    fn peek_tok(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn pos(&self) -> Pos {
        self.toks.get(self.i).or(self.toks.last()).map_or(Pos::default(), |t| t.pos)
    }

    fn err(&self, msg: &str) -> MlirError {
        let found = match self.peek_tok() {
            None => "the end of the text".to_string(),
            Some(t) => format!("`{}`", show(t)),
        };
        MlirError { pos: self.pos(), msg: format!("{msg}, found {found}") }
    }

    fn next(&mut self) -> Result<Token, MlirError> {
        let t = self.toks.get(self.i).cloned().ok_or_else(|| self.err("unexpected end"))?;
        self.i += 1;
        Ok(t)
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek_tok(), Some(Tok::Punct(q)) if *q == p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), MlirError> {
        if self.eat(p) { Ok(()) } else { Err(self.err(&format!("expected `{p}`"))) }
    }

    fn enter(&mut self) -> Result<(), MlirError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(&format!("nesting deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    /// Record every `#name = loc(…)` definition (they follow the module in JAX's output).
    fn collect_aliases(&mut self) {
        let mut raw: HashMap<String, Vec<Token>> = HashMap::new();
        let mut k = 0;
        while k + 3 < self.toks.len() {
            if let (Tok::Hash(name), Tok::Punct("="), Tok::Ident(l)) =
                (&self.toks[k].tok, &self.toks[k + 1].tok, &self.toks[k + 2].tok)
                && l == "loc"
            {
                let end = balanced_end(&self.toks, k + 3);
                raw.insert(name.clone(), self.toks[k + 3..end].to_vec());
                k = end;
                continue;
            }
            k += 1;
        }
        // Resolve: the first string of the location, or the alias it refers to (bounded).
        for name in raw.keys() {
            let mut cur = name.clone();
            let mut found = None;
            for _ in 0..MAX_DEPTH {
                let Some(ts) = raw.get(&cur) else { break };
                match ts.iter().map(|t| &t.tok).find(|t| matches!(t, Tok::Str(_) | Tok::Hash(_))) {
                    Some(Tok::Str(s)) => {
                        found = Some(s.clone());
                        break;
                    }
                    Some(Tok::Hash(h)) => cur = h.clone(),
                    _ => break,
                }
            }
            self.aliases.insert(name.clone(), found);
        }
    }

    fn skip_alias_def(&mut self) -> Result<(), MlirError> {
        self.i += 1;
        self.expect("=")?;
        self.any_value()?;
        Ok(())
    }

    /// `loc(…)` if present: its name (a string inside, or an alias's).
    fn skip_loc(&mut self) -> Result<Option<String>, MlirError> {
        if !matches!(self.peek_tok(), Some(Tok::Ident(w)) if w == "loc") {
            return Ok(None);
        }
        self.i += 1;
        let start = self.i;
        self.balanced("(", ")")?;
        let inner = &self.toks[start..self.i];
        Ok(match inner.iter().map(|t| &t.tok).find(|t| matches!(t, Tok::Str(_) | Tok::Hash(_))) {
            Some(Tok::Str(s)) => Some(s.clone()),
            Some(Tok::Hash(h)) => self.aliases.get(h).cloned().flatten(),
            _ => None,
        })
    }

    /// Skip a balanced group starting at `open`.
    fn balanced(&mut self, open: &str, close: &str) -> Result<(), MlirError> {
        self.expect(open)?;
        let mut depth = 1usize;
        while depth > 0 {
            let t = self.next()?;
            match t.tok {
                Tok::Punct(p) if p == open => depth += 1,
                Tok::Punct(p) if p == close => depth -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    fn func(&mut self) -> Result<Func, MlirError> {
        let pos = self.pos();
        match self.next()?.tok {
            Tok::Ident(w) if w == "func.func" => {}
            _ => {
                self.i -= 1;
                return Err(self.err("expected `func.func`"));
            }
        }
        let mut public = true;
        while let Some(Tok::Ident(w)) = self.peek_tok() {
            public = w != "private";
            self.i += 1;
        }
        let name = match self.next()?.tok {
            Tok::Symbol(s) => s,
            _ => {
                self.i -= 1;
                return Err(self.err("expected the function's `@name`"));
            }
        };
        self.expect("(")?;
        let mut args = Vec::new();
        while !self.eat(")") {
            let pos = self.pos();
            let value = match self.next()?.tok {
                Tok::Value(v) => v,
                _ => {
                    self.i -= 1;
                    return Err(self.err("expected an argument `%name`"));
                }
            };
            self.expect(":")?;
            let ty = self.tensor_type()?;
            let attrs = if matches!(self.peek_tok(), Some(Tok::Punct("{"))) {
                self.attr_dict()?
            } else {
                vec![]
            };
            let loc = self.skip_loc()?;
            args.push(Argument { value, ty, attrs, loc, pos });
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        let mut results = Vec::new();
        if self.eat("->") {
            let paren = self.eat("(");
            loop {
                if paren && self.eat(")") {
                    break;
                }
                let ty = self.tensor_type()?;
                // Result attributes only inside parentheses (else `{` opens the body).
                let attrs = if paren && matches!(self.peek_tok(), Some(Tok::Punct("{"))) {
                    self.attr_dict()?
                } else {
                    vec![]
                };
                results.push((ty, attrs));
                if !paren {
                    break;
                }
                if !self.eat(",") {
                    self.expect(")")?;
                    break;
                }
            }
        }
        if matches!(self.peek_tok(), Some(Tok::Ident(w)) if w == "attributes") {
            self.i += 1;
            self.attr_dict()?;
        }
        let body = self.region()?;
        self.skip_loc()?;
        Ok(Func { name, public, args, results, body, pos })
    }

    fn tensor_type(&mut self) -> Result<TensorTy, MlirError> {
        let t = self.next()?;
        match &t.tok {
            Tok::Angle(w, body) if w == "tensor" => parse_tensor(body).ok_or_else(|| MlirError {
                pos: t.pos,
                msg: format!("malformed type `tensor<{body}>`"),
            }),
            _ => {
                self.i -= 1;
                Err(self.err("expected a `tensor<…>` type"))
            }
        }
    }

    /// `(%a: tensor<…> loc(…), …)`: names, types and location names.
    fn block_args(
        &mut self,
        what: &str,
    ) -> Result<Vec<(String, TensorTy, Option<String>)>, MlirError> {
        let mut args = Vec::new();
        self.expect("(")?;
        while !self.eat(")") {
            let v = match self.next()?.tok {
                Tok::Value(v) => v,
                _ => {
                    self.i -= 1;
                    return Err(self.err(&format!("expected {what}")));
                }
            };
            self.expect(":")?;
            let ty = self.tensor_type()?;
            let loc = self.skip_loc()?;
            args.push((v, ty, loc));
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        Ok(args)
    }

    /// `{ ops }` or `{ ^bb0(args): ops }`.
    fn region(&mut self) -> Result<Region, MlirError> {
        self.enter()?;
        self.expect("{")?;
        let mut r = Region::default();
        if let Some(Tok::Block(_)) = self.peek_tok() {
            self.i += 1;
            if matches!(self.peek_tok(), Some(Tok::Punct("("))) {
                r.args = self.block_args("a block argument")?;
            }
            self.expect(":")?;
        }
        while !self.eat("}") {
            if self.done() {
                return Err(self.err("unclosed region"));
            }
            r.ops.push(self.operation()?);
        }
        self.depth -= 1;
        Ok(r)
    }

    /// One operation, up to and including its `loc(…)`.
    fn operation(&mut self) -> Result<Operation, MlirError> {
        let pos = self.pos();
        let mut results = Vec::new();
        while let Some(Tok::Value(v)) = self.peek_tok() {
            let v = v.clone();
            self.i += 1;
            if self.eat(":") {
                let n = match self.next()?.tok {
                    Tok::Number(n) => n.parse::<usize>().ok().filter(|&n| n <= 64),
                    _ => None,
                }
                .ok_or_else(|| self.err("expected a result count (at most 64)"))?;
                results.extend((0..n).map(|k| format!("{v}#{k}")));
            } else {
                results.push(v);
            }
            if !self.eat(",") {
                break;
            }
        }
        if !results.is_empty() {
            self.expect("=")?;
        }
        let mut op = Operation {
            pos,
            results,
            name: String::new(),
            body: vec![],
            attrs: vec![],
            operands: vec![],
            regions: vec![],
            generic: false,
            in_types: vec![],
            out_types: vec![],
            loc: None,
        };
        match self.next()?.tok {
            Tok::Str(name) => {
                op.generic = true;
                op.name = name;
                self.expect("(")?;
                while !self.eat(")") {
                    match self.next()?.tok {
                        Tok::Value(v) => op.operands.push(v),
                        _ => {
                            self.i -= 1;
                            return Err(self.err("expected an operand"));
                        }
                    }
                    if !self.eat(",") {
                        self.expect(")")?;
                        break;
                    }
                }
                if self.eat("<") {
                    op.attrs.extend(self.attr_dict()?);
                    self.expect(">")?;
                }
                if self.eat("(") {
                    loop {
                        op.regions.push(self.region()?);
                        if !self.eat(",") {
                            break;
                        }
                    }
                    self.expect(")")?;
                }
                if matches!(self.peek_tok(), Some(Tok::Punct("{"))) {
                    op.attrs.extend(self.attr_dict()?);
                }
                self.expect(":")?;
                self.signature(&mut op)?;
            }
            Tok::Ident(name) => {
                op.name = name;
                // The body: every token up to the `:` of the signature at bracket depth 0.
                let mut depth = 0usize;
                loop {
                    let Some(t) = self.toks.get(self.i) else {
                        return Err(self.err("unexpected end inside an operation"));
                    };
                    match t.tok {
                        Tok::Punct("(" | "[" | "{" | "<") => depth += 1,
                        Tok::Punct(")" | "]" | "}" | ">") => {
                            if depth == 0 {
                                return Err(self.err("unbalanced bracket in an operation"));
                            }
                            depth -= 1
                        }
                        Tok::Punct(":") if depth == 0 => break,
                        _ => {}
                    }
                    if depth > MAX_DEPTH {
                        return Err(self.err(&format!("nesting deeper than {MAX_DEPTH}")));
                    }
                    // A result-less op without a signature (`return` of nothing) ends at a
                    // new statement.
                    if depth == 0 && matches!(t.tok, Tok::Ident(ref w) if w == "loc") {
                        break;
                    }
                    op.body.push(t.clone());
                    self.i += 1;
                }
                if self.eat(":") {
                    self.signature(&mut op)?;
                }
                // The pretty reduce's explicit body: `reducer(%a: …, %b: …) { … }`.
                while let Some(Tok::Ident(w)) = self.peek_tok() {
                    if w != "reducer" {
                        break;
                    }
                    self.i += 1;
                    let args = self.block_args("a reducer argument")?;
                    let mut r = self.region()?;
                    r.args = args;
                    op.regions.push(r);
                }
            }
            _ => {
                self.i -= 1;
                return Err(self.err("expected an operation"));
            }
        }
        op.loc = self.skip_loc()?;
        Ok(op)
    }

    /// `T`, `T, U`, or `(T, …) -> R` / `(T, …) -> (R, …)`.
    fn signature(&mut self, op: &mut Operation) -> Result<(), MlirError> {
        if self.eat("(") {
            while !self.eat(")") {
                op.in_types.push(self.tensor_type()?);
                if !self.eat(",") {
                    self.expect(")")?;
                    break;
                }
            }
            self.expect("->")?;
            if self.eat("(") {
                while !self.eat(")") {
                    op.out_types.push(self.tensor_type()?);
                    if !self.eat(",") {
                        self.expect(")")?;
                        break;
                    }
                }
            } else {
                op.out_types.push(self.tensor_type()?);
            }
        } else {
            let mut tys = vec![self.tensor_type()?];
            while matches!(self.toks.get(self.i).map(|t| &t.tok), Some(Tok::Punct(",")))
                && matches!(self.toks.get(self.i + 1).map(|t| &t.tok), Some(Tok::Angle(w, _)) if w == "tensor")
            {
                self.i += 1;
                tys.push(self.tensor_type()?);
            }
            // `select`'s `: pred, result` and a single type both end with the result's.
            op.out_types.push(tys.pop().unwrap_or(TensorTy { dims: vec![], elem: String::new() }));
            op.in_types = tys;
        }
        Ok(())
    }

    /// `{k = v, …}`.
    fn attr_dict(&mut self) -> Result<Vec<(String, Attr)>, MlirError> {
        self.enter()?;
        self.expect("{")?;
        let mut out = Vec::new();
        while !self.eat("}") {
            let key = match self.next()?.tok {
                Tok::Ident(k) | Tok::Str(k) => k,
                _ => {
                    self.i -= 1;
                    return Err(self.err("expected an attribute name"));
                }
            };
            let v = if self.eat("=") {
                self.any_value()?
            } else {
                Attr::Tok(Tok::Ident("unit".into()), None)
            };
            out.push((key, v));
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        self.depth -= 1;
        Ok(out)
    }

    /// An attribute value.
    fn any_value(&mut self) -> Result<Attr, MlirError> {
        self.enter()?;
        let v = match self.peek_tok() {
            Some(Tok::Punct("[")) => {
                self.i += 1;
                let mut items = Vec::new();
                while !self.eat("]") {
                    items.push(self.any_value()?);
                    if !self.eat(",") {
                        self.expect("]")?;
                        break;
                    }
                }
                Attr::List(items)
            }
            Some(Tok::Punct("{")) => Attr::Dict(self.attr_dict()?),
            Some(Tok::Punct("(")) => {
                // A function type `(T, …) -> R` or `-> (R, …)`: its types are not needed (the
                // block's arguments and the ops' signatures carry them).
                self.balanced("(", ")")?;
                self.expect("->")?;
                if matches!(self.peek_tok(), Some(Tok::Punct("("))) {
                    self.balanced("(", ")")?;
                } else {
                    self.next()?;
                }
                Attr::Tok(Tok::Ident("function_type".into()), None)
            }
            Some(Tok::Ident(w)) if w == "loc" => {
                self.i += 1;
                self.balanced("(", ")")?;
                Attr::Tok(Tok::Ident("loc".into()), None)
            }
            Some(Tok::Punct(_)) | None => return Err(self.err("expected an attribute value")),
            Some(_) => {
                let t = self.next()?.tok;
                // `unit`-like words followed by a bracketed group (`#loc(…)`) are skipped.
                if matches!(self.peek_tok(), Some(Tok::Punct("(")))
                    && matches!(t, Tok::Hash(_) | Tok::Ident(_))
                {
                    self.balanced("(", ")")?;
                }
                let ty = if matches!(self.peek_tok(), Some(Tok::Punct(":")))
                    && matches!(
                        self.toks.get(self.i + 1).map(|t| &t.tok),
                        Some(Tok::Ident(_) | Tok::Angle(..))
                    ) {
                    self.i += 1;
                    Some(self.next()?.tok)
                } else {
                    None
                };
                Attr::Tok(t, ty)
            }
        };
        self.depth -= 1;
        Ok(v)
    }
}

/// The `func.func`s of a module written in the generic syntax (`"builtin.module"() ({…})`,
/// `"func.func"() <{sym_name = "main", …}> ({^bb0(%arg0: …): …})`), or of one such function.
fn generic_funcs(op: &Operation, out: &mut Vec<Func>) -> Result<(), MlirError> {
    let bad = |msg: &str| MlirError { pos: op.pos, msg: msg.to_string() };
    if op.name == "builtin.module" {
        for r in &op.regions {
            for inner in &r.ops {
                if inner.name == "func.func" {
                    generic_funcs(inner, out)?;
                }
            }
        }
        return Ok(());
    }
    let get = |k: &str| op.attrs.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let name = match get("sym_name") {
        Some(Attr::Tok(Tok::Str(s), _)) => s.clone(),
        _ => return Err(bad("a generic func.func without sym_name")),
    };
    let public =
        !matches!(get("sym_visibility"), Some(Attr::Tok(Tok::Str(s), _)) if s == "private");
    let dicts = |k: &str| -> Vec<Vec<(String, Attr)>> {
        match get(k) {
            Some(Attr::List(items)) => items
                .iter()
                .map(|i| match i {
                    Attr::Dict(d) => d.clone(),
                    _ => vec![],
                })
                .collect(),
            _ => vec![],
        }
    };
    let (arg_attrs, res_attrs) = (dicts("arg_attrs"), dicts("res_attrs"));
    let body =
        op.regions.first().cloned().ok_or_else(|| bad("a generic func.func without a body"))?;
    let args = body
        .args
        .iter()
        .enumerate()
        .map(|(k, (value, ty, loc))| Argument {
            value: value.clone(),
            ty: ty.clone(),
            attrs: arg_attrs.get(k).cloned().unwrap_or_default(),
            loc: loc.clone(),
            pos: op.pos,
        })
        .collect();
    // Result types are checked at the `return`'s operands; only their attributes are kept.
    let results = res_attrs
        .into_iter()
        .map(|a| (TensorTy { dims: vec![], elem: String::new() }, a))
        .collect();
    out.push(Func { name, public, args, results, body, pos: op.pos });
    Ok(())
}

/// The index just past the balanced `( … )` group starting at `toks[k]` (or the end).
fn balanced_end(toks: &[Token], k: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in toks.iter().enumerate().skip(k) {
        match t.tok {
            Tok::Punct("(") => depth += 1,
            Tok::Punct(")") => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// A token as it would be written.
pub fn show(t: &Tok) -> String {
    match t {
        Tok::Value(v) => format!("%{v}"),
        Tok::Symbol(s) => format!("@{s}"),
        Tok::Hash(h) => format!("#{h}"),
        Tok::Block(b) => format!("^{b}"),
        Tok::Ident(s) | Tok::Number(s) => s.clone(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Angle(w, b) => format!("{w}<{b}>"),
        Tok::Punct(p) => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_typical_line() {
        let t = tokenize("%0 = stablehlo.add %a, %b : tensor<2x?xf32> loc(#loc3)").unwrap();
        let toks: Vec<Tok> = t.into_iter().map(|t| t.tok).collect();
        assert_eq!(toks[0], Tok::Value("0".into()));
        assert_eq!(toks[2], Tok::Ident("stablehlo.add".into()));
        assert_eq!(toks[7], Tok::Angle("tensor".into(), "2x?xf32".into()));
        assert_eq!(toks[10], Tok::Hash("loc3".into()));
    }

    #[test]
    fn tensor_types() {
        let t = parse_tensor("2x?x3xf64").unwrap();
        assert_eq!(t.dims, vec![Some(2), None, Some(3)]);
        assert_eq!(t.elem, "f64");
        assert_eq!(parse_tensor("i1").unwrap().dims, Vec::<Option<usize>>::new());
        assert!(parse_tensor("2xbadx").is_none());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "func.func @f() {{ %0 = \"a.b\"() {{x = {}1{}}} : () -> tensor<f32> }}",
            "[".repeat(200),
            "]".repeat(200)
        );
        let e = parse(&deep).unwrap_err();
        assert!(e.msg.contains("nesting deeper"), "{e}");
    }
}
