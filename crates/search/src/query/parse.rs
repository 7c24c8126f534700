//! From decoded `name=value` pairs to a [`Query`].

use std::collections::HashSet;

use crate::registry::{ParamKind, Registry, SearchParam};

use super::limits::{self, Budget};
use super::value::{parse_value, uri_prefix_count, ValueContext};
use super::{
    Chained, Condition, Filter, Include, Query, QueryError, SortBy, SortKey, Table, Total,
    ValueTest, MAX_CHAIN_DEPTH, MAX_TEXT_WORDS,
};
use crate::index::ParamKey;

/// What the parser needs to know beyond the parameters.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions<'a> {
    /// Ignore unknown parameters (`Prefer: handling=lenient`) instead of failing.
    pub lenient: bool,
    /// The server's base URL (`http://host/fhir`): absolute references under it are
    /// searched as the relative references they are stored as.
    pub base_url: Option<&'a str>,
    /// Now, in µs since the epoch (for the `ap` prefix on dates).
    pub now_micros: i64,
}

/// The parameters that shape the result rather than select resources.
const RESULT_PARAMETERS: [&str; 14] = [
    "_count",
    "_total",
    "_page",
    "_sort",
    "_include",
    "_revinclude",
    "_contained",
    "_type",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
    "_containedType",
    "_offset",
];

/// A parameter's name without its modifier (`_include` of `_include:iterate`).
pub(super) fn base_of(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// Whether `name=value` selects resources. A parameter without a value selects nothing
/// and is ignored (as a blank field of a search form).
pub fn is_filter(name: &str, value: &str) -> bool {
    !value.is_empty() && !RESULT_PARAMETERS.contains(&base_of(name))
}

/// Parses a search of `types` (one for a type-level search; for a system search the
/// types of `_type`, or every type when `types` is empty, the caller passing them; a
/// type named twice counts once). The limits of the query (`MAX_*`) are checked first,
/// on the pairs as sent.
pub fn parse(
    types: &[String],
    pairs: &[(String, String)],
    opts: &ParseOptions<'_>,
) -> Result<Query, QueryError> {
    limits::check(pairs)?;
    let mut seen = HashSet::new();
    let types: Vec<String> = types
        .iter()
        .filter(|t| seen.insert(t.as_str()))
        .cloned()
        .collect();
    let types = types.as_slice();
    let registry = Registry::r4();
    let ctx = ValueContext {
        base_url: opts.base_url,
        now_micros: opts.now_micros,
    };
    let mut budget = Budget::default();
    let mut q = Query {
        types: types.to_vec(),
        filters: Vec::new(),
        sort: Vec::new(),
        include: Vec::new(),
        revinclude: Vec::new(),
        count: None,
        total: Total::default(),
        ignored: Vec::new(),
        page: None,
    };
    for (name, value) in pairs {
        if is_filter(name, value) {
            let before = budget;
            match parse_filter(registry, types, name, value, 0, &ctx, &mut budget) {
                Ok(f) => q.filters.push(f),
                Err(QueryError::UnknownParameter { .. }) if opts.lenient => {
                    budget = before;
                    q.ignored.push(name.clone())
                }
                Err(e) => return Err(e),
            }
            continue;
        }
        let base = base_of(name);
        match base {
            "_count" => {
                q.count =
                    Some(value.parse().map_err(|_| {
                        QueryError::invalid(name, "must be a non-negative integer")
                    })?);
            }
            "_total" => {
                q.total = match value.as_str() {
                    "none" => Total::None,
                    "estimate" => Total::Estimate,
                    "accurate" => Total::Accurate,
                    _ => {
                        return Err(QueryError::invalid(
                            name,
                            "must be none, estimate or accurate",
                        ))
                    }
                }
            }
            "_page" => q.page = Some(value.clone()),
            "_sort" => {
                if !q.sort.is_empty() {
                    return Err(QueryError::invalid(name, "is given more than once"));
                }
                q.sort = parse_sort(registry, types, value)?;
            }
            "_include" | "_revinclude" => {
                let modifier = name.split_once(':').map(|(_, m)| m);
                let iterate = match modifier {
                    None => false,
                    Some("iterate" | "recurse") => true,
                    Some(m) => {
                        return Err(QueryError::invalid(
                            name,
                            format!("unknown modifier ':{m}'"),
                        ))
                    }
                };
                let rev = base == "_revinclude";
                for v in split_or(value) {
                    let inc = parse_include(registry, types, name, &v, iterate, rev)?;
                    if rev {
                        q.revinclude.push(inc);
                    } else {
                        q.include.push(inc);
                    }
                }
            }
            "_contained" if value != "false" => {
                return Err(QueryError::unsupported(
                    name,
                    "searching contained resources",
                ));
            }
            // `_type` is the caller's (`types`); `_summary`, `_elements`, `_format` and
            // `_pretty` shape the response; offset paging is replaced by `_page` links,
            // and an `_offset` from an old link is not an error; a parameter without a
            // value is ignored (`is_filter`).
            _ => {}
        }
    }
    Ok(q)
}

/// The parameter `code` on every type of `types`, or an unknown-parameter error.
fn lookup<'r>(
    registry: &'r Registry,
    types: &[String],
    code: &str,
    name: &str,
) -> Result<Vec<&'r SearchParam>, QueryError> {
    let found: Vec<&SearchParam> = types
        .iter()
        .filter_map(|t| registry.param(t, code))
        .collect();
    if found.len() != types.len() || found.is_empty() {
        return Err(QueryError::UnknownParameter {
            param: name.to_string(),
            rtype: types.join(","),
        });
    }
    if found.iter().any(|p| p.kind != found[0].kind) {
        return Err(QueryError::invalid(
            name,
            "has different types on the resource types searched",
        ));
    }
    Ok(found)
}

