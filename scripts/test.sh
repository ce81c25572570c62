#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, format, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# tests/lab.rs builds a lab of its own (prefix mht); whatever happens to
# the tests, tear it down on exit (a no-op when none is up).
lab_down() {
    bin=${CARGO_TARGET_DIR:-target}/debug/mailha
    if [ "$(id -u)" -eq 0 ] && [ -x "$bin" ]; then
        MAILHA_LAB_PREFIX=mht MAILHA_LAB_STATE_DIR=/run/mailha-lab-test \
            MAILHA_LAB_BASE_DIR=/var/lib/mailha-lab-test \
            timeout 120 "$bin" lab down >/dev/null || echo "test.sh: lab down failed" >&2
    fi
}
trap lab_down EXIT
bash scripts/install-deps.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
