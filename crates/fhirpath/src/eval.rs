//! The tree-walking evaluator: member navigation over the JSON tree (choice elements,
//! primitive companions, contained resources), type tests, variables and operators.

use std::borrow::Cow;

use serde_json::Value;

use crate::functions;
use crate::item::{Item, Node};
use crate::model::{self, Member, Resolved};
use crate::ops;
use crate::parser::{Ast, BinOp, Lit, TypeOp, TypeSpec};
use crate::{Error, Variables};

/// The evaluation context: `%resource`, the focus (`$this`), `$index`, `$total` and the
/// caller's variables.
pub(crate) struct Ctx<'a, 'c> {
    pub root: &'a Value,
    pub this: &'c [Item<'a>],
    pub index: Option<i64>,
    pub total: Option<&'c [Item<'a>]>,
    pub vars: &'c dyn Variables<'a>,
}

impl<'a, 'c> Ctx<'a, 'c> {
    /// A context focused on `this` (for the arguments of `where`, `select`, …).
    pub fn with<'d>(&self, this: &'d [Item<'a>], index: Option<i64>) -> Ctx<'a, 'd>
    where
        'c: 'd,
    {
        Ctx {
            root: self.root,
            this,
            index,
            total: self.total,
            vars: self.vars,
        }
    }
}

pub(crate) type Coll<'a> = Vec<Item<'a>>;

pub(crate) fn eval<'a>(ast: &Ast, ctx: &Ctx<'a, '_>) -> Result<Coll<'a>, Error> {
    match ast {
        Ast::Lit(l) => Ok(vec![literal(l)]),
        Ast::Empty => Ok(Vec::new()),
        Ast::Member(None, name, cache) => {
            let mut out = Vec::new();
            let type_name = name.starts_with(|c: char| c.is_ascii_uppercase());
            for item in ctx.this {
                if type_name {
                    if let Item::Node(n) = item {
                        if n.type_code.is_some_and(|t| model::is_subtype(t, name)) {
                            out.push(item.clone());
                            continue;
                        }
                    }
                }
                member_in(item, name, Some(cache), &mut out);
            }
            Ok(out)
        }
        Ast::Member(Some(recv), name, cache) => {
            let input = eval(recv, ctx)?;
            let mut out = Vec::new();
            for item in &input {
                member_in(item, name, Some(cache), &mut out);
            }
            Ok(out)
        }
        Ast::Call(recv, func, args) => {
            let input = match recv {
                Some(r) => eval(r, ctx)?,
                None => ctx.this.to_vec(),
            };
            functions::call(*func, input, args, ctx)
        }
        Ast::Type(recv, op, spec) => {
            let input = match recv {
                Some(r) => eval(r, ctx)?,
                None => ctx.this.to_vec(),
            };
            match op {
                TypeOp::Is => {
                    if input.len() > 1 {
                        return Err(Error::eval("'is' needs a single item"));
                    }
                    Ok(input
                        .first()
                        .map(|i| Item::Boolean(type_matches(i, spec, false)))
                        .into_iter()
                        .collect())
                }
                // `as` on several items is an error in strict engines; R4 search
                // expressions rely on it filtering, as `ofType` does.
                TypeOp::As | TypeOp::OfType => Ok(input
                    .into_iter()
                    .filter(|i| type_matches(i, spec, true))
                    .collect()),
            }
        }
        Ast::This => Ok(ctx.this.to_vec()),
        Ast::Index => Ok(ctx.index.map(Item::Integer).into_iter().collect()),
        Ast::Total => Ok(ctx.total.map(<[Item]>::to_vec).unwrap_or_default()),
        Ast::Var(name) => variable(name, ctx),
        Ast::Indexer(e, i) => {
            let input = eval(e, ctx)?;
            let idx = eval(i, ctx)?;
            let Some(n) = ops::singleton_integer(&idx)? else {
                return Ok(Vec::new());
            };
            Ok(usize::try_from(n)
                .ok()
                .and_then(|n| input.into_iter().nth(n))
                .into_iter()
                .collect())
        }
        Ast::Neg(e) => {
            let v = eval(e, ctx)?;
            ops::negate(v)
        }
        Ast::Bin(op, l, r) => binary(*op, l, r, ctx),
    }
}

fn binary<'a>(op: BinOp, l: &Ast, r: &Ast, ctx: &Ctx<'a, '_>) -> Result<Coll<'a>, Error> {
    let lhs = eval(l, ctx)?;
    match op {
        BinOp::And => {
            let a = ops::to_bool(&lhs)?;
            if a == Some(false) {
                return Ok(vec![Item::Boolean(false)]);
            }
            let b = ops::to_bool(&eval(r, ctx)?)?;
            return Ok(ops::bool_coll(match (a, b) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }));
        }
        BinOp::Or => {
            let a = ops::to_bool(&lhs)?;
            if a == Some(true) {
                return Ok(vec![Item::Boolean(true)]);
            }
            let b = ops::to_bool(&eval(r, ctx)?)?;
            return Ok(ops::bool_coll(match (a, b) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }));
        }
        BinOp::Xor => {
            let a = ops::to_bool(&lhs)?;
            let b = ops::to_bool(&eval(r, ctx)?)?;
            return Ok(ops::bool_coll(match (a, b) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            }));
        }
        BinOp::Implies => {
            let a = ops::to_bool(&lhs)?;
            if a == Some(false) {
                return Ok(vec![Item::Boolean(true)]);
            }
            let b = ops::to_bool(&eval(r, ctx)?)?;
            return Ok(ops::bool_coll(match (a, b) {
                (Some(true), b) => b,
                (None, Some(true)) => Some(true),
                _ => None,
            }));
        }
        _ => {}
    }
    let rhs = eval(r, ctx)?;
    ops::binary(op, lhs, rhs)
}

