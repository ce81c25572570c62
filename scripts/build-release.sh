#!/usr/bin/env bash
# Builds the binary mailha ships: release, statically linked (static-pie,
# so ASLR stays). Why static: every OCF action Pacemaker runs is a fresh
# process, and a dynamically linked mailha spends about a third of a
# monitor's CPU in the loader (ld.so, libc, libgcc_s) before main
# (bench/monitor.sh measures both). The static flag must not reach build
# scripts and proc-macros (they are host dylibs), hence the explicit
# --target, which keeps RUSTFLAGS off them. Prints the binary's path.
#   bin=$(scripts/build-release.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --target "$host" "$@" >&2
t=${CARGO_TARGET_DIR:-target}
case $t in /*) ;; *) t=$PWD/$t ;; esac
echo "$t/$host/release/mailha"
