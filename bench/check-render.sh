#!/usr/bin/env bash
# How long `mailha check` and `mailha render cib` take on the eyou example
# (27 services), release build. Numbers, not pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/build-release.sh -q)
cfg=examples/eyou.toml
hyperfine --warmup 5 --runs 100 -N \
    "$bin check $cfg" \
    "$bin --config $cfg render cib"
