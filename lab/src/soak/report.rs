//! The soak's report: one self-contained HTML page (`report.html`, next to
//! `verdict.json`) that shows at a glance what the verdict says and when
//! things happened: the verdict and its counts on top, then a timeline
//! (faults, where the data was mounted, fences, the clients' outcomes
//! over time), then the worst outages against their bounds.
//!
//! Pure: the page is a function of the schedule, the history and the
//! verdict (and the runner's notes, when there are any). No script, no
//! external resource: inline CSS and inline SVG, so the file can be
//! mailed or archived with the soak's folder and opened anywhere.
//!
//! Everything that comes from the soak's files (ids, node and service
//! names, notes) is escaped: a history is data, and a message id the
//! server chose can hold anything.

use super::checker::{Outage, Verdict};
use super::history::{Event, ImapOutcome, Phase, Record, SmtpOutcome};
use super::schedule::{Fault, Schedule};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How many ids a list shows before "and N more".
const LIST_CAP: usize = 20;
/// How many outages within their bound the table shows besides every one
/// over its bound.
const WORST_WITHIN: usize = 15;
/// At most this many bins per outcome lane, whatever the soak's length.
const MAX_BINS: u64 = 600;

// The timeline's geometry (SVG user units; the page scales it to fit).
const LEFT: f64 = 130.0;
const PLOT_W: f64 = 1040.0;
const RIGHT: f64 = 20.0;
const LANE_H: f64 = 22.0;
const LANE_GAP: f64 = 6.0;
const AXIS_H: f64 = 28.0;

/// Text for HTML and SVG: the product's own escaping (the alert mail's),
/// so a hostile name shows as what it is and never as markup: the five
/// characters markup gives a meaning to become entities, control
/// characters (which XML refuses) U+FFFD.
pub use mailha::alert::compose::html_escape as escape;

/// The page for a soak, without notes.
pub fn render(schedule: &Schedule, history: &[Record], verdict: &Verdict) -> String {
    render_with_notes(schedule, history, verdict, &[])
}

/// The page, with the runner's notes (notes.txt, one per line): each
/// step's note also goes into its fault's tooltip (it names what a role
/// such as `active` resolved to).
pub fn render_with_notes(
    schedule: &Schedule,
    history: &[Record],
    verdict: &Verdict,
    notes: &[String],
) -> String {
    let mut p = String::new();
    let title = format!(
        "soak seed {}: {}",
        schedule.options.seed,
        if verdict.ok { "OK" } else { "NOT OK" }
    );
    p.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(p, "<title>{}</title>", escape(&title));
    p.push_str(STYLE);
    p.push_str("</head>\n<body>\n");
    header(&mut p, schedule, verdict);
    lists(&mut p, verdict);
    p.push_str("<h2>Timeline</h2>\n");
    p.push_str(&timeline(schedule, history, verdict, notes));
    p.push_str(LEGEND);
    outage_table(&mut p, schedule, verdict);
    if !notes.is_empty() {
        p.push_str("<h2>Runner's notes</h2>\n<pre class=\"notes\">");
        for n in notes {
            p.push_str(&escape(n));
            p.push('\n');
        }
        p.push_str("</pre>\n");
    }
    p.push_str("</body>\n</html>\n");
    p
}

