//! `mailha standby NODE`, `mailha online NODE`, `mailha stop`,
//! `mailha start` (`ops::standby`): each changes one attribute, then
//! waits and reports each step of the stack as crm_mon shows it.

use super::wait::{Verdict, reporter, until};
use super::{Cli, CliError};
use crate::ops::standby as sb;
use crate::switchover::Refusal;
use anyhow::Context;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node.
    pub node: String,
    #[command(flatten)]
    pub common: Common,
}

pub use super::wait::Common;

fn refused(verb: &str, r: Refusal) -> CliError {
    CliError::BadInput(format!("mailha {verb}: {r}; nothing was changed"))
}

fn say(c: &Common, json: serde_json::Value, text: &str) {
    if c.json {
        println!("{json}");
    } else {
        println!("{text}");
    }
}

pub fn standby(cli: &Cli, a: &NodeArgs) -> Result<(), CliError> {
    let (st, cib) = super::switchover::state()?;
    let keeper = super::switchover::keeper(cli, &cib);
    let Some(plan) = sb::standby(&st, &a.node, &keeper).map_err(|r| refused("standby", r))? else {
        say(
            &a.common,
            serde_json::json!({"node": a.node, "standby": true, "changed": false}),
            &format!("{} is already in standby", a.node),
        );
        return Ok(());
    };
    let argv = sb::standby_argv(&plan.node, true);
    if a.common.dry_run {
        let mut text = String::new();
        if let Some(to) = &plan.mail_to {
            text.push_str(&format!("the mail would move from {} to {to}\n", plan.node));
        }
        text.push_str(&format!("would run {}", argv.join(" ")));
        say(
            &a.common,
            serde_json::json!({"dry_run": true, "node": plan.node, "mail_to": plan.mail_to, "commands": [argv]}),
            &text,
        );
        return Ok(());
    }
    let vip = crate::switchover::vip_address(&cib);
    super::wait::catch_signals();
    let t0 = Instant::now();
    crate::cluster::change(&argv).with_context(|| format!("putting {} in standby", plan.node))?;
    let wait = a.common.wait();
    let deadline = t0 + wait;
    let node = plan.node.clone();
    let to = plan.mail_to.clone();
    let before = st.failures.clone();
    let stack: Vec<String> = st
        .resources
        .iter()
        .filter(|r| sb::in_stack(r))
        .map(|r| r.id.clone())
        .collect();
    let smtp = until(deadline, wait, reporter(t0, a.common.json), |st| {
        if !sb::drained(st, &node) {
            return Verdict::Waiting(format!("the mail stack still runs on {node}"));
        }
        let Some(to) = &to else {
            return Verdict::Done(None);
        };
        if st.active_node.as_deref() != Some(to.as_str()) {
            if let Some(f) = crate::switchover::new_failure(st, &before, to, &stack) {
                return Verdict::Failed(f);
            }
            return Verdict::Waiting(format!("the mail does not run on {to} yet"));
        }
        match vip
            .as_deref()
            .map(|v| super::wait::smtp_answers(v, deadline))
        {
            Some(Err(e)) => Verdict::Waiting(format!("SMTP on the VIP: {e}")),
            _ => Verdict::Done(Some(t0.elapsed().as_secs_f64())),
        }
    });
    let seconds = t0.elapsed().as_secs_f64();
    match smtp {
        Ok(smtp_s) => {
            say(
                &a.common,
                serde_json::json!({"node": plan.node, "standby": true, "changed": true,
                    "mail_to": plan.mail_to, "seconds": seconds, "smtp_after_s": smtp_s}),
                &match &plan.mail_to {
                    Some(to) => format!(
                        "{} is in standby after {seconds:.1} s; the mail runs on {to} and SMTP answers on the VIP",
                        plan.node
                    ),
                    None => format!("{} is in standby after {seconds:.1} s", plan.node),
                },
            );
            Ok(())
        }
        // The standby stays: the node is drained as far as Pacemaker
        // can; undoing it would put the mail back on a node the operator
        // wants to patch.
        Err(e) => Err(CliError::Failed(anyhow::anyhow!(
            "{} is in standby, but the move is not done: {e:#}; see mailha status (mailha online {} undoes the standby)",
            plan.node,
            plan.node
        ))),
    }
}

