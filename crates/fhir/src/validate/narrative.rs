//! Narrative XHTML (`Narrative.div`, the only `xhtml` element of R4): the xhtml type's
//! own rule (well-formed XML, one root `div` in the XHTML namespace) and the invariants
//! txt-1 (only basic HTML, no active content) and txt-2 (some non-whitespace content).
//!
//! Narratives are shown to clinicians in the browser, so whatever passes here is markup
//! some page will render: this is the server's defence against stored XSS. The authority
//! for what txt-1 allows is the official Java validator's `XhtmlValidator`
//! (org.hl7.fhir.validation.instance.type, with `UrlUtil.checkValidUrl` for URLs):
//! its element list (`HTML_ELEMENTS`), its attributes allowed on any element
//! (`HTML_ATTRIBUTES`) and per element (`HTML_COMBO_LIST`), `xmlns` declarations, and
//! `xml:space` (a hint there, accepted here). Everything else is refused, which takes out
//! `script`, `iframe`, `object`, `embed`, `form`, `input`, `style`, `svg`, `math`, every
//! `on*` event handler, `xlink:href` and `xml:base`. The tables below are our own code.
//!
//! Decisions, where the validator is looser or silent:
//! - **URLs** (`a.href`, `area.href`, `img.src`, `img.longdesc`, `blockquote.cite`,
//!   `q.cite`), after entity decoding: not empty, only the characters `UrlUtil` allows
//!   (letters, digits and `;?:@&=+$.,/%-_~#[]!'()*|`; so no whitespace, control
//!   characters, quotes, angle brackets or backslash — this is what refuses
//!   `jav&#x09;ascript:` and `" javascript:"`, which browsers would strip and run), and
//!   either relative (no scheme: paths, `#fragment`, `//host`) or with one of the schemes
//!   `http`, `https`, `mailto`, `tel`, compared case-insensitively. The validator accepts
//!   any scheme whose characters pass, `javascript:alert(1)` included; that is a hole, so
//!   the scheme list is ours. `data:` is accepted only in `img.src`, only for an `image/*`
//!   type other than `image/svg+xml`, with exactly one comma and, when `;base64`, a
//!   base64 payload (the validator accepts `data:` with any valid MIME type in `a.href`
//!   too, where `data:text/html` is a script page). A colon after something that is not a
//!   valid scheme is refused rather than guessed at.
//! - **`style`** values, after entity decoding, lower-cased and with whitespace and
//!   `/* */` comments skipped, must not hold `url(`, `image(`, `image-set(` or `src(`
//!   (CSS fetches from those: a tracking pixel that reports who opened the record),
//!   `expression(` (old Internet Explorer ran it as script), `javascript:` or
//!   `vbscript:`; and no backslash, because CSS escapes (`u\72l(`) can spell any of
//!   these. Layout (`position: fixed` overlays and the like) is not policed here: the
//!   pages that show narratives must still contain them.
//! - **XML features** a narrative has no use for are refused: DOCTYPE (and with it entity
//!   declarations), processing instructions and the XML declaration, CDATA sections
//!   (an HTML parser reads `<![CDATA[` as a bogus comment ending at the first `>`, so
//!   markup inside it becomes live), and comments an HTML parser ends earlier than XML
//!   does (`<!-->`, `<!--->`); `--` in a comment is not well-formed XML anyway. Entity
//!   references are limited to XML's five predefined ones and character references to
//!   characters XML allows; HTML's `&nbsp;` and friends are not XML.
//! - **Namespaces**: every element is unprefixed and in the XHTML namespace (the root
//!   declares it; any other `xmlns` must repeat it). Prefix declarations (`xmlns:x`) are
//!   accepted as the validator does; they are inert because no prefixed element or
//!   attribute other than `xml:lang`/`xml:space` is allowed.
//! - XML well-formedness as far as it matters for safety: quick-xml checks tag nesting,
//!   attribute syntax and comments; duplicate attributes and `<` in attribute values
//!   are checked here (an HTML parser keeps the first of two `src`, a sanitizer might
//!   read the second).
//! - The validator's 2025 content-model rules (block elements inside `p`, table
//!   structure) are about layout, not safety, and are not checked.
//! - txt-2 counts as content any text other than XML whitespace (space, tab, CR, LF;
//!   a no-break space is content), any entity or character reference to such text, and
//!   any `img`.
//! - **txt-2 is a warning**, not an error. Four official R4 examples
//!   (ActivityDefinition-blood-tubes-supply, ActivityDefinition-heart-valve-replacement,
//!   EventDefinition-example, Questionnaire-zika-virus-exposure-assessment) have a
//!   whitespace-only `div`, and the official validator accepts them: its R4 FHIRPath
//!   engine evaluates txt-2's `htmlChecks()` as `true` and `XhtmlValidator` has no content
//!   rule. An empty narrative is useless but harmless; refusing it would turn away
//!   resources the reference validator accepts.
//!
//! One issue is reported per narrative, the first problem met. Well-formedness, root and
//! namespace problems are `value` errors (the xhtml type's rule), txt-1 an `invariant`
//! error, txt-2 an `invariant` warning. Diagnostics name elements and attributes (markup, shown only when short and made of
//! name characters), never attribute values or text.
//!
//! Cost: one pass of quick-xml over borrowed input. Allowed names are matched by `match`
//! on bytes, duplicate attributes by a bit set; nothing is allocated per element except
//! when an attribute value holds a reference (decoding it) and quick-xml's one buffer of
//! open tag names.

