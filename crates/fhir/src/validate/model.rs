//! The validation model: the embedded definitions compiled once into per-context key
//! tables, primitive kinds with their compiled regexes, and required value sets.
//!
//! `Definitions::child` answers one lookup at a time and allocates its map keys; the
//! validator looks up every JSON key of every resource, so it uses this flattened form:
//! each context (a type name or a backbone element path) holds its JSON keys (choice keys
//! spelled out) sorted for binary search, and each element a slot in a bitset so that
//! cardinality and choice checks need no allocation.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

use crate::definitions::{Definitions, ElementDef, Kind, TypeRef};

/// Index of a context in [`Model::contexts`].
pub(crate) type CtxId = u32;

/// What JSON shape and lexical rules a primitive value follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrimKind {
    Boolean,
    /// `integer`, `positiveInt`, `unsignedInt`: a JSON integer of 32 bits not below `min`.
    Integer {
        min: i64,
    },
    Decimal,
    /// `date`, `dateTime`, `instant`: regex plus the real calendar.
    Temporal,
    Xhtml,
    /// Every other primitive is a JSON string.
    Text,
}

/// Hand-written equivalents of the spec's character-class regexes, chosen by the regex
/// text itself (so still driven by the definitions): most values are strings, codes and
/// uris, and a byte loop is several times faster than a regex call on them. The unit
/// tests of `primitive` check each against the compiled regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastRegex {
    /// `[ \r\n\t\S]+` (string, markdown)
    Text,
    /// `\S*` (uri, url, canonical)
    NoSpace,
    /// `[^\s]+(\s[^\s]+)*` (code)
    Code,
    /// `[A-Za-z0-9\-\.]{1,64}` (id)
    Id,
    /// `urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}` (uuid)
    Uuid,
}

