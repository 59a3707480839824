#!/usr/bin/env bash
# Prepare a Debian/Ubuntu host for building and testing imgfront.
#
# Idempotent: every step checks first and does nothing when its result is already there, so a
# re-run on a prepared host takes well under a second. As a non-root user it changes nothing: it
# prints what is missing and how to add it (or that root is needed), and exits 1.
#
# Steps: host packages, the arm64 dpkg architecture, static busybox binaries for amd64 and arm64
# (test and demo base images), podman's runc + ulimit settings, and the binfmt_misc mount.
# The Python venv and the qemu handler registration are done by the Makefile (`make setup`).
set -euo pipefail

PACKAGES=(
    podman buildah skopeo qemu-user-static runc docker.io docker-registry openssh-server
    mmdebstrap apache2-utils python3-venv ca-certificates make
)
BUSYBOX_DIR=${IMGFRONT_BUSYBOX_DIR:-/var/cache/imgfront/busybox}
PODMAN_DROPIN_DIR=/etc/containers/containers.conf.d
PODMAN_DROPIN=$PODMAN_DROPIN_DIR/50-imgfront.conf
PODMAN_CONF=/etc/containers/containers.conf
BINFMT_DIR=/proc/sys/fs/binfmt_misc

# crun fails here ("cgroups in hybrid mode not supported"); runc works if ulimits stay at or
# below the host's.
PODMAN_SETTINGS='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"'
PODMAN_HEADER='# Written by imgfront scripts/setup-host.sh: crun fails with cgroups in hybrid mode.'

