#!/usr/bin/env bash
# The soak (issue 17), as root: DURATION (default 1h) of random faults
# drawn from SEED (default 17) under the mail load on mailha's postfix
# profile, then the very same schedule (soak run --replay) on the stock
# profile, to show what the guard prevents. Each run's folder (schedule,
# history, client logs, both nodes' logs, verdict.json, report.html) is
# kept under the lab's base dir (soak/<ms>-seed<N>/); the summary prints
# both verdicts side by side. About 2 x DURATION plus two lab ups.
#   bench/soak.sh
#   DURATION=10m SEED=3 FAULTS=kill-daemon,kill-node bench/soak.sh
#   PROFILES=postfix bench/soak.sh                 (skip the stock run)
# (MAILHA_BIN=path / MAILHA_LAB_BIN=path to use given builds; the nodes
# install the .deb when MAILHA_LAB_DEB is set, as the test suite's do.)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=$(mailha_bin)
export MAILHA_BIN=$BIN
# The soak runs for an hour or two: its own copy of the lab binary.
copy=$(mktemp -d)
lab=$(lab_copy "$copy")
duration=${DURATION:-1h}
seed=${SEED:-17}
profiles=${PROFILES:-postfix stock}
trap 'timeout 120 "$lab" down >/dev/null || true; rm -rf "$copy"' EXIT

base=${MAILHA_LAB_BASE_DIR:-/var/lib/mailha-lab}
schedule=
for profile in $profiles; do
    timeout 120 "$lab" down >/dev/null || true
    timeout 300 "$lab" up --profile "$profile" >/dev/null
    err=$(mktemp)
    if [ -z "$schedule" ]; then
        args=(--duration "$duration" --seed "$seed" --profile "$profile")
        if [ -n "${FAULTS:-}" ]; then args+=(--faults "$FAULTS"); fi
    else
        args=(--replay "$schedule" --profile "$profile")
    fi
    # A verdict that is not ok exits 1: that is a result, not a failure of
    # the bench (the stock profile is expected to lose mail).
    timeout 10800 "$lab" soak run "${args[@]}" >/dev/null 2>"$err" || true
    dir=$(sed -n 's/^soak: .* steps over .* s, into \(.*\)$/\1/p' "$err" | tail -1)
    rm -f "$err"
    if [ -z "$dir" ] || [ ! -f "$dir/verdict.json" ]; then
        echo "$profile: the soak left no verdict (${dir:-no folder})" >&2
        continue
    fi
    if [ -z "$schedule" ]; then
        schedule=$(mktemp)
        cp "$dir/schedule.json" "$schedule"
    fi
    python3 - "$profile" "$dir" <<'PY'
import json, sys
profile, d = sys.argv[1], sys.argv[2]
v = json.load(open(f"{d}/verdict.json"))
s = json.load(open(f"{d}/schedule.json"))
steps = s["steps"]
over = sum(1 for i, a in enumerate(steps) for b in steps[i + 1:]
           if b["start_ms"] < a["start_ms"] + a["duration_ms"])
worst = lambda k: max((o[k] or 0 for o in v["outages"]), default=0) / 1000
print(f"{profile:8} ok {v['ok']}: faults {len(steps)} (overlapping pairs {over}), "
      f"acknowledged {v['acknowledged']}, lost {len(v['lost'])}, "
      f"duplicates {len(v['duplicates'])}, vanished {len(v['vanished'])}, "
      f"unknown {v['unknown']}, double mounts {len(v['double_mounts'])}, "
      f"over bound {len(v['over_bound'])}, spurious fences {len(v['spurious_fences'])}, "
      f"worst outage smtp {worst('smtp_ms'):.1f} s imap {worst('imap_ms'):.1f} s")
print(f"         {d}")
PY
done
