//! Where the walker is, as a stack of path segments turned into a FHIRPath expression
//! only when an issue is reported (the happy path builds no strings).

use std::fmt::Write;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    /// A property (`name`); the first segment is the resource type.
    Key(&'a str),
    /// An array index (`[2]`).
    Index(usize),
    /// A choice element with its concrete type (`value.ofType(Quantity)`).
    Choice(&'a str, &'a str),
}

#[derive(Debug, Default)]
pub(crate) struct Location<'a> {
    segs: Vec<Seg<'a>>,
}

impl<'a> Location<'a> {
    pub fn push(&mut self, s: Seg<'a>) {
        self.segs.push(s);
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    pub fn pop(&mut self) {
        self.segs.pop();
    }

    /// The FHIRPath expression of the current position.
    pub fn render(&self) -> String {
        self.render_with(None)
    }

    /// The expression of child `name` of the current position.
    pub fn render_child(&self, name: &str) -> String {
        self.render_with(Some(name))
    }

    fn render_with(&self, extra: Option<&str>) -> String {
        let mut out = String::with_capacity(48);
        for s in &self.segs {
            match s {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
                Seg::Choice(n, t) => {
                    let _ = write!(out, ".{n}.ofType({t})");
                }
            }
        }
        if let Some(n) = extra {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(n);
        }
        out
    }
}
