#!/usr/bin/env bash
# The lab's NFS server broken two ways (nfs-ganesha frozen by SIGSTOP,
# partitioned by an nft drop in its namespace), RUNS times each (default
# 5) with `lab drill nfs-hang active --mode MODE`: how long the storage
# agent's monitor takes to fail (its RPC NULL probe, io_timeout 2 s,
# monitor op timeout 20 s), how long its stop of a hung mount takes (op
# timeout 10 s), and how long the monitor takes once the server is back;
# median and max. As root.
#   RUNS=5 bench/nfs.sh
#   MAILHA_BIN=/path/to/mailha bench/nfs.sh     # skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(mailha_bin)
lab=$(lab_bin)
export MAILHA_BIN=$bin
runs=${RUNS:-5}
trap 'timeout 120 "$lab" down >/dev/null || true' EXIT
timeout 120 "$lab" down >/dev/null || true
timeout 300 "$lab" up >/dev/null
for mode in freeze partition; do
    out=$(mktemp)
    for _ in $(seq "$runs"); do
        timeout 600 "$lab" drill nfs-hang active --mode "$mode" --json | tail -1 >>"$out" || true
    done
    python3 - "$mode" "$out" <<'PY'
import json, statistics, sys
mode, path = sys.argv[1], sys.argv[2]
rs = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
def stat(key):
    v = [r["nfs"][key]["ms"] for r in rs if r.get("nfs") and r["nfs"].get(key)]
    return f"median {statistics.median(v):.0f} max {max(v)} ms" if v else "none"
n = [r["nfs"] for r in rs if r.get("nfs")]
print(f"nfs-hang --mode {mode:9}: runs {len(rs)}, ok {sum(r['ok'] for r in rs)}, "
      f"lost {sum(r['lost'] for r in rs)}, switched {sum(r['switched'] for r in rs)}")
print(f"  probe fails (io_timeout 2000, op timeout 20000 ms): {stat('fault_probe')}")
print(f"  stop of the hung mount (op timeout 10000 ms):       {stat('stop')}, "
      f"released by {sorted(set(x['released_by'] or '-' for x in n))}")
print(f"  probe answers again after the restore:              {stat('restored_probe')}")
PY
    rm -f "$out"
done
