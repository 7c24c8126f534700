//! Runs a table of search cases against the server: each query is followed through every
//! `next` link and what came back is compared with what the oracle expects. Every case
//! runs; the failures are returned together.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use super::data::Data;
use crate::common::{split, TestServer};

/// A sort key value of one resource.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Key {
    S(String),
    T(i64),
}

/// The sort keys of a resource, one per `_sort` key (`None`: the resource lacks it).
pub type KeyFn = Box<dyn Fn(&Value) -> Vec<Option<Key>>>;

pub enum Expect {
    /// Exactly these matches; `total`, where given, is their number.
    Set(BTreeSet<String>),
    /// All of `must`, and otherwise only members of `may` (for `ap`, whose tolerance the
    /// spec leaves to the server).
    Fuzzy {
        must: BTreeSet<String>,
        may: BTreeSet<String>,
    },
    /// These matches, and exactly these resources with `search.mode = include`.
    Include {
        matches: BTreeSet<String>,
        included: BTreeSet<String>,
    },
    /// These matches in the order of the keys (descending where `desc`); resources that
    /// lack a key come after those that have it.
    Sorted {
        matches: BTreeSet<String>,
        key: KeyFn,
        desc: Vec<bool>,
    },
    /// These matches and no `total` on any page.
    NoTotal(BTreeSet<String>),
    /// A `total` of this and no entries.
    CountOnly(usize),
    /// These matches, each carrying only `allowed` elements (and resourceType, id, meta),
    /// including every element of `required` the stored resource has.
    Elements {
        matches: BTreeSet<String>,
        allowed: Vec<&'static str>,
        required: Vec<&'static str>,
    },
    /// The `previous` link of page 2 gives page 1 again.
    Previous,
    /// 400 with an OperationOutcome that mentions this text.
    Invalid(String),
    /// 400 with an OperationOutcome, or 200 with no matches.
    InvalidOrEmpty,
}

