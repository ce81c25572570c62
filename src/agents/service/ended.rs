//! A daemon's death told to Pacemaker at once (issue 16: a killed daemon
//! back within 1 s). The monitor sees a crash only at its next run
//! (`monitor_interval`, 2 s in the lab), so a crash cost up to that
//! much before the restart even began. systemd sees it at once. In unit
//! mode the drop-in the agent hands the unit over with
//! (`unit::dropin_text`) runs `mailha unit-ended %n` as `ExecStopPost=`,
//! with full privileges, however the unit ends; systemd says how in
//! `$SERVICE_RESULT`, `$EXIT_CODE` and `$EXIT_STATUS`. When the unit ended
//! of itself and the agent armed it, `crm_resource --fail` tells
//! Pacemaker, which recovers it exactly as after a failed monitor: the
//! daemon and what depends on it restarted, the fail count (and so
//! `migration-threshold`) counted.
//!
//! Armed means a file per unit in `/run/mailha/armed/`, naming the
//! resource and the node the report is about (`Armed`):
//! - a start disarms before it starts anything (a start attempt that dies
//!   is the start's to judge) and arms once the monitor passes;
//! - a recurring monitor that passes arms a unit that is not (after an
//!   upgrade from a mailha without this, or a daemon restarted by hand in
//!   maintenance);
//! - a stop disarms before `systemctl stop`: the stop's own end is no
//!   failure;
//! - the report takes the file (unlink): one report per arming, and of a
//!   report and a stop at the same instant only one gets it.
//!
//! Never reported (the monitor still judges each of these at its next
//! run, as before): a unit that ended with `success` (a stop by anyone,
//! `systemctl restart` by an operator, or a daemon exiting 0), one that is
//! not armed, a unit whose cluster, resource or node is in maintenance
//! (Pacemaker monitors nothing then, so neither does this), and a unit
//! this node's own self-fence killed (`fencing`: the keeper's mark).
//! A report that cannot be made (no controller) changes nothing: the
//! monitor finds the daemon gone at its next run.
//!
//! One death counts once. Pacemaker 2.1.5 (Debian 12) often counts a
//! `crm_resource --fail` twice (the `_last_0` and `_last_failure_0`
//! entries of one event each raise the fail count; fixed upstream in
//! 2.1.6, ClusterLabs/pacemaker#2947), which would halve
//! `migration-threshold` and show "fails 2" for one crash. So the report
//! notes the fail count it found (`Reported`), and the first recurring
//! monitor after the restart (when every increment has landed, and off
//! the recovery's path) sets a count the report raised by two back to
//! one more than before (`corrected`).

use crate::cib::maintenance::{Scope, is_on, node_is_on};
use crate::cib::xml::El;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The drop-in's command, after `ExecStopPost=-+`: systemd fills in
/// `%n`, the unit's name.
pub const VERB: &str = "unit-ended";

/// Where the arming files live, under the node's root.
pub const ARMED_DIR: &str = "run/mailha/armed";

/// How long the report may take: `crm_resource --fail` asks the
/// controller and waits for its answer; the unit's stop waits for it.
pub const REPORT_DEADLINE: Duration = Duration::from_secs(10);

/// What a report names: Pacemaker's resource and node, and the service
/// (for the alert mail's words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    pub resource: String,
    pub node: String,
    pub service: String,
}

/// A Pacemaker id or node name fit for an argv and a file: what
/// Pacemaker itself produces (XML ids, host names), nothing that could
/// be read as an option.
fn check_token(what: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && !v.starts_with('-')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
    ok.then_some(())
        .ok_or_else(|| format!("{what} {v:?} is not a Pacemaker name"))
}

impl Armed {
    /// From the agent's environment (hostile input: checked).
    pub fn new(resource: &str, node: &str, service: &str) -> Result<Armed, String> {
        check_token("resource", resource)?;
        check_token("node", node)?;
        check_token("service", service)?;
        Ok(Armed {
            resource: resource.into(),
            node: node.into(),
            service: service.into(),
        })
    }

    fn text(&self) -> String {
        format!(
            "resource {}\nnode {}\nservice {}\n",
            self.resource, self.node, self.service
        )
    }

