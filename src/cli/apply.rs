//! `mailha apply [--dry-run]`: push mailha.toml to the running cluster in
//! one verified transaction. Only what changed changes: Pacemaker restarts
//! a resource only when its own definition or a constraint on it moved.

use super::{Cli, CliError, load_config};
use crate::cluster;
use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show the diff and verify it, but change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let loaded = load_config(&cli.config)?;
    let desired = crate::cib::render_with_digest(&loaded.config);
    let live = cluster::query().context("reading the live CIB")?;
    let live_conf = live
        .find("configuration")
        .cloned()
        .unwrap_or_else(|| crate::cib::xml::El::new("configuration"));
    let new = cluster::merge(&live, &desired).context("merging")?;
    let new_conf = new.find("configuration").expect("merge keeps it");
    let d = cluster::diff(&live_conf, new_conf);
    if d.is_empty() {
        println!("the cluster already runs this configuration");
        return Ok(());
    }
    print!("{d}");
    let dir = tempfile::tempdir().context("temporary directory")?;
    let warnings = cluster::verify(&new, dir.path()).map_err(|e| match e {
        cluster::ClusterError::Rejected(_) => CliError::BadInput(e.to_string()),
        other => CliError::Failed(other.into()),
    })?;
    if !warnings.is_empty() {
        eprintln!("crm_verify: {warnings}");
    }
    if a.dry_run {
        println!("dry run: verified, nothing changed");
        return Ok(());
    }
    cluster::patch(&live, &new, dir.path()).context("applying the change")?;
    println!("applied");
    Ok(())
}