use std::borrow::Cow;

use quick_xml::escape::unescape_with;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;

use super::primitive::Problem;
use crate::outcome::IssueCode;

const XHTML_NS: &[u8] = b"http://www.w3.org/1999/xhtml";

/// Checks one narrative (already known to be a non-empty string free of control
/// characters).
pub(crate) fn check(s: &str) -> Result<(), Problem> {
    let mut reader = Reader::from_str(s);
    {
        let c = reader.config_mut();
        c.check_comments = true;
        c.check_end_names = true;
        c.allow_unmatched_ends = false;
        c.allow_dangling_amp = false;
        c.expand_empty_elements = false;
    }
    let mut depth: u32 = 0;
    let mut root_done = false;
    let mut content = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|_| malformed("narrative is not well-formed XML"))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root_done => return Err(not_one_div()),
            Event::Start(e) => {
                content |= element(&e, depth == 0)?;
                depth += 1;
            }
            Event::Empty(e) => {
                content |= element(&e, depth == 0)?;
                root_done |= depth == 0;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                root_done |= depth == 0;
            }
            Event::Text(t) => {
                let non_ws = t.iter().any(|&b| !is_xml_ws(b));
                if depth == 0 && non_ws {
                    return Err(not_one_div());
                }
                content |= non_ws;
            }
            Event::GeneralRef(r) => {
                if depth == 0 {
                    return Err(not_one_div());
                }
                content |= reference(&r)?;
            }
            Event::Comment(c) => {
                let c: &[u8] = &c;
                if c.starts_with(b">") || c.starts_with(b"->") {
                    return Err(txt1(
                        "txt-1: a comment that HTML parsers end early (<!--> or <!--->) is \
                         not allowed"
                            .into(),
                    ));
                }
                if c.ends_with(b"-") {
                    return Err(malformed(
                        "narrative is not well-formed XML (a comment ends with ---)",
                    ));
                }
            }
            Event::CData(_) => {
                return Err(txt1(
                    "txt-1: CDATA sections are not allowed in narrative".into(),
                ))
            }
            Event::Decl(_) | Event::PI(_) => {
                return Err(txt1(
                    "txt-1: processing instructions (and the XML declaration) are not \
                     allowed in narrative"
                        .into(),
                ))
            }
            Event::DocType(_) => {
                return Err(txt1(
                    "txt-1: DOCTYPE and entity declarations are not allowed in narrative".into(),
                ))
            }
            Event::Eof => break,
        }
    }
    if depth != 0 {
        return Err(malformed(
            "narrative is not well-formed XML (an element is not closed)",
        ));
    }
    if !root_done {
        return Err(not_one_div());
    }
    if !content {
        return Err(Problem {
            code: IssueCode::Invariant,
            what: "txt-2: the narrative has no non-whitespace content (text or an image)".into(),
            warning: true,
        });
    }
    Ok(())
}

