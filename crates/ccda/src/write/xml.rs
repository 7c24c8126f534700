//! A minimal XML writer: elements, attributes and text, escaped; characters XML 1.0
//! forbids are dropped.

pub(crate) struct W {
    pub out: String,
}

fn clean(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars()
        .filter(|c| !matches!(*c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}'))
}

pub(crate) fn escape(s: &str, out: &mut String) {
    for c in clean(s) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

impl W {
    pub(crate) fn new() -> Self {
        W {
            out: String::with_capacity(64 * 1024),
        }
    }

    fn start(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(tag);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape(v, &mut self.out);
            self.out.push('"');
        }
    }

    pub(crate) fn open(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.start(tag, attrs);
        self.out.push('>');
    }

    pub(crate) fn close(&mut self, tag: &str) {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    pub(crate) fn empty(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.start(tag, attrs);
        self.out.push_str("/>");
    }

    pub(crate) fn text(&mut self, s: &str) {
        escape(s, &mut self.out);
    }

    /// `<tag attrs>text</tag>`
    pub(crate) fn leaf(&mut self, tag: &str, attrs: &[(&str, &str)], text: &str) {
        self.open(tag, attrs);
        self.text(text);
        self.close(tag);
    }

    /// `<templateId root/>` and `<templateId root extension/>`, as C-CDA R2.1 asks of a
    /// versioned template so R1.1 receivers still recognise it.
    pub(crate) fn template(&mut self, root: &str, ext: Option<&str>) {
        self.empty("templateId", &[("root", root)]);
        if let Some(e) = ext {
            self.empty("templateId", &[("root", root), ("extension", e)]);
        }
    }
}