fn keys(params: &[&SearchParam]) -> Vec<ParamKey> {
    params
        .iter()
        .flat_map(|p| p.stored_keys.iter().copied())
        .collect()
}

/// `params` split by the target type their rows must have: those with rows of their
/// own (`None`), and each type a parameter is narrowed to (`patient` reads `subject`'s
/// rows that refer to a Patient), with the parameters of each.
fn by_required_target<'a>(
    params: &[&'a SearchParam],
) -> Vec<(Option<String>, Vec<&'a SearchParam>)> {
    let mut groups: Vec<(Option<String>, Vec<&SearchParam>)> = Vec::new();
    for &p in params {
        let t = p.required_target().map(str::to_owned);
        match groups.iter_mut().find(|(g, _)| *g == t) {
            Some((_, ps)) => ps.push(p),
            None => groups.push((t, vec![p])),
        }
    }
    groups
}

/// `test` restricted to rows that refer to a `ty`: `None` when it names another type,
/// so that nothing can match.
fn narrow_test(test: &ValueTest, ty: &str) -> Option<ValueTest> {
    Some(match test {
        ValueTest::Reference { target_type, id } => match target_type.as_deref() {
            Some(t) if t != ty => return None,
            _ => ValueTest::Reference {
                target_type: Some(ty.to_owned()),
                id: id.clone(),
            },
        },
        ValueTest::ReferenceUrl { url, version, .. } => ValueTest::ReferenceUrl {
            url: url.clone(),
            version: version.clone(),
            target_type: Some(ty.to_owned()),
        },
        ValueTest::ReferenceIdentifier { system, value, .. } => ValueTest::ReferenceIdentifier {
            system: system.clone(),
            value: value.clone(),
            target_type: Some(ty.to_owned()),
        },
        other => other.clone(),
    })
}

