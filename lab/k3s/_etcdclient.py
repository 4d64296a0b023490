"""A small etcd v3 client over etcd's JSON gateway (grpc-gateway), stdlib only.

K3s's etcd serves the gateway and /health on https://127.0.0.1:2382 (listen-client-http-urls), with
client-certificate auth: the stand-in talks to its own etcd there. Keys and values are base64,
64-bit integers are JSON strings (etcd api_grpc_gateway.md). Remote members are reached with the
real ``etcdctl`` (gRPC) instead: their client port serves gRPC only.
"""
from __future__ import annotations

import base64
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class EtcdError(Exception):
    """An error etcd answered (``code``: the gRPC code, ``message`` as etcd wrote it)."""

    def __init__(self, message: str, code: int | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.http_status = message, code, http_status


def _b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def _unb64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def prefix_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with ``prefix`` (etcd's GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


class Gateway:
    """etcd's JSON gateway at ``url`` with the K3s etcd client certificate."""

    def __init__(self, url: str, ca: Path, cert: Path, key: Path, timeout: float = 5.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.ctx.load_cert_chain(str(cert), str(key))
        self.ctx.check_hostname = False  # 127.0.0.1 is in the serving cert's SANs; the CA is what matters

    def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {"message": raw.decode(errors="replace")}
            raise EtcdError(doc.get("message") or doc.get("error") or str(exc), doc.get("code"), exc.code) from None
        except TimeoutError:
            # etcd answers a request it cannot commit or read linearizably (no quorum) with
            # ErrTimeout after its own request timeout; the client gives up at about the same time.
            raise EtcdError("etcdserver: request timed out") from None
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(getattr(exc, "reason", None), TimeoutError):
                raise EtcdError("etcdserver: request timed out") from None
            raise EtcdError(f"etcd unreachable at {self.url}: {getattr(exc, 'reason', exc)}") from None

    def health(self) -> tuple[bool, str]:
        req = urllib.request.Request(self.url + "/health")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=self.timeout) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            doc = json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
            return False, str(getattr(exc, "reason", exc))
        return doc.get("health") == "true", doc.get("reason", "")

    # -- kv ------------------------------------------------------------------------------------
    def get(self, key: str | bytes, *, prefix: bool = False) -> list[dict[str, Any]]:
        k = key.encode() if isinstance(key, str) else key
        body: dict[str, Any] = {"key": _b64(k)}
        if prefix:
            body["range_end"] = _b64(prefix_end(k))
        doc = self.call("/v3/kv/range", body)
        return [{"key": _unb64(kv.get("key")), "value": _unb64(kv.get("value")),
                 "mod_revision": int(kv.get("mod_revision", 0)), "create_revision": int(kv.get("create_revision", 0))}
                for kv in doc.get("kvs", [])]

    def put(self, key: str | bytes, value: str | bytes) -> int:
        doc = self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(doc.get("header", {}).get("revision", 0))

    def delete(self, key: str | bytes, *, prefix: bool = False) -> int:
        k = key.encode() if isinstance(key, str) else key
        body: dict[str, Any] = {"key": _b64(k)}
        if prefix:
            body["range_end"] = _b64(prefix_end(k))
        return int(self.call("/v3/kv/deleterange", body).get("deleted", 0))

    def create(self, key: str | bytes, value: str | bytes) -> bool:
        """Put only if the key does not exist (a txn on create_revision == 0)."""
        doc = self.call("/v3/kv/txn", {
            "compare": [{"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}]})
        return bool(doc.get("succeeded"))

    def update(self, key: str | bytes, value: str | bytes, mod_revision: int) -> bool:
        """Put only if the key is unchanged since ``mod_revision`` (optimistic concurrency)."""
        doc = self.call("/v3/kv/txn", {
            "compare": [{"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(mod_revision)}],
            "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}]})
        return bool(doc.get("succeeded"))

    # -- cluster -------------------------------------------------------------------------------
    def members(self) -> list[dict[str, Any]]:
        return self.call("/v3/cluster/member/list", {"linearizable": True}).get("members", [])

    def promote(self, member_id: str) -> None:
        self.call("/v3/cluster/member/promote", {"ID": str(member_id)})

    def remove(self, member_id: str) -> None:
        self.call("/v3/cluster/member/remove", {"ID": str(member_id)})

    def status(self) -> dict[str, Any]:
        return self.call("/v3/maintenance/status")

    def transfer_leadership(self, target_id: str) -> None:
        self.call("/v3/maintenance/transfer-leadership", {"targetID": str(target_id)})


def etcdctl(endpoints: list[str], tls_dir: Path, *args: str, timeout: float = 20.0) -> dict[str, Any]:
    """Run the real etcdctl (gRPC) against remote members with K3s's etcd client certificate;
    ``-w json`` output parsed. Raises EtcdError with etcdctl's message."""
    cmd = ["etcdctl", "--endpoints", ",".join(endpoints), "--cacert", str(tls_dir / "server-ca.crt"),
           "--cert", str(tls_dir / "client.crt"), "--key", str(tls_dir / "client.key"),
           "--command-timeout", f"{int(timeout)}s", "-w", "json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5, check=False)
    if proc.returncode != 0:
        raise EtcdError((proc.stderr or proc.stdout).strip().splitlines()[-1] if (proc.stderr or proc.stdout).strip()
                        else f"etcdctl exited {proc.returncode}")
    return json.loads(proc.stdout or "{}")
