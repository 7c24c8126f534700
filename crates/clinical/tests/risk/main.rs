//! Risk scores checked against their papers' own worked examples and against values
//! computed by hand (the arithmetic is in the comments), each case built as FHIR
//! resources and run through the public functions. One module per score, as in
//! `src/risk/`.
//!
//! Independent figures were computed outside this crate (Python `math`, double
//! precision) from the published equations; where a paper prints a rounded figure, the
//! test says which figure and how it was rounded.

#![allow(clippy::unwrap_used)]

mod ascvd;
mod bmi;
mod cha2ds2_vasc;
mod egfr;
mod fhir;
mod observation;
