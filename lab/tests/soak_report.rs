//! The soak's report as a browser shows it: a soak folder made up here
//! (no lab), judged by `mailha-lab soak check`, its report.html opened in
//! headless Chromium. The page must say the verdict, draw the timeline,
//! and show a hostile message id as text, never as markup. Needs only
//! /usr/bin/chromium (SKIPPED without it, a failure in CI).

#[path = "common/chromium.rs"]
mod chromium;

use mailha_lab::provision::Profile;
use mailha_lab::soak::history::{Event, HistoryWriter, ImapOutcome, Phase, Record, SmtpOutcome};
use mailha_lab::soak::schedule::{self, Schedule};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const HOSTILE: &str = "<script>alert(\"soak\")</script>";

fn schedule() -> Schedule {
    schedule::plan(
        Duration::from_secs(180),
        5,
        Some("kill-daemon,switchover"),
        Profile::Postfix,
        false,
    )
    .expect("a schedule")
}

/// A soak folder: mail every second, node1 holding the data. `bad` adds
/// what the verdict must catch: SMTP refused for 15 s from the first
/// fault's start (both kinds' bound is 10 s), an acknowledged message
/// with markup in its id missing from the final read, and node2 mounting
/// the data for a second while node1 has it.
fn soak_folder(dir: &Path, bad: bool) -> Schedule {
    let s = schedule();
    std::fs::write(dir.join("schedule.json"), s.to_json()).unwrap();
    let first = s.steps[0].start_ms;
    let mut h: Vec<Record> = Vec::new();
    let mut read = Vec::new();
    let at = |t_ms, event| Record { t_ms, event };
    for sec in 0..175u64 {
        let t = sec * 1000 + 300;
        let (id, outcome) = if bad && t >= first && t < first + 15_000 {
            (format!("refused-{sec}"), SmtpOutcome::Refused)
        } else {
            let id = format!("<m{sec}@client.lab.test>");
            read.push(id.clone());
            (id, SmtpOutcome::Ok)
        };
        h.push(at(t, Event::Smtp { id, outcome }));
        h.push(at(
            t + 400,
            Event::Imap {
                outcome: ImapOutcome::Ok,
                ids: Vec::new(),
                final_read: false,
            },
        ));
    }
    for tick in 0..350u64 {
        let t = tick * 500;
        h.push(at(
            t,
            Event::Mount {
                node: "node1".into(),
                mounted: true,
            },
        ));
        h.push(at(
            t + 10,
            Event::Mount {
                node: "node2".into(),
                mounted: bad && (100_000..101_000).contains(&t),
            },
        ));
    }
    for st in &s.steps {
        let (i, phase) = (st.index, Phase::Start);
        h.push(at(st.start_ms, Event::Fault { step: i, phase }));
        let phase = Phase::End;
        h.push(at(st.end_ms(), Event::Fault { step: i, phase }));
    }
    if bad {
        h.push(at(
            10_500,
            Event::Smtp {
                id: HOSTILE.into(),
                outcome: SmtpOutcome::Ok,
            },
        ));
    }
    h.push(at(
        179_000,
        Event::Imap {
            outcome: ImapOutcome::Ok,
            ids: read,
            final_read: true,
        },
    ));
    h.sort_by_key(|r| r.t_ms);
    let mut w = HistoryWriter::append_to(&dir.join("history.jsonl")).unwrap();
    for r in &h {
        w.append(r).unwrap();
    }
    std::fs::write(
        dir.join("notes.txt"),
        "step 0 at 30 s: <img src=x onerror=alert(1)>\n",
    )
    .unwrap();
    s
}

/// `mailha-lab soak check DIR`: (exit code, stdout, stderr).
fn soak_check(dir: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mailha-lab"))
        .args(["soak", "check"])
        .arg(dir)
        .output()
        .expect("mailha-lab runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dump_dom(page: &Path) -> String {
    chromium::chromium(&["--dump-dom".into(), format!("file://{}", page.display())])
        .expect("chromium renders the page")
}

#[test]
fn a_failed_soak_s_report_says_not_ok_in_a_browser() {
    if !chromium::have_chromium() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    soak_folder(d.path(), true);
    let (code, stdout, stderr) = soak_check(d.path());
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let page = d.path().join("report.html");
    assert!(
        stderr.contains(&format!("soak: report in {}", page.display())),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("the verdict's JSON");
    assert_eq!(v["lost"], serde_json::json!([HOSTILE]));
    assert_eq!(v["over_bound"], serde_json::json!([0]));

    let dom = dump_dom(&page);
    assert!(
        dom.contains("<h1 class=\"verdict bad\">NOT OK</h1>"),
        "{dom}"
    );
    // The timeline is there, with the double mount on both node lanes.
    assert!(dom.contains("<svg"), "{dom}");
    assert!(dom.contains("<rect"), "{dom}");
    assert_eq!(dom.matches("class=\"double-mount\"").count(), 2, "{dom}");
    // The id and the note are text the browser kept as text: no element
    // came out of them.
    assert!(
        dom.contains("<li>&lt;script&gt;alert(\"soak\")&lt;/script&gt;</li>"),
        "{dom}"
    );
    assert!(
        dom.contains("step 0 at 30 s: &lt;img src=x onerror=alert(1)&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "{dom}");
    assert!(!dom.contains("<img"), "{dom}");

    let shot = d.path().join("report.png");
    chromium::chromium(&[
        "--window-size=1280,900".into(),
        format!("--screenshot={}", shot.display()),
        format!("file://{}", page.display()),
    ])
    .expect("chromium takes the screenshot");
    assert_eq!(chromium::png_size(&shot), (1280, 900));
}

#[test]
fn a_clean_soak_s_report_says_ok_in_a_browser() {
    if !chromium::have_chromium() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = soak_folder(d.path(), false);
    let (code, stdout, stderr) = soak_check(d.path());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let dom = dump_dom(&d.path().join("report.html"));
    assert!(dom.contains("<h1 class=\"verdict ok\">OK</h1>"), "{dom}");
    assert!(!dom.contains("NOT OK"), "{dom}");
    assert!(!dom.contains("double-mount"), "{dom}");
    assert!(
        dom.contains(&format!("Seed <b>{}</b>", s.options.seed)),
        "{dom}"
    );
    // One tooltip per fault in the timeline.
    assert_eq!(dom.matches("<title>step ").count(), s.steps.len(), "{dom}");
}
