//! Running a child process with a deadline. Every external command mailha
//! runs (crm_mon, cibadmin, crm_verify, ssh, ...) goes through `run`: a
//! hung cluster tool or peer must never hang mailha.
//!
//! The child leads a process group of its own, so on overrun the whole
//! group is killed (SIGKILL), not just the child: a shell's or a script's
//! children die with it instead of living on with our pipes. Leaving the
//! caller's group would also take the child out of what Pacemaker kills
//! when an agent overruns its op timeout (it kills the agent's group), so
//! the child asks the kernel for SIGKILL when the thread that started it
//! dies (`PR_SET_PDEATHSIG`). Output is collected up to a limit per pipe
//! (`Opts::max_output`); the rest is read and dropped, so a chatty child
//! neither blocks nor fills our memory.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{program}: cannot start: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program}: no result within {}; killed", humantime::format_duration(*.deadline))]
    Timeout { program: String, deadline: Duration },
    #[error("{program}: {source}")]
    Io {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// stdout or stderr went past `Opts::max_output` and was cut there.
    pub truncated: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// What a pipe gave: the first `max` bytes, and whether there was more.
#[derive(Default)]
struct Collected {
    data: Vec<u8>,
    truncated: bool,
}

type Shared = std::sync::Arc<std::sync::Mutex<Collected>>;

/// Reads a pipe on a thread into a shared buffer, so what was written is
/// there even if the pipe never closes; the receiver fires at EOF. Bytes
/// past `max` are read and dropped: the child is never blocked on a full
/// pipe, and our memory is bounded.
fn drain(
    mut pipe: impl Read + Send + 'static,
    max: usize,
) -> (Shared, std::sync::mpsc::Receiver<()>) {
    let buf: Shared = Default::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut c = b.lock().expect("not poisoned");
                    let room = max.saturating_sub(c.data.len());
                    c.data.extend_from_slice(&chunk[..n.min(room)]);
                    c.truncated |= n > room;
                }
            }
        }
        let _ = tx.send(());
    });
    (buf, rx)
}

/// The most output `run` keeps of each pipe by default: far above any
/// CIB or crm_mon document mailha reads, far below a memory problem.
pub const MAX_OUTPUT: usize = 16 << 20;

/// How `run_opts` treats the environment and a child's leftover pipes.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// Start from an empty environment (then `env` only).
    pub clear_env: bool,
    /// After the child exited, how long to keep collecting output from
    /// pipes a daemon it started may hold open for ever.
    pub linger: Duration,
    /// Bytes kept of each of stdout and stderr (`Output::truncated` says
    /// when there was more).
    pub max_output: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            clear_env: false,
            linger: Duration::from_secs(2),
            max_output: MAX_OUTPUT,
        }
    }
}

/// Runs `argv` (never through a shell) with `stdin` fed to it, and waits
/// at most `deadline`.
pub fn run<S: AsRef<OsStr>>(
    argv: &[S],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
    deadline: Duration,
) -> Result<Output, ExecError> {
    run_opts(argv, env, stdin, deadline, Opts::default())
}

/// Starts a command detached from the caller (its own process group, no
/// inherited pipes), so a daemon that stays in the foreground is not tied
/// to the operation that started it; no deadline, by design: the caller
/// polls the child (and the daemon) against its own. The agents' daemon
/// starts only.
pub fn spawn_detached(argv: &[String]) -> Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{}: {e}", argv[0]))
}

