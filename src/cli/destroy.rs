//! `mailha destroy --yes-really-destroy` (`ops::destroy`): the mail
//! stack stopped through the cluster, then the peer and this node taken
//! out of the cluster for good. Without the flag, or with `--dry-run`, it
//! prints what it would do and changes nothing.

use super::{Cli, CliError, load_config};
use crate::ops::destroy;
use crate::setup::{self, Paths};
use anyhow::Context;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Really: stop the mail, take both nodes out of the cluster, remove
    /// the cluster's configuration and keys (never the mail's data).
    #[arg(long)]
    pub yes_really_destroy: bool,
    /// Print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// This node only (what the node running `destroy` asks its peer
    /// over SSH, after the mail stack was stopped).
    #[arg(long)]
    pub local: bool,
    /// Extra ssh options, e.g. `-i KEY` (repeatable).
    #[arg(long = "ssh-option", value_name = "OPT", allow_hyphen_values = true)]
    pub ssh_options: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

const STOP_WAIT: Duration = Duration::from_secs(180);
const STEP_DEADLINE: Duration = Duration::from_secs(90);
const SSH_DEADLINE: Duration = Duration::from_secs(240);

/// This node's part; returns what it did, one line each.
fn local(cli: &Cli, a: &Args) -> Result<Vec<String>, CliError> {
    let loaded = load_config(&cli.config)?;
    let cfg = &loaded.config;
    let paths = Paths::system();
    let lease = setup::lease_guard(cfg);
    let entries = crate::mounts::mountinfo::read().context("reading this node's mounts")?;
    let mounted: Vec<String> = cfg
        .storage
        .mounts
        .iter()
        .map(|m| m.mount_point.display().to_string())
        .filter(|p| crate::mounts::mountinfo::find(&entries, p).is_some())
        .collect();
    let (holds, keeper_error) = if lease {
        match crate::lease::client::status(
            crate::lease::client::DEFAULT_SOCKET,
            Duration::from_secs(2),
        ) {
            Ok(s) => (Some(s.holds), None),
            // A keeper already stopped holds nothing: its watchdog is
            // armed only while it holds (it says so when it exits).
            Err(e) if e.contains("is not running") => (Some(false), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let why = destroy::refusals(&mounted, holds, keeper_error.as_deref());
    let init = setup::init_system(&paths.root);
    let cmds = destroy::stop_commands(init, lease);
    let files: Vec<_> = destroy::files(&paths, &destroy::regular_files)
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    let dropins: Vec<_> = setup::managed_units(cfg)
        .iter()
        .map(|u| {
            (
                u.clone(),
                crate::agents::service::unit::dropin_path(&paths.root, u),
            )
        })
        .filter(|(_, p)| p.exists())
        .collect();
    let host = crate::host::hostname();
    if !why.is_empty() {
        return Err(CliError::BadInput(format!(
            "mailha destroy on {host}: {}; nothing was changed",
            why.join("; ")
        )));
    }
    let mut did = Vec::new();
    if a.dry_run || !a.yes_really_destroy {
        for c in &cmds {
            did.push(format!("{host}: would run {}", c.join(" ")));
        }
        for f in &files {
            did.push(format!("{host}: would remove {}", f.display()));
        }
        for (u, p) in &dropins {
            did.push(format!(
                "{host}: would remove {} (mailha's drop-in for {u})",
                p.display()
            ));
        }
        return Ok(did);
    }
    for c in &cmds {
        let argv: Vec<&str> = c.iter().map(String::as_str).collect();
        let o = crate::exec::run(&argv, &[], None, STEP_DEADLINE).with_context(|| c.join(" "))?;
        if !o.success() {
            return Err(CliError::Failed(anyhow::anyhow!(
                "{host}: {} failed ({:?}): {}",
                c.join(" "),
                o.code,
                o.stderr.trim()
            )));
        }
        did.push(format!("{host}: ran {}", c.join(" ")));
    }
    let mut per_dir: Vec<(std::path::PathBuf, usize)> = Vec::new();
    for f in &files {
        std::fs::remove_file(f).with_context(|| format!("removing {}", f.display()))?;
        let dir = f.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        match per_dir.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, n)) => *n += 1,
            None => per_dir.push((dir, 1)),
        }
    }
    for (dir, n) in per_dir {
        // Corosync's two files by name; Pacemaker's saved CIBs and
        // scheduler inputs by count.
        if dir.ends_with("corosync") {
            did.push(format!(
                "{host}: removed Corosync's key and configuration in {}",
                dir.display()
            ));
        } else {
            did.push(format!("{host}: removed {n} files in {}", dir.display()));
        }
    }
    for (u, p) in &dropins {
        std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
        if let Some(dir) = p.parent() {
            // Only when empty: another drop-in there is the administrator's.
            let _ = std::fs::remove_dir(dir);
        }
        did.push(format!(
            "{host}: removed mailha's drop-in for {u} (the unit stays disabled: systemctl enable {u} to run it without the cluster)"
        ));
    }
    if !dropins.is_empty() && init == setup::InitSystem::Systemd {
        let _ = crate::exec::run(&["systemctl", "daemon-reload"], &[], None, STEP_DEADLINE);
    }
    did.push(format!(
        "{host}: kept {} and the mail's data",
        paths.mailha_toml().display()
    ));
    Ok(did)
}

