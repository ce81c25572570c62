//! The `switchover` drill (issue 15): a planned move of the mail under
//! load, by `mailha switchover` on the node running it, or the stock way
//! (`--mode stock`: `crm_resource --move` of the chain's root, then
//! `--clear` once the mail moved, as an operator does by hand). Measured
//! from the client: how long SMTP was unavailable. Nothing may be left
//! pinned afterwards (`cli-*` constraints).

use super::super::load::Attempt;
use super::super::{Lab, LabError, plan};
use super::{INVARIANT_BROKEN, NOT_MET};
use mailha::cib::xml::El;
use std::time::{Duration, Instant};

/// `mailha switchover` waits up to 120 s itself; the drill a little longer.
const DEADLINE: Duration = Duration::from_secs(180);

/// The seconds the client could not hand mail over after `from`: from its
/// first attempt that was not accepted to the first accepted one after its
/// last such attempt (one outage, or several counted as one span); 0 when
/// every attempt was accepted. None when no mail was accepted after the
/// last failure.
pub fn unavailable_s(log: &[(u128, Attempt)], from: u128) -> Option<f64> {
    let accepted = |a: &Attempt| matches!(a, Attempt::Accepted(_));
    let bad: Vec<u128> = log
        .iter()
        .filter(|(t, a)| *t >= from && !accepted(a))
        .map(|(t, _)| *t)
        .collect();
    let (Some(first), Some(last)) = (bad.first(), bad.last()) else {
        return Some(0.0);
    };
    super::first_after(log, *last, accepted).map(|end| (end - first) as f64 / 1000.0)
}

