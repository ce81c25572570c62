#!/usr/bin/env bash
# Alerts, measured. As root.
#
# 1. spool: how many events per second the alert agent (alert_mailha, one
#    process per event, as Pacemaker runs it) records durably (fsync of
#    file and directory) into a spool on /var/tmp: one after another
#    (hyperfine, mean per event) and as a burst of BURST (default 1000)
#    events, 16 at a time (Pacemaker fires all alerts of an event at once).
# 2. latency (skip with SPOOL_ONLY=1): seconds from the fault (kill -9 of
#    Postfix's master on the active node) to the incident mail in the lab
#    relay's Maildir, RUNS times (default 5), median. Brings a lab up with
#    the default profile (lab/configs/postfix.toml: batch_window 10 s) and down again.
#
#   bench/alert.sh                 # release build; BIN=path to use another binary
#   RUNS=5 BURST=1000 SPOOL_ONLY=1 bench/alert.sh
#
# The lab's names come from MAILHA_LAB_PREFIX / _STATE_DIR / _BASE_DIR as
# for every lab command (set them when another lab is up).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p mailha
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/mailha
fi
lab=$(lab_bin)
export MAILHA_BIN=$BIN
runs=${RUNS:-5}
burst=${BURST:-1000}

work=$(mktemp -d -p /var/tmp mailha-bench-alert.XXXXXX)
trap 'rm -rf "$work"' EXIT
ln -s "$BIN" "$work/alert_mailha"
export MAILHA_SPOOL=$work/spool CRM_alert_kind=resource CRM_alert_node=node1 \
    CRM_alert_rsc=svc-postfix CRM_alert_task=monitor CRM_alert_rc=7 CRM_alert_target_rc=0 \
    CRM_alert_desc="not running" CRM_alert_interval=2000
hyperfine -N --warmup 20 --runs 500 --export-json "$work/h.json" "$work/alert_mailha" >/dev/null
python3 - "$work/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"spool, one at a time: {r['median']*1000:.2f} ms per event (median of {len(r['times'])}), {1/r['mean']:.0f} events/s")
PY
rm -rf "$work/spool"
t0=$(date +%s.%N)
seq "$burst" | xargs -P 16 -I{} "$work/alert_mailha"
t1=$(date +%s.%N)
n=$(find "$work/spool/pending" -name '*.json' | wc -l)
python3 -c "import sys; n,b,t=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]); print(f'spool, burst of {b} (16 at a time): {n} recorded in {t:.2f} s = {n/t:.0f} events/s')" "$n" "$burst" "$(echo "$t1 - $t0" | bc -l)"
unset MAILHA_SPOOL CRM_alert_kind CRM_alert_node CRM_alert_rsc CRM_alert_task CRM_alert_rc \
    CRM_alert_target_rc CRM_alert_desc CRM_alert_interval
[ "${SPOOL_ONLY:-}" = 1 ] && exit 0

base=${MAILHA_LAB_BASE_DIR:-/var/lib/mailha-lab}
maildir=${base}-relay/mail/ops/new
trap 'rm -rf "$work"; timeout 120 "$lab" down >/dev/null || true' EXIT
timeout 120 "$lab" down >/dev/null || true
timeout 300 "$lab" up >/dev/null
# The cluster's start mails itself; let that settle.
quiet() {
    local last=-1 same=0
    while [ "$same" -lt 20 ]; do
        n=$(ls "$maildir" 2>/dev/null | wc -l)
        if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; last=$n; fi
        sleep 0.5
    done
}
quiet
out=$work/latency
for i in $(seq "$runs"); do
    active=$("$lab" status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s.get("active_node") or s["cluster"]["active_node"])' 2>/dev/null ||
        "$lab" exec node1 -- mailha status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["active_node"])')
    before=$(ls "$maildir" | wc -l)
    t0=$(date +%s.%N)
    "$lab" exec "$active" -- /bin/sh -c 'kill -9 "$(head -1 /srv/data/postfix/pid/master.pid)"'
    while [ "$(ls "$maildir" | wc -l)" -le "$before" ]; do sleep 0.05; done
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l >>"$out"
    echo "run $i: $(tail -1 "$out") s (active $active)"
    quiet
done
python3 - "$out" <<'PY'
import statistics, sys
v = [float(l) for l in open(sys.argv[1]) if l.strip()]
print(f"fault -> mail in the Maildir: median {statistics.median(v):.2f} s, min {min(v):.2f}, max {max(v):.2f} ({len(v)} runs; includes the batch window, 10 s in lab/configs/postfix.toml)")
PY
