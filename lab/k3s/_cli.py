"""Client subcommands of `k3s` that talk to a running server (K3s: pkg/cli/token, pkg/cli/etcdsnapshot)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import _token
from .server import DEFAULT_DATA_DIR, fetch, log


def _server_token(args: argparse.Namespace) -> str:
    if args.token:
        return args.token
    path = Path(args.data_dir) / "server" / "token"
    try:
        return path.read_text().strip()
    except OSError:
        raise SystemExit(f"failed to read token from {path}: run as root or pass --token") from None


def token_rotate(argv: list[str]) -> int:
    """``k3s token rotate [--token OLD] [--new-token NEW] [--server URL] [--data-dir DIR]``."""
    p = argparse.ArgumentParser(prog="k3s token rotate")
    p.add_argument("--token", "-t", default="")
    p.add_argument("--new-token", default="")
    p.add_argument("--server", "-s", default="https://127.0.0.1:6443")
    p.add_argument("--data-dir", "-d", default=str(DEFAULT_DATA_DIR))
    args = p.parse_args(argv)
    token = _server_token(args)
    try:
        password = _token.password_from(token)
    except _token.TokenError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    ca_path = Path(args.data_dir) / "server" / "tls" / "server-ca.crt"
    ca = ca_path.read_bytes() if ca_path.exists() else None
    status, body = fetch(args.server.rstrip("/") + "/v1-k3s/token", ca_pem=ca, auth=("server", password),
                         method="PUT", body=json.dumps({"token": args.new_token}).encode())
    if status != 200:
        print(f"Error: token rotate failed: {status} {body.decode(errors='replace').strip()}", file=sys.stderr)
        return 1
    print("Token rotated, restart k3s nodes with new token")
    return 0


def etcd_snapshot(argv: list[str]) -> int:
    """``k3s etcd-snapshot save|ls|list|delete|prune``: the request goes to the server (``--etcd-server``),
    authenticated with the server token, as in K3s v1.34."""
    p = argparse.ArgumentParser(prog="k3s etcd-snapshot")
    p.add_argument("operation", choices=["save", "ls", "list", "delete", "prune"])
    p.add_argument("names", nargs="*")
    p.add_argument("--name", default="")
    p.add_argument("--snapshot-retention", "--etcd-snapshot-retention", type=int, default=0)
    p.add_argument("--token", "-t", default="")
    p.add_argument("--etcd-server", default="https://127.0.0.1:6443")
    p.add_argument("--data-dir", "-d", default=str(DEFAULT_DATA_DIR))
    args = p.parse_args(argv)
    password = _token.password_from(_server_token(args))
    op = {"ls": "list"}.get(args.operation, args.operation)
    body = {"operation": op, "name": args.name, "names": args.names, "retention": args.snapshot_retention}
    ca_path = Path(args.data_dir) / "server" / "tls" / "server-ca.crt"
    status, raw = fetch(args.etcd_server.rstrip("/") + "/db/snapshot", ca_pem=ca_path.read_bytes() if ca_path.exists() else None,
                        auth=("server", password), method="POST", body=json.dumps(body).encode(), timeout=300)
    if status != 200:
        print(f"Error: etcd-snapshot {args.operation}: {status} {raw.decode(errors='replace').strip()}", file=sys.stderr)
        return 1
    doc = json.loads(raw)
    if op == "list":
        rows = [("Name", "Location", "Size", "Created")] + [
            (s["name"], s["location"], str(s["size"]), s["created"]) for s in doc["snapshots"]]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for line in doc.get("lines", []):
        # K3s reports save/delete/prune through logrus (pkg/cli/etcdsnapshot: logrus.Infof("Snapshot %s saved.")),
        # which writes to stderr; only `ls` prints its table on stdout.
        log("info", line)
    return 0


def check_config(argv: list[str]) -> int:
    """``k3s check-config``: what the stand-in needs of the node, in K3s's report format (its own
    checks are of kernel options and cgroups, which a lab container shares with the host: not
    simulated). Exits 1 when something required is missing, as K3s does."""
    import shutil
    checks = [("etcd", shutil.which("etcd")), ("etcdctl", shutil.which("etcdctl")), ("etcdutl", shutil.which("etcdutl")),
              ("kubectl", shutil.which("kubectl"))]
    try:
        import cryptography  # noqa: F401
        import yaml  # noqa: F401
        checks.append(("python3-cryptography, python3-yaml", "ok"))
    except ImportError:
        checks.append(("python3-cryptography, python3-yaml", None))
    print("Verifying binaries in /var/lib/rancher/k3s/data/current/bin:")
    for name, found in checks:
        print(f"- {name}: {'ok' if found else 'missing'}")
    failed = [n for n, found in checks if not found]
    print(f"\nSTATUS: {'pass' if not failed else f'{len(failed)} (fail)'}")
    return 1 if failed else 0
