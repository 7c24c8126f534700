//! Running a compiled view over one resource, following the spec's processing algorithm
//! (implementer guidance, §"Process", https://sql-on-fhir.org/ig/implementer_guidance.html;
//! ViewDefinition, §"Unnesting semantics"): a selection's nodes come from its parent,
//! `forEach`, `forEachOrNull` or `repeat`; for each node its own columns, the rows of each
//! nested `select` and the rows of all `unionAll` branches are cross-joined, in that
//! order.
//!
//! `%rowIndex` (ViewDefinition, §"Row index") is the 0-based position of the node among
//! those its selection's `forEach`, `forEachOrNull` or `repeat` gave; a selection without
//! one, and so the view's top level, sees its parent's index (0 at the resource).
//!
//! The null row of a `forEachOrNull` that finds nothing is the selection run over *no*
//! node with `%rowIndex` 0: paths give nothing (null), `%rowIndex` gives 0 as the suite
//! expects, and a nested selection that then gives no rows gives one row of nulls, so
//! the null row is never lost.

use oxehr_fhirpath::{Item, Node, Variables};
use serde_json::Value;

use crate::compile::{ColumnPath, Iteration, Path, Select, View};
use crate::constant::Constant;
use crate::value::to_json;
use crate::Error;

/// How deep `repeat` may recurse before the view is taken to loop (a path like `$this`
/// never ends; FHIR content nests far less).
const MAX_REPEAT_DEPTH: usize = 64;

/// Partial rows: each the values of one selection's columns.
type Rows = Vec<Vec<Value>>;

/// The `%variables` of one evaluation: the view's constants and `%rowIndex`.
struct Env<'v> {
    constants: &'v [Constant],
    row_index: i64,
}

impl<'a> Variables<'a> for Env<'_> {
    fn variable(&self, name: &str) -> Option<Vec<Item<'a>>> {
        if name == "rowIndex" {
            return Some(vec![Item::Integer(self.row_index)]);
        }
        self.constants
            .iter()
            .find(|c| c.name == name)
            .map(|c| vec![c.value.clone()])
    }
}

impl View {
    /// Runs the view over one resource, calling `out` with each row's values in
    /// [`View::columns`] order (JSON `null` for an empty result; an array for a
    /// `collection` column). A resource of another type, or one that a `where` path
    /// (ViewDefinition, §"where") does not hold true for, gives no rows.
    ///
    /// Errors: a non-`collection` column whose path gives several items, a `where` path
    /// that gives something other than one Boolean or nothing, a FHIRPath evaluation
    /// error. Rows already passed to `out` for this resource stay passed.
    pub fn rows(&self, resource: &Value, out: &mut impl FnMut(Vec<Value>)) -> Result<(), Error> {
        if resource.get("resourceType").and_then(Value::as_str) != Some(self.resource.as_str()) {
            return Ok(());
        }
        let run = Run {
            view: self,
            root: resource,
        };
        let focus = [Item::Node(Node::resource(resource))];
        for w in &self.wheres {
            if !run.holds(w, &focus)? {
                return Ok(());
            }
        }
        for row in run.select(&self.root, &focus, 0)? {
            out(row);
        }
        Ok(())
    }
}

/// One resource's run of a view.
struct Run<'v, 'a> {
    view: &'v View,
    root: &'a Value,
}

