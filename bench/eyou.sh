#!/usr/bin/env bash
# The eyou profile on the lab's eYou stand-in (docs/eyou-lab.md): seconds
# for `mailha-lab up --profile eyou` and `lab down` (RUNS cycles, default
# 3, bench/lab.sh), then on one more lab `kill-daemon smtp` RUNS times:
# median and max of recovered_s, lost mail, double mounts (bench/drills.sh).
# As root.
#   RUNS=3 bench/eyou.sh
#   MAILHA_BIN=/path/to/mailha bench/eyou.sh   # skip the release build, use this binary
# Honors MAILHA_LAB_PREFIX / _STATE_DIR / _BASE_DIR like every lab command.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
MAILHA_BIN=$(mailha_bin)
export MAILHA_BIN RUNS=${RUNS:-3}
PROFILE=eyou bench/lab.sh
PROFILES=eyou bench/drills.sh kill-daemon smtp
