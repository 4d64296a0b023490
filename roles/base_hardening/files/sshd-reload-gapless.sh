#!/usr/bin/env bash
# Reload sshd (its ports included) so that new connections are never refused meanwhile.
#
#   sshd-reload-gapless.sh BRIDGE_PORT CIDR...   (CIDR: the sources ufw lets in to SSH)
#
# Both ways sshd takes a new configuration close every listening socket for a moment: ssh.service's
# reload is a SIGHUP, on which sshd closes its listeners and execs itself again (Debian 12/13); a
# socket-activated sshd (Ubuntu 24.04: its generator turns Port lines into ssh.socket's
# ListenStream) is reloaded by restarting ssh.socket, which closes them and binds the new ones.
# For those milliseconds every SSH port answers a SYN with a reset. So, for the reload:
#   1. a second sshd (transient unit honeydue-sshd-bridge, the same configuration, on BRIDGE_PORT)
#      answers;
#   2. new connections from CIDR to any port sshd listens on now or will listen on are redirected
#      to it (nat PREROUTING REDIRECT; filter INPUT accepts what was redirected, through
#      fail2ban's sshd chain when it exists): the nat table only sees a connection's first packet,
#      so connections established before (Ansible's own) stay with the main sshd;
#   3. sshd reloads; once it listens on every port of its new configuration with new sockets and
#      answers there, the redirect goes, the bridge stops (KillMode=process: sessions it accepted
#      stay) and its filter rules go.
# Nothing of it is left after the script: every rule carries the comment honeydue-sshd-bridge and
# is removed on any exit, also of a run that was interrupted before (removed again at the start).
# BRIDGE_PORT itself is never opened by ufw: only redirected connections reach it.
set -euo pipefail

bridge_port=$1
shift
cidrs=("$@")
tag=honeydue-sshd-bridge
unit=honeydue-sshd-bridge

if systemctl is-enabled --quiet ssh.socket 2>/dev/null; then
  socket_activated=true
elif systemctl is-active --quiet ssh.service; then
  socket_activated=false
else
  exit 0  # sshd does not run: nothing to reload (as `systemctl try-reload-or-restart`)
fi

# The SSH banner on 127.0.0.1:PORT (local connections pass nat OUTPUT, never the redirect).
answers() {
  # shellcheck disable=SC2016  # $1 is the inner shell's
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -c 4 <&3' _ "$1" 2>/dev/null | grep -q '^SSH-'
}

inodes() {
  ss -Hltne "sport = :$1" | grep -o 'ino:[0-9]*' || true
}

rules() {  # CMD TABLE CHAIN: this script's rules, as -D arguments
  "$1" -w -t "$2" -S "$3" 2>/dev/null | grep -F -- "--comment $tag " | sed 's/^-A /-D /' || true
}

cleanup() {
  local cmd rule
  for cmd in iptables ip6tables; do
    rules "$cmd" nat PREROUTING | while read -r rule; do
      # shellcheck disable=SC2086  # the rule's words, as iptables -S printed them (no quoting)
      "$cmd" -w -t nat $rule
    done
  done
  if systemctl is-active --quiet "$unit"; then
    # Connections redirected just before still complete their handshake with the bridge.
    for _ in $(seq 20); do
      [ -z "$(ss -Hnt state syn-recv "sport = :$bridge_port")" ] && break
      sleep 0.1
    done
    sleep 0.2
  fi
  systemctl stop "$unit" 2>/dev/null || true
  systemctl reset-failed "$unit" 2>/dev/null || true
  for cmd in iptables ip6tables; do
    rules "$cmd" filter INPUT | while read -r rule; do
      # shellcheck disable=SC2086
      "$cmd" -w -t filter $rule
    done
  done
}

cleanup  # what an interrupted run may have left
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# The ports sshd listens on now and those of its new configuration.
config_ports=$(/usr/sbin/sshd -T -C user=root,host=localhost,addr=127.0.0.1 | awk '$1 == "port" {print $2}')
live_ports=$(ss -Hltnp | awk '/"sshd"/ {n = split($4, a, ":"); print a[n]}')
ports=$(printf '%s\n' "$config_ports" "$live_ports" | grep -x '[0-9]\+' | grep -vx "$bridge_port" | sort -nu | paste -sd,)
before=$(for port in ${ports//,/ }; do inodes "$port"; done)

# 1. The bridge. /run/sshd (privilege separation) outlives a restart of ssh.service (its drop-in).
install -d -m 0755 /run/sshd
systemd-run --quiet --collect --unit="$unit" --property=KillMode=process --property=RuntimeDirectory="$unit" \
  /usr/sbin/sshd -D -p "$bridge_port" -o PidFile="/run/$unit/sshd.pid"  # -p: instead of the Port lines
for _ in $(seq 100); do
  answers "$bridge_port" && break
  sleep 0.05
done
answers "$bridge_port" || { echo "the bridge sshd does not answer on port $bridge_port" >&2; exit 1; }
bridge_pid=$(systemctl show --property=MainPID --value "$unit")
if ss -Hltnp | grep -F "pid=$bridge_pid," | awk '{print $4}' | grep -qv ":$bridge_port\$"; then
  echo "the bridge sshd listens on more than port $bridge_port (ListenAddress with a port?)" >&2
  exit 1
fi

# 2. Redirected connections are accepted (filter first), then redirected.
for cmd in iptables ip6tables; do
  family=$([ "$cmd" = iptables ] && echo '^[0-9.]+(/[0-9]+)?$' || echo ':')
  mine=()
  for cidr in "${cidrs[@]}"; do
    if [[ $cidr =~ $family ]]; then
      mine+=("$cidr")
    fi
  done
  [ ${#mine[@]} -gt 0 ] || continue
  if ! "$cmd" -w -t nat -S PREROUTING >/dev/null 2>&1; then
    echo "warning: no $cmd nat table here: new connections over it are not bridged" >&2
    continue
  fi
  match=(-p tcp --dport "$bridge_port" -m conntrack --ctstate DNAT -m comment --comment "$tag")
  "$cmd" -w -I INPUT 1 "${match[@]}" -j ACCEPT
  if "$cmd" -w -n -L f2b-sshd >/dev/null 2>&1; then
    "$cmd" -w -I INPUT 1 "${match[@]}" -j f2b-sshd  # fail2ban's bans hold for the bridge too
  fi
  for cidr in "${mine[@]}"; do
    "$cmd" -w -t nat -I PREROUTING 1 -s "$cidr" -p tcp -m multiport --dports "$ports" \
      -m comment --comment "$tag" -j REDIRECT --to-ports "$bridge_port"
  done
done

# 3. The reload, then sshd answers on every port of its configuration, from new listening sockets.
if $socket_activated; then
  systemctl daemon-reload
  systemctl restart ssh.socket
else
  systemctl try-reload-or-restart ssh.service
fi
for _ in $(seq 600); do
  ready=true
  for port in $config_ports; do
    now=$(inodes "$port")
    if [ -z "$now" ] || grep -qxF -f <(printf '%s\n' "$now") <<<"$before" || ! answers "$port"; then
      ready=false
      break
    fi
  done
  $ready && exit 0
  sleep 0.05
done
echo "sshd does not answer on port(s) $config_ports after the reload" >&2
exit 1
