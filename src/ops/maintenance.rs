//! `mailha maintenance on|off [SERVICE]`. The cluster's maintenance mode
//! (Pacemaker starts, stops and monitors nothing: daemons can be upgraded
//! by hand) or one service's (its `maintenance` meta-attribute: that
//! resource alone is neither managed nor monitored). Handing control back
//! is where the surprises are, so `off` re-probes first and shows what
//! the scheduler would then do (crm_simulate over the CIB as it will be)
//! before it changes anything.

use crate::cib::xml::El;

pub use crate::cib::maintenance::{META, PROPERTY, Scope, is_on};

fn property(value: &str) -> Vec<String> {
    [
        "crm_attribute",
        "--type",
        "crm_config",
        "--name",
        PROPERTY,
        "--update",
        value,
    ]
    .map(str::to_string)
    .to_vec()
}

fn meta(r: &str, change: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["crm_resource", "--resource", r, "--meta"]
        .map(str::to_string)
        .to_vec();
    v.extend(change.iter().map(|s| s.to_string()));
    v
}

/// The command that puts `scope` in maintenance.
pub fn on_argv(scope: &Scope) -> Vec<String> {
    match scope {
        Scope::Cluster => property("true"),
        Scope::Resource(r) => meta(r, &["--set-parameter", META, "--parameter-value", "true"]),
    }
}

/// The command that hands `scope` back to Pacemaker.
pub fn off_argv(scope: &Scope) -> Vec<String> {
    match scope {
        Scope::Cluster => property("false"),
        Scope::Resource(r) => meta(r, &["--delete-parameter", META]),
    }
}

/// The re-probe before control is handed back: what really runs where,
/// learnt while nothing acts on it (probes run in maintenance mode).
pub fn refresh_argv(scope: &Scope) -> Vec<String> {
    let mut v: Vec<String> = vec!["crm_resource".into(), "--refresh".into()];
    if let Scope::Resource(r) = scope {
        v.extend(["--resource".into(), r.clone()]);
    }
    v
}

fn by_id_mut<'a>(e: &'a mut El, id: &str) -> Option<&'a mut El> {
    if e.get("id") == Some(id) {
        return Some(e);
    }
    e.children.iter_mut().find_map(|c| by_id_mut(c, id))
}

/// The CIB as it will be once `scope` is out of maintenance: what
/// crm_simulate is asked about.
pub fn handed_back(cib: &El, scope: &Scope) -> El {
    let mut out = cib.clone();
    match scope {
        Scope::Cluster => {
            if let Some(c) = out
                .find_mut("configuration")
                .and_then(|c| c.find_mut("crm_config"))
            {
                for set in c.children.iter_mut() {
                    for p in set.children.iter_mut() {
                        if p.get("name") == Some(PROPERTY) {
                            p.set("value", "false");
                        }
                    }
                }
            }
        }
        Scope::Resource(r) => {
            if let Some(e) = by_id_mut(&mut out, r) {
                for set in e
                    .children
                    .iter_mut()
                    .filter(|s| s.name == "meta_attributes")
                {
                    set.children.retain(|p| p.get("name") != Some(META));
                }
            }
        }
    }
    out
}

/// A daemon of a configured service that still runs an executable an
/// upgrade replaced on disk: the old code runs on until it restarts. A
/// package does not restart it for us: `mailha setup` disabled the
/// service's unit (Pacemaker runs it), and Debian's maintainer scripts
/// restart or start only enabled units.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Replaced {
    pub service: String,
    pub pid: u32,
    pub executable: std::path::PathBuf,
    /// The unit that runs it, when systemd does: how to restart it.
    pub unit: Option<String>,
}

impl std::fmt::Display for Replaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (PID {}) still runs the {} an upgrade replaced: restart it while Pacemaker's hands are off ({})",
            self.service,
            self.pid,
            self.executable.display(),
            match &self.unit {
                Some(u) => format!("systemctl restart {u}"),
                None => "its stop, then its start command".into(),
            }
        )
    }
}

