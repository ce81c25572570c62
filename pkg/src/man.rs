//! Man pages, each generated from what it documents: mailha(8) and one
//! page per verb from the clap definitions (clap_mangen); the OCF agents'
//! pages from their parameter tables (the ones that make their
//! meta-data); fence_mailha(8) from the metadata it prints; mailha.toml(5)
//! from docs/config.md (the config's reference, key by key).

use clap::CommandFactory;
use mailha::faces::{FACES, Face};
use mailha::ocf::AgentSpec;
use roff::{Roff, bold, italic, roman};

/// The footer's source field of every page.
fn source() -> String {
    format!("mailha {}", version())
}

/// mailha's version, as its `--version` prints it.
pub fn version() -> String {
    mailha::cli::Cli::command()
        .get_version()
        .expect("mailha has a version")
        .to_string()
}

const MANUAL: &str = "mailha";

/// The date of the newest changelog entry (YYYY-MM-DD): a page's date is
/// its release's, so regenerating on another day changes nothing.
pub fn date() -> String {
    let changelog = include_str!("../../dist/debian/changelog");
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    changelog
        .lines()
        .find_map(|l| {
            // " -- NAME <EMAIL>  Day, DD Mon YYYY HH:MM:SS +ZZZZ"
            let (_, when) = l.strip_prefix(" -- ")?.split_once(">  ")?;
            let mut w = when.split_whitespace().skip(1);
            let (d, m, y) = (w.next()?, w.next()?, w.next()?);
            let m = months.iter().position(|x| *x == m)? + 1;
            Some(format!("{y}-{m:02}-{:02}", d.parse::<u32>().ok()?))
        })
        .expect("dist/debian/changelog has a trailer line")
}

/// (file name, roff) of every page.
pub fn pages() -> Vec<(String, String)> {
    let mut v = cli_pages();
    for f in FACES {
        if let Some(spec) = mailha::agents::spec(f.face) {
            v.push(ocf_page(spec, f.link));
        } else if f.face == Face::FenceAgent {
            v.push(fence_page(&mailha::fence::metadata()));
        }
    }
    v.push(config_page(include_str!("../../docs/config.md")));
    v.sort();
    v
}

/// mailha(8) and mailha-VERB(8) for every visible verb, nested ones too.
fn cli_pages() -> Vec<(String, String)> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, String)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, out);
        }
        let man = clap_mangen::Man::new(cmd)
            .section("8")
            .date(date())
            .source(source())
            .manual(MANUAL);
        let mut buf = Vec::new();
        man.render(&mut buf).expect("rendering into memory");
        out.push((
            man.get_filename(),
            String::from_utf8(buf).expect("clap_mangen writes UTF-8"),
        ));
    }
    let mut cmd = mailha::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, &mut out);
    out
}

fn title(r: &mut Roff, name: &str, section: &str) {
    let upper = name.to_uppercase();
    let (src, date) = (source(), date());
    r.control(
        "TH",
        [upper.as_str(), section, date.as_str(), src.as_str(), MANUAL],
    );
}

fn see_also(r: &mut Roff, pages: &[&str]) {
    r.control("SH", ["SEE ALSO"]);
    r.text([roman(pages.join(", "))]);
}

/// ocf_mailha_TYPE(7), as resource-agents names its pages.
pub fn ocf_page(spec: &AgentSpec, path: Option<&str>) -> (String, String) {
    let name = format!("ocf_mailha_{}", spec.name);
    let mut r = Roff::new();
    title(&mut r, &name, "7");
    r.control("SH", ["NAME"]);
    r.text([roman(format!("{name} - {}", spec.shortdesc))]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([
        bold("OCF_RESKEY_"),
        italic("param"),
        roman("="),
        italic("value"),
        roman(" ... "),
        bold(path.unwrap_or_default()),
        roman(" "),
        italic("action"),
    ]);
    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(spec.longdesc)]);
    r.text([roman(format!(
        "Pacemaker runs it as ocf:mailha:{}; mailha generates these resources from mailha.toml (mailha-render(8)).",
        spec.name
    ))]);
    r.control("SH", ["PARAMETERS"]);
    for p in spec.params {
        r.control("TP", []);
        let mut flags = vec![format!("{:?}", p.kind).to_lowercase()];
        if p.required {
            flags.push("required".into());
        }
        if p.unique {
            flags.push("unique".into());
        }
        if let Some(d) = p.default {
            flags.push(format!("default: {d}"));
        }
        r.text([bold(p.name), roman(format!(" ({})", flags.join(", ")))]);
        r.text([roman(p.longdesc)]);
    }
    r.control("SH", ["ACTIONS"]);
    for a in spec.actions {
        r.control("TP", []);
        r.text([bold(a.name)]);
        let mut what = format!("timeout {}s", a.timeout.as_secs());
        if let Some(i) = a.interval {
            what.push_str(&format!(", interval {}s", i.as_secs()));
        }
        if let Some(d) = a.depth {
            what.push_str(&format!(", depth {d}"));
        }
        r.text([roman(what)]);
    }
    r.control("SH", ["EXIT STATUS"]);
    r.text([roman(
        "The OCF codes: 0 success, 1 generic error, 2 bad arguments, 3 unimplemented action, \
         4 insufficient privileges, 5 not installed, 6 not configured (a bad parameter; the \
         reason is printed as ocf-exit-reason), 7 not running.",
    )]);
    see_also(&mut r, &["mailha(8)", "mailha.toml(5)", "fence_mailha(8)"]);
    (format!("{name}.7"), r.render())
}

