//! The .deb installed for real with dpkg, as root, into scratch roots:
//! an empty dpkg database (no corosync, no pacemaker), and a
//! copy-on-write overlay of this machine (which has them, from
//! scripts/install-deps.sh) in a private mount and network namespace, so
//! nothing reaches the host and no cluster or keeper of the host answers.
//! dpkg runs the maintainer scripts chrooted into the root, under strace:
//! every program they execute is recorded.
//!
//! Tested for real: dpkg's pre-dependency refusal, the unpacked tree and
//! the postinst's directories against `mailha install`, that install,
//! reinstall and upgrade execute nothing that starts, stops or restarts a
//! service, that a locally edited conffile survives the upgrade, the
//! prerm's refusal through crm_mon reading a saved CIB (Pacemaker's
//! `CIB_file`) in which this host runs mailha's resources, removal and
//! purge. Not tested here: a refusal against a live cluster (the same
//! decision, `removal::verdict`, over crm_mon's output; tests/removal.rs
//! covers its cases) and an upgrade on a running cluster node (the lab,
//! once its nodes boot systemd).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::common::run_with_deadline;
use support::*;

/// dpkg with a clean environment (plus `env`), under strace; its output
/// and every program it executed (argv, from successful execve calls).
struct Dpkg {
    ok: bool,
    out: String,
    execs: Vec<Vec<String>>,
}

fn dpkg(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Dpkg {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-s", "256", "-e", "trace=execve", "-o"])
        .arg(trace.path())
        .arg("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DEBIAN_FRONTEND", "noninteractive");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run_with_deadline(&mut c, Duration::from_secs(300));
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let execs = std::fs::read_to_string(trace.path())
        .unwrap()
        .lines()
        .filter(|l| l.contains("execve(") && l.trim_end().ends_with("= 0"))
        .filter_map(|l| {
            let args = l.split_once(", [")?.1.split_once("], ")?.0;
            Some(
                args.split("\", \"")
                    .map(|a| a.trim_matches('"').to_string())
                    .collect(),
            )
        })
        .collect();
    Dpkg {
        ok: o.status.success(),
        out,
        execs,
    }
}

/// The programs that start, stop or restart a service, as executed.
fn service_actions(execs: &[Vec<String>]) -> Vec<String> {
    execs
        .iter()
        .filter(|argv| starts_or_stops(&argv.iter().map(String::as_str).collect::<Vec<_>>()))
        .map(|argv| argv.join(" "))
        .collect()
}

fn status(root: &Path) -> String {
    let o = run_with_deadline(
        Command::new("dpkg-query")
            .arg(format!("--admindir={}/var/lib/dpkg", root.display()))
            .args(["-W", "-f=${db:Status-Status} ${Version}", "mailha"]),
        Duration::from_secs(60),
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn dpkg_refuses_without_corosync_and_pacemaker_and_unpacks_nothing() {
    let deb = deb_path();
    if !ready("dpkg -i on a machine without the engine", &[&deb], true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let admin = root.join("var/lib/dpkg");
    for d in ["updates", "info", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).unwrap();
    }
    std::fs::write(admin.join("status"), "").unwrap();
    std::fs::write(admin.join("available"), "").unwrap();
    let o = run_with_deadline(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg("-i")
            .arg(&deb),
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(out.contains("mailha pre-depends on corosync"), "{out}");
    assert!(
        out.contains("pre-dependency problem - not installing mailha"),
        "{out}"
    );
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            found.push(e.path());
        }
    }
    assert!(
        found
            .iter()
            .all(|p| p.starts_with(&admin) || admin.starts_with(p)),
        "dpkg unpacked something: {found:?}"
    );
    assert!(!admin.join("info/mailha.postinst").exists());
    assert_eq!(status(root), "not-installed");
}

/// What is at one path: kind, mode, owner, bytes or link target.
fn describe(p: &Path) -> Option<String> {
    let m = std::fs::symlink_metadata(p).ok()?;
    let what = if m.file_type().is_symlink() {
        format!("-> {}", std::fs::read_link(p).unwrap().display())
    } else if m.is_dir() {
        "dir".into()
    } else {
        format!(
            "{} bytes, crc {:08x}",
            m.len(),
            crc(&std::fs::read(p).unwrap())
        )
    };
    Some(format!(
        "{:o} {}:{} {what}",
        m.permissions().mode() & 0o7777,
        m.uid(),
        m.gid()
    ))
}

fn crc(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |h, x| h.rotate_left(5) ^ u32::from(*x))
}

/// The plan's paths (and the spool's subdirectories) under `root`.
fn tree(root: &Path) -> Vec<(String, Option<String>)> {
    let mut paths: Vec<String> = mailha::install::plan()
        .into_iter()
        .map(|e| e.path)
        .collect();
    for sub in ["pending", "outbox", "sent"] {
        paths.push(format!("{}/{sub}", mailha::alert::spool::DEFAULT_DIR));
    }
    paths
        .into_iter()
        .map(|p| {
            let d = describe(&root.join(p.trim_start_matches('/')));
            (p, d)
        })
        .collect()
}

/// A copy-on-write view of this machine: an overlay whose lower layer is
/// `/` and whose upper layer is a private tmpfs, with /proc and /dev;
/// earlier mailha installs hidden, so it looks like a fresh machine.
fn scratch_machine(dir: &Path) -> PathBuf {
    let run = |argv: &[&str]| {
        run(argv);
    };
    let d = dir.display().to_string();
    run(&["mount", "-t", "tmpfs", "mailha-pkg-test", &d]);
    for s in ["upper", "work", "merged"] {
        std::fs::create_dir(dir.join(s)).unwrap();
    }
    let opts = format!("lowerdir=/,upperdir={d}/upper,workdir={d}/work");
    let m = dir.join("merged");
    let ms = m.display().to_string();
    run(&[
        "mount",
        "-t",
        "overlay",
        "mailha-pkg-test",
        "-o",
        &opts,
        &ms,
    ]);
    run(&["mount", "--bind", "/proc", &format!("{ms}/proc")]);
    run(&["mount", "--bind", "/dev", &format!("{ms}/dev")]);
    for e in mailha::install::plan() {
        let p = m.join(e.path.trim_start_matches('/'));
        if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
    let _ = std::fs::remove_dir_all(m.join("var/lib/mailha"));
    m
}

/// Unmounts the scratch machine when the scenario ends, however it ends,
/// so its directory can go.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(&self.0)
            .status();
    }
}

