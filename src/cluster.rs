//! Talking to a live cluster the way pcs does: read the CIB
//! (`cibadmin --query`), compute the new one, verify it (`crm_verify`),
//! and change it in one transaction as a patch (`crm_diff` +
//! `cibadmin --patch`) that carries the versions it was computed from, so
//! a CIB that changed meanwhile is refused by the CIB itself rather than
//! overwritten. All tools run through `exec::run` with deadlines;
//! `CIB_file` in the environment makes them work on a saved CIB, which is
//! how the tests run them for real without a cluster.

use crate::cib::xml::El;
use crate::exec::{self, ExecError};
use std::path::Path;
use std::time::Duration;

/// Pacemaker writes these into `cib-bootstrap-options` itself; mailha
/// keeps the live values so an apply never churns them.
pub const PACEMAKER_MANAGED: &[&str] = &[
    "dc-version",
    "cluster-infrastructure",
    "have-watchdog",
    "last-lrm-refresh",
];

/// Operator state that lives in cluster properties: `apply` must not undo
/// a `maintenance-mode` someone set on purpose. `dc-deadtime` is an engine
/// timing knob mailha.toml does not express: whoever tuned it (the lab
/// seeds 5 s so a restarted node elects a DC in seconds, not 20) keeps it.
pub const OPERATOR_STATE: &[&str] = &["maintenance-mode", "dc-deadtime"];

/// Resource meta-attributes that are operator state, never rendered from
/// mailha.toml: `mailha stop` (target-role), `mailha maintenance SERVICE`
/// (maintenance), and an operator's `crm_resource --meta` unmanage. An
/// apply keeps them: an apply during maintenance or a stopped stack must
/// not restart anything.
pub const OPERATOR_META: &[&str] = &["target-role", "maintenance", "is-managed"];

fn by_id_mut<'a>(e: &'a mut El, id: &str) -> Option<&'a mut El> {
    if e.get("id") == Some(id) {
        return Some(e);
    }
    e.children.iter_mut().find_map(|c| by_id_mut(c, id))
}

/// Copies the operator's meta-attributes of each live resource onto the
/// same resource in `conf` (its own meta set, made when it has none).
fn keep_operator_meta(live_conf: &El, conf: &mut El) {
    let Some(live_res) = live_conf.find("resources") else {
        return;
    };
    let mut todo: Vec<(String, El)> = Vec::new();
    fn walk(e: &El, todo: &mut Vec<(String, El)>) {
        for r in &e.children {
            if matches!(r.name.as_str(), "primitive" | "clone" | "group")
                && let Some(id) = r.get("id")
            {
                for set in r.children.iter().filter(|c| c.name == "meta_attributes") {
                    for p in set
                        .children
                        .iter()
                        .filter(|p| p.get("name").is_some_and(|n| OPERATOR_META.contains(&n)))
                    {
                        todo.push((id.to_string(), p.clone()));
                    }
                }
                walk(r, todo);
            }
        }
    }
    walk(live_res, &mut todo);
    let Some(res) = conf.find_mut("resources") else {
        return;
    };
    for (id, p) in todo {
        // A resource the new config no longer has goes, with its state.
        let Some(r) = by_id_mut(res, &id) else {
            continue;
        };
        let name = p.get("name").unwrap_or_default().to_string();
        if !r.children.iter().any(|c| c.name == "meta_attributes") {
            // Before the operations and instance attributes is not
            // required by the schema; after them is where Pacemaker's
            // tools put a new set too.
            r.children
                .push(El::new("meta_attributes").attr("id", format!("{id}-meta_attributes")));
        }
        let set = r
            .children
            .iter_mut()
            .find(|c| c.name == "meta_attributes")
            .expect("made above");
        set.children
            .retain(|x| x.get("name") != Some(name.as_str()));
        set.children.push(p);
    }
}

