//! A trend: one kind of observation (a vital sign or a lab result, by code) of one
//! patient over time, drawn by the server as SVG — values as points joined by a line,
//! the reference range as a band when the record gives one, units on the axis, dates a
//! person reads — with the same values as a table for screen readers.

use serde_json::Value;

use crate::chart::Sources;
use crate::display;

/// The most observations one chart draws (the newest, saying so when there are more).
pub const MAX_POINTS: usize = 500;

/// One measured value.
#[derive(Debug, Clone)]
pub struct Point {
    /// Days since 1970-01-01 (the x axis).
    pub day: f64,
    pub date: String,
    /// One value per series (`None` where this observation lacks it).
    pub values: Vec<Option<f64>>,
    pub shown: String,
    pub from: String,
}

/// A trend ready to draw.
#[derive(Debug, Clone)]
pub struct Trend {
    pub title: String,
    pub unit: String,
    /// Series names: one for a plain value, one per component (systolic, diastolic).
    pub series: Vec<String>,
    pub points: Vec<Point>,
    /// The reference range of the newest observation that gives one.
    pub range: Option<(Option<f64>, Option<f64>)>,
}

/// Days since the epoch of a FHIR date or dateTime (its date part).
pub fn day_number(v: &str) -> Option<f64> {
    let d = v.get(..10)?;
    let mut p = d.split('-');
    let (y, m, dd): (i64, i64, i64) = (
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
    );
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) as f64)
}

fn effective(r: &Value) -> Option<&str> {
    r["effectiveDateTime"]
        .as_str()
        .or_else(|| r["effectivePeriod"]["start"].as_str())
        .or_else(|| r["issued"].as_str())
}

fn component_name(c: &Value) -> String {
    display::concept(&c["code"]).unwrap_or_else(|| "Value".into())
}

/// Builds the trend of `observations` (any order; drawn oldest first).
pub fn build(observations: &[Value], sources: &Sources) -> Option<Trend> {
    let first = observations.first()?;
    let title = display::concept(&first["code"]).unwrap_or_else(|| "Observation".into());
    let with_components = first["valueQuantity"].is_null() && first["component"].is_array();
    let mut series: Vec<String> = Vec::new();
    let mut unit = String::new();
    if with_components {
        let mut comps: Vec<&Value> = first["component"].as_array()?.iter().collect();
        comps.sort_by_key(|c| match c["code"]["coding"][0]["code"].as_str() {
            Some("8480-6") => 0,
            Some("8462-4") => 1,
            _ => 2,
        });
        for c in comps {
            series.push(code_of(&c["code"]));
            if unit.is_empty() {
                unit = unit_of(&c["valueQuantity"]);
            }
        }
    } else {
        series.push(code_of(&first["code"]));
        unit = unit_of(&first["valueQuantity"]);
    }
    let mut names = Vec::new();
    let mut points = Vec::new();
    let mut range = None;
    for r in observations {
        let Some(when) = effective(r) else { continue };
        let Some(day) = day_number(when) else {
            continue;
        };
        let values: Vec<Option<f64>> = if with_components {
            series
                .iter()
                .map(|s| {
                    r["component"].as_array().and_then(|cs| {
                        cs.iter()
                            .find(|c| code_of(&c["code"]) == *s)
                            .and_then(|c| c["valueQuantity"]["value"].as_f64())
                    })
                })
                .collect()
        } else {
            vec![r["valueQuantity"]["value"].as_f64()]
        };
        if values.iter().all(Option::is_none) {
            continue;
        }
        if range.is_none() {
            if let Some(rr) = r["referenceRange"].as_array().and_then(|a| a.first()) {
                let low = rr["low"]["value"].as_f64();
                let high = rr["high"]["value"].as_f64();
                if low.is_some() || high.is_some() {
                    range = Some((low, high));
                }
            }
        }
        points.push(Point {
            day,
            date: display::date(when),
            values,
            shown: crate::chart::observation_value(r).unwrap_or_default(),
            from: sources.from(r),
        });
    }
    if with_components {
        for s in &series {
            let c = first["component"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| code_of(&c["code"]) == *s));
            names.push(c.map(component_name).unwrap_or_else(|| s.clone()));
        }
    } else {
        names.push(title.clone());
    }
    points.sort_by(|a, b| a.day.total_cmp(&b.day));
    Some(Trend {
        title,
        unit,
        series: names,
        points,
        range,
    })
}

