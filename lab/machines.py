"""The lab's "hypervisor": the Hetzner stand-in's servers as lab node containers.

With a :class:`DockerMachines` attached (``HcloudStandIn.machines``), a server the API creates *is* a
container of the lab node image (``honeydue-lab-<name>``), started as Hetzner starts a VM:

* on the public lab network (``honeydue-lab``, the stand-in's public range 203.0.113.0/24) at the
  address of its Primary IPv4, so the dynamic inventory's ``ansible_host`` is reachable by SSH;
* on one Docker network per Hetzner network it is attached to (subnet = the network's ``ip_range``,
  gateway its first address, as Hetzner routes a private network), at its private address;
* with the request's ``user_data`` handed to cloud-init through the NoCloud datasource: a seed
  directory (``meta-data`` with the instance id and hostname, ``user-data`` as sent) mounted at
  ``/var/lib/cloud/seed/nocloud``, so the cloud-config hcloud_provision renders really runs at
  first boot (users, SSH keys, sshd settings, runcmd).

Power actions map to ``docker start``/``stop``/``restart``; deleting a server removes its container.
What the lab does not model: Hetzner's cloud firewall (the nodes' ufw is what filters), rebuilds,
Primary IP moves between servers. Containers run without ``--privileged`` (it fails on these
machines): the capabilities systemd, ufw and ip need, unconfined seccomp/apparmor, the host cgroup
namespace with /sys/fs/cgroup rw, tmpfs on /run.
"""
from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

PREFIX = "honeydue-lab-"
LABEL = "io.honeydue.lab"
PUBLIC_NETWORK = "honeydue-lab"
PUBLIC_SUBNET = "203.0.113.0/24"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def ensure_network(name: str, subnet: str, internal: bool = False) -> None:
    """A Docker bridge network with this subnet (gateway: its first address); replaced if it differs."""
    proc = docker("network", "inspect", name, check=False)
    if proc.returncode == 0:
        have = [c.get("Subnet") for c in (json.loads(proc.stdout)[0].get("IPAM", {}).get("Config") or [])]
        if have == [subnet]:
            return
        docker("network", "rm", name)
    net = ipaddress.ip_network(subnet)
    docker("network", "create", "--driver", "bridge", "--subnet", subnet, "--gateway", str(net.network_address + 1),
           "--label", f"{LABEL}=true", *(["--internal"] if internal else []), name)


class DockerMachines:
    """Containers for the Hetzner stand-in's servers (see the module docstring)."""

    def __init__(self, image: str, seed_root: Path, *, public_network: str = PUBLIC_NETWORK,
                 prefix: str = PREFIX) -> None:
        self.image, self.seed_root, self.public_network, self.prefix = image, Path(seed_root), public_network, prefix
        self.networks: dict[str, str] = {}  # Hetzner network ip_range -> Docker network name
        self.events: list[str] = []

    def container(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _log(self, line: str) -> None:
        self.events.append(line)
        print(f"lab machines: {line}", file=sys.stderr, flush=True)

    def private_network(self, net: dict[str, Any]) -> str:
        """The Docker network standing for a Hetzner network (created on first use)."""
        cidr = net["ip_range"]
        if cidr not in self.networks:
            name = f"{self.prefix}net-{net['name']}"[:60]
            ensure_network(name, cidr)
            self.networks[cidr] = name
        return self.networks[cidr]

    def _seed(self, server: dict[str, Any], user_data: str | None) -> Path:
        seed = self.seed_root / server["name"]
        if seed.exists():
            shutil.rmtree(seed)
        seed.mkdir(parents=True, mode=0o700)
        (seed / "meta-data").write_text(f"instance-id: hcloud-{server['id']}\nlocal-hostname: {server['name']}\n")
        (seed / "user-data").write_text(user_data or "#cloud-config\n{}\n")
        for f in seed.iterdir():
            f.chmod(0o600)
        return seed

    def create(self, server: dict[str, Any], public_ipv4: str | None, private: list[tuple[dict[str, Any], str]],
               user_data: str | None, start: bool) -> None:
        """A new server: its container created on its networks with its seed, started unless ``start`` is false."""
        name = self.container(server["name"])
        docker("rm", "-f", name, check=False)
        seed = self._seed(server, user_data)
        args = ["create", "--name", name, "--hostname", server["name"], "--label", f"{LABEL}=true",
                "--label", f"io.honeydue.hcloud.id={server['id']}",
                "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
                "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                "--tmpfs", "/run", "--tmpfs", "/run/lock", "--stop-signal", "SIGRTMIN+3",
                "-v", f"{seed}:/var/lib/cloud/seed/nocloud:ro",
                "--network", self.public_network]
        if public_ipv4:
            args += ["--ip", public_ipv4]
        docker(*args, self.image, "/sbin/init")
        for net, ip in private:
            docker("network", "connect", "--ip", ip, self.private_network(net), name)
        if start:
            docker("start", name)
        self._log(f"{server['name']}: created {name} (public {public_ipv4}, private "
                  f"{', '.join(ip for _, ip in private) or '-'}){'' if start else ', off'}")

    def attach(self, server: dict[str, Any], net: dict[str, Any], ip: str) -> None:
        docker("network", "connect", "--ip", ip, self.private_network(net), self.container(server["name"]))
        self._log(f"{server['name']}: attached to {net['name']} at {ip}")

    def detach(self, server: dict[str, Any], net: dict[str, Any]) -> None:
        docker("network", "disconnect", self.private_network(net), self.container(server["name"]), check=False)
        self._log(f"{server['name']}: detached from {net['name']}")

    def power(self, server: dict[str, Any], what: str) -> None:
        """``start``, ``stop`` or ``restart`` the server's container."""
        docker(what, self.container(server["name"]), check=False)
        self._log(f"{server['name']}: {what}")

    def delete(self, server: dict[str, Any]) -> None:
        docker("rm", "-f", self.container(server["name"]), check=False)
        seed = self.seed_root / server["name"]
        if seed.exists():
            shutil.rmtree(seed)
        self._log(f"{server['name']}: deleted")

    def remove_all(self) -> None:
        """Every lab node container and network this lab made (``make lab-down``)."""
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}=true", check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        nets = docker("network", "ls", "-q", "--filter", f"label={LABEL}=true", check=False).stdout.split()
        for net in nets:
            docker("network", "rm", net, check=False)