fn literal<'a>(l: &Lit) -> Item<'a> {
    match l {
        Lit::Bool(b) => Item::Boolean(*b),
        Lit::Str(s) => Item::String(Cow::Owned(s.clone())),
        Lit::Int(i) => Item::Integer(*i),
        Lit::Dec(d) => Item::Decimal(*d),
        Lit::Date(t) => Item::Date(*t),
        Lit::DateTime(t) => Item::DateTime(*t),
        Lit::Time(t) => Item::Time(*t),
        Lit::Quantity(v, u) => Item::Quantity {
            value: *v,
            unit: Cow::Owned(u.clone()),
        },
    }
}

fn variable<'a>(name: &str, ctx: &Ctx<'a, '_>) -> Result<Coll<'a>, Error> {
    let s = |v: String| Ok(vec![Item::String(Cow::Owned(v))]);
    match name {
        "resource" | "rootResource" | "context" => Ok(vec![Item::Node(Node::resource(ctx.root))]),
        "ucum" => s("http://unitsofmeasure.org".into()),
        "sct" => s("http://snomed.info/sct".into()),
        "loinc" => s("http://loinc.org".into()),
        _ => {
            if let Some(vs) = name.strip_prefix("vs-") {
                s(format!("http://hl7.org/fhir/ValueSet/{vs}"))
            } else if let Some(ext) = name.strip_prefix("ext-") {
                s(format!("http://hl7.org/fhir/StructureDefinition/{ext}"))
            } else if let Some(v) = ctx.vars.variable(name) {
                Ok(v)
            } else {
                Err(Error::eval(format!("unknown variable %{name}")))
            }
        }
    }
}

/// True when `item` is of the type `spec` names (or a subtype of it). With
/// `exact_primitive` (for `as`/`ofType`), a primitive matches its own type only: the suite
/// has `Patient.gender.is(string)` true but `Patient.gender.as(string)` empty.
pub(crate) fn type_matches(item: &Item<'_>, spec: &TypeSpec, exact_primitive: bool) -> bool {
    let ns = spec.namespace.as_deref();
    match item {
        Item::Node(n) => {
            if ns == Some("System") {
                return false;
            }
            // Primitives match their own type only (`code` is not `string` here, as
            // the suite expects); complex types and resources match their bases.
            n.type_code.is_some_and(|t| {
                if exact_primitive && is_primitive(t) {
                    t == spec.name
                } else {
                    model::is_subtype(t, &spec.name)
                }
            })
        }
        other => {
            if ns == Some("FHIR") {
                return false;
            }
            other.type_name().1 == spec.name
        }
    }
}

/// Appends the children named `name` of `item` to `out`.
pub(crate) fn member<'a>(item: &Item<'a>, name: &str, out: &mut Coll<'a>) {
    member_in(item, name, None, out)
}

