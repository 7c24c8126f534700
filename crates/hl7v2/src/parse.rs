//! The HL7 v2 message tree: segments, fields, repetitions, components and
//! subcomponents, with escape sequences decoded.
//!
//! # Why our own parser
//!
//! The brief asked us to evaluate `hl7-parser` 0.3 (Apache-2.0) first. Reading its
//! source showed three problems for a listener that must never panic on outside input:
//! its escape decoder slices the value by *character* index as if it were a *byte*
//! index (`chars().enumerate()` then `&value[escape_i..i]`), so text with a non-ASCII
//! character before an escape is garbled or panics; it decodes only `\X0A\`/`\X0D\`
//! of the hex escapes and prints `\H\`/`\N\` highlighting as literal letters; and its
//! MSH parser demands exactly four encoding characters, so a v2.7+ truncation
//! character (`^~\&#`) is rejected. It also brings `nom` 7. The format itself is
//! small (split five times, then unescape), so this module does it in ~250 lines.
//!
//! # What parsing does
//!
//! * Bytes: a UTF-8 BOM is dropped; valid UTF-8 is read as UTF-8, anything else as
//!   ISO-8859-1 (one byte, one character), the usual fallback for v2 feeds.
//! * Segments end at CR, LF or CRLF; blank lines are skipped (MLLP framing bytes
//!   `0x0B`/`0x1C` are stripped too, in case a caller hands the frame over whole).
//! * MSH-1 is the field separator and MSH-2 the encoding characters, taken as the
//!   message declares them (any characters, 2 to 5 of them: component, repetition,
//!   escape, subcomponent, truncation).
//! * Escapes (decoded in every leaf value): `\F\ \S\ \T\ \R\ \E\ \P\` give the
//!   separator; `\Xhh..\` gives the bytes (UTF-8 if they form it, else ISO-8859-1);
//!   `\.br\` and `\.sp\` become a newline `\n` (FT line breaks, so text stays
//!   readable in FHIR strings); other formatting commands (`\.in\`, `\.ce\`, ...),
//!   highlighting `\H\ \N\` and character-set switches `\C..\ \M..\` are dropped;
//!   `\Z..\` (local) and an unterminated escape are kept as written.
//! * Field numbering follows HL7: `segment.field(3)` is PID-3; for MSH, field 1 is
//!   the field separator and field 2 the encoding characters.

use thiserror::Error;

/// Why bytes could not be read as an HL7 v2 message. No message content is quoted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("the message is empty")]
    Empty,
    /// The first segment is not MSH.
    #[error("the message does not start with an MSH segment")]
    NoMsh,
    /// MSH-1/MSH-2 are missing, repeated or not distinct.
    #[error("the MSH segment does not declare usable encoding characters")]
    BadEncodingCharacters,
    /// A segment name is not three upper-case letters or digits.
    #[error("segment {index} has no valid three-character name")]
    BadSegmentName {
        /// 1-based position of the segment in the message.
        index: usize,
    },
}

/// The delimiters a message declares in MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// MSH-1, usually `|`.
    pub field: char,
    /// Usually `^`.
    pub component: char,
    /// Usually `~`.
    pub repetition: char,
    /// Usually `\`.
    pub escape: char,
    /// Usually `&`.
    pub subcomponent: char,
    /// v2.7+ truncation character, usually `#`, when MSH-2 declares one.
    pub truncation: Option<char>,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
            truncation: None,
        }
    }
}

impl Encoding {
    /// MSH-2 as written: component, repetition, escape, subcomponent (and truncation).
    pub fn msh2(&self) -> String {
        let mut s: String = [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ]
        .iter()
        .collect();
        if let Some(t) = self.truncation {
            s.push(t);
        }
        s
    }

