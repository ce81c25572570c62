//! The status page (`GET /`): what `mailha status` shows, for a browser.
//! Pure: an observation (the same one a scrape makes), the incidents of
//! the last day and a language in, one self-contained HTML page out (no
//! external asset, no script; it reloads itself by a meta refresh), so
//! it is golden-tested and screenshot-tested.
//!
//! Every value from crm_mon, the keeper or the spool is hostile input
//! (a resource's exit reason is whatever an agent printed): each one is
//! HTML-escaped where it is written, and templates take plain text only.

use super::metrics::Observed;
use crate::config::model::Language;
use crate::ops::history::{self, Detail, Entry, Incident, Kind};
use crate::status::{self, KeeperView, NodeHistory, Resource, Status};
use std::fmt::Write;

/// Seconds between the page's reloads: a failover shows within one.
pub const REFRESH_S: u32 = 10;

/// Incidents listed in full; older ones are counted and left to `mailha
/// history`.
const MAX_INCIDENTS: usize = 20;

/// A spool event waiting longer than this means the sender is not
/// sending (it claims within its batch window, seconds).
const SPOOL_STUCK_S: f64 = 120.0;

/// What one page is made of.
pub struct Page<'a> {
    pub observed: &'a Observed,
    /// When this scrape's crm_mon failed: the last observation in which it
    /// answered, shown marked stale.
    pub last_good: Option<&'a Observed>,
    /// The last 24 hours, oldest first (`ops::history::incidents`).
    pub incidents: &'a [Incident],
    pub language: Language,
    /// Milliseconds since the epoch, for the footer.
    pub now_ms: u64,
    /// The machine serving the page.
    pub host: &'a str,
}

/// The language asked for: `?lang=` first, then the browser's
/// `Accept-Language` (by its q-values), else the config's.
pub fn language(query: &str, accept_language: Option<&str>, default: Language) -> Language {
    fn of(tag: &str) -> Option<Language> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "zh" || tag.starts_with("zh-") || tag.starts_with("zh_") {
            Some(Language::ZhCn)
        } else if tag == "en" || tag.starts_with("en-") || tag.starts_with("en_") {
            Some(Language::En)
        } else {
            None
        }
    }
    let asked = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| of(v));
    if let Some(l) = asked {
        return l;
    }
    let mut best: Option<(f32, Language)> = None;
    for part in accept_language.unwrap_or("").split(',') {
        let mut it = part.split(';');
        let Some(l) = it.next().and_then(of) else {
            continue;
        };
        let q = it
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        // The first of equal weights wins, as the browser listed them.
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, l));
        }
    }
    best.map(|(_, l)| l).unwrap_or(default)
}

/// Text made safe for HTML content and attribute values: the alert
/// mail's escape, one rule for every HTML mailha writes.
pub fn esc(s: &str) -> String {
    crate::alert::compose::html_escape(s)
}

/// The fixed text of one language. Templates take and give plain text;
/// the page escapes what they give.
struct Words {
    tag: &'static str,
    title: &'static str,
    ok: &'static str,
    degraded: &'static str,
    down: &'static str,
    stale: &'static str,
    mail_on: fn(&str) -> String,
    mail_nowhere: &'static str,
    stale_since: fn(&str, &str) -> String,
    stale_never: &'static str,
    attention: &'static str,
    nodes: &'static str,
    online: &'static str,
    standby: &'static str,
    offline: &'static str,
    maintenance: &'static str,
    unclean: &'static str,
    dc: &'static str,
    lease: &'static str,
    held_by: fn(&str) -> String,
    held_by_nobody: &'static str,
    keeper_here: fn(&str, &str) -> String,
    lease_unused: &'static str,
    lease_resource_on: fn(&str) -> String,
    services: &'static str,
    last_check: fn(&str) -> String,
    took: fn(u64) -> String,
    every: fn(u64) -> String,
    one_off: &'static str,
    since: fn(&str) -> String,
    no_check: &'static str,
    fails: fn(u32) -> String,
    /// Pacemaker's roles and the keeper's, in words; others as given.
    role: fn(&str) -> Option<&'static str>,
    day: &'static str,
    nothing: &'static str,
    planned: &'static str,
    mail_after: fn(&str) -> String,
    seconds: fn(f64) -> String,
    steps: &'static str,
    started_on: fn(&str, &str) -> String,
    fenced: fn(&str, &str, &str, &str) -> String,
    membership: fn(&str, &str) -> String,
    stopped_on: fn(&str, &str) -> String,
    more_incidents: fn(usize) -> String,
    no_quorum: &'static str,
    maintenance_all: &'static str,
    unmanaged: fn(&str) -> String,
    maintenance_of: fn(&str) -> String,
    watch_off: fn(&str) -> String,
    fencing_off: &'static str,
    failed_op: fn(&str, &str, &str, &str) -> String,
    /// `status::TOLD_DEATH_TASK`: a daemon whose unit ended of itself.
    told_death: fn(&str, &str) -> String,
    leftover_ban: fn(&str, &str) -> String,
    leftover_prefer: fn(&str, &str) -> String,
    keeper_silent: fn(&str) -> String,
    keeper_fenced: fn(&str) -> String,
    keeper_idle: &'static str,
    node_offline: fn(&str) -> String,
    node_unclean: fn(&str) -> String,
    drift: &'static str,
    or: &'static str,
    spool_stuck: fn(u64, &str) -> String,
    refreshes: fn(u32) -> String,
    served_by: fn(&str, &str) -> String,
    duration: fn(f64) -> String,
}

