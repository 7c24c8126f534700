//! Typed search-index entries: what the store writes for each resource version, one row
//! per (search parameter, value). The types follow the FHIR search parameter types.

/// Stable key of a search parameter of one resource type: FNV-1a 32-bit hash of
/// `"{ResourceType}.{code}"` (e.g. `Observation.code`), stored as an integer so index
/// rows stay small. The registry checks at start-up that no two keys collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamKey(pub i32);

impl ParamKey {
    pub fn of(resource_type: &str, code: &str) -> ParamKey {
        let mut h: u32 = 0x811c_9dc5;
        for b in resource_type
            .bytes()
            .chain(std::iter::once(b'.'))
            .chain(code.bytes())
        {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        ParamKey(h as i32)
    }
}

/// One index row of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub param: ParamKey,
    pub value: IndexValue,
}

/// A value extracted for a search parameter, typed as the parameter is.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `normalized`: lower case, accents stripped, whitespace collapsed (for the default
    /// starts-with search and `:contains`); `exact`: the value as written (`:exact`).
    String {
        normalized: String,
        exact: String,
    },
    /// Codes, identifiers, booleans, ContactPoint values. `text` is the normalized display
    /// or CodeableConcept.text (for `:text`).
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
    },
    /// The implicit range of a date, dateTime, instant, Period or Timing, as microseconds
    /// since the Unix epoch, both ends inclusive. Open ends use `i64::MIN` / `i64::MAX`.
    Date {
        low: i64,
        high: i64,
    },
    /// A number, with the implicit range given by its precision (`100` → [99.5, 100.5)).
    Number {
        value: f64,
        low: f64,
        high: f64,
    },
    /// A Quantity (or Money, Age, Duration…), plus its UCUM-canonical form where known.
    Quantity {
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
        canonical_value: Option<f64>,
        canonical_code: Option<String>,
    },
    /// A literal reference (`Patient/123`, resolved to type and id), an absolute URL or
    /// canonical (`url`, with `version`), and/or a logical reference by identifier.
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        version: Option<String>,
        url: Option<String>,
        identifier_system: Option<String>,
        identifier_value: Option<String>,
    },
    Uri {
        value: String,
    },
    /// A composite parameter: one value per component, in the definition's order.
    Composite {
        parts: Vec<IndexValue>,
    },
    /// Full text of `_text` (the narrative) or `_content` (the whole resource),
    /// normalized like strings (lower case, accents stripped, whitespace collapsed).
    /// Never a composite part.
    Text {
        content: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_keys_are_fnv1a_of_type_dot_code() {
        // FNV-1a 32 of "a" is 0xe40c292c (reference value of the algorithm).
        let mut h: u32 = 0x811c_9dc5;
        h ^= u32::from(b'a');
        h = h.wrapping_mul(0x0100_0193);
        assert_eq!(h, 0xe40c_292c);
        assert_ne!(
            ParamKey::of("Observation", "code"),
            ParamKey::of("Condition", "code")
        );
    }
}

/// Longest text an index column compared by equality or prefix holds as it is, in bytes.
/// A longer value is stored as its [`key`]: PostgreSQL's B-tree cannot hold an index row
/// over about 2,700 bytes, and the same data must work on both backends.
pub const KEY_MAX_BYTES: usize = 1000;

/// Separates a long value's prefix from its hash in a [`key`].
const KEY_SEPARATOR: char = '\u{1f}';

/// The indexed form of a text value: the value itself up to [`KEY_MAX_BYTES`]; a longer
/// one is its first `KEY_MAX_BYTES` bytes (cut at a character boundary), a separator and
/// the SHA-256 of the whole value, written as 64 characters U+0001–U+0010 (one per
/// nibble). Equal values have equal keys and different ones (but for a SHA-256
/// collision) different keys, so equality searches stay exact; a prefix of at most
/// `KEY_MAX_BYTES` bytes starts the key exactly when it starts the value, so prefix
/// searches that short stay exact too (longer ones are refused by the query parser).
/// The separator and the hash are control characters, which no search value may hold,
/// so no `:contains` pattern can match inside them.
pub fn key(value: &str) -> std::borrow::Cow<'_, str> {
    use sha2::Digest;
    if value.len() <= KEY_MAX_BYTES {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut cut = KEY_MAX_BYTES;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = sha2::Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(cut + 1 + 64);
    out.push_str(&value[..cut]);
    out.push(KEY_SEPARATOR);
    for b in digest.iter() {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(1 + nibble));
        }
    }
    std::borrow::Cow::Owned(out)
}

fn key_in_place(s: &mut String) {
    if s.len() > KEY_MAX_BYTES {
        *s = key(s).into_owned();
    }
}

fn key_opt(s: &mut Option<String>) {
    if let Some(v) = s {
        key_in_place(v);
    }
}

impl IndexValue {
    /// This value with every column an index compares by equality or prefix in its
    /// [`key`] form (string `normalized`, token `system` and `code`, a reference's `url`
    /// and identifier, a uri; composite parts alike). Not keyed: `exact`, token `text`,
    /// quantity units (no index holds them) and the full text.
    pub fn bounded(mut self) -> IndexValue {
        match &mut self {
            IndexValue::String { normalized, .. } => key_in_place(normalized),
            IndexValue::Token { system, code, .. } => {
                key_opt(system);
                key_opt(code);
            }
            IndexValue::Reference {
                url,
                identifier_system,
                identifier_value,
                ..
            } => {
                key_opt(url);
                key_opt(identifier_system);
                key_opt(identifier_value);
            }
            IndexValue::Uri { value } => key_in_place(value),
            IndexValue::Composite { parts } => {
                for p in parts.iter_mut() {
                    *p = std::mem::replace(
                        p,
                        IndexValue::Uri {
                            value: String::new(),
                        },
                    )
                    .bounded();
                }
            }
            IndexValue::Date { .. }
            | IndexValue::Number { .. }
            | IndexValue::Quantity { .. }
            | IndexValue::Text { .. } => {}
        }
        self
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn short_values_are_their_own_key() {
        for v in ["", "abc", &"x".repeat(KEY_MAX_BYTES)] {
            assert_eq!(key(v), v);
        }
    }

    #[test]
    fn long_values_keep_their_prefix_and_differ_by_their_hash() {
        let stem = "é".repeat(KEY_MAX_BYTES); // two bytes each: the cut is mid-stem
        let (a, b) = (format!("{stem}a"), format!("{stem}b"));
        let (ka, kb) = (key(&a), key(&b));
        assert_ne!(ka, kb);
        assert_eq!(ka, key(&a.clone()));
        assert!(ka.len() <= KEY_MAX_BYTES + 1 + 64, "{}", ka.len());
        let prefix = &a[..KEY_MAX_BYTES];
        assert!(ka.starts_with(prefix));
        let tail = &ka[prefix.len()..];
        assert!(tail.starts_with(KEY_SEPARATOR));
        assert_eq!(tail.chars().count(), 65);
        assert!(tail.chars().all(|c| c.is_control()));
        // The SHA-256 of "a" × 1001, from `printf 'a%.0s' $(seq 1001) | sha256sum`.
        let k = key(&"a".repeat(1001)).into_owned();
        let hex: String = k[KEY_MAX_BYTES + 1..]
            .chars()
            .map(|c| char::from_digit(u32::from(c) - 1, 16).expect("nibble"))
            .collect();
        assert_eq!(hex, SHA_OF_1001_A);
    }

    const SHA_OF_1001_A: &str = "bb0381c13e0817201355e7d700b7623f0e985287add78712a11407c9f754efc8";
}
