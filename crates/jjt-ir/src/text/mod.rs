//! jjt's text format: a printer that emits the canonical flat form (one op per line) and a
//! parser for the same language plus nested expressions and infix operators. The grammar is in
//! `docs/format.md`.

mod error;
mod expr;
mod lexer;
mod parser;
mod printer;

pub use error::{ModelFileError, ParseError, ParseErrorKind, did_you_mean};
pub use parser::{
    Limits, MAX_DEPTH, MAX_NODES, MAX_SOURCE_BYTES, parse, parse_file, parse_file_with_limits,
    parse_with_base, parse_with_limits,
};
pub use printer::{layout, print};
