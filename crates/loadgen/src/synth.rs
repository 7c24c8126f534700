//! `oxehr-load synth --patients N --out DIR`: multiplies the shipped Synthea patients.
//!
//! The source directories hold one transaction Bundle per patient (entries linked by
//! `urn:uuid:` fullUrls; Synthea 3.x bundles also use conditional references) and a few
//! Bundles without a Patient (`hospitalInformation…`, `practitionerInformation…`). The
//! latter are copied once, unchanged, to `DIR/shared/`. The patient bundles are copied
//! round robin (patient `i` is a copy of source `i % sources`) to
//! `DIR/patients/p000000.json`…, each copy changed so that it is a distinct patient:
//!
//! - every id named by a `urn:uuid:` fullUrl (and every reference, identifier value or
//!   id equal to it) becomes a new UUID derived from the seed, the patient number and
//!   the old id: the output is the same for the same arguments;
//! - entries are written as `PUT Type/new-id` instead of `POST Type`, so the server
//!   keeps the generated ids and the benchmark knows them (see `values.tsv`);
//! - the family names of the Patient get a two-syllable suffix shared by `family-group`
//!   consecutive copies of a source patient (so `family=X` matches a handful of
//!   patients, however many are generated), and its other identifiers a `-copy` suffix;
//! - every date and dateTime of the copy (birth date, encounter periods, observation
//!   times…) moves back by the same per-patient number of days (up to `max-shift-days`),
//!   which spreads birth dates and keeps each patient's timeline consistent.
//!
//! With `--managing-organization ID`, every copied Patient is managed by the shared
//! Organization ID (and the shared files PUT their resources to their ids), so that
//! this one organization has all the generated patients in its care.
//!
//! Last, `DIR/values.tsv` lists one line per patient (id, family, birth date, LOINC
//! codes of its Observations, SNOMED codes of its Conditions): the values `search`
//! fills its query templates with. Its presence marks a complete output directory.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::http::splitmix;

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Patients to write.
    #[arg(long)]
    pub patients: usize,
    /// Output directory (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the generated ids and date shifts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directories of Synthea bundles to copy (repeatable), e.g. also
    /// ../shared/data/synthea/synthea-v3.
    #[arg(
        long = "source",
        default_value = "../shared/data/synthea/smart-on-fhir-r4"
    )]
    pub sources: Vec<PathBuf>,
    /// Consecutive copies of a source patient that share a family name.
    #[arg(long, default_value_t = 4)]
    pub family_group: usize,
    /// Dates of a copy move back by 0 to this many days.
    #[arg(long, default_value_t = 3652)]
    pub max_shift_days: u64,
    /// Writer threads (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Make every copied Patient's `managingOrganization` this Organization (an id in
    /// the shared files, whose entries are then PUT to their own ids so that it keeps
    /// it), so that one organization has all of them in its care (the web pages'
    /// benchmark; Synthea's patients have no managing organization).
    #[arg(long)]
    pub managing_organization: Option<String>,
}

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";

/// One line of `values.tsv`.
struct Row {
    index: usize,
    patient: String,
    family: String,
    birthdate: String,
    loinc: BTreeSet<String>,
    snomed: BTreeSet<String>,
}

#[derive(Default)]
struct Totals {
    resources: usize,
    bytes: u64,
}

