//! How a machine starts its lease keeper before the cluster stack, as sbd
//! is started before corosync: `mailha install` puts both boot files in
//! place (constant text: nothing from a config is written into them), and
//! `mailha setup` starts the keeper, and on systemd makes corosync want it
//! and refuse to start without it, when the config fences by lease.

/// The SysV init script (`service mailha-lease start|stop|status`).
pub const INIT_SCRIPT_PATH: &str = "/etc/init.d/mailha-lease";

/// The systemd unit.
pub const UNIT_PATH: &str = "/usr/lib/systemd/system/mailha-lease.service";

/// The drop-in that ties corosync to the keeper on systemd: corosync (so
/// Pacemaker, which needs it) never runs on this machine without its guard.
pub const COROSYNC_DROPIN_PATH: &str = "/etc/systemd/system/corosync.service.d/mailha-lease.conf";

pub const INIT_SCRIPT: &str = r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          mailha-lease
# Required-Start:    $local_fs $remote_fs
# Required-Stop:     $local_fs $remote_fs
# X-Start-Before:    corosync pacemaker
# X-Stop-After:      corosync pacemaker
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: mailha lease keeper, the split-brain guard
### END INIT INFO
# Installed by `mailha install`. The keeper must run before corosync: it
# holds this node's slot on the lease device and pets the watchdog.
# Start returns once the keeper answers on its control socket (a lease on
# NFS is mounted first: up to 30 s for mount, then the open).
BIN=/usr/sbin/mailha
PIDFILE=/run/mailha-lease.pid
LOG=/var/log/mailha-lease-keeper.log

case "$1" in
start)
    if timeout 5 "$BIN" lease status >/dev/null 2>&1; then
        exit 0
    fi
    start-stop-daemon --start --background --make-pidfile --pidfile "$PIDFILE" \
        --output "$LOG" --exec "$BIN" -- lease keeper || exit 1
    i=0
    while [ "$i" -lt 180 ]; do
        if timeout 5 "$BIN" lease status >/dev/null 2>&1; then
            exit 0
        fi
        sleep 0.25
        i=$((i + 1))
    done
    echo "mailha-lease: the keeper does not answer after 45 s; see $LOG" >&2
    exit 1
    ;;
stop)
    # A keeper that holds the lease exits leaving the watchdog armed (the
    # data may be mounted): a new keeper started within the watchdog's
    # timeout resumes holding (restart, upgrade); otherwise the machine is
    # reset. Stop the cluster stack first to stop for good.
    # By pid file and process name, not --exec: after an upgrade the
    # running keeper's executable reads "/usr/sbin/mailha (deleted)" and
    # --exec would find nothing to stop.
    start-stop-daemon --stop --pidfile "$PIDFILE" --name mailha \
        --retry TERM/10/KILL/5 --remove-pidfile
    [ $? -le 1 ] || exit 1
    # A keeper started otherwise (by hand, without this pid file) says
    # its pid itself: only root's keeper answers the status.
    pid=$(timeout 5 "$BIN" lease status 2>/dev/null |
        sed -n 's/^ *"pid": *\([0-9][0-9]*\),*$/\1/p')
    if [ -n "$pid" ]; then
        start-stop-daemon --stop --pid "$pid" --name mailha --retry TERM/10/KILL/5
        [ $? -le 1 ] || exit 1
    fi
    # Return only once no keeper answers any more (its socket vanishes
    # with it).
    i=0
    while timeout 5 "$BIN" lease status >/dev/null 2>&1; do
        if [ "$i" -ge 60 ]; then
            echo "mailha-lease: a keeper still answers after 15 s" >&2
            exit 1
        fi
        sleep 0.25
        i=$((i + 1))
    done
    ;;
status)
    exec timeout 5 "$BIN" lease status
    ;;
restart | force-reload)
    "$0" stop && "$0" start
    ;;
*)
    echo "usage: $0 start|stop|status|restart" >&2
    exit 3
    ;;
esac
"#;

