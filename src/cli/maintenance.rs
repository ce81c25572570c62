//! `mailha maintenance on|off [SERVICE] [--dry-run] [--json] [--wait[=T]]`
//! (`ops::maintenance`). `off` re-probes what runs, shows what Pacemaker
//! would do once in charge again (crm_simulate over the CIB as it will
//! be), then hands control back and waits for the cluster to settle.

use super::{Cli, CliError};
use crate::ops::maintenance::{self as m, Scope};
use anyhow::Context;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// on: Pacemaker starts, stops and monitors nothing (or nothing of
    /// SERVICE); off: re-probe, show what Pacemaker would do, hand back.
    pub state: OnOff,
    /// Only this service (as in mailha.toml, or svc-NAME): unmanaged and
    /// unmonitored while the rest of the cluster runs as usual.
    pub service: Option<String>,
    #[command(flatten)]
    pub common: super::wait::Common,
}

/// The re-probe's bound: one probe per resource and node.
const PROBE_WAIT: Duration = Duration::from_secs(60);

fn settle(within: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        if crate::cluster::settled(left.as_secs().max(1)).context("crm_resource --wait")? {
            return Ok(true);
        }
        if super::wait::interrupted() {
            anyhow::bail!("interrupted");
        }
    }
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let cib = crate::cluster::query().context("reading the CIB")?;
    let scope = match &a.service {
        None => Scope::Cluster,
        Some(s) => Scope::Resource(crate::ops::resolve(&cib, s).map_err(|e| {
            CliError::BadInput(format!("mailha maintenance: {e}; nothing was changed"))
        })?),
    };
    let on = m::is_on(&cib, &scope);
    match a.state {
        OnOff::On => {
            let argv = m::on_argv(&scope);
            if on || a.common.dry_run {
                report(
                    a,
                    serde_json::json!({"scope": scope.to_string(), "maintenance": true,
                        "changed": false, "dry_run": a.common.dry_run, "commands": [argv]}),
                    &if on {
                        format!("{scope} is already in maintenance")
                    } else {
                        format!("would run {}", argv.join(" "))
                    },
                );
                return Ok(());
            }
            crate::cluster::change(&argv).context("entering maintenance")?;
            let what = match &scope {
                Scope::Cluster => "the cluster is in maintenance: Pacemaker starts, stops and monitors nothing (daemons may be upgraded by hand); mailha maintenance off hands it back".to_string(),
                Scope::Resource(r) => format!(
                    "{r} is in maintenance: Pacemaker neither manages nor monitors it; mailha maintenance off {r} hands it back"
                ),
            };
            report(
                a,
                serde_json::json!({"scope": scope.to_string(), "maintenance": true, "changed": true}),
                &what,
            );
            Ok(())
        }
        OnOff::Off => off(cli, a, &scope, &cib, on),
    }
}

fn report(a: &Args, json: serde_json::Value, text: &str) {
    if a.common.json {
        println!("{json}");
    } else {
        println!("{text}");
    }
}

fn off(
    cli: &Cli,
    a: &Args,
    scope: &Scope,
    cib: &crate::cib::xml::El,
    on: bool,
) -> Result<(), CliError> {
    if !on {
        report(
            a,
            serde_json::json!({"scope": scope.to_string(), "maintenance": false, "changed": false}),
            &format!("{scope} is not in maintenance: nothing to hand back"),
        );
        return Ok(());
    }
    super::wait::catch_signals();
    let t0 = Instant::now();
    let replaced = replaced_here(cli);
    if !a.common.json {
        for r in &replaced {
            eprintln!("warning: {r}");
        }
    }
    // What runs where, learnt again: the operator may have started,
    // stopped or upgraded daemons by hand.
    let mut probed = false;
    let mut cib = cib.clone();
    if !a.common.dry_run {
        crate::cluster::change(&m::refresh_argv(scope)).context("re-probing")?;
        probed = settle(PROBE_WAIT).context("waiting for the probes")?;
        if !a.common.json {
            eprintln!(
                "re-probed {scope}{}",
                if probed {
                    ""
                } else {
                    " (not settled yet: the preview may miss a probe's result)"
                }
            );
        }
        cib = crate::cluster::query().context("reading the CIB")?;
    }
    let dir = tempfile::tempdir().context("temporary directory")?;
    let xml = crate::cluster::simulate(&m::handed_back(&cib, scope), dir.path())
        .context("asking crm_simulate what Pacemaker would do")?;
    let planned = crate::ops::simulated(&xml).map_err(|e| CliError::Failed(anyhow::anyhow!(e)))?;
    if !a.common.json {
        if planned.is_empty() {
            println!("once handed back, Pacemaker changes nothing");
        } else {
            println!("once handed back, Pacemaker will:");
            for p in &planned {
                println!("  {p}");
            }
        }
    }
    let argv = m::off_argv(scope);
    if a.common.dry_run {
        report(
            a,
            serde_json::json!({"scope": scope.to_string(), "dry_run": true, "would_do": planned,
                "commands": [m::refresh_argv(scope), argv], "replaced": replaced}),
            &format!(
                "would run {} then {} (the preview above is without the re-probe)",
                m::refresh_argv(scope).join(" "),
                argv.join(" ")
            ),
        );
        return Ok(());
    }
    crate::cluster::change(&argv).context("leaving maintenance")?;
    let wait = a.common.wait();
    let settled = settle(wait).context("waiting for the cluster to settle")?;
    let st = super::wait::look()?;
    let seconds = t0.elapsed().as_secs_f64();
    report(
        a,
        serde_json::json!({"scope": scope.to_string(), "maintenance": false, "changed": true,
            "probed": probed, "did": planned, "settled": settled, "seconds": seconds,
            "mail_on": st.active_node, "replaced": replaced}),
        &format!(
            "{scope} is managed again{}; the mail runs on {}",
            if settled {
                format!(" and settled after {seconds:.1} s")
            } else {
                format!(", NOT settled within {}", humantime::format_duration(wait))
            },
            st.active_node.as_deref().unwrap_or("no node")
        ),
    );
    if settled {
        Ok(())
    } else {
        Err(CliError::Failed(anyhow::anyhow!(
            "the cluster did not settle within {} after maintenance off: see mailha status",
            humantime::format_duration(wait)
        )))
    }
}

/// This node's daemons of configured services that still run an
/// executable an upgrade replaced (`ops::maintenance::replaced`): found
/// from /proc, no process started. Without a readable config there is
/// nothing to look for; handing back must not depend on it.
fn replaced_here(cli: &Cli) -> Vec<m::Replaced> {
    let Ok(loaded) = crate::config::load(&cli.config) else {
        return Vec::new();
    };
    let root = std::path::Path::new("/proc");
    let procs: Vec<_> = crate::procs::all(root)
        .into_iter()
        .filter_map(|p| crate::procs::read(root, p))
        .collect();
    m::replaced(
        loaded
            .config
            .services
            .list
            .iter()
            .filter_map(|s| Some((s.name.as_str(), s.executable.as_deref()?, s.unit.as_deref()))),
        &procs,
    )
}
