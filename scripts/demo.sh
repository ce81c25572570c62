#!/usr/bin/env bash
# The main job until the lab lands: build, then check and render every
# example configuration, and have Pacemaker's own checker verify each CIB.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
bin=target/release/mailha
for f in examples/*.toml; do
    "$bin" check "$f"
    "$bin" --config "$f" render corosync >/dev/null
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
