#!/usr/bin/env bash
# Stop duration of one storage resource whose device is healthy, returns
# EIO, or hangs, for ocf:mailha:storage and ocf:heartbeat:Filesystem on the
# same faults. Root. The device: a loop device on a FUSE pass-through of an
# ext4 image (`mailha-lab fusedisk`, switched ok|eio|hang); each trial runs
# in its own private mount namespace with a user of the mount (a writer
# that fsyncs every 100 ms), then times `stop` with a Pacemaker-style
# timeout in OCF_RESKEY_CRM_meta_timeout. A stop still running 10 s after
# its timeout is reported as hung (then released: the path goes to EIO).
#
# usage: bench/storage.sh [RUNS=10] [STOP_TIMEOUT_S=20]
# env:   MAILHA_BIN (default target/debug/mailha), MAILHA_LAB_BIN (default
#        target/debug/mailha-lab, for its fusedisk), STOP_LOG (keep the
#        agents' stop output there), MODES (default "ok eio hang")
set -euo pipefail
runs=${1:-10}
T=${2:-20}
bin=$(realpath "${MAILHA_BIN:-target/debug/mailha}")
lab=$(realpath "${MAILHA_LAB_BIN:-target/debug/mailha-lab}")
fs_ra=/usr/lib/ocf/resource.d/heartbeat/Filesystem
[ "$(id -u)" = 0 ] || { echo "bench/storage.sh: root only" >&2; exit 2; }
[ -x "$fs_ra" ] || { echo "bench/storage.sh: $fs_ra missing (resource-agents)" >&2; exit 2; }

work=$(mktemp -d /var/tmp/mailha-bench-storage.XXXXXX)
fdpid=""
loop=""
cleanup() {
    [ -n "${STOP_LOG:-}" ] && cp "$work/stop.log" "$STOP_LOG" 2>/dev/null
    echo eio >"$work/mode" 2>/dev/null || true
    sleep 0.3
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null || true
    [ -n "$fdpid" ] && kill "$fdpid" 2>/dev/null || true
    sleep 0.3
    rm -rf "$work"
}
trap cleanup EXIT

# No MMP here: an unclean umount (EIO) would make every next mount wait
# for the MMP interval; the stop path is what is measured.
truncate -s 256M "$work/disk.img"
mkfs.ext4 -q -F "$work/disk.img"
echo ok >"$work/mode"
"$lab" fusedisk --image "$work/disk.img" --mount "$work/fuse" \
    --mode-file "$work/mode" >"$work/fusedisk.log" 2>&1 &
fdpid=$!
for _ in $(seq 50); do
    nsenter -t "$fdpid" -m test -e "$work/fuse/disk.img" 2>/dev/null && break
    sleep 0.1
done
loop=$(nsenter -t "$fdpid" -m losetup -f --show --direct-io=on "$work/fuse/disk.img")
mkdir -p "$work/agents" "$work/mnt"
ln -s "$bin" "$work/agents/storage"

export OCF_ROOT=/usr/lib/ocf
export OCF_RESKEY_device="$loop" OCF_RESKEY_directory="$work/mnt" OCF_RESKEY_fstype=ext4
export OCF_RESKEY_CRM_meta_timeout=$((T * 1000))

# One trial: prints "rc ms" or "hung ms" (ms until the release let it end).
trial() {
    local agent=$1 mode=$2
    rm -f "$work/result" "$work/started"
    echo ok >"$work/mode"
    sleep 0.1
    unshare -m --propagation private bash -c '
        agent=$1; mode=$2; work=$3
        "$agent" start >/dev/null 2>&1 || { echo "start-failed 0" >"$work/result"; exit; }
        (cd "$work/mnt" && while :; do echo x >>f; sync f 2>/dev/null; sleep 0.1; done) &
        w=$!
        sleep 0.5
        echo "$mode" >"$work/mode"
        sleep 0.3
        s=$(date +%s%N)
        echo "== $agent $mode" >>"$work/stop.log"
        "$agent" stop >>"$work/stop.log" 2>&1 && rc=0 || rc=$?
        e=$(date +%s%N)
        ls /sys/fs/ext4 >>"$work/stop.log"
        echo "$rc $(( (e - s) / 1000000 ))" >"$work/result"
        kill -9 "$w" 2>/dev/null
        wait 2>/dev/null
    ' _ "$agent" "$mode" "$work" &
    local ns=$!
    local t0
    t0=$(date +%s%N)
    while [ ! -e "$work/result" ] && [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt $((T + 12)) ]; do
        sleep 0.1
    done
    if [ -e "$work/result" ]; then
        cat "$work/result"
    else
        echo eio >"$work/mode"
        while [ ! -e "$work/result" ]; do sleep 0.1; done
        echo "hung $(awk '{print $2}' "$work/result")"
    fi
    echo eio >"$work/mode"
    wait "$ns" 2>/dev/null || true
    echo ok >"$work/mode"
}

stats() { # "rc ms" lines -> median max, and the rc/hung tally
    sort -n -k2 | awk '{ms[NR]=$2; tag[$1]++} END {
        m = (NR % 2) ? ms[(NR+1)/2] : (ms[NR/2] + ms[NR/2+1]) / 2;
        t = ""; for (k in tag) t = t k "x" tag[k] " ";
        printf "median %6d ms  max %6d ms  (%s)\n", m, ms[NR], t }'
}

echo "stop of one mount, $runs runs each, stop timeout ${T}s (rc 0 = released; hung = still running ${T}+12 s after the stop began)"
for mode in ${MODES:-ok eio hang}; do
    for agent in "$work/agents/storage" "$fs_ra"; do
        name=$([ "$agent" = "$fs_ra" ] && echo "ocf:heartbeat:Filesystem" || echo "ocf:mailha:storage")
        for _ in $(seq "$runs"); do trial "$agent" "$mode"; done >"$work/r"
        printf "%-5s %-25s " "$mode" "$name"
        stats <"$work/r"
    done
done
