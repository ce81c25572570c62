#!/usr/bin/env bash
# The fast lease timing (issue 16, item 3; docs/lease.md, "A fast timing"):
# io_timeout 100 ms and a 1 s watchdog instead of the lab's 250 ms and 2 s,
# so host_dead is 2.0 s instead of 4.5 s. Offered only if it does not fence
# spuriously, so first the proof run, then the gain. As root:
#  1. the lab up with lab/configs/postfix.toml at the fast numbers;
#  2. DURATION seconds (default 1800) of load on both nodes: two CPU
#     hogs each, O_DIRECT and fsynced writes on the shared data disk on the
#     node running the mail and on the node's own disk on the other, while
#     every 10 s both keepers' state and both emulated watchdogs' logs are
#     read: a self-fence, a watchdog reset or a fence in that time is
#     spurious (nothing failed);
#  3. the lease's I/O and the keeper's CPU at these numbers (WINDOW s);
#  4. `kill-node active` RUNS times (default 5): recovered_s median / max.
# TOKEN (e.g. 500ms) also shortens corosync's token (the lab's 1s): a
# node's death is then declared after token + consensus (1.2 x token).
# Corosync's own near misses during the load are counted: "Token has not
# been received" (logged at 75% of the token) and membership changes.
#   DURATION=1800 RUNS=5 WINDOW=60 bench/fast-timing.sh   (BIN= to use a given build)
#   TOKEN=500ms DURATION=1800 RUNS=5 bench/fast-timing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
if [ -z "${BIN:-}" ]; then
    BIN=$(scripts/build-release.sh)
fi
lab=$(lab_bin)
export MAILHA_BIN=$BIN
duration=${DURATION:-1800}
runs=${RUNS:-5}
window=${WINDOW:-60}
base=${MAILHA_LAB_BASE_DIR:-/var/lib/mailha-lab}
cfg=$(mktemp --suffix=.toml)
loads=()
cleanup() {
    for p in "${loads[@]}"; do kill "$p" 2>/dev/null || true; done
    timeout 120 "$lab" down >/dev/null || true
    rm -f "$cfg"
}
trap cleanup EXIT

sed -e 's/^io_timeout = "250ms"$/io_timeout = "100ms"/' \
    -e 's/^watchdog_timeout = "2s"$/watchdog_timeout = "1s"/' \
    lab/configs/postfix.toml >"$cfg"
grep -qx 'io_timeout = "100ms"' "$cfg" && grep -qx 'watchdog_timeout = "1s"' "$cfg" || {
    echo "fast-timing.sh: lab/configs/postfix.toml no longer has the numbers this script replaces" >&2
    exit 1
}
if [ -n "${TOKEN:-}" ]; then
    case $TOKEN in *[!0-9a-z]*) echo "fast-timing.sh: TOKEN=$TOKEN is no duration" >&2; exit 1 ;; esac
    sed -i "s/^token_timeout = \"1s\"\$/token_timeout = \"$TOKEN\"/" "$cfg"
    grep -qx "token_timeout = \"$TOKEN\"" "$cfg" || {
        echo "fast-timing.sh: lab/configs/postfix.toml no longer has token_timeout = \"1s\"" >&2
        exit 1
    }
fi

timeout 120 "$lab" down >/dev/null || true
timeout 300 "$lab" --config "$cfg" up --profile postfix >/dev/null
active=
for _ in $(seq 60); do
    active=$("$lab" exec node1 -- mailha status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("active_node") or "")' 2>/dev/null || true)
    [ -n "$active" ] && break
    sleep 1
done
[ -n "$active" ] || { echo "fast-timing.sh: the mail runs nowhere after lab up" >&2; exit 1; }
other=node1
[ "$active" = node1 ] && other=node2
echo "corosync: $("$lab" exec "$active" -- corosync-cmapctl -g runtime.config.totem.token 2>/dev/null), $("$lab" exec "$active" -- corosync-cmapctl -g runtime.config.totem.consensus 2>/dev/null)"
echo "fast timing: $("$lab" exec "$active" -- mailha lease status | python3 -c 'import json,sys; s=json.load(sys.stdin); print("host_dead", s["host_dead_ms"], "ms, renew", s["renew_ms"], "ms")'); the mail on $active"

# The load: each `lab exec` ends with its timeout; the loops inside end
# with theirs.
hog='while :; do :; done'
direct='while :; do dd if=/dev/zero of="$1" bs=1M count=256 oflag=direct status=none; dd if=/dev/zero of="$1.b" bs=1M count=128 conv=fsync status=none; done'
for n in node1 node2; do
    for _ in 1 2; do
        "$lab" exec "$n" --timeout "$((duration + 30))s" -- timeout "$duration" sh -c "$hog" >/dev/null 2>&1 &
        loads+=($!)
    done
done
"$lab" exec "$active" --timeout "$((duration + 30))s" -- timeout "$duration" sh -c "$direct" sh /srv/data/stress.img >/dev/null 2>&1 &
loads+=($!)
"$lab" exec "$other" --timeout "$((duration + 30))s" -- timeout "$duration" sh -c "$direct" sh /var/tmp/stress.img >/dev/null 2>&1 &
loads+=($!)

# Corosync's near misses and membership changes, counted in each node's
# journal from here on.
since=$(date -u '+%Y-%m-%d %H:%M:%S')
corosync_count() {
    local total=0 n c
    for n in node1 node2; do
        c=$("$lab" exec "$n" --timeout 30s -- journalctl -q --no-pager -u corosync --since "$since" 2>/dev/null | grep -c -e "$1" || true)
        total=$((total + c))
    done
    echo "$total"
}
spurious=0
end=$((SECONDS + duration))
wd0=$(cat "$base"/node{1,2}/watchdog.log 2>/dev/null | grep -c "not petted" || true)
while [ $SECONDS -lt $end ]; do
    sleep 10
    for n in node1 node2; do
        st=$("$lab" exec "$n" --timeout 10s -- mailha lease status 2>/dev/null || echo '{}')
        bad=$(python3 -c 'import json,sys
s=json.loads(sys.argv[1] or "{}")
print("" if s.get("role") in ("holding","idle") and s.get("self_fenced") is None else json.dumps({k: s.get(k) for k in ("role","self_fenced","renewal_age_ms","io_stalled_ms")}))' "$st")
        if [ -n "$bad" ]; then
            echo "SPURIOUS at $((duration - end + SECONDS)) s: $n's keeper: $bad"
            spurious=$((spurious + 1))
        fi
    done
done
wd1=$(cat "$base"/node{1,2}/watchdog.log 2>/dev/null | grep -c "not petted" || true)
fences=$("$lab" exec "$active" -- stonith_admin --history '*' 2>/dev/null | grep -c "reboot" || true)
echo "load for ${duration}s (2 CPU hogs per node, direct and fsynced writes on both): keeper states not holding/idle or self-fenced: $spurious samples; watchdog resets: $((wd1 - wd0)); fences in the history: $fences"
echo "corosync during the load (both nodes): 'Token has not been received' $(corosync_count 'Token has not been received'), new memberships $(corosync_count 'A new membership')"
for p in "${loads[@]}"; do wait "$p" 2>/dev/null || true; done
loads=()

# renew = 2 x io_timeout = 200 ms
lease_io_and_cpu "$window" 0.2

out=$(mktemp)
for _ in $(seq "$runs"); do
    timeout 600 "$lab" drill kill-node active --json | tail -1 >>"$out" || true
done
drill_summary "fast     kill-node active" "$out"
rm -f "$out"
