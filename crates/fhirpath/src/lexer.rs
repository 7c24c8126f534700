//! Tokenizer for FHIRPath source text: identifiers (plain and `` `delimited` ``), string,
//! number and date/time literals, operators, `$`/`%` names and both comment styles.

use crate::Error;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// A backtick-delimited identifier: never a keyword.
    Quoted(String),
    Str(String),
    Int(i64),
    /// Decimal literal text (kept for precision).
    Dec(String),
    /// Text after `@` (a date, dateTime or `T`-prefixed time).
    Temporal(String),
    /// `$this`, `$index`, `$total`.
    Dollar(String),
    /// `%name`, `` %`name` `` or `%'name'`.
    Percent(String),
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

const SYMBOLS: [&str; 22] = [
    "<=", ">=", "!=", "!~", ".", ",", "(", ")", "[", "]", "{", "}", "+", "-", "*", "/", "|", "&",
    "=", "~", "<", ">",
];

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, Error> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let Some(end) = src[i + 2..].find("*/") else {
                return Err(Error::syntax(i, "unterminated comment"));
            };
            i += 2 + end + 2;
            continue;
        }
        let pos = i;
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            Tok::Ident(src[start..i].to_string())
        } else if c == b'`' {
            let (s, n) = quoted(src, i, b'`')?;
            i = n;
            Tok::Quoted(s)
        } else if c == b'\'' {
            let (s, n) = quoted(src, i, b'\'')?;
            i = n;
            Tok::Str(s)
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                Tok::Dec(src[start..i].to_string())
            } else {
                match src[start..i].parse::<i64>() {
                    Ok(v) => Tok::Int(v),
                    Err(_) => Tok::Dec(src[start..i].to_string()),
                }
            }
        } else if c == b'@' {
            i += 1;
            let start = i;
            i = temporal_end(b, i);
            if i == start {
                return Err(Error::syntax(pos, "invalid date/time literal"));
            }
            Tok::Temporal(src[start..i].to_string())
        } else if c == b'$' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            Tok::Dollar(src[start..i].to_string())
        } else if c == b'%' {
            i += 1;
            match b.get(i) {
                Some(b'`') | Some(b'\'') => {
                    let (s, n) = quoted(src, i, b[i])?;
                    i = n;
                    Tok::Percent(s)
                }
                _ => {
                    let start = i;
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                        i += 1;
                    }
                    if i == start {
                        return Err(Error::syntax(pos, "expected a name after %"));
                    }
                    Tok::Percent(src[start..i].to_string())
                }
            }
        } else {
            let Some(sym) = SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) else {
                return Err(Error::syntax(pos, "unexpected character"));
            };
            i += sym.len();
            Tok::Sym(sym)
        };
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(out)
}

fn quoted(src: &str, start: usize, q: u8) -> Result<(String, usize), Error> {
    let b = src.as_bytes();
    let mut i = start + 1;
    let mut s = String::new();
    while i < b.len() {
        let c = b[i];
        if c == q {
            return Ok((s, i + 1));
        }
        if c == b'\\' {
            // The escaped character may be any character, several bytes long.
            let Some(e) = src[i + 1..].chars().next() else {
                break;
            };
            i += 1 + e.len_utf8();
            match e {
                'n' => s.push('\n'),
                'r' => s.push('\r'),
                't' => s.push('\t'),
                'f' => s.push('\u{c}'),
                'u' => {
                    let hex = src
                        .get(i..i + 4)
                        .ok_or_else(|| Error::syntax(i, "bad \\u escape"))?;
                    let v = u32::from_str_radix(hex, 16)
                        .map_err(|_| Error::syntax(i, "bad \\u escape"))?;
                    s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    i += 4;
                }
                other => s.push(other),
            }
            continue;
        }
        // Copy one whole UTF-8 character.
        let ch_len = src[i..].chars().next().map_or(1, char::len_utf8);
        s.push_str(&src[i..i + ch_len]);
        i += ch_len;
    }
    Err(Error::syntax(start, "unterminated literal"))
}

/// End of a date/time literal body starting at `i` (after `@`).
fn temporal_end(b: &[u8], mut i: usize) -> usize {
    let digits = |i: usize, n: usize| (i..i + n).all(|k| b.get(k).is_some_and(u8::is_ascii_digit));
    let time = |mut i: usize| -> usize {
        if !digits(i, 2) {
            return i;
        }
        i += 2;
        if b.get(i) == Some(&b':') && digits(i + 1, 2) {
            i += 3;
            if b.get(i) == Some(&b':') && digits(i + 1, 2) {
                i += 3;
                if b.get(i) == Some(&b'.') && digits(i + 1, 1) {
                    i += 1;
                    while b.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                }
            }
        }
        i
    };
    if b.get(i) == Some(&b'T') {
        return time(i + 1);
    }
    if !digits(i, 4) {
        return i;
    }
    i += 4;
    if b.get(i) == Some(&b'-') && digits(i + 1, 2) {
        i += 3;
        if b.get(i) == Some(&b'-') && digits(i + 1, 2) {
            i += 3;
        }
    }
    if b.get(i) == Some(&b'T') {
        i = time(i + 1);
        if b.get(i) == Some(&b'Z') {
            i += 1;
        } else if matches!(b.get(i), Some(b'+') | Some(b'-'))
            && digits(i + 1, 2)
            && b.get(i + 3) == Some(&b':')
            && digits(i + 4, 2)
        {
            i += 6;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cover_literals_and_operators() {
        let t =
            tokenize("Patient.name.where(given != 'a\\'b') | @2012-04-15T10:00:00+01:00 >= 1.50")
                .expect("tokens");
        let toks: Vec<Tok> = t.into_iter().map(|t| t.tok).collect();
        assert!(toks.contains(&Tok::Str("a'b".into())));
        assert!(toks.contains(&Tok::Temporal("2012-04-15T10:00:00+01:00".into())));
        assert!(toks.contains(&Tok::Dec("1.50".into())));
        assert!(toks.contains(&Tok::Sym(">=")));
        assert!(toks.contains(&Tok::Sym("!=")));
    }

    /// Found by the fuzz harness (`crates/fuzz`, `fhirpath::arbitrary_text`): a
    /// backslash before a character of several bytes cut the string inside it and
    /// panicked. The escaped character stands for itself (FHIRPath §"String").
    #[test]
    fn an_escaped_multibyte_character_stands_for_itself() {
        for (src, want) in [("'a\\¡b'", "a¡b"), ("`\\¡`", "¡"), ("'\\日本'", "日本")] {
            let toks: Vec<Tok> = tokenize(src)
                .expect("tokens")
                .into_iter()
                .map(|t| t.tok)
                .collect();
            let text = match &toks[0] {
                Tok::Str(s) | Tok::Quoted(s) => s.clone(),
                other => panic!("{other:?}"),
            };
            assert_eq!(text, want, "{src}");
        }
        // Cut short after the backslash: an error, not a panic.
        assert!(tokenize("'\\").is_err());
    }
}
