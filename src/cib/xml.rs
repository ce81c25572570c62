//! A tiny element tree with a deterministic pretty printer: attributes keep
//! the order they were added in, and escaping is quick-xml's.

use quick_xml::escape::escape;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct El {
    pub name: &'static str,
    pub attrs: Vec<(&'static str, String)>,
    pub children: Vec<El>,
}

impl El {
    pub fn new(name: &'static str) -> Self {
        El {
            name,
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }
    pub fn attr(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.attrs.push((k, v.into()));
        self
    }
    pub fn child(mut self, c: El) -> Self {
        self.children.push(c);
        self
    }
    pub fn children(mut self, cs: impl IntoIterator<Item = El>) -> Self {
        self.children.extend(cs);
        self
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn write(&self, out: &mut String, depth: usize) {
        for _ in 0..depth {
            out.push_str("  ");
        }
        out.push('<');
        out.push_str(self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(&escape(v.as_str()));
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push_str(">\n");
        for c in &self.children {
            c.write(out, depth + 1);
        }
        for _ in 0..depth {
            out.push_str("  ");
        }
        out.push_str("</");
        out.push_str(self.name);
        out.push_str(">\n");
    }

    pub fn to_xml(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, 0);
        s
    }
}
