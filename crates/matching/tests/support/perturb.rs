//! The perturbed test set shared by `tests/perturbed.rs` and `examples/match_quality.rs`:
//! the Patient of every Synthea bundle in `shared/data`, and copies of each changed the way
//! a second registration of the same person changes it. A seeded xorshift makes the set the
//! same on every run.

#![allow(dead_code)]

use std::path::PathBuf;

use oxehr_matching::{compare_prepared, Demographics, Grade};
use serde_json::{json, Value};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The seed of every random choice in the test set.
pub const SEED: u64 = 0x5EED_0F0E;

/// The shared test data: `../shared/data` beside the repository, or `$OXEHR_SHARED_DATA`.
pub fn data_dir() -> PathBuf {
    oxehr_testdata::path("")
}

/// The Patients of the Synthea bundles, or `None` when the data is not there (outside CI
/// the caller skips; under `CI=true` it is an error, since CI lays the data beside the
/// repository).
pub fn load_patients() -> Option<Vec<Value>> {
    let root = data_dir().join("synthea");
    let mut files = Vec::new();
    for dir in ["smart-on-fhir-r4", "synthea-v3"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            return None;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".json")
                && !name.starts_with("hospitalInformation")
                && !name.starts_with("practitionerInformation")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut patients = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).ok()?;
        let bundle: Value = serde_json::from_str(&text).ok()?;
        let entries = bundle.get("entry").and_then(Value::as_array)?;
        patients.extend(
            entries
                .iter()
                .filter_map(|e| e.get("resource"))
                .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"))
                .cloned(),
        );
    }
    (!patients.is_empty()).then_some(patients)
}

/// Loads the patients, or says why not: prints one line and returns `None` outside CI,
/// panics under `CI=true`. Without the shared data at all, `oxehr_testdata` says so.
pub fn patients_or_skip() -> Option<Vec<Value>> {
    oxehr_testdata::root()?;
    match load_patients() {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but no Synthea bundles under {}: CI must lay shared/data beside the repository",
            data_dir().display()
        ),
        None => {
            println!(
                "skipped: no Synthea bundles under {}",
                data_dir().display()
            );
            None
        }
    }
}

/// [`patients_or_skip`], loaded once per test binary and shared by its tests.
pub fn shared_patients() -> Option<&'static [Value]> {
    static PATIENTS: std::sync::OnceLock<Option<Vec<Value>>> = std::sync::OnceLock::new();
    PATIENTS.get_or_init(patients_or_skip).as_deref()
}

/// xorshift64* (Vigna 2016): small, fast, and the same sequence on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant at these sizes).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One way a second registration differs from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One insert, delete, substitute or transpose in the family or first given name.
    NameTypo,
    /// Given and family name exchanged.
    SwappedNames,
    /// A new street line, city and postal code.
    Moved,
    /// Every identifier dropped, one MRN of another hospital added.
    NewIdentifiers,
    /// A new phone number.
    NewPhone,
    /// Day and month of the birth date exchanged (only where that is another date).
    BirthDateTransposed,
    /// The first given name as a nickname, or as an initial where it has none.
    NicknameOrInitial,
}

pub const KINDS: [Kind; 7] = [
    Kind::NameTypo,
    Kind::SwappedNames,
    Kind::Moved,
    Kind::NewIdentifiers,
    Kind::NewPhone,
    Kind::BirthDateTransposed,
    Kind::NicknameOrInitial,
];

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::NameTypo => "name typo",
            Kind::SwappedNames => "swapped names",
            Kind::Moved => "moved",
            Kind::NewIdentifiers => "new identifiers",
            Kind::NewPhone => "new phone",
            Kind::BirthDateTransposed => "birth date d/m",
            Kind::NicknameOrInitial => "nickname/initial",
        }
    }
}

