//! Uri parameters: uri, url, canonical and oid values as written.

use serde_json::Value;

use super::Input;
use crate::index::IndexValue;

pub(super) fn values(v: &Input<'_>, out: &mut Vec<IndexValue>) {
    if let Value::String(s) = v.json {
        out.push(IndexValue::Uri { value: s.clone() });
    }
}