/// XML's predefined entities, and no others: quick-xml's own resolver also knows HTML's
/// when some crate in the build turns on its `escape-html` feature.
fn predefined_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

fn malformed(what: &'static str) -> Problem {
    Problem {
        code: IssueCode::Value,
        what: what.into(),
        warning: false,
    }
}

fn not_one_div() -> Problem {
    malformed("narrative must be one <div> element in the XHTML namespace")
}

fn txt1(what: Cow<'static, str>) -> Problem {
    Problem {
        code: IssueCode::Invariant,
        what,
        warning: false,
    }
}

/// XML's whitespace (`S`): what txt-2 does not count as content.
fn is_xml_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A character XML 1.0 allows (`Char`); Rust strings hold no surrogates.
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// An entity or character reference in text; true when it stands for content.
fn reference(r: &BytesRef<'_>) -> Result<bool, Problem> {
    let name: &[u8] = r;
    match name {
        b"lt" | b"gt" | b"amp" | b"apos" | b"quot" => Ok(true),
        [b'#', ..] => match r.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(!(c.is_ascii() && is_xml_ws(c as u8))),
            _ => Err(malformed(
                "narrative is not well-formed XML (a character reference to a character \
                 XML does not allow)",
            )),
        },
        _ => Err(malformed(
            "narrative is not well-formed XML (only XML's predefined entities and character \
             references are allowed; HTML entities such as &nbsp; are not XML)",
        )),
    }
}

/// Elements that carry attributes of their own in the validator's `HTML_COMBO_LIST`, as
/// bits; every other allowed element is `0`.
mod el {
    pub const A: u16 = 1;
    pub const IMG: u16 = 1 << 1;
    pub const DIV: u16 = 1 << 2;
    pub const BLOCKQUOTE: u16 = 1 << 3;
    pub const Q: u16 = 1 << 4;
    pub const MAP: u16 = 1 << 5;
    pub const AREA: u16 = 1 << 6;
    pub const TABLE: u16 = 1 << 7;
    pub const PRE: u16 = 1 << 8;
    pub const TD: u16 = 1 << 9;
}

/// The validator's `HTML_ELEMENTS`, with the element's bit in [`el`].
fn element_bit(name: &[u8]) -> Option<u16> {
    Some(match name {
        b"a" => el::A,
        b"img" => el::IMG,
        b"div" => el::DIV,
        b"blockquote" => el::BLOCKQUOTE,
        b"q" => el::Q,
        b"map" => el::MAP,
        b"area" => el::AREA,
        b"table" => el::TABLE,
        b"pre" => el::PRE,
        b"td" => el::TD,
        b"p" | b"br" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"span" | b"b" | b"em"
        | b"i" | b"strong" | b"small" | b"big" | b"tt" | b"dfn" | b"var" | b"abbr" | b"acronym"
        | b"cite" | b"hr" | b"address" | b"bdo" | b"kbd" | b"sub" | b"sup" | b"ul" | b"ol"
        | b"li" | b"dl" | b"dt" | b"dd" | b"caption" | b"colgroup" | b"col" | b"thead" | b"tr"
        | b"tfoot" | b"tbody" | b"th" | b"code" | b"samp" => 0,
        _ => return None,
    })
}

/// How an attribute's value is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Plain,
    Url,
    Style,
    Namespace,
}

/// An allowed attribute: its bit (for duplicates), the elements it may appear on
/// (`ANY`, or bits of [`el`]) and how its value is checked.
#[derive(Clone, Copy)]
struct Attr {
    bit: u8,
    on: u16,
    check: Check,
}

