//! Reading a stored resource for a view: only the top-level elements the view's paths
//! may read are built into a JSON tree; the rest is checked as JSON and skipped without
//! allocating ([`oxehr_fhirpath::Footprint`] says which, conservatively). Parsing whole
//! bodies was half the cost of a view run over the store.

use std::borrow::Cow;
use std::fmt;

use oxehr_fhirpath::{Footprint, Scope};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::compile::{Iteration, Select, View};

/// What every path of the view may read of its resource.
pub(crate) fn footprint(view: &View) -> Footprint {
    let mut fp = Footprint::default();
    for w in &view.wheres {
        w.expr.footprint(Scope::Root, &mut fp);
    }
    select(&view.root, Scope::Root, &mut fp);
    fp
}

fn select(s: &Select, parent: Scope, fp: &mut Footprint) {
    let focus = match &s.iteration {
        Iteration::Parent => parent,
        Iteration::ForEach(p) | Iteration::ForEachOrNull(p) => p.expr.footprint(parent, fp),
        Iteration::Repeat(paths) => {
            let first = paths
                .iter()
                .map(|p| p.expr.footprint(parent, fp))
                .max()
                .unwrap_or(Scope::Outside);
            // Each path runs again over what the paths gave.
            let again = paths
                .iter()
                .map(|p| p.expr.footprint(first, fp))
                .max()
                .unwrap_or(Scope::Outside);
            if first.max(again) == Scope::Root {
                fp.all = true;
            }
            first.max(again)
        }
    };
    for c in &s.columns {
        c.path.expr.footprint(focus, fp);
    }
    for n in s.selects.iter().chain(&s.union_all) {
        select(n, focus, fp);
    }
}

impl View {
    /// Parses a resource's JSON text for [`View::rows`]: the rows are those of the
    /// whole resource, but elements no path of the view may read are skipped.
    pub fn parse(&self, json: &str) -> Result<Value, serde_json::Error> {
        if self.footprint.all {
            return serde_json::from_str(json);
        }
        let mut de = serde_json::Deserializer::from_str(json);
        let v = Partial(&self.footprint).deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }

    /// The top-level elements the view may read (`all` when it may read any).
    pub fn footprint(&self) -> &Footprint {
        &self.footprint
    }
}

/// A resource object with only the kept top-level members.
struct Partial<'f>(&'f Footprint);

impl<'de> DeserializeSeed<'de> for Partial<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Partial<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a FHIR resource (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            if self.0.keeps(&key) {
                let v: Value = map.next_value()?;
                out.insert(key.into_owned(), v);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}
