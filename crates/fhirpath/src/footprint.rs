//! What an expression reads of the resource it runs over: the top-level elements its
//! paths start with, or "all of it". A caller that runs a few expressions over many
//! stored resources (a SQL on FHIR view) parses only those elements of each.
//!
//! The walk is conservative: it names an element whenever the expression may read it,
//! and answers "all" whenever a step may see the resource as a whole in a way that reads
//! more than named members (`children()`, `descendants()`, a comparison or conversion of
//! the resource itself, a function it does not know to be harmless). Once a top-level
//! element is kept it is kept whole, so anything done below it is exact.

use std::collections::BTreeSet;

use crate::functions::Func;
use crate::parser::{Ast, BinOp, TypeOp};

/// Where a collection's items may come from, as far as the resource is concerned,
/// ordered from the least to the most the resource they may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Not from the resource: literals, constants, results of functions.
    Outside,
    /// Inside top-level elements already named.
    Within,
    /// The resource itself (the root, `%resource`, `$this` at the top).
    Root,
}

/// The top-level elements of the resource that expressions read (element names as the
/// model spells them: `value` for `value[x]`), or `all` when they may read any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    pub members: BTreeSet<String>,
    pub all: bool,
}

impl Footprint {
    /// True when a top-level JSON key must be kept to evaluate the expressions walked:
    /// `resourceType` and `id` always; a named element, its choice-type forms (`value`
    /// keeps `valueQuantity`) and the `_` companions holding their extensions.
    pub fn keeps(&self, key: &str) -> bool {
        if self.all || key == "resourceType" || key == "id" {
            return true;
        }
        let key = key.strip_prefix('_').unwrap_or(key);
        self.members.iter().any(|m| {
            key.strip_prefix(m.as_str()).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase())
            })
        })
    }

    fn name(&mut self, member: &str) {
        if !self.members.contains(member) {
            self.members.insert(member.to_owned());
        }
    }
}

/// Walks `ast` evaluated with items of `focus` as its context (`$this`), adding what it
/// reads to `fp`; gives the scope of its result.
pub(crate) fn walk(ast: &Ast, focus: Scope, fp: &mut Footprint) -> Scope {
    match ast {
        Ast::Lit(_) | Ast::Empty | Ast::Index | Ast::Total => Scope::Outside,
        Ast::This => focus,
        Ast::Var(name) => match name.as_str() {
            "resource" | "rootResource" | "context" => Scope::Root,
            _ => Scope::Outside,
        },
        Ast::Member(recv, name, _) => {
            let input = match recv {
                Some(r) => walk(r, focus, fp),
                None => focus,
            };
            // A bare capitalised name at the root is the resource's type: the root itself.
            if recv.is_none() && name.starts_with(|c: char| c.is_ascii_uppercase()) {
                return input;
            }
            member(input, name, fp)
        }
        Ast::Type(recv, op, _) => {
            let input = match recv {
                Some(r) => walk(r, focus, fp),
                None => focus,
            };
            match op {
                TypeOp::Is => Scope::Outside,
                TypeOp::As | TypeOp::OfType => input,
            }
        }
        Ast::Indexer(a, i) => {
            walk(i, focus, fp);
            walk(a, focus, fp)
        }
        Ast::Neg(a) => {
            whole_if_root(walk(a, focus, fp), fp);
            Scope::Outside
        }
        Ast::Bin(op, a, b) => {
            let (l, r) = (walk(a, focus, fp), walk(b, focus, fp));
            if *op == BinOp::Union {
                return l.max(r);
            }
            // Equality, membership and the like compare the resource as a whole.
            whole_if_root(l, fp);
            whole_if_root(r, fp);
            Scope::Outside
        }
        Ast::Call(recv, func, args) => {
            let input = match recv {
                Some(r) => walk(r, focus, fp),
                None => focus,
            };
            call(*func, input, focus, args, fp)
        }
    }
}

fn member(input: Scope, name: &str, fp: &mut Footprint) -> Scope {
    match input {
        Scope::Root => {
            fp.name(name);
            Scope::Within
        }
        other => other,
    }
}

fn whole_if_root(s: Scope, fp: &mut Footprint) {
    if s == Scope::Root {
        fp.all = true;
    }
}

