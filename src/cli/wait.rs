//! Waiting on the live cluster, shared by the verbs that change placement
//! (switchover, standby, online, stop, start, maintenance off): crm_mon
//! polled until a pure predicate says done, each look bounded by the
//! tools' own deadline, the whole wait by the operator's `--wait`; Ctrl-C,
//! TERM or a closed terminal end the wait (not the process), so each
//! verb can still undo what it must (`switchover`'s constraint).

use crate::status::Status;
use anyhow::Context;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const POLL: Duration = Duration::from_millis(500);
const SMTP_PROBE: Duration = Duration::from_secs(2);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn catch_signals() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { signal(s, SigHandler::Handler(on_signal)) };
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The cluster as crm_mon sees it now.
pub fn look() -> anyhow::Result<Status> {
    let xml = crate::cluster::crm_mon().context("asking Pacemaker for the cluster state")?;
    crate::status::parse(&xml).context("reading crm_mon's answer")
}

/// What one look decided.
pub enum Verdict<T> {
    Done(T),
    /// Not yet; the words say what is awaited.
    Waiting(String),
    /// Waiting longer will not help.
    Failed(String),
}

/// Polls until `judge` says done or failed, `deadline` passes or the
/// operator interrupts; `step` sees each look (to report progress).
pub fn until<T>(
    deadline: Instant,
    wait: Duration,
    mut step: impl FnMut(&Status),
    mut judge: impl FnMut(&Status) -> Verdict<T>,
) -> anyhow::Result<T> {
    let mut last = String::from("nothing asked yet");
    loop {
        if interrupted() {
            anyhow::bail!("interrupted ({last})");
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "not done within {} ({last})",
                humantime::format_duration(wait)
            );
        }
        match look() {
            Ok(st) => {
                step(&st);
                match judge(&st) {
                    Verdict::Done(t) => return Ok(t),
                    Verdict::Waiting(w) => last = w,
                    Verdict::Failed(f) => anyhow::bail!("{f}"),
                }
            }
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(POLL);
    }
}

/// Whether SMTP answers on the VIP now (a 220 greeting), within the
/// probe's deadline or what is left of `deadline`.
pub fn smtp_answers(vip: &str, deadline: Instant) -> Result<(), String> {
    let target = crate::agents::service::probe::Target::Tcp {
        host: vip.to_string(),
        port: 25,
    };
    crate::agents::service::probe::run(
        &crate::agents::service::probe::Kind::Smtp,
        &target,
        SMTP_PROBE.min(deadline.saturating_duration_since(Instant::now())),
    )
}

/// Prints each change of the mail stack between looks (to stderr, so
/// `--json` stays one document on stdout), with the seconds since `t0`.
pub fn reporter(t0: Instant, quiet: bool) -> impl FnMut(&Status) {
    let mut before: Option<Status> = None;
    move |st: &Status| {
        if let Some(b) = &before
            && !quiet
        {
            for s in crate::ops::standby::steps(b, st) {
                eprintln!("  {:>5.1} s  {s}", t0.elapsed().as_secs_f64());
            }
        }
        before = Some(st.clone());
    }
}

/// The options of every verb that changes something and waits for it.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the change to be done (default 120s).
    #[arg(
        long,
        value_name = "TIMEOUT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "120s"
    )]
    pub wait: Option<humantime::Duration>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

const DEFAULT_WAIT: Duration = Duration::from_secs(120);

impl Common {
    pub fn wait(&self) -> Duration {
        self.wait.map(Duration::from).unwrap_or(DEFAULT_WAIT)
    }
}