/// A perturbed copy of patient `of`.
#[derive(Debug, Clone)]
pub struct Perturbed {
    pub of: usize,
    /// Empty for the exact copy.
    pub kinds: Vec<Kind>,
    pub patient: Value,
}

impl Perturbed {
    pub fn label(&self) -> String {
        if self.kinds.is_empty() {
            "exact copy".to_string()
        } else {
            let labels: Vec<_> = self.kinds.iter().map(|k| k.label()).collect();
            labels.join(" + ")
        }
    }
}

/// For every patient: the exact copy, one copy per kind, and one per pair of kinds, where
/// the kinds apply (a birth date whose day is over 12 cannot be transposed).
pub fn copies(patients: &[Value], seed: u64) -> Vec<Perturbed> {
    let mut sets = vec![Vec::new()];
    sets.extend(combinations(&KINDS, 1));
    sets.extend(combinations(&KINDS, 2));
    copies_of(patients, &sets, seed)
}

/// A copy of every patient for each set of kinds that applies to it.
pub fn copies_of(patients: &[Value], sets: &[Vec<Kind>], seed: u64) -> Vec<Perturbed> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for (i, p) in patients.iter().enumerate() {
        for kinds in sets {
            let mut q = p.clone();
            if kinds.iter().all(|k| apply(*k, &mut q, &mut rng)) {
                out.push(Perturbed {
                    of: i,
                    kinds: kinds.clone(),
                    patient: q,
                });
            }
        }
    }
    out
}

/// Every set of `size` distinct kinds from `kinds`, in order.
pub fn combinations(kinds: &[Kind], size: usize) -> Vec<Vec<Kind>> {
    if size == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        for mut rest in combinations(&kinds[i + 1..], size - 1) {
            rest.insert(0, *k);
            out.push(rest);
        }
    }
    out
}

/// The copy with every identifier replaced too (demographics only), unless it already was.
pub fn without_identifiers(c: &Perturbed, rng: &mut Rng) -> Option<Perturbed> {
    if c.kinds.contains(&Kind::NewIdentifiers) {
        return None;
    }
    let mut q = c.patient.clone();
    apply(Kind::NewIdentifiers, &mut q, rng);
    let mut kinds = c.kinds.clone();
    kinds.push(Kind::NewIdentifiers);
    Some(Perturbed {
        of: c.of,
        kinds,
        patient: q,
    })
}

