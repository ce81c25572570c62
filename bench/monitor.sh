#!/usr/bin/env bash
# Monitor cost, mailha:service vs the stock agents, on the same daemons:
# brings the lab up (mailha's agents), runs benches/monitor.rs inside the
# node where the mail runs, tears the lab down. As root.
#   MAILHA_BENCH_N=100 bench/monitor.sh
#   RELEASE=trixie bench/monitor.sh   # on Debian 13 nodes (trixie's stock agents)
#   GLIBC=1 bench/monitor.sh     # also the static glibc build (LIBC=gnu scripts/build-release.sh), to show what musl saves
#   DYNAMIC=1 bench/monitor.sh   # also a dynamically linked build (cargo build --release), to show what static linking saves
#   DYNAMIC=/path/to/mailha bench/monitor.sh   # ... that dynamically linked build
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(scripts/build-release.sh -q)
lab=$(lab_bin)
export MAILHA_BIN=$bin
twins=()
if [ "${GLIBC:-0}" = 1 ]; then
    twins+=("glibc=$(LIBC=gnu scripts/build-release.sh -q)")
fi
if [ "${DYNAMIC:-0}" = 1 ]; then
    cargo build --release -q -p mailha
    t=${CARGO_TARGET_DIR:-target}
    case $t in /*) ;; *) t=$PWD/$t ;; esac
    twins+=("dynamic=$t/release/mailha")
elif [ -x "${DYNAMIC:-}" ]; then
    twins+=("dynamic=$DYNAMIC")
fi
env_twins=()
if [ "${#twins[@]}" -gt 0 ]; then
    env_twins=(MAILHA_BENCH_TWINS="$(IFS=,; echo "${twins[*]}")")
fi
# The bench's own artifact: the build also lists mailha's binary, in no
# fixed order.
bench=$(cargo bench -p mailha --bench monitor --no-run --message-format=json 2>/dev/null |
    grep '"name":"monitor"' | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bench" ] || { echo "could not build benches/monitor.rs" >&2; exit 1; }
trap 'timeout 120 "$lab" down >/dev/null || true' EXIT
release=${RELEASE:-bookworm}
timeout 300 "$lab" up --release "$release" >/dev/null
active=$(timeout 60 "$lab" exec node1 -- mailha status --json | grep -o '"active_node": *"[^"]*"' | cut -d'"' -f4)
# The bench goes onto the node's disk: a node of another release than the
# host's runs its own tree, where this checkout is not.
root="${MAILHA_LAB_BASE_DIR:-/var/lib/mailha-lab}/$active/root"
install -m 0755 "$bench" "$root/usr/local/bin/mailha-monitor-bench"
# The floor: a static musl C program that only returns, what any process
# costs on this machine (exec, page faults, exit).
floor_dir=$(mktemp -d)
printf 'int main(void){return 0;}\n' >"$floor_dir/floor.c"
musl-gcc -O2 -static -o "$root/usr/local/bin/mailha-bench-floor" "$floor_dir/floor.c"
rm -rf "$floor_dir"
echo "== $release, on $active, N=${MAILHA_BENCH_N:-100}"
timeout 1200 "$lab" exec "$active" --timeout 20m -- env MAILHA_BENCH_N="${MAILHA_BENCH_N:-100}" MAILHA_BENCH_FLOOR=/usr/local/bin/mailha-bench-floor "${env_twins[@]}" /usr/local/bin/mailha-monitor-bench
