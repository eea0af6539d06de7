//! A small tokenizer and parser for the subset of Python literals found in
//! `.npy` headers: dicts, tuples, lists, strings, integers, `True`, `False`
//! and `None`.
//!
//! The parser works on raw bytes. Outside string literals only ASCII is
//! accepted; the bytes inside a string literal are decoded as UTF-8 (format
//! 3.0) or latin-1 (formats 1.0 and 2.0). Every node remembers its byte span
//! so that error messages can quote the source text. Nesting depth is bounded
//! by [`MAX_DEPTH`] so that a malicious header cannot overflow the stack.

use crate::NpyError;

/// Maximum nesting depth of containers (dict, tuple, list) in a header.
pub(crate) const MAX_DEPTH: usize = 32;

/// How string literal bytes are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Formats 1.0 and 2.0.
    Latin1,
    /// Format 3.0.
    Utf8,
}

/// A parsed literal with its byte span in the header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// The kinds of literal the parser understands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Str(String),
    /// An integer; `magnitude` is `None` if it does not fit in `usize`.
    Int {
        negative: bool,
        magnitude: Option<usize>,
    },
    /// A number that is not an integer literal (e.g. `1.5`).
    OtherNumber,
    Bool(bool),
    None,
    Tuple(Vec<Node>),
    List(Vec<Node>),
    Dict(Vec<(Node, Node)>),
}

impl Kind {
    /// A short description with an article, for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int { .. } => "an integer",
            Kind::OtherNumber => "a non-integer number",
            Kind::Bool(_) => "a bool",
            Kind::None => "None",
            Kind::Tuple(_) => "a tuple",
            Kind::List(_) => "a list",
            Kind::Dict(_) => "a dict",
        }
    }
}

/// Whether integer literals may carry the trailing `L` numpy wrote under Python 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Longs {
    /// `2L` is 2 (formats 1.0 and 2.0).
    Accepted,
    /// `2L` is a syntax error (format 3.0).
    Rejected,
}

/// Parses `src` as exactly one literal surrounded by optional whitespace.
pub(crate) fn parse(src: &[u8], encoding: Encoding, longs: Longs) -> Result<Node, NpyError> {
    let mut p = Parser { src, pos: 0, encoding, longs };
    p.skip_ws();
    let node = p.value(0)?;
    p.skip_ws();
    if p.pos < src.len() {
        return Err(p.error_here("unexpected text after the end of the literal"));
    }
    Ok(node)
}

/// Decodes a span of header bytes for display in error messages.
pub(crate) fn text(src: &[u8], start: usize, end: usize, encoding: Encoding) -> String {
    let bytes = src.get(start..end).unwrap_or_default();
    decode(bytes, encoding)
}

