#!/usr/bin/env bash
# The package: its size, how long `dpkg -i` takes, and whether the installed
# binary costs what the build tree's musl binary costs (`mailha --help`, one
# mailha:service monitor of a real memcached), installed on a copy-on-write
# overlay of this machine in a private mount and network namespace (nothing
# reaches the host). As root. farm-bench runs A (installed) and B (build
# tree) in turn, RUNS times each (default 20), each run LOOP calls
# (default 200) in one sh loop, so per-call CPU = cpu / LOOP (the loop's
# own cost is the same for A and B); dpkg: 10 runs.
#   bench/package.sh                    # builds the packages first (scripts/build-deb.sh)
#   DEB=target/debian/mailha_0.1.0-1_amd64.deb bench/package.sh   # an already built one
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
    if [ -z "${DEB:-}" ]; then
        DEB=$(scripts/build-deb.sh | head -1)
    fi
    bin=$(scripts/build-release.sh -q)
    rpm=${DEB%/debian/*}/rpm/$(basename "$DEB" | sed 's/^mailha_\(.*\)-\([0-9]*\)_amd64.deb$/mailha-\1-\2.x86_64.rpm/')
    echo "== sizes"
    echo "deb: $(stat -c %s "$DEB") bytes ($DEB), Installed-Size $(dpkg-deb -f "$DEB" Installed-Size) KiB"
    [ -f "$rpm" ] && echo "rpm: $(stat -c %s "$rpm") bytes ($rpm)"
    echo "build tree binary: $(stat -c %s "$bin") bytes ($bin); packaged (stripped): $(dpkg-deb --fsys-tarfile "$DEB" | tar -tvf - ./usr/sbin/mailha | awk '{print $3}') bytes"
    exec unshare --mount --net --propagation private -- env DEB="$(realpath "$DEB")" BIN="$bin" RUNS="${RUNS:-20}" LOOP="${LOOP:-200}" "$0" --inside
fi

# Inside: a scratch copy of this machine.
t=$(mktemp -d)
pidf=$t/memcached.pid
cleanup() {
    [ -s "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null
    umount --recursive --lazy "$t" && rmdir "$t"
}
trap cleanup EXIT
mount -t tmpfs mailha-bench "$t"
mkdir "$t/upper" "$t/work" "$t/m"
mount -t overlay mailha-bench -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/m"
m=$t/m
mount --bind /proc "$m/proc"
mount --bind /dev "$m/dev"
rm -rf "$m/etc/mailha" "$m/var/lib/mailha" "$m/usr/sbin/mailha" "$m/usr/sbin/fence_mailha" \
    "$m/usr/lib/mailha" "$m/usr/lib/ocf/resource.d/mailha"
cp "$DEB" "$m/tmp/mailha.deb"
ip link set lo up

echo "== dpkg -i (fresh install, purged between runs), 10 runs"
hyperfine -N --runs 10 --style basic \
    --prepare "dpkg --root=$m --purge mailha" \
    "dpkg --root=$m -i $m/tmp/mailha.deb" 2>&1 | grep -E "Time|Range"
timeout 120 dpkg --root="$m" -i "$m/tmp/mailha.deb" >/dev/null

installed=$m/usr/sbin/mailha
built=$t/built
mkdir "$built"
ln -s "$BIN" "$built/service"
# LOOP calls of argv in one sh (dash: the loop itself forks nothing).
loop() { echo "i=0; while [ \$i -lt $LOOP ]; do $* >/dev/null; i=\$((i + 1)); done"; }
echo "== mailha --help: installed (A) vs build tree (B), $RUNS runs of $LOOP calls"
farm-bench -n "$RUNS" --timeout 900 --vs "sh -c '$(loop "$BIN" --help)'" -- sh -c "$(loop "$installed" --help)"

echo "== one mailha:service monitor of memcached: installed (A) vs build tree (B), $RUNS runs of $LOOP calls"
memcached -d -u memcache -l 127.0.0.1 -p 11399 -P "$pidf"
for _ in $(seq 50); do [ -s "$pidf" ] && break; sleep 0.1; done
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=bench
export OCF_RESKEY_CRM_meta_interval=10000 OCF_RESKEY_CRM_meta_timeout=20000
export OCF_RESKEY_name=memcached OCF_RESKEY_start='["/usr/bin/memcached"]'
export OCF_RESKEY_pid_file=$pidf OCF_RESKEY_executable=/usr/bin/memcached
export OCF_RESKEY_probe=memcached OCF_RESKEY_probe_port=11399
agent=$m/usr/lib/ocf/resource.d/mailha/service
"$agent" monitor || { echo "the monitor fails (exit $?): nothing to measure" >&2; exit 1; }
farm-bench -n "$RUNS" --timeout 900 --vs "sh -c '$(loop "$built/service" monitor)'" -- sh -c "$(loop "$agent" monitor)"
