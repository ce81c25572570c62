# Sourced by the bench scripts: which mailha and which lab to run, and a
# median.
# MAILHA_BIN=/path/to/mailha skips the build (e.g. a debug build);
# otherwise the shipped binary from scripts/build-release.sh.
# MAILHA_LAB_BIN=/path/to/mailha-lab skips the lab's build (release, glibc:
# test equipment, never shipped).
mailha_bin() {
    if [ -n "${MAILHA_BIN:-}" ]; then
        echo "$MAILHA_BIN"
    else
        scripts/build-release.sh -q
    fi
}
lab_bin() {
    if [ -n "${MAILHA_LAB_BIN:-}" ]; then
        echo "$MAILHA_LAB_BIN"
    else
        cargo build --release -q -p mailha-lab >&2
        t=${CARGO_TARGET_DIR:-target}
        case $t in /*) ;; *) t=$PWD/$t ;; esac
        echo "$t/release/mailha-lab"
    fi
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m}'; }
