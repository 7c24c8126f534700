//! oxehr-ccda against real documents: the 17 C-CDA samples and the Synthea patients in
//! `../shared/data`. One test binary for the crate.

mod common;
mod import;
mod round_trip;