/// Sets this thread's scheduling policy and priority through the system
/// call itself: musl's sched_setscheduler(3) is a stub that fails with
/// ENOSYS by design. Async-signal-safe (one system call, nothing
/// allocated), so a child may call it between fork and exec.
pub fn set_scheduler(policy: nix::libc::c_int, priority: nix::libc::c_int) -> std::io::Result<()> {
    use nix::libc;
    // The kernel's struct sched_param is one int (musl's libc type adds
    // fields the kernel never reads).
    // SAFETY: `priority` outlives the call; pid 0 is this thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            policy,
            &priority as *const libc::c_int,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Back to the normal scheduling policy, in a child about to exec: the
/// lease keeper runs real-time (`lease::keeper`), and a program it
/// starts (a hung `mount`, a helper stuck in a loop) must not inherit
/// that and starve the machine. A no-op for a caller at normal priority;
/// lowering one's own policy needs no privilege.
fn normal_priority() {
    let _ = set_scheduler(nix::libc::SCHED_OTHER, 0);
}

/// `run` with a choice of environment and linger.
pub fn run_opts<S: AsRef<OsStr>>(
    argv: &[S],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
    deadline: Duration,
    opts: Opts,
) -> Result<Output, ExecError> {
    let program = argv
        .first()
        .map(|s| s.as_ref().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cmd = Command::new(argv[0].as_ref());
    cmd.args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if opts.clear_env {
        cmd.env_clear();
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        // SAFETY: between fork and exec only prctl(2) and
        // sched_setscheduler(2), plain system calls, run; nothing is
        // allocated or locked.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)?;
                normal_priority();
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        program: program.clone(),
        source,
    })?;
    // Pipes are drained on threads so a chatty child cannot block on a
    // full pipe while we wait for it to exit.
    let (out_buf, rx_out) = drain(child.stdout.take().expect("piped"), opts.max_output);
    let (err_buf, rx_err) = drain(child.stderr.take().expect("piped"), opts.max_output);
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A child that never reads must not block us either.
        std::thread::spawn(move || {
            // A child that exits without reading all (ssh to a peer that
            // is down) breaks the pipe. The CLI runs with SIGPIPE's
            // default action (cli::main), which would kill all of mailha
            // mid-apply: blocked on this thread, the write fails with
            // EPIPE instead, and the pending signal goes with the thread.
            let mut pipe_sig = nix::sys::signal::SigSet::empty();
            pipe_sig.add(nix::sys::signal::Signal::SIGPIPE);
            let _ = pipe_sig.thread_block();
            let _ = pipe.write_all(&data);
        });
    }
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= deadline => {
                // The child leads its group (not yet reaped, so its pid
                // still names the group): everything it started that
                // stayed in the group goes with it.
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill();
                // A child stuck in the kernel (D state on a hung disk or
                // server) does not die even from SIGKILL: reap it if it
                // goes within a moment, else leave it rather than hang.
                let grace = Instant::now();
                while grace.elapsed() < Duration::from_millis(500) {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                return Err(ExecError::Timeout { program, deadline });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(source) => return Err(ExecError::Io { program, source }),
        }
    };
    // A daemon started by the command may keep its pipes open for ever
    // (e.g. `service pacemaker start`): the exit is what counts, the
    // output is collected for a moment more at most.
    let linger_end = Instant::now() + deadline.saturating_sub(start.elapsed()).min(opts.linger);
    let left = || linger_end.saturating_duration_since(Instant::now());
    let _ = rx_out.recv_timeout(left());
    let _ = rx_err.recv_timeout(left());
    let out = out_buf.lock().expect("not poisoned");
    let err = err_buf.lock().expect("not poisoned");
    Ok(Output {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out.data).into_owned(),
        stderr: String::from_utf8_lossy(&err.data).into_owned(),
        truncated: out.truncated || err.truncated,
    })
}