/// Applies `kind` to `p`; false when it does not apply to this patient.
pub fn apply(kind: Kind, p: &mut Value, rng: &mut Rng) -> bool {
    match kind {
        Kind::NameTypo => {
            keep_first_name(p);
            let field = if rng.below(2) == 0 {
                "/name/0/family"
            } else {
                "/name/0/given/0"
            };
            edit_string(p, field, |s| typo(s, rng))
        }
        Kind::SwappedNames => {
            keep_first_name(p);
            let family = p.pointer("/name/0/family").cloned();
            let given = p.pointer("/name/0/given/0").cloned();
            match (family, given) {
                (Some(f), Some(g)) => {
                    if let Some(slot) = p.pointer_mut("/name/0/family") {
                        *slot = g;
                    }
                    if let Some(slot) = p.pointer_mut("/name/0/given/0") {
                        *slot = f;
                    }
                    true
                }
                _ => false,
            }
        }
        Kind::Moved => {
            let (city, postal) = loop {
                let (c, z) = TOWNS[rng.below(TOWNS.len())];
                if p.pointer("/address/0/city").and_then(Value::as_str) != Some(c) {
                    break (c, z);
                }
            };
            let line = format!(
                "{} {} {}",
                1 + rng.below(9999),
                STREETS[rng.below(STREETS.len())],
                SUFFIXES[rng.below(SUFFIXES.len())]
            );
            if let Some(o) = p.as_object_mut() {
                o.insert(
                    "address".into(),
                    json!([{"line": [line], "city": city, "state": "MA", "postalCode": postal, "country": "US"}]),
                );
            }
            true
        }
        Kind::NewIdentifiers => {
            let mrn = format!("M{:08}", rng.below(100_000_000));
            if let Some(o) = p.as_object_mut() {
                o.insert(
                    "identifier".into(),
                    json!([{
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "system": "urn:oid:2.16.840.1.113883.19.5.99",
                        "value": mrn
                    }]),
                );
            }
            true
        }
        Kind::NewPhone => {
            let old = p
                .pointer("/telecom/0/value")
                .and_then(Value::as_str)
                .map(str::to_string);
            let new = loop {
                let n = format!("555-{:03}-{:04}", rng.below(1000), rng.below(10000));
                if Some(&n) != old.as_ref() {
                    break n;
                }
            };
            if let Some(o) = p.as_object_mut() {
                o.insert(
                    "telecom".into(),
                    json!([{"system": "phone", "value": new, "use": "home"}]),
                );
            }
            true
        }
        Kind::BirthDateTransposed => {
            let Some(d) = p.get("birthDate").and_then(Value::as_str) else {
                return false;
            };
            let parts: Vec<&str> = d.split('-').collect();
            let [y, m, day] = parts[..] else {
                return false;
            };
            if day == m || day.parse::<u8>().map_or(true, |n| n > 12) {
                return false;
            }
            let swapped = format!("{y}-{day}-{m}");
            if let Some(o) = p.as_object_mut() {
                o.insert("birthDate".into(), json!(swapped));
            }
            true
        }
        Kind::NicknameOrInitial => {
            keep_first_name(p);
            edit_string(p, "/name/0/given/0", |s| {
                let letters: String = s.chars().filter(|c| c.is_alphabetic()).collect();
                let lower = letters.to_lowercase();
                match NICKNAMES.iter().find(|(formal, _)| *formal == lower) {
                    Some((_, nick)) => Some(capitalise(nick)),
                    None => letters.chars().next().map(|c| c.to_uppercase().collect()),
                }
            })
        }
    }
}

/// A second registration records the current name only: a maiden name kept on the copy
/// would let the comparator find the unperturbed given name there.
fn keep_first_name(p: &mut Value) {
    if let Some(names) = p.get_mut("name").and_then(Value::as_array_mut) {
        names.truncate(1);
    }
}

fn edit_string(p: &mut Value, pointer: &str, f: impl FnOnce(&str) -> Option<String>) -> bool {
    let Some(slot) = p.pointer_mut(pointer) else {
        return false;
    };
    let Some(new) = slot.as_str().and_then(f) else {
        return false;
    };
    *slot = Value::String(new);
    true
}

/// One insert, delete, substitute or transpose among the letters of `s` (Synthea's digit
/// suffix is left alone).
fn typo(s: &str, rng: &mut Rng) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_alphabetic())
        .collect();
    if letters.len() < 2 {
        return None;
    }
    let random_letter = |rng: &mut Rng| (b'a' + rng.below(26) as u8) as char;
    let at = letters[rng.below(letters.len())];
    match rng.below(4) {
        0 => chars.insert(at, random_letter(rng)),
        1 => {
            chars.remove(at);
        }
        2 => {
            let old = chars[at].to_ascii_lowercase();
            let mut c = random_letter(rng);
            while c == old {
                c = random_letter(rng);
            }
            chars[at] = if chars[at].is_uppercase() {
                c.to_ascii_uppercase()
            } else {
                c
            };
        }
        _ => {
            // Transpose with the next letter; when the two are equal the typo is invisible,
            // so substitute instead to keep every copy different from its original.
            let k = letters.iter().position(|&i| i == at)?;
            let j = if k + 1 < letters.len() {
                letters[k + 1]
            } else {
                letters[k - 1]
            };
            if chars[at] == chars[j] {
                chars[at] = if chars[at] == 'x' { 'y' } else { 'x' };
            } else {
                chars.swap(at, j);
            }
        }
    }
    Some(chars.into_iter().collect())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Nicknames for the test, written independently of the library's table.
