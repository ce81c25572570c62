//! `mailha apply [--dry-run] [--force]`: push mailha.toml to the running
//! cluster in one verified transaction, and the file to the peer. Only
//! what changed changes: Pacemaker restarts a resource only when its own
//! definition or a constraint on it moved.
//!
//! Order, so that a refusal changes nothing anywhere: this file against
//! the running config (an older file refuses without `--force`), render,
//! merge, crm_verify, the peer's own check of the file (`config receive`
//! with `check_only`), then the CIB patch (refused by the CIB itself if
//! anything landed since it was read), then the file to the peer.

use super::{Cli, CliError, load_config};
use crate::cib::xml::El;
use crate::cluster;
use crate::config::Config;
use crate::configsync::{self, Push, record};
use anyhow::Context;
use record::{FileState, Running};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show the diff and verify it (the peer checks the file too), but
    /// change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even a file older than what runs (it reverts the newer
    /// generations; the diff shows what).
    #[arg(long)]
    pub force: bool,
    /// Extra ssh options to reach the peer, e.g. `-i KEY` (repeatable).
    #[arg(long = "ssh-option", value_name = "OPT", allow_hyphen_values = true)]
    pub ssh_options: Vec<String>,
}

impl Args {
    pub fn plain() -> Args {
        Args {
            dry_run: false,
            force: false,
            ssh_options: Vec::new(),
        }
    }
}

/// How patches that lost only to status updates (num_updates) are retried.
const PATCH_TRIES: usize = 5;
const SSH_DEADLINE: Duration = Duration::from_secs(60);

/// "generation 7, applied by root@node1 at 2026-...".
pub fn applied(r: &record::Record) -> String {
    format!(
        "generation {}, applied by {}@{} at {}",
        r.generation, r.user, r.node, r.at
    )
}

/// What applying `file` over `running` would undo, secrets left out.
fn revert_diff(running: &Running, file: &str) -> String {
    let (file, _) = record::redact(file);
    record::text_diff(
        &running.text,
        &file,
        &format!("running (generation {})", running.record.generation),
        "this file",
    )
}

pub fn refusal(state: &FileState, running: &Running, file: &str) -> String {
    let what = match state {
        FileState::Behind { generation, .. } => {
            format!("this file is generation {generation}, older than what runs")
        }
        FileState::Diverged { base, .. } => {
            format!("this file was edited from generation {base}, which is now behind what runs")
        }
        _ => "this node has no file".into(),
    };
    format!(
        "refused: {what}: the cluster runs {}.\nApplying it would revert:\n{}Take the running config with `mailha config pull` (edits of yours are kept as mailha.toml.unapplied) and redo your change, or apply this file anyway with `mailha apply --force`.",
        applied(&running.record),
        revert_diff(running, file)
    )
}

/// The peer's answer to a push.
pub enum PeerAnswer {
    Ok(String),
    /// It refused the file (exit 2): its own file:line errors.
    Refused(String),
    /// ssh or the peer failed otherwise.
    Unreachable(String),
}

pub fn push_to_peer(
    cfg: &Config,
    peer: &crate::config::Node,
    ssh: &[String],
    p: &Push,
) -> PeerAnswer {
    let argv = crate::setup::ssh_to(cfg, peer, ssh, configsync::RECEIVE_ARGV);
    let payload = serde_json::to_vec(p).expect("serializable");
    match crate::exec::run(&argv, &[], Some(&payload), SSH_DEADLINE) {
        Err(e) => PeerAnswer::Unreachable(e.to_string()),
        Ok(o) if o.success() => PeerAnswer::Ok(o.stdout.trim().to_string()),
        Ok(o) if o.code == Some(2) => PeerAnswer::Refused(o.stderr.trim().to_string()),
        Ok(o) => PeerAnswer::Unreachable(format!("exit {:?}: {}", o.code, o.stderr.trim())),
    }
}

