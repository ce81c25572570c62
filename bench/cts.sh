#!/usr/bin/env bash
# Pacemaker's own Cluster Test Suite (CTS 2.1.5) against the lab, judged
# by the mail too (issue 19), as root. Not in CI: a round of the 16 tests
# takes about 20 minutes.
#
# A fresh lab (PROFILE, default postfix) gets CTS's node helpers (the kit
# bench/cts-prepare.sh builds, copied into each node's root); CTS runs
# in the lab's gw namespace, where node1 and node2 resolve and ssh takes
# the lab's key (a private mount namespace gives CTS its own /etc/hosts
# and ssh_config: nothing of the host's changes). Beside it,
# `mailha-lab soak observe` runs the mail load and records the mounts,
# fences and lease holder. CTS keeps the cluster's own configuration
# (never --clobber-cib): what it tests is mailha's CIB with lease fencing.
# Then `mailha-lab cts judge` puts each test's CTS verdict beside the
# mail's outage in its window (against the bound of the drill it amounts
# to), lost mail and double mounts.
#
#   bench/cts.sh                              (the 16 tests once, seed 1)
#   ROUNDS=3 SEED=7 bench/cts.sh              (each test 3 times)
#   TESTS="Flip Standby" bench/cts.sh
# Everything stays in the lab's base dir: cts/<unix ms>-seed<N>/ (CTS's
# log and its debug log, the history, the client's logs, both nodes'
# logs, cts-verdict.json). Exit 1 when the verdict is not ok.
# (MAILHA_BIN=path / MAILHA_LAB_BIN=path to use given builds; the nodes
# install the .deb when MAILHA_LAB_DEB is set, as the test suite's do.)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

# The 16 tests of issue 19, in CTS's own order.
all="Flip Restart StartOnebyOne SimulStart SimulStop StopOnebyOne RestartOnebyOne PartialStart Standby MaintenanceMode ResourceRecover Reattach SpecialTest1 NearQuorumPoint Stonithd ComponentFail"
tests=${TESTS:-$all}
rounds=${ROUNDS:-1}
seed=${SEED:-1}
profile=${PROFILE:-postfix}
case $rounds in '' | *[!0-9]* | 0) echo "ROUNDS must be a positive number" >&2; exit 2 ;; esac
case $seed in '' | *[!0-9]*) echo "SEED must be a number" >&2; exit 2 ;; esac

kit=/var/cache/mailha-lab/cts/kit
if [ ! -x "$kit/bin/cts-lab" ]; then
    bench/cts-prepare.sh
fi
BIN=$(mailha_bin)
export MAILHA_BIN=$BIN
# The observer and the nodes' watchdogs outlive a rebuild: run a copy.
work=$(mktemp -d)
lab=$(lab_copy "$work")
base=${MAILHA_LAB_BASE_DIR:-/var/lib/mailha-lab}
gw=${MAILHA_LAB_PREFIX:+$MAILHA_LAB_PREFIX-}gw
out=$base/cts/$(date +%s%3N)-seed$seed
mkdir -p "$out"
observer=
finish() {
    touch "$out/cts-done"
    if [ -n "$observer" ]; then wait "$observer" || true; fi
    timeout 120 "$lab" down >/dev/null || true
    rm -rf "$work"
}
trap finish EXIT

timeout 120 "$lab" down >/dev/null || true
timeout 300 "$lab" up --profile "$profile" >/dev/null
# CTS's helpers where it looks for them on a node (cts-log-watcher,
# cts-exec-helper, cts-support, the tests' data): the kit's root/ onto
# each node's root, i.e. into its writable layer.
for n in node1 node2; do
    cp -a "$kit/root/." "$base/$n/root/"
done

# CTS reaches the nodes by name, as root over ssh, from where it runs.
# (The lab's node addresses: topology.rs; the known_hosts `up` wrote
# names each node by name and address.)
cat >"$work/ssh_config" <<EOF
Host node1 node2
    User root
    IdentityFile $base/id_ed25519
    UserKnownHostsFile $base/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 10
EOF
printf '127.0.0.1 localhost\n198.51.100.1 %s\n198.51.100.11 node1\n198.51.100.12 node2\n' \
    "$(hostname)" >"$work/hosts"
cat >"$work/in-gw.sh" <<EOF
#!/bin/sh
mount --bind "$work/hosts" /etc/hosts || exit 1
mount --bind "$work/ssh_config" /etc/ssh/ssh_config || exit 1
cd "$out" || exit 1
exec "$kit/bin/cts-lab" "\$@"
EOF
chmod 700 "$work/in-gw.sh"

"$lab" soak observe --until-file "$out/cts-done" --out "$out" >/dev/null 2>"$out/observe.err" &
observer=$!
# The observer waits for a healthy cluster before it records.
for _ in $(seq 1 300); do
    [ -f "$out/observed.json" ] && break
    kill -0 "$observer" 2>/dev/null || { cat "$out/observe.err" >&2; exit 1; }
    sleep 1
done
[ -f "$out/observed.json" ] || { echo "the observer never started" >&2; exit 1; }

args=(--nodes "node1 node2" --stack corosync --seed "$seed" --outputfile "$out/cts-debug.log")
count=0
for t in $tests; do
    args+=(--choose "$t")
    count=$((count + 1))
done
echo "CTS: $count tests x $rounds, seed $seed, into $out" >&2
# CTS stamps its lines in local time without a zone: UTC, which the judge
# reads. A round of 16 tests takes ~20 min; 2 h each is far beyond that.
set +e
TZ=UTC timeout $((rounds * 7200)) ip netns exec "$gw" unshare -m --propagation private \
    "$work/in-gw.sh" "${args[@]}" $((count * rounds)) </dev/null >"$out/cts.log" 2>&1
rc=$?
set -e
echo "CTS exited $rc" >>"$out/cts.log"
# CTS's tear-down stops the cluster on every node; a node a test reset
# may still be off. The mail must come back when the stack does.
for n in node1 node2; do
    if ! "$lab" exec "$n" -- true 2>/dev/null; then
        timeout 300 "$lab" boot "$n" >/dev/null || true
    fi
    timeout 120 "$lab" exec "$n" -- systemctl start corosync pacemaker || true
done
touch "$out/cts-done"
wait "$observer" || true
observer=
for n in node1 node2; do
    timeout 60 "$lab" exec "$n" -- journalctl -q --no-pager -o short-iso >"$out/$n-journal.log" 2>&1 || true
done
verdict=0
"$lab" cts judge --observed "$out" --log "$out/cts.log" >/dev/null || verdict=$?
echo "$out" >&2
exit "$verdict"
