//! `mailha-lab`: the two-node lab on this machine (DESIGN section 9), test
//! equipment beside the product. The work is in the `mailha_lab` library;
//! this file only parses argv and dispatches. Exit codes as mailha's: 0
//! success, 1 failed at run time, 2 bad input (nothing changed).

use clap::Parser;
use mailha_lab::cmd::SystemRunner;
use mailha_lab::provision::{self, Profile};
use mailha_lab::up::UpOptions;
use mailha_lab::{DEFAULT_BASE_DIR, Lab, state::DEFAULT_STATE_DIR};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(
    name = "mailha-lab",
    version,
    about = "A real two-node mail cluster (Corosync + Pacemaker + mailha) on this machine, for tests and trials",
    after_help = "Exit codes: 0 success, 1 failed at run time, 2 bad input (nothing changed)."
)]
pub struct Cli {
    /// `up`: the lab's mailha.toml instead of the profile's built-in one
    /// (lab/configs/*.toml).
    #[arg(long, global = true, env = "MAILHA_LAB_CONFIG")]
    pub config: Option<PathBuf>,
    /// The mailha binary the lab installs on the host and in its nodes
    /// (default: `mailha` beside this binary, as cargo builds them).
    #[arg(long, global = true, env = "MAILHA_BIN")]
    pub mailha: Option<PathBuf>,
    /// `up`: install mailha in the nodes from this .deb (`dpkg -i` in
    /// each booted node, scripts/build-deb.sh makes it) instead of the
    /// binary.
    #[arg(long, global = true, env = "MAILHA_LAB_DEB")]
    pub deb: Option<PathBuf>,
    #[command(flatten)]
    pub args: Args,
}

/// An error that says which exit code it means.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

