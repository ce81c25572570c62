//! How a machine starts its lease keeper before the cluster stack, as sbd
//! is started before corosync: `mailha install` puts both boot files in
//! place (constant text: nothing from a config is written into them), and
//! `mailha setup` starts the keeper, and on systemd makes corosync require
//! it, when the config fences by lease.

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
    # Stop the cluster stack first: a keeper that still holds the lease
    # exits leaving the watchdog armed (the data may be mounted), and the
    # machine is reset.
    start-stop-daemon --stop --pidfile "$PIDFILE" --exec "$BIN" \
        --retry TERM/10/KILL/5 --remove-pidfile
    [ $? -le 1 ] || exit 1
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
ExecStart=/usr/sbin/mailha lease keeper
# A keeper that fenced this node must not come back by itself: the
# watchdog resets the machine, and the boot starts a fresh keeper.
Restart=no

[Install]
WantedBy=multi-user.target
";

pub const COROSYNC_DROPIN: &str =
    "# Written by `mailha setup`: the cluster stack never runs without its guard.
[Unit]
Requires=mailha-lease.service
After=mailha-lease.service
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
        assert!(COROSYNC_DROPIN.contains("Requires=mailha-lease.service"));
        // The keeper mounts a lease on NFS itself: the network first.
        assert!(UNIT.contains("After=local-fs.target network-online.target"));
        assert!(INIT_SCRIPT.contains("$remote_fs"));
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
