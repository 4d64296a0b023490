"""etcd snapshots as K3s v1.34 takes them (k3s-io/k3s pkg/etcd/snapshot.go, pkg/cli/etcdsnapshot):
on demand (``k3s etcd-snapshot save``: ``POST /db/snapshot`` on the server), on a cron schedule
(``etcd-snapshot-schedule-cron``, default ``0 */12 * * *``) with retention (default 5), optionally
uploaded to S3 (the ``etcd-s3*`` settings), and restored with ``k3s server --cluster-reset
--cluster-reset-restore-path=<file>``.

Files are ``<name>-<node-name>-<unix time>`` in ``etcd-snapshot-dir`` (default
``<data-dir>/server/db/snapshots``); on-demand snapshots are named ``on-demand`` by default,
scheduled ones ``etcd-snapshot``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _s3

if TYPE_CHECKING:
    from .server import Server


def _field_matches(spec: str, value: int, lo: int, hi: int) -> bool:
    for part in spec.split(","):
        rng, _, step = part.partition("/")
        if rng == "*":
            start, end = lo, hi
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(rng)
            if step:
                end = hi
        if start <= value <= end and (value - start) % int(step or 1) == 0:
            return True
    return False


def cron_due(expr: str, when: datetime) -> bool:
    """Whether a 5-field cron expression (robfig/cron's standard parser, as K3s uses) fires at ``when``'s minute."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {expr}")
    minute, hour, dom, month, dow = fields
    return (_field_matches(minute, when.minute, 0, 59) and _field_matches(hour, when.hour, 0, 23)
            and _field_matches(dom, when.day, 1, 31) and _field_matches(month, when.month, 1, 12)
            and _field_matches(dow, (when.weekday() + 1) % 7, 0, 6))


def snapshot_name(prefix: str, node_name: str, unix: int) -> str:
    return f"{prefix}-{node_name}-{unix}"


def snapshot_dir(server: Server) -> Path:
    return Path(server.cfg.get("etcd-snapshot-dir") or server.paths.snapshots)


