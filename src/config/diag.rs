//! Errors that point at the file: every problem found in a config carries
//! the dotted field it is about (`services.smtp.depends_on[1]`) and is
//! located as `file:line:column` by looking that field up in the parsed
//! document, so validation code only has to name the field.

use std::fmt;
use std::path::{Path, PathBuf};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A dotted field path such as `storage.mounts[0].mount_point`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        FieldPath(v)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        FieldPath(v)
    }
    pub fn parent(&self) -> Self {
        let mut v = self.0.clone();
        v.pop();
        FieldPath(v)
    }
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
    /// Parses the dotted form back (used for serde_path_to_error paths).
    pub fn parse(s: &str) -> Self {
        let mut out = Vec::new();
        if s == "." || s.is_empty() {
            return FieldPath(out);
        }
        for part in s.split('.') {
            let (name, rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                out.push(Seg::Key(name.to_string()));
            }
            for idx in rest.split('[').filter(|x| !x.is_empty()) {
                if let Ok(i) = idx.trim_end_matches(']').parse() {
                    out.push(Seg::Index(i));
                }
            }
        }
        FieldPath(out)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A problem before it is located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub path: FieldPath,
    pub message: String,
    pub hint: Option<String>,
    /// A byte span when the parser knew better than the path lookup.
    pub span: Option<std::ops::Range<usize>>,
    /// The problem is the key itself (unknown key), not its value.
    pub at_key: bool,
}

impl Problem {
    pub fn error(path: FieldPath, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            path,
            message: message.into(),
            hint: None,
            span: None,
            at_key: false,
        }
    }
    pub fn warning(path: FieldPath, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(path, message)
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// A located problem: what `mailha check` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.field,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// The config could not be loaded: one or more errors, each located.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render_all(ds: &[Diagnostic]) -> String {
    ds.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Finds where a field path sits in the source text.
pub struct SourceMap<'a> {
    text: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
}

impl<'a> SourceMap<'a> {
    pub fn new(text: &'a str) -> Self {
        SourceMap {
            text,
            doc: toml_edit::Document::parse(text).ok(),
        }
    }

    /// The byte span of the deepest part of `path` that exists in the file.
    pub fn span_of(&self, path: &FieldPath, at_key: bool) -> Option<std::ops::Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut item: &toml_edit::Item = doc.as_item();
        let mut best = None;
        for seg in &path.0 {
            let next = match seg {
                Seg::Key(k) => {
                    let key_span = item
                        .as_table_like()
                        .and_then(|t| t.get_key_value(k))
                        .and_then(|(key, _)| key.span());
                    if key_span.is_some() {
                        best = key_span;
                    }
                    item.get(k.as_str())
                }
                Seg::Index(i) => item.get(*i),
            };
            match next {
                Some(n) => {
                    if at_key
                        && matches!(seg, Seg::Key(_))
                        && std::ptr::eq(seg, path.0.last().unwrap())
                    {
                        break;
                    }
                    if let Some(s) = item_span(n) {
                        best = Some(s);
                    }
                    item = n;
                }
                None => break,
            }
        }
        best
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map(|i| before[i + 1..].chars().count() + 1)
            .unwrap_or_else(|| before.chars().count() + 1);
        (line, col)
    }

    pub fn locate(&self, file: &Path, p: Problem) -> Diagnostic {
        let span = p.span.clone().or_else(|| self.span_of(&p.path, p.at_key));
        let (line, column) = span.map(|s| self.line_col(s.start)).unwrap_or((1, 1));
        Diagnostic {
            severity: p.severity,
            file: file.to_path_buf(),
            line,
            column,
            field: p.path.to_string(),
            message: p.message,
            hint: p.hint,
        }
    }
}

fn item_span(item: &toml_edit::Item) -> Option<std::ops::Range<usize>> {
    match item {
        toml_edit::Item::Value(v) => v.span(),
        toml_edit::Item::Table(t) => t.span(),
        toml_edit::Item::ArrayOfTables(a) => a.span(),
        toml_edit::Item::None => None,
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a
/// plausible typo; of equally close ones the first (candidates come in
/// the order an operator most likely meant them: "ext5" is ext4, not ext2).
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .rev()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_print_and_parse_in_the_dotted_form() {
        let p = FieldPath::root()
            .key("services")
            .key("smtp")
            .key("depends_on")
            .index(1);
        assert_eq!(p.to_string(), "services.smtp.depends_on[1]");
        assert_eq!(FieldPath::parse("services.smtp.depends_on[1]"), p);
    }

    #[test]
    fn a_field_is_located_at_its_line_and_column() {
        let text = "[cluster]\nname = \"m\"\n\n[services.smtp]\ndepends_on = [\"a\", \"b\"]\n";
        let map = SourceMap::new(text);
        let p = FieldPath::parse("services.smtp.depends_on[1]");
        let span = map.span_of(&p, false).unwrap();
        assert_eq!(map.line_col(span.start), (5, 20));
    }

    #[test]
    fn typos_get_a_suggestion_and_nonsense_does_not() {
        assert_eq!(
            did_you_mean("profle", &["profile", "mode"]),
            Some("profile")
        );
        assert_eq!(did_you_mean("zzz", &["profile", "mode"]), None);
    }
}