fn decode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Latin1 => bytes.iter().copied().map(char::from).collect(),
        Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    encoding: Encoding,
    longs: Longs,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> NpyError {
        NpyError::HeaderSyntax { offset, message: message.into() }
    }

    fn error_here(&self, what: &str) -> NpyError {
        let found = match self.peek() {
            None => "the end of the header".to_owned(),
            Some(b) => describe_byte(b),
        };
        self.error_at(self.pos, format!("{what}, found {found}"))
    }

    fn value(&mut self, depth: usize) -> Result<Node, NpyError> {
        let start = self.pos;
        match self.peek() {
            None => Err(self.error_here("expected a value")),
            Some(b'{' | b'(' | b'[') if depth >= MAX_DEPTH => Err(self.error_at(
                start,
                format!(
                    "containers nested deeper than {MAX_DEPTH} levels, expected a shallow literal"
                ),
            )),
            Some(b'{') => self.dict(depth),
            Some(b'(') => self.paren(depth),
            Some(b'[') => {
                self.pos += 1;
                let items = self.sequence(depth, b']')?;
                Ok(Node { kind: Kind::List(items), start, end: self.pos })
            }
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'0'..=b'9' | b'-' | b'+') => self.number(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'_') => self.name(),
            Some(_) => Err(self.error_here("expected a value")),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Node, NpyError> {
        let start = self.pos;
        self.pos += 1; // '{'
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = self.value(depth + 1)?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error_here("expected ':' after a dict key"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error_here("expected ',' or '}' in a dict")),
            }
        }
        Ok(Node { kind: Kind::Dict(entries), start, end: self.pos })
    }

    /// `(` starts either a tuple or a parenthesized expression: `()`, `(x,)`
    /// and `(x, y)` are tuples, `(x)` is just `x`.
    fn paren(&mut self, depth: usize) -> Result<Node, NpyError> {
        let start = self.pos;
        self.pos += 1; // '('
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(Node { kind: Kind::Tuple(Vec::new()), start, end: self.pos });
        }
        let first = self.value(depth + 1)?;
        self.skip_ws();
        match self.peek() {
            Some(b')') => {
                self.pos += 1;
                Ok(Node { kind: first.kind, start, end: self.pos })
            }
            Some(b',') => {
                self.pos += 1;
                let mut items = vec![first];
                items.extend(self.sequence(depth, b')')?);
                Ok(Node { kind: Kind::Tuple(items), start, end: self.pos })
            }
            _ => Err(self.error_here("expected ',' or ')' in a tuple")),
        }
    }

    /// Comma-separated values up to and including `close`; a trailing comma
    /// is allowed. The opening bracket has already been consumed.
    fn sequence(&mut self, depth: usize, close: u8) -> Result<Vec<Node>, NpyError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => {
                    let what = format!("expected ',' or '{}'", char::from(close));
                    return Err(self.error_here(&what));
                }
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<Node, NpyError> {
        let start = self.pos;
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(self.error_at(start, "unterminated string literal"));
                }
                Some(b) if b == quote => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let escaped = match self.src.get(self.pos + 1) {
                        Some(b'\\') => b'\\',
                        Some(b'\'') => b'\'',
                        Some(b'"') => b'"',
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'r') => b'\r',
                        Some(b'0') => b'\0',
                        _ => {
                            return Err(self.error_at(
                                self.pos,
                                "unsupported escape sequence in string, expected one of \\\\ \\' \\\" \\n \\t \\r \\0",
                            ));
                        }
                    };
                    bytes.push(escaped);
                    self.pos += 2;
                }
                Some(b) => {
                    bytes.push(b);
                    self.pos += 1;
                }
            }
        }
        let s = match self.encoding {
            Encoding::Latin1 => decode(&bytes, Encoding::Latin1),
            Encoding::Utf8 => String::from_utf8(bytes).map_err(|e| NpyError::HeaderEncoding {
                offset: start + 1 + e.utf8_error().valid_up_to(),
            })?,
        };
        Ok(Node { kind: Kind::Str(s), start, end: self.pos })
    }

    fn number(&mut self) -> Result<Node, NpyError> {
        let start = self.pos;
        let mut negative = false;
        // Optional unary sign (possibly repeated, as Python allows).
        while let Some(sign @ (b'-' | b'+')) = self.peek() {
            if sign == b'-' {
                negative = !negative;
            }
            self.pos += 1;
            self.skip_ws();
        }
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.error_here("expected a digit after a sign"));
        }
        let digits_start = self.pos;
        while let Some(b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'_' | b'.') = self.peek() {
            self.pos += 1;
        }
        let token = self.src.get(digits_start..self.pos).unwrap_or_default();
        let digits = match token.split_last() {
            Some((b'L' | b'l', rest)) if self.longs == Longs::Accepted => rest,
            _ => token,
        };
        let kind = if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            let magnitude = digits.iter().try_fold(0usize, |acc, &d| {
                acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            });
            Kind::Int { negative, magnitude }
        } else if is_float_literal(token) {
            Kind::OtherNumber
        } else {
            return Err(self.error_at(
                digits_start,
                format!("invalid number '{}'", decode(token, self.encoding)),
            ));
        };
        Ok(Node { kind, start, end: self.pos })
    }

    fn name(&mut self) -> Result<Node, NpyError> {
        let start = self.pos;
        while let Some(b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'_') = self.peek() {
            self.pos += 1;
        }
        let kind = match self.src.get(start..self.pos).unwrap_or_default() {
            b"True" => Kind::Bool(true),
            b"False" => Kind::Bool(false),
            b"None" => Kind::None,
            other => {
                return Err(self.error_at(
                    start,
                    format!(
                        "unexpected name '{}', expected a literal (True, False, None, a number, a string or a container)",
                        decode(other, self.encoding)
                    ),
                ));
            }
        };
        Ok(Node { kind, start, end: self.pos })
    }
}

