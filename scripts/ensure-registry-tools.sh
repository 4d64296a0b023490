#!/usr/bin/env bash
# Make the lab's container registry tools available, idempotently (the registry integration tests
# and the K3s stand-in's image pulls need them; `make integration` runs this first):
#   /usr/bin/docker-registry   Debian's distribution/registry 2.8 (package docker-registry)
#   skopeo                     pushes the lab's OCI images into it (package skopeo)
#   redis-server               Redis 7, to check the Redis config the app role renders (AOF, the
#                              two-password rotation) against the real server (package redis-server)
#
#   1. both present                        -> nothing to do;
#   2. root on Debian/Ubuntu               -> apt-get install them. Debian's docker-registry ships a
#                                             system service (docker-registry.service, :5000): the
#                                             lab never uses it, so it is stopped, disabled and masked
#                                             (and kept from starting during the install);
#   3. anything else                       -> stop with what to install.
# The lab starts its own registries (lab/registry) on loopback ports with generated configs.
set -euo pipefail

log() { printf 'ensure-registry-tools: %s\n' "$*" >&2; }

missing=()
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
[ -x /usr/bin/redis-server ] || missing+=(redis-server)

quiet_system_service() {
  # Never leave Debian's system registry listening on :5000, nor its Redis on :6379.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for unit in docker-registry.service redis-server.service; do
      systemctl stop "$unit" >/dev/null 2>&1 || true
      systemctl disable "$unit" >/dev/null 2>&1 || true
      systemctl mask "$unit" >/dev/null 2>&1 || true
    done
  else
    if [ -x /etc/init.d/redis-server ]; then
      /etc/init.d/redis-server stop >/dev/null 2>&1 || true
    fi
    for pid in $(pgrep -u redis -f '/usr/bin/redis-server 127.0.0.1:6379' || true); do
      kill "$pid" 2>/dev/null || true
    done
    # No systemd as PID 1: the package's postinst may have started it through its init script.
    if [ -x /etc/init.d/docker-registry ]; then
      /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1 && [ -x /etc/init.d/docker-registry ]; then
      update-rc.d docker-registry disable >/dev/null 2>&1 || true
    fi
    # A registry started by the package runs as user docker-registry with the system config.
    for pid in $(pgrep -u docker-registry -f '/usr/bin/docker-registry serve /etc/docker/registry/config.yml' || true); do
      kill "$pid" 2>/dev/null || true
    done
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  quiet_system_service
  log "docker-registry, skopeo and redis-server are installed"
  exit 0
fi

if [ "$(id -u)" != 0 ] || [ ! -r /etc/os-release ] || ! grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release; then
  log "missing: ${missing[*]}, and this is not root on Debian/Ubuntu."
  log "Install them (Debian/Ubuntu: apt-get install docker-registry skopeo redis-server), then re-run."
  exit 1
fi

log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep the package's service from starting during the install: a policy-rc.d that refuses every
# start (exit 101), unless the machine already has one; it is removed again afterwards.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 0755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
quiet_system_service
log "installed: docker-registry $(dpkg-query -W -f='${Version}' docker-registry), skopeo $(skopeo --version | awk '{print $3}'), redis-server $(dpkg-query -W -f='${Version}' redis-server)"
