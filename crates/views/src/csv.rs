//! Rows as CSV (RFC 4180; the SQL on FHIR `$run` operation's `csv` format,
//! https://sql-on-fhir.org/ig/OperationDefinition-ViewDefinitionRun.html): a header row of
//! the column names, CRLF line ends, and a field quoted when it holds a comma, quote, CR
//! or LF, with quotes doubled.
//!
//! A null is an empty field and an empty string a quoted empty field (`""`), so the two
//! stay apart for readers that tell them apart (PostgreSQL's `COPY … CSV`). Numbers and
//! booleans are written as in JSON; a collection or complex value as its JSON text.
//! Our own code: a few lines, where a CSV crate would add a dependency for them.

use std::io::{self, Write};

use serde_json::Value;

use crate::Column;

/// Writes rows as CSV as they come, after the header (RFC 4180, the `csv` output format
/// of the spec's `$viewdefinition-run` operation).
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    out: W,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header row (the column names) and returns the writer.
    pub fn new(mut out: W, columns: &[Column]) -> io::Result<CsvWriter<W>> {
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            field(&mut out, &c.name)?;
        }
        out.write_all(b"\r\n")?;
        Ok(CsvWriter { out })
    }

    /// A writer that writes no header row (the operation's `header=false`).
    pub fn without_header(out: W) -> CsvWriter<W> {
        CsvWriter { out }
    }

    /// Writes one row (values in column order).
    pub fn write_row(&mut self, row: &[Value]) -> io::Result<()> {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            match v {
                Value::Null => {}
                Value::String(s) if s.is_empty() => self.out.write_all(b"\"\"")?,
                Value::String(s) => field(&mut self.out, s)?,
                Value::Number(n) => write!(self.out, "{n}")?,
                Value::Bool(b) => write!(self.out, "{b}")?,
                other => field(&mut self.out, &other.to_string())?,
            }
        }
        self.out.write_all(b"\r\n")
    }

    /// The underlying writer (flush it when done).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The underlying writer, between rows.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

fn field(out: &mut impl Write, s: &str) -> io::Result<()> {
    if !s.contains([',', '"', '\r', '\n']) {
        return out.write_all(s.as_bytes());
    }
    out.write_all(b"\"")?;
    for (i, part) in s.split('"').enumerate() {
        if i > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part.as_bytes())?;
    }
    out.write_all(b"\"")
}

/// Writes a header and `rows` as CSV to `out` (the `csv` output format of the spec's
/// `$viewdefinition-run` operation), then flushes it.
pub fn write_csv<R: AsRef<[Value]>>(
    columns: &[Column],
    rows: impl IntoIterator<Item = R>,
    out: impl Write,
) -> io::Result<()> {
    let mut w = CsvWriter::new(out, columns)?;
    for r in rows {
        w.write_row(r.as_ref())?;
    }
    w.into_inner().flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn col(name: &str) -> Column {
        Column {
            name: name.into(),
            type_code: None,
            collection: false,
        }
    }

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        let columns = [col("id"), col("note"), col("n"), col("ok"), col("list")];
        let rows = [
            vec![
                json!("p1"),
                json!("plain"),
                json!(1.50),
                json!(true),
                json!(["a", "b"]),
            ],
            vec![
                json!("p2"),
                json!("say \"hi\", then\nleave"),
                Value::Null,
                json!(false),
                json!([]),
            ],
            vec![json!("p3"), json!(""), json!(-2), Value::Null, Value::Null],
        ];
        let mut out = Vec::new();
        write_csv(&columns, &rows, &mut out).expect("writes");
        let expected = "id,note,n,ok,list\r\n\
                        p1,plain,1.5,true,\"[\"\"a\"\",\"\"b\"\"]\"\r\n\
                        p2,\"say \"\"hi\"\", then\nleave\",,false,[]\r\n\
                        p3,\"\",-2,,\r\n";
        assert_eq!(String::from_utf8(out).expect("utf-8"), expected);
    }
}