const STYLE: &str = "<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1250px}
h1.verdict{font-size:3.5em;margin:0 0 .2em;padding:.15em .4em;display:inline-block;border-radius:6px}
h1.ok{background:#e3f4e4;color:#1b5e20}
h1.bad{background:#fde4e4;color:#b71c1c}
.meta{font-size:1.05em;margin:.3em 0 1em}
table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td,td.bad{background:#fde4e4;color:#b71c1c;font-weight:bold}
ul.ids{font-family:monospace;margin:.2em 0 1em}
svg{width:100%;height:auto;border:1px solid #ddd;background:#fff}
svg text{font:11px sans-serif;fill:#222}
svg text.in{fill:#fff}
.legend span{display:inline-block;margin-right:1.2em}
.legend i{display:inline-block;width:1em;height:.8em;margin-right:.3em;vertical-align:middle}
pre.notes{background:#f6f6f6;padding:.6em;white-space:pre-wrap}
</style>
";

const LEGEND: &str = "<p class=\"legend\">\
<span><i style=\"background:#5c6bc0\"></i>fault window</span>\
<span><i style=\"background:#c62828\"></i>fault over its bound</span>\
<span><i style=\"background:#1e88e5\"></i>data mounted</span>\
<span><i style=\"background:#2e7d32\"></i>lease held</span>\
<span><i style=\"background:#d50000\"></i>mounted on both nodes</span>\
<span><i style=\"background:#6a1b9a\"></i>fence</span>\
<span><i style=\"background:#d50000\"></i>spurious fence</span>\
<span><i style=\"background:#43a047\"></i>all succeeded</span>\
<span><i style=\"background:#f9a825\"></i>unknown outcome</span>\
<span><i style=\"background:#e53935\"></i>refused or failed</span>\
<span><i style=\"background:#f4f4f4;border:1px solid #ccc\"></i>no attempt</span>\
</p>\n";

fn header(p: &mut String, s: &Schedule, v: &Verdict) {
    let (class, word) = if v.ok {
        ("ok", "OK")
    } else {
        ("bad", "NOT OK")
    };
    let _ = writeln!(p, "<h1 class=\"verdict {class}\">{word}</h1>");
    let kinds: Vec<&str> = s.options.faults.iter().map(|k| k.name()).collect();
    let _ = writeln!(
        p,
        "<p class=\"meta\">Seed <b>{}</b>, {} planned, {} steps ({} overlapping), faults: {}.</p>",
        s.options.seed,
        duration(s.options.duration_ms),
        s.steps.len(),
        s.overlapping(),
        escape(&kinds.join(", "))
    );
    if !v.mail.final_read {
        p.push_str(
            "<p class=\"meta\"><b>No successful final read</b>: nothing can be said of \
             lost or duplicate messages.</p>\n",
        );
    }
    let unknown = format!("{} / {}", v.mail.unknown, v.mail.recovered.len());
    // A failure count is shown red when it is not zero.
    let failures = |name, n: usize| (name, n.to_string(), n > 0);
    let rows: [(&str, String, bool); 12] = [
        ("acknowledged", v.mail.acknowledged.to_string(), false),
        failures("lost", v.mail.lost.len()),
        failures("duplicates", v.mail.duplicates.len()),
        failures("vanished", v.mail.vanished.len()),
        failures("unexpected", v.mail.unexpected.len()),
        ("unknown / recovered", unknown, false),
        ("refused", v.mail.refused.to_string(), false),
        failures("double mounts", v.double_mounts.len()),
        failures("outages over bound", v.over_bound.len()),
        failures("spurious fences", v.spurious_fences.len()),
        ("torn lines", v.torn.to_string(), false),
        (
            "final read",
            if v.mail.final_read { "yes" } else { "no" }.into(),
            !v.mail.final_read,
        ),
    ];
    p.push_str("<table class=\"counts\">\n");
    for (name, value, bad) in rows {
        let c = if bad { " class=\"bad\"" } else { "" };
        let _ = writeln!(p, "<tr{c}><th>{name}</th><td class=\"n\">{value}</td></tr>");
    }
    p.push_str("</table>\n");
}

fn id_list(p: &mut String, what: &str, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let _ = writeln!(p, "<h3>{what} ({})</h3>\n<ul class=\"ids\">", ids.len());
    for id in ids.iter().take(LIST_CAP) {
        let _ = writeln!(p, "<li>{}</li>", escape(id));
    }
    if ids.len() > LIST_CAP {
        let _ = writeln!(p, "<li>and {} more</li>", ids.len() - LIST_CAP);
    }
    p.push_str("</ul>\n");
}

fn lists(p: &mut String, v: &Verdict) {
    id_list(p, "Lost", &v.mail.lost);
    id_list(p, "Duplicates", &v.mail.duplicates);
    id_list(p, "Vanished", &v.mail.vanished);
    id_list(p, "Unexpected", &v.mail.unexpected);
    let doubles: Vec<String> = v
        .double_mounts
        .iter()
        .map(|d| format!("{} to {}", secs(d.from_ms), secs(d.to_ms)))
        .collect();
    id_list(p, "Mounted on both nodes", &doubles);
    let fences: Vec<String> = v
        .spurious_fences
        .iter()
        .map(|f| format!("{} at {}", f.target, secs(f.t_ms)))
        .collect();
    id_list(p, "Spurious fences", &fences);
}

/// `57.0 s`
fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// `1 h 05 min`, `3 min 00 s`, `42 s`
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// What a fault aims at, as the schedule names it.
fn target(f: &Fault) -> String {
    match (f.node(), f.service()) {
        (Some(n), _) => n.to_string(),
        (None, Some(s)) => s.to_string(),
        (None, None) => String::new(),
    }
}

fn label(s: &Schedule, step: usize) -> String {
    match s.steps.get(step) {
        Some(st) => {
            let t = target(&st.fault);
            if t.is_empty() {
                st.fault.kind().name().to_string()
            } else {
                format!("{} {t}", st.fault.kind().name())
            }
        }
        None => format!("step {step}"),
    }
}

fn outage_text(o: Option<u64>) -> String {
    o.map_or_else(|| "never recovered".into(), secs)
}

/// Worst first: an outage that never ended, then by the longer of SMTP
/// and IMAP.
fn worst_key(o: &Outage) -> (bool, u64) {
    let worst = o.smtp_ms.max(o.imap_ms);
    let never = o.smtp_ms.is_none() || o.imap_ms.is_none();
    (never, worst.unwrap_or(u64::MAX))
}

fn outage_table(p: &mut String, s: &Schedule, v: &Verdict) {
    p.push_str("<h2>Outages</h2>\n");
    if v.outages.is_empty() {
        p.push_str("<p>No fault started.</p>\n");
        return;
    }
    let mut sorted: Vec<&Outage> = v.outages.iter().collect();
    sorted.sort_by(|a, b| worst_key(b).cmp(&worst_key(a)).then(a.step.cmp(&b.step)));
    let mut within_shown = 0;
    let shown: Vec<&Outage> = sorted
        .into_iter()
        .filter(|o| {
            if o.within {
                within_shown += 1;
                within_shown <= WORST_WITHIN
            } else {
                true
            }
        })
        .collect();
    let over = v.outages.iter().filter(|o| !o.within).count();
    let _ = writeln!(
        p,
        "<p>{} of {} faults over their bound; worst first{}.</p>",
        over,
        v.outages.len(),
        if v.outages.len() > shown.len() {
            format!(
                " ({} more within their bound not shown)",
                v.outages.len() - shown.len()
            )
        } else {
            String::new()
        }
    );
    p.push_str(
        "<table class=\"outages\">\n<tr><th>step</th><th>kind</th><th>target</th>\
         <th>start</th><th>end</th><th>SMTP outage</th><th>IMAP outage</th>\
         <th>bound (SMTP / IMAP)</th><th>within</th></tr>\n",
    );
    for o in shown {
        let t = s.steps.get(o.step).map(|st| target(&st.fault));
        let row = if o.within { "" } else { " class=\"bad\"" };
        let _ = writeln!(
            p,
            "<tr{row}><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{} / {}</td><td>{}</td></tr>",
            o.step,
            escape(o.kind.name()),
            escape(&t.unwrap_or_default()),
            secs(o.start_ms),
            o.end_ms.map_or_else(|| "never healed".into(), secs),
            outage_text(o.smtp_ms),
            outage_text(o.imap_ms),
            secs(o.bound.smtp_ms),
            secs(o.bound.imap_ms),
            if o.within { "yes" } else { "NO" }
        );
    }
    p.push_str("</table>\n");
}

/// A fault as the history recorded it.
struct Window {
    step: usize,
    start_ms: u64,
    end_ms: Option<u64>,
}

fn windows(history: &[Record]) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for r in history {
        if let Event::Fault { step, phase } = &r.event {
            match phase {
                Phase::Start => out.push(Window {
                    step: *step,
                    start_ms: r.t_ms,
                    end_ms: None,
                }),
                Phase::End => {
                    if let Some(w) = out
                        .iter_mut()
                        .rev()
                        .find(|w| w.step == *step && w.end_ms.is_none())
                    {
                        w.end_ms = Some(r.t_ms);
                    }
                }
            }
        }
    }
    out
}

/// Intervals `[from, to)` packed into as few lanes as the overlaps need
/// (greedy, by start): returns each interval's lane and the lane count.
fn pack(intervals: &[(u64, u64)]) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..intervals.len()).collect();
    order.sort_by_key(|i| intervals[*i]);
    let mut lane_end: Vec<u64> = Vec::new();
    let mut lane = vec![0; intervals.len()];
    for i in order {
        let (from, to) = intervals[i];
        let l = match lane_end.iter().position(|e| *e <= from) {
            Some(l) => l,
            None => {
                lane_end.push(0);
                lane_end.len() - 1
            }
        };
        lane_end[l] = to.max(from + 1);
        lane[i] = l;
    }
    (lane, lane_end.len().max(1))
}

/// Each node's mounted stretches `[from, to)`, runs of samples merged: a
/// stretch begins at a sample that says mounted and ends at the node's
/// next sample that does not (or 100 ms after its last sample).
fn mount_spans(history: &[Record]) -> BTreeMap<&str, Vec<(u64, u64)>> {
    let mut samples: BTreeMap<&str, Vec<(u64, bool)>> = BTreeMap::new();
    for r in history {
        if let Event::Mount { node, mounted } = &r.event {
            samples
                .entry(node.as_str())
                .or_default()
                .push((r.t_ms, *mounted));
        }
    }
    samples
        .into_iter()
        .map(|(node, mut s)| {
            s.sort_by_key(|(t, _)| *t);
            let mut spans = Vec::new();
            let mut open: Option<u64> = None;
            for (t, m) in &s {
                match (open, m) {
                    (None, true) => open = Some(*t),
                    (Some(from), false) => {
                        spans.push((from, *t));
                        open = None;
                    }
                    _ => {}
                }
            }
            if let (Some(from), Some((last, _))) = (open, s.last()) {
                spans.push((from, last + 100));
            }
            (node, spans)
        })
        .collect()
}

/// Each node's stretches holding the lease `[from, to)`, from the
/// holder records (written when the holders change; a stretch still open
/// ends at the history's last record).
fn lease_spans(history: &[Record]) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    let mut holders: Vec<&Record> = history
        .iter()
        .filter(|r| matches!(r.event, Event::Holder { .. }))
        .collect();
    holders.sort_by_key(|r| r.t_ms);
    for r in holders {
        let Event::Holder { lease, .. } = &r.event else {
            continue;
        };
        let now: Vec<&str> = lease
            .as_deref()
            .map_or(Vec::new(), |l| l.split(',').collect());
        let ended: Vec<String> = open
            .keys()
            .filter(|n| !now.contains(&n.as_str()))
            .cloned()
            .collect();
        for n in ended {
            let from = open.remove(&n).unwrap_or(r.t_ms);
            out.entry(n).or_default().push((from, r.t_ms));
        }
        for n in now {
            open.entry(n.to_string()).or_insert(r.t_ms);
        }
    }
    let end = history.iter().map(|r| r.t_ms).max().unwrap_or(0);
    for (n, from) in open {
        out.entry(n).or_default().push((from, end.max(from + 1)));
    }
    out
}

/// Per-bin counts of one channel: (successes, failures, unknown).
type Bins = Vec<(u32, u32, u32)>;

fn bins(history: &[Record], bin_ms: u64, n: usize, smtp: bool) -> Bins {
    let mut out = vec![(0, 0, 0); n];
    for r in history {
        let class = match (&r.event, smtp) {
            (Event::Smtp { outcome, .. }, true) => match outcome {
                SmtpOutcome::Ok => 0,
                SmtpOutcome::Refused => 1,
                SmtpOutcome::Unknown => 2,
            },
            (Event::Imap { outcome, .. }, false) => match outcome {
                ImapOutcome::Ok => 0,
                ImapOutcome::Fail => 1,
            },
            _ => continue,
        };
        let b = ((r.t_ms / bin_ms) as usize).min(n - 1);
        match class {
            0 => out[b].0 += 1,
            1 => out[b].1 += 1,
            _ => out[b].2 += 1,
        }
    }
    out
}

/// A bin's colour class: any failure shows, then any unknown, then
/// success; an empty bin is not drawn.
fn bin_class(b: (u32, u32, u32)) -> Option<&'static str> {
    if b.1 > 0 {
        Some("#e53935")
    } else if b.2 > 0 {
        Some("#f9a825")
    } else if b.0 > 0 {
        Some("#43a047")
    } else {
        None
    }
}

/// A tick step (seconds) that gives at most about a dozen ticks.
fn tick_s(total_s: f64) -> u64 {
    const STEPS: [u64; 14] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
    ];
    STEPS
        .into_iter()
        .find(|s| total_s / *s as f64 <= 12.0)
        .unwrap_or(14_400)
}

struct Svg {
    out: String,
    total_ms: u64,
}

impl Svg {
    fn x(&self, t_ms: u64) -> f64 {
        LEFT + PLOT_W * (t_ms.min(self.total_ms) as f64) / (self.total_ms as f64)
    }

    /// A bar over `(from, to)` (ms), `(y, height)` on its lane, at least
    /// 1.5 units wide so an instant still shows, with its tooltip.
    fn bar(
        &mut self,
        (from, to): (u64, u64),
        (y, h): (f64, f64),
        fill: &str,
        extra: &str,
        title: &str,
    ) {
        let x0 = self.x(from);
        let w = (self.x(to) - x0).max(1.5);
        let _ = writeln!(
            self.out,
            "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"{extra}><title>{}</title></rect>",
            escape(title)
        );
    }

    fn lane_label(&mut self, y: f64, text: &str) {
        let _ = writeln!(
            self.out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 8.0,
            y + LANE_H / 2.0 + 4.0,
            escape(text)
        );
    }

    fn lane_back(&mut self, y: f64) {
        let _ = writeln!(
            self.out,
            "<rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{PLOT_W}\" height=\"{LANE_H}\" fill=\"#f4f4f4\"/>"
        );
    }
}

/// The nodes to draw: the schedule's two, then any other the history
/// names (in the order it names them).
fn nodes<'a>(s: &'a Schedule, history: &'a [Record]) -> Vec<&'a str> {
    let mut out: Vec<&str> = s.options.nodes.iter().map(String::as_str).collect();
    for r in history {
        let n = match &r.event {
            Event::Mount { node, .. } => node,
            Event::Fence { target } => target,
            _ => continue,
        };
        if !out.contains(&n.as_str()) {
            out.push(n);
        }
    }
    out
}

fn timeline(s: &Schedule, history: &[Record], v: &Verdict, notes: &[String]) -> String {
    let last = history.iter().map(|r| r.t_ms).max().unwrap_or(0);
    let total_ms = s.options.duration_ms.max(last).max(1);
    let mut svg = Svg {
        out: String::new(),
        total_ms,
    };

    // Faults: as recorded (start to end, or to the end of the history),
    // and steps the history never started as dashed outlines where the
    // schedule put them.
    let ws = windows(history);
    let mut intervals: Vec<(u64, u64)> = ws
        .iter()
        .map(|w| (w.start_ms, w.end_ms.unwrap_or(total_ms)))
        .collect();
    let not_run: Vec<usize> = s
        .steps
        .iter()
        .filter(|st| !ws.iter().any(|w| w.step == st.index))
        .map(|st| st.index)
        .collect();
    intervals.extend(
        not_run
            .iter()
            .map(|i| (s.steps[*i].start_ms, s.steps[*i].end_ms())),
    );
    let (lanes, fault_lanes) = pack(&intervals);
    let mut y = 8.0;
    for l in 0..fault_lanes {
        let ly = y + l as f64 * (LANE_H + LANE_GAP);
        svg.lane_back(ly);
        svg.lane_label(ly, if l == 0 { "faults" } else { "" });
    }
    let over: Vec<usize> = v.over_bound.clone();
    let step_note = |step: usize| {
        let prefix = format!("step {step} ");
        let prefix_colon = format!("step {step}:");
        notes
            .iter()
            .filter(|n| n.starts_with(&prefix) || n.starts_with(&prefix_colon))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (i, (from, to)) in intervals.iter().enumerate() {
        let ly = y + lanes[i] as f64 * (LANE_H + LANE_GAP);
        let (step, ran) = if i < ws.len() {
            (ws[i].step, true)
        } else {
            (not_run[i - ws.len()], false)
        };
        let name = label(s, step);
        let mut title = format!("step {step}: {name}, {} to {}", secs(*from), secs(*to));
        if ran && ws[i].end_ms.is_none() {
            title.push_str(" (never healed)");
        }
        if !ran {
            title.push_str(" (scheduled, never started)");
        }
        if over.contains(&step) {
            title.push_str(" - outage over its bound");
        }
        let note = step_note(step);
        if !note.is_empty() {
            title.push('\n');
            title.push_str(&note);
        }
        let (fill, extra) = match (ran, over.contains(&step)) {
            (false, _) => ("none", " stroke=\"#888\" stroke-dasharray=\"4 3\""),
            (true, true) => ("#c62828", ""),
            (true, false) => ("#5c6bc0", ""),
        };
        svg.bar((*from, *to), (ly, LANE_H), fill, extra, &title);
        let text = format!("#{step} {name}");
        let width = svg.x(*to) - svg.x(*from);
        // Only where it fits (about 6.2 units a character at 11 px).
        if ran && width > text.chars().count() as f64 * 6.2 + 6.0 {
            let _ = writeln!(
                svg.out,
                "<text class=\"in\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                svg.x(*from) + 3.0,
                ly + LANE_H / 2.0 + 4.0,
                escape(&text)
            );
        }
    }
    y += fault_lanes as f64 * (LANE_H + LANE_GAP) + LANE_GAP;

    // Nodes: where the data was mounted, mounted twice, the lease (a
    // strip along the lane's top), fences.
    let spans = mount_spans(history);
    let leases = lease_spans(history);
    let spurious = |t: u64, n: &str| {
        v.spurious_fences
            .iter()
            .any(|f| f.t_ms == t && f.target == n)
    };
    for node in nodes(s, history) {
        svg.lane_back(y);
        svg.lane_label(y, &format!("{node} mounted"));
        for (from, to) in spans.get(node).map(Vec::as_slice).unwrap_or_default() {
            let title = format!("{node}: mounted {} to {}", secs(*from), secs(*to));
            svg.bar((*from, *to), (y + 4.0, LANE_H - 8.0), "#1e88e5", "", &title);
        }
        for (from, to) in leases.get(node).map(Vec::as_slice).unwrap_or_default() {
            let title = format!("{node}: held the lease {} to {}", secs(*from), secs(*to));
            let extra = " class=\"lease\"";
            svg.bar((*from, *to), (y, 3.0), "#2e7d32", extra, &title);
        }
        for d in &v.double_mounts {
            let title = format!(
                "mounted on both nodes {} to {}",
                secs(d.from_ms),
                secs(d.to_ms)
            );
            let extra = " class=\"double-mount\"";
            let span = (d.from_ms, d.to_ms + 100);
            svg.bar(span, (y, LANE_H), "#d50000", extra, &title);
        }
        for r in history {
            if let Event::Fence { target } = &r.event
                && target == node
            {
                let x = svg.x(r.t_ms);
                let (what, colour) = if spurious(r.t_ms, node) {
                    ("spurious fence", "#d50000")
                } else {
                    ("fence", "#6a1b9a")
                };
                let _ = writeln!(
                    svg.out,
                    "<path class=\"fence\" d=\"M{:.1} {:.1}h10l-5 8z M{x:.1} {:.1}v{:.1}\" fill=\"{colour}\" stroke=\"{colour}\" stroke-width=\"2\"><title>{}</title></path>",
                    x - 5.0,
                    y - 4.0,
                    y + 4.0,
                    LANE_H - 4.0,
                    escape(&format!("{what} of {node} at {}", secs(r.t_ms)))
                );
            }
        }
        y += LANE_H + LANE_GAP;
    }
    y += LANE_GAP;

    // The clients: per bin, failures first, runs of one colour merged.
    let bin_ms = total_ms.div_ceil(MAX_BINS).max(1000);
    let n = total_ms.div_ceil(bin_ms).max(1) as usize;
    for (smtp, name) in [(true, "SMTP"), (false, "IMAP")] {
        svg.lane_back(y);
        svg.lane_label(y, name);
        let b = bins(history, bin_ms, n, smtp);
        let mut i = 0;
        while i < n {
            let Some(fill) = bin_class(b[i]) else {
                i += 1;
                continue;
            };
            let mut j = i;
            let mut sum = (0, 0, 0);
            while j < n && bin_class(b[j]) == Some(fill) {
                sum = (sum.0 + b[j].0, sum.1 + b[j].1, sum.2 + b[j].2);
                j += 1;
            }
            let (from, to) = (i as u64 * bin_ms, j as u64 * bin_ms);
            let title = if smtp {
                format!(
                    "SMTP {} to {}: {} accepted, {} refused, {} unknown",
                    secs(from),
                    secs(to),
                    sum.0,
                    sum.1,
                    sum.2
                )
            } else {
                format!(
                    "IMAP {} to {}: {} reads, {} failed",
                    secs(from),
                    secs(to),
                    sum.0,
                    sum.1
                )
            };
            svg.bar((from, to), (y + 3.0, LANE_H - 6.0), fill, "", &title);
            i = j;
        }
        y += LANE_H + LANE_GAP;
    }

    // The time axis.
    let step = tick_s(total_ms as f64 / 1000.0);
    let axis_y = y;
    let _ = writeln!(
        svg.out,
        "<line x1=\"{LEFT}\" y1=\"{axis_y:.1}\" x2=\"{:.1}\" y2=\"{axis_y:.1}\" stroke=\"#444\"/>",
        LEFT + PLOT_W
    );
    let mut t = 0;
    while t * 1000 <= total_ms {
        let x = svg.x(t * 1000);
        let _ = writeln!(
            svg.out,
            "<line x1=\"{x:.1}\" y1=\"8\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#000\" stroke-opacity=\"0.08\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t} s</text>",
            axis_y + 4.0,
            axis_y + 16.0
        );
        t += step;
    }
    let height = axis_y + AXIS_H;
    let width = LEFT + PLOT_W + RIGHT;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height:.0}\" \
         role=\"img\" aria-label=\"the soak's timeline\">\n{}</svg>\n",
        svg.out
    )
}