/// One `name=value` that selects resources, on resources of `types`, spending one
/// parameter and its values (once per type searched) of `budget` before parsing them.
fn parse_filter(
    registry: &Registry,
    types: &[String],
    name: &str,
    value: &str,
    depth: usize,
    ctx: &ValueContext<'_>,
    budget: &mut Budget,
) -> Result<Filter, QueryError> {
    if depth > MAX_CHAIN_DEPTH {
        return Err(limits::too_deep(name));
    }
    budget.parameter(name)?;
    if let Some(rest) = name.strip_prefix("_has:") {
        return parse_has(registry, types, name, rest, value, depth, ctx, budget);
    }
    // A chain: `param[:Type].rest`.
    if let Some((head, rest)) = name.split_once('.') {
        return parse_chain(registry, types, name, head, rest, value, depth, ctx, budget);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    };
    if code.is_empty() {
        return Err(QueryError::invalid(name, "has no parameter name"));
    }
    match code {
        "_id" => {
            no_modifier(name, modifier)?;
            let values = split_or(value);
            budget.values(name, values.len())?;
            let any_of = values.into_iter().map(Condition::Id).collect();
            return Ok(Filter {
                negated: false,
                any_of,
            });
        }
        "_lastUpdated" => {
            no_modifier(name, modifier)?;
            let values = split_or(value);
            budget.values(name, values.len())?;
            let mut any_of = Vec::new();
            for v in values {
                match parse_value(name, ParamKind::Date, None, &v, ctx)? {
                    ValueTest::Date(d) => any_of.push(Condition::LastUpdated(d)),
                    _ => unreachable!("a date value parses to a date test"),
                }
            }
            return Ok(Filter {
                negated: false,
                any_of,
            });
        }
        "_list" => {
            no_modifier(name, modifier)?;
            let values = split_or(value);
            // The store tests the List's items against each type searched.
            budget.values(name, values.len().saturating_mul(types.len().max(1)))?;
            let any_of = values
                .into_iter()
                .map(|v| Condition::InList(v.trim_start_matches("List/").to_string()))
                .collect();
            return Ok(Filter {
                negated: false,
                any_of,
            });
        }
        "_text" | "_content" => {
            no_modifier(name, modifier)?;
            if code == "_text" {
                // Only DomainResources have a narrative.
                lookup(registry, types, code, name)?;
            }
            let params: Vec<ParamKey> = types.iter().map(|t| ParamKey::of(t, code)).collect();
            let mut any_of = Vec::new();
            for v in split_or(value) {
                let words: Vec<String> = crate::extract::string::normalize(&v)
                    .split(' ')
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect();
                if words.is_empty() {
                    return Err(QueryError::invalid(name, "has no words to search for"));
                }
                if words.len() > MAX_TEXT_WORDS {
                    return Err(QueryError::invalid(
                        name,
                        format!("at most {MAX_TEXT_WORDS} words in a value"),
                    ));
                }
                // One per type searched (its key), one more per further word (a test
                // of its own).
                budget.values(name, params.len() + words.len() - 1)?;
                any_of.push(Condition::Value {
                    params: params.clone(),
                    test: ValueTest::Text(words),
                });
            }
            return Ok(Filter {
                negated: false,
                any_of,
            });
        }
        "_query" | "_filter" => {
            return Err(QueryError::unsupported(name, "this parameter"));
        }
        _ => {}
    }
    let params = lookup(registry, types, code, name)?;
    let kind = params[0].kind;
    let table = Table::of(kind)
        .ok_or_else(|| QueryError::unsupported(name, "searching this special parameter"))?;
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(QueryError::invalid(name, ":missing takes true or false")),
        };
        budget.values(name, params.len())?;
        // One condition over all of them (a resource lacks the parameter when it has
        // none of these rows), narrowed parameters' rows typed.
        let (mut plain, mut typed) = (Vec::new(), Vec::new());
        for (target, group) in by_required_target(&params) {
            match target {
                None => plain = keys(&group),
                Some(t) => typed.extend(keys(&group).into_iter().map(|k| (k, t.clone()))),
            }
        }
        return Ok(Filter {
            negated: false,
            any_of: vec![Condition::Missing {
                params: plain,
                table,
                missing,
                typed,
            }],
        });
    }
    let negated = modifier == Some("not");
    if negated && kind != ParamKind::Token {
        return Err(QueryError::invalid(
            name,
            ":not applies to token parameters",
        ));
    }
    // `:Type` on a reference is a type restriction, not a value modifier.
    let (modifier, type_restriction) = match modifier {
        Some(m) if kind == ParamKind::Reference && super::is_resource_type(m) => {
            let allowed = params.iter().any(|p| p.targets.iter().any(|t| t == m));
            if !allowed {
                return Err(QueryError::invalid(
                    name,
                    format!("{m} is not a target type of this reference parameter"),
                ));
            }
            (None, Some(m))
        }
        Some("not") => (None, None),
        m => (m, None),
    };
    let components: Vec<ParamKind> = params[0].components.iter().map(|c| c.kind).collect();
    let values = split_or(value);
    budget.values(name, values.len().saturating_mul(params.len()))?;
    let mut any_of = Vec::new();
    for v in values {
        if kind == ParamKind::Uri && modifier == Some("above") {
            // The uri is one value already; each further prefix is one more (another
            // argument of its `IN` list), counted before the prefixes are made.
            budget.values(name, uri_prefix_count(&v).saturating_sub(1))?;
        }
        let test = if kind == ParamKind::Composite {
            super::value::parse_composite(name, &components, modifier, &v, ctx)?
        } else {
            let mut t = parse_value(name, kind, modifier, &v, ctx)?;
            if let (Some(ty), ValueTest::Reference { target_type, id }) = (type_restriction, &t) {
                if target_type.as_deref().is_some_and(|t| t != ty) {
                    return Err(QueryError::invalid(
                        name,
                        format!("the value names another type than {ty}"),
                    ));
                }
                t = ValueTest::Reference {
                    target_type: Some(ty.to_string()),
                    id: id.clone(),
                };
            }
            t
        };
        if matches!(test, ValueTest::OfType { .. }) {
            // The parts' own `:of-type` rows, for a union.
            let params = types
                .iter()
                .flat_map(|t| {
                    let codes = match registry.param(t, code) {
                        Some(p) if !p.union_of.is_empty() => p.union_of.clone(),
                        _ => vec![code.to_owned()],
                    };
                    codes
                        .into_iter()
                        .map(move |c| ParamKey::of(t, &format!("{c}:of-type")))
                })
                .collect();
            any_of.push(Condition::Value { params, test });
            continue;
        }
        for (target, group) in by_required_target(&params) {
            let test = match &target {
                None => Some(test.clone()),
                Some(t) => narrow_test(&test, t),
            };
            if let Some(test) = test {
                any_of.push(Condition::Value {
                    params: keys(&group),
                    test,
                });
            }
        }
    }
    Ok(Filter { negated, any_of })
}

