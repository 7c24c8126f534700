//! The one percent-encoder of URL components oxehr writes: search links and their page
//! links, conditional-create queries (`ifNoneExist`), `otpauth://` labels.

/// What a component keeps as it is: RFC 3986's unreserved characters (§2.3).
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `s` as one URL component (a query parameter's name or value, a path
/// segment, a label): every byte of its UTF-8 but RFC 3986's unreserved characters, so
/// that `&`, `=`, `#`, `+`, `%`, `|`, `,`, `:`, `/` and spaces arrive as data. Decoding
/// gives `s` back.
pub fn encode_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay() {
        // RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
        assert_eq!(encode_component("Az09-._~"), "Az09-._~");
        assert_eq!(
            encode_component("a&b=c d%|,:/#+"),
            "a%26b%3Dc%20d%25%7C%2C%3A%2F%23%2B"
        );
        // UTF-8, byte by byte (§2.5).
        assert_eq!(encode_component("Müller"), "M%C3%BCller");
        let back = percent_encoding::percent_decode_str(&encode_component("x y&z|ü"))
            .decode_utf8()
            .map(|c| c.into_owned());
        assert_eq!(back.as_deref(), Ok("x y&z|ü"));
    }
}
