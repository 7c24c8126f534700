//! How FHIR values read to a person: the record's own words before codes, dates as a
//! person writes them ("2 Mar 2019"), names as they are said.

use serde_json::Value;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A FHIR date, dateTime or instant as a person reads it: `2019-03-02T10:10:10-05:00`
/// → "2 Mar 2019" (the date as recorded, in its own offset), `1990-05` → "May 1990",
/// `1990` → "1990". Anything else is shown as it is.
pub fn date(v: &str) -> String {
    let day_part = v.split('T').next().unwrap_or(v);
    let mut parts = day_part.split('-');
    let (y, m, d) = (parts.next(), parts.next(), parts.next());
    let month = |m: &str| {
        m.parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| MONTHS.get(i))
    };
    match (y, m, d) {
        (Some(y), Some(m), Some(d)) if y.len() == 4 => match (month(m), d.parse::<u8>()) {
            (Some(mn), Ok(d)) => format!("{d} {mn} {y}"),
            _ => v.to_owned(),
        },
        (Some(y), Some(m), None) if y.len() == 4 => match month(m) {
            Some(mn) => format!("{mn} {y}"),
            None => v.to_owned(),
        },
        (Some(y), None, None) if y.len() == 4 => y.to_owned(),
        _ => v.to_owned(),
    }
}

/// A dateTime or instant with its time of day: `2026-12-06T09:15:02Z` → "6 Dec 2026,
/// 09:15 UTC" (in the value's own offset, which is named); a date alone as [`date`].
pub fn date_time(v: &str) -> String {
    let day = date(v);
    let Some(time) = v.split_once('T').map(|(_, t)| t) else {
        return day;
    };
    let hm: String = time.chars().take(5).collect();
    if hm.len() < 5 {
        return day;
    }
    let zone = if time.ends_with('Z') || time.ends_with("+00:00") {
        " UTC".to_owned()
    } else {
        time.rfind(['+', '-'])
            .map(|i| format!(" (UTC{})", &time[i..]))
            .unwrap_or_default()
    };
    format!("{day}, {hm}{zone}")
}

/// The text of a CodeableConcept: its `text`, else the first coding's `display`, else
/// the first code with its system's short name.
pub fn concept(v: &Value) -> Option<String> {
    if let Some(t) = v["text"].as_str().filter(|t| !t.trim().is_empty()) {
        return Some(t.to_owned());
    }
    let codings = v["coding"].as_array()?;
    codings
        .iter()
        .find_map(|c| c["display"].as_str().filter(|d| !d.trim().is_empty()))
        .map(str::to_owned)
        .or_else(|| {
            codings
                .iter()
                .find_map(|c| c["code"].as_str())
                .map(str::to_owned)
        })
}

