//! `oxehr-load --base http://127.0.0.1:8080 pages --user U --password P --page SPEC…`:
//! latency and weight of the web pages (`crates/web`).
//!
//! Each client signs in once through the sign-in form, as a browser does: `GET /` for
//! the form and its double-submit token (the `oxehr_csrf` cookie), `POST /sign-in`, which
//! sets the `oxehr_session` cookie; those two are the only cookies the pages use. It reads
//! its session's form token from the hidden `csrf` field of the home page. Then each page
//! runs on its own, like `search`'s queries: the clients request it back to back on their
//! keep-alive connections for `--warmup` seconds (unrecorded) and `--seconds` seconds
//! (recorded: the requests that end after the warm-up), keeping their sessions from one
//! page to the next.
//!
//! A page is `[NAME=]PATH` (a GET) or `[NAME=]POST PATH FORM` (a form post, to which
//! `csrf=<the session's form token>` is added), PATH relative to `--base` (the server's
//! root). PATH and FORM may use `search`'s placeholders (`{patient}`, `{family}`,
//! `{birthdate}`, `{loinc}`, `{snomed}`, `{int:LO-HI}`, `{pick:a,b}`), drawn once per
//! request from `--values` (the `values.tsv` of `synth`). Every answer must be 200:
//! others are counted by status and the first one is shown. The bytes of each answer's
//! body are reported: a page's weight.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Args;
use http_body_util::Full;
use hyper::{HeaderMap, Method};

use crate::http::{
    connect, micros_since, parse_base, percentile_ms, request, send_full, Rng, Sender, Target,
};
use crate::search::{encode, read_values, Row, Template};
use crate::LoadArgs;

const SESSION_COOKIE: &str = "oxehr_session";
const CSRF_COOKIE: &str = "oxehr_csrf";
const CSRF_FIELD: &str = "csrf";

#[derive(Debug, Args)]
pub struct PagesArgs {
    /// The account to sign in as (a clinician or nurse for the chart pages).
    #[arg(long)]
    pub user: String,
    /// Its password.
    #[arg(long, env = "OXEHR_LOAD_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Its authenticator code, if the account needs one (valid for 30 s: the clients
    /// sign in at once).
    #[arg(long, default_value = "")]
    pub totp: String,
    /// A page to measure (repeatable): `[NAME=]PATH` or `[NAME=]POST PATH FORM`.
    #[arg(long = "page", required = true)]
    pub pages: Vec<String>,
    /// The values.tsv that `synth` wrote (or its directory), for placeholders.
    #[arg(long)]
    pub values: Option<PathBuf>,
    /// Unrecorded seconds before each page's recorded run.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Seed of the values' choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds after which a request is abandoned and counted as an error.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

/// One page to request.
#[derive(Debug)]
struct PageSpec {
    name: String,
    method: Method,
    path: Template,
    form: Option<Template>,
    /// Rows of the values a request may draw (empty when it needs none).
    rows: Vec<usize>,
}

impl PageSpec {
    fn parse(spec: &str) -> Result<PageSpec> {
        let spec = spec.trim();
        let plain = |s: &str| s.starts_with('/') || s.starts_with("GET ") || s.starts_with("POST ");
        let (name, rest) = match spec.split_once('=') {
            Some((n, r)) if !plain(spec) && !n.is_empty() && !n.contains(' ') => (n, r.trim()),
            _ => (spec, spec),
        };
        let (method, rest) = if let Some(r) = rest.strip_prefix("POST ") {
            (Method::POST, r.trim_start())
        } else {
            (
                Method::GET,
                rest.strip_prefix("GET ").unwrap_or(rest).trim_start(),
            )
        };
        let (path, form) = match rest.split_once(' ') {
            Some((p, f)) if method == Method::POST => (p, Some(f.trim())),
            Some(_) => bail!("page {spec:?}: only a POST has a form after its path"),
            None => (rest, (method == Method::POST).then_some("")),
        };
        if !path.starts_with('/') {
            bail!("page {spec:?}: the path must start with '/'");
        }
        Ok(PageSpec {
            name: name.to_string(),
            method,
            path: Template::parse(name, path)?,
            form: form.map(|f| Template::parse(name, f)).transpose()?,
            rows: Vec::new(),
        })
    }

    fn needs_row(&self) -> bool {
        self.path.needs_row() || self.form.as_ref().is_some_and(Template::needs_row)
    }

    fn fits(&self, row: &Row) -> bool {
        self.path.fits(row) && self.form.as_ref().is_none_or(|f| f.fits(row))
    }

