use super::metrics::{LastFailover, Observed, SendFailures, SpoolDepth, parse_ctime, render};
use super::server::{Auth, Pages, Request, parse_request, route};
use super::spool_depth;
use crate::config::model::Language;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

fn fixture(name: &str) -> crate::status::Status {
    let path = format!(
        "{}/tests/fixtures/status/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    crate::status::parse(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn keeper_holding() -> crate::lease::client::Status {
    crate::lease::client::Status {
        pid: 812,
        node: "mail1".into(),
        node_id: 1,
        peer: "mail2".into(),
        peer_id: 2,
        cluster: "mail".into(),
        device: "/dev/lab/lease".into(),
        role: "holding".into(),
        holds: true,
        wanted: true,
        released: false,
        counter: 4711,
        renewal_age_ms: Some(250),
        io_stalled_ms: None,
        peer_unchanged_ms: Some(400),
        peer_dead: false,
        peer_holding: false,
        peer_fenced: false,
        host_dead_ms: 4500,
        renew_ms: 500,
        fence_pending: None,
        fences: vec![],
        self_fenced: None,
        reset: "reboot".into(),
        renewal_latency: Some({
            // A local disk with one slow write among them.
            let mut h = crate::lease::latency::Histogram::new();
            for us in [300, 400, 700, 900, 1200] {
                h.observe(std::time::Duration::from_micros(us));
            }
            h.observe(std::time::Duration::from_millis(40));
            h
        }),
        write_failures: 1,
    }
}

fn observed(cluster: Option<crate::status::Status>) -> Observed {
    Observed {
        cluster,
        keeper: Some(Ok(keeper_holding())),
        spool: Some(SpoolDepth {
            pending: 2,
            outbox: 1,
            oldest_pending_age_s: Some(12.5),
            oldest_outbox_age_s: Some(30.0),
        }),
        duration_s: 0.018,
        last_success_age_s: Some(0.0),
        scrapes_total: 7,
        scrape_failures_total: 1,
        last_change_unix: Some(1_796_501_861),
        config_drift: Some(false),
        cib: None,
        crm_history: Default::default(),
        alert_delivered: Some([("smtp".to_string(), 3), ("webhook".to_string(), 2)].into()),
        alert_quieted: Some(1),
        alert_send_failures: Some(
            [(
                "smtp".to_string(),
                SendFailures {
                    attempts: 4,
                    last_unix: 1_796_501_800.25,
                },
            )]
            .into(),
        ),
        last_failover: Some(LastFailover {
            start_unix: 1_795_622_608.0,
            seconds: Some(5.0),
            cause: "resource_failure",
            mail_on: "mail2".into(),
        }),
    }
}

/// The text exposition format, checked as Prometheus reads it: each
/// family's HELP and TYPE once and before its samples, samples of a
/// family together, names and label names valid, values numbers, no
/// series twice, counters named `_total`.
fn check_exposition(text: &str) -> Result<usize, String> {
    fn name_ok(s: &str) -> bool {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut typed: Vec<(String, String)> = Vec::new();
    let mut helped = BTreeSet::new();
    let mut series = BTreeSet::new();
    let mut closed = BTreeSet::new();
    let mut current = String::new();
    let mut samples = 0;
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !name_ok(name) || !helped.insert(name.to_string()) {
                return Err(at("bad or repeated HELP"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| at("TYPE"))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at("unknown type"));
            }
            if typed.iter().any(|(n, _)| n == name) {
                return Err(at("TYPE twice"));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(at("a counter not named _total"));
            }
            if !current.is_empty() {
                closed.insert(current.clone());
            }
            current = name.to_string();
            typed.push((name.to_string(), kind.to_string()));
        } else if line.starts_with('#') || line.is_empty() {
            return Err(at("stray line"));
        } else {
            let (s, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
            if !matches!(value, "+Inf" | "-Inf" | "NaN") && value.parse::<f64>().is_err() {
                return Err(at("value not a number"));
            }
            let name = s.split('{').next().unwrap();
            // A histogram's samples carry its name plus a suffix, and
            // each bucket its upper bound.
            let histogram = typed.last().is_some_and(|(_, k)| k == "histogram");
            let family = match histogram {
                true => ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|x| name.strip_suffix(x))
                    .ok_or_else(|| at("a histogram sample without _bucket, _sum or _count"))?,
                false => name,
            };
            if histogram && name.ends_with("_bucket") && !s.contains("le=\"") {
                return Err(at("a bucket without le"));
            }
            if family != current || closed.contains(family) {
                return Err(at("sample outside its family"));
            }
            if let Some(labels) = s.strip_prefix(name).filter(|l| !l.is_empty()) {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .ok_or_else(|| at("labels"))?;
                // label="value" pairs, values with \\ \" \n escapes.
                let mut rest = inner;
                while !rest.is_empty() {
                    let (k, v) = rest.split_once("=\"").ok_or_else(|| at("label"))?;
                    if !name_ok(k) || k.contains(':') {
                        return Err(at("label name"));
                    }
                    let mut end = None;
                    let mut esc = false;
                    for (j, c) in v.char_indices() {
                        match (esc, c) {
                            (true, '\\' | '"' | 'n') => esc = false,
                            (true, _) => return Err(at("bad escape")),
                            (false, '\\') => esc = true,
                            (false, '"') => {
                                end = Some(j);
                                break;
                            }
                            (false, '\n') => return Err(at("raw newline")),
                            _ => {}
                        }
                    }
                    let end = end.ok_or_else(|| at("unterminated value"))?;
                    rest = &v[end + 1..];
                    rest = rest.strip_prefix(',').unwrap_or(rest);
                }
            }
            if !series.insert(s.to_string()) {
                return Err(at("series twice"));
            }
            samples += 1;
        }
    }
    if typed.iter().any(|(n, _)| !helped.contains(n)) {
        return Err("a family without HELP".into());
    }
    Ok(samples)
}

