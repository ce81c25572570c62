//! A tiny element tree with a deterministic pretty printer and a parser:
//! attributes keep the order they were added (or read) in, escaping is
//! quick-xml's. The CIB has no mixed content, so text nodes are dropped.

use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct El {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<El>,
}

#[derive(Debug, thiserror::Error)]
#[error("not well-formed XML: {0}")]
pub struct XmlError(String);

impl El {
    pub fn new(name: impl Into<String>) -> Self {
        El {
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }
    pub fn attr(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attrs.push((k.into(), v.into()));
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
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn set(&mut self, k: &str, v: impl Into<String>) {
        match self.attrs.iter_mut().find(|(n, _)| n == k) {
            Some(a) => a.1 = v.into(),
            None => self.attrs.push((k.to_string(), v.into())),
        }
    }
    /// The first child named `name`.
    pub fn find(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn find_mut(&mut self, name: &str) -> Option<&mut El> {
        self.children.iter_mut().find(|c| c.name == name)
    }
    /// Depth-first search for an element with this `id`.
    pub fn by_id(&self, id: &str) -> Option<&El> {
        if self.get("id") == Some(id) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.by_id(id))
    }

    pub fn write(&self, out: &mut String, depth: usize) {
        for _ in 0..depth {
            out.push_str("  ");
        }
        out.push('<');
        out.push_str(&self.name);
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
        out.push_str(&self.name);
        out.push_str(">\n");
    }

    pub fn to_xml(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, 0);
        s
    }

    /// Parses a document (e.g. `cibadmin --query` output) into its root.
    pub fn parse(xml: &str) -> Result<El, XmlError> {
        let mut r = quick_xml::Reader::from_str(xml);
        let mut stack: Vec<El> = Vec::new();
        let mut root = None;
        fn open(e: &BytesStart) -> Result<El, XmlError> {
            let mut el = El::new(e.name().0.to_string());
            for a in e.attributes() {
                let a = a.map_err(|e| XmlError(e.to_string()))?;
                let v = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| XmlError(e.to_string()))?;
                el.attrs.push((a.key.0.to_string(), v.into_owned()));
            }
            Ok(el)
        }
        loop {
            match r.read_event().map_err(|e| XmlError(e.to_string()))? {
                Event::Start(e) => stack.push(open(&e)?),
                Event::Empty(e) => {
                    let el = open(&e)?;
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::End(_) => {
                    let el = stack.pop().ok_or_else(|| XmlError("unbalanced".into()))?;
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !stack.is_empty() {
            return Err(XmlError("unclosed element".into()));
        }
        root.ok_or_else(|| XmlError("empty document".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_and_parsing_round_trip() {
        let e = El::new("a")
            .attr("x", "1 < 2 & \"q\"")
            .child(El::new("b").attr("id", "b1"))
            .child(El::new("c"));
        let back = El::parse(&e.to_xml()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.by_id("b1").unwrap().name, "b");
    }

    #[test]
    fn broken_documents_are_errors() {
        assert!(El::parse("<a><b></a>").is_err());
        assert!(El::parse("").is_err());
    }
}