/// The CIB to patch to: `desired` merged into `live`, the running config
/// recorded, this node's generation set.
fn build(live: &El, desired: &El, running: Option<&Running>, me: &str) -> Result<El, CliError> {
    let mut new = cluster::merge(live, desired).context("merging")?;
    if let Some(r) = running {
        record::store(&mut new, r).map_err(|e| CliError::BadInput(e.to_string()))?;
        record::set_node_generation(&mut new, me, r.record.generation);
    }
    Ok(new)
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let loaded = load_config(&cli.config)?;
    let cfg = &loaded.config;
    let local = super::sync_local(cli);
    let key = local.key().context("keying the config digest")?;
    let (me, peer) = match crate::host::me_and_peer(
        cfg,
        &crate::host::hostname(),
        &crate::host::bound_addresses(),
    ) {
        Some((m, p)) if !cluster::on_a_file() => (m.name.clone(), Some(p)),
        Some((m, _)) => (m.name.clone(), None),
        None => {
            eprintln!(
                "note: this machine is neither {} nor {}: the file goes to no peer",
                cfg.cluster.nodes[0].name, cfg.cluster.nodes[1].name
            );
            (crate::host::hostname(), None)
        }
    };
    let desired = crate::cib::render_with_digest(cfg);
    let mut live = cluster::query().context("reading the live CIB")?;
    let running = Running::from_cib(&live).context("reading the running config")?;
    let digest = key.digest(loaded.text.as_bytes());
    let state = record::judge(
        running.as_ref().map(|r| &r.record),
        Some(&digest),
        record::node_generation(&live, &me),
    );
    if let Some(r) = &running
        && state.would_revert()
        && !a.force
    {
        return Err(CliError::BadInput(refusal(&state, r, &loaded.text)));
    }

    let (redacted, fields) = record::redact(&loaded.text);
    let files = configsync::file_refs(cfg, &key);
    let text_changed = !matches!(state, FileState::Same { .. })
        || running.as_ref().is_some_and(|r| r.record.files != files);
    let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let next = |prev: Option<&Running>| Running {
        record: record::Record::next(
            prev.map(|r| &r.record),
            digest.clone(),
            fields.clone(),
            files.clone(),
            &me,
            &super::operator(),
            &at,
        ),
        text: redacted.clone(),
    };

    let live_conf = live
        .find("configuration")
        .cloned()
        .unwrap_or_else(|| El::new("configuration"));
    let plain = cluster::merge(&live, &desired).context("merging")?;
    let d = cluster::diff(
        &record::without_record(&live_conf),
        &record::without_record(plain.find("configuration").expect("merge keeps it")),
    );
    let peer_gen = peer.and_then(|p| record::node_generation(&live, &p.name));
    if d.is_empty() && !text_changed {
        println!("the cluster already runs this configuration");
        // A peer that missed the last push gets it again.
        if let (Some(p), Some(r)) = (peer, &running)
            && peer_gen != Some(r.record.generation)
            && !a.dry_run
        {
            send(cfg, p, a, r, &loaded.text, &me, false)?;
        }
        return Ok(());
    }
    print!("{d}");
    if let Some(r) = &running
        && !matches!(state, FileState::Same { .. })
    {
        print!(
            "{}",
            record::text_diff(
                &r.text,
                &redacted,
                &format!("running mailha.toml (generation {})", r.record.generation),
                "this file"
            )
        );
    }
    let mut rec = next(running.as_ref());
    let mut new = build(&live, &desired, Some(&rec), &me)?;
    let dir = tempfile::tempdir().context("temporary directory")?;
    let warnings = cluster::verify(&new, dir.path()).map_err(|e| match e {
        cluster::ClusterError::Rejected(_) => CliError::BadInput(e.to_string()),
        other => CliError::Failed(other.into()),
    })?;
    if !warnings.is_empty() {
        eprintln!("crm_verify: {warnings}");
    }
    // The peer checks the file as its own before anything changes.
    let mut peer_ok = true;
    if let Some(p) = peer {
        peer_ok = send(cfg, p, a, &rec, &loaded.text, &me, true)?;
    }
    if a.dry_run {
        println!("dry run: verified, nothing changed");
        return Ok(());
    }
    // Another node's apply may have replaced this file meanwhile (its push
    // keeps these edits as mailha.toml.unapplied): its record may already
    // count this node as up to date, so this text must not go in.
    if std::fs::read(&cli.config).ok().as_deref() != Some(loaded.text.as_bytes()) {
        return Err(CliError::Failed(anyhow::anyhow!(
            "{} changed while this apply ran (another node's apply sent its file?): this text is now behind; nothing was changed. See `mailha status`, then `mailha config pull` and redo your change.",
            cli.config.display()
        )));
    }
    let mut tries = 0;
    loop {
        match cluster::patch(&live, &new, dir.path()) {
            Ok(()) => break,
            Err(cluster::ClusterError::Moved) if tries < PATCH_TRIES => {
                tries += 1;
                live = cluster::query().context("reading the live CIB again")?;
                let now = Running::from_cib(&live).context("reading the running config")?;
                let (was, is) = (
                    running.as_ref().map(|r| r.record.generation),
                    now.as_ref().map(|r| r.record.generation),
                );
                if was != is {
                    let who = now.as_ref().map(|r| applied(&r.record)).unwrap_or_default();
                    return Err(CliError::Failed(anyhow::anyhow!(
                        "another apply won: the cluster now runs {who}. This file is now behind it; this apply changed nothing. Take the running config with `mailha config pull` (your edits are kept as mailha.toml.unapplied), redo your change, and apply again."
                    )));
                }
                // Only status or operator state moved: the same change
                // over the new version.
                rec = next(now.as_ref());
                new = build(&live, &desired, Some(&rec), &me)?;
            }
            Err(e) => {
                return Err(CliError::Failed(
                    anyhow::Error::new(e).context("applying the change"),
                ));
            }
        }
    }
    println!("applied (generation {})", rec.record.generation);
    if let Some(p) = peer
        && peer_ok
    {
        send(cfg, p, a, &rec, &loaded.text, &me, false)?;
    }
    Ok(())
}

/// Sends the file to the peer (a check, or the write), says what came
/// back. Ok(false): the peer could not be reached; a refusal is an error.
fn send(
    cfg: &Config,
    peer: &crate::config::Node,
    a: &Args,
    running: &Running,
    text: &str,
    me: &str,
    check_only: bool,
) -> Result<bool, CliError> {
    let mut p = Push::new(
        cfg,
        text,
        me,
        running.record.generation,
        running.record.known(),
    );
    p.check_only = check_only;
    match push_to_peer(cfg, peer, &a.ssh_options, &p) {
        PeerAnswer::Ok(out) => {
            if !check_only {
                if !out.is_empty() {
                    println!("{}: {out}", peer.name);
                }
                println!(
                    "{}: mailha.toml is generation {}",
                    peer.name, running.record.generation
                );
            }
            Ok(true)
        }
        PeerAnswer::Refused(why) => {
            let nothing = if check_only {
                "nothing was changed"
            } else {
                "the cluster runs the new config; its file stays the old one"
            };
            let msg = format!("{} refuses this file ({nothing}):\n{why}", peer.name);
            Err(if check_only {
                CliError::BadInput(msg)
            } else {
                CliError::Failed(anyhow::anyhow!(msg))
            })
        }
        PeerAnswer::Unreachable(why) => {
            eprintln!(
                "{}: not reached ({why}); it takes the running config when it rejoins the cluster, or with `mailha config pull` there; `mailha status` shows it as behind until then",
                peer.name
            );
            Ok(false)
        }
    }
}
