//! Monitor cost, side by side on the same running daemons: mailha's
//! `ocf:mailha:service` against the stock `ocf:heartbeat:{postfix,mysql,
//! dovecot}`. Run inside a lab node where the mail runs (bench/monitor.sh
//! does that); per agent: processes created by one monitor (strace), and
//! the median of N calls of wall time and CPU time (getrusage of the
//! waited-for children).
//!
//! `cargo bench --bench monitor` outside a lab node has nothing to measure
//! and says so.
//!
//! `MAILHA_BENCH_CASES=FILE` measures the cases in FILE instead of the
//! CIB's (a JSON list of `{"label", "agent", "params": {NAME: VALUE}}`):
//! bench/unit-monitor.sh compares one daemon's monitor in unit mode and in
//! argv mode that way.
//!
//! Where a monitor's CPU goes (issue 16, item 5): `MAILHA_BENCH_FLOOR=PATH`
//! adds a static C program that only returns (bench/monitor.sh builds it
//! with musl-gcc): what any process costs here. Each mailha case also runs
//! without its probe (`... no probe`): the difference is the deep check's
//! own cost (a TCP conversation with the daemon, kernel side included).

use mailha::cib::xml::El;
use nix::sys::resource::{UsageWho, getrusage};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Case {
    label: String,
    agent: String,
    env: Vec<(String, String)>,
}

fn cpu_children() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let t =
        |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    t(u.user_time()) + t(u.system_time())
}

fn command(c: &Case) -> Command {
    let mut cmd = Command::new(&c.agent);
    cmd.arg("monitor")
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", "bench")
        .env("OCF_RESKEY_CRM_meta_interval", "10000")
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in &c.env {
        cmd.env(format!("OCF_RESKEY_{k}"), v);
    }
    cmd
}

