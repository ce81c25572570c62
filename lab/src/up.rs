//! `lab up`: first the infrastructure (holders with private mounts,
//! bridges and veths, the gw and client namespaces, the shared data disk
//! and the lease disk with one loop device per node per image; every
//! object is recorded in the state before it is created), then the
//! cluster: `mailha install`, the mail stack's files, sshd with the lab's
//! keys, a pre-seeded CIB, `mailha setup` inside node1, and the wait until
//! both nodes are online and every resource runs.

use super::cmd::Cmd;
use super::fusedisk;
use super::holder;
use super::plan::{self, Creates, DATA_DEV, DEV_DIR, LEASE_DEV, SEED_MARKER};
use super::provision::{self, LabConfig};
use super::state::{HolderRec, LoopRec, State};
use super::topology::{Aux, NODES, overlapping_route};
use super::{Lab, LabError};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Image sizes (sparse files).
pub const DATA_IMAGE_SIZE: u64 = 1 << 30;
pub const LEASE_IMAGE_SIZE: u64 = 4 << 20;

/// What `up` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpReport {
    pub holders: Vec<HolderRec>,
    pub loops: Vec<LoopRec>,
    pub seconds: f64,
    /// Where the config came from (none: infrastructure only).
    pub config: Option<String>,
    /// `mailha status` in node1 once everything runs.
    pub cluster_status: Option<String>,
    /// Seconds since the start when each phase ended.
    pub phases: Vec<(String, f64)>,
}

/// How `up` runs.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// The cluster to set up; None: the infrastructure only.
    pub config: Option<LabConfig>,
    /// On failure, leave what was built for inspection (`lab down` later).
    pub keep_on_failure: bool,
}

/// Deadlines of the cluster part.
const SETUP_DEADLINE: Duration = Duration::from_secs(300);
const STARTED_DEADLINE: Duration = Duration::from_secs(180);

