#!/usr/bin/env bash
# Lab benchmark (issues 3 and 14, Measure): seconds for `mailha-lab up`
# (stock profile, packages already installed) and `mailha-lab down`, the
# latency of `mailha status` inside node1 (median of 20), and each node's
# memory once the cluster runs: the PSS of every process of its boot (its
# cgroup), and what its disk's tmpfs holds.
# Targets: up <= 30 s, status < 200 ms. As root:
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

ups=() downs=() mem=()
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
        base=${MAILHA_LAB_BASE_DIR:-/var/lib/mailha-lab}
        pfx=${MAILHA_LAB_PREFIX:-}
        for node in node1 node2; do
            cg=/sys/fs/cgroup/unified/mailha-lab-${pfx:+$pfx-}$node
            pss_kb=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null |
                while read -r p; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done |
                awk '{s += $1} END {print s + 0}')
            disk_kb=$(df -k --output=used "$base/$node/layer" | tail -1)
            mem+=("$(printf '%s: %.0f MB PSS, %.0f MB on its disk layer' "$node" "$(echo "$pss_kb / 1024" | bc -l)" "$(echo "$disk_kb / 1024" | bc -l)")")
        done
    fi
    t2=$(now)
    timeout 120 "$lab" down >/dev/null
    t3=$(now)
    ups+=("$(awk "BEGIN{print $t1 - $t0}")") downs+=("$(awk "BEGIN{print $t3 - $t2}")")
    printf 'run %d: up %.1f s, down %.2f s\n' "$i" "${ups[-1]}" "${downs[-1]}"
done
up_med=$(printf '%s\n' "${ups[@]}" | median)
down_med=$(printf '%s\n' "${downs[@]}" | median)
printf 'lab up (%s): %.1f s (median of %d; target <= 30 s)\n' "$profile" "$up_med" "$runs"
printf 'lab down:      %.2f s (median of %d)\n' "$down_med" "$runs"
printf 'mailha status: %.0f ms in node1 (median of 20; target < 200 ms)\n' "$status_ms"
printf 'memory per node (%s, cluster running): %s\n' "$profile" "${mem[*]}"
