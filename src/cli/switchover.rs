//! `mailha switchover [--to NODE] [--dry-run] [--wait[=TIMEOUT]] [--json]`
//! and `mailha switchover --clear`. The decision is `crate::switchover`
//! (pure); here the tools run, and a guard removes the temporary
//! constraint on every way out: done, failed, timed out, interrupted.

use super::{Cli, CliError};
use crate::cib::xml::El;
use crate::switchover::{self as sw, Keeper, Plan, Refusal};
use anyhow::Context;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node to move the mail to (default: the other node).
    #[arg(long, value_name = "NODE", conflicts_with = "clear")]
    pub to: Option<String>,
    /// Print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for SMTP to answer on the VIP after the move
    /// (default 120s); the move's constraint is removed when it does, or
    /// when this runs out.
    #[arg(
        long,
        value_name = "TIMEOUT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "120s",
        conflicts_with = "clear"
    )]
    pub wait: Option<humantime::Duration>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Remove the constraints `crm_resource --move/--ban` left (cli-prefer-*,
    /// cli-ban-*), saying which.
    #[arg(long)]
    pub clear: bool,
}

const DEFAULT_WAIT: Duration = Duration::from_secs(120);
const KEEPER_DEADLINE: Duration = Duration::from_secs(2);
pub(super) fn state() -> Result<(crate::status::Status, El), CliError> {
    let xml = crate::cluster::crm_mon().context("asking Pacemaker for the cluster state")?;
    let st = crate::status::parse(&xml).context("reading crm_mon's answer")?;
    let cib = crate::cluster::query_configuration().context("reading the CIB's configuration")?;
    Ok((st, cib))
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    if a.clear {
        return clear(a);
    }
    let (st, cib) = state()?;
    let keeper = keeper(cli, &cib);
    let plan = match sw::plan(&st, &cib, a.to.as_deref(), &keeper) {
        Ok(p) => p,
        Err(Refusal::AlreadyThere(n)) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"from": n, "to": n, "moved": false, "ok": true})
                );
            } else {
                println!("the mail already runs on {n}: nothing to do");
            }
            return Ok(());
        }
        Err(r) => {
            return Err(CliError::BadInput(format!(
                "mailha switchover: {r}; nothing was changed"
            )));
        }
    };
    let vip = sw::vip_address(&cib)
        .ok_or_else(|| CliError::Failed(anyhow::anyhow!("the CIB's vip has no ip")))?;
    let wait = a.wait.map(Duration::from).unwrap_or(DEFAULT_WAIT);
    if a.dry_run {
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "dry_run": true, "from": plan.from, "to": plan.to,
                    "roots": plan.roots, "stack": plan.stack,
                    "constraints": plan.constraint_ids(),
                    "commands": plan.roots.iter().map(|r| plan.move_argv(r))
                        .chain(plan.roots.iter().map(|r| sw::clear_argv(r))).collect::<Vec<_>>(),
                }))
                .expect("serializable")
            );
        } else {
            print!("{}", describe(&plan, &vip, wait));
        }
        return Ok(());
    }
    super::wait::catch_signals();
    let started = Instant::now();
    let mut pin = Pin {
        roots: Vec::new(),
        ids: plan.constraint_ids(),
        done: false,
        quiet: a.json,
    };
    let result = carry_out(&plan, &vip, wait, &mut pin, started);
    let cleared = pin.release();
    let seconds = started.elapsed().as_secs_f64();
    match (result, cleared) {
        (Ok(smtp_s), Ok(ids)) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "from": plan.from, "to": plan.to, "moved": true, "ok": true,
                        "roots": plan.roots, "seconds": seconds, "smtp_after_s": smtp_s,
                        "cleared": ids,
                    }))
                    .expect("serializable")
                );
            } else {
                println!(
                    "the mail moved from {} to {} in {seconds:.1} s; SMTP answers on {vip}:25",
                    plan.from, plan.to
                );
                println!("removed {}", ids.join(", "));
            }
            Ok(())
        }
        (Err(e), Ok(ids)) => Err(CliError::Failed(anyhow::anyhow!(
            "switchover from {} to {} failed after {seconds:.1} s: {e}; removed {} (nothing left pinned)",
            plan.from,
            plan.to,
            ids.join(", ")
        ))),
        (r, Err(e)) => Err(CliError::Failed(anyhow::anyhow!(
            "{}{e}",
            r.err().map(|e| format!("{e}; ")).unwrap_or_default()
        ))),
    }
}

fn describe(plan: &Plan, vip: &str, wait: Duration) -> String {
    let mut o = format!(
        "would move the mail from {} to {}: {}\n",
        plan.from,
        plan.to,
        plan.stack.join(", ")
    );
    for r in &plan.roots {
        o.push_str(&format!(
            "  {}   (adds constraint cli-prefer-{r})\n",
            plan.move_argv(r).join(" ")
        ));
    }
    o.push_str(&format!(
        "  wait up to {} for SMTP on {vip}:25\n",
        humantime::format_duration(wait)
    ));
    for r in &plan.roots {
        o.push_str(&format!(
            "  {}   (removes it, also if the move fails)\n",
            sw::clear_argv(r).join(" ")
        ));
    }
    o
}

/// The temporary constraints: removed by `release`, or when dropped on a
/// way out `release` was not called on (an early return, a panic).
struct Pin {
    roots: Vec<String>,
    ids: Vec<String>,
    done: bool,
    quiet: bool,
}

