//! `mailha config pull`: take the running config; and the peer's ends of
//! the config channel (`config receive`, `config send`), run over ssh
//! with constant command lines (see `crate::configsync`).

use super::{Cli, CliError};
use crate::cluster;
use crate::configsync::{self, Push, Received, record};
use anyhow::Context;
use record::Running;
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Write the running config (what the cluster runs, byte for byte)
    /// to this node's mailha.toml, showing the diff first. From the CIB;
    /// secrets and the files the config names come from the peer when
    /// this node's own differ. Edits here the cluster never ran are kept
    /// as mailha.toml.unapplied.
    Pull {
        /// Show the diff; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Extra ssh options to reach the peer, e.g. `-i KEY` (repeatable).
        #[arg(long = "ssh-option", value_name = "OPT", allow_hyphen_values = true)]
        ssh_options: Vec<String>,
    },
    /// The peer's side of `apply`: read the file on stdin, check it as
    /// this node's own, write it (internal; run over ssh).
    #[command(hide = true)]
    Receive,
    /// The peer's side of `pull`: print this node's file and the files it
    /// names (internal; run over ssh).
    #[command(hide = true)]
    Send,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    match &a.command {
        Sub::Pull {
            dry_run,
            ssh_options,
        } => pull(cli, *dry_run, ssh_options),
        Sub::Receive => receive(cli),
        Sub::Send => send(cli),
    }
}

fn receive(cli: &Cli) -> Result<(), CliError> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(configsync::MAX_PAYLOAD as u64 + 1)
        .read_to_end(&mut input)
        .context("reading the payload")?;
    let local = super::sync_local(cli);
    let r = configsync::receive(
        &local,
        &input,
        &crate::host::hostname(),
        &crate::host::bound_addresses(),
    )
    .map_err(|e| match e {
        configsync::SyncError::Invalid(_)
        | configsync::SyncError::Refused(_)
        | configsync::SyncError::Payload(_) => CliError::BadInput(e.to_string()),
        other => CliError::Failed(other.into()),
    })?;
    if let Received::Wrote {
        node,
        generation,
        kept,
    } = r
    {
        if let Some(k) = kept {
            println!(
                "edits here the cluster never ran are kept as {}",
                k.display()
            );
        }
        record_generation(&node, generation);
    }
    Ok(())
}

/// Publishes this node's generation (`status` on both nodes reads it); a
/// failure only means status shows this node as behind until next time.
fn record_generation(node: &str, generation: u64) {
    if let Err(e) = cluster::set_node_attribute(node, record::NODE_ATTR, &generation.to_string()) {
        eprintln!("note: recording generation {generation} of {node} in the CIB: {e}");
    }
}

fn send(cli: &Cli) -> Result<(), CliError> {
    let loaded = crate::config::load(&cli.config)?;
    let me = crate::host::local_node(
        &loaded.config,
        &crate::host::hostname(),
        &crate::host::bound_addresses(),
    )
    .map(|n| n.name.clone())
    .unwrap_or_else(crate::host::hostname);
    let p = Push::new(&loaded.config, &loaded.text, &me, 0, Vec::new());
    println!("{}", serde_json::to_string(&p).expect("serializable"));
    Ok(())
}

/// The peer's ssh port and first address, from the running config's text
/// (read as raw TOML: this node's own file may be gone).
fn peer_of(running: &Running, me: &str) -> Option<(u16, String, String)> {
    let raw = crate::config::parse_raw(&running.text).ok()?;
    let c = raw.cluster?;
    let port = c.ssh_port.unwrap_or(22);
    let n = c
        .nodes?
        .into_iter()
        .find(|n| n.name.as_deref() != Some(me))?;
    Some((port, n.addresses?.into_iter().next()?, n.name?))
}

