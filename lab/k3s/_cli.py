"""Client subcommands of `k3s` that talk to a running server (K3s: pkg/cli/token, pkg/cli/etcdsnapshot)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import _token
from .server import DEFAULT_DATA_DIR, fetch


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
