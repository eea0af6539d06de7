//! Tokens of the text format, each with its line and column (1-based, in characters).

use super::error::{ParseError, ParseErrorKind};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Int(String),
    Float(String),
    Str(String),
    Punct(&'static str),
    Eof,
}

impl Tok {
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(s) | Tok::Float(s) => format!("number `{s}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Eof => "end of input".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

pub(crate) const PUNCT: [&str; 22] = [
    "...", "->", "==", "<=", ">=", "**", "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", "=",
    "+", "-", "*", "/", "@",
];

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let err = |line, col, kind| ParseError::new(src, line, col, kind);
    while i < chars.len() {
        let c = chars[i];
        let (tl, tc) = (line, col);
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            // Dotted names (`params.conv.kernel`, `params.0.w`, as imported models name their
            // inputs): a `.` followed by a name character continues the identifier.
            let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
            while i < chars.len()
                && (word(chars[i])
                    || (chars[i] == '.' && chars.get(i + 1).is_some_and(|&n| word(n))))
            {
                i += 1;
            }
            Tok::Ident(chars[start..i].iter().collect())
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let mut float = false;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len() && chars[i] == '.' {
                float = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                float = true;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                let digits = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                if digits == i {
                    let text: String = chars[start..i].iter().collect();
                    return Err(err(tl, tc, ParseErrorKind::BadNumber(text)));
                }
            }
            if i < chars.len() && (chars[i].is_ascii_alphabetic() || chars[i] == '_') {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                return Err(err(tl, tc, ParseErrorKind::BadNumber(text)));
            }
            let text: String = chars[start..i].iter().collect();
            if float { Tok::Float(text) } else { Tok::Int(text) }
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None | Some('\n') => {
                        return Err(err(tl, tc, ParseErrorKind::UnterminatedString));
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if matches!(chars.get(i + 1), Some('"') | Some('\\')) => {
                        s.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if let Some(p) = PUNCT
            .iter()
            .find(|p| p.chars().enumerate().all(|(k, pc)| chars.get(i + k) == Some(&pc)))
        {
            i += p.chars().count();
            Tok::Punct(p)
        } else {
            return Err(err(tl, tc, ParseErrorKind::UnexpectedChar(c)));
        };
        col += i - start;
        toks.push(Token { tok, line: tl, col: tc });
    }
    toks.push(Token { tok: Tok::Eof, line, col });
    Ok(toks)
}
