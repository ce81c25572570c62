//! The incident mail's HTML as a person sees it: rendered by headless
//! Chromium into PNGs at a desktop and a phone width, kept as test
//! artifacts in `target/alert-screenshots/` for a human to look at.
//!
//! What is checked by machine: Chromium rendered each mail into a PNG of
//! the requested width, and the HTML itself is fit for a phone (a
//! viewport meta tag, no fixed widths wider than a phone, long unbroken
//! values allowed to wrap). Whether it *reads* well is a person's call:
//! open the PNGs. Without Chromium the test says SKIPPED, except in CI
//! (env CI) where it fails.

mod common;
use common::{chromium, have_chromium, png_size};
use mailha::alert::compose::{self, Incident};
use mailha::alert::event::{Event, Kind};
use mailha::config::model::{Alerts, Language};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

fn out_dir() -> PathBuf {
    // CARGO_TARGET_DIR when set (the helpers' own target dirs), else
    // ./target.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("alert-screenshots")
}

fn alerts(language: Language) -> Alerts {
    Alerts {
        customer: match language {
            Language::En => "ACME Mail".into(),
            Language::ZhCn => "ACME 中国".into(),
        },
        language,
        subject: None,
        advice: Some(match language {
            Language::En => "Check node1's disk and power; the mail runs on node2 meanwhile. Call the on-duty admin at +1 555 0100 if node1 does not come back within 30 minutes.".into(),
            Language::ZhCn => "请检查 node1 的磁盘和电源；邮件服务已在 node2 上运行。若 30 分钟内 node1 未恢复，请致电值班管理员。".into(),
        }),
        batch_window: Duration::from_secs(10),
        smtp: None,
        webhook: None,
        command: None,
        diagnostics: Default::default(),
    }
}

/// A realistic incident: a monitor failure with a long hostile
/// description, a fencing, a switchover.
fn incident() -> Incident {
    let now = SystemTime::now();
    let ev = |kind: Kind, f: &dyn Fn(&mut Event)| {
        let mut e = Event::new(kind, "node2", now);
        f(&mut e);
        e
    };
    let events = vec![
        ev(Kind::Resource, &|e| {
            e.node = Some("node1".into());
            e.rsc = Some("svc-postfix".into());
            e.task = Some("monitor".into());
            e.interval_ms = Some(2000);
            e.rc = Some(7);
            e.target_rc = Some(0);
            e.desc = Some("not running: /srv/data/postfix/pid/master.pid names pid 4242, which is gone; smtp probe 127.0.0.1:25 refused the connection after 5s".into());
            e.timestamp = Some("2026-11-30T22:41:07.120345Z".into());
        }),
        ev(Kind::Fencing, &|e| {
            e.node = Some("node1".into());
            e.task = Some("reboot".into());
            e.rc = Some(0);
            e.desc = Some("Operation reboot of node1 by node2 for pacemaker-controld.1234@node2.5f2b1c7e-aaaa-bbbb-cccc-0123456789ab: OK".into());
            e.timestamp = Some("2026-11-30T22:41:09.500000Z".into());
        }),
        ev(Kind::Switchover, &|e| {
            e.node = Some("node2".into());
            e.desc = Some("the mail service moved from node1 to node2".into());
        }),
    ];
    Incident {
        id: "00001764542467120345-0004242-000001".into(),
        events: events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("0000176454246712034{i}-0004242-00000{i}"), e))
            .collect(),
        repeats: None,
        host: "node2".into(),
        running_on: Some("node2".into()),
        diagnostics: "crm_mon ...\n".into(),
    }
}

/// Chromium's screenshot of `html` at `width` x `height` into `png`.
fn render(html: &Path, png: &Path, width: u32, height: u32) -> Result<(), String> {
    chromium(
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={width},{height}"),
            format!("file://{}", html.display()),
        ],
        Stdio::null(),
    )
    .map(drop)
}

#[test]
fn the_html_mail_is_made_for_phones_too() {
    for lang in [Language::En, Language::ZhCn] {
        let c = compose::compose(&alerts(lang), &incident());
        assert!(
            c.html.contains("name=\"viewport\""),
            "no viewport meta: a phone would render it at desktop width"
        );
        // A block with a fixed pixel width above a phone's is what makes
        // a mail scroll sideways on a phone (max-width is fine).
        let mut rest = c.html.as_str();
        while let Some(i) = rest.find("width:") {
            let fixed = !rest[..i].ends_with('-');
            let px: String = rest[i + 6..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if fixed && let Ok(px) = px.parse::<u32>() {
                assert!(
                    px <= 360 || rest[i + 6 + px.to_string().len()..].starts_with('%'),
                    "fixed width {px} in the HTML"
                );
            }
            rest = &rest[i + 6..];
        }
        assert!(
            c.html.contains("overflow-wrap") || c.html.contains("word-break"),
            "long values (pids, paths, uuids) must be allowed to wrap"
        );
    }
}

#[test]
fn the_html_mail_rendered_by_chromium_at_desktop_and_phone_width() {
    if !have_chromium() {
        return;
    }
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (lang, tag) in [(Language::En, "en"), (Language::ZhCn, "zh-CN")] {
        let c = compose::compose(&alerts(lang), &incident());
        let html = dir.join(format!("incident-{tag}.html"));
        std::fs::write(&html, &c.html).unwrap();
        for (what, w, h) in [("desktop", 1280, 1000), ("phone", 390, 1400)] {
            let png = dir.join(format!("incident-{tag}-{what}.png"));
            let _ = std::fs::remove_file(&png);
            render(&html, &png, w, h).unwrap_or_else(|e| panic!("{tag} {what}: {e}"));
            assert_eq!(png_size(&png), (w, h), "{}", png.display());
            println!("{}", png.display());
        }
    }
}
