//! `mailha install`: this binary to /usr/sbin/mailha, and the agents'
//! symlinks (see `crate::install`).

use super::{Cli, CliError};
use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Install under this directory instead of / (for packaging).
    #[arg(long, default_value = "/")]
    pub root: std::path::PathBuf,
}

pub fn run(_cli: &Cli, a: &Args) -> Result<(), CliError> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let changed = crate::install::install(&a.root, &exe).context("installing")?;
    if changed.is_empty() {
        println!("already installed");
    }
    for p in changed {
        println!("installed {}", p.display());
    }
    Ok(())
}
