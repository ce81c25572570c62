//! `lab up`: first the infrastructure (each node's disk with mailha
//! installed, bridges, the gw, client and NFS namespaces, the shared data
//! disk and the lease disk with one loop device per node per image, then
//! both nodes booted; every object is recorded in the state before it is
//! created), then the cluster: the mail stack's files, the lab's ssh keys,
//! a pre-seeded CIB, `mailha setup` inside node1, and the wait until both
//! nodes are online and every resource runs.

use super::cmd::Cmd;
use super::fusedisk;
use super::node::{BootTarget, NodeDirs};
use super::plan::{self, Creates};
use super::proc;
use super::provision::{self, LabConfig};
use super::state::{LoopRec, NodeRec, State};
use super::topology::{Aux, NODES, Net, overlapping_route};
use super::{Lab, LabError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Image sizes (sparse files).
pub const DATA_IMAGE_SIZE: u64 = 1 << 30;
pub const LEASE_IMAGE_SIZE: u64 = 4 << 20;

/// What `up` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpReport {
    /// Each node by its PID 1 (the JSON name is older than the systemd
    /// nodes).
    pub holders: Vec<NodeRec>,
    pub loops: Vec<LoopRec>,
    pub seconds: f64,
    /// Where the config came from (none: infrastructure only).
    pub config: Option<String>,
    /// `mailha status` in node1 once everything runs.
    pub cluster_status: Option<String>,
    /// Seconds since the start when each phase ended.
    pub phases: Vec<(String, f64)>,
    /// How each node's systemd finished booting (`running`, or
    /// `degraded` with its failed units).
    pub booted: Vec<String>,
}