impl Lab<'_> {
    pub(super) fn switchover(
        &self,
        active: &str,
        stock: bool,
        fault_ms: u128,
        read_log: &dyn Fn() -> Vec<(u128, Attempt)>,
        notes: &mut Vec<String>,
    ) -> Result<Option<f64>, LabError> {
        let peer = if active == "node1" { "node2" } else { "node1" };
        let t = Instant::now();
        if stock {
            let conf =
                self.in_node_out(active, &["cibadmin", "--query", "--scope", "configuration"])?;
            let conf = El::parse(&conf.stdout).map_err(|e| LabError::Cluster(e.to_string()))?;
            let roots = mailha::switchover::roots(&conf).map_err(LabError::Cluster)?;
            for r in &roots {
                let o = self.in_node_out(
                    active,
                    &["crm_resource", "--move", "--resource", r, "--node", peer],
                )?;
                notes.push(format!(
                    "crm_resource --move --resource {r} --node {peer}: exit {:?}",
                    o.code
                ));
            }
            let moved = self.wait_mail_moved(active, read_log, fault_ms, DEADLINE);
            for r in &roots {
                let o = self.in_node_out(active, &["crm_resource", "--clear", "--resource", r])?;
                notes.push(format!(
                    "crm_resource --clear --resource {r} after {:.1} s: exit {:?}",
                    t.elapsed().as_secs_f64(),
                    o.code
                ));
            }
            if moved.is_none() {
                notes.push(format!("{NOT_MET}: the mail did not move to {peer}"));
            }
        } else {
            let pid = self.pid1(active)?;
            let o = self.runner.run(
                &plan::in_node(pid, &["mailha", "switchover", "--to", peer, "--json"])
                    .deadline(DEADLINE),
            )?;
            let said: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_default();
            notes.push(format!(
                "mailha switchover --to {peer}: exit {:?} after {:.1} s (its own count {}; SMTP after {}){}",
                o.code,
                t.elapsed().as_secs_f64(),
                said["seconds"],
                said["smtp_after_s"],
                if o.success() {
                    String::new()
                } else {
                    format!(": {}", o.stderr.trim())
                }
            ));
            if !o.success() {
                notes.push(format!("{NOT_MET}: mailha switchover failed"));
            }
        }
        // Nothing pinned, as the peer's CIB says.
        let c = self.in_node_out(peer, &["cibadmin", "--query", "--scope", "constraints"])?;
        let c = El::parse(&c.stdout).map_err(|e| LabError::Cluster(e.to_string()))?;
        let left = mailha::switchover::leftovers(&El::new("configuration").child(c));
        if !left.is_empty() {
            notes.push(format!(
                "{INVARIANT_BROKEN}: constraints left pinned: {}",
                left.iter()
                    .map(|l| l.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // A little more mail after the move, then the client's view.
        std::thread::sleep(Duration::from_secs(2));
        Ok(unavailable_s(&read_log(), fault_ms))
    }
}

impl Lab<'_> {
    /// `mailha standby ACTIVE` run on the peer under load, then `mailha
    /// online ACTIVE`; the drill's checks see the mail moved once. The
    /// old node must be back as a place for the mail (not in standby).
    pub(super) fn standby(
        &self,
        active: &str,
        fault_ms: u128,
        read_log: &dyn Fn() -> Vec<(u128, Attempt)>,
        notes: &mut Vec<String>,
    ) -> Result<Option<f64>, LabError> {
        let peer = if active == "node1" { "node2" } else { "node1" };
        let pid = self.pid1(peer)?;
        for verb in ["standby", "online"] {
            let t = Instant::now();
            let o = self
                .runner
                .run(&plan::in_node(pid, &["mailha", verb, active, "--json"]).deadline(DEADLINE))?;
            let said: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_default();
            notes.push(format!(
                "mailha {verb} {active} on {peer}: exit {:?} after {:.1} s (its own count {}){}",
                o.code,
                t.elapsed().as_secs_f64(),
                said["seconds"],
                if o.success() {
                    String::new()
                } else {
                    format!(": {}", o.stderr.trim())
                }
            ));
            if !o.success() {
                notes.push(format!("{NOT_MET}: mailha {verb} failed"));
            }
        }
        let mon = self.in_node_out(peer, &["crm_mon", "-1", "--output-as=xml"])?;
        let st =
            mailha::status::parse(&mon.stdout).map_err(|e| LabError::Cluster(e.to_string()))?;
        if st.nodes.iter().any(|n| n.name == active && n.standby) {
            notes.push(format!("{INVARIANT_BROKEN}: {active} left in standby"));
        }
        std::thread::sleep(Duration::from_secs(2));
        Ok(unavailable_s(&read_log(), fault_ms))
    }
}

impl Lab<'_> {
    fn mailha_in(
        &self,
        node: &str,
        argv: &[&str],
    ) -> Result<(bool, serde_json::Value, String), LabError> {
        let pid = self.pid1(node)?;
        let mut a = vec!["mailha"];
        a.extend_from_slice(argv);
        let o = self
            .runner
            .run(&plan::in_node(pid, &a).deadline(DEADLINE))?;
        let said = serde_json::from_str(o.stdout.trim()).unwrap_or_default();
        Ok((o.success(), said, o.stderr.trim().to_string()))
    }

    /// The maintenance drill: nothing restarts a killed daemon while the
    /// cluster is in maintenance; `off` brings it back.
    pub(super) fn maintenance(
        &self,
        active: &str,
        process: &str,
        read_log: &dyn Fn() -> Vec<(u128, Attempt)>,
        notes: &mut Vec<String>,
    ) -> Result<Option<f64>, LabError> {
        let (ok, _, err) = self.mailha_in(active, &["maintenance", "on", "--json"])?;
        if !ok {
            notes.push(format!("{NOT_MET}: mailha maintenance on failed: {err}"));
            return Ok(None);
        }
        let Some(pid) = self.oldest_pid(active, process) else {
            notes.push(format!("{NOT_MET}: {process} is not running on {active}"));
            return Ok(None);
        };
        self.in_node_out(active, &["kill", "-9", &pid])?;
        notes.push(format!(
            "killed {process} (pid {pid} in {active}) in maintenance"
        ));
        std::thread::sleep(Duration::from_secs(10));
        if let Some(new) = self.oldest_pid(active, process) {
            notes.push(format!(
                "{INVARIANT_BROKEN}: {process} restarted (pid {new}) during maintenance"
            ));
        }
        let off_ms = super::super::load::now_ms();
        let t = Instant::now();
        let (ok, said, err) = self.mailha_in(active, &["maintenance", "off", "--json"])?;
        notes.push(format!(
            "mailha maintenance off: exit ok {ok} after {:.1} s, Pacemaker did {}{}",
            t.elapsed().as_secs_f64(),
            said["did"],
            if ok {
                String::new()
            } else {
                format!(": {err}")
            }
        ));
        if !ok {
            notes.push(format!("{NOT_MET}: mailha maintenance off failed"));
        }
        Ok(super::seconds_until(read_log, off_ms, |a| {
            matches!(a, Attempt::Accepted(_))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(v: &[(u128, &str)]) -> Vec<(u128, Attempt)> {
        v.iter()
            .map(|(t, a)| {
                (
                    *t,
                    match *a {
                        "down" => Attempt::Down,
                        "greeted" => Attempt::Greeted,
                        id => Attempt::Accepted(id.into()),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn unavailability_spans_the_first_failure_to_the_first_mail_after_the_last() {
        let l = log(&[
            (900, "a"),
            (1000, "b"),
            (1500, "down"),
            (2000, "greeted"),
            (2200, "c"),
            (2600, "down"),
            (3100, "d"),
        ]);
        assert_eq!(unavailable_s(&l, 1000), Some(1.6));
        assert_eq!(unavailable_s(&l[..2], 1000), Some(0.0), "never down");
        assert_eq!(unavailable_s(&l[..6], 1000), None, "no mail after");
    }
}
