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

/// A gap's reason without the status it opens with (`Due: `, `Due by 1 Dec 2026: `,
/// `Up to date: `, `Cannot decide: `…), which the page shows beside it already (see
/// [`when`]); the rest starts with a capital.
pub fn why(reason: &str) -> String {
    const STATUSES: [&str; 6] = [
        "Due",
        "Up to date",
        "Cannot decide",
        "Followed up",
        "Complete",
        "Not yet due",
    ];
    let Some((status, rest)) = reason.split_once(": ") else {
        return reason.to_owned();
    };
    let is_status = STATUSES
        .iter()
        .any(|s| status == *s || (*s == "Due" && status.starts_with("Due by ")));
    if !is_status || rest.is_empty() {
        return reason.to_owned();
    }
    let mut chars = rest.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => reason.to_owned(),
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
            reason: why(&g.reason),
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

#[cfg(test)]
mod tests {
    use super::why;

    #[test]
    fn the_why_leaves_out_the_status_the_page_shows_beside_it() {
        let cases = [
            (
                "Due: last colonoscopy was 12 years ago (3 Mar 2014); repeat every 10 years.",
                "Last colonoscopy was 12 years ago (3 Mar 2014); repeat every 10 years.",
            ),
            (
                "Due by 1 Dec 2026: no influenza vaccine yet this season (since 1 Aug 2026); one every season.",
                "No influenza vaccine yet this season (since 1 Aug 2026); one every season.",
            ),
            (
                "Up to date: mammogram on 2 Feb 2025; next due by 2 Feb 2027 (repeat every 2 years).",
                "Mammogram on 2 Feb 2025; next due by 2 Feb 2027 (repeat every 2 years).",
            ),
            (
                "Cannot decide: no birth date on record.",
                "No birth date on record.",
            ),
            (
                "Complete: 2 of 2 hepatitis B doses on record.",
                "2 of 2 hepatitis B doses on record.",
            ),
            // Not a status: kept whole.
            (
                "Note: something else entirely.",
                "Note: something else entirely.",
            ),
            ("Due:", "Due:"),
            ("", ""),
        ];
        for (reason, shown) in cases {
            assert_eq!(why(reason), shown, "{reason}");
        }
    }
}