/// How `up` runs.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// The cluster to set up; None: the infrastructure only.
    pub config: Option<LabConfig>,
    /// On failure, leave what was built for inspection (`lab down` later).
    pub keep_on_failure: bool,
    /// The Debian release the nodes run.
    pub release: super::release::Release,
    /// Make the release's cached tree again first.
    pub rebuild_tree: bool,
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
        if proc::effective_uid(&status) != Some(0) {
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
        // The nodes boot systemd in containers: systemd-nspawn, and a
        // cgroup v2 hierarchy to freeze and power them off.
        let nspawn = provision::missing_programs(
            &["systemd-nspawn"],
            &[Path::new("/usr/bin"), Path::new("/bin")],
        );
        if !nspawn.is_empty() {
            return Err(LabError::Prerequisites(vec![
                "systemd-nspawn (Debian's systemd-container)".into(),
            ]));
        }
        self.node_cgroup_v2("node1")?;
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
    /// config names that neither the host's packages nor mailha's install
    /// provide.
    fn cluster_preflight(&self, cfg: &LabConfig) -> Result<(), LabError> {
        let missing = provision::missing_prerequisites();
        if !missing.is_empty() {
            return Err(LabError::Prerequisites(missing));
        }
        // The nodes get the host's packages (their lower layer) and
        // mailha's own install (what `install` writes into their disks):
        // an agent must be in one of the two. The host itself is left as
        // it is.
        let scratch = tempfile::tempdir().map_err(LabError::io(Path::new("/tmp")))?;
        match &self.deb {
            Some(deb) => {
                let o = self.runner.run(
                    &Cmd::new("dpkg-deb")
                        .arg("--extract")
                        .arg(deb.display().to_string())
                        .arg(scratch.path().display().to_string())
                        .deadline(Duration::from_secs(60)),
                )?;
                if !o.success() {
                    return Err(LabError::Cluster(format!(
                        "{}: not a package dpkg-deb can read: {}",
                        deb.display(),
                        o.stderr.trim()
                    )));
                }
            }
            None => {
                mailha::install::install(scratch.path(), &self.mailha).map_err(|e| {
                    LabError::Io {
                        path: self.mailha.clone(),
                        source: std::io::Error::other(e.to_string()),
                    }
                })?;
            }
        }
        let conf = mailha::cib::render(&cfg.config);
        let absent: Vec<String> = provision::required_agents(&conf)
            .into_iter()
            .filter(|(_, path)| {
                !path.is_file()
                    && scratch
                        .path()
                        .join(path.strip_prefix("/").unwrap_or(path))
                        .symlink_metadata()
                        .is_err()
            })
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
        self.mount_base()?;
        self.install_helper_exe()?;

        // Each node's disk: the host's packages under a layer of its own,
        // with what makes it a machine of its own and mailha installed.
        st.phase = "node disks".into();
        self.store.save(&st)?;
        if let Some(deb) = &self.deb {
            st.package = Some(self.keep_package(deb)?);
            self.store.save(&st)?;
        }
        st.phase = format!("the {} tree", opts.release.name());
        self.store.save(&st)?;
        let lower = self.release_root(opts.release, opts.rebuild_tree)?;
        st.release = Some(opts.release);
        self.store.save(&st)?;
        let mut staged = Vec::new();
        for n in NODES {
            let node = self.topo.node_name(n);
            let d = self.mount_node_root(&node, &lower)?;
            staged.push(self.make_tree(n, &d.root, st.package.as_deref())?);
        }

        st.phase = "network".into();
        self.store.save(&st)?;
        let mut steps = plan::bridges(&self.topo);
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
        // device is refused (measured: after ~23 s); a clean power-off
        // unmounts, so no MMP wait then.
        self.runner.run_ok(
            &Cmd::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "maildata"])
                .arg(data.display().to_string())
                .deadline(Duration::from_secs(60)),
        )?;
        for n in NODES {
            let node = self.topo.node_name(n);
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
            }
        }

        st.phase = "booting the nodes".into();
        self.store.save(&st)?;
        let watchdog = opts
            .config
            .as_ref()
            .and_then(|c| super::watchdog::timeout_for(&c.config));
        for n in NODES {
            // The host ends nspawn makes, recorded before they exist.
            for net in Net::ALL {
                st.links.push(self.topo.node_veth(n, net));
            }
            self.store.save(&st)?;
            let rec = self.boot(n, &st, watchdog, BootTarget::Default)?;
            st.nodes.push(rec);
            self.store.save(&st)?;
        }
        let mut booted = Vec::new();
        for rec in &st.nodes {
            booted.push(format!("{}: {}", rec.node, self.wait_booted(rec)?));
        }
        let mut phases = vec![("infrastructure".to_string(), t0.elapsed().as_secs_f64())];
        if st.package.is_some() {
            st.phase = "installing the package".into();
            self.store.save(&st)?;
            for (rec, in_node) in st.nodes.iter().zip(&staged) {
                if let Some(p) = in_node {
                    self.dpkg_install(&rec.node, rec.pid, p)?;
                }
            }
            phases.push(("package installed".to_string(), t0.elapsed().as_secs_f64()));
        }
        st.phase = "infrastructure up".into();
        self.store.save(&st)?;
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
            holders: st.nodes.clone(),
            loops: st.loops.clone(),
            seconds: t0.elapsed().as_secs_f64(),
            config: opts.config.as_ref().map(|c| c.origin.clone()),
            cluster_status,
            phases,
            booted,
        })
    }

    /// One boot of node `n` (its disk and loop devices in place): its
    /// watchdog first when it fences by lease (so the keeper finds the
    /// FIFO read at boot), then systemd-nspawn, then its links on the
    /// bridges. Returns its PID 1; `wait_booted` waits for the boot.
    pub(crate) fn boot(
        &self,
        n: u8,
        st: &State,
        watchdog: Option<Duration>,
        target: BootTarget,
    ) -> Result<NodeRec, LabError> {
        let node = self.topo.node_name(n);
        let d = NodeDirs::new(&self.base_dir, &node);
        std::fs::create_dir_all(&d.dev).map_err(LabError::io(&d.dev))?;
        drop(super::watchdog::open_fifo(&d.fifo).map_err(LabError::io(&d.fifo))?);
        if let Some(t) = watchdog {
            let log = d.dir.join("watchdog.log");
            let disk = fusedisk::mode_file(&self.base_dir, &node);
            let cg = self.node_cgroup_v2(&node)?;
            super::watchdog::spawn(self, &node, &cg, &d.fifo, t, &disk, &log)?;
        }
        let loops: Vec<(String, PathBuf)> = st
            .loops
            .iter()
            .filter(|l| l.node == node)
            .map(|l| {
                (
                    l.image
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    l.device.clone(),
                )
            })
            .collect();
        super::node::make_dev_dir(&d, &loops)?;
        let rec = self.launch_node(&self.launch_spec(n, target))?;
        self.attach_node_links(n)?;
        Ok(rec)
    }

    /// The cluster on top of the infrastructure (the nodes run).
    fn provision(
        &self,
        st: &State,
        cfg: &LabConfig,
        t0: Instant,
        phases: &mut Vec<(String, f64)>,
    ) -> Result<String, LabError> {
        let mut mark = |what: &str| phases.push((what.to_string(), t0.elapsed().as_secs_f64()));
        let pid = |n: u8| st.nodes[usize::from(n - 1)].pid;
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
        // The exporters' scrape password: in each node for the exporter,
        // in the base dir for the lab's Prometheus (`lab prometheus up`).
        let scrape_password = super::relay::new_password()?;
        put(
            &super::prometheus::password_file(&self.base_dir),
            &format!("{scrape_password}\n"),
            0o600,
            None,
        )?;
        // Each exporter's certificate for HTTPS (its name and LAN address),
        // signed by the lab CA Prometheus trusts.
        let pdir = super::prometheus::dir(&self.base_dir);
        let mut exporter_tls = Vec::new();
        for n in NODES {
            let (name, addr) = (self.topo.node_name(n), self.topo.node_addr(n, Net::Lan));
            let stem = format!("exporter-{name}");
            super::relay::issue(
                self.runner,
                &super::relay::Relay::new(&self.base_dir).dir,
                &pdir,
                &stem,
                &name,
                &format!("DNS:{name}, IP:{addr}"),
            )?;
            let read = |ext: &str| {
                let p = pdir.join(format!("{stem}.{ext}"));
                std::fs::read_to_string(&p).map_err(LabError::io(&p))
            };
            exporter_tls.push((read("pem")?, read("key")?));
        }

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
            for (rel, text, mode, owner) in provision::mail_files(st.release.unwrap_or_default()) {
                put(
                    &root.join(rel),
                    text,
                    mode,
                    owner.map(|(u, g)| (root.as_path(), u, g)),
                )?;
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
            put(
                &etc(super::prometheus::NODE_PASSWORD),
                &format!("{scrape_password}\n"),
                0o600,
                None,
            )?;
            let (cert, key) = &exporter_tls[NODES.iter().position(|x| *x == n).expect("a node")];
            put(&etc(super::prometheus::NODE_CERT), cert, 0o644, None)?;
            put(&etc(super::prometheus::NODE_KEY), key, 0o600, None)?;
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
                    .args(["-m", "0600"])
                    .arg(seed.display().to_string())
                    .arg(cib.join("cib.xml").display().to_string()),
            )?;
            // hacluster as the node numbers it (Debian 13's is not the host's).
            chown(&root, &cib.join("cib.xml"), "hacluster", "haclient")?;
        }

        self.runner.run_ok(
            &plan::in_node_sh(pid(1), &provision::data_init_script())
                .deadline(Duration::from_secs(120)),
        )?;

        mark("node files, data init");
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
        // The package's exporter unit, as an administrator enables it
        // (unless the config has Pacemaker run it): the lab config has it
        // listen on the nodes' addresses.
        let by_systemd =
            cfg.config.exporter.run_by == mailha::config::model::ExporterRunBy::Systemd;
        for n in NODES.iter().copied().filter(|_| by_systemd) {
            self.runner.run_ok(
                &plan::in_node(pid(n), &["systemctl", "enable", "--now", "mailha-exporter"])
                    .deadline(Duration::from_secs(30)),
            )?;
        }
        mark("exporters enabled");
        let o = self.runner.run(
            &plan::in_node(pid(1), &["/usr/sbin/mailha", "status"])
                .deadline(Duration::from_secs(30)),
        )?;
        Ok(o.stdout)
    }
}