def _etcdctl_local(server: Server, *args: str) -> subprocess.CompletedProcess:
    t = server.paths.etcd_tls
    return subprocess.run(["etcdctl", "--endpoints", "https://127.0.0.1:2379", "--cacert", str(t / "server-ca.crt"),
                           "--cert", str(t / "client.crt"), "--key", str(t / "client.key"), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def save(server: Server, prefix: str | None = None, s3: _s3.S3Config | None = None) -> list[str]:
    """Take one snapshot (and upload it when S3 is configured); returns what K3s prints."""
    prefix = prefix or "on-demand"
    d = snapshot_dir(server)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = snapshot_name(prefix, server.node_name, int(time.time()))
    tmp = d / f".{name}.part"
    proc = _etcdctl_local(server, "snapshot", "save", str(tmp))
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"failed to take etcd snapshot: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    os.chmod(tmp, 0o600)
    os.replace(tmp, d / name)
    out = [f"Snapshot {name} saved."]
    s3 = s3 or _s3.S3Config.from_k3s(server.cfg)
    if s3 is not None:
        _s3.put(s3, name, (d / name).read_bytes())
        out.append(f"Snapshot {name} uploaded to S3 bucket {s3.bucket}")
    return out


def list_snapshots(server: Server, s3: _s3.S3Config | None = None) -> list[dict[str, Any]]:
    d = snapshot_dir(server)
    out = []
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                st = f.stat()
                out.append({"name": f.name, "location": f"file://{f}", "size": st.st_size,
                            "created": datetime.fromtimestamp(st.st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
    s3 = s3 or _s3.S3Config.from_k3s(server.cfg)
    if s3 is not None:
        for obj in _s3.list_objects(s3):
            out.append({"name": obj["name"], "location": f"s3://{s3.bucket}/{s3.key(obj['name'])}", "size": obj["size"],
                        "created": obj["modified"]})
    return out


def delete(server: Server, names: list[str], s3: _s3.S3Config | None = None) -> list[str]:
    out = []
    d = snapshot_dir(server)
    s3 = s3 or _s3.S3Config.from_k3s(server.cfg)
    for name in names:
        path = d / Path(name).name
        if path.is_file():
            path.unlink()
            out.append(f"Snapshot {name} deleted locally")
        if s3 is not None:
            _s3.delete(s3, name)
            out.append(f"Snapshot {name} deleted from S3")
    return out


def prune(server: Server, retention: int, prefix: str | None = None) -> list[str]:
    """Keep the newest ``retention`` snapshots of this node with ``prefix`` (local files, then S3)."""
    prefix = prefix or server.cfg.get("etcd-snapshot-name") or "etcd-snapshot"
    mine = f"{prefix}-{server.node_name}-"
    d = snapshot_dir(server)
    local = sorted((f for f in d.iterdir() if f.name.startswith(mine)), key=lambda f: int(f.name.rsplit("-", 1)[1])) \
        if d.is_dir() else []
    out = []
    for f in local[:-retention] if retention > 0 else []:
        f.unlink()
        out.append(f"Removed local snapshot {f.name}")
    s3 = _s3.S3Config.from_k3s(server.cfg)
    if s3 is not None:
        keep = int(server.cfg.get("etcd-s3-retention") or retention)
        remote = sorted((o["name"] for o in _s3.list_objects(s3) if o["name"].startswith(mine)),
                        key=lambda n: int(n.rsplit("-", 1)[1]))
        for name in remote[:-keep] if keep > 0 else []:
            _s3.delete(s3, name)
            out.append(f"Removed S3 snapshot {name}")
    return out


def scheduler(server: Server) -> None:
    """Scheduled snapshots on every server (unless etcd-disable-snapshots), checked once a minute."""
    if server.cfg.get("etcd-disable-snapshots"):
        return
    expr = server.cfg.get("etcd-snapshot-schedule-cron") or "0 */12 * * *"
    retention = int(server.cfg.get("etcd-snapshot-retention") or 5)
    prefix = server.cfg.get("etcd-snapshot-name") or "etcd-snapshot"
    last = None
    while not server.stop_event.wait(1.0):
        now = datetime.now().replace(second=0, microsecond=0)
        if now == last or not cron_due(expr, now):
            continue
        last = now
        try:
            for line in save(server, prefix) + prune(server, retention, prefix):
                server_log(line)
        except (RuntimeError, _s3.S3Error, OSError) as exc:
            server_log(f"Failed to take scheduled snapshot: {exc}")


def server_log(msg: str) -> None:
    from .server import log
    log("info", msg)


def restore_into(server: Server, source: str) -> None:
    """--cluster-reset-restore-path: the old db moved aside (db/etcd-old-<unix>), the snapshot restored
    as a one-member cluster of this node (etcdutl snapshot restore)."""
    from . import _etcd
    path = Path(source)
    if not path.is_file():
        s3 = _s3.S3Config.from_k3s(server.cfg)
        if s3 is None:
            raise FileNotFoundError(f"snapshot {source} not found (and etcd-s3 is not set)")
        path = snapshot_dir(server) / Path(source).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_s3.get(s3, Path(source).name))
    etcd_dir = server.paths.etcd
    if etcd_dir.exists():
        shutil.move(str(etcd_dir), str(server.paths.db / f"etcd-old-{int(time.time())}"))
    name = server.member or _etcd.member_name(server.node_name)
    peer = _etcd.peer_url(server.node_ip)
    proc = subprocess.run(["etcdutl", "snapshot", "restore", str(path), "--name", name, "--initial-cluster",
                           f"{name}={peer}", "--initial-advertise-peer-urls", peer, "--data-dir", str(etcd_dir)],
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"etcd snapshot restore failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    (etcd_dir / "name").write_text(name)
    server.member = name
