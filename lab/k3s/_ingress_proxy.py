"""The lab Traefik's data plane: a real HTTP(S) reverse proxy on the node's entry points.

It serves what a Traefik v3 pod with ``hostNetwork`` serves (Traefik v3 docs: entryPoints,
forwardedHeaders, TLS options, access logs), from a JSON file the node's kubelet writes from the
cluster's Ingresses, Services and EndpointSlices (``_ingress_routes``) and the DaemonSet's args:

    {"entrypoints": {"web": {"address": "0.0.0.0", "port": 80, "trusted_ips": ["..."],
                             "insecure": false},
                     "websecure": {..., "port": 443,
                                   "tls": {"cert": "...", "key": "...", "client_ca": "...",
                                           "client_auth": "RequireAndVerifyClientCert"}}},
     "routes": [{"host": "api.example.com", "path": "/", "exact": false,
                 "backends": [["10.42.1.7", 8000]], "service": "honeydue/api:8000"}],
     "access_log": true}

Answers as Traefik does: ``GET /ping`` on the ``traefik`` entry point answers ``OK`` (``--ping``,
the chart's probes); no router -> ``404 page not found``; a backend that refuses or times out
-> ``502 Bad Gateway`` (Traefik does not retry without the retry middleware). Forwarded headers:
from a peer outside ``trusted_ips`` (and not ``insecure``) incoming ``X-Forwarded-*`` and
``X-Real-Ip`` are dropped; then ``X-Forwarded-For`` gets the peer appended, and ``-Proto``,
``-Host``, ``-Port``, ``-Server`` and ``X-Real-Ip`` are set unless a trusted peer set them.
Backends are chosen round robin per route. The file is re-read when it changes (within 0.2 s).
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._ingress_routes import Route, pick

FORWARDED = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
             "x-forwarded-server", "x-real-ip")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
BACKEND_TIMEOUT = 5.0
RELOAD_SECONDS = 0.2


def trusted(peer: str, ranges: list[str], insecure: bool) -> bool:
    """Whether forwarded headers from ``peer`` are kept (Traefik ``forwardedHeaders``)."""
    if insecure:
        return True
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(r, strict=False) for r in ranges)


def forward_headers(headers: list[tuple[str, str]], peer: str, *, keep: bool, proto: str, port: int,
                    server: str) -> list[tuple[str, str]]:
    """The request headers sent to the backend, with Traefik's forwarded headers."""
    if not keep:
        headers = [(k, v) for k, v in headers if k.lower() not in FORWARDED]
    lower = {k.lower(): v for k, v in headers}
    out = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "x-forwarded-for"]
    chain = lower.get("x-forwarded-for")
    out.append(("X-Forwarded-For", f"{chain}, {peer}" if chain else peer))
    for name, value in (("X-Forwarded-Proto", proto), ("X-Forwarded-Host", lower.get("host", "")),
                        ("X-Forwarded-Port", str(port)), ("X-Forwarded-Server", server),
                        ("X-Real-Ip", peer)):
        if name.lower() not in lower:
            out.append((name, value))
    return out


@dataclass
class Config:
    path: Path
    mtime: float = -1.0
    data: dict[str, Any] = field(default_factory=dict)
    table: list[Route] = field(default_factory=list)
    turn: dict[str, int] = field(default_factory=dict)

    def refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime == self.mtime:
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return  # a half-written file: keep the last good one (the writer renames atomically)
        self.mtime, self.data = mtime, data
        self.table = [Route(host=r.get("host", ""), path=r.get("path", "/"), exact=bool(r.get("exact")),
                            backends=tuple((b[0], int(b[1])) for b in r["backends"]), service=r.get("service", ""))
                      for r in data.get("routes", [])]
        self.table.sort(key=lambda r: -r.priority)

    def backend(self, route: Route) -> tuple[str, int]:
        key = f"{route.host}{route.path}"
        n = self.turn.get(key, 0)
        self.turn[key] = n + 1
        return route.backends[n % len(route.backends)]


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return lines[0], headers  # type: ignore[return-value]


def _simple(code: int, reason: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _to_backend(addr: tuple[str, int], head: bytes, body: bytes) -> bytes | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*addr), BACKEND_TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        return None
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(-1), BACKEND_TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        return None
    finally:
        writer.close()


