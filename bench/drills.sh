#!/usr/bin/env bash
# Recovery of `kill-daemon postfix`, mailha's agents vs the stock agents,
# in one run: the lab with each profile, the drill RUNS times in a row
# (default 5), median and max of recovered_s, and whether any mail was
# lost. As root.
#   RUNS=5 bench/drills.sh [DRILL ARGS...]     (default: kill-daemon postfix)
#   PROFILES=eyou bench/drills.sh kill-daemon smtp   # other lab profiles
#   MAILHA_BIN=/path/to/mailha ...                     # skip the release build
#   e.g. bench/drills.sh storage-loss active --mode eio; bench/drills.sh cut-ping active
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(mailha_bin)
lab=$(lab_bin)
export MAILHA_BIN=$bin
runs=${RUNS:-5}
drill=("$@")
[ ${#drill[@]} -gt 0 ] || drill=(kill-daemon postfix)
trap 'timeout 120 "$lab" down >/dev/null || true' EXIT
for profile in ${PROFILES:-postfix stock}; do
    timeout 120 "$lab" down >/dev/null || true
    timeout 300 "$lab" up --profile "$profile" >/dev/null
    out=$(mktemp)
    for _ in $(seq "$runs"); do
        timeout 600 "$lab" drill "${drill[@]}" --json | tail -1 >>"$out" || true
    done
    python3 - "$profile" "$out" "${drill[*]}" <<'PY'
import json, statistics, sys
profile, path, drill = sys.argv[1], sys.argv[2], sys.argv[3]
rs = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
rec = [r["recovered_s"] for r in rs if r.get("recovered_s") is not None]
print(f"{profile:8} {drill}: runs {len(rs)}, ok {sum(r['ok'] for r in rs)}, "
      f"recovered_s median {statistics.median(rec) if rec else None} max {max(rec) if rec else None}, "
      f"lost {sum(r['lost'] for r in rs)}, double_mounts {sum(r['double_mounts'] for r in rs)}")
PY
    rm -f "$out"
done
