//! The FHIRPath function library: existence, filtering and projection, subsetting,
//! combining, conversion, string, math, tree navigation, utility, the FHIR additions
//! (`resolve()`, `extension()`) and the SQL on FHIR ones (`getResourceKey()`,
//! `getReferenceKey()`, in `keys`). Each function is resolved at compile time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::eval::{self, Coll, Ctx};
use crate::item::{Decimal, Item, Node};
use crate::ops::{self, singleton, to_bool};
use crate::parser::Ast;
use crate::temporal::{Precision, Temporal};
use crate::Error;

macro_rules! funcs {
    ($($variant:ident $name:literal $min:literal $max:literal),* $(,)?) => {
        /// A function of the library.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Func { $($variant),* }
        impl Func {
            /// The function called `name` taking `arity` arguments.
            pub(crate) fn resolve(name: &str, arity: usize) -> Option<Func> {
                match name {
                    $($name if ($min..=$max).contains(&arity) => Some(Func::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

funcs! {
    Empty "empty" 0 0, Exists "exists" 0 1, All "all" 1 1, AllTrue "allTrue" 0 0,
    AnyTrue "anyTrue" 0 0, AllFalse "allFalse" 0 0, AnyFalse "anyFalse" 0 0,
    SubsetOf "subsetOf" 1 1, SupersetOf "supersetOf" 1 1, Count "count" 0 0,
    Distinct "distinct" 0 0, IsDistinct "isDistinct" 0 0, Where "where" 1 1,
    Select "select" 1 1, Repeat "repeat" 1 1, Single "single" 0 0, First "first" 0 0,
    Last "last" 0 0, Tail "tail" 0 0, Skip "skip" 1 1, Take "take" 1 1,
    Intersect "intersect" 1 1, Exclude "exclude" 1 1, Union "union" 1 1,
    Combine "combine" 1 1, Iif "iif" 2 3, ToBoolean "toBoolean" 0 0,
    ConvertsToBoolean "convertsToBoolean" 0 0, ToInteger "toInteger" 0 0,
    ConvertsToInteger "convertsToInteger" 0 0, ToDecimal "toDecimal" 0 0,
    ConvertsToDecimal "convertsToDecimal" 0 0, ToStr "toString" 0 0,
    ConvertsToString "convertsToString" 0 0, ToDate "toDate" 0 0,
    ConvertsToDate "convertsToDate" 0 0, ToDateTime "toDateTime" 0 0,
    ConvertsToDateTime "convertsToDateTime" 0 0, ToTime "toTime" 0 0,
    ConvertsToTime "convertsToTime" 0 0, ToQuantity "toQuantity" 0 1,
    ConvertsToQuantity "convertsToQuantity" 0 1, IndexOf "indexOf" 1 1,
    Substring "substring" 1 2, StartsWith "startsWith" 1 1, EndsWith "endsWith" 1 1,
    Contains "contains" 1 1, Upper "upper" 0 0, Lower "lower" 0 0, Replace "replace" 2 2,
    Matches "matches" 1 1, MatchesFull "matchesFull" 1 1, Sort "sort" 0 9, ReplaceMatches "replaceMatches" 2 2, Length "length" 0 0,
    ToChars "toChars" 0 0, Trim "trim" 0 0, Split "split" 1 1, Join "join" 0 1,
    Abs "abs" 0 0, Ceiling "ceiling" 0 0, Exp "exp" 0 0, Floor "floor" 0 0, Ln "ln" 0 0,
    Log "log" 1 1, Power "power" 1 1, Round "round" 0 1, Sqrt "sqrt" 0 0,
    Truncate "truncate" 0 0, Children "children" 0 0, Descendants "descendants" 0 0,
    Trace "trace" 1 2, Now "now" 0 0, Today "today" 0 0, TimeOfDay "timeOfDay" 0 0,
    Not "not" 0 0, Resolve "resolve" 0 0, Extension "extension" 1 1,
    HasValue "hasValue" 0 0, GetValue "getValue" 0 0, Type "type" 0 0,
    Aggregate "aggregate" 1 2, Encode "encode" 1 1, Decode "decode" 1 1,
    Escape "escape" 1 1, Unescape "unescape" 1 1,
    LowBoundary "lowBoundary" 0 1, HighBoundary "highBoundary" 0 1,
    GetResourceKey "getResourceKey" 0 0, GetReferenceKey "getReferenceKey" 0 1,
}

fn s<'a>(v: String) -> Item<'a> {
    Item::String(Cow::Owned(v))
}

fn b<'a>(v: bool) -> Coll<'a> {
    vec![Item::Boolean(v)]
}

/// Evaluates a non-lambda argument against the caller's context.
fn arg<'a>(args: &[Ast], i: usize, ctx: &Ctx<'a, '_>) -> Result<Coll<'a>, Error> {
    match args.get(i) {
        Some(a) => eval::eval(a, ctx),
        None => Ok(Vec::new()),
    }
}

fn arg_str<'a>(args: &[Ast], i: usize, ctx: &Ctx<'a, '_>) -> Result<Option<String>, Error> {
    let c = arg(args, i, ctx)?;
    Ok(singleton(&c)?.and_then(|i| i.as_str().map(str::to_string)))
}

fn arg_int(args: &[Ast], i: usize, ctx: &Ctx<'_, '_>) -> Result<Option<i64>, Error> {
    ops::singleton_integer(&arg(args, i, ctx)?)
}

/// Runs a lambda argument once per input item, with `$this` and `$index` bound.
fn per_item<'a>(
    input: &[Item<'a>],
    body: &Ast,
    ctx: &Ctx<'a, '_>,
    mut f: impl FnMut(usize, Coll<'a>) -> Result<bool, Error>,
) -> Result<(), Error> {
    for (i, item) in input.iter().enumerate() {
        let one = [item.clone()];
        let c = ctx.with(&one, Some(i as i64));
        let r = eval::eval(body, &c)?;
        if !f(i, r)? {
            break;
        }
    }
    Ok(())
}

pub(crate) fn call<'a>(
    f: Func,
    input: Coll<'a>,
    args: &[Ast],
    ctx: &Ctx<'a, '_>,
) -> Result<Coll<'a>, Error> {
    use Func::*;
    match f {
        Empty => Ok(b(input.is_empty())),
        Exists => {
            if args.is_empty() {
                return Ok(b(!input.is_empty()));
            }
            let mut found = false;
            per_item(&input, &args[0], ctx, |_, r| {
                found = to_bool(&r)? == Some(true);
                Ok(!found)
            })?;
            Ok(b(found))
        }
        All => {
            let mut all = true;
            per_item(&input, &args[0], ctx, |_, r| {
                all = to_bool(&r)? == Some(true);
                Ok(all)
            })?;
            Ok(b(all))
        }
        AllTrue | AnyTrue | AllFalse | AnyFalse => {
            let vals: Vec<Option<bool>> = input
                .iter()
                .map(|i| match i.to_system() {
                    Item::Boolean(v) => Ok(Some(v)),
                    _ => Err(Error::eval("expected Boolean items")),
                })
                .collect::<Result<_, _>>()?;
            Ok(b(match f {
                AllTrue => vals.iter().all(|v| *v == Some(true)),
                AnyTrue => vals.contains(&Some(true)),
                AllFalse => vals.iter().all(|v| *v == Some(false)),
                _ => vals.contains(&Some(false)),
            }))
        }
        SubsetOf | SupersetOf => {
            let other = arg(args, 0, ctx)?;
            let (sub, sup) = if f == SubsetOf {
                (&input, &other)
            } else {
                (&other, &input)
            };
            Ok(b(sub.iter().all(|x| {
                sup.iter().any(|y| ops::equal(x, y) == Some(true))
            })))
        }
        Count => Ok(vec![Item::Integer(input.len() as i64)]),
        Distinct => Ok(distinct(input)),
        IsDistinct => {
            let n = input.len();
            Ok(b(distinct(input).len() == n))
        }
        Where => {
            let mut out = Vec::new();
            per_item(&input, &args[0], ctx, |i, r| {
                if to_bool(&r)? == Some(true) {
                    out.push(input[i].clone());
                }
                Ok(true)
            })?;
            Ok(out)
        }
        Select => {
            let mut out = Vec::new();
            per_item(&input, &args[0], ctx, |_, r| {
                out.extend(r);
                Ok(true)
            })?;
            Ok(out)
        }
        Repeat => {
            let mut out: Coll<'a> = Vec::new();
            let mut frontier = input;
            while !frontier.is_empty() {
                let mut next = Vec::new();
                per_item(&frontier, &args[0], ctx, |_, r| {
                    next.extend(r);
                    Ok(true)
                })?;
                frontier = Vec::new();
                for n in next {
                    if !out.iter().any(|o| ops::equal(o, &n) == Some(true)) {
                        out.push(n.clone());
                        frontier.push(n);
                    }
                }
            }
            Ok(out)
        }
        Single => match input.len() {
            0 | 1 => Ok(input),
            _ => Err(Error::eval("single() on a collection of several items")),
        },
        First => Ok(input.into_iter().take(1).collect()),
        Last => Ok(input.into_iter().last().into_iter().collect()),
        Tail => Ok(input.into_iter().skip(1).collect()),
        Skip => {
            let n = arg_int(args, 0, ctx)?.unwrap_or(0).max(0) as usize;
            Ok(input.into_iter().skip(n).collect())
        }
        Take => {
            let n = arg_int(args, 0, ctx)?.unwrap_or(0).max(0) as usize;
            Ok(input.into_iter().take(n).collect())
        }
        Intersect => {
            let other = arg(args, 0, ctx)?;
            let kept = input
                .into_iter()
                .filter(|x| other.iter().any(|y| ops::equal(x, y) == Some(true)))
                .collect();
            Ok(distinct(kept))
        }
        Exclude => {
            let other = arg(args, 0, ctx)?;
            Ok(input
                .into_iter()
                .filter(|x| !other.iter().any(|y| ops::equal(x, y) == Some(true)))
                .collect())
        }
        Union => ops::binary(crate::parser::BinOp::Union, input, arg(args, 0, ctx)?),
        Combine => {
            let mut out = input;
            out.extend(arg(args, 0, ctx)?);
            Ok(out)
        }
        Iif => {
            if input.len() > 1 {
                return Err(Error::eval("iif() on a collection of several items"));
            }
            let c = ctx.with(&input, ctx.index);
            let crit = eval::eval(&args[0], &c)?;
            if crit.len() == 1 && !matches!(crit[0].to_system(), Item::Boolean(_)) {
                return Err(Error::eval("iif() criterion is not a Boolean"));
            }
            let cond = to_bool(&crit)?;
            if cond == Some(true) {
                eval::eval(&args[1], &c)
            } else if let Some(e) = args.get(2) {
                eval::eval(e, &c)
            } else {
                Ok(Vec::new())
            }
        }
        Not => Ok(to_bool(&input)?
            .map(|v| Item::Boolean(!v))
            .into_iter()
            .collect()),
        Children => {
            let mut out = Vec::new();
            for i in &input {
                eval::children(i, &mut out);
            }
            Ok(out)
        }
        Descendants => {
            let mut out = Vec::new();
            let mut frontier = input;
            while !frontier.is_empty() {
                let mut next = Vec::new();
                for i in &frontier {
                    eval::children(i, &mut next);
                }
                out.extend(next.iter().cloned());
                frontier = next;
            }
            Ok(out)
        }
        Trace => Ok(input),
        Resolve => Ok(input.iter().filter_map(|i| resolve(i, ctx.root)).collect()),
        Extension => {
            let Some(url) = arg_str(args, 0, ctx)? else {
                return Ok(Vec::new());
            };
            let mut exts = Vec::new();
            for i in &input {
                eval::member(i, "extension", &mut exts);
            }
            Ok(exts
                .into_iter()
                .filter(|e| match e {
                    Item::Node(n) => {
                        n.value.get("url").and_then(Value::as_str) == Some(url.as_str())
                    }
                    _ => false,
                })
                .collect())
        }
        HasValue => Ok(b(
            matches!(input.as_slice(), [Item::Node(n)] if !n.value.is_object() && !n.value.is_array()),
        )),
        GetValue => Ok(match input.as_slice() {
            [i @ Item::Node(n)] if !n.value.is_object() => vec![i.to_system()],
            _ => Vec::new(),
        }),
        Type => Ok(input.iter().map(type_info).collect()),
        Aggregate => {
            let mut total = arg(args, 1, ctx)?;
            for (i, item) in input.iter().enumerate() {
                let one = [item.clone()];
                let c = Ctx {
                    root: ctx.root,
                    this: &one,
                    index: Some(i as i64),
                    total: Some(&total),
                    vars: ctx.vars,
                };
                let r = eval::eval(&args[0], &c)?;
                total = r;
            }
            Ok(total)
        }
        Now | Today | TimeOfDay => Ok(vec![now(f)]),
        Sort => sort(input, args, ctx),
        Join => {
            let sep = arg_str(args, 0, ctx)?.unwrap_or_default();
            let parts: Vec<String> = input
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect();
            Ok(vec![s(parts.join(&sep))])
        }
        LowBoundary | HighBoundary => {
            let precision = arg_int(args, 0, ctx)?;
            Ok(singleton(&input)?
                .and_then(|i| crate::boundary::boundary(i, precision, f == HighBoundary))
                .into_iter()
                .collect())
        }
        GetResourceKey => Ok(crate::keys::resource_keys(&input)),
        GetReferenceKey => {
            let ty = arg_str(args, 0, ctx)?;
            Ok(crate::keys::reference_keys(&input, ty.as_deref()))
        }
        _ => crate::functions_text::call(f, input, args, ctx),
    }
}

/// `sort(key, …)`: a key written `-expr` sorts descending; no key sorts by value.
fn sort<'a>(input: Coll<'a>, args: &[Ast], ctx: &Ctx<'a, '_>) -> Result<Coll<'a>, Error> {
    let mut keyed = Vec::with_capacity(input.len());
    for (i, item) in input.into_iter().enumerate() {
        let mut keys = Vec::new();
        let one = [item.clone()];
        let c = ctx.with(&one, Some(i as i64));
        for a in args {
            let (expr, desc) = match a {
                Ast::Neg(inner) => (inner.as_ref(), true),
                other => (other, false),
            };
            keys.push((eval::eval(expr, &c)?.into_iter().next(), desc));
        }
        if args.is_empty() {
            keys.push((Some(item.clone()), false));
        }
        keyed.push((keys, item));
    }
    let mut failed = false;
    keyed.sort_by(|(ka, _), (kb, _)| {
        for ((a, desc), (b, _)) in ka.iter().zip(kb) {
            let o = match (a, b) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => match ops::compare(a, b) {
                    Ok(Some(o)) => o,
                    _ => {
                        failed = true;
                        std::cmp::Ordering::Equal
                    }
                },
            };
            if o != std::cmp::Ordering::Equal {
                return if *desc { o.reverse() } else { o };
            }
        }
        std::cmp::Ordering::Equal
    });
    if failed {
        return Err(Error::eval("sort() keys are not comparable"));
    }
    Ok(keyed.into_iter().map(|(_, i)| i).collect())
}

fn distinct(input: Coll<'_>) -> Coll<'_> {
    let mut out: Coll<'_> = Vec::with_capacity(input.len());
    for i in input {
        if !out.iter().any(|o| ops::equal(o, &i) == Some(true)) {
            out.push(i);
        }
    }
    out
}

static NULL: Value = Value::Null;

/// `resolve()` without fetching: a literal reference yields a placeholder node typed by
/// its target type; `#id` yields the contained resource.
fn resolve<'a>(item: &Item<'a>, root: &'a Value) -> Option<Item<'a>> {
    let reference = match item {
        Item::Node(n) if n.value.is_object() => n.value.get("reference")?.as_str()?,
        other => other.as_str()?,
    };
    if let Some(id) = reference.strip_prefix('#') {
        let contained = root.get("contained")?.as_array()?;
        let c = contained
            .iter()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(id))?;
        return Some(Item::Node(Node::resource(c)));
    }
    let ty = reference_type(reference)?;
    Some(Item::Node(Node {
        value: &NULL,
        type_code: Some(ty),
        context: None,
        companion: None,
    }))
}

/// The resource type a literal reference points to (`Patient/1`,
/// `http://x/fhir/Patient/1/_history/2`).
pub fn reference_type(reference: &str) -> Option<&'static str> {
    let r = reference.split(['?', '#']).next().unwrap_or(reference);
    let r = match r.find("/_history/") {
        Some(i) => &r[..i],
        None => r,
    };
    let mut parts = r.rsplit('/');
    let _id = parts.next().filter(|id| !id.is_empty())?;
    let ty = parts.next()?;
    let name = crate::model::static_type_name(ty)?;
    oxehr_fhir::Definitions::r4()
        .is_resource_type(name)
        .then_some(name)
}

/// `type()`: a small `{namespace, name}` object per distinct type, built once.
fn type_info<'a>(item: &Item<'a>) -> Item<'a> {
    static INFOS: OnceLock<Mutex<HashMap<(&'static str, &'static str), &'static Value>>> =
        OnceLock::new();
    let (ns, name) = item.type_name();
    let map = INFOS.get_or_init(|| Mutex::new(HashMap::new()));
    let value: &'static Value = match map.lock() {
        Ok(mut m) => m.entry((ns, name)).or_insert_with(|| {
            Box::leak(Box::new(serde_json::json!({"namespace": ns, "name": name})))
        }),
        Err(_) => &NULL,
    };
    Item::Node(Node {
        value,
        type_code: None,
        context: None,
        companion: None,
    })
}

fn now<'a>(f: Func) -> Item<'a> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let base = Temporal::parse_datetime("1970-01-01T00:00:00.000Z");
    let t = base
        .and_then(|t| t.add(d as f64, "millisecond", false))
        .unwrap_or(Temporal {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
            frac_digits: 3,
            precision: Precision::Millisecond,
            tz: Some(0),
        });
    match f {
        Func::Today => Item::Date(Temporal {
            precision: Precision::Day,
            tz: None,
            ..t
        }),
        Func::TimeOfDay => Item::Time(Temporal { tz: None, ..t }),
        _ => Item::DateTime(t),
    }
}

pub(crate) fn decimal_of(i: &Item<'_>) -> Option<Decimal> {
    match i.to_system() {
        Item::Integer(v) => Some(Decimal::from_int(v)),
        Item::Decimal(d) => Some(d),
        _ => None,
    }
}

pub(crate) fn text<'a>(v: String) -> Item<'a> {
    s(v)
}
