//! Incident -> what the operator reads: subject, text, HTML, the JSON for
//! webhook and command channels, and the MIME message for SMTP.
//!
//! Fixed text exists in English and Simplified Chinese; the user's subject
//! and advice are used exactly as given. Event values were cleaned when
//! recorded (no control characters) and are HTML-escaped here, so a hostile
//! resource description can neither add a header nor inject markup.

use super::event::{Event, Kind};
use crate::config::model::{Alerts, Language, Smtp};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use std::time::{Duration, UNIX_EPOCH};

/// One incident, ready to be put into words.
#[derive(Debug, Clone)]
pub struct Incident {
    /// Its first event's id: stable across retries and restarts.
    pub id: String,
    pub events: Vec<(String, Event)>,
    /// How many repeats of this very failure were kept back since its
    /// last mail, and when the first of them began (ms since the epoch):
    /// see `repeat`.
    pub repeats: Option<(u32, u64)>,
    /// The host sending the mail.
    pub host: String,
    /// The node that holds the mail service now, if it could be found.
    pub running_on: Option<String>,
    /// The redacted diagnostics bundle, attached as a text file.
    pub diagnostics: String,
}

/// The words of one incident, in the configured language.
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    pub subject: String,
    pub summary: String,
    pub text: String,
    pub html: String,
    /// What webhook and command channels receive.
    pub json: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("alerts.smtp: {what} {addr:?} is not a mail address: {source}")]
    Address {
        what: &'static str,
        addr: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("building the message: {0}")]
    Build(#[from] lettre::error::Error),
}

/// Fixed text of one language.
struct Words {
    title: &'static str,
    what: &'static str,
    where_: &'static str,
    todo: &'static str,
    events: &'static str,
    customer: &'static str,
    reported_by: &'static str,
    incident: &'static str,
    unknown_where: &'static str,
    default_advice: &'static str,
    attached: &'static str,
    /// Said instead of `attached` when the config turned the bundle off.
    not_attached: &'static str,
    more: fn(usize) -> String,
    /// The repeats kept back (count, since when) and the rule.
    repeated: fn(u32, &str) -> String,
    colon: &'static str,
}

const EN: Words = Words {
    title: "Mail high-availability alert",
    what: "What happened",
    where_: "Where the mail runs now",
    todo: "What to do",
    events: "Events, in order",
    customer: "Customer",
    reported_by: "Reported by",
    incident: "Incident",
    unknown_where: "unknown (see the attached diagnostics)",
    default_advice: "Check the cluster with `crm_mon -1`; the attached diagnostics show its state when this mail was sent.",
    attached: "Attached: diagnostics.txt (cluster status, recent logs, daemon states; secrets removed).",
    not_attached: "No diagnostics attached ([alerts.diagnostics] enabled = false).",
    more: |n| format!(" (+{n} more)"),
    repeated: |n, since| {
        format!(
            "The same failure came back {n} more times since {since} (same resource, operation, node and result). Those were not mailed: a repeated failure is mailed at most once every 30 minutes."
        )
    },
    colon: ": ",
};

const ZH: Words = Words {
    title: "邮件系统高可用告警",
    what: "发生了什么",
    where_: "邮件服务当前运行于",
    todo: "建议操作",
    events: "事件（按时间顺序）",
    customer: "客户",
    reported_by: "报告节点",
    incident: "事件编号",
    unknown_where: "未知（请查看附件中的诊断信息）",
    default_advice: "请用 crm_mon -1 检查集群状态；附件中的诊断信息记录了发送此邮件时的集群状态。",
    attached: "附件：diagnostics.txt（集群状态、近期日志、服务状态；已去除密码等敏感信息）。",
    not_attached: "未附诊断信息（[alerts.diagnostics] enabled = false）。",
    more: |n| format!("（另有 {n} 条事件）"),
    repeated: |n, since| {
        format!(
            "自 {since} 起同一故障（资源、操作、节点和结果均相同）又发生了 {n} 次，未逐一发信：同一故障每 30 分钟最多发一封邮件。"
        )
    },
    colon: "：",
};

