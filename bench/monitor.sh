#!/usr/bin/env bash
# Monitor cost, mailha:service vs the stock agents, on the same daemons:
# brings the lab up (mailha's agents), runs benches/monitor.rs inside the
# node where the mail runs, tears the lab down. As root.
#   MAILHA_BENCH_N=100 bench/monitor.sh
#   DYNAMIC=1 bench/monitor.sh   # also a dynamically linked build (cargo build --release), to show what static linking saves
#   DYNAMIC=/path/to/mailha bench/monitor.sh   # ... that dynamically linked build
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/build-release.sh -q)
dynamic=()
if [ "${DYNAMIC:-0}" = 1 ]; then
    cargo build --release -q
    t=${CARGO_TARGET_DIR:-target}
    case $t in /*) ;; *) t=$PWD/$t ;; esac
    dynamic=(MAILHA_BENCH_DYNAMIC="$t/release/mailha")
elif [ -x "${DYNAMIC:-}" ]; then
    dynamic=(MAILHA_BENCH_DYNAMIC="$DYNAMIC")
fi
bench=$(cargo bench --bench monitor --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bench" ] || { echo "could not build benches/monitor.rs" >&2; exit 1; }
trap 'timeout 120 "$bin" lab down >/dev/null || true' EXIT
timeout 300 "$bin" lab up >/dev/null
active=$(timeout 60 "$bin" lab exec node1 -- mailha status --json | grep -o '"active_node": *"[^"]*"' | cut -d'"' -f4)
echo "== on $active, N=${MAILHA_BENCH_N:-100}"
timeout 1200 "$bin" lab exec "$active" --timeout 20m -- env MAILHA_BENCH_N="${MAILHA_BENCH_N:-100}" "${dynamic[@]}" "$bench"
