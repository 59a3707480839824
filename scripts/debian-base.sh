#!/usr/bin/env bash
# A Debian bookworm base for amd64 and arm64 without a registry: the local manifest list
# localhost/imgfront/debian:bookworm (examples/hello-static builds its C program on it).
#
# For each architecture, mmdebstrap makes a minbase root file system from the host's apt sources
# (Debian's mirrors, which this machine reaches), cached as $IMGFRONT_DEBIAN_DIR/bookworm-<arch>.tar
# so that a re-run takes seconds. Each tar is imported with `podman import --arch`, and both go into
# one local manifest list, from which `podman build --platform X` picks the right image.
#
# Idempotent: a complete list is left alone; an incomplete one is made again. Needs root (mmdebstrap
# runs the arm64 maintainer scripts under qemu-user-static emulation: about 70 s; amd64 about 15 s).
#
# Usage: scripts/debian-base.sh [ARCH...]        (default: amd64 arm64)
# Environment:
#   IMGFRONT_DEBIAN_IMAGE   the list's name (default localhost/imgfront/debian:bookworm); each
#                           architecture's image is <name>-<arch>
#   IMGFRONT_DEBIAN_DIR     where the tars are cached (default /var/cache/imgfront/debian)
#   CONTAINERS_CONF, CONTAINERS_STORAGE_CONF: podman's own, which choose the storage written to
#   IMGFRONT_PODMAN         the podman command (default podman), e.g. "podman exec -i NODE podman" for a
#                           podman in a container that sees $IMGFRONT_DEBIAN_DIR at the same path
set -euo pipefail

IMAGE=${IMGFRONT_DEBIAN_IMAGE:-localhost/imgfront/debian:bookworm}
CACHE=${IMGFRONT_DEBIAN_DIR:-/var/cache/imgfront/debian}
SUITE=bookworm
read -ra PODMAN <<<"${IMGFRONT_PODMAN:-podman}"
ARCHES=("$@")
(( ${#ARCHES[@]} )) || ARCHES=(amd64 arm64)

CLEANUP=()
cleanup() { if (( ${#CLEANUP[@]} )); then rm -rf "${CLEANUP[@]}"; fi; }
trap cleanup EXIT

log() { printf 'debian-base: %s\n' "$*"; }
die() { printf 'debian-base: error: %s\n' "$*" >&2; exit 1; }

# The variant flag for an architecture: buildx writes arm64 as v8, and so do imgfront's lists.
variant_flag() { if [[ $1 == arm64 ]]; then printf '%s\n' --variant v8; fi; }

list_complete() {
    local manifest arch
    manifest=$("${PODMAN[@]}" manifest inspect "$IMAGE" 2>/dev/null) || return 1
    for arch in "${ARCHES[@]}"; do
        grep -q "\"architecture\": \"$arch\"" <<<"$manifest" || return 1
    done
}

# Make the root file system tar for one architecture once; later runs reuse it.
make_rootfs() {
    local arch=$1 tar=$2 tmp
    if [[ ! -s $tar ]]; then
        log "mmdebstrap --variant=minbase --architectures=$arch $SUITE"
        tmp=$(mktemp "$CACHE/.$SUITE-$arch.XXXXXX")
        CLEANUP+=("$tmp")
        mmdebstrap --quiet --variant=minbase --architectures="$arch" --format=tar "$SUITE" "$tmp"
        chmod 644 "$tmp"
        mv "$tmp" "$tar"
    fi
}

main() {
    (( EUID == 0 )) || die "needs root (mmdebstrap and podman's storage); run: sudo make debian-base"
    command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed; run: make setup"
    if list_complete; then
        log "$IMAGE exists; to make it again: podman manifest rm $IMAGE"
        return 0
    fi
    if "${PODMAN[@]}" manifest exists "$IMAGE" 2>/dev/null; then
        log "$IMAGE is incomplete; making it again"
        "${PODMAN[@]}" manifest rm "$IMAGE" >/dev/null
    fi
    mkdir -p "$CACHE"
    local arch tar
    local -a variant
    for arch in "${ARCHES[@]}"; do
        tar=$CACHE/$SUITE-$arch.tar
        make_rootfs "$arch" "$tar"
        mapfile -t variant < <(variant_flag "$arch")
        log "podman import $tar as $IMAGE-$arch"
        "${PODMAN[@]}" import --quiet --os linux --arch "$arch" "${variant[@]}" \
            --change 'CMD ["/bin/bash"]' "$tar" "$IMAGE-$arch" >/dev/null
    done
    "${PODMAN[@]}" manifest create "$IMAGE" >/dev/null
    for arch in "${ARCHES[@]}"; do
        mapfile -t variant < <(variant_flag "$arch")
        "${PODMAN[@]}" manifest add --os linux --arch "$arch" "${variant[@]}" \
            "$IMAGE" "containers-storage:$IMAGE-$arch" >/dev/null
    done
    log "$IMAGE: ${ARCHES[*]}"
}

main