impl FastRegex {
    pub fn for_pattern(re: &str) -> Option<FastRegex> {
        match re {
            r"[ \r\n\t\S]+" => Some(FastRegex::Text),
            r"\S*" => Some(FastRegex::NoSpace),
            r"[^\s]+(\s[^\s]+)*" => Some(FastRegex::Code),
            r"[A-Za-z0-9\-\.]{1,64}" => Some(FastRegex::Id),
            r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" => {
                Some(FastRegex::Uuid)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Prim {
    pub name: &'static str,
    pub kind: PrimKind,
    /// Index into [`Model::regexes`].
    pub regex: Option<u16>,
    /// Used instead of `regex` when the pattern is a plain character class.
    pub fast: Option<FastRegex>,
    /// `uri`-like types whose values may be local references (`#id`) for dom-3.
    pub uri_like: bool,
    /// `string` or `uri` or a type derived from them: bounded to 1024*1024 characters.
    pub string_like: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum EntryKind {
    Primitive(Prim),
    Complex(CtxId),
    Resource,
}

/// One JSON key of a context.
#[derive(Debug)]
pub(crate) struct Entry {
    pub el: &'static ElementDef,
    /// Element name without `[x]` (`value`), used in locations.
    pub name: &'static str,
    /// Concrete type code (`Quantity`); `BackboneElement` for inline elements.
    pub type_code: &'static str,
    pub kind: EntryKind,
    /// The element's slot in its context, shared by all keys of a choice element.
    pub slot: u8,
    /// Index into [`Model::value_sets`] of an enumerable required binding.
    pub value_set: Option<u16>,
    /// Allowed reference targets (empty or `Resource`: any).
    pub targets: &'static [String],
    /// `_key`, for primitive-extension companions.
    pub companion: String,
}

#[derive(Debug, Default)]
pub(crate) struct Context {
    /// JSON key → entry.
    pub keys: HashMap<String, Entry, BuildHasherDefault<Fnv>>,
    /// Elements with `min >= 1`: (slot, element name).
    pub required: Vec<(u8, &'static str)>,
    /// Slots handed out so far.
    slots: u8,
}

impl Context {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.keys.get(key)
    }
}

/// FNV-1a: JSON keys are short and not attacker-chosen in a way that matters here (the
/// tables are fixed at start-up), and SipHash or a binary search of string compares
/// dominated the profile.
#[derive(Debug, Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// An enumerable required value set.
#[derive(Debug)]
pub(crate) struct ValueSetInfo {
    pub url: &'static str,
    pub codes: HashSet<&'static str>,
    pub pairs: HashSet<(&'static str, &'static str)>,
    pub systems: Vec<&'static str>,
}

#[derive(Debug)]
pub(crate) struct Model {
    pub defs: &'static Definitions,
    pub ctx_ids: HashMap<&'static str, CtxId>,
    pub contexts: Vec<Context>,
    pub regexes: Vec<Regex>,
    pub value_sets: Vec<ValueSetInfo>,
    /// Context of the `Element` type: what a primitive's `_x` companion may hold.
    pub element_ctx: CtxId,
    /// The `id` primitive (for `Resource.id`).
    pub id_prim: Prim,
    pub uuid_prim: Option<Prim>,
    pub oid_regex: Option<u16>,
}

impl Model {
    pub fn get() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| Model::build(Definitions::r4()))
    }

    pub fn ctx(&self, id: CtxId) -> &Context {
        &self.contexts[id as usize]
    }

    /// Context of a concrete resource type.
    pub fn resource_ctx(&self, name: &str) -> Option<CtxId> {
        if self.defs.is_resource_type(name) {
            self.ctx_ids.get(name).copied()
        } else {
            None
        }
    }

    pub fn regex(&self, i: u16) -> &Regex {
        &self.regexes[i as usize]
    }

    fn build(defs: &'static Definitions) -> Model {
        let mut names: Vec<&'static str> = Vec::new();
        let mut ctx_ids: HashMap<&'static str, CtxId> = HashMap::new();
        let mut regexes = Vec::new();
        let mut regex_of: HashMap<&'static str, u16> = HashMap::new();
        let mut value_sets = Vec::new();
        let mut vs_of: HashMap<&'static str, u16> = HashMap::new();

        // Every type name and every element path that has children is a context.
        let all: Vec<&'static str> = defs.type_names();
        for &t in &all {
            let Some(td) = defs.type_def(t) else { continue };
            for el in &td.elements {
                if let Some((parent, _)) = el.path.rsplit_once('.') {
                    // `parent` borrows from a 'static ElementDef.
                    if !ctx_ids.contains_key(parent) {
                        ctx_ids.insert(parent, names.len() as CtxId);
                        names.push(parent);
                    }
                }
            }
            if td.kind == Kind::PrimitiveType {
                let value = td.elements.iter().find(|e| e.path.ends_with(".value"));
                if let Some(re) = value.and_then(|e| e.regex.as_deref()) {
                    if let Ok(compiled) = RegexBuilder::new(&format!("^(?:{re})$"))
                        .unicode(false)
                        .build()
                    {
                        regex_of.insert(t, regexes.len() as u16);
                        regexes.push(compiled);
                    }
                }
            }
        }
        let prim_of = |t: &'static str| -> Option<Prim> {
            let td = defs.type_def(t)?;
            if td.kind != Kind::PrimitiveType {
                return None;
            }
            let kind = match t {
                "boolean" => PrimKind::Boolean,
                "integer" => PrimKind::Integer {
                    min: i32::MIN as i64,
                },
                "unsignedInt" => PrimKind::Integer { min: 0 },
                "positiveInt" => PrimKind::Integer { min: 1 },
                "decimal" => PrimKind::Decimal,
                "date" | "dateTime" | "instant" => PrimKind::Temporal,
                "xhtml" => PrimKind::Xhtml,
                _ => PrimKind::Text,
            };
            let value = td.elements.iter().find(|e| e.path.ends_with(".value"));
            Some(Prim {
                name: t,
                kind,
                regex: regex_of.get(t).copied(),
                fast: value
                    .and_then(|e| e.regex.as_deref())
                    .and_then(FastRegex::for_pattern),
                uri_like: defs.is_subtype(t, "uri"),
                string_like: defs.is_subtype(t, "string") || defs.is_subtype(t, "uri"),
            })
        };

        let mut contexts: Vec<Context> = (0..names.len()).map(|_| Context::default()).collect();
        for &t in &all {
            let Some(td) = defs.type_def(t) else { continue };
            let is_resource = td.kind == Kind::Resource;
            for el in &td.elements {
                let Some((parent, _)) = el.path.rsplit_once('.') else {
                    continue;
                };
                let ctx_id = ctx_ids[parent];
                let ctx = &mut contexts[ctx_id as usize];
                let slot = ctx.slots;
                ctx.slots += 1;
                if el.min >= 1 {
                    ctx.required.push((slot, el.name()));
                }
                let vs = el.binding.as_deref().and_then(|url| {
                    if let Some(&i) = vs_of.get(url) {
                        return Some(i);
                    }
                    let set = defs.value_set(url)?;
                    let i = value_sets.len() as u16;
                    let mut systems: Vec<&'static str> =
                        set.iter().map(|(s, _)| s.as_str()).collect();
                    systems.sort_unstable();
                    systems.dedup();
                    value_sets.push(ValueSetInfo {
                        url,
                        codes: set.iter().map(|(_, c)| c.as_str()).collect(),
                        pairs: set.iter().map(|(s, c)| (s.as_str(), c.as_str())).collect(),
                        systems,
                    });
                    vs_of.insert(url, i);
                    Some(i)
                });
                let resolve = |ty: Option<&'static TypeRef>| -> (&'static str, EntryKind) {
                    if let Some(cref) = el.content_reference.as_deref() {
                        let id = ctx_ids.get(cref).copied().unwrap_or(ctx_id);
                        return ("BackboneElement", EntryKind::Complex(id));
                    }
                    let code = ty.map(|t| t.code.as_str()).unwrap_or("BackboneElement");
                    if is_resource && el.path == format!("{t}.id") {
                        if let Some(p) = prim_of("id") {
                            return ("id", EntryKind::Primitive(p));
                        }
                    }
                    if code == "Resource" || defs.is_resource_type(code) {
                        return (code, EntryKind::Resource);
                    }
                    if let Some(p) = prim_of(code) {
                        return (code, EntryKind::Primitive(p));
                    }
                    let inline = ty.is_none() || matches!(code, "BackboneElement" | "Element");
                    let target = if inline { el.path.as_str() } else { code };
                    let id = ctx_ids.get(target).copied().unwrap_or(ctx_id);
                    (code, EntryKind::Complex(id))
                };
                let mut push = |key: String, ty: Option<&'static TypeRef>| {
                    let (type_code, kind) = resolve(ty);
                    let targets: &'static [String] = ty.map(|t| &t.targets[..]).unwrap_or(&[]);
                    let companion = format!("_{key}");
                    ctx.keys.insert(
                        key,
                        Entry {
                            el,
                            name: el.name(),
                            type_code,
                            kind,
                            slot,
                            value_set: vs,
                            targets,
                            companion,
                        },
                    );
                };
                if el.is_choice() {
                    for ty in &el.types {
                        push(format!("{}{}", el.name(), upper_first(&ty.code)), Some(ty));
                    }
                } else {
                    // Elements defined inline have no type of their own, or several types
                    // only for the primitive `.value` (never walked).
                    push(el.name().to_string(), el.types.first());
                }
            }
        }
        let element_ctx = ctx_ids.get("Element").copied().unwrap_or(0);
        let id_prim = prim_of("id").unwrap_or(Prim {
            name: "id",
            kind: PrimKind::Text,
            regex: None,
            fast: None,
            uri_like: false,
            string_like: true,
        });
        Model {
            defs,
            uuid_prim: prim_of("uuid"),
            oid_regex: regex_of.get("oid").copied(),
            ctx_ids,
            contexts,
            regexes,
            value_sets,
            element_ctx,
            id_prim,
        }
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