    /// The file's text, checked as strictly as when it was written.
    fn parse(text: &str) -> Result<Armed, String> {
        let get = |key: &str| line_value(text, key);
        let (r, n, s) = (get("resource")?, get("node")?, get("service")?);
        Armed::new(&r, &n, &s)
    }

    /// The report: argv only, the values checked above.
    pub fn fail_argv(&self) -> Vec<String> {
        vec![
            "crm_resource".into(),
            "--fail".into(),
            format!("--resource={}", self.resource),
            format!("--node={}", self.node),
        ]
    }
}

/// The value of the `key value` line of one of this module's files.
fn line_value(text: &str, key: &str) -> Result<String, String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .map(str::to_string)
        .ok_or_else(|| format!("no {key} line"))
}

fn armed_path(root: &Path, unit: &str) -> PathBuf {
    root.join(ARMED_DIR).join(unit)
}

fn reported_path(root: &Path, unit: &str) -> PathBuf {
    root.join(ARMED_DIR).join(format!("{unit}.reported"))
}

/// The fail count attribute a report raises: Pacemaker names it after
/// the resource and the simulated operation, `asyncmon` of interval 0.
pub fn failcount_attr(resource: &str) -> String {
    format!("fail-count-{resource}#asyncmon_0")
}

/// Reports not yet checked against the fail count: the count before the
/// first of them, and how many were made since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub resource: String,
    pub node: String,
    pub before: u64,
    pub reports: u64,
}

impl Reported {
    fn text(&self) -> String {
        format!(
            "resource {}\nnode {}\nbefore {}\nreports {}\n",
            self.resource, self.node, self.before, self.reports
        )
    }

    fn parse(text: &str) -> Result<Reported, String> {
        let get = |key: &str| line_value(text, key);
        let num = |key: &str| -> Result<u64, String> {
            get(key)?
                .parse()
                .map_err(|_| format!("{key} is not a count"))
        };
        let (resource, node) = (get("resource")?, get("node")?);
        check_token("resource", &resource)?;
        check_token("node", &node)?;
        Ok(Reported {
            resource,
            node,
            before: num("before")?,
            reports: num("reports")?,
        })
    }
}

/// The fail count to set once every increment of `r`'s reports has
/// landed (`current`): one per report. None when the count is right, or
/// is not what double counting makes of it (cleaned up or expired since,
/// or raised by something else too): then it is left alone.
pub fn corrected(r: &Reported, current: u64) -> Option<u64> {
    let want = r.before + r.reports;
    (current > want && current <= r.before + 2 * r.reports).then_some(want)
}

/// `attrd_updater --query` output, `name="..." host="..." value="2"`: the
/// count (no value: 0); None for INFINITY or what is not a count.
pub fn parse_failcount(query: &str) -> Option<u64> {
    let v = query.split("value=\"").nth(1)?.split('"').next()?;
    if v.is_empty() {
        return Some(0);
    }
    v.parse().ok()
}

/// A deadline for each attrd question: it answers in milliseconds.
const ATTRD_DEADLINE: Duration = Duration::from_secs(5);

fn query_failcount(resource: &str, node: &str) -> Option<u64> {
    let argv = [
        "attrd_updater".to_string(),
        "--query".into(),
        format!("--name={}", failcount_attr(resource)),
        format!("--node={node}"),
    ];
    let o = crate::exec::run(&argv, &[], None, ATTRD_DEADLINE).ok()?;
    failcount_of(&o)
}

/// The count `attrd_updater --query` answered. An attribute never set
/// (the resource's first failure on this node since the node started) is
/// 0: attrd_updater says it "does not exist" and exits non-zero (78 in
/// 2.1.5).
pub fn failcount_of(o: &crate::exec::Output) -> Option<u64> {
    if !o.success() {
        return o.stderr.contains("does not exist").then_some(0);
    }
    parse_failcount(&o.stdout)
}