const EN: Words = Words {
    tag: "en",
    title: "Mail cluster status",
    ok: "OK",
    degraded: "DEGRADED",
    down: "DOWN",
    stale: "STALE",
    mail_on: |n| format!("The mail runs on {n}"),
    mail_nowhere: "The mail is NOT running",
    stale_since: |age, verdict| {
        format!(
            "Pacemaker did not answer this time (crm_mon failed or timed out). Below is its last answer, from {age} ago: {verdict}."
        )
    },
    stale_never: "Pacemaker has not answered since the exporter started (crm_mon failed or timed out): the cluster's state is unknown.",
    attention: "Needs attention",
    nodes: "Nodes",
    online: "online",
    standby: "standby",
    offline: "OFFLINE",
    maintenance: "maintenance",
    unclean: "UNCLEAN",
    dc: "DC",
    lease: "Disk lease",
    held_by: |n| format!("Held by {n}"),
    held_by_nobody: "Held by nobody",
    keeper_here: |node, role| format!("This node's keeper ({node}): {role}"),
    lease_unused: "Not used: fencing here does not use a disk lease.",
    lease_resource_on: |n| format!("Pacemaker runs the lease resource on {n}"),
    services: "Services",
    last_check: |node| format!("last check on {node}:"),
    took: |ms| format!("took {ms} ms"),
    every: |ms| format!("every {}", human_interval(ms)),
    one_off: "one-off probe",
    since: |t| format!("since {t}"),
    no_check: "no check recorded",
    fails: |n| format!("fails: {n}"),
    role: |_| None,
    day: "Last 24 hours",
    nothing: "Nothing recorded in the last 24 hours.",
    planned: "planned change (no failure)",
    mail_after: |n| format!("the mail on {n} after it"),
    seconds: |s| format!("{s:.1} s"),
    steps: "steps",
    started_on: |r, n| format!("{r} started on {n}"),
    // As `mailha history` words them.
    fenced: |action, target, by, status| format!("{action} of {target} by {by}: {status}"),
    membership: |n, state| format!("node {n} {state}"),
    stopped_on: |r, n| format!("{r} stopped on {n}"),
    more_incidents: |n| format!("{n} earlier incidents: mailha history --since 24h"),
    no_quorum: "No quorum: the cluster runs nothing new.",
    maintenance_all: "MAINTENANCE: the cluster starts, stops and monitors nothing:",
    unmanaged: |r| format!("{r} is unmanaged: Pacemaker neither starts nor stops it"),
    maintenance_of: |r| format!("MAINTENANCE: {r} is neither managed nor monitored:"),
    watch_off: |s| format!("{s}: watch off (liveness only):"),
    fencing_off: "Fencing is off: no split-brain guard.",
    failed_op: |r, t, n, why| format!("{r} {t} failed on {n}: {why}"),
    told_death: crate::ops::history::told_death,
    leftover_ban: |r, n| format!("Leftover ban of {r} on {n}: it defeats failover:"),
    leftover_prefer: |r, n| format!("Leftover preference of {r} for {n}: it defeats failover:"),
    keeper_silent: |e| format!("The lease keeper does not answer, no takeover possible: {e}"),
    keeper_fenced: |why| {
        format!("The lease keeper fenced this node, no takeover until it is restarted: {why}")
    },
    keeper_idle: "The lease keeper holds nothing, yet Pacemaker runs the lease here.",
    node_offline: |n| format!("{n} is offline: no failover possible."),
    node_unclean: |n| format!("{n} is UNCLEAN: Pacemaker waits for it to be fenced."),
    drift: "This node's mailha.toml differs from the config the cluster runs:",
    or: ", or",
    spool_stuck: |n, age| {
        format!("{n} alert events have waited {age} to be sent: is the sender running?")
    },
    refreshes: |s| format!("refreshes every {s} s"),
    served_by: |host, t| format!("{host} at {t} UTC"),
    duration: |s| format!("crm_mon answered in {:.0} ms", s * 1000.0),
};

