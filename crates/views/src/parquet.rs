//! Rows as Apache Parquet (the `parquet` output format the SQL on FHIR
//! `$viewdefinition-run` operation names), behind the cargo feature `parquet`: the
//! `parquet` crate's column writers without Arrow, without compression codecs (pages are
//! dictionary- and RLE-encoded, not compressed), to keep its compile time small.
//!
//! Each column is optional (a null is a missing value) and typed from `Column.type_code`:
//!
//! | `column.type` | Parquet |
//! |---|---|
//! | `boolean` | BOOLEAN |
//! | `integer`, `positiveInt`, `unsignedInt`, `integer64` | INT64 |
//! | `decimal` | DOUBLE |
//! | anything else, none, or a `collection` column | BYTE_ARRAY (UTF-8 string) |
//!
//! A string column holds a string as it is, a number or boolean as its JSON text, and a
//! collection or complex value as its JSON text (as the CSV writer does). A value that
//! does not fit its column's type (`"abc"` in an `integer` column) is an error.

use std::io::{self, Write};
use std::sync::Arc;

use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde_json::Value;

use crate::Column;

/// Rows buffered before they are written as one row group.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// A column's values of the current row group, with their definition levels (1: a
/// value, 0: null).
#[derive(Debug)]
enum Values {
    Str(Vec<ByteArray>),
    Bool(Vec<bool>),
    Long(Vec<i64>),
    Double(Vec<f64>),
}

#[derive(Debug)]
struct ColumnBuffer {
    name: String,
    values: Values,
    defs: Vec<i16>,
}

/// Writes rows as a Parquet file as they come, a row group per 65,536 rows; call
/// [`finish`](Self::finish) to write the footer.
pub struct ParquetWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    columns: Vec<ColumnBuffer>,
    rows: usize,
}

impl<W: Write + Send> std::fmt::Debug for ParquetWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetWriter")
            .field("columns", &self.columns.len())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

fn io_error(e: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(e.to_string())
}

fn physical(c: &Column) -> (PhysicalType, Option<LogicalType>, Values) {
    if c.collection {
        return (
            PhysicalType::BYTE_ARRAY,
            Some(LogicalType::String),
            Values::Str(Vec::new()),
        );
    }
    match c.type_code.as_deref() {
        Some("boolean") => (PhysicalType::BOOLEAN, None, Values::Bool(Vec::new())),
        Some("integer" | "positiveInt" | "unsignedInt" | "integer64") => {
            (PhysicalType::INT64, None, Values::Long(Vec::new()))
        }
        Some("decimal") => (PhysicalType::DOUBLE, None, Values::Double(Vec::new())),
        _ => (
            PhysicalType::BYTE_ARRAY,
            Some(LogicalType::String),
            Values::Str(Vec::new()),
        ),
    }
}

impl<W: Write + Send> ParquetWriter<W> {
    /// A writer of rows with these columns into `out`.
    pub fn new(out: W, columns: &[Column]) -> io::Result<ParquetWriter<W>> {
        let mut fields = Vec::with_capacity(columns.len());
        let mut buffers = Vec::with_capacity(columns.len());
        for c in columns {
            let (ptype, logical, values) = physical(c);
            let field = Type::primitive_type_builder(&c.name, ptype)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(logical)
                .build()
                .map_err(io_error)?;
            fields.push(Arc::new(field));
            buffers.push(ColumnBuffer {
                name: c.name.clone(),
                values,
                defs: Vec::new(),
            });
        }
        let schema = Type::group_type_builder("view")
            .with_fields(fields)
            .build()
            .map_err(io_error)?;
        let props = WriterProperties::builder()
            .set_created_by("oxehr-views".into())
            .build();
        let writer =
            SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props)).map_err(io_error)?;
        Ok(ParquetWriter {
            writer,
            columns: buffers,
            rows: 0,
        })
    }

    /// Writes one row (values in column order).
    pub fn write_row(&mut self, row: &[Value]) -> io::Result<()> {
        for (c, v) in self.columns.iter_mut().zip(row) {
            if v.is_null() {
                c.defs.push(0);
                continue;
            }
            let wrong = |want: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("column {}: a value that is not {want}", c.name),
                )
            };
            match &mut c.values {
                Values::Str(vals) => {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    vals.push(ByteArray::from(text.into_bytes()));
                }
                Values::Bool(vals) => vals.push(v.as_bool().ok_or_else(|| wrong("a boolean"))?),
                Values::Long(vals) => vals.push(v.as_i64().ok_or_else(|| wrong("an integer"))?),
                Values::Double(vals) => vals.push(v.as_f64().ok_or_else(|| wrong("a number"))?),
            }
            c.defs.push(1);
        }
        self.rows += 1;
        if self.rows >= ROW_GROUP_ROWS {
            self.flush_group()?;
        }
        Ok(())
    }

    /// Writes the buffered rows as one row group.
    fn flush_group(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(io_error)?;
        for c in &mut self.columns {
            let Some(mut col) = group.next_column().map_err(io_error)? else {
                break;
            };
            let defs = Some(c.defs.as_slice());
            match &mut c.values {
                Values::Str(v) => {
                    col.typed::<ByteArrayType>()
                        .write_batch(v, defs, None)
                        .map_err(io_error)?;
                    v.clear();
                }
                Values::Bool(v) => {
                    col.typed::<BoolType>()
                        .write_batch(v, defs, None)
                        .map_err(io_error)?;
                    v.clear();
                }
                Values::Long(v) => {
                    col.typed::<Int64Type>()
                        .write_batch(v, defs, None)
                        .map_err(io_error)?;
                    v.clear();
                }
                Values::Double(v) => {
                    col.typed::<DoubleType>()
                        .write_batch(v, defs, None)
                        .map_err(io_error)?;
                    v.clear();
                }
            }
            c.defs.clear();
            col.close().map_err(io_error)?;
        }
        group.close().map_err(io_error)?;
        self.rows = 0;
        Ok(())
    }

    /// Writes the last row group and the footer, and returns the underlying writer
    /// (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_group()?;
        let mut out = self.writer.into_inner().map_err(io_error)?;
        out.flush()?;
        Ok(out)
    }
}

/// Writes `rows` as a Parquet file to `out` (the `parquet` output format of the spec's
/// `$viewdefinition-run` operation), and returns `out`.
pub fn write_parquet<R: AsRef<[Value]>, W: Write + Send>(
    columns: &[Column],
    rows: impl IntoIterator<Item = R>,
    out: W,
) -> io::Result<W> {
    let mut w = ParquetWriter::new(out, columns)?;
    for r in rows {
        w.write_row(r.as_ref())?;
    }
    w.finish()
}