const TOOL_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("{tool} failed (exit {code:?}): {stderr}")]
    Tool {
        tool: &'static str,
        code: Option<i32>,
        stderr: String,
    },
    #[error("the live CIB is not what mailha expects: {0}")]
    Shape(String),
    #[error(transparent)]
    Xml(#[from] crate::cib::xml::XmlError),
    #[error("writing a temporary file: {0}")]
    Io(#[from] std::io::Error),
    #[error("crm_verify refuses the new configuration; nothing was changed:\n{0}")]
    Rejected(String),
    /// The CIB's version moved between the read and the patch (another
    /// change landed, or only the status was updated); nothing changed.
    #[error("the CIB changed while the patch was computed; nothing was changed")]
    Moved,
    #[error("{argv} failed (exit {code:?}): {stderr}")]
    Command {
        argv: String,
        code: Option<i32>,
        stderr: String,
    },
}

fn nvpairs_of_set<'a>(crm: &'a El, set_id: &str) -> Vec<&'a El> {
    crm.children
        .iter()
        .filter(|s| s.get("id") == Some(set_id))
        .flat_map(|s| s.children.iter())
        .collect()
}

/// The live CIB with its `<configuration>` replaced by `desired`, keeping
/// what belongs to the running cluster: the node entries (ids, operator
/// attributes such as standby), Pacemaker's own properties and operator
/// state properties. Pure.
pub fn merge(live: &El, desired: &El) -> Result<El, ClusterError> {
    let live_conf = live
        .find("configuration")
        .ok_or_else(|| ClusterError::Shape("no <configuration>".into()))?;
    let mut conf = desired.clone();
    if let Some(live_nodes) = live_conf.find("nodes")
        && !live_nodes.children.is_empty()
        && let Some(n) = conf.find_mut("nodes")
    {
        *n = live_nodes.clone();
    }
    if let Some(live_crm) = live_conf.find("crm_config") {
        let keep: Vec<El> = nvpairs_of_set(live_crm, "cib-bootstrap-options")
            .into_iter()
            .filter(|p| {
                p.get("name")
                    .is_some_and(|n| PACEMAKER_MANAGED.contains(&n) || OPERATOR_STATE.contains(&n))
            })
            .cloned()
            .collect();
        if let Some(set) = conf.find_mut("crm_config").and_then(|c| {
            c.children
                .iter_mut()
                .find(|s| s.get("id") == Some("cib-bootstrap-options"))
        }) {
            for p in keep {
                let name = p.get("name").unwrap_or_default().to_string();
                set.children
                    .retain(|x| x.get("name") != Some(name.as_str()));
                set.children.push(p);
            }
        }
    }
    // `mailha watch off` switches are operator state too.
    let watch: Vec<El> = nvpairs_of_set(
        live_conf
            .find("crm_config")
            .unwrap_or(&El::new("crm_config")),
        crate::cib::MAILHA_SET_ID,
    )
    .into_iter()
    .filter(|p| {
        p.get("name")
            .is_some_and(|n| n.starts_with(crate::watch::PREFIX))
    })
    .cloned()
    .collect();
    if !watch.is_empty()
        && let Some(set) = conf.find_mut("crm_config").and_then(|c| {
            c.children
                .iter_mut()
                .find(|s| s.get("id") == Some(crate::cib::MAILHA_SET_ID))
        })
    {
        set.children.extend(watch);
    }
    keep_operator_meta(live_conf, &mut conf);
    let mut out = live.clone();
    let slot = out
        .children
        .iter_mut()
        .find(|c| c.name == "configuration")
        .expect("checked above");
    *slot = conf;
    Ok(out)
}

/// A unified diff of two configurations, both printed by `El` so only real
/// differences show.
pub fn diff(old: &El, new: &El) -> String {
    let (a, b) = (old.to_xml(), new.to_xml());
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header("live", "mailha.toml")
        .to_string()
}

/// The digest stored in a CIB (live or saved), if any.
pub fn stored_digest(cib: &El) -> Option<String> {
    let crm = cib.find("configuration")?.find("crm_config")?;
    nvpairs_of_set(crm, crate::cib::MAILHA_SET_ID)
        .into_iter()
        .find(|p| p.get("name") == Some(crate::cib::DIGEST_NAME))
        .and_then(|p| p.get("value").map(|s| s.to_string()))
}