const ZH: Words = Words {
    tag: "zh-CN",
    title: "邮件集群状态",
    ok: "正常 OK",
    degraded: "降级 DEGRADED",
    down: "停止 DOWN",
    stale: "数据过时 STALE",
    mail_on: |n| format!("邮件服务运行于 {n}"),
    mail_nowhere: "邮件服务未运行",
    stale_since: |age, verdict| {
        format!(
            "本次 Pacemaker 没有应答（crm_mon 失败或超时）。以下是它 {age}前的最后一次应答：{verdict}。"
        )
    },
    stale_never: "自导出程序启动以来 Pacemaker 从未应答（crm_mon 失败或超时）：集群状态未知。",
    attention: "需要处理",
    nodes: "节点",
    online: "在线",
    standby: "备用（standby）",
    offline: "离线",
    maintenance: "维护中",
    unclean: "状态不明（UNCLEAN）",
    dc: "DC",
    lease: "磁盘租约",
    held_by: |n| format!("持有者：{n}"),
    held_by_nobody: "无人持有",
    keeper_here: |node, role| format!("本节点（{node}）的租约守护进程：{role}"),
    lease_unused: "未使用：本集群的隔离方式不使用磁盘租约。",
    lease_resource_on: |n| format!("Pacemaker 在 {n} 上运行租约资源"),
    services: "服务",
    last_check: |node| format!("{node} 上最近一次检查："),
    took: |ms| format!("耗时 {ms} 毫秒"),
    every: |ms| format!("每 {} 一次", human_interval_zh(ms)),
    one_off: "一次性探测",
    since: |t| format!("自 {t} 起"),
    no_check: "没有检查记录",
    fails: |n| format!("失败 {n} 次"),
    role: |r| match r {
        "Started" => Some("运行中"),
        "Stopped" => Some("已停止"),
        "FAILED" => Some("失败"),
        "Starting" => Some("启动中"),
        "Stopping" => Some("停止中"),
        "idle" => Some("空闲（idle）"),
        "claiming" => Some("申请中（claiming）"),
        "holding" => Some("持有（holding）"),
        "self-fencing" => Some("正在自我隔离（self-fencing）"),
        "fenced" => Some("已隔离（fenced）"),
        _ => None,
    },
    day: "最近 24 小时",
    nothing: "最近 24 小时内没有记录。",
    planned: "计划内变更（无故障）",
    mail_after: |n| format!("之后邮件服务运行于 {n}"),
    seconds: |s| format!("{s:.1} 秒"),
    steps: "步骤",
    started_on: |r, n| format!("{r} 在 {n} 上启动"),
    fenced: |action, target, by, status| format!("{by} 隔离了 {target}（{action}）：{status}"),
    membership: |n, state| match state {
        "lost" => format!("节点 {n} 已离开集群（lost）"),
        "member" => format!("节点 {n} 已加入集群（member）"),
        _ => format!("节点 {n} 状态：{state}"),
    },
    stopped_on: |r, n| format!("{r} 在 {n} 上停止"),
    more_incidents: |n| format!("更早的 {n} 个事件：mailha history --since 24h"),
    no_quorum: "没有法定人数（quorum）：集群不会启动任何新资源。",
    maintenance_all: "维护模式：集群不启动、不停止、不监控任何资源：",
    unmanaged: |r| format!("{r} 未被托管：Pacemaker 不会启动或停止它"),
    maintenance_of: |r| format!("维护模式：{r} 既不受托管也不被监控："),
    watch_off: |s| format!("{s}：深度检查已关闭（只检查存活）："),
    fencing_off: "隔离（fencing）已关闭：没有防脑裂保护。",
    failed_op: |r, t, n, why| format!("{r} 的 {t} 操作在 {n} 上失败：{why}"),
    told_death: |r, n| format!("{r} 在 {n} 上自行终止（systemd 即时报告）"),
    leftover_ban: |r, n| format!("残留的禁止约束：{r} 不能在 {n} 上运行，会妨碍故障切换："),
    leftover_prefer: |r, n| format!("残留的偏好约束：{r} 固定在 {n} 上，会妨碍故障切换："),
    keeper_silent: |e| format!("租约守护进程没有应答，无法接管：{e}"),
    keeper_fenced: |why| format!("租约守护进程已隔离本节点，重启前无法接管：{why}"),
    keeper_idle: "租约守护进程没有持有租约，但 Pacemaker 在本节点上运行租约资源。",
    node_offline: |n| format!("{n} 离线：无法故障切换。"),
    node_unclean: |n| format!("{n} 状态不明（UNCLEAN）：Pacemaker 正等待隔离它。"),
    drift: "本节点的 mailha.toml 与集群正在运行的配置不同，请执行",
    or: " 或",
    spool_stuck: |n, age| format!("{n} 条告警事件已等待 {age} 未发送：发送程序是否在运行？"),
    refreshes: |s| format!("每 {s} 秒自动刷新"),
    served_by: |host, t| format!("{host}，{t} UTC"),
    duration: |s| format!("crm_mon 用时 {:.0} 毫秒", s * 1000.0),
};