#[test]
fn a_healthy_cluster_renders_as_ha_cluster_exporter_names_it() {
    let text = render(&observed(Some(fixture("healthy.xml"))));
    check_exposition(&text).unwrap();
    insta::assert_snapshot!("healthy", text);
}

#[test]
fn a_failed_cluster_with_a_leftover_ban_is_valid_exposition() {
    let st = fixture("failed.xml");
    let text = render(&observed(Some(st)));
    check_exposition(&text).unwrap();
    insta::assert_snapshot!("failed", text);
}

#[test]
fn every_fixture_renders_as_valid_exposition() {
    let dir = format!("{}/tests/fixtures/status", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(format!("{dir}/pacemaker-3.0")).unwrap())
    {
        let p = e.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(st) = crate::status::parse(&text) else {
            continue;
        };
        let out = render(&observed(Some(st)));
        check_exposition(&out).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        n += 1;
    }
    assert!(n >= 5, "only {n} fixtures");
}

#[test]
fn a_scrape_without_crm_mon_says_stale_and_serves_no_cluster_metric() {
    let mut o = observed(None);
    o.last_success_age_s = Some(42.0);
    o.keeper = Some(Err("the lease keeper (@mailha-lease) is not running".into()));
    o.spool = None;
    let text = render(&o);
    check_exposition(&text).unwrap();
    assert!(text.contains("\nmailha_scrape_ok 0\n"), "{text}");
    assert!(text.contains("\nmailha_scrape_last_success_age_seconds 42\n"));
    assert!(text.contains("ha_cluster_scrape_success{collector=\"pacemaker\"} 0"));
    assert!(text.contains("\nmailha_lease_keeper_up 0\n"));
    assert!(text.contains("\nmailha_alert_spool_up 0\n"));
    assert!(!text.contains("ha_cluster_pacemaker_nodes{"), "{text}");
}

#[test]
fn a_never_answered_crm_mon_is_infinitely_stale() {
    let mut o = observed(None);
    o.last_success_age_s = None;
    assert!(render(&o).contains("\nmailha_scrape_last_success_age_seconds +Inf\n"));
}

