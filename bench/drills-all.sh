#!/usr/bin/env bash
# Every drill on one lab per profile, RUNS times each (default 3), in one
# run: a table of recovered_s (median and max), switched, ok, lost mail and
# double mounts per drill, and the raw JSON lines beside it. The numbers a
# change of the nodes, the agents or the timing is judged by (issues 14,
# 16, 20). As root:
#   RUNS=3 bench/drills-all.sh
#   PROFILES="postfix stock" RUNS=5 bench/drills-all.sh
#   DRILLS="kill-node active;freeze-node active" bench/drills-all.sh
#   MAILHA_BIN=/path/to/mailha bench/drills-all.sh   # skip the release build
#   RELEASES="bookworm trixie" PROFILES=postfix bench/drills-all.sh   # Debian 12 and 13 nodes side by side
# Output: the table on stdout; the JSON lines in $OUT (default
# target/bench/drills-all-<date>.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(mailha_bin)
lab=$(lab_bin)
export MAILHA_BIN=$bin
runs=${RUNS:-3}
out=${OUT:-target/bench/drills-all-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$out")"
: >"$out"
default_drills="kill-daemon postfix;kill-daemon mysql;kill-daemon dovecot;kill-daemon memcached;fail-daemon postfix;storage-loss active --mode eio;storage-loss active --mode hang;cut-ping active;cut-heartbeat;kill-node active;freeze-node active;simul-start;kill-scheduler;nfs-hang active --mode freeze;nfs-hang active --mode partition"
IFS=';' read -r -a drills <<<"${DRILLS:-$default_drills}"
trap 'timeout 120 "$lab" down >/dev/null 2>&1 || true' EXIT
for release in ${RELEASES:-bookworm}; do
for profile in ${PROFILES:-postfix stock}; do
    timeout 120 "$lab" down >/dev/null 2>&1 || true
    timeout 900 "$lab" up --profile "$profile" --release "$release" >/dev/null
    for d in "${drills[@]}"; do
        # The guard's drills mean nothing without a guard to drill, and
        # the stock profile's unguarded faults corrupt its data (that is
        # what bench/lease.sh shows): the stock lab runs the service and
        # network drills only.
        if [ "$profile" = stock ]; then
            case $d in kill-daemon*|fail-daemon*|cut-ping*|kill-node*|kill-scheduler*) ;; *) continue ;; esac
        fi
        for _ in $(seq "$runs"); do
            # shellcheck disable=SC2086 # the drill's words
            line=$(timeout 900 "$lab" drill $d --json | tail -1 || true)
            case $line in
                \{*) printf '{"release":"%s","profile":"%s",%s\n' "$release" "$profile" "${line#\{}" >>"$out" ;;
                *) printf '{"release":"%s","profile":"%s","drill":"%s","ok":false,"recovered_s":null,"switched":null,"lost":null,"double_mounts":null,"notes":["no report"]}\n' "$release" "$profile" "$d" >>"$out" ;;
            esac
        done
    done
done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = []
for r in rows:
    k = (r.get("release", "bookworm"), r["profile"], r["drill"])
    if k not in keys:
        keys.append(k)
print(f"{'release':8} {'profile':8} {'drill':34} {'runs':>4} {'ok':>3} {'median':>7} {'max':>7} {'switched':>8} {'lost':>4} {'double':>6}")
for k in keys:
    rs = [r for r in rows if (r.get("release", "bookworm"), r["profile"], r["drill"]) == k]
    rec = [r["recovered_s"] for r in rs if r.get("recovered_s") is not None]
    med = f"{statistics.median(rec):.2f}" if rec else "-"
    mx = f"{max(rec):.2f}" if rec else "-"
    sw = sorted({str(r.get("switched")) for r in rs})
    lost = sum(r.get("lost") or 0 for r in rs)
    dbl = sum(r.get("double_mounts") or 0 for r in rs)
    print(f"{k[0]:8} {k[1]:8} {k[2]:34} {len(rs):>4} {sum(bool(r.get('ok')) for r in rs):>3} {med:>7} {mx:>7} {'/'.join(sw):>8} {lost:>4} {dbl:>6}")
print(f"(JSON lines: {sys.argv[1]})")
PY