fn words(l: Language) -> &'static Words {
    match l {
        Language::En => &EN,
        Language::ZhCn => &ZH,
    }
}

fn or_q(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("?")
}

/// One line saying what an event means.
pub fn describe(e: &Event, l: Language) -> String {
    let node = e.node.as_deref().unwrap_or(&e.host);
    let desc = e.desc.as_deref().unwrap_or("");
    let rsc = or_q(&e.rsc);
    let task = or_q(&e.task);
    let rc = e.rc.map(|r| r.to_string()).unwrap_or_else(|| "?".into());
    match (l, e.kind()) {
        // Pacemaker's node states are "member" and "lost"; say what they
        // mean (any other value is shown as given).
        (Language::En, Kind::Node) => match desc {
            "lost" => format!("node {node} left the cluster (lost)"),
            "member" => format!("node {node} joined the cluster (member)"),
            _ => format!("node {node} is {desc}"),
        },
        (Language::En, Kind::Fencing) => format!("fencing of {node}: {desc}"),
        (Language::En, Kind::Resource) if e.failed() && task == crate::ocf::TOLD_DEATH_TASK => {
            format!("{rsc} on {node}: its daemon's unit ended of itself (told at once by systemd)")
        }
        (Language::En, Kind::Resource) if e.failed() => {
            format!("{rsc} {task} on {node} failed (rc {rc}): {desc}")
        }
        (Language::En, Kind::Resource) => format!("{rsc} {task} on {node}: {desc}"),
        (Language::En, Kind::Attribute) => format!(
            "attribute {} on {node} = {}",
            or_q(&e.attribute_name),
            or_q(&e.attribute_value)
        ),
        (Language::En, Kind::OtherPacemaker) => {
            format!("{} event on {node}: {desc}", or_q(&e.raw_kind))
        }
        (Language::En, Kind::ServiceRestarted) => {
            format!("service {rsc} failed its check on {node} and is being recovered: {desc}")
        }
        (Language::En, Kind::Switchover) => format!("the mail service moved to {node}"),
        (Language::En, Kind::LeaseLost) => format!("{node} lost the disk lease"),
        (Language::En, Kind::Fenced) => format!("node {node} was fenced"),
        (Language::En, Kind::StorageStopEscalated) => {
            format!("stopping the storage on {node} had to be escalated: {desc}")
        }
        (Language::En, Kind::Test) => format!("test alert from {}", e.host),
        (Language::ZhCn, Kind::Node) => match desc {
            "lost" => format!("节点 {node} 已离开集群（lost）"),
            "member" => format!("节点 {node} 已加入集群（member）"),
            _ => format!("节点 {node} 状态：{desc}"),
        },
        (Language::ZhCn, Kind::Fencing) => format!("对节点 {node} 执行隔离（fencing）：{desc}"),
        (Language::ZhCn, Kind::Resource) if e.failed() && task == crate::ocf::TOLD_DEATH_TASK => {
            format!("资源 {rsc} 在节点 {node} 上的守护进程自行终止（systemd 即时报告）")
        }
        (Language::ZhCn, Kind::Resource) if e.failed() => {
            format!("资源 {rsc} 在节点 {node} 上的 {task} 操作失败（返回码 {rc}）：{desc}")
        }
        (Language::ZhCn, Kind::Resource) => {
            format!("资源 {rsc} 在节点 {node} 上的 {task} 操作：{desc}")
        }
        (Language::ZhCn, Kind::Attribute) => format!(
            "节点 {node} 的属性 {} = {}",
            or_q(&e.attribute_name),
            or_q(&e.attribute_value)
        ),
        (Language::ZhCn, Kind::OtherPacemaker) => {
            format!("节点 {node} 上的 {} 事件：{desc}", or_q(&e.raw_kind))
        }
        (Language::ZhCn, Kind::ServiceRestarted) => {
            format!("服务 {rsc} 在节点 {node} 上检查失败，正在恢复：{desc}")
        }
        (Language::ZhCn, Kind::Switchover) => format!("邮件服务已切换到节点 {node}"),
        (Language::ZhCn, Kind::LeaseLost) => format!("节点 {node} 失去了磁盘租约"),
        (Language::ZhCn, Kind::Fenced) => format!("节点 {node} 已被隔离（fencing）"),
        (Language::ZhCn, Kind::StorageStopEscalated) => {
            format!("节点 {node} 上的存储停止操作已强制升级：{desc}")
        }
        (Language::ZhCn, Kind::Test) => format!("来自 {} 的测试告警", e.host),
    }
}

