//! The lease keeper daemon (`mailha lease keeper`) on real loop devices:
//! two keepers, one per "node", each on its OWN loop device over one lease
//! image (as the lab's nodes are), each petting a watchdog FIFO this test
//! reads. Timing: io_timeout 100 ms, watchdog 1 s, so renew 200 ms,
//! renew_fail 800 ms, host_dead 2 s.
//!
//! Each scenario runs in its own mount namespace (the outer test re-runs
//! this binary under `unshare --mount`), so the data mount a fence clears
//! is never on the host. Root only: SKIPPED without, FAILS in CI.

#[macro_use]
mod common;
use common::*;
use mailha::lease::client::{self, Status};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOST_DEAD: Duration = Duration::from_secs(2);
const WATCHDOG: Duration = Duration::from_secs(1);

fn in_private_mount_ns(name: &str) {
    if !root_and_tools(
        "the lease keeper tests",
        &[
            "/usr/bin/unshare",
            "/usr/sbin/losetup",
            "/usr/sbin/mkfs.ext4",
            "/usr/bin/mkfifo",
        ],
    ) {
        return;
    }
    run_in_private_mount_ns(name, Duration::from_secs(180));
}

/// Pets seen on one node's watchdog FIFO.
type Pets = Arc<Mutex<Vec<Instant>>>;

/// Reads a FIFO as the lab's emulated watchdog does: opened read-write so
/// it never sees end-of-file, every byte but the magic "V" is a pet.
fn watch_fifo(path: &Path) -> Pets {
    let pets: Pets = Arc::default();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(path)
        .unwrap();
    let p = pets.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while let Ok(n) = f.read(&mut b) {
            if b[..n].iter().any(|&c| c != b'V') {
                p.lock().unwrap().push(Instant::now());
            }
        }
    });
    pets
}

struct Node {
    name: &'static str,
    socket: String,
    config: PathBuf,
    log: PathBuf,
    pets: Pets,
    keeper: Option<Child>,
    /// Run the keeper as another machine would: a PID namespace of its
    /// own gives it another PID 1, so another boot id in its slot.
    other_machine: bool,
}

/// Two nodes on one lease image, and optionally a data disk that node 2
/// mounts in this namespace once it holds (`mount_data`), which a fence of
/// node 2 must clear. Both "nodes" see this namespace's mounts: data
/// mounted when a keeper starts without resuming is fenced at once.
struct World {
    dir: tempfile::TempDir,
    loops: Vec<String>,
    nodes: Vec<Node>,
    mnt: PathBuf,
    /// The keepers' `--reset`: never `reboot` here (this is the host).
    reset: &'static str,
}

impl World {
    fn new(with_data: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let img = d.join("lease.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(mailha::lease::format::LEASE_SIZE)
            .unwrap();
        let img_s = img.to_str().unwrap();
        let mut loops = vec![
            run_ok(&["losetup", "-f", "--show", img_s]),
            run_ok(&["losetup", "-f", "--show", img_s]),
        ];
        let mnt = d.join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut data_dev = "/dev/null".to_string();
        if with_data {
            let data = d.join("data.img");
            std::fs::File::create(&data)
                .unwrap()
                .set_len(16 << 20)
                .unwrap();
            run_ok(&["mkfs.ext4", "-q", "-F", data.to_str().unwrap()]);
            data_dev = run_ok(&["losetup", "-f", "--show", data.to_str().unwrap()]);
            loops.push(data_dev.clone());
        }
        let tag = std::process::id();
        let nodes = ["n1", "n2"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let wd = d.join(format!("watchdog-{name}"));
                run_ok(&["mkfifo", wd.to_str().unwrap()]);
                let pets = watch_fifo(&wd);
                let config = d.join(format!("{name}.toml"));
                std::fs::write(
                    &config,
                    format!(
                        r#"[cluster]
name = "keepertest"
[[cluster.nodes]]
name = "n1"
addresses = ["203.0.113.71"]
[[cluster.nodes]]
name = "n2"
addresses = ["203.0.113.72"]
[vip]
address = "198.51.100.170"
prefix = 24
nic = "eth0"
[storage.lease]
device = "{lease}"
io_timeout = "100ms"
[[storage.mounts]]
name = "data"
device = "{data_dev}"
fstype = "ext4"
mount_point = "{mnt}"
[services]
profile = "none"
[fencing]
mode = "lease"
watchdog = "{wd}"
watchdog_timeout = "1s"
watchdog_emulated = true
"#,
                        lease = loops[i],
                        mnt = mnt.display(),
                        wd = wd.display(),
                    ),
                )
                .unwrap();
                Node {
                    name,
                    socket: format!("mailha-lease-test-{tag}-{name}"),
                    log: d.join(format!("keeper-{name}.log")),
                    config,
                    pets,
                    keeper: None,
                    other_machine: false,
                }
            })
            .collect();
        World {
            dir,
            loops,
            nodes,
            mnt,
            reset: "none",
        }
    }

    /// Mounts the data disk here, as n2's storage agent does once n2
    /// holds.
    fn mount_data(&self) {
        run_ok(&["mount", &self.loops[2], self.mnt.to_str().unwrap()]);
    }

    /// n2 takes the lease and mounts the data.
    fn n2_holds_and_mounts(&self) {
        self.ask(1, "acquire").unwrap();
        self.wait(Duration::from_secs(10), "n2 holds", || self.status(1).holds);
        self.mount_data();
    }

    /// n2 takes the lease, and a process of n2 works inside the shared
    /// data mount (what a fence of n2 must end).
    fn n2_holds_with_a_writer(&self) -> Child {
        self.n2_holds_and_mounts();
        Command::new("sleep")
            .arg("600")
            .current_dir(&self.mnt)
            .spawn()
            .unwrap()
    }

    /// Both keepers running.
    fn started(with_data: bool) -> World {
        let mut w = World::new(with_data);
        w.start(0);
        w.start(1);
        w
    }

    fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .unwrap();
        let mut cmd = if n.other_machine {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
                .arg(env!("CARGO_BIN_EXE_mailha"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_mailha"))
        };
        let child = cmd
            .arg("--config")
            .arg(&n.config)
            .args(["lease", "keeper", "--node", n.name, "--socket", &n.socket])
            // This test's "nodes" share the machine with whatever cluster
            // stack runs here: never kill it.
            .arg("--keep-stack")
            // Nor reboot it: `--keep-stack` with the default reset is
            // refused by the keeper, so a forgotten `--reset` fails here.
            .args(["--reset", self.reset])
            // Its alert events go to a spool of this test's, never the host's.
            .env("MAILHA_SPOOL", n.log.with_extension("spool"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        n.keeper = Some(child);
        let socket = n.socket.clone();
        self.wait(Duration::from_secs(10), "the keeper answers", || {
            client::status(&socket, Duration::from_secs(1)).is_ok()
        });
    }

    /// The kinds of the alert events node `i`'s keeper spooled, with the
    /// node each is about.
    fn spooled(&self, i: usize) -> Vec<(String, String)> {
        let dir = self.nodes[i].log.with_extension("spool").join("pending");
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .filter_map(|e| {
                        let v: serde_json::Value =
                            serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                        Some((
                            v["kind"].as_str()?.to_string(),
                            v["node"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn status(&self, i: usize) -> Status {
        client::status(&self.nodes[i].socket, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", self.nodes[i].name, self.logs()))
    }

    fn ask(&self, i: usize, line: &str) -> Result<serde_json::Value, String> {
        client::request(&self.nodes[i].socket, line, Duration::from_secs(2))
    }

    fn signal(&self, i: usize, sig: nix::sys::signal::Signal) {
        let pid = self.nodes[i].keeper.as_ref().unwrap().id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
    }

    fn last_pet(&self, i: usize) -> Option<Instant> {
        self.nodes[i].pets.lock().unwrap().last().copied()
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- {} ---\n{}",
                    n.name,
                    std::fs::read_to_string(&n.log).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Polls `f` every 20 ms until it holds; fails with both logs after
    /// `limit` (a generous bound against a hang, not a speed claim).
    fn wait(&self, limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !f() {
            assert!(
                t0.elapsed() < limit,
                "not within {limit:?}: {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn mounted(&self) -> bool {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(self.mnt.to_str().unwrap()))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(c) = &mut n.keeper {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(c.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = c.wait();
            }
        }
        let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        for l in &self.loops {
            let _ = Command::new("losetup").args(["-d", l]).status();
        }
    }
}

in_mount_ns! {
    fn two_keepers_never_hold_together_and_a_release_hands_over() {
        let w = World::started(false);
        // The first keeper initialised the header; both agree with it.
        let img = std::fs::read(w.dir.path().join("lease.img")).unwrap();
        let h = mailha::lease::format::Header::decode(&img[..4096])
            .unwrap()
            .expect("the header was written");
        assert_eq!(h.cluster, "keepertest");
        assert_eq!(h.host_dead, HOST_DEAD);

        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n1 holds", || w.status(0).holds);
        w.ask(1, "acquire").unwrap();
        // n1's slot said "claiming" until its next renewal wrote "holding".
        w.wait(Duration::from_secs(10), "n2 sees n1 holding", || {
            w.status(1).peer_holding
        });
        // n2 keeps reading n1's slot: n1 renews, so n2 never claims.
        let t0 = Instant::now();
        while t0.elapsed() < HOST_DEAD * 2 {
            let (a, b) = (w.status(0), w.status(1));
            assert!(!(a.holds && b.holds), "two holders: {a:?} {b:?}");
            assert!(a.holds && !b.holds && b.wanted, "{a:?} {b:?}");
            assert!(!b.peer_dead && b.peer_holding, "{b:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Both keep petting: n1 holds and renews, n2 holds nothing.
        for i in 0..2 {
            let last = w.last_pet(i).expect("pets arrived");
            assert!(last.elapsed() < WATCHDOG, "node {i} stopped petting");
        }

        w.ask(0, "release").unwrap();
        w.wait(Duration::from_secs(10), "n1's release landed", || {
            w.status(0).released
        });
        w.wait(Duration::from_secs(10), "n2 takes over", || {
            w.status(1).holds
        });
        let a = w.status(0);
        assert!(!a.holds && a.role == "idle", "{a:?}");
    }
}

in_mount_ns! {
    /// As sbd and corosync run: every thread of the keeper real-time
    /// round-robin at the top priority, its memory locked, and the OOM
    /// killer's last choice.
    fn the_keeper_runs_real_time_locked_in_memory_and_last_for_the_oom_killer() {
        let w = World::started(false);
        let pid = w.nodes[0].keeper.as_ref().unwrap().id();
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let tasks: Vec<_> = std::fs::read_dir(proc.join("task"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(tasks.len() > 1, "the keeper runs threads: {tasks:?}");
        for t in &tasks {
            let stat = std::fs::read_to_string(t.join("stat")).unwrap();
            let f: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
            // Fields 40 and 41 (rt_priority, policy), counted from 3.
            assert_eq!(
                (f[37], f[38]),
                ("99", "2"),
                "{} not SCHED_RR 99\n{}",
                t.display(),
                w.logs()
            );
        }
        let status = std::fs::read_to_string(proc.join("status")).unwrap();
        let locked_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        assert!(locked_kb > 0, "no memory locked\n{status}");
        // Some machines refuse any negative oom_score_adj (this host's
        // kernel answers EIO even to root): then the keeper says so.
        let adj = std::fs::read_to_string(proc.join("oom_score_adj")).unwrap();
        let log = std::fs::read_to_string(&w.nodes[0].log).unwrap();
        assert!(
            adj.trim() == "-1000" || log.contains("warning: oom_score_adj -1000: "),
            "oom_score_adj {adj} and nothing said\n{log}"
        );
        if adj.trim() != "-1000" {
            say_skipped("oom_score_adj -1000: this machine refuses it (the keeper said so)");
        }
        assert!(!log.contains("warning: no real-time"), "{log}");
        assert!(!log.contains("warning: memory not locked"), "{log}");
    }
}

in_mount_ns! {
    fn a_client_that_hangs_up_before_its_answer_does_not_kill_the_keeper() {
        // An agent Pacemaker killed at its op timeout, or `mailha lease
        // status` past its own deadline, closes its end before the keeper
        // writes the answer. The write then fails with EPIPE; under
        // SIGPIPE's default action it would end the keeper instead, by a
        // signal systemd counts as a clean exit (no restart), leaving a
        // holder that renews nothing until its watchdog resets it.
        let mut w = World::started(false);
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n1 holds", || w.status(0).holds);
        for _ in 0..5 {
            use std::io::Write;
            use std::os::linux::net::SocketAddrExt;
            let addr =
                std::os::unix::net::SocketAddr::from_abstract_name(&w.nodes[0].socket).unwrap();
            let mut s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
            s.write_all(b"status\n").unwrap();
            drop(s);
        }
        // The answers were due within a turn of the keeper's loop.
        std::thread::sleep(Duration::from_secs(1));
        let exited = w.nodes[0].keeper.as_mut().unwrap().try_wait().unwrap();
        assert_eq!(exited, None, "the keeper ended\n{}", w.logs());
        assert!(w.status(0).holds, "{}", w.logs());
    }
}

in_mount_ns! {
    fn a_fence_request_makes_the_peer_clear_its_mounts_and_ack() {
        let w = World::started(true);
        let mut user = w.n2_holds_with_a_writer();
        assert!(w.mounted());

        let id = w.ask(0, "fence n2").unwrap()["id"].as_u64().unwrap();
        w.wait(Duration::from_secs(15), "n2 acks the fence", || {
            w.status(0).fences.contains(&(id, "acked".to_string()))
        });
        // Acked only once the writer is gone and the data unmounted.
        let killed = user.try_wait().unwrap();
        assert!(killed.is_some(), "the mount's user survived the fence");
        assert!(!w.mounted(), "the data is still mounted after the ack");
        let b = w.status(1);
        assert!(b.role == "fenced" && !b.holds, "{b:?}");
        assert!(b.self_fenced.as_deref().unwrap().contains("fence request"));
        // Both sides tell the operator: n1 fenced n2, n2 lost the lease.
        w.wait(Duration::from_secs(5), "both keepers' alert events", || {
            w.spooled(0).contains(&("fenced".into(), "n2".into()))
                && w.spooled(1).iter().any(|(k, _)| k == "lease_lost")
        });
        // Fenced on request with reset = none (this test's keepers run on
        // the host): the node stays up (its watchdog is still petted), says
        // so, and holds nothing until restarted.
        std::thread::sleep(WATCHDOG);
        assert!(w.last_pet(1).unwrap().elapsed() < WATCHDOG);
        assert_eq!(b.reset, "none");
        let refused = w.ask(1, "acquire").unwrap_err();
        assert!(refused.contains("fenced itself"), "{refused}");
        // The request was served: n1 is free to take the data.
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n1 holds", || w.status(0).holds);
    }
}

in_mount_ns! {
    fn with_reset_watchdog_an_acked_fence_stops_the_pets_so_the_node_resets() {
        let mut w = World::new(true);
        w.reset = "watchdog";
        w.start(0);
        w.start(1);
        let mut user = w.n2_holds_with_a_writer();
        let id = w.ask(0, "fence n2").unwrap()["id"].as_u64().unwrap();
        w.wait(Duration::from_secs(15), "n2 acks the fence", || {
            w.status(0).fences.contains(&(id, "acked".to_string()))
        });
        assert!(!w.mounted(), "the data is still mounted after the ack");
        // The ack's write completed, then no pet: the watchdog's reset
        // follows (here a FIFO; in a node, the lab's supervisor fires).
        w.wait(Duration::from_secs(5), "n2 stops petting", || {
            w.last_pet(1).is_some_and(|p| p.elapsed() > WATCHDOG)
        });
        let b = w.status(1);
        assert!(b.role == "fenced" && b.reset == "watchdog", "{b:?}");
        assert!(w.logs().contains("no more pets"), "{}", w.logs());
        // Killed by the fence before the ack.
        assert!(user.try_wait().unwrap().is_some(), "the mount's user survived");
    }
}

in_mount_ns! {
    fn a_frozen_holder_is_reset_by_its_watchdog_before_the_peer_takes_over() {
        use nix::sys::signal::Signal;
        let w = World::started(false);
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n1 holds", || w.status(0).holds);
        w.ask(1, "acquire").unwrap();
        w.signal(0, Signal::SIGSTOP);
        w.wait(Duration::from_secs(20), "n2 takes over", || {
            w.status(1).holds
        });
        let took_over = Instant::now();
        // The invariant: n1's watchdog (not petted since) fired before n2 got
        // the lease, so no process of n1 could still write.
        let last = w.last_pet(0).unwrap();
        assert!(
            last + WATCHDOG < took_over,
            "n2 took over {:?} after n1's last pet; the watchdog fires after {WATCHDOG:?}",
            took_over - last
        );
        assert!(w.status(1).peer_dead);
        // Thawed without a reset (this test has none): n1 finds its renewals
        // stale, fences itself and never pets again.
        w.signal(0, Signal::SIGCONT);
        w.wait(Duration::from_secs(10), "n1 fences itself", || {
            w.status(0).role == "fenced"
        });
        let a = w.status(0);
        assert!(!a.holds, "{a:?}");
        assert_eq!(
            a.self_fenced.as_deref(),
            Some("lease renewals failed"),
            "{a:?}"
        );
        assert_eq!(w.last_pet(0), Some(last), "n1 petted after its freeze");
    }
}

in_mount_ns! {
    fn a_killed_holder_is_fenced_by_staleness_and_the_peer_takes_over() {
        use nix::sys::signal::Signal;
        let mut w = World::started(false);
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n1 holds", || w.status(0).holds);
        w.ask(1, "acquire").unwrap();

        // A keeper killed and restarted in the same boot, before its watchdog
        // fires, finds its slot saying "holding" and resumes: the data may
        // still be mounted. The peer never gets the lease meanwhile.
        w.signal(0, Signal::SIGKILL);
        w.nodes[0].keeper.take().unwrap().wait().unwrap();
        w.start(0);
        let a = w.status(0);
        assert!(a.holds && a.role == "holding", "{a:?}");
        let t0 = Instant::now();
        while t0.elapsed() < HOST_DEAD * 2 {
            assert!(!w.status(1).holds, "n2 took the lease of a resumed holder");
            std::thread::sleep(Duration::from_millis(50));
        }

        // Now killed for good. fence_mailha's path: n2 asks to fence n1,
        // which cannot ack; n1's counter standing still for host_dead is the
        // answer.
        w.signal(0, Signal::SIGKILL);
        let id = w.ask(1, "fence n1").unwrap()["id"].as_u64().unwrap();
        w.wait(Duration::from_secs(20), "n1 found dead", || {
            w.status(1).fences.contains(&(id, "dead".to_string()))
        });
        w.wait(Duration::from_secs(10), "n2 holds", || w.status(1).holds);
        let b = w.status(1);
        assert!(
            b.peer_dead && b.peer_unchanged_ms.unwrap() >= HOST_DEAD.as_millis() as u64,
            "{b:?}"
        );
    }
}

impl World {
    /// The binary under a face's name (argv[0] selects the face).
    fn face(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if !p.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), &p).unwrap();
        }
        p
    }

    /// fence_mailha on node `i`, fed `key=value` lines as Pacemaker's
    /// fencer does.
    fn fence_agent(&self, i: usize, lines: &str) -> (Option<i32>, String) {
        use std::io::Write;
        let mut c = Command::new(self.face("fence_mailha"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = format!(
            "{lines}\nsocket={}\ncluster=keepertest\nnodename={}\n",
            self.nodes[i].socket, self.nodes[i].name
        );
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let t0 = Instant::now();
        while c.try_wait().unwrap().is_none() {
            assert!(t0.elapsed() < Duration::from_secs(30), "fence_mailha hangs");
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = c.wait_with_output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    }
}

in_mount_ns! {
    fn the_lease_agent_passes_ocf_tester_with_a_running_keeper() needs("ocf-tester on the lease agent", ["/usr/sbin/ocf-tester"]) {
        let w = World::started(false);
        let params: Vec<(String, String)> = [
            ("socket", w.nodes[0].socket.clone()),
            ("device", w.loops[0].clone()),
            ("cluster", "keepertest".into()),
            ("io_timeout", "100ms".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Err(out) = ocf_tester("lease-test", &params, &w.face("lease")) {
            panic!("{out}\n{}", w.logs());
        }
        // ocf-tester ends with a stop: nothing held, and the peer may take it.
        assert!(!w.status(0).holds);
        w.ask(1, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n2 holds", || w.status(1).holds);

        // The agent refuses a keeper of another lease.
        let o = run_with_deadline(
            Command::new(w.face("lease"))
                .arg("monitor")
                .env("OCF_RESKEY_socket", &w.nodes[0].socket)
                .env("OCF_RESKEY_device", &w.loops[1]),
            Duration::from_secs(30),
        );
        assert_eq!(o.status.code(), Some(6), "{o:?}");
    }
}

in_mount_ns! {
    fn fence_mailha_fences_the_peer_as_pacemakers_fencer_calls_it() {
        let w = World::started(true);
        let mut user = w.n2_holds_with_a_writer();
        // Wait until n1 has seen n2's slot change, so "status" is informed.
        w.wait(Duration::from_secs(10), "n1 sees n2 holding", || {
            w.status(0).peer_holding
        });

        let (code, out) = w.fence_agent(0, "action=monitor");
        assert_eq!(code, Some(0), "{out}");
        let (code, out) = w.fence_agent(0, "action=list");
        assert_eq!((code, out.trim()), (Some(0), "n2,"));
        let (code, out) = w.fence_agent(0, "action=status\nport=n2");
        assert_eq!(code, Some(0), "n2 is on: {out}");
        let (code, out) = w.fence_agent(0, "action=metadata");
        assert!(code == Some(0) && out.contains("<resource-agent name=\"fence_mailha\""));
        let (code, out) = w.fence_agent(0, "action=reboot\nplgu=n2");
        assert_eq!(code, Some(1), "a typo must not fence anything: {out}");

        let (code, out) = w.fence_agent(0, "action=reboot\nport=n2\npcmk_host_list=n2");
        assert_eq!(code, Some(0), "{out}\n{}", w.logs());
        assert!(out.contains("fenced (acked)"), "{out}");
        assert!(user.try_wait().unwrap().is_some(), "the writer survived");
        assert!(!w.mounted(), "still mounted after the fence");
        let (code, out) = w.fence_agent(0, "action=status\nport=n2");
        assert_eq!(code, Some(2), "n2 is off (fenced): {out}");
        // A node cannot fence itself through its own keeper.
        let (code, _) = w.fence_agent(0, "action=off\nport=n1");
        assert_eq!(code, Some(1));
    }
}

in_mount_ns! {
    fn two_keepers_asked_at_the_same_instant_give_exactly_one_holder() {
        // simul-start at the lease's level: both agents start at once, each
        // node sees the other's slot free; claim, window, re-read decide.
        for round in 0..5 {
            let w = World::started(false);
            let (a, b) = (w.nodes[0].socket.clone(), w.nodes[1].socket.clone());
            let ta = std::thread::spawn(move || client::request(&a, "acquire", Duration::from_secs(2)));
            let tb = std::thread::spawn(move || client::request(&b, "acquire", Duration::from_secs(2)));
            ta.join().unwrap().unwrap();
            tb.join().unwrap().unwrap();
            w.wait(Duration::from_secs(10), "someone holds", || {
                w.status(0).holds || w.status(1).holds
            });
            let t0 = Instant::now();
            while t0.elapsed() < HOST_DEAD {
                let (x, y) = (w.status(0), w.status(1));
                assert!(
                    !(x.holds && y.holds),
                    "round {round}: two holders {x:?} {y:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                w.status(0).holds != w.status(1).holds,
                "round {round}: exactly one"
            );
        }
    }
}

in_mount_ns! {
    fn a_lease_start_that_gave_up_withdraws_its_request() {
        use nix::sys::signal::Signal;
        // simul-start's loser: its lease start runs while the peer holds, and
        // fails at its timeout. When the holder dies later, the loser must not
        // take a lease that Pacemaker no longer asks for.
        let w = World::started(false);
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n1 holds", || w.status(0).holds);
        let o = run_with_deadline(
            Command::new(w.face("lease"))
                .arg("start")
                .env("OCF_RESKEY_socket", &w.nodes[1].socket)
                .env("OCF_RESKEY_device", &w.loops[1])
                .env("OCF_RESKEY_CRM_meta_timeout", "4000"),
            Duration::from_secs(30),
        );
        assert_eq!(o.status.code(), Some(1), "the start must fail: {o:?}");
        let b = w.status(1);
        assert!(!b.wanted && !b.holds, "the request still stands: {b:?}");

        w.signal(0, Signal::SIGKILL);
        w.wait(Duration::from_secs(20), "n2 finds n1 dead", || {
            w.status(1).peer_dead
        });
        let t0 = Instant::now();
        while t0.elapsed() < HOST_DEAD {
            let b = w.status(1);
            assert!(
                !b.holds && b.role == "idle",
                "n2 took the lease unasked: {b:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

in_mount_ns! {
    fn fence_mailha_holds_back_against_a_live_holder_only() {
        use nix::sys::signal::Signal;
        let mut w = World::started(false);
        w.ask(1, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n2 holds", || w.status(1).holds);
        w.wait(Duration::from_secs(10), "n1 sees n2 holding", || {
            w.status(0).peer_holding
        });

        // A node death: the holder's slot has stood still for several renewals
        // when Pacemaker asks, so the request goes out at once, holder_delay
        // or not, and the outcome is staleness.
        w.signal(1, Signal::SIGKILL);
        w.nodes[1].keeper.take().unwrap().wait().unwrap();
        let renew = w.status(0).renew_ms;
        w.wait(Duration::from_secs(10), "n2's slot stands still", || {
            w.status(0).peer_unchanged_ms.unwrap_or(0) >= 3 * renew
        });
        let (code, out) = w.fence_agent(0, "action=reboot\nport=n2\nholder_delay=20s");
        assert_eq!(code, Some(0), "{out}\n{}", w.logs());
        assert!(
            out.contains("fenced (dead)") && !out.contains("held the request"),
            "{out}"
        );

        // The holder alive again (restarted in the same boot, it resumes
        // holding): this node, holding nothing, waits before asking it.
        w.start(1);
        w.wait(Duration::from_secs(10), "n1 sees n2 renew", || {
            w.status(0).peer_unchanged_ms.is_some_and(|ms| ms < renew)
        });
        let (code, out) = w.fence_agent(0, "action=reboot\nport=n2\nholder_delay=1s");
        assert_eq!(code, Some(0), "{out}\n{}", w.logs());
        assert!(
            out.contains("held the request for n2 back") && out.contains("fenced (acked)"),
            "{out}"
        );
    }
}

/// The ext4 MMP block of `dev`: its aligned 4 KiB and the offset in it.
fn mmp_block(dev: &str) -> (u64, mailha::lease::disk::Block, usize) {
    use mailha::lease::disk::Block;
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECT)
        .open(dev)
        .unwrap();
    let mut head = Block::zeroed();
    f.read_exact_at(head.bytes_mut(), 0).unwrap();
    let (off, _) = mailha::agents::storage::mmp::locate(head.bytes()).expect("MMP on");
    let aligned = off - off % 4096;
    let mut b = Block::zeroed();
    f.read_exact_at(b.bytes_mut(), aligned).unwrap();
    (aligned, b, (off - aligned) as usize)
}

impl World {
    /// The storage agent on node `i`'s behalf, mounting the data disk
    /// under the lease.
    fn storage(&self, i: usize, action: &str) -> std::process::Output {
        run_with_deadline(
            Command::new(self.face("storage"))
                .arg(action)
                .env("OCF_RESKEY_device", &self.loops[2])
                .env("OCF_RESKEY_directory", &self.mnt)
                .env("OCF_RESKEY_fstype", "ext4")
                .env("OCF_RESKEY_io_timeout", "5s")
                .env("OCF_RESKEY_lease_socket", &self.nodes[i].socket)
                .env("OCF_RESKEY_CRM_meta_timeout", "60000"),
            Duration::from_secs(90),
        )
    }
}

in_mount_ns! {
    fn the_storage_agent_mounts_only_under_the_lease_and_clears_mmp_a_dead_holder_left() {
        use nix::sys::signal::Signal;
        use std::os::unix::fs::FileExt;
        let mut w = World::new(true);
        let mnt = w.mnt.to_str().unwrap().to_string();
        run_ok(&["tune2fs", "-O", "mmp", &w.loops[2]]);
        w.start(0);
        w.start(1);

        // Nobody holds: the agent refuses, whatever the CIB says.
        let o = w.storage(1, "start");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert!(err.contains("does not hold the data lease"), "{err}");
        assert!(!w.mounted());

        // n2 takes the lease and mounts; kmmpd now owns the MMP block.
        w.ask(1, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n2 holds", || w.status(1).holds);
        let o = w.storage(1, "start");
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        assert!(w.mounted());
        let (at, live, inner_off) = mmp_block(&w.loops[2]);
        let seq = u32::from_le_bytes(
            live.bytes()[inner_off + 4..inner_off + 8]
                .try_into()
                .unwrap(),
        );
        assert_ne!(seq, mailha::agents::storage::mmp::SEQ_CLEAN, "mounted");

        // n2 is "reset" while mounted: its keeper dies, and the disk keeps
        // the MMP block as the running mount last wrote it (a clean umount
        // would mark it clean, so the live block is put back after it).
        w.wait(Duration::from_secs(10), "n1 sees n2 holding", || {
            w.status(0).peer_holding
        });
        w.signal(1, Signal::SIGKILL);
        w.nodes[1].keeper.take().unwrap().wait().unwrap();
        run_ok(&["umount", &mnt]);
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_DIRECT | nix::libc::O_DSYNC)
            .open(&w.loops[2])
            .unwrap()
            .write_all_at(live.bytes(), at)
            .unwrap();

        // n1 takes over once n2's counter stood still for host_dead; its
        // mount clears the stale block instead of waiting ~22-42 s for it.
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(20), "n1 holds", || w.status(0).holds);
        let a = w.status(0);
        assert!(a.peer_dead && a.peer_holding, "{a:?}");
        let o = w.storage(0, "start");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        assert!(err.contains(mailha::agents::storage::mmp::LOG_CLEARED), "{err}");
        assert!(w.mounted());
        let o = w.storage(0, "stop");
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        assert!(!w.mounted());
    }
}

impl World {
    /// A writer in a mount namespace of its own (`unshare --mount`, as
    /// systemd's PrivateTmp= or ProtectSystem= give MariaDB or Dovecot):
    /// it keeps a file on the shared data open and appends to it.
    fn writer_in_own_mount_ns(&self) -> Child {
        let log = self.mnt.join("writer.log");
        let script = format!(
            "exec 3>>'{}'; while :; do echo x >&3; sleep 0.05; done",
            log.display()
        );
        let c = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .spawn()
            .unwrap();
        self.wait(Duration::from_secs(5), "the writer writes", || {
            std::fs::metadata(&log).is_ok_and(|m| m.len() > 0)
        });
        c
    }

    /// The data disk can be opened exclusively: no filesystem holds it in
    /// any mount namespace.
    fn data_device_free(&self) -> bool {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_EXCL)
            .open(&self.loops[2])
            .is_ok()
    }
}

in_mount_ns! {
    /// Seen in the lab: a daemon in its own mount namespace kept writing the
    /// data after a fence its node acked. The fence must end it too, and
    /// ack only once the filesystem has let go of the device.
    fn a_fence_ends_a_writer_in_another_mount_namespace_before_the_ack() {
        let w = World::started(true);
        w.n2_holds_and_mounts();
        let mut writer = w.writer_in_own_mount_ns();

        let id = w.ask(0, "fence n2").unwrap()["id"].as_u64().unwrap();
        w.wait(Duration::from_secs(15), "n2 acks the fence", || {
            w.status(0).fences.contains(&(id, "acked".to_string()))
        });
        let gone = writer.try_wait().unwrap();
        let _ = writer.kill();
        let _ = writer.wait();
        assert!(gone.is_some(), "acked while the writer in its own mount namespace still ran\n{}", w.logs());
        assert!(!w.mounted());
        assert!(w.data_device_free(), "acked while a filesystem still holds the device");
    }
}

in_mount_ns! {
    /// A mount namespace kept alive with nothing running in it (pinned by a
    /// bind mount of its nsfs file) keeps the filesystem, and no /proc scan
    /// finds it. The fence cannot prove the device free: it must not ack,
    /// and must stop petting the watchdog so the node is reset.
    fn a_fence_that_cannot_free_the_device_is_not_acked_and_the_watchdog_resets() {
        let w = World::started(true);
        w.n2_holds_and_mounts();
        // The pin lives on a private mount of its own: the kernel refuses
        // (EINVAL) to bind a namespace file where the bind would propagate
        // to a peer, and the surrounding mounts' peers come and go with
        // the other tests running beside this one (seen failing so).
        let pin_dir = w.dir.path().join("pin");
        std::fs::create_dir(&pin_dir).unwrap();
        let pin_dir_s = pin_dir.to_str().unwrap();
        run_ok(&["mount", "--bind", pin_dir_s, pin_dir_s]);
        run_ok(&["mount", "--make-private", pin_dir_s]);
        let pin = pin_dir.join("pinned-ns");
        std::fs::write(&pin, "").unwrap();
        let pin_s = pin.to_str().unwrap();
        pin_a_new_mount_namespace(pin_s);

        let id = w.ask(0, "fence n2").unwrap()["id"].as_u64().unwrap();
        w.wait(Duration::from_secs(20), "n2's self-fence ends", || {
            w.status(1).role == "fenced"
        });
        let b = w.status(1);
        // Its watchdog is no longer petted: the reset is what ends the
        // filesystem nobody could reach.
        let last = w.last_pet(1).unwrap();
        std::thread::sleep(WATCHDOG * 2);
        let not_acked = !w.status(0).fences.iter().any(|(i, o)| *i == id && o == "acked");
        let pets_stopped = w.last_pet(1) == Some(last);
        let _ = nix::mount::umount2(&pin, nix::mount::MntFlags::MNT_DETACH);
        let _ = nix::mount::umount2(&pin_dir, nix::mount::MntFlags::MNT_DETACH);
        assert!(not_acked, "acked with the filesystem alive in a pinned namespace: {b:?}\n{}", w.logs());
        assert!(pets_stopped, "n2 still pets its watchdog after a failed fence\n{}", w.logs());
    }
}

/// Creates a mount namespace with nothing left running in it, kept alive
/// only by a bind mount of its nsfs file on `pin`. The kernel refuses
/// (EINVAL) to pin a namespace whose id is not above the binder's, and
/// since Linux 6.x namespace ids come from per-CPU batches: a namespace
/// made on the other CPU can get a lower id than ours (seen in about half
/// the runs here on 6.18, also with `unshare --mount=FILE`). So the new
/// namespace is made on each CPU in turn until one pins.
fn pin_a_new_mount_namespace(pin: &str) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut why = String::new();
    for attempt in 0..4 * cpus {
        let mut holder = Command::new("taskset")
            .args(["-c", &(attempt % cpus).to_string()])
            .args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sleep",
                "60",
            ])
            .spawn()
            .unwrap();
        let pid = holder.id();
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
        let t0 = Instant::now();
        // Once `sleep` runs, unshare(2) is behind it.
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() != "sleep")
            || ns(&pid.to_string()) == ns("self")
        {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "unshare never made its namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let o = run_with_deadline(
            Command::new("mount").args(["--bind", &format!("/proc/{pid}/ns/mnt"), pin]),
            Duration::from_secs(10),
        );
        let _ = holder.kill();
        let _ = holder.wait();
        if o.status.success() {
            return;
        }
        why = String::from_utf8_lossy(&o.stderr).into_owned();
    }
    panic!("no new mount namespace could be pinned: {why}");
}

impl World {
    /// Turns MMP on for the data disk and leaves its MMP block as a running
    /// mount writes it, so the next mount waits out ext4's multi-mount
    /// check (tens of seconds): a storage start with a long mount.
    fn data_with_a_busy_mmp_block(&self) {
        use std::os::unix::fs::FileExt;
        let mnt = self.mnt.to_str().unwrap();
        run_ok(&["tune2fs", "-O", "mmp", &self.loops[2]]);
        run_ok(&["mount", &self.loops[2], mnt]);
        let (at, live, _) = mmp_block(&self.loops[2]);
        run_ok(&["umount", mnt]);
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_DIRECT | nix::libc::O_DSYNC)
            .open(&self.loops[2])
            .unwrap()
            .write_all_at(live.bytes(), at)
            .unwrap();
    }

    /// The storage agent's start on node `i`, in the background.
    fn storage_start_in_background(&self, i: usize) -> Child {
        Command::new(self.face("storage"))
            .arg("start")
            .env("OCF_RESKEY_device", &self.loops[2])
            .env("OCF_RESKEY_directory", &self.mnt)
            .env("OCF_RESKEY_fstype", "ext4")
            .env("OCF_RESKEY_io_timeout", "5s")
            .env("OCF_RESKEY_lease_socket", &self.nodes[i].socket)
            .env("OCF_RESKEY_CRM_meta_timeout", "90000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Waits for a child with a deadline; its output.
fn finish(c: Child, limit: Duration) -> std::process::Output {
    let mut c = c;
    let t0 = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = c.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    c.wait_with_output().unwrap()
}

in_mount_ns! {
    /// The storage start asked the keeper, then its mount waited out MMP
    /// while the lease went away: the mount must not stay.
    fn a_storage_start_that_lost_the_lease_during_its_mount_unmounts_and_fails() {
        let w = World::started(true);
        w.data_with_a_busy_mmp_block();
        w.ask(1, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n2 holds", || w.status(1).holds);
        let start = w.storage_start_in_background(1);
        std::thread::sleep(Duration::from_secs(2));
        assert!(!w.mounted(), "the mount should still be waiting for MMP");
        w.ask(1, "release").unwrap();
        w.wait(Duration::from_secs(10), "n2's release landed", || w.status(1).released);
        let o = finish(start, Duration::from_secs(80));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}\n{}", w.logs());
        assert!(!w.mounted(), "mounted without the lease: {err}");
        assert!(err.contains("does not hold the data lease"), "{err}");
    }
}

in_mount_ns! {
    /// A fence arrives while a storage start waits in its mount: the fence
    /// ends the start, and acks only then; nothing mounts afterwards.
    fn a_fence_ends_a_storage_start_in_progress_before_the_ack() {
        let w = World::started(true);
        w.data_with_a_busy_mmp_block();
        w.ask(1, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n2 holds", || w.status(1).holds);
        let mut start = w.storage_start_in_background(1);
        std::thread::sleep(Duration::from_secs(2));
        let id = w.ask(0, "fence n2").unwrap()["id"].as_u64().unwrap();
        w.wait(Duration::from_secs(15), "n2 acks the fence", || {
            w.status(0).fences.contains(&(id, "acked".to_string()))
        });
        let ended = start.try_wait().unwrap().is_some();
        let o = finish(start, Duration::from_secs(80));
        assert!(
            ended,
            "acked while a storage start was still mounting: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!w.mounted(), "the data was mounted after the fence");
    }
}

/// A local user squatting the keeper's socket name while no keeper runs:
/// it answers every request with a status saying "you hold, the peer is
/// dead". Run as nobody by the test below.
#[test]
#[ignore = "run as nobody by a_squatter_on_the_keepers_socket_is_not_believed"]
fn squatter() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let Some(name) = std::env::var_os("MAILHA_TEST_SQUAT") else {
        return;
    };
    let addr = SocketAddr::from_abstract_name(name.as_encoded_bytes()).unwrap();
    let l = UnixListener::bind_addr(&addr).unwrap();
    let forged = serde_json::json!({
        "pid": 1, "node": "n2", "node_id": 2, "peer": "n1", "peer_id": 1,
        "cluster": "keepertest", "device": "/dev/x", "role": "holding",
        "holds": true, "wanted": true, "released": false, "counter": 1,
        "renewal_age_ms": 0, "io_stalled_ms": null, "peer_unchanged_ms": 99999,
        "peer_dead": true, "peer_holding": true, "peer_fenced": false,
        "host_dead_ms": 2000, "renew_ms": 200, "fence_pending": null,
        "fences": [], "self_fenced": null
    });
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let mut line = String::new();
        let _ = BufReader::new(&s).read_line(&mut line);
        let _ = s.write_all(format!("{forged}\n").as_bytes());
    }
}

#[test]
fn a_squatter_on_the_keepers_socket_is_not_believed() {
    use std::os::unix::process::CommandExt;
    if !root_and_tools("the socket squatter test", &[]) {
        return;
    }
    let name = format!("mailha-lease-squat-{}", std::process::id());
    let mut squatter = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "squatter", "--ignored", "--nocapture"])
        .env("MAILHA_TEST_SQUAT", &name)
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let answer = loop {
        match client::status(&name, Duration::from_secs(2)) {
            Err(e) if e.contains("not running") && t0.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => break other,
        }
    };
    let _ = squatter.kill();
    let _ = squatter.wait();
    let e = answer.expect_err("a status from a non-root squatter was believed");
    assert!(e.contains("uid 65534"), "{e}");
}

in_mount_ns! {
    /// Local users flooding the keeper's socket (a connect flood, clients
    /// that trickle their request a byte at a time) must not delay the
    /// renewals: the holder keeps renewing and petting, the peer never
    /// finds it dead.
    fn slow_and_flooding_clients_do_not_delay_the_renewals() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        let w = World::started(false);
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n1 holds", || w.status(0).holds);
        let stop = Arc::new(AtomicBool::new(false));
        let addr = SocketAddr::from_abstract_name(w.nodes[0].socket.as_bytes()).unwrap();
        let mut threads = Vec::new();
        for i in 0..40 {
            let (stop, addr) = (stop.clone(), addr.clone());
            threads.push(std::thread::spawn(move || {
                use std::io::Write;
                let mut held = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(mut s) = UnixStream::connect_addr(&addr) {
                        if i % 2 == 0 {
                            // Trickle: one byte well within any per-read timeout.
                            for b in b"stat" {
                                if stop.load(Ordering::SeqCst) || s.write_all(&[*b]).is_err() {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(150));
                            }
                        } else {
                            held.push(s);
                            if held.len() > 20 {
                                held.remove(0);
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }));
        }
        let t0 = Instant::now();
        let mut worst = Duration::ZERO;
        let mut peer_saw_dead = false;
        while t0.elapsed() < HOST_DEAD * 2 {
            if let Some(p) = w.last_pet(0) {
                worst = worst.max(p.elapsed());
            }
            peer_saw_dead |= w.status(1).peer_dead;
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            let _ = t.join();
        }
        let a = w.status(0);
        assert!(a.holds && a.role == "holding", "{a:?}\n{}", w.logs());
        assert!(worst < WATCHDOG, "n1 went {worst:?} without petting\n{}", w.logs());
        assert!(!peer_saw_dead, "n2 found n1 dead under the flood\n{}", w.logs());
    }
}

in_mount_ns! {
    /// `mailha lease release` by hand while the data is mounted would let
    /// the peer mount it too: refused, naming the mount.
    fn a_release_is_refused_while_a_shared_mount_is_up() {
        let w = World::started(true);
        w.n2_holds_and_mounts();
        assert!(w.mounted());
        let o = run_with_deadline(
            Command::new(env!("CARGO_BIN_EXE_mailha"))
                .args(["lease", "release", "--socket", &w.nodes[1].socket]),
            Duration::from_secs(10),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "released with the data mounted");
        assert!(err.contains(w.mnt.to_str().unwrap()), "{err}");
        std::thread::sleep(Duration::from_millis(500));
        assert!(w.status(1).holds);
        run_ok(&["umount", w.mnt.to_str().unwrap()]);
        w.ask(1, "release").unwrap();
        w.wait(Duration::from_secs(10), "n2's release landed", || w.status(1).released);
    }
}

in_mount_ns! {
    /// An upgrade restarts the holder's keeper (SIGTERM, then a new one)
    /// under a running writer: the new keeper resumes holding from its own
    /// slot, renews and pets in time, no self-fence, and the peer (which
    /// wants the lease) never gets it.
    fn a_holders_keeper_restarted_under_a_writer_keeps_the_lease() {
        use nix::sys::signal::Signal;
        let mut w = World::started(true);
        let mut writer = w.n2_holds_with_a_writer();
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n1 sees n2 holding", || w.status(0).peer_holding);
        let counter = w.status(1).counter;
        let pets_before = w.nodes[1].pets.lock().unwrap().len();
        w.signal(1, Signal::SIGTERM);
        let code = w.nodes[1].keeper.take().unwrap().wait().unwrap();
        assert!(code.success(), "the keeper's exit on SIGTERM: {code:?}");
        w.start(1);
        let t0 = Instant::now();
        while t0.elapsed() < HOST_DEAD * 2 {
            let (a, b) = (w.status(0), w.status(1));
            assert!(!a.holds, "n1 took the lease of a restarted holder: {a:?}\n{}", w.logs());
            assert!(b.holds && b.role == "holding", "{b:?}\n{}", w.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
        let b = w.status(1);
        assert!(b.counter > counter + 5, "renewals stopped: {b:?}");
        // The restarted keeper timed every renewal it made since its
        // start (the exporter's histogram), and none failed.
        let h = b.renewal_latency.as_ref().expect("a keeper times its writes");
        let landed = h.cumulative().expect("buckets of this version");
        assert!(h.count >= 5 && landed.last().unwrap().1 == h.count, "{h:?}");
        assert!(h.sum_s > 0.0 && h.sum_s < h.count as f64 * HOST_DEAD.as_secs_f64(), "{h:?}");
        assert_eq!(b.write_failures, 0, "{b:?}");
        assert!(writer.try_wait().unwrap().is_none(), "the writer was killed\n{}", w.logs());
        assert!(w.mounted());
        // The watchdog never went a timeout unpetted across the restart.
        let pets = w.nodes[1].pets.lock().unwrap().clone();
        let worst = pets[pets_before.saturating_sub(1)..]
            .windows(2)
            .map(|p| p[1] - p[0])
            .max()
            .unwrap();
        assert!(worst < WATCHDOG, "a {worst:?} gap between pets\n{}", w.logs());
        let log = std::fs::read_to_string(&w.nodes[1].log).unwrap();
        assert!(!log.contains("fencing this node"), "{log}");
        let _ = writer.kill();
        let _ = writer.wait();
    }
}

in_mount_ns! {
    /// The holder's keeper dies and its own slot is found torn when a new
    /// one starts: it cannot resume, so it holds nothing and the peer may
    /// take the lease at once, while the data is still mounted here with a
    /// writer in it. The new keeper must fence this node (writer killed,
    /// data unmounted, device let go) before it writes or pets anything.
    fn a_keeper_restarted_without_its_slot_under_mounted_data_fences_the_node_first() {
        use nix::sys::signal::Signal;
        use std::os::unix::fs::FileExt;
        let mut w = World::started(true);
        let mut writer = w.n2_holds_with_a_writer();
        let id = w.status(1).node_id;
        w.signal(1, Signal::SIGKILL);
        w.nodes[1].keeper.take().unwrap().wait().unwrap();
        let torn = mailha::lease::disk::Block::from_bytes(&[0xA5; 4096]);
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_DIRECT | nix::libc::O_DSYNC)
            .open(&w.loops[1])
            .unwrap()
            .write_all_at(torn.bytes(), mailha::lease::format::slot_offset(id).unwrap())
            .unwrap();
        assert!(w.mounted());

        w.start(1);
        let b = w.status(1);
        let gone = writer.try_wait().unwrap();
        let _ = writer.kill();
        let _ = writer.wait();
        assert!(!b.holds, "{b:?}");
        assert!(gone.is_some(), "the writer still runs under a keeper that holds nothing\n{}", w.logs());
        assert!(!w.mounted(), "the data is still mounted under a keeper that holds nothing\n{}", w.logs());
        assert!(w.data_device_free(), "a filesystem still holds the data device");
        let log = std::fs::read_to_string(&w.nodes[1].log).unwrap();
        assert!(log.contains("mounted while this node holds no lease"), "{log}");
        assert!(
            w.spooled(1).iter().any(|(k, _)| k == "lease_lost"),
            "no alert: {:?}",
            w.spooled(1)
        );
        // The peer may now take the lease and mount.
        w.ask(0, "acquire").unwrap();
        w.wait(Duration::from_secs(20), "n1 holds", || w.status(0).holds);
    }
}

in_mount_ns! {
    /// n1 comes back after a reset while writes its previous boot issued
    /// are still queued on the way to the disk (the lab saw one land 12 s
    /// after the reset, under a loaded disk). They land in n1's slot
    /// after its new keeper started: n1 must not take them for a second
    /// machine writing its slot (it would hold nothing for good), nor
    /// claim while its slot still shows them, and it takes the lease
    /// once they have stopped.
    fn late_writes_of_the_previous_boot_are_not_a_clone_and_hold_the_claim_back() {
        use mailha::lease::format::{Slot, cluster_id, slot_offset};
        use std::os::unix::fs::FileExt;
        let mut w = World::new(false);
        let previous_boot = 0x27ca_9089_15a5_1ab6;
        let old = |counter: u64| {
            let mut s = Slot::new(1, cluster_id("keepertest"));
            s.boot = previous_boot;
            s.counter = counter;
            mailha::lease::disk::Block::from_bytes(&s.encode().unwrap())
        };
        let slot = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_DIRECT | nix::libc::O_DSYNC)
            .open(&w.loops[0])
            .unwrap();
        let land = |counter: u64| {
            slot.write_all_at(old(counter).bytes(), slot_offset(1).unwrap())
                .unwrap()
        };
        // The last write of the previous boot that landed before the reset.
        land(1360);
        w.start(0);
        w.start(1);
        // Writes of the previous boot land for a while, more often than
        // one previous keeper's could (it has one in flight), so that n1's
        // reads before two of its writes in a row find two of them: a
        // clone check of "two in a row" alone takes that for a second
        // machine. Pacemaker asks n1 for the lease meanwhile.
        let t = Instant::now();
        let mut claimed_meanwhile = false;
        let mut asked = false;
        let mut counters = [1359, 1361].into_iter().cycle();
        while t.elapsed() < Duration::from_millis(1500) {
            land(counters.next().unwrap());
            std::thread::sleep(Duration::from_millis(50));
            if !asked && t.elapsed() > Duration::from_millis(500) {
                w.ask(0, "acquire").unwrap();
                asked = true;
            }
            let a = w.status(0);
            claimed_meanwhile |= a.holds || a.role == "claiming";
            assert!(a.self_fenced.is_none(), "taken for a clone: {a:?}\n{}", w.logs());
        }
        let landing = t.elapsed();
        assert!(!claimed_meanwhile, "claimed while late writes landed\n{}", w.logs());
        w.wait(Duration::from_secs(20), "n1 holds once they stopped", || {
            w.status(0).holds
        });
        let a = w.status(0);
        assert!(a.self_fenced.is_none(), "{a:?}");
        let log = std::fs::read_to_string(&w.nodes[0].log).unwrap();
        assert!(log.contains("landed late in our slot"), "{log}");
        assert!(!log.contains("ANOTHER MACHINE"), "{log}");
        println!("late writes landed for {landing:?}; n1 held {:?} after the start", t.elapsed());
    }
}

in_mount_ns! {
    /// A clone of n2 (same config, same name, its own boot) starts a
    /// keeper of its own: two machines now write n2's slot. Each finds
    /// in its slot, before its write, what the other wrote: the holder
    /// lets go (fences itself, stops petting) and the clone takes
    /// nothing; both say why.
    fn a_second_machine_writing_the_same_slot_is_found_and_nobody_holds_by_it() {
        let mut w = World::started(false);
        w.ask(1, "acquire").unwrap();
        w.wait(Duration::from_secs(10), "n2 holds", || w.status(1).holds);
        // The clone: n2's config with a watchdog FIFO of its own.
        let d = w.dir.path();
        let wd = d.join("watchdog-clone");
        run_ok(&["mkfifo", wd.to_str().unwrap()]);
        let _pets = watch_fifo(&wd);
        let n2 = std::fs::read_to_string(&w.nodes[1].config).unwrap();
        let wd2 = d.join("watchdog-n2");
        let config = d.join("clone.toml");
        std::fs::write(&config, n2.replace(wd2.to_str().unwrap(), wd.to_str().unwrap())).unwrap();
        let log = d.join("keeper-clone.log");
        let socket = format!("{}-clone", w.nodes[1].socket);
        w.nodes.push(Node {
            name: "n2",
            socket: socket.clone(),
            config,
            log,
            pets: _pets,
            keeper: None,
            other_machine: true,
        });
        w.start(2);
        w.wait(Duration::from_secs(10), "n2 lets go", || {
            w.status(1).self_fenced.is_some()
        });
        w.wait(Duration::from_secs(10), "the clone sees it too", || {
            w.status(2).self_fenced.is_some()
        });
        w.wait(Duration::from_secs(10), "neither holds", || {
            !w.status(1).holds && !w.status(2).holds
        });
        let b = w.status(1);
        assert!(b.self_fenced.as_deref().unwrap_or("").contains("another machine"), "{b:?}");
        let refused = w.ask(2, "acquire").expect_err("the clone may acquire");
        assert!(refused.contains("fenced itself"), "{refused}");
        let log = std::fs::read_to_string(&w.nodes[1].log).unwrap();
        assert!(log.contains("ANOTHER MACHINE WRITES THIS NODE'S SLOT"), "{log}");
    }
}

in_mount_ns! {
    /// `service mailha-lease stop` returns only once the keeper has exited,
    /// also after an upgrade replaced the binary under the running keeper
    /// (its /proc/PID/exe then reads "... (deleted)"). The init script
    /// runs in namespaces of its own (PID, network), so its default socket
    /// and its process scans are nobody else's.
    fn the_init_scripts_stop_returns_once_the_keeper_has_exited() {
        let w = World::new(false);
        let d = w.dir.path();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let config = std::fs::read_to_string(&w.nodes[0].config)
            .unwrap()
            .replace("name = \"n1\"", &format!("name = \"{}\"", host.trim()));
        let config_path = d.join("host.toml");
        std::fs::write(&config_path, config).unwrap();
        let bin = d.join("mailha");
        std::fs::copy(env!("CARGO_BIN_EXE_mailha"), &bin).unwrap();
        let script = mailha::lease::boot::INIT_SCRIPT
            .replace("BIN=/usr/sbin/mailha", &format!("BIN={}", bin.display()))
            .replace("PIDFILE=/run/mailha-lease.pid", &format!("PIDFILE={}/keeper.pid", d.display()))
            .replace("LOG=/var/log/mailha-lease-keeper.log", &format!("LOG={}/keeper.log", d.display()));
        let init = d.join("mailha-lease");
        std::fs::write(&init, script).unwrap();
        let upgrade = format!(
            "cp {bin} {bin}.new && mv {bin}.new {bin}",
            bin = bin.display()
        );
        // Gone = no such process, or a zombie (this namespace's PID 1 is a
        // shell that reaps late).
        let gone = "gone() { ! grep -qs '^State:[[:space:]]*[^Z]' /proc/$1/status; }";
        let steps = format!(
            "{gone}; sh {init} start || exit 9; pid=$(cat {d}/keeper.pid); {upgrade}; \
             sh {init} stop; echo stop=$?; gone $pid || echo ALIVE-after-upgrade; kill -9 $pid 2>/dev/null; \
             {bin} lease keeper >>{d}/keeper.log 2>&1 & pid=$!; \
             i=0; until {bin} lease status >/dev/null 2>&1 || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; \
             sh {init} stop; echo stop=$?; gone $pid || echo ALIVE-unscripted; kill -9 $pid 2>/dev/null; true",
            init = init.display(),
            d = d.display(),
            bin = bin.display(),
        );
        let o = run_with_deadline(
            Command::new("unshare")
                .args(["--pid", "--fork", "--mount-proc", "--net", "--", "sh", "-c", &steps])
                .env("MAILHA_CONFIG", &config_path)
                .env("MAILHA_SPOOL", d.join("spool")),
            Duration::from_secs(90),
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        let log = std::fs::read_to_string(d.join("keeper.log")).unwrap_or_default();
        assert_eq!(out.matches("stop=0").count(), 2, "{out}\n{log}");
        assert!(!out.contains("ALIVE"), "stop returned while the keeper still ran:\n{out}\n{log}");
    }
}

/// The guard that keeps the tests on this host from rebooting it: a keeper
/// told to spare the machine's stack refuses to start with the default
/// reset (reboot), before it reads anything; and `none` needs that flag.
#[test]
fn a_keeper_that_spares_the_stack_refuses_to_reboot_the_machine() {
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_mailha"))
            .args(["--config", "/nonexistent/mailha.toml", "lease", "keeper"])
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (ok, err) = run(&["--keep-stack"]);
    assert!(!ok && err.contains("--reset none"), "{err}");
    let (ok, err) = run(&["--keep-stack", "--reset", "reboot"]);
    assert!(!ok && err.contains("may not reboot"), "{err}");
    let (ok, err) = run(&["--reset", "none"]);
    assert!(!ok && err.contains("only with --keep-stack"), "{err}");
    // Past the guard, the missing config is what stops it.
    let (ok, err) = run(&["--keep-stack", "--reset", "none"]);
    assert!(!ok && err.contains("/nonexistent/mailha.toml"), "{err}");
}