    /// The path and the form body (without the form token) of one request.
    fn fill(&self, rows: &[Row], rng: &mut Rng) -> (String, Option<String>) {
        let row = (!self.rows.is_empty()).then(|| &rows[self.rows[rng.below(self.rows.len())]]);
        let path = self.path.fill_with(row, rng);
        let form = self.form.as_ref().map(|f| f.fill_with(row, rng));
        (path, form)
    }
}

/// A signed-in client: its connection, session cookie and form token.
struct Client {
    sender: Sender,
    session: String,
    csrf: String,
}

/// The cookies a response sets (`name`, `value`).
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let pair = v.split(';').next()?.trim();
            let (n, v) = pair.split_once('=')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The value of the hidden input `name` of a page.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

/// An `application/x-www-form-urlencoded` body.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, true), encode(v, true)))
        .collect::<Vec<_>>()
        .join("&")
}

fn page_request(
    t: &Target,
    method: Method,
    path: &str,
    cookie: &str,
    body: Option<String>,
) -> Result<hyper::Request<Full<Bytes>>> {
    let mut b = request(t, method, path)
        .header("accept", "text/html")
        .header("cookie", cookie);
    if body.is_some() {
        b = b.header("content-type", "application/x-www-form-urlencoded");
    }
    Ok(b.body(Full::new(Bytes::from(body.unwrap_or_default())))?)
}

/// Signs in through the sign-in form on a new connection.
async fn sign_in(t: &Target, args: &PagesArgs) -> Result<Client> {
    let mut sender = connect(&t.host).await?;
    let (status, headers, _) =
        send_full(&mut sender, page_request(t, Method::GET, "/", "", None)?).await?;
    let token = set_cookies(&headers)
        .into_iter()
        .find(|(n, _)| n == CSRF_COOKIE)
        .map(|(_, v)| v)
        .with_context(|| format!("GET / answered {status} without the {CSRF_COOKIE} cookie"))?;
    let body = form(&[
        ("username", &args.user),
        ("password", &args.password),
        ("totp", &args.totp),
        (CSRF_FIELD, &token),
    ]);
    let cookie = format!("{CSRF_COOKIE}={token}");
    let req = page_request(t, Method::POST, "/sign-in", &cookie, Some(body))?;
    let (status, headers, body) = send_full(&mut sender, req).await?;
    let Some(session) = set_cookies(&headers)
        .into_iter()
        .find(|(n, v)| n == SESSION_COOKIE && !v.is_empty())
        .map(|(_, v)| v)
    else {
        let text = String::from_utf8_lossy(&body);
        // The sign-in page says why in its alert.
        let why = text
            .split("role=\"alert\">")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap_or("");
        bail!(
            "signing in as {} answered {status} without a session: {why}",
            args.user
        );
    };
    let cookie = format!("{SESSION_COOKIE}={session}");
    let (status, _, body) = send_full(
        &mut sender,
        page_request(t, Method::GET, "/", &cookie, None)?,
    )
    .await?;
    let csrf = hidden_field(&String::from_utf8_lossy(&body), CSRF_FIELD)
        .with_context(|| format!("the home page ({status}) has no form token"))?;
    Ok(Client {
        sender,
        session,
        csrf,
    })
}