fn main() -> ExitCode {
    // Die quietly by SIGPIPE (`mailha-lab status --json | head`), as
    // every Unix filter does; Rust ignores it by default.
    // SAFETY: single-threaded at this point; SIG_DFL installs no handler.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let cli = Cli::parse();
    match run(&cli, &cli.args) {
        Ok(()) => ExitCode::from(0),
        Err(CliError::BadInput(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(e)) => {
            eprintln!("mailha-lab: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the lab records what it created.
    #[arg(long, global = true, env = "MAILHA_LAB_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Where node trees and disk images live.
    #[arg(long, global = true, env = "MAILHA_LAB_BASE_DIR", default_value = DEFAULT_BASE_DIR)]
    pub base_dir: PathBuf,
    /// Prefix for every host-side name (bridges, veths, netns); lets a
    /// second lab run beside the real one (tests).
    #[arg(
        long,
        global = true,
        env = "MAILHA_LAB_PREFIX",
        default_value = "",
        hide = true
    )]
    pub prefix: String,
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Build the lab and its cluster: two nodes, bridges, client and gw
    /// namespaces, disks, the mail stack, then `mailha setup` in node1.
    /// `--config FILE` (the global option) replaces the profile's built-in
    /// config (lab/configs/*.toml); /etc/mailha/mailha.toml is never used.
    Up {
        /// Which agents run the mail stack (postfix: mailha's own agents).
        #[arg(long, value_enum, default_value = "postfix")]
        profile: Profile,
        #[arg(long)]
        json: bool,
        /// Build the infrastructure only (no cluster).
        #[arg(long, hide = true)]
        infra_only: bool,
        /// On failure, leave what was built for inspection.
        #[arg(long, hide = true)]
        keep: bool,
        /// The Debian release the nodes run: bookworm (Debian 12) or
        /// trixie (Debian 13); another release than the host's boots from
        /// a tree debootstrap makes once under /var/cache/mailha-lab.
        #[arg(long, default_value = "bookworm", value_parser = release_arg)]
        release: mailha_lab::release::Release,
        /// Make the release's cached tree anew first.
        #[arg(long)]
        rebuild_tree: bool,
    },
    /// The nodes' root tree for a release, made first when missing (the
    /// host's root for the host's own release); prints its path. The test
    /// suite makes the trixie tree with it before the tests that use it.
    Tree {
        #[arg(long, default_value = "bookworm", value_parser = release_arg)]
        release: mailha_lab::release::Release,
        /// Make it anew.
        #[arg(long)]
        rebuild: bool,
    },
    /// Tear the lab down (also a failed or partial `up`); idempotent.
    Down,
    /// Show what runs where.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a node's namespaces, e.g. `lab exec node1 -- crm_mon -1`
    /// (or in the client / gw network namespace: `lab exec client -- swaks ...`).
    Exec {
        node: String,
        /// Kill the command after this long.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Inject one fault under mail load, measure from the client, check
    /// that no accepted mail was lost and the data was never mounted twice,
    /// and leave the cluster healthy (kill-daemon SERVICE, fail-daemon SERVICE,
    /// storage-loss NODE --mode eio|hang, cut-ping NODE, nfs-hang [NODE]
    /// --mode freeze|partition).
    Drill {
        name: String,
        /// The SERVICE (kill-daemon, fail-daemon) or NODE (storage-loss,
        /// cut-ping) the drill aims at.
        service: Option<String>,
        /// storage-loss: how the node's disk path breaks (eio|hang);
        /// nfs-hang: how the NFS server breaks (freeze|partition).
        #[arg(long)]
        mode: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Boot a node that is off (after a drill's power cut or its
    /// watchdog's reset): the same disk, and systemd starts what the node
    /// has enabled (the lease keeper, corosync and Pacemaker once `mailha
    /// setup` ran), as a machine does.
    Boot { node: String },
    /// Cut a node's power: every process of it killed at once.
    PowerOff { node: String },
    /// The lab's NFS server (nfs-ganesha at 198.51.100.30:/export):
    /// freeze|thaw (SIGSTOP/SIGCONT), partition|heal (nft drop in its
    /// namespace), status (an RPC NULL call from the client namespace).
    Nfs {
        #[arg(value_parser = ["freeze", "thaw", "partition", "heal", "status"])]
        action: String,
    },
    /// A real Prometheus in the gw namespace scraping both nodes'
    /// exporters: `up` starts it (once) and waits until both are scraped;
    /// `query EXPR [--range 5m --step 1s]` prints its API's JSON answer.
    Prometheus {
        #[arg(value_parser = ["up", "query"])]
        action: String,
        /// The PromQL expression (query).
        expr: Option<String>,
        /// Ask for the last RANGE (a range query) instead of now.
        #[arg(long, value_parser = humantime::parse_duration)]
        range: Option<Duration>,
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        step: Duration,
    },
    /// The soak (issue 17): random, overlapping faults under mail
    /// traffic. So far only `soak plan`, which prints the schedule a seed
    /// draws (JSON, the file a soak replays from); nothing touches the
    /// lab.
    Soak {
        #[command(subcommand)]
        what: Soak,
    },
    /// Pacemaker's Cluster Test Suite beside the mail (bench/cts.sh):
    /// `cts judge`.
    Cts {
        #[command(subcommand)]
        what: Cts,
    },
    /// (internal) the drills' mail load, run in the client namespace.
    #[command(hide = true)]
    Load {
        #[arg(long)]
        vip: std::net::Ipv4Addr,
        #[arg(long, default_value = "user1@lab.test")]
        to: String,
        #[arg(long)]
        run_id: String,
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        stop: PathBuf,
        #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
        every: Duration,
        #[arg(long, default_value = "10min", value_parser = humantime::parse_duration)]
        max: Duration,
        /// The IMAP side reads the new messages' ids (the soak), not only
        /// logs in (the drills).
        #[arg(long)]
        imap_ids: bool,
    },
    /// (internal) one full IMAP read of the load's mailbox on the VIP
    /// (run in the client namespace): every message's Message-ID, one per
    /// line, into OUT; exit 1 when the mailbox could not be read.
    #[command(hide = true)]
    ImapRead {
        #[arg(long)]
        vip: std::net::Ipv4Addr,
        #[arg(long)]
        out: PathBuf,
    },
    /// (internal) a node's FUSE path to the shared images, switched
    /// ok|eio|hang through its mode file (per-node storage faults).
    #[command(hide = true)]
    Fusedisk {
        #[arg(long = "image", required = true)]
        images: Vec<PathBuf>,
        #[arg(long)]
        mount: PathBuf,
        #[arg(long)]
        mode_file: PathBuf,
    },
    /// (internal) PID 1 of a User-mode Linux guest (`lab::uml`): set the
    /// guest up, then run the host's commands from its mailbox.
    #[command(hide = true)]
    UmlGuest {
        #[arg(long)]
        name: String,
        /// ADDRESS/24 on vec0.
        #[arg(long)]
        addr: String,
        /// The mailbox directory on the host (mounted through hostfs).
        #[arg(long)]
        ctl: PathBuf,
        /// What the UML kernel appends to init's arguments
        /// (`console=tty0`): ignored.
        #[arg(hide = true)]
        kernel_rest: Vec<String>,
    },
    /// (internal) a node's emulated watchdog, run on the host.
    #[command(hide = true)]
    Watchdog {
        /// The node's cgroup in the unified hierarchy (its PID 1 appears
        /// there at boot).
        #[arg(long)]
        cgroup: PathBuf,
        /// The FIFO on the host the node's keeper pets.
        #[arg(long)]
        fifo: PathBuf,
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// The node's fusedisk mode file: a reset fails its storage path.
        #[arg(long)]
        disk_mode_file: Option<PathBuf>,
        /// After a reset, boot this node again, as a machine does after
        /// its watchdog fired.
        #[arg(long)]
        boot: Option<String>,
    },
}

/// What a soak's schedule is drawn from (`soak plan`, `soak run`).
#[derive(Debug, clap::Args)]
pub struct Draw {
    /// How long the faults go on (required unless `run --replay`).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// What the schedule is drawn from (required unless `run --replay`).
    #[arg(long)]
    seed: Option<u64>,
    /// The faults to draw from, comma-separated: kill-daemon,
    /// fail-daemon, storage-loss, cut-ping, cut-heartbeat, kill-node,
    /// freeze-node, nfs-hang, switchover, apply (default: all the profile
    /// can take; for `run`, all the runner injects).
    #[arg(long)]
    faults: Option<String>,
    /// The profile whose daemons kill-daemon and fail-daemon aim at.
    #[arg(long, value_enum, default_value = "postfix")]
    profile: Profile,
}

impl Draw {
    /// The duration and seed, which only a replay may leave out (clap
    /// cannot say so: the same arguments serve `plan`, which has no
    /// replay).
    fn required(&self) -> Result<(Duration, u64), CliError> {
        match (self.duration, self.seed) {
            (Some(d), Some(s)) => Ok((d, s)),
            _ => Err(CliError::BadInput(
                "soak: --duration and --seed are required (or `run --replay FILE`)".into(),
            )),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum Soak {
    /// Print the schedule of faults drawn from the seed, as JSON (same
    /// seed and options, same schedule byte for byte).
    Plan {
        #[command(flatten)]
        draw: Draw,
        /// The profile keeps the mail on NFS (nfs-hang allowed).
        #[arg(long)]
        nfs: bool,
    },
    /// Run a schedule against the lab that is up, under the mail load:
    /// the faults injected and healed at their times, the history
    /// recorded, the checker's verdict printed (JSON) and kept with the
    /// schedule, the report (report.html), the client's logs and both
    /// nodes' logs in one folder (printed on stderr). Exit 1 when the
    /// verdict is not ok. Every fault but nfs-hang (the lab's mail is not
    /// on NFS).
    Run {
        #[command(flatten)]
        draw: Draw,
        /// Replay the schedule in this file (a soak's schedule.json)
        /// instead of drawing one.
        #[arg(long, conflicts_with_all = ["faults", "duration", "seed"])]
        replay: Option<PathBuf>,
    },
    /// The checker's verdict on a soak's folder (schedule.json and
    /// history.jsonl), printed as JSON, and the folder's report.html
    /// written again (its path on stderr); exit 1 unless ok. No lab
    /// needed.
    Check { dir: PathBuf },
    /// No faults: the mail load, the mounts, the fences and the lease
    /// holder recorded while something else works the cluster (CTS, in
    /// bench/cts.sh), until FILE exists (or --max passed); then the
    /// cluster cleaned up, the final read, and the folder (printed on
    /// stdout) for `mailha-lab cts judge`.
    Observe {
        /// Stop once this file exists.
        #[arg(long)]
        until_file: PathBuf,
        #[arg(long, default_value = "6h", value_parser = humantime::parse_duration)]
        max: Duration,
        /// The folder (default: the base dir's soak/<unix ms>-observe).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum Cts {
    /// CTS's log (its stdout, run with TZ=UTC) judged with the history
    /// `soak observe` recorded beside it: each test's verdict beside the
    /// mail's outage in its window against the matching drill's bound,
    /// lost mail, double mounts. The summary on stderr, the verdict as
    /// JSON on stdout and in DIR/cts-verdict.json; exit 1 unless ok. The
    /// nodes' journals in DIR (NODE-journal.log) tell which daemons died
    /// of SIGKILL, which may excuse a FileAudit failure. No lab needed.
    Judge {
        /// The folder `soak observe` wrote.
        #[arg(long)]
        observed: PathBuf,
        /// CTS's log.
        #[arg(long)]
        log: PathBuf,
    },
}

fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    if let What::UmlGuest {
        name, addr, ctl, ..
    } = &a.what
    {
        // PID 1 must not exit (the guest's kernel panics): say why on
        // the console and wait for the host to pull the plug.
        if let Err(e) = mailha_lab::uml::guest_main(name, addr, ctl) {
            eprintln!("mailha lab uml-guest: {e}");
        }
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if let What::Fusedisk {
        images,
        mount,
        mode_file,
    } = &a.what
    {
        mailha_lab::fusedisk::run(images, mount, mode_file)
            .map_err(|e| anyhow::anyhow!("fusedisk on {}: {e}", mount.display()))?;
        return Ok(());
    }
    if let What::Watchdog {
        cgroup,
        fifo,
        timeout,
        disk_mode_file,
        boot,
    } = &a.what
    {
        let out = mailha_lab::watchdog::run(cgroup, fifo, *timeout, disk_mode_file.as_deref())
            .map_err(|e| CliError::Failed(anyhow::anyhow!(e)))?;
        use mailha_lab::watchdog::Outcome;
        if let Some(node) = boot {
            // One boot again per reset, by this supervisor only: after its
            // own reset, or when the node rebooted itself (its keeper
            // after acking a fence; a real machine comes back from that).
            let again = match out {
                Outcome::Reset { .. } => true,
                Outcome::NodeGone => {
                    let r = mailha_lab::watchdog::rebooted_itself(&a.base_dir, node);
                    if r {
                        eprintln!(
                            "{} watchdog: the node rebooted itself (systemd-nspawn exit status {})",
                            mailha_lab::load::now_ms(),
                            mailha_lab::node::REBOOTED
                        );
                    }
                    r
                }
            };
            if again {
                let runner = SystemRunner;
                let lab = Lab::new(&runner, &a.prefix, &a.state_dir, &a.base_dir);
                mailha_lab::watchdog::boot_after_reset(&lab, node)
                    .map_err(|e| CliError::Failed(anyhow::anyhow!(e)))?;
            }
        }
        return Ok(());
    }
    if let What::Load {
        vip,
        to,
        run_id,
        log,
        stop,
        every,
        max,
        imap_ids,
    } = &a.what
    {
        let addr = std::net::SocketAddr::from((*vip, 25));
        mailha_lab::load::run(&mailha_lab::load::Spec {
            addr,
            to,
            run_id,
            log,
            stop,
            every: *every,
            max: *max,
            imap_ids: *imap_ids,
        })
        .map_err(anyhow::Error::from)?;
        return Ok(());
    }
    if let What::Soak {
        what: Soak::Plan { draw: d, nfs },
    } = &a.what
    {
        let (duration, seed) = d.required()?;
        let s =
            mailha_lab::soak::schedule::plan(duration, seed, d.faults.as_deref(), d.profile, *nfs)
                .map_err(|e| CliError::BadInput(e.to_string()))?;
        println!("{}", s.to_json());
        return Ok(());
    }
    if let What::ImapRead { vip, out } = &a.what {
        use mailha_lab::load;
        let addr = std::net::SocketAddr::from((*vip, 143));
        let r = load::imap_read(
            addr,
            load::IMAP_USER,
            load::IMAP_PASSWORD,
            0,
            Duration::from_secs(30),
        )
        .ok_or_else(|| {
            CliError::Failed(anyhow::anyhow!("the mailbox on {addr} could not be read"))
        })?;
        let text: String = r.messages.iter().map(|(_, id)| format!("{id}\n")).collect();
        std::fs::write(out, text)
            .map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", out.display())))?;
        return Ok(());
    }
    if let What::Soak {
        what: Soak::Check { dir },
    } = &a.what
    {
        let v = mailha_lab::soak::run::check_dir(dir).map_err(CliError::BadInput)?;
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        match mailha_lab::soak::report::write_dir(dir, &v) {
            Ok(page) => eprintln!("soak: report in {}", page.display()),
            Err(e) => eprintln!("soak: report.html not written: {e}"),
        }
        if !v.ok {
            return Err(CliError::Failed(anyhow::anyhow!(
                "the soak's verdict is not ok"
            )));
        }
        return Ok(());
    }
    if let What::Cts {
        what: Cts::Judge { observed, log },
    } = &a.what
    {
        return cts_judge(observed, log);
    }
    let runner = SystemRunner;
    let mut lab = Lab::new(&runner, &a.prefix, &a.state_dir, &a.base_dir);
    if let Some(m) = &cli.mailha {
        lab.mailha = m.clone();
    }
    lab.deb = cli.deb.clone();
    match &a.what {
        What::Up {
            profile,
            json,
            infra_only,
            keep,
            release,
            rebuild_tree,
        } => {
            let config = if *infra_only {
                None
            } else {
                Some(
                    provision::load_lab_config(
                        *profile,
                        cli.config.as_deref(),
                        &lab.topo,
                        *release,
                    )
                    .map_err(|e| CliError::BadInput(e.to_string()))?,
                )
            };
            let opts = UpOptions {
                config,
                keep_on_failure: *keep,
                release: *release,
                rebuild_tree: *rebuild_tree,
            };
            up(&lab, &opts, *json)
        }
        What::Tree { release, rebuild } => {
            let root = lab
                .release_root(*release, *rebuild)
                .map_err(anyhow::Error::from)?;
            println!("{}", root.display());
            Ok(())
        }
        What::Down => {
            let rep = lab.down().map_err(anyhow::Error::from)?;
            for d in &rep.done {
                println!("{d}");
            }
            println!("lab down: nothing left");
            Ok(())
        }
        What::Status { json } => {
            let s = lab.status().map_err(anyhow::Error::from)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s).expect("serializes"));
            } else {
                print!("{}", s.render());
            }
            Ok(())
        }
        What::Exec {
            node,
            timeout,
            argv,
        } => {
            let code = lab
                .exec(node, argv, *timeout)
                .map_err(anyhow::Error::from)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        What::Drill {
            name,
            service,
            mode,
            json,
        } => {
            let d = mailha_lab::drill::Drill::parse(name, service.as_deref(), mode.as_deref())
                .map_err(CliError::BadInput)?;
            let rep = lab.drill(&d).map_err(anyhow::Error::from)?;
            if *json {
                println!("{}", serde_json::to_string(&rep).expect("serializes"));
            } else {
                println!(
                    "{}: {} (recovered in {}, switched {}, {} accepted, {} lost, {} double mounts)",
                    rep.drill,
                    if rep.ok { "ok" } else { "FAILED" },
                    rep.recovered_s
                        .map(|s| format!("{s:.2}s"))
                        .unwrap_or_else(|| "never".into()),
                    rep.switched,
                    rep.accepted,
                    rep.lost,
                    rep.double_mounts
                );
                for n in &rep.notes {
                    println!("  {n}");
                }
            }
            if !rep.ok {
                std::process::exit(1);
            }
            Ok(())
        }
        What::Boot { node } => {
            lab.restart_node(node).map_err(anyhow::Error::from)?;
            println!("{node} booted");
            Ok(())
        }
        What::PowerOff { node } => {
            if !mailha_lab::node::all_nodes(&lab.topo).contains(node) {
                return Err(CliError::BadInput(
                    mailha_lab::LabError::UnknownNode(node.clone()).to_string(),
                ));
            }
            lab.power_off(node).map_err(anyhow::Error::from)?;
            println!("{node} is off");
            Ok(())
        }
        What::Nfs { action } => {
            use mailha_lab::nfs::Fault;
            match action.as_str() {
                "freeze" => lab.nfs_fault(Fault::Freeze),
                "thaw" => lab.nfs_restore(Fault::Freeze),
                "partition" => lab.nfs_fault(Fault::Partition),
                "heal" => lab.nfs_restore(Fault::Partition),
                _ => Ok(()),
            }
            .map_err(anyhow::Error::from)?;
            let s = lab.nfs_state().map_err(anyhow::Error::from)?;
            println!("{s}");
            Ok(())
        }
        What::Prometheus {
            action,
            expr,
            range,
            step,
        } => {
            let out = match action.as_str() {
                "up" => lab.prometheus_up(),
                _ => {
                    let expr = expr
                        .as_deref()
                        .ok_or_else(|| anyhow::anyhow!("query needs an expression"))?;
                    lab.prometheus_query(expr, range.map(|r| (r, *step)))
                }
            }
            .map_err(anyhow::Error::from)?;
            println!("{out}");
            Ok(())
        }
        What::Soak {
            what: Soak::Run { draw: d, replay },
        } => {
            use mailha_lab::soak::{run, schedule};
            let s = match replay {
                Some(f) => {
                    let text = std::fs::read_to_string(f)
                        .map_err(|e| CliError::BadInput(format!("{}: {e}", f.display())))?;
                    schedule::Schedule::from_json(&text)
                        .map_err(|e| CliError::BadInput(format!("{}: {e}", f.display())))?
                }
                None => {
                    let (duration, seed) = d.required()?;
                    let wired = run::WIRED.map(schedule::FaultKind::name).join(",");
                    schedule::plan(
                        duration,
                        seed,
                        Some(d.faults.as_deref().unwrap_or(&wired)),
                        d.profile,
                        false,
                    )
                    .map_err(|e| CliError::BadInput(e.to_string()))?
                }
            };
            let out = run::out_dir(&lab.base_dir, s.options.seed);
            eprintln!(
                "soak: {} steps over {} s, into {}",
                s.steps.len(),
                s.options.duration_ms / 1000,
                out.display()
            );
            let v = lab.soak_run(&s, &out).map_err(anyhow::Error::from)?;
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
            eprintln!(
                "soak: {} (verdict in {})",
                if v.ok { "ok" } else { "NOT OK" },
                out.join("verdict.json").display()
            );
            if !v.ok {
                return Err(CliError::Failed(anyhow::anyhow!(
                    "the soak's verdict is not ok"
                )));
            }
            Ok(())
        }
        What::Soak {
            what:
                Soak::Observe {
                    until_file,
                    max,
                    out,
                },
        } => {
            let out = out.clone().unwrap_or_else(|| {
                lab.base_dir
                    .join("soak")
                    .join(format!("{}-observe", mailha_lab::load::now_ms()))
            });
            eprintln!("soak: observing into {}", out.display());
            lab.soak_observe(&out, &|| until_file.exists(), *max)
                .map_err(anyhow::Error::from)?;
            println!("{}", out.display());
            Ok(())
        }
        What::UmlGuest { .. }
        | What::Cts { .. }
        | What::Watchdog { .. }
        | What::Load { .. }
        | What::ImapRead { .. }
        | What::Soak { .. }
        | What::Fusedisk { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `mailha-lab cts judge`.
fn cts_judge(observed: &Path, log: &Path) -> Result<(), CliError> {
    use mailha_lab::cts;
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| CliError::BadInput(format!("{}: {e}", p.display())))
    };
    let meta = observed.join("observed.json");
    let t0 = serde_json::from_str::<serde_json::Value>(&read(&meta)?)
        .ok()
        .and_then(|v| v["t0_unix_ms"].as_u64())
        .ok_or_else(|| CliError::BadInput(format!("{}: no t0_unix_ms", meta.display())))?;
    let run = cts::parse_log(&read(log)?, t0)
        .map_err(|e| CliError::BadInput(format!("{}: {e}", log.display())))?;
    let hist = observed.join("history.jsonl");
    let h = mailha_lab::soak::history::read_file(&hist)
        .map_err(|e| CliError::BadInput(format!("{}: {e}", hist.display())))?;
    // The nodes' journals bench/cts.sh saved (DIR/NODE-journal.log): the
    // SIGKILLs in them may excuse a FileAudit failure.
    let mut kills = Vec::new();
    let entries = std::fs::read_dir(observed)
        .map_err(|e| CliError::BadInput(format!("{}: {e}", observed.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.to_string_lossy().ends_with("-journal.log") {
            kills.extend(cts::sigkills(&read(&path)?));
        }
    }
    let v = cts::judge(&run, &h, t0, &kills);
    let json = serde_json::to_string_pretty(&v).unwrap_or_default();
    let out = observed.join("cts-verdict.json");
    std::fs::write(&out, &json)
        .map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", out.display())))?;
    eprint!("{}", cts::summary(&v));
    println!("{json}");
    if !v.ok {
        return Err(CliError::Failed(anyhow::anyhow!(
            "CTS beside the mail: not ok"
        )));
    }
    Ok(())
}

fn up(lab: &Lab, opts: &UpOptions, json: bool) -> Result<(), CliError> {
    // On failure `up` already tore down what it built (never a lab it
    // refused to touch).
    let rep = lab.up(opts).map_err(anyhow::Error::from)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rep).expect("serializes")
        );
    } else {
        print!("{}", lab.status().map_err(anyhow::Error::from)?.render());
        if let Some(s) = &rep.cluster_status {
            print!("{s}");
        }
        let phases: Vec<String> = rep
            .phases
            .iter()
            .map(|(what, at)| format!("{what} {at:.1}s"))
            .collect();
        println!("up in {:.1}s ({})", rep.seconds, phases.join(", "));
    }
    Ok(())
}

fn release_arg(s: &str) -> Result<mailha_lab::release::Release, String> {
    mailha_lab::release::Release::parse(s)
}