/// Which of `services` (name, executable, unit) run a replaced
/// executable among `procs`: per service, its lowest such PID (the
/// daemon's first process: its master).
pub fn replaced<'a>(
    services: impl IntoIterator<Item = (&'a str, &'a std::path::Path, Option<&'a str>)>,
    procs: &[crate::procs::ProcInfo],
) -> Vec<Replaced> {
    services
        .into_iter()
        .filter_map(|(name, exe, unit)| {
            let pid = procs
                .iter()
                .filter(|p| {
                    p.exe.as_deref().is_some_and(|e| {
                        e.to_string_lossy().ends_with(" (deleted)")
                            && crate::procs::exe_matches(e, exe)
                    })
                })
                .map(|p| p.pid)
                .min()?;
            Some(Replaced {
                service: name.to_string(),
                pid,
                executable: exe.to_path_buf(),
                unit: unit.map(str::to_string),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::ProcInfo;
    use std::path::{Path, PathBuf};

    fn proc(pid: u32, exe: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid: 1,
            session: pid,
            state: 'S',
            comm: "x".into(),
            exe: Some(PathBuf::from(exe)),
        }
    }

    #[test]
    fn a_daemon_left_on_its_replaced_executable_is_named_with_how_to_restart_it() {
        let master = Path::new("/usr/lib/postfix/sbin/master");
        let dovecot = Path::new("/usr/sbin/dovecot");
        let procs = [
            proc(1785, "/usr/lib/postfix/sbin/master (deleted)"),
            proc(1790, "/usr/lib/postfix/sbin/qmgr (deleted)"),
            proc(2100, "/usr/lib/postfix/sbin/master (deleted)"),
            proc(900, "/usr/sbin/dovecot"),
        ];
        let found = replaced(
            [
                ("postfix", master, Some("postfix@-.service")),
                ("dovecot", dovecot, Some("dovecot.service")),
            ],
            &procs,
        );
        assert_eq!(found.len(), 1, "dovecot runs what is on disk: {found:?}");
        assert_eq!(found[0].service, "postfix");
        assert_eq!(found[0].pid, 1785, "the master, not a later process");
        assert!(
            found[0]
                .to_string()
                .contains("systemctl restart postfix@-.service"),
            "{}",
            found[0]
        );
        assert!(replaced([("postfix", master, None)], &[proc(1, "/usr/sbin/init")]).is_empty());
    }

    fn cib(mode: &str, meta: &str) -> El {
        El::parse(&format!(
            r#"<cib><configuration><crm_config><cluster_property_set id="cib-bootstrap-options">
<nvpair id="o-mm" name="maintenance-mode" value="{mode}"/></cluster_property_set></crm_config>
<resources><primitive id="svc-postfix"><meta_attributes id="svc-postfix-meta_attributes">
<nvpair id="m1" name="migration-threshold" value="3"/>{meta}</meta_attributes></primitive>
<primitive id="svc-dovecot"/></resources></configuration></cib>"#
        ))
        .unwrap()
    }

    const ON: &str = r#"<nvpair id="m2" name="maintenance" value="true"/>"#;

    #[test]
    fn maintenance_is_read_from_the_property_or_the_resources_meta() {
        let pf = Scope::Resource("svc-postfix".into());
        assert!(is_on(&cib("true", ""), &Scope::Cluster));
        assert!(!is_on(&cib("false", ""), &Scope::Cluster));
        assert!(is_on(&cib("false", ON), &pf));
        assert!(
            !is_on(&cib("true", ""), &pf),
            "the cluster's is not the service's"
        );
        assert!(!is_on(
            &cib("false", ON),
            &Scope::Resource("svc-dovecot".into())
        ));
    }

    #[test]
    fn handing_back_ends_only_the_maintenance_asked_about() {
        let pf = Scope::Resource("svc-postfix".into());
        let back = handed_back(&cib("true", ON), &Scope::Cluster);
        assert!(!is_on(&back, &Scope::Cluster));
        assert!(is_on(&back, &pf), "the service stays in its own");
        let back = handed_back(&cib("true", ON), &pf);
        assert!(!is_on(&back, &pf));
        assert!(is_on(&back, &Scope::Cluster));
        assert!(back.by_id("m1").is_some(), "the other meta-attributes stay");
    }

    #[test]
    fn the_commands_name_the_property_or_the_resource() {
        let pf = Scope::Resource("svc-postfix".into());
        assert_eq!(
            on_argv(&Scope::Cluster).join(" "),
            "crm_attribute --type crm_config --name maintenance-mode --update true"
        );
        assert_eq!(
            off_argv(&pf).join(" "),
            "crm_resource --resource svc-postfix --meta --delete-parameter maintenance"
        );
        assert_eq!(
            refresh_argv(&pf).join(" "),
            "crm_resource --refresh --resource svc-postfix"
        );
        assert_eq!(
            refresh_argv(&Scope::Cluster).join(" "),
            "crm_resource --refresh"
        );
    }
}
