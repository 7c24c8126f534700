//! Recursive-descent parser from tokens to the expression tree, with the operator
//! precedence of the FHIRPath grammar (N1, §"Operator precedence"). Functions are resolved
//! and their arity checked here, so an unknown function is an error at compile time.

use crate::functions::Func;
use crate::item::Decimal;
use crate::lexer::{tokenize, Tok, Token};
use crate::temporal::Temporal;
use crate::Error;

#[derive(Debug, Clone)]
pub(crate) enum Lit {
    Bool(bool),
    Str(String),
    Int(i64),
    Dec(Decimal),
    Date(Temporal),
    DateTime(Temporal),
    Time(Temporal),
    Quantity(Decimal, String),
}

/// A type specifier: `Quantity`, `FHIR.Patient`, `System.String`.
#[derive(Debug, Clone)]
pub(crate) struct TypeSpec {
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Mul,
    Div,
    IntDiv,
    Mod,
    Add,
    Sub,
    Concat,
    Union,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    Equiv,
    NotEquiv,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeOp {
    Is,
    As,
    OfType,
}

#[derive(Debug, Clone)]
pub(crate) enum Ast {
    Lit(Lit),
    Empty,
    /// `receiver.name`, or a bare `name` (which may also name the context's type).
    Member(Option<Box<Ast>>, String, crate::model::MemberCache),
    Call(Option<Box<Ast>>, Func, Vec<Ast>),
    /// `x is T`, `x as T`, `x.is(T)`, `x.as(T)`, `x.ofType(T)`.
    Type(Option<Box<Ast>>, TypeOp, TypeSpec),
    This,
    Index,
    Total,
    Var(String),
    Indexer(Box<Ast>, Box<Ast>),
    Neg(Box<Ast>),
    Bin(BinOp, Box<Ast>, Box<Ast>),
}

pub(crate) fn parse(src: &str) -> Result<Ast, Error> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        level: 0,
    };
    let ast = p.expr(0)?;
    if p.peek() != &Tok::Eof {
        return Err(Error::syntax(p.pos(), "unexpected token"));
    }
    Ok(ast)
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// How deep the tree being built may already be: one level per nested expression
    /// and per step of a chain (`a.b.c`, `1 + 2 + 3`), so it bounds the tree's depth.
    level: usize,
}

/// The deepest an expression's tree may be. Evaluating and dropping a tree recurse
/// along it, so without a bound a long chain or deep nesting (`((((…))))`, `1 + 1 + …`)
/// in a request would overflow the stack and abort the server. Real expressions (the R4
/// search parameters and invariants) stay far below.
pub(crate) const MAX_DEPTH: usize = 128;

/// Binding power of infix operators, lowest first (the grammar's order reversed).
fn infix(tok: &Tok) -> Option<(u8, BinOp)> {
    Some(match tok {
        Tok::Ident(s) => match s.as_str() {
            "implies" => (1, BinOp::Implies),
            "or" => (2, BinOp::Or),
            "xor" => (2, BinOp::Xor),
            "and" => (3, BinOp::And),
            "in" => (4, BinOp::In),
            "contains" => (4, BinOp::Contains),
            "div" => (10, BinOp::IntDiv),
            "mod" => (10, BinOp::Mod),
            _ => return None,
        },
        Tok::Sym(s) => match *s {
            "=" => (5, BinOp::Eq),
            "!=" => (5, BinOp::Ne),
            "~" => (5, BinOp::Equiv),
            "!~" => (5, BinOp::NotEquiv),
            "<" => (6, BinOp::Lt),
            "<=" => (6, BinOp::Le),
            ">" => (6, BinOp::Gt),
            ">=" => (6, BinOp::Ge),
            "|" => (7, BinOp::Union),
            "+" => (9, BinOp::Add),
            "-" => (9, BinOp::Sub),
            "&" => (9, BinOp::Concat),
            "*" => (10, BinOp::Mul),
            "/" => (10, BinOp::Div),
            _ => return None,
        },
        _ => return None,
    })
}

