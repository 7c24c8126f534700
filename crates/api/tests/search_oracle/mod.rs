//! The pieces of the search integration test (`tests/search.rs`): the oracle's data and
//! matching rules, the case tables per parameter type, and the runner.

pub mod data;
pub mod date;
pub mod examples;
pub mod pick;
pub mod quantity;
pub mod reference;
pub mod result;
pub mod run;
pub mod special;
pub mod string;
pub mod token;
pub mod value;