fn pull(cli: &Cli, dry_run: bool, ssh: &[String]) -> Result<(), CliError> {
    let local = super::sync_local(cli);
    let key = local.key().context("keying the config digest")?;
    let live = cluster::query().context("reading the live CIB")?;
    let running = Running::from_cib(&live)
        .context("reading the running config")?
        .ok_or_else(|| {
            CliError::Failed(anyhow::anyhow!(
                "the cluster holds no running config (it was last applied by a mailha without one): run `mailha apply` on the node whose file is right"
            ))
        })?;
    let me = configsync::me_in_cib(&live, &crate::host::hostname())
        .unwrap_or_else(crate::host::hostname);
    let local_text = std::fs::read_to_string(&local.config).ok();
    let rec = &running.record;

    let mut files: Vec<(PathBuf, u32, Vec<u8>)> = Vec::new();
    let from_cib = configsync::rebuild(&running, &key, local_text.as_deref());
    let behind_files = configsync::files_behind(rec, &key);
    let text = match from_cib {
        Some(t) if behind_files.is_empty() => t,
        _ => {
            let (port, addr, name) = peer_of(&running, &me).ok_or_else(|| {
                CliError::Failed(anyhow::anyhow!(
                    "the running config names no peer to fetch its secrets and files from"
                ))
            })?;
            println!(
                "{me}: the CIB alone does not give the running config back (secrets and files never go through it): fetching it from {name}"
            );
            let argv = crate::setup::ssh_to_addr(port, &addr, ssh, configsync::SEND_ARGV);
            let o = crate::exec::run(&argv, &[], None, std::time::Duration::from_secs(60))
                .context("running ssh")?;
            if !o.success() {
                return Err(CliError::Failed(anyhow::anyhow!(
                    "{name} could not send its file (exit {:?}): {}",
                    o.code,
                    o.stderr.trim()
                )));
            }
            let p: Push = serde_json::from_str(o.stdout.trim())
                .map_err(|e| CliError::Failed(anyhow::anyhow!("{name}'s answer: {e}")))?;
            if key.digest(p.text.as_bytes()) != rec.digest {
                return Err(CliError::Failed(anyhow::anyhow!(
                    "{name}'s mailha.toml is not the running config either ({}); the secrets it lacks here must be written by hand",
                    super::apply::applied(rec)
                )));
            }
            for f in &rec.files {
                let b = p.files.iter().find(|b| b.path == f.path).ok_or_else(|| {
                    CliError::Failed(anyhow::anyhow!("{name} did not send {}", f.path))
                })?;
                use base64::Engine;
                let c = base64::engine::general_purpose::STANDARD
                    .decode(&b.content_b64)
                    .map_err(|_| CliError::Failed(anyhow::anyhow!("{}: not base64", f.path)))?;
                if key.digest(&c) != f.digest {
                    return Err(CliError::Failed(anyhow::anyhow!(
                        "{name}'s {} is not the applied one either",
                        f.path
                    )));
                }
                files.push((PathBuf::from(&f.path), f.mode, c));
            }
            p.text
        }
    };
    let shown_from = local_text
        .as_deref()
        .map(|t| record::redact(t).0)
        .unwrap_or_default();
    let d = record::text_diff(
        &shown_from,
        &record::redact(&text).0,
        "this file",
        &format!("running (generation {})", rec.generation),
    );
    if d.is_empty() && files.is_empty() {
        println!(
            "this file is already the running config ({})",
            super::apply::applied(rec)
        );
    } else {
        print!("{d}");
        for (p, _, _) in &files {
            println!(
                "{} differs from the applied one: taken from the peer",
                p.display()
            );
        }
        if dry_run {
            println!("dry run: nothing written");
            return Ok(());
        }
        let _lock = configsync::lock(&local.lock, std::time::Duration::from_secs(10))
            .context("locking this node's config")?;
        let kept = configsync::install(&local, Some(&key), &text, &files, &rec.known())
            .context("writing the running config")?;
        if let Some(k) = kept {
            println!(
                "edits here the cluster never ran are kept as {}",
                k.display()
            );
        }
        println!(
            "wrote {} ({})",
            local.config.display(),
            super::apply::applied(rec)
        );
    }
    if !dry_run && record::node_generation(&live, &me) != Some(rec.generation) {
        record_generation(&me, rec.generation);
    }
    Ok(())
}
