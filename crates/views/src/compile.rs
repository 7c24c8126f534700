//! Compiling a ViewDefinition (https://sql-on-fhir.org/ig/StructureDefinition-ViewDefinition.html)
//! into a [`View`]: the structure is checked, every FHIRPath expression parsed once, every
//! `%variable` resolved against the constants, and the output columns worked out with the
//! implementer guidance's column validation (§"Validate Columns",
//! https://sql-on-fhir.org/ig/implementer_guidance.html): names are unique across the
//! view, and every `unionAll` branch yields the same names in the same order.

use oxehr_fhirpath::{is_builtin_variable, Expr};
use serde_json::{Map, Value};

use crate::constant::{self, Constant};
use crate::Error;

/// One output column of a view, in output order (ViewDefinition, §"select.column").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column name, matching `^[A-Za-z][A-Za-z0-9_]*$`.
    pub name: String,
    /// The FHIR type the definition declares for it (`column.type`), if any. Values are
    /// not converted to it; it is for the consumer's schema.
    pub type_code: Option<String>,
    /// `column.collection`: the value is a JSON array of every item the path gave.
    pub collection: bool,
}

/// A compiled ViewDefinition. `Send + Sync`: compile once, run over any number of
/// resources from any number of threads.
#[derive(Debug, Clone)]
pub struct View {
    pub(crate) resource: String,
    pub(crate) name: Option<String>,
    pub(crate) constants: Vec<Constant>,
    pub(crate) wheres: Vec<Path>,
    /// The view's `select` list, as the nested selections of a root with no columns.
    pub(crate) root: Select,
    pub(crate) columns: Vec<Column>,
    /// What the view's paths may read of a resource ([`View::parse`]).
    pub(crate) footprint: oxehr_fhirpath::Footprint,
}

/// A compiled FHIRPath expression and where in the definition it was written.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub expr: Expr,
    pub at: String,
}

/// A compiled column's expression.
#[derive(Debug, Clone)]
pub(crate) struct ColumnPath {
    pub path: Path,
    pub collection: bool,
}

/// How a selection chooses the nodes its rows are made from (ViewDefinition,
/// §"Unnesting semantics").
#[derive(Debug, Clone)]
pub(crate) enum Iteration {
    /// The parent's node.
    Parent,
    /// Each node the path gives; none when it gives none.
    ForEach(Path),
    /// Each node the path gives; one row of nulls when it gives none.
    ForEachOrNull(Path),
    /// The nodes the paths give, and the nodes they give from those, recursively.
    Repeat(Vec<Path>),
}

/// A compiled `select` element.
#[derive(Debug, Clone)]
pub(crate) struct Select {
    pub columns: Vec<ColumnPath>,
    pub selects: Vec<Select>,
    pub union_all: Vec<Select>,
    pub iteration: Iteration,
    /// How many output columns this selection yields, nested ones included.
    pub width: usize,
}

impl View {
    /// Validates and compiles a ViewDefinition (ViewDefinition, §"Validation"): `resource`
    /// must name an R4 resource type; `select` must be present; columns need a `name`
    /// matching `^[A-Za-z][A-Za-z0-9_]*$` and a `path`; names are unique; a selection
    /// has at most one of `forEach`, `forEachOrNull` and `repeat`; `unionAll` branches
    /// agree on their columns; constants have exactly one `value[x]` of a primitive type;
    /// every FHIRPath expression parses and names only defined `%variables`
    /// (constants, `%rowIndex` and the FHIRPath built-ins).
    pub fn compile(def: &Value) -> Result<View, Error> {
        let obj = def
            .as_object()
            .ok_or_else(|| Error::definition("", "a ViewDefinition must be a JSON object"))?;
        let resource = obj
            .get("resource")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::definition("resource", "required, a resource type name"))?;
        if !oxehr_fhir::Definitions::r4().is_resource_type(resource) {
            return Err(Error::definition(
                "resource",
                format!("{resource} is not a FHIR R4 resource type"),
            ));
        }
        let constants = array(obj, "constant", "")?
            .iter()
            .enumerate()
            .map(|(i, c)| constant::compile(c, &format!("constant[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, c) in constants.iter().enumerate() {
            if constants[..i].iter().any(|d| d.name == c.name) {
                return Err(Error::definition(
                    &format!("constant[{i}]"),
                    format!("constant {} is defined twice", c.name),
                ));
            }
        }
        let compiler = Compiler {
            constants: &constants,
        };
        let wheres = array(obj, "where", "")?
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let at = format!("where[{i}]");
                let path = w
                    .get("path")
                    .ok_or_else(|| Error::definition(&at, "a where needs a path"))?;
                compiler.path(path, &format!("{at}.path"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let selects = array(obj, "select", "")?;
        if selects.is_empty() {
            return Err(Error::definition("select", "required, at least one select"));
        }
        let mut columns = Vec::new();
        let mut nested = Vec::with_capacity(selects.len());
        for (i, s) in selects.iter().enumerate() {
            nested.push(compiler.select(s, &format!("select[{i}]"), &mut columns)?);
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|d| d.name == c.name) {
                return Err(Error::definition(
                    "select",
                    format!("column {} is defined more than once", c.name),
                ));
            }
        }
        let root = Select {
            width: columns.len(),
            columns: Vec::new(),
            selects: nested,
            union_all: Vec::new(),
            iteration: Iteration::Parent,
        };
        let mut view = View {
            resource: resource.to_string(),
            name: obj.get("name").and_then(Value::as_str).map(str::to_string),
            constants,
            wheres,
            root,
            columns,
            footprint: oxehr_fhirpath::Footprint::default(),
        };
        view.footprint = crate::parse::footprint(&view);
        Ok(view)
    }

    /// The resource type the view is over (`ViewDefinition.resource`).
    pub fn resource_type(&self) -> &str {
        &self.resource
    }

    /// The view's computable name (`ViewDefinition.name`), if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The output columns in order: a selection's own columns, then those of its nested
    /// `select`s, then those of its `unionAll` (ViewDefinition, §"Column ordering").
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
}

/// The elements of a JSON array member (absent is empty).
fn array<'v>(obj: &'v Map<String, Value>, key: &str, at: &str) -> Result<&'v [Value], Error> {
    match obj.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(Error::definition(
            &join(at, key),
            format!("{key} must be an array"),
        )),
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// Column and constant names: `^[A-Za-z][A-Za-z0-9_]*$` (ViewDefinition, §"Column names"),
/// so they are usable unquoted in SQL.
pub(crate) fn check_name(name: &str, at: &str) -> Result<(), Error> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::definition(
            at,
            format!("name {name:?} must match ^[A-Za-z][A-Za-z0-9_]*$"),
        ))
    }
}

