#!/usr/bin/env bash
# The root file system of the test suite's second podman: the other Debian release's podman, run as a
# node in a privileged container (tests/integration/services/podman_other.py).
#
# On a Debian 12 host that is Debian 13's podman 5.x; on a Debian 13 host it is Debian 12's podman 4.3.
# Neither is ever installed on the host: mmdebstrap makes a root file system from Debian's mirror,
# cached as $IMGFRONT_PODMAN_NODE_DIR/<suite>-<hash of the package list>.tar (about 20 s once, 400 MB), so a re-run takes no time.
#
# Usage: scripts/podman-node-rootfs.sh           prints the tar's path, making it first when missing
# Environment:
#   IMGFRONT_PODMAN_NODE_DIR   the cache folder (default /var/cache/imgfront/podman-node)
#   IMGFRONT_PODMAN_NODE_SUITE the Debian suite to use (default: trixie on bookworm, bookworm otherwise)
set -euo pipefail

CACHE=${IMGFRONT_PODMAN_NODE_DIR:-/var/cache/imgfront/podman-node}
PACKAGES=podman,buildah,skopeo,runc,crun,fuse-overlayfs,uidmap,iptables,nftables,netavark,aardvark-dns,ca-certificates,catatonit

log() { printf 'podman-node-rootfs: %s\n' "$*" >&2; }
die() { printf 'podman-node-rootfs: error: %s\n' "$*" >&2; exit 1; }

other_suite() {
    local codename
    codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
    if [[ $codename == bookworm ]]; then echo trixie; else echo bookworm; fi
}

# The host's own Debian mirror (its deb822 or one-line sources), else deb.debian.org.
host_mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }')
    [[ -n $uri ]] || uri=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

main() {
    local mirror=${IMGFRONT_DEBIAN_MIRROR:-$(host_mirror)}
    local suite=${IMGFRONT_PODMAN_NODE_SUITE:-$(other_suite)}
    # The package list is part of the name: a changed list makes a new root file system.
    local tar=$CACHE/$suite-$(printf '%s' "$PACKAGES" | sha256sum | cut -c1-8).tar
    if [[ -s $tar ]]; then
        printf '%s\n' "$tar"
        return 0
    fi
    (( EUID == 0 )) || die "needs root (mmdebstrap); run: sudo make setup"
    command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed; run: make setup"
    mkdir -p "$CACHE"
    local tmp
    tmp=$(mktemp "$CACHE/.$suite.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    log "mmdebstrap --variant=apt $suite (podman $suite for the test suite's second node)"
    mmdebstrap --quiet --variant=apt --include="$PACKAGES" --format=tar "$suite" "$tmp" \
        "deb $mirror $suite main" || die "mmdebstrap $suite failed"
    chmod 644 "$tmp"
    mv "$tmp" "$tar"
    trap - EXIT
    printf '%s\n' "$tar"
}

main
