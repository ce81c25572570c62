//! `mailha render cib|corosync`: print what mailha would install.

use super::{Cli, CliError, load_config};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// The CIB <configuration> section.
    Cib {
        /// Wrap it in a whole <cib> document (for crm_verify --xml-file).
        #[arg(long)]
        full: bool,
    },
    /// corosync.conf.
    Corosync,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let loaded = load_config(&cli.config)?;
    let out = match a.what {
        What::Cib { full: false } => crate::cib::render_configuration(&loaded.config),
        What::Cib { full: true } => crate::cib::render_full(&loaded.config),
        What::Corosync => crate::corosync::render(&loaded.config),
    };
    print!("{out}");
    Ok(())
}