/// The base dir holds the lab's private key: root only.
fn create_private_dir(dir: &Path) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(LabError::io(dir))
}

/// Writes a file with its mode (from creation on) and, if given, owner
/// (the names as the machine whose root is given knows them).
pub(crate) fn put(
    path: &Path,
    text: &str,
    mode: u32,
    owner: Option<(&Path, &str, &str)>,
) -> Result<(), LabError> {
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
    if let Some((root, user, group)) = owner {
        chown(root, path, user, group)?;
    }
    Ok(())
}

/// The id of `name` in an /etc/passwd or /etc/group text (the third field).
pub fn id_of(db: &str, name: &str) -> Option<u32> {
    db.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Gives `path` to `user`:`group`, names looked up in the machine under
/// `root` (a node of another release numbers its users differently from
/// the host).
pub(crate) fn chown(root: &Path, path: &Path, user: &str, group: &str) -> Result<(), LabError> {
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap_or_default();
    let uid = id_of(&read("etc/passwd"), user).map(nix::unistd::Uid::from_raw);
    let gid = id_of(&read("etc/group"), group).map(nix::unistd::Gid::from_raw);
    if uid.is_none() || gid.is_none() {
        return Err(LabError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!(
                "no user {user} or group {group} in {}/etc",
                root.display()
            )),
        });
    }
    nix::unistd::chown(path, uid, gid).map_err(|e| LabError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })
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
    fn a_user_is_numbered_as_the_nodes_own_passwd_numbers_it() {
        // Debian 13's dovecot is 104 where the host's Debian 12 says 110:
        // the node's file decides, a prefix of another name does not match.
        let passwd = "root:x:0:0:root:/root:/bin/bash\ndovecotx:x:90:90::/:/bin/false\ndovecot:x:104:107:Dovecot mail server:/usr/lib/dovecot:/usr/sbin/nologin\n";
        assert_eq!(id_of(passwd, "dovecot"), Some(104));
        assert_eq!(id_of(passwd, "root"), Some(0));
        assert_eq!(id_of(passwd, "mail"), None);
        assert_eq!(id_of("dovecot:x:7:", "dovecot"), Some(7), "a group line");
        assert_eq!(id_of("broken\n", "broken"), None);
    }

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
