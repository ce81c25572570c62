//! `mailha watch off|on|status [SERVICE]`: switch a service's deep checks
//! off and on for the whole cluster, live (see `crate::watch`).

use super::{Cli, CliError, load_config};
use anyhow::Context;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Only check that SERVICE is alive (its probe is skipped).
    Off { service: String },
    /// Deep checks again for SERVICE.
    On { service: String },
    /// Each service's watch state.
    Status,
}

fn known(cfg: &crate::config::Config, name: &str) -> Result<(), CliError> {
    if cfg.services.list.iter().any(|s| s.name == name) {
        return Ok(());
    }
    let names: Vec<&str> = cfg.services.list.iter().map(|s| s.name.as_str()).collect();
    let hint = crate::config::diag::did_you_mean(name, &names)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    Err(CliError::BadInput(format!(
        "no service is named {name:?}{hint}"
    )))
}

fn crm_attribute(args: &[&str]) -> Result<(), CliError> {
    let mut argv = vec![
        "crm_attribute",
        "--type",
        "crm_config",
        "--set-name",
        crate::cib::MAILHA_SET_ID,
    ];
    argv.extend_from_slice(args);
    let o = crate::exec::run(&argv, &[], None, Duration::from_secs(30))
        .context("running crm_attribute")?;
    if !o.success() {
        return Err(CliError::Failed(anyhow::anyhow!(
            "crm_attribute failed: {}",
            o.stderr.trim()
        )));
    }
    Ok(())
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let loaded = load_config(&cli.config)?;
    let cfg = &loaded.config;
    match &a.what {
        What::Off { service } => {
            known(cfg, service)?;
            crm_attribute(&[
                "--name",
                &crate::watch::attr_name(service),
                "--update",
                "off",
            ])?;
            println!("{service}: watch off on both nodes from the next monitor (liveness only)");
        }
        What::On { service } => {
            known(cfg, service)?;
            crm_attribute(&["--name", &crate::watch::attr_name(service), "--delete"])?;
            println!("{service}: watch on");
        }
        What::Status => {
            let off = crate::cluster::query_crm_config()
                .map(|c| crate::watch::off_list(&c))
                .context("reading the CIB")?;
            for s in &cfg.services.list {
                let state = if !s.watch {
                    "off (mailha.toml)"
                } else if off.contains(&s.name) {
                    "off (mailha watch)"
                } else {
                    "on"
                };
                println!("{:<24} {state}", s.name);
            }
        }
    }
    Ok(())
}
