# Sourced by the bench scripts: which mailha and which lab to run, and a
# median.
# MAILHA_BIN=/path/to/mailha skips the build (e.g. a debug build);
# otherwise the shipped binary from scripts/build-release.sh.
# MAILHA_LAB_BIN=/path/to/mailha-lab skips the lab's build (release, glibc:
# test equipment, never shipped).
mailha_bin() {
    if [ -n "${MAILHA_BIN:-}" ]; then
        echo "$MAILHA_BIN"
    else
        scripts/build-release.sh -q
    fi
}
lab_bin() {
    if [ -n "${MAILHA_LAB_BIN:-}" ]; then
        echo "$MAILHA_LAB_BIN"
    else
        cargo build --release -q -p mailha-lab >&2
        t=${CARGO_TARGET_DIR:-target}
        case $t in /*) ;; *) t=$PWD/$t ;; esac
        echo "$t/release/mailha-lab"
    fi
}
# A long run's own copy of the lab binary in DIR (its path printed): the
# lab's long-lived helpers and the run itself outlive a rebuild meanwhile.
#   lab=$(lab_copy "$(mktemp -d)")
lab_copy() {
    cp "$(lab_bin)" "$1/mailha-lab"
    echo "$1/mailha-lab"
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m}'; }

# The lease's I/O on node1's lease loop device (/sys/block/*/stat) and
# node1's keeper's CPU over WINDOW seconds, per renewal of RENEW seconds.
#   lease_io_and_cpu WINDOW RENEW
lease_io_and_cpu() {
    local window=$1 renew=$2
    local state=${MAILHA_LAB_STATE_DIR:-/run/mailha-lab}/state.json
    local dev holder ns keeper
    dev=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print([l["device"] for l in s["loops"] if l["node"]=="node1" and l["image"].endswith("lease.img")][0])' "$state")
    holder=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print([h["pid"] for h in s["nodes"] if h["node"]=="node1"][0])' "$state")
    ns=$(readlink "/proc/$holder/ns/pid")
    keeper=
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
        if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q 'lease keeper'; then keeper=${p#/proc/}; fi
    done
    local b=/sys/block/$(basename "$dev")/stat
    read -r r0 _ rs0 _ w0 _ ws0 _ <"$b"
    local c0; c0=$(awk '{print $14+$15}' "/proc/$keeper/stat")
    sleep "$window"
    read -r r1 _ rs1 _ w1 _ ws1 _ <"$b"
    local c1; c1=$(awk '{print $14+$15}' "/proc/$keeper/stat")
    python3 - "$r0" "$r1" "$w0" "$w1" "$rs0" "$rs1" "$ws0" "$ws1" "$c0" "$c1" "$window" "$(getconf CLK_TCK)" "$renew" <<'PY'
import sys
r0, r1, w0, w1, rs0, rs1, ws0, ws1, c0, c1, win, hz = map(int, sys.argv[1:13])
renewals = win / float(sys.argv[13])
print(f"lease I/O on node1 over {win}s: {r1-r0} reads, {w1-w0} writes "
      f"({(rs1-rs0)*512//1024} KiB read, {(ws1-ws0)*512//1024} KiB written): "
      f"{(r1-r0)/renewals:.2f} reads + {(w1-w0)/renewals:.2f} writes per renewal")
print(f"keeper CPU: {(c1-c0)/hz:.2f} s in {win}s = {(c1-c0)/hz*3600/win:.1f} s per hour")
PY
}

# One line for the drill JSON lines in FILE (recovered_s median / max, ok,
# lost, double_mounts), then each run's phases, under LABEL.
#   drill_summary "fast     kill-node active" FILE
drill_summary() {
    python3 - "$1" "$2" <<'PY'
import json, statistics, sys
label, path = sys.argv[1], sys.argv[2]
rs = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
rec = [r["recovered_s"] for r in rs if r.get("recovered_s") is not None]
print(f"{label}: runs {len(rs)}, ok {sum(r['ok'] for r in rs)}, "
      f"recovered_s median {statistics.median(rec) if rec else None} max {max(rec) if rec else None}, "
      f"lost {sum(r['lost'] for r in rs)}, double_mounts {sum(r['double_mounts'] for r in rs)}")
for r in rs:
    print("   ", r["recovered_s"], " ".join(f"{p['phase']}@{p['at_s']}" for p in r.get("phases", [])))
PY
}
