//! FHIRPath under hostile input: expressions generated from the grammar (paths of real
//! element names, every function, operators, literals of each type, nesting), and
//! arbitrary text, compiled and evaluated over the demo's real resources.
//!
//! For every expression: compiling gives an expression or a syntax/semantic error, and
//! evaluating gives a collection or an evaluation error — never a panic, and the same
//! answer twice (unless it reads the clock).

mod common;

use oxehr_fhirpath::Expr;
use proptest::prelude::*;
use serde_json::Value;

const NAMES: &[&str] = &[
    "name",
    "given",
    "family",
    "identifier",
    "value",
    "code",
    "coding",
    "system",
    "display",
    "subject",
    "reference",
    "status",
    "effective",
    "component",
    "extension",
    "url",
    "id",
    "meta",
    "contained",
    "birthDate",
    "telecom",
    "address",
    "line",
    "period",
    "start",
    "Patient",
    "Observation",
    "Quantity",
    "$this",
    "$index",
    "$total",
    "%resource",
    "%context",
    "%ucum",
    "%undefined",
    "`odd name`",
];
const FUNCTIONS: &[&str] = &[
    "empty()",
    "exists()",
    "count()",
    "first()",
    "last()",
    "tail()",
    "distinct()",
    "single()",
    "children()",
    "descendants()",
    "toString()",
    "toInteger()",
    "toDecimal()",
    "toDate()",
    "toDateTime()",
    "toQuantity()",
    "lower()",
    "upper()",
    "length()",
    "not()",
    "hasValue()",
    "resolve()",
    "type()",
    "now()",
    "today()",
    "abs()",
    "sqrt()",
    "ln()",
    "exp()",
    "floor()",
    "getResourceKey()",
    "getReferenceKey()",
    "lowBoundary()",
    "highBoundary(8)",
    "trace('t')",
    "toChars()",
    "trim()",
    "encode('base64')",
    "decode('hex')",
    "allTrue()",
    "isDistinct()",
    "sort()",
    "sort(-$this)",
];
const LAMBDAS: &[&str] = &[
    "where",
    "select",
    "all",
    "exists",
    "repeat",
    "skip",
    "take",
    "substring",
    "startsWith",
    "contains",
    "matches",
    "replaceMatches",
    "indexOf",
    "split",
    "join",
    "iif",
    "extension",
    "ofType",
    "is",
    "as",
    "aggregate",
    "union",
    "combine",
    "intersect",
    "exclude",
    "power",
    "log",
    "round",
    "subsetOf",
    "supersetOf",
];
const LITERALS: &[&str] = &[
    "1",
    "-1",
    "0.5",
    "9223372036854775807",
    "99999999999999999999999",
    "'text'",
    "''",
    "'\\u0000'",
    "true",
    "false",
    "{}",
    "@2024",
    "@2024-02-30",
    "@T25:00",
    "@2024-01-01T10:00:00Z",
    "5 'mg'",
    "3 days",
    "1 year",
    "'(a+)+$'",
    "'.*'",
    "'['",
];
const OPS: &[&str] = &[
    ".",
    " | ",
    " + ",
    " - ",
    " * ",
    " / ",
    " div ",
    " mod ",
    " & ",
    " = ",
    " != ",
    " ~ ",
    " < ",
    " >= ",
    " and ",
    " or ",
    " xor ",
    " implies ",
    " in ",
    " contains ",
    " is ",
    " as ",
];

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(NAMES).prop_map(str::to_owned),
        prop::sample::select(LITERALS).prop_map(str::to_owned),
        prop::sample::select(FUNCTIONS).prop_map(str::to_owned),
    ];
    leaf.prop_recursive(5, 40, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(OPS), inner.clone())
                .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
            (inner.clone(), prop::sample::select(FUNCTIONS)).prop_map(|(a, f)| format!("{a}.{f}")),
            (
                inner.clone(),
                prop::sample::select(LAMBDAS),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(a, f, args)| format!("{a}.{f}({})", args.join(", "))),
            inner.clone().prop_map(|a| format!("({a})")),
            (inner.clone(), inner).prop_map(|(a, i)| format!("{a}[{i}]")),
        ]
    })
}

fn seeds() -> &'static [Value] {
    static SEEDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| common::demo_resources(2))
}

fn outcome(e: &Expr, r: &Value) -> String {
    match e.evaluate(r) {
        Ok(items) => format!("{items:?}"),
        Err(err) => format!("error: {err}"),
    }
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn generated_expressions(src in expr(), seed in any::<prop::sample::Index>()) {
        if let Ok(e) = Expr::parse(&src) {
            let r = seed.get(seeds());
            let (a, b) = (outcome(&e, r), outcome(&e, r));
            // The clock moves between two evaluations.
            let clock = ["now()", "today()", "timeOfDay()"].iter().any(|f| src.contains(f));
            if !clock {
                prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn arbitrary_text(src in "\\PC{0,80}", seed in any::<prop::sample::Index>()) {
        if let Ok(e) = Expr::parse(&src) {
            let _ = outcome(&e, seed.get(seeds()));
        }
    }
}

/// Nesting deeper than any real expression: an error, not a stack overflow.
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for (open, close) in [
        ("(", ")"),
        ("-", ""),
        ("a.where(", ")"),
        ("{", "}"),
        ("[", "]"),
    ] {
        let src = format!("{}1{}", open.repeat(50_000), close.repeat(50_000));
        let _ = Expr::parse(&src);
    }
    let chain = format!("1{}", " + 1".repeat(50_000));
    if let Ok(e) = Expr::parse(&chain) {
        let _ = e.evaluate(&serde_json::json!({"resourceType": "Patient"}));
    }
}
