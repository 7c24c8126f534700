//! Navigation of the FHIR model: which JSON keys a member name matches in a given context
//! (plain elements and choice elements such as `value[x]`), and the type each yields.
//!
//! Lookups go through `oxehr_fhir::Definitions::child`, which allocates its key; results
//! are cached here per (context, name) so evaluating an expression many times does not.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{OnceLock, RwLock};

use oxehr_fhir::Definitions;

/// What a child resolves to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved {
    pub type_code: Option<&'static str>,
    pub context: &'static str,
    /// The element holds a resource whose type is given by its `resourceType`.
    pub is_resource: bool,
    /// The element's definition (its path, and the invariants it carries).
    pub element: &'static oxehr_fhir::definitions::ElementDef,
}

#[derive(Debug)]
pub(crate) enum Member {
    /// A plain element at JSON key = name.
    Plain(Resolved),
    /// A choice element: JSON key (`valueQuantity`) → what it holds.
    Choice(FxMap<String, Resolved>),
    /// Not defined in this context.
    Unknown,
}

/// A fast non-cryptographic hash (the Fx hash of rustc) for the cache, whose keys are
/// model names from compiled expressions, not attacker-chosen data: the cache is looked up
/// for every member a path reads, and SipHash was a tenth of a view's run time.
#[derive(Default)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

type Cache = RwLock<FxMap<String, FxMap<String, &'static Member>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(FxMap::default()))
}

static UNKNOWN: Member = Member::Unknown;

fn resolved(c: oxehr_fhir::definitions::Child<'static>) -> Resolved {
    let is_resource = matches!(c.type_code, Some("Resource") | Some("DomainResource"));
    Resolved {
        type_code: c.type_code,
        context: c.context,
        is_resource,
        element: c.element,
    }
}

/// One member step's last lookup, kept in the compiled expression: a step nearly always
/// meets values of the same context, so it answers without the shared cache's lock and
/// hashing. Contexts are `'static` model names, so the same address is the same context.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberCache(OnceLock<(&'static str, &'static Member)>);

/// [`member`], answered from the step's `cache` when it last met the same context.
pub(crate) fn member_cached(
    context: &'static str,
    name: &str,
    cache: &MemberCache,
) -> &'static Member {
    if let Some((c, m)) = cache.0.get() {
        if std::ptr::eq(*c, context) {
            return m;
        }
    }
    let m = member(context, name);
    let _ = cache.0.set((context, m));
    m
}

/// The member `name` of a value whose children are defined at `context`.
pub(crate) fn member(context: &str, name: &str) -> &'static Member {
    if let Ok(map) = cache().read() {
        if let Some(m) = map.get(context).and_then(|m| m.get(name)) {
            return m;
        }
    }
    let m = compute(context, name);
    let Member::Unknown = m else {
        let leaked: &'static Member = Box::leak(Box::new(m));
        if let Ok(mut map) = cache().write() {
            map.entry(context.to_string())
                .or_default()
                .insert(name.to_string(), leaked);
        }
        return leaked;
    };
    &UNKNOWN
}

fn compute(context: &str, name: &str) -> Member {
    let d = Definitions::r4();
    if let Some(c) = d.child(context, name) {
        return Member::Plain(resolved(c));
    }
    let path = format!("{context}.{name}[x]");
    let Some(el) = d.element_at(&path) else {
        return Member::Unknown;
    };
    let mut keys = FxMap::default();
    for t in &el.types {
        let mut key = String::with_capacity(name.len() + t.code.len());
        key.push_str(name);
        let mut chars = t.code.chars();
        if let Some(f) = chars.next() {
            key.extend(f.to_uppercase());
            key.push_str(chars.as_str());
        }
        if let Some(c) = d.child(context, &key) {
            keys.insert(key, resolved(c));
        }
    }
    Member::Choice(keys)
}

/// The `'static` name of a type defined in the R4 model (`Patient`), if any.
pub(crate) fn static_type_name(name: &str) -> Option<&'static str> {
    Definitions::r4().type_def(name).map(|t| t.name.as_str())
}

/// True when `ty` is `of` or derives from it; FHIR primitives also count as their
/// FHIRPath system counterparts only through explicit conversion, not here.
pub(crate) fn is_subtype(ty: &str, of: &str) -> bool {
    ty == of || Definitions::r4().is_subtype(ty, of)
}