impl Expect {
    fn count(&self) -> String {
        match self {
            Expect::Include { matches, included } => {
                format!("{}+{} included", matches.len(), included.len())
            }
            Expect::Set(s)
            | Expect::NoTotal(s)
            | Expect::Sorted { matches: s, .. }
            | Expect::Elements { matches: s, .. } => s.len().to_string(),
            Expect::Fuzzy { must, may } => format!("{}..{}", must.len(), must.len() + may.len()),
            Expect::CountOnly(n) => n.to_string(),
            Expect::Previous => "-".into(),
            Expect::Invalid(_) => "400".into(),
            Expect::InvalidOrEmpty => "400|0".into(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Method {
    Get,
    /// GET with `Prefer: handling=lenient`.
    Lenient,
    /// `POST [type]/_search` with the parameters as a form body.
    Post,
}

pub struct Case {
    pub name: String,
    pub query: String,
    pub method: Method,
    pub expect: Expect,
    /// The case means to expect no match, or every resource of its type.
    pub trivial: bool,
}

impl Case {
    pub fn new(name: impl Into<String>, query: impl Into<String>, expect: Expect) -> Case {
        Case {
            name: name.into(),
            query: query.into(),
            method: Method::Get,
            expect,
            trivial: false,
        }
    }

    pub fn set(name: impl Into<String>, query: impl Into<String>, e: BTreeSet<String>) -> Case {
        Case::new(name, query, Expect::Set(e))
    }

    pub fn with(mut self, method: Method) -> Case {
        self.method = method;
        self
    }

    /// Marks a case that means to expect no match or every resource of its type.
    pub fn trivial(mut self) -> Case {
        self.trivial = true;
        self
    }
}

/// Percent-encodes a search value, keeping the characters search syntax gives meaning to.
pub fn enc(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~|$,:/*".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What the pages of one search returned.
#[derive(Default)]
pub struct Fetched {
    pub status: u16,
    pub first: Value,
    pub matches: Vec<String>,
    pub resources: Vec<Value>,
    pub includes: BTreeSet<String>,
    pub totals: Vec<Option<u64>>,
    pub entries: usize,
    pub problems: Vec<String>,
}

fn link<'a>(bundle: &'a Value, relation: &str) -> Option<&'a str> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)?["url"]
        .as_str()
}

fn entry_ref(e: &Value) -> String {
    let r = &e["resource"];
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap_or("?"),
        r["id"].as_str().unwrap_or("?")
    )
}

/// The URL of a query relative to the base (`?…` is a system-level search).
fn full_url(s: &TestServer, query: &str) -> String {
    if query.starts_with('?') {
        format!("{}{query}", s.base)
    } else {
        s.url(query)
    }
}

async fn first_page(s: &TestServer, query: &str, method: Method) -> (u16, Value) {
    let req = match method {
        Method::Get => s.client.get(full_url(s, query)),
        Method::Lenient => s
            .client
            .get(full_url(s, query))
            .header("prefer", "handling=lenient"),
        Method::Post => {
            let (path, params) = query.split_once('?').unwrap_or((query, ""));
            s.client
                .post(s.url(&format!("{path}/_search")))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(params.to_string())
        }
    };
    let (status, body, _) = split(req.send().await.expect("request")).await;
    (status, body)
}

/// The matches a case expects, where it names them.
fn expected_set(e: &Expect) -> Option<&BTreeSet<String>> {
    match e {
        Expect::Set(s)
        | Expect::NoTotal(s)
        | Expect::Include { matches: s, .. }
        | Expect::Sorted { matches: s, .. }
        | Expect::Elements { matches: s, .. } => Some(s),
        _ => None,
    }
}

/// Cases whose expected matches are none or every resource of the type cannot tell a
/// right answer from a trivial one: say so, so that each such case is a choice.
fn trivial(d: &Data, c: &Case) -> Option<String> {
    let want = expected_set(&c.expect)?;
    let ty = c.query.split(['?', '/']).next().unwrap_or("");
    if want.is_empty() {
        return Some("expects no match".into());
    }
    if !ty.is_empty() && want.len() == d.count(ty) {
        return Some(format!("expects every {ty}"));
    }
    None
}

/// Runs a search and follows its `next` links to the end.
pub async fn fetch(s: &TestServer, query: &str, method: Method) -> Fetched {
    let (status, body) = first_page(s, query, method).await;
    let mut f = Fetched {
        status,
        first: body.clone(),
        ..Default::default()
    };
    if status != 200 {
        return f;
    }
    let mut seen_urls = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut page = body;
    for n in 1.. {
        if page["resourceType"] != "Bundle" || page["type"] != "searchset" {
            f.problems
                .push(format!("page {n} is not a searchset Bundle"));
            break;
        }
        f.totals.push(page["total"].as_u64());
        for e in page["entry"].as_array().into_iter().flatten() {
            f.entries += 1;
            let r = entry_ref(e);
            match e["search"]["mode"].as_str() {
                Some("include") => {
                    f.includes.insert(r);
                }
                Some("outcome") => {}
                _ => {
                    if !seen.insert(r.clone()) {
                        f.problems.push(format!("{r} again on page {n}"));
                    }
                    f.matches.push(r);
                    f.resources.push(e["resource"].clone());
                }
            }
        }
        let Some(next) = link(&page, "next") else {
            break;
        };
        if !seen_urls.insert(next.to_string()) || n > 3000 {
            f.problems.push(format!("next link loops at page {n}"));
            break;
        }
        let mut req = s.client.get(next);
        if method == Method::Lenient {
            req = req.header("prefer", "handling=lenient");
        }
        let (st, body, _) = split(req.send().await.expect("next")).await;
        if st != 200 {
            f.problems
                .push(format!("page {} answered {st}: {body}", n + 1));
            break;
        }
        page = body;
    }
    f
}

fn diff(got: &BTreeSet<String>, want: &BTreeSet<String>) -> Option<String> {
    if got == want {
        return None;
    }
    let missing: Vec<_> = want.difference(got).take(3).collect();
    let extra: Vec<_> = got.difference(want).take(3).collect();
    Some(format!(
        "got {} want {}; missing {} e.g. {missing:?}; unexpected {} e.g. {extra:?}",
        got.len(),
        want.len(),
        want.difference(got).count(),
        got.difference(want).count()
    ))
}

/// A `total` is the number of matches, exactly up to `EXACT_TOTAL_UP_TO` of them; above
/// that, a search that did not ask for `_total=accurate` may carry an estimate, which is
/// never below it.
fn check_totals(f: &Fetched, n: usize) -> Option<String> {
    let n = n as u64;
    f.totals
        .iter()
        .flatten()
        .find(|t| {
            if n <= oxehr_records::EXACT_TOTAL_UP_TO {
                **t != n
            } else {
                **t < n
            }
        })
        .map(|t| format!("total {t}, want {n}"))
}

fn outcome_text(f: &Fetched) -> String {
    let body = f.first.to_string();
    format!("{} {}", f.status, &body[..body.len().min(300)])
}

/// Checks one case; `Err` says what was wrong.
async fn check(s: &TestServer, d: &Data, c: &Case) -> Result<(), String> {
    if let Expect::Previous = c.expect {
        return check_previous(s, &c.query).await;
    }
    let f = fetch(s, &c.query, c.method).await;
    match &c.expect {
        Expect::Invalid(text) => {
            let ok = f.status == 400
                && f.first["resourceType"] == "OperationOutcome"
                && f.first
                    .to_string()
                    .to_lowercase()
                    .contains(&text.to_lowercase());
            return if ok {
                Ok(())
            } else {
                Err(format!("want 400 naming {text:?}: {}", outcome_text(&f)))
            };
        }
        Expect::InvalidOrEmpty => {
            let ok = (f.status == 400 && f.first["resourceType"] == "OperationOutcome")
                || (f.status == 200 && f.matches.is_empty() && f.problems.is_empty());
            return if ok {
                Ok(())
            } else {
                Err(format!(
                    "want 400 or no matches: {} matches, {}",
                    f.matches.len(),
                    outcome_text(&f)
                ))
            };
        }
        _ => {}
    }
    if f.status != 200 {
        return Err(outcome_text(&f));
    }
    if let Some(p) = f.problems.first() {
        return Err(format!("paging: {p}"));
    }
    let got: BTreeSet<String> = f.matches.iter().cloned().collect();
    let mut errs = Vec::new();
    match &c.expect {
        Expect::Set(want) => {
            errs.extend(diff(&got, want));
            errs.extend(check_totals(&f, want.len()));
        }
        Expect::Fuzzy { must, may } => {
            let missing: Vec<_> = must.difference(&got).take(3).collect();
            let extra: Vec<_> = got
                .iter()
                .filter(|g| !must.contains(*g) && !may.contains(*g))
                .take(3)
                .collect();
            if !missing.is_empty() || !extra.is_empty() {
                errs.push(format!(
                    "got {}; missing {missing:?}; outside tolerance {extra:?}",
                    got.len()
                ));
            }
            errs.extend(check_totals(&f, got.len()));
        }
        Expect::Include { matches, included } => {
            errs.extend(diff(&got, matches));
            errs.extend(check_totals(&f, matches.len()));
            errs.extend(diff(&f.includes, included).map(|e| format!("included: {e}")));
        }
        Expect::Sorted { matches, key, desc } => {
            errs.extend(diff(&got, matches));
            errs.extend(check_totals(&f, matches.len()));
            errs.extend(check_order(d, &f.matches, key, desc));
        }
        Expect::NoTotal(want) => {
            errs.extend(diff(&got, want));
            if f.totals.iter().any(Option::is_some) {
                errs.push("a page has a total".into());
            }
        }
        Expect::CountOnly(n) => {
            if f.entries > 0 {
                errs.push(format!("{} entries", f.entries));
            }
            if f.totals.first().copied().flatten() != Some(*n as u64) {
                errs.push(format!("total {:?}, want {n}", f.totals.first()));
            }
        }
        Expect::Elements {
            matches,
            allowed,
            required,
        } => {
            errs.extend(diff(&got, matches));
            errs.extend(check_elements(d, &f, allowed, required));
        }
        Expect::Previous | Expect::Invalid(_) | Expect::InvalidOrEmpty => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

fn check_order(d: &Data, order: &[String], key: &KeyFn, desc: &[bool]) -> Option<String> {
    let keys: Vec<Vec<Option<Key>>> = order
        .iter()
        .map(|r| d.res.get(r).map(key).unwrap_or_default())
        .collect();
    for (i, w) in keys.windows(2).enumerate() {
        for (k, dsc) in desc.iter().enumerate() {
            let (a, b) = (
                &w[0].get(k).cloned().flatten(),
                &w[1].get(k).cloned().flatten(),
            );
            let ord = match (a, b) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(a), Some(b)) => {
                    let o = a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal);
                    if *dsc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            match ord {
                std::cmp::Ordering::Less => break,
                std::cmp::Ordering::Equal => continue,
                std::cmp::Ordering::Greater => {
                    return Some(format!(
                        "out of order at {}: {} {:?} before {} {:?}",
                        i + 1,
                        order[i],
                        w[0],
                        order[i + 1],
                        w[1]
                    ))
                }
            }
        }
    }
    None
}

fn check_elements(d: &Data, f: &Fetched, allowed: &[&str], required: &[&str]) -> Option<String> {
    for r in &f.resources {
        let Some(obj) = r.as_object() else {
            return Some("entry without resource".into());
        };
        if let Some(k) = obj.keys().find(|k| {
            !["resourceType", "id", "meta"].contains(&k.as_str()) && !allowed.contains(&k.as_str())
        }) {
            return Some(format!(
                "{} carries {k}",
                entry_ref(&serde_json::json!({"resource": r}))
            ));
        }
        let reference = entry_ref(&serde_json::json!({ "resource": r }));
        let Some(stored) = d.res.get(&reference) else {
            return Some(format!("{reference} is not a loaded resource"));
        };
        if let Some(k) = required
            .iter()
            .find(|k| stored.get(**k).is_some() && obj.get(**k) != stored.get(**k))
        {
            return Some(format!("{reference} lacks or changed {k}"));
        }
    }
    None
}

async fn check_previous(s: &TestServer, query: &str) -> Result<(), String> {
    let ids = |b: &Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(entry_ref)
            .collect()
    };
    let (status, p1, _) = s.get(query).await;
    if status != 200 {
        return Err(format!("page 1: {status}"));
    }
    let next = link(&p1, "next").ok_or("page 1 has no next link")?;
    let (_, p2, _) = split(s.client.get(next).send().await.expect("next")).await;
    let prev = link(&p2, "previous")
        .or_else(|| link(&p2, "prev"))
        .ok_or("page 2 has no previous link")?;
    let (_, back, _) = split(s.client.get(prev).send().await.expect("prev")).await;
    if ids(&back) == ids(&p1) && !ids(&p1).is_empty() && ids(&p2) != ids(&p1) {
        Ok(())
    } else {
        Err(format!(
            "page 1 {:?}, previous of page 2 {:?}",
            ids(&p1),
            ids(&back)
        ))
    }
}

/// Runs every case; prints a line per case and returns the failures.
pub async fn run(s: &TestServer, d: &Data, label: &str, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    for c in cases {
        assert!(names.insert(c.name.clone()), "case name {} twice", c.name);
        let verdict = match trivial(d, c) {
            Some(why) if !c.trivial => Err(format!("the oracle {why}: the case cannot fail")),
            _ => check(s, d, c).await,
        };
        let line = format!(
            "{label} {} [{}] {} => {}",
            c.name,
            c.expect.count(),
            c.query,
            match &verdict {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("FAIL: {e}"),
            }
        );
        println!("{line}");
        if verdict.is_err() {
            failures.push(line);
        }
    }
    println!(
        "{label}: {} of {} cases pass",
        cases.len() - failures.len(),
        cases.len()
    );
    failures
}
