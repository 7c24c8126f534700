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

mod boundary;
mod eval;
mod footprint;
mod functions;
mod functions_text;
pub mod invariants;
mod item;
mod keys;
mod lexer;
mod model;
mod ops;
mod parser;
pub mod temporal;

use serde_json::Value;

pub use footprint::{Footprint, Scope};
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

/// Values the caller supplies for `%name` environment variables (FHIRPath N1 §1.5.8
/// "Environment variables"), besides the built-in ones ([`is_builtin_variable`]). A SQL on
/// FHIR view uses it for its constants and `%rowIndex`.
pub trait Variables<'a> {
    /// The value of `%name`, or `None` when this environment does not define it.
    fn variable(&self, name: &str) -> Option<Vec<Item<'a>>>;
}

/// No variables besides the built-in ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVariables;

impl<'a> Variables<'a> for NoVariables {
    fn variable(&self, _name: &str) -> Option<Vec<Item<'a>>> {
        None
    }
}

/// True for the variables every evaluation defines: `%resource`, `%rootResource`,
/// `%context`, `%ucum`, `%sct`, `%loinc`, `%vs-*` and `%ext-*`.
pub fn is_builtin_variable(name: &str) -> bool {
    matches!(
        name,
        "resource" | "rootResource" | "context" | "ucum" | "sct" | "loinc"
    ) || name.starts_with("vs-")
        || name.starts_with("ext-")
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
        self.evaluate_with(root, std::slice::from_ref(focus), &NoVariables)
    }

    /// Evaluates with `focus` as the input collection (usually one item; empty is
    /// allowed, and then paths give nothing while literals and variables still have
    /// their values), `root` as `%resource`, and `vars` answering the `%name` variables
    /// that are not built in.
    pub fn evaluate_with<'a>(
        &self,
        root: &'a Value,
        focus: &[Item<'a>],
        vars: &dyn Variables<'a>,
    ) -> Result<Vec<Item<'a>>, Error> {
        let ctx = eval::Ctx {
            root,
            this: focus,
            index: None,
            total: None,
            vars,
        };
        eval::eval(&self.ast, &ctx)
    }

    /// Adds to `fp` the top-level elements of the resource the expression may read when
    /// evaluated with items of `focus` as its context (`Scope::Root` for the resource
    /// itself), or marks it `all`; gives where its result's items come from, to walk
    /// the expressions evaluated on them next ([`footprint`](crate::Footprint)).
    pub fn footprint(&self, focus: Scope, fp: &mut Footprint) -> Scope {
        footprint::walk(&self.ast, focus, fp)
    }

    /// The names of the `%variables` the expression refers to (without the `%`), in
    /// order of appearance, so a caller can reject an undefined one before evaluating.
    pub fn variables(&self) -> Vec<&str> {
        let mut out = Vec::new();
        parser::variables(&self.ast, &mut out);
        out
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

    struct Use(&'static str);

    impl<'a> Variables<'a> for Use {
        fn variable(&self, name: &str) -> Option<Vec<Item<'a>>> {
            (name == "use").then(|| vec![Item::String(self.0.into())])
        }
    }

    #[test]
    fn caller_variables_are_looked_up_and_listed() {
        let p = serde_json::json!({"resourceType": "Patient", "name": [
            {"use": "usual", "family": "Block"}, {"use": "official", "family": "Smith"}]});
        let e = Expr::parse("name.where(use = %use).family | %ucum").expect("parses");
        assert_eq!(e.variables(), ["use", "ucum"]);
        let focus = Item::Node(Node::resource(&p));
        let out = e
            .evaluate_with(&p, std::slice::from_ref(&focus), &Use("official"))
            .expect("evaluates");
        let texts: Vec<_> = out.iter().filter_map(Item::to_text).collect();
        assert_eq!(texts, ["Smith", "http://unitsofmeasure.org"]);
        // Without the variable, evaluation fails rather than guessing.
        assert!(e.evaluate(&p).is_err());
        assert!(is_builtin_variable("ucum") && !is_builtin_variable("use"));
    }
}
