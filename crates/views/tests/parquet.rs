//! The Parquet writer (feature `parquet`) against the CSV writer: the same rows, written
//! both ways, read back — the Parquet file with the `parquet` crate's own reader, the
//! CSV text with a small RFC 4180 reader here — give the same values, column by column,
//! with each Parquet column of the type `column.type` asks for.
//!
//! Run: `cargo test -p oxehr-views --features parquet --test parquet`.

#![cfg(feature = "parquet")]

use oxehr_views::{write_csv, write_parquet, Column, View};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{json, Value};

/// A CSV field as read: `None` for an empty unquoted field (a null), else its text.
type CsvField = Option<String>;

/// RFC 4180: fields separated by commas, records by CRLF, quoted fields may hold
/// commas, quotes (doubled) and line breaks.
fn read_csv(text: &str) -> Vec<Vec<CsvField>> {
    let mut rows = Vec::new();
    let mut row: Vec<CsvField> = Vec::new();
    let mut chars = text.chars().peekable();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                in_quotes = true;
            }
            ',' | '\r' => {
                if c == '\r' {
                    assert_eq!(chars.next(), Some('\n'), "CR without LF");
                }
                let f = std::mem::take(&mut field);
                row.push(if f.is_empty() && !quoted {
                    None
                } else {
                    Some(f)
                });
                quoted = false;
                if c == '\r' {
                    rows.push(std::mem::take(&mut row));
                }
            }
            other => field.push(other),
        }
    }
    assert!(
        row.is_empty() && field.is_empty(),
        "the last record ends with CRLF"
    );
    rows
}

/// One value as both writers must agree on it.
#[derive(Debug, PartialEq)]
enum Cell {
    Null,
    Text(String),
    Number(f64),
}

fn from_csv(f: &CsvField, column: &Column) -> Cell {
    match f {
        None => Cell::Null,
        Some(s) if column.type_code.as_deref() == Some("decimal") && !column.collection => {
            Cell::Number(s.parse().expect("a decimal column's CSV text is a number"))
        }
        Some(s) => Cell::Text(s.clone()),
    }
}

fn from_parquet(f: &Field) -> Cell {
    match f {
        Field::Null => Cell::Null,
        Field::Str(s) => Cell::Text(s.clone()),
        Field::Bool(b) => Cell::Text(b.to_string()),
        Field::Long(i) => Cell::Text(i.to_string()),
        Field::Double(d) => Cell::Number(*d),
        other => panic!("a Parquet field of an unexpected type: {other:?}"),
    }
}

/// Writes `rows` both ways and checks that they read back the same.
fn same_both_ways(view_columns: &[Column], rows: &[Vec<Value>]) {
    let mut csv = Vec::new();
    write_csv(view_columns, rows, &mut csv).expect("csv");
    let csv_rows = read_csv(&String::from_utf8(csv).expect("utf-8"));
    let header: Vec<CsvField> = view_columns.iter().map(|c| Some(c.name.clone())).collect();
    assert_eq!(csv_rows[0], header);

    let bytes = write_parquet(view_columns, rows, Vec::new()).expect("parquet");
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("a Parquet file");
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
    let want: Vec<&str> = view_columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, want);
    let parquet_rows: Vec<Vec<Cell>> = reader
        .get_row_iter(None)
        .expect("rows")
        .map(|r| {
            r.expect("row")
                .get_column_iter()
                .map(|(_, f)| from_parquet(f))
                .collect()
        })
        .collect();

    assert_eq!(parquet_rows.len(), rows.len());
    assert_eq!(csv_rows.len(), rows.len() + 1);
    for (i, (p, c)) in parquet_rows.iter().zip(&csv_rows[1..]).enumerate() {
        let c: Vec<Cell> = c
            .iter()
            .zip(view_columns)
            .map(|(f, col)| from_csv(f, col))
            .collect();
        assert_eq!(p, &c, "row {i}");
    }
}

fn col(name: &str, type_code: Option<&str>, collection: bool) -> Column {
    Column {
        name: name.into(),
        type_code: type_code.map(str::to_owned),
        collection,
    }
}

#[test]
fn every_column_type_reads_back_as_the_csv_writer_wrote_it() {
    let columns = [
        col("id", Some("id"), false),
        col("note", None, false),
        col("active", Some("boolean"), false),
        col("n", Some("integer"), false),
        col("amount", Some("decimal"), false),
        col("given", Some("string"), true),
        col("when", Some("dateTime"), false),
    ];
    let rows = vec![
        vec![
            json!("p1"),
            json!("plain"),
            json!(true),
            json!(3),
            json!(1.5),
            json!(["Ann", "Q\"uote"]),
            json!("2024-01-31T10:00:00Z"),
        ],
        vec![
            json!("p2"),
            json!("say \"hi\", then\r\nleave"),
            json!(false),
            json!(-2),
            json!(120),
            json!([]),
            Value::Null,
        ],
        vec![
            json!("p3"),
            json!(""),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            json!("2024"),
        ],
    ];
    same_both_ways(&columns, &rows);
}

#[test]
fn a_view_over_synthea_observations_reads_back_as_its_csv() {
    oxehr_testdata::require!();
    let dir = oxehr_testdata::path("synthea/synthea-v3");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("synthea-v3")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with("hospital") && !n.starts_with("practitioner"))
        })
        .collect();
    files.sort();
    let view = View::compile(&json!({
        "resource": "Observation",
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()", "type": "id"},
            {"name": "code", "path": "code.coding.first().code", "type": "code"},
            {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
            {"name": "unit", "path": "value.ofType(Quantity).unit", "type": "string"},
            {"name": "has_value", "path": "value.exists()", "type": "boolean"},
            {"name": "components", "path": "component.count()", "type": "integer"},
            {"name": "categories", "path": "category.coding.code", "collection": true}
        ]}]
    }))
    .expect("view");
    let mut rows = Vec::new();
    for f in &files[..2] {
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(f).expect("bundle")).expect("json");
        for e in bundle["entry"].as_array().expect("entries") {
            if e["resource"]["resourceType"] == "Observation" {
                view.rows(&e["resource"], &mut |r| rows.push(r))
                    .expect("rows");
            }
        }
    }
    assert!(rows.len() > 300, "{} rows", rows.len());
    same_both_ways(view.columns(), &rows);
}
