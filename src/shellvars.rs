//! Reads shell-assignment files as data. The original kit's `ha_conf.ini`
//! and the eYou tree's `eyou_mail` / `em_init_config` are shell scripts
//! that the old tools `source`d or `eval`ed; mailha never runs them. This
//! tokenizer understands the subset those files use (quotes, comments,
//! `NAME=value`, `NAME=( words )`, `$VAR`/`${VAR}`) and keeps command
//! substitutions (`$(...)`, backticks) as literal text so a caller can
//! refuse them.

use std::collections::BTreeMap;

/// A piece of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    /// `$NAME` or `${NAME}`.
    Var(String),
    /// `$(...)` or a backtick command, kept as written, never run.
    Command(String),
}

/// One word of a value: parts that were written without a space between.
pub type Word = Vec<Part>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub line: usize,
    pub name: String,
    /// Scalar assignments have one word; `NAME=( a b )` has one per item.
    pub words: Vec<Word>,
    pub is_array: bool,
}

impl Assignment {
    /// The scalar value, parts joined.
    pub fn value(&self) -> Word {
        self.words.iter().flatten().cloned().collect()
    }
    pub fn has_command(&self) -> bool {
        self.words
            .iter()
            .flatten()
            .any(|p| matches!(p, Part::Command(_)))
    }
}

/// A line that is not an assignment, kept so callers can report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Other {
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub assignments: Vec<Assignment>,
    pub others: Vec<Other>,
    /// Lines starting with `#######`: the original's disabled examples.
    pub disabled: Vec<Other>,
}

impl Parsed {
    /// The last assignment of `name` (the one a shell would see at the end).
    pub fn last(&self, name: &str) -> Option<&Assignment> {
        self.assignments.iter().rev().find(|a| a.name == name)
    }
}

/// Renders a word back as text, with commands and variables shown as
/// written (for messages).
pub fn display(word: &[Part]) -> String {
    let mut s = String::new();
    for p in word {
        match p {
            Part::Lit(l) => s.push_str(l),
            Part::Var(v) => {
                s.push_str("${");
                s.push_str(v);
                s.push('}');
            }
            Part::Command(c) => s.push_str(c),
        }
    }
    s
}

