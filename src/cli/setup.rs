//! `mailha setup`: bootstrap both nodes (see `crate::setup`).

use super::{Cli, CliError, load_config};
use crate::setup::{self, Paths};
use anyhow::Context;
use std::io::Read;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The peer's side, run by `mailha setup` over SSH: read the config and
    /// the key from stdin, write them, start the stack.
    #[arg(long)]
    pub receive: bool,
    /// Make a new corosync authkey even if one exists.
    #[arg(long)]
    pub new_key: bool,
    /// Extra ssh options, e.g. `-i KEY` or `-o UserKnownHostsFile=F` (repeatable).
    #[arg(long = "ssh-option", value_name = "OPT", allow_hyphen_values = true)]
    pub ssh_options: Vec<String>,
    /// How long to wait for both nodes to become members.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub wait: Duration,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let paths = Paths::system();
    if a.receive {
        let mut input = Vec::new();
        std::io::stdin()
            .take(1 << 20 | 1)
            .read_to_end(&mut input)
            .context("reading the payload")?;
        let host = crate::host::hostname();
        let addrs = crate::host::bound_addresses();
        return setup::receive(&paths, &input, true, &host, &addrs).map_err(|e| match e {
            setup::SetupError::Config(_)
            | setup::SetupError::Payload(_)
            | setup::SetupError::NotForThisHost { .. } => CliError::BadInput(e.to_string()),
            other => CliError::Failed(other.into()),
        });
    }
    let loaded = load_config(&cli.config)?;
    let cfg = &loaded.config;
    let me = crate::host::local_node(
        cfg,
        &crate::host::hostname(),
        &crate::host::bound_addresses(),
    )
    .ok_or_else(|| {
        setup::SetupError::NotANode(
            cfg.cluster.nodes[0].name.clone(),
            cfg.cluster.nodes[1].name.clone(),
        )
    })
    .context("finding this node")?;
    let peer = cfg
        .cluster
        .nodes
        .iter()
        .find(|n| n.id != me.id)
        .expect("two nodes");
    // Before anything is written: a refusal here changes nothing.
    let mmp = crate::live::enable_mmp(cfg, Duration::from_secs(10)).map_err(|e| {
        // Located like every config problem: file:line:column of the field.
        let map = crate::config::diag::SourceMap::new(&loaded.text);
        let at = map
            .span_of(&e.field(), false)
            .map(|r| map.line_col(r.start))
            .unwrap_or((1, 1));
        CliError::Failed(anyhow::anyhow!(
            "{}:{}:{}: {e}",
            cli.config.display(),
            at.0,
            at.1
        ))
    })?;
    for d in mmp {
        match d.plan {
            crate::live::MmpPlan::Enable => println!(
                "{}: enabled multi-mount protection (MMP) on {} ({})",
                me.name, d.device, d.mount
            ),
            crate::live::MmpPlan::AlreadyOn => {
                println!("{}: {} ({}) has MMP", me.name, d.device, d.mount)
            }
            _ => {}
        }
    }
    let key = match std::fs::read(paths.authkey()) {
        Ok(k) if !a.new_key && k.len() >= 128 => k,
        _ => setup::new_authkey().context("making an authkey")?,
    };
    println!("{}: writing corosync.conf and the authkey", me.name);
    setup::install_files(&paths, cfg, &loaded.text, &key).context("writing local files")?;
    println!("{}: sending them to {} over ssh", me.name, peer.name);
    let payload = serde_json::to_vec(&setup::Payload {
        mailha_toml: loaded.text.clone(),
        authkey_hex: setup::hex(&key),
        files: crate::configsync::blobs(cfg),
    })
    .expect("serializable");
    let argv = setup::ssh_argv(cfg, peer, &a.ssh_options);
    let o = crate::exec::run(&argv, &[], Some(&payload), Duration::from_secs(180))
        .context("running ssh")?;
    if !o.success() {
        return Err(CliError::Failed(anyhow::anyhow!(
            "{} could not be set up over ssh (exit {:?}): {}",
            peer.name,
            o.code,
            o.stderr.trim()
        )));
    }
    println!("{}: starting corosync and pacemaker", me.name);
    let owned = setup::start_stack(&paths, cfg).context("starting the cluster stack")?;
    if !owned.is_empty() {
        println!(
            "{}: disabled at boot, Pacemaker starts them: {} (running ones left running)",
            me.name,
            owned.join(" ")
        );
    }
    println!("waiting for both nodes to be members");
    setup::wait_for_membership(a.wait).context("waiting for membership")?;
    println!("applying the cluster configuration");
    super::apply::run(
        cli,
        &super::apply::Args {
            ssh_options: a.ssh_options.clone(),
            ..super::apply::Args::plain()
        },
    )
}