class Proxy:
    def __init__(self, config: Config, log: Any = sys.stdout) -> None:
        self.config = config
        self.log = log
        self.server_name = socket.gethostname()
        self.tls: dict[str, tuple[ssl.SSLContext, tuple[Any, ...]]] = {}

    def refresh_tls(self) -> None:
        """Apply changed certificates or client-certificate rules to the running TLS entry points."""
        for name, (ctx, key) in list(self.tls.items()):
            tls = self.config.data.get("entrypoints", {}).get(name, {}).get("tls")
            if tls and _tls_key(tls) != key:
                try:
                    tls_context(tls, ctx)
                except (OSError, ssl.SSLError) as err:
                    print(f"lab traefik: keeping the previous TLS of {name}: {err}", file=sys.stderr, flush=True)
                    continue
                self.tls[name] = (ctx, _tls_key(tls))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, entry: str) -> None:
        peer = (writer.get_extra_info("peername") or ("", 0))[0]
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                keep_alive = await self._one(reader, writer, entry, peer, *head)
                if not keep_alive:
                    return
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, entry: str, peer: str,
                   request_line: str, headers: list[tuple[str, str]]) -> bool:
        self.config.refresh()
        self.refresh_tls()
        ep = self.config.data.get("entrypoints", {}).get(entry, {})
        method, target, version = (request_line.split(" ") + ["", "", ""])[:3]
        lower = {k.lower(): v for k, v in headers}
        body = await reader.readexactly(int(lower.get("content-length", "0") or 0))
        started = time.monotonic()
        server: tuple[str, int] | None = None
        route = None if entry == "traefik" else pick(self.config.table, lower.get("host", ""), target)
        if entry == "traefik" and target.split("?", 1)[0] == "/ping":
            answer, status = _simple(200, "OK", b"OK"), 200  # --ping on the traefik entry point
        elif route is None:
            answer, status = _simple(404, "Not Found", b"404 page not found\n"), 404
        else:
            keep = trusted(peer, ep.get("trusted_ips", []), bool(ep.get("insecure")))
            fwd = forward_headers(headers, peer, keep=keep, proto="https" if ep.get("tls") else "http",
                                  port=int(ep.get("port", 0)), server=self.server_name)
            head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fwd) + \
                "Connection: close\r\n\r\n"
            server = self.config.backend(route)
            got = await _to_backend(server, head.encode("latin-1"), body)
            if got is None:
                answer, status = _simple(502, "Bad Gateway", b"Bad Gateway"), 502
            else:
                answer, status = _relay(got), int(got.split(b" ", 2)[1] or 0)
        writer.write(answer)
        await writer.drain()
        if self.config.data.get("access_log"):
            ms = int((time.monotonic() - started) * 1000)
            upstream = f"http://{server[0]}:{server[1]}" if server else "-"
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            print(f'{peer} - - [{stamp}] "{method} {target} {version}" {status} {len(answer)} "-" '
                  f'"{lower.get("user-agent", "-")}" 1 "{route.service if route else "-"}" '
                  f'"{upstream}" {ms}ms', file=self.log, flush=True)
        return lower.get("connection", "").lower() != "close" and version == "HTTP/1.1"


def _relay(raw: bytes) -> bytes:
    """A backend's answer, re-framed for a kept-alive client connection."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    kept = [ln for ln in lines[1:] if ln.split(b":", 1)[0].strip().lower().decode("latin-1")
            not in HOP_BY_HOP | {"content-length"}]
    return b"\r\n".join([lines[0], *kept, b"Content-Length: %d" % len(body)]) + b"\r\n\r\n" + body


def tls_context(tls: dict[str, Any], ctx: ssl.SSLContext | None = None) -> ssl.SSLContext:
    """The entry point's TLS: the default certificate, and client certificates as TLSOption asks.

    Given ``ctx``, it is updated in place: new handshakes get the new certificate and client
    certificate rule while the listener stays up (Traefik reloads TLS without closing its ports)."""
    ctx = ctx or ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls["cert"], tls["key"])
    auth = tls.get("client_auth", "NoClientCert")
    if tls.get("client_ca") and auth != "NoClientCert":
        ctx.load_verify_locations(tls["client_ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED if auth == "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _tls_key(tls: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a TLS setting, files' contents included (a renewed certificate at the same path)."""
    stamps = []
    for name in ("cert", "key", "client_ca"):
        try:
            stamps.append(Path(tls[name]).stat().st_mtime if tls.get(name) else None)
        except OSError:
            stamps.append(None)
    return (json.dumps(tls, sort_keys=True), *stamps)


async def run(config_path: Path) -> None:
    config = Config(config_path)
    while True:
        config.refresh()
        if config.data:
            break
        await asyncio.sleep(0.2)
    proxy = Proxy(config)
    servers = []
    for name, ep in config.data.get("entrypoints", {}).items():
        ctx = tls_context(ep["tls"]) if ep.get("tls") else None
        if ctx is not None:
            proxy.tls[name] = (ctx, _tls_key(ep["tls"]))

        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter, name: str = name) -> None:
            await proxy.handle(r, w, name)

        servers.append(await asyncio.start_server(accept, ep.get("address", "0.0.0.0"), int(ep["port"]),  # noqa: S104
                                                  ssl=ctx, reuse_address=True))
        print(f"lab traefik: entry point {name} on :{ep['port']}{' (TLS)' if ctx else ''}", file=sys.stderr,
              flush=True)
    async def watch() -> None:
        while True:  # the file is also read on every request; this catches changes between requests
            await asyncio.sleep(RELOAD_SECONDS)
            config.refresh()
            proxy.refresh_tls()

    await asyncio.gather(watch(), *(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path(os.environ.get("LAB_TRAEFIK_CONFIG", "traefik.json")))
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.config))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