/// [`member`] for a compiled member step, with the step's lookup cache.
fn member_in<'a>(
    item: &Item<'a>,
    name: &str,
    cache: Option<&model::MemberCache>,
    out: &mut Coll<'a>,
) {
    let Item::Node(n) = item else { return };
    let obj = match n.value {
        Value::Object(o) => o,
        _ => {
            // A primitive's `id` and `extension` live in its `_name` companion.
            if let Some(Value::Object(c)) = n.companion {
                if let Some(r) = model_member("Element", name) {
                    push_values(c.get(name), None, Some(r), out);
                }
            }
            return;
        }
    };
    let Some(ctx) = n.context else {
        push_values(obj.get(name), companion_of(obj, name), None, out);
        return;
    };
    let found = match cache {
        Some(c) => model::member_cached(ctx, name, c),
        None => model::member(ctx, name),
    };
    match found {
        Member::Plain(r) => {
            let v = obj.get(name);
            let companion = if r.type_code.is_some_and(is_primitive) {
                companion_of(obj, name)
            } else {
                None
            };
            if v.is_some() || companion.is_some() {
                push_values(v, companion, Some(*r), out);
            }
        }
        Member::Choice(keys) => {
            for (k, v) in obj {
                if k.len() > name.len() && k.starts_with(name) {
                    if let Some(r) = keys.get(k.as_str()) {
                        let companion = if r.type_code.is_some_and(is_primitive) {
                            companion_of(obj, k)
                        } else {
                            None
                        };
                        push_values(Some(v), companion, Some(*r), out);
                    }
                }
            }
        }
        Member::Unknown => {
            if name != "resourceType" {
                push_values(obj.get(name), None, None, out);
            }
        }
    }
}

fn model_member(context: &str, name: &str) -> Option<Resolved> {
    match model::member(context, name) {
        Member::Plain(r) => Some(*r),
        _ => None,
    }
}

pub(crate) fn companion_of<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Option<&'a Value> {
    // `_key` built on the stack: this runs for every primitive member a path reads.
    let mut buf = [0u8; 64];
    if let Some(dst) = buf.get_mut(1..=key.len()) {
        dst.copy_from_slice(key.as_bytes());
        buf[0] = b'_';
        return std::str::from_utf8(&buf[..=key.len()])
            .ok()
            .and_then(|k| obj.get(k));
    }
    obj.get(&format!("_{key}"))
}

pub(crate) fn is_primitive(ty: &str) -> bool {
    ty.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A value of an element resolved by the model (not a nested resource): typed by it,
/// an inline element as a `BackboneElement`.
pub(crate) fn typed_node<'a>(
    value: &'a Value,
    companion: Option<&'a Value>,
    r: Resolved,
) -> Node<'a> {
    Node {
        value,
        type_code: r.type_code.or(Some("BackboneElement")),
        context: Some(r.context),
        companion,
    }
}

/// Pushes a JSON value (flattening arrays, skipping `null` placeholders) typed by `r`.
pub(crate) fn push_values<'a>(
    v: Option<&'a Value>,
    companion: Option<&'a Value>,
    r: Option<Resolved>,
    out: &mut Coll<'a>,
) {
    let make = |value: &'a Value, companion: Option<&'a Value>| -> Node<'a> {
        match r {
            Some(r) if r.is_resource => Node::resource(value),
            Some(r) => typed_node(value, companion, r),
            None => Node {
                value,
                type_code: None,
                context: None,
                companion,
            },
        }
    };
    match v {
        Some(Value::Array(items)) => {
            let comps = companion.and_then(Value::as_array);
            for (i, it) in items.iter().enumerate() {
                if it.is_null() {
                    continue;
                }
                let c = comps.and_then(|c| c.get(i)).filter(|c| !c.is_null());
                out.push(Item::Node(make(it, c)));
            }
        }
        Some(Value::Null) => {}
        Some(value) => out.push(Item::Node(make(value, companion))),
        None => {}
    }
}

/// All children of a node, in document order (`children()`).
pub(crate) fn children<'a>(item: &Item<'a>, out: &mut Coll<'a>) {
    let Item::Node(n) = item else { return };
    let Value::Object(obj) = n.value else {
        if let Some(Value::Object(c)) = n.companion {
            for (k, v) in c {
                push_values(Some(v), None, model_member("Element", k), out);
            }
        }
        return;
    };
    for (k, v) in obj {
        if k == "resourceType" || k.starts_with('_') {
            continue;
        }
        let r = n.context.and_then(|c| model_member(c, k));
        let companion = if r.and_then(|r| r.type_code).is_some_and(is_primitive) {
            companion_of(obj, k)
        } else {
            None
        };
        push_values(Some(v), companion, r, out);
    }
}
