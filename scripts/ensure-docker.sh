#!/usr/bin/env bash
# Make `docker info` work, idempotently:
#   1. an engine already answers          -> use it;
#   2. root on Debian/Ubuntu              -> install the distribution's docker.io, start dockerd
#                                            in the background, wait until it answers;
#   3. anything else                      -> stop with what to install.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  log "a Docker engine is answering; using it"
  exit 0
fi

if [ "$(id -u)" != 0 ] || [ ! -r /etc/os-release ] || ! grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release; then
  log "no Docker engine answers and this is not root on Debian/Ubuntu."
  log "Install and start Docker (https://docs.docker.com/engine/install/), make 'docker info' work, then re-run."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing the distribution's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd in the background (log: /var/log/dockerd.log)"
  # systemd is not PID 1 on every machine this runs on: start the daemon directly.
  nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "Docker engine is up ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; last lines of /var/log/dockerd.log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
