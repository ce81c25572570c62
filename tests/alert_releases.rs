//! The alert agent reads what each Pacemaker release hands it (issue 20):
//! the `CRM_alert_*` environments in tests/fixtures/alerts/pacemaker-*/ were
//! captured from real clusters (Debian 12's Pacemaker 2.1 and Debian 13's
//! 3.0, the lab's nodes; `make.sh RELEASE` captures them again), one file
//! per kind of event and outcome that mailha's alert selects. A variable a release renamed or dropped
//! shows here as a field the event lacks.

use mailha::alert::event::{Event, Kind};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

fn releases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alerts");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Each captured event of a release: (file name, event).
fn events(release: &Path) -> Vec<(String, Event)> {
    let mut v: Vec<(String, Event)> = std::fs::read_dir(release)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "env"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let vars = text.lines().filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            });
            let name = e.file_name().to_string_lossy().into_owned();
            let ev = Event::from_crm_env(vars, "node1", SystemTime::now())
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            (name, ev)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn both_releases_were_captured() {
    let names: Vec<String> = releases()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["pacemaker-2.1", "pacemaker-3.0"]);
}

#[test]
fn every_kind_of_event_of_each_release_reads_to_a_full_event() {
    for r in releases() {
        let evs = events(&r);
        let kinds: BTreeSet<Kind> = evs.iter().map(|(_, e)| e.kind()).collect();
        assert_eq!(
            kinds,
            // what mailha's alert selects (src/cib: select_nodes,
            // select_fencing, select_resources)
            [Kind::Node, Kind::Fencing, Kind::Resource].into(),
            "{}",
            r.display()
        );
        for (name, e) in &evs {
            let at = format!("{}/{name}", r.display());
            assert!(e.invalid.is_empty(), "{at}: {:?}", e.invalid);
            assert!(e.node.is_some(), "{at}: no node");
            assert!(e.timestamp.is_some(), "{at}: no timestamp");
            assert!(e.sequence.is_some(), "{at}: no sequence");
            match e.kind() {
                Kind::Resource => {
                    assert!(e.rsc.is_some() && e.task.is_some(), "{at}: {e:?}");
                    assert!(e.rc.is_some() && e.target_rc.is_some(), "{at}: {e:?}");
                    assert!(e.status.is_some() && e.interval_ms.is_some(), "{at}: {e:?}");
                }
                Kind::Node => {
                    assert!(e.nodeid.is_some() && e.desc.is_some(), "{at}: {e:?}");
                }
                Kind::Fencing => {
                    assert!(e.task.is_some() && e.rc.is_some(), "{at}: {e:?}");
                    assert!(e.desc.is_some(), "{at}: {e:?}");
                }
                k => panic!("{at}: {k:?}"),
            }
        }
    }
}

#[test]
fn each_release_tells_a_failed_monitor_from_a_good_start_and_a_lost_node_from_a_member() {
    for r in releases() {
        let evs = events(&r);
        let failed: Vec<&str> = evs
            .iter()
            .filter(|(_, e)| e.kind() == Kind::Resource && e.failed())
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(
            failed.iter().any(|n| n.contains("monitor")),
            "{}: no failed monitor among {failed:?}",
            r.display()
        );
        assert!(
            evs.iter().any(|(_, e)| e.kind() == Kind::Resource
                && e.task.as_deref() == Some("start")
                && !e.failed()),
            "{}: no good start",
            r.display()
        );
        let descs: BTreeSet<&str> = evs
            .iter()
            .filter(|(_, e)| e.kind() == Kind::Node)
            .filter_map(|(_, e)| e.desc.as_deref())
            .collect();
        assert!(
            descs.contains("lost") && descs.contains("member"),
            "{}: node events {descs:?}",
            r.display()
        );
    }
}

/// A probe (a monitor without an interval) asks whether the resource runs
/// on a node; "running" is an answer, not a failure. Both releases probe
/// the config clone on a node whose Pacemaker came back and find it
/// running (rc 0 where Pacemaker's target is 7): the operator's mail said
/// "config-sync monitor on node2 failed (rc 0): ok".
#[test]
fn a_probe_that_finds_a_resource_running_is_no_failure_in_either_release() {
    for r in releases() {
        let probes: Vec<(String, Event)> = events(&r)
            .into_iter()
            .filter(|(_, e)| e.task.as_deref() == Some("monitor") && e.interval_ms == Some(0))
            .collect();
        assert!(
            probes
                .iter()
                .any(|(_, e)| e.rc == Some(0) && e.target_rc == Some(7)),
            "{}: no probe that found a resource running",
            r.display()
        );
        for (name, e) in &probes {
            assert!(!e.failed(), "{}/{name}: {e:?}", r.display());
        }
    }
}