/// Records one report made while the count was `before` (kept from an
/// earlier report not yet checked).
fn note_report(root: &Path, unit: &str, resource: &str, node: &str, before: u64) {
    let path = reported_path(root, unit);
    let r = match std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| Reported::parse(&t).ok())
    {
        Some(r) if r.resource == resource && r.node == node => Reported {
            reports: r.reports + 1,
            ..r
        },
        _ => Reported {
            resource: resource.into(),
            node: node.into(),
            before,
            reports: 1,
        },
    };
    if let Err(e) = crate::files::write_atomic(&path, r.text().as_bytes(), 0o600) {
        eprintln!("mailha: {}: {e}", path.display());
    }
}

/// Whether reports of `unit` wait to be checked against the fail count:
/// one stat, for the monitor's path.
pub fn has_reports(root: &Path, unit: &str) -> bool {
    reported_path(root, unit).exists()
}

/// Checks the fail count the reports of `unit` raised, and sets it to
/// one per report where Pacemaker counted one twice (`corrected`). Run by
/// a recurring monitor that passed: the daemon is back, so every
/// increment of the reports before it has landed.
pub fn settle_failcount(root: &Path, unit: &str) {
    let path = reported_path(root, unit);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let _ = std::fs::remove_file(&path);
    let Ok(r) = Reported::parse(&text) else {
        return;
    };
    let Some(current) = query_failcount(&r.resource, &r.node) else {
        return;
    };
    let Some(want) = corrected(&r, current) else {
        return;
    };
    let argv = [
        "attrd_updater".to_string(),
        format!("--update={want}"),
        format!("--name={}", failcount_attr(&r.resource)),
        format!("--node={}", r.node),
    ];
    match crate::exec::run(&argv, &[], None, ATTRD_DEADLINE) {
        Ok(o) if o.success() => eprintln!(
            "{}: fail count {current} after {} death(s) reported by systemd: set to {want} (Pacemaker 2.1.5 counts crm_resource --fail twice)",
            r.resource, r.reports
        ),
        Ok(o) => eprintln!("{}: attrd_updater: {}", r.resource, o.stderr.trim()),
        Err(e) => eprintln!("{}: {e}", r.resource),
    }
}

/// Arms `unit`: its end is reported until a stop or a report disarms it.
pub fn arm(root: &Path, unit: &str, a: &Armed) -> Result<(), String> {
    crate::config::validate::check_unit_name(unit)?;
    crate::files::write_atomic(&armed_path(root, unit), a.text().as_bytes(), 0o600)
        .map_err(|e| e.to_string())
}

/// Whether `unit` is armed: one stat, for the monitor's path.
pub fn is_armed(root: &Path, unit: &str) -> bool {
    armed_path(root, unit).exists()
}

/// Disarms `unit` and returns what it was armed with, when this caller's
/// unlink took it (a file that cannot be read is removed and reported as
/// none: nothing is told on its word).
pub fn take(root: &Path, unit: &str) -> Option<Armed> {
    let path = armed_path(root, unit);
    let text = std::fs::read_to_string(&path).ok()?;
    std::fs::remove_file(&path).ok()?;
    match Armed::parse(&text) {
        Ok(a) => Some(a),
        Err(e) => {
            eprintln!("mailha: {}: {e}: removed", path.display());
            None
        }
    }
}

