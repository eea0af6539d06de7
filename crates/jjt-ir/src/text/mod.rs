//! jjt's text format: a printer that emits the canonical flat form (one op per line) and a
//! parser for the same language plus nested expressions and infix operators. The grammar is in
//! `docs/format.md`.

mod lexer;
mod parser;
mod printer;

pub use parser::{
    MAX_DEPTH, ModelFileError, ParseError, ParseErrorKind, parse, parse_file, parse_with_base,
};
pub(crate) use printer::layout;
pub use printer::print;