#[allow(clippy::too_many_arguments)]
fn parse_chain(
    registry: &Registry,
    types: &[String],
    name: &str,
    head: &str,
    rest: &str,
    value: &str,
    depth: usize,
    ctx: &ValueContext<'_>,
    budget: &mut Budget,
) -> Result<Filter, QueryError> {
    let (code, type_modifier) = match head.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (head, None),
    };
    let params = lookup(registry, types, code, name)?;
    if params[0].kind != ParamKind::Reference {
        return Err(QueryError::invalid(
            name,
            format!("'{code}' is not a reference parameter, so it cannot be chained"),
        ));
    }
    // A parameter narrowed to one target type refers to that type only.
    let targets_of = |p: &SearchParam| -> Vec<String> {
        match p.required_target() {
            Some(t) => vec![t.to_owned()],
            None => p.targets.clone(),
        }
    };
    let mut targets: Vec<String> = Vec::new();
    for p in &params {
        for t in targets_of(p) {
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    if let Some(m) = type_modifier {
        if !params.iter().any(|p| p.targets.iter().any(|t| t == m)) {
            return Err(QueryError::invalid(
                name,
                format!("{m} is not a target type of '{code}'"),
            ));
        }
        targets.retain(|t| t == m);
    }
    // Without a type, every target type on which the chained parameter exists.
    let next_code = rest.split(['.', ':']).next().unwrap_or(rest).to_string();
    let mut chained = Vec::new();
    let mut first_err = None;
    for t in &targets {
        if !next_code.starts_with('_') && registry.param(t, &next_code).is_none() {
            continue;
        }
        // Each target type searched spends its own parameter and values.
        let before = *budget;
        match parse_filter(
            registry,
            std::slice::from_ref(t),
            rest,
            value,
            depth + 1,
            ctx,
            budget,
        ) {
            Ok(f) => chained.push(Chained {
                target_type: t.clone(),
                filter: Box::new(f),
            }),
            Err(e @ QueryError::Invalid { .. }) => return Err(rename(e, name)),
            Err(e) => {
                *budget = before;
                first_err.get_or_insert(e);
            }
        }
    }
    if chained.is_empty() {
        if targets.is_empty() {
            // `patient:Group.name=…`: a type the parameter allows but never refers to.
            return Ok(Filter {
                negated: false,
                any_of: Vec::new(),
            });
        }
        return Err(match first_err {
            Some(e) => rename(e, name),
            None => QueryError::UnknownParameter {
                param: name.to_string(),
                rtype: targets.join(","),
            },
        });
    }
    // One chain per set of parameters that refer to the same types.
    let mut any_of = Vec::new();
    for (target, group) in by_required_target(&params) {
        let theirs: Vec<String> = match target {
            Some(t) => vec![t],
            None => group.iter().flat_map(|p| p.targets.clone()).collect(),
        };
        let target_types: Vec<Chained> = chained
            .iter()
            .filter(|c| theirs.contains(&c.target_type))
            .cloned()
            .collect();
        if !target_types.is_empty() {
            any_of.push(Condition::Chain {
                params: keys(&group),
                target_types,
            });
        }
    }
    Ok(Filter {
        negated: false,
        any_of,
    })
}

/// `_has:Source:param:rest` on resources of `types`.
#[allow(clippy::too_many_arguments)]
fn parse_has(
    registry: &Registry,
    types: &[String],
    name: &str,
    rest: &str,
    value: &str,
    depth: usize,
    ctx: &ValueContext<'_>,
    budget: &mut Budget,
) -> Result<Filter, QueryError> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(code), Some(inner)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(QueryError::invalid(
            name,
            "_has takes the form _has:Type:reference-parameter:parameter",
        ));
    };
    if registry.params(source).is_empty() {
        return Err(QueryError::invalid(
            name,
            format!("'{source}' is not a resource type"),
        ));
    }
    let Some(p) = registry.param(source, code) else {
        return Err(QueryError::UnknownParameter {
            param: name.to_string(),
            rtype: source.to_string(),
        });
    };
    if p.kind != ParamKind::Reference {
        return Err(QueryError::invalid(
            name,
            format!("'{source}.{code}' is not a reference parameter"),
        ));
    }
    if !types.iter().all(|t| p.targets.contains(t)) {
        return Err(QueryError::invalid(
            name,
            format!("'{source}.{code}' does not refer to {}", types.join(",")),
        ));
    }
    let filter = parse_filter(
        registry,
        &[source.to_string()],
        inner,
        value,
        depth + 1,
        ctx,
        budget,
    )
    .map_err(|e| rename(e, name))?;
    if let Some(t) = p.required_target() {
        // `patient` refers to Patients only: a search of another type finds none.
        if types.iter().all(|x| x != t) {
            return Ok(Filter {
                negated: false,
                any_of: Vec::new(),
            });
        }
        if types.iter().any(|x| x != t) {
            return Err(QueryError::unsupported(
                name,
                format!("_has through '{source}.{code}' on types other than {t}"),
            ));
        }
    }
    Ok(Filter {
        negated: false,
        any_of: vec![Condition::Has {
            source_type: source.to_string(),
            params: p.stored_keys.clone(),
            filter: Box::new(filter),
        }],
    })
}