/// `digits '.' digits?` with an optional exponent is close enough to a
/// Python float literal for error reporting purposes (`1.5`, `2.`, `1.0e5`).
fn is_float_literal(token: &[u8]) -> bool {
    let (mantissa, exponent) = match token.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (token.get(..i).unwrap_or_default(), token.get(i + 1..)),
        None => (token, None),
    };
    let mantissa_ok = mantissa.iter().filter(|&&b| b == b'.').count() <= 1
        && mantissa.iter().all(|&b| b == b'.' || b.is_ascii_digit())
        && mantissa.iter().any(u8::is_ascii_digit);
    let exponent_ok = exponent.is_none_or(|e| !e.is_empty() && e.iter().all(u8::is_ascii_digit));
    mantissa_ok && exponent_ok && (mantissa.contains(&b'.') || exponent.is_some())
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() || b == b' ' {
        format!("'{}'", char::from(b))
    } else {
        format!("byte {b:#04x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Node, NpyError> {
        parse(s.as_bytes(), Encoding::Latin1, Longs::Accepted)
    }

    fn kind(s: &str) -> Kind {
        p(s).unwrap().kind
    }

    fn int(n: usize) -> Kind {
        Kind::Int { negative: false, magnitude: Some(n) }
    }

    fn kinds(k: Kind) -> Vec<Kind> {
        match k {
            Kind::Tuple(v) | Kind::List(v) => v.into_iter().map(|n| n.kind).collect(),
            other => panic!("not a sequence: {other:?}"),
        }
    }

    #[test]
    fn tuples_and_parens() {
        assert_eq!(kind("()"), Kind::Tuple(vec![]));
        assert_eq!(kinds(kind("(5,)")), vec![int(5)]);
        assert_eq!(kinds(kind("( 5 , 6 , )")), vec![int(5), int(6)]);
        assert_eq!(kind("(5)"), int(5));
        assert_eq!(kind("((5))"), int(5));
        assert!(p("(,)").is_err());
        assert!(p("(5,,)").is_err());
        assert!(p("(5 6)").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(kind("-3"), Kind::Int { negative: true, magnitude: Some(3) });
        assert_eq!(kind("- -3"), int(3));
        assert_eq!(kind("+7"), int(7));
        assert_eq!(kind("5L"), int(5));
        assert!(parse(b"5L", Encoding::Latin1, Longs::Rejected).is_err());
        assert_eq!(
            kind("99999999999999999999999999999999"),
            Kind::Int { negative: false, magnitude: None }
        );
        assert_eq!(kind("1.5"), Kind::OtherNumber);
        assert_eq!(kind("1e5"), Kind::OtherNumber);
        assert!(p("1x").is_err());
        assert!(p("-").is_err());
    }

    #[test]
    fn strings_and_names() {
        assert_eq!(kind("'<f8'"), Kind::Str("<f8".into()));
        assert_eq!(kind("\"<f8\""), Kind::Str("<f8".into()));
        assert_eq!(kind(r"'a\'b'"), Kind::Str("a'b".into()));
        assert!(p("'abc").is_err());
        assert!(p(r"'\x41'").is_err());
        assert_eq!(kind("True"), Kind::Bool(true));
        assert_eq!(kind("False"), Kind::Bool(false));
        assert_eq!(kind("None"), Kind::None);
        assert!(p("true").is_err());
        assert!(p("__import__").is_err());
    }

    #[test]
    fn latin1_and_utf8_strings() {
        assert_eq!(
            parse(b"'\xe9'", Encoding::Latin1, Longs::Accepted).unwrap().kind,
            Kind::Str("é".into())
        );
        assert_eq!(
            parse("'é'".as_bytes(), Encoding::Utf8, Longs::Rejected).unwrap().kind,
            Kind::Str("é".into())
        );
        assert!(matches!(
            parse(b"'\xe9'", Encoding::Utf8, Longs::Rejected),
            Err(NpyError::HeaderEncoding { offset: 1 })
        ));
        // Non-ASCII outside strings is a syntax error.
        assert!(matches!(
            parse(b"{\xe9}", Encoding::Latin1, Longs::Rejected),
            Err(NpyError::HeaderSyntax { offset: 1, .. })
        ));
    }

    #[test]
    fn dicts() {
        let Kind::Dict(entries) = kind("{ 'a' : 1 , \"b\": (2, 3),\n}  \n") else {
            panic!("not a dict")
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.kind, Kind::Str("a".into()));
        assert_eq!(kinds(entries[1].1.kind.clone()), vec![int(2), int(3)]);
        assert_eq!(kind("{}"), Kind::Dict(vec![]));
        assert!(p("{'a' 1}").is_err());
        assert!(p("{'a': 1 'b': 2}").is_err());
        assert!(p("{'a': 1} x").is_err());
        assert!(p("").is_err());
        assert!(p("   ").is_err());
    }

    #[test]
    fn error_offsets() {
        let Err(NpyError::HeaderSyntax { offset, .. }) = p("{'a': (1, 2 }") else {
            panic!("expected a syntax error")
        };
        assert_eq!(offset, 12);
    }

    #[test]
    fn deep_nesting_is_rejected_without_overflowing_the_stack() {
        let deep = "(".repeat(100_000);
        assert!(matches!(p(&deep), Err(NpyError::HeaderSyntax { .. })));
        let deep = "[".repeat(100_000);
        assert!(matches!(p(&deep), Err(NpyError::HeaderSyntax { .. })));
        let deep = "{'a':".repeat(100_000);
        assert!(matches!(p(&deep), Err(NpyError::HeaderSyntax { .. })));
        // Exactly at the limit is fine.
        let ok = format!("{}1,{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(p(&ok).is_ok(), "{:?}", p(&ok));
        let too_deep = format!("{}1,{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(p(&too_deep).is_err());
    }
}
