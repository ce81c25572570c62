# Sourced by the bench scripts: which mailha to run, and a median.
# MAILHA_BIN=/path/to/mailha skips the build (e.g. a debug build);
# otherwise the shipped binary from scripts/build-release.sh.
mailha_bin() {
    if [ -n "${MAILHA_BIN:-}" ]; then
        echo "$MAILHA_BIN"
    else
        scripts/build-release.sh -q
    fi
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m}'; }
