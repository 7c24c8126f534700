//! Care gaps and risk scores on the chart ("Care due", "Risk scores", each with "why")
//! and in the portal ("Due for", in plain words). The findings are `records`'s
//! ([`oxehr_records::clinical`]); this module only words them for a page.

use oxehr_records::clinical::{CareGap, Findings, Input, RiskScore};

use crate::display;

/// One gap as a page shows it.
#[derive(Debug, Clone)]
pub struct GapCard {
    pub title: String,
    pub open: bool,
    /// "Due now", "Due since 3 May 2025", "Up to date — next due 12 Sep 2025".
    pub when: String,
    pub reason: String,
    pub evidence: Vec<InputLine>,
    pub citation: String,
}

/// An input a finding used: what, its value, where it came from.
#[derive(Debug, Clone)]
pub struct InputLine {
    pub name: String,
    pub value: String,
}

/// One risk score as the chart shows it.
#[derive(Debug, Clone)]
pub struct ScoreCard {
    pub title: String,
    /// "5.3%": empty when it could not be worked out.
    pub value: String,
    pub interpretation: String,
    /// "Needs: HDL cholesterol" or why it does not apply.
    pub note: String,
    pub inputs: Vec<InputLine>,
    pub equation: String,
    pub citation: String,
}

fn lines(inputs: &[Input]) -> Vec<InputLine> {
    inputs
        .iter()
        .map(|i| InputLine {
            name: i.name.clone(),
            value: i.value.clone(),
        })
        .collect()
}

/// When a gap is or was due, in words.
pub fn when(g: &CareGap, today: &str) -> String {
    match (g.status.as_str(), g.due.as_deref()) {
        ("open", Some(due)) if due <= today => format!("Due since {}", display::date(due)),
        ("open", Some(due)) => format!("Due by {}", display::date(due)),
        ("open", None) => "Due now".to_owned(),
        ("undetermined", _) => "Cannot tell yet".to_owned(),
        (_, Some(due)) => format!("Up to date — next due {}", display::date(due)),
        _ => "Up to date".to_owned(),
    }
}

fn rank(status: &str) -> u8 {
    match status {
        "open" => 0,
        "undetermined" => 1,
        _ => 2,
    }
}

/// The gaps, open ones first (earliest due first), then the ones that are up to date.
pub fn gap_cards(f: &Findings, today: &str) -> Vec<GapCard> {
    let mut gaps: Vec<&CareGap> = f.gaps.iter().collect();
    gaps.sort_by(|a, b| {
        (rank(&a.status), a.due.as_deref().unwrap_or(""), &a.title).cmp(&(
            rank(&b.status),
            b.due.as_deref().unwrap_or(""),
            &b.title,
        ))
    });
    gaps.into_iter()
        .map(|g| GapCard {
            title: g.title.clone(),
            open: g.status == "open",
            when: when(g, today),
            reason: g.reason.clone(),
            evidence: lines(&g.evidence),
            citation: g.citation.clone(),
        })
        .collect()
}

/// The scores that apply: worked out ones first, then the ones missing an input.
pub fn score_cards(f: &Findings) -> Vec<ScoreCard> {
    let mut scores: Vec<&RiskScore> = f
        .scores
        .iter()
        .filter(|s| s.status != "not-applicable")
        .collect();
    scores.sort_by_key(|s| (s.status != "computed", s.title.clone()));
    scores
        .into_iter()
        .map(|s| ScoreCard {
            title: s.title.clone(),
            value: s.display.clone().unwrap_or_default(),
            interpretation: s.interpretation.clone().unwrap_or_default(),
            note: if s.missing.is_empty() {
                s.reason.clone().unwrap_or_default()
            } else {
                format!("Cannot be worked out yet. Needs: {}.", s.missing.join(", "))
            },
            inputs: lines(&s.inputs),
            equation: s.equation.clone().unwrap_or_default(),
            citation: s.citation.clone().unwrap_or_default(),
        })
        .collect()
}