fn tool(argv: &[&str], stdin: Option<&[u8]>) -> Result<exec::Output, ClusterError> {
    Ok(exec::run(argv, &[], stdin, TOOL_DEADLINE)?)
}

/// `cibadmin --query`: the whole live CIB.
pub fn query() -> Result<El, ClusterError> {
    let o = tool(&["cibadmin", "--query"], None)?;
    if !o.success() {
        return Err(ClusterError::Tool {
            tool: "cibadmin --query",
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    Ok(El::parse(&o.stdout)?)
}

/// Only the crm_config section, wrapped as a CIB so `stored_digest` reads
/// it (cheaper than the whole CIB on a busy cluster).
pub fn query_crm_config() -> Result<El, ClusterError> {
    let o = tool(&["cibadmin", "--query", "--scope", "crm_config"], None)?;
    if !o.success() {
        return Err(ClusterError::Tool {
            tool: "cibadmin --query --scope crm_config",
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    let crm = El::parse(&o.stdout)?;
    Ok(El::new("cib").child(El::new("configuration").child(crm)))
}

/// The configuration section, wrapped as a CIB (what status reads: mailha's
/// properties and the nodes' attributes, without the status section).
pub fn query_configuration() -> Result<El, ClusterError> {
    let o = tool(&["cibadmin", "--query", "--scope", "configuration"], None)?;
    if !o.success() {
        return Err(ClusterError::Tool {
            tool: "cibadmin --query --scope configuration",
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    Ok(El::new("cib").child(El::parse(&o.stdout)?))
}

/// crm_verify on a whole CIB (with the live status, so its judgement is
/// the real one). Returns its warnings; errors are `Rejected`.
pub fn verify(cib: &El, dir: &Path) -> Result<String, ClusterError> {
    let f = dir.join("new-cib.xml");
    std::fs::write(&f, cib.to_xml())?;
    let path = f.to_string_lossy().into_owned();
    let o = tool(&["crm_verify", "--xml-file", &path, "-V"], None)?;
    let text = format!("{}{}", o.stdout, o.stderr).trim().to_string();
    if text.contains("Errors found") || text.contains("error:") {
        return Err(ClusterError::Rejected(text));
    }
    Ok(text)
}

/// What the scheduler would do with `cib` (a whole CIB, status included):
/// `crm_simulate --simulate --output-as=xml` over a copy in `dir`, read by
/// `ops::simulated`. Changes nothing live.
pub fn simulate(cib: &El, dir: &Path) -> Result<String, ClusterError> {
    let f = dir.join("simulate.xml");
    std::fs::write(&f, cib.to_xml())?;
    let path = f.to_string_lossy().into_owned();
    let o = tool(
        &[
            "crm_simulate",
            "--xml-file",
            &path,
            "--simulate",
            "--output-as=xml",
        ],
        None,
    )?;
    if !o.success() {
        return Err(ClusterError::Tool {
            tool: "crm_simulate",
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    Ok(o.stdout)
}

/// `crm_resource --wait`: true once the cluster has no action pending
/// (probes included), false when `seconds` ran out first. Bounded below
/// the tools' own deadline; callers loop for longer waits.
pub fn settled(seconds: u64) -> Result<bool, ClusterError> {
    let s = seconds.clamp(1, TOOL_DEADLINE.as_secs() - 5);
    let t = format!("--timeout={s}s");
    let o = tool(&["crm_resource", "--wait", &t], None)?;
    Ok(o.success())
}

/// The CIB's version triple, (admin_epoch, epoch, num_updates).
pub fn version(cib: &El) -> (u64, u64, u64) {
    let n = |k: &str| cib.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    (n("admin_epoch"), n("epoch"), n("num_updates"))
}

/// Applies `new` over `live` as one patch. The patch names the version it
/// was computed against (crm_diff without `--no-version`; `new` is one
/// epoch on), and the CIB applies it only to exactly that version: if
/// anything landed since `live` was read, this is `Moved` and nothing
/// changed. (With `--no-version` the CIB applies the changes over
/// whatever is there: a concurrent apply would be silently merged.)
pub fn patch(live: &El, new: &El, dir: &Path) -> Result<(), ClusterError> {
    let (a, b, p) = (
        dir.join("live.xml"),
        dir.join("new.xml"),
        dir.join("patch.xml"),
    );
    let mut new = new.clone();
    let (_, epoch, _) = version(live);
    new.set("epoch", (epoch + 1).to_string());
    new.set("num_updates", "0");
    std::fs::write(&a, live.to_xml())?;
    std::fs::write(&b, new.to_xml())?;
    let (a, b) = (
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
    );
    // crm_diff exits 1 when the documents differ: that is its answer, not
    // a failure.
    let d = tool(&["crm_diff", "--original", &a, "--new", &b], None)?;
    if d.stdout.trim().is_empty() {
        return Ok(());
    }
    if !matches!(d.code, Some(0) | Some(1)) {
        return Err(ClusterError::Tool {
            tool: "crm_diff",
            code: d.code,
            stderr: d.stderr.trim().to_string(),
        });
    }
    std::fs::write(&p, &d.stdout)?;
    let p = p.to_string_lossy().into_owned();
    let o = tool(&["cibadmin", "--patch", "--xml-file", &p], None)?;
    if !o.success() {
        // pcmk_err_old_data: "Update was older than existing configuration".
        if o.code == Some(103) {
            return Err(ClusterError::Moved);
        }
        return Err(ClusterError::Tool {
            tool: "cibadmin --patch",
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    Ok(())
}

/// Sets a permanent node attribute (`crm_attribute --type nodes`).
pub fn set_node_attribute(node: &str, name: &str, value: &str) -> Result<(), ClusterError> {
    let o = tool(
        &[
            "crm_attribute",
            "--type",
            "nodes",
            "--node",
            node,
            "--name",
            name,
            "--update",
            value,
        ],
        None,
    )?;
    if !o.success() {
        return Err(ClusterError::Tool {
            tool: "crm_attribute",
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    Ok(())
}

/// `crm_mon --one-shot --output-as=xml --include=all`: the cluster as
/// Pacemaker sees it (what `status::parse` reads).
pub fn crm_mon() -> Result<String, ClusterError> {
    let o = tool(
        &["crm_mon", "--one-shot", "--output-as=xml", "--include=all"],
        None,
    )?;
    if !o.success() && o.stdout.trim().is_empty() {
        return Err(ClusterError::Tool {
            tool: "crm_mon",
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    Ok(o.stdout)
}

/// Runs one command that changes the cluster (`crm_resource --move`,
/// `--clear`); its output when it succeeded.
pub fn change(argv: &[String]) -> Result<String, ClusterError> {
    let a: Vec<&str> = argv.iter().map(String::as_str).collect();
    let o = tool(&a, None)?;
    if !o.success() {
        return Err(ClusterError::Command {
            argv: argv.join(" "),
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    Ok(format!("{}{}", o.stdout, o.stderr))
}

/// Whether the mailha tools work on a saved CIB (`CIB_file`), where there
/// is no cluster and so no peer to reach.
pub fn on_a_file() -> bool {
    std::env::var_os("CIB_file").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> El {
        El::parse(
            r#"<cib epoch="7" num_updates="3" admin_epoch="0" validate-with="pacemaker-3.9">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-dc-version" name="dc-version" value="2.1.5"/>
        <nvpair id="cib-bootstrap-options-maintenance-mode" name="maintenance-mode" value="true"/>
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="5s"/>
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="node1">
        <instance_attributes id="nodes-1"><nvpair id="nodes-1-standby" name="standby" value="on"/></instance_attributes>
      </node>
    </nodes>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>"#,
        )
        .unwrap()
    }

    fn desired() -> El {
        El::new("configuration")
            .child(
                El::new("crm_config").child(
                    El::new("cluster_property_set")
                        .attr("id", "cib-bootstrap-options")
                        .child(
                            El::new("nvpair")
                                .attr("id", "x")
                                .attr("name", "stonith-enabled")
                                .attr("value", "true"),
                        ),
                ),
            )
            .child(El::new("nodes").child(El::new("node").attr("id", "1").attr("uname", "node1")))
            .child(El::new("resources"))
            .child(El::new("constraints"))
    }

    #[test]
    fn merging_keeps_pacemakers_properties_operator_state_and_node_attributes() {
        let m = merge(&live(), &desired()).unwrap();
        let conf = m.find("configuration").unwrap();
        let set = &conf.find("crm_config").unwrap().children[0];
        let names: Vec<&str> = set.children.iter().filter_map(|p| p.get("name")).collect();
        assert_eq!(
            names,
            [
                "stonith-enabled",
                "dc-version",
                "maintenance-mode",
                "dc-deadtime"
            ]
        );
        assert_eq!(
            set.children[0].get("value"),
            Some("true"),
            "mailha's own value wins"
        );
        assert!(
            m.by_id("nodes-1-standby").is_some(),
            "a standby node stays in standby"
        );
        assert_eq!(
            m.get("epoch"),
            Some("7"),
            "versions are the live ones; the patch bumps them"
        );
        assert!(m.find("status").is_some());
    }

    #[test]
    fn an_apply_keeps_a_stopped_stack_stopped_and_a_service_in_maintenance() {
        let mut l = live();
        let res = l
            .find_mut("configuration")
            .unwrap()
            .find_mut("resources")
            .unwrap();
        res.children.push(
            El::new("primitive").attr("id", "lease").child(
                El::new("meta_attributes")
                    .attr("id", "lease-meta_attributes")
                    .child(
                        El::new("nvpair")
                            .attr("id", "lease-meta_attributes-target-role")
                            .attr("name", "target-role")
                            .attr("value", "Stopped"),
                    ),
            ),
        );
        res.children.push(
            El::new("clone").attr("id", "svc-x-clone").child(
                El::new("primitive").attr("id", "svc-x").child(
                    El::new("meta_attributes").attr("id", "svc-x-m").children([
                        El::new("nvpair")
                            .attr("id", "svc-x-m-maintenance")
                            .attr("name", "maintenance")
                            .attr("value", "true"),
                        El::new("nvpair")
                            .attr("id", "svc-x-m-threshold")
                            .attr("name", "migration-threshold")
                            .attr("value", "9"),
                    ]),
                ),
            ),
        );
        res.children.push(
            El::new("primitive").attr("id", "svc-gone").child(
                El::new("meta_attributes").attr("id", "g").child(
                    El::new("nvpair")
                        .attr("id", "g-t")
                        .attr("name", "target-role")
                        .attr("value", "Stopped"),
                ),
            ),
        );
        let mut d = desired();
        let dres = d.find_mut("resources").unwrap();
        dres.children.push(El::new("primitive").attr("id", "lease"));
        dres.children.push(
            El::new("clone").attr("id", "svc-x-clone").child(
                El::new("primitive").attr("id", "svc-x").child(
                    El::new("meta_attributes").attr("id", "svc-x-m").child(
                        El::new("nvpair")
                            .attr("id", "svc-x-m-threshold")
                            .attr("name", "migration-threshold")
                            .attr("value", "3"),
                    ),
                ),
            ),
        );
        let m = merge(&l, &d).unwrap();
        let value = |id: &str| m.by_id(id).and_then(|e| e.get("value")).map(str::to_string);
        assert_eq!(
            value("lease-meta_attributes-target-role").as_deref(),
            Some("Stopped"),
            "mailha stop survives an apply"
        );
        assert_eq!(value("svc-x-m-maintenance").as_deref(), Some("true"));
        assert_eq!(
            value("svc-x-m-threshold").as_deref(),
            Some("3"),
            "the rendered meta-attributes are the config's"
        );
        assert!(m.by_id("svc-gone").is_none() && m.by_id("g-t").is_none());
    }

    #[test]
    fn the_diff_shows_only_what_changes() {
        let a = desired();
        let mut b = desired();
        b.find_mut("resources")
            .unwrap()
            .children
            .push(El::new("primitive").attr("id", "svc-new"));
        let d = diff(&a, &b);
        assert!(d.contains("+    <primitive id=\"svc-new\"/>"), "{d}");
        assert_eq!(
            d.lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .count(),
            1,
            "{d}"
        );
        assert!(diff(&a, &a).is_empty());
    }
}
