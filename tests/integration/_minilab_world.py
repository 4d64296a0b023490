"""A workloads world shared by the integration tests that need real pods: three netns-nodes
(lab/minilab.py) whose process kubelets pull from a real lab registry (token auth) and report to the
in-memory Kubernetes stand-in, which K3s's packaged Traefik (a HelmChartConfig makes it a hostNetwork
DaemonSet) serves on every node."""
from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from lab.minilab import MiniLab
from lab.registry.images import build_image, push, skopeo_available
from lab.registry.server import LabRegistry, registry_available
from lab.standins.kube import KubeStandIn

PULL_USER, PULL_PASSWORD = "deploy", "lab-pull-password"
TRAEFIK_VALUES = {
    "deployment": {"kind": "DaemonSet"}, "hostNetwork": True,
    "ports": {"web": {"port": 80, "hostPort": 80}, "websecure": {"port": 443, "hostPort": 443}},
    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
    "service": {"enabled": False},
    "providers": {"kubernetesIngress": {"publishedService": {"enabled": False}}},
    "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                        "runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0},
    "podSecurityContext": {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0},
    "logs": {"access": {"enabled": True}}}
HCC = {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
       "metadata": {"name": "traefik", "namespace": "kube-system"},
       "spec": {"valuesContent": yaml.safe_dump(TRAEFIK_VALUES)}}


def missing_root_tools() -> str | None:
    for why, check in (("ip netns", ["ip", "netns", "list"]), ("iptables", ["iptables", "-S"])):
        if subprocess.run(check, capture_output=True).returncode:
            return f"{why} does not work here (the workloads tests need root and network namespaces)"
    return registry_available() or skopeo_available()


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def world(tmp: Path, prefix: str, images: dict[tuple[str, str], dict[str, str]], token: str) -> Iterator[dict[str, Any]]:
    """``images``: {(repository, tag): labels}. Yields lab, api, registry, kubeconfig, names, tmp."""
    lab = MiniLab(prefix=prefix, state=tmp / "minilab").up()
    registry = LabRegistry("token", {PULL_USER: PULL_PASSWORD}, addr=f"{lab.gateway}:{free_port(lab.gateway)}").start()
    api = None
    names = [f"k3s-node-{i}" for i in (1, 2, 3)]
    try:
        built: dict[tuple[tuple[str, str], ...], Any] = {}
        for (repository, tag), labels in images.items():
            key = tuple(sorted(labels.items()))
            if key not in built:
                built[key] = build_image(tmp / f"oci-{len(built)}", "lab", labels)
            push(built[key], registry.host, repository, PULL_USER, PULL_PASSWORD, tag=tag)
        api = KubeStandIn(token=token, nodes=0, rollout_seconds=0.0)
        api.bind = lab.gateway
        for i, name in enumerate(names, start=1):
            api.register_node(name, [lab.node_ip(i)], kubelet="process")
        api.start()
        registries = yaml.safe_dump({"mirrors": {registry.host: {"endpoint": [f"http://{registry.host}"]}}})
        lab.start_kubelets(api.url, token, names, registries=registries)
        kubeconfig = api.kubeconfig(tmp / "kubeconfig")
        yield {"lab": lab, "api": api, "registry": registry, "kubeconfig": kubeconfig, "names": names, "tmp": tmp}
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                log = lab.kubelet_log(name)
                if "Traceback" in log:
                    print(f"--- kubelet {name}\n{log[-4000:]}")
        lab.down()
        if api is not None:
            api.stop()
        registry.stop()


def through_traefik(node_ip: str, path: str, host: str, timeout: float = 3,
                    scheme: str = "http") -> tuple[int, dict[str, Any] | str]:
    """GET <scheme>://<node_ip><path> with Host: <host>: (status, JSON body or text); status 0 when nothing
    answered. HTTPS takes whatever certificate Traefik serves (its default one before the origin TLS switch)."""
    req = urllib.request.Request(f"{scheme}://{node_ip}{path}", headers={"Host": host})
    context = ssl._create_unverified_context() if scheme == "https" else None  # noqa: S323 - lab Traefik
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as answer:  # noqa: S310 - lab address
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        body = err.read().decode(errors="replace")
        try:
            return err.code, json.loads(body)
        except ValueError:
            return err.code, body
    except OSError as err:
        return 0, str(err)


def wait_for(what: str, check, timeout: float = 60, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