const NICKNAMES: &[(&str, &str)] = &[
    ("christopher", "Kit"),
    ("christian", "Chris"),
    ("stephen", "Steve"),
    ("jonathon", "Jon"),
    ("leonardo", "Leo"),
    ("raymon", "Ray"),
    ("benedict", "Ben"),
    ("gerard", "Gerry"),
    ("joaquin", "Quino"),
    ("margarita", "Rita"),
    ("vannessa", "Nessa"),
    ("sylvester", "Sly"),
    ("cameron", "Cam"),
    ("garrett", "Gary"),
    ("louis", "Lou"),
    ("manuel", "Manny"),
    ("osvaldo", "Ozzie"),
    ("trenton", "Trent"),
    ("lenard", "Len"),
    ("antonio", "Tony"),
    ("israel", "Izzy"),
    ("jackson", "Jack"),
    ("rachael", "Rae"),
    ("ellsworth", "Ells"),
    ("abdul", "Abe"),
];

const TOWNS: &[(&str, &str)] = &[
    ("Springfield", "01103"),
    ("Worcester", "01608"),
    ("Lowell", "01852"),
    ("Brockton", "02301"),
    ("Pittsfield", "01201"),
    ("Amherst", "01002"),
    ("Salem", "01970"),
    ("Framingham", "01701"),
    ("Haverhill", "01830"),
    ("Barnstable", "02601"),
];
const STREETS: &[&str] = &[
    "Maple", "Cedar", "Harbor", "Orchard", "Mill", "Summit", "Pleasant", "Prospect",
];
const SUFFIXES: &[&str] = &["Street", "Avenue", "Road", "Lane", "Way"];

/// A relative of a patient: a different person who shares a household with them, the
/// hardest kind of non-match. Each carries its own new MRN (another hospital's), so no
/// identifier tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relative {
    /// Other gender and given name and birth date; same family name, address and phone.
    Spouse,
    /// Same gender; another given name and a birth date 2–10 years away.
    Sibling,
    /// Same gender and birth date; another given name.
    Twin,
    /// Same name and gender, born 20–40 years earlier (a "Senior").
    Parent,
}

pub const RELATIVES: [Relative; 4] = [
    Relative::Spouse,
    Relative::Sibling,
    Relative::Twin,
    Relative::Parent,
];

impl Relative {
    pub fn label(self) -> &'static str {
        match self {
            Relative::Spouse => "spouse",
            Relative::Sibling => "sibling, same gender",
            Relative::Twin => "twin, same gender",
            Relative::Parent => "parent of the same name",
        }
    }
}