    /// Escape text so it can be written as one leaf value with these delimiters.
    /// Line breaks become `\X0D\`/`\X0A\` so they cannot end a segment.
    pub fn escape(&self, text: &str) -> String {
        let e = self.escape;
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            let code = if c == self.field {
                Some("F")
            } else if c == self.component {
                Some("S")
            } else if c == self.subcomponent {
                Some("T")
            } else if c == self.repetition {
                Some("R")
            } else if c == e {
                Some("E")
            } else if Some(c) == self.truncation {
                Some("P")
            } else if c == '\r' {
                Some("X0D")
            } else if c == '\n' {
                Some("X0A")
            } else {
                None
            };
            match code {
                Some(code) => {
                    out.push(e);
                    out.push_str(code);
                    out.push(e);
                }
                None => out.push(c),
            }
        }
        out
    }

    /// Decode the escape sequences of one leaf value (see the module doc).
    pub fn unescape(&self, raw: &str) -> String {
        let e = self.escape;
        if !raw.contains(e) {
            return raw.to_string();
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(start) = rest.find(e) {
            out.push_str(&rest[..start]);
            let after = &rest[start + e.len_utf8()..];
            let Some(end) = after.find(e) else {
                // Unterminated: keep the rest as written.
                out.push_str(&rest[start..]);
                return out;
            };
            let seq = &after[..end];
            self.decode_sequence(seq, &mut out);
            rest = &after[end + e.len_utf8()..];
        }
        out.push_str(rest);
        out
    }

    fn decode_sequence(&self, seq: &str, out: &mut String) {
        match seq {
            "F" => out.push(self.field),
            "S" => out.push(self.component),
            "T" => out.push(self.subcomponent),
            "R" => out.push(self.repetition),
            "E" => out.push(self.escape),
            "P" => out.push(self.truncation.unwrap_or('#')),
            "H" | "N" => {}
            ".br" | ".sp" => out.push('\n'),
            _ if seq.starts_with('.') => {}
            _ if seq.starts_with('C') || seq.starts_with('M') => {}
            _ if seq.starts_with('X') => match hex_bytes(&seq[1..]) {
                Some(bytes) => out.push_str(&bytes_to_text(&bytes)),
                None => {
                    out.push(self.escape);
                    out.push_str(seq);
                    out.push(self.escape);
                }
            },
            _ => {
                out.push(self.escape);
                out.push_str(seq);
                out.push(self.escape);
            }
        }
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// UTF-8 when the bytes are UTF-8, else ISO-8859-1.
fn bytes_to_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// One subcomponent-split component; leaves are decoded text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Component {
    subs: Vec<String>,
}

impl Component {
    /// Subcomponent `n` (1-based), or `""`.
    pub fn sub(&self, n: usize) -> &str {
        n.checked_sub(1)
            .and_then(|i| self.subs.get(i))
            .map_or("", String::as_str)
    }
    /// All subcomponents.
    pub fn subs(&self) -> &[String] {
        &self.subs
    }
    /// True when every subcomponent is empty.
    pub fn is_empty(&self) -> bool {
        self.subs.iter().all(String::is_empty)
    }
}

/// One repetition of a field: its components.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repetition {
    comps: Vec<Component>,
}

impl Repetition {
    /// Component `n` (1-based).
    pub fn component(&self, n: usize) -> Option<&Component> {
        n.checked_sub(1).and_then(|i| self.comps.get(i))
    }
    /// The first subcomponent of component `n`, or `""`.
    pub fn comp(&self, n: usize) -> &str {
        self.component(n).map_or("", |c| c.sub(1))
    }
    /// Subcomponent `s` of component `n`, or `""`.
    pub fn sub(&self, n: usize, s: usize) -> &str {
        self.component(n).map_or("", |c| c.sub(s))
    }
    /// All components.
    pub fn components(&self) -> &[Component] {
        &self.comps
    }
    /// True when every component is empty.
    pub fn is_empty(&self) -> bool {
        self.comps.iter().all(Component::is_empty)
    }
}

/// One field: its raw (still escaped) text and its repetitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Field {
    raw: String,
    reps: Vec<Repetition>,
}

impl Field {
    /// The field exactly as it was written, escapes included.
    pub fn raw(&self) -> &str {
        &self.raw
    }
    /// The repetitions (one for a field without `~`).
    pub fn repetitions(&self) -> &[Repetition] {
        &self.reps
    }
    /// The first repetition.
    pub fn first(&self) -> Option<&Repetition> {
        self.reps.first()
    }
    /// True when the field holds nothing.
    pub fn is_empty(&self) -> bool {
        self.reps.iter().all(Repetition::is_empty)
    }
}

/// One segment: its name and fields, numbered as in HL7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    name: String,
    /// `fields[0]` is unused (the name) so that `fields[n]` is field n.
    fields: Vec<Field>,
}

