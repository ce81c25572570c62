//! The lab's eYou stand-in: an eYou-shaped tree whose services are the
//! real Debian daemons (the eYou suite is commercial and not available;
//! see docs/eyou-lab.md). `lab up --profile eyou` writes it into each
//! node under [`ROOT`]; mailha's `eyou` profile then discovers it exactly
//! as it would a real install, by parsing three files:
//!
//! | file | what it holds here |
//! |---|---|
//! | `opt/bin/eyou_mail` | a POSIX sh control script, `start\|stop\|watch <svc>`, one `PIDF_<SVC>=` line per service |
//! | `etc/em_init_config` | `ARRAY_START=( ... )`: only the services the stand-in really has |
//! | `web/conf/conf_global.php` | `EYOUM_VERSION`, marked as the stand-in's |
//!
//! Everything here is a compile-time constant: no config value reaches
//! the script. The script is generated from [`SERVICES`] so the
//! `PIDF_*` lines, `ARRAY_START` and the start/stop commands cannot
//! disagree.

use std::path::Path;

/// Where the tree lives inside each node (eYou's own default, and
/// mailha's default `services.eyou_root`).
pub const ROOT: &str = "/usr/local/eyou/mail";

/// The version the tree reports: plainly not a real eYou release.
pub const VERSION: &str = "standin-1";

/// One service of the stand-in: the eYou name, the real daemon behind
/// it, where that daemon writes its pid file, and how it is started and
/// stopped. `stop: None` means TERM to the pid in the pid file.
#[derive(Debug, Clone, Copy)]
pub struct StandIn {
    pub name: &'static str,
    /// The Debian daemon standing in, for people reading the script.
    pub daemon: &'static str,
    pub pid_file: &'static str,
    pub start: &'static [&'static str],
    pub stop: Option<&'static [&'static str]>,
}

/// The services the stand-in has. eYou names, real daemons:
/// - `mysql`: MariaDB. The pid file is the one the lab's MariaDB config
///   names; `--nowatch`: the cluster supervises, not mysqld_safe.
/// - `memcache_session`: memcached (eYou's session cache).
/// - `smtp`: Postfix. Its master writes its pid file into the queue,
///   which the lab keeps on the shared disk.
/// - `imap`: Dovecot (it also answers POP3; eYou's separate `pop`
///   daemon has no stand-in).
///
/// The other 23 services of the eYou graph (mproxy, gearman, the
/// delivery agents, the web stack, ...) have no open-source stand-in
/// here, so they are not in `ARRAY_START` and discovery turns them off.
pub const SERVICES: &[StandIn] = &[
    StandIn {
        name: "mysql",
        daemon: "MariaDB",
        pid_file: "/run/mysqld/mysqld.pid",
        start: &["/usr/bin/mysqld_safe", "--nowatch"],
        stop: Some(&[
            "/usr/bin/mysqladmin",
            "--defaults-file=/etc/mysql/debian.cnf",
            "shutdown",
        ]),
    },
    StandIn {
        name: "memcache_session",
        daemon: "memcached",
        pid_file: "/run/memcached/memcache_session.pid",
        start: &[
            "/usr/bin/memcached",
            "-d",
            "-u",
            "memcache",
            "-l",
            "127.0.0.1",
            "-p",
            "11211",
            "-P",
            "/run/memcached/memcache_session.pid",
        ],
        stop: None,
    },
    StandIn {
        name: "smtp",
        daemon: "Postfix",
        pid_file: "/srv/data/postfix/pid/master.pid",
        start: &["/usr/sbin/postfix", "start"],
        stop: Some(&["/usr/sbin/postfix", "stop"]),
    },
    StandIn {
        name: "imap",
        daemon: "Dovecot",
        pid_file: "/run/dovecot/master.pid",
        start: &["/usr/sbin/dovecot"],
        stop: Some(&["/usr/bin/doveadm", "stop"]),
    },
];

/// The tree's files: (path under [`ROOT`], content, mode).
pub fn files() -> Vec<(&'static str, String, u32)> {
    use mailha::profiles::eyou::{CONTROL_SCRIPT, GLOBAL_CONF, INIT_CONFIG};
    vec![
        (CONTROL_SCRIPT, control_script(), 0o755),
        (INIT_CONFIG, init_config(), 0o644),
        (GLOBAL_CONF, global_conf(), 0o644),
    ]
}

