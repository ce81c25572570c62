#!/usr/bin/env bash
# Builds mailha's packages: target/debian/mailha_<version>-1_amd64.deb
# (cargo-deb) and target/rpm/mailha-<version>-1.x86_64.rpm, both holding
# the static musl binary of scripts/build-release.sh (stripped), its faces,
# boot files, man pages, completions and docs: exactly what `mailha
# install` puts in place, since both are made from a `mailha install
# --root pkg/stage` of that binary. Fails first, naming each file, when the
# generated man pages or completions (dist/) or the changelog's version are
# out of step with the code. Prints the two packages' paths.
#   scripts/build-deb.sh
#   DEB_VERSION=0.1.0-2 scripts/build-deb.sh   # another package version, same build
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. The tree must be in step with the code before anything is built.
cargo run -q -p mailha-pkg -- check >&2

# 2. The shipped binary: musl only (the package's cost is the musl build's).
musl=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    echo "build-deb.sh: the rust target $musl is not installed (scripts/install-deps.sh adds it); the package ships the musl build only" >&2
    exit 1
fi
bin=$(scripts/build-release.sh)
case $bin in */$musl/release/mailha) ;; *)
    echo "build-deb.sh: build-release.sh built $bin, not the musl binary" >&2
    exit 1
    ;;
esac

# 3. The stage: the stripped binary installs itself there.
t=${CARGO_TARGET_DIR:-target}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$bin" "$tmp/mailha"
strip --strip-unneeded --remove-section=.comment "$tmp/mailha"
rm -rf pkg/stage
"$tmp/mailha" install --root pkg/stage >/dev/null

# 4. The packages.
version=$(cargo run -q -p mailha-pkg -- version)
deb_version=${DEB_VERSION:-$version-1}
mkdir -p "$t/debian" "$t/rpm"
cargo deb -p mailha --no-build --no-strip --deb-version "$deb_version" -o "$t/debian/" >&2
deb="$t/debian/mailha_${deb_version}_amd64.deb"
rpm="$t/rpm/mailha-$version-1.x86_64.rpm"
cargo run -q -p mailha-pkg -- rpm --stage pkg/stage --out "$rpm" >&2
echo "$deb"
echo "$rpm"