const ANY: u16 = u16::MAX;

/// The validator's `HTML_ATTRIBUTES` (on any element) and `HTML_COMBO_LIST` (per
/// element), plus `xmlns` and `xml:space`.
fn attribute(name: &[u8]) -> Option<Attr> {
    use Check::*;
    let (bit, on, check) = match name {
        b"title" => (0, ANY, Plain),
        b"style" => (1, ANY, Style),
        b"class" => (2, ANY, Plain),
        b"id" => (3, ANY, Plain),
        b"lang" => (4, ANY, Plain),
        b"xml:lang" => (5, ANY, Plain),
        b"dir" => (6, ANY, Plain),
        b"accesskey" => (7, ANY, Plain),
        b"tabindex" => (8, ANY, Plain),
        b"span" => (9, ANY, Plain),
        b"width" => (10, ANY, Plain),
        b"align" => (11, ANY, Plain),
        b"valign" => (12, ANY, Plain),
        b"char" => (13, ANY, Plain),
        b"charoff" => (14, ANY, Plain),
        b"abbr" => (15, ANY, Plain),
        b"axis" => (16, ANY, Plain),
        b"headers" => (17, ANY, Plain),
        b"scope" => (18, ANY, Plain),
        b"rowspan" => (19, ANY, Plain),
        b"colspan" => (20, ANY, Plain),
        // `xmlns*` is allowed everywhere by the validator; its value is checked below.
        b"xmlns" => (21, ANY, Namespace),
        // A hint in the validator, not an error.
        b"xml:space" => (22, ANY, Plain),
        b"href" => (23, el::A | el::AREA, Url),
        b"name" => (24, el::A | el::MAP, Plain),
        b"charset" => (25, el::A, Plain),
        b"type" => (26, el::A, Plain),
        b"hreflang" => (27, el::A, Plain),
        b"rel" => (28, el::A, Plain),
        b"rev" => (29, el::A, Plain),
        b"shape" => (30, el::A | el::AREA, Plain),
        b"coords" => (31, el::A | el::AREA, Plain),
        b"src" => (32, el::IMG, Url),
        b"border" => (33, el::IMG | el::TABLE, Plain),
        b"alt" => (34, el::IMG | el::AREA, Plain),
        b"longdesc" => (35, el::IMG, Url),
        b"height" => (36, el::IMG, Plain),
        b"usemap" => (37, el::IMG, Plain),
        b"ismap" => (38, el::IMG, Plain),
        b"cite" => (39, el::BLOCKQUOTE | el::Q, Url),
        b"nohref" => (40, el::AREA, Plain),
        b"summary" => (41, el::TABLE, Plain),
        b"frame" => (42, el::TABLE, Plain),
        b"rules" => (43, el::TABLE, Plain),
        b"cellspacing" => (44, el::TABLE, Plain),
        b"cellpadding" => (45, el::TABLE, Plain),
        b"space" => (46, el::PRE, Plain),
        b"nowrap" => (47, el::TD, Plain),
        _ => return None,
    };
    Some(Attr { bit, on, check })
}

/// A name from the input, shown in diagnostics only when it is short and made of name
/// characters (it is markup, but an attacker chooses it).
fn shown(name: &[u8]) -> Option<&str> {
    let plain = name.len() <= 32
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.'));
    if plain {
        std::str::from_utf8(name).ok()
    } else {
        None
    }
}

