//! `oxehr-load search --queries FILE --values DIR/values.tsv`: search latency.
//!
//! FILE lists named query templates, one `name<TAB>Type?query[<TAB>p99 target ms]` a
//! line (the query relative to `--base`; blank lines and lines starting with `#` are
//! skipped; the optional target is only reported beside the measured p99). Each template runs on
//! its own: `--clients` connections send it back to back for `--warmup` seconds
//! (unrecorded) and then `--seconds` seconds (recorded: the requests that end after the
//! warm-up), every request with freshly filled placeholders:
//!
//! - `{patient}`, `{family}`, `{birthdate}`: the id, family name and birth date of one
//!   patient drawn at random from `values.tsv` (one draw per request, so in one request
//!   they all describe the same patient);
//! - `{loinc}`: the code of one of that patient's Observations, `{snomed}` of one of its
//!   Conditions (patients without any are not drawn for such templates);
//! - `{int:LO-HI}`: an integer drawn from LO..=HI;
//! - `{pick:a,b,c}`: one of the listed values.
//!
//! Filled values are percent-encoded; in the literal text only the characters a URL
//! cannot carry (`|`, space, non-ASCII…) are. An answer other than 200 counts as an
//! error (the first one's body is printed); each 200 answer is parsed to count its
//! entries (`search.mode` `match`, or absent, versus `include`) and read `Bundle.total`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;

use crate::http::{connect, get, micros_since, parse_base, percentile_ms, send, Rng, Target};
use crate::LoadArgs;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Query templates: one `name<TAB>Type?query[<TAB>p99 target ms]` a line.
    #[arg(long)]
    pub queries: PathBuf,
    /// The values.tsv that `synth` wrote (or its output directory): the values of
    /// {patient}, {family}, {birthdate}, {loinc} and {snomed}.
    #[arg(long)]
    pub values: Option<PathBuf>,
    /// Unrecorded seconds before each query's recorded run.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Run only the queries with these names (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Seed of the values' choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds after which a request is abandoned and counted as an error.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Patient,
    Family,
    Birthdate,
    Loinc,
    Snomed,
    Int(i64, i64),
    Pick(Vec<String>),
}

#[derive(Debug)]
pub(crate) struct Template {
    name: String,
    text: String,
    parts: Vec<Part>,
    /// The p99 to compare with, in ms.
    target_ms: Option<f64>,
    /// Rows of `values.tsv` this template may draw (all of them when it needs a LOINC
    /// or SNOMED code only those that have one); empty when it needs no row.
    rows: Vec<usize>,
}

#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) patient: String,
    pub(crate) family: String,
    pub(crate) birthdate: String,
    pub(crate) loinc: Vec<String>,
    pub(crate) snomed: Vec<String>,
}