/// Writes `dir/report.html` for a soak whose parts are in hand (the
/// runner, at its end).
pub fn write(
    dir: &Path,
    schedule: &Schedule,
    history: &[Record],
    verdict: &Verdict,
    notes: &[String],
) -> std::io::Result<PathBuf> {
    let path = dir.join("report.html");
    let page = render_with_notes(schedule, history, verdict, notes);
    std::fs::write(&path, page)?;
    Ok(path)
}

/// Writes `dir/report.html` from the folder's schedule.json,
/// history.jsonl and notes.txt (if any) and `verdict` (`soak check`).
pub fn write_dir(dir: &Path, verdict: &Verdict) -> Result<PathBuf, String> {
    let file = dir.join("schedule.json");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let s = Schedule::from_json(&text).map_err(|e| e.to_string())?;
    let h = super::history::read_file(&dir.join("history.jsonl")).map_err(|e| e.to_string())?;
    let notes: Vec<String> = std::fs::read_to_string(dir.join("notes.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    write(dir, &s, &h.records, verdict, &notes).map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::super::checker;
    use super::super::history::History;
    use super::super::schedule::{Options, Step};
    use super::*;
    use crate::soak::schedule::FaultKind;

    #[test]
    fn escape_makes_markup_text() {
        assert_eq!(
            escape("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain node1"), "plain node1");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("a\u{0}b\u{1b}c\nd"), "a\u{FFFD}b\u{FFFD}c\nd");
        assert_eq!(escape("héllo ✓"), "héllo ✓");
    }

    fn schedule() -> Schedule {
        Schedule {
            format: super::super::schedule::FORMAT,
            options: Options {
                duration_ms: 200_000,
                seed: 42,
                faults: vec![FaultKind::KillNode, FaultKind::KillDaemon],
                services: vec!["postfix".into()],
                nodes: ["node1".into(), "node2".into()],
                nfs: false,
            },
            steps: vec![
                Step {
                    index: 0,
                    start_ms: 30_000,
                    duration_ms: 20_000,
                    fault: Fault::KillNode {
                        node: "node1".into(),
                    },
                },
                Step {
                    index: 1,
                    start_ms: 120_000,
                    duration_ms: 10_000,
                    fault: Fault::KillDaemon {
                        service: "postfix".into(),
                    },
                },
            ],
        }
    }

    fn at(t_ms: u64, event: Event) -> Record {
        Record { t_ms, event }
    }

    fn smtp(t_ms: u64, id: &str, outcome: SmtpOutcome) -> Record {
        at(
            t_ms,
            Event::Smtp {
                id: id.into(),
                outcome,
            },
        )
    }

    /// The checker's verdict on `h`, as `soak run` judges it.
    fn verdict_of(s: &Schedule, h: &[Record]) -> Verdict {
        let history = History {
            records: h.to_vec(),
            torn: 0,
        };
        checker::check(&history, s, &super::super::run::check_options()).unwrap()
    }

    fn mount(t_ms: u64, node: &str, mounted: bool) -> Record {
        at(
            t_ms,
            Event::Mount {
                node: node.into(),
                mounted,
            },
        )
    }

    fn fault(t_ms: u64, step: usize, phase: Phase) -> Record {
        at(t_ms, Event::Fault { step, phase })
    }

    /// Mail every second, mounts every 100 ms on node1 then node2 after a
    /// handoff at 40 s; `bad` adds the failures: a lost id with markup
    /// in it, a double mount at 60 s, an SMTP outage of 25 s in step 0
    /// (kill-node's bound is 20 s).
    fn story(bad: bool) -> (Vec<Record>, Verdict) {
        let mut h = Vec::new();
        let mut read = Vec::new();
        for s in 0..190u64 {
            let t = s * 1000 + 500;
            let failing = bad && (30..55).contains(&s);
            if failing {
                h.push(smtp(t, &format!("refused-{s}"), SmtpOutcome::Refused));
            } else {
                let id = format!("<m{s}@x>");
                h.push(smtp(t, &id, SmtpOutcome::Ok));
                read.push(id);
            }
            h.push(at(
                t + 200,
                Event::Imap {
                    outcome: ImapOutcome::Ok,
                    ids: Vec::new(),
                    final_read: false,
                },
            ));
        }
        for tick in 0..1_900u64 {
            let t = tick * 100;
            let double = bad && (600..603).contains(&tick);
            h.push(mount(t, "node1", t < 40_000 || double));
            h.push(mount(t + 50, "node2", t >= 41_000));
        }
        if bad {
            h.push(smtp(10_700, "<script>alert(1)</script>", SmtpOutcome::Ok));
        }
        h.push(fault(30_000, 0, Phase::Start));
        h.push(at(
            31_000,
            Event::Fence {
                target: "node1".into(),
            },
        ));
        h.push(fault(50_000, 0, Phase::End));
        h.push(fault(120_000, 1, Phase::Start));
        h.push(fault(130_000, 1, Phase::End));
        h.push(at(
            195_000,
            Event::Imap {
                outcome: ImapOutcome::Ok,
                ids: read,
                final_read: true,
            },
        ));
        h.sort_by_key(|r| r.t_ms);
        let v = verdict_of(&schedule(), &h);
        (h, v)
    }

    #[test]
    fn a_clean_soak_says_ok_and_nothing_is_marked_bad() {
        let (h, v) = story(false);
        assert!(v.ok, "{v:?}");
        let page = render(&schedule(), &h, &v);
        assert!(page.contains("<h1 class=\"verdict ok\">OK</h1>"), "{page}");
        assert!(!page.contains("NOT OK"));
        assert!(!page.contains("class=\"bad\""));
        assert!(!page.contains("double-mount"));
        assert!(page.contains("Seed <b>42</b>, 3 min 20 s planned"));
        assert!(page.contains("kill-node, kill-daemon"));
    }

    #[test]
    fn a_failed_soak_says_not_ok_and_shows_why() {
        let (h, v) = story(true);
        assert!(!v.ok);
        assert_eq!(v.mail.lost, ["<script>alert(1)</script>"]);
        assert_eq!(v.over_bound, [0]);
        assert_eq!(v.double_mounts.len(), 1);
        let page = render(&schedule(), &h, &v);
        assert!(page.contains("<h1 class=\"verdict bad\">NOT OK</h1>"));
        // The hostile id shows as text, never as markup.
        assert!(page.contains("<li>&lt;script&gt;alert(1)&lt;/script&gt;</li>"));
        assert!(!page.contains("<script"));
        // Lost and over-bound counts highlighted.
        assert!(page.contains("<tr class=\"bad\"><th>lost</th><td class=\"n\">1</td></tr>"));
        assert!(
            page.contains(
                "<tr class=\"bad\"><th>outages over bound</th><td class=\"n\">1</td></tr>"
            )
        );
        // The double mount: listed, and drawn on both node lanes.
        assert!(page.contains("<li>60.0 s to 60.2 s</li>"), "{page}");
        assert_eq!(page.matches("class=\"double-mount\"").count(), 2);
        // The over-bound step: red in the timeline, a bad row in the table.
        assert!(page.contains("fill=\"#c62828\"><title>step 0: kill-node node1"));
        assert!(page.contains("<td>NO</td>"));
        // From the fault's start (30 s) to the first success after the last
        // refusal (55.5 s).
        assert!(page.contains("<td class=\"n\">25.5 s</td>"));
    }

    #[test]
    fn the_outage_table_puts_the_worst_first() {
        let (h, v) = story(true);
        let page = render(&schedule(), &h, &v);
        let table = &page[page.find("<table class=\"outages\">").unwrap()..];
        let kill_node = table.find("<td>kill-node</td>").unwrap();
        let kill_daemon = table.find("<td>kill-daemon</td>").unwrap();
        assert!(kill_node < kill_daemon);
        assert!(table.contains("<td>node1</td>"));
        assert!(table.contains("<td>postfix</td>"));
    }

    #[test]
    fn hostile_names_and_notes_are_escaped_everywhere() {
        let mut s = schedule();
        s.options.nodes = ["<b>n1</b>".into(), "n2\"onload=\"x".into()];
        if let Fault::KillNode { node } = &mut s.steps[0].fault {
            *node = "<b>n1</b>".into();
        }
        let h = vec![
            mount(0, "<b>n1</b>", true),
            mount(0, "n2\"onload=\"x", false),
            at(
                5,
                Event::Fence {
                    target: "<img src=x>".into(),
                },
            ),
            fault(30_000, 0, Phase::Start),
            fault(50_000, 0, Phase::End),
        ];
        let v = verdict_of(&s, &h);
        let notes = vec!["step 0 at 30 s: killed <i>n1</i>".to_string()];
        let page = render_with_notes(&s, &h, &v, &notes);
        for raw in ["<b>n1", "<img", "<i>", "\"onload"] {
            assert!(!page.contains(raw), "{raw} unescaped");
        }
        assert!(page.contains("&lt;b&gt;n1&lt;/b&gt; mounted"));
        assert!(page.contains("n2&quot;onload=&quot;x mounted"));
        assert!(page.contains(
            "fill=\"#d50000\" stroke=\"#d50000\" stroke-width=\"2\"><title>spurious fence of &lt;img src=x&gt;"
        ));
        // The step's note is in its fault's tooltip and in the notes.
        assert!(page.contains("\nstep 0 at 30 s: killed &lt;i&gt;n1&lt;/i&gt;</title>"));
        assert!(page.contains("<pre class=\"notes\">step 0 at 30 s: killed &lt;i&gt;n1"));
    }

    #[test]
    fn long_lists_are_capped() {
        let (h, mut v) = story(true);
        v.mail.duplicates = (0..50).map(|i| format!("d{i}")).collect();
        let page = render(&schedule(), &h, &v);
        assert!(page.contains("<h3>Duplicates (50)</h3>"));
        assert!(page.contains("<li>d19</li>"));
        assert!(!page.contains("<li>d20</li>"));
        assert!(page.contains("<li>and 30 more</li>"));
    }

    #[test]
    fn a_long_soak_stays_small() {
        // An hour, 80 faults, mounts every 100 ms on two nodes flapping
        // every 40 s, mail every 100 ms with a failure every 7 s: the
        // picture is spans and bins, not samples.
        let mut s = schedule();
        s.options.duration_ms = 3_600_000;
        s.options.faults = vec![FaultKind::KillDaemon];
        s.steps = (0..80)
            .map(|i| Step {
                index: i,
                start_ms: 30_000 + i as u64 * 44_000,
                duration_ms: 15_000,
                fault: Fault::KillDaemon {
                    service: "postfix".into(),
                },
            })
            .collect();
        let mut h = Vec::new();
        for st in &s.steps {
            h.push(fault(st.start_ms, st.index, Phase::Start));
            h.push(fault(st.end_ms(), st.index, Phase::End));
        }
        for tick in 0..36_000u64 {
            let t = tick * 100;
            let on1 = (t / 40_000) % 2 == 0;
            h.push(mount(t, "node1", on1));
            h.push(mount(t, "node2", !on1));
            let outcome = if tick % 70 == 0 {
                SmtpOutcome::Refused
            } else {
                SmtpOutcome::Ok
            };
            h.push(smtp(t, &format!("m{tick}"), outcome));
        }
        h.sort_by_key(|r| r.t_ms);
        let v = verdict_of(&s, &h);
        let page = render(&s, &h, &v);
        let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
        let elements = svg.matches('<').count();
        assert!(elements < 3_000, "{elements} elements");
        assert!(svg.len() < 400_000, "{} bytes", svg.len());
        // Every fault is drawn, each mount stretch once.
        assert_eq!(svg.matches("<title>step ").count(), 80);
        assert_eq!(svg.matches("fill=\"#1e88e5\"").count(), 90);
    }

    #[test]
    fn intervals_pack_into_as_few_lanes_as_overlaps_need() {
        let (lanes, n) = pack(&[(0, 10), (5, 15), (10, 20), (16, 30)]);
        assert_eq!(n, 2);
        assert_eq!(lanes, [0, 1, 0, 1]);
        assert_eq!(pack(&[]).1, 1);
    }

    #[test]
    fn mount_samples_merge_into_spans() {
        let h = vec![
            mount(0, "a", false),
            mount(100, "a", true),
            mount(200, "a", true),
            mount(300, "a", false),
            mount(400, "a", true),
        ];
        assert_eq!(mount_spans(&h)["a"], [(100, 300), (400, 500)]);
    }

    fn holder(t_ms: u64, lease: Option<&str>) -> Record {
        Record {
            t_ms,
            event: Event::Holder {
                lease: lease.map(String::from),
                mail: None,
            },
        }
    }

    #[test]
    fn the_lease_moves_from_node_to_node_and_both_holding_shows_on_both() {
        let h = vec![
            holder(0, Some("node1")),
            holder(5_000, None),
            holder(7_000, Some("node2")),
            holder(9_000, Some("node1,node2")),
            holder(9_500, Some("node2")),
            mount(12_000, "node2", true),
        ];
        let l = lease_spans(&h);
        assert_eq!(l["node1"], [(0, 5_000), (9_000, 9_500)]);
        assert_eq!(l["node2"], [(7_000, 12_000)]);
    }

    #[test]
    fn ticks_stay_few() {
        assert_eq!(tick_s(10.0), 1);
        assert_eq!(tick_s(180.0), 15);
        assert_eq!(tick_s(3600.0), 300);
    }

    #[test]
    fn a_report_is_written_from_a_soak_folder() {
        let d = tempfile::tempdir().unwrap();
        let s = schedule();
        std::fs::write(d.path().join("schedule.json"), s.to_json()).unwrap();
        let (h, v) = story(true);
        let mut w =
            super::super::history::HistoryWriter::append_to(&d.path().join("history.jsonl"))
                .unwrap();
        for r in &h {
            w.append(r).unwrap();
        }
        std::fs::write(
            d.path().join("notes.txt"),
            "step 1 at 120 s: killed master\n",
        )
        .unwrap();
        let path = write_dir(d.path(), &v).unwrap();
        assert_eq!(path, d.path().join("report.html"));
        let page = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            page,
            render_with_notes(&s, &h, &v, &["step 1 at 120 s: killed master".into()])
        );
        assert!(write_dir(&d.path().join("missing"), &v).is_err());
    }
}