impl<'a> Run<'_, 'a> {
    fn eval(
        &self,
        path: &Path,
        focus: &[Item<'a>],
        row_index: i64,
    ) -> Result<Vec<Item<'a>>, Error> {
        let env = Env {
            constants: &self.view.constants,
            row_index,
        };
        path.expr
            .evaluate_with(self.root, focus, &env)
            .map_err(|e| Error::evaluation(&path.at, e.to_string()))
    }

    /// A `where` path: true, false or empty (false); anything else is an error.
    fn holds(&self, path: &Path, focus: &[Item<'a>]) -> Result<bool, Error> {
        let r = self.eval(path, focus, 0)?;
        match r.as_slice() {
            [] => Ok(false),
            [one] => match one.to_system() {
                Item::Boolean(b) => Ok(b),
                _ => Err(Error::evaluation(
                    &path.at,
                    "a where path must give a Boolean",
                )),
            },
            _ => Err(Error::evaluation(
                &path.at,
                format!(
                    "a where path must give one Boolean, it gave {} items",
                    r.len()
                ),
            )),
        }
    }

    /// The rows of selection `s` under `focus` (whose `%rowIndex` is `index`).
    fn select(&self, s: &Select, focus: &[Item<'a>], index: i64) -> Result<Rows, Error> {
        let nodes = match &s.iteration {
            Iteration::Parent => return self.node(s, focus, index),
            Iteration::ForEach(p) => self.eval(p, focus, index)?,
            Iteration::ForEachOrNull(p) => {
                let nodes = self.eval(p, focus, index)?;
                if nodes.is_empty() {
                    return self.node(s, &[], 0);
                }
                nodes
            }
            Iteration::Repeat(paths) => {
                let mut nodes = Vec::new();
                self.repeat(paths, focus, index, 0, &mut nodes)?;
                nodes
            }
        };
        let mut rows = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            rows.extend(self.node(s, std::slice::from_ref(n), i as i64)?);
        }
        Ok(rows)
    }

    /// Depth first: each node a path gives, then the nodes under it, path by path.
    fn repeat(
        &self,
        paths: &[Path],
        focus: &[Item<'a>],
        index: i64,
        depth: usize,
        out: &mut Vec<Item<'a>>,
    ) -> Result<(), Error> {
        if depth > MAX_REPEAT_DEPTH {
            return Err(Error::evaluation(
                &paths[0].at,
                format!("repeat went deeper than {MAX_REPEAT_DEPTH} levels"),
            ));
        }
        for p in paths {
            for child in self.eval(p, focus, index)? {
                out.push(child.clone());
                self.repeat(paths, std::slice::from_ref(&child), index, depth + 1, out)?;
            }
        }
        Ok(())
    }

    /// The rows of selection `s` for one of its nodes (for the null row: none).
    fn node(&self, s: &Select, focus: &[Item<'a>], index: i64) -> Result<Rows, Error> {
        let null_row = focus.is_empty();
        let or_null = |part: Rows, width: usize| {
            if part.is_empty() && null_row {
                vec![vec![Value::Null; width]]
            } else {
                part
            }
        };
        let mut first = Vec::with_capacity(s.width);
        for c in &s.columns {
            first.push(self.column(c, focus, index)?);
        }
        let mut rows = vec![first];
        for sub in &s.selects {
            let part = or_null(self.select(sub, focus, index)?, sub.width);
            rows = cross(rows, part);
            if rows.is_empty() {
                return Ok(rows);
            }
        }
        if let Some(branch) = s.union_all.first() {
            let mut part = Vec::new();
            for u in &s.union_all {
                part.extend(self.select(u, focus, index)?);
            }
            rows = cross(rows, or_null(part, branch.width));
        }
        Ok(rows)
    }

    fn column(&self, c: &ColumnPath, focus: &[Item<'a>], index: i64) -> Result<Value, Error> {
        let items = self.eval(&c.path, focus, index)?;
        if c.collection {
            return Ok(Value::Array(items.iter().map(to_json).collect()));
        }
        match items.as_slice() {
            [] => Ok(Value::Null),
            [one] => Ok(to_json(one)),
            _ => Err(Error::evaluation(
                &c.path.at,
                format!(
                    "the path gave {} items; a column that is not a collection takes one",
                    items.len()
                ),
            )),
        }
    }
}

/// Every row of `left` followed by every row of `right`, left-major.
fn cross(mut left: Rows, mut right: Rows) -> Rows {
    if left.len() == 1 && right.len() == 1 {
        // The common case (one node, no unnesting): no copies.
        left[0].append(&mut right[0]);
        return left;
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in &left {
        for r in &right {
            let mut row = Vec::with_capacity(l.len() + r.len());
            row.extend_from_slice(l);
            row.extend_from_slice(r);
            out.push(row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(def: Value, resource: Value) -> Result<Vec<Vec<Value>>, Error> {
        let view = View::compile(&def)?;
        let mut out = Vec::new();
        view.rows(&resource, &mut |r| out.push(r))?;
        Ok(out)
    }

    #[test]
    fn other_resource_types_give_no_rows() {
        let def =
            json!({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]});
        let obs = json!({"resourceType": "Observation", "id": "o1"});
        assert_eq!(rows(def, obs).expect("runs"), Vec::<Vec<Value>>::new());
    }

    #[test]
    fn the_null_row_survives_a_nested_for_each() {
        let def = json!({"resource": "Patient", "select": [
            {"column": [{"name": "id", "path": "id"}]},
            {"forEachOrNull": "contact", "column": [{"name": "i", "path": "%rowIndex"}],
             "select": [{"forEach": "telecom", "column": [{"name": "tel", "path": "value"}]}]}
        ]});
        let p = json!({"resourceType": "Patient", "id": "p1"});
        assert_eq!(
            rows(def, p).expect("runs"),
            [[json!("p1"), json!(0), Value::Null]]
        );
    }

    #[test]
    fn repeat_visits_depth_first_and_numbers_rows() {
        let def = json!({"resource": "Questionnaire", "select": [
            {"repeat": ["item"], "column": [
                {"name": "link", "path": "linkId"}, {"name": "i", "path": "%rowIndex"}]}]});
        let q = json!({"resourceType": "Questionnaire", "status": "draft", "item": [
            {"linkId": "a", "type": "group", "item": [
                {"linkId": "a1", "type": "string"}, {"linkId": "a2", "type": "string"}]},
            {"linkId": "b", "type": "string"}]});
        let got = rows(def, q).expect("runs");
        let expected: Vec<Vec<Value>> = [("a", 0), ("a1", 1), ("a2", 2), ("b", 3)]
            .iter()
            .map(|(l, i)| vec![json!(l), json!(i)])
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_repeat_that_never_ends_is_an_error() {
        let def = json!({"resource": "Patient", "select": [
            {"repeat": ["$this"], "column": [{"name": "id", "path": "id"}]}]});
        let p = json!({"resourceType": "Patient", "id": "p1"});
        let err = rows(def, p).expect_err("loops");
        assert!(err.to_string().contains("deeper than"), "{err}");
    }

    #[test]
    fn run_time_errors_name_the_place_not_the_data() {
        let p = json!({"resourceType": "Patient", "id": "p1",
            "name": [{"family": "Secretname"}, {"family": "Other"}]});
        let several = json!({"resource": "Patient", "select": [{"column": [
            {"name": "family", "path": "name.family"}]}]});
        let err = rows(several, p.clone()).expect_err("two values");
        let text = err.to_string();
        assert!(
            text.contains("select[0].column[0].path") && text.contains("2 items"),
            "{text}"
        );
        assert!(!text.contains("Secretname"), "{text}");
        let not_boolean = json!({"resource": "Patient", "where": [{"path": "id"}],
            "select": [{"column": [{"name": "id", "path": "id"}]}]});
        let err = rows(not_boolean, p).expect_err("not Boolean");
        assert!(err.to_string().contains("where[0].path"), "{err}");
    }
}
