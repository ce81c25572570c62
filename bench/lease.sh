#!/usr/bin/env bash
# The split-brain guard, measured in the lab (issue 6), as root:
#  - recovered_s of `kill-node active` and `freeze-node active`, RUNS times
#    each (default 5), median and max, mailha's postfix profile (lease
#    fencing + watchdog) next to the stock profile (no guard) in one run,
#    with lost mail and double mounts summed;
#  - `cut-heartbeat` and `simul-start` once on both profiles;
#  - lease I/O per renewal (node1's lease loop device, /sys/block/*/stat,
#    over WINDOW seconds) and the keeper's CPU per hour over the same window.
#   RUNS=5 WINDOW=60 bench/lease.sh            (BIN=path to use a given build;
#                                               ONCE_RUNS=N repeats cut-heartbeat and simul-start)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
if [ -z "${BIN:-}" ]; then
    BIN=$(scripts/build-release.sh)
fi
lab=$(lab_bin)
export MAILHA_BIN=$BIN
runs=${RUNS:-5}
window=${WINDOW:-60}
trap 'timeout 120 "$lab" down >/dev/null || true' EXIT

summary() {
    python3 - "$@" <<'PY'
import json, statistics, sys
profile, path, drill = sys.argv[1], sys.argv[2], sys.argv[3]
rs = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
rec = [r["recovered_s"] for r in rs if r.get("recovered_s") is not None]
print(f"{profile:8} {drill:18} runs {len(rs)}, ok {sum(r['ok'] for r in rs)}, "
      f"recovered_s median {statistics.median(rec) if rec else None} max {max(rec) if rec else None}, "
      f"lost {sum(r['lost'] for r in rs)}, double_mounts {sum(r['double_mounts'] for r in rs)}")
for r in rs:
    print("   ", json.dumps({k: r[k] for k in ("recovered_s", "switched", "lost", "double_mounts", "ok", "notes")}))
PY
}


for profile in postfix stock; do
    timeout 120 "$lab" down >/dev/null || true
    timeout 300 "$lab" up --profile "$profile" >/dev/null
    # renew = 2 x io_timeout = 500 ms in lab/configs/postfix.toml
    if [ "$profile" = postfix ]; then lease_io_and_cpu "$window" 0.5; fi
    for drill in "kill-node active" "freeze-node active" "cut-heartbeat" "simul-start"; do
        out=$(mktemp)
        n=$runs
        case $drill in cut-heartbeat | simul-start) n=${ONCE_RUNS:-1} ;; esac
        for _ in $(seq "$n"); do
            # shellcheck disable=SC2086
            timeout 600 "$lab" drill $drill --json | tail -1 >>"$out" || true
        done
        summary "$profile" "$out" "$drill"
        rm -f "$out"
    done
done
