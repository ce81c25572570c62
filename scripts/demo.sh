#!/usr/bin/env bash
# The main job: build mailha, check and render every example config (with
# Pacemaker's crm_verify on each CIB), then bring the lab up (two nodes
# running the mail stack under Corosync + Pacemaker with mailha's agents),
# show `mailha status` from node1, send one mail through the VIP, and run a
# drill (kill -9 of Postfix under mail load). As root.
#   ./scripts/demo.sh          # ... and tear the lab down at the end
#   ./scripts/demo.sh --keep   # leave the lab up to explore (`target/release/mailha-lab down` later)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=no
[ "${1:-}" = "--keep" ] && keep=yes
bin=$(scripts/build-release.sh)
# The package the lab's nodes install (dpkg -i), built from the same tree.
# (its first line of output; no pipe into head, which pipefail would
# fail on when build-deb.sh writes its second line to a closed pipe)
pkgs=$(scripts/build-deb.sh)
deb=${pkgs%%$'\n'*}
case $deb in /*) ;; *) deb=$PWD/$deb ;; esac
export MAILHA_LAB_DEB=$deb
# The lab is test equipment beside the product (its own crate).
cargo build --release -q -p mailha-lab
t=${CARGO_TARGET_DIR:-target}
case $t in /*) ;; *) t=$PWD/$t ;; esac
lab=$t/release/mailha-lab
export MAILHA_BIN=$bin
for f in examples/*.toml lab/configs/*.toml; do
    "$bin" check "$f"
    echo
    # check printed the warnings; render's are the same, shown only with
    # a failure.
    err=$(mktemp)
    "$bin" --config "$f" render corosync >/dev/null 2>"$err" || { cat "$err" >&2; exit 1; }
    rm -f "$err"
    xml=$(mktemp)
    "$bin" --config "$f" render cib --full >"$xml" 2>/dev/null
    # crm_verify exits non-zero on an empty status section; what matters
    # is that it reports no error in the configuration.
    if crm_verify --xml-file "$xml" 2>&1 | grep -q "Errors found"; then
        echo "crm_verify rejected the CIB of $f" >&2
        crm_verify --xml-file "$xml" -V >&2 || true
        rm -f "$xml"
        exit 1
    fi
    rm -f "$xml"
    echo "  CIB of $f: crm_verify finds no error"
done

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: the lab needs root; stopping after the configs" >&2
    exit 0
fi
if "$lab" status --json | grep -q '"up": true'; then
    echo "== a lab is already up: showing it"
else
    if [ "$keep" = no ]; then
        trap 'echo "== mailha-lab down"; timeout 120 "$lab" down | tail -1' EXIT
    fi
    echo "== mailha-lab up"
    timeout 300 "$lab" up
fi
echo "== mailha status (in node1)"
timeout 60 "$lab" exec node1 -- mailha status
echo "== a mail from the client namespace to user1@lab.test through the VIP"
timeout 60 "$lab" exec client -- swaks --server 198.51.100.100 \
    --to user1@lab.test --from demo@client.test --header "Subject: mailha demo" |
    grep -E '^<-  (220|250 2\.0\.0)' || true
sleep 1
timeout 60 "$lab" exec node1 -- /bin/sh -c \
    'echo "user1 Maildir/new: $(ls /srv/data/vmail/lab.test/user1/Maildir/new | wc -l) message(s)"' || true
echo "== mailha-lab drill kill-daemon postfix (kill -9 of its master under mail load)"
timeout 300 "$lab" drill kill-daemon postfix
if [ "$keep" = yes ]; then
    echo "== the lab stays up: $lab status | $lab exec node1 -- crm_mon -1 | $lab down"
fi
