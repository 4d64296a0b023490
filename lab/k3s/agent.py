"""`k3s agent` for the lab nodes: a worker joins a K3s server without an etcd member.

As K3s's agent (k3s-io/k3s pkg/agent): the token's CA hash is checked against the server's
``/cacerts``; the node password (``/etc/rancher/node/password``, generated once) goes with the
request for the kubelet client certificate (``/v1-k3s/client-kubelet.crt``), which the server
refuses when another node already registered the name with another password; with that
certificate the "kubelet" registers its Node (no node-role labels: a worker) and renews its Lease
in ``kube-node-lease``. READY=1 once registered. No containers run: this is the control-plane view
of an agent.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import _notify, _token
from .server import Fatal, default_route_ip, fetch, log

NODE_PASSWORD = Path("/etc/rancher/node/password")


def node_password(path: Path = NODE_PASSWORD) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


class Agent:
    def __init__(self, cfg: dict[str, Any], *, release: str) -> None:
        self.cfg, self.release = cfg, release
        self.server = str(cfg.get("server") or "").rstrip("/")
        self.node_name = (cfg.get("node-name") or socket.gethostname()).lower()
        ips = cfg.get("node-ip") or []
        ips = [i for ip in ([ips] if isinstance(ips, str) else ips) for i in str(ip).split(",") if i]
        self.node_ip = ips[0] if ips else default_route_ip()
        self.interval = float(os.environ.get("K3S_STANDIN_LEASE_INTERVAL", "10"))
        self.stop_event = threading.Event()

    def _api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
        req = urllib.request.Request(self.server + path, data=data, method=method, headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=20) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        try:
            self._join()
            _notify.notify("READY=1")
            log("info", "k3s agent is up and running")
            while not self.stop_event.wait(self.interval):
                self._renew()
            from ._kubelet import stop
            stop(getattr(self, "kubelet", None))
            return 0
        except Fatal as exc:
            log("fatal", str(exc))
            return 1

    def _join(self) -> None:
        token = str(self.cfg.get("token") or "")
        if not token and self.cfg.get("token-file"):
            token = Path(self.cfg["token-file"]).read_text().strip()
        if not self.server or not token:
            raise Fatal("--server and --token are required for an agent")
        status, ca_pem = fetch(self.server + "/cacerts")
        if status != 200:
            raise Fatal(f"failed to get CA certs: {self.server}/cacerts: {status}")
        try:
            _token.check_ca_hash(token, ca_pem)
            password = _token.parse_token(token)["password"]
        except _token.TokenError as exc:
            raise Fatal(str(exc)) from None
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        ctx.check_hostname = False
        req = urllib.request.Request(self.server + "/v1-k3s/client-kubelet.crt", headers={
            "K3s-Node-Name": self.node_name, "K3s-Node-Password": node_password(),
            "Authorization": "Basic " + base64.b64encode(f"node:{password}".encode()).decode()})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=20) as resp:
                bundle = resp.read()
        except urllib.error.HTTPError as exc:
            raise Fatal(f"failed to get kubelet client certificate: {exc.code} {exc.read().decode(errors='replace').strip()}") from None
        d = Path(self.cfg.get("data-dir") or "/var/lib/rancher/k3s") / "agent"
        d.mkdir(parents=True, exist_ok=True)
        pem = d / "client-kubelet.pem"
        fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(bundle)
        ctx.load_cert_chain(str(pem))
        self.ctx = ctx
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": self.node_name, "labels": {
                "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "k3s", "beta.kubernetes.io/instance-type": "k3s"},
            "annotations": {"k3s.io/internal-ip": self.node_ip, "k3s.io/hostname": self.node_name,
                            "flannel.alpha.coreos.com/public-ip": self.node_ip,
                            **({"lab.honeydue/kubelet": "process"}
                               if os.environ.get("K3S_STANDIN_KUBELET", "process") == "process" else {})}},
            "spec": {"providerID": f"k3s://{self.node_name}"},
            "status": {"addresses": [{"type": "InternalIP", "address": self.node_ip},
                                     {"type": "Hostname", "address": self.node_name}],
                       "nodeInfo": {"kubeletVersion": self.release, "kubeProxyVersion": self.release,
                                    "operatingSystem": "linux", "architecture": "amd64",
                                    "containerRuntimeVersion": "containerd://stand-in"},
                       "conditions": []}}
        status, body = self._api("POST", "/api/v1/nodes", node)
        if status not in (200, 201, 409):
            raise Fatal(f"failed to register node {self.node_name}: {status} {body.get('message', '')}")
        if status == 409:  # registered before: the kubelet updates its status (release, addresses) on start
            self._api("PATCH", f"/api/v1/nodes/{self.node_name}", {"status": {
                "nodeInfo": node["status"]["nodeInfo"], "addresses": node["status"]["addresses"]}})
        self._renew()
        from ._kubelet import spawn
        (d / "server-ca.crt").write_bytes(ca_pem)
        self.kubelet = spawn(api=self.server, ca=d / "server-ca.crt", cert=pem, key=pem, node=self.node_name,
                             data_dir=d.parent, registries=self.cfg.get("private-registry"))

    def _renew(self) -> None:
        name = self.node_name
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                          "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())}}
        try:
            status, _ = self._api("PUT", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}", lease)
            if status == 404:
                self._api("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
        except (urllib.error.URLError, OSError):
            log("info", f"Failed to renew lease for {name}; retrying")
            return
        self._post_status()

    def _post_status(self) -> None:
        """The kubelet's node status update: Ready=True whenever the Node shows anything else (the node
        lifecycle controller sets Unknown when the Lease goes stale; the kubelet sets it back)."""
        name = self.node_name
        try:
            code, node = self._api("GET", f"/api/v1/nodes/{name}")
            if code != 200:
                return
            conds = (node.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                return
            t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                     "message": "kubelet is posting ready status", "lastHeartbeatTime": t, "lastTransitionTime": t}
            others = [c for c in conds if c.get("type") != "Ready"]
            self._api("PATCH", f"/api/v1/nodes/{name}/status", {"status": {"conditions": [*others, ready]}})
        except (urllib.error.URLError, OSError, ValueError):
            log("info", f"Failed to update node status for {name}; retrying")

