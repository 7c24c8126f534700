//! SQL on FHIR v2 views: a ViewDefinition (https://sql-on-fhir.org/ig/) compiled once
//! into a [`View`], which turns each FHIR resource into zero or more rows of JSON values,
//! and writers for the rows as CSV ([`write_csv`]) and NDJSON ([`write_ndjson`]), and,
//! with the cargo feature `parquet` (not in the default build), Parquet
//! (`ParquetWriter`, `write_parquet`).
//!
//! ```
//! let def = serde_json::json!({
//!     "resource": "Patient",
//!     "select": [{"column": [{"name": "id", "path": "getResourceKey()"}]},
//!                {"forEach": "name", "column": [{"name": "family", "path": "family"}]}]
//! });
//! let view = oxehr_views::View::compile(&def)?;
//! let patient = serde_json::json!({"resourceType": "Patient", "id": "p1",
//!     "name": [{"family": "Ng"}, {"family": "Ito"}]});
//! let mut rows = Vec::new();
//! view.rows(&patient, &mut |row| rows.push(row))?;
//! assert_eq!(rows, [[serde_json::json!("p1"), "Ng".into()], ["p1".into(), "Ito".into()]]);
//! # Ok::<(), oxehr_views::Error>(())
//! ```
//!
//! Every FHIRPath expression is compiled by `View::compile`; running a view only walks
//! the compiled tree. Tested against the official test suite
//! (`tests/official_suite.rs`, every case of `fhir-test-cases/sql-on-fhir`).
//!
//! **Invariant**: pure — no I/O; the writers take any `std::io::Write`.

mod compile;
mod constant;
mod csv;
mod ndjson;
#[cfg(feature = "parquet")]
mod parquet;
mod parse;
mod rows;
mod value;

pub use compile::{Column, View};
pub use csv::{write_csv, CsvWriter};
pub use ndjson::{write_ndjson, NdjsonWriter};
#[cfg(feature = "parquet")]
pub use parquet::{write_parquet, ParquetWriter};

/// Why a view could not be compiled or run. Both are of the *invalid* category (the
/// definition, or the data it meets, breaks the spec's rules); neither message carries
/// patient data, only where in the ViewDefinition the problem is and what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The ViewDefinition breaks the spec's structure or validity rules
    /// (ViewDefinition, §"Validation"; implementer guidance, §"Validate Columns"):
    /// a missing `resource`, a bad column name, mismatched `unionAll` columns, a
    /// FHIRPath syntax error, an undefined `%constant`…
    #[error("invalid ViewDefinition at {at}: {msg}")]
    Definition { at: String, msg: String },
    /// Running the view over a resource failed: a column that is not a `collection`
    /// whose path gave several values, a `where` path that is not Boolean, or a
    /// FHIRPath evaluation error.
    #[error("view failed at {at}: {msg}")]
    Evaluation { at: String, msg: String },
}

impl Error {
    pub(crate) fn definition(at: &str, msg: impl Into<String>) -> Error {
        Error::Definition {
            at: if at.is_empty() { "ViewDefinition" } else { at }.to_string(),
            msg: msg.into(),
        }
    }

    pub(crate) fn evaluation(at: &str, msg: impl Into<String>) -> Error {
        Error::Evaluation {
            at: at.to_string(),
            msg: msg.into(),
        }
    }
}
