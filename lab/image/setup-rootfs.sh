#!/bin/bash
# Runs inside the debootstrapped root (chroot) to make it a bootable container node.
set -euo pipefail
mirror=$1
cat >/etc/apt/sources.list <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
SRC
# A container has no consoles, no udev and no hardware clock: mask what would fail or wait.
for unit in getty@tty1.service console-getty.service serial-getty@.service \
            systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
            systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
            systemd-firstboot.service; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done
systemctl enable ssh.service >/dev/null 2>&1 || true
# Preinstalled for base_hardening, but off as on a fresh server: the role configures and enables
# it (Debian's stock sshd jail looks for /var/log/auth.log, which a journald-only node lacks).
systemctl disable fail2ban.service >/dev/null 2>&1 || true
# Host keys are generated at first boot (each node gets its own), machine-id likewise.
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/systemd/system/ssh.service.d
cat >/etc/systemd/system/ssh.service.d/10-hostkeys.conf <<UNIT
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
echo 'lab-node' >/etc/hostname
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