fn code_of(c: &Value) -> String {
    crate::chart::code_key(c)
}

fn unit_of(q: &Value) -> String {
    display::unit(
        q["unit"]
            .as_str()
            .or_else(|| q["code"].as_str())
            .unwrap_or(""),
    )
}

/// "Nice" axis steps: 1, 2 or 5 times a power of ten, about `n` of them over `span`.
fn step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    p * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [&str; 3] = ["#0b57d0", "#a50e0e", "#1e6e3a"];

/// The chart as an SVG element (scales to its container's width).
pub fn svg(t: &Trend) -> String {
    let (w, h) = (720.0, 320.0);
    let (left, right, top, bottom) = (64.0, 16.0, 16.0, 48.0);
    let values: Vec<f64> = t
        .points
        .iter()
        .flat_map(|p| p.values.iter().flatten().copied())
        .collect();
    if values.is_empty() {
        return String::new();
    }
    let mut lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some((l, u)) = t.range {
        lo = lo.min(l.unwrap_or(lo));
        hi = hi.max(u.unwrap_or(hi));
    }
    if (hi - lo).abs() < f64::EPSILON {
        lo -= 1.0;
        hi += 1.0;
    }
    let ys = step(hi - lo, 5.0);
    let (lo, hi) = ((lo / ys).floor() * ys, (hi / ys).ceil() * ys);
    let d0 = t.points.first().map_or(0.0, |p| p.day);
    let mut d1 = t.points.last().map_or(1.0, |p| p.day);
    if d1 - d0 < 1.0 {
        d1 = d0 + 1.0;
    }
    let x = |d: f64| left + (d - d0) / (d1 - d0) * (w - left - right);
    let y = |v: f64| top + (hi - v) / (hi - lo) * (h - top - bottom);
    let mut s = format!(
        "<svg class=\"trend\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"trend-title\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"trend-title\">{} over time, {} values</title>",
        esc(&t.title),
        t.points.len()
    );
    if let Some((l, u)) = t.range {
        let (ly, uy) = (y(l.unwrap_or(lo)), y(u.unwrap_or(hi)));
        s.push_str(&format!(
            "<rect class=\"range\" x=\"{left}\" y=\"{uy:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>Reference range</title></rect>",
            w - left - right,
            (ly - uy).max(0.0)
        ));
    }
    let mut v = lo;
    while v <= hi + ys / 2.0 {
        let yy = y(v);
        s.push_str(&format!(
            "<line class=\"grid\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 6.0,
            yy + 4.0,
            display::number(v)
        ));
        v += ys;
    }
    s.push_str(&format!(
        "<text class=\"unit\" x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{}</text>",
        h / 2.0 - bottom / 2.0,
        h / 2.0 - bottom / 2.0,
        esc(&t.unit)
    ));
    // Dates: first, last, and up to three between.
    let n = t.points.len();
    let picks: Vec<usize> = if n <= 5 {
        (0..n).collect()
    } else {
        vec![0, n / 4, n / 2, 3 * n / 4, n - 1]
    };
    // A date label is about this wide in chart units at its largest (a phone's font);
    // labels never overlap, and the last date wins over the one before it.
    const LABEL: f64 = 130.0;
    let mut labels: Vec<(f64, f64, f64, &str, &str)> = Vec::new();
    for i in picks {
        let p = &t.points[i];
        let xx = x(p.day);
        // The first and last dates stay inside the chart.
        let (anchor, left) = if n > 1 && i == n - 1 {
            ("end", xx - LABEL)
        } else if n > 1 && i == 0 {
            ("start", xx)
        } else {
            ("middle", xx - LABEL / 2.0)
        };
        let overlaps =
            |l: &[(f64, f64, f64, &str, &str)]| l.last().is_some_and(|prev| left < prev.1 + 10.0);
        if overlaps(&labels) {
            if i != n - 1 {
                continue;
            }
            while overlaps(&labels) {
                labels.pop();
            }
        }
        labels.push((left, left + LABEL, xx, anchor, p.date.as_str()));
    }
    for (_, _, xx, anchor, date) in labels {
        s.push_str(&format!(
            "<text class=\"tick\" x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            h - bottom + 20.0,
            esc(date)
        ));
    }
    for (si, _) in t.series.iter().enumerate() {
        let colour = COLOURS[si % COLOURS.len()];
        let pts: Vec<(f64, f64)> = t
            .points
            .iter()
            .filter_map(|p| {
                p.values
                    .get(si)
                    .copied()
                    .flatten()
                    .map(|v| (x(p.day), y(v)))
            })
            .collect();
        if pts.len() > 1 {
            let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            s.push_str(&format!(
                "<polyline class=\"line\" stroke=\"{colour}\" points=\"{}\"/>",
                path.join(" ")
            ));
        }
        for (a, b) in pts {
            s.push_str(&format!(
                "<circle class=\"point\" fill=\"{colour}\" cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3.5\"/>"
            ));
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_count_from_the_epoch() {
        assert_eq!(day_number("1970-01-01"), Some(0.0));
        assert_eq!(day_number("2000-03-01T10:00:00Z"), Some(11_017.0));
        assert_eq!(day_number("2024-02-29"), Some(19_782.0));
        assert_eq!(day_number("2024"), None);
    }

    /// The demo's body weights: two dates close together at the start once drew their
    /// labels over each other on a phone.
    #[test]
    fn date_labels_never_overlap_and_the_last_date_is_kept() {
        let dates = [
            "2011-05-30",
            "2013-06-10",
            "2016-06-13",
            "2019-06-17",
            "2019-07-01",
        ];
        let t = Trend {
            title: "Body weight".into(),
            unit: "kg".into(),
            series: vec!["Body weight".into()],
            points: dates
                .iter()
                .enumerate()
                .map(|(i, d)| Point {
                    day: day_number(d).unwrap(),
                    date: display::date(d),
                    values: vec![Some(60.0 + i as f64)],
                    shown: String::new(),
                    from: String::new(),
                })
                .collect(),
            range: None,
        };
        let drawn = svg(&t);
        let xs: Vec<(f64, &str)> = drawn
            .split("<text class=\"tick\" x=\"")
            .skip(1)
            .filter_map(|rest| {
                let (x, rest) = rest.split_once('"')?;
                let anchor = rest.split("text-anchor=\"").nth(1)?.split('"').next()?;
                let label = rest.split('>').nth(1)?.split('<').next()?;
                label
                    .contains(' ')
                    .then(|| (x.parse().ok(), anchor))
                    .and_then(|(x, a)| Some((x?, a)))
            })
            .collect();
        assert!(
            drawn.contains(">1 Jul 2019<"),
            "the last date is labelled: {drawn}"
        );
        let extent = |(x, a): (f64, &str)| match a {
            "start" => (x, x + 130.0),
            "end" => (x - 130.0, x),
            _ => (x - 65.0, x + 65.0),
        };
        for w in xs.windows(2) {
            assert!(extent(w[0]).1 <= extent(w[1]).0, "labels overlap: {xs:?}");
        }
        assert!(xs.len() >= 2, "{xs:?}");
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(step(100.0, 5.0), 20.0);
        assert_eq!(step(7.0, 5.0), 2.0);
        assert_eq!(step(0.3, 5.0), 0.1);
    }
}
