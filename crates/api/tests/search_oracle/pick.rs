//! Choosing query values from the data: a value must select some resources but not most,
//! so that a case tells a right answer from an empty or an everything answer.

/// The first candidate that selects between `lo` and `hi` resources (inclusive).
pub fn between<T>(
    candidates: impl IntoIterator<Item = T>,
    lo: usize,
    hi: usize,
    count: impl Fn(&T) -> usize,
) -> T {
    let mut tried = 0;
    for c in candidates {
        tried += 1;
        let n = count(&c);
        if n >= lo && n <= hi {
            return c;
        }
    }
    panic!("none of {tried} candidates selects between {lo} and {hi} resources");
}

/// The candidate whose count is nearest the middle of `lo..=hi` (ties: the first).
pub fn middle<T>(
    candidates: impl IntoIterator<Item = T>,
    lo: usize,
    hi: usize,
    count: impl Fn(&T) -> usize,
) -> T {
    let mid = (lo + hi) / 2;
    let mut best: Option<(usize, T)> = None;
    for c in candidates {
        let n = count(&c);
        if n < lo || n > hi {
            continue;
        }
        let dist = n.abs_diff(mid);
        if best.as_ref().is_none_or(|(b, _)| dist < *b) {
            best = Some((dist, c));
        }
    }
    best.map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no candidate selects between {lo} and {hi} resources"))
}
