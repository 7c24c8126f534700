//! The conformance suite every storage backend must pass (filled in with the backends).
