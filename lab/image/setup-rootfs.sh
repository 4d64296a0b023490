#!/bin/bash
# Runs inside the debootstrapped root (chroot) to make it a bootable container node.
set -euo pipefail
mirror=$1 suite=$2
cat >/etc/apt/sources.list <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
SRC
# A container has no consoles, no udev and no hardware clock: mask what would fail or wait.
for unit in getty@tty1.service console-getty.service serial-getty@.service \
            systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
            systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
            systemd-firstboot.service; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done
systemctl enable ssh.service >/dev/null 2>&1 || true
# Debian's etcd-server enables etcd.service (a single member on 127.0.0.1:2379/2380). Masked: a lab
# node boots with nothing on the etcd ports (base_hardening's tests listen there themselves, and
# the cluster's etcd is started on purpose, never by the package).
systemctl disable etcd.service >/dev/null 2>&1 || true  # its multi-user want and its etcd2 alias
ln -sf /dev/null /etc/systemd/system/etcd.service  # systemctl mask etcd.service
# Preinstalled for base_hardening, but off as on a fresh server: the role configures and enables
# it (its sshd jail, backend systemd, bans through iptables: ufw's own tool).
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
# cloud-init (NoCloud seed from the lab's Hetzner stand-in): the container's network belongs to
# Docker, as a server's belongs to Hetzner's hypervisor; cloud-init must not render or rename it.
mkdir -p /etc/cloud/cloud.cfg.d
cat >/etc/cloud/cloud.cfg.d/90-honeydue-lab.cfg <<CFG
network: {config: disabled}
CFG
# A server's /proc/sys is writable; Docker mounts a container's read-only. With CAP_SYS_ADMIN the
# container may remount its own view (only namespaced keys take effect: base_hardening in the lab
# sets base_hardening_sysctl_apply_global false).
cat >/etc/systemd/system/lab-proc-sys-rw.service <<UNIT
[Unit]
Description=Lab: /proc/sys writable as on a server
DefaultDependencies=no
Before=sysinit.target systemd-sysctl.service
[Service]
Type=oneshot
ExecStart=/bin/mount -o remount,rw /proc/sys
[Install]
WantedBy=sysinit.target
UNIT
systemctl enable lab-proc-sys-rw.service >/dev/null 2>&1 || ln -sf /etc/systemd/system/lab-proc-sys-rw.service /etc/systemd/system/sysinit.target.wants/lab-proc-sys-rw.service
# The K3s stand-in's lab timings (the unit's EnvironmentFile=-/etc/default/%N; K3s itself never
# reads these): promotion every 5 s, node grace 10 s, leases every 2 s, etcd without fsync.
cat >/etc/default/k3s <<ENV
K3S_STANDIN_PROMOTE_INTERVAL=5
K3S_STANDIN_NODE_MONITOR_GRACE=10
K3S_STANDIN_LEASE_INTERVAL=2
K3S_STANDIN_UNSAFE_NO_FSYNC=1
ENV
chmod 0644 /etc/default/k3s
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