impl Lab<'_> {
    /// Refuses when not root, when a lab is up, when a lab subnet overlaps
    /// a host route, or when one of our names is taken.
    pub fn preflight(&self) -> Result<(), LabError> {
        let status = std::fs::read_to_string(self.proc_root.join("self/status"))
            .map_err(LabError::io(&self.proc_root))?;
        if holder::effective_uid(&status) != Some(0) {
            return Err(LabError::NotRoot);
        }
        if self.store.load()?.is_some() {
            return Err(LabError::AlreadyUp(self.store.path()));
        }
        let routes = self
            .runner
            .run_ok(&Cmd::new("ip").args(["-o", "-4", "route", "show", "table", "all"]))?;
        if let Some(r) = overlapping_route(&routes.stdout) {
            return Err(LabError::RouteOverlap(r));
        }
        for l in self.topo.host_links() {
            if Path::new("/sys/class/net").join(&l).exists() {
                return Err(LabError::LinkExists(l));
            }
        }
        for a in Aux::ALL {
            if Path::new("/run/netns").join(self.topo.netns(a)).exists() {
                return Err(LabError::NetnsExists(self.topo.netns(a)));
            }
        }
        Ok(())
    }

    /// Brings the infrastructure up. A refusal (preflight) changes nothing
    /// (in particular it never touches a lab that is already up); a failure
    /// after that tears down what was built and reports both.
    pub fn up(&self, opts: &UpOptions) -> Result<UpReport, LabError> {
        let t0 = Instant::now();
        self.preflight()?;
        if let Some(cfg) = &opts.config {
            self.cluster_preflight(cfg)?;
        }
        match self.build(t0, opts) {
            Ok(rep) => Ok(rep),
            Err(e) if opts.keep_on_failure => Err(e),
            Err(e) => match self.down() {
                Ok(_) => Err(e),
                Err(LabError::Incomplete(mut left)) => {
                    left.insert(0, format!("lab up failed: {e}; teardown then failed too:"));
                    Err(LabError::Incomplete(left))
                }
                Err(d) => Err(LabError::Incomplete(vec![e.to_string(), d.to_string()])),
            },
        }
    }

    /// Refuses before anything is built: programs missing, or agents the
    /// config names not installed (after installing this binary, which
    /// puts mailha's own agents in place).
    fn cluster_preflight(&self, cfg: &LabConfig) -> Result<(), LabError> {
        let missing = provision::missing_prerequisites();
        if !missing.is_empty() {
            return Err(LabError::Prerequisites(missing));
        }
        mailha::install::install(Path::new("/"), &self.mailha).map_err(|e| LabError::Io {
            path: PathBuf::from(mailha::install::BIN_PATH),
            source: std::io::Error::other(e.to_string()),
        })?;
        let conf = mailha::cib::render(&cfg.config);
        let absent: Vec<String> = provision::required_agents(&conf)
            .into_iter()
            .filter(|(_, path)| !path.is_file())
            .map(|(spec, path)| format!("{spec} ({})", path.display()))
            .collect();
        if !absent.is_empty() {
            return Err(LabError::AgentsMissing(absent));
        }
        Ok(())
    }

    fn build(&self, t0: Instant, opts: &UpOptions) -> Result<UpReport, LabError> {
        let mut st = State::new(&self.topo.prefix, &self.base_dir);
        self.store.save(&st)?;
        create_private_dir(&self.base_dir)?;
        // Mount points the nodes cover privately; the host keeps them empty
        // (never removed: another lab may be using them).
        for d in ["/etc/mailha", "/var/lib/mailha", DEV_DIR, plan::EYOU_MOUNT] {
            std::fs::create_dir_all(d).map_err(LabError::io(Path::new(d)))?;
        }

        for n in NODES {
            let node = self.topo.node_name(n);
            let root = plan::node_root(&self.base_dir, &node);
            let marker = self.base_dir.join(&node).join(SEED_MARKER);
            if !marker.exists() {
                // An older or half-seeded tree: start over (no lab is up,
                // preflight checked, so nothing is mounted from it).
                let dir = self.base_dir.join(&node);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(LabError::io(&dir))?;
                }
                let script = plan::seed_script(&root, &self.topo, &node);
                self.runner.run_ok(
                    &Cmd::new("/bin/sh")
                        .args(["-c", &script])
                        .deadline(Duration::from_secs(60)),
                )?;
                std::fs::write(&marker, "").map_err(LabError::io(&marker))?;
            }
            // This lab's own install, the upper layer of the node's pinned
            // install dirs; made fresh at every up (no node uses it now).
            let pin = plan::pin_root(&root);
            for dir in [pin.clone(), pin.with_file_name("pin-work")] {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(LabError::io(&dir))?;
                }
            }
            mailha::install::install(&pin, &self.mailha).map_err(|e| LabError::Io {
                path: pin.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        st.phase = "holders".into();
        self.store.save(&st)?;
        for n in NODES {
            let node = self.topo.node_name(n);
            let rec = self.start_holder(&node)?;
            st.holders.push(rec.clone());
            self.store.save(&st)?;
            let root = plan::node_root(&self.base_dir, &node);
            self.runner.run_ok(&plan::in_node_sh(
                rec.pid,
                &plan::node_mount_script(&root, &node),
            ))?;
        }

        st.phase = "network".into();
        self.store.save(&st)?;
        let mut steps = plan::bridges(&self.topo);
        for n in NODES {
            let pid = st.holders[usize::from(n - 1)].pid;
            steps.extend(plan::node_links(&self.topo, n, pid));
        }
        steps.extend(plan::aux_links(&self.topo));
        for (creates, cmd) in steps {
            match creates {
                Creates::Link(l) => st.links.push(l),
                Creates::Netns(n) => st.netns.push(n),
                Creates::Nothing => {}
            }
            self.store.save(&st)?;
            self.runner.run_ok(&cmd)?;
        }
        // The NFS server in its namespace (lab::nfs: always, see why there).
        self.nfs_up(&mut st)?;

        st.phase = "disks".into();
        self.store.save(&st)?;
        let data = self.base_dir.join("data.img");
        let lease = self.base_dir.join("lease.img");
        make_sparse(&data, DATA_IMAGE_SIZE)?;
        make_sparse(&lease, LEASE_IMAGE_SIZE)?;
        // No MMP here: `mailha setup` turns it on, as on a real
        // installation (mailha::live). With it a second mount through another
        // device is refused (measured: after ~23 s); a holder kill unmounts
        // cleanly, so no MMP wait then.
        self.runner.run_ok(
            &Cmd::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "maildata"])
                .arg(data.display().to_string())
                .deadline(Duration::from_secs(60)),
        )?;
        for n in NODES {
            let node = self.topo.node_name(n);
            let pid = st.holders[usize::from(n - 1)].pid;
            let mut minors = Vec::new();
            // Each node's path to the images runs through its own FUSE
            // pass-through, so a drill can break one node's path only.
            let fd_pid = self.start_fusedisk(&mut st, &node, &[data.clone(), lease.clone()])?;
            for image in [&data, &lease] {
                let path = fusedisk::mount_dir(&self.base_dir, &node)
                    .join(image.file_name().expect("an image file"));
                let out = self.runner.run_ok(&fusedisk::losetup_cmd(fd_pid, &path))?;
                let device = PathBuf::from(out.stdout.trim());
                st.loops.push(LoopRec {
                    node: node.clone(),
                    device: device.clone(),
                    image: path,
                });
                self.store.save(&st)?;
                minors.push(loop_minor(&device).ok_or_else(|| LabError::Io {
                    path: device.clone(),
                    source: std::io::Error::other("not a /dev/loopN path"),
                })?);
            }
            // Same path in both nodes, each node's own device; never
            // LABEL=/UUID=: both devices carry the same UUID.
            let script = format!(
                "set -e\nmknod {DATA_DEV} b 7 {}\nmknod {LEASE_DEV} b 7 {}\n",
                minors[0], minors[1]
            );
            self.runner.run_ok(&plan::in_node_sh(pid, &script))?;
            // Lease fencing: the node's emulated watchdog (src/lab/watchdog.rs).
            if let Some(t) = opts
                .config
                .as_ref()
                .and_then(|c| super::watchdog::timeout_for(&c.config))
            {
                let log = self.base_dir.join(&node).join("watchdog.log");
                let disk = fusedisk::mode_file(&self.base_dir, &node);
                super::watchdog::spawn(&self.exe, &st.holders[usize::from(n - 1)], t, &disk, &log)?;
            }
        }
        st.phase = "infrastructure up".into();
        self.store.save(&st)?;
        let mut phases = vec![("infrastructure".to_string(), t0.elapsed().as_secs_f64())];
        let mut cluster_status = None;
        if let Some(cfg) = &opts.config {
            st.phase = "cluster: setting up".into();
            st.config = Some(cfg.origin.clone());
            self.store.save(&st)?;
            cluster_status = Some(self.provision(&st, cfg, t0, &mut phases)?);
            st.phase = "cluster up".into();
            self.store.save(&st)?;
        }
        Ok(UpReport {
            holders: st.holders.clone(),
            loops: st.loops.clone(),
            seconds: t0.elapsed().as_secs_f64(),
            config: opts.config.as_ref().map(|c| c.origin.clone()),
            cluster_status,
            phases,
        })
    }

    /// The cluster on top of the infrastructure (holders are running).
    fn provision(
        &self,
        st: &State,
        cfg: &LabConfig,
        t0: Instant,
        phases: &mut Vec<(String, f64)>,
    ) -> Result<String, LabError> {
        let mut mark = |what: &str| phases.push((what.to_string(), t0.elapsed().as_secs_f64()));
        let pid = |n: u8| st.holders[usize::from(n - 1)].pid;
        // The lab's own ssh identity (host side, once; root-only base dir).
        let key = self.base_dir.join("id_ed25519");
        if !key.exists() {
            self.runner.run_ok(
                &Cmd::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "mailha-lab", "-f"])
                    .arg(key.display().to_string()),
            )?;
        }
        let private = std::fs::read_to_string(&key).map_err(LabError::io(&key))?;
        let pub_path = key.with_extension("pub");
        let public = std::fs::read_to_string(&pub_path).map_err(LabError::io(&pub_path))?;
        let mut host_keys = Vec::new();
        for n in NODES {
            let root = plan::node_root(&self.base_dir, &self.topo.node_name(n));
            let p = root.join("etc/ssh/ssh_host_ed25519_key.pub");
            host_keys.push((n, std::fs::read_to_string(&p).map_err(LabError::io(&p))?));
        }
        let known = provision::known_hosts(&self.topo, &host_keys);
        let known_path = self.base_dir.join("known_hosts");
        put(&known_path, &known, 0o644, None)?;

        // The alert relay in gw (STARTTLS with the lab CA, AUTH via
        // Dovecot); its CA and password go into both nodes below.
        let relay = super::relay::up(self.runner, &self.topo.netns(Aux::Gw), &self.base_dir)?;

        // The pre-seeded CIB (one file, copied into both nodes).
        let seed = self.base_dir.join("cib-seed.xml");
        let mut cmds = provision::cib_seed_cmds(&seed, &cfg.config.cluster.name).into_iter();
        let empty = self
            .runner
            .run_ok(&cmds.next().expect("cibadmin --empty"))?;
        put(&seed, &empty.stdout, 0o600, None)?;
        for c in cmds {
            self.runner.run_ok(&c)?;
        }

        for n in NODES {
            let root = plan::node_root(&self.base_dir, &self.topo.node_name(n));
            for (rel, text, mode, owner) in provision::mail_files() {
                put(&root.join(rel), text, mode, owner)?;
            }
            // Debian's master.cf chroots smtpd & co. into the queue dir.
            self.runner.run_ok(
                &Cmd::new("postconf")
                    .arg("-c")
                    .arg(root.join("etc/postfix").display().to_string())
                    .args(["-F", "*/*/chroot = n"]),
            )?;
            // The eYou stand-in, for the eyou profile only (an older one
            // from an earlier `up` goes either way).
            let eyou = root.join(super::eyou_tree::ROOT.trim_start_matches('/'));
            match std::fs::remove_dir_all(&eyou) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LabError::io(&eyou)(e));
                }
                _ => {}
            }
            if cfg.config.services.profile == Some(mailha::config::ProfileName::Eyou) {
                super::eyou_tree::write(&eyou).map_err(LabError::io(&eyou))?;
            }
            put(
                &root.join(mailha::config::DEFAULT_PATH.trim_start_matches('/')),
                &cfg.text,
                0o600,
                None,
            )?;
            let etc = |p: &str| root.join(p.trim_start_matches('/'));
            put(&etc(super::relay::NODE_CA), &relay.ca_pem, 0o644, None)?;
            put(
                &etc(super::relay::NODE_PASSWORD),
                &format!("{}\n", relay.password),
                0o600,
                None,
            )?;
            let ssh = root.join("root/.ssh");
            put(&ssh.join("authorized_keys"), &public, 0o600, None)?;
            put(&ssh.join("lab_ed25519"), &private, 0o600, None)?;
            put(&ssh.join("lab_ed25519.pub"), &public, 0o644, None)?;
            put(&ssh.join("lab_known_hosts"), &known, 0o644, None)?;
            put(
                &ssh.join("config"),
                &provision::ssh_client_config(),
                0o600,
                None,
            )?;
            // A fresh CIB every time: the seed only (no old resources).
            let cib = root.join("var/lib/pacemaker/cib");
            for e in std::fs::read_dir(&cib)
                .map_err(LabError::io(&cib))?
                .flatten()
            {
                std::fs::remove_file(e.path()).map_err(LabError::io(&e.path()))?;
            }
            self.runner.run_ok(
                &Cmd::new("install")
                    .args(["-o", "hacluster", "-g", "haclient", "-m", "0600"])
                    .arg(seed.display().to_string())
                    .arg(cib.join("cib.xml").display().to_string()),
            )?;
        }

        for n in NODES {
            self.runner.run_ok(
                &plan::in_node(pid(n), &["service", "ssh", "start"])
                    .deadline(Duration::from_secs(30)),
            )?;
        }
        self.runner.run_ok(
            &plan::in_node_sh(pid(1), &provision::data_init_script())
                .deadline(Duration::from_secs(120)),
        )?;

        if super::watchdog::timeout_for(&cfg.config).is_some() {
            super::watchdog::start_keepers(self.runner, &[pid(1), pid(2)])?;
        }
        mark("node files, sshd, data init");
        let argv = provision::setup_argv();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self
            .runner
            .run(&plan::in_node(pid(1), &argv).deadline(SETUP_DEADLINE))?;
        if !out.success() {
            return Err(LabError::Cluster(format!(
                "`mailha setup` in node1 failed ({:?}):\n{}{}",
                out.code, out.stdout, out.stderr
            )));
        }

        mark("mailha setup (both online, CIB applied)");
        let expected = provision::expected_instances(&mailha::cib::render(&cfg.config));
        let t = Instant::now();
        loop {
            let o = self.runner.run(
                &plan::in_node(
                    pid(1),
                    &["crm_mon", "--one-shot", "--output-as=xml", "--include=all"],
                )
                .deadline(Duration::from_secs(10)),
            )?;
            let last = match mailha::status::parse(&o.stdout) {
                Ok(s) => match provision::all_started(&s, expected) {
                    Ok(()) => break,
                    Err(why) => why,
                },
                Err(e) => e.to_string(),
            };
            if t.elapsed() > STARTED_DEADLINE {
                return Err(LabError::Cluster(format!(
                    "not everything started within {}s: {last}",
                    STARTED_DEADLINE.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        mark("every resource started");
        let o = self.runner.run(
            &plan::in_node(pid(1), &["/usr/sbin/mailha", "status"])
                .deadline(Duration::from_secs(30)),
        )?;
        Ok(o.stdout)
    }

    /// Starts one holder and returns its record (host PID + start time).
    pub(crate) fn start_holder(&self, node: &str) -> Result<HolderRec, LabError> {
        let mut c = Command::new("unshare");
        c.args(holder::unshare_argv(&self.exe))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // Long-lived by design: the holder is the node. Not waited for.
        let child = c.spawn().map_err(|source| LabError::Io {
            path: PathBuf::from("unshare"),
            source,
        })?;
        let upid = child.id();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            for pid in holder::children(&self.proc_root, upid) {
                if let Some((exe, start_time)) = holder::identity(&self.proc_root, pid)
                    && exe == self.exe
                {
                    return Ok(HolderRec {
                        node: node.to_string(),
                        pid,
                        start_time,
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(LabError::HolderNotFound(node.to_string()))
    }
}

/// The base dir holds the lab's private key: root only.
fn create_private_dir(dir: &Path) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(LabError::io(dir))
}

/// Writes a file with its mode (from creation on) and, if given, owner.
fn put(path: &Path, text: &str, mode: u32, owner: Option<(&str, &str)>) -> Result<(), LabError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
    }
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(LabError::io(path))?;
    f.write_all(text.as_bytes()).map_err(LabError::io(path))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(LabError::io(path))?;
    if let Some((user, group)) = owner {
        let uid = nix::unistd::User::from_name(user)
            .ok()
            .flatten()
            .map(|u| u.uid);
        let gid = nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .map(|g| g.gid);
        if uid.is_none() || gid.is_none() {
            return Err(LabError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(format!("no user {user} or group {group}")),
            });
        }
        nix::unistd::chown(path, uid, gid).map_err(|e| LabError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
    }
    Ok(())
}

fn make_sparse(path: &Path, size: u64) -> Result<(), LabError> {
    let f = std::fs::File::create(path).map_err(LabError::io(path))?;
    f.set_len(size).map_err(LabError::io(path))
}

/// 7 = the loop major; the minor is N of /dev/loopN.
pub fn loop_minor(device: &Path) -> Option<u32> {
    device.to_str()?.strip_prefix("/dev/loop")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Output, Recorder};

    #[test]
    fn loop_minor_reads_the_device_number() {
        assert_eq!(loop_minor(Path::new("/dev/loop12")), Some(12));
        assert_eq!(loop_minor(Path::new("/dev/sda")), None);
    }

    #[test]
    fn preflight_refuses_an_overlapping_host_route() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new().answer(
            "route show",
            Output::ok("default via 10.9.8.1 dev eth0\n198.51.100.0/25 dev wg0 scope link\n"),
        );
        let mut lab = Lab::new(
            &r,
            "mhxtest",
            &dir.path().join("state"),
            &dir.path().join("base"),
        );
        // Pretend to be root: a fake /proc with a self/status.
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        std::fs::write(proc_root.join("self/status"), "Uid:\t0\t0\t0\t0\n").unwrap();
        lab.proc_root = proc_root.clone();
        let e = lab.preflight().unwrap_err();
        assert!(
            matches!(e, LabError::RouteOverlap(ref l) if l.starts_with("198.51.100.0/25")),
            "{e}"
        );

        std::fs::write(
            proc_root.join("self/status"),
            "Uid:\t1000\t1000\t1000\t1000\n",
        )
        .unwrap();
        assert!(matches!(lab.preflight().unwrap_err(), LabError::NotRoot));
    }

    #[test]
    fn preflight_refuses_a_second_lab() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new();
        let mut lab = Lab::new(
            &r,
            "mhxtest",
            &dir.path().join("state"),
            &dir.path().join("base"),
        );
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        std::fs::write(proc_root.join("self/status"), "Uid:\t0\t0\t0\t0\n").unwrap();
        lab.proc_root = proc_root;
        let mut running = State::new("mhxtest", &lab.base_dir);
        running.phase = "infrastructure up".into();
        lab.store.save(&running).unwrap();
        assert!(matches!(
            lab.preflight().unwrap_err(),
            LabError::AlreadyUp(_)
        ));
        // Regression (found in the lab): a refused `up` must not tear down
        // the lab that is already up.
        assert!(matches!(
            lab.up(&UpOptions::default()).unwrap_err(),
            LabError::AlreadyUp(_)
        ));
        assert!(r.lines().is_empty(), "{:?}", r.lines());
        assert_eq!(lab.store.load().unwrap(), Some(running));
    }
}
