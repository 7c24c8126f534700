//! `Observation/$lastn` (FHIR R4 `OperationDefinition/Observation-lastn`): the most
//! recent `max` Observations of each code for one subject.
//!
//! The request is an ordinary Observation search run as the caller (so only what they
//! may see, audited as any search), sorted newest first; the grouping is the
//! operation's:
//! - codes are equal when a coding's system and code are; a text-only code groups by its
//!   text (case and spaces kept); an Observation with several codings joins every group
//!   any of them is in (equality is transitive);
//! - each group keeps its `max` most recent effective times, and every Observation that
//!   ties with the last one kept;
//! - the request must name a subject (`patient` or `subject`) and a `category` or a code
//!   parameter, as the operation requires.
//!
//! What one request may cost is bounded: at most [`MAX_SCANNED`] Observations are
//! considered; a subject with more, unfiltered, gets a clear error asking for a code or
//! category filter rather than a silently partial answer.

use std::collections::HashMap;

use oxehr_auth::Caller;
use oxehr_fhir::IssueCode;
use oxehr_store::StoredResource;
use serde_json::Value;

use crate::{query, Records, RecordsError};

/// The most Observations one `$lastn` reads.
pub const MAX_SCANNED: usize = 20_000;
/// The largest `max` accepted.
pub const MAX_PER_GROUP: usize = 1_000;

/// The search parameters that carry a code, any of which (or `category`) a request must
/// have.
const CODE_PARAMS: &[&str] = &[
    "code",
    "code-value-concept",
    "code-value-date",
    "code-value-quantity",
    "code-value-string",
    "combo-code",
    "combo-code-value-concept",
    "combo-code-value-quantity",
];

impl Records {
    /// `Observation/$lastn` with the request's decoded parameters (`max` among them).
    pub fn lastn(
        &self,
        who: &Caller,
        pairs: &[(String, String)],
        base_url: Option<&str>,
    ) -> Result<Vec<StoredResource>, RecordsError> {
        let mut max = 1usize;
        let mut search: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            let name = k.split(':').next().unwrap_or(k);
            match name {
                "max" => {
                    max = v
                        .parse::<usize>()
                        .ok()
                        .filter(|m| (1..=MAX_PER_GROUP).contains(m))
                        .ok_or_else(|| {
                            RecordsError::invalid(
                                IssueCode::Value,
                                format!("max must be a whole number from 1 to {MAX_PER_GROUP}"),
                            )
                        })?
                }
                "_sort" | "_count" | "_page" | "_total" | "_summary" | "_elements" => {
                    return Err(RecordsError::invalid(
                        IssueCode::NotSupported,
                        format!("$lastn sorts and groups itself; {name} is not taken"),
                    ))
                }
                _ => search.push((k.clone(), v.clone())),
            }
        }
        let has = |names: &[&str]| {
            search
                .iter()
                .any(|(k, _)| names.contains(&k.split(['.', ':']).next().unwrap_or(k)))
        };
        if !has(&["patient", "subject"]) {
            return Err(RecordsError::invalid(
                IssueCode::Required,
                "$lastn needs a subject: patient or subject",
            ));
        }
        if !has(&["category"]) && !has(CODE_PARAMS) {
            return Err(RecordsError::invalid(
                IssueCode::Required,
                "$lastn needs a category or a code parameter",
            ));
        }
        const PAGE: usize = 1000;
        let types = vec!["Observation".to_owned()];
        let mut found: Vec<StoredResource> = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut p = search.clone();
            p.push(("_sort".into(), "-date".into()));
            p.push(("_count".into(), PAGE.to_string()));
            if let Some(t) = &page {
                p.push(("_page".into(), t.clone()));
            }
            let q = query::parse(&types, &p, false, base_url)?;
            let result = self.search(who, &q, PAGE)?;
            found.extend(result.matches);
            if found.len() > MAX_SCANNED {
                return Err(RecordsError::invalid(
                    IssueCode::TooCostly,
                    format!(
                        "more than {MAX_SCANNED} Observations match; narrow the request with \
                         a code, category or date"
                    ),
                ));
            }
            match result.next {
                Some(t) => page = Some(t),
                None => break,
            }
        }
        let bodies: Vec<Value> = found
            .iter()
            .map(|r| {
                r.body
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or(Value::Null)
            })
            .collect();
        let keep = last_n(&bodies, max);
        Ok(found
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, r)| r)
            .collect())
    }
}