/// A HumanName as it is said: `text`, else given names then family ("Antonio
/// Castellanos"), with prefix and suffix.
pub fn human_name(n: &Value) -> Option<String> {
    if let Some(t) = n["text"].as_str().filter(|t| !t.trim().is_empty()) {
        return Some(t.to_owned());
    }
    let mut words: Vec<&str> = Vec::new();
    let strs = |k: &str| -> Vec<&str> {
        n[k].as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    words.extend(strs("prefix"));
    words.extend(strs("given"));
    if let Some(f) = n["family"].as_str() {
        words.push(f);
    }
    words.extend(strs("suffix"));
    let s = words.join(" ");
    (!s.trim().is_empty()).then_some(s)
}

/// The HumanName a person goes by: the `official` name, else `usual`, else the first.
fn chosen_name(resource: &Value) -> Option<&Value> {
    resource["name"].as_array().and_then(|ns| {
        ns.iter()
            .find(|n| n["use"] == "official")
            .or_else(|| ns.iter().find(|n| n["use"] == "usual"))
            .or_else(|| ns.first())
    })
}

/// The name a person goes by (see [`chosen_name`]), in full.
pub fn person_name(resource: &Value) -> String {
    chosen_name(resource)
        .and_then(human_name)
        .unwrap_or_else(|| "(no name recorded)".to_owned())
}

/// The first given name of the name a person goes by, if it has one.
pub fn first_name(resource: &Value) -> Option<String> {
    chosen_name(resource)?["given"][0]
        .as_str()
        .map(str::to_owned)
}

/// A Quantity as "72 /min" or "5.4 mmol/L": the value and its unit (`unit`, else
/// `code`).
pub fn quantity(q: &Value) -> Option<String> {
    let value = match &q["value"] {
        Value::Number(n) => n.as_f64().map(number)?,
        _ => return None,
    };
    let unit = q["unit"].as_str().or_else(|| q["code"].as_str()).map(unit);
    Some(match unit.as_deref() {
        Some(u) if !u.is_empty() => format!("{value} {u}"),
        _ => value,
    })
}

/// A unit as a person writes it: UCUM's bracketed and exponent forms made plain
/// (`mm[Hg]` → "mmHg", `kg/m2` → "kg/m²", `10*3/uL` → "×10³/µL", an annotation such as
/// `{score}` → nothing).
pub fn unit(u: &str) -> String {
    let u = u.trim();
    if u.starts_with('{') && u.ends_with('}') {
        return String::new();
    }
    if u == "Cel" {
        return "°C".to_owned();
    }
    u.replace("[Hg]", "Hg")
        .replace("10*3", "×10³")
        .replace("10*6", "×10⁶")
        .replace("10*9", "×10⁹")
        .replace("m2", "m²")
        .replace("uL", "µL")
}

/// A measured number as a person reads it: at most two decimals, no trailing zeros
/// (`184.84863340586531` → "184.85", `72.0` → "72").
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// An age in whole years on `today` (`YYYY-MM-DD`) for a birth date.
pub fn age(birth_date: &str, today: &str) -> Option<u32> {
    let parse = |s: &str| -> Option<(i32, u32, u32)> {
        let mut p = s.get(..10)?.split('-');
        Some((
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
        ))
    };
    let (by, bm, bd) = parse(birth_date)?;
    let (ty, tm, td) = parse(today)?;
    let mut years = ty - by;
    if (tm, td) < (bm, bd) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// What a kind of record is called in plain words (the resource type of an audit
/// record's `Type/id` or `Type`).
pub fn kind_words(rtype: &str) -> &'static str {
    match rtype {
        "Patient" => "your details",
        "Observation" => "results and measurements",
        "Condition" => "problems",
        "MedicationRequest" | "MedicationStatement" | "MedicationAdministration" => "medications",
        "AllergyIntolerance" => "allergies",
        "Immunization" => "immunizations",
        "Encounter" => "visits",
        "DiagnosticReport" => "reports",
        "DocumentReference" => "notes",
        "Procedure" => "procedures",
        "CarePlan" | "Goal" | "CareTeam" => "care plans",
        "Communication" => "messages",
        "Task" => "requests",
        "Appointment" => "appointments",
        "Consent" => "sharing choices",
        "Claim" | "ExplanationOfBenefit" | "Coverage" => "billing records",
        _ => "records",
    }
}

/// A resource type as words, for a type [`kind_words`] has no name for:
/// `ServiceRequest` → "service request records".
pub fn type_words(rtype: &str) -> String {
    match kind_words(rtype) {
        "records" => {
            let mut out = String::new();
            for (i, c) in rtype.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push(' ');
                }
                out.push(c.to_ascii_lowercase());
            }
            format!("{out} records")
        }
        known => known.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_read_as_a_person_writes_them() {
        assert_eq!(date("2019-03-02T10:10:10-05:00"), "2 Mar 2019");
        assert_eq!(date("1990-12-31"), "31 Dec 1990");
        assert_eq!(date("1990-05"), "May 1990");
        assert_eq!(date("1990"), "1990");
        assert_eq!(date("not a date"), "not a date");
        assert_eq!(date("1990-13-01"), "1990-13-01");
    }

    #[test]
    fn times_say_their_zone() {
        assert_eq!(date_time("2026-12-06T09:15:02Z"), "6 Dec 2026, 09:15 UTC");
        assert_eq!(
            date_time("2019-03-02T10:10:10-05:00"),
            "2 Mar 2019, 10:10 (UTC-05:00)"
        );
        assert_eq!(date_time("2019-03-02"), "2 Mar 2019");
    }

    #[test]
    fn concepts_prefer_the_record_s_words() {
        let c = json!({"coding": [{"system": "http://snomed.info/sct", "code": "444814009",
            "display": "Viral sinusitis (disorder)"}], "text": "Viral sinusitis"});
        assert_eq!(concept(&c).as_deref(), Some("Viral sinusitis"));
        let c = json!({"coding": [{"code": "444814009", "display": "Viral sinusitis (disorder)"}]});
        assert_eq!(concept(&c).as_deref(), Some("Viral sinusitis (disorder)"));
        let c = json!({"coding": [{"code": "444814009"}]});
        assert_eq!(concept(&c).as_deref(), Some("444814009"));
        assert_eq!(concept(&json!({})), None);
    }

    #[test]
    fn names_ages_and_quantities() {
        let p = json!({"name": [{"use": "official", "family": "Castellanos",
            "given": ["Antonio"], "prefix": ["Mr."]}]});
        assert_eq!(person_name(&p), "Mr. Antonio Castellanos");
        assert_eq!(person_name(&json!({})), "(no name recorded)");
        assert_eq!(age("1990-12-31", "2026-12-05"), Some(35));
        assert_eq!(age("1990-12-05", "2026-12-05"), Some(36));
        assert_eq!(
            quantity(&json!({"value": 72, "unit": "/min"})).as_deref(),
            Some("72 /min")
        );
        assert_eq!(
            quantity(&json!({"value": 5.4, "code": "mmol/L"})).as_deref(),
            Some("5.4 mmol/L")
        );
        assert_eq!(
            quantity(&json!({"value": 184.84863340586531, "unit": "mg/dL"})).as_deref(),
            Some("184.85 mg/dL")
        );
        assert_eq!(number(72.0), "72");
        assert_eq!(unit("mm[Hg]"), "mmHg");
        assert_eq!(unit("kg/m2"), "kg/m²");
        assert_eq!(unit("10*3/uL"), "×10³/µL");
        assert_eq!(unit("{score}"), "");
        assert_eq!(
            quantity(&json!({"value": 2.72, "unit": "{score}"})).as_deref(),
            Some("2.72")
        );
        assert_eq!(number(0.5), "0.5");
    }
}