/// Expands variables from `vars`; a command substitution or an unknown
/// variable is an error naming it.
pub fn expand(word: &[Part], vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut s = String::new();
    for p in word {
        match p {
            Part::Lit(l) => s.push_str(l),
            Part::Var(v) => match vars.get(v) {
                Some(val) => s.push_str(val),
                None => return Err(format!("variable ${v} is not defined in this file")),
            },
            Part::Command(c) => {
                return Err(format!("command substitution {c} is not evaluated"));
            }
        }
    }
    Ok(s)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    _text: &'a str,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if let Some(ch) = c {
            self.pos += 1;
            if ch == '\n' {
                self.line += 1;
            }
        }
        c
    }

    /// `$(...)` with nesting and quotes inside, returned as written.
    fn command_subst(&mut self) -> String {
        let mut out = String::from("$(");
        self.pos += 2;
        let mut depth = 1;
        while let Some(c) = self.bump() {
            out.push(c);
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                '\\' => {
                    if let Some(n) = self.bump() {
                        out.push(n);
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn backtick(&mut self) -> String {
        let mut out = String::from("`");
        self.pos += 1;
        while let Some(c) = self.bump() {
            out.push(c);
            if c == '`' {
                break;
            }
        }
        out
    }

    /// `$NAME`, `${NAME}`, `$(...)`; a lone `$` is literal.
    fn dollar(&mut self, parts: &mut Vec<Part>, lit: &mut String) {
        match self.peek_at(1) {
            Some('(') => {
                flush(parts, lit);
                let c = self.command_subst();
                parts.push(Part::Command(c));
            }
            Some('{') => {
                let start = self.pos;
                self.pos += 2;
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if c == '}' || c == '\n' {
                        break;
                    }
                    name.push(c);
                    self.pos += 1;
                }
                if self.peek() == Some('}') && !name.is_empty() && name.chars().all(is_name_char) {
                    self.pos += 1;
                    flush(parts, lit);
                    parts.push(Part::Var(name));
                } else {
                    // ${x:-y} and friends are expansions with logic: keep
                    // them as a command so callers refuse them.
                    if self.peek() == Some('}') {
                        self.pos += 1;
                    }
                    flush(parts, lit);
                    let text: String = self.chars[start..self.pos].iter().collect();
                    parts.push(Part::Command(text));
                }
            }
            Some(c) if is_name_start(c) => {
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if !is_name_char(c) {
                        break;
                    }
                    name.push(c);
                    self.pos += 1;
                }
                flush(parts, lit);
                parts.push(Part::Var(name));
            }
            _ => {
                lit.push('$');
                self.pos += 1;
            }
        }
    }

    /// One word, stopping at unquoted blank, newline, `;`, `#` or `)`.
    fn word(&mut self, stop_at_paren: bool) -> Option<Word> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut any = false;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' => break,
                ')' if stop_at_paren => break,
                '#' if !any => break,
                '\\' => {
                    self.pos += 1;
                    match self.bump() {
                        Some('\n') => {}
                        Some(n) => lit.push(n),
                        None => {}
                    }
                }
                '\'' => {
                    self.pos += 1;
                    while let Some(c) = self.bump() {
                        if c == '\'' {
                            break;
                        }
                        lit.push(c);
                    }
                }
                '"' => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        match c {
                            '"' => {
                                self.pos += 1;
                                break;
                            }
                            '\\' => {
                                self.pos += 1;
                                match self.bump() {
                                    Some(n @ ('"' | '\\' | '$' | '`')) => lit.push(n),
                                    Some('\n') => {}
                                    Some(n) => {
                                        lit.push('\\');
                                        lit.push(n);
                                    }
                                    None => {}
                                }
                            }
                            '$' => self.dollar(&mut parts, &mut lit),
                            '`' => {
                                flush(&mut parts, &mut lit);
                                let b = self.backtick();
                                parts.push(Part::Command(b));
                            }
                            _ => {
                                lit.push(c);
                                self.bump();
                            }
                        }
                    }
                }
                '$' => self.dollar(&mut parts, &mut lit),
                '`' => {
                    flush(&mut parts, &mut lit);
                    let b = self.backtick();
                    parts.push(Part::Command(b));
                }
                _ => {
                    lit.push(c);
                    self.pos += 1;
                }
            }
            any = true;
        }
        flush(&mut parts, &mut lit);
        if any { Some(parts) } else { None }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn skip_to_eol(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            s.push(c);
            self.pos += 1;
        }
        s
    }
}

fn flush(parts: &mut Vec<Part>, lit: &mut String) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