/// Checks one start or empty tag; true when it is content for txt-2 (an `img`).
fn element(e: &BytesStart<'_>, root: bool) -> Result<bool, Problem> {
    let qname = e.name();
    let name = qname.as_ref();
    if root && name != b"div" {
        return Err(not_one_div());
    }
    let Some(bit) = element_bit(name) else {
        return Err(txt1(match shown(name) {
            Some(n) => format!("txt-1: element <{n}> is not allowed in narrative").into(),
            None => "txt-1: an element outside the allowed HTML subset is not allowed in \
                     narrative"
                .into(),
        }));
    };
    // Allowed element names are ASCII.
    let ename = || String::from_utf8_lossy(name);
    let mut seen: u64 = 0;
    let mut namespaced = false;
    for a in e.attributes().with_checks(false) {
        let a = a.map_err(|_| malformed("narrative is not well-formed XML (an attribute)"))?;
        let key = a.key.as_ref();
        let raw: &[u8] = &a.value;
        if raw.contains(&b'<') {
            return Err(malformed(
                "narrative is not well-formed XML (< in an attribute value)",
            ));
        }
        let referenced = raw.contains(&b'&');
        let attr = if key.starts_with(b"xmlns:") {
            None // a prefix declaration: inert, as no prefixed name is allowed
        } else {
            let Some(attr) = attribute(key).filter(|a| a.on == ANY || a.on & bit != 0) else {
                return Err(txt1(attribute_refused(key, &ename())));
            };
            if seen & (1 << attr.bit) != 0 {
                return Err(malformed(
                    "narrative is not well-formed XML (an attribute is given twice)",
                ));
            }
            seen |= 1 << attr.bit;
            Some(attr)
        };
        let check = attr.map_or(Check::Plain, |a| a.check);
        if check == Check::Plain && !referenced {
            continue;
        }
        let value = attribute_value(raw)?;
        match check {
            Check::Plain => {}
            Check::Namespace => {
                if value.as_bytes() != XHTML_NS {
                    return Err(malformed(
                        "every narrative element must be in the XHTML namespace",
                    ));
                }
                namespaced = true;
            }
            Check::Url => url(&value, bit == el::IMG && key == b"src").map_err(|why| {
                let key = String::from_utf8_lossy(key);
                txt1(format!("txt-1: URL in {}.{key} {why}", ename()).into())
            })?,
            Check::Style => {
                if let Some(why) = style(&value) {
                    return Err(txt1(format!("txt-1: style attribute {why}").into()));
                }
            }
        }
    }
    if root && !namespaced {
        return Err(not_one_div());
    }
    Ok(bit == el::IMG)
}

/// An attribute value with its references resolved (allocating only when it has some).
fn attribute_value(raw: &[u8]) -> Result<Cow<'_, str>, Problem> {
    // The input is a `str` and quick-xml splits it at ASCII quotes.
    let raw = std::str::from_utf8(raw)
        .map_err(|_| malformed("narrative is not well-formed XML (an attribute)"))?;
    let value = unescape_with(raw, predefined_entity).map_err(|_| {
        malformed(
            "narrative is not well-formed XML (an attribute value holds an unknown entity or \
             a bad reference)",
        )
    })?;
    // Raw control characters were refused with the string; only references can bring
    // them in.
    if matches!(value, Cow::Owned(_)) && !value.chars().all(is_xml_char) {
        return Err(malformed(
            "narrative is not well-formed XML (a character reference to a character XML does \
             not allow)",
        ));
    }
    Ok(value)
}

fn attribute_refused(key: &[u8], element: &str) -> Cow<'static, str> {
    let handler = key.len() > 2 && key[..2].eq_ignore_ascii_case(b"on");
    match (shown(key), handler) {
        (Some(k), true) => {
            format!("txt-1: attribute {k} is not allowed (event handlers run script)").into()
        }
        (Some(k), false) => format!("txt-1: attribute {k} is not allowed on <{element}>").into(),
        (None, _) => format!(
            "txt-1: an attribute outside the allowed HTML subset is not allowed on <{element}>"
        )
        .into(),
    }
}

/// ASCII characters `UrlUtil.checkValidUrl` allows: letters, digits and
/// `;?:@&=+$.,/%-_~#[]!'()*|`, as a bit set indexed by the byte.
const URL_ASCII: u128 = {
    let mut set = 0u128;
    let punct = b";?:@&=+$.,/%-_~#[]!'()*|";
    let mut i = 0;
    while i < punct.len() {
        set |= 1 << punct[i];
        i += 1;
    }
    let mut c = 0u8;
    while c < 128 {
        if c.is_ascii_alphanumeric() {
            set |= 1 << c;
        }
        c += 1;
    }
    set
};

