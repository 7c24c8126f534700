//! FHIRPath (N1, as used by FHIR R4) over `serde_json::Value`: an expression is compiled
//! once into a tree ([`Expr::parse`]) and evaluated many times against resources.
//!
//! Why our own: the Rust FHIRPath crates available either evaluate over generated model
//! structs (which this project does not have, see DESIGN.md) or are immature. This one is
//! small, typed by the embedded R4 definitions (`oxehr_fhir::Definitions::r4()`), and run
//! against the official test suite (`tests/official_suite.rs`).
//!
//! Scope: everything the R4 core SearchParameter expressions use, plus the ordinary
//! operators and functions. `resolve()` never fetches: a reference resolves to a
//! placeholder typed by its target type (or to the contained resource for `#id`).
//!
//! **Invariant**: pure — no I/O.

mod eval;
mod functions;
mod functions_text;
mod item;
mod lexer;
mod model;
mod ops;
mod parser;
pub mod temporal;

use serde_json::Value;

pub use item::{Decimal, Item, Node};
pub use temporal::{Precision, Temporal};

/// A FHIRPath compile or evaluation error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not a FHIRPath expression.
    #[error("FHIRPath syntax error at offset {pos}: {msg}")]
    Syntax { pos: usize, msg: String },
    /// The expression parses but cannot mean anything (unknown function, wrong arity).
    #[error("FHIRPath semantic error at offset {pos}: {msg}")]
    Semantic { pos: usize, msg: String },
    /// The expression failed on this input (e.g. a singleton was expected).
    #[error("FHIRPath evaluation error: {0}")]
    Evaluation(String),
}

impl Error {
    pub(crate) fn syntax(pos: usize, msg: impl Into<String>) -> Error {
        Error::Syntax {
            pos,
            msg: msg.into(),
        }
    }
    pub(crate) fn semantic(pos: usize, msg: impl Into<String>) -> Error {
        Error::Semantic {
            pos,
            msg: msg.into(),
        }
    }
    pub(crate) fn eval(msg: impl Into<String>) -> Error {
        Error::Evaluation(msg.into())
    }
}

/// A compiled FHIRPath expression. `Send + Sync`; evaluate it as often as needed.
#[derive(Debug, Clone)]
pub struct Expr {
    ast: parser::Ast,
    src: String,
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, Error> {
        Ok(Expr {
            ast: parser::parse(src)?,
            src: src.to_string(),
        })
    }

    /// The source text the expression was compiled from.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Evaluates with `%resource` = `%rootResource` = `root` (a FHIR resource) and the
    /// context item = `root`.
    pub fn evaluate<'a>(&self, root: &'a Value) -> Result<Vec<Item<'a>>, Error> {
        let focus = Item::Node(Node::resource(root));
        self.evaluate_on(root, &focus)
    }

    /// Evaluates with `focus` as the context item (`$this`), `root` as `%resource`.
    pub fn evaluate_on<'a>(
        &self,
        root: &'a Value,
        focus: &Item<'a>,
    ) -> Result<Vec<Item<'a>>, Error> {
        let this = [focus.clone()];
        let ctx = eval::Ctx {
            root,
            this: &this,
            index: None,
            total: None,
        };
        eval::eval(&self.ast, &ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn expr_is_send_and_sync() {
        assert_send_sync::<Expr>();
    }
}
