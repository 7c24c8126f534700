//! The conversion, string and math functions of the library (split from `functions` to
//! keep files small).

use std::borrow::Cow;

use crate::eval::{self, Coll, Ctx};
use crate::functions::{decimal_of, text, Func};
use crate::item::{Decimal, Item};
use crate::ops::singleton;
use crate::parser::{is_calendar_unit, Ast};
use crate::temporal::Temporal;
use crate::Error;

fn arg<'a>(args: &[Ast], i: usize, ctx: &Ctx<'a, '_>) -> Result<Coll<'a>, Error> {
    match args.get(i) {
        Some(a) => eval::eval(a, ctx),
        None => Ok(Vec::new()),
    }
}

fn arg_str(args: &[Ast], i: usize, ctx: &Ctx<'_, '_>) -> Result<Option<String>, Error> {
    let c = arg(args, i, ctx)?;
    Ok(singleton(&c)?.and_then(|i| i.as_str().map(str::to_string)))
}

fn one<'a>(i: Option<Item<'a>>) -> Coll<'a> {
    i.into_iter().collect()
}

fn to_boolean(i: &Item<'_>) -> Option<bool> {
    match i.to_system() {
        Item::Boolean(b) => Some(b),
        Item::Integer(1) => Some(true),
        Item::Integer(0) => Some(false),
        Item::Decimal(d) if d.value == 1.0 => Some(true),
        Item::Decimal(d) if d.value == 0.0 => Some(false),
        Item::String(s) => match s.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(true),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn to_integer(i: &Item<'_>) -> Option<i64> {
    match i.to_system() {
        Item::Integer(v) => Some(v),
        Item::Boolean(b) => Some(i64::from(b)),
        Item::String(s) => {
            let t = s.strip_prefix(['+', '-']).unwrap_or(&s);
            if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        _ => None,
    }
}

fn to_decimal(i: &Item<'_>) -> Option<Decimal> {
    match i.to_system() {
        Item::Integer(v) => Some(Decimal::from_int(v)),
        Item::Decimal(d) => Some(d),
        Item::Boolean(b) => Some(Decimal::from_int(i64::from(b))),
        Item::String(s) => {
            let t = s.strip_prefix(['+', '-']).unwrap_or(&s);
            let ok = !t.is_empty()
                && t.bytes().all(|c| c.is_ascii_digit() || c == b'.')
                && t.bytes().filter(|c| *c == b'.').count() <= 1
                && !t.starts_with('.')
                && !t.ends_with('.');
            if ok {
                Decimal::parse(&s)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn to_quantity<'a>(i: &Item<'a>) -> Option<Item<'a>> {
    match i.to_system() {
        q @ Item::Quantity { .. } => Some(q),
        Item::Boolean(b) => Some(Item::Quantity {
            value: Decimal {
                value: if b { 1.0 } else { 0.0 },
                scale: 1,
            },
            unit: Cow::Borrowed("1"),
        }),
        Item::Integer(v) => Some(Item::Quantity {
            value: Decimal::from_int(v),
            unit: Cow::Borrowed("1"),
        }),
        Item::Decimal(d) => Some(Item::Quantity {
            value: d,
            unit: Cow::Borrowed("1"),
        }),
        Item::String(s) => {
            let s = s.trim();
            let (num, rest) = s.split_once(' ').unwrap_or((s, ""));
            let value = to_decimal(&Item::String(Cow::Borrowed(num)))?;
            let rest = rest.trim();
            let unit = if rest.is_empty() {
                "1".to_string()
            } else if let Some(u) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                u.to_string()
            } else if is_calendar_unit(rest) {
                rest.to_string()
            } else {
                return None;
            };
            Some(Item::Quantity {
                value,
                unit: Cow::Owned(unit),
            })
        }
        _ => None,
    }
}

fn to_date_like<'a>(i: &Item<'a>, f: Func) -> Option<Item<'a>> {
    let sys = i.to_system();
    match (f, sys) {
        (Func::ToDate | Func::ConvertsToDate, Item::Date(t)) => Some(Item::Date(t)),
        (Func::ToDate | Func::ConvertsToDate, Item::DateTime(t)) => Some(Item::Date(Temporal {
            precision: t.precision.min(crate::temporal::Precision::Day),
            ..t
        })),
        (Func::ToDate | Func::ConvertsToDate, Item::String(s)) => {
            Temporal::parse_date(&s).map(Item::Date)
        }
        (Func::ToDateTime | Func::ConvertsToDateTime, Item::DateTime(t) | Item::Date(t)) => {
            Some(Item::DateTime(t))
        }
        (Func::ToDateTime | Func::ConvertsToDateTime, Item::String(s)) => {
            Temporal::parse_datetime(&s).map(Item::DateTime)
        }
        (Func::ToTime | Func::ConvertsToTime, Item::Time(t)) => Some(Item::Time(t)),
        (Func::ToTime | Func::ConvertsToTime, Item::String(s)) => {
            Temporal::parse_time(&s).map(Item::Time)
        }
        _ => None,
    }
}

pub(crate) fn call<'a>(
    f: Func,
    input: Coll<'a>,
    args: &[Ast],
    ctx: &Ctx<'a, '_>,
) -> Result<Coll<'a>, Error> {
    use Func::*;
    let Some(item) = singleton(&input)? else {
        return Ok(Vec::new());
    };
    let conv = |ok: bool| Ok(vec![Item::Boolean(ok)]);
    match f {
        ToBoolean => return Ok(one(to_boolean(item).map(Item::Boolean))),
        ConvertsToBoolean => return conv(to_boolean(item).is_some()),
        ToInteger => return Ok(one(to_integer(item).map(Item::Integer))),
        ConvertsToInteger => return conv(to_integer(item).is_some()),
        ToDecimal => return Ok(one(to_decimal(item).map(Item::Decimal))),
        ConvertsToDecimal => return conv(to_decimal(item).is_some()),
        ToStr => return Ok(one(item.to_text().map(text))),
        ConvertsToString => return conv(item.to_text().is_some()),
        ToQuantity => return Ok(one(to_quantity(item))),
        ConvertsToQuantity => return conv(to_quantity(item).is_some()),
        ToDate | ToDateTime | ToTime => return Ok(one(to_date_like(item, f))),
        ConvertsToDate | ConvertsToDateTime | ConvertsToTime => {
            return conv(to_date_like(item, f).is_some())
        }
        _ => {}
    }
    if matches!(
        f,
        Abs | Ceiling | Exp | Floor | Ln | Log | Power | Round | Sqrt | Truncate
    ) {
        return math(f, item, args, ctx);
    }
    let Some(st) = item.as_str().map(str::to_string) else {
        if let Item::Node(n) = item {
            if !n.value.is_object() {
                return Ok(Vec::new());
            }
        }
        return Err(Error::eval(
            "string function on a value that is not a string",
        ));
    };
    let chars: Vec<char> = st.chars().collect();
    Ok(match f {
        IndexOf => match arg_str(args, 0, ctx)? {
            None => Vec::new(),
            Some(sub) => vec![Item::Integer(match st.find(&sub) {
                Some(byte) => st[..byte].chars().count() as i64,
                None => -1,
            })],
        },
        Substring => {
            let Some(start) = crate::ops::singleton_integer(&arg(args, 0, ctx)?)? else {
                return Ok(Vec::new());
            };
            if start < 0 || start as usize >= chars.len() {
                return Ok(Vec::new());
            }
            let len = match args.get(1) {
                Some(_) => crate::ops::singleton_integer(&arg(args, 1, ctx)?)?.unwrap_or(i64::MAX),
                None => i64::MAX,
            };
            let end = (start as usize)
                .saturating_add(len.max(0) as usize)
                .min(chars.len());
            vec![text(chars[start as usize..end].iter().collect())]
        }
        StartsWith => one(arg_str(args, 0, ctx)?.map(|p| Item::Boolean(st.starts_with(&p)))),
        EndsWith => one(arg_str(args, 0, ctx)?.map(|p| Item::Boolean(st.ends_with(&p)))),
        Contains => one(arg_str(args, 0, ctx)?.map(|p| Item::Boolean(st.contains(&p)))),
        Upper => vec![text(st.to_uppercase())],
        Lower => vec![text(st.to_lowercase())],
        Replace => {
            let (Some(pat), Some(rep)) = (arg_str(args, 0, ctx)?, arg_str(args, 1, ctx)?) else {
                return Ok(Vec::new());
            };
            if pat.is_empty() {
                let mut out = rep.clone();
                for c in &chars {
                    out.push(*c);
                    out.push_str(&rep);
                }
                vec![text(out)]
            } else {
                vec![text(st.replace(&pat, &rep))]
            }
        }
        Matches | MatchesFull => {
            let Some(pat) = arg_str(args, 0, ctx)? else {
                return Ok(Vec::new());
            };
            let full = if f == MatchesFull {
                format!("(?s)^(?:{pat})$")
            } else {
                format!("(?s){pat}")
            };
            let re =
                regex::Regex::new(&full).map_err(|_| Error::eval("invalid regular expression"))?;
            vec![Item::Boolean(re.is_match(&st))]
        }
        ReplaceMatches => {
            let (Some(pat), Some(rep)) = (arg_str(args, 0, ctx)?, arg_str(args, 1, ctx)?) else {
                return Ok(Vec::new());
            };
            if pat.is_empty() {
                return Ok(vec![text(st)]);
            }
            let re =
                regex::Regex::new(&pat).map_err(|_| Error::eval("invalid regular expression"))?;
            vec![text(re.replace_all(&st, rep.as_str()).into_owned())]
        }
        Length => vec![Item::Integer(chars.len() as i64)],
        ToChars => chars.iter().map(|c| text(c.to_string())).collect(),
        Trim => vec![text(st.trim().to_string())],
        Split => {
            let Some(sep) = arg_str(args, 0, ctx)? else {
                return Ok(Vec::new());
            };
            st.split(sep.as_str())
                .map(|p| text(p.to_string()))
                .collect()
        }
        Join => {
            // join() is defined on a collection; a single string joins to itself.
            vec![text(st)]
        }
        Encode | Decode | Escape | Unescape => return Err(Error::eval("function not supported")),
        _ => return Err(Error::eval("function not supported")),
    })
}