/// A character `UrlUtil.checkValidUrl` allows (Java's `isDigit || isAlphabetic` is
/// close to Rust's `is_alphanumeric` beyond ASCII).
fn url_char(c: char) -> bool {
    if c.is_ascii() {
        URL_ASCII >> (c as u32) & 1 == 1
    } else {
        c.is_alphanumeric()
    }
}

/// Checks a decoded URL attribute; `Err` says why (never echoing the URL).
fn url(v: &str, img_src: bool) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("is empty");
    }
    if !v.chars().all(url_char) {
        return Err(
            "holds characters a URL must not (whitespace, control characters, quotes, angle \
             brackets, backslash, braces)",
        );
    }
    let end = v.find([':', '/', '?', '#']).unwrap_or(v.len());
    if v.as_bytes().get(end) != Some(&b':') {
        return Ok(()); // relative
    }
    let scheme = &v[..end];
    let valid = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid {
        return Err("has a colon before any path and no valid scheme");
    }
    let is = |s: &str| scheme.eq_ignore_ascii_case(s);
    if is("http") || is("https") || is("mailto") || is("tel") {
        return Ok(());
    }
    if is("data") {
        if !img_src {
            return Err("uses data:, which is allowed only for images in img.src");
        }
        return data_image(&v[end + 1..]);
    }
    Err("has a scheme other than http, https, mailto or tel (javascript:, vbscript:, file: … are not allowed)")
}

/// The part of a `data:` URL after the colon, for `img.src`.
fn data_image(rest: &str) -> Result<(), &'static str> {
    let Some((head, payload)) = rest.split_once(',') else {
        return Err("is a data: URL without data");
    };
    if payload.contains(',') {
        return Err("is a data: URL with more than one comma");
    }
    let mime = head.split(';').next().unwrap_or("");
    let image = mime.len() > 6 && mime.as_bytes()[..6].eq_ignore_ascii_case(b"image/");
    if !image || mime.eq_ignore_ascii_case("image/svg+xml") {
        return Err("is a data: URL that is not a raster image (image/* other than SVG)");
    }
    let base64 =
        head.len() >= 7 && head.as_bytes()[head.len() - 7..].eq_ignore_ascii_case(b";base64");
    if base64
        && !payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err("is a data: URL whose base64 is not valid");
    }
    Ok(())
}

/// What CSS in a `style` attribute must not hold, after normalisation.
const STYLE_REFUSED: &[&[u8]] = &[
    b"url(",
    b"image(",
    b"image-set(",
    b"src(",
    b"expression(",
    b"javascript:",
    b"vbscript:",
];

