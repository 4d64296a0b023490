# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd's JSON gateway as K3s runs it: https://127.0.0.1:2382 on each server, client-certificate auth
with K3s's etcd client certificate (server/tls/etcd/client.{crt,key}, CA server-ca.crt). Reads the
member list and each member's status for :mod:`._etcd_quorum`; removes a member. uint64 values are
JSON strings on the gateway (etcd api_grpc_gateway.md).

A member's status is read from its own gateway only when this runs on that node; from one node,
the others' raft state comes from their client URLs over gRPC, which needs etcdctl. So the module
runs on every server (delegated, in one task) and the controller assembles the statuses.
"""
from __future__ import annotations

import json

from ansible.module_utils.urls import open_url

from ._etcd_quorum import Member, Status

GATEWAY = "https://127.0.0.1:2382"
TLS_DIR = "/var/lib/rancher/k3s/server/tls/etcd"


class GatewayError(Exception):
    def __init__(self, message, code=None):
        super().__init__(message)
        self.message, self.code = message, code


class Gateway:
    def __init__(self, url=GATEWAY, tls_dir=TLS_DIR, timeout=10.0):
        self.url, self.tls_dir, self.timeout = url.rstrip("/"), tls_dir.rstrip("/"), timeout

    def call(self, path, body=None):
        try:
            resp = open_url(self.url + path, method="POST", data=json.dumps(body or {}),
                            headers={"Content-Type": "application/json"}, timeout=self.timeout,
                            ca_path=f"{self.tls_dir}/server-ca.crt", client_cert=f"{self.tls_dir}/client.crt",
                            client_key=f"{self.tls_dir}/client.key", validate_certs=True)
            return json.loads(resp.read() or b"{}")
        except Exception as exc:  # urllib's HTTPError carries etcd's JSON error
            raw = exc.read() if hasattr(exc, "read") else b""
            try:
                doc = json.loads(raw) if raw else {}
            except ValueError:
                doc = {}
            raise GatewayError(doc.get("message") or doc.get("error") or str(exc), doc.get("code")) from None

    def health(self):
        """(healthy, reason) from /health (GET; 3.5 adds a reason)."""
        try:
            resp = open_url(self.url + "/health", method="GET", timeout=self.timeout,
                            ca_path=f"{self.tls_dir}/server-ca.crt", client_cert=f"{self.tls_dir}/client.crt",
                            client_key=f"{self.tls_dir}/client.key", validate_certs=True)
            doc = json.loads(resp.read() or b"{}")
        except Exception as exc:  # an unhealthy member answers 503 with the same document
            raw = exc.read() if hasattr(exc, "read") else b""
            try:
                doc = json.loads(raw) if raw else {"reason": str(exc)}
            except ValueError:
                doc = {"reason": str(exc)}
        return doc.get("health") == "true", doc.get("reason", "")

    def members(self):
        return [Member.from_gateway(m) for m in self.call("/v3/cluster/member/list", {"linearizable": True}).get("members", [])]

    def status(self):
        doc = self.call("/v3/maintenance/status")
        header = doc.get("header", {})
        alarms = tuple(a.get("alarm", "") for a in self.call("/v3/maintenance/alarm", {"action": "GET"}).get("alarms", []))
        return Status(member_id=str(header.get("member_id", "")), leader=str(doc.get("leader", "")),
                      raft_index=int(doc.get("raftIndex", 0)), alarms=alarms, errors=tuple(doc.get("errors", [])))

    def remove(self, member_id):
        self.call("/v3/cluster/member/remove", {"ID": str(member_id)})


K3S_TLS_DIR = "/var/lib/rancher/k3s/server/tls"


def node_ready(name, api_url="https://127.0.0.1:6443", tls_dir=K3S_TLS_DIR, timeout=10.0):
    """(ready, reason) of Node ``name`` from the Kubernetes API of this server, with K3s's admin client
    certificate (server/tls/client-admin.{crt,key}, CA server-ca.crt)."""
    tls_dir = tls_dir.rstrip("/")
    try:
        resp = open_url(f"{api_url.rstrip('/')}/api/v1/nodes/{name}", method="GET", timeout=timeout,
                        ca_path=f"{tls_dir}/server-ca.crt", client_cert=f"{tls_dir}/client-admin.crt",
                        client_key=f"{tls_dir}/client-admin.key", validate_certs=True)
        node = json.loads(resp.read() or b"{}")
    except Exception as exc:  # 404 before it registers, connection refused while starting
        return False, f"Node {name}: {exc}"
    for cond in node.get("status", {}).get("conditions", []):
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", f"Node {name} Ready={cond.get('status')} ({cond.get('reason', '')})"
    return False, f"Node {name} has no Ready condition yet"