impl Segment {
    /// The three-character segment id, e.g. `PID`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Field `n` (1-based, HL7 numbering).
    pub fn field(&self, n: usize) -> Option<&Field> {
        if n == 0 {
            return None;
        }
        self.fields.get(n)
    }
    /// Number of the last field present.
    pub fn field_count(&self) -> usize {
        self.fields.len().saturating_sub(1)
    }
    /// The repetitions of field `n` (empty when absent).
    pub fn reps(&self, n: usize) -> &[Repetition] {
        self.field(n).map_or(&[], Field::repetitions)
    }
    /// The first repetition of field `n`, when present.
    pub fn rep(&self, n: usize) -> Option<&Repetition> {
        self.field(n).and_then(Field::first)
    }
    /// Field `n`, first repetition, first component, first subcomponent; or `""`.
    pub fn text(&self, n: usize) -> &str {
        self.comp(n, 1)
    }
    /// Component `c` of the first repetition of field `n`; or `""`.
    pub fn comp(&self, n: usize, c: usize) -> &str {
        self.rep(n).map_or("", |r| r.comp(c))
    }
    /// Subcomponent `s` of component `c` of the first repetition of field `n`; or `""`.
    pub fn sub(&self, n: usize, c: usize, s: usize) -> &str {
        self.rep(n).map_or("", |r| r.sub(c, s))
    }
    /// The raw text of field `n`, or `""`.
    pub fn raw(&self, n: usize) -> &str {
        self.field(n).map_or("", Field::raw)
    }
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    encoding: Encoding,
    segments: Vec<Segment>,
}

impl Message {
    /// Parse bytes as received (BOM, CR/LF/CRLF and ISO-8859-1 tolerated).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        Message::parse_str(&bytes_to_text(bytes))
    }

    /// Parse text (a leading BOM character is dropped).
    pub fn parse_str(text: &str) -> Result<Message, ParseError> {
        let text = text.trim_start_matches(['\u{feff}', '\u{0b}']);
        let mut lines = text
            .split(['\r', '\n'])
            .map(|l| l.trim_matches(['\u{0b}', '\u{1c}']))
            .filter(|l| !l.trim().is_empty());
        let first = lines.next().ok_or(ParseError::Empty)?;
        let (encoding, msh) = parse_msh(first)?;
        let mut segments = vec![msh];
        for (i, line) in lines.enumerate() {
            segments.push(parse_segment(line, &encoding, i + 2)?);
        }
        Ok(Message { encoding, segments })
    }

    /// The delimiters from MSH-1/MSH-2.
    pub fn encoding(&self) -> &Encoding {
        &self.encoding
    }
    /// All segments in order, MSH first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
    /// The first segment with this name.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }
    /// Every segment with this name, in order.
    pub fn segments_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.name == name)
    }
    /// The MSH segment (always present in a parsed message).
    pub fn msh(&self) -> &Segment {
        &self.segments[0]
    }
}

fn parse_msh(line: &str) -> Result<(Encoding, Segment), ParseError> {
    let rest = line.strip_prefix("MSH").ok_or(ParseError::NoMsh)?;
    let mut chars = rest.chars();
    let field = chars.next().ok_or(ParseError::BadEncodingCharacters)?;
    let msh2: String = chars.take_while(|&c| c != field).collect();
    let enc: Vec<char> = msh2.chars().collect();
    if enc.len() < 4 || enc.len() > 5 {
        return Err(ParseError::BadEncodingCharacters);
    }
    let encoding = Encoding {
        field,
        component: enc[0],
        repetition: enc[1],
        escape: enc[2],
        subcomponent: enc[3],
        truncation: enc.get(4).copied(),
    };
    let mut all: Vec<char> = enc.clone();
    all.push(field);
    let mut dedup = all.clone();
    dedup.sort_unstable();
    dedup.dedup();
    if dedup.len() != all.len() || all.iter().any(|c| c.is_alphanumeric() || c.is_whitespace()) {
        return Err(ParseError::BadEncodingCharacters);
    }
    let after = &rest[field.len_utf8() + msh2.len()..];
    let mut fields = vec![
        Field::default(),
        literal_field(field.to_string()),
        literal_field(msh2),
    ];
    // `after` starts with the separator that ends MSH-2 (or is empty).
    if let Some(tail) = after.strip_prefix(field) {
        fields.extend(tail.split(field).map(|f| parse_field(f, &encoding)));
    }
    Ok((
        encoding,
        Segment {
            name: "MSH".to_string(),
            fields,
        },
    ))
}

fn literal_field(text: String) -> Field {
    Field {
        reps: vec![Repetition {
            comps: vec![Component {
                subs: vec![text.clone()],
            }],
        }],
        raw: text,
    }
}

fn parse_segment(line: &str, enc: &Encoding, index: usize) -> Result<Segment, ParseError> {
    let mut parts = line.split(enc.field);
    let name = parts.next().unwrap_or_default().trim();
    if name.len() != 3
        || !name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Err(ParseError::BadSegmentName { index });
    }
    let mut fields = vec![Field::default()];
    fields.extend(parts.map(|f| parse_field(f, enc)));
    Ok(Segment {
        name: name.to_string(),
        fields,
    })
}

