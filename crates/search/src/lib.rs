//! Search: the registry of R4 core SearchParameters (from data), extraction of typed
//! index entries from resources, and (for the query side) the parsing of search URLs.
//!
//! **Invariant**: pure — no I/O, no database, no HTTP.

pub mod extract;
pub mod index;
pub mod query;
pub mod registry;

pub use extract::{extract, ExtractError, Extracted};
pub use index::{IndexEntry, IndexValue, ParamKey};
pub use registry::{Component, ParamKind, Registry, SearchParam};
