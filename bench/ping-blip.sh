#!/usr/bin/env bash
# What `[network] failed_checks` trades (docs/config.md): for each setting
# (2, the default, and 1), the lab with lab/configs/postfix.toml at that
# number, then
#  1. blips: the active node loses its ping target (the gw, both ways, nft
#     in the node) for each of BLIPS seconds (default "0.5 1 2"), TRIES
#     times each (default 4), 25 s apart; counted: how often the mail
#     moved for a blip it could have ridden out;
#  2. `cut-ping active` RUNS times (default 5): recovered_s median / max.
# As root.
#   RUNS=5 TRIES=4 BLIPS="0.5 1 2" bench/ping-blip.sh
#   SETTINGS=1 bench/ping-blip.sh          # only failed_checks = 1
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(mailha_bin)
lab=$(lab_bin)
export MAILHA_BIN=$bin
runs=${RUNS:-5}
tries=${TRIES:-4}
blips=${BLIPS:-0.5 1 2}
for b in $blips; do
    case $b in *[!0-9.]* | '') echo "ping-blip.sh: BLIPS: $b is no number of seconds" >&2; exit 1 ;; esac
done
cfg=$(mktemp --suffix=.toml)
trap 'timeout 120 "$lab" down >/dev/null || true; rm -f "$cfg"' EXIT
gw=198.51.100.1
grep -q "ping_targets = \[\"$gw\"\]" lab/configs/postfix.toml || {
    echo "ping-blip.sh: lab/configs/postfix.toml no longer pings $gw" >&2
    exit 1
}

active_node() {
    "$lab" exec node1 --timeout 30s -- mailha status --json 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("active_node") or "")' 2>/dev/null || true
}

# The blip runs inside the node as one script, so its length is the
# sleep's, not the lab's exec round trips. The table is the node's own
# and removed on the script's exit, whatever happened.
blip='set -e
trap "nft delete table inet mailha_blip 2>/dev/null || true" EXIT
nft add table inet mailha_blip
nft add chain inet mailha_blip out "{ type filter hook output priority -10 ; }"
nft add chain inet mailha_blip in "{ type filter hook input priority -10 ; }"
nft add rule inet mailha_blip out ip daddr "$1" drop
nft add rule inet mailha_blip in ip saddr "$1" drop
sleep "$2"'

for checks in ${SETTINGS:-2 1}; do
    if [ "$checks" = 2 ]; then
        cp lab/configs/postfix.toml "$cfg"
    else
        sed "s/^\[network\]\$/[network]\nfailed_checks = $checks/" lab/configs/postfix.toml >"$cfg"
        grep -qx "failed_checks = $checks" "$cfg" || { echo "ping-blip.sh: no [network] table in lab/configs/postfix.toml" >&2; exit 1; }
    fi
    timeout 120 "$lab" down >/dev/null || true
    timeout 300 "$lab" --config "$cfg" up --profile postfix >/dev/null
    sleep 15
    for b in $blips; do
        moved=0
        for _ in $(seq "$tries"); do
            before=$(active_node)
            [ -n "$before" ] || { echo "ping-blip.sh: the mail runs nowhere" >&2; exit 1; }
            "$lab" exec "$before" --timeout 60s -- sh -c "$blip" sh "$gw" "$b" >/dev/null
            # Long enough for a move to finish, and for the ping's
            # failure-timeout (10 s) to make the node eligible again.
            sleep 25
            after=$(active_node)
            [ -n "$after" ] || { echo "ping-blip.sh: the mail runs nowhere after a ${b}s blip" >&2; exit 1; }
            [ "$after" != "$before" ] && moved=$((moved + 1))
        done
        echo "failed_checks $checks: gateway lost for ${b}s: the mail moved in $moved of $tries"
    done
    out=$(mktemp)
    for _ in $(seq "$runs"); do
        timeout 600 "$lab" drill cut-ping active --json | tail -1 >>"$out" || true
        sleep 15
    done
    drill_summary "failed_checks $checks: cut-ping active" "$out"
    rm -f "$out"
done
