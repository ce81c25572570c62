#!/usr/bin/env bash
# The eyou profile on the lab's eYou stand-in (docs/eyou-lab.md): seconds
# for `mailha lab up --profile eyou` and `lab down` (RUNS cycles, default
# 3), then on one more lab `kill-daemon smtp` RUNS times: median and max
# of recovered_s, lost mail, double mounts. As root.
#   RUNS=3 bench/eyou.sh
#   MAILHA_BIN=/path/to/mailha bench/eyou.sh   # skip the release build, use this binary
# Honors MAILHA_LAB_PREFIX / _STATE_DIR / _BASE_DIR like every lab command.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
if [ -n "${MAILHA_BIN:-}" ]; then
    bin=$MAILHA_BIN
else
    cargo build --release -q
    target=${CARGO_TARGET_DIR:-target}
    case $target in /*) ;; *) target=$PWD/$target ;; esac
    bin=$target/release/mailha
fi
if "$bin" lab status --json | grep -q '"up": true'; then
    echo "bench/eyou.sh: a lab is already up; run \`mailha lab down\` first" >&2
    exit 1
fi
trap 'timeout 120 "$bin" lab down >/dev/null 2>&1 || true' EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m}'; }

ups=() downs=()
for i in $(seq "$runs"); do
    t0=$(now)
    timeout 300 "$bin" lab up --profile eyou >/dev/null
    t1=$(now)
    timeout 120 "$bin" lab down >/dev/null
    t2=$(now)
    ups+=("$(awk "BEGIN{print $t1 - $t0}")") downs+=("$(awk "BEGIN{print $t2 - $t1}")")
    printf 'run %d: up %.1f s, down %.2f s\n' "$i" "${ups[-1]}" "${downs[-1]}"
done
printf 'lab up --profile eyou: %.1f s (median of %d)\n' "$(printf '%s\n' "${ups[@]}" | median)" "$runs"
printf 'lab down:              %.2f s (median of %d)\n' "$(printf '%s\n' "${downs[@]}" | median)" "$runs"

timeout 300 "$bin" lab up --profile eyou >/dev/null
out=$(mktemp)
for _ in $(seq "$runs"); do
    timeout 600 "$bin" lab drill kill-daemon smtp --json | tail -1 >>"$out" || true
done
python3 - "$out" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
rec = [r["recovered_s"] for r in rs if r.get("recovered_s") is not None]
print(f"eyou kill-daemon smtp: runs {len(rs)}, ok {sum(r['ok'] for r in rs)}, "
      f"recovered_s median {statistics.median(rec) if rec else None} max {max(rec) if rec else None}, "
      f"lost {sum(r['lost'] for r in rs)}, double_mounts {sum(r['double_mounts'] for r in rs)}")
PY
rm -f "$out"