pub fn online(_cli: &Cli, a: &NodeArgs) -> Result<(), CliError> {
    let (st, _) = super::switchover::state()?;
    let Some(node) = sb::online(&st, &a.node).map_err(|r| refused("online", r))? else {
        say(
            &a.common,
            serde_json::json!({"node": a.node, "standby": false, "changed": false}),
            &format!("{} is not in standby: nothing to do", a.node),
        );
        return Ok(());
    };
    let argv = sb::standby_argv(&node, false);
    if a.common.dry_run {
        say(
            &a.common,
            serde_json::json!({"dry_run": true, "node": node, "commands": [argv]}),
            &format!(
                "would run {} (the mail stays where it runs)",
                argv.join(" ")
            ),
        );
        return Ok(());
    }
    super::wait::catch_signals();
    let t0 = Instant::now();
    crate::cluster::change(&argv).with_context(|| format!("bringing {node} back online"))?;
    let wait = a.common.wait();
    let r = until(t0 + wait, wait, reporter(t0, a.common.json), |st| {
        if sb::is_back(st, &node) {
            Verdict::Done(())
        } else {
            Verdict::Waiting(format!("{node}'s clones (the network check) not started"))
        }
    });
    let seconds = t0.elapsed().as_secs_f64();
    r.map_err(|e| {
        CliError::Failed(anyhow::anyhow!(
            "{node} left standby but is not ready to take the mail: {e:#}"
        ))
    })?;
    let st = super::wait::look()?;
    say(
        &a.common,
        serde_json::json!({"node": node, "standby": false, "changed": true, "seconds": seconds,
            "mail_on": st.active_node}),
        &format!(
            "{node} is online and ready to take the mail after {seconds:.1} s; the mail stays on {}",
            st.active_node.as_deref().unwrap_or("no node")
        ),
    );
    Ok(())
}

/// `mailha stop` (`stop`) or `mailha start`.
pub fn stack(_cli: &Cli, c: &Common, stop: bool) -> Result<(), CliError> {
    let verb = if stop { "stop" } else { "start" };
    let (st, cib) = super::switchover::state()?;
    let roots = crate::switchover::roots(&cib)
        .map_err(|e| CliError::BadInput(format!("mailha {verb}: {e}; nothing was changed")))?;
    if !st.quorate {
        return Err(refused(
            verb,
            Refusal::Cluster("the cluster has no quorum".into()),
        ));
    }
    if st.maintenance_mode {
        return Err(refused(
            verb,
            Refusal::Cluster(
                "the cluster is in maintenance mode: nothing would stop or start".into(),
            ),
        ));
    }
    let argvs: Vec<Vec<String>> = roots.iter().map(|r| sb::role_argv(r, stop)).collect();
    if c.dry_run {
        let mut text = if stop {
            format!(
                "would stop the mail stack{} (services first, the lease last):\n",
                st.active_node
                    .as_deref()
                    .map(|n| format!(" on {n}"))
                    .unwrap_or_default()
            )
        } else {
            "would start the mail stack (the lease first, the services last):\n".to_string()
        };
        for a in &argvs {
            text.push_str(&format!("  {}\n", a.join(" ")));
        }
        say(
            c,
            serde_json::json!({"dry_run": true, "commands": argvs}),
            text.trim_end(),
        );
        return Ok(());
    }
    let vip = crate::switchover::vip_address(&cib);
    super::wait::catch_signals();
    let t0 = Instant::now();
    for a in &argvs {
        crate::cluster::change(a).with_context(|| format!("mailha {verb}: {}", a.join(" ")))?;
    }
    let wait = c.wait();
    let deadline = t0 + wait;
    let r = until(deadline, wait, reporter(t0, c.json), |st| {
        if stop {
            return if sb::all_stopped(st) {
                Verdict::Done(None)
            } else {
                Verdict::Waiting("the mail stack still runs".into())
            };
        }
        let Some(n) = st.active_node.clone() else {
            return Verdict::Waiting("the mail runs nowhere yet".into());
        };
        let up = st
            .resources
            .iter()
            .filter(|r| sb::in_stack(r))
            .all(|r| r.role == "Started" && r.nodes == [n.clone()]);
        if !up {
            return Verdict::Waiting(format!("the mail stack is starting on {n}"));
        }
        match vip
            .as_deref()
            .map(|v| super::wait::smtp_answers(v, deadline))
        {
            Some(Err(e)) => Verdict::Waiting(format!("SMTP on the VIP: {e}")),
            _ => Verdict::Done(Some(n)),
        }
    });
    let seconds = t0.elapsed().as_secs_f64();
    match r {
        Ok(on) => {
            say(
                c,
                serde_json::json!({"verb": verb, "changed": true, "seconds": seconds, "mail_on": on}),
                &match &on {
                    Some(n) => format!(
                        "the mail stack started on {n} in {seconds:.1} s; SMTP answers on the VIP"
                    ),
                    None => format!(
                        "the mail stack is stopped ({seconds:.1} s); mailha start brings it back"
                    ),
                },
            );
            Ok(())
        }
        Err(e) => Err(CliError::Failed(anyhow::anyhow!(
            "mailha {verb}: not done: {e:#}; see mailha status"
        ))),
    }
}