pub fn run(args: SynthArgs) -> Result<()> {
    let started = Instant::now();
    if args.patients == 0 {
        bail!("--patients must be at least 1");
    }
    if let Ok(mut entries) = std::fs::read_dir(&args.out) {
        if entries.next().is_some() {
            bail!(
                "{} exists and is not empty; remove it first",
                args.out.display()
            );
        }
    }
    let mut templates = Vec::new();
    let mut shared = Vec::new();
    for dir in &args.sources {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
            .collect();
        files.sort();
        for f in files {
            // Synthea names the files without a patient this way; checking the content
            // instead would parse every source twice.
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("hospitalInformation")
                || name.starts_with("practitionerInformation")
            {
                shared.push(f);
            } else {
                templates.push(f);
            }
        }
    }
    if templates.is_empty() {
        bail!("no patient bundles in the source directories");
    }
    let patients_dir = args.out.join("patients");
    let shared_dir = args.out.join("shared");
    std::fs::create_dir_all(&patients_dir)?;
    std::fs::create_dir_all(&shared_dir)?;

    let mut shared_resources = 0;
    let mut managing_found = false;
    for f in &shared {
        let mut text = std::fs::read(f)?;
        let mut v: Value = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not JSON", f.display()))?;
        shared_resources += v["entry"].as_array().map_or(0, Vec::len);
        if let Some(org) = &args.managing_organization {
            // The managing organization must keep its id: PUT the shared resources.
            for e in v["entry"].as_array_mut().into_iter().flatten() {
                managing_found |= e["resource"]["resourceType"] == "Organization"
                    && e["resource"]["id"].as_str() == Some(org.as_str());
                put_to_own_id(e);
            }
            text = serde_json::to_vec(&v)?;
        }
        let dir_name = f
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("source");
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("shared.json");
        std::fs::write(shared_dir.join(format!("{dir_name}-{name}")), text)?;
    }
    if let (Some(org), false) = (&args.managing_organization, managing_found) {
        bail!("--managing-organization: no Organization/{org} in the shared files");
    }

    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Row>> = Mutex::new(Vec::with_capacity(args.patients));
    let totals: Mutex<Totals> = Mutex::new(Totals::default());
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let source = next.fetch_add(1, Ordering::Relaxed);
                if source >= templates.len() || source >= args.patients {
                    break;
                }
                let result = copy_source(
                    &args,
                    &templates[source],
                    source,
                    templates.len(),
                    &patients_dir,
                );
                match result {
                    Ok((mut r, t)) => {
                        if let Ok(mut rows) = rows.lock() {
                            rows.append(&mut r);
                        }
                        if let Ok(mut totals) = totals.lock() {
                            totals.resources += t.resources;
                            totals.bytes += t.bytes;
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(
                                e.context(format!("copying {}", templates[source].display())),
                            );
                        }
                        // Stop the other workers early.
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut rows = rows.into_inner().unwrap_or_default();
    rows.sort_by_key(|r| r.index);
    let totals = totals.into_inner().unwrap_or_default();
    write_values(&args.out, &rows)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} patients ({} resources, {:.0} MB) from {} source patients and {} shared files ({} resources) to {} in {:.1} s",
        rows.len(),
        totals.resources,
        totals.bytes as f64 / 1e6,
        templates.len(),
        shared.len(),
        shared_resources,
        args.out.display(),
        secs
    );
    Ok(())
}

fn write_values(out: &Path, rows: &[Row]) -> Result<()> {
    let tmp = out.join("values.tsv.tmp");
    let mut w = BufWriter::new(File::create(&tmp)?);
    writeln!(w, "patient\tfamily\tbirthdate\tloinc\tsnomed")?;
    for r in rows {
        let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
        writeln!(
            w,
            "{}\t{}\t{}\t{}\t{}",
            r.patient,
            r.family,
            r.birthdate,
            join(&r.loinc),
            join(&r.snomed)
        )?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, out.join("values.tsv"))?;
    Ok(())
}

/// Writes every copy of source patient `source` (of `sources`).
fn copy_source(
    args: &SynthArgs,
    path: &Path,
    source: usize,
    sources: usize,
    out: &Path,
) -> Result<(Vec<Row>, Totals)> {
    let text = std::fs::read(path)?;
    let bundle: Value = serde_json::from_slice(&text).context("not valid JSON")?;
    if bundle["entry"].as_array().is_none_or(|e| {
        !e.iter()
            .any(|e| e["resource"]["resourceType"].as_str() == Some("Patient"))
    }) {
        bail!("not a patient bundle (no Patient entry)");
    }
    let mut rows = Vec::new();
    let mut totals = Totals::default();
    let mut copy = 0usize;
    loop {
        let index = copy * sources + source;
        if index >= args.patients {
            break;
        }
        let mut b = bundle.clone();
        let row = make_copy(args, &mut b, copy, index)?;
        let file = out.join(format!("p{index:06}.json"));
        let mut w = BufWriter::with_capacity(1 << 16, File::create(&file)?);
        serde_json::to_writer(&mut w, &b)?;
        w.flush()?;
        totals.bytes += w.get_ref().metadata()?.len();
        totals.resources += b["entry"].as_array().map_or(0, Vec::len);
        rows.push(row);
        copy += 1;
    }
    Ok((rows, totals))
}