/// The keys an Observation's code groups by: `system|code` per coding, or `#text` for a
/// text-only code.
fn code_keys(obs: &Value) -> Vec<String> {
    let code = &obs["code"];
    let mut keys: Vec<String> = code["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let code = c["code"].as_str()?;
            Some(format!(
                "{}|{code}",
                c["system"].as_str().unwrap_or_default()
            ))
        })
        .collect();
    if keys.is_empty() {
        if let Some(t) = code["text"].as_str() {
            keys.push(format!("#{t}"));
        }
    }
    keys
}

/// When the Observation took effect, as text that sorts in time for the same offset
/// (the search has already ordered them; ties are compared by this).
fn effective(obs: &Value) -> Option<&str> {
    obs["effectiveDateTime"]
        .as_str()
        .or_else(|| obs["effectiveInstant"].as_str())
        .or_else(|| obs["effectivePeriod"]["start"].as_str())
        .or_else(|| obs["issued"].as_str())
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Which of `observations` (newest first) `$lastn` keeps with `max` per group: indexes.
pub fn last_n(observations: &[Value], max: usize) -> Vec<usize> {
    // Union-find over the code keys: two keys on one Observation are one group.
    let mut key_ids: HashMap<String, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    let obs_keys: Vec<Vec<usize>> = observations
        .iter()
        .map(|o| {
            code_keys(o)
                .into_iter()
                .map(|k| {
                    *key_ids.entry(k).or_insert_with(|| {
                        parent.push(parent.len());
                        parent.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    for keys in &obs_keys {
        for w in keys.windows(2) {
            let (a, b) = (find(&mut parent, w[0]), find(&mut parent, w[1]));
            if a != b {
                parent[a] = b;
            }
        }
    }
    // Per group: the distinct effective times taken so far.
    let mut taken: HashMap<usize, Vec<Option<&str>>> = HashMap::new();
    let mut out = Vec::new();
    for (i, keys) in obs_keys.iter().enumerate() {
        let Some(&first) = keys.first() else {
            continue;
        };
        let group = find(&mut parent, first);
        let when = effective(&observations[i]);
        let times = taken.entry(group).or_default();
        if times.contains(&when) {
            out.push(i);
        } else if times.len() < max {
            times.push(when);
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs(codes: &[&str], text: Option<&str>, when: &str) -> Value {
        let coding: Vec<Value> = codes
            .iter()
            .map(|c| json!({"system": "http://loinc.org", "code": c}))
            .collect();
        let mut code = json!({});
        if !coding.is_empty() {
            code["coding"] = json!(coding);
        }
        if let Some(t) = text {
            code["text"] = json!(t);
        }
        json!({"resourceType": "Observation", "code": code, "effectiveDateTime": when})
    }

    /// The number of groups in the operation's table: with `max` = 1000 every
    /// Observation is kept, so count groups by asking for one per group.
    fn groups(observations: &[Value]) -> usize {
        last_n(observations, 1).len()
    }

    #[test]
    fn grouping_follows_the_operations_table() {
        // OperationDefinition/Observation-lastn, the table of codes a, b, c.
        let t = ["2024-03-01", "2024-02-01", "2024-01-01"];
        assert_eq!(
            groups(&[
                obs(&["a"], None, t[0]),
                obs(&["b"], None, t[1]),
                obs(&["c"], None, t[2])
            ]),
            3
        );
        assert_eq!(
            groups(&[
                obs(&["a"], None, t[0]),
                obs(&["b"], None, t[1]),
                obs(&["a", "c"], None, t[2])
            ]),
            2
        );
        assert_eq!(
            groups(&[
                obs(&["a"], None, t[0]),
                obs(&["b"], None, t[1]),
                obs(&["a", "b"], None, t[2])
            ]),
            1
        );
        assert_eq!(
            groups(&[
                obs(&[], Some("textM"), t[0]),
                obs(&[], Some("Text"), t[1]),
                obs(&[], Some("t e x t"), t[2])
            ]),
            3
        );
    }

    #[test]
    fn keeps_max_per_group_and_ties() {
        // Newest first, as the search hands them over.
        let list = [
            obs(&["a"], None, "2024-05-01"),
            obs(&["b"], None, "2024-05-01"),
            obs(&["a"], None, "2024-04-01"),
            obs(&["a"], None, "2024-03-01"),
            obs(&["a"], None, "2024-03-01"),
            obs(&["a"], None, "2024-02-01"),
            obs(&["b"], None, "2024-01-01"),
        ];
        assert_eq!(last_n(&list, 1), [0, 1]);
        assert_eq!(last_n(&list, 2), [0, 1, 2, 6]);
        // The third and fourth most recent of "a" tie: both are returned.
        assert_eq!(last_n(&list, 3), [0, 1, 2, 3, 4, 6]);
    }
}