struct Compiler<'c> {
    constants: &'c [Constant],
}

impl Compiler<'_> {
    /// Parses a FHIRPath string and checks its `%variables`.
    fn path(&self, v: &Value, at: &str) -> Result<Path, Error> {
        let src = v
            .as_str()
            .ok_or_else(|| Error::definition(at, "a FHIRPath expression must be a string"))?;
        let expr = Expr::parse(src).map_err(|e| Error::definition(at, e.to_string()))?;
        for var in expr.variables() {
            let known = var == "rowIndex"
                || is_builtin_variable(var)
                || self.constants.iter().any(|c| c.name == var);
            if !known {
                return Err(Error::definition(
                    at,
                    format!("%{var} is not a defined constant"),
                ));
            }
        }
        Ok(Path {
            expr,
            at: at.to_string(),
        })
    }

    /// Compiles one `select`, appending its output columns to `out`.
    fn select(&self, v: &Value, at: &str, out: &mut Vec<Column>) -> Result<Select, Error> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::definition(at, "a select must be an object"))?;
        let start = out.len();
        let mut columns = Vec::new();
        for (i, c) in array(obj, "column", at)?.iter().enumerate() {
            let (path, column) = self.column(c, &format!("{at}.column[{i}]"))?;
            columns.push(path);
            out.push(column);
        }
        let mut selects = Vec::new();
        for (i, s) in array(obj, "select", at)?.iter().enumerate() {
            selects.push(self.select(s, &format!("{at}.select[{i}]"), out)?);
        }
        let mut union_all = Vec::new();
        let mut union_columns: Option<Vec<Column>> = None;
        for (i, u) in array(obj, "unionAll", at)?.iter().enumerate() {
            let branch_at = format!("{at}.unionAll[{i}]");
            let mut branch = Vec::new();
            union_all.push(self.select(u, &branch_at, &mut branch)?);
            match &union_columns {
                None => union_columns = Some(branch),
                Some(first) => {
                    let names = |cs: &[Column]| cs.iter().map(|c| c.name.clone()).collect();
                    let (a, b): (Vec<String>, Vec<String>) = (names(first), names(&branch));
                    if a != b {
                        return Err(Error::definition(
                            &branch_at,
                            format!(
                                "unionAll branches must have the same columns in the same \
                                 order: [{}] against [{}]",
                                a.join(", "),
                                b.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        out.extend(union_columns.unwrap_or_default());
        if columns.is_empty() && selects.is_empty() && union_all.is_empty() {
            return Err(Error::definition(
                at,
                "a select needs a column, select or unionAll",
            ));
        }
        let iteration = self.iteration(obj, at)?;
        Ok(Select {
            columns,
            selects,
            union_all,
            iteration,
            width: out.len() - start,
        })
    }

    fn iteration(&self, obj: &Map<String, Value>, at: &str) -> Result<Iteration, Error> {
        let given: Vec<&str> = ["forEach", "forEachOrNull", "repeat"]
            .into_iter()
            .filter(|k| obj.contains_key(*k))
            .collect();
        if given.len() > 1 {
            return Err(Error::definition(
                at,
                format!("a select may have only one of {}", given.join(", ")),
            ));
        }
        Ok(match given.first().copied() {
            None => Iteration::Parent,
            Some("forEach") => {
                Iteration::ForEach(self.path(&obj["forEach"], &join(at, "forEach"))?)
            }
            Some("forEachOrNull") => Iteration::ForEachOrNull(
                self.path(&obj["forEachOrNull"], &join(at, "forEachOrNull"))?,
            ),
            Some(_) => {
                let paths = array(obj, "repeat", at)?;
                if paths.is_empty() {
                    return Err(Error::definition(
                        &join(at, "repeat"),
                        "repeat needs at least one path",
                    ));
                }
                Iteration::Repeat(
                    paths
                        .iter()
                        .enumerate()
                        .map(|(i, p)| self.path(p, &format!("{at}.repeat[{i}]")))
                        .collect::<Result<_, _>>()?,
                )
            }
        })
    }

    fn column(&self, v: &Value, at: &str) -> Result<(ColumnPath, Column), Error> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::definition(at, "a column must be an object"))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::definition(at, "a column needs a name"))?;
        check_name(name, &join(at, "name"))?;
        let path = obj
            .get("path")
            .ok_or_else(|| Error::definition(at, format!("column {name} needs a path")))?;
        let path = self.path(path, &join(at, "path"))?;
        let collection = match obj.get("collection") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::definition(
                    &join(at, "collection"),
                    "collection must be true or false",
                ))
            }
        };
        let type_code = match obj.get("type") {
            None => None,
            Some(Value::String(t)) => Some(t.clone()),
            Some(_) => {
                return Err(Error::definition(
                    &join(at, "type"),
                    "type must be a string",
                ))
            }
        };
        Ok((
            ColumnPath { path, collection },
            Column {
                name: name.to_string(),
                type_code,
                collection,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(def: Value) -> Vec<String> {
        View::compile(&def)
            .unwrap_or_else(|e| panic!("{e}"))
            .columns()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    #[test]
    fn columns_come_in_spec_order() {
        let def = json!({"resource": "Patient", "select": [
            {"column": [{"name": "a", "path": "id"}],
             "unionAll": [{"column": [{"name": "d", "path": "id"}]},
                          {"column": [{"name": "d", "path": "id"}]}],
             "select": [{"forEach": "name", "column": [{"name": "b", "path": "family"}]},
                        {"column": [{"name": "c", "path": "id"}]}]},
            {"column": [{"name": "e", "path": "id", "type": "id", "collection": true}]}
        ]});
        assert_eq!(names(def.clone()), ["a", "b", "c", "d", "e"]);
        let view = View::compile(&def).expect("compiles");
        assert_eq!(
            view.columns()[4],
            Column {
                name: "e".into(),
                type_code: Some("id".into()),
                collection: true
            }
        );
        assert_eq!(view.resource_type(), "Patient");
    }

    /// Each invalid definition with the part of the message that must say why.
    #[test]
    fn invalid_definitions_say_what_is_wrong() {
        let col = |name: &str| json!({"name": name, "path": "id"});
        let cases = [
            (json!([]), "JSON object"),
            (json!({"select": [{"column": [col("a")]}]}), "resource"),
            (
                json!({"resource": "Patinet", "select": [{"column": [col("a")]}]}),
                "Patinet",
            ),
            (json!({"resource": "Patient"}), "at least one select"),
            (
                json!({"resource": "Patient", "select": [{"column": [col("a b")]}]}),
                "must match",
            ),
            (
                json!({"resource": "Patient", "select": [{"column": [col("_a")]}]}),
                "must match",
            ),
            (
                json!({"resource": "Patient", "select": [{"column": [col("a"), col("a")]}]}),
                "more than once",
            ),
            (
                json!({"resource": "Patient", "select": [{"column": [{"name": "a"}]}]}),
                "path",
            ),
            (
                json!({"resource": "Patient", "select": [{"column": [{"name": "a", "path": "("}]}]}),
                "syntax",
            ),
            (
                json!({"resource": "Patient", "select": [{"forEach": 1, "column": [col("a")]}]}),
                "string",
            ),
            (
                json!({"resource": "Patient", "select": [{"forEach": "name", "forEachOrNull": "name",
                "column": [col("a")]}]}),
                "only one",
            ),
            (
                json!({"resource": "Patient", "select": [{"forEach": "name"}]}),
                "needs a column",
            ),
            (
                json!({"resource": "Patient", "select": [{"unionAll": [
                {"column": [col("a"), col("b")]}, {"column": [col("b"), col("a")]}]}]}),
                "same order",
            ),
            (
                json!({"resource": "Patient", "select": [{"column": [
                {"name": "a", "path": "name.where(use = %nope)"}]}]}),
                "%nope",
            ),
            (
                json!({"resource": "Patient", "where": [{"path": 3}],
                "select": [{"column": [col("a")]}]}),
                "where[0].path",
            ),
        ];
        for (def, why) in cases {
            match View::compile(&def) {
                Ok(_) => panic!("{def} compiled"),
                Err(e) => assert!(e.to_string().contains(why), "{def}: {e}"),
            }
        }
    }

    #[test]
    fn view_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<View>();
    }
}