/// Processes one monitor creates: execve/fork/clone calls seen by strace,
/// minus strace's own execve of the agent.
fn processes(c: &Case) -> Option<usize> {
    let dir = tempfile::tempdir().ok()?;
    let trace = dir.path().join("t");
    let cmd = command(c);
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let mut s = Command::new("strace");
    s.args([
        "-f",
        "-qq",
        "-e",
        "trace=execve,execveat,fork,vfork,clone,clone3",
        "-o",
    ])
    .arg(&trace)
    .arg(prog)
    .args(args)
    .env_clear()
    .envs(envs)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    s.status().ok()?;
    let t = std::fs::read_to_string(&trace).ok()?;
    let calls = t
        .lines()
        .filter(|l| !l.contains("+++") && !l.contains("---") && !l.contains("resumed>"))
        .filter(|l| l.contains("execve(") || l.contains("clone") || l.contains("fork("))
        .count();
    // clone() for a thread is not a process; none of these agents use
    // threads on the monitor path, so every clone is a child process.
    Some(calls.saturating_sub(1))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mailha_case(cib: &El, rsc: &str) -> Option<Case> {
    let p = cib.by_id(rsc)?;
    let ia = p.find("instance_attributes")?;
    let env = ia
        .children
        .iter()
        .filter_map(|nv| Some((nv.get("name")?.to_string(), nv.get("value")?.to_string())))
        .collect();
    Some(Case {
        label: format!("mailha:service {rsc}"),
        agent: "/usr/lib/ocf/resource.d/mailha/service".into(),
        env,
    })
}

/// With `MAILHA_BENCH_TWINS=LABEL=/path/to/mailha,...` (other builds:
/// static glibc, dynamic), the same monitor through each of them: what the
/// shipped build (scripts/build-release.sh) saves per call. The agent is
/// found by its name, so a twin is a `service` symlink in a directory of
/// its own.
fn twins(c: &Case) -> Vec<Case> {
    let Ok(spec) = std::env::var("MAILHA_BENCH_TWINS") else {
        return Vec::new();
    };
    spec.split(',')
        .filter_map(|t| {
            let (label, bin) = t.split_once('=')?;
            let dir =
                std::env::temp_dir().join(format!("mailha-bench-{label}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let link = dir.join("service");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(bin, &link).ok()?;
            Some(Case {
                label: format!("{} ({label})", c.label),
                agent: link.display().to_string(),
                env: c.env.clone(),
            })
        })
        .collect()
}

fn stock(label: &str, agent: &str, env: &[(&str, &str)]) -> Case {
    Case {
        label: label.into(),
        agent: format!("/usr/lib/ocf/resource.d/heartbeat/{agent}"),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The cases of a `MAILHA_BENCH_CASES` file.
fn cases_from(path: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    v.as_array()
        .unwrap_or_else(|| panic!("{path}: not a JSON list"))
        .iter()
        .map(|c| Case {
            label: c["label"].as_str().expect("label").to_string(),
            agent: c["agent"].as_str().expect("agent").to_string(),
            env: c["params"]
                .as_object()
                .expect("params")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_string()))
                .collect(),
        })
        .collect()
}

fn main() {
    let n: usize = std::env::var("MAILHA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if let Ok(path) = std::env::var("MAILHA_BENCH_CASES") {
        measure(&cases_from(&path), n);
        return;
    }
    let cib = Command::new("cibadmin")
        .arg("--query")
        .output()
        .ok()
        .and_then(|o| El::parse(&String::from_utf8_lossy(&o.stdout)).ok());
    let Some(cib) = cib else {
        println!("no cluster here: run bench/monitor.sh (it runs this inside a lab node)");
        return;
    };
    let mut cases = Vec::new();
    if let Ok(floor) = std::env::var("MAILHA_BENCH_FLOOR") {
        cases.push(Case {
            label: "floor: static C, returns 0".into(),
            agent: floor,
            env: Vec::new(),
        });
    }
    for (rsc, stock_case) in [
        (
            "svc-postfix",
            stock(
                "ocf:heartbeat:postfix",
                "postfix",
                &[("config_dir", "/etc/postfix")],
            ),
        ),
        (
            "svc-mysql",
            stock(
                "ocf:heartbeat:mysql",
                "mysql",
                &[
                    ("binary", "/usr/bin/mysqld_safe"),
                    ("config", "/etc/mysql/my.cnf"),
                    ("datadir", "/srv/data/mysql"),
                ],
            ),
        ),
        (
            "svc-dovecot",
            stock("ocf:heartbeat:dovecot", "dovecot", &[]),
        ),
    ] {
        match mailha_case(&cib, rsc) {
            Some(c) => {
                cases.extend(twins(&c));
                cases.push(Case {
                    label: format!("{} (no probe)", c.label),
                    agent: c.agent.clone(),
                    env: c
                        .env
                        .iter()
                        .filter(|(k, _)| !k.starts_with("probe"))
                        .cloned()
                        .collect(),
                });
                cases.push(c);
            }
            None => println!("{rsc}: not in this CIB"),
        }
        cases.push(stock_case);
    }
    measure(&cases, n);
}

/// Runs every case `n` times, round-robin, and prints the table and its
/// JSON.
fn measure(cases: &[Case], n: usize) {
    println!(
        "{:<34} {:>6} {:>6} {:>10} {:>10}",
        "agent", "rc", "procs", "wall p50", "cpu p50"
    );
    // Round-robin over the cases, so a change in the machine's load
    // during the run weighs on every agent alike.
    let (mut walls, mut cpus) = (
        vec![Vec::with_capacity(n); cases.len()],
        vec![Vec::with_capacity(n); cases.len()],
    );
    for _ in 0..n {
        for (i, c) in cases.iter().enumerate() {
            let c0 = cpu_children();
            let t0 = Instant::now();
            let _ = command(c).status();
            walls[i].push(t0.elapsed());
            cpus[i].push(cpu_children().saturating_sub(c0));
        }
    }
    let mut json = Vec::new();
    for ((c, walls), cpus) in cases.iter().zip(walls).zip(cpus) {
        let rc = command(c)
            .status()
            .ok()
            .and_then(|s| s.code())
            .unwrap_or(-1);
        let procs = processes(c);
        let (w, u) = (median(walls), median(cpus));
        println!(
            "{:<34} {:>6} {:>6} {:>8.2}ms {:>8.2}ms",
            c.label,
            rc,
            procs.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            w.as_secs_f64() * 1e3,
            u.as_secs_f64() * 1e3
        );
        json.push(serde_json::json!({"agent": c.label, "rc": rc, "processes": procs, "wall_ms_p50": w.as_secs_f64() * 1e3, "cpu_ms_p50": u.as_secs_f64() * 1e3, "n": n}));
    }
    println!("{}", serde_json::to_string(&json).unwrap());
}