/// The one-line summary: the most serious event (failures first), and how
/// many more there are. Capped so a subject stays readable.
pub fn summary(events: &[(String, Event)], l: Language) -> String {
    let top = events
        .iter()
        .map(|(_, e)| e)
        // max_by_key keeps the last of equals; reverse so the first wins.
        .rev()
        .max_by_key(|e| (e.kind().rank(), e.failed()));
    let Some(top) = top else {
        return String::new();
    };
    let mut s = super::event::clean(&describe(top, l), 160);
    if events.len() > 1 {
        s.push_str(&(words(l).more)(events.len() - 1));
    }
    s
}

fn time_of(e: &Event) -> String {
    time_ms(e.recorded_at_ms)
}

fn time_ms(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Control characters have no business in HTML (a page or a
            // mail part); event text is hostile input.
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// Puts an incident into words.
pub fn compose(cfg: &Alerts, inc: &Incident) -> Composed {
    let w = words(cfg.language);
    let summary = summary(&inc.events, cfg.language);
    let customer = cfg.customer.trim();
    let subject = match (&cfg.subject, customer.is_empty()) {
        (Some(s), true) => format!("{s} - {summary}"),
        (Some(s), false) => format!("{s} [{customer}] {summary}"),
        (None, true) => format!("[mailha] {summary}"),
        (None, false) => format!("[mailha] {customer}{}{summary}", w.colon),
    };
    let where_ = inc.running_on.as_deref().unwrap_or(w.unknown_where);
    let advice = cfg.advice.as_deref().unwrap_or(w.default_advice);
    let lines: Vec<(String, String)> = inc
        .events
        .iter()
        .map(|(_, e)| (time_of(e), describe(e, cfg.language)))
        .collect();

    let mut text = format!("{}\n\n", w.title);
    if !customer.is_empty() {
        text += &format!("{}{}{customer}\n", w.customer, w.colon);
    }
    text += &format!(
        "{}{}{}\n{}{}{}\n\n",
        w.reported_by, w.colon, inc.host, w.incident, w.colon, inc.id
    );
    let repeated = inc
        .repeats
        .map(|(n, since)| (w.repeated)(n, &time_ms(since)));
    text += &format!("{}\n  {summary}\n", w.what);
    if let Some(r) = &repeated {
        text += &format!("  {r}\n");
    }
    text += "\n";
    text += &format!("{}\n  {where_}\n\n", w.where_);
    text += &format!("{}\n  {advice}\n\n", w.todo);
    text += &format!("{}\n", w.events);
    for (t, d) in &lines {
        text += &format!("  {t}  {d}\n");
    }
    let attached = if inc.diagnostics.is_empty() {
        w.not_attached
    } else {
        w.attached
    };
    text += &format!("\n{attached}\n");

    let h = html_escape;
    let lang = match cfg.language {
        Language::En => "en",
        Language::ZhCn => "zh-CN",
    };
    // Phone first (looked at in headless Chromium at 390 px, see
    // tests/alert_look.rs): one column at most 640 px wide, inline styles
    // only (mail clients drop <style>), a viewport so a phone does not
    // render it at desktop width, long values (paths, uuids, pids) allowed
    // to wrap anywhere, the three things an operator needs first (what,
    // where, what to do) above the event list, the incident id last.
    const WRAP: &str = "overflow-wrap:anywhere;word-break:break-word";
    const LABEL: &str = "margin:16px 0 4px;font-size:13px;font-weight:bold;text-transform:uppercase;letter-spacing:.04em;color:#555";
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head>\n<body style=\"margin:0;padding:0;background:#f3f4f6\">\n<div style=\"max-width:640px;width:100%;margin:0 auto;background:#fff;font-family:-apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;font-size:16px;line-height:1.5;color:#111;{WRAP}\">\n<div style=\"background:#b91c1c;color:#fff;padding:14px 16px\"><div style=\"font-size:20px;font-weight:bold\">{}</div>",
        h(&subject),
        h(w.title)
    );
    if !customer.is_empty() {
        html += &format!(
            "<div style=\"font-size:14px;opacity:.9\">{}{}{}</div>",
            h(w.customer),
            h(w.colon),
            h(customer)
        );
    }
    html += "</div>\n<div style=\"padding:4px 16px 16px\">\n";
    html += &format!(
        "<div style=\"{LABEL}\">{}</div>\n<div style=\"font-size:17px\">{}</div>\n",
        h(w.what),
        h(&summary)
    );
    if let Some(r) = &repeated {
        html += &format!(
            "<div style=\"font-size:14px;color:#92400e;margin-top:4px\">{}</div>\n",
            h(r)
        );
    }
    html += &format!(
        "<div style=\"{LABEL}\">{}</div>\n<div style=\"font-size:22px;font-weight:bold;color:#065f46\">{}</div>\n",
        h(w.where_),
        h(where_)
    );
    html += &format!(
        "<div style=\"{LABEL}\">{}</div>\n<div style=\"background:#fef3c7;border-left:4px solid #d97706;padding:8px 12px\">{}</div>\n",
        h(w.todo),
        h(advice)
    );
    html += &format!(
        "<div style=\"{LABEL}\">{}</div>\n<ol style=\"margin:0;padding:0 0 0 22px\">\n",
        h(w.events)
    );
    for (t, d) in &lines {
        html += &format!(
            "<li style=\"margin:0 0 10px\"><div style=\"font-size:13px;color:#666;font-family:monospace\">{}</div><div>{}</div></li>\n",
            h(t),
            h(d)
        );
    }
    html += &format!(
        "</ol>\n<p style=\"font-size:14px;color:#555\">{}</p>\n<p style=\"font-size:12px;color:#777;border-top:1px solid #ddd;padding-top:8px;margin-bottom:0\">{}{}{} &middot; {}{}<code>{}</code></p>\n</div></div>\n</body></html>\n",
        h(attached),
        h(w.reported_by),
        h(w.colon),
        h(&inc.host),
        h(w.incident),
        h(w.colon),
        h(&inc.id)
    );

    let json = serde_json::json!({
        "incident": inc.id,
        "customer": cfg.customer,
        "language": lang,
        "subject": subject,
        "summary": summary,
        "repeats": inc.repeats.map(|(n, since)| serde_json::json!({
            "count": n,
            "since": time_ms(since),
        })),
        "host": inc.host,
        "running_on": inc.running_on,
        "advice": advice,
        "events": inc.events.iter().map(|(id, e)| serde_json::json!({
            "id": id,
            "text": describe(e, cfg.language),
            "event": e,
        })).collect::<Vec<_>>(),
        "diagnostics": inc.diagnostics,
    });
    Composed {
        subject,
        summary,
        text,
        html,
        json,
    }
}

/// The Message-ID of an incident: the same on every retry, so a repeat
/// after a crash (see `spool`) is recognisable as the same mail.
pub fn message_id(inc: &Incident) -> String {
    let host: String = inc
        .host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    let host = if host.is_empty() {
        "mailha".into()
    } else {
        host
    };
    format!("<{}.mailha@{host}>", inc.id)
}

/// The MIME message: text and HTML alternatives, diagnostics attached.
/// lettre encodes a non-ASCII subject as RFC 2047 encoded-words.
pub fn message(smtp: &Smtp, inc: &Incident, c: &Composed) -> Result<Message, ComposeError> {
    let mailbox = |what: &'static str, a: &str| -> Result<Mailbox, ComposeError> {
        a.parse::<Mailbox>()
            .map_err(|source| ComposeError::Address {
                what,
                addr: a.to_string(),
                source,
            })
    };
    let mut b = Message::builder()
        .from(mailbox("from", &smtp.from)?)
        .subject(c.subject.clone())
        .message_id(Some(message_id(inc)))
        .user_agent(format!("mailha/{}", env!("CARGO_PKG_VERSION")))
        .date_now();
    for t in &smtp.to {
        b = b.to(mailbox("to", t)?);
    }
    let mut body = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
        c.text.clone(),
        c.html.clone(),
    ));
    if !inc.diagnostics.is_empty() {
        body = body.singlepart(
            Attachment::new("diagnostics.txt".to_string())
                .body(inc.diagnostics.clone(), ContentType::TEXT_PLAIN),
        );
    }
    Ok(b.multipart(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn cfg(language: Language, subject: Option<&str>, advice: Option<&str>) -> Alerts {
        Alerts {
            customer: "ACME".into(),
            language,
            subject: subject.map(Into::into),
            advice: advice.map(Into::into),
            batch_window: Duration::from_secs(10),
            smtp: None,
            webhook: None,
            command: None,
            diagnostics: Default::default(),
        }
    }

    #[test]
    fn node_states_are_said_in_words() {
        let lost = ev(Kind::Node, |e| {
            e.node = Some("node1".into());
            e.desc = Some("lost".into());
        });
        assert_eq!(
            describe(&lost, Language::En),
            "node node1 left the cluster (lost)"
        );
        assert_eq!(
            describe(&lost, Language::ZhCn),
            "节点 node1 已离开集群（lost）"
        );
    }

    fn smtp() -> Smtp {
        Smtp {
            ca_file: None,
            host: "127.0.0.1".into(),
            port: 25,
            starttls: false,
            user: None,
            password: crate::config::model::Secret::None,
            from: "ha@example.com".into(),
            to: vec!["admin@example.com".into(), "ops@example.com".into()],
            timeout: Duration::from_secs(5),
        }
    }

    fn ev(kind: Kind, f: impl FnOnce(&mut Event)) -> Event {
        let mut e = Event::new(kind, "mx1", UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        f(&mut e);
        e
    }

    /// A failover: postfix's monitor failed on mx1, mx1 was fenced, the
    /// mail moved to mx2.
    fn failover() -> Incident {
        Incident {
            id: "00001700000000000-0000042-000000".into(),
            events: vec![
                (
                    "a".into(),
                    ev(Kind::Resource, |e| {
                        e.node = Some("mx1".into());
                        e.rsc = Some("postfix".into());
                        e.task = Some("monitor".into());
                        e.rc = Some(7);
                        e.target_rc = Some(0);
                        e.desc = Some("not running <script>alert(1)</script>".into());
                    }),
                ),
                (
                    "b".into(),
                    ev(Kind::Fenced, |e| e.node = Some("mx1".into())),
                ),
                (
                    "c".into(),
                    ev(Kind::Switchover, |e| e.node = Some("mx2".into())),
                ),
            ],
            repeats: None,
            host: "mx2".into(),
            running_on: Some("mx2".into()),
            diagnostics: "crm_mon: ok\n".into(),
        }
    }

    /// Decodes an unfolded header value holding RFC 2047 encoded-words
    /// and plain words. Whitespace between two encoded-words is dropped,
    /// whitespace next to a plain word is kept, as the RFC says.
    fn decode_2047(v: &str) -> String {
        let mut out = String::new();
        let mut prev_encoded = false;
        for (i, word) in v.split(' ').enumerate() {
            let encoded = word.strip_prefix("=?").and_then(|w| w.strip_suffix("?="));
            if i > 0 && !(prev_encoded && encoded.is_some()) {
                out.push(' ');
            }
            match encoded {
                Some(inner) => {
                    let mut parts = inner.splitn(3, '?');
                    let (charset, enc, data) = (
                        parts.next().unwrap(),
                        parts.next().unwrap(),
                        parts.next().unwrap(),
                    );
                    assert!(charset.eq_ignore_ascii_case("utf-8"), "{charset}");
                    assert!(enc.eq_ignore_ascii_case("b"), "{enc}");
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap();
                    out.push_str(std::str::from_utf8(&bytes).unwrap());
                }
                None => out.push_str(word),
            }
            prev_encoded = encoded.is_some();
        }
        out
    }

    fn header(raw: &str, name: &str) -> String {
        let mut lines = raw.split("\r\n");
        let prefix = format!("{name}: ");
        let first = lines.find(|l| l.starts_with(&prefix)).unwrap();
        let mut v = first[prefix.len()..].to_string();
        for l in lines {
            if l.starts_with([' ', '\t']) {
                v.push_str(l);
            } else {
                break;
            }
        }
        v
    }

    #[test]
    fn a_mail_after_kept_back_repeats_says_how_many_and_since_when() {
        let inc = Incident {
            repeats: Some((149, 1_764_547_200_000)),
            ..failover()
        };
        for l in [Language::En, Language::ZhCn] {
            let c = compose(&cfg(l, None, None), &inc);
            let n = "149";
            let since = "2025-12-01T00:00:00Z";
            assert!(c.text.contains(n) && c.text.contains(since), "{}", c.text);
            assert!(c.html.contains(n) && c.html.contains(since));
            assert_eq!(c.json["repeats"]["count"], 149);
        }
        let plain = compose(&cfg(Language::En, None, None), &failover());
        assert!(!plain.text.contains("came back"));
        assert!(plain.json["repeats"].is_null());
    }
    #[test]
    fn the_english_mail_says_what_where_and_what_to_do() {
        let c = compose(
            &cfg(Language::En, None, Some("Call the storage team.")),
            &failover(),
        );
        assert_eq!(c.subject, "[mailha] ACME: node mx1 was fenced (+2 more)");
        for needle in [
            "What happened",
            "Where the mail runs now\n  mx2",
            "Call the storage team.",
            "postfix monitor on mx1 failed (rc 7)",
            "the mail service moved to mx2",
            "2023-11-14T22:13:20Z",
        ] {
            assert!(c.text.contains(needle), "{needle:?} missing in\n{}", c.text);
        }
        // The events keep their order.
        let p = c.text.find("postfix monitor").unwrap();
        let f = c.text.find("was fenced\n").unwrap();
        assert!(p < f);
    }

    #[test]
    fn a_death_systemd_told_is_said_so_in_both_languages() {
        let e = ev(Kind::Resource, |e| {
            e.node = Some("mx1".into());
            e.rsc = Some("svc-postfix".into());
            e.task = Some(crate::ocf::TOLD_DEATH_TASK.into());
            e.rc = Some(1);
            e.target_rc = Some(0);
            e.desc = Some("Simulated failure".into());
        });
        let en = describe(&e, Language::En);
        assert_eq!(
            en,
            "svc-postfix on mx1: its daemon's unit ended of itself (told at once by systemd)"
        );
        let zh = describe(&e, Language::ZhCn);
        assert!(
            zh.contains("svc-postfix") && zh.contains("自行终止"),
            "{zh}"
        );
        assert!(!zh.contains("Simulated"), "{zh}");
    }

    #[test]
    fn hostile_event_text_is_escaped_in_html() {
        let c = compose(&cfg(Language::En, None, None), &failover());
        assert!(!c.html.contains("<script>"));
        assert!(c.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn the_chinese_mail_uses_chinese_fixed_text_and_the_users_words_as_given() {
        let c = compose(
            &cfg(
                Language::ZhCn,
                Some("邮件系统高可用告警"),
                Some("请检查故障节点。"),
            ),
            &failover(),
        );
        assert_eq!(
            c.subject,
            "邮件系统高可用告警 [ACME] 节点 mx1 已被隔离（fencing）（另有 2 条事件）"
        );
        for needle in [
            "发生了什么",
            "邮件服务当前运行于\n  mx2",
            "请检查故障节点。",
            "返回码 7",
            "邮件服务已切换到节点 mx2",
        ] {
            assert!(c.text.contains(needle), "{needle:?} missing in\n{}", c.text);
        }
        assert!(c.html.contains("<html lang=\"zh-CN\">"));
    }

    #[test]
    fn unknown_location_is_said_not_guessed() {
        let mut inc = failover();
        inc.running_on = None;
        let c = compose(&cfg(Language::En, None, None), &inc);
        assert!(c.text.contains("unknown (see the attached diagnostics)"));
        assert_eq!(c.json["running_on"], serde_json::Value::Null);
    }

    #[test]
    fn a_chinese_subject_is_rfc2047_encoded_and_decodes_back() {
        let inc = failover();
        let c = compose(&cfg(Language::ZhCn, Some("邮件系统高可用告警"), None), &inc);
        let m = message(&smtp(), &inc, &c).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        let subj = header(&raw, "Subject");
        assert!(subj.is_ascii(), "{subj}");
        assert!(subj.starts_with("=?utf-8?b?"), "{subj}");
        assert!(!subj.contains("\r\n") && !subj.contains('\n'));
        assert_eq!(decode_2047(&subj), c.subject);
    }

    #[test]
    fn the_message_has_text_html_and_the_diagnostics_attached() {
        let inc = failover();
        let c = compose(&cfg(Language::En, None, None), &inc);
        let raw = String::from_utf8(message(&smtp(), &inc, &c).unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/mixed"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
        assert!(raw.contains("attachment; filename=\"diagnostics.txt\""));
        assert_eq!(
            header(&raw, "Message-ID"),
            "<00001700000000000-0000042-000000.mailha@mx2>"
        );
        assert_eq!(header(&raw, "To"), "admin@example.com, ops@example.com");
    }

    #[test]
    fn without_a_bundle_nothing_is_attached_and_the_mail_says_so() {
        let mut inc = failover();
        inc.diagnostics.clear();
        let c = compose(&cfg(Language::En, None, None), &inc);
        assert!(c.text.contains("No diagnostics attached"), "{}", c.text);
        assert!(c.html.contains("No diagnostics attached"));
        let raw = String::from_utf8(message(&smtp(), &inc, &c).unwrap().formatted()).unwrap();
        assert!(!raw.contains("diagnostics.txt"), "{raw}");
    }

    #[test]
    fn the_json_carries_the_incident_id_and_every_event() {
        let c = compose(&cfg(Language::En, None, None), &failover());
        assert_eq!(c.json["incident"], "00001700000000000-0000042-000000");
        assert_eq!(c.json["events"].as_array().unwrap().len(), 3);
        assert_eq!(c.json["events"][2]["event"]["kind"], "switchover");
    }

    #[test]
    fn the_summary_names_the_worst_event_first_seen() {
        let events = vec![
            ("a".into(), ev(Kind::Resource, |e| e.rc = Some(0))),
            (
                "b".into(),
                ev(Kind::Resource, |e| {
                    e.rsc = Some("dovecot".into());
                    e.task = Some("start".into());
                    e.rc = Some(1);
                }),
            ),
        ];
        assert!(summary(&events, Language::En).starts_with("dovecot start on mx1 failed"));
    }
}
