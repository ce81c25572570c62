//! The built packages, read with Debian's tools: the .deb holds exactly
//! the install plan plus Debian's own files, with the plan's modes and
//! link targets; its control data; its maintainer scripts start, stop and
//! restart nothing; lintian passes; the .rpm lists the same files
//! (`rpm -qp --dump`, from Debian's `rpm`). Packages come from
//! scripts/build-deb.sh (scripts/test.sh runs it first).

mod support;

use std::path::Path;
use support::*;

fn text(o: std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `dpkg-deb -c`: every non-directory as a row.
fn deb_rows(deb: &Path) -> Vec<Row> {
    let list = text(run(&["dpkg-deb", "-c", deb.to_str().unwrap()]));
    let mut v: Vec<Row> = list
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f[1], "0/0", "owned by root: {l}");
            Row {
                path: f[5].trim_start_matches('.').to_string(),
                mode: mode_of(f[0]),
                link: (f.get(6) == Some(&"->")).then(|| f[7].to_string()),
            }
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_deb_holds_exactly_the_install_plan_and_debians_own_files() {
    let deb = deb_path();
    if !ready("the .deb's file list", &[&deb], false) {
        return;
    }
    let (debian, ours): (Vec<Row>, Vec<Row>) = deb_rows(&deb)
        .into_iter()
        .partition(|r| DEBIAN_ONLY.contains(&r.path.as_str()));
    assert_eq!(ours, plan_rows(), "the .deb and `mailha install` differ");
    assert_eq!(debian.len(), DEBIAN_ONLY.len(), "{debian:?}");
    assert!(debian.iter().all(|r| r.mode == 0o644 && r.link.is_none()));
}

#[test]
fn the_deb_pre_depends_on_the_engine_and_its_init_script_is_a_conffile() {
    let deb = deb_path();
    if !ready("the .deb's control data", &[&deb], false) {
        return;
    }
    let d = deb.to_str().unwrap();
    let field = |f: &str| text(run(&["dpkg-deb", "-f", d, f])).trim().to_string();
    assert_eq!(field("Package"), "mailha");
    assert_eq!(field("Version"), format!("{}-1", version()));
    assert_eq!(field("Architecture"), "amd64");
    // dpkg checks Pre-Depends before it unpacks anything.
    assert_eq!(field("Pre-Depends"), "corosync, pacemaker");
    assert_eq!(field("Depends"), "pacemaker-cli-utils, resource-agents");
    let conffiles = text(run(&["dpkg-deb", "-I", d, "conffiles"]));
    assert_eq!(conffiles.trim(), "/etc/init.d/mailha-lease");
}

#[test]
fn the_debs_binary_is_the_static_musl_build() {
    let deb = deb_path();
    if !ready("the .deb's binary", &[&deb], false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    run(&["dpkg-deb", "-x", deb.to_str().unwrap(), root]);
    let bin = dir.path().join("usr/sbin/mailha");
    let elf = std::fs::read(&bin).unwrap();
    // No PT_INTERP: nothing is loaded before main (a static-pie).
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (
        u16::from_le_bytes(elf[54..56].try_into().unwrap()) as usize,
        u16::from_le_bytes(elf[56..58].try_into().unwrap()) as usize,
    );
    let interp = (0..phnum).any(|i| {
        let t = &elf[phoff + i * phentsize..phoff + i * phentsize + 4];
        u32::from_le_bytes(t.try_into().unwrap()) == 3
    });
    assert!(!interp, "the packaged mailha has an ELF interpreter");
    // Every glibc build, static or not, reads its tunables at start; a
    // stripped musl binary names no libc at all.
    assert!(
        !elf.windows(14).any(|w| w == b"GLIBC_TUNABLES"),
        "the packaged mailha is a glibc build, not the shipped musl one"
    );
    let v = text(run(&[bin.to_str().unwrap(), "--version"]));
    assert_eq!(v.trim(), format!("mailha {}", version()));
}

/// A script's line as words for `starts_or_stops`.
fn line_starts_or_stops(line: &str) -> bool {
    starts_or_stops(&line.split_whitespace().collect::<Vec<_>>())
}

#[test]
fn no_maintainer_script_starts_stops_or_restarts_anything() {
    let deb = deb_path();
    if !ready("the .deb's maintainer scripts", &[&deb], false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run(&[
        "dpkg-deb",
        "-e",
        deb.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    for s in ["preinst", "postinst", "prerm", "postrm"] {
        let Ok(text) = std::fs::read_to_string(dir.path().join(s)) else {
            continue;
        };
        for line in text.lines() {
            assert!(!line_starts_or_stops(line), "{s}: {line}");
        }
    }
    // The checker catches what it must.
    assert!(line_starts_or_stops("    invoke-rc.d mailha-lease restart"));
    assert!(line_starts_or_stops(
        "systemctl try-restart mailha-lease.service"
    ));
    assert!(starts_or_stops(&["/usr/sbin/mailha", "lease", "keeper"]));
    assert!(line_starts_or_stops(
        "  \"$(command -v systemctl)\" stop \"mailha-lease.service\";"
    ));
    assert!(line_starts_or_stops("pkill -f 'mailha lease keeper'"));
    assert!(!line_starts_or_stops(
        "    timeout 60 systemctl --system daemon-reload || true"
    ));
    // The purge removes what mailha wrote, where mailha writes it.
    let postrm = std::fs::read_to_string(dir.path().join("postrm")).unwrap();
    for p in [
        mailha::lease::boot::COROSYNC_DROPIN_PATH,
        "/var/lib/mailha",
        "/var/log/mailha-lease-keeper.log",
        mailha::install::CONFIG_DIR,
    ] {
        assert!(postrm.contains(p), "postrm does not name {p}");
    }
    assert!(mailha::alert::spool::DEFAULT_DIR.starts_with("/var/lib/mailha/"));
}

#[test]
fn lintian_finds_no_error_and_every_warning_is_overridden_with_a_reason() {
    let deb = deb_path();
    if !ready("lintian", &[&deb, Path::new("/usr/bin/lintian")], false) {
        return;
    }
    let o = support::common::run_with_deadline(
        std::process::Command::new("lintian")
            .args(["--fail-on", "error,warning"])
            .arg(&deb),
        std::time::Duration::from_secs(300),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "lintian:\n{out}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "{out}"
    );
    let overrides =
        std::fs::read_to_string(mailha_pkg::repo().join("dist/debian/mailha.lintian-overrides"))
            .unwrap();
    let lines: Vec<&str> = overrides.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("mailha:") {
            assert!(
                i > 0 && lines[i - 1].starts_with("# "),
                "override without a one-line reason above it: {l}"
            );
        }
    }
}

/// `rpm -qp --dump`: path size mtime digest mode owner group config doc
/// rdev symlink.
fn rpm_rows(rpm: &Path) -> Vec<Row> {
    let dump = text(run(&["rpm", "-qp", "--dump", rpm.to_str().unwrap()]));
    let mut v: Vec<Row> = dump
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!((f[5], f[6]), ("root", "root"), "{l}");
            let mode = u32::from_str_radix(f[4], 8).unwrap();
            Row {
                path: f[0].to_string(),
                mode: mode & 0o7777,
                link: (mode & 0o170000 == 0o120000).then(|| f[10].to_string()),
            }
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_rpm_lists_the_same_files_as_the_deb_and_mailha_install() {
    let (rpm, deb) = (rpm_path(), deb_path());
    if !ready(
        "the .rpm's file list",
        &[&rpm, &deb, Path::new("/usr/bin/rpm")],
        false,
    ) {
        return;
    }
    let rows = rpm_rows(&rpm);
    assert_eq!(rows, plan_rows(), "the .rpm and `mailha install` differ");
    let deb_ours: Vec<Row> = deb_rows(&deb)
        .into_iter()
        .filter(|r| !DEBIAN_ONLY.contains(&r.path.as_str()))
        .collect();
    assert_eq!(rows, deb_ours, "the .rpm and the .deb differ");
    // `rpm -qlp` lists the same paths.
    let listed = text(run(&["rpm", "-qlp", rpm.to_str().unwrap()]));
    let mut paths: Vec<&str> = listed.lines().collect();
    paths.sort();
    let plan: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, plan);

    let r = rpm.to_str().unwrap();
    let requires = text(run(&["rpm", "-qp", "--requires", r]));
    for dep in mailha_pkg::rpm::REQUIRES {
        assert!(
            requires.lines().any(|l| l.trim() == *dep),
            "{dep}: {requires}"
        );
    }
    let scripts = text(run(&["rpm", "-qp", "--scripts", r]));
    assert!(scripts.contains("mailha package may-remove"), "{scripts}");
    assert!(scripts.contains("mailha package configure"), "{scripts}");
    for line in scripts.lines() {
        assert!(!line_starts_or_stops(line), "rpm scriptlet: {line}");
    }
    let config = text(run(&["rpm", "-qcp", r]));
    assert_eq!(config.trim(), "/etc/init.d/mailha-lease");
}