/// Turns `bundle` into copy number `copy` (patient number `index`) in place.
fn make_copy(args: &SynthArgs, bundle: &mut Value, copy: usize, index: usize) -> Result<Row> {
    // Keyed by the patient's number, not by `copy`: the Organizations and Practitioners
    // that several source bundles share get one new id per patient bundle, as POST gave.
    let copy_key = splitmix(args.seed ^ splitmix(index as u64 + 1));
    let days = if args.max_shift_days == 0 {
        0
    } else {
        -((splitmix(copy_key ^ 0xDA7E) % (args.max_shift_days + 1)) as i64)
    };
    let entries = bundle
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .context("the bundle has no entries")?;
    // The ids to replace: every urn:uuid fullUrl, and each resource's own id.
    let mut ids: HashMap<String, String> = HashMap::new();
    for e in entries.iter() {
        let mut olds = Vec::new();
        if let Some(u) = e["fullUrl"]
            .as_str()
            .and_then(|u| u.strip_prefix("urn:uuid:"))
        {
            olds.push(u.to_string());
        }
        if let Some(id) = e["resource"]["id"].as_str() {
            olds.push(id.to_string());
        }
        for old in olds {
            let new = new_uuid(copy_key, &old);
            ids.entry(old).or_insert(new);
        }
    }
    let suffix = family_suffix(args, copy);
    let mut row = Row {
        index,
        patient: String::new(),
        family: String::new(),
        birthdate: String::new(),
        loinc: BTreeSet::new(),
        snomed: BTreeSet::new(),
    };
    for e in entries.iter_mut() {
        let rtype = e["resource"]["resourceType"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if rtype == "Patient" {
            vary_patient(&mut e["resource"], &suffix, copy, &ids);
        }
        rewrite(e, &ids, days);
        if let (true, Some(org)) = (rtype == "Patient", &args.managing_organization) {
            e["resource"]["managingOrganization"] =
                json!({"reference": format!("Organization/{org}")});
        }
        let r = &e["resource"];
        match rtype.as_str() {
            "Patient" => {
                row.patient = r["id"].as_str().unwrap_or("").to_string();
                row.birthdate = r["birthDate"].as_str().unwrap_or("").to_string();
                let names = r["name"].as_array().cloned().unwrap_or_default();
                let official = names
                    .iter()
                    .find(|n| n["use"].as_str() == Some("official"))
                    .or(names.first());
                row.family = official
                    .and_then(|n| n["family"].as_str())
                    .unwrap_or("")
                    .to_string();
            }
            "Observation" => collect_codes(&r["code"], LOINC, &mut row.loinc),
            "Condition" => collect_codes(&r["code"], SNOMED, &mut row.snomed),
            _ => {}
        }
        // Keep the generated id: PUT to it rather than POST.
        put_to_own_id(e);
    }
    if row.patient.is_empty() {
        bail!("the Patient has no id");
    }
    Ok(row)
}

/// A bundle entry that POSTs a resource with an id PUTs it to that id instead
/// (conditional creates stay).
fn put_to_own_id(e: &mut Value) {
    let plain_post = e["request"]["method"].as_str() == Some("POST")
        && e["request"].get("ifNoneExist").is_none();
    let r = &e["resource"];
    if let (true, Some(rtype), Some(id)) =
        (plain_post, r["resourceType"].as_str(), r["id"].as_str())
    {
        let url = format!("{rtype}/{id}");
        e["request"] = json!({"method": "PUT", "url": url});
    }
}

fn collect_codes(code: &Value, system: &str, out: &mut BTreeSet<String>) {
    for c in code["coding"].as_array().into_iter().flatten() {
        if c["system"].as_str() == Some(system) {
            if let Some(code) = c["code"].as_str() {
                out.insert(code.to_string());
            }
        }
    }
}

/// Family names get the copy group's suffix; identifiers other than the ids (which
/// `rewrite` replaces) get `-copy`, so that they stay unique.
fn vary_patient(patient: &mut Value, suffix: &str, copy: usize, ids: &HashMap<String, String>) {
    for name in patient
        .get_mut("name")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(Value::String(family)) = name.get_mut("family") {
            family.push_str(suffix);
        }
    }
    for ident in patient
        .get_mut("identifier")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(Value::String(v)) = ident.get_mut("value") {
            if !ids.contains_key(v.as_str()) {
                v.push_str(&format!("-{copy}"));
            }
        }
    }
}

const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
const VOWELS: &[u8] = b"aeiou";

