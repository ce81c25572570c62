//! `mailha status [--json]`: who runs the mail, and what needs attention.

use super::{Cli, CliError};
use crate::status;
use anyhow::Context;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (schema in docs/status.md) instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// crm_mon answers from the local CIB; if it takes longer than this the
/// node itself is in trouble, and saying so beats hanging.
const CRM_MON_DEADLINE: Duration = Duration::from_secs(10);

/// The keeper answers from memory, off its decision thread; longer means
/// it is stuck, which is an answer too.
const KEEPER_DEADLINE: Duration = Duration::from_secs(2);

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    // The config is optional here: status must work on a node whose file
    // is missing or broken, which is exactly when it is needed.
    let loaded = crate::config::load(&cli.config).ok();
    // Asked first: a keeper that fenced itself killed the cluster stack,
    // and then crm_mon has nothing to say. Not for a saved CIB
    // (`CIB_file`): that is no live cluster of this node's.
    let keeper = loaded
        .as_ref()
        .filter(|l| {
            l.config.fencing.mode == crate::config::model::FencingMode::Lease
                && l.config.storage.lease.is_some()
                && !crate::cluster::on_a_file()
        })
        .map(|_| {
            let asked =
                crate::lease::client::status(crate::lease::client::DEFAULT_SOCKET, KEEPER_DEADLINE);
            status::KeeperView::of(asked.as_ref().map_err(|e| e.as_str()))
        });
    let out = crate::exec::run(
        &["crm_mon", "--one-shot", "--output-as=xml", "--include=all"],
        &[],
        None,
        CRM_MON_DEADLINE,
    )
    .context("asking Pacemaker for the cluster state")?;
    if !out.success() && out.stdout.trim().is_empty() {
        let k = keeper
            .as_ref()
            .map(|k| format!("; {}", k.line()))
            .unwrap_or_default();
        return Err(CliError::Failed(anyhow::anyhow!(
            "crm_mon failed ({:?}): {}{k}",
            out.code,
            out.stderr.trim()
        )));
    }
    let mut st = status::parse(&out.stdout).context("reading crm_mon's answer")?;
    st.keeper = keeper;
    if let Some(k) = st.keeper.as_mut() {
        k.judge(&st.resources);
    }
    let crm_config = crate::cluster::query_configuration().ok();
    if let Some(c) = &crm_config {
        st.watch_off = crate::watch::off_list(c);
        st.maintenance = crate::ops::resource_ids(c)
            .into_iter()
            .filter(|id| {
                crate::ops::maintenance::is_on(
                    c,
                    &crate::ops::maintenance::Scope::Resource(id.clone()),
                )
            })
            .collect();
        // crm_mon lists only bans: a `cli-prefer-*` (what
        // `crm_resource --move` leaves) is in the configuration only.
        for l in crate::switchover::leftovers(c) {
            if !st.leftover_moves.iter().any(|m| m.id == l.id) {
                st.leftover_moves.push(l);
            }
        }
    }
    if let Some(l) = &loaded {
        let local_digest = crate::cib::digest(&crate::cib::render(&l.config));
        let running_digest = crm_config.as_ref().and_then(crate::cluster::stored_digest);
        st.config = Some(status::ConfigState {
            drift: running_digest.as_deref() != Some(local_digest.as_str()),
            local_digest,
            running_digest,
        });
    }
    if let Some(c) = &crm_config {
        let host = crate::host::hostname();
        let me = loaded
            .as_ref()
            .and_then(|l| {
                crate::host::local_node(&l.config, &host, &crate::host::bound_addresses())
                    .map(|n| n.name.clone())
            })
            .or_else(|| crate::configsync::me_in_cib(c, &host))
            .unwrap_or(host);
        st.config_sync = Some(crate::configsync::status_of(
            &super::sync_local(cli),
            c,
            &me,
        ));
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).expect("serializable")
        );
        return Ok(());
    }
    let vip = loaded.map(|l| format!("{}/{}", l.config.vip.address, l.config.vip.prefix));
    print!("{}", status::render_human(&st, vip.as_deref()));
    Ok(())
}