fn parse_field(raw: &str, enc: &Encoding) -> Field {
    let reps = raw
        .split(enc.repetition)
        .map(|r| Repetition {
            comps: r
                .split(enc.component)
                .map(|c| Component {
                    subs: c.split(enc.subcomponent).map(|s| enc.unescape(s)).collect(),
                })
                .collect(),
        })
        .collect();
    Field {
        raw: raw.to_string(),
        reps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_to_separators_hex_and_newlines() {
        let enc = Encoding::default();
        let cases = [
            (r"A\T\E", "A&E"),
            (r"a\F\b\S\c\R\d\E\e", r"a|b^c~d\e"),
            (r"line1\X0D\line2", "line1\rline2"),
            (r"\XC3A9\t\XE9\", "ét\u{e9}"),
            (r"one\.br\two", "one\ntwo"),
            (r"\H\bold\N\", "bold"),
            (r"unterminated \F", r"unterminated \F"),
            (r"Müller \T\ Söhne", "Müller & Söhne"),
            (r"\Zlocal\", r"\Zlocal\"),
        ];
        for (raw, want) in cases {
            assert_eq!(enc.unescape(raw), want, "{raw}");
        }
    }

    #[test]
    fn escape_round_trips() {
        let enc = Encoding::default();
        let text = "a|b^c&d~e\\f\r\ng";
        assert_eq!(enc.unescape(&enc.escape(text)), text);
        assert_eq!(enc.escape("x|y^z"), r"x\F\y\S\z");
    }

    #[test]
    fn repetitions_components_and_subcomponents() {
        let msg = Message::parse_str(
            "MSH|^~\\&|A|B|||20240101||ADT^A01|1|P|2.5\rPID|1||111^^^HOSP&1.2.3&ISO^MR~222^^^SSA^SS",
        )
        .expect("parses");
        let pid = msg.segment("PID").expect("pid");
        let reps = pid.reps(3);
        assert_eq!(reps.len(), 2);
        assert_eq!(reps[0].comp(1), "111");
        assert_eq!(reps[0].sub(4, 2), "1.2.3");
        assert_eq!(reps[0].sub(4, 3), "ISO");
        assert_eq!(reps[1].comp(5), "SS");
        assert_eq!(pid.text(1), "1");
        assert_eq!(pid.text(2), "");
        assert_eq!(pid.text(40), "");
    }

    #[test]
    fn custom_encoding_characters() {
        let msg = Message::parse_str(
            "MSH$%#!|$SND$FAC$$$20240101$$ADT%A04$9$P$2.3\nPID$1$$X1%%%A|B|ISO%MR#X2$$DOE%JANE|\\S\\!F!$",
        )
        .expect("parses");
        let e = msg.encoding();
        assert_eq!(
            (e.field, e.component, e.repetition, e.escape, e.subcomponent),
            ('$', '%', '#', '!', '|')
        );
        let msh = msg.msh();
        assert_eq!(msh.text(1), "$");
        assert_eq!(msh.text(2), "%#!|");
        assert_eq!(msh.text(3), "SND");
        assert_eq!(msh.comp(9, 2), "A04");
        let pid = msg.segment("PID").expect("pid");
        assert_eq!(pid.reps(3).len(), 2);
        assert_eq!(pid.rep(3).map(|r| r.sub(4, 2)), Some("B"));
        assert_eq!(pid.comp(5, 1), "DOE");
        // `|` is the subcomponent separator here, so JANE and \S\ are subcomponents.
        assert_eq!(pid.sub(5, 2, 1), "JANE");
        assert_eq!(pid.sub(5, 2, 2), "\\S\\$");
    }

    #[test]
    fn bom_and_line_feeds_and_crlf() {
        let text = b"\xEF\xBB\xBFMSH|^~\\&|A\r\nEVN|A01\nPID|1\r\r\n";
        let msg = Message::parse(text).expect("parses");
        let names: Vec<&str> = msg.segments().iter().map(Segment::name).collect();
        assert_eq!(names, ["MSH", "EVN", "PID"]);
    }

    #[test]
    fn latin1_bytes_are_read() {
        let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||M\xfcller").expect("parses");
        assert_eq!(msg.segment("PID").map(|p| p.text(5)), Some("Müller"));
    }

    #[test]
    fn garbage_is_rejected() {
        let cases: [(&[u8], ParseError); 4] = [
            (b"", ParseError::Empty),
            (b"\r\n\r\n", ParseError::Empty),
            (b"hello world", ParseError::NoMsh),
            (b"MSH|^^\\&|x", ParseError::BadEncodingCharacters),
        ];
        for (bytes, want) in cases {
            assert_eq!(Message::parse(bytes), Err(want));
        }
        assert_eq!(
            Message::parse(b"MSH|^~\\&|x\rnot a segment"),
            Err(ParseError::BadSegmentName { index: 2 })
        );
    }
}