impl Pin {
    /// Clears every pinned root, then checks the CIB holds none of the
    /// ids any more; the ids removed.
    fn release(&mut self) -> anyhow::Result<Vec<String>> {
        self.done = true;
        let mut errors = Vec::new();
        for r in &self.roots {
            if let Err(e) = crate::cluster::change(&sw::clear_argv(r)) {
                errors.push(e.to_string());
            }
        }
        let left: Vec<String> = match crate::cluster::query_configuration() {
            Ok(c) => sw::leftovers(&c)
                .into_iter()
                .map(|l| l.id)
                .filter(|id| self.ids.contains(id))
                .collect(),
            Err(e) => {
                errors.push(format!("reading the CIB back: {e}"));
                self.ids.clone()
            }
        };
        if !left.is_empty() || !errors.is_empty() {
            anyhow::bail!(
                "could not remove {} ({}): run mailha switchover --clear",
                left.join(", "),
                errors.join("; ")
            );
        }
        Ok(self.ids.clone())
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        if !self.done {
            match self.release() {
                Ok(ids) if !self.quiet => eprintln!("removed {}", ids.join(", ")),
                Ok(_) => {}
                Err(e) => eprintln!("mailha: {e:#}"),
            }
        }
    }
}

/// The moves, then the wait: Pacemaker says the stack runs on the
/// target, then SMTP answers on the VIP. Seconds from `started` to the
/// first SMTP answer.
fn carry_out(
    plan: &Plan,
    vip: &str,
    wait: Duration,
    pin: &mut Pin,
    started: Instant,
) -> anyhow::Result<f64> {
    for r in &plan.roots {
        // Pinned before the command runs: one that timed out may still
        // have landed.
        pin.roots.push(r.clone());
        crate::cluster::change(&plan.move_argv(r))
            .with_context(|| format!("moving {r} to {}", plan.to))?;
    }
    let deadline = started + wait;
    super::wait::until(
        deadline,
        wait,
        super::wait::reporter(started, pin.quiet),
        |st| {
            use super::wait::Verdict;
            if let Some(f) = sw::failed_on_target(st, plan) {
                return Verdict::Failed(f);
            }
            if !sw::landed(st, plan) {
                return Verdict::Waiting(format!(
                    "the mail runs on {}",
                    st.active_node.as_deref().unwrap_or("no node")
                ));
            }
            match super::wait::smtp_answers(vip, deadline) {
                Ok(()) => Verdict::Done(started.elapsed().as_secs_f64()),
                Err(e) => Verdict::Waiting(format!("SMTP on {vip}:25: {e}")),
            }
        },
    )
}

/// The lease keeper's view, asked only where the cluster fences by lease
/// and is live (not a saved CIB).
pub(super) fn keeper(cli: &Cli, cib: &El) -> Keeper {
    if cib.by_id(crate::cib::LEASE_ID).is_none() || crate::cluster::on_a_file() {
        return Keeper::NotUsed;
    }
    let host = crate::host::hostname();
    let me = crate::config::load(&cli.config)
        .ok()
        .and_then(|l| {
            crate::host::local_node(&l.config, &host, &crate::host::bound_addresses())
                .map(|n| n.name.clone())
        })
        .or_else(|| crate::configsync::me_in_cib(cib, &host))
        .unwrap_or(host);
    Keeper::Asked {
        me,
        answer: crate::lease::client::status(crate::lease::client::DEFAULT_SOCKET, KEEPER_DEADLINE)
            .map(Box::new),
    }
}

fn clear(a: &Args) -> Result<(), CliError> {
    let cib = crate::cluster::query_configuration().context("reading the CIB's configuration")?;
    let left = sw::leftovers(&cib);
    let say = |l: &crate::status::LeftoverMove| {
        let what = if l.id.starts_with("cli-ban-") {
            "ban"
        } else {
            "preference"
        };
        format!("{} ({what} of {} on {})", l.id, l.resource, l.node)
    };
    let mut resources: Vec<&str> = left.iter().map(|l| l.resource.as_str()).collect();
    resources.sort();
    resources.dedup();
    if a.dry_run || left.is_empty() {
        if a.json {
            println!(
                "{}",
                serde_json::json!({"dry_run": a.dry_run, "would_clear": left.iter().map(|l| &l.id).collect::<Vec<_>>(), "cleared": []})
            );
        } else if left.is_empty() {
            println!("no constraints left by crm_resource --move/--ban: nothing to clear");
        } else {
            for l in &left {
                println!("would remove {}", say(l));
            }
        }
        return Ok(());
    }
    let mut errors = Vec::new();
    for r in &resources {
        if let Err(e) = crate::cluster::change(&sw::clear_argv(r)) {
            errors.push(e.to_string());
        }
    }
    let after = crate::cluster::query_configuration()
        .map(|c| sw::leftovers(&c))
        .context("reading the CIB back")?;
    let (gone, still): (Vec<_>, Vec<_>) = left
        .iter()
        .partition(|l| !after.iter().any(|x| x.id == l.id));
    if a.json {
        println!(
            "{}",
            serde_json::json!({"dry_run": false, "cleared": gone.iter().map(|l| &l.id).collect::<Vec<_>>(),
                "left": still.iter().map(|l| &l.id).collect::<Vec<_>>()})
        );
    } else {
        for l in &gone {
            println!("removed {}", say(l));
        }
    }
    if !still.is_empty() || !errors.is_empty() {
        return Err(CliError::Failed(anyhow::anyhow!(
            "could not remove {}: {}",
            still
                .iter()
                .map(|l| l.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            errors.join("; ")
        )));
    }
    Ok(())
}