fn words(l: Language) -> &'static Words {
    match l {
        Language::En => &EN,
        Language::ZhCn => &ZH,
    }
}

fn human_interval(ms: u64) -> String {
    match ms {
        ms if ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    }
}

fn human_interval_zh(ms: u64) -> String {
    match ms {
        ms if ms % 60_000 == 0 => format!("{} 分钟", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{} 秒", ms / 1000),
        ms => format!("{ms} 毫秒"),
    }
}

/// An age in the largest unit that keeps it short.
fn age(s: f64, l: Language) -> String {
    let s = s.max(0.0) as u64;
    match (l, s) {
        (Language::En, s) if s < 120 => format!("{s} s"),
        (Language::En, s) if s < 7200 => format!("{} min", s / 60),
        (Language::En, s) => format!("{} h", s / 3600),
        (Language::ZhCn, s) if s < 120 => format!("{s} 秒"),
        (Language::ZhCn, s) if s < 7200 => format!("{} 分钟", s / 60),
        (Language::ZhCn, s) => format!("{} 小时", s / 3600),
    }
}

/// The state as `mailha status` judges it: crm_mon's view with the
/// keeper's word, the CIB's leftovers and maintenance and the drift put
/// in, so `status::health` gives the
/// same verdict here as there.
pub fn judged(o: &Observed) -> Option<Status> {
    let mut st = o.cluster.clone()?;
    st.keeper = o.keeper.as_ref().map(|k| {
        let mut v = KeeperView::of(k.as_ref().map_err(String::as_str));
        v.judge(&st.resources);
        v
    });
    if let Some(c) = &o.cib {
        for l in &c.leftovers {
            if !st.leftover_moves.iter().any(|m| m.id == l.id) {
                st.leftover_moves.push(l.clone());
            }
        }
        st.maintenance = c.maintenance.clone();
        st.watch_off = c.watch_off.clone();
    }
    if let Some(drift) = o.config_drift {
        st.config = Some(status::ConfigState {
            drift,
            ..Default::default()
        });
    }
    Some(st)
}

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#1f2430;line-height:1.45;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;overflow-wrap:anywhere;word-break:break-word}
main{max-width:60rem;margin:0 auto;padding:.75rem}
.verdict{border-radius:.5rem;padding:.9rem 1.1rem;color:#fff}
.verdict h1{margin:0;font-size:1.9rem;letter-spacing:.02em}
.verdict p{margin:.2rem 0 0;font-size:1.15rem}
.verdict p.note{font-size:1rem;margin-top:.5rem}
.ok{background:#1e7b34}.degraded{background:#a85400}.down{background:#b00020}.stale{background:#575d68}
section{background:#fff;border-radius:.5rem;padding:.7rem 1rem;margin-top:.75rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:1rem;margin:0 0 .35rem;color:#4b5160;text-transform:uppercase;letter-spacing:.04em}
ul{list-style:none;margin:0;padding:0}
li{padding:.45rem 0;border-top:1px solid #eceef1}
li:first-child{border-top:0}
.attention{border-left:.35rem solid #b00020}
.attention li{position:relative;padding-left:1.1rem}
.attention li::before{content:'!';position:absolute;left:.2rem;font-weight:700;color:#b00020}
.name{font-weight:600}
.tag{display:inline-block;padding:0 .5rem;margin:0 .2rem;border-radius:.75rem;font-size:.85rem;background:#e6e8eb;white-space:nowrap}
.good{background:#d4edda;color:#155724}.warn{background:#fff0c2;color:#6b4800}.bad{background:#f8d7da;color:#721c24}
.detail{display:block;color:#545b68;font-size:.92rem}
.cause{display:block}
.part{white-space:nowrap}
.when{font-variant-numeric:tabular-nums;color:#545b68;font-size:.92rem;display:inline-block}
code{font:.9em ui-monospace,'SFMono-Regular',Menlo,Consolas,'Liberation Mono',monospace;background:#f0f1f3;padding:0 .25rem;border-radius:.2rem;display:inline-block}
details{margin-top:.2rem;font-size:.92rem;color:#545b68}
details ul{margin:.2rem 0 0 .5rem}
details li{padding:.15rem 0;border:0}
footer{margin:.9rem 0 1.5rem;color:#545b68;font-size:.85rem}
footer a{color:#1f4fa3}
";

/// The page.
pub fn render(p: &Page) -> String {
    let w = words(p.language);
    let o = p.observed;
    let stale = o.cluster.is_none();
    let shown = if stale { p.last_good } else { Some(o) };
    let st = shown.and_then(judged);
    let verdict = st.as_ref().map(status::health);
    let verdict_word = |v: &str| match v {
        "OK" => w.ok,
        "DEGRADED" => w.degraded,
        _ => w.down,
    };
    let where_ = match st.as_ref().map(|s| s.active_node.as_deref()) {
        Some(Some(n)) => (w.mail_on)(n),
        Some(None) => w.mail_nowhere.to_string(),
        None => String::new(),
    };
    let (class, headline) = match (stale, verdict) {
        (true, _) => ("stale", w.stale),
        (false, Some("OK")) => ("ok", w.ok),
        (false, Some("DEGRADED")) => ("degraded", w.degraded),
        (false, _) => ("down", w.down),
    };

    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_S}\">\n<title>{} · {} · mailha</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        w.tag,
        esc(headline),
        esc(if where_.is_empty() { w.title } else { &where_ }),
    );
    let _ = write!(
        h,
        "<header class=\"verdict {class}\">\n<h1>{}</h1>\n",
        esc(headline)
    );
    // Stale, the note says where the mail ran, with its age.
    if !where_.is_empty() && !stale {
        let _ = writeln!(h, "<p>{}</p>", esc(&where_));
    }
    if stale {
        let note = match verdict {
            Some(v) if where_.is_empty() => (w.stale_since)(
                &age(o.last_success_age_s.unwrap_or(0.0), p.language),
                verdict_word(v),
            ),
            Some(v) => (w.stale_since)(
                &age(o.last_success_age_s.unwrap_or(0.0), p.language),
                &format!("{} · {where_}", verdict_word(v)),
            ),
            None => w.stale_never.to_string(),
        };
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&note));
    }
    h.push_str("</header>\n");

    let warnings = warnings(w, p.language, o, st.as_ref());
    if !warnings.is_empty() {
        let _ = writeln!(
            h,
            "<section class=\"attention\">\n<h2>{}</h2>\n<ul>",
            esc(w.attention)
        );
        for (text, commands) in &warnings {
            // A command moves to the next line whole rather than break
            // at a hyphen; it wraps inside only when wider than the line.
            let commands: Vec<String> = commands
                .iter()
                .map(|c| format!("<code>{}</code>", esc(c)))
                .collect();
            let _ = writeln!(
                h,
                "<li>{} {}</li>",
                esc(text),
                commands.join(&format!("{} ", esc(w.or)))
            );
        }
        h.push_str("</ul>\n</section>\n");
    }
    if let Some(st) = &st {
        nodes(&mut h, w, st);
    }
    lease(&mut h, w, o, st.as_ref());
    if let Some(st) = &st {
        services(&mut h, w, st);
    }
    day(&mut h, w, p.incidents);

    let other = match p.language {
        Language::En => "<a href=\"?lang=zh-CN\" lang=\"zh-CN\">中文</a>",
        Language::ZhCn => "<a href=\"?lang=en\" lang=\"en\">English</a>",
    };
    let mut foot = vec![
        esc(&(w.served_by)(p.host, &history::utc(p.now_ms))),
        esc(&(w.refreshes)(REFRESH_S)),
    ];
    if !stale {
        foot.push(esc(&(w.duration)(o.duration_s)));
    }
    let _ = write!(
        h,
        "<footer>mailha · {} · {other} · <a href=\"metrics\">metrics</a></footer>\n</main>\n</body>\n</html>\n",
        foot.join(" · ")
    );
    h
}

/// What needs someone, worst first, as `mailha status` lists it.
/// Each with the commands that fix it, if any.
fn warnings(
    w: &Words,
    l: Language,
    o: &Observed,
    st: Option<&Status>,
) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = Vec::new();
    let plain = |text: String| (text, Vec::new());
    if let Some(st) = st {
        for n in &st.nodes {
            if n.unclean {
                v.push(plain((w.node_unclean)(&n.name)));
            } else if !n.online {
                v.push(plain((w.node_offline)(&n.name)));
            }
        }
        for a in crate::status::attention(st) {
            use crate::status::Attention as A;
            let text = match a {
                A::NoQuorum => w.no_quorum.to_string(),
                A::MaintenanceAll => w.maintenance_all.to_string(),
                A::MaintenanceOf(r) => (w.maintenance_of)(r),
                A::Unmanaged(r) => (w.unmanaged)(r),
                A::FencingOff => w.fencing_off.to_string(),
                A::Failed(f) if f.task == crate::status::TOLD_DEATH_TASK => {
                    (w.told_death)(&f.resource, &f.node)
                }
                A::Failed(f) => {
                    let why = if f.reason.is_empty() {
                        f.exit.clone()
                    } else {
                        format!("{} ({})", f.exit, f.reason)
                    };
                    (w.failed_op)(&f.resource, &f.task, &f.node, &why)
                }
                A::Leftover {
                    ban: true,
                    resource,
                    node,
                } => (w.leftover_ban)(resource, node),
                A::Leftover { resource, node, .. } => (w.leftover_prefer)(resource, node),
                A::WatchOff(s) => (w.watch_off)(s),
            };
            v.push((text, a.fix().into_iter().collect()));
        }
    }
    // The keeper is asked every time, stale or not: it is this node's.
    if let Some(k) = &o.keeper {
        let mut view = KeeperView::of(k.as_ref().map_err(String::as_str));
        if let Some(st) = st {
            view.judge(&st.resources);
        }
        if let Some(e) = &view.error {
            v.push(plain((w.keeper_silent)(e)));
        } else if let Some(why) = &view.self_fenced {
            v.push(plain((w.keeper_fenced)(why)));
        } else if matches!(view.role.as_deref(), Some("fenced" | "self-fencing")) {
            v.push(plain((w.keeper_fenced)(
                view.role.as_deref().unwrap_or("?"),
            )));
        } else if view.idle_against_its_will {
            v.push(plain(w.keeper_idle.to_string()));
        }
    }
    if o.config_drift == Some(true) {
        v.push((
            w.drift.to_string(),
            vec!["mailha apply".into(), "mailha config pull".into()],
        ));
    }
    if let Some(s) = &o.spool
        && let Some(a) = s.oldest_pending_age_s.filter(|a| *a > SPOOL_STUCK_S)
    {
        v.push(plain((w.spool_stuck)(s.pending, &age(a, l))));
    }
    v
}

fn nodes(h: &mut String, w: &Words, st: &Status) {
    let _ = writeln!(h, "<section>\n<h2>{}</h2>\n<ul>", esc(w.nodes));
    for n in &st.nodes {
        let (word, class) = if n.unclean {
            (w.unclean, "bad")
        } else if !n.online {
            (w.offline, "bad")
        } else if n.maintenance {
            (w.maintenance, "warn")
        } else if n.standby {
            (w.standby, "warn")
        } else {
            (w.online, "good")
        };
        let _ = write!(
            h,
            "<li><span class=\"name\">{}</span> <span class=\"tag {class}\">{}</span>",
            esc(&n.name),
            esc(word)
        );
        if st.dc.as_deref() == Some(n.name.as_str()) {
            let _ = write!(h, "<span class=\"tag\">{}</span>", esc(w.dc));
        }
        h.push_str("</li>\n");
    }
    h.push_str("</ul>\n</section>\n");
}

fn lease(h: &mut String, w: &Words, o: &Observed, st: Option<&Status>) {
    let on: Vec<&str> = st
        .map(|st| {
            st.resources
                .iter()
                .filter(|r| r.id == crate::cib::LEASE_ID && r.role == "Started")
                .flat_map(|r| r.nodes.iter().map(String::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut lines = Vec::new();
    match &o.keeper {
        Some(Ok(k)) => {
            lines.push(match (k.holds, k.peer_holding) {
                (true, _) => (w.held_by)(&k.node),
                (false, true) => (w.held_by)(&k.peer),
                (false, false) => w.held_by_nobody.to_string(),
            });
            lines.push((w.keeper_here)(
                &k.node,
                (w.role)(&k.role).unwrap_or(&k.role),
            ));
        }
        Some(Err(e)) => lines.push((w.keeper_silent)(e)),
        None if on.is_empty() => lines.push(w.lease_unused.to_string()),
        None => {}
    }
    if !on.is_empty() {
        lines.push((w.lease_resource_on)(&on.join(", ")));
    }
    let _ = writeln!(h, "<section>\n<h2>{}</h2>\n<ul>", esc(w.lease));
    for l in lines {
        let _ = writeln!(h, "<li>{}</li>", esc(&l));
    }
    h.push_str("</ul>\n</section>\n");
}

/// The mail's resources, in the order crm_mon lists them (the chain's),
/// each with its state and its last monitor where it runs.
fn services(h: &mut String, w: &Words, st: &Status) {
    let mut seen: Vec<&str> = Vec::new();
    let stack: Vec<&Resource> = st
        .resources
        .iter()
        // A group's members are the mail's too; a clone's instances are
        // not (`Resource::clone` names either).
        .filter(|r| history::is_stack(&r.id) && r.clone.as_deref() == r.more.group.as_deref())
        .filter(|r| {
            let first = !seen.contains(&r.id.as_str());
            seen.push(&r.id);
            first
        })
        .collect();
    if stack.is_empty() {
        return;
    }
    let _ = writeln!(h, "<section>\n<h2>{}</h2>\n<ul>", esc(w.services));
    for r in stack {
        let class = match r.role.as_str() {
            "Started" if r.managed => "good",
            "FAILED" => "bad",
            "Stopped" => "bad",
            _ => "warn",
        };
        let _ = write!(
            h,
            "<li><span class=\"name\">{}</span> <span class=\"tag {class}\">{}</span>",
            esc(&r.id),
            esc((w.role)(&r.role).unwrap_or(&r.role))
        );
        if !r.nodes.is_empty() {
            let _ = write!(h, " {}", esc(&r.nodes.join(", ")));
        }
        if r.fail_count > 0 {
            let _ = write!(
                h,
                " <span class=\"tag bad\">{}</span>",
                esc(&(w.fails)(r.fail_count))
            );
        }
        // Its last monitor where it runs, else wherever one is recorded.
        let monitored = |h: &&NodeHistory| h.resource == r.id && h.last_monitor.is_some();
        let probe = r
            .nodes
            .iter()
            .find_map(|n| st.history.iter().filter(monitored).find(|h| &h.node == n))
            .or_else(|| st.history.iter().find(monitored));
        let _ = writeln!(
            h,
            "<span class=\"detail\">{}</span></li>",
            probe_line(w, probe)
        );
    }
    h.push_str("</ul>\n</section>\n");
}

fn probe_line(w: &Words, h: Option<&NodeHistory>) -> String {
    let Some((node, p)) = h.and_then(|h| Some((&h.node, h.last_monitor.as_ref()?))) else {
        return esc(w.no_check);
    };
    let rc = if p.rc >= 0 {
        format!(" (rc {})", p.rc)
    } else {
        String::new()
    };
    let result = format!(
        "{}{rc}",
        if p.rc_text.is_empty() {
            "?"
        } else {
            &p.rc_text
        }
    );
    let class = if p.rc == 0 || p.rc == 8 {
        "good"
    } else {
        "bad"
    };
    let mut parts = vec![format!(
        "{} <span class=\"tag {class}\">{}</span>",
        esc(&(w.last_check)(node)),
        esc(&result)
    )];
    // Short parts stay whole ("0 ms" never split at a phone's edge).
    let whole = |t: String| format!("<span class=\"part\">{}</span>", esc(&t));
    if let Some(ms) = p.exec_ms {
        parts.push(whole((w.took)(ms)));
    }
    parts.push(whole(if p.interval_ms > 0 {
        (w.every)(p.interval_ms)
    } else {
        w.one_off.to_string()
    }));
    if let Some(t) = p.last_rc_change.as_deref() {
        parts.push(format!(
            "<span class=\"when\">{}</span>",
            esc(&(w.since)(t))
        ));
    }
    parts.join(" · ")
}

/// One history entry in the page's language (English as `mailha
/// history` says it); what has no parts is shown as recorded.
fn entry_words(w: &Words, e: &Entry) -> String {
    match (&e.detail, e.kind, &e.resource, &e.node) {
        (_, Kind::Started, Some(r), Some(n)) => (w.started_on)(r, n),
        (_, Kind::Stopped, Some(r), Some(n)) => (w.stopped_on)(r, n),
        (Some(Detail::Failed { task, .. }), _, Some(r), Some(n))
            if task == crate::status::TOLD_DEATH_TASK =>
        {
            (w.told_death)(r, n)
        }
        (Some(Detail::Failed { task, result }), _, Some(r), Some(n)) => {
            (w.failed_op)(r, task, n, result)
        }
        (Some(Detail::Fenced { action, by, status }), _, _, Some(n)) => {
            (w.fenced)(action, n, by, status)
        }
        (Some(Detail::Membership { state }), _, _, Some(n)) => (w.membership)(n, state),
        _ => e.what.clone(),
    }
}

fn day(h: &mut String, w: &Words, incidents: &[Incident]) {
    let _ = writeln!(h, "<section>\n<h2>{}</h2>", esc(w.day));
    if incidents.is_empty() {
        let _ = writeln!(h, "<p>{}</p>\n</section>", esc(w.nothing));
        return;
    }
    h.push_str("<ul>\n");
    // Newest first: the one that matters now is at the top.
    for i in incidents.iter().rev().take(MAX_INCIDENTS) {
        let cause = history::cause(&i.entries)
            .map(|e| entry_words(w, e))
            .unwrap_or_else(|| w.planned.to_string());
        let _ = write!(
            h,
            "<li><span class=\"when\">{} UTC · {}</span><span class=\"cause\">{}</span>",
            esc(&history::utc(i.start_ms)),
            esc(&(w.seconds)(i.seconds)),
            esc(&cause)
        );
        if let Some(n) = &i.mail_on {
            let _ = write!(
                h,
                "<span class=\"detail\">{}</span>",
                esc(&(w.mail_after)(n))
            );
        }
        let _ = write!(
            h,
            "<details><summary>{} ({})</summary><ul>",
            esc(w.steps),
            i.entries.len()
        );
        for e in &i.entries {
            let what = entry_words(w, e);
            let clock = history::utc(e.at_ms);
            let _ = write!(
                h,
                "<li><span class=\"when\">{}</span> {}</li>",
                esc(clock.rsplit(' ').next().unwrap_or_default()),
                esc(&what)
            );
        }
        h.push_str("</ul></details></li>\n");
    }
    if incidents.len() > MAX_INCIDENTS {
        let _ = writeln!(
            h,
            "<li>{}</li>",
            esc(&(w.more_incidents)(incidents.len() - MAX_INCIDENTS))
        );
    }
    h.push_str("</ul>\n</section>\n");
}
