#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, format, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