#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
    bytes_min: u64,
    bytes_max: u64,
    bytes_sum: u64,
    last_done: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        if o.latencies.is_empty() {
            // Nothing recorded: its byte counts are not set.
        } else if self.latencies.is_empty() {
            (self.bytes_min, self.bytes_max) = (o.bytes_min, o.bytes_max);
        } else {
            self.bytes_min = self.bytes_min.min(o.bytes_min);
            self.bytes_max = self.bytes_max.max(o.bytes_max);
        }
        self.bytes_sum += o.bytes_sum;
        self.latencies.extend(o.latencies);
        for (k, n) in o.errors {
            *self.errors.entry(k).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.last_done = self.last_done.max(o.last_done);
    }

    fn ok(&mut self, us: u32, bytes: u64) {
        if self.latencies.is_empty() {
            (self.bytes_min, self.bytes_max) = (bytes, bytes);
        }
        self.bytes_min = self.bytes_min.min(bytes);
        self.bytes_max = self.bytes_max.max(bytes);
        self.bytes_sum += bytes;
        self.latencies.push(us);
        self.last_done = Some(Instant::now());
    }

    fn error(&mut self, recording: bool, kind: String, what: String) {
        if recording {
            *self.errors.entry(kind).or_default() += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }

    fn error_text(&self) -> String {
        if self.errors.is_empty() {
            return "0".into();
        }
        self.errors
            .iter()
            .map(|(k, n)| format!("{n} × {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn bytes_text(&self) -> String {
        if self.latencies.is_empty() {
            "-".into()
        } else if self.bytes_min == self.bytes_max {
            self.bytes_min.to_string()
        } else {
            format!(
                "{}–{} (mean {:.0})",
                self.bytes_min,
                self.bytes_max,
                self.bytes_sum as f64 / self.latencies.len() as f64
            )
        }
    }
}

pub async fn run(load: LoadArgs, args: PagesArgs) -> Result<()> {
    // The pages use the session cookie, never a bearer token.
    let t = Arc::new(parse_base(&load.base, None)?);
    let rows = match &args.values {
        Some(p) => read_values(p)?,
        None => Vec::new(),
    };
    let mut pages = Vec::new();
    for spec in &args.pages {
        let mut page = PageSpec::parse(spec)?;
        if page.needs_row() {
            page.rows = (0..rows.len()).filter(|&i| page.fits(&rows[i])).collect();
            if page.rows.is_empty() {
                bail!(
                    "page {} needs patient values: give --values with matching patients",
                    page.name
                );
            }
        }
        pages.push(Arc::new(page));
    }
    let rows = Arc::new(rows);
    let args = Arc::new(args);
    let mut signing = Vec::new();
    for _ in 0..load.clients {
        let (t, args) = (t.clone(), args.clone());
        signing.push(tokio::spawn(async move { sign_in(&t, &args).await }));
    }
    let mut clients = Vec::new();
    for s in signing {
        clients.push(s.await??);
    }
    println!(
        "pages: {} pages, {} clients signed in as {}, {} s each after {} s warm-up",
        pages.len(),
        load.clients,
        args.user,
        load.seconds,
        args.warmup
    );
    let mut outcomes = Vec::new();
    for (pi, page) in pages.iter().enumerate() {
        let (back, tally, secs) =
            run_one(&t, page, &rows, clients, &load, &args, pi as u64).await?;
        clients = back;
        print_line(&page.name, &tally, secs, load.clients);
        if let Some(e) = &tally.first_error {
            println!("  first error: {e}");
        }
        outcomes.push((page.name.clone(), tally, secs));
    }
    println!();
    println!(
        "| page | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | body bytes | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for (name, tally, secs) in &outcomes {
        let l = &tally.latencies;
        println!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            l.len(),
            l.len() as f64 / secs,
            percentile_ms(l, 0.50),
            percentile_ms(l, 0.90),
            percentile_ms(l, 0.99),
            percentile_ms(l, 1.0),
            tally.bytes_text(),
            tally.error_text()
        );
    }
    let failed: u64 = outcomes
        .iter()
        .flat_map(|(_, t, _)| t.errors.values())
        .sum();
    if failed > 0 {
        bail!("{failed} answers were not 200");
    }
    Ok(())
}

fn print_line(name: &str, tally: &Tally, secs: f64, clients: usize) {
    let l = &tally.latencies;
    println!(
        "{name}: {} requests in {secs:.1} s = {:.0}/s with {clients} clients; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; body bytes {}; errors {}",
        l.len(),
        l.len() as f64 / secs,
        percentile_ms(l, 0.50),
        percentile_ms(l, 0.90),
        percentile_ms(l, 0.99),
        percentile_ms(l, 1.0),
        tally.bytes_text(),
        tally.error_text()
    );
}

/// One page's run: the clients (given back afterwards), what they measured, and the
/// recorded seconds.
async fn run_one(
    t: &Arc<Target>,
    page: &Arc<PageSpec>,
    rows: &Arc<Vec<Row>>,
    clients: Vec<Client>,
    load: &LoadArgs,
    args: &PagesArgs,
    pi: u64,
) -> Result<(Vec<Client>, Tally, f64)> {
    let record_from = Instant::now() + Duration::from_secs(args.warmup);
    let deadline = record_from + Duration::from_secs(load.seconds);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut tasks = Vec::new();
    for (c, mut client) in clients.into_iter().enumerate() {
        let (t, page, rows) = (t.clone(), page.clone(), rows.clone());
        let seed = args.seed ^ (pi << 32) ^ (c as u64 + 1);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::seeded(seed);
            let mut tally = Tally::default();
            let cookie = format!("{SESSION_COOKIE}={}", client.session);
            while Instant::now() < deadline {
                let (path, body) = page.fill(&rows, &mut rng);
                let body = body.map(|f| {
                    let token = form(&[(CSRF_FIELD, &client.csrf)]);
                    if f.is_empty() {
                        token
                    } else {
                        format!("{f}&{token}")
                    }
                });
                let req = page_request(&t, page.method.clone(), &path, &cookie, body)?;
                let start = Instant::now();
                let answer =
                    tokio::time::timeout(timeout, send_full(&mut client.sender, req)).await;
                let us = micros_since(start);
                let recording = Instant::now() >= record_from;
                match answer {
                    Ok(Ok((200, _, body))) => {
                        if recording {
                            tally.ok(us, body.len() as u64);
                        }
                    }
                    Ok(Ok((status, headers, body))) => {
                        let to = headers
                            .get(hyper::header::LOCATION)
                            .and_then(|v| v.to_str().ok())
                            .map(|l| format!(" to {l}"))
                            .unwrap_or_default();
                        let text: String =
                            String::from_utf8_lossy(&body).chars().take(300).collect();
                        tally.error(
                            recording,
                            status.to_string(),
                            format!("{status}{to} for {path}: {text}"),
                        );
                    }
                    Ok(Err(e)) => {
                        tally.error(recording, "connection".into(), format!("{path}: {e:#}"));
                        client.sender = connect(&t.host).await?;
                    }
                    Err(_) => {
                        tally.error(
                            recording,
                            "timeout".into(),
                            format!("{path}: no answer in {} s", timeout.as_secs()),
                        );
                        client.sender = connect(&t.host).await?;
                    }
                }
            }
            Ok::<(Client, Tally), anyhow::Error>((client, tally))
        }));
    }
    let mut back = Vec::new();
    let mut tally = Tally::default();
    for task in tasks {
        let (client, t) = task.await??;
        back.push(client);
        tally.merge(t);
    }
    tally.latencies.sort_unstable();
    let secs = tally
        .last_done
        .map_or(load.seconds as f64, |l| {
            l.saturating_duration_since(record_from).as_secs_f64()
        })
        .max(1e-3);
    Ok((back, tally, secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_with_names_methods_and_forms() {
        let p = PageSpec::parse("/patients/abc/trend?code=http%3A//loinc.org%7C29463-7")
            .expect("parses");
        assert_eq!(p.method, Method::GET);
        assert_eq!(
            p.name,
            "/patients/abc/trend?code=http%3A//loinc.org%7C29463-7"
        );
        assert!(p.form.is_none());
        let mut rng = Rng::seeded(1);
        assert_eq!(
            p.fill(&[], &mut rng).0,
            "/patients/abc/trend?code=http%3A//loinc.org%7C29463-7"
        );

        let p = PageSpec::parse("summary=/patients/abc").expect("parses");
        assert_eq!(
            (p.name.as_str(), p.method.clone()),
            ("summary", Method::GET)
        );

        let p = PageSpec::parse("search=POST /patients name={family}").expect("parses");
        assert_eq!(
            (p.name.as_str(), p.method.clone()),
            ("search", Method::POST)
        );
        assert!(p.needs_row());
        let rows = vec![Row {
            patient: "p1".into(),
            family: "Núñez".into(),
            birthdate: "1970-01-01".into(),
            loinc: vec![],
            snomed: vec![],
        }];
        let p = PageSpec { rows: vec![0], ..p };
        assert_eq!(
            p.fill(&rows, &mut rng),
            (
                "/patients".to_string(),
                Some("name=N%C3%BA%C3%B1ez".to_string())
            )
        );

        let p = PageSpec::parse("POST /patients").expect("parses");
        assert_eq!(p.fill(&[], &mut rng).1.as_deref(), Some(""));
        assert!(PageSpec::parse("GET /patients name=x").is_err());
        assert!(PageSpec::parse("patients").is_err());
    }

    #[test]
    fn cookies_form_tokens_and_forms() {
        let mut h = HeaderMap::new();
        h.append(
            hyper::header::SET_COOKIE,
            "oxehr_session=abc; HttpOnly; SameSite=Strict; Path=/"
                .parse()
                .expect("header"),
        );
        h.append(
            hyper::header::SET_COOKIE,
            "oxehr_csrf=; Max-Age=0; Path=/".parse().expect("header"),
        );
        assert_eq!(
            set_cookies(&h),
            [
                ("oxehr_session".to_string(), "abc".to_string()),
                ("oxehr_csrf".to_string(), String::new())
            ]
        );
        let html = r#"<form><input type="hidden" name="csrf" value="f00d"><button>"#;
        assert_eq!(hidden_field(html, "csrf").as_deref(), Some("f00d"));
        assert_eq!(hidden_field(html, "other"), None);
        assert_eq!(
            form(&[("username", "dr a"), ("password", "p&w=1")]),
            "username=dr%20a&password=p%26w%3D1"
        );
    }
}