pub const UNIT: &str = "[Unit]
Description=mailha lease keeper, the split-brain guard
Documentation=file:/usr/share/doc/mailha/lease.md
Before=corosync.service pacemaker.service
# A lease on NFS is mounted by the keeper itself, at its start.
Wants=network-online.target
After=local-fs.target network-online.target

[Service]
# Ready once it answers on its socket (sd_notify), so corosync, ordered
# after it, never starts before its guard.
Type=notify
NotifyAccess=all
# systemd-inhibit (below) clears NOTIFY_SOCKET for the program it runs
# from systemd 256 on (Debian 13): the keeper is told the system manager's
# socket (a fixed path) and uses it when NOTIFY_SOCKET is gone. Without
# this, the start never completes there (seen in the lab's trixie nodes).
Environment=MAILHA_NOTIFY_SOCKET=/run/systemd/notify
# A suspended machine's watchdog sleeps with it while the peer takes over:
# the keeper blocks suspend for as long as it runs (docs/lease.md,
# \"Suspend\").
ExecStart=/usr/bin/systemd-inhibit --what=sleep --mode=block --who=mailha-lease --why=\"the lease keeper guards the shared storage\" /usr/sbin/mailha lease keeper
# A keeper that fenced this node must not come back by itself: the
# watchdog resets the machine, and the boot starts a fresh keeper.
Restart=no

[Install]
WantedBy=multi-user.target
";

/// Wants=, not Requires=: with Requires=, `systemctl restart mailha-lease`
/// (an upgrade) would restart corosync and Pacemaker too, and move the
/// mail; a keeper restart must cost nothing (a new keeper resumes holding
/// from its slot). The stack still never starts without its guard: the
/// keeper is started first, and corosync's start fails unless it answers.
pub const COROSYNC_DROPIN: &str =
    "# Written by `mailha setup`: the cluster stack never starts without its guard.
[Unit]
Wants=mailha-lease.service
After=mailha-lease.service

[Service]
ExecStartPre=/usr/sbin/mailha lease status
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_script_is_ordered_before_the_stack_and_waits_for_the_keeper() {
        assert!(INIT_SCRIPT.starts_with("#!/bin/sh\n"));
        assert!(INIT_SCRIPT.contains("# X-Start-Before:    corosync pacemaker"));
        assert!(INIT_SCRIPT.contains("lease status"));
        assert!(UNIT.contains("Before=corosync.service pacemaker.service"));
        assert!(COROSYNC_DROPIN.contains("Wants=mailha-lease.service"));
        assert!(COROSYNC_DROPIN.contains("ExecStartPre=/usr/sbin/mailha lease status"));
        // The keeper mounts a lease on NFS itself: the network first.
        assert!(UNIT.contains("After=local-fs.target network-online.target"));
        assert!(INIT_SCRIPT.contains("$remote_fs"));
    }

    #[test]
    fn a_keeper_restart_restarts_nothing_else_and_suspend_is_blocked() {
        // Requires= propagates a restart of the keeper to corosync and
        // Pacemaker (systemd.unit(5)): an upgrade would move the mail.
        assert!(!COROSYNC_DROPIN.contains("Requires="), "{COROSYNC_DROPIN}");
        assert!(!COROSYNC_DROPIN.contains("BindsTo="), "{COROSYNC_DROPIN}");
        assert!(!COROSYNC_DROPIN.contains("PartOf="), "{COROSYNC_DROPIN}");
        // Ready only once it answers; suspend blocked while it runs.
        assert!(UNIT.contains("Type=notify\nNotifyAccess=all"));
        // systemd-inhibit clears NOTIFY_SOCKET (systemd >= 256).
        assert!(UNIT.contains("Environment=MAILHA_NOTIFY_SOCKET=/run/systemd/notify\n"));
        let exec = UNIT.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
        assert!(
            exec.starts_with("ExecStart=/usr/bin/systemd-inhibit --what=sleep --mode=block ")
                && exec.ends_with(" /usr/sbin/mailha lease keeper"),
            "{exec}"
        );
    }

    #[test]
    fn the_init_script_is_valid_sh() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mailha-lease");
        std::fs::write(&p, INIT_SCRIPT).unwrap();
        let o = std::process::Command::new("sh")
            .arg("-n")
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}