fn print(a: &Args, did: &[String], done: bool) {
    if a.json {
        println!(
            "{}",
            serde_json::json!({"destroyed": done, "dry_run": !done, "steps": did})
        );
    } else {
        for l in did {
            println!("{l}");
        }
    }
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let really = a.yes_really_destroy && !a.dry_run;
    if a.local {
        let did = local(cli, a)?;
        print(a, &did, really);
        return Ok(());
    }
    let loaded = load_config(&cli.config)?;
    let cfg = &loaded.config;
    let (_, peer) = crate::host::me_and_peer(
        cfg,
        &crate::host::hostname(),
        &crate::host::bound_addresses(),
    )
    .ok_or_else(|| {
        CliError::BadInput(format!(
            "this machine is neither {} nor {}: run mailha destroy on a node",
            cfg.cluster.nodes[0].name, cfg.cluster.nodes[1].name
        ))
    })?;
    let peer_says = |extra: &[&str]| -> Result<Vec<String>, CliError> {
        let mut remote = vec!["mailha", "destroy", "--local", "--json"];
        remote.extend_from_slice(extra);
        let argv = setup::ssh_to(cfg, peer, &a.ssh_options, &remote);
        let o = crate::exec::run(&argv, &[], None, SSH_DEADLINE)
            .with_context(|| format!("asking {} over ssh", peer.name))?;
        if !o.success() {
            return Err(CliError::Failed(anyhow::anyhow!(
                "{}: {} (exit {:?})",
                peer.name,
                o.stderr.trim(),
                o.code
            )));
        }
        let v: serde_json::Value = serde_json::from_str(o.stdout.trim())
            .with_context(|| format!("{}'s answer: {}", peer.name, o.stdout.trim()))?;
        Ok(v["steps"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    };
    let mail_running = crate::cluster::crm_mon()
        .ok()
        .and_then(|x| crate::status::parse(&x).ok());
    let roots = crate::cluster::query_configuration()
        .ok()
        .and_then(|c| crate::switchover::roots(&c).ok())
        .unwrap_or_default();
    let mut did: Vec<String> = Vec::new();
    if !really {
        // Reachable, and what the peer would do (its own refusals wait
        // until the stack is stopped).
        if mail_running.is_some() {
            for r in &roots {
                did.push(format!(
                    "would stop the mail stack: {}",
                    crate::ops::standby::role_argv(r, true).join(" ")
                ));
            }
        }
        did.push(format!(
            "would then ask {} over ssh: mailha destroy --local",
            peer.name
        ));
        did.push(format!("would then destroy {}:", crate::host::hostname()));
        let me = Args {
            dry_run: true,
            local: true,
            ssh_options: Vec::new(),
            yes_really_destroy: false,
            json: a.json,
        };
        match local(cli, &me) {
            Ok(l) => did.extend(l),
            Err(e) => did.push(format!("(now: {e})")),
        }
        print(a, &did, false);
        if !a.yes_really_destroy && !a.dry_run {
            return Err(CliError::BadInput(
                "mailha destroy takes the cluster down for good: add --yes-really-destroy (--dry-run shows the steps)".into(),
            ));
        }
        return Ok(());
    }
    // The peer must answer before anything stops.
    peer_says(&["--dry-run"]).map_err(|e| {
        CliError::Failed(anyhow::anyhow!(
            "{e:#}; nothing was changed (the peer must be reachable over ssh)"
        ))
    })?;
    if let Some(st) = mail_running {
        if st.maintenance_mode {
            return Err(CliError::BadInput(
                "the cluster is in maintenance mode: nothing would stop; mailha maintenance off first; nothing was changed".into(),
            ));
        }
        super::wait::catch_signals();
        let t0 = Instant::now();
        for r in &roots {
            let argv = crate::ops::standby::role_argv(r, true);
            crate::cluster::change(&argv).context("stopping the mail stack")?;
            did.push(format!("ran {}", argv.join(" ")));
        }
        super::wait::until(
            t0 + STOP_WAIT,
            STOP_WAIT,
            super::wait::reporter(t0, a.json),
            |st| {
                if crate::ops::standby::all_stopped(st) {
                    super::wait::Verdict::Done(())
                } else {
                    super::wait::Verdict::Waiting("the mail stack still runs".into())
                }
            },
        )
        .map_err(|e| {
            CliError::Failed(anyhow::anyhow!(
                "the mail stack did not stop: {e:#}; the cluster is left as it is (target-role Stopped: mailha start undoes it)"
            ))
        })?;
        did.push(format!(
            "the mail stack stopped in {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
    }
    did.extend(peer_says(&["--yes-really-destroy"]).map_err(|e| {
        CliError::Failed(anyhow::anyhow!(
            "{e:#}; the mail stack is stopped, this node is untouched"
        ))
    })?);
    did.extend(local(cli, a)?);
    print(a, &did, true);
    Ok(())
}