impl Template {
    pub(crate) fn parse(name: &str, text: &str) -> Result<Template> {
        let mut parts = Vec::new();
        let mut rest = text.trim();
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(encode(&rest[..open], false)));
            }
            let close = rest[open..]
                .find('}')
                .with_context(|| format!("query {name}: unclosed '{{'"))?
                + open;
            let inner = &rest[open + 1..close];
            parts.push(match inner.split_once(':') {
                None => match inner {
                    "patient" => Part::Patient,
                    "family" => Part::Family,
                    "birthdate" => Part::Birthdate,
                    "loinc" => Part::Loinc,
                    "snomed" => Part::Snomed,
                    _ => bail!("query {name}: unknown placeholder {{{inner}}}"),
                },
                Some(("int", range)) => {
                    let (lo, hi) = range
                        .split_once('-')
                        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                        .filter(|(a, b)| a <= b)
                        .with_context(|| format!("query {name}: {{int:LO-HI}} expected"))?;
                    Part::Int(lo, hi)
                }
                Some(("pick", list)) if !list.is_empty() => {
                    Part::Pick(list.split(',').map(|v| encode(v, true)).collect())
                }
                _ => bail!("query {name}: unknown placeholder {{{inner}}}"),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(encode(rest, false)));
        }
        Ok(Template {
            name: name.to_string(),
            text: text.trim().to_string(),
            parts,
            target_ms: None,
            rows: Vec::new(),
        })
    }

    fn needs(&self, f: impl Fn(&Part) -> bool) -> bool {
        self.parts.iter().any(f)
    }

    pub(crate) fn needs_row(&self) -> bool {
        self.needs(|p| {
            matches!(
                p,
                Part::Patient | Part::Family | Part::Birthdate | Part::Loinc | Part::Snomed
            )
        })
    }

    /// Whether `row` has the values this template draws (a LOINC or SNOMED code).
    pub(crate) fn fits(&self, row: &Row) -> bool {
        (!self.needs(|p| matches!(p, Part::Loinc)) || !row.loinc.is_empty())
            && (!self.needs(|p| matches!(p, Part::Snomed)) || !row.snomed.is_empty())
    }

    /// The path and query of one request (starting with `/`).
    fn fill(&self, rows: &[Row], rng: &mut Rng) -> String {
        let row = (!self.rows.is_empty()).then(|| &rows[self.rows[rng.below(self.rows.len())]]);
        let mut out = String::with_capacity(self.text.len() + 64);
        if !self.text.starts_with('/') {
            out.push('/');
        }
        out.push_str(&self.fill_with(row, rng));
        out
    }

    /// The text with its placeholders filled from `row` (placeholders of a row give
    /// nothing without one).
    pub(crate) fn fill_with(&self, row: Option<&Row>, rng: &mut Rng) -> String {
        let mut out = String::with_capacity(self.text.len() + 64);
        for p in &self.parts {
            match (p, row) {
                (Part::Literal(s), _) => out.push_str(s),
                (Part::Patient, Some(r)) => out.push_str(&encode(&r.patient, true)),
                (Part::Family, Some(r)) => out.push_str(&encode(&r.family, true)),
                (Part::Birthdate, Some(r)) => out.push_str(&encode(&r.birthdate, true)),
                (Part::Loinc, Some(r)) => out.push_str(&encode(pick(&r.loinc, rng), true)),
                (Part::Snomed, Some(r)) => out.push_str(&encode(pick(&r.snomed, rng), true)),
                (Part::Int(lo, hi), _) => {
                    let span = (hi - lo) as u64 + 1;
                    let v = *lo + (rng.next() % span) as i64;
                    out.push_str(&v.to_string());
                }
                (Part::Pick(list), _) => out.push_str(pick(list, rng)),
                (_, None) => {}
            }
        }
        out
    }
}

fn pick<'a>(list: &'a [String], rng: &mut Rng) -> &'a str {
    if list.is_empty() {
        ""
    } else {
        &list[rng.below(list.len())]
    }
}

/// Percent-encodes `s`: everything but unreserved characters when `strict` (a value),
/// else only what a URL's path and query cannot carry as is.
pub(crate) fn encode(s: &str, strict: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~".contains(&b)
            || (!strict && b"!$&'()*+,;=:@/?%".contains(&b));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn read_templates(path: &Path, only: &[String]) -> Result<Vec<Template>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let mut fields = line.split('\t');
        let (Some(name), Some(query)) = (fields.next(), fields.next()) else {
            bail!("{}: expected name<TAB>query[<TAB>p99 target ms]", at());
        };
        let target_ms = match fields.next().map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => Some(
                t.parse()
                    .with_context(|| format!("{}: the target is not a number", at()))?,
            ),
            None => None,
        };
        if only.is_empty() || only.iter().any(|o| o == name.trim()) {
            let mut tpl = Template::parse(name.trim(), query)?;
            tpl.target_ms = target_ms;
            out.push(tpl);
        }
    }
    if out.is_empty() {
        bail!("no queries to run in {}", path.display());
    }
    Ok(out)
}

pub(crate) fn read_values(path: &Path) -> Result<Vec<Row>> {
    let file = if path.is_dir() {
        path.join("values.tsv")
    } else {
        path.to_path_buf()
    };
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let list = |s: Option<&str>| -> Vec<String> {
        s.unwrap_or("")
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    let rows: Vec<Row> = text
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            Row {
                patient: f.next().unwrap_or("").to_string(),
                family: f.next().unwrap_or("").to_string(),
                birthdate: f.next().unwrap_or("").to_string(),
                loinc: list(f.next()),
                snomed: list(f.next()),
            }
        })
        .collect();
    if rows.is_empty() {
        bail!("{} lists no patients", file.display());
    }
    Ok(rows)
}

