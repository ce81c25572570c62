//! The command line. Each verb is defined once here (help text included);
//! the work is done by the library modules. Errors get context here
//! (anyhow) and are mapped to exit codes in one place.
//!
//! Exit codes:
//! - 0: success
//! - 1: the operation failed at run time
//! - 2: bad input: invalid config, bad arguments; nothing was changed

mod alert;
mod apply;
mod check;
mod cleanup;
mod config;
mod destroy;
mod exporter;
mod history;
mod import_legacy;
mod install;
mod lease;
mod maintenance;
mod package;
mod render;
mod report;
mod setup;
mod standby;
mod status;
mod switchover;
mod wait;
mod watch;

use crate::faces::{Face, face_of};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "mailha",
    version,
    about = "High availability for two-node mail servers (Corosync + Pacemaker)",
    after_help = "Exit codes: 0 success, 1 failed at run time, 2 bad input (nothing changed)."
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "MAILHA_CONFIG", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The corosync authkey, which keys the config digests in the CIB
    /// (tests on a saved CIB point it elsewhere).
    #[arg(long, global = true, env = "MAILHA_AUTHKEY", default_value = crate::corosync::AUTHKEY_PATH, hide = true)]
    pub authkey: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate the configuration; print a one-line summary.
    Check(check::Args),
    /// Print the generated cluster configuration.
    Render(render::Args),
    /// Bootstrap both nodes: corosync.conf, authkey, start the stack, apply.
    Setup(setup::Args),
    /// I/O that may hang in the kernel, run by the agents in a child with
    /// a deadline (internal).
    #[command(hide = true)]
    Io {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Switch a service's deep checks off/on for the whole cluster, live.
    Watch(watch::Args),
    /// Install this binary as /usr/sbin/mailha with the agents' symlinks.
    Install(install::Args),
    /// Push mailha.toml to the running cluster: diff, crm_verify, one transaction.
    Apply(apply::Args),
    /// One config on both nodes: take the running config (`pull`).
    Config(config::Args),
    /// Show who runs the mail, each resource's state and what needs attention.
    Status(status::Args),
    /// Move the mail to the other node and wait until SMTP answers there;
    /// nothing is left pinned (`--clear` removes what crm_resource left).
    Switchover(switchover::Args),
    /// Drain a node for patching: its mail moves to the other node first
    /// (refused when that node could not take it), then nothing runs there.
    Standby(standby::NodeArgs),
    /// Take a node out of standby: it can take the mail again (the mail
    /// stays where it runs).
    Online(standby::NodeArgs),
    /// Maintenance of the cluster or one service: nothing started,
    /// stopped or monitored; `off` shows what Pacemaker will do first.
    Maintenance(maintenance::Args),
    /// Forget recorded failures (fail counts, failed operations) without
    /// restarting what runs; says what it cleared.
    Cleanup(cleanup::Args),
    /// Stop the whole mail stack in dependency order (services first,
    /// the lease last), waiting and reporting each step.
    Stop(standby::Common),
    /// Start the whole mail stack again (the lease first) and wait until
    /// SMTP answers on the VIP.
    Start(standby::Common),
    /// What happened to the mail: failures, fencing, moves, as incidents
    /// with their cause and duration (Pacemaker's histories and the
    /// alert spool).
    History(history::Args),
    /// One bundle for support from both nodes (CIB, crm_mon, transition
    /// inputs, journal, lease, alerts, config, check --live), secrets
    /// scrubbed, 0600, with a manifest.
    Report(report::Args),
    /// Take the cluster down for good (the 2014 kit's `uninstall.sh YeS`):
    /// the mail stopped, both nodes out of the cluster, its keys and
    /// configuration removed; /etc/mailha and the mail's data kept.
    Destroy(destroy::Args),
    /// Convert the 2014 kit's ha_conf.ini into a mailha.toml (read as data, never run).
    ImportLegacy(import_legacy::Args),
    /// Alert mail: test the channels, send what the spool holds.
    Alert(alert::Args),
    /// The disk lease: this node's keeper daemon and its state.
    Lease(lease::Args),
    /// Serve Prometheus metrics of the cluster and of mailha, and a status
    /// page for a browser, on `[exporter] listen` (a read-only daemon;
    /// stays in the foreground).
    Exporter(exporter::Args),
    /// What the package's maintainer scripts ask (internal).
    #[command(hide = true)]
    Package(package::Args),
    /// systemd's word that a unit the cluster runs has ended (internal:
    /// the unit's mailha drop-in runs it as ExecStopPost=).
    #[command(hide = true, name = "unit-ended")]
    UnitEnded { unit: String },
}