/// The .deb with its version raised to `version`, nothing else changed.
fn repacked(deb: &Path, version: &str, dir: &Path) -> PathBuf {
    let x = dir.join("x");
    run(&["dpkg-deb", "-R", deb.to_str().unwrap(), x.to_str().unwrap()]);
    let control = x.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("Version: ") {
                format!("Version: {version}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(&control, text).unwrap();
    let out = dir.join(format!("mailha_{version}_amd64.deb"));
    run(&["dpkg-deb", "-b", x.to_str().unwrap(), out.to_str().unwrap()]);
    out
}

#[test]
fn install_upgrade_remove_and_purge_on_a_copy_of_this_machine() {
    let deb = deb_path();
    let tools: [&Path; 3] = [
        &deb,
        Path::new("/usr/bin/strace"),
        Path::new("/usr/bin/unshare"),
    ];
    if !ready("dpkg on a scratch copy of this machine", &tools, true) {
        return;
    }
    // The scenario runs in its own mount and network namespaces.
    let exe = std::env::current_exe().unwrap();
    let o = run_with_deadline(
        Command::new("unshare")
            .args(["--mount", "--net", "--propagation", "private", "--"])
            .arg(exe)
            .args([
                "--exact",
                "on_a_scratch_machine",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(support::common::IN_NS, "1"),
        Duration::from_secs(900),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && out.contains("1 passed"), "{out}");
}

#[test]
#[ignore = "run in its own namespaces by install_upgrade_remove_and_purge_on_a_copy_of_this_machine"]
fn on_a_scratch_machine() {
    if !support::common::rerun_in_ns() {
        return;
    }
    let deb = deb_path();
    let dir = tempfile::tempdir().unwrap();
    let _unmount = Unmount(dir.path().to_path_buf());
    let m = scratch_machine(dir.path());
    let work = tempfile::tempdir().unwrap();
    let in_root = m.join("tmp/mailha-pkg-test");
    std::fs::create_dir_all(&in_root).unwrap();
    let deb1 = in_root.join("mailha_1.deb");
    std::fs::copy(&deb, &deb1).unwrap();
    let v = version();
    let deb2 = repacked(&deb, &format!("{v}-2"), work.path());

    // Install: nothing started; the same tree as `mailha install`.
    let d = dpkg(&m, &["-i", deb1.to_str().unwrap()], &[]);
    assert!(d.ok, "{}", d.out);
    assert!(
        d.execs
            .iter()
            .any(|a| a.ends_with(&["package".into(), "configure".into()])),
        "the postinst ran: {:?}",
        d.execs
    );
    assert_eq!(service_actions(&d.execs), Vec::<String>::new(), "{}", d.out);
    assert_eq!(status(&m), format!("installed {v}-1"));
    let by_install = work.path().join("by-install");
    run(&[
        m.join("usr/sbin/mailha").to_str().unwrap(),
        "install",
        "--root",
        by_install.to_str().unwrap(),
    ]);
    let (a, b) = (tree(&m), tree(&by_install));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "dpkg and `mailha install` differ");
    }
    assert!(a.iter().all(|(_, d)| d.is_some()), "{a:?}");
    let etc = std::fs::metadata(m.join("etc/mailha")).unwrap();
    assert_eq!(etc.permissions().mode() & 0o7777, 0o700);
    let hacluster = nix::unistd::User::from_name("hacluster").unwrap().unwrap();
    let spool = std::fs::metadata(m.join("var/lib/mailha/spool/pending")).unwrap();
    assert_eq!(
        spool.uid(),
        hacluster.uid.as_raw(),
        "the alert agent's user owns pending/"
    );

    // The administrator edits the init script (a conffile).
    let script = m.join("etc/init.d/mailha-lease");
    let edited = std::fs::read_to_string(&script).unwrap() + "# local edit\n";
    std::fs::write(&script, &edited).unwrap();

    // Reinstall, then upgrade: nothing started, stopped or restarted.
    for pkg in [&deb1, &deb2] {
        let d = dpkg(&m, &["-i", pkg.to_str().unwrap()], &[]);
        assert!(d.ok, "{}", d.out);
        assert_eq!(service_actions(&d.execs), Vec::<String>::new(), "{}", d.out);
    }
    assert_eq!(status(&m), format!("installed {v}-2"));
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        edited,
        "conffile kept"
    );

    // A saved CIB in which this host runs mailha's resources: refused.
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let cib =
        std::fs::read_to_string(mailha_pkg::repo().join("tests/fixtures/status/cib-failed.xml"))
            .unwrap()
            .replace("\"mail1\"", &format!("\"{host}\""));
    std::fs::write(in_root.join("cib.xml"), cib).unwrap();
    let d = dpkg(
        &m,
        &["-r", "mailha"],
        &[("CIB_file", "/tmp/mailha-pkg-test/cib.xml")],
    );
    assert!(!d.ok, "{}", d.out);
    assert!(
        d.out.contains(&format!(
            "this node ({host}) is a cluster member running mailha's resources"
        )),
        "{}",
        d.out
    );
    assert!(d.out.contains("lease (ocf:mailha:lease)"), "{}", d.out);
    assert!(
        d.execs.iter().any(|a| a[0].ends_with("crm_mon")),
        "the prerm asked Pacemaker: {:?}",
        d.execs
    );
    assert_eq!(status(&m), format!("installed {v}-2"));
    assert!(m.join("usr/sbin/mailha").exists());
    assert_eq!(service_actions(&d.execs), Vec::<String>::new());

    // No cluster here: removed; the conffile and the config stay.
    let d = dpkg(&m, &["-r", "mailha"], &[]);
    assert!(d.ok, "{}", d.out);
    assert!(!m.join("usr/sbin/mailha").exists());
    assert!(!m.join("usr/lib/ocf/resource.d/mailha/service").exists());
    assert!(script.exists(), "a removed package keeps its conffiles");
    std::fs::write(m.join("etc/mailha/mailha.toml"), "# the cluster's config\n").unwrap();

    // Purge: the spool and the conffile go, /etc/mailha stays.
    let d = dpkg(&m, &["--purge", "mailha"], &[]);
    assert!(d.ok, "{}", d.out);
    assert!(d.out.contains("/etc/mailha is left in place"), "{}", d.out);
    assert!(m.join("etc/mailha/mailha.toml").exists());
    assert!(!m.join("var/lib/mailha").exists());
    assert!(!script.exists());
    assert!(
        ["", "not-installed"].contains(&status(&m).as_str()),
        "purged: dpkg forgets it"
    );

    // Asked explicitly, a purge takes /etc/mailha too.
    let d = dpkg(&m, &["-i", deb1.to_str().unwrap()], &[]);
    assert!(d.ok, "{}", d.out);
    let d = dpkg(
        &m,
        &["--purge", "mailha"],
        &[("MAILHA_PURGE_CONFIG", "yes")],
    );
    assert!(d.ok, "{}", d.out);
    assert!(!m.join("etc/mailha").exists());
}
