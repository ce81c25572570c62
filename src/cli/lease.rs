//! `mailha lease keeper|init|status|acquire|release`: the lease keeper daemon
//! of this node and requests to it (see `crate::lease::keeper`).

use super::{Cli, CliError, load_config};
use crate::lease::{client, keeper};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Run this node's lease keeper (a daemon; stays in the foreground).
    Keeper {
        /// This node's name in [cluster.nodes] (default: the node whose name
        /// is the host name, short or FQDN, else the one whose address is
        /// bound here).
        #[arg(long)]
        node: Option<String>,
        /// Abstract socket name of the control socket.
        #[arg(long, default_value = client::DEFAULT_SOCKET)]
        socket: String,
        /// Do not kill the cluster stack when fencing this node (for a
        /// keeper tried on a machine whose stack serves something else).
        #[arg(long)]
        keep_stack: bool,
        /// What follows the ack of a fence request: reboot this machine
        /// at once (the watchdog if that fails), let the watchdog reset
        /// it, or none (the node stays up, fenced, until restarted: only
        /// with --keep-stack, for a keeper tried on a machine that is not
        /// its to reset).
        #[arg(long, value_enum, default_value_t = crate::lease::reset::ResetMode::Reboot)]
        reset: crate::lease::reset::ResetMode,
    },
    /// Make the lease ready before the first keeper runs: on NFS, mount
    /// the export and create the lease file; write the header if blank.
    /// Idempotent; run it on one node.
    Init {
        /// This node's name in [cluster.nodes] (default: the node whose name
        /// is the host name, short or FQDN, else the one whose address is
        /// bound here).
        #[arg(long)]
        node: Option<String>,
    },
    /// The keeper's state as JSON.
    Status {
        #[arg(long, default_value = client::DEFAULT_SOCKET)]
        socket: String,
    },
    /// Ask the keeper to take the lease (returns at once; `status` says
    /// when it holds). The cluster does this through ocf:mailha:lease;
    /// this is for trying a keeper by hand.
    Acquire {
        #[arg(long, default_value = client::DEFAULT_SOCKET)]
        socket: String,
    },
    /// Ask the keeper to give the lease back.
    Release {
        #[arg(long, default_value = client::DEFAULT_SOCKET)]
        socket: String,
    },
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    match &a.what {
        What::Keeper {
            node,
            socket,
            keep_stack,
            reset,
        } => {
            use crate::lease::reset::ResetMode;
            // A machine whose stack the keeper must spare is not the
            // keeper's to reboot (the tests run keepers on the host): a
            // forgotten --reset must fail here, not reboot the machine.
            if *keep_stack && *reset == ResetMode::Reboot {
                return Err(CliError::BadInput(
                    "--keep-stack spares this machine's cluster stack, so the keeper may not reboot it: add --reset none (or watchdog)".into(),
                ));
            }
            if !keep_stack && *reset == ResetMode::None {
                return Err(CliError::BadInput(
                    "--reset none leaves a fenced node up: only with --keep-stack (a keeper tried on a machine that is not its own)".into(),
                ));
            }
            let loaded = load_config(&cli.config)?;
            let mut s = keeper::Settings::from_config(&loaded.config, node.as_deref())
                .map_err(|e| CliError::BadInput(e.to_string()))?;
            s.socket = socket.clone();
            s.stop_stack = !keep_stack;
            s.reset = *reset;
            if *keep_stack {
                // Nor are its addresses the keeper's to take away.
                s.addresses.clear();
            }
            keeper::run(s).map_err(|e| CliError::Failed(e.into()))
        }
        What::Init { node } => {
            let loaded = load_config(&cli.config)?;
            let s = keeper::Settings::from_config(&loaded.config, node.as_deref())
                .map_err(|e| CliError::BadInput(e.to_string()))?;
            let done = keeper::init(&s).map_err(|e| CliError::Failed(e.into()))?;
            println!("{done}");
            Ok(())
        }
        What::Acquire { socket } | What::Release { socket } => {
            let line = if matches!(a.what, What::Acquire { .. }) {
                "acquire"
            } else {
                "release"
            };
            let v = client::request(socket, line, Duration::from_secs(2))
                .map_err(|e| CliError::Failed(anyhow::anyhow!(e)))?;
            println!("{v}");
            Ok(())
        }
        What::Status { socket } => {
            let st = client::status(socket, Duration::from_secs(2))
                .map_err(|e| CliError::Failed(anyhow::anyhow!(e)))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&st).expect("status serializes")
            );
            Ok(())
        }
    }
}