fn call(func: Func, input: Scope, focus: Scope, args: &[Ast], fp: &mut Footprint) -> Scope {
    use Func::*;
    // Lambdas see the input's items as `$this` (as `functions::call` evaluates them:
    // `where`, `select`, `all`, `exists`, `repeat`, `sort`, `iif`, the first argument of
    // `aggregate`); the other arguments see the caller's context.
    let lambda = matches!(func, Where | Select | All | Exists | Repeat | Sort | Iif);
    let arg_scopes: Vec<Scope> = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let f = if lambda || (func == Aggregate && i == 0) {
                input
            } else {
                focus
            };
            walk(a, f, fp)
        })
        .collect();
    let arg_max = arg_scopes.iter().copied().max().unwrap_or(Scope::Outside);
    match func {
        // A subset of the input, chosen by position or by a lambda.
        Where | First | Last | Single | Tail | Skip | Take | Trace | Sort => input,
        // The lambda's result, from the input's items (and, for `repeat`, from those).
        Select => arg_max,
        Repeat => {
            // Applied again to its own results: those must not be the root.
            whole_if_root(arg_max, fp);
            arg_max
        }
        // The union of the input and the argument.
        Union | Combine | Iif => input.max(arg_max),
        // Answers about the input's presence or count, not its content.
        Empty | Exists | All | Count | HasValue | Not | AllTrue | AnyTrue | AllFalse | AnyFalse => {
            Scope::Outside
        }
        // The resource's own id; a reference's key.
        GetResourceKey => {
            if input == Scope::Root {
                fp.name("id");
            }
            Scope::Outside
        }
        GetReferenceKey => {
            whole_if_root(input, fp);
            Scope::Outside
        }
        Extension => member(input, "extension", fp),
        // `#id` resolves into the root's `contained`.
        Resolve => {
            fp.name("contained");
            whole_if_root(input, fp);
            Scope::Within
        }
        Now | Today | TimeOfDay => Scope::Outside,
        // Anything else reads its input's content: the whole resource when that is it.
        _ => {
            whole_if_root(input, fp);
            whole_if_root(arg_max, fp);
            Scope::Outside
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Expr;

    /// The footprint of expressions run at the resource, in turn.
    fn of(exprs: &[&str]) -> Footprint {
        let mut fp = Footprint::default();
        for e in exprs {
            Expr::parse(e)
                .expect("parses")
                .footprint(Scope::Root, &mut fp);
        }
        fp
    }

    fn names(fp: &Footprint) -> Vec<&str> {
        fp.members.iter().map(String::as_str).collect()
    }

    #[test]
    fn paths_name_their_first_element() {
        let fp = of(&[
            "name.where(use = 'official').family",
            "Observation.value.ofType(Quantity).unit",
            "subject.getReferenceKey(Patient)",
            "getResourceKey()",
            "code.coding.exists(system = %loinc)",
            "extension('http://x').value",
        ]);
        assert!(!fp.all);
        assert_eq!(
            names(&fp),
            ["code", "extension", "id", "name", "subject", "value"]
        );
    }

    #[test]
    fn keeps_choice_forms_and_companions() {
        let fp = of(&["value.ofType(Quantity)", "effective"]);
        for key in [
            "resourceType",
            "id",
            "valueQuantity",
            "_valueString",
            "effectiveDateTime",
            "value",
        ] {
            assert!(fp.keeps(key), "{key}");
        }
        // `valueset` is not a form of `value[x]`; `meta` is not read.
        for key in ["valueset", "meta", "code", "_code"] {
            assert!(!fp.keeps(key), "{key}");
        }
    }

    #[test]
    fn the_resource_as_a_whole_reads_everything() {
        for e in [
            "children().count()",
            "descendants()",
            "%resource = %resource",
            "$this.toString()",
            "repeat($this)",
            "Patient.distinct()",
            "select($this).children()",
        ] {
            assert!(of(&[e]).all, "{e}");
        }
    }

    #[test]
    fn variables_name_what_they_reach() {
        let fp = of(&[
            "%resource.status",
            "(%rootResource | %context).identifier.value",
        ]);
        assert!(!fp.all);
        assert_eq!(names(&fp), ["identifier", "status"]);
        // Inside an element, the root's members are still named.
        let fp = of(&["name.where(%resource.active).given", "link.other.resolve()"]);
        assert_eq!(names(&fp), ["active", "contained", "link", "name"]);
    }

    #[test]
    fn literals_and_counts_read_nothing() {
        let fp = of(&["1 + 2", "'a' | 'b'", "exists()", "now()"]);
        assert!(!fp.all);
        assert!(fp.members.is_empty());
    }
}
