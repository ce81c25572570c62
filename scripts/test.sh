#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, format, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# The lab's tests (lab/tests/) build a lab of their own (prefix mht);
# whatever happens to the tests, tear it down on exit (a no-op when none is
# up).
lab_down() {
    bin=${CARGO_TARGET_DIR:-target}/debug/mailha-lab
    if [ "$(id -u)" -eq 0 ] && [ -x "$bin" ]; then
        MAILHA_LAB_PREFIX=mht MAILHA_LAB_STATE_DIR=/run/mailha-lab-test \
            MAILHA_LAB_BASE_DIR=/var/lib/mailha-lab-test \
            timeout 120 "$bin" down >/dev/null || echo "test.sh: lab down failed" >&2
    fi
}
trap lab_down EXIT
bash scripts/install-deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The packages the package tests (pkg/tests/) inspect and install; the lab's
# nodes install the .deb too (lab/tests/common: MAILHA_TEST_DEB).
# (its first line of output; no pipe into head, which pipefail would
# fail on when build-deb.sh writes its second line to a closed pipe)
pkgs=$(scripts/build-deb.sh)
deb=${pkgs%%$'\n'*}
MAILHA_TEST_DEB=$PWD/$deb
export MAILHA_TEST_DEB
# Debian 13's root tree (Pacemaker 3.0 and the mail stack of trixie),
# made once by debootstrap and cached: crm_verify of Pacemaker 3.0
# (tests/render.rs) and the lab on Debian 13 (lab/tests/lab.rs) use it.
if [ "$(id -u)" -eq 0 ]; then
    cargo build -q -p mailha-lab
    "${CARGO_TARGET_DIR:-target}/debug/mailha-lab" tree --release trixie
fi
# The workspace: the product, the lab (whose tests drive the product's
# binary, built beside it) and the packaging.
cargo test --workspace --all-targets
