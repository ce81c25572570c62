#!/usr/bin/env bash
# Installs everything mailha's build, tests and lab need on a fresh Debian 12,
# as root. Idempotent: a second run installs nothing new.
#
# Daemons must not start on the host while their packages install (the lab
# starts them inside its own nodes), so a policy-rc.d that refuses every
# start is put in place when the machine has none.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: run as root (apt-get needs it)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# mailha: no daemon starts on the host during installs\nexit 101\n' \
        >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
fi

packages=(
    # the cluster engine and the stock agents the lab compares against
    corosync pacemaker pacemaker-cli-utils resource-agents crmsh
    # the lab's nodes: containers that boot systemd (systemd-nspawn);
    # debootstrap makes the tree of a node of another Debian release
    # (`lab up --release trixie`)
    systemd-container debootstrap
    # the mail stack the lab runs for real
    postfix dovecot-imapd dovecot-pop3d mariadb-server memcached
    # lab plumbing (kmod: the stock Filesystem agent insists on modprobe;
    # iputils-ping: the ping resource)
    iproute2 nftables openssh-server openssh-client util-linux e2fsprogs
    procps psmisc strace fuse3 swaks kmod iputils-ping
    # ocf-tester validates meta-data with xmllint
    libxml2-utils
    # a FUSE filesystem the storage tests can freeze (a hung network mount stand-in)
    bindfs
    # the lab's NFS server (userspace: this kernel has no NFS server); it
    # will not start without an rpcbind to register with; libnfs-utils: a
    # userspace NFS client (nfs-cat) the tests read the export with
    nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils
    # the lab's backend 2 (src/lab/uml.rs): User-mode Linux guests, whose
    # kernel has the NFS client this one lacks; mount.nfs for the lease's
    # own NFS mount (src/lease/nfs.rs), run inside them
    user-mode-linux nfs-common
    # the shipped binary links musl statically (scripts/build-release.sh);
    # musl-gcc builds ring's C parts for that target
    musl-tools
    # benchmarks
    hyperfine
    # the packages (scripts/build-deb.sh, pkg/tests/): Debian's package
    # checker, rpm to list the .rpm, strip for the shipped binary
    lintian rpm binutils
    # the alert mail's and the status page's HTML rendered to PNGs
    # (tests/alert_look.rs, tests/status_page_look.rs); openssl
    # makes the lab relay's CA
    chromium openssl
    # a CJK font, so the zh-CN mail's screenshots show characters, not boxes
    fonts-wqy-zenhei
    # the lab's Prometheus in gw (lab/src/prometheus.rs); promtool checks and
    # unit-tests the alert rules the package ships (tests/prometheus_rules.rs);
    # the policy-rc.d above keeps the packaged server from starting
    prometheus
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    # postfix asks its questions through debconf; answer them up front.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "postfix postfix/mailname string lab.example" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The lab's Postfix upgrade (lab/tests/lab_ops.rs) installs the host's own
# Postfix package again inside a node, running the maintainer scripts an
# upgrade runs; the nodes have no route to a mirror, so it is fetched here,
# once (apt-get download: into this directory, nothing installed).
debs=/var/cache/mailha-lab/debs
postfix_version=$(dpkg-query -W -f='${Version}' postfix)
postfix_deb="$debs/postfix_${postfix_version//:/%3a}_$(dpkg --print-architecture).deb"
if [ ! -s "$postfix_deb" ]; then
    mkdir -p "$debs"
    (cd "$debs" && timeout 300 apt-get download -q -o APT::Sandbox::User=root "postfix=$postfix_version") ||
        echo "install-deps.sh: could not download postfix $postfix_version; lab/tests/lab_ops.rs needs $postfix_deb" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps.sh: cargo not found; install a Rust toolchain (rustup) first" >&2
    exit 1
fi

# The shipped binary's target (scripts/build-release.sh). Needs the network
# once; the test suite does not need it, so a machine that cannot fetch it
# still runs the tests, and build-release.sh falls back to glibc, saying so.
musl=x86_64-unknown-linux-musl
if command -v rustup >/dev/null 2>&1 &&
    ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    timeout 300 rustup target add "$musl" ||
        echo "install-deps.sh: could not add the rust target $musl; release builds will link glibc" >&2
fi

# cargo-deb builds the .deb (scripts/build-deb.sh); pinned, installed only
# when missing or another version.
cargo_deb=3.8.0
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $cargo_deb"; then
    timeout 1800 cargo install --locked "cargo-deb@$cargo_deb" ||
        echo "install-deps.sh: could not install cargo-deb $cargo_deb; scripts/build-deb.sh needs it" >&2
fi