#[test]
fn label_values_are_escaped() {
    let mut st = fixture("healthy.xml");
    st.resources[0].id = "we\"ird\\id\nx".into();
    let text = render(&observed(Some(st)));
    check_exposition(&text).unwrap();
    assert!(text.contains(r#"resource="we\"ird\\id\nx""#));
}

#[test]
fn crm_mon_s_last_change_is_read_as_utc() {
    assert_eq!(parse_ctime("Thu Jan  1 00:00:00 1970"), Some(0));
    assert_eq!(parse_ctime("Sat Dec  5 20:17:41 2026"), Some(1_796_501_861));
    assert_eq!(parse_ctime("Tue Feb 29 12:00:00 2028"), Some(1_835_438_400));
    assert_eq!(parse_ctime(""), None);
    assert_eq!(parse_ctime("yesterday"), None);
}

#[test]
fn the_spool_depth_comes_from_its_listing_and_the_ids_times() {
    let d = tempfile::tempdir().unwrap();
    for sub in [
        "pending",
        "outbox/00000000000000000000-0000001-000000",
        "sent",
    ] {
        std::fs::create_dir_all(d.path().join(sub)).unwrap();
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    for id in [
        "00000000990000000-0000001-000000",
        "00000000995000000-0000001-000001",
    ] {
        std::fs::write(d.path().join("pending").join(format!("{id}.json")), "{}").unwrap();
    }
    let s = spool_depth(d.path(), now).unwrap();
    assert_eq!((s.pending, s.outbox), (2, 1));
    assert_eq!(s.oldest_pending_age_s, Some(10.0));
    assert_eq!(
        s.oldest_outbox_age_s,
        Some(1_000.0),
        "an incident id's time"
    );
    assert_eq!(spool_depth(&d.path().join("absent"), now), None);
}

fn pages() -> Pages<'static> {
    Pages {
        metrics: &|| "metrics\n".to_string(),
        status: &|l| format!("page {l:?}\n"),
        language: Language::En,
    }
}

fn get(path: &str, auth: Option<&str>) -> Request {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    Request {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        authorization: auth.map(str::to_string),
        accept_language: None,
    }
}

#[test]
fn basic_auth_admits_the_right_password_only() {
    use base64::Engine;
    let b64 = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    let a = Auth::new("prometheus", "s3cret");
    assert!(a.admits(Some(&b64("prometheus:s3cret"))));
    assert!(!a.admits(Some(&b64("prometheus:s3cre"))));
    assert!(!a.admits(Some(&b64("prometheus:s3cret "))));
    assert!(!a.admits(Some(&b64("other:s3cret"))));
    assert!(!a.admits(Some("Bearer x")));
    assert!(!a.admits(None));
    let m = pages();
    assert_eq!(
        route(&get("/metrics", None), Some(&a), &m).status,
        "401 Unauthorized"
    );
    let ok = route(
        &get("/metrics", Some(&b64("prometheus:s3cret"))),
        Some(&a),
        &m,
    );
    assert_eq!((ok.status, ok.body.as_str()), ("200 OK", "metrics\n"));
}

#[test]
fn only_reading_verbs_and_known_paths_are_served() {
    let m = pages();
    let mut post = get("/metrics", None);
    post.method = "POST".into();
    assert_eq!(route(&post, None, &m).status, "405 Method Not Allowed");
    assert_eq!(route(&get("/nope", None), None, &m).status, "404 Not Found");
    assert!(
        route(&get("/metrics", None), None, &m)
            .content_type
            .contains("version=0.0.4")
    );
}

#[test]
fn a_request_head_is_parsed_with_its_authorization() {
    let r = parse_request(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nauthorization: Basic eA==")
        .unwrap();
    assert_eq!(
        r,
        Request {
            method: "GET".into(),
            path: "/metrics".into(),
            query: "x=1".into(),
            authorization: Some("Basic eA==".into()),
            accept_language: None,
        }
    );
    assert_eq!(parse_request(b"\x16\x03\x01 binary"), None);
    assert_eq!(parse_request(b"GET /"), None);
}

#[test]
fn drift_is_this_node_s_file_against_the_digest_in_the_on_disk_cib() {
    let d = tempfile::tempdir().unwrap();
    let config = d.path().join("mailha.toml");
    let text = std::fs::read_to_string(format!(
        "{}/examples/postfix.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    std::fs::write(&config, &text).unwrap();
    let cfg = crate::config::load(&config).unwrap().config;
    let cib_file = d.path().join("cib.xml");
    let src = super::DriftSources {
        config: config.clone(),
        cib_file: cib_file.clone(),
    };
    let mut m = super::Memory::default();
    let drift = |m: &mut super::Memory| {
        super::on_disk_cib(&cib_file).and_then(|c| super::drift(&src, &c, m))
    };
    assert_eq!(drift(&mut m), None, "no CIB on disk: unknown");
    let applied = crate::cib::xml::El::new("cib").child(crate::cib::render_with_digest(&cfg));
    std::fs::write(&cib_file, applied.to_xml()).unwrap();
    assert_eq!(drift(&mut m), Some(false));
    let edited = text.replace("migration_threshold = 10", "migration_threshold = 3");
    assert_ne!(edited, text);
    std::fs::write(&config, edited).unwrap();
    assert_eq!(drift(&mut m), Some(true), "edited, not applied");
}

mod page {
    use super::*;
    use crate::exporter::page::{Page, judged, language, render};
    use crate::ops::history::{Detail, Entry, GAP, Kind, incidents};

    /// 2026-11-25 17:00:00 UTC: an hour after the fixtures' failover.
    const NOW_MS: u64 = 1_795_626_000_000;

    /// The failover the `failed.xml` fixture ends with, as the page's
    /// last 24 hours show it: the monitor fails, the node is fenced, the
    /// mail moves.
    fn failover() -> Vec<crate::ops::history::Incident> {
        // 2026-11-25 16:03:28 UTC, and seconds from it.
        let at = |s: i64| (1_795_622_608_000 + s * 1000) as u64;
        let e = |s, kind, node: &str, rsc: Option<&str>, what: &str| Entry {
            at_ms: at(s),
            node: Some(node.into()),
            resource: rsc.map(str::to_string),
            kind,
            what: what.into(),
            source: "pacemaker",
            detail: None,
        };
        let mut all = vec![
            e(
                -3600,
                Kind::Started,
                "mail1",
                Some("vip"),
                "vip started on mail1",
            ),
            e(
                0,
                Kind::Failure,
                "mail1",
                Some("svc-postfix"),
                "svc-postfix monitor failed on mail1: not running",
            ),
            e(
                3,
                Kind::Fence,
                "mail1",
                None,
                "reboot of mail1 by mail2: success",
            ),
            e(
                5,
                Kind::Started,
                "mail2",
                Some("vip"),
                "vip started on mail2",
            ),
        ];
        all[1].detail = Some(Detail::Failed {
            task: "monitor".into(),
            result: "not running".into(),
        });
        all[2].detail = Some(Detail::Fenced {
            action: "reboot".into(),
            by: "mail2".into(),
            status: "success".into(),
        });
        incidents(&all, GAP)
    }

    fn page(o: &Observed, last_good: Option<&Observed>, lang: Language) -> String {
        render(&Page {
            observed: o,
            last_good,
            incidents: &failover(),
            language: lang,
            now_ms: NOW_MS,
            host: "mail1",
        })
    }

    #[test]
    fn a_healthy_cluster_s_page_in_english() {
        let html = page(&observed(Some(fixture("healthy.xml"))), None, Language::En);
        assert!(html.contains("<h1>OK</h1>"), "{html}");
        insta::assert_snapshot!("page_healthy_en", html);
    }

    #[test]
    fn a_failed_service_and_a_leftover_ban_in_english_and_chinese() {
        let o = observed(Some(fixture("failed.xml")));
        let en = page(&o, None, Language::En);
        assert!(en.contains("class=\"verdict degraded\""), "{en}");
        assert!(en.contains("Leftover ban of svc-postfix on mail2"), "{en}");
        insta::assert_snapshot!("page_failed_en", en);
        let zh = page(&o, None, Language::ZhCn);
        assert!(zh.contains("<html lang=\"zh-CN\">"));
        assert!(zh.contains("降级 DEGRADED"), "{zh}");
        insta::assert_snapshot!("page_failed_zh_cn", zh);
    }

    #[test]
    fn the_verdict_is_the_one_mailha_status_gives_for_every_fixture() {
        let dir = format!("{}/tests/fixtures/status", env!("CARGO_MANIFEST_DIR"));
        for name in [
            "healthy.xml",
            "failed.xml",
            "node1-down.xml",
            "mail2-standby.xml",
            "mail2-no-ping.xml",
        ] {
            let st =
                crate::status::parse(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap())
                    .unwrap();
            let mut o = observed(Some(st));
            for keeper in [
                Some(Ok(keeper_holding())),
                Some(Err("refused".into())),
                None,
            ] {
                o.keeper = keeper;
                let cli = crate::status::health(&judged(&o).unwrap());
                let html = page(&o, None, Language::En);
                let class = cli.to_lowercase();
                assert!(
                    html.contains(&format!("class=\"verdict {class}\"")),
                    "{name}: mailha status says {cli}\n{html}"
                );
            }
        }
    }

    #[test]
    fn each_service_shows_its_last_monitor_where_it_runs() {
        let html = page(&observed(Some(fixture("failed.xml"))), None, Language::En);
        let postfix = html
            .lines()
            .find(|l| l.contains(">svc-postfix<"))
            .expect("svc-postfix listed");
        assert!(postfix.contains("last check on mail1:"), "{postfix}");
        assert!(postfix.contains("not running (rc 7)"), "{postfix}");
        assert!(postfix.contains("every 2 s"), "{postfix}");
        assert!(postfix.contains("tag bad"), "{postfix}");
        assert!(!html.contains(">ping<"), "the clones are not the mail's");
        assert!(!html.contains(">fence-mail1<"));
    }

    #[test]
    fn a_failed_crm_mon_gives_a_page_marked_stale_with_the_last_answer() {
        let good = observed(Some(fixture("healthy.xml")));
        let mut now = observed(None);
        now.last_success_age_s = Some(95.0);
        let html = page(&now, Some(&good), Language::En);
        assert!(html.contains("class=\"verdict stale\""), "{html}");
        assert!(html.contains("<h1>STALE</h1>"));
        assert!(
            html.contains("from 95 s ago: OK · The mail runs on mail1"),
            "{html}"
        );
        assert!(html.contains(">mail1<"), "the last nodes are still shown");
        insta::assert_snapshot!("page_stale_en", html);
        let never = page(&now, None, Language::ZhCn);
        assert!(never.contains("数据过时 STALE"));
        assert!(never.contains("集群状态未知"), "{never}");
        assert!(!never.contains("<h2>节点</h2>"));
    }

    #[test]
    fn what_mailha_status_reads_from_the_cib_counts_here_too() {
        let mut st = fixture("healthy.xml");
        let mysql = st
            .resources
            .iter_mut()
            .find(|r| r.id == "svc-mysql")
            .unwrap();
        mysql.managed = false;
        let mut o = observed(Some(st));
        o.cib = Some(crate::exporter::metrics::CibView {
            leftovers: vec![crate::status::LeftoverMove {
                id: "cli-prefer-vip".into(),
                resource: "vip".into(),
                node: "mail2".into(),
            }],
            maintenance: vec!["svc-mysql".into()],
            watch_off: vec!["postfix".into()],
        });
        let html = page(&o, None, Language::En);
        assert!(html.contains("class=\"verdict degraded\""), "{html}");
        assert!(
            html.contains("Leftover preference of vip for mail2: it defeats failover: <code>crm_resource --clear -r vip</code>"),
            "{html}"
        );
        assert!(html.contains(
            "MAINTENANCE: svc-mysql is neither managed nor monitored: <code>mailha maintenance off svc-mysql</code>"
        ));
        assert!(
            html.contains(
                "postfix: watch off (liveness only): <code>mailha watch on postfix</code>"
            )
        );
        let st = judged(&o).unwrap();
        assert_eq!(crate::status::health(&st), "DEGRADED");
        assert_eq!(st.leftover_moves.len(), 1);
    }

    #[test]
    fn the_cib_view_comes_from_pacemaker_s_on_disk_cib() {
        let path = format!(
            "{}/tests/fixtures/status/cib-failed.xml",
            env!("CARGO_MANIFEST_DIR")
        );
        let cib = crate::exporter::on_disk_cib(std::path::Path::new(&path)).unwrap();
        let v = crate::exporter::metrics::CibView::of(&cib);
        let ids: Vec<&str> = v.leftovers.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["cli-ban-svc-postfix-on-mail2"]);
        assert!(v.maintenance.is_empty() && v.watch_off.is_empty(), "{v:?}");
    }

    #[test]
    fn names_and_reasons_from_crm_mon_are_escaped() {
        let mut st = fixture("failed.xml");
        let evil = "<script>alert(\"x\")</script>";
        st.nodes[0].name = evil.into();
        st.active_node = Some(evil.into());
        st.resources.last_mut().unwrap().id = "svc-'\"><img src=x onerror=alert(1)>".into();
        st.failures[0].reason = "</li><script>steal()</script> & more".into();
        let mut o = observed(Some(st));
        o.keeper = Some(Err("<b>bold</b>".into()));
        for lang in [Language::En, Language::ZhCn] {
            let html = page(&o, None, lang);
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("<img"), "{html}");
            assert!(!html.contains("<b>"), "{html}");
            assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
            assert!(html.contains("svc-&#39;&quot;&gt;&lt;img"));
            assert!(html.contains("&lt;/li&gt;&lt;script&gt;steal()&lt;/script&gt; &amp; more"));
        }
    }

    #[test]
    fn the_language_is_asked_for_else_the_browser_s_else_the_config_s() {
        let zh = Language::ZhCn;
        let en = Language::En;
        assert_eq!(language("lang=zh-CN", Some("en-US"), en), zh);
        assert_eq!(language("x=1&lang=en", Some("zh-CN"), zh), en);
        assert_eq!(language("", Some("zh-CN,zh;q=0.9,en;q=0.8"), en), zh);
        assert_eq!(language("", Some("en-GB,en;q=0.9,zh-CN;q=0.8"), zh), en);
        assert_eq!(language("", Some("de-DE,zh;q=0.5,en;q=0.3"), en), zh);
        assert_eq!(language("", Some("fr"), zh), zh);
        assert_eq!(language("lang=fr", None, zh), zh);
        assert_eq!(language("", Some("zh;q=0"), en), en);
    }

    #[test]
    fn the_page_is_served_at_the_root_as_html_in_the_language_asked() {
        let m = pages();
        let r = route(&get("/?lang=zh-CN", None), None, &m);
        assert_eq!(r.status, "200 OK");
        assert_eq!(r.content_type, "text/html; charset=utf-8");
        assert_eq!(r.body, "page ZhCn\n");
        let mut req = get("/", None);
        req.accept_language = Some("zh-CN,zh;q=0.9".into());
        assert_eq!(route(&req, None, &m).body, "page ZhCn\n");
        assert_eq!(route(&get("/", None), None, &m).body, "page En\n");
        let a = Auth::new("prometheus", "s3cret");
        assert_eq!(
            route(&get("/", None), Some(&a), &m).status,
            "401 Unauthorized",
            "the page is behind the same auth as the metrics"
        );
    }
}

/// Pacemaker's operation history as a real failover leaves it: mail1's
/// postfix monitor failed (2.4 s, rc 7), the stack moved to mail2, mail1
/// was fenced; mail2 probed fs-data (not running there) before.
const FAILOVER: &str = r#"<pacemaker-result>
<summary><cluster_options stonith-enabled="true"/></summary>
<node_history>
  <node name="mail1">
    <resource_history id="svc-postfix" orphan="false" fail-count="1">
      <operation_history call="3" task="monitor" rc="0" rc_text="ok" interval="10000ms" last-rc-change="Wed Nov 25 16:00:01 2026" exec-time="31ms" queue-time="0ms"/>
      <operation_history call="29" task="monitor" rc="7" rc_text="not running" interval="10000ms" last-rc-change="Wed Nov 25 16:03:28 2026" exec-time="2400ms" queue-time="0ms"/>
    </resource_history>
    <resource_history id="vip" orphan="false">
      <operation_history call="30" task="stop" rc="0" rc_text="ok" last-rc-change="Wed Nov 25 16:03:30 2026" exec-time="20ms" queue-time="0ms"/>
    </resource_history>
  </node>
  <node name="mail2">
    <resource_history id="fs-data" orphan="false">
      <operation_history call="2" task="monitor" rc="7" rc_text="not running" interval="0ms" last-rc-change="Wed Nov 25 15:00:00 2026" exec-time="12ms" queue-time="0ms"/>
      <operation_history call="12" task="start" rc="0" rc_text="ok" last-rc-change="Wed Nov 25 16:03:31 2026" exec-time="900ms" queue-time="0ms"/>
      <operation_history call="13" task="monitor" rc="0" rc_text="ok" interval="20000ms" last-rc-change="Wed Nov 25 16:03:32 2026" exec-time="180ms" queue-time="0ms"/>
    </resource_history>
    <resource_history id="vip"><operation_history call="14" task="start" rc="0" rc_text="ok" last-rc-change="Wed Nov 25 16:03:33 2026" exec-time="40ms" queue-time="0ms"/></resource_history>
  </node>
</node_history>
<fence_history>
  <fence_event action="reboot" target="mail1" delegate="mail2" status="success" completed="2026-11-25 16:03:29Z"/>
</fence_history>
</pacemaker-result>"#;

fn sample(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')
            .map(str::to_string)
    })
}

#[test]
fn each_resource_s_latest_monitor_on_each_node_is_its_probe_result() {
    let st = crate::status::parse(FAILOVER).unwrap();
    let text = render(&observed(Some(st)));
    check_exposition(&text).unwrap();
    let at =
        |m: &str, r: &str, n: &str| sample(&text, &format!("{m}{{resource=\"{r}\",node=\"{n}\"}}"));
    // The failed recurring monitor, not the older good one.
    assert_eq!(
        at("mailha_probe_ok", "svc-postfix", "mail1").as_deref(),
        Some("0")
    );
    assert_eq!(
        at("mailha_probe_exit_code", "svc-postfix", "mail1").as_deref(),
        Some("7")
    );
    assert_eq!(
        at("mailha_probe_duration_seconds", "svc-postfix", "mail1").as_deref(),
        Some("2.4")
    );
    // The storage probe: the recurring monitor after the start.
    assert_eq!(
        at("mailha_probe_ok", "fs-data", "mail2").as_deref(),
        Some("1")
    );
    assert_eq!(
        at("mailha_probe_duration_seconds", "fs-data", "mail2").as_deref(),
        Some("0.18")
    );
    assert_eq!(
        at(
            "mailha_probe_last_change_timestamp_seconds",
            "fs-data",
            "mail2"
        )
        .as_deref(),
        Some("1795622612")
    );
    // A resource with no monitor recorded on a node has no probe series.
    assert_eq!(at("mailha_probe_ok", "vip", "mail1"), None);
}

#[test]
fn a_probe_s_not_running_is_the_right_answer_a_recurring_monitor_s_is_not() {
    use crate::status::MonitorRun;
    let probe = MonitorRun {
        rc: 7,
        interval_ms: 0,
        ..MonitorRun::default()
    };
    let monitor = MonitorRun {
        rc: 7,
        interval_ms: 10_000,
        ..MonitorRun::default()
    };
    assert!(probe.ok());
    assert!(!monitor.ok());
    assert!(
        MonitorRun {
            rc: 8,
            interval_ms: 10_000,
            ..MonitorRun::default()
        }
        .ok()
    );
}

#[test]
fn the_last_failover_is_the_latest_incident_with_a_cause_where_the_vip_started() {
    let crm = crate::ops::history::from_crm_mon(FAILOVER).unwrap();
    let f = super::last_failover(crm, Vec::new()).unwrap();
    assert_eq!(f.cause, "resource_failure");
    assert_eq!(f.mail_on, "mail2");
    assert_eq!(
        f.seconds,
        Some(5.0),
        "from the failed monitor to the VIP's start"
    );
}

/// A history entry `s` seconds into a failover on 2026-11-25.
fn entry_at(
    s: u64,
    kind: crate::ops::history::Kind,
    node: &str,
    rsc: Option<&str>,
) -> crate::ops::history::Entry {
    crate::ops::history::Entry {
        at_ms: 1_795_622_608_000 + s * 1000,
        node: Some(node.into()),
        resource: rsc.map(str::to_string),
        kind,
        what: String::new(),
        source: "pacemaker",
        detail: None,
    }
}

#[test]
fn a_failover_lasts_until_the_mail_is_up_not_until_the_lost_node_rejoins() {
    use crate::ops::history::Kind;
    let e = entry_at;
    // A power cut of mail1: lost at 0 s, fenced at 3, the chain up on
    // mail2 by 7; mail1 boots and rejoins at 30 and its clones start at
    // 32, all within one incident.
    let entries = vec![
        e(0, Kind::Node, "mail1", None),
        e(3, Kind::Fence, "mail1", None),
        e(6, Kind::Started, "mail2", Some("vip")),
        e(7, Kind::Started, "mail2", Some("svc-postfix")),
        e(30, Kind::Node, "mail1", None),
        e(32, Kind::Started, "mail1", Some("alert-sender-clone")),
    ];
    let f = super::last_failover(entries, Vec::new()).unwrap();
    assert_eq!((f.cause, f.mail_on.as_str()), ("node_lost", "mail2"));
    assert_eq!(f.seconds, Some(7.0), "from the loss to postfix up on mail2");
    assert_eq!(f.start_unix, 1_795_622_608.0);

    // The node that was lost knows its loss only from the fence's
    // completion, after the mail was already up on mail2: no duration
    // (this reported 0 s on the rebooted node in lab_metrics).
    let rebooted = vec![
        e(6, Kind::Started, "mail2", Some("vip")),
        e(7, Kind::Started, "mail2", Some("svc-postfix")),
        e(9, Kind::Fence, "mail1", None),
        e(30, Kind::Node, "mail1", None),
    ];
    let f = super::last_failover(rebooted, Vec::new()).unwrap();
    assert_eq!((f.cause, f.seconds), ("fencing", None));
    let text = super::metrics::render(&Observed {
        last_failover: Some(f),
        ..observed(Some(crate::status::parse(FAILOVER).unwrap()))
    });
    assert!(text.contains("mailha_last_failover_info{"), "{text}");
    assert!(
        !text.contains("mailha_last_failover_duration_seconds"),
        "{text}"
    );
}

#[test]
fn a_failure_after_the_mail_moved_is_not_the_failover_s_cause() {
    use crate::ops::history::Kind;
    let e = entry_at;
    // What the powered-off node saw once it booted, before its fencer
    // had the fence's record (lab_metrics in CI reported this as
    // resource_failure): the mail up on mail2, then a probe of its own
    // that failed.
    let rebooted = vec![
        e(6, Kind::Started, "mail2", Some("vip")),
        e(7, Kind::Started, "mail2", Some("svc-postfix")),
        e(25, Kind::Failure, "mail1", Some("svc-mysql")),
    ];
    assert_eq!(super::last_failover(rebooted.clone(), Vec::new()), None);
    // Once the fence's record arrives, it is the cause.
    let mut known = rebooted;
    known.push(e(9, Kind::Fence, "mail1", None));
    known.sort_by_key(|e| e.at_ms);
    let f = super::last_failover(known, Vec::new()).unwrap();
    assert_eq!((f.cause, f.mail_on.as_str()), ("fencing", "mail2"));
    // A failure before the VIP's start still is.
    let moved = vec![
        e(0, Kind::Failure, "mail1", Some("svc-postfix")),
        e(6, Kind::Started, "mail2", Some("vip")),
        e(7, Kind::Started, "mail2", Some("svc-postfix")),
    ];
    let f = super::last_failover(moved, Vec::new()).unwrap();
    assert_eq!((f.cause, f.seconds), ("resource_failure", Some(7.0)));
}

#[test]
fn a_failover_chained_to_earlier_activity_begins_at_its_own_cause() {
    use crate::ops::history::{Detail, Kind};
    let e = entry_at;
    let joined = |s: u64, node: &str| crate::ops::history::Entry {
        detail: Some(Detail::Membership {
            state: "member".into(),
        }),
        ..e(s, Kind::Node, node, None)
    };
    // What mail1 had seen in lab_metrics when CI failed: the cluster
    // formed, a monitor failed and recovered in place, a switchover to
    // mail2, then mail2's power cut; no gap of 30 s anywhere, so it is
    // all one incident. The failover is the power cut's, at 55 s, not
    // mail2's join at boot nor the old monitor failure.
    let entries = vec![
        joined(0, "mail2"),
        e(5, Kind::Started, "mail1", Some("vip")),
        e(15, Kind::Failure, "mail1", Some("svc-mysql")),
        e(17, Kind::Started, "mail1", Some("svc-mysql")),
        e(25, Kind::Stopped, "mail1", Some("vip")),
        e(28, Kind::Started, "mail2", Some("vip")),
        e(55, Kind::Node, "mail2", None),
        e(58, Kind::Fence, "mail2", None),
        e(60, Kind::Started, "mail1", Some("vip")),
        e(61, Kind::Started, "mail1", Some("svc-postfix")),
        joined(80, "mail2"),
    ];
    let f = super::last_failover(entries, Vec::new()).unwrap();
    assert_eq!((f.cause, f.mail_on.as_str()), ("node_lost", "mail1"));
    assert_eq!(f.start_unix, 1_795_622_608.0 + 55.0);
    assert_eq!(f.seconds, Some(6.0));
}

#[test]
fn a_node_lost_only_the_spool_remembers_is_the_cause_after_a_cleanup() {
    // crm_mon after `crm_resource --cleanup`: the failure is gone, only
    // the moves remain; the spool kept the node's loss.
    let cleaned = FAILOVER
        .lines()
        .filter(|l| !l.contains("rc=\"7\"") && !l.contains("fence_event"))
        .collect::<Vec<_>>()
        .join("\n");
    let crm = crate::ops::history::from_crm_mon(&cleaned).unwrap();
    assert_eq!(
        super::last_failover(crm.clone(), Vec::new()),
        None,
        "a planned move"
    );
    let lost: crate::alert::event::Event = serde_json::from_value(serde_json::json!({
        "kind": "node", "host": "mail2", "node": "mail1", "desc": "lost",
        "recorded_at_ms": crate::ops::history::parse_time("Wed Nov 25 16:03:29 2026").unwrap(),
    }))
    .unwrap();
    let f = super::last_failover(crm, crate::ops::history::from_events(&[lost])).unwrap();
    assert_eq!((f.cause, f.mail_on.as_str()), ("node_lost", "mail2"));
}

/// An empty spool in a temporary directory and a node event to record.
fn spool_and_event() -> (
    tempfile::TempDir,
    crate::alert::spool::Spool,
    crate::alert::event::Event,
) {
    let d = tempfile::tempdir().unwrap();
    let spool = crate::alert::spool::Spool::open(d.path()).unwrap();
    let e = crate::alert::event::Event::new(
        crate::alert::event::Kind::Node,
        "mail2",
        SystemTime::now(),
    );
    (d, spool, e)
}

#[test]
fn deliveries_per_channel_come_from_the_spool_s_done_marks_and_sent_is_read_once() {
    let (d, spool, e) = spool_and_event();
    let first = spool.record(&e).unwrap();
    spool.claim(std::slice::from_ref(&first)).unwrap();
    spool.mark_done(&first, "smtp").unwrap();
    spool.mark_done(&first, "webhook").unwrap();
    spool.finish(&first).unwrap();
    let second = spool.record(&e).unwrap();
    spool.claim(std::slice::from_ref(&second)).unwrap();
    spool.mark_done(&second, "smtp").unwrap();
    spool.record(&e).unwrap();
    let mut sent = super::Sent::default();
    let r = super::spool_records(d.path(), &mut sent).unwrap();
    assert_eq!(r.fresh.len(), 2, "pending and outbox");
    assert_eq!(sent.incidents.len(), 1, "sent");
    assert_eq!(
        r.delivered,
        [("smtp".to_string(), 2), ("webhook".to_string(), 1)].into()
    );
    // A sent incident never changes: the second look keeps what it read.
    let generation = sent.generation;
    std::fs::remove_file(d.path().join("sent").join(&first).join("done-webhook")).unwrap();
    let again = super::spool_records(d.path(), &mut sent).unwrap();
    assert_eq!(again.delivered, r.delivered);
    assert_eq!(sent.generation, generation, "nothing new in sent/");
    assert!(super::spool_records(&d.path().join("absent"), &mut sent).is_none());
}

#[test]
fn a_repeat_kept_back_counts_as_quieted_and_as_delivered_by_no_channel() {
    let (d, spool, e) = spool_and_event();
    let mailed = spool.record(&e).unwrap();
    spool.claim(std::slice::from_ref(&mailed)).unwrap();
    spool.mark_done(&mailed, "smtp").unwrap();
    spool.finish(&mailed).unwrap();
    // The same failure again within 30 minutes: kept back, into sent/.
    let repeat = spool.record(&e).unwrap();
    spool.claim(std::slice::from_ref(&repeat)).unwrap();
    spool.quiet(&repeat).unwrap();
    // A third, still in the outbox: not decided yet.
    let third = spool.record(&e).unwrap();
    spool.claim(std::slice::from_ref(&third)).unwrap();
    let mut sent = super::Sent::default();
    let r = super::spool_records(d.path(), &mut sent).unwrap();
    assert_eq!(r.quieted, 1);
    assert_eq!(r.delivered, [("smtp".to_string(), 1)].into());
    let text = super::metrics::render(&Observed {
        alert_quieted: Some(r.quieted),
        ..observed(None)
    });
    assert!(
        text.contains("\nmailha_alert_quieted_incidents_total 1\n"),
        "{text}"
    );
}

#[test]
fn failed_sends_per_channel_come_from_the_spool_s_failure_records_and_survive_delivery() {
    let d = tempfile::tempdir().unwrap();
    let spool = crate::alert::spool::Spool::open(d.path()).unwrap();
    let e = crate::alert::event::Event::new(
        crate::alert::event::Kind::Fenced,
        "mail2",
        SystemTime::now(),
    );
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    // The relay was down for the first incident, which went out later.
    let first = spool.record(&e).unwrap();
    spool.claim(std::slice::from_ref(&first)).unwrap();
    spool.mark_failed(&first, "smtp", at(1_000)).unwrap();
    spool.mark_failed(&first, "smtp", at(1_005)).unwrap();
    spool.mark_done(&first, "smtp").unwrap();
    spool.mark_done(&first, "webhook").unwrap();
    spool.finish(&first).unwrap();
    // The webhook refuses the second, which still waits.
    let second = spool.record(&e).unwrap();
    spool.claim(std::slice::from_ref(&second)).unwrap();
    spool.mark_done(&second, "smtp").unwrap();
    spool.mark_failed(&second, "webhook", at(2_000)).unwrap();
    let mut sent = super::Sent::default();
    let r = super::spool_records(d.path(), &mut sent).unwrap();
    let f = |attempts, last_unix| SendFailures {
        attempts,
        last_unix,
    };
    assert_eq!(
        r.failed,
        [
            ("smtp".to_string(), f(2, 1_005.0)),
            ("webhook".to_string(), f(1, 2_000.0))
        ]
        .into()
    );
    // The waiting incident keeps failing: counted again on the next look.
    spool.mark_failed(&second, "webhook", at(2_010)).unwrap();
    let r = super::spool_records(d.path(), &mut sent).unwrap();
    assert_eq!(r.failed["webhook"], f(2, 2_010.0));
    assert_eq!(r.failed["smtp"], f(2, 1_005.0), "sent/ keeps its count");

    let text = render(&Observed {
        alert_send_failures: Some(r.failed),
        ..Observed::default()
    });
    check_exposition(&text).unwrap();
    for line in [
        "# TYPE mailha_alert_send_failures_total counter",
        "mailha_alert_send_failures_total{channel=\"smtp\"} 2",
        "mailha_alert_send_failures_total{channel=\"webhook\"} 2",
        "# TYPE mailha_alert_last_send_failure_timestamp_seconds gauge",
        "mailha_alert_last_send_failure_timestamp_seconds{channel=\"webhook\"} 2010",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

#[test]
fn an_incident_moving_to_sent_while_the_spool_is_listed_is_counted_once() {
    let (d, spool, e) = spool_and_event();
    let id = spool.record(&e).unwrap();
    spool.claim(std::slice::from_ref(&id)).unwrap();
    spool.mark_failed(&id, "smtp", SystemTime::now()).unwrap();
    spool.mark_done(&id, "smtp").unwrap();
    // As the exporter may see it mid-rename: listed in outbox/ and, a
    // moment later, in sent/.
    let sent_dir = d.path().join("sent").join(&id);
    std::fs::create_dir(&sent_dir).unwrap();
    for f in std::fs::read_dir(d.path().join("outbox").join(&id)).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), sent_dir.join(f.file_name())).unwrap();
    }
    let r = super::spool_records(d.path(), &mut super::Sent::default()).unwrap();
    assert_eq!(r.delivered, [("smtp".to_string(), 1)].into());
    assert_eq!(r.failed["smtp"].attempts, 1);
}