/// What the load generator reads of a search answer.
#[derive(Deserialize)]
struct Summary {
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    entry: Vec<EntrySummary>,
}

#[derive(Deserialize)]
struct EntrySummary {
    #[serde(default)]
    search: Option<SearchSummary>,
}

#[derive(Deserialize)]
struct SearchSummary {
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    with_total: u64,
    total_sum: u64,
    matches: u64,
    includes: u64,
    empty: u64,
    last_done: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.latencies.extend(o.latencies);
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.with_total += o.with_total;
        self.total_sum += o.total_sum;
        self.matches += o.matches;
        self.includes += o.includes;
        self.empty += o.empty;
        self.last_done = self.last_done.max(o.last_done);
    }

    fn error(&mut self, recording: bool, what: String) {
        if recording {
            self.errors += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

struct Outcome {
    name: String,
    target_ms: Option<f64>,
    requests: usize,
    secs: f64,
    tally: Tally,
}

pub async fn run(load: LoadArgs, args: SearchArgs) -> Result<()> {
    let t = Arc::new(parse_base(&load.base, load.token.as_deref())?);
    let mut templates = read_templates(&args.queries, &args.only)?;
    let rows = match &args.values {
        Some(p) => read_values(p)?,
        None => Vec::new(),
    };
    for tpl in &mut templates {
        if !tpl.needs_row() {
            continue;
        }
        tpl.rows = (0..rows.len()).filter(|&i| tpl.fits(&rows[i])).collect();
        if tpl.rows.is_empty() {
            bail!(
                "query {} needs patient values: give --values (the values.tsv of `oxehr-load synth`) with matching patients",
                tpl.name
            );
        }
    }
    let rows = Arc::new(rows);
    println!(
        "search: {} queries, {} clients, {} s each after {} s warm-up, {} patients in the value pool",
        templates.len(),
        load.clients,
        load.seconds,
        args.warmup,
        rows.len()
    );
    let mut outcomes = Vec::new();
    for (qi, tpl) in templates.into_iter().enumerate() {
        let tpl = Arc::new(tpl);
        let o = run_one(&t, &tpl, &rows, &load, &args, qi as u64).await?;
        print_line(&o, load.clients);
        if let Some(e) = &o.tally.first_error {
            println!("  first error: {e}");
        }
        outcomes.push(o);
    }
    println!();
    println!("| query | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | p99 target | errors | mean total | mean matches | mean included | empty |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for o in &outcomes {
        let l = &o.tally.latencies;
        let ok = o.requests.max(1) as f64;
        let target = match (o.target_ms, l.is_empty()) {
            (Some(t), false) if percentile_ms(l, 0.99) < t => format!("< {t} ms: met"),
            (Some(t), false) => format!("< {t} ms: **missed**"),
            (Some(t), true) => format!("< {t} ms"),
            (None, _) => String::new(),
        };
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} |",
            o.name,
            o.requests,
            o.requests as f64 / o.secs,
            ms(l, 0.50),
            ms(l, 0.90),
            ms(l, 0.99),
            ms(l, 1.0),
            target,
            o.tally.errors,
            mean_total(&o.tally),
            o.tally.matches as f64 / ok,
            o.tally.includes as f64 / ok,
            o.tally.empty
        );
    }
    Ok(())
}

/// A percentile for the table: `-` when nothing was measured.
fn ms(sorted_us: &[u32], p: f64) -> String {
    if sorted_us.is_empty() {
        "-".into()
    } else {
        format!("{:.2}", percentile_ms(sorted_us, p))
    }
}

fn mean_total(t: &Tally) -> String {
    if t.with_total == 0 {
        "-".into()
    } else {
        format!("{:.1}", t.total_sum as f64 / t.with_total as f64)
    }
}

fn print_line(o: &Outcome, clients: usize) {
    let l = &o.tally.latencies;
    let ok = o.requests.max(1) as f64;
    println!(
        "{}: {} requests in {:.1} s = {:.0}/s with {} clients; latency ms p50 {} p90 {} p99 {} max {}; {} errors; mean total {}, matches {:.1}, included {:.1}; {} empty",
        o.name,
        o.requests,
        o.secs,
        o.requests as f64 / o.secs,
        clients,
        ms(l, 0.50),
        ms(l, 0.90),
        ms(l, 0.99),
        ms(l, 1.0),
        o.tally.errors,
        mean_total(&o.tally),
        o.tally.matches as f64 / ok,
        o.tally.includes as f64 / ok,
        o.tally.empty
    );
}

