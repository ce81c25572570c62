//! `mailha check`: parse and validate; no side effects. `--live` also
//! looks at this node's devices and NFS servers (`crate::live`), still
//! changing nothing.

use super::{Cli, CliError, load_config};
use crate::config::{Config, MountSource, Severity, diag::SourceMap};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check this file instead of --config.
    pub file: Option<std::path::PathBuf>,
    /// Also look at this node: the data devices are present and readable,
    /// hold the configured filesystem, ext4 has multi-mount protection
    /// (MMP), NFS servers answer. Exit 1 when something would stop the
    /// cluster from mounting; a missing MMP is a warning.
    #[arg(long)]
    pub live: bool,
    /// Deadline for each device read or NFS call of --live.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub io_timeout: Duration,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let path = a.file.as_ref().unwrap_or(&cli.config);
    let loaded = load_config(path)?;
    if a.live {
        let map = SourceMap::new(&loaded.text);
        let found = crate::live::check(&loaded.config, a.io_timeout);
        let errors = found
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        for p in found {
            eprintln!("{}", map.locate(path, p));
        }
        if errors > 0 {
            return Err(CliError::Failed(anyhow::anyhow!(
                "{}: {errors} problem{} on this node",
                path.display(),
                if errors == 1 { "" } else { "s" }
            )));
        }
    }
    println!("{}: {}", path.display(), summary(&loaded.config));
    Ok(())
}

/// One line: nodes, services, mounts.
pub fn summary(c: &Config) -> String {
    let nodes: Vec<&str> = c.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    let nfs = c
        .storage
        .mounts
        .iter()
        .filter(|m| matches!(m.source, MountSource::Nfs(_)))
        .count();
    let profile = c.services.profile.map(|p| p.as_str()).unwrap_or("none");
    format!(
        "ok: cluster {} with nodes {} ({} link{}), {} service{} (profile {}, mode {}), {} mount{} ({} nfs), lease {}, VIP {}/{}",
        c.cluster.name,
        nodes.join(" and "),
        c.cluster.nodes[0].addresses.len(),
        if c.cluster.nodes[0].addresses.len() == 1 {
            ""
        } else {
            "s"
        },
        c.services.list.len(),
        if c.services.list.len() == 1 { "" } else { "s" },
        profile,
        c.services.mode.as_str(),
        c.storage.mounts.len(),
        if c.storage.mounts.len() == 1 { "" } else { "s" },
        nfs,
        if c.storage.lease.is_some() {
            "on"
        } else {
            "off"
        },
        c.vip.address,
        c.vip.prefix,
    )
}
