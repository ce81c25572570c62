//! `lab status` and `lab exec`.

use super::cmd::CLEAN_ENV;
use super::proc;
use super::state::State;
use super::{Lab, LabError};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStatus {
    pub node: String,
    /// The node's PID 1 (its systemd) as the host sees it. (The name is
    /// older than the systemd nodes; JSON fields are never renamed.)
    pub holder_pid: u32,
    pub running: bool,
}

/// The JSON of `lab status --json` (stable: fields are only ever added).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LabStatus {
    pub up: bool,
    pub phase: Option<String>,
    /// Where the cluster's mailha.toml came from (null: infrastructure only).
    pub config: Option<String>,
    pub prefix: String,
    pub base_dir: String,
    pub nodes: Vec<NodeStatus>,
    pub netns: Vec<String>,
    pub links: Vec<String>,
    pub loops: Vec<super::state::LoopRec>,
    /// The NFS server's daemons (`lab::nfs`): rpcbind, ganesha.
    pub nfs: Vec<DaemonStatus>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DaemonStatus {
    pub name: String,
    pub pid: u32,
    pub running: bool,
}

impl LabStatus {
    /// The human view (fits 80 columns).
    pub fn render(&self) -> String {
        if !self.up {
            return "lab: down\n".into();
        }
        let mut s = format!(
            "lab: up ({}), base {}\n",
            self.phase.as_deref().unwrap_or("?"),
            self.base_dir
        );
        for n in &self.nodes {
            let devs: Vec<String> = self
                .loops
                .iter()
                .filter(|l| l.node == n.node)
                .map(|l| l.device.display().to_string())
                .collect();
            s.push_str(&format!(
                "  {:<6} PID 1 {:<8} {:<8} disks {}\n",
                n.node,
                n.holder_pid,
                if n.running { "running" } else { "DEAD" },
                devs.join(" ")
            ));
        }
        s.push_str(&format!("  netns  {}\n", self.netns.join(" ")));
        if !self.nfs.is_empty() {
            let d: Vec<String> = self
                .nfs
                .iter()
                .map(|d| {
                    let how = if d.running { "running" } else { "DEAD" };
                    format!("{} {} {how}", d.name, d.pid)
                })
                .collect();
            s.push_str(&format!(
                "  nfs    {} ({})\n",
                super::nfs::export_spec(),
                d.join(", ")
            ));
        }
        if let Some(c) = &self.config {
            s.push_str(&format!("  config {c}\n"));
        }
        s
    }
}

impl Lab<'_> {
    pub fn status(&self) -> Result<LabStatus, LabError> {
        let st = self.store.load()?;
        Ok(match st {
            None => LabStatus {
                up: false,
                phase: None,
                config: None,
                prefix: self.topo.prefix.clone(),
                base_dir: self.base_dir.display().to_string(),
                nodes: vec![],
                netns: vec![],
                links: vec![],
                loops: vec![],
                nfs: vec![],
            },
            Some(st) => LabStatus {
                up: true,
                phase: Some(st.phase.clone()),
                config: st.config.clone(),
                prefix: st.prefix.clone(),
                base_dir: st.base_dir.display().to_string(),
                nodes: st
                    .nodes
                    .iter()
                    .map(|h| NodeStatus {
                        node: h.node.clone(),
                        holder_pid: h.pid,
                        running: proc::is_alive(&self.proc_root, h.pid, h.start_time),
                    })
                    .collect(),
                netns: st.netns.clone(),
                links: st.links.clone(),
                loops: st.loops.clone(),
                nfs: st
                    .nfs
                    .iter()
                    .map(|r| DaemonStatus {
                        name: r.name.clone(),
                        pid: r.pid,
                        running: proc::is_alive(&self.proc_root, r.pid, r.start_time),
                    })
                    .collect(),
            },
        })
    }

    fn live_pid1(&self, st: &State, node: &str) -> Result<u32, LabError> {
        let h = st
            .node(node)
            .ok_or_else(|| LabError::UnknownNode(node.to_string()))?;
        if !proc::is_alive(&self.proc_root, h.pid, h.start_time) {
            return Err(LabError::NodeDead {
                node: node.to_string(),
                pid: h.pid,
            });
        }
        Ok(h.pid)
    }

    /// Runs `argv` in all of `node`'s namespaces with the caller's stdio
    /// (interactive), a clean environment, and a deadline. Returns the
    /// exit code (128 + signal when killed).
    pub fn exec(&self, node: &str, argv: &[String], deadline: Duration) -> Result<i32, LabError> {
        let st = self
            .store
            .load()?
            .ok_or_else(|| LabError::NotUp(self.store.path()))?;
        let mut c;
        if let Some(a) = super::topology::Aux::ALL
            .iter()
            .find(|a| a.as_str() == node)
        {
            // client, gw: plain network namespaces.
            c = Command::new("ip");
            c.args(["netns", "exec", &self.topo.netns(*a)]);
        } else {
            let pid = self.live_pid1(&st, node)?;
            c = Command::new("nsenter");
            c.args(["-t", &pid.to_string(), "-p", "-m", "-n", "-u", "--"]);
        }
        c.args(argv).env_clear();
        for (k, v) in CLEAN_ENV {
            c.env(k, v);
        }
        let mut child = c
            .spawn()
            .map_err(LabError::io(std::path::Path::new("nsenter")))?;
        let t = Instant::now();
        loop {
            if let Some(st) = child
                .try_wait()
                .map_err(LabError::io(std::path::Path::new("nsenter")))?
            {
                use std::os::unix::process::ExitStatusExt;
                return Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
            }
            if t.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LabError::Cmd(super::cmd::CmdError::Timeout {
                    cmd: format!("lab exec {node} -- {}", argv.join(" ")),
                    deadline,
                }));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Recorder;
    use crate::state::NodeRec;

    #[test]
    fn status_of_no_lab_says_down_and_exec_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new();
        let lab = Lab::new(
            &r,
            "mhxnone",
            &dir.path().join("state"),
            &dir.path().join("base"),
        );
        let s = lab.status().unwrap();
        assert!(!s.up);
        assert_eq!(s.render(), "lab: down\n");
        let e = lab
            .exec("node1", &["true".into()], Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(e, LabError::NotUp(_)), "{e}");
    }

    #[test]
    fn a_dead_node_shows_as_dead_and_cannot_be_entered() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new();
        let lab = Lab::new(
            &r,
            "mhxnone",
            &dir.path().join("state"),
            &dir.path().join("base"),
        );
        let mut st = State::new("mhxnone", &lab.base_dir);
        st.phase = "infrastructure up".into();
        st.nodes.push(NodeRec {
            node: "node1".into(),
            pid: std::process::id(),
            start_time: 1,
        });
        lab.store.save(&st).unwrap();
        let s = lab.status().unwrap();
        assert!(s.up && !s.nodes[0].running);
        assert!(s.render().contains("node1  PID 1"));
        assert!(s.render().contains("DEAD"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["nodes"][0]["running"], false);
        assert!(matches!(
            lab.exec("node1", &["true".into()], Duration::from_secs(1))
                .unwrap_err(),
            LabError::NodeDead { .. }
        ));
        assert!(matches!(
            lab.exec("node9", &["true".into()], Duration::from_secs(1))
                .unwrap_err(),
            LabError::UnknownNode(_)
        ));
    }
}
