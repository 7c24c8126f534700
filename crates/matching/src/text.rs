//! Text normalisation shared by the comparators: names and address words reduced to
//! lower-case ASCII-like letters so that spelling of accents, case, punctuation and
//! Synthea's digit suffixes ("Alvin56") do not count as differences.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Words of a name: NFKD with combining marks dropped (so "Agustín" is "agustin"), lower
/// case, digits dropped (Synthea appends digits to every name part), apostrophes and periods
/// dropped inside a word ("O'Connell" is "oconnell"), and anything else that is not a letter
/// (spaces, hyphens, commas) separating words.
pub(crate) fn name_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in s.nfkd().filter(|c| !is_combining_mark(*c)) {
        if c.is_alphabetic() {
            word.extend(c.to_lowercase());
        } else if c.is_numeric() || matches!(c, '\'' | '’' | '.' | 'ʼ') {
            // Part of the word as written, not a separator: drop it.
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Words of an address line: as [`name_words`] but keeping digits, which carry the house and
/// unit numbers, and with the common USPS street suffixes and unit designators abbreviated
/// so "Street" and "St" agree.
pub(crate) fn address_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in s.nfkd().filter(|c| !is_combining_mark(*c)) {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if matches!(c, '\'' | '’' | '.') {
        } else if !word.is_empty() {
            words.push(abbreviate(std::mem::take(&mut word)));
        }
    }
    if !word.is_empty() {
        words.push(abbreviate(word));
    }
    words
}

/// USPS Publication 28 abbreviations for the words most often spelt either way.
fn abbreviate(word: String) -> String {
    let short = match word.as_str() {
        "street" => "st",
        "avenue" => "ave",
        "road" => "rd",
        "drive" => "dr",
        "lane" => "ln",
        "court" => "ct",
        "boulevard" => "blvd",
        "place" => "pl",
        "square" => "sq",
        "terrace" => "ter",
        "highway" => "hwy",
        "parkway" => "pkwy",
        "circle" => "cir",
        "north" => "n",
        "south" => "s",
        "east" => "e",
        "west" => "w",
        "apartment" | "apt" | "unit" | "suite" | "ste" | "no" => "#",
        _ => return word,
    };
    short.to_string()
}

/// Only the ASCII digits of `s`.
pub(crate) fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Jaro–Winkler similarity (Winkler's prefix scale 0.1 over at most four characters).
pub(crate) fn jaro_winkler(a: &str, b: &str) -> f64 {
    strsim::jaro_winkler(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_words_normalise_accents_case_digits_and_punctuation() {
        let cases: &[(&str, &[&str])] = &[
            ("Alvin56", &["alvin"]),
            ("Agustín", &["agustin"]),
            ("José María", &["jose", "maria"]),
            ("O'Connell", &["oconnell"]),
            ("Smith-Jones", &["smith", "jones"]),
            ("  MÜLLER  ", &["muller"]),
            ("Jr.", &["jr"]),
            ("1234", &[]),
            ("", &[]),
        ];
        for (input, expected) in cases {
            assert_eq!(name_words(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn address_words_keep_numbers_and_abbreviate_street_words() {
        let cases: &[(&str, &[&str])] = &[
            (
                "313 Lockman Row Suite 4",
                &["313", "lockman", "row", "#", "4"],
            ),
            ("12 Main Street, Apt. 3", &["12", "main", "st", "#", "3"]),
            ("12 MAIN ST APT 3", &["12", "main", "st", "#", "3"]),
        ];
        for (input, expected) in cases {
            assert_eq!(address_words(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn jaro_winkler_matches_winklers_published_examples() {
        // Winkler (1990) and Wikipedia's worked examples, computed by hand from the
        // definitions: MARTHA/MARHTA has m = 6, t = 1, Jaro = (1 + 1 + 5/6)/3 = 0.9444,
        // common prefix 3: 0.9444 + 3 * 0.1 * 0.0556 = 0.9611.
        // DWAYNE/DUANE: m = 4, t = 0, Jaro = (4/6 + 4/5 + 1)/3 = 0.8222, prefix 1: 0.84.
        // DIXON/DICKSONX: m = 4, t = 0, Jaro = (4/5 + 4/8 + 1)/3 = 0.7667, prefix 2: 0.8133.
        let cases = [
            ("martha", "marhta", 0.9611),
            ("dwayne", "duane", 0.8400),
            ("dixon", "dicksonx", 0.8133),
        ];
        for (a, b, expected) in cases {
            let got = jaro_winkler(a, b);
            assert!((got - expected).abs() < 5e-4, "{a}/{b}: {got}");
        }
    }
}