/// Two syllables (`"bamo"`), the same for `family_group` consecutive copies.
fn family_suffix(args: &SynthArgs, copy: usize) -> String {
    let n = CONSONANTS.len() * VOWELS.len();
    let group = (copy / args.family_group.max(1) + (args.seed as usize % (n * n))) % (n * n);
    let syllable = |i: usize| {
        let c = CONSONANTS[i / VOWELS.len()] as char;
        let v = VOWELS[i % VOWELS.len()] as char;
        format!("{c}{v}")
    };
    format!("{}{}", syllable(group / n), syllable(group % n))
}

/// A version-4-shaped UUID derived from the copy's key and the old id.
fn new_uuid(copy_key: u64, old: &str) -> String {
    let hi = splitmix(fnv1a(old.as_bytes(), 0xCBF2_9CE4_8422_2325) ^ copy_key);
    let lo = splitmix(fnv1a(old.as_bytes(), 0x84222325_CBF29CE4) ^ copy_key.rotate_left(29));
    let hi = (hi & !0xF000) | 0x4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Replaces old ids (bare or as `urn:uuid:`) and shifts dates, in every string.
fn rewrite(v: &mut Value, ids: &HashMap<String, String>, days: i64) {
    match v {
        Value::String(s) => {
            if let Some(new) = rewrite_string(s, ids, days) {
                *s = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| rewrite(x, ids, days)),
        Value::Object(map) => map.iter_mut().for_each(|(_, x)| rewrite(x, ids, days)),
        _ => {}
    }
}

fn rewrite_string(s: &str, ids: &HashMap<String, String>, days: i64) -> Option<String> {
    if let Some(old) = s.strip_prefix("urn:uuid:") {
        return ids.get(old).map(|new| format!("urn:uuid:{new}"));
    }
    if s.len() == 36 {
        if let Some(new) = ids.get(s) {
            return Some(new.clone());
        }
    }
    if days != 0 {
        return shift_date(s, days);
    }
    None
}

/// `YYYY-MM-DD` or `YYYY-MM-DDThh:mm…` moved by `days`; anything else is `None`.
fn shift_date(s: &str, days: i64) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 10 || (b.len() > 10 && b[10] != b'T') || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?
        .checked_add(time::Duration::days(days))?;
    Some(format!(
        "{:04}-{:02}-{:02}{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        &s[10..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_shift_across_months_and_leap_days() {
        assert_eq!(shift_date("2020-03-01", -1).as_deref(), Some("2020-02-29"));
        assert_eq!(
            shift_date("2019-01-01T10:00:00-05:00", -365).as_deref(),
            Some("2018-01-01T10:00:00-05:00")
        );
        assert_eq!(shift_date("1970-01-01", 0).as_deref(), Some("1970-01-01"));
        assert_eq!(shift_date("2019-01", -3), None);
        assert_eq!(shift_date("999-58-8597", -3), None);
        assert_eq!(shift_date("2019-01-01 10:00", -3), None);
        assert_eq!(shift_date("2019-02-30", 1), None, "not a date");
    }

    #[test]
    fn uuids_depend_on_copy_and_id() {
        let a = new_uuid(1, "018f428e-34f6-4707-8009-5ad742f901e7");
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_eq!(a, new_uuid(1, "018f428e-34f6-4707-8009-5ad742f901e7"));
        assert_ne!(a, new_uuid(2, "018f428e-34f6-4707-8009-5ad742f901e7"));
        assert_ne!(a, new_uuid(1, "018f428e-34f6-4707-8009-5ad742f901e8"));
    }

    #[test]
    fn a_managing_organization_goes_on_each_copied_patient() {
        let args = SynthArgs {
            patients: 1,
            out: PathBuf::new(),
            seed: 1,
            sources: vec![],
            family_group: 4,
            max_shift_days: 0,
            workers: None,
            managing_organization: Some("org-1".into()),
        };
        let mut bundle = json!({"entry": [{
            "fullUrl": "urn:uuid:018f428e-34f6-4707-8009-5ad742f901e7",
            "resource": {"resourceType": "Patient", "id": "018f428e-34f6-4707-8009-5ad742f901e7", "name": [{"family": "X"}], "birthDate": "1970-01-01"},
            "request": {"method": "POST", "url": "Patient"}
        }]});
        let row = make_copy(&args, &mut bundle, 0, 0).expect("copies");
        let p = &bundle["entry"][0]["resource"];
        assert_eq!(p["managingOrganization"]["reference"], "Organization/org-1");
        assert_eq!(p["id"].as_str(), Some(row.patient.as_str()));
        assert_ne!(row.patient, "018f428e-34f6-4707-8009-5ad742f901e7");
    }
}