/// Checks a decoded `style` value; `Some` says why it is refused.
fn style(v: &str) -> Option<&'static str> {
    if v.contains('\\') {
        return Some("holds a CSS escape (a backslash), which can spell url( or expression(");
    }
    // The last bytes of the value lower-cased, without whitespace and comments; long
    // enough for the longest refused token.
    let mut window = [0u8; 12];
    let mut len = 0usize;
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c == b'/' && b.get(i) == Some(&b'*') {
            i = match v[i + 1..].find("*/") {
                Some(k) => i + 1 + k + 2,
                None => b.len(),
            };
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if len == window.len() {
            window.copy_within(1.., 0);
            len -= 1;
        }
        window[len] = c.to_ascii_lowercase();
        len += 1;
        if matches!(c, b'(' | b':') && STYLE_REFUSED.iter().any(|t| window[..len].ends_with(t)) {
            return Some(
                "holds url(, image(, image-set(, src(, expression(, javascript: or vbscript: \
                 (CSS that fetches or runs code)",
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        let cases = [
            ("https://example.org/a?b=c&d=e#f", false, Ok(())),
            ("HTTPS://example.org", false, Ok(())),
            ("mailto:a@example.org", false, Ok(())),
            ("tel:+15555550100", false, Ok(())),
            ("Patient/example", false, Ok(())),
            ("#top", false, Ok(())),
            ("//example.org/x", false, Ok(())),
            ("?a=b:c", false, Ok(())),
            ("a/b:c", false, Ok(())),
            ("caf\u{e9}.png", true, Ok(())),
            ("data:image/png;base64,iVBORw0KGgo=", true, Ok(())),
            ("data:image/gif,GIF89a", true, Ok(())),
            ("", false, Err(())),
            ("javascript:alert(1)", false, Err(())),
            ("JAVASCRIPT:alert(1)", false, Err(())),
            (" javascript:alert(1)", false, Err(())),
            ("java\tscript:alert(1)", false, Err(())),
            ("java\u{0}script:alert(1)", false, Err(())),
            ("vbscript:msgbox", false, Err(())),
            ("file:///etc/passwd", false, Err(())),
            ("1http:x", false, Err(())),
            (":x", false, Err(())),
            ("http://a b", false, Err(())),
            ("http://a\"onclick=\"x", false, Err(())),
            ("http://a\\b", false, Err(())),
            ("data:image/png;base64,iVBORw0KGgo=", false, Err(())),
            ("data:image/svg+xml,<svg/>", true, Err(())),
            ("data:image/SVG+XML;base64,PHN2Zz4=", true, Err(())),
            ("data:text/html,x", true, Err(())),
            ("data:image/png", true, Err(())),
            ("data:image/png;base64,a,b", true, Err(())),
            ("data:image/png;base64,a%b", true, Err(())),
            ("data:,x", true, Err(())),
        ];
        for (v, img, want) in cases {
            assert_eq!(url(v, img).map_err(|_| ()), want, "{v:?} img={img}");
        }
    }

    #[test]
    fn style_rules() {
        let cases = [
            ("color: red", true),
            ("font-family: \"Times New Roman\", serif", true),
            ("width: 100%; border-top: 1px solid", true),
            ("list-style-type: lower-roman", true),
            ("background-image: none /* url-less */", true),
            ("background: url(x.png)", false),
            ("background: URL ( x.png )", false),
            ("background: ur/**/l(x.png)", false),
            ("background: u\\72l(x.png)", false),
            ("background-image: -webkit-image-set('a.png' 1x)", false),
            ("background-image: image('a.png')", false),
            ("background-image: src('a.png')", false),
            ("width: expression(alert(1))", false),
            ("width: EXPRESSION (alert(1))", false),
            ("x: java\tscript:alert(1)", false),
            ("x: vbscript:msgbox", false),
        ];
        for (v, ok) in cases {
            assert_eq!(style(v).is_none(), ok, "{v:?}");
        }
    }

    #[test]
    fn every_allowed_attribute_has_its_own_bit() {
        let names: &[&[u8]] = &[
            b"title",
            b"style",
            b"class",
            b"id",
            b"lang",
            b"xml:lang",
            b"dir",
            b"accesskey",
            b"tabindex",
            b"span",
            b"width",
            b"align",
            b"valign",
            b"char",
            b"charoff",
            b"abbr",
            b"axis",
            b"headers",
            b"scope",
            b"rowspan",
            b"colspan",
            b"xmlns",
            b"xml:space",
            b"href",
            b"name",
            b"charset",
            b"type",
            b"hreflang",
            b"rel",
            b"rev",
            b"shape",
            b"coords",
            b"src",
            b"border",
            b"alt",
            b"longdesc",
            b"height",
            b"usemap",
            b"ismap",
            b"cite",
            b"nohref",
            b"summary",
            b"frame",
            b"rules",
            b"cellspacing",
            b"cellpadding",
            b"space",
            b"nowrap",
        ];
        let mut seen = 0u64;
        for n in names {
            let a = attribute(n).expect("allowed");
            assert!(a.bit < 64);
            assert_eq!(seen & (1 << a.bit), 0, "{}", String::from_utf8_lossy(n));
            seen |= 1 << a.bit;
        }
    }
}