CLEANUP=()
cleanup() { if (( ${#CLEANUP[@]} )); then rm -rf "${CLEANUP[@]}"; fi; }
trap cleanup EXIT

log() { printf 'setup-host: %s\n' "$*"; }
die() { printf 'setup-host: error: %s\n' "$*" >&2; exit 1; }

# --- checks (read-only, usable without root) -------------------------------------------------

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
            printf '%s\n' "$pkg"
        fi
    done
}

has_arm64_arch() {
    [[ $(dpkg --print-architecture) == arm64 ]] || dpkg --print-foreign-architectures | grep -qx arm64
}

has_busybox() {
    [[ -x $BUSYBOX_DIR/busybox-amd64 && -x $BUSYBOX_DIR/busybox-arm64 ]]
}

# Our drop-in (comments and blank lines aside), or a containers.conf we wrote as the fallback.
has_podman_conf() {
    if [[ -f $PODMAN_DROPIN ]] &&
        [[ $(grep -v -e '^#' -e '^[[:space:]]*$' "$PODMAN_DROPIN") == "$PODMAN_SETTINGS" ]]; then
        return 0
    fi
    [[ -f $PODMAN_CONF ]] && grep -qF "$PODMAN_HEADER" "$PODMAN_CONF"
}

has_binfmt_mount() {
    awk '$2 == "/proc/sys/fs/binfmt_misc" { found = 1 } END { exit !found }' /proc/mounts
}

# --- actions (root) --------------------------------------------------------------------------

APT_UPDATED=0
apt_update_once() {
    if (( ! APT_UPDATED )); then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
}

# Keep package maintainer scripts from starting daemons (dockerd, sshd, registry) as a side
# effect; the tests start their own on loopback. Only when the host has no policy of its own.
with_services_held() {
    local policy=/usr/sbin/policy-rc.d ours=0 rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        ours=1
    fi
    "$@" || rc=$?
    if (( ours )); then rm -f "$policy"; fi
    return "$rc"
}

install_packages() {
    local -a missing
    mapfile -t missing < <(missing_packages)
    (( ${#missing[@]} )) || return 0
    apt_update_once
    log "installing: ${missing[*]}"
    # Recommends stay on: netavark's iptables and podman's catatonit come that way.
    with_services_held env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
        apt-get install -y -qq "${missing[@]}"
}

add_arm64_arch() {
    has_arm64_arch && return 0
    log "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    APT_UPDATED=0  # the arm64 package lists are not there yet
    apt_update_once
}

# Extract bin/busybox from one busybox-static .deb into $BUSYBOX_DIR/busybox-<arch>.
extract_busybox() {
    local deb=$1 arch=$2 work=$3
    local root=$work/root-$arch
    mkdir -p "$root"
    dpkg -x "$deb" "$root"
    local bin
    for bin in "$root/bin/busybox" "$root/usr/bin/busybox"; do
        if [[ -f $bin ]]; then
            install -m 755 "$bin" "$BUSYBOX_DIR/.busybox-$arch.tmp"
            mv -f "$BUSYBOX_DIR/.busybox-$arch.tmp" "$BUSYBOX_DIR/busybox-$arch"
            return 0
        fi
    done
    die "no busybox binary in $deb"
}

fetch_busybox() {
    has_busybox && return 0
    mkdir -p "$BUSYBOX_DIR"
    local work
    work=$(mktemp -d "$BUSYBOX_DIR/.download.XXXXXX")
    CLEANUP+=("$work")
    # apt-get download drops privileges to _apt, which must be able to write here.
    chmod 755 "$work"
    chown _apt "$work" 2>/dev/null || true
    log "downloading busybox-static for amd64 and arm64"
    if ! (cd "$work" && apt-get download -qq busybox-static:amd64 busybox-static:arm64); then
        # Stale or missing package lists: refresh once and retry.
        APT_UPDATED=0
        apt_update_once
        (cd "$work" && apt-get download -qq busybox-static:amd64 busybox-static:arm64) ||
            die "apt-get download busybox-static failed; on Ubuntu, arm64 packages come from" \
                "ports.ubuntu.com (add an [arch=arm64] apt source for it)"
    fi
    local arch deb
    for arch in amd64 arm64; do
        deb=$(compgen -G "$work/busybox-static_*_$arch.deb" | head -n1) || true
        [[ -n $deb ]] || die "apt-get download gave no busybox-static .deb for $arch"
        extract_busybox "$deb" "$arch" "$work"
    done
    log "busybox binaries in $BUSYBOX_DIR"
}

configure_podman() {
    has_podman_conf && return 0
    mkdir -p "$PODMAN_DROPIN_DIR"
    printf '%s\n' "$PODMAN_HEADER" "$PODMAN_SETTINGS" >"$PODMAN_DROPIN"
    log "wrote $PODMAN_DROPIN"
    # podman 4.3.1 reads containers.conf.d; an older one would still report crun here.
    local runtime
    runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null || true)
    if [[ $runtime == runc ]]; then
        return 0
    fi
    rm -f "$PODMAN_DROPIN"
    if [[ -e $PODMAN_CONF ]]; then
        log "NOTE: this podman ignores $PODMAN_DROPIN_DIR and $PODMAN_CONF already exists;"
        log "      add these settings to it by hand:"
        printf '%s\n' "$PODMAN_SETTINGS" | sed 's/^/      /'
        return 0
    fi
    printf '%s\n' "$PODMAN_HEADER" "$PODMAN_SETTINGS" >"$PODMAN_CONF"
    log "this podman ignores $PODMAN_DROPIN_DIR; wrote $PODMAN_CONF instead"
}

mount_binfmt() {
    has_binfmt_mount && return 0
    log "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc "$BINFMT_DIR"
}

# --- non-root: report only, and exit 1 (everything after setup needs root) ----------------

report_missing() {
    local -a missing steps=()
    mapfile -t missing < <(missing_packages)
    if (( ${#missing[@]} )); then
        steps+=("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}")
    fi
    if ! has_arm64_arch; then
        steps+=("dpkg --add-architecture arm64 && apt-get update")
    fi
    if ! has_busybox; then
        steps+=("mkdir -p $BUSYBOX_DIR && cd $BUSYBOX_DIR && apt-get download busybox-static:amd64 busybox-static:arm64, then dpkg -x each .deb and copy its bin/busybox to busybox-amd64 / busybox-arm64")
    fi
    if ! has_podman_conf; then
        steps+=("mkdir -p $PODMAN_DROPIN_DIR && printf '${PODMAN_SETTINGS//$'\n'/\\n}\\n' >$PODMAN_DROPIN")
    fi
    if ! has_binfmt_mount; then
        steps+=("mount -t binfmt_misc binfmt_misc $BINFMT_DIR")
    fi
    {
        if (( ${#steps[@]} == 0 )); then
            echo "setup-host: the host packages and config are in place, but building and running"
            echo "containers here needs root (rootless podman is not set up). Run 'sudo make setup'"
            echo "(or sudo make demo / sudo make test). 'make test-fast' and 'make lint' work as $(id -un)."
        else
            echo "setup-host: this host is not ready and setting it up needs root."
            echo "Run 'sudo make setup' (or 'sudo $0'), or do these steps as root:"
            local i
            for i in "${!steps[@]}"; do
                printf '  %d. %s\n' "$((i + 1))" "${steps[$i]}"
            done
            echo "Then, as root in the repo, register the arm64 handler: make venv && .venv/bin/imgfront emulation install --platform linux/arm64"
        fi
    } >&2
}

main() {
    if (( EUID != 0 )); then
        report_missing
        exit 1
    fi
    install_packages
    add_arm64_arch
    fetch_busybox
    configure_podman
    mount_binfmt
    log "host is set up"
}

main "$@"
