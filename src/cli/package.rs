//! `mailha package configure|may-remove` (hidden): what the package's
//! maintainer scripts ask of mailha. Neither starts, stops or restarts
//! anything.

use super::{Cli, CliError};
use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// postinst: create the config directory (0700) and the alert spool
    /// (shared with Pacemaker's user) where missing.
    Configure {
        #[arg(long, default_value = "/")]
        root: std::path::PathBuf,
    },
    /// prerm: exit 1, saying why, while this node is a cluster member
    /// running mailha's resources or runs the lease keeper.
    MayRemove,
}

/// The administrator's explicit "remove it anyway".
pub const FORCE_ENV: &str = "MAILHA_REMOVE_ANYWAY";

pub fn run(_cli: &Cli, a: &Args) -> Result<(), CliError> {
    match &a.what {
        What::Configure { root } => {
            for p in
                crate::install::make_state_dirs(root).context("creating mailha's directories")?
            {
                println!("mailha: created {}", p.display());
            }
            Ok(())
        }
        What::MayRemove => match crate::removal::verdict(&crate::removal::observe()) {
            crate::removal::Verdict::Allow => Ok(()),
            crate::removal::Verdict::Refuse(why) => {
                if std::env::var(FORCE_ENV).as_deref() == Ok("yes") {
                    eprintln!("{why}\n{FORCE_ENV}=yes: removing it anyway.");
                    return Ok(());
                }
                Err(CliError::Failed(anyhow::anyhow!("{why}")))
            }
        },
    }
}
