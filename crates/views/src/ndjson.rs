//! Rows as NDJSON (the SQL on FHIR `$run` operation's `ndjson` format,
//! https://sql-on-fhir.org/ig/OperationDefinition-ViewDefinitionRun.html): one JSON object
//! per line, its keys the column names in column order, `null` for an empty value.

use std::io::{self, Write};

use serde_json::Value;

use crate::Column;

/// Writes rows as NDJSON as they come (the `ndjson` output format of the spec's
/// `$viewdefinition-run` operation).
#[derive(Debug)]
pub struct NdjsonWriter<W: Write> {
    out: W,
    /// Each column's key, JSON-encoded once with its colon (`"id":`).
    keys: Vec<String>,
}

impl<W: Write> NdjsonWriter<W> {
    /// A writer whose objects are keyed by `columns`' names.
    pub fn new(out: W, columns: &[Column]) -> NdjsonWriter<W> {
        let keys = columns
            .iter()
            .map(|c| format!("{}:", Value::String(c.name.clone())))
            .collect();
        NdjsonWriter { out, keys }
    }

    /// Writes one row (values in column order).
    pub fn write_row(&mut self, row: &[Value]) -> io::Result<()> {
        self.out.write_all(b"{")?;
        for (i, (k, v)) in self.keys.iter().zip(row).enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            self.out.write_all(k.as_bytes())?;
            serde_json::to_writer(&mut self.out, v)?;
        }
        self.out.write_all(b"}\n")
    }

    /// The underlying writer (flush it when done).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The underlying writer, between rows (a JSON array's commas go there).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// Writes `rows` as NDJSON to `out` (the `ndjson` output format of the spec's
/// `$viewdefinition-run` operation), then flushes it.
pub fn write_ndjson<R: AsRef<[Value]>>(
    columns: &[Column],
    rows: impl IntoIterator<Item = R>,
    out: impl Write,
) -> io::Result<()> {
    let mut w = NdjsonWriter::new(out, columns);
    for r in rows {
        w.write_row(r.as_ref())?;
    }
    w.into_inner().flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_object_per_row_keyed_by_column() {
        let columns: Vec<Column> = ["id", "given", "n"]
            .iter()
            .map(|n| Column {
                name: n.to_string(),
                type_code: None,
                collection: *n == "given",
            })
            .collect();
        let rows = [
            vec![json!("p1"), json!(["Ann", "Q\"uote"]), json!(1.50)],
            vec![json!("p2"), json!([]), Value::Null],
        ];
        let mut out = Vec::new();
        write_ndjson(&columns, &rows, &mut out).expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "{\"id\":\"p1\",\"given\":[\"Ann\",\"Q\\\"uote\"],\"n\":1.5}\n\
             {\"id\":\"p2\",\"given\":[],\"n\":null}\n"
        );
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("each line is JSON");
            assert_eq!(v.as_object().map(|o| o.len()), Some(3));
        }
    }
}