/// Reports an error of a chained or nested parameter under the name the user wrote.
fn rename(e: QueryError, name: &str) -> QueryError {
    match e {
        QueryError::UnknownParameter { rtype, .. } => QueryError::UnknownParameter {
            param: name.to_string(),
            rtype,
        },
        QueryError::Invalid { reason, .. } => QueryError::Invalid {
            param: name.to_string(),
            reason,
        },
        QueryError::NotSupported { reason, .. } => QueryError::NotSupported {
            param: name.to_string(),
            reason,
        },
    }
}

fn no_modifier(name: &str, modifier: Option<&str>) -> Result<(), QueryError> {
    match modifier {
        None => Ok(()),
        Some(m) => Err(QueryError::invalid(
            name,
            format!("unknown modifier ':{m}'"),
        )),
    }
}

fn parse_sort(
    registry: &Registry,
    types: &[String],
    value: &str,
) -> Result<Vec<SortKey>, QueryError> {
    let mut keys_out = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        let (descending, code) = match part.strip_prefix('-') {
            Some(c) => (true, c),
            None => (false, part),
        };
        let by = match code {
            "" => return Err(QueryError::invalid("_sort", "has an empty key")),
            "_id" => SortBy::Id,
            "_lastUpdated" => SortBy::LastUpdated,
            _ => {
                let name = format!("_sort={code}");
                let params = lookup(registry, types, code, &name)?;
                let table = match Table::of(params[0].kind) {
                    Some(Table::Composite) | None => {
                        return Err(QueryError::unsupported(
                            "_sort",
                            format!("sorting by '{code}'"),
                        ))
                    }
                    Some(t) => t,
                };
                let mut groups = by_required_target(&params);
                if groups.len() > 1 {
                    return Err(QueryError::unsupported(
                        "_sort",
                        format!("sorting by '{code}' across these types"),
                    ));
                }
                let (target_type, _) = groups.pop().unwrap_or((None, Vec::new()));
                SortBy::Param {
                    params: keys(&params),
                    table,
                    target_type,
                }
            }
        };
        keys_out.push(SortKey { by, descending });
    }
    Ok(keys_out)
}