/// One relative of each kind for every patient: `(of, kind, relative)`. Given names come
/// from other patients, so they are real names that differ from the patient's.
pub fn relatives(patients: &[Value], seed: u64) -> Vec<(usize, Relative, Value)> {
    let mut rng = Rng::new(seed);
    let given_of = |p: &Value| {
        p.pointer("/name/0/given/0")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut out = Vec::new();
    for (i, p) in patients.iter().enumerate() {
        let Some(own) = given_of(p) else { continue };
        let Some(date) = p
            .get("birthDate")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let Some(year) = date.get(..4).and_then(|y| y.parse::<i32>().ok()) else {
            continue;
        };
        for kind in RELATIVES {
            let mut q = p.clone();
            keep_first_name(&mut q);
            apply(Kind::NewIdentifiers, &mut q, &mut rng);
            let other_given = loop {
                let pick = &patients[rng.below(patients.len())];
                if let Some(g) = given_of(pick).filter(|g| *g != own) {
                    break g;
                }
            };
            let random_date = |rng: &mut Rng, year: i32| {
                format!(
                    "{year:04}-{:02}-{:02}",
                    1 + rng.below(12),
                    1 + rng.below(28)
                )
            };
            let (given, birth, gender) = match kind {
                Relative::Spouse => {
                    let other = match p.get("gender").and_then(Value::as_str) {
                        Some("male") => "female",
                        _ => "male",
                    };
                    let y = year + [-4, -3, -2, 2, 3, 4][rng.below(6)];
                    (Some(other_given), random_date(&mut rng, y), Some(other))
                }
                Relative::Sibling => {
                    let gap = 2 + rng.below(9) as i32;
                    let y = if rng.below(2) == 0 {
                        year - gap
                    } else {
                        year + gap
                    };
                    (Some(other_given), random_date(&mut rng, y), None)
                }
                Relative::Twin => (Some(other_given), date.clone(), None),
                Relative::Parent => {
                    let y = year - 20 - rng.below(21) as i32;
                    (None, random_date(&mut rng, y), None)
                }
            };
            if let (Some(g), Some(slot)) = (given, q.pointer_mut("/name/0/given/0")) {
                *slot = Value::String(g);
            }
            if let Some(o) = q.as_object_mut() {
                o.insert("birthDate".into(), Value::String(birth));
                if let Some(g) = gender {
                    o.insert("gender".into(), json!(g));
                }
            }
            out.push((i, kind, q));
        }
    }
    out
}

/// Counts at one threshold.
#[derive(Debug, Default, Clone, Copy)]
pub struct Confusion {
    pub tp: usize,
    pub fn_: usize,
    pub fp: usize,
    pub tn: usize,
}

impl Confusion {
    pub fn add(&mut self, same: bool, predicted: bool) {
        match (same, predicted) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    pub fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }

    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }

    pub fn pairs(&self) -> usize {
        self.tp + self.fn_ + self.fp + self.tn
    }
}

/// The grade of every (copy, original) pair: `grades[c][o]`.
pub fn grade_all(copies: &[Perturbed], originals: &[Value]) -> Vec<Vec<Grade>> {
    let originals: Vec<Demographics> = originals.iter().map(Demographics::of).collect();
    copies
        .iter()
        .map(|c| {
            let q = Demographics::of(&c.patient);
            originals
                .iter()
                .map(|o| compare_prepared(&q, o).grade)
                .collect()
        })
        .collect()
}

/// Whether `grade` counts as a match at the threshold `at`.
pub fn at_least(grade: Grade, at: Grade) -> bool {
    fn rank(g: Grade) -> u8 {
        match g {
            Grade::Certain => 3,
            Grade::Probable => 2,
            Grade::Possible => 1,
            Grade::CertainlyNot => 0,
        }
    }
    rank(grade) >= rank(at)
}

/// Whether a store would return `p` for the search `name=value`, with the store's
/// semantics: identifier and phone/email exact tokens, birthdate equal, family a
/// normalised prefix.
pub fn blocking_hit(p: &Value, name: &str, value: &str) -> bool {
    let strs = |ptr: &str, field: &str| -> Vec<String> {
        p.pointer(ptr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.get(field).and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    let unescaped = value.replace("\\|", "\u{0}").replace('\\', "");
    match name {
        "identifier" => {
            let Some((sys, val)) = unescaped.split_once('|') else {
                return false;
            };
            let val = val.replace('\u{0}', "|");
            p.get("identifier")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|i| {
                    i.get("system").and_then(Value::as_str) == Some(sys)
                        && i.get("value").and_then(Value::as_str) == Some(val.as_str())
                })
        }
        "birthdate" => p.get("birthDate").and_then(Value::as_str) == Some(value),
        "family" => strs("/name", "family")
            .iter()
            .any(|f| normalise(f).starts_with(&normalise(&unescaped))),
        "phone" | "email" => strs("/telecom", "value").contains(&unescaped),
        _ => false,
    }
}

/// As the search crate normalises strings: NFD, combining marks dropped, lower case.
fn normalise(s: &str) -> String {
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}
