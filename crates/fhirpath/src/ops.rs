//! Operators: equality and equivalence, ordering, arithmetic, string concatenation,
//! collection union and membership, with FHIRPath's empty-propagation rules.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::eval::Coll;
use crate::item::{Decimal, Item};
use crate::parser::BinOp;

use crate::Error;

pub(crate) fn bool_coll<'a>(b: Option<bool>) -> Coll<'a> {
    b.map(Item::Boolean).into_iter().collect()
}

/// Singleton evaluation of a collection as a Boolean: empty → `None`; one Boolean → it;
/// one other item → `true`; several → error.
pub(crate) fn to_bool(c: &[Item<'_>]) -> Result<Option<bool>, Error> {
    match c {
        [] => Ok(None),
        [one] => Ok(Some(match one.to_system() {
            Item::Boolean(b) => b,
            _ => true,
        })),
        _ => Err(Error::eval("expected a single Boolean, found a collection")),
    }
}

pub(crate) fn singleton<'c, 'a>(c: &'c [Item<'a>]) -> Result<Option<&'c Item<'a>>, Error> {
    match c {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(Error::eval("expected a single item, found a collection")),
    }
}

pub(crate) fn singleton_integer(c: &[Item<'_>]) -> Result<Option<i64>, Error> {
    match singleton(c)?.map(Item::to_system) {
        None => Ok(None),
        Some(Item::Integer(i)) => Ok(Some(i)),
        Some(_) => Err(Error::eval("expected an Integer")),
    }
}

pub(crate) fn negate(c: Coll<'_>) -> Result<Coll<'_>, Error> {
    Ok(match singleton(&c)?.map(Item::to_system) {
        None => Vec::new(),
        Some(Item::Integer(i)) => vec![Item::Integer(-i)],
        Some(Item::Decimal(d)) => vec![Item::Decimal(-d)],
        Some(Item::Quantity { value, unit }) => vec![Item::Quantity {
            value: -value,
            unit,
        }],
        Some(_) => return Err(Error::eval("unary minus needs a number or quantity")),
    })
}

pub(crate) fn binary<'a>(op: BinOp, lhs: Coll<'a>, rhs: Coll<'a>) -> Result<Coll<'a>, Error> {
    match op {
        BinOp::Union => {
            let mut out: Coll<'a> = Vec::with_capacity(lhs.len() + rhs.len());
            for i in lhs.into_iter().chain(rhs) {
                if !out.iter().any(|o| equal(o, &i) == Some(true)) {
                    out.push(i);
                }
            }
            Ok(out)
        }
        BinOp::Eq | BinOp::Ne => {
            let r = collections_equal(&lhs, &rhs);
            Ok(bool_coll(if op == BinOp::Eq { r } else { r.map(|b| !b) }))
        }
        BinOp::Equiv | BinOp::NotEquiv => {
            let r = collections_equivalent(&lhs, &rhs);
            Ok(vec![Item::Boolean(if op == BinOp::Equiv { r } else { !r })])
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let (Some(a), Some(b)) = (singleton(&lhs)?, singleton(&rhs)?) else {
                return Ok(Vec::new());
            };
            let Some(ord) = compare(a, b)? else {
                return Ok(Vec::new());
            };
            Ok(vec![Item::Boolean(match op {
                BinOp::Lt => ord == Ordering::Less,
                BinOp::Le => ord != Ordering::Greater,
                BinOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            })])
        }
        BinOp::In | BinOp::Contains => {
            let (needle, hay) = if op == BinOp::In {
                (lhs, rhs)
            } else {
                (rhs, lhs)
            };
            let Some(n) = singleton(&needle)? else {
                return Ok(Vec::new());
            };
            Ok(vec![Item::Boolean(
                hay.iter().any(|h| equal(h, n) == Some(true)),
            )])
        }
        BinOp::Concat => {
            let a = singleton(&lhs)?
                .and_then(|i| i.to_text())
                .unwrap_or_default();
            let b = singleton(&rhs)?
                .and_then(|i| i.to_text())
                .unwrap_or_default();
            Ok(vec![Item::String(Cow::Owned(a + &b))])
        }
        _ => {
            let (Some(a), Some(b)) = (singleton(&lhs)?, singleton(&rhs)?) else {
                return Ok(Vec::new());
            };
            arithmetic(op, a.to_system(), b.to_system())
        }
    }
}

fn num(i: &Item<'_>) -> Option<Decimal> {
    match i {
        Item::Integer(v) => Some(Decimal::from_int(*v)),
        Item::Decimal(d) => Some(*d),
        _ => None,
    }
}

fn arithmetic<'a>(op: BinOp, a: Item<'a>, b: Item<'a>) -> Result<Coll<'a>, Error> {
    let one = |i: Item<'a>| Ok(vec![i]);
    match (&a, &b) {
        (Item::Integer(x), Item::Integer(y)) => {
            let r = match op {
                BinOp::Add => x.checked_add(*y),
                BinOp::Sub => x.checked_sub(*y),
                BinOp::Mul => x.checked_mul(*y),
                BinOp::IntDiv => {
                    if *y == 0 {
                        None
                    } else {
                        Some(x / y)
                    }
                }
                BinOp::Mod => {
                    if *y == 0 {
                        None
                    } else {
                        Some(x % y)
                    }
                }
                BinOp::Div => {
                    if *y == 0 {
                        return Ok(Vec::new());
                    }
                    return one(Item::Decimal(Decimal::from_f64(*x as f64 / *y as f64)));
                }
                _ => None,
            };
            return Ok(r.map(Item::Integer).into_iter().collect());
        }
        (Item::String(x), Item::String(y)) if op == BinOp::Add => {
            return one(Item::String(Cow::Owned(format!("{x}{y}"))));
        }
        (Item::Date(t) | Item::DateTime(t) | Item::Time(t), Item::Quantity { value, unit })
            if matches!(op, BinOp::Add | BinOp::Sub) =>
        {
            let amount = if op == BinOp::Sub {
                -value.value
            } else {
                value.value
            };
            let is_time = matches!(a, Item::Time(_));
            let Some(r) = t.add(amount, unit, is_time) else {
                return Err(Error::eval("cannot add this quantity to a date/time"));
            };
            return one(match a {
                Item::Date(_) => Item::Date(r),
                Item::DateTime(_) => Item::DateTime(r),
                _ => Item::Time(r),
            });
        }
        (Item::Quantity { value: x, unit: ux }, Item::Quantity { value: y, unit: uy }) => {
            let (x, y, unit) = match (op, same_unit(ux, uy)) {
                (BinOp::Add | BinOp::Sub, true) => (x.value, y.value, ux.clone()),
                (BinOp::Add | BinOp::Sub, false) => match convert(y.value, uy, ux) {
                    Some(y) => (x.value, y, ux.clone()),
                    None => return Ok(Vec::new()),
                },
                (BinOp::Mul, _) => {
                    return one(Item::Quantity {
                        value: Decimal::from_f64(x.value * y.value),
                        unit: Cow::Owned(format!("{ux}.{uy}")),
                    })
                }
                (BinOp::Div, _) => {
                    if y.value == 0.0 {
                        return Ok(Vec::new());
                    }
                    let unit = if same_unit(ux, uy) {
                        "1".to_string()
                    } else {
                        format!("{ux}/{uy}")
                    };
                    return one(Item::Quantity {
                        value: Decimal::from_f64(x.value / y.value),
                        unit: Cow::Owned(unit),
                    });
                }
                _ => return Err(Error::eval("unsupported quantity operation")),
            };
            let v = if op == BinOp::Add { x + y } else { x - y };
            return one(Item::Quantity {
                value: Decimal::from_f64(v),
                unit,
            });
        }
        (Item::Quantity { value, unit }, n) | (n, Item::Quantity { value, unit })
            if num(n).is_some() && matches!(op, BinOp::Mul | BinOp::Div) =>
        {
            let Some(n) = num(n) else {
                return Ok(Vec::new());
            };
            let quantity_first = matches!(a, Item::Quantity { .. });
            let v = match op {
                BinOp::Mul => value.value * n.value,
                _ if quantity_first && n.value != 0.0 => value.value / n.value,
                _ => return Ok(Vec::new()),
            };
            return one(Item::Quantity {
                value: Decimal::from_f64(v),
                unit: unit.clone(),
            });
        }
        _ => {}
    }
    let (Some(x), Some(y)) = (num(&a), num(&b)) else {
        return Err(Error::eval("operands are not of compatible types"));
    };
    let scale = x.scale.max(y.scale);
    let r = match op {
        BinOp::Add => Decimal {
            value: x.value + y.value,
            scale,
        },
        BinOp::Sub => Decimal {
            value: x.value - y.value,
            scale,
        },
        BinOp::Mul => Decimal::from_f64(x.value * y.value),
        BinOp::Div => {
            if y.value == 0.0 {
                return Ok(Vec::new());
            }
            Decimal::from_f64(x.value / y.value)
        }
        BinOp::IntDiv => {
            if y.value == 0.0 {
                return Ok(Vec::new());
            }
            return one(Item::Integer((x.value / y.value).trunc() as i64));
        }
        BinOp::Mod => {
            if y.value == 0.0 {
                return Ok(Vec::new());
            }
            Decimal {
                value: x.value % y.value,
                scale,
            }
        }
        _ => return Err(Error::eval("unsupported operator")),
    };
    one(Item::Decimal(r))
}

/// Calendar duration keywords and their UCUM codes name the same unit for seconds and
/// below; `1 year` and `1 'a'` differ by definition, so only these are folded.
fn unit_key(u: &str) -> &str {
    match u {
        "second" | "seconds" => "s",
        "millisecond" | "milliseconds" => "ms",
        "minute" | "minutes" => "min",
        "hour" | "hours" => "h",
        "day" | "days" => "d",
        "week" | "weeks" => "wk",
        "month" | "months" => "month",
        "year" | "years" => "year",
        other => other,
    }
}

fn same_unit(a: &str, b: &str) -> bool {
    unit_key(a) == unit_key(b)
}

/// Factor to a base unit for the few UCUM units conversion is needed for.
fn unit_factor(u: &str) -> Option<(&'static str, f64)> {
    Some(match unit_key(u) {
        "g" => ("g", 1.0),
        "mg" => ("g", 1e-3),
        "kg" => ("g", 1e3),
        "ug" => ("g", 1e-6),
        "m" => ("m", 1.0),
        "cm" => ("m", 1e-2),
        "mm" => ("m", 1e-3),
        "km" => ("m", 1e3),
        "[in_i]" => ("m", 0.0254),
        "s" => ("s", 1.0),
        "ms" => ("s", 1e-3),
        "min" => ("s", 60.0),
        "h" => ("s", 3600.0),
        "d" => ("s", 86400.0),
        "wk" => ("s", 604_800.0),
        "L" | "l" => ("L", 1.0),
        "mL" | "ml" => ("L", 1e-3),
        "dL" => ("L", 1e-1),
        _ => return None,
    })
}

fn is_time_unit(u: &str) -> bool {
    matches!(
        unit_key(u),
        "s" | "ms" | "min" | "h" | "d" | "wk" | "mo" | "a" | "month" | "year"
    )
}

fn convert(v: f64, from: &str, to: &str) -> Option<f64> {
    let (bf, ff) = unit_factor(from)?;
    let (bt, ft) = unit_factor(to)?;
    (bf == bt).then(|| v * ff / ft)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// FHIRPath `=` on two items: `None` when the answer is unknown (dates of different
/// precision).
pub(crate) fn equal(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    let (a, b) = (a.to_system(), b.to_system());
    Some(match (&a, &b) {
        (Item::Node(x), Item::Node(y)) => x.value == y.value,
        (Item::Boolean(x), Item::Boolean(y)) => x == y,
        (Item::String(x), Item::String(y)) => x == y,
        (Item::Date(x) | Item::DateTime(x), Item::Date(y) | Item::DateTime(y)) => {
            return x.compare(y, false).map(|o| o == Ordering::Equal)
        }
        (Item::Time(x), Item::Time(y)) => return x.compare(y, true).map(|o| o == Ordering::Equal),
        (Item::Quantity { value: x, unit: ux }, Item::Quantity { value: y, unit: uy }) => {
            if same_unit(ux, uy) {
                close(x.value, y.value)
            } else {
                match convert(y.value, uy, ux) {
                    Some(y) => close(x.value, y),
                    // Calendar durations against other time units: unknown.
                    None if is_time_unit(ux) && is_time_unit(uy) => return None,
                    None => false,
                }
            }
        }
        _ => match (num(&a), num(&b)) {
            (Some(x), Some(y)) => close(x.value, y.value),
            _ => false,
        },
    })
}

pub(crate) fn collections_equal(a: &[Item<'_>], b: &[Item<'_>]) -> Option<bool> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.len() != b.len() {
        return Some(false);
    }
    let mut unknown = false;
    for (x, y) in a.iter().zip(b) {
        match equal(x, y) {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// FHIRPath `~` on two items.
pub(crate) fn equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    let (a, b) = (a.to_system(), b.to_system());
    match (&a, &b) {
        (Item::String(x), Item::String(y)) => normalize_ws(x) == normalize_ws(y),
        (Item::Date(x) | Item::DateTime(x), Item::Date(y) | Item::DateTime(y)) => {
            x.same_precision(y) && x.compare(y, false) == Some(Ordering::Equal)
        }
        (Item::Time(x), Item::Time(y)) => {
            x.same_precision(y) && x.compare(y, true) == Some(Ordering::Equal)
        }
        (Item::Decimal(_) | Item::Integer(_), Item::Decimal(_) | Item::Integer(_)) => {
            let (Some(x), Some(y)) = (num(&a), num(&b)) else {
                return false;
            };
            let scale = i32::from(x.scale.min(y.scale));
            let f = 10f64.powi(scale);
            ((x.value * f).round() - (y.value * f).round()).abs() < 0.5
        }
        (Item::Quantity { value: x, unit: ux }, Item::Quantity { value: y, unit: uy }) => {
            let y = if same_unit(ux, uy) {
                Some(y.value)
            } else {
                convert(y.value, uy, ux)
            };
            y.is_some_and(|y| close(x.value, y))
        }
        _ => equal(&a, &b) == Some(true),
    }
}

pub(crate) fn collections_equivalent(a: &[Item<'_>], b: &[Item<'_>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().all(|x| b.iter().any(|y| equivalent(x, y)))
}

/// Ordering of two items; `Ok(None)` when unknown (dates of different precision, or
/// quantities in units that cannot be compared).
pub(crate) fn compare(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Ordering>, Error> {
    let (a, b) = (a.to_system(), b.to_system());
    Ok(match (&a, &b) {
        (Item::String(x), Item::String(y)) => Some(x.cmp(y)),
        (Item::Date(x) | Item::DateTime(x), Item::Date(y) | Item::DateTime(y)) => {
            x.compare(y, false)
        }
        (Item::Time(x), Item::Time(y)) => x.compare(y, true),
        (Item::Quantity { value: x, unit: ux }, Item::Quantity { value: y, unit: uy }) => {
            let y = if same_unit(ux, uy) {
                Some(y.value)
            } else {
                convert(y.value, uy, ux)
            };
            y.and_then(|y| x.value.partial_cmp(&y))
        }
        _ => match (num(&a), num(&b)) {
            (Some(x), Some(y)) => x.value.partial_cmp(&y.value),
            _ => return Err(Error::eval("cannot compare values of these types")),
        },
    })
}