/// An error that says which exit code it means.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError::BadInput(e.to_string())
    }
}

/// For a face that talks to peers over TLS (the exporter, the alert
/// sender): a write to a peer that went away is that connection's error,
/// not the end of the process. `main` gives every face SIGPIPE's default
/// action, right for a filter writing to a pipe; but rustls sends with
/// writev(2), which, unlike std's send with MSG_NOSIGNAL, raises SIGPIPE.
/// Call before any thread starts.
pub(crate) fn writes_to_gone_peers_are_errors() {
    // SAFETY: SIG_IGN installs no handler; the caller has not started a
    // thread yet.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        );
    }
}

pub fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe
    // (`mailha status --json | head`) panicked. Die quietly by the
    // signal instead, as every Unix filter does.
    // SAFETY: single-threaded at this point; SIG_DFL installs no handler.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let argv0 = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_default();
    match face_of(&argv0) {
        Face::Cli => run_cli(),
        Face::AlertAgent => alert::agent_main(),
        Face::ServiceAgent => ocf_agent(crate::agents::service::main),
        Face::StorageAgent => ocf_agent(crate::agents::storage::main),
        Face::SenderAgent => ocf_agent(crate::agents::sender::main),
        Face::LeaseAgent => ocf_agent(crate::agents::lease::main),
        Face::ConfigAgent => ocf_agent(crate::agents::config::main),
        Face::FenceAgent => crate::fence::agent_main(),
    }
}

/// An OCF agent face: the action is argv[1], parameters come from the
/// environment, processes from /proc.
fn ocf_agent(agent: crate::ocf::AgentMain) -> ExitCode {
    let action = std::env::args().nth(1).unwrap_or_default();
    let env = |k: &str| std::env::var(k).ok();
    crate::ocf::finish(agent(&action, &env, Path::new("/proc")))
}

fn run_cli() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(a) => check::run(&cli, a),
        Command::Render(a) => render::run(&cli, a),
        Command::Status(a) => status::run(&cli, a),
        Command::Switchover(a) => switchover::run(&cli, a),
        Command::Standby(a) => standby::standby(&cli, a),
        Command::Online(a) => standby::online(&cli, a),
        Command::Maintenance(a) => maintenance::run(&cli, a),
        Command::Cleanup(a) => cleanup::run(a),
        Command::Stop(a) => standby::stack(&cli, a, true),
        Command::Start(a) => standby::stack(&cli, a, false),
        Command::Destroy(a) => destroy::run(&cli, a),
        Command::History(a) => history::run(a),
        Command::Report(a) => report::run(&cli, a),
        Command::Apply(a) => apply::run(&cli, a),
        Command::Config(a) => config::run(&cli, a),
        Command::Setup(a) => setup::run(&cli, a),
        Command::Install(a) => install::run(&cli, a),
        Command::Watch(a) => watch::run(&cli, a),
        Command::Io { args } => return ExitCode::from(crate::agents::storage::io::run(args)),
        Command::ImportLegacy(a) => import_legacy::run(&cli, a),
        Command::Alert(a) => alert::run(&cli, a),
        Command::Lease(a) => lease::run(&cli, a),
        Command::Exporter(a) => exporter::run(&cli, a),
        Command::Package(a) => package::run(&cli, a),
        Command::UnitEnded { unit } => {
            crate::agents::service::ended::main(
                unit,
                &|k| std::env::var(k).ok(),
                std::path::Path::new("/"),
                &crate::agents::service::cib_file(),
            );
            return ExitCode::from(EXIT_OK);
        }
    };
    use std::io::Write as _;
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        // Not eprintln!: a face that ignores SIGPIPE (the alert verbs)
        // would panic on a closed stderr instead of exiting with its code.
        Err(CliError::BadInput(msg)) => {
            let _ = writeln!(std::io::stderr(), "{msg}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(CliError::Failed(e)) => {
            let _ = writeln!(std::io::stderr(), "mailha: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Where this node's config sync reads and writes.
pub fn sync_local(cli: &Cli) -> crate::configsync::Local {
    crate::configsync::Local {
        authkey: cli.authkey.clone(),
        ..crate::configsync::Local::system(&cli.config)
    }
}

/// Who runs this command: the login behind sudo, else the user; only
/// plain characters, for the record in the CIB.
pub fn operator() -> String {
    let raw = ["SUDO_USER", "LOGNAME", "USER"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "root".into());
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(32)
        .collect();
    if clean.is_empty() { "?".into() } else { clean }
}

/// Loads the config, printing its warnings to stderr.
pub fn load_config(path: &Path) -> Result<crate::config::Loaded, CliError> {
    let loaded = crate::config::load(path)?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    Ok(loaded)
}
