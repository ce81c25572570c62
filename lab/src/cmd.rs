//! External commands, each with a deadline, behind a small trait so the
//! lab's logic can be tested with a recording double. The real runner is
//! `mailha::exec::run_opts`, the one way mailha runs a child.
//!
//! A command that leaves a daemon behind (e.g. `service pacemaker start`)
//! may keep our pipes open; the runner waits for the child's exit, then
//! gives the pipe readers a short grace period and returns what they got,
//! so such a command never hangs the caller. Callers should still redirect
//! a daemon's output inside the shell they run.

use std::sync::Mutex;
use std::time::Duration;

/// PATH and friends for commands run in a node: the caller's environment
/// (cargo, pyenv, ...) must not leak into the node's daemons.
pub const CLEAN_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("LANG", "C.UTF-8"),
    ("HOME", "/root"),
    ("TERM", "dumb"),
];

/// One external command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Kill the command (SIGKILL) when it runs longer than this.
    pub deadline: Duration,
    /// Start from an empty environment plus [`CLEAN_ENV`].
    pub clean_env: bool,
}

impl Cmd {
    pub fn new<S: Into<String>>(program: S) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            deadline: Duration::from_secs(10),
            clean_env: false,
        }
    }

    pub fn arg<S: Into<String>>(mut self, a: S) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }

    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }

    pub fn clean_env(mut self) -> Self {
        self.clean_env = true;
        self
    }

    /// The command line as a human reads it (for errors and dry runs).
    pub fn display(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            if a.is_empty()
                || a.contains(|c: char| c.is_whitespace() || "'\"$;&|<>()\\".contains(c))
            {
                s.push('\'');
                s.push_str(&a.replace('\'', r"'\''"));
                s.push('\'');
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when it was ended by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: &str) -> Self {
        Output {
            code: Some(0),
            stdout: stdout.to_string(),
            stderr: String::new(),
        }
    }

    pub fn failed(code: i32, stderr: &str) -> Self {
        Output {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("cannot start `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` did not finish within {}s and was killed", deadline.as_secs_f32())]
    Timeout { cmd: String, deadline: Duration },
    #[error("`{cmd}` failed ({}): {}", code.map(|c| format!("exit {c}")).unwrap_or_else(|| "killed by a signal".into()), stderr.trim())]
    Failed {
        cmd: String,
        code: Option<i32>,
        stderr: String,
    },
}

/// Runs commands. Implemented for the real system and for tests.
pub trait Runner {
    /// Runs `cmd` to its end or its deadline; a non-zero exit is not an
    /// error here (see [`Runner::run_ok`]).
    fn run(&self, cmd: &Cmd) -> Result<Output, CmdError>;

    /// Runs `cmd` and fails unless it exits 0.
    fn run_ok(&self, cmd: &Cmd) -> Result<Output, CmdError> {
        let out = self.run(cmd)?;
        if out.success() {
            Ok(out)
        } else {
            Err(CmdError::Failed {
                cmd: cmd.display(),
                code: out.code,
                stderr: out.stderr,
            })
        }
    }
}

/// The real thing: `exec::run_opts`, the one way mailha runs a child.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

/// How long output is still collected after the child exited (a daemon
/// it left behind may hold the pipe open forever).
const PIPE_GRACE: Duration = Duration::from_millis(200);

impl Runner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> Result<Output, CmdError> {
        let argv: Vec<&str> = std::iter::once(cmd.program.as_str())
            .chain(cmd.args.iter().map(String::as_str))
            .collect();
        let env: &[(&str, &str)] = if cmd.clean_env { CLEAN_ENV } else { &[] };
        let opts = mailha::exec::Opts {
            clear_env: cmd.clean_env,
            linger: PIPE_GRACE,
            ..Default::default()
        };
        match mailha::exec::run_opts(&argv, env, None, cmd.deadline, opts) {
            Ok(o) => Ok(Output {
                code: o.code,
                stdout: o.stdout,
                stderr: o.stderr,
            }),
            Err(mailha::exec::ExecError::Timeout { .. }) => Err(CmdError::Timeout {
                cmd: cmd.display(),
                deadline: cmd.deadline,
            }),
            Err(
                mailha::exec::ExecError::Spawn { source, .. }
                | mailha::exec::ExecError::Io { source, .. },
            ) => Err(CmdError::Spawn {
                cmd: cmd.display(),
                source,
            }),
        }
    }
}

/// A test double: records every command and answers from a script of
/// (matcher, output) rules; unmatched commands succeed with empty output.
#[derive(Debug, Default)]
pub struct Recorder {
    pub calls: Mutex<Vec<Cmd>>,
    rules: Vec<(String, Result<Output, String>)>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Commands whose display line contains `needle` get `out`.
    pub fn answer(mut self, needle: &str, out: Output) -> Self {
        self.rules.push((needle.to_string(), Ok(out)));
        self
    }

    /// Commands whose display line contains `needle` time out.
    pub fn time_out(mut self, needle: &str) -> Self {
        self.rules
            .push((needle.to_string(), Err(needle.to_string())));
        self
    }

    /// The display lines of all calls so far.
    pub fn lines(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|v| v.iter().map(Cmd::display).collect())
            .unwrap_or_default()
    }
}

impl Runner for Recorder {
    fn run(&self, cmd: &Cmd) -> Result<Output, CmdError> {
        if let Ok(mut v) = self.calls.lock() {
            v.push(cmd.clone());
        }
        let line = cmd.display();
        for (needle, out) in &self.rules {
            if line.contains(needle.as_str()) {
                return match out {
                    Ok(o) => Ok(o.clone()),
                    Err(_) => Err(CmdError::Timeout {
                        cmd: line,
                        deadline: cmd.deadline,
                    }),
                };
            }
        }
        Ok(Output::ok(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let c = Cmd::new("sh").args(["-c", "echo a b", "x"]);
        assert_eq!(c.display(), "sh -c 'echo a b' x");
        assert_eq!(Cmd::new("echo").arg("it's").display(), r"echo 'it'\''s'");
    }

    #[test]
    fn system_runner_captures_output_and_exit_code() {
        let out = SystemRunner
            .run(&Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]))
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[test]
    fn system_runner_kills_at_the_deadline() {
        let t = Instant::now();
        let e = SystemRunner
            .run(
                &Cmd::new("sleep")
                    .arg("5")
                    .deadline(Duration::from_millis(100)),
            )
            .unwrap_err();
        assert!(matches!(e, CmdError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_daemon_holding_the_pipe_does_not_hang_the_caller() {
        let t = Instant::now();
        let out = SystemRunner
            .run(&Cmd::new("sh").args(["-c", "sleep 3 & echo started"]))
            .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, "started\n");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn clean_env_drops_the_callers_environment() {
        let out = SystemRunner
            .run(&Cmd::new("/usr/bin/env").clean_env())
            .unwrap();
        let mut keys: Vec<&str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split('=').next())
            .collect();
        keys.sort();
        assert_eq!(keys, ["HOME", "LANG", "PATH", "TERM"]);
    }

    #[test]
    fn run_ok_turns_a_non_zero_exit_into_an_error_with_stderr() {
        let r = Recorder::new().answer("false", Output::failed(1, "nope\n"));
        let e = r.run_ok(&Cmd::new("false")).unwrap_err();
        assert_eq!(e.to_string(), "`false` failed (exit 1): nope");
    }
}
