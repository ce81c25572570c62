//! The open-source stack: MariaDB, memcached, Postfix, Dovecot, with nginx
//! and php-fpm for webmail available but off unless enabled. Paths and
//! units are Debian 12's: where systemd runs, the agent runs each daemon
//! by its unit (with the package's sandboxing); elsewhere by the argv
//! below.

use super::{Catalog, argv, probe};
use crate::config::raw::{RawProbe, RawService};

pub fn catalog() -> Catalog {
    let mut c = Catalog::default();
    let mut add = |name: &str, s: RawService| {
        c.services.insert(name.to_string(), s);
    };
    add(
        "mysql",
        RawService {
            enabled: Some(true),
            unit: Some("mariadb.service".into()),
            // --nowatch: the cluster is the supervisor. mysqld_safe's own
            // restart loop would hide a crash from Pacemaker, and the
            // daemons depending on MySQL would not be restarted.
            start: argv(&["/usr/bin/mysqld_safe", "--syslog", "--nowatch"]),
            stop: argv(&[
                "/usr/bin/mysqladmin",
                "--defaults-file=/etc/mysql/debian.cnf",
                "shutdown",
            ]),
            pid_file: Some("/run/mysqld/mysqld.pid".into()),
            executable: Some("/usr/sbin/mariadbd".into()),
            probe: Some(RawProbe {
                kind: Some("mysql".into()),
                socket: Some("/run/mysqld/mysqld.sock".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    add(
        "memcached",
        RawService {
            enabled: Some(true),
            unit: Some("memcached.service".into()),
            start: argv(&[
                "/usr/bin/memcached",
                "-d",
                "-u",
                "memcache",
                "-l",
                "127.0.0.1",
                "-P",
                "/run/memcached/memcached.pid",
            ]),
            pid_file: Some("/run/memcached/memcached.pid".into()),
            executable: Some("/usr/bin/memcached".into()),
            probe: probe("memcached", 11211),
            ..Default::default()
        },
    );
    add(
        "postfix",
        RawService {
            enabled: Some(true),
            // Debian's postfix.service is a oneshot wrapper (ExecStart=/bin/true)
            // that pulls this instance in: the master runs here.
            unit: Some("postfix@-.service".into()),
            start: argv(&["/usr/sbin/postfix", "start"]),
            stop: argv(&["/usr/sbin/postfix", "stop"]),
            pid_file: Some("/var/spool/postfix/pid/master.pid".into()),
            executable: Some("/usr/lib/postfix/sbin/master".into()),
            probe: probe("smtp", 25),
            depends_on: Some(vec!["mysql".into(), "memcached".into()]),
            ..Default::default()
        },
    );
    add(
        "dovecot",
        RawService {
            enabled: Some(true),
            unit: Some("dovecot.service".into()),
            start: argv(&["/usr/sbin/dovecot"]),
            stop: argv(&["/usr/bin/doveadm", "stop"]),
            pid_file: Some("/run/dovecot/master.pid".into()),
            executable: Some("/usr/sbin/dovecot".into()),
            probe: probe("imap", 143),
            depends_on: Some(vec!["mysql".into()]),
            // Dovecot's dotlocks name their host: one a dead node left is
            // waited out (2 minutes for the uidlist and keywords, 30 s for
            // the subscriptions: its pid cannot be checked from here), and
            // until then that mailbox cannot be opened.
            stale_locks: Some(vec![
                "dovecot-uidlist.lock".into(),
                "dovecot-keywords.lock".into(),
                "subscriptions.lock".into(),
            ]),
            ..Default::default()
        },
    );
    add(
        "php-fpm",
        RawService {
            enabled: Some(false),
            unit: Some("php8.2-fpm.service".into()),
            start: argv(&["/usr/sbin/php-fpm8.2", "--daemonize"]),
            pid_file: Some("/run/php/php8.2-fpm.pid".into()),
            executable: Some("/usr/sbin/php-fpm8.2".into()),
            depends_on: Some(vec!["mysql".into(), "memcached".into()]),
            ..Default::default()
        },
    );
    add(
        "nginx",
        RawService {
            enabled: Some(false),
            unit: Some("nginx.service".into()),
            start: argv(&["/usr/sbin/nginx"]),
            stop: argv(&["/usr/sbin/nginx", "-s", "quit"]),
            pid_file: Some("/run/nginx.pid".into()),
            executable: Some("/usr/sbin/nginx".into()),
            probe: Some(RawProbe {
                kind: Some("http".into()),
                port: Some(80),
                path: Some("/".into()),
                ..Default::default()
            }),
            depends_on: Some(vec!["php-fpm".into()]),
            ..Default::default()
        },
    );
    c
}
