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
        /// This node's name in [cluster.nodes] (default: the host name).
        #[arg(long)]
        node: Option<String>,
        /// Abstract socket name of the control socket.
        #[arg(long, default_value = client::DEFAULT_SOCKET)]
        socket: String,
        /// Do not kill the cluster stack when fencing this node (for a
        /// keeper tried on a machine whose stack serves something else).
        #[arg(long)]
        keep_stack: bool,
    },
    /// Make the lease ready before the first keeper runs: on NFS, mount
    /// the export and create the lease file; write the header if blank.
    /// Idempotent; run it on one node.
    Init {
        /// This node's name in [cluster.nodes] (default: the host name).
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
        } => {
            let loaded = load_config(&cli.config)?;
            let mut s = keeper::Settings::from_config(&loaded.config, node.as_deref())
                .map_err(|e| CliError::BadInput(e.to_string()))?;
            s.socket = socket.clone();
            s.stop_stack = !keep_stack;
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