/// Binding power of `is` / `as` (between `|` and `+`).
const TYPE_BP: u8 = 8;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }
    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(s) if *s == sym) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, sym: &str) -> Result<(), Error> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(Error::syntax(self.pos(), format!("expected '{sym}'")))
        }
    }

    /// One level deeper; an error past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<(), Error> {
        self.level += 1;
        if self.level > MAX_DEPTH {
            return Err(Error::syntax(
                self.pos(),
                format!("the expression nests too deeply (at most {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self, min_bp: u8) -> Result<Ast, Error> {
        let entry = self.level;
        let r = self.deeper().and_then(|()| self.expr_chain(min_bp));
        self.level = entry;
        r
    }

    fn expr_chain(&mut self, min_bp: u8) -> Result<Ast, Error> {
        let mut lhs = self.prefix()?;
        loop {
            let tok = self.peek().clone();
            if let Tok::Ident(s) = &tok {
                if (s == "is" || s == "as") && TYPE_BP >= min_bp && TYPE_BP > 0 {
                    if TYPE_BP < min_bp {
                        break;
                    }
                    self.i += 1;
                    self.deeper()?;
                    let spec = self.type_spec()?;
                    let op = if s == "is" { TypeOp::Is } else { TypeOp::As };
                    lhs = Ast::Type(Some(Box::new(lhs)), op, spec);
                    continue;
                }
            }
            let Some((bp, op)) = infix(&tok) else { break };
            if bp < min_bp {
                break;
            }
            self.i += 1;
            self.deeper()?;
            let rhs = self.expr(bp + 1)?;
            lhs = Ast::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn prefix(&mut self) -> Result<Ast, Error> {
        if self.eat("-") {
            let e = self.expr(11)?;
            return Ok(match e {
                Ast::Lit(Lit::Int(v)) => Ast::Lit(Lit::Int(-v)),
                Ast::Lit(Lit::Dec(d)) => Ast::Lit(Lit::Dec(-d)),
                Ast::Lit(Lit::Quantity(d, u)) => Ast::Lit(Lit::Quantity(-d, u)),
                e => Ast::Neg(Box::new(e)),
            });
        }
        if self.eat("+") {
            return self.expr(11);
        }
        let mut e = self.term()?;
        loop {
            if matches!(self.peek(), Tok::Sym(".") | Tok::Sym("[")) {
                self.deeper()?;
            }
            if self.eat(".") {
                e = self.invocation(Some(Box::new(e)))?;
            } else if self.eat("[") {
                let idx = self.expr(0)?;
                self.expect("]")?;
                e = Ast::Indexer(Box::new(e), Box::new(idx));
            } else {
                break;
            }
        }
        Ok(e)
    }

    fn term(&mut self) -> Result<Ast, Error> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.i += 1;
                Ok(Ast::Lit(Lit::Str(s)))
            }
            Tok::Int(v) => {
                self.i += 1;
                self.maybe_quantity(Decimal::from_int(v))
                    .map(|q| q.unwrap_or(Ast::Lit(Lit::Int(v))))
            }
            Tok::Dec(t) => {
                self.i += 1;
                let d = Decimal::parse(&t).ok_or_else(|| Error::syntax(pos, "bad number"))?;
                self.maybe_quantity(d)
                    .map(|q| q.unwrap_or(Ast::Lit(Lit::Dec(d))))
            }
            Tok::Temporal(t) => {
                self.i += 1;
                let bad = || Error::syntax(pos, "invalid date/time literal");
                if let Some(time) = t.strip_prefix('T') {
                    Ok(Ast::Lit(Lit::Time(
                        Temporal::parse_time(time).ok_or_else(bad)?,
                    )))
                } else if t.contains('T') {
                    Ok(Ast::Lit(Lit::DateTime(
                        Temporal::parse_datetime(&t).ok_or_else(bad)?,
                    )))
                } else {
                    Ok(Ast::Lit(Lit::Date(
                        Temporal::parse_date(&t).ok_or_else(bad)?,
                    )))
                }
            }
            Tok::Dollar(d) => {
                self.i += 1;
                match d.as_str() {
                    "this" => Ok(Ast::This),
                    "index" => Ok(Ast::Index),
                    "total" => Ok(Ast::Total),
                    _ => Err(Error::syntax(pos, "unknown $ variable")),
                }
            }
            Tok::Percent(name) => {
                self.i += 1;
                Ok(Ast::Var(name))
            }
            Tok::Sym("(") => {
                self.i += 1;
                let e = self.expr(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Sym("{") => {
                self.i += 1;
                self.expect("}")?;
                Ok(Ast::Empty)
            }
            Tok::Ident(s) if s == "true" || s == "false" => {
                self.i += 1;
                Ok(Ast::Lit(Lit::Bool(s == "true")))
            }
            Tok::Ident(_) | Tok::Quoted(_) => self.invocation(None),
            _ => Err(Error::syntax(pos, "expected an expression")),
        }
    }

    fn maybe_quantity(&mut self, d: Decimal) -> Result<Option<Ast>, Error> {
        match self.peek().clone() {
            Tok::Str(unit) => {
                self.i += 1;
                Ok(Some(Ast::Lit(Lit::Quantity(d, unit))))
            }
            Tok::Ident(unit) if is_calendar_unit(&unit) => {
                self.i += 1;
                Ok(Some(Ast::Lit(Lit::Quantity(d, unit))))
            }
            _ => Ok(None),
        }
    }

    fn invocation(&mut self, recv: Option<Box<Ast>>) -> Result<Ast, Error> {
        let pos = self.pos();
        let (name, quoted) = match self.next() {
            Tok::Ident(s) => (s, false),
            Tok::Quoted(s) => (s, true),
            Tok::Dollar(d) if d == "this" => return Ok(Ast::This),
            Tok::Dollar(d) if d == "index" => return Ok(Ast::Index),
            Tok::Dollar(d) if d == "total" => return Ok(Ast::Total),
            _ => return Err(Error::syntax(pos, "expected a name")),
        };
        if quoted || !self.eat("(") {
            return Ok(Ast::Member(recv, name, Default::default()));
        }
        // Type functions take a type specifier, not an expression.
        let type_op = match name.as_str() {
            "is" => Some(TypeOp::Is),
            "as" => Some(TypeOp::As),
            "ofType" => Some(TypeOp::OfType),
            _ => None,
        };
        if let Some(op) = type_op {
            let spec = self.type_spec()?;
            self.expect(")")?;
            return Ok(Ast::Type(recv, op, spec));
        }
        // `getReferenceKey(Patient)` (SQL on FHIR) takes a type specifier too; it is kept
        // as the type's name.
        if name == "getReferenceKey" && !matches!(self.peek(), Tok::Sym(")") | Tok::Str(_)) {
            let spec = self.type_spec()?;
            self.expect(")")?;
            let func = Func::resolve(&name, 1)
                .ok_or_else(|| Error::semantic(pos, "unknown function getReferenceKey/1"))?;
            return Ok(Ast::Call(recv, func, vec![Ast::Lit(Lit::Str(spec.name))]));
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expr(0)?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let func = Func::resolve(&name, args.len()).ok_or_else(|| {
            Error::semantic(pos, format!("unknown function {name}/{}", args.len()))
        })?;
        Ok(Ast::Call(recv, func, args))
    }

    fn type_spec(&mut self) -> Result<TypeSpec, Error> {
        let pos = self.pos();
        let spec = self.type_spec_name()?;
        let system = matches!(
            spec.name.as_str(),
            "Boolean"
                | "Integer"
                | "Decimal"
                | "String"
                | "Date"
                | "DateTime"
                | "Time"
                | "Quantity"
        );
        let fhir = crate::model::static_type_name(&spec.name).is_some();
        let known = match spec.namespace.as_deref() {
            None => system || fhir,
            Some("System") => true,
            Some("FHIR") => fhir,
            Some(_) => false,
        };
        if !known {
            return Err(Error::semantic(pos, format!("unknown type {}", spec.name)));
        }
        Ok(spec)
    }

    fn type_spec_name(&mut self) -> Result<TypeSpec, Error> {
        let pos = self.pos();
        let first = match self.next() {
            Tok::Ident(s) | Tok::Quoted(s) => s,
            _ => return Err(Error::syntax(pos, "expected a type name")),
        };
        if self.eat(".") {
            let pos = self.pos();
            let second = match self.next() {
                Tok::Ident(s) | Tok::Quoted(s) => s,
                _ => return Err(Error::syntax(pos, "expected a type name")),
            };
            return Ok(TypeSpec {
                namespace: Some(first),
                name: second,
            });
        }
        Ok(TypeSpec {
            namespace: None,
            name: first,
        })
    }
}

/// Appends the names of the `%variables` in `ast` to `out`.
pub(crate) fn variables<'t>(ast: &'t Ast, out: &mut Vec<&'t str>) {
    match ast {
        Ast::Var(name) => out.push(name),
        Ast::Lit(_) | Ast::Empty | Ast::This | Ast::Index | Ast::Total => {}
        Ast::Member(recv, _, _) | Ast::Type(recv, _, _) => {
            if let Some(r) = recv {
                variables(r, out);
            }
        }
        Ast::Call(recv, _, args) => {
            if let Some(r) = recv {
                variables(r, out);
            }
            for a in args {
                variables(a, out);
            }
        }
        Ast::Indexer(a, b) | Ast::Bin(_, a, b) => {
            variables(a, out);
            variables(b, out);
        }
        Ast::Neg(a) => variables(a, out),
    }
}

pub(crate) fn is_calendar_unit(u: &str) -> bool {
    matches!(
        u,
        "year"
            | "years"
            | "month"
            | "months"
            | "week"
            | "weeks"
            | "day"
            | "days"
            | "hour"
            | "hours"
            | "minute"
            | "minutes"
            | "second"
            | "seconds"
            | "millisecond"
            | "milliseconds"
    )
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    /// Found by the fuzz harness (`crates/fuzz`, `fhirpath::deep_nesting_is_an_error_not_a_crash`):
    /// 50,000 nested parentheses overflowed the stack and aborted the process. Past
    /// [`MAX_DEPTH`] levels, nested or chained, the expression is a syntax error.
    #[test]
    fn nesting_and_chains_past_the_bound_are_errors() {
        let n = MAX_DEPTH + 10;
        for src in [
            format!("{}1{}", "(".repeat(n), ")".repeat(n)),
            format!("{}1", "-".repeat(n)),
            format!("1{}", " + 1".repeat(n)),
            format!("a{}", ".b".repeat(n)),
            format!("a{}", "[0]".repeat(n)),
            format!("{}1{}", "a.where(".repeat(n), ")".repeat(n)),
        ] {
            let err = parse(&src).expect_err("too deep");
            assert!(err.to_string().contains("nests too deeply"), "{err}");
        }
        // Just inside the bound, each shape parses and evaluates (in a debug build, on a
        // test thread's stack).
        let n = MAX_DEPTH / 2 - 2;
        let patient = serde_json::json!({"resourceType": "Patient", "id": "p"});
        for src in [
            format!("{}1{}", "(".repeat(n), ")".repeat(n)),
            format!("1{}", " + 1".repeat(n)),
            format!("id{}", ".first()".repeat(n)),
            format!("{}id{}", "iif(true, ".repeat(n), ", 0)".repeat(n)),
        ] {
            let e = crate::Expr::parse(&src).expect("inside the bound");
            assert!(e.evaluate(&patient).is_ok(), "{src}");
        }
    }
}