/// Writes the tree under `dir` (the eYou root as seen from here).
pub fn write(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (rel, text, mode) in files() {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// A word as sh reads it: bare when it is plain, else single-quoted.
fn sh_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._=-".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn sh_argv(argv: &[&str]) -> String {
    argv.iter()
        .map(|w| sh_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn pidf_var(name: &str) -> String {
    format!("PIDF_{}", name.to_ascii_uppercase())
}

/// `eyou_mail`: the control script. `start` and `stop` wait for the pid
/// file's process to appear or go (the original's start+watch and
/// stop+watch), within 20 s; `watch` tells whether it runs. Exit codes:
/// 0 done, 1 failed, 2 usage or unknown service.
pub fn control_script() -> String {
    let mut s = String::from(
        "#!/bin/sh
# eyou_mail: the mailha lab's STAND-IN for the eYou suite's control script
# (written by `mailha lab up --profile eyou`; see docs/eyou-lab.md).
# Shaped like eYou's: `eyou_mail start|stop|watch <service>`, one PIDF_*
# line per service. The services are the real Debian daemons.
# mailha never runs this file to learn anything: it parses the PIDF_*
# lines; the cluster runs `eyou_mail start|stop <service>`.

EYOU_MAIL_ROOT=/usr/local/eyou/mail
",
    );
    for svc in SERVICES {
        s.push_str(&format!(
            "{}={}\n",
            pidf_var(svc.name),
            sh_word(svc.pid_file)
        ));
    }
    s.push_str(
        "
usage() {
    echo \"usage: $0 start|stop|watch <service>\" >&2
    exit 2
}

# The pid in pid file $1 is a live process.
running() {
    pid=
    { read -r pid < \"$1\"; } 2>/dev/null
    [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null
}

# Waits up to 20 s for `running $1` to be $2 (yes/no).
wait_for() {
    i=0
    while [ $i -lt 100 ]; do
        if running \"$1\"; then now=yes; else now=no; fi
        [ \"$now\" = \"$2\" ] && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

[ $# -eq 2 ] || usage
action=$1
svc=$2

case \"$svc\" in
",
    );
    for svc in SERVICES {
        s.push_str(&format!(
            "    {}) pidf=${} ;;\n",
            svc.name,
            pidf_var(svc.name)
        ));
    }
    s.push_str(
        "    *) echo \"eyou_mail: no service $svc in this install\" >&2; exit 2 ;;
esac

do_start() {
    case \"$svc\" in
",
    );
    for svc in SERVICES {
        s.push_str(&format!(
            "        {}) {} ;;  # {}\n",
            svc.name,
            sh_argv(svc.start),
            svc.daemon
        ));
    }
    s.push_str(
        "    esac
}

do_stop() {
    case \"$svc\" in
",
    );
    for svc in SERVICES {
        let cmd = match svc.stop {
            Some(argv) => sh_argv(argv),
            None => "kill -TERM \"$pid\"".to_string(),
        };
        s.push_str(&format!("        {}) {cmd} ;;\n", svc.name));
    }
    s.push_str(
        "    esac
}

case \"$action\" in
start)
    running \"$pidf\" && exit 0
    do_start || exit 1
    wait_for \"$pidf\" yes || { echo \"eyou_mail: $svc did not start\" >&2; exit 1; }
    ;;
stop)
    running \"$pidf\" || exit 0
    do_stop || exit 1
    wait_for \"$pidf\" no || { echo \"eyou_mail: $svc did not stop\" >&2; exit 1; }
    ;;
watch)
    if running \"$pidf\"; then
        echo \"$svc running (pid $pid)\"
    else
        echo \"$svc not running\"
        exit 1
    fi
    ;;
*)
    usage
    ;;
esac
exit 0
",
    );
    s
}

/// `em_init_config`: the services this install starts.
pub fn init_config() -> String {
    let mut s = String::from(
        "# em_init_config: the mailha lab's eYou STAND-IN (see docs/eyou-lab.md).
# The services this install runs; every other eYou service is not
# installed here.
ARRAY_START=(
",
    );
    for svc in SERVICES {
        s.push_str(&format!("    {}\n", svc.name));
    }
    s.push_str(")\n");
    s
}

/// `conf_global.php`: only the version is read.
pub fn global_conf() -> String {
    format!(
        "<?php
// conf_global.php: the mailha lab's eYou STAND-IN (see docs/eyou-lab.md).
define('EYOUM_VERSION', '{VERSION}');
define('EYOUM_ROOT', '{ROOT}');
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailha::profiles::eyou;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write(d.path()).unwrap();
        d
    }

    #[test]
    fn discovery_finds_exactly_the_stand_ins_services_pid_files_and_version() {
        let d = tree();
        let found = eyou::discover(d.path()).unwrap().expect("a tree");
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        assert_eq!(
            found.started,
            Some(names.iter().map(|s| s.to_string()).collect())
        );
        assert_eq!(found.pid_files.len(), SERVICES.len());
        for svc in SERVICES {
            assert_eq!(found.pid_files[svc.name], svc.pid_file, "{}", svc.name);
        }
        assert_eq!(found.version.as_deref(), Some(VERSION));
    }

    #[test]
    fn every_stand_in_is_a_service_of_the_eyou_graph() {
        for svc in SERVICES {
            assert!(
                eyou::GRAPH.iter().any(|(n, _)| *n == svc.name),
                "{}",
                svc.name
            );
        }
    }

    fn run(argv: &[&str]) -> mailha::exec::Output {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        mailha::exec::run(&argv, &[], None, std::time::Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn the_control_script_is_valid_posix_sh() {
        let d = tree();
        let script = d.path().join(eyou::CONTROL_SCRIPT);
        let o = run(&["/bin/sh", "-n", script.to_str().unwrap()]);
        assert!(o.success(), "{}", o.stderr);
    }

    #[test]
    fn the_control_script_refuses_unknown_services_and_actions_without_running_anything() {
        let d = tree();
        let script = d.path().join(eyou::CONTROL_SCRIPT);
        let s = script.to_str().unwrap();
        let o = run(&[s, "start", "gearman"]);
        assert_eq!(o.code, Some(2));
        assert!(o.stderr.contains("no service gearman"), "{}", o.stderr);
        assert_eq!(run(&[s, "restart", "smtp"]).code, Some(2));
        assert_eq!(run(&[s, "start"]).code, Some(2));
    }

    #[test]
    fn words_are_quoted_only_when_sh_would_read_them_otherwise() {
        assert_eq!(sh_word("/usr/sbin/postfix"), "/usr/sbin/postfix");
        assert_eq!(
            sh_word("--defaults-file=/etc/x.cnf"),
            "--defaults-file=/etc/x.cnf"
        );
        assert_eq!(sh_word("a b"), "'a b'");
        assert_eq!(sh_word("it's"), r"'it'\''s'");
        assert_eq!(sh_word("$HOME"), "'$HOME'");
    }
}
