//! `mailha check`: parse and validate; no side effects.

use super::{Cli, CliError, load_config};
use crate::config::{Config, MountSource};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check this file instead of --config.
    pub file: Option<std::path::PathBuf>,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let path = a.file.as_ref().unwrap_or(&cli.config);
    let loaded = load_config(path)?;
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
