"""A lab without containers: nodes as network namespaces on one bridge, each running the lab kubelet.

For tests of workloads that need real pods, probes and HTTP but not systemd, SSH or etcd (those
are in the container lab): each node is a network namespace ``<prefix>-n<i>`` holding
``eth0`` = ``10.99.<k>.1<i>`` on a bridge in the namespace ``<prefix>-sw``, which the host reaches
as ``10.99.<k>.1`` (where the API stand-in listens), its own ``cni0`` and pod namespaces (``_podnet``: host-gw routes between the
nodes' ``10.42.<n>.0/24``), and a kubelet process (``_kubelet``) inside it. Traefik pods with
``hostNetwork`` bind :80/:443 of their node's namespace, so ``http://10.99.<k>.1<i>/`` is "node i".

Everything it creates carries the prefix and is removed by ``down()`` (also at interpreter exit).
"""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=check)


@dataclass
class MiniLab:
    prefix: str = "hdml"
    subnet: int = 99          # 10.99.<k>.0/24 with k = lab number below
    lab: int = 0
    nodes: int = 3
    state: Path = Path("/tmp/hd-minilab")
    kubelets: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def switch(self) -> str:
        """The namespace holding the lab's bridge (out of the host's netns, so the host firewall's
        bridge-netfilter FORWARD rules, e.g. Docker's, never see node-to-node frames)."""
        return f"{self.prefix}-sw"

    @property
    def gateway(self) -> str:
        return f"10.{self.subnet}.{self.lab}.1"

    def node_ns(self, i: int) -> str:
        return f"{self.prefix}-n{i}"

    def node_ip(self, i: int) -> str:
        return f"10.{self.subnet}.{self.lab}.{10 + i}"

    def up(self) -> MiniLab:
        self.down()
        atexit.register(self.down)
        _ip("netns", "add", self.switch)
        _ip("link", "add", "br0", "type", "bridge", ns=self.switch)
        _ip("link", "set", "br0", "up", ns=self.switch)
        _ip("link", "add", f"{self.prefix}h", "type", "veth", "peer", "name", "uplink", "netns", self.switch)
        _ip("addr", "add", f"{self.gateway}/24", "dev", f"{self.prefix}h")
        _ip("link", "set", f"{self.prefix}h", "up")
        _ip("link", "set", "uplink", "master", "br0", ns=self.switch)
        _ip("link", "set", "uplink", "up", ns=self.switch)
        for i in range(1, self.nodes + 1):
            ns = self.node_ns(i)
            _ip("netns", "add", ns)
            _ip("link", "add", f"v{i}", "netns", self.switch, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", f"v{i}", "master", "br0", ns=self.switch)
            _ip("link", "set", f"v{i}", "up", ns=self.switch)
            _ip("addr", "add", f"{self.node_ip(i)}/24", "dev", "eth0", ns=ns)
            _ip("link", "set", "eth0", "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
            _ip("route", "add", "default", "via", self.gateway, ns=ns)
        return self

    def start_kubelets(self, api_url: str, token: str, node_names: list[str],
                       images: dict[str, dict[str, str]] | None = None, registries: str | None = None) -> None:
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        token_file = self.state / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        images_file = self.state / "images.json"
        images_file.write_text(json.dumps(images or {}))
        for i, name in enumerate(node_names, start=1):
            log = open(self.state / f"kubelet-{name}.log", "ab")  # noqa: SIM115 - owned by the child
            env = {**os.environ, "PYTHONPATH": str(REPO), "LAB_KUBELET_CWD": str(REPO),
                   "LAB_MINILAB_PREFIX": self.prefix}
            self.kubelets.append(subprocess.Popen(
                ["ip", "netns", "exec", self.node_ns(i), sys.executable, "-m", "lab.k3s._kubelet",
                 "--api", api_url, "--token-file", str(token_file), "--node", name,
                 "--state", str(self.state / name), "--images", str(images_file),
                 *(["--registries", str(self._registries(registries))] if registries is not None else [])],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()

    def _registries(self, text: str) -> Path:
        path = self.state / "registries.yaml"
        path.touch(mode=0o600)
        path.write_text(text)
        return path

    def kubelet_log(self, name: str) -> str:
        path = self.state / f"kubelet-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_kubelets(self) -> None:
        for proc in self.kubelets:
            proc.terminate()
        for proc in self.kubelets:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.kubelets.clear()

    def pod_pid(self, node: str, pod_uid: str, container: str) -> int:
        """The pid of a pod's container process (the kubelet writes it beside the container's log)."""
        return int((self.state / node / pod_uid / f"{container}.pid").read_text())

    def _kill_ours(self) -> None:
        """Every process a kubelet of this mini-lab started (pods keep the kubelet's mount namespace,
        where their network namespaces are mounted, so they are found by their environment)."""
        marker = f"LAB_MINILAB_PREFIX={self.prefix}".encode()
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if marker in environ.read_bytes().split(b"\0"):
                    os.kill(int(environ.parent.name), 9)
            except (OSError, ValueError):
                continue

    def down(self) -> None:
        self.stop_kubelets()
        self._kill_ours()
        listed = _ip("netns", "list", check=False).stdout.split("\n")
        ours = [line.split()[0] for line in listed if line.startswith(f"{self.prefix}-n")]
        for ns in ours:
            # pods' namespaces were made by the kubelet inside that node: kill what still runs there
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)
            _ip("netns", "del", ns, check=False)
        pod_dirs = [d.name for d in self.state.glob("*/*") if d.is_dir()] if self.state.exists() else []
        for line in listed:
            name = line.split()[0] if line.strip() else ""
            if name.startswith("cni-") and name[4:] in pod_dirs:  # a pod namespace one of our kubelets made
                for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                          text=True).stdout.split():
                    subprocess.run(["kill", "-9", pid], capture_output=True)
                _ip("netns", "del", name, check=False)
        _ip("netns", "del", self.switch, check=False)
        _ip("link", "del", f"{self.prefix}h", check=False)
        time.sleep(0.1)