/// How the unit ended, in words, when it ended of itself: systemd's
/// result anything but `success`. None for a requested stop (or no word
/// from systemd at all).
pub fn how_it_ended(
    result: Option<&str>,
    exit_code: Option<&str>,
    exit_status: Option<&str>,
) -> Option<String> {
    // systemd's own words: short, lower-case, dashes; anything else is
    // shown as "?" rather than carried into a log or a mail.
    let word = |v: Option<&str>| -> Option<String> {
        let v = v?;
        (!v.is_empty()
            && v.len() <= 32
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .then(|| v.to_string())
        .or(Some("?".into()))
    };
    let result = word(result)?;
    if result == "success" {
        return None;
    }
    let status = word(exit_status).unwrap_or_else(|| "?".into());
    Some(match word(exit_code).as_deref() {
        Some("killed") => format!("killed by signal {status}"),
        Some("dumped") => format!("dumped core on signal {status}"),
        Some("exited") => format!("exited with status {status}"),
        _ => format!("ended ({result})"),
    })
}

/// Why a report is not made although the unit ended of itself: the
/// cluster, the resource or the node in maintenance.
pub fn held_back(cib: &El, a: &Armed) -> Option<String> {
    if is_on(cib, &Scope::Cluster) {
        return Some("the cluster is in maintenance".into());
    }
    if is_on(cib, &Scope::Resource(a.resource.clone())) {
        return Some(format!("{} is in maintenance", a.resource));
    }
    if node_is_on(cib, &a.node) {
        return Some(format!("node {} is in maintenance", a.node));
    }
    None
}

/// Why nothing is reported although the unit ended of itself and was
/// armed: this node's keeper is fencing it (`lease::keeper::FENCING_MARK`
/// under `root`). The SIGKILL the unit died of is the fence's; the
/// cluster stack is already gone and the node is about to be reset, and
/// a "restarted" line per daemon would only bury the fence in the alert
/// mail.
pub fn fencing(root: &Path) -> Option<String> {
    let mark = std::fs::read_to_string(root.join(crate::lease::keeper::FENCING_MARK)).ok()?;
    let reason: String = mark
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(120)
        .collect();
    Some(format!(
        "this node is fencing itself ({reason}): the fence ended it"
    ))
}

/// `mailha unit-ended UNIT`, as systemd runs it after the unit's
/// processes are gone. Always exits 0: the unit's own result stands.
/// Everything it says goes to the unit's journal.
pub fn main(unit: &str, env: &dyn Fn(&str) -> Option<String>, root: &Path, cib_file: &Path) {
    if let Err(e) = crate::config::validate::check_unit_name(unit) {
        eprintln!("mailha {VERB}: {e}");
        return;
    }
    let Some(how) = how_it_ended(
        env("SERVICE_RESULT").as_deref(),
        env("EXIT_CODE").as_deref(),
        env("EXIT_STATUS").as_deref(),
    ) else {
        return;
    };
    let Some(armed) = take(root, unit) else {
        eprintln!(
            "mailha: {unit} {how}; not armed (a start or stop under way, or not started by the cluster): left to the monitor"
        );
        return;
    };
    if let Some(why) = fencing(root) {
        eprintln!("mailha: {unit} {how}; not reported: {why}");
        return;
    }
    // An unreadable CIB is no reason to keep a crash back: reported.
    if let Some(why) = std::fs::read_to_string(cib_file)
        .ok()
        .and_then(|x| El::parse(&x).ok())
        .and_then(|cib| held_back(&cib, &armed))
    {
        eprintln!("mailha: {unit} {how}; not reported: {why}");
        return;
    }
    let what = format!("{}: {unit} {how}", armed.service);
    crate::alert::spool::note(
        crate::alert::event::Kind::ServiceRestarted,
        Some(&armed.resource),
        &format!("{what} (reported by systemd)"),
    );
    let before = query_failcount(&armed.resource, &armed.node);
    match crate::exec::run(&armed.fail_argv(), &[], None, REPORT_DEADLINE) {
        Ok(o) if o.success() => {
            eprintln!(
                "mailha: {what}: {} on {} reported failed to Pacemaker",
                armed.resource, armed.node
            );
            if let Some(before) = before {
                note_report(root, unit, &armed.resource, &armed.node, before);
            }
        }
        Ok(o) => eprintln!(
            "mailha: {what}: crm_resource --fail exited {:?}: {}; left to the monitor",
            o.code,
            o.stderr.trim()
        ),
        Err(e) => eprintln!("mailha: {what}: {e}; left to the monitor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postfix() -> Armed {
        Armed::new("svc-postfix", "node1", "postfix").unwrap()
    }

    #[test]
    fn a_daemon_killed_or_crashed_ended_of_itself_a_stop_did_not() {
        let h = |r, c, s| how_it_ended(Some(r), Some(c), Some(s));
        assert_eq!(
            h("signal", "killed", "KILL").as_deref(),
            Some("killed by signal KILL")
        );
        assert_eq!(
            h("core-dump", "dumped", "SEGV").as_deref(),
            Some("dumped core on signal SEGV")
        );
        assert_eq!(
            h("exit-code", "exited", "1").as_deref(),
            Some("exited with status 1")
        );
        assert_eq!(
            how_it_ended(Some("oom-kill"), None, None).as_deref(),
            Some("ended (oom-kill)")
        );
        // A stop asked for by anyone, and a daemon that exits 0: the
        // monitor's to judge.
        assert_eq!(h("success", "exited", "0"), None);
        assert_eq!(h("success", "killed", "TERM"), None);
        // Run by hand, outside systemd: no word, no report.
        assert_eq!(how_it_ended(None, Some("killed"), Some("KILL")), None);
    }

    #[test]
    fn systemds_words_are_checked_before_they_reach_a_log() {
        assert_eq!(
            how_it_ended(Some("signal"), Some("killed"), Some("KILL\n$(reboot)")).as_deref(),
            Some("killed by signal ?")
        );
        assert_eq!(
            how_it_ended(Some("bad result!"), None, None).as_deref(),
            Some("ended (?)")
        );
    }

    #[test]
    fn an_armed_unit_is_taken_once_whoever_comes_second_gets_nothing() {
        let root = tempfile::tempdir().unwrap();
        let unit = "postfix@-.service";
        assert!(!is_armed(root.path(), unit));
        assert_eq!(take(root.path(), unit), None);
        arm(root.path(), unit, &postfix()).unwrap();
        assert!(is_armed(root.path(), unit));
        assert_eq!(take(root.path(), unit), Some(postfix()));
        // The stop that disarms after the report, or the report after the
        // stop: nothing.
        assert_eq!(take(root.path(), unit), None);
        assert!(!is_armed(root.path(), unit));
    }

    #[test]
    fn the_arming_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        arm(root.path(), "memcached.service", &postfix()).unwrap();
        let mode = std::fs::metadata(root.path().join(ARMED_DIR).join("memcached.service"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn hostile_names_are_neither_armed_nor_reported() {
        for (r, n) in [
            ("--force", "node1"),
            ("svc-postfix", "-node1"),
            ("svc postfix", "node1"),
            ("svc-postfix", "node1;reboot"),
            ("", "node1"),
        ] {
            assert!(Armed::new(r, n, "postfix").is_err(), "{r:?} {n:?}");
        }
        let root = tempfile::tempdir().unwrap();
        assert!(arm(root.path(), "../../etc/passwd", &postfix()).is_err());
        // A file changed under the agent is removed, not believed.
        let dir = root.path().join(ARMED_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("postfix@-.service"),
            "resource --delete\nnode node1\nservice postfix\n",
        )
        .unwrap();
        assert_eq!(take(root.path(), "postfix@-.service"), None);
        assert!(!is_armed(root.path(), "postfix@-.service"));
    }

    #[test]
    fn the_report_names_the_resource_and_node_as_one_argument_each() {
        assert_eq!(
            postfix().fail_argv(),
            [
                "crm_resource",
                "--fail",
                "--resource=svc-postfix",
                "--node=node1"
            ]
        );
    }

    fn reported(before: u64, reports: u64) -> Reported {
        Reported {
            resource: "svc-postfix".into(),
            node: "node1".into(),
            before,
            reports,
        }
    }

    #[test]
    fn a_death_counted_twice_is_set_back_to_one() {
        // Pacemaker 2.1.5: one report, the count went 0 -> 2.
        assert_eq!(corrected(&reported(0, 1), 2), Some(1));
        // 3.0 counts it once: nothing to do.
        assert_eq!(corrected(&reported(0, 1), 1), None);
        // Earlier failures stay counted: 3 before, one report, 5 now.
        assert_eq!(corrected(&reported(3, 1), 5), Some(4));
        // Two reports before the monitor came, each counted once or twice.
        assert_eq!(corrected(&reported(0, 2), 3), Some(2));
        assert_eq!(corrected(&reported(0, 2), 4), Some(2));
        // Cleaned up or expired since (lower), or raised by more than
        // double counting explains: left alone.
        assert_eq!(corrected(&reported(2, 1), 0), None);
        assert_eq!(corrected(&reported(0, 1), 3), None);
    }

    #[test]
    fn attrds_answer_is_read_as_a_count() {
        let q = |v: &str| {
            format!("name=\"fail-count-svc-postfix#asyncmon_0\" host=\"node1\" value=\"{v}\"\n")
        };
        assert_eq!(parse_failcount(&q("2")), Some(2));
        assert_eq!(parse_failcount(&q("")), Some(0));
        assert_eq!(parse_failcount(&q("INFINITY")), None);
        assert_eq!(parse_failcount("garbage"), None);
        let out = |code, stdout: &str, stderr: &str| crate::exec::Output {
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
            truncated: false,
        };
        assert_eq!(failcount_of(&out(0, &q("3"), "")), Some(3));
        // Pacemaker 2.1.5, the first failure on this node: no attribute.
        assert_eq!(
            failcount_of(&out(
                78,
                "",
                "attrd_updater: Could not query value of fail-count-svc-postfix#asyncmon_0: attribute does not exist\n"
            )),
            Some(0)
        );
        // attrd not answering: no count, so nothing is corrected later.
        assert_eq!(
            failcount_of(&out(102, "", "attrd_updater: Connection refused\n")),
            None
        );
        assert_eq!(
            failcount_attr("svc-postfix"),
            "fail-count-svc-postfix#asyncmon_0"
        );
    }

    #[test]
    fn reports_before_a_check_add_up_from_the_first_count() {
        let root = tempfile::tempdir().unwrap();
        let unit = "postfix@-.service";
        assert!(!has_reports(root.path(), unit));
        note_report(root.path(), unit, "svc-postfix", "node1", 0);
        // The second death before any monitor: it found the count the
        // first one raised (2), but the first count (0) is what counts.
        note_report(root.path(), unit, "svc-postfix", "node1", 2);
        assert!(has_reports(root.path(), unit));
        let text = std::fs::read_to_string(reported_path(root.path(), unit)).unwrap();
        assert_eq!(Reported::parse(&text), Ok(reported(0, 2)));
    }

    fn cib(crm_config: &str, meta: &str, node_attrs: &str) -> El {
        El::parse(&format!(
            r#"<cib><configuration><crm_config><cluster_property_set id="o">{crm_config}</cluster_property_set></crm_config>
<nodes><node id="1" uname="node1"><instance_attributes id="n1">{node_attrs}</instance_attributes></node><node id="2" uname="node2"/></nodes>
<resources><primitive id="svc-postfix" class="ocf" provider="mailha" type="service"><meta_attributes id="m">{meta}</meta_attributes></primitive></resources>
</configuration><status/></cib>"#
        ))
        .unwrap()
    }

    #[test]
    fn nothing_is_reported_while_the_cluster_the_service_or_the_node_is_in_maintenance() {
        let on = r#"<nvpair id="x" name="maintenance-mode" value="true"/>"#;
        let meta = r#"<nvpair id="y" name="maintenance" value="true"/>"#;
        let node = r#"<nvpair id="z" name="maintenance" value="on"/>"#;
        assert_eq!(held_back(&cib("", "", ""), &postfix()), None);
        assert_eq!(
            held_back(&cib(on, "", ""), &postfix()).as_deref(),
            Some("the cluster is in maintenance")
        );
        assert_eq!(
            held_back(&cib("", meta, ""), &postfix()).as_deref(),
            Some("svc-postfix is in maintenance")
        );
        assert_eq!(
            held_back(&cib("", "", node), &postfix()).as_deref(),
            Some("node node1 is in maintenance")
        );
        // The other node's maintenance is not this one's.
        let on_node2 = Armed::new("svc-postfix", "node2", "postfix").unwrap();
        assert_eq!(held_back(&cib("", "", node), &on_node2), None);
    }

    #[test]
    fn a_unit_the_nodes_own_self_fence_ended_is_not_a_death_to_report() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(fencing(root.path()), None, "no fence, no excuse");
        crate::lease::keeper::mark_fencing(root.path(), "RenewalsFailed\u{1b}[2J");
        let why = fencing(root.path()).expect("the keeper's mark is read");
        assert!(why.contains("fencing itself (RenewalsFailed[2J)"), "{why}");
        crate::lease::keeper::clear_fencing_mark(root.path());
        assert_eq!(
            fencing(root.path()),
            None,
            "cleared (as a keeper does at its start), the mark excuses nothing"
        );
    }
}
