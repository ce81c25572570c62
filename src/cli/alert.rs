//! `mailha alert ...` and the `alert_mailha` face (Pacemaker's alert agent).

use super::{Cli, CliError, EXIT_FAILED, EXIT_OK, load_config};
use crate::alert::{self, Retries, System, event::Event, spool::Spool};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spool directory.
    #[arg(long, global = true, env = alert::spool::ENV_DIR, default_value = alert::spool::DEFAULT_DIR)]
    pub spool: PathBuf,
    #[command(subcommand)]
    pub command: Verb,
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// Send a test incident through every configured channel; report each.
    Test,
    /// One pass: mail every incident whose batch window is over, retry the
    /// ones a channel has not delivered yet; exit 1 if any channel failed.
    SendPending,
    /// Keep sending: a pass every second, failed channels retried with
    /// backoff (5 s doubling up to 5 min). Runs until killed. This is
    /// what `ocf:mailha:sender` runs on every node.
    Run {
        /// Write this process's pid here (atomically) once running.
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// Append stdout and stderr to this file (a daemon has no terminal).
        #[arg(long)]
        log: Option<PathBuf>,
    },
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let loaded = load_config(&cli.config)?;
    let Some(cfg) = loaded.config.alerts else {
        return Err(CliError::BadInput(format!(
            "{}: no [alerts] section: nothing to send",
            cli.config.display()
        )));
    };
    let channels = alert::send::channels(&cfg, &alert::hostname());
    // A relay or webhook that resets the connection mid-conversation
    // (lettre then writes its QUIT into it) must be a failed delivery,
    // kept in the spool and retried; under SIGPIPE's default action it
    // ended the sender daemon, silently.
    super::writes_to_gone_peers_are_errors();
    match a.command {
        Verb::Test => {
            if channels.is_empty() {
                return Err(CliError::BadInput("alerts: no channel configured".into()));
            }
            let mut failed = 0;
            for at in alert::send_test(&cfg, &channels, &System) {
                match at.result {
                    Ok(()) => ONE_SHOT.out(format_args!("{}: ok", at.channel)),
                    Err(e) => {
                        failed += 1;
                        ONE_SHOT.out(format_args!("{}: FAILED: {e}", at.channel));
                    }
                }
            }
            if failed > 0 {
                return Err(
                    anyhow::anyhow!("{failed} of {} channels failed", channels.len()).into(),
                );
            }
            Ok(())
        }
        Verb::SendPending => {
            let spool = Spool::open(&a.spool).context("opening the spool")?;
            let pass =
                alert::send_pending(&spool, &cfg, &channels, &System, &mut Retries::default())
                    .context("sending")?;
            let failed = report(ONE_SHOT, &pass);
            if failed > 0 {
                return Err(
                    anyhow::anyhow!("{failed} deliveries failed; they stay in the spool").into(),
                );
            }
            Ok(())
        }
        Verb::Run {
            ref pid_file,
            ref log,
        } => {
            if let Some(l) = log {
                redirect_output(l).with_context(|| format!("log {}", l.display()))?;
            }
            let spool = Spool::open(&a.spool).context("opening the spool")?;
            // Pacemaker may run the alert agent as hacluster: it must be
            // able to write where this root daemon reads.
            spool
                .share_with_pacemaker()
                .context("handing the spool to hacluster")?;
            if let Some(p) = pid_file {
                write_pid_file(p).with_context(|| format!("pid file {}", p.display()))?;
            }
            DAEMON.err(format_args!(
                "mailha alert: sender {} running on {} (spool {})",
                std::process::id(),
                alert::hostname(),
                a.spool.display()
            ));
            let mut retries = Retries::default();
            loop {
                match alert::send_pending(&spool, &cfg, &channels, &System, &mut retries) {
                    Ok(pass) => {
                        report(DAEMON, &pass);
                    }
                    Err(e) => DAEMON.err(format_args!("mailha alert: {e}")),
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Appends fd 1 and 2 to `path` (created 0600, directories as needed).
fn redirect_output(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    for fd in [1, 2] {
        // SAFETY: dup2 onto the standard descriptors of this
        // single-threaded process; `f` stays valid for the call.
        if unsafe { nix::libc::dup2(f.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Writes our pid to a temporary file and renames it into place, so a
/// monitor never reads half a pid.
fn write_pid_file(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
    std::fs::rename(&tmp, path)
}

/// Prints what a pass did; returns the number of failed deliveries.
fn report(to: Report, pass: &alert::Pass) -> usize {
    let mut failed = 0;
    for at in &pass.attempts {
        match &at.result {
            Ok(()) => to.out(format_args!("{} {}: sent", at.incident, at.channel)),
            Err(e) => {
                failed += 1;
                to.err(format_args!("{} {}: failed: {e}", at.incident, at.channel));
            }
        }
    }
    for q in &pass.quieted {
        to.out(format_args!(
            "{q}: kept back, a repeat of a failure mailed less than 30 min ago"
        ));
    }
    for b in &pass.bad {
        to.err(format_args!("mailha alert: skipped: {b}"));
    }
    for u in &pass.unrecorded {
        to.err(format_args!(
            "mailha alert: failed attempt not counted: {u}"
        ));
    }
    failed
}

/// Where `mailha alert` reports, and what a reader that went away does to
/// it. The verbs ignore SIGPIPE (`writes_to_gone_peers_are_errors`, for
/// the relay's and the webhook's sake), so `mailha alert test | head -1`
/// meets EPIPE on its own stdout, where `println!` would panic. A one-shot
/// verb then ends by SIGPIPE after all, as every other face and every
/// filter does; the sender daemon keeps sending, since its alerts matter
/// more than its log. Other write errors are ignored: the exit status
/// still says how the deliveries went.
#[derive(Clone, Copy)]
struct Report {
    daemon: bool,
}

const ONE_SHOT: Report = Report { daemon: false };
const DAEMON: Report = Report { daemon: true };

impl Report {
    fn out(self, line: std::fmt::Arguments<'_>) {
        self.write(&mut std::io::stdout().lock(), line);
    }

    fn err(self, line: std::fmt::Arguments<'_>) {
        self.write(&mut std::io::stderr().lock(), line);
    }

    fn write(self, w: &mut dyn std::io::Write, line: std::fmt::Arguments<'_>) {
        let r = w
            .write_fmt(line)
            .and_then(|()| w.write_all(b"\n"))
            .and_then(|()| w.flush());
        if let Err(e) = r
            && e.kind() == std::io::ErrorKind::BrokenPipe
            && !self.daemon
        {
            die_of_sigpipe();
        }
    }
}

/// Ends the process by SIGPIPE, its default action restored first.
fn die_of_sigpipe() -> ! {
    use nix::sys::signal::{SigHandler, Signal, raise, signal};
    // SAFETY: SIG_DFL installs no handler.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
    let _ = raise(Signal::SIGPIPE);
    // Not reached: SIGPIPE's default action ends the process.
    std::process::exit(128 + Signal::SIGPIPE as i32)
}

/// The `alert_mailha` face: Pacemaker runs it for every alert with the
/// event in `CRM_alert_*`. It records the event durably and returns; it
/// never touches the network (the sender does) and never runs anything.
/// The spool is `MAILHA_SPOOL` or /var/lib/mailha/spool.
pub fn agent_main() -> ExitCode {
    let host = alert::hostname();
    let event = match Event::from_crm_env(std::env::vars_os(), &host, SystemTime::now()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("alert_mailha: {e}");
            return ExitCode::from(super::EXIT_BAD_INPUT);
        }
    };
    // Cross-node dedup: an event every node sees is recorded by the peer
    // of the node it is about (see alert::owner).
    if !alert::owner::records_here(&event, &host) {
        return ExitCode::from(EXIT_OK);
    }
    match alert::spool::record(&event) {
        Ok(_) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("alert_mailha: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