/// The parts of fence_mailha's metadata a page shows.
#[derive(Debug, Default)]
struct FenceMeta {
    name: String,
    shortdesc: String,
    longdesc: String,
    /// (name, required, getopt, type, default, shortdesc, deprecated)
    params: Vec<FenceParam>,
    actions: Vec<String>,
}

#[derive(Debug, Default, Clone)]
struct FenceParam {
    name: String,
    required: bool,
    deprecated: bool,
    getopt: Option<String>,
    kind: String,
    default: Option<String>,
    shortdesc: String,
}

fn parse_fence(xml: &str) -> FenceMeta {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut m = FenceMeta::default();
    let mut cur: Option<FenceParam> = None;
    let mut text_of: Option<&'static str> = None;
    let attr = |e: &quick_xml::events::BytesStart, k: &str| -> Option<String> {
        e.try_get_attribute(k).ok().flatten().and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
    };
    loop {
        match r.read_event().expect("fence_mailha's metadata is XML") {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "resource-agent" => {
                    m.name = attr(&e, "name").unwrap_or_default();
                    m.shortdesc = attr(&e, "shortdesc").unwrap_or_default();
                }
                "longdesc" => text_of = Some("longdesc"),
                "shortdesc" => text_of = Some("shortdesc"),
                "parameter" => {
                    cur = Some(FenceParam {
                        name: attr(&e, "name").unwrap_or_default(),
                        required: attr(&e, "required").as_deref() == Some("1"),
                        deprecated: attr(&e, "deprecated").as_deref() == Some("1"),
                        ..Default::default()
                    })
                }
                "getopt" => {
                    if let Some(p) = cur.as_mut() {
                        p.getopt = attr(&e, "mixed");
                    }
                }
                "content" => {
                    if let Some(p) = cur.as_mut() {
                        p.kind = attr(&e, "type").unwrap_or_default();
                        p.default = attr(&e, "default");
                    }
                }
                "action" => m.actions.push(attr(&e, "name").unwrap_or_default()),
                _ => {}
            },
            Event::Text(t) => {
                let t = t.xml10_content().into_owned();
                match (text_of, cur.as_mut()) {
                    (Some("shortdesc"), Some(p)) => p.shortdesc = t,
                    (Some("longdesc"), None) => m.longdesc = t,
                    _ => {}
                }
            }
            Event::End(e) => match e.name().as_ref() {
                "parameter" => m.params.extend(cur.take()),
                "longdesc" | "shortdesc" => text_of = None,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    m
}

/// fence_mailha(8) from the metadata it prints (`-o metadata`).
pub fn fence_page(xml: &str) -> (String, String) {
    let m = parse_fence(xml);
    let mut r = Roff::new();
    title(&mut r, &m.name, "8");
    r.control("SH", ["NAME"]);
    r.text([roman(format!("{} - {}", m.name, m.shortdesc))]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([
        bold(&m.name),
        roman(" [-o "),
        italic("action"),
        roman("] [-n "),
        italic("node"),
        roman("] [--socket "),
        italic("name"),
        roman("]"),
    ]);
    r.control("br", []);
    r.text([bold(&m.name), roman(" < "), italic("key=value lines")]);
    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(&m.longdesc)]);
    r.text([roman(
        "Pacemaker's fencer runs it with key=value lines on standard input; the command line \
         takes the same options for a person.",
    )]);
    r.control("SH", ["PARAMETERS"]);
    for p in &m.params {
        r.control("TP", []);
        let mut flags = vec![p.kind.clone()];
        if p.required {
            flags.push("required".into());
        }
        if p.deprecated {
            flags.push("deprecated".into());
        }
        if let Some(d) = &p.default {
            flags.push(format!("default: {d}"));
        }
        let mut head = vec![bold(&p.name), roman(format!(" ({})", flags.join(", ")))];
        if let Some(g) = &p.getopt {
            head.push(roman(format!("; command line: {g}")));
        }
        r.text(head);
        r.text([roman(&p.shortdesc)]);
    }
    r.control("SH", ["ACTIONS"]);
    r.text([roman(m.actions.join(", "))]);
    r.control("SH", ["EXIT STATUS"]);
    r.text([roman("0 done (or on), 1 failed, 2 off (status).")]);
    see_also(
        &mut r,
        &[
            "mailha(8)",
            "mailha-lease(8)",
            "ocf_mailha_lease(7)",
            "mailha.toml(5)",
        ],
    );
    (format!("{}.8", m.name), r.render())
}

/// Inline markdown as roff inlines: `code` bold, *emphasis* italic,
/// links as their text.
fn inlines<'a>(events: impl Iterator<Item = pulldown_cmark::Event<'a>>) -> Vec<roff::Inline> {
    use pulldown_cmark::{Event, Tag, TagEnd};
    let mut out = Vec::new();
    let mut em = false;
    for e in events {
        match e {
            Event::Text(t) if em => out.push(italic(t.as_ref())),
            Event::Text(t) => out.push(roman(t.as_ref())),
            Event::Code(t) => out.push(bold(t.as_ref())),
            Event::SoftBreak | Event::HardBreak => out.push(roman(" ")),
            Event::Start(Tag::Emphasis | Tag::Strong) => em = true,
            Event::End(TagEnd::Emphasis | TagEnd::Strong) => em = false,
            _ => {}
        }
    }
    out
}