fn parse_include(
    registry: &Registry,
    types: &[String],
    name: &str,
    value: &str,
    iterate: bool,
    rev: bool,
) -> Result<Include, QueryError> {
    let parts: Vec<&str> = value.split(':').collect();
    let bad = || {
        QueryError::invalid(
            name,
            "takes the form SourceType:parameter[:TargetType] or SourceType:*",
        )
    };
    let (source, code, target) = match parts.as_slice() {
        ["*"] if !rev => {
            if types.len() != 1 {
                return Err(bad());
            }
            (types[0].as_str(), "*", None)
        }
        [s, c] => (*s, *c, None),
        [s, c, t] => (*s, *c, Some(*t)),
        _ => return Err(bad()),
    };
    let all = registry.params(source);
    if all.is_empty() {
        return Err(QueryError::invalid(
            name,
            format!("'{source}' is not a resource type"),
        ));
    }
    if !rev && !iterate && !types.iter().any(|t| t == source) {
        return Err(QueryError::invalid(
            name,
            format!("'{source}' is not a type being searched (use :iterate)"),
        ));
    }
    let asked = target;
    let mut target = target.map(str::to_string);
    let params: Vec<ParamKey> = if code == "*" {
        // A narrowed parameter's rows are another's, which `*` follows already.
        all.iter()
            .filter(|p| p.kind == ParamKind::Reference && p.is_indexed())
            .map(|p| p.key)
            .collect()
    } else {
        match registry.param(source, code) {
            Some(p) if p.kind == ParamKind::Reference => {
                if let Some(t) = &target {
                    if !p.targets.iter().any(|x| x == t) {
                        return Err(QueryError::invalid(
                            name,
                            format!("{t} is not a target type of {source}:{code}"),
                        ));
                    }
                }
                match (p.required_target(), &target) {
                    // Refers to another type than the one asked for: includes nothing.
                    (Some(t), Some(asked)) if t != asked => Vec::new(),
                    (Some(t), _) => {
                        target = Some(t.to_owned());
                        p.stored_keys.clone()
                    }
                    (None, _) => vec![p.key],
                }
            }
            Some(_) => {
                return Err(QueryError::invalid(
                    name,
                    format!("'{source}:{code}' is not a reference parameter"),
                ))
            }
            None => {
                return Err(QueryError::invalid(
                    name,
                    format!("'{code}' is not a search parameter of {source}"),
                ))
            }
        }
    };
    if rev && !iterate {
        if let Some(t) = asked {
            if !types.iter().any(|x| x == t) {
                return Err(QueryError::invalid(
                    name,
                    format!("'{t}' is not a type being searched"),
                ));
            }
        }
    }
    Ok(Include {
        source_type: source.to_string(),
        params,
        target_type: target,
        iterate,
    })
}

/// Splits a value on commas not escaped with `\` (and unescapes `\,`, `\$`, `\|`, `\\`
/// only for the comma: the others are unescaped by the value parsers, which split on
/// them first).
pub fn split_or(value: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        let last = parts.len() - 1;
        match c {
            '\\' => match chars.next() {
                Some(',') => parts[last].push(','),
                Some(n) => {
                    parts[last].push('\\');
                    parts[last].push(n);
                }
                None => parts[last].push('\\'),
            },
            ',' => parts.push(String::new()),
            c => parts[last].push(c),
        }
    }
    parts
}
