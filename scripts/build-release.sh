#!/usr/bin/env bash
# Builds the binary mailha ships: release, statically linked against musl
# (a static-pie, so ASLR stays). Why: every OCF action Pacemaker runs is a
# fresh process, and most of a monitor's CPU is process start, not the
# check. A dynamically linked mailha spends a third of a monitor in ld.so;
# a static glibc still probes the CPU's caches with dozens of CPUID
# instructions at every start (glibc's init_cacheinfo), each a trap to the
# hypervisor on a virtual machine; musl does neither (bench/monitor.sh
# measures the builds side by side; README, "The shipped binary").
# Without the musl target installed (scripts/install-deps.sh adds it), it
# says so and builds a static glibc binary instead. Flags must not reach
# build scripts and proc-macros (host dylibs), hence the explicit --target,
# which keeps RUSTFLAGS off them. Prints the binary's path.
#   bin=$(scripts/build-release.sh)
#   LIBC=gnu scripts/build-release.sh    # the static glibc build, to compare
set -euo pipefail
cd "$(dirname "$0")/.."
musl=x86_64-unknown-linux-musl
if [ "${LIBC:-musl}" = musl ] && rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    target=$musl
else
    target=$(rustc -vV | sed -n 's/^host: //p')
    [ "${LIBC:-musl}" = musl ] &&
        echo "build-release.sh: rust target $musl not installed (scripts/install-deps.sh adds it); building a static glibc binary" >&2
fi
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --target "$target" "$@" >&2
t=${CARGO_TARGET_DIR:-target}
case $t in /*) ;; *) t=$PWD/$t ;; esac
echo "$t/$target/release/mailha"