/// mailha.toml(5) from docs/config.md: sections and subsections, text,
/// lists; each table row becomes an indented paragraph headed by its
/// first cell (a key), the other cells after the column's name.
pub fn config_page(markdown: &str) -> (String, String) {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut r = Roff::new();
    title(&mut r, "mailha.toml", "5");
    r.control("SH", ["NAME"]);
    r.text([roman("mailha.toml - the configuration of mailha")]);
    let events: Vec<Event> = Parser::new_ext(markdown, Options::ENABLE_TABLES).collect();
    let mut i = 0;
    // The events of the current block, up to its end tag.
    let block = |i: &mut usize, end: TagEnd| -> Vec<Event> {
        let start = *i;
        while !matches!(&events[*i], Event::End(e) if *e == end) {
            *i += 1;
        }
        *i += 1;
        events[start..*i - 1].to_vec()
    };
    let mut header: Vec<Vec<roff::Inline>> = Vec::new();
    while i < events.len() {
        let e = events[i].clone();
        i += 1;
        match e {
            Event::Start(Tag::Heading { level, .. }) => {
                let text: String = block(&mut i, TagEnd::Heading(level))
                    .into_iter()
                    .filter_map(|e| match e {
                        Event::Text(t) | Event::Code(t) => Some(t.into_string()),
                        _ => None,
                    })
                    .collect();
                match level {
                    pulldown_cmark::HeadingLevel::H1 => {
                        r.control("SH", ["DESCRIPTION"]);
                    }
                    pulldown_cmark::HeadingLevel::H2 => {
                        r.control("SH", [text.as_str()]);
                    }
                    _ => {
                        r.control("SS", [text.as_str()]);
                    }
                }
            }
            Event::Start(Tag::Paragraph) => {
                r.control("PP", []);
                let body = block(&mut i, TagEnd::Paragraph);
                r.text(inlines(body.into_iter()));
            }
            Event::Start(Tag::Item) => {
                r.control("IP", ["\\(bu", "2"]);
                let body = block(&mut i, TagEnd::Item);
                r.text(inlines(body.into_iter()));
            }
            Event::Start(Tag::TableHead) => {
                header = cells(block(&mut i, TagEnd::TableHead));
            }
            Event::Start(Tag::TableRow) => {
                let row = cells(block(&mut i, TagEnd::TableRow));
                r.control("TP", []);
                r.text(row.first().cloned().unwrap_or_default());
                let mut rest: Vec<roff::Inline> = Vec::new();
                for (n, cell) in row.iter().enumerate().skip(1) {
                    if cell.is_empty() {
                        continue;
                    }
                    if !rest.is_empty() {
                        rest.push(roman("; "));
                    }
                    if let Some(h) = header.get(n).filter(|_| row.len() > 2) {
                        rest.extend(h.iter().cloned());
                        rest.push(roman(": "));
                    }
                    rest.extend(cell.iter().cloned());
                }
                r.text(rest);
            }
            _ => {}
        }
    }
    see_also(&mut r, &["mailha(8)", "mailha-check(8)", "mailha-setup(8)"]);
    ("mailha.toml.5".into(), r.render())
}

/// The cells of one table row, each as inlines.
fn cells(events: Vec<pulldown_cmark::Event>) -> Vec<Vec<roff::Inline>> {
    use pulldown_cmark::{Event, Tag, TagEnd};
    let mut out = Vec::new();
    let mut cur: Option<Vec<Event>> = None;
    for e in events {
        match e {
            Event::Start(Tag::TableCell) => cur = Some(Vec::new()),
            Event::End(TagEnd::TableCell) => out.extend(cur.take().map(|c| inlines(c.into_iter()))),
            e => {
                if let Some(c) = cur.as_mut() {
                    c.push(e);
                }
            }
        }
    }
    out
}
