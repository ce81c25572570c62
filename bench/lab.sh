#!/usr/bin/env bash
# Lab benchmark (issue 3, Measure): seconds for `mailha-lab up` (stock
# profile, packages already installed) and `mailha-lab down`, and the
# latency of `mailha status` inside node1 (median of 20).
# Targets: up < 90 s, status < 200 ms. As root:
#   ./bench/lab.sh            # 3 up/down cycles (RUNS=N to change)
#   PROFILE=eyou ./bench/lab.sh        # another lab profile
#   MAILHA_BIN=/path/to/mailha ...     # skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
. bench/lib.sh
bin=$(mailha_bin)
lab=$(lab_bin)
export MAILHA_BIN=$bin
profile=${PROFILE:-stock}
if "$lab" status --json | grep -q '"up": true'; then
    echo "bench/lab.sh: a lab is already up; run \`mailha-lab down\` first" >&2
    exit 1
fi
trap 'timeout 120 "$lab" down >/dev/null 2>&1 || true' EXIT

now() { date +%s.%N; }

ups=() downs=()
for i in $(seq "$runs"); do
    t0=$(now)
    timeout 300 "$lab" up --profile "$profile" >/dev/null
    t1=$(now)
    if [ "$i" -eq "$runs" ]; then
        # mailha status inside node1, 20 times, timed in the node itself
        status_ms=$(timeout 120 "$lab" exec node1 -- /bin/sh -c '
            for i in $(seq 20); do
                a=$(date +%s%N); mailha status >/dev/null; b=$(date +%s%N)
                echo $(( (b - a) / 1000000 ))
            done' | median)
    fi
    t2=$(now)
    timeout 120 "$lab" down >/dev/null
    t3=$(now)
    ups+=("$(awk "BEGIN{print $t1 - $t0}")") downs+=("$(awk "BEGIN{print $t3 - $t2}")")
    printf 'run %d: up %.1f s, down %.2f s\n' "$i" "${ups[-1]}" "${downs[-1]}"
done
up_med=$(printf '%s\n' "${ups[@]}" | median)
down_med=$(printf '%s\n' "${downs[@]}" | median)
printf 'lab up (%s): %.1f s (median of %d; target < 90 s)\n' "$profile" "$up_med" "$runs"
printf 'lab down:      %.2f s (median of %d)\n' "$down_med" "$runs"
printf 'mailha status: %.0f ms in node1 (median of 20; target < 200 ms)\n' "$status_ms"
