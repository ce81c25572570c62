#!/usr/bin/env bash
# The lease on a file on NFS through a real kernel NFS client (two UML
# guests on the lab's ganesha, tests/uml_lease_nfs.rs), RUNS times
# (default 3): NFSv3 calls per renewal, a 4 KiB O_DIRECT|O_DSYNC write
# and O_DIRECT read on the lease's mount (dd, 200 each), takeover after
# the holder's power-off (host_dead 8 s), server frozen -> holder gives
# up (renew_fail 4 s) and -> softdog reset. Each run prints its MEASURED
# lines. UML timings are not comparable with a real machine's. As root.
#   RUNS=3 bench/lease-nfs.sh
#   MAILHA_BIN=/path/to/mailha bench/lease-nfs.sh     # skip the release build
#   MAILHA_TEST_LAB=mhu bench/lease-nfs.sh             # the lab prefix (default mht)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(mailha_bin)
runs=${RUNS:-3}
for i in $(seq "$runs"); do
    echo "run $i"
    MAILHA_TEST_BIN=$bin timeout 600 cargo test -q -p mailha-lab --test uml_lease_nfs -- --nocapture 2>&1 |
        grep -E '^MEASURED|test result' || true
done
