#!/usr/bin/env bash
# Build the lab node image from Debian 13 (trixie) with debootstrap + `docker import`.
#
# There is no container registry here, so the image is built locally. Its tag is a hash of its
# recipe (this script, packages.txt, setup-rootfs.sh): an unchanged recipe reuses the image.
# `docker import` (engine 20.10) takes no STOPSIGNAL: containers are run with --stop-signal SIGRTMIN+3.
# Prints the image reference on stdout; everything else goes to stderr.
#
#   LAB_DEBIAN_MIRROR   Debian mirror (default: the first deb URI apt uses here, else deb.debian.org)
#   LAB_IMAGE_REPO      image repository (default honeydue/lab-node)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=${LAB_IMAGE_REPO:-honeydue/lab-node}
log() { printf 'lab-image: %s\n' "$*" >&2; }

tag=$(cat "$here/build.sh" "$here/packages.txt" "$here/setup-rootfs.sh" | sha256sum | cut -c1-12)
ref="$repo:$tag"

if docker image inspect "$ref" >/dev/null 2>&1; then
  log "reusing $ref (recipe unchanged)"
  docker tag "$ref" "$repo:current"
  echo "$ref"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  log "building the image needs root (debootstrap); run as root"
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi

mirror=${LAB_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hoE '^(URIs:|deb) +(\[[^]]*\] +)?https?://[^ ]+/debian/?( |$)' \
             /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
           | grep -oE 'https?://[^ ]+' | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

work=$(mktemp -d /var/tmp/lab-node.XXXXXX)
cleanup() { umount -R "$work/rootfs/proc" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
suite=trixie
pkgs=$(grep -vE '^\s*(#|$)' "$here/packages.txt" | paste -sd, -)

log "debootstrap $suite from $mirror (a few minutes)"
debootstrap --variant=minbase --include="$pkgs" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

cp "$here/setup-rootfs.sh" "$work/rootfs/tmp/setup-rootfs.sh"
chroot "$work/rootfs" /bin/bash /tmp/setup-rootfs.sh "$mirror" "$suite"
rm -f "$work/rootfs/tmp/setup-rootfs.sh"

log "docker import -> $ref"
tar -C "$work/rootfs" -c . | docker import \
  --change 'ENV container=docker' \
  --change 'CMD ["/sbin/init"]' \
  --message "honeydue lab node, recipe $tag" - "$ref" >/dev/null
docker tag "$ref" "$repo:current"
echo "$ref"
