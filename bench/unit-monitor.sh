#!/usr/bin/env bash
# Monitor cost of ocf:mailha:service in unit mode against argv mode, on the
# same daemon: Debian's memcached.service in a throwaway machine booted by
# systemd-nspawn from this host's own tree (as tests/service_unit.rs boots
# it: overlay over /, tmpfs upper, its own cgroups, pure cgroup v2, a
# network of its own), started by the agent; then benches/monitor.rs inside
# it over two cases with the same executable and probe: unit=memcached.service
# (the unit's cgroup) and pid_file=/run/memcached/memcached.pid (argv
# mode). Per case: processes created by one monitor (strace), median wall
# and CPU time of N. The machine is torn down on exit. As root.
#   MAILHA_BENCH_N=200 bench/unit-monitor.sh
#   MAILHA_BIN=target/debug/mailha bench/unit-monitor.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(mailha_bin)
bench=$(cargo bench -p mailha --bench monitor --no-run --message-format=json 2>/dev/null |
    grep '"name":"monitor"' | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bench" ] || { echo "could not build benches/monitor.rs" >&2; exit 1; }

d=$(mktemp -d /tmp/mailha-unit-bench-XXXXXX)
chmod 0755 "$d"
name=$(basename "$d")
cgroups=()
for h in $(awk '$0 ~ / - cgroup2? / {print $5}' /proc/self/mountinfo); do
    cgroups+=("$h/$name")
done
pid1=
nspawn=
v2=$(awk '$0 ~ / - cgroup2 / {print $5}' /proc/self/mountinfo | head -1)/$name
cleanup() {
    # Only what this script started: everything in the machine's own cgroup
    # (nspawn and the machine), killed at once.
    [ -f "$v2/cgroup.kill" ] && echo 1 >"$v2/cgroup.kill"
    if [ -n "$nspawn" ]; then
        for _ in $(seq 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$nspawn" 2>/dev/null || true
    fi
    for _ in $(seq 100); do grep -qx 'populated 1' "$v2/cgroup.events" 2>/dev/null || break; sleep 0.1; done
    for m in "$d/root" "$d/layer"; do
        for _ in $(seq 50); do mountpoint -q "$m" || break; umount "$m" 2>/dev/null || sleep 0.1; done
    done
    for c in "${cgroups[@]}"; do
        [ -d "$c" ] || continue
        for _ in $(seq 100); do
            find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
            [ -d "$c" ] || break
            sleep 0.1
        done
    done
    rm -rf "$d"
}
trap cleanup EXIT

mkdir -p "$d/layer" "$d/root"
mount -t tmpfs -o mode=0755,size=512m mailha-unit-bench-layer "$d/layer"
mkdir -p "$d/layer/upper" "$d/layer/work"
mount -t overlay -o "lowerdir=/,upperdir=$d/layer/upper,workdir=$d/layer/work" mailha-unit-bench-root "$d/root"
r=$d/root
rm -f "$r"/etc/systemd/system/*.wants/*
ln -sfn /dev/null "$r/etc/systemd/system/run-rpc_pipefs.mount"
echo mailha-unit-bench >"$r/etc/hostname"
: >"$r/etc/machine-id"
mkdir -p "$r/opt/mailha-bench"
: >"$r/opt/mailha-bench/mailha"
: >"$r/opt/mailha-bench/monitor"
ln -s mailha "$r/opt/mailha-bench/service"
common='"name": "memcached", "executable": "/usr/bin/memcached", "probe": "memcached", "probe_port": "11211"'
cat >"$r/opt/mailha-bench/cases.json" <<EOF
[
  {"label": "unit mode (cgroup)", "agent": "/opt/mailha-bench/service",
   "params": {$common, "unit": "memcached.service"}},
  {"label": "argv mode (pid file)", "agent": "/opt/mailha-bench/service",
   "params": {$common, "pid_file": "/run/memcached/memcached.pid",
              "start": "[\"/usr/bin/memcached\"]"}}
]
EOF
for c in "${cgroups[@]}"; do
    mkdir -p "$c"
    h=$(dirname "$c")
    if [ -f "$h/cpuset.cpus" ]; then
        cat "$h/cpuset.cpus" >"$c/cpuset.cpus"
        cat "$h/cpuset.mems" >"$c/cpuset.mems"
    fi
done
(
    for c in "${cgroups[@]}"; do echo 0 >"$c/cgroup.procs"; done
    exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --quiet --register=no --keep-unit \
        --private-network --boot --machine=mailha-unit-bench --resolv-conf=off --timezone=off \
        --link-journal=no --console=read-only --directory="$r" \
        --bind-ro="$bin:/opt/mailha-bench/mailha" --bind-ro="$bench:/opt/mailha-bench/monitor" \
        >"$d/console.log" 2>&1 </dev/null
) &
nspawn=$!
# Ended by cleanup (its cgroup killed): no job notice for it.
disown "$nspawn"
# The machine's PID 1: nspawn's child that is PID 1 of its own PID
# namespace (nspawn's first child is a helper that exits).
for _ in $(seq 200); do
    for c in $(cat "/proc/$nspawn/task/$nspawn/children" 2>/dev/null || true); do
        if awk '/^NSpid:/ {exit !(NF >= 3 && $NF == 1)}' "/proc/$c/status" 2>/dev/null; then
            pid1=$c
        fi
    done
    [ -n "$pid1" ] && break
    sleep 0.05
done
[ -n "$pid1" ] || { echo "systemd-nspawn started no machine: $(tail -5 "$d/console.log")" >&2; exit 1; }
inside() { timeout 120 nsenter -t "$pid1" -a -- "$@"; }
for _ in $(seq 300); do
    case $(inside systemctl is-system-running 2>/dev/null || true) in running | degraded) break ;; esac
    sleep 0.1
done
inside env -i PATH=/usr/bin:/bin OCF_RESKEY_name=memcached OCF_RESKEY_unit=memcached.service \
    OCF_RESKEY_executable=/usr/bin/memcached OCF_RESKEY_probe=memcached OCF_RESKEY_probe_port=11211 \
    /opt/mailha-bench/service start
echo "== memcached.service in a booted machine, N=${MAILHA_BENCH_N:-100}, agent $bin"
timeout 1200 nsenter -t "$pid1" -a -- env MAILHA_BENCH_N="${MAILHA_BENCH_N:-100}" \
    MAILHA_BENCH_CASES=/opt/mailha-bench/cases.json /opt/mailha-bench/monitor
