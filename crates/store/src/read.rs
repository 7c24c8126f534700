//! The reads both backends answer with the same SQL, through [`ReadTx::query`]: history
//! (its versions and their count), and what a resource's current version left in the
//! index (its rows, its Patient compartments). The reads by id stay in each backend,
//! whose statements are prepared once and decode rows directly (the hot path).

use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};

use crate::search::resource_of;
use crate::sql::{self, Columns, SqlArg};
use crate::{rows, HistoryQuery, ReadTx, StoreError, StoredResource};

/// Versions newest first (see [`ReadTx::history`]).
pub(crate) fn history<T: ReadTx + ?Sized>(
    tx: &mut T,
    q: &HistoryQuery,
) -> Result<Vec<StoredResource>, StoreError> {
    let (filter, mut args) = sql::history_where(q);
    let text = format!(
        "SELECT v.rid, r.rtype, r.id, v.version, v.last_updated, v.method, v.body \
         FROM resource_version v JOIN resource r ON r.rid = v.rid{filter} \
         ORDER BY v.last_updated DESC, v.version DESC, v.rid DESC LIMIT ? OFFSET ?"
    );
    args.push(SqlArg::Int8(clamp(q.count)));
    args.push(SqlArg::Int8(clamp(q.offset)));
    tx.query(&text, &args)?
        .into_iter()
        .map(|row| resource_of(row).map(|(_, r, _)| r))
        .collect()
}

/// The number of versions `q` covers, ignoring its count and offset.
pub(crate) fn history_count<T: ReadTx + ?Sized>(
    tx: &mut T,
    q: &HistoryQuery,
) -> Result<u64, StoreError> {
    let (filter, args) = sql::history_where(q);
    let text =
        format!("SELECT count(*) FROM resource_version v JOIN resource r ON r.rid = v.rid{filter}");
    let row = tx.query(&text, &args)?.into_iter().next();
    let n = Columns::new("count", row.unwrap_or_default()).int("count")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn rid_of<T: ReadTx + ?Sized>(
    tx: &mut T,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Option<i64>, StoreError> {
    let rows = tx.query_shared_plan(
        "SELECT rid FROM resource WHERE rtype = ? AND id = ?",
        &[
            SqlArg::Text(rtype.as_str().to_owned()),
            SqlArg::Text(id.as_str().to_owned()),
        ],
    )?;
    match rows.into_iter().next() {
        Some(row) => Ok(Some(Columns::new("resource", row).int("rid")?)),
        None => Ok(None),
    }
}

/// Patient ids whose compartment holds the current version, in order.
pub(crate) fn compartments<T: ReadTx + ?Sized>(
    tx: &mut T,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Vec<ResourceId>, StoreError> {
    let Some(rid) = rid_of(tx, rtype, id)? else {
        return Ok(Vec::new());
    };
    tx.query_shared_plan(
        "SELECT patient_id FROM compartment WHERE rid = ? ORDER BY patient_id",
        &[SqlArg::Int8(rid)],
    )?
    .into_iter()
    .map(|row| {
        let p = Columns::new("compartment", row).text("patient_id")?;
        ResourceId::parse(&p).ok_or_else(|| StoreError::Corrupt("compartment patient_id".into()))
    })
    .collect()
}

type Decode = fn(&mut Columns) -> Result<IndexValue, StoreError>;

/// Per index table: its columns after `param`, and how to read them back.
const READ_BACK: [(&str, &str, Decode); 9] = [
    ("idx_string", "normalized, exact", |c| {
        Ok(IndexValue::String {
            normalized: c.text("normalized")?,
            exact: c.text("exact")?,
        })
    }),
    ("idx_token", "system, code, text", |c| {
        Ok(IndexValue::Token {
            system: c.opt_text("system")?,
            code: c.opt_text("code")?,
            text: c.opt_text("text")?,
        })
    }),
    ("idx_date", "low, high", |c| {
        Ok(IndexValue::Date {
            low: c.int("low")?,
            high: c.int("high")?,
        })
    }),
    ("idx_number", "value, low, high", |c| {
        Ok(IndexValue::Number {
            value: c.real("value")?,
            low: c.real("low")?,
            high: c.real("high")?,
        })
    }),
    (
        "idx_quantity",
        "value, low, high, system, code, unit, canonical_value, canonical_code",
        |c| {
            Ok(IndexValue::Quantity {
                value: c.real("value")?,
                low: c.real("low")?,
                high: c.real("high")?,
                system: c.opt_text("system")?,
                code: c.opt_text("code")?,
                unit: c.opt_text("unit")?,
                canonical_value: c.opt_real("canonical_value")?,
                canonical_code: c.opt_text("canonical_code")?,
            })
        },
    ),
    (
        "idx_reference",
        "target_type, target_id, version, url, identifier_system, identifier_value",
        |c| {
            Ok(IndexValue::Reference {
                target_type: c.opt_text("target_type")?,
                target_id: c.opt_text("target_id")?,
                version: c.opt_text("version")?,
                url: c.opt_text("url")?,
                identifier_system: c.opt_text("identifier_system")?,
                identifier_value: c.opt_text("identifier_value")?,
            })
        },
    ),
    ("idx_uri", "value", |c| {
        Ok(IndexValue::Uri {
            value: c.text("value")?,
        })
    }),
    ("idx_text", "content", |c| {
        Ok(IndexValue::Text {
            content: c.text("content")?,
        })
    }),
    ("idx_composite", "parts", |c| {
        Ok(IndexValue::Composite {
            parts: rows::composite_from_json(&c.text("parts")?)?,
        })
    }),
];

/// The index rows of the current version, one table at a time.
pub(crate) fn index_entries<T: ReadTx + ?Sized>(
    tx: &mut T,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Vec<IndexEntry>, StoreError> {
    let Some(rid) = rid_of(tx, rtype, id)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (table, columns, decode) in READ_BACK {
        let text = format!("SELECT param, {columns} FROM {table} WHERE rid = ?");
        for row in tx.query_shared_plan(&text, &[SqlArg::Int8(rid)])? {
            let mut c = Columns::new(table, row);
            let param = i32::try_from(c.int("param")?)
                .map_err(|_| StoreError::Corrupt(format!("{table} param")))?;
            out.push(IndexEntry {
                param: ParamKey(param),
                value: decode(&mut c)?,
            });
        }
    }
    Ok(out)
}
