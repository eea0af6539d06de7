//! Parse errors: what went wrong, where (line:col, with the line and a caret), and errors
//! reading a model file.

use std::fmt;
use std::path::PathBuf;

use super::parser::MAX_DEPTH;
use crate::types::TensorType;

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
    /// A `(` (at this error's position) whose call or group ends without its `)`.
    Unclosed {
        /// The token found where `,` or `)` was expected.
        found: String,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Text longer than [`Limits::max_bytes`](super::Limits::max_bytes).
    TooLong {
        /// Its length in bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More than [`Limits::max_nodes`](super::Limits::max_nodes) nodes.
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
            ParseErrorKind::Unclosed { found } => {
                write!(f, "this `(` is never closed: expected `,` or `)` before {found}")
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
    /// What probably fixes it ("did you mean `softplus`?"), printed as a `help:` line.
    pub hint: Option<String>,
}

impl ParseError {
    pub(crate) fn new(src: &str, line: usize, col: usize, kind: ParseErrorKind) -> ParseError {
        let line_text = src.lines().nth(line.saturating_sub(1)).unwrap_or("").to_string();
        ParseError { kind, line, col, line_text, file: None, hint: None }
    }

    /// The same error with a `help:` line.
    pub(crate) fn with_hint(mut self, hint: Option<String>) -> ParseError {
        self.hint = hint;
        self
    }
}

/// The Levenshtein distance between `a` and `b` (in characters).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// "did you mean `x`?" for the candidate closest to `word`, when one is close: at most one
/// edit for words of two to five characters, else a third of the word's length.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    // A one-letter name is as close to every other one-letter name: no suggestion.
    if word.chars().count() < 2 {
        return None;
    }
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, c)| format!("did you mean `{c}`?"))
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
        )?;
        match &self.hint {
            Some(h) => write!(f, "\n{pad} = help: {h}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ParseError {}

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
    /// The file is longer than [`Limits::max_bytes`](super::Limits::max_bytes).
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
