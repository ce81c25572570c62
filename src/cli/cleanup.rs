//! `mailha cleanup [SERVICE] [--node NODE] [--dry-run] [--json]`: the
//! failures recorded (`ops::cleanup`), forgotten one resource on one node
//! at a time, then read back.

use super::CliError;
use crate::ops::cleanup::{self, Recorded};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this service (as in mailha.toml, or a resource id as
    /// `mailha status` shows it: svc-postfix, fs-data, vip).
    pub service: Option<String>,
    /// Only on this node.
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Print what would be forgotten; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How long Pacemaker may take to drop the history after a cleanup.
const SETTLE: Duration = Duration::from_secs(30);

pub fn run(a: &Args) -> Result<(), CliError> {
    let (st, cib) = super::switchover::state()?;
    let resource = match &a.service {
        Some(s) => Some(crate::ops::resolve(&cib, s).map_err(|e| {
            CliError::BadInput(format!("mailha cleanup: {e}; nothing was changed"))
        })?),
        None => None,
    };
    if let Some(n) = &a.node {
        cleanup::check_node(&st, n)
            .map_err(|e| CliError::BadInput(format!("mailha cleanup: {e}; nothing was changed")))?;
    }
    let todo = cleanup::recorded(&st, resource.as_deref(), a.node.as_deref());
    if todo.is_empty() || a.dry_run {
        if a.json {
            println!(
                "{}",
                serde_json::json!({"dry_run": a.dry_run, "would_clear": todo, "cleared": []})
            );
        } else if todo.is_empty() {
            println!("no failures recorded: nothing to clean up");
        } else {
            for r in &todo {
                println!("would forget {r}");
                println!("  {}", r.argv().join(" "));
            }
        }
        return Ok(());
    }
    let mut errors = Vec::new();
    for r in &todo {
        if let Err(e) = crate::cluster::change(&r.argv()) {
            errors.push(format!("{} on {}: {e}", r.resource, r.node));
        }
    }
    // Read back: the history of each pair is gone once the controller
    // has forgotten it (a cleanup is asynchronous).
    let deadline = Instant::now() + SETTLE;
    let still = |st: &crate::status::Status| -> Vec<Recorded> {
        let now = cleanup::recorded(st, resource.as_deref(), a.node.as_deref());
        now.into_iter()
            .filter(|n| {
                todo.iter()
                    .any(|t| t.resource == n.resource && t.node == n.node)
            })
            .collect()
    };
    let left = super::wait::until(
        deadline,
        SETTLE,
        |_| {},
        |st| {
            let left = still(st);
            if left.is_empty() {
                super::wait::Verdict::Done(left)
            } else {
                super::wait::Verdict::Waiting(format!(
                    "still recorded: {}",
                    left.iter()
                        .map(|l| l.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            }
        },
    );
    let (cleared, left): (Vec<&Recorded>, Vec<String>) = match &left {
        Ok(_) => (todo.iter().collect(), Vec::new()),
        Err(e) => (Vec::new(), vec![format!("{e:#}")]),
    };
    if a.json {
        println!(
            "{}",
            serde_json::json!({"dry_run": false, "cleared": cleared, "errors": errors, "left": left})
        );
    } else {
        for r in &cleared {
            println!("forgot {r}");
        }
    }
    if !errors.is_empty() || !left.is_empty() {
        let mut all = errors;
        all.extend(left);
        return Err(CliError::Failed(anyhow::anyhow!(
            "cleanup incomplete: {}",
            all.join("; ")
        )));
    }
    Ok(())
}