/// Runs `mailha io ARGS` (this same binary) with a deadline; its stdout
/// on success. I/O that may hang in the kernel (a superblock read on a
/// dead disk, an umount of a hung NFS mount) runs there: a thread stuck in
/// D state would keep the caller from exiting, a child cannot.
pub fn io_child(args: &[&str], deadline: Duration) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding mailha: {e}"))?;
    let mut argv: Vec<String> = vec![exe.to_string_lossy().into_owned(), "io".into()];
    argv.extend(args.iter().map(|s| s.to_string()));
    match run(&argv, &[], None, deadline) {
        Ok(o) if o.success() => Ok(o.stdout),
        Ok(o) => Err(o.stderr.trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduling policy in a /proc/.../stat line (its 41st field).
    fn policy(stat: &str) -> String {
        let after_comm = stat.rsplit_once(')').expect("a stat line").1;
        after_comm
            .split_whitespace()
            .nth(38)
            .expect("41 fields")
            .into()
    }

    /// The lease keeper runs real-time; the commands it runs must not
    /// inherit that. Root only: a thread of this test's own is made
    /// real-time for the call.
    #[test]
    fn a_real_time_caller_runs_its_commands_at_normal_priority() {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "needs root in CI");
            eprintln!("SKIPPED: making a thread real-time needs root");
            return;
        }
        std::thread::spawn(|| {
            use nix::libc;
            set_scheduler(libc::SCHED_RR, 1).expect("SCHED_RR as root");
            let own = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            assert_eq!(policy(&own), libc::SCHED_RR.to_string());
            let o = run(
                &["/bin/cat", "/proc/self/stat"],
                &[],
                None,
                Duration::from_secs(10),
            )
            .unwrap();
            assert_eq!(
                policy(&o.stdout),
                libc::SCHED_OTHER.to_string(),
                "{}",
                o.stdout
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_command_that_overruns_is_killed_at_its_deadline() {
        let e = run(&["/bin/sleep", "10"], &[], None, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e, ExecError::Timeout { .. }), "{e}");
    }

    #[test]
    fn output_and_exit_code_are_returned() {
        let o = run(
            &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
            &[],
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
    }

    /// Run in a process of its own by the test below: SIGPIPE at its
    /// default action, as the CLI runs.
    #[test]
    #[ignore = "run in a process of its own by a_child_that_exits_without_reading_its_input_does_not_kill_us"]
    fn sigpipe_default_child() {
        // SAFETY: SIG_DFL installs no handler.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
        // More than a pipe holds, to a child that reads nothing.
        let big = vec![b'x'; 1 << 20];
        let o = run(&["/bin/true"], &[], Some(&big), Duration::from_secs(5)).unwrap();
        assert_eq!(o.code, Some(0));
        std::thread::sleep(Duration::from_millis(300));
        println!("still alive after the broken pipe");
    }

    #[test]
    fn a_child_that_exits_without_reading_its_input_does_not_kill_us() {
        // Seen in the lab: `mailha apply` with the peer's sshd down died
        // of SIGPIPE (exit 141) feeding the config to ssh.
        let o = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "exec::tests::sigpipe_default_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("still alive after the broken pipe"),
            "{:?}\n{out}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }

    #[test]
    fn stdin_is_fed_and_arguments_are_not_interpreted() {
        let o = run(
            &["/bin/cat"],
            &[],
            Some(b"$(reboot)"),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(o.stdout, "$(reboot)");
        let o = run(
            &["/bin/echo", "a;b", "$(x)"],
            &[],
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(o.stdout, "a;b $(x)\n");
    }

    #[test]
    fn a_daemon_holding_the_pipes_does_not_hold_the_caller() {
        let start = Instant::now();
        let o = run(
            &["/bin/sh", "-c", "sleep 10 & echo started"],
            &[],
            None,
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(o.success());
        assert_eq!(
            o.stdout, "started\n",
            "output written before the exit is kept"
        );
        // Waiting for EOF would take the 10 s the daemon lives.
        assert!(start.elapsed() < Duration::from_secs(8));
    }

    /// Whether `pid` is gone (or a zombie nobody reaped yet).
    fn dead(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => crate::procs::parse_stat(&s).is_none_or(|st| st.state == 'Z'),
        }
    }

    #[test]
    fn an_overrun_kills_what_the_child_started_too() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", f.display());
        let e = run(
            &["/bin/sh", "-c", &script],
            &[],
            None,
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(e, ExecError::Timeout { .. }), "{e}");
        let pid: u32 = std::fs::read_to_string(&f).unwrap().trim().parse().unwrap();
        let end = Instant::now() + Duration::from_secs(2);
        while !dead(pid) {
            if Instant::now() > end {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!("the child's child {pid} outlived the deadline kill");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn output_is_kept_up_to_a_limit_and_the_child_is_not_blocked() {
        // 40 MiB of zeroes on stdout: more than the default limit.
        let o = run(
            &["/bin/sh", "-c", "head -c 41943040 /dev/zero; echo done >&2"],
            &[],
            None,
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(o.success());
        assert_eq!(o.stdout.len(), MAX_OUTPUT);
        assert!(o.truncated);
        assert_eq!(o.stderr, "done\n");
        let o = run_opts(
            &["/bin/echo", "0123456789"],
            &[],
            None,
            Duration::from_secs(5),
            Opts {
                max_output: 4,
                ..Opts::default()
            },
        )
        .unwrap();
        assert_eq!((o.stdout.as_str(), o.truncated), ("0123", true));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let e = run(&["/nonexistent/prog"], &[], None, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ExecError::Spawn { .. }));
    }
}