async fn run_one(
    t: &Arc<Target>,
    tpl: &Arc<Template>,
    rows: &Arc<Vec<Row>>,
    load: &LoadArgs,
    args: &SearchArgs,
    qi: u64,
) -> Result<Outcome> {
    println!("{}: {}", tpl.name, tpl.text);
    let record_from = Instant::now() + Duration::from_secs(args.warmup);
    let deadline = record_from + Duration::from_secs(load.seconds);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut tasks = Vec::new();
    for c in 0..load.clients {
        let (t, tpl, rows) = (t.clone(), tpl.clone(), rows.clone());
        let seed = args.seed ^ (qi << 32) ^ (c as u64 + 1);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::seeded(seed);
            let mut tally = Tally::default();
            let mut sender = connect(&t.host).await?;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let path = tpl.fill(&rows, &mut rng);
                let req = get(&t, &path)?;
                let start = Instant::now();
                let answer = tokio::time::timeout(timeout, send(&mut sender, req)).await;
                let us = micros_since(start);
                // A request counts when it ends after the warm-up (so a query slower than
                // the warm-up still gets measured); none starts after the deadline.
                let recording = Instant::now() >= record_from;
                match answer {
                    Ok(Ok((200, body))) => match serde_json::from_slice::<Summary>(&body) {
                        Ok(s) if recording => {
                            tally.latencies.push(us);
                            tally.last_done = Some(Instant::now());
                            if let Some(total) = s.total {
                                tally.with_total += 1;
                                tally.total_sum += total;
                            }
                            let included = s
                                .entry
                                .iter()
                                .filter(|e| {
                                    e.search.as_ref().and_then(|s| s.mode.as_deref())
                                        == Some("include")
                                })
                                .count() as u64;
                            let matches = s.entry.len() as u64 - included;
                            tally.matches += matches;
                            tally.includes += included;
                            if matches == 0 {
                                tally.empty += 1;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tally.error(recording, format!("200 for {path} but not a Bundle: {e}"))
                        }
                    },
                    Ok(Ok((status, body))) => {
                        let text = String::from_utf8_lossy(&body);
                        let text: String = text.chars().take(600).collect();
                        tally.error(recording, format!("{status} for {path}: {text}"));
                    }
                    Ok(Err(e)) => {
                        tally.error(recording, format!("{path}: {e:#}"));
                        sender = connect(&t.host).await?;
                    }
                    Err(_) => {
                        tally.error(
                            recording,
                            format!("{path}: no answer in {} s", timeout.as_secs()),
                        );
                        sender = connect(&t.host).await?;
                    }
                }
            }
            Ok::<Tally, anyhow::Error>(tally)
        }));
    }
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await??);
    }
    tally.latencies.sort_unstable();
    let secs = tally
        .last_done
        .map_or(load.seconds as f64, |l| {
            l.saturating_duration_since(record_from).as_secs_f64()
        })
        .max(1e-3);
    Ok(Outcome {
        name: tpl.name.clone(),
        target_ms: tpl.target_ms,
        requests: tally.latencies.len(),
        secs,
        tally,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_encode() {
        let t = Template::parse(
            "q",
            "Observation?patient={patient}&code=http://loinc.org|{loinc}&value={int:5-5}&x={pick:a b}",
        )
        .expect("parses");
        let rows = vec![Row {
            patient: "p1".into(),
            family: "Núñez".into(),
            birthdate: "1970-01-01".into(),
            loinc: vec!["29463-7".into()],
            snomed: vec![],
        }];
        let mut t = t;
        t.rows = vec![0];
        let mut rng = Rng::seeded(1);
        assert_eq!(
            t.fill(&rows, &mut rng),
            "/Observation?patient=p1&code=http://loinc.org%7C29463-7&value=5&x=a%20b"
        );
        let f = Template::parse("f", "Patient?family={family}").expect("parses");
        let f = Template { rows: vec![0], ..f };
        assert_eq!(f.fill(&rows, &mut rng), "/Patient?family=N%C3%BA%C3%B1ez");
        assert!(Template::parse("bad", "Patient?x={nope}").is_err());
    }
}