/// Parses `text`. Never fails: what is not an assignment lands in `others`.
pub fn parse(text: &str) -> Parsed {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        _text: text,
    };
    let mut out = Parsed::default();
    loop {
        lx.skip_blanks();
        let Some(c) = lx.peek() else { break };
        let line = lx.line;
        if c == '\n' || c == ';' {
            lx.bump();
            continue;
        }
        if c == '#' {
            let rest = lx.skip_to_eol();
            if rest.starts_with("#######") {
                out.disabled.push(Other { line, text: rest });
            }
            continue;
        }
        // `export NAME=...` / `readonly NAME=...` / `declare NAME=...`
        let save = lx.pos;
        for kw in ["export ", "readonly ", "declare ", "local "] {
            let k: Vec<char> = kw.chars().collect();
            if lx.chars[lx.pos..].starts_with(&k) {
                lx.pos += k.len();
                lx.skip_blanks();
                break;
            }
        }
        let name_start = lx.pos;
        if lx.peek().is_some_and(is_name_start) {
            while lx.peek().is_some_and(is_name_char) {
                lx.pos += 1;
            }
        }
        let name: String = lx.chars[name_start..lx.pos].iter().collect();
        if name.is_empty() || lx.peek() != Some('=') {
            lx.pos = save;
            let text = lx.skip_to_eol();
            out.others.push(Other {
                line,
                text: text.trim().to_string(),
            });
            continue;
        }
        lx.pos += 1; // '='
        if lx.peek() == Some('(') {
            lx.pos += 1;
            let mut words = Vec::new();
            loop {
                while matches!(lx.peek(), Some(' ' | '\t' | '\n')) {
                    lx.bump();
                }
                match lx.peek() {
                    None => break,
                    Some(')') => {
                        lx.pos += 1;
                        break;
                    }
                    Some('#') => {
                        lx.skip_to_eol();
                    }
                    _ => match lx.word(true) {
                        Some(w) => words.push(w),
                        None => {
                            lx.bump();
                        }
                    },
                }
            }
            out.assignments.push(Assignment {
                line,
                name,
                words,
                is_array: true,
            });
        } else {
            let w = lx.word(false).unwrap_or_default();
            out.assignments.push(Assignment {
                line,
                name,
                words: vec![w],
                is_array: false,
            });
        }
        // Anything after the value on the same line (another command) is
        // not ours to understand; a trailing comment is fine.
        lx.skip_blanks();
        if let Some(c) = lx.peek()
            && c != '\n'
            && c != '#'
            && c != ';'
        {
            let rest = lx.skip_to_eol();
            out.others.push(Other {
                line,
                text: rest.trim().to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Lit(s.into())
    }

    #[test]
    fn double_quoted_values_keep_spaces_and_expand_nothing_by_themselves() {
        let p = parse("EMAIL_SER_N=\"10.10.10.10 10.10.10.20\"\n");
        let a = p.last("EMAIL_SER_N").unwrap();
        assert_eq!(a.value(), vec![lit("10.10.10.10 10.10.10.20")]);
        assert_eq!(a.line, 1);
    }

    #[test]
    fn command_substitutions_are_kept_as_text_never_run() {
        let p = parse("SUBJECT=\"HA $(date +%F) on $(hostname)\"\n");
        let a = p.last("SUBJECT").unwrap();
        assert!(a.has_command());
        assert_eq!(display(&a.value()), "HA $(date +%F) on $(hostname)");
    }

    #[test]
    fn backticks_and_nested_substitutions_stay_literal() {
        let p = parse("A=`id -u`\nB=\"$(echo $(whoami))\"\n");
        assert_eq!(
            p.last("A").unwrap().value(),
            vec![Part::Command("`id -u`".into())]
        );
        assert_eq!(display(&p.last("B").unwrap().value()), "$(echo $(whoami))");
    }

    #[test]
    fn variables_expand_from_earlier_assignments_only() {
        let p = parse("ROOT=/usr/local/eyou/mail\nPIDF_SMTP=\"${ROOT}/run/smtp.pid\"\n");
        let mut vars = BTreeMap::new();
        vars.insert("ROOT".to_string(), "/usr/local/eyou/mail".to_string());
        let v = expand(&p.last("PIDF_SMTP").unwrap().value(), &vars).unwrap();
        assert_eq!(v, "/usr/local/eyou/mail/run/smtp.pid");
        assert!(expand(&[Part::Var("NOPE".into())], &vars).is_err());
    }

    #[test]
    fn arrays_span_lines_and_skip_comments() {
        let p = parse("ARRAY_START=(\n  mysql  # db\n  mproxy\n  \"smtp\"\n)\nX=1\n");
        let a = p.last("ARRAY_START").unwrap();
        assert!(a.is_array);
        assert_eq!(a.words.len(), 3);
        assert_eq!(a.words[2], vec![lit("smtp")]);
        assert_eq!(p.last("X").unwrap().line, 6);
    }

    #[test]
    fn disabled_examples_and_other_lines_are_reported_not_parsed() {
        let p = parse("####### DISK_MOUNT_1=\"/dev/sdb1,/data,ext4\"\nif true; then\nfi\n");
        assert_eq!(p.disabled.len(), 1);
        assert!(p.assignments.is_empty());
        assert_eq!(p.others.len(), 2);
    }

    #[test]
    fn a_command_after_an_assignment_is_not_swallowed() {
        let p = parse("A=1 rm -rf /\n");
        assert_eq!(p.last("A").unwrap().value(), vec![lit("1")]);
        assert_eq!(p.others[0].text, "rm -rf /");
    }

    #[test]
    fn single_quotes_are_fully_literal() {
        let p = parse("A='$(x) $Y'\n");
        assert_eq!(p.last("A").unwrap().value(), vec![lit("$(x) $Y")]);
    }
}
