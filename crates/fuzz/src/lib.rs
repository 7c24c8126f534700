//! Fuzz harnesses, as tests (`tests/`): each drives one of oxehr's parsers with inputs
//! made by mutating real material (the demo's Synthea records in this repository, the
//! shared HL7 v2 and C-CDA samples) or generated from the format's grammar, with
//! `proptest` on the stable toolchain. Each asserts what must hold for any input: no
//! panic, and the parser's own invariants (a search's values travel as bound SQL
//! arguments, never as SQL text; validation is deterministic; an ACK answers every
//! message). `.ci/run` runs them with a small budget (`OXEHR_FUZZ_CASES`, default 256
//! cases a harness); longer runs and their counts are in BENCHMARKS.md ("Fuzzing").
//! A failure is kept as a plain regression test next to the harness.
