//! The exporter's status page as a person sees it: rendered by headless
//! Chromium into PNGs at a desktop and a phone width, kept in
//! `target/status-page-screenshots/` for a human to look at.
//!
//! What is checked by machine: the page is self-contained (no script, no
//! external asset) and declares a viewport; Chromium renders it into PNGs
//! of the requested widths; and Chromium's own layout of it at a phone's
//! width puts every element inside the screen (no sideways scrolling),
//! hostile long names included. Whether it *reads* well is a person's
//! call: open the PNGs. Without Chromium the browser parts say SKIPPED,
//! except in CI (env CI) where they fail.

mod common;
use common::{chromium, have_chromium, png_size};
use mailha::config::model::Language;
use mailha::exporter::metrics::{Observed, SpoolDepth};
use mailha::exporter::page::{self, Page};
use mailha::ops::history::{Detail, Entry, GAP, Incident, Kind, incidents};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A phone's CSS width (an iPhone 12 to 15; most Androids are 360-412).
const PHONE: u32 = 390;

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("status-page-screenshots")
}

fn fixture(name: &str) -> mailha::status::Status {
    let path = format!(
        "{}/tests/fixtures/status/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    mailha::status::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A cluster after a failed Postfix monitor with a leftover ban, whose
/// failure carries a long unbroken path: what a phone must wrap.
fn observed() -> Observed {
    let mut st = fixture("failed.xml");
    st.failures[0].reason =
        "/srv/data/postfix/spool/pid/master.pid_names_pid_4242_which_is_gone_and_the_smtp_probe_of_127.0.0.1:25_was_refused"
            .into();
    let keeper = serde_json::from_value(serde_json::json!({
        "pid": 812, "node": "mail1", "node_id": 1, "peer": "mail2", "peer_id": 2,
        "cluster": "mail", "device": "/dev/disk/by-id/lease", "role": "holding",
        "holds": true, "wanted": true, "released": false, "counter": 4711,
        "renewal_age_ms": 250, "io_stalled_ms": null, "peer_unchanged_ms": 400,
        "peer_dead": false, "peer_holding": false, "peer_fenced": false,
        "host_dead_ms": 4500, "renew_ms": 500, "fence_pending": null, "fences": [],
        "self_fenced": null, "reset": "reboot"
    }))
    .unwrap();
    Observed {
        cluster: Some(st),
        keeper: Some(Ok(keeper)),
        spool: Some(SpoolDepth {
            pending: 3,
            outbox: 0,
            oldest_pending_age_s: Some(600.0),
            oldest_outbox_age_s: None,
        }),
        duration_s: 0.021,
        last_success_age_s: Some(0.0),
        config_drift: Some(true),
        ..Observed::default()
    }
}

/// 2026-11-25 16:03:28 UTC.
const T0: u64 = 1_795_622_608_000;

fn day() -> Vec<Incident> {
    let e = |s: i64, kind, node: &str, rsc: Option<&str>, what: &str| Entry {
        at_ms: (T0 as i64 + s * 1000) as u64,
        node: Some(node.into()),
        resource: rsc.map(str::to_string),
        kind,
        what: what.into(),
        source: "pacemaker",
        detail: None,
    };
    let mut all = [
        e(
            -7200,
            Kind::Stopped,
            "mail2",
            Some("vip"),
            "vip stopped on mail2",
        ),
        e(
            -7195,
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
    all[2].detail = Some(Detail::Failed {
        task: "monitor".into(),
        result: "not running".into(),
    });
    all[3].detail = Some(Detail::Fenced {
        action: "reboot".into(),
        by: "mail2".into(),
        status: "success".into(),
    });
    incidents(&all, GAP)
}

fn html(lang: Language, stale: bool) -> String {
    let good = observed();
    let now = Observed {
        cluster: None,
        last_success_age_s: Some(42.0),
        ..observed()
    };
    page::render(&Page {
        observed: if stale { &now } else { &good },
        last_good: stale.then_some(&good),
        incidents: &day(),
        language: lang,
        now_ms: T0 + 3_600_000,
        host: "mail1",
    })
}

fn pages() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (lang, tag) in [(Language::En, "en"), (Language::ZhCn, "zh-CN")] {
        v.push((format!("status-{tag}"), html(lang, false)));
        v.push((format!("stale-{tag}"), html(lang, true)));
    }
    v
}

#[test]
fn the_page_is_self_contained_and_declares_a_phone_viewport() {
    for (name, html) in pages() {
        assert!(
            html.contains("name=\"viewport\" content=\"width=device-width"),
            "{name}: no viewport meta: a phone would lay it out at desktop width"
        );
        assert!(html.contains("http-equiv=\"refresh\""), "{name}");
        assert!(
            !html.contains("<script"),
            "{name}: the page needs no script"
        );
        for external in ["src=", "href=\"http", "href=\"//", "@import", "url("] {
            assert!(!html.contains(external), "{name}: {external} in the page");
        }
        // A fixed width above a phone's makes it scroll sideways.
        let mut rest = html.as_str();
        while let Some(i) = rest.find("width:") {
            let px: String = rest[i + 6..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let unit = &rest[i + 6 + px.len()..];
            if !rest[..i].ends_with('-') && unit.starts_with("px") {
                assert!(px.parse::<u32>().unwrap() <= 360, "{name}: width:{px}px");
            }
            rest = &rest[i + 6..];
        }
        assert!(
            html.contains("overflow-wrap:anywhere"),
            "{name}: long values must wrap"
        );
    }
}

#[test]
fn the_page_rendered_by_chromium_at_desktop_and_phone_width() {
    if !have_chromium() {
        return;
    }
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, html) in pages() {
        let file = dir.join(format!("{name}.html"));
        std::fs::write(&file, &html).unwrap();
        for (what, w, h) in [("desktop", 1280, 1100), ("phone", PHONE, 2000)] {
            let png = dir.join(format!("{name}-{what}.png"));
            let _ = std::fs::remove_file(&png);
            chromium(
                &[
                    format!("--screenshot={}", png.display()),
                    format!("--window-size={w},{h}"),
                    format!("file://{}", file.display()),
                ],
                Stdio::null(),
            )
            .unwrap_or_else(|e| panic!("{name} {what}: {e}"));
            assert_eq!(png_size(&png), (w, h), "{}", png.display());
            println!("{}", png.display());
        }
    }
}

/// Chromium lays out a copy of the page in a box a phone wide and
/// reports, through `--dump-dom`, every element that sticks out of it or
/// whose content spills out of its box ("ok" when none does). A headless window is at least 500 px wide, so
/// the phone's width is given to the page's root box instead; the page
/// uses no viewport units or media queries that would tell the
/// difference. The served page has no script: only this test copy does.
fn phone_fit(dir: &Path, name: &str, html: &str) -> String {
    let probe = html
        .replace(
            "</style>",
            &format!("html{{width:{PHONE}px;overflow:hidden}}</style>"),
        )
        .replace(
            "</body>",
            &format!(
                "<script>(function(){{var w={PHONE},bad=[];\
                 document.querySelectorAll('body *').forEach(function(e){{\
                 var r=e.getBoundingClientRect();\
                 var spills=e.clientWidth>0&&e.scrollWidth>e.clientWidth+1;\
                 if(spills||(r.width>0&&(r.right>w+0.5||r.left<-0.5)))\
                 bad.push(e.tagName+'.'+e.className+' '+Math.round(r.left)+'..'+Math.round(r.right)+' '+e.textContent.slice(0,40));}});\
                 document.body.setAttribute('data-fit',bad.length?bad.join(' | '):'ok');}})();</script></body>"
            ),
        );
    let file = dir.join(format!("{name}-fit.html"));
    std::fs::write(&file, &probe).unwrap();
    let out = chromium(
        &[
            "--dump-dom".to_string(),
            "--window-size=1280,2000".to_string(),
            format!("file://{}", file.display()),
        ],
        Stdio::piped(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let dom = String::from_utf8_lossy(&out.stdout);
    dom.split("data-fit=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("{name}: chromium ran no layout check:\n{dom}"))
        .to_string()
}

#[test]
fn every_element_fits_a_phone_s_width_in_chromium_s_layout() {
    if !have_chromium() {
        return;
    }
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // The check itself sees a block wider than a phone, and a word too
    // long to break.
    let (_, status) = &pages()[0];
    for (what, bad) in [
        ("wide", "<div style=\"width:600px\">wide</div>"),
        (
            "nowrap",
            "<p style=\"white-space:nowrap\">a line that must not wrap and is far too long for any phone screen, and then some</p>",
        ),
    ] {
        let control = status.replacen("<main>", &format!("<main>{bad}"), 1);
        let fit = phone_fit(&dir, &format!("control-{what}"), &control);
        assert_ne!(fit, "ok", "the layout check missed a {what} element");
    }
    for (name, html) in pages() {
        assert!(!html.contains("vw") && !html.contains("@media"), "{name}");
        let fit = phone_fit(&dir, &name, &html);
        assert_eq!(fit, "ok", "{name}: sticks out of {PHONE} px");
    }
}
