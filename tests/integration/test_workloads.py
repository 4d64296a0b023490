"""Workloads for real: Deployments whose pods are processes in their own network namespaces on
three netns-nodes (lab/minilab.py), pulled from a real registry, probed for real, reached through
the lab Traefik that K3s's HelmChart + the operator's HelmChartConfig render as a hostNetwork
DaemonSet. The Kubernetes API is the in-memory stand-in; kubernetes.core drives it as an operator would.
"""
from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.minilab import MiniLab
from lab.registry.images import LABEL_CRASH, LABEL_FAIL_PATHS, LABEL_READY_AFTER, build_image, push, skopeo_available
from lab.registry.server import LabRegistry, registry_available
from lab.standins.kube import KubeStandIn

TOKEN = "workloads-token"
DOMAIN = "example.test"
PULL_USER, PULL_PASSWORD = "deploy", "lab-pull-password"
IMAGES = {"good": {LABEL_READY_AFTER: "2"}, "next": {LABEL_READY_AFTER: "2"},
          "broken": {LABEL_FAIL_PATHS: "/api/health/"}, "crash": {LABEL_CRASH: "1"}}
HCC = {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
       "metadata": {"name": "traefik", "namespace": "kube-system"},
       "spec": {"valuesContent": yaml.safe_dump({
           "deployment": {"kind": "DaemonSet"}, "hostNetwork": True,
           "ports": {"web": {"port": 80, "hostPort": 80}, "websecure": {"port": 443, "hostPort": 443}},
           "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
           "service": {"enabled": False},
           "providers": {"kubernetesIngress": {"publishedService": {"enabled": False}}},
           "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                               "runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0},
           "podSecurityContext": {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0},
           "logs": {"access": {"enabled": True}}})}}


def _need_root_tools() -> str | None:
    for why, check in (("ip netns", ["ip", "netns", "list"]), ("iptables", ["iptables", "-S"])):
        if subprocess.run(check, capture_output=True).returncode:
            return f"{why} does not work here (the workloads tests need root and network namespaces)"
    return registry_available() or skopeo_available()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict[str, Any]]:
    reason = _need_root_tools()
    if reason:
        pytest.fail(reason)  # CI installs everything: a missing tool is a defect, not a skip
    tmp = tmp_path_factory.mktemp("workloads")
    lab = MiniLab(prefix="hdwl", state=tmp / "minilab").up()
    registry = LabRegistry("token", {PULL_USER: PULL_PASSWORD}, addr=f"{lab.gateway}:{_free_port(lab.gateway)}").start()
    for name, labels in IMAGES.items():
        image = build_image(tmp / f"oci-{name}", name, labels)
        push(image, registry.host, "honeydue/api", PULL_USER, PULL_PASSWORD, tag=name)
    api = KubeStandIn(token=TOKEN, nodes=0, rollout_seconds=0.0)
    api.bind = lab.gateway
    names = [f"k3s-node-{i}" for i in (1, 2, 3)]
    for i, name in enumerate(names, start=1):
        api.register_node(name, [lab.node_ip(i)], kubelet="process")
    api.start()
    registries = yaml.safe_dump({"mirrors": {registry.host: {"endpoint": [f"http://{registry.host}"]}}})
    lab.start_kubelets(api.url, TOKEN, names, registries=registries)
    kubeconfig = api.kubeconfig(tmp / "kubeconfig")
    try:
        yield {"lab": lab, "api": api, "registry": registry, "kubeconfig": kubeconfig, "names": names, "tmp": tmp}
    finally:
        for name in names:
            log = lab.kubelet_log(name)
            if "Traceback" in log:
                print(f"--- kubelet {name}\n{log[-4000:]}")
        lab.down()
        api.stop()
        registry.stop()


def _free_port(host: str) -> int:
    import socket
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