fn math<'a>(f: Func, item: &Item<'a>, args: &[Ast], ctx: &Ctx<'a, '_>) -> Result<Coll<'a>, Error> {
    use Func::*;
    let sys = item.to_system();
    if let (Abs, Item::Quantity { value, unit }) = (f, &sys) {
        return Ok(vec![Item::Quantity {
            value: Decimal {
                value: value.value.abs(),
                scale: value.scale,
            },
            unit: unit.clone(),
        }]);
    }
    let Some(d) = decimal_of(&sys) else {
        return Err(Error::eval("math function on a value that is not a number"));
    };
    let is_int = matches!(sys, Item::Integer(_));
    let dec = |v: f64| -> Coll<'a> {
        if v.is_finite() {
            vec![Item::Decimal(Decimal::from_f64(v))]
        } else {
            Vec::new()
        }
    };
    Ok(match f {
        Abs if is_int => vec![Item::Integer((d.value as i64).abs())],
        Abs => vec![Item::Decimal(Decimal {
            value: d.value.abs(),
            scale: d.scale,
        })],
        Ceiling => vec![Item::Integer(d.value.ceil() as i64)],
        Floor => vec![Item::Integer(d.value.floor() as i64)],
        Truncate => vec![Item::Integer(d.value.trunc() as i64)],
        Exp => dec(d.value.exp()),
        Ln => dec(d.value.ln()),
        Sqrt => dec(d.value.sqrt()),
        Log => {
            let Some(base) = singleton(&arg(args, 0, ctx)?)?.and_then(decimal_of) else {
                return Ok(Vec::new());
            };
            dec(d.value.ln() / base.value.ln())
        }
        Power => {
            let exp = arg(args, 0, ctx)?;
            let Some(e) = singleton(&exp)? else {
                return Ok(Vec::new());
            };
            let e_int = matches!(e.to_system(), Item::Integer(_));
            let Some(ed) = decimal_of(e) else {
                return Ok(Vec::new());
            };
            let v = d.value.powf(ed.value);
            if is_int && e_int && v.is_finite() {
                vec![Item::Integer(v as i64)]
            } else {
                dec(v)
            }
        }
        Round => {
            let p = crate::ops::singleton_integer(&arg(args, 0, ctx)?)?.unwrap_or(0);
            if p < 0 {
                return Err(Error::eval("round() precision must not be negative"));
            }
            let f = 10f64.powi(p as i32);
            vec![Item::Decimal(Decimal {
                value: (d.value * f).round() / f,
                scale: p as u8,
            })]
        }
        _ => Vec::new(),
    })
}
